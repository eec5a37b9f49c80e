//! Splitting a growing JSON-SEQ file into records, sans-IO: feed the bytes as they arrive, take complete
//! records out. A record is complete when the next RS arrives, or when it ends with a newline and is
//! complete JSON (writers end every record with LF; a pretty-printed record's inner newlines do not
//! complete it because the JSON is not complete there).

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
            // Drop anything before the first RS (garbage, or blank lines between records).
            let rest = &self.buf[self.taken..];
            let start = memchr::memchr(RS, rest)?;
            let body = start + 1;
            let end = match memchr::memchr(RS, &rest[body..]) {
                Some(i) => body + i,
                None if eof => rest.len(),
                None if rest.len() - body > MAX_RECORD => body + MAX_RECORD,
                None => {
                    let last = &rest[body..];
                    let complete =
                        last.last() == Some(&b'\n') && serde_json::from_slice::<serde::de::IgnoredAny>(last).is_ok();
                    if !complete {
                        self.taken += start;
                        return None;
                    }
                    rest.len()
                }
            };
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
}
