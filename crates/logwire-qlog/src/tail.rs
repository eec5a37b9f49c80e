//! Splitting a growing JSON-SEQ file into records, sans-IO: feed the bytes as they arrive, take complete
//! records out. A record is complete when the next RS arrives, or when it ends with a newline and is
//! complete JSON (writers end every record with LF; a pretty-printed record's inner newlines do not
//! complete it because the JSON is not complete there).
//!
//! The work is linear in the input however it is cut into pieces: an unfinished record's bytes are
//! searched and scanned once (a small bracket-and-string scanner tells when its value has closed), and
//! the full JSON check runs once per record. Bytes before any RS are dropped at once.

use crate::reader::RS;

/// Records longer than this are cut off and reported as damaged rather than buffered forever.
pub const MAX_RECORD: usize = 16 << 20;

/// One record taken out of a [`SeqTail`], borrowed from its buffer until the next push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailRecord<'a> {
    /// Byte offset of its RS in the file.
    pub offset: u64,
    pub bytes: &'a [u8],
    /// Cut at [`MAX_RECORD`] bytes.
    pub oversized: bool,
}

/// The splitter. Records are handed out as slices of one buffer: taking a record neither copies it nor
/// moves the bytes after it; what was taken is dropped from the buffer when more bytes come in.
#[derive(Debug, Default)]
pub struct SeqTail {
    buf: Vec<u8>,
    /// Bytes of `buf` already taken out.
    taken: usize,
    /// File offset of `buf[0]`.
    base: u64,
    /// What is known of the unfinished record whose RS is at `buf[taken]`, so that each byte is looked at
    /// once however many pieces the record comes in (re-reading it all on every push was quadratic).
    open: OpenRecord,
}

/// The bytes after an unfinished record's RS, as far as they have been scanned: no RS among them, and
/// where its JSON value stands.
#[derive(Debug, Default)]
struct OpenRecord {
    /// Bytes after the RS scanned so far.
    scanned: usize,
    value: ValueScan,
}

/// Just enough of a JSON scanner to tell when a record's value has closed: the first non-blank byte picks
/// an object or array (tracked by depth, outside strings) or a bare scalar.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ValueScan {
    /// Only blanks so far.
    #[default]
    NotStarted,
    /// Inside an object or array.
    Nested { depth: u32, in_string: bool, escaped: bool },
    /// The outer bracket has closed (or a bracket closed that never opened): whatever follows is either
    /// blank or makes the record invalid JSON.
    Closed,
    /// A bare scalar (number, string, literal): it ends at a newline, like the old whole-record check.
    Scalar,
    /// The record was checked as complete JSON and is not; appending cannot mend it.
    Invalid,
}

impl ValueScan {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match self {
                ValueScan::NotStarted => match b {
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    b'{' | b'[' => *self = ValueScan::Nested { depth: 1, in_string: false, escaped: false },
                    b'}' | b']' => *self = ValueScan::Closed,
                    _ => *self = ValueScan::Scalar,
                },
                ValueScan::Nested { depth, in_string, escaped } => {
                    if *in_string {
                        if *escaped {
                            *escaped = false;
                        } else if b == b'\\' {
                            *escaped = true;
                        } else if b == b'"' {
                            *in_string = false;
                        }
                    } else {
                        match b {
                            b'"' => *in_string = true,
                            b'{' | b'[' => *depth += 1,
                            b'}' | b']' => {
                                *depth -= 1;
                                if *depth == 0 {
                                    *self = ValueScan::Closed;
                                }
                            }
                            _ => {}
                        }
                    }
                }
                ValueScan::Closed | ValueScan::Scalar | ValueScan::Invalid => return,
            }
        }
    }

    /// Whether the record may be complete now (it must also end with a newline and parse).
    fn may_be_complete(self) -> bool {
        matches!(self, ValueScan::Closed | ValueScan::Scalar)
    }
}

impl SeqTail {
    pub fn new() -> SeqTail {
        SeqTail::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Reads up to `limit` bytes from `input` straight into the buffer; returns how many.
    pub fn read_from(&mut self, input: impl std::io::Read, limit: u64) -> std::io::Result<usize> {
        self.compact();
        std::io::Read::read_to_end(&mut input.take(limit), &mut self.buf)
    }

    fn compact(&mut self) {
        if self.taken > 0 {
            self.buf.drain(..self.taken);
            self.base += self.taken as u64;
            self.taken = 0;
        }
    }

    /// Bytes received but not yet taken out as records.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.taken
    }

