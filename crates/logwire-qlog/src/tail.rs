//! Splitting a growing JSON-SEQ file into records, sans-IO: feed the bytes as they arrive, take complete
//! records out. A record is complete when the next RS arrives, or when it ends with a newline and is
//! complete JSON (writers end every record with LF; a pretty-printed record's inner newlines do not
//! complete it because the JSON is not complete there).

use crate::reader::RS;

/// Records longer than this are cut off and reported as damaged rather than buffered forever.
pub const MAX_RECORD: usize = 16 << 20;

/// One record taken out of a [`SeqTail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailRecord {
    /// Byte offset of its RS in the file.
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// Cut at [`MAX_RECORD`] bytes.
    pub oversized: bool,
}

#[derive(Debug, Default)]
pub struct SeqTail {
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
}

impl SeqTail {
    pub fn new() -> SeqTail {
        SeqTail::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet taken out as records.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete record, if any. With `eof`, whatever remains is the last record.
    pub fn next_record(&mut self, eof: bool) -> Option<TailRecord> {
        loop {
            // Drop anything before the first RS (garbage, or blank lines between records).
            let start = memchr::memchr(RS, &self.buf)?;
            let body = start + 1;
            let end = match memchr::memchr(RS, &self.buf[body..]) {
                Some(i) => body + i,
                None if eof => self.buf.len(),
                None if self.buf.len() - body > MAX_RECORD => body + MAX_RECORD,
                None => {
                    let rest = &self.buf[body..];
                    let complete =
                        rest.last() == Some(&b'\n') && serde_json::from_slice::<serde::de::IgnoredAny>(rest).is_ok();
                    if !complete {
                        if start > 0 {
                            self.consume(start);
                        }
                        return None;
                    }
                    self.buf.len()
                }
            };
            let offset = self.base + start as u64;
            let bytes = self.buf[body..end].to_vec();
            let oversized = end - body >= MAX_RECORD && end < self.buf.len();
            self.consume(end);
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(TailRecord { offset, bytes, oversized });
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.base += n as u64;
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
        assert_eq!(t.next_record(true).unwrap().bytes, b"{\"c\"");
    }
}
