//! HELLO and DISCONNECT payloads (SPOE.txt §3.2.4–3.2.6) and the negotiation rules.

use crate::data::TypedData;
use crate::error::DecodeError;
use crate::frame::MIN_FRAME_SIZE;
use crate::message::{decode_kv_list, encode_kv_list, Arg};
use crate::status::StatusCode;
use bytes::{BufMut, Bytes};
use std::fmt;

/// The only SPOP version any peer speaks.
pub const VERSION: &str = "2.0";

/// SPOP capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities {
    pub pipelining: bool,
    pub async_: bool,
    pub fragmentation: bool,
}

impl Capabilities {
    pub const NONE: Capabilities = Capabilities { pipelining: false, async_: false, fragmentation: false };
    pub const ALL: Capabilities = Capabilities { pipelining: true, async_: true, fragmentation: true };

    /// Parses HAProxy's comma/space separated list; unknown names are ignored, as HAProxy does.
    pub fn parse(s: &[u8]) -> Self {
        let mut caps = Capabilities::NONE;
        for word in s.split(|b| *b == b',' || b.is_ascii_whitespace()) {
            match word {
                b"pipelining" => caps.pipelining = true,
                b"async" => caps.async_ = true,
                b"fragmentation" => caps.fragmentation = true,
                _ => {}
            }
        }
        caps
    }

