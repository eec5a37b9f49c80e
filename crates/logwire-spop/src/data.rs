//! Typed data (SPOE.txt §3.1): a type byte (type in the low nibble, flags in the high nibble) and a value.

use crate::error::DecodeError;
use crate::varint;
use bytes::{Buf, BufMut, Bytes};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One SPOP value. Strings are bytes: HAProxy does not promise UTF-8.
///
/// `repr(C, u8)` puts every payload at offset 8. With the default layout the `Ipv6` octets sit at
/// offset 1, and a decoded value was moved with misaligned copies that stalled on store forwarding
/// (see [`Reader`] for the numbers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[repr(C, u8)]
pub enum TypedData {
    Null,
    Bool(bool),
    Int32(i32),
    Uint32(u32),
    Int64(i64),
    Uint64(u64),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    String(Bytes),
    Binary(Bytes),
}

/// Type numbers of the low nibble.
pub mod ty {
    pub const NULL: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const INT32: u8 = 2;
    pub const UINT32: u8 = 3;
    pub const INT64: u8 = 4;
    pub const UINT64: u8 = 5;
    pub const IPV4: u8 = 6;
    pub const IPV6: u8 = 7;
    pub const STRING: u8 = 8;
    pub const BINARY: u8 = 9;
}

/// Flag bit that carries a BOOL's value.
const BOOL_TRUE: u8 = 0x10;

impl TypedData {
    /// Builds a STRING from text.
    pub fn string(s: impl Into<String>) -> Self {
        TypedData::String(Bytes::from(s.into()))
    }

    /// The type name, as SPOE.txt writes it.
    pub fn type_name(&self) -> &'static str {
        match self {
            TypedData::Null => "null",
            TypedData::Bool(_) => "bool",
            TypedData::Int32(_) => "int32",
            TypedData::Uint32(_) => "uint32",
            TypedData::Int64(_) => "int64",
            TypedData::Uint64(_) => "uint64",
            TypedData::Ipv4(_) => "ipv4",
            TypedData::Ipv6(_) => "ipv6",
            TypedData::String(_) => "string",
            TypedData::Binary(_) => "binary",
        }
    }

    /// Any integer type as i128 (so both u64 and i64 fit).
    pub fn as_int(&self) -> Option<i128> {
        match *self {
            TypedData::Int32(v) => Some(v as i128),
            TypedData::Uint32(v) => Some(v as i128),
            TypedData::Int64(v) => Some(v as i128),
            TypedData::Uint64(v) => Some(v as i128),
            _ => None,
        }
    }

    /// STRING or BINARY bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            TypedData::String(b) | TypedData::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// STRING as text (None when not a STRING or not UTF-8).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            TypedData::String(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Bytes [`TypedData::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            TypedData::Null | TypedData::Bool(_) => 0,
            TypedData::Int32(v) => varint::encoded_len(*v as i64 as u64),
            TypedData::Uint32(v) => varint::encoded_len(*v as u64),
            TypedData::Int64(v) => varint::encoded_len(*v as u64),
            TypedData::Uint64(v) => varint::encoded_len(*v),
            TypedData::Ipv4(_) => 4,
            TypedData::Ipv6(_) => 16,
            TypedData::String(b) | TypedData::Binary(b) => varint::encoded_len(b.len() as u64) + b.len(),
        }
    }

    /// Appends the type byte and the value. Signed integers are the varint of their two's complement
    /// (no zigzag), as HAProxy does.
    pub fn encode(&self, out: &mut impl BufMut) {
        match self {
            TypedData::Null => out.put_u8(ty::NULL),
            TypedData::Bool(b) => out.put_u8(ty::BOOL | if *b { BOOL_TRUE } else { 0 }),
            TypedData::Int32(v) => {
                out.put_u8(ty::INT32);
                varint::encode(*v as i64 as u64, out);
            }
            TypedData::Uint32(v) => {
                out.put_u8(ty::UINT32);
                varint::encode(*v as u64, out);
            }
            TypedData::Int64(v) => {
                out.put_u8(ty::INT64);
                varint::encode(*v as u64, out);
            }
            TypedData::Uint64(v) => {
                out.put_u8(ty::UINT64);
                varint::encode(*v, out);
            }
            TypedData::Ipv4(ip) => {
                out.put_u8(ty::IPV4);
                out.put_slice(&ip.octets());
            }
            TypedData::Ipv6(ip) => {
                out.put_u8(ty::IPV6);
                out.put_slice(&ip.octets());
            }
            TypedData::String(b) => {
                out.put_u8(ty::STRING);
                put_bytes(b, out);
            }
            TypedData::Binary(b) => {
                out.put_u8(ty::BINARY);
                put_bytes(b, out);
            }
        }
    }

    /// Decodes one typed value from the front of `buf` (advancing it). STRING/BINARY payloads share
    /// `buf`'s memory; lengths are checked against what is left before anything is allocated.
    pub fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let value = r.typed()?;
        let pos = r.pos();
        buf.advance(pos);
        Ok(value)
    }
}

