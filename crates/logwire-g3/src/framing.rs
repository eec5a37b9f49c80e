//! Syslog over TCP: RFC 6587 octet counting (`LEN SP MSG`) and newline-delimited frames, told apart per
//! frame by the first byte (a digit starts an octet count, as Vector and rsyslog do). Sans-IO: bytes in,
//! frames out, `None` for "need more".

use crate::error::DecodeError;
use crate::syslog::MAX_RECORD_LEN;
use bytes::{Buf, Bytes, BytesMut};

/// Splits a TCP byte stream into syslog records.
#[derive(Debug, Clone)]
pub struct SyslogFramer {
    max_len: usize,
    /// Bytes at the front of the buffer already searched for the newline that ends the frame there, so
    /// that a long line arriving in many reads is searched once, not once per read.
    searched: usize,
}

impl Default for SyslogFramer {
    fn default() -> Self {
        SyslogFramer::with_max_len(MAX_RECORD_LEN)
    }
}

impl SyslogFramer {
    /// A framer refusing frames above `max_len` bytes.
    pub fn with_max_len(max_len: usize) -> Self {
        SyslogFramer { max_len, searched: 0 }
    }

    /// The next frame, or `None` when more bytes are needed. Between calls `buf` may only grow at its end
    /// (as a read buffer does). An error means the stream cannot be resynchronised: close the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        loop {
            // Blank lines between frames (some senders end octet-counted frames with LF too).
            let skip = buf.iter().take_while(|&&b| b == b'\n' || b == b'\r' || b == 0).count();
            if skip > 0 {
                buf.advance(skip);
                self.searched = 0;
            }
            let Some(&first) = buf.first() else { return Ok(None) };
            if first.is_ascii_digit() {
                let digits = buf.iter().take(9).take_while(|b| b.is_ascii_digit()).count();
                if digits > 8 {
                    return Err(DecodeError::Framing("octet count has more than 8 digits"));
                }
                match buf.get(digits) {
                    None => return Ok(None),
                    Some(b' ') => {}
                    Some(_) => return Err(DecodeError::Framing("octet count not followed by a space")),
                }
                let len: usize = std::str::from_utf8(&buf[..digits])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(DecodeError::Framing("bad octet count"))?;
                if len > self.max_len {
                    return Err(DecodeError::TooLarge { len, limit: self.max_len });
                }
                if buf.len() < digits + 1 + len {
                    // Reserve only what is announced and bounded above.
                    buf.reserve(digits + 1 + len - buf.len());
                    return Ok(None);
                }
                buf.advance(digits + 1);
                let frame = buf.split_to(len).freeze();
                if frame.is_empty() {
                    continue;
                }
                return Ok(Some(frame));
            }
            let from = self.searched.min(buf.len());
            return match memchr::memchr(b'\n', &buf[from..]) {
                // However the line arrived (in one read or many), longer than the limit is refused.
                Some(i) if from + i > self.max_len => Err(DecodeError::TooLarge { len: from + i, limit: self.max_len }),
                Some(i) => {
                    self.searched = 0;
                    let frame = buf.split_to(from + i).freeze();
                    buf.advance(1);
                    Ok(Some(frame))
                }
                None if buf.len() > self.max_len => Err(DecodeError::TooLarge { len: buf.len(), limit: self.max_len }),
                None => {
                    self.searched = buf.len();
                    Ok(None)
                }
            };
        }
    }

    /// At end of stream: the last newline-delimited frame if it had no newline.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None if buf[0].is_ascii_digit() => Err(DecodeError::Framing("stream ended inside an octet-counted frame")),
            None => {
                self.searched = 0;
                Ok(Some(buf.split().freeze()))
            }
        }
    }
}

/// Append `record` as one octet-counted frame.
pub fn encode_octet_counted(record: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(record.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octet_counting_and_newlines_mix_and_split_anywhere() {
        let mut stream = Vec::new();
        encode_octet_counted(b"<29>first", &mut stream);
        stream.extend_from_slice(b"<29>second\n");
        encode_octet_counted(b"<29>third has\nnewline", &mut stream);
        stream.extend_from_slice(b"\n<29>last");
        for cut in 0..stream.len() {
            let mut framer = SyslogFramer::default();
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                buf.extend_from_slice(part);
                while let Some(f) = framer.decode(&mut buf).unwrap() {
                    frames.push(f);
                }
            }
            frames.extend(framer.decode_eof(&mut buf).unwrap());
            assert_eq!(frames, [&b"<29>first"[..], b"<29>second", b"<29>third has\nnewline", b"<29>last"], "cut {cut}");
        }
        // In pieces of a few bytes: the search for a line's end goes on where it stopped, and starts over
        // for the next line (a long line then short ones).
        stream.extend_from_slice(b"\n<29>a much longer line than the next ones\n<29>s\n<29>t\n");
        let expected = [
            &b"<29>first"[..],
            b"<29>second",
            b"<29>third has\nnewline",
            b"<29>last",
            b"<29>a much longer line than the next ones",
            b"<29>s",
            b"<29>t",
        ];
        for step in 1..=16 {
            let mut framer = SyslogFramer::default();
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            for part in stream.chunks(step) {
                buf.extend_from_slice(part);
                while let Some(f) = framer.decode(&mut buf).unwrap() {
                    frames.push(f);
                }
            }
            frames.extend(framer.decode_eof(&mut buf).unwrap());
            assert_eq!(frames, expected, "step {step}");
        }
    }

    #[test]
    fn bounds_are_enforced() {
        let mut framer = SyslogFramer::with_max_len(10);
        assert!(framer.decode(&mut BytesMut::from(&b"11 "[..])).is_err());
        assert!(framer.decode(&mut BytesMut::from(&b"123456789 "[..])).is_err());
        assert!(framer.decode(&mut BytesMut::from(&b"12x"[..])).is_err());
        assert!(framer.decode(&mut BytesMut::from(&b"<29>no newline yet"[..])).is_err());
        assert!(framer.decode(&mut BytesMut::from(&b"<29>too long\n"[..])).is_err(), "even when it came in one read");
        assert_eq!(framer.decode(&mut BytesMut::from(&b"<29>10 ok\n"[..])).unwrap().unwrap(), &b"<29>10 ok"[..]);
        let mut buf = BytesMut::from(&b"10 <29>"[..]);
        assert_eq!(framer.decode(&mut buf).unwrap(), None);
        assert!(framer.decode_eof(&mut buf).is_err());
    }
}
