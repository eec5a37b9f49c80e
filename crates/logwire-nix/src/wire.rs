//! Wire primitives of the worker protocol (`serialise.{hh,cc}`): u64 little-endian integers, padded byte
//! strings, lists, and framed data. Decoding works on a complete-or-not slice: a [`Reader`] reports
//! [`DecodeError::Incomplete`] with the total number of bytes it needs, so a caller buffers and retries.

use crate::error::DecodeError;

/// Bounds applied before anything is allocated. C++ `readString` has none; a Rust decoder must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest byte string accepted (log lines have no cap in Nix, so this is generous).
    pub max_string: u64,
    /// Most elements accepted in one list, map or field set.
    pub max_list: u64,
}

impl Limits {
    /// No bounds: only for walking bytes already validated under real limits.
    pub(crate) const UNBOUNDED: Limits = Limits { max_string: u64::MAX, max_list: u64::MAX };
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_string: 64 << 20, max_list: 1 << 20 }
    }
}

/// Bytes of zero padding that follow a string of `len` bytes.
#[inline]
pub fn padding(len: u64) -> u64 {
    (8 - len % 8) % 8
}

/// Total bytes a string of `len` bytes occupies on the wire, length word included.
pub fn padded_len(len: u64) -> u64 {
    8 + len + padding(len)
}

/// A key/value pair of a byte-string map.
pub type BytesPair = (Vec<u8>, Vec<u8>);

/// A cursor over a byte slice that decodes primitives and never reads past the end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: Limits,
}

impl<'a> Reader<'a> {
    #[inline]
    pub fn new(buf: &'a [u8], limits: Limits) -> Self {
        Reader { buf, pos: 0, limits }
    }

    /// Bytes consumed so far.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    #[inline]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    #[inline]
    fn need(&self, n: u64) -> Result<usize, DecodeError> {
        let available = (self.buf.len() - self.pos) as u64;
        if n > available {
            let needed = (self.pos as u64).saturating_add(n);
            return Err(DecodeError::Incomplete { needed: usize::try_from(needed).unwrap_or(usize::MAX) });
        }
        // n ≤ available ≤ usize::MAX here.
        Ok(n as usize)
    }

    /// Fails with [`DecodeError::Incomplete`] unless `n` more bytes are present (a bound to check before
    /// allocating for a count).
    pub fn ensure(&self, n: u64) -> Result<(), DecodeError> {
        self.need(n).map(|_| ())
    }

    /// Takes `n` raw bytes.
    #[inline]
    pub fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let n = self.need(n)?;
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    #[inline]
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(word))
    }

    /// A boolean: 0 or 1; C++ `readNum<bool>` rejects anything larger ("serialised integer too large").
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u64()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::BadBool(other)),
        }
    }

    /// A padded byte string, bounded by [`Limits::max_string`].
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        self.bytes_capped(self.limits.max_string)
    }

    /// A padded byte string with an explicit cap; the padding must be zero.
    #[inline]
    pub fn bytes_capped(&mut self, cap: u64) -> Result<&'a [u8], DecodeError> {
        let len = self.u64()?;
        if len > cap {
            return Err(DecodeError::StringTooLong { len, cap });
        }
        let pad = padding(len);
        // One bounds check for body and padding (len ≤ cap, so no overflow for any sane cap).
        let padded = self.take(len.saturating_add(pad))?;
        let body = &padded[..len as usize];
        if pad > 0 {
            // Padding ends the last 8-byte word of the padded body (which is a multiple of 8 long), in
            // its high bytes: check them all at once.
            let mut word = [0u8; 8];
            word.copy_from_slice(&padded[padded.len() - 8..]);
            if u64::from_le_bytes(word) >> (64 - 8 * pad) != 0 {
                return Err(DecodeError::NonZeroPadding { len });
            }
        }
        Ok(body)
    }

    /// A padded byte string already validated (by an earlier pass over the same bytes): no cap or
    /// padding check; `None` if the bytes are short after all.
    #[inline]
    pub(crate) fn bytes_unchecked(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u64().ok()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let body = self.buf.get(self.pos..end)?;
        self.pos = end.checked_add((8 - len % 8) % 8)?.min(self.buf.len());
        Some(body)
    }

    /// An owned copy of a padded byte string.
    pub fn bytes_vec(&mut self) -> Result<Vec<u8>, DecodeError> {
        self.bytes().map(<[u8]>::to_vec)
    }

    /// A list/set/map count, bounded by [`Limits::max_list`].
    #[inline]
    pub fn count(&mut self) -> Result<u64, DecodeError> {
        let n = self.u64()?;
        if n > self.limits.max_list {
            return Err(DecodeError::ListTooLong { len: n, cap: self.limits.max_list });
        }
        Ok(n)
    }

    /// A list of byte strings.
    pub fn bytes_list(&mut self) -> Result<Vec<Vec<u8>>, DecodeError> {
        let n = self.count()?;
        // Each element takes at least 8 bytes: check before allocating.
        self.need(n.saturating_mul(8))?;
        (0..n).map(|_| self.bytes_vec()).collect()
    }

    /// A map of byte strings to byte strings.
    pub fn bytes_map(&mut self) -> Result<Vec<BytesPair>, DecodeError> {
        let n = self.count()?;
        self.need(n.saturating_mul(16))?;
        (0..n).map(|_| Ok((self.bytes_vec()?, self.bytes_vec()?))).collect()
    }

    /// Skips a list of byte strings, returning its length.
    pub fn skip_bytes_list(&mut self) -> Result<u64, DecodeError> {
        let n = self.count()?;
        for _ in 0..n {
            self.bytes()?;
        }
        Ok(n)
    }

    /// Skips a map of byte strings to byte strings, returning its length.
    pub fn skip_bytes_map(&mut self) -> Result<u64, DecodeError> {
        let n = self.count()?;
        for _ in 0..n {
            self.bytes()?;
            self.bytes()?;
        }
        Ok(n)
    }

    /// Complete framed data (u64 length + unpadded bytes, ended by a zero-length frame), returning
    /// the total payload length. Use [`FramedSkipper`] to skip large payloads without buffering them.
    pub fn framed(&mut self) -> Result<u64, DecodeError> {
        let mut total: u64 = 0;
        loop {
            let len = self.u64()?;
            if len == 0 {
                return Ok(total);
            }
            self.take(len)?;
            total = total.saturating_add(len);
        }
    }
}