/// A read cursor over a payload: values are read from the slice, STRING/BINARY payloads and names
/// are handed out as `Bytes` sharing the payload's memory.
///
/// Decoding NOTIFYs is the agent's hot path. With a `Bytes` advanced per field (`get_u8`, `advance`,
/// `split_to`), decoding and dropping the NOTIFY of `benches/agent_ceiling.rs` took 412 ns; with this
/// cursor and `#[repr(C, u8)]` on [`TypedData`], 265 ns.
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    pub(crate) fn has_remaining(&self) -> bool {
        self.pos < self.buf.len()
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::UnexpectedEnd(what))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 240 => {
                self.pos += 1;
                Ok(b as u64)
            }
            _ => {
                let (v, n) = varint::decode(&self.buf[self.pos..])?;
                self.pos += n;
                Ok(v)
            }
        }
    }

    /// A varint length and that many bytes (shared, not copied).
    #[inline]
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.varint()?;
        if len > self.remaining() as u64 {
            return Err(DecodeError::UnexpectedEnd(what));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(self.buf.slice(start..self.pos))
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let a = self
            .buf
            .get(self.pos..self.pos + N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(DecodeError::UnexpectedEnd(what))?;
        self.pos += N;
        Ok(a)
    }

    /// One typed value.
    pub(crate) fn typed(&mut self) -> Result<TypedData, DecodeError> {
        let type_byte = self.u8("typed data")?;
        Ok(match type_byte & 0x0F {
            ty::NULL => TypedData::Null,
            ty::BOOL => TypedData::Bool(type_byte & BOOL_TRUE != 0),
            ty::INT32 => {
                let v = self.varint()? as i64;
                TypedData::Int32(
                    i32::try_from(v).map_err(|_| DecodeError::IntOutOfRange { what: "int32", value: v as u64 })?,
                )
            }
            ty::UINT32 => {
                let v = self.varint()?;
                TypedData::Uint32(
                    u32::try_from(v).map_err(|_| DecodeError::IntOutOfRange { what: "uint32", value: v })?,
                )
            }
            ty::INT64 => TypedData::Int64(self.varint()? as i64),
            ty::UINT64 => TypedData::Uint64(self.varint()?),
            ty::IPV4 => TypedData::Ipv4(Ipv4Addr::from(self.array::<4>("ipv4")?)),
            ty::IPV6 => TypedData::Ipv6(Ipv6Addr::from(self.array::<16>("ipv6")?)),
            ty::STRING => TypedData::String(self.bytes("string")?),
            ty::BINARY => TypedData::Binary(self.bytes("binary")?),
            other => return Err(DecodeError::UnknownDataType(other)),
        })
    }
}

impl fmt::Display for TypedData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypedData::Null => f.write_str("null"),
            TypedData::Bool(b) => write!(f, "{b}"),
            TypedData::Int32(v) => write!(f, "{v}"),
            TypedData::Uint32(v) => write!(f, "{v}"),
            TypedData::Int64(v) => write!(f, "{v}"),
            TypedData::Uint64(v) => write!(f, "{v}"),
            TypedData::Ipv4(ip) => write!(f, "{ip}"),
            TypedData::Ipv6(ip) => write!(f, "{ip}"),
            TypedData::String(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            TypedData::Binary(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}

/// Writes a varint length then the bytes.
#[inline]
pub(crate) fn put_bytes(b: &[u8], out: &mut impl BufMut) {
    varint::encode(b.len() as u64, out);
    out.put_slice(b);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn arb_typed() -> impl Strategy<Value = TypedData> {
        prop_oneof![
            Just(TypedData::Null),
            any::<bool>().prop_map(TypedData::Bool),
            any::<i32>().prop_map(TypedData::Int32),
            any::<u32>().prop_map(TypedData::Uint32),
            any::<i64>().prop_map(TypedData::Int64),
            any::<u64>().prop_map(TypedData::Uint64),
            any::<[u8; 4]>().prop_map(|o| TypedData::Ipv4(o.into())),
            any::<[u8; 16]>().prop_map(|o| TypedData::Ipv6(o.into())),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(|v| TypedData::String(v.into())),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(|v| TypedData::Binary(v.into())),
        ]
    }

    fn enc(d: &TypedData) -> Vec<u8> {
        let mut v = Vec::new();
        d.encode(&mut v);
        v
    }

    #[test]
    fn bool_lives_in_the_flag_bit() {
        assert_eq!(enc(&TypedData::Bool(true)), [0x11]);
        assert_eq!(enc(&TypedData::Bool(false)), [0x01]);
    }

    #[test]
    fn negative_ints_are_twos_complement_varints() {
        let bytes = enc(&TypedData::Int64(-1));
        assert_eq!(bytes.len(), 11);
        assert_eq!(bytes[0], ty::INT64);
        let bytes = enc(&TypedData::Int32(-1));
        assert_eq!(TypedData::decode(&mut Bytes::from(bytes)).unwrap(), TypedData::Int32(-1));
    }

    #[test]
    fn addresses_and_strings() {
        let ip = TypedData::Ipv4(Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(enc(&ip), [6, 127, 0, 0, 1]);
        assert_eq!(enc(&TypedData::string("2.0")), [8, 3, b'2', b'.', b'0']);
        let v6 = TypedData::Ipv6(Ipv6Addr::LOCALHOST);
        assert_eq!(TypedData::decode(&mut Bytes::from(enc(&v6))).unwrap(), v6);
    }

    #[test]
    fn hostile_lengths_are_errors() {
        // a string claiming 16380 bytes with 2 present
        let mut b = Bytes::from_static(&[8, 0xfc, 0xf0, 0x06, b'a', b'b']);
        assert_eq!(TypedData::decode(&mut b), Err(DecodeError::UnexpectedEnd("string")));
        let mut b = Bytes::from_static(&[0x0a]);
        assert_eq!(TypedData::decode(&mut b), Err(DecodeError::UnknownDataType(10)));
        let mut b = Bytes::from_static(&[3, 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0x0e]);
        assert!(matches!(TypedData::decode(&mut b), Err(DecodeError::IntOutOfRange { .. })));
    }

    proptest! {
        #[test]
        fn round_trip(d in arb_typed()) {
            let bytes = enc(&d);
            prop_assert_eq!(bytes.len(), d.encoded_len());
            let mut b = Bytes::from(bytes);
            prop_assert_eq!(TypedData::decode(&mut b).unwrap(), d);
            prop_assert!(b.is_empty());
        }
    }
}
