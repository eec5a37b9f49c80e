//! fluentd's Forward protocol v1 (server side, sans-IO): Message, Forward, PackedForward and
//! CompressedPackedForward modes, EventTime (ext type 0), the `chunk` option that asks for an ack.
//!
//! g3proxy itself only sends Message mode without `chunk` (`lib/g3-fluentd/src/format.rs`), but anything
//! that relays its records (fluent-bit, fluentd, Vector) uses the other modes.
//!
//! Safety: [`scan_value`] walks the msgpack structure first, checking every declared length against the
//! bytes present and the message limit and bounding the nesting depth, so that `rmpv` only ever decodes a
//! complete, plausible value: no allocation is sized by an unchecked length, no recursion is unbounded.

use crate::error::DecodeError;
use crate::log::{EventTime, G3Log, Origin};
use crate::schema::WireValue;
use bytes::{Buf, BytesMut};
use rmpv::Value as Mp;
use std::borrow::Cow;
use std::io::Read;

/// Largest forward message (one msgpack value) accepted: 16 MiB.
pub const MAX_MESSAGE_LEN: usize = 16 << 20;
/// Largest decompressed size of one CompressedPackedForward entries blob: 64 MiB.
pub const MAX_DECOMPRESSED_LEN: usize = 64 << 20;
/// Deepest msgpack nesting accepted (g3proxy's records are 3 deep).
pub const MAX_DEPTH: usize = 32;

/// One decoded forward message: its events and what the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum ForwardMessage {
    /// Events of one tag, and the `chunk` id to acknowledge, if the client sent one.
    Events { tag: String, events: Vec<(EventTime, Mp)>, chunk: Option<String> },
    /// A top-level `nil`: some clients send it as a keepalive.
    Heartbeat,
    /// `["PING", …]` of the shared_key handshake (not supported: see the crate docs).
    Ping,
}

/// Length of the complete msgpack value at the start of `buf`, `None` if more bytes are needed.
pub fn scan_value(buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    let too_large = |len| DecodeError::TooLarge { len, limit: max_len };
    // Items still to read at each open container level.
    let mut stack: Vec<u64> = Vec::with_capacity(8);
    let mut pos = 0usize;
    let mut remaining: u64 = 1;
    loop {
        while remaining == 0 {
            match stack.pop() {
                Some(r) => remaining = r,
                None => return Ok(Some(pos)),
            }
        }
        remaining -= 1;
        let Some(&m) = buf.get(pos) else { return check_need(pos, max_len) };
        let be = |n: usize| -> Option<u64> {
            buf.get(pos + 1..pos + 1 + n).map(|b| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
        };
        // (bytes of this item before any child, children count)
        let (skip, children): (u64, u64) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, 0),
            0x80..=0x8f => (1, 2 * u64::from(m & 0x0f)),
            0x90..=0x9f => (1, u64::from(m & 0x0f)),
            0xa0..=0xbf => (1 + u64::from(m & 0x1f), 0),
            0xc4 | 0xd9 => match be(1) {
                Some(n) => (2 + n, 0),
                None => return check_need(pos, max_len),
            },
            0xc5 | 0xda => match be(2) {
                Some(n) => (3 + n, 0),
                None => return check_need(pos, max_len),
            },
            0xc6 | 0xdb => match be(4) {
                Some(n) => (5 + n, 0),
                None => return check_need(pos, max_len),
            },
            0xc7 => match be(1) {
                Some(n) => (3 + n, 0),
                None => return check_need(pos, max_len),
            },
            0xc8 => match be(2) {
                Some(n) => (4 + n, 0),
                None => return check_need(pos, max_len),
            },
            0xc9 => match be(4) {
                Some(n) => (6 + n, 0),
                None => return check_need(pos, max_len),
            },
            0xca | 0xce | 0xd2 => (5, 0),
            0xcb | 0xcf | 0xd3 => (9, 0),
            0xcc | 0xd0 => (2, 0),
            0xcd | 0xd1 => (3, 0),
            0xd4 => (3, 0),
            0xd5 => (4, 0),
            0xd6 => (6, 0),
            0xd7 => (10, 0),
            0xd8 => (18, 0),
            0xdc => match be(2) {
                Some(n) => (3, n),
                None => return check_need(pos, max_len),
            },
            0xdd => match be(4) {
                Some(n) => (5, n),
                None => return check_need(pos, max_len),
            },
            0xde => match be(2) {
                Some(n) => (3, 2 * n),
                None => return check_need(pos, max_len),
            },
            0xdf => match be(4) {
                Some(n) => (5, 2 * n),
                None => return check_need(pos, max_len),
            },
            0xc1 => return Err(DecodeError::Msgpack("reserved marker 0xc1")),
        };
        let end = (pos as u64).saturating_add(skip);
        // Every child takes at least one byte, so more children than bytes left cannot fit.
        if end.saturating_add(children) > max_len as u64 {
            return Err(too_large(usize::try_from(end.saturating_add(children)).unwrap_or(usize::MAX)));
        }
        pos = end as usize;
        if pos > buf.len() {
            return Ok(None);
        }
        if children > 0 {
            if stack.len() >= MAX_DEPTH {
                return Err(DecodeError::Msgpack("nested deeper than 32"));
            }
            stack.push(remaining);
            remaining = children;
        }
    }
}