/// How far earlier attempts got through the lists of one item (a request or reply) that is parsed again
/// from its start each time more of it arrives. Keyed by the position of each list's count word, it lets
/// the next attempt jump over elements already walked, so a list arriving in many chunks is walked once
/// in all instead of once per chunk. Valid only for retries over the same, growing bytes: clear it (or
/// drop it) once the item is complete or the bytes change.
#[derive(Debug, Default, Clone)]
pub struct ListMemo {
    marks: Vec<ListMark>,
    /// Bytes jumped over thanks to the marks, since the memo was created.
    jumped: u64,
}

/// After `done` elements of the list whose count word is at `start`, the reader is at `end`.
#[derive(Debug, Clone, Copy)]
struct ListMark {
    start: usize,
    done: u64,
    end: usize,
}

impl ListMemo {
    /// Lists shorter than this are walked again rather than remembered, so that small lists nested in
    /// every element of a long one cannot grow the memo.
    const MIN_REMEMBERED: u64 = 32;
    /// Most marks kept (a bound, not a correctness limit: without a mark a list is just walked again).
    const MAX_MARKS: usize = 64;

    pub fn clear(&mut self) {
        self.marks.clear();
    }

    /// Bytes the marks let attempts jump over so far.
    pub fn jumped(&self) -> u64 {
        self.jumped
    }

    fn mark(&mut self, start: usize, done: u64, end: usize) {
        if let Some(m) = self.marks.iter_mut().find(|m| m.start == start) {
            m.done = done;
            m.end = end;
        } else if self.marks.len() < Self::MAX_MARKS {
            self.marks.push(ListMark { start, done, end });
        }
    }

    /// Walks a list: its count (bounded by [`Limits::max_list`]), then `each` once per element with the
    /// element's index. Elements with an index of `keep` or more that an earlier attempt already walked are
    /// jumped over, so `each` must consume exactly one element, deterministically, and may only have
    /// lasting effects for indices below `keep` (keep the first few targets, skip the rest).
    pub fn list<'a>(
        &mut self,
        r: &mut Reader<'a>,
        keep: u64,
        mut each: impl FnMut(&mut Reader<'a>, u64) -> Result<(), DecodeError>,
    ) -> Result<u64, DecodeError> {
        let start = r.pos;
        let n = r.count()?;
        let mark = self.marks.iter().find(|m| m.start == start).map(|m| (m.done, m.end));
        let (mut i, mut done_at) = (0, r.pos);
        while i < n {
            if let Some((done, end)) = mark {
                if i >= keep && done > i && end <= r.buf.len() {
                    self.jumped += (end - r.pos) as u64;
                    r.pos = end;
                    done_at = end;
                    i = done;
                    continue;
                }
            }
            if let Err(e) = each(r, i) {
                if e.is_incomplete() && i >= keep.max(1) {
                    self.mark(start, i, done_at);
                }
                return Err(e);
            }
            i += 1;
            done_at = r.pos;
        }
        if n >= Self::MIN_REMEMBERED {
            self.mark(start, n, r.pos);
        }
        Ok(n)
    }

    /// [`Reader::skip_bytes_list`], remembered.
    pub fn skip_bytes_list(&mut self, r: &mut Reader<'_>) -> Result<u64, DecodeError> {
        self.list(r, 0, |r, _| r.bytes().map(|_| ()))
    }

    /// [`Reader::skip_bytes_map`], remembered.
    pub fn skip_bytes_map(&mut self, r: &mut Reader<'_>) -> Result<u64, DecodeError> {
        self.list(r, 0, |r, _| {
            r.bytes()?;
            r.bytes().map(|_| ())
        })
    }
}

/// Appends a u64 little-endian.
pub fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn put_bool(out: &mut Vec<u8>, value: bool) {
    put_u64(out, u64::from(value));
}

