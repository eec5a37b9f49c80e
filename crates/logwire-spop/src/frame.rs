//! Frames (SPOE.txt §3.2): `<len:u32 BE><type:u8><flags:u32 BE><stream-id:varint><frame-id:varint><payload>`.
//!
//! [`FrameCodec`] splits a byte stream into [`Frame`]s without copying the payload, checking the length
//! against the negotiated max-frame-size *before* buffering it. It works on any `BytesMut`; with the
//! `tokio` feature it is also a `tokio_util::codec` `Decoder`/`Encoder`.

use crate::error::DecodeError;
use crate::varint;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Frame types. Unknown types are kept so that a receiver can skip them, as the spec asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// Type 0: continuation of a fragmented frame (HAProxy ≤ 3.0).
    Unset,
    HaproxyHello,
    HaproxyDisconnect,
    Notify,
    AgentHello,
    AgentDisconnect,
    Ack,
    Other(u8),
}

impl FrameType {
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => FrameType::Unset,
            1 => FrameType::HaproxyHello,
            2 => FrameType::HaproxyDisconnect,
            3 => FrameType::Notify,
            101 => FrameType::AgentHello,
            102 => FrameType::AgentDisconnect,
            103 => FrameType::Ack,
            other => FrameType::Other(other),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            FrameType::Unset => 0,
            FrameType::HaproxyHello => 1,
            FrameType::HaproxyDisconnect => 2,
            FrameType::Notify => 3,
            FrameType::AgentHello => 101,
            FrameType::AgentDisconnect => 102,
            FrameType::Ack => 103,
            FrameType::Other(v) => v,
        }
    }
}

/// Frame flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u32);

impl Flags {
    pub const FIN: Flags = Flags(0x1);
    pub const ABORT: Flags = Flags(0x2);
    pub const NONE: Flags = Flags(0);

    pub fn fin(self) -> bool {
        self.0 & Self::FIN.0 != 0
    }

    pub fn abort(self) -> bool {
        self.0 & Self::ABORT.0 != 0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// Everything before the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    pub frame_type: FrameType,
    pub flags: Flags,
    pub stream_id: u64,
    pub frame_id: u64,
}

impl FrameHeader {
    pub fn new(frame_type: FrameType, flags: Flags, stream_id: u64, frame_id: u64) -> Self {
        FrameHeader { frame_type, flags, stream_id, frame_id }
    }

    /// Bytes of the header without the 4-byte length.
    pub fn encoded_len(&self) -> usize {
        5 + varint::encoded_len(self.stream_id) + varint::encoded_len(self.frame_id)
    }
}

/// One frame, with the payload still encoded (decode it with `hello`, `message` … as its type says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: FrameHeader,
    pub payload: Bytes,
}

impl Frame {
    /// Parses a frame body (everything after the 4-byte length).
    pub fn parse(mut body: Bytes) -> Result<Frame, DecodeError> {
        if body.remaining() < 5 {
            return Err(DecodeError::UnexpectedEnd("frame header"));
        }
        let frame_type = FrameType::from_u8(body.get_u8());
        let flags = Flags(body.get_u32());
        let (stream_id, n) = varint::decode(&body)?;
        body.advance(n);
        let (frame_id, n) = varint::decode(&body)?;
        body.advance(n);
        Ok(Frame { header: FrameHeader { frame_type, flags, stream_id, frame_id }, payload: body })
    }

    /// Appends the frame, length prefix included, in one contiguous piece.
    pub fn encode(&self, out: &mut BytesMut) {
        encode_with(out, self.header, |o| o.put_slice(&self.payload));
    }
}