fn check_need(pos: usize, max_len: usize) -> Result<Option<usize>, DecodeError> {
    if pos >= max_len {
        Err(DecodeError::TooLarge { len: pos + 1, limit: max_len })
    } else {
        Ok(None)
    }
}

/// Splits a forward TCP stream into messages.
#[derive(Debug, Clone)]
pub struct ForwardDecoder {
    max_len: usize,
}

impl Default for ForwardDecoder {
    fn default() -> Self {
        ForwardDecoder { max_len: MAX_MESSAGE_LEN }
    }
}

impl ForwardDecoder {
    pub fn with_max_len(max_len: usize) -> Self {
        ForwardDecoder { max_len }
    }

    /// The next message, `None` when more bytes are needed. An error ends the connection (the stream
    /// cannot be resynchronised).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ForwardMessage>, DecodeError> {
        let Some(len) = scan_value(buf, self.max_len)? else { return Ok(None) };
        let value = rmpv::decode::read_value(&mut &buf[..len]).map_err(|_| DecodeError::Msgpack("bad value"))?;
        buf.advance(len);
        parse_message(value).map(Some)
    }
}

fn forward_err(what: impl Into<String>) -> DecodeError {
    DecodeError::Forward(what.into())
}

fn mp_str(v: &Mp) -> Option<&str> {
    match v {
        Mp::String(s) => s.as_str(),
        Mp::Binary(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// EventTime (ext 0: u32 s + u32 ns, big endian), an integer, or a float.
pub fn event_time(v: &Mp) -> Option<EventTime> {
    match v {
        Mp::Ext(0, data) if data.len() == 8 => Some(EventTime {
            secs: u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
            nanos: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        }),
        Mp::Integer(i) => i.as_u64().and_then(|s| u32::try_from(s).ok()).map(|secs| EventTime { secs, nanos: 0 }),
        Mp::F64(f) if *f >= 0.0 && *f < 4_294_967_296.0 => {
            Some(EventTime { secs: f.trunc() as u32, nanos: (f.fract() * 1e9) as u32 })
        }
        _ => None,
    }
}

/// One forward message (already a msgpack value) → its events.
pub fn parse_message(value: Mp) -> Result<ForwardMessage, DecodeError> {
    let items = match value {
        Mp::Nil => return Ok(ForwardMessage::Heartbeat),
        Mp::Array(items) => items,
        _ => return Err(forward_err("a message must be an array")),
    };
    let mut items = items.into_iter();
    let tag = items.next().ok_or_else(|| forward_err("empty array"))?;
    let tag = mp_str(&tag).ok_or_else(|| forward_err("tag is not a string"))?.to_string();
    if tag == "PING" {
        return Ok(ForwardMessage::Ping);
    }
    let second = items.next().ok_or_else(|| forward_err("no time or entries after the tag"))?;
    let rest: Vec<Mp> = items.collect();
    let option_of = |v: Option<&Mp>| -> Result<(Option<String>, bool), DecodeError> {
        match v {
            None | Some(Mp::Nil) => Ok((None, false)),
            Some(Mp::Map(pairs)) => {
                let mut chunk = None;
                let mut gzip = false;
                for (k, v) in pairs {
                    match mp_str(k) {
                        Some("chunk") => chunk = mp_str(v).map(str::to_string),
                        Some("compressed") => {
                            gzip = match mp_str(v) {
                                Some("gzip") => true,
                                Some("text") | None => false,
                                Some(_) => return Err(forward_err("unknown `compressed` option")),
                            }
                        }
                        _ => {}
                    }
                }
                Ok((chunk, gzip))
            }
            Some(_) => Err(forward_err("option is not a map")),
        }
    };
    let mut events = Vec::new();
    let chunk;
    match second {
        // Message mode: [tag, time, record, option?]
        t @ (Mp::Ext(..) | Mp::Integer(_) | Mp::F64(_) | Mp::F32(_)) => {
            let time = event_time(&t).ok_or_else(|| forward_err("bad event time"))?;
            let mut rest = rest.into_iter();
            let record = rest.next().ok_or_else(|| forward_err("no record"))?;
            let opt = rest.next();
            chunk = option_of(opt.as_ref())?.0;
            events.push((time, record));
        }
        // Forward mode: [tag, [[time, record], …], option?]
        Mp::Array(entries) => {
            chunk = option_of(rest.first())?.0;
            for entry in entries {
                events.push(entry_of(entry)?);
            }
        }
        // PackedForward / CompressedPackedForward: [tag, bin(entries…), option?]
        packed @ (Mp::Binary(_) | Mp::String(_)) => {
            let (c, gzip) = option_of(rest.first())?;
            chunk = c;
            let bytes: Vec<u8> = match packed {
                Mp::Binary(b) => b,
                Mp::String(s) => s.into_bytes(),
                _ => Vec::new(),
            };
            let bytes = if gzip { gunzip(&bytes)? } else { bytes };
            let mut at = 0;
            while at < bytes.len() {
                let len = scan_value(&bytes[at..], bytes.len() - at)?
                    .ok_or_else(|| forward_err("packed entries end inside an entry"))?;
                let entry = rmpv::decode::read_value(&mut &bytes[at..at + len])
                    .map_err(|_| DecodeError::Msgpack("bad packed entry"))?;
                events.push(entry_of(entry)?);
                at += len;
            }
        }
        _ => return Err(forward_err("second element is neither a time nor entries")),
    }
    Ok(ForwardMessage::Events { tag, events, chunk })
}

fn entry_of(entry: Mp) -> Result<(EventTime, Mp), DecodeError> {
    match entry {
        Mp::Array(mut pair) if pair.len() == 2 => {
            let record = pair.pop().unwrap_or(Mp::Nil);
            let time = event_time(&pair[0]).ok_or_else(|| forward_err("bad event time in an entry"))?;
            Ok((time, record))
        }
        _ => Err(forward_err("an entry must be [time, record]")),
    }
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(MAX_DECOMPRESSED_LEN as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Gzip(e.to_string()))?;
    if out.len() > MAX_DECOMPRESSED_LEN {
        return Err(DecodeError::TooLarge { len: out.len(), limit: MAX_DECOMPRESSED_LEN });
    }
    Ok(out)
}

fn wire_of(v: &Mp) -> WireValue<'_> {
    match v {
        Mp::Nil => WireValue::Null,
        Mp::Boolean(b) => WireValue::Bool(*b),
        Mp::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => WireValue::UInt(u),
            (None, Some(i)) => WireValue::Int(i),
            _ => WireValue::Null,
        },
        Mp::F32(f) => WireValue::Float(f64::from(*f)),
        Mp::F64(f) => WireValue::Float(*f),
        Mp::String(s) => match s.as_str() {
            Some(s) => WireValue::Str(Cow::Borrowed(s)),
            None => WireValue::Str(String::from_utf8_lossy(s.as_bytes())),
        },
        Mp::Binary(b) => WireValue::Str(String::from_utf8_lossy(b)),
        Mp::Array(_) | Mp::Map(_) | Mp::Ext(..) => WireValue::Str(Cow::Owned(v.to_string())),
    }
}

/// One event's record (a msgpack map) → a [`G3Log`]; `msg` becomes the message.
pub fn event_to_log(tag: &str, time: EventTime, record: &Mp) -> Result<G3Log, DecodeError> {
    let Mp::Map(pairs) = record else { return Err(forward_err("record is not a map")) };
    let mut msg = String::new();
    let mut wire = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let key = mp_str(k).ok_or_else(|| forward_err("record key is not a string"))?;
        if key == "msg" {
            // Always the message, even when it is not valid UTF-8 text (found by fuzzing: kept as a field it
            // came back as a second `msg` key).
            msg = match v {
                Mp::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                Mp::Binary(b) => String::from_utf8_lossy(b).into_owned(),
                other => other.to_string(),
            };
            continue;
        }
        wire.push((key.to_string(), wire_of(v)));
    }
    G3Log::from_wire(wire, msg, Origin::Fluentd { tag: tag.to_string(), time })
}