    /// Both sides support it.
    pub fn intersect(self, other: Capabilities) -> Capabilities {
        Capabilities {
            pipelining: self.pipelining && other.pipelining,
            async_: self.async_ && other.async_,
            fragmentation: self.fragmentation && other.fragmentation,
        }
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [(self.pipelining, "pipelining"), (self.async_, "async"), (self.fragmentation, "fragmentation")];
        let mut first = true;
        for (on, name) in names {
            if on {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// max-frame-size as HAProxy writes it (UINT32), widened to UINT64 only when it does not fit, so that
/// whatever was decoded encodes back unchanged.
fn frame_size_value(m: u64) -> TypedData {
    match u32::try_from(m) {
        Ok(v) => TypedData::Uint32(v),
        Err(_) => TypedData::Uint64(m),
    }
}

/// HAPROXY-HELLO as received. Every key is optional on the wire; [`HaproxyHello::validate`] applies the
/// spec's requirements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HaproxyHello {
    pub supported_versions: Option<Bytes>,
    pub max_frame_size: Option<u64>,
    pub capabilities: Capabilities,
    pub healthcheck: bool,
    pub engine_id: Option<Bytes>,
    /// Keys this implementation does not know, kept as sent.
    pub unknown: Vec<Arg>,
}

impl HaproxyHello {
    pub fn decode(payload: Bytes) -> Result<Self, DecodeError> {
        let mut hello = HaproxyHello::default();
        for item in decode_kv_list(payload)? {
            match (&item.name[..], &item.value) {
                (b"supported-versions", TypedData::String(s)) => hello.supported_versions = Some(s.clone()),
                (b"max-frame-size", v) if v.as_int().is_some() => {
                    hello.max_frame_size = v.as_int().and_then(|i| u64::try_from(i).ok())
                }
                (b"capabilities", TypedData::String(s)) => hello.capabilities = Capabilities::parse(s),
                (b"healthcheck", TypedData::Bool(b)) => hello.healthcheck = *b,
                (b"engine-id", TypedData::String(s)) => hello.engine_id = Some(s.clone()),
                _ => hello.unknown.push(item),
            }
        }
        Ok(hello)
    }

    /// The KV list HAProxy sends, in HAProxy's key order.
    pub fn encode(&self, out: &mut impl BufMut) {
        let mut items = Vec::with_capacity(5);
        if let Some(v) = &self.supported_versions {
            items.push(Arg::new("supported-versions", TypedData::String(v.clone())));
        }
        if let Some(m) = self.max_frame_size {
            items.push(Arg::new("max-frame-size", frame_size_value(m)));
        }
        items.push(Arg::new("capabilities", TypedData::string(self.capabilities.to_string())));
        if self.healthcheck {
            items.push(Arg::new("healthcheck", TypedData::Bool(true)));
        }
        if let Some(e) = &self.engine_id {
            items.push(Arg::new("engine-id", TypedData::String(e.clone())));
        }
        items.extend(self.unknown.iter().cloned());
        encode_kv_list(&items, out);
    }

    /// Checks the hello as an agent must and returns the negotiated parameters, or the status code to
    /// disconnect with. Never requires a capability or an engine-id (health checks send neither).
    pub fn negotiate(&self, our_max_frame_size: u32, our_caps: Capabilities) -> Result<Negotiated, StatusCode> {
        let versions = self.supported_versions.as_ref().ok_or(StatusCode::NoVersion)?;
        if !supports_version_2_0(versions) {
            return Err(StatusCode::BadVersion);
        }
        let theirs = self.max_frame_size.ok_or(StatusCode::NoFrameSize)?;
        if theirs < MIN_FRAME_SIZE as u64 {
            return Err(StatusCode::BadFrameSize);
        }
        let max_frame_size = (our_max_frame_size.max(MIN_FRAME_SIZE) as u64).min(theirs) as u32;
        // pipelining and async need both sides. `fragmentation` is different: it says the agent can
        // *receive* fragmented frames, and HAProxy never announces it (it never receives fragments,
        // haproxy #659), so an agent that supports it announces it regardless; HAProxy ANDs it with
        // its own config.
        let capabilities =
            Capabilities { fragmentation: our_caps.fragmentation, ..our_caps.intersect(self.capabilities) };
        Ok(Negotiated { max_frame_size, capabilities })
    }
}

/// Whether a `supported-versions` list contains 2.0, read the way HAProxy reads versions ("M.m",
/// trailing text ignored), comma or space separated.
fn supports_version_2_0(list: &[u8]) -> bool {
    list.split(|b| *b == b',' || b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .any(|w| parse_version(w) == Some(2000))
}

/// "M.m" → M*1000 + m, as HAProxy's `spoe_str_to_vsn`.
fn parse_version(s: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(s).ok()?;
    let (major, minor) = text.split_once('.')?;
    let minor: String = minor.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major: u32 = major.parse().ok()?;
    let minor: u32 = minor.parse().ok()?;
    if minor >= 1000 {
        return None;
    }
    major.checked_mul(1000)?.checked_add(minor)
}

/// What both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub max_frame_size: u32,
    pub capabilities: Capabilities,
}

/// AGENT-HELLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentHello {
    pub version: Bytes,
    pub max_frame_size: Option<u64>,
    pub capabilities: Capabilities,
    pub unknown: Vec<Arg>,
}

impl AgentHello {
    /// The hello an agent sends after negotiation.
    pub fn from_negotiated(n: Negotiated) -> Self {
        AgentHello {
            version: Bytes::from_static(VERSION.as_bytes()),
            max_frame_size: Some(n.max_frame_size as u64),
            capabilities: n.capabilities,
            unknown: Vec::new(),
        }
    }

    pub fn encode(&self, out: &mut impl BufMut) {
        let mut items = vec![Arg::new("version", TypedData::String(self.version.clone()))];
        if let Some(m) = self.max_frame_size {
            items.push(Arg::new("max-frame-size", frame_size_value(m)));
        }
        items.push(Arg::new("capabilities", TypedData::string(self.capabilities.to_string())));
        items.extend(self.unknown.iter().cloned());
        encode_kv_list(&items, out);
    }

    pub fn decode(payload: Bytes) -> Result<Self, DecodeError> {
        let mut version = None;
        let mut max_frame_size = None;
        let mut capabilities = Capabilities::NONE;
        let mut unknown = Vec::new();
        for item in decode_kv_list(payload)? {
            match (&item.name[..], &item.value) {
                (b"version", TypedData::String(s)) => version = Some(s.clone()),
                (b"max-frame-size", v) if v.as_int().is_some() => {
                    max_frame_size = v.as_int().and_then(|i| u64::try_from(i).ok())
                }
                (b"capabilities", TypedData::String(s)) => capabilities = Capabilities::parse(s),
                _ => unknown.push(item),
            }
        }
        Ok(AgentHello { version: version.unwrap_or_default(), max_frame_size, capabilities, unknown })
    }

    /// Checks the hello as HAProxy does (`spoe_handle_agenthello_frame`) and returns the negotiated
    /// parameters. `modern` follows HAProxy ≥ 3.1, where max-frame-size is optional. `our_caps` are
    /// what the engine can do: with `fragmentation` in it, the engine may send fragments when the
    /// agent announced it can receive them.
    pub fn check(
        &self,
        our_max_frame_size: u32,
        our_caps: Capabilities,
        modern: bool,
    ) -> Result<Negotiated, StatusCode> {
        if self.version.is_empty() {
            return Err(StatusCode::NoVersion);
        }
        if parse_version(&self.version) != Some(2000) {
            return Err(StatusCode::BadVersion);
        }
        let max_frame_size = match self.max_frame_size {
            Some(m) if m < MIN_FRAME_SIZE as u64 || m > our_max_frame_size as u64 => {
                return Err(StatusCode::BadFrameSize)
            }
            Some(m) => m as u32,
            None if modern => our_max_frame_size,
            None => return Err(StatusCode::NoFrameSize),
        };
        Ok(Negotiated { max_frame_size, capabilities: our_caps.intersect(self.capabilities) })
    }
}

/// HAPROXY-DISCONNECT / AGENT-DISCONNECT payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    pub status: StatusCode,
    pub message: Bytes,
}

impl Disconnect {
    pub fn new(status: StatusCode, message: impl Into<Bytes>) -> Self {
        Disconnect { status, message: message.into() }
    }