    /// The next complete record, if any. With `eof`, whatever remains is the last record.
    pub fn next_record(&mut self, eof: bool) -> Option<TailRecord<'_>> {
        loop {
            let rest = &self.buf[self.taken..];
            // Drop anything before the first RS (garbage, or blank lines between records): no record can
            // start there. Without an RS it all goes, so garbage is neither kept nor scanned again.
            let Some(start) = memchr::memchr(RS, rest) else {
                self.taken = self.buf.len();
                return None;
            };
            // An unfinished record keeps its RS at `taken`; any other start is a new record, and what is
            // known of the last one was cleared when it was taken.
            debug_assert!(start == 0 || self.open.scanned == 0);
            let body = start + 1;
            // Only the bytes that came since the last call are searched and scanned.
            let unscanned = body + self.open.scanned;
            let end = match memchr::memchr(RS, &rest[unscanned..]) {
                Some(i) => unscanned + i,
                None if eof => rest.len(),
                None if rest.len() - body > MAX_RECORD => body + MAX_RECORD,
                None => {
                    let open = &mut self.open;
                    open.value.feed(&rest[unscanned..]);
                    open.scanned = rest.len() - body;
                    let last = &rest[body..];
                    // The full parse runs once the value has closed and the record ends with a newline;
                    // if it fails then, it fails for good and is not tried again.
                    let closed_line = open.value.may_be_complete() && last.last() == Some(&b'\n');
                    let complete = closed_line && serde_json::from_slice::<serde::de::IgnoredAny>(last).is_ok();
                    if !complete {
                        if closed_line {
                            open.value = ValueScan::Invalid;
                        }
                        self.taken += start;
                        return None;
                    }
                    rest.len()
                }
            };
            self.open = OpenRecord::default();
            let blank = rest[body..end].iter().all(u8::is_ascii_whitespace);
            let (from, offset) = (self.taken, self.base + (self.taken + start) as u64);
            let oversized = end - body >= MAX_RECORD && end < rest.len();
            self.taken += end;
            if blank {
                continue;
            }
            return Some(TailRecord { offset, bytes: &self.buf[from + body..from + end], oversized });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_complete_on_rs_or_on_complete_json() {
        let mut t = SeqTail::new();
        t.push(b"\x1e{\"a\":\n 1");
        assert_eq!(t.next_record(false), None);
        t.push(b"}\n");
        let r = t.next_record(false).unwrap();
        assert_eq!(r.bytes, b"{\"a\":\n 1}\n");
        assert_eq!(r.offset, 0);
        t.push(b"\x1e{\"b\":2}\n\x1e\x1e{\"c\"");
        assert_eq!(t.next_record(false).unwrap().offset, 11);
        assert_eq!(t.next_record(false), None);
        assert_eq!(t.pending(), 5, "the unfinished record stays");
        t.read_from(&b"}\n\x1e{\"d\":1}\n"[..], 3).unwrap();
        let r = t.next_record(false).unwrap();
        assert_eq!((r.offset, r.bytes), (21, &b"{\"c\"}\n"[..]));
        assert_eq!(t.next_record(false), None, "the rest is not read yet");
        assert_eq!(t.pending(), 1);
    }

    /// Every record `input` gives when pushed in pieces of `step` bytes, taking records after each push.
    fn split(input: &[u8], step: usize) -> Vec<(u64, Vec<u8>, bool)> {
        let mut t = SeqTail::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            t.push(piece);
            while let Some(r) = t.next_record(false) {
                out.push((r.offset, r.bytes.to_vec(), r.oversized));
            }
        }
        while let Some(r) = t.next_record(true) {
            out.push((r.offset, r.bytes.to_vec(), r.oversized));
        }
        out
    }

    #[test]
    fn the_pieces_a_file_arrives_in_do_not_change_its_records() {
        let input: &[u8] = b"junk\n\x1e{\"a\":\n [1, {\"s\": \"}]\\\"\\\\\"}]\n}\n\x1e\x1e 12\n\x1e\"str\"\n\x1e[]\n\
              \x1e{\"bad\":}\n{\"x\":1}\n\x1e  \n\x1e{\"last\": [2]}\n\x1e{\"cut";
        let whole = split(input, input.len());
        let bodies: Vec<&[u8]> = whole.iter().map(|(_, b, _)| &b[..]).collect();
        assert_eq!(
            bodies,
            [
                &b"{\"a\":\n [1, {\"s\": \"}]\\\"\\\\\"}]\n}\n"[..],
                b" 12\n",
                b"\"str\"\n",
                b"[]\n",
                b"{\"bad\":}\n{\"x\":1}\n",
                b"{\"last\": [2]}\n",
                b"{\"cut",
            ]
        );
        for step in 1..=9 {
            assert_eq!(split(input, step), whole, "pieces of {step} bytes");
        }
    }

    #[test]
    fn a_long_record_in_many_pieces_comes_out_whole_when_it_closes() {
        // A pretty-printed record of about 4 MiB, written a line at a time: every piece ends with a newline,
        // so each one used to trigger a full parse of everything so far.
        let mut t = SeqTail::new();
        t.push(b"\x1e{\"events\": [\n");
        assert_eq!(t.next_record(false), None);
        let line = b"  {\"name\": \"transport:packet_sent\", \"data\": {\"raw\": {\"length\": 1252}}},\n";
        let lines = (4 << 20) / line.len();
        for _ in 0..lines {
            t.push(line);
            assert_eq!(t.next_record(false), None, "not complete before the closing brace");
        }
        t.push(b"  {}\n]}");
        assert_eq!(t.next_record(false), None, "not complete before its newline");
        t.push(b"\n");
        let r = t.next_record(false).expect("complete");
        assert_eq!(r.bytes.len(), 13 + lines * line.len() + 8);
        assert!(serde_json::from_slice::<serde::de::IgnoredAny>(r.bytes).is_ok());
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn bytes_before_any_record_separator_are_dropped_not_kept() {
        let mut t = SeqTail::new();
        t.push(b"{\"not\": \"json-seq\"}\n");
        assert_eq!(t.next_record(false), None);
        assert_eq!(t.pending(), 0, "nothing there can become a record");
        t.push(b"\x1e{\"a\":1}\n");
        let r = t.next_record(false).unwrap();
        assert_eq!((r.offset, r.bytes), (20, &b"{\"a\":1}\n"[..]));
    }
}