/// Client side: read one `{"ack": chunk}` answer from `r` and return the chunk id.
pub fn read_ack<R: Read>(r: &mut R) -> std::io::Result<String> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("fluentd ack: {what}"));
    // An ack is tiny: refuse anything that announces more than 4 KiB.
    let mut limited = r.take(4096);
    let value = rmpv::decode::read_value(&mut limited).map_err(|e| match e {
        rmpv::decode::Error::InvalidMarkerRead(io) | rmpv::decode::Error::InvalidDataRead(io) => io,
        other => bad(&other.to_string()),
    })?;
    match value {
        Mp::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| mp_str(k) == Some("ack"))
            .and_then(|(_, v)| mp_str(v).map(str::to_string))
            .ok_or_else(|| bad("no `ack` key")),
        _ => Err(bad("not a map")),
    }
}

/// The ack for `chunk`: `{"ack": chunk}`.
pub fn encode_ack(chunk: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() + 8);
    // Writes into a Vec cannot fail.
    let _ = rmp::encode::write_map_len(&mut out, 1);
    let _ = rmp::encode::write_str(&mut out, "ack");
    let _ = rmp::encode::write_str(&mut out, chunk);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Mp {
        Mp::Map(vec![
            (Mp::from("log_type"), Mp::from("Task")),
            (Mp::from("c_rd_bytes"), Mp::from(5u64)),
            (Mp::from("user"), Mp::Nil),
            (Mp::from("msg"), Mp::from("finished")),
        ])
    }

    fn time() -> Mp {
        Mp::Ext(0, vec![0, 0, 0, 7, 0, 0, 0, 9])
    }

    fn enc(v: &Mp) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).unwrap();
        out
    }

    fn decode_all(bytes: &[u8]) -> Vec<ForwardMessage> {
        let mut d = ForwardDecoder::default();
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = d.decode(&mut buf).unwrap() {
            out.push(m);
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn every_mode_gives_the_same_events() {
        let entry = Mp::Array(vec![time(), record()]);
        let opt = Mp::Map(vec![(Mp::from("chunk"), Mp::from("c1"))]);
        let message = Mp::Array(vec![Mp::from("g3proxy.Task"), time(), record(), opt.clone()]);
        let forward = Mp::Array(vec![Mp::from("g3proxy.Task"), Mp::Array(vec![entry.clone(), entry.clone()]), opt]);
        let packed_bytes = [enc(&entry), enc(&entry)].concat();
        let packed = Mp::Array(vec![Mp::from("g3proxy.Task"), Mp::Binary(packed_bytes.clone())]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &packed_bytes).unwrap();
        let compressed = Mp::Array(vec![
            Mp::from("g3proxy.Task"),
            Mp::Binary(gz.finish().unwrap()),
            Mp::Map(vec![(Mp::from("compressed"), Mp::from("gzip")), (Mp::from("chunk"), Mp::from("c2"))]),
        ]);
        let stream = [enc(&message), enc(&Mp::Nil), enc(&forward), enc(&packed), enc(&compressed)].concat();
        let msgs = decode_all(&stream);
        assert_eq!(msgs.len(), 5);
        assert_eq!(msgs[1], ForwardMessage::Heartbeat);
        let mut n = 0;
        for m in &msgs {
            if let ForwardMessage::Events { tag, events, chunk } = m {
                for (t, r) in events {
                    assert_eq!(*t, EventTime { secs: 7, nanos: 9 });
                    let log = event_to_log(tag, *t, r).unwrap();
                    assert_eq!(log.msg, "finished");
                    assert_eq!(log.get_u64("c_rd_bytes"), Some(5));
                    assert_eq!(log.get("user"), Some(&serde_json::Value::Null));
                    n += 1;
                }
                if tag == "g3proxy.Task" && events.len() == 1 {
                    assert_eq!(chunk.as_deref(), Some("c1"));
                }
            }
        }
        assert_eq!(n, 7);
        // Byte by byte, the decoder waits for the rest.
        let mut d = ForwardDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = 0;
        for b in &stream {
            buf.extend_from_slice(&[*b]);
            while d.decode(&mut buf).unwrap().is_some() {
                got += 1;
            }
        }
        assert_eq!(got, 5);
    }

    #[test]
    fn hostile_lengths_and_depth_are_refused_before_allocating() {
        // array32 of 4 billion items, map32, str32 of 4 GB
        for bytes in
            [&[0xdd, 0xff, 0xff, 0xff, 0xff][..], &[0xdf, 0xff, 0xff, 0xff, 0xff], &[0xdb, 0xff, 0xff, 0xff, 0xff]]
        {
            assert!(matches!(scan_value(bytes, MAX_MESSAGE_LEN), Err(DecodeError::TooLarge { .. })), "{bytes:x?}");
        }
        let deep = vec![0x91u8; 100];
        assert!(scan_value(&deep, MAX_MESSAGE_LEN).is_err());
        assert_eq!(scan_value(&[0x92, 0x01], 100).unwrap(), None);
        assert_eq!(scan_value(&[0x92, 0x01, 0x02, 0x03], 100).unwrap(), Some(3));
        assert!(parse_message(Mp::from(3)).is_err());
        assert!(parse_message(Mp::Array(vec![Mp::from("t"), Mp::from(true)])).is_err());
    }

    #[test]
    fn ack_is_a_one_key_map() {
        let v = rmpv::decode::read_value(&mut &encode_ack("abc")[..]).unwrap();
        assert_eq!(v, Mp::Map(vec![(Mp::from("ack"), Mp::from("abc"))]));
        assert_eq!(read_ack(&mut &encode_ack("abc")[..]).unwrap(), "abc");
        assert!(read_ack(&mut &[0x91, 0x01][..]).is_err());
    }
}