    /// With HAProxy's own message for the code.
    pub fn with_reason(status: StatusCode) -> Self {
        Disconnect::new(status, Bytes::from_static(status.reason().as_bytes()))
    }

    pub fn encode(&self, out: &mut impl BufMut) {
        encode_kv_list(
            &[
                Arg::new("status-code", TypedData::Uint32(self.status.code())),
                Arg::new("message", TypedData::String(self.message.clone())),
            ],
            out,
        );
    }

    /// Appends a whole DISCONNECT frame of `frame_type` (HAPROXY- or AGENT-DISCONNECT), FIN set.
    pub fn encode_frame(&self, frame_type: crate::FrameType, out: &mut bytes::BytesMut) {
        crate::frame::encode_with(out, crate::FrameHeader::new(frame_type, crate::Flags::FIN, 0, 0), |o| {
            self.encode(o)
        });
    }

    /// Missing keys read as status 99 and an empty message rather than failing: a peer that is leaving
    /// is leaving either way.
    pub fn decode(payload: Bytes) -> Result<Self, DecodeError> {
        let mut d = Disconnect::new(StatusCode::Unknown, Bytes::new());
        for item in decode_kv_list(payload)? {
            match (&item.name[..], &item.value) {
                (b"status-code", v) => {
                    if let Some(c) = v.as_int().and_then(|i| u32::try_from(i).ok()) {
                        d.status = StatusCode::from_u32(c);
                    }
                }
                (b"message", TypedData::String(s)) => d.message = s.clone(),
                _ => {}
            }
        }
        Ok(d)
    }

    pub fn message_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{encode_with, Flags, FrameHeader, FrameType};
    use bytes::BytesMut;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The health-check hello captured from HAProxy 2.6 (notes §3.1), frame body without the length.
    const HEALTHCHECK_BODY: &str = "0100000001000012737570706f727465642d76657273696f6e730803322e300e6d61782d6672616d652d73697a6503fcf0060c6361706162696c697469657308000b6865616c7468636865636b11";