/// Appends a padded byte string.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
    out.resize(out.len() + padding(bytes.len() as u64) as usize, 0);
}

/// Appends a list of byte strings.
pub fn put_bytes_list<T: AsRef<[u8]>>(out: &mut Vec<u8>, items: &[T]) {
    put_u64(out, items.len() as u64);
    for item in items {
        put_bytes(out, item.as_ref());
    }
}

/// Appends framed data: one frame per chunk (empty chunks are skipped), then the terminating zero frame.
pub fn put_framed<T: AsRef<[u8]>>(out: &mut Vec<u8>, chunks: &[T]) {
    for chunk in chunks {
        let chunk = chunk.as_ref();
        if !chunk.is_empty() {
            put_u64(out, chunk.len() as u64);
            out.extend_from_slice(chunk);
        }
    }
    put_u64(out, 0);
}

/// Streaming skipper for framed data: consumes frames as bytes arrive, never buffering a payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FramedSkipper {
    /// Bytes left in the current frame's payload.
    in_frame: u64,
    /// Payload bytes seen so far.
    pub total: u64,
}

impl FramedSkipper {
    /// Consumes what it can from `input`. Returns `(consumed, done)`.
    pub fn advance(&mut self, input: &[u8]) -> (usize, bool) {
        let mut pos = 0usize;
        loop {
            if self.in_frame > 0 {
                let available = (input.len() - pos) as u64;
                let step = self.in_frame.min(available);
                pos += step as usize;
                self.in_frame -= step;
                self.total = self.total.saturating_add(step);
                if self.in_frame > 0 {
                    return (pos, false);
                }
            }
            if input.len() - pos < 8 {
                return (pos, false);
            }
            let mut word = [0u8; 8];
            word.copy_from_slice(&input[pos..pos + 8]);
            pos += 8;
            let len = u64::from_le_bytes(word);
            if len == 0 {
                return (pos, true);
            }
            self.in_frame = len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_padded_and_checked() {
        let mut out = Vec::new();
        put_bytes(&mut out, b"2.8.0");
        assert_eq!(out, [5, 0, 0, 0, 0, 0, 0, 0, b'2', b'.', b'8', b'.', b'0', 0, 0, 0]);
        let mut r = Reader::new(&out, Limits::default());
        assert_eq!(r.bytes().unwrap(), b"2.8.0");
        assert_eq!(r.position(), 16);

        out[15] = 1;
        let mut r = Reader::new(&out, Limits::default());
        assert_eq!(r.bytes(), Err(DecodeError::NonZeroPadding { len: 5 }));

        let mut r = Reader::new(&out[..12], Limits::default());
        assert_eq!(r.bytes(), Err(DecodeError::Incomplete { needed: 16 }));

        let mut r = Reader::new(&out, Limits { max_string: 4, max_list: 10 });
        assert_eq!(r.bytes(), Err(DecodeError::StringTooLong { len: 5, cap: 4 }));
    }

    #[test]
    fn every_padding_byte_is_checked() {
        for len in 1..8usize {
            let mut out = Vec::new();
            put_bytes(&mut out, &vec![0xff; len]);
            assert_eq!(Reader::new(&out, Limits::default()).bytes(), Ok(&vec![0xff; len][..]));
            for pad_at in 8 + len..out.len() {
                let mut bad = out.clone();
                bad[pad_at] = 1;
                let got = Reader::new(&bad, Limits::default()).bytes();
                assert_eq!(got, Err(DecodeError::NonZeroPadding { len: len as u64 }), "len {len}, byte {pad_at}");
            }
        }
    }

    #[test]
    fn empty_string_has_no_padding() {
        let mut out = Vec::new();
        put_bytes(&mut out, b"");
        assert_eq!(out, [0u8; 8]);
    }

    #[test]
    fn framed_data_is_unpadded_and_skips_in_pieces() {
        let mut out = Vec::new();
        put_framed(&mut out, &[&b"abc"[..], b"defgh"]);
        assert_eq!(out.len(), 8 + 3 + 8 + 5 + 8);
        assert_eq!(Reader::new(&out, Limits::default()).framed(), Ok(8));

        // Feed one byte at a time; the caller keeps what the skipper did not consume.
        let mut skipper = FramedSkipper::default();
        let mut pending = Vec::new();
        let mut done = false;
        for &byte in &out {
            assert!(!done, "framed data ended early");
            pending.push(byte);
            let (used, finished) = skipper.advance(&pending);
            pending.drain(..used);
            done = finished;
        }
        assert!(pending.is_empty());
        assert!(done);
        assert_eq!(skipper.total, 8);
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let mut out = Vec::new();
        put_u64(&mut out, u64::MAX);
        let mut r = Reader::new(&out, Limits::default());
        assert!(matches!(r.bytes_list(), Err(DecodeError::ListTooLong { .. })));
        let mut r = Reader::new(&out, Limits { max_string: 10, max_list: u64::MAX });
        assert!(matches!(r.bytes_list(), Err(DecodeError::Incomplete { .. })));
    }
}