/// Appends one frame whose payload `write_payload` produces. The length is patched in afterwards so the
/// payload is written once, straight into `out`.
pub fn encode_with(out: &mut BytesMut, header: FrameHeader, write_payload: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_u8(header.frame_type.as_u8());
    out.put_u32(header.flags.0);
    varint::encode(header.stream_id, out);
    varint::encode(header.frame_id, out);
    write_payload(out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Length-checked framing of a byte stream.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame_size: u32,
}

/// The smallest max-frame-size SPOP allows.
pub const MIN_FRAME_SIZE: u32 = 256;
/// HAProxy's default (`tune.bufsize` − 4).
pub const DEFAULT_FRAME_SIZE: u32 = 16380;

/// The most [`FrameCodec::decode_frame`] reserves for a partial frame in one call; bigger frames grow
/// the buffer as their bytes arrive.
const MAX_RESERVE: usize = 64 * 1024;

impl FrameCodec {
    /// A codec that refuses frames longer than `max_frame_size` (the length prefix not counted).
    pub fn new(max_frame_size: u32) -> Self {
        FrameCodec { max_frame_size }
    }

    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// Applies the max-frame-size negotiated in HELLO.
    pub fn set_max_frame_size(&mut self, max: u32) {
        self.max_frame_size = max;
    }

    /// Splits off the next complete frame, `Ok(None)` when more bytes are needed. A length above the
    /// limit fails before the frame is buffered (status 3); a zero-length frame is invalid (status 4).
    pub fn decode_frame(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if len > self.max_frame_size {
            return Err(DecodeError::TooLong { what: "frame", len: len as u64, max: self.max_frame_size as u64 });
        }
        if len < 7 {
            return Err(DecodeError::Invalid("frame shorter than its header"));
        }
        let total = 4 + len as usize;
        if src.len() < total {
            // Room for the rest of the frame, but never more than MAX_RESERVE at once: a length is a
            // claim, not bytes, and the limit may be huge (`u32::MAX` when reading a peer's last frames).
            src.reserve((total - src.len()).min(MAX_RESERVE));
            return Ok(None);
        }
        let mut body = src.split_to(total);
        body.advance(4);
        Frame::parse(body.freeze()).map(Some)
    }
}

#[cfg(feature = "tokio")]
impl tokio_util::codec::Decoder for FrameCodec {
    type Item = Frame;
    type Error = crate::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, crate::Error> {
        Ok(self.decode_frame(src)?)
    }
}

#[cfg(feature = "tokio")]
impl tokio_util::codec::Encoder<Frame> for FrameCodec {
    type Error = crate::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), crate::Error> {
        let len = frame.header.encoded_len() + frame.payload.len();
        if len > self.max_frame_size as usize {
            return Err(DecodeError::TooLong { what: "frame", len: len as u64, max: self.max_frame_size as u64 }.into());
        }
        frame.encode(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_split_input() {
        let frame = Frame {
            header: FrameHeader::new(FrameType::Notify, Flags::FIN, 0, 1),
            payload: Bytes::from_static(b"\x05hello\x00"),
        };
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        let bytes = out.freeze();
        let mut codec = FrameCodec::new(DEFAULT_FRAME_SIZE);
        // Feed byte by byte: None until the last byte, then the frame.
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            buf.put_u8(*b);
            let got = codec.decode_frame(&mut buf).unwrap();
            if i + 1 < bytes.len() {
                assert!(got.is_none());
            } else {
                assert_eq!(got.unwrap(), frame);
            }
        }
    }

    #[test]
    fn too_big_and_zero_length() {
        let mut codec = FrameCodec::new(300);
        let mut buf = BytesMut::from(&[0u8, 0, 1, 45][..]);
        let err = codec.decode_frame(&mut buf).unwrap_err();
        assert_eq!(err.status(), crate::StatusCode::TooBig);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert_eq!(codec.decode_frame(&mut buf).unwrap_err().status(), crate::StatusCode::Invalid);
    }

    #[test]
    fn announced_length_is_not_allocated_up_front() {
        // Found by fuzz/spop_frame (5 bytes): without a frame-size limit, as `Client::close` reads, a
        // header announcing 0x8c0a0000 bytes (2.3 GB) made decode_frame reserve all of it at once.
        let mut codec = FrameCodec::new(u32::MAX);
        let mut buf = BytesMut::from(&[0x8c, 0x0a, 0x00, 0x00][..]);
        assert_eq!(codec.decode_frame(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= 2 * MAX_RESERVE, "reserved {} bytes", buf.capacity());
        // A frame bigger than one reservation still decodes once all of it is there.
        let frame = Frame {
            header: FrameHeader::new(FrameType::Notify, Flags::FIN, 1, 1),
            payload: Bytes::from(vec![7u8; 3 * MAX_RESERVE]),
        };
        let mut whole = BytesMut::new();
        frame.encode(&mut whole);
        let mut buf = BytesMut::new();
        let mut got = None;
        for chunk in whole.chunks(10_000) {
            buf.put_slice(chunk);
            if let Some(f) = codec.decode_frame(&mut buf).unwrap() {
                got = Some(f);
            }
        }
        assert_eq!(got, Some(frame));
    }

    #[test]
    fn unknown_types_are_kept() {
        let mut out = BytesMut::new();
        encode_with(&mut out, FrameHeader::new(FrameType::Other(42), Flags::FIN, 7, 9), |o| o.put_slice(b"xyz"));
        let f = FrameCodec::new(1000).decode_frame(&mut out).unwrap().unwrap();
        assert_eq!(f.header.frame_type, FrameType::Other(42));
        assert_eq!(&f.payload[..], b"xyz");
    }
}