    #[test]
    fn captured_healthcheck_hello_decodes_and_reencodes() {
        let body = unhex(HEALTHCHECK_BODY);
        assert_eq!(body.len(), 0x4e);
        let frame = crate::frame::Frame::parse(Bytes::from(body.clone())).unwrap();
        assert_eq!(frame.header.frame_type, FrameType::HaproxyHello);
        assert!(frame.header.flags.fin());
        let hello = HaproxyHello::decode(frame.payload.clone()).unwrap();
        assert!(hello.healthcheck);
        assert_eq!(hello.max_frame_size, Some(16380));
        assert_eq!(hello.capabilities, Capabilities::NONE);
        assert_eq!(hello.engine_id, None);
        let n = hello.negotiate(16380, Capabilities::ALL).unwrap();
        // Nothing in common but fragmentation, which the agent announces on its own.
        assert_eq!(n.capabilities, Capabilities { fragmentation: true, ..Capabilities::NONE });
        let mut out = BytesMut::new();
        encode_with(&mut out, frame.header, |o| hello.encode(o));
        assert_eq!(&out[4..], &body[..]);
    }

    #[test]
    fn agent_hello_vector_from_the_notes() {
        let mut out = BytesMut::new();
        let hello = AgentHello::from_negotiated(Negotiated {
            max_frame_size: 16380,
            capabilities: Capabilities { pipelining: true, ..Capabilities::NONE },
        });
        encode_with(&mut out, FrameHeader::new(FrameType::AgentHello, Flags::FIN, 0, 0), |o| hello.encode(o));
        let expected = unhex("00000040650000000100000776657273696f6e0803322e300e6d61782d6672616d652d73697a6503fcf0060c6361706162696c6974696573080a706970656c696e696e67");
        assert_eq!(&out[..], &expected[..]);
    }

    #[test]
    fn disconnect_vector_from_the_notes() {
        let mut out = BytesMut::new();
        encode_with(&mut out, FrameHeader::new(FrameType::AgentDisconnect, Flags::FIN, 0, 0), |o| {
            Disconnect::with_reason(StatusCode::Normal).encode(o)
        });
        let expected = unhex("00000025660000000100000b7374617475732d636f64650300076d65737361676508066e6f726d616c");
        assert_eq!(&out[..], &expected[..]);
    }

    #[test]
    fn negotiation_rules() {
        let mut h = HaproxyHello {
            supported_versions: Some(Bytes::from_static(b"2.0")),
            max_frame_size: Some(16380),
            capabilities: Capabilities::parse(b"pipelining,async"),
            ..Default::default()
        };
        let n = h.negotiate(1 << 20, Capabilities::ALL).unwrap();
        assert_eq!(n.max_frame_size, 16380);
        assert_eq!(n.capabilities, Capabilities::ALL);
        let without = Capabilities { fragmentation: false, ..Capabilities::ALL };
        assert_eq!(h.negotiate(16380, without).unwrap().capabilities, without);
        assert_eq!(h.negotiate(100, Capabilities::ALL).unwrap().max_frame_size, 256);
        h.max_frame_size = Some(255);
        assert_eq!(h.negotiate(16380, Capabilities::ALL), Err(StatusCode::BadFrameSize));
        h.max_frame_size = None;
        assert_eq!(h.negotiate(16380, Capabilities::ALL), Err(StatusCode::NoFrameSize));
        h.supported_versions = Some(Bytes::from_static(b"1.0, 3.0"));
        assert_eq!(h.negotiate(16380, Capabilities::ALL), Err(StatusCode::BadVersion));
        h.supported_versions = None;
        assert_eq!(h.negotiate(16380, Capabilities::ALL), Err(StatusCode::NoVersion));
        assert!(supports_version_2_0(b"1.0, 2.0"));
    }

    #[test]
    fn haproxy_side_checks_of_agent_hello() {
        let mut a = AgentHello::from_negotiated(Negotiated { max_frame_size: 16380, capabilities: Capabilities::ALL });
        assert!(a.check(16380, Capabilities::ALL, false).is_ok());
        assert_eq!(a.check(1000, Capabilities::ALL, false), Err(StatusCode::BadFrameSize));
        a.max_frame_size = None;
        assert_eq!(a.check(16380, Capabilities::ALL, false), Err(StatusCode::NoFrameSize));
        assert_eq!(a.check(16380, Capabilities::ALL, true).unwrap().max_frame_size, 16380);
        a.version = Bytes::from_static(b"2.1");
        assert_eq!(a.check(16380, Capabilities::ALL, false), Err(StatusCode::BadVersion));
    }
}
