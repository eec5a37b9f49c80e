//! The SPOP variable-length integer: HAProxy's "peers" encoding, **not** LEB128.
//!
//! Values below 240 take one byte. Larger values put `x | 0xF0` in the first byte, then 7 bits per byte
//! with the continuation bit 0x80, where every step first subtracts the range the shorter forms cover.
//! 16380 (HAProxy's default max-frame-size) encodes as `fc f0 06`; `u64::MAX` takes 10 bytes.

use crate::error::DecodeError;
use bytes::BufMut;

/// Longest encoding of a u64.
pub const MAX_LEN: usize = 10;

/// Appends the encoding of `value`.
#[inline]
pub fn encode(mut value: u64, out: &mut impl BufMut) {
    if value < 240 {
        out.put_u8(value as u8);
        return;
    }
    let mut buf = [0u8; MAX_LEN];
    buf[0] = (value as u8) | 0xF0;
    value = (value - 240) >> 4;
    let mut n = 1;
    while value >= 128 {
        buf[n] = (value as u8) | 0x80;
        n += 1;
        value = (value - 128) >> 7;
    }
    buf[n] = value as u8;
    out.put_slice(&buf[..=n]);
}

/// Number of bytes [`encode`] writes for `value`.
#[inline]
pub fn encoded_len(mut value: u64) -> usize {
    if value < 240 {
        return 1;
    }
    value = (value - 240) >> 4;
    let mut n = 2;
    while value >= 128 {
        n += 1;
        value = (value - 128) >> 7;
    }
    n
}

/// Decodes one varint from the front of `buf`, returning the value and the bytes consumed.
#[inline]
pub fn decode(buf: &[u8]) -> Result<(u64, usize), DecodeError> {
    let first = *buf.first().ok_or(DecodeError::UnexpectedEnd("varint"))?;
    if first < 240 {
        return Ok((first as u64, 1));
    }
    let mut value = first as u64;
    let mut shift = 4u32;
    let mut i = 1;
    loop {
        let b = *buf.get(i).ok_or(DecodeError::UnexpectedEnd("varint"))?;
        i += 1;
        // The 10th byte may only carry the top bits of a u64; anything longer is hostile.
        if shift > 60 || (shift == 60 && b > 0x0F) {
            return Err(DecodeError::VarintOverflow);
        }
        value = value.checked_add((b as u64) << shift).ok_or(DecodeError::VarintOverflow)?;
        shift += 7;
        if b < 128 {
            return Ok((value, i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out);
        out
    }

    #[test]
    fn vectors_from_the_notes() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (239, &[0xef]),
            (240, &[0xf0, 0x00]),
            (2287, &[0xff, 0x7f]),
            (2288, &[0xf0, 0x80, 0x00]),
            (16380, &[0xfc, 0xf0, 0x06]),
            (65535, &[0xff, 0xf0, 0x1e]),
            ((1 << 31) - 1, &[0xff, 0xf0, 0xfe, 0xfe, 0x3e]),
            (u64::MAX, &[0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e]),
        ];
        for &(v, bytes) in cases {
            assert_eq!(enc(v), bytes, "encode {v}");
            assert_eq!(decode(bytes).unwrap(), (v, bytes.len()), "decode {v}");
            assert_eq!(encoded_len(v), bytes.len(), "len {v}");
        }
    }

    #[test]
    fn truncated_and_overlong_are_errors() {
        assert_eq!(decode(&[]), Err(DecodeError::UnexpectedEnd("varint")));
        assert_eq!(decode(&[0xf0, 0x80]), Err(DecodeError::UnexpectedEnd("varint")));
        let overlong = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(decode(&overlong), Err(DecodeError::VarintOverflow));
    }

    proptest::proptest! {
        #[test]
        fn round_trip(v: u64) {
            let bytes = enc(v);
            proptest::prop_assert_eq!(decode(&bytes).unwrap(), (v, bytes.len()));
            proptest::prop_assert_eq!(encoded_len(v), bytes.len());
        }

        #[test]
        fn decode_never_panics(bytes: Vec<u8>) {
            let _ = decode(&bytes);
        }
    }
}
