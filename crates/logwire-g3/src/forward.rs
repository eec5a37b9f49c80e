//! fluentd's Forward protocol v1 (server side, sans-IO): Message, Forward, PackedForward and
//! CompressedPackedForward modes, EventTime (ext type 0), the `chunk` option that asks for an ack, and the
//! optional `shared_key` handshake ([`ServerSession`], [`ClientHandshake`]).
//!
//! g3proxy itself only sends Message mode without `chunk` (`lib/g3-fluentd/src/format.rs`), but anything
//! that relays its records (fluent-bit, fluentd, Vector) uses the other modes.
//!
//! Safety: [`scan_value`] walks the msgpack structure first, checking every declared length against the
//! bytes present and the message limit and bounding the nesting depth. Records are then read in place by a
//! bounds-checked reader (strings borrowed, records sliced from the frame, no `rmpv::Value` tree); declared
//! counts only bound reservations by the bytes present, and `rmpv` is only used for the rare nested value
//! kept as text, after its own scan. No allocation is sized by an unchecked length, no recursion is unbounded.
//! CPU is bounded too: [`ForwardDecoder`] keeps its walk between reads, so a message that arrives in many
//! small reads is walked once, not once per read.

use crate::error::DecodeError;
use crate::log::{EventTime, G3Log, Origin};
use crate::schema::{known_field_bytes, LookedUpKey, WireValue};
use bytes::{Bytes, BytesMut};
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
    /// Events of one tag, and the `chunk` id to acknowledge, if the client sent one. Each record is the
    /// msgpack bytes of its map, sliced from the received message without copying; [`event_to_log`] types it.
    Events { tag: String, events: Vec<(EventTime, Bytes)>, chunk: Option<String> },
    /// A top-level `nil`: some clients send it as a keepalive.
    Heartbeat,
    /// `["PING", …]`: the client's answer to the server's HELO in the `shared_key` handshake.
    Ping(Ping),
}

/// `["PING", hostname, shared_key_salt, sha512_hex(salt + hostname + nonce + shared_key), username,
/// password_digest]` (username and password digest are empty unless the server asked for user auth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    pub hostname: Vec<u8>,
    pub shared_key_salt: Vec<u8>,
    pub shared_key_digest: Vec<u8>,
    pub username: Vec<u8>,
    pub password_digest: Vec<u8>,
}

/// Length of the complete msgpack value at the start of `buf`, `None` if more bytes are needed.
pub fn scan_value(buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    ValueScan::new().resume(buf, max_len)
}

/// How far the walk over one msgpack value has got. A value that arrives in pieces is walked once: each
/// call goes on from where the last one stopped instead of starting over, which on a value of many small
/// items trickling in would cost the whole value again per read.
#[derive(Debug, Clone)]
struct ValueScan {
    /// Items still to read at each open container level.
    stack: [u64; MAX_DEPTH],
    depth: usize,
    /// Where the next item starts.
    pos: usize,
    /// Items still to read at the current level.
    remaining: u64,
}

impl ValueScan {
    const fn new() -> Self {
        ValueScan { stack: [0; MAX_DEPTH], depth: 0, pos: 0, remaining: 1 }
    }

    /// Start over for the next value. The stack keeps its old entries: a level is always written before
    /// it is read.
    fn reset(&mut self) {
        (self.depth, self.pos, self.remaining) = (0, 0, 1);
    }

    /// Go on over `buf`, which must hold the bytes of the earlier calls and maybe more after them: the
    /// value's length once it is complete, `None` if more bytes are needed. Inlined, so that a one-shot
    /// [`scan_value`] keeps its state in registers.
    #[inline(always)]
    fn resume(&mut self, buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
        let too_large = |len| DecodeError::TooLarge { len, limit: max_len };
        // The last call stopped inside a string or binary whose bytes had not all come.
        if self.pos > buf.len() {
            return Ok(None);
        }
        // Worked on in locals (registers) and stored back whenever the walk stops.
        let (mut depth, mut pos, mut remaining) = (self.depth, self.pos, self.remaining);
        macro_rules! stop {
            ($result:expr) => {{
                (self.depth, self.pos, self.remaining) = (depth, pos, remaining);
                return $result;
            }};
        }
        loop {
            while remaining == 0 {
                if depth == 0 {
                    stop!(Ok(Some(pos)));
                }
                depth -= 1;
                remaining = self.stack[depth];
            }
            let at = pos;
            let Some(&m) = buf.get(at) else { stop!(check_need(at, max_len)) };
            let be = |n: usize| -> Option<u64> {
                buf.get(at + 1..at + 1 + n).map(|b| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
            };
            // (bytes of this item before any child, children count); an item whose header is not all
            // there yet is read again from its marker on the next call.
            let (skip, children): (u64, u64) = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, 0),
                0x80..=0x8f => (1, 2 * u64::from(m & 0x0f)),
                0x90..=0x9f => (1, u64::from(m & 0x0f)),
                0xa0..=0xbf => (1 + u64::from(m & 0x1f), 0),
                0xc4 | 0xd9 => match be(1) {
                    Some(n) => (2 + n, 0),
                    None => stop!(check_need(at, max_len)),
                },
                0xc5 | 0xda => match be(2) {
                    Some(n) => (3 + n, 0),
                    None => stop!(check_need(at, max_len)),
                },
                0xc6 | 0xdb => match be(4) {
                    Some(n) => (5 + n, 0),
                    None => stop!(check_need(at, max_len)),
                },
                0xc7 => match be(1) {
                    Some(n) => (3 + n, 0),
                    None => stop!(check_need(at, max_len)),
                },
                0xc8 => match be(2) {
                    Some(n) => (4 + n, 0),
                    None => stop!(check_need(at, max_len)),
                },
                0xc9 => match be(4) {
                    Some(n) => (6 + n, 0),
                    None => stop!(check_need(at, max_len)),
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
                    None => stop!(check_need(at, max_len)),
                },
                0xdd => match be(4) {
                    Some(n) => (5, n),
                    None => stop!(check_need(at, max_len)),
                },
                0xde => match be(2) {
                    Some(n) => (3, 2 * n),
                    None => stop!(check_need(at, max_len)),
                },
                0xdf => match be(4) {
                    Some(n) => (5, 2 * n),
                    None => stop!(check_need(at, max_len)),
                },
                0xc1 => return Err(DecodeError::Msgpack("reserved marker 0xc1")),
            };
            remaining -= 1;
            let end = (at as u64).saturating_add(skip);
            // Every child takes at least one byte, so more children than bytes left cannot fit.
            if end.saturating_add(children) > max_len as u64 {
                return Err(too_large(usize::try_from(end.saturating_add(children)).unwrap_or(usize::MAX)));
            }
            if children > 0 {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::Msgpack("nested deeper than 32"));
                }
                self.stack[depth] = remaining;
                depth += 1;
                remaining = children;
            }
            pos = end as usize;
            if pos > buf.len() {
                stop!(Ok(None));
            }
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
    /// The walk over the message at the front of the buffer, kept between calls while it is incomplete.
    scan: ValueScan,
}

impl Default for ForwardDecoder {
    fn default() -> Self {
        ForwardDecoder::with_max_len(MAX_MESSAGE_LEN)
    }
}

impl ForwardDecoder {
    pub fn with_max_len(max_len: usize) -> Self {
        ForwardDecoder { max_len, scan: ValueScan::new() }
    }

    /// The next message, `None` when more bytes are needed. Between calls `buf` may only grow at its end
    /// (as a read buffer does): an incomplete message is not walked again from its start. An error ends
    /// the connection (the stream cannot be resynchronised).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ForwardMessage>, DecodeError> {
        let scanned = self.scan.resume(buf, self.max_len);
        // A complete message or an error: the next walk starts on the next message.
        if !matches!(scanned, Ok(None)) {
            self.scan.reset();
        }
        let Some(len) = scanned? else { return Ok(None) };
        let frame = buf.split_to(len).freeze();
        parse_message(&frame).map(Some)
    }
}

fn forward_err(what: impl Into<String>) -> DecodeError {
    DecodeError::Forward(what.into())
}

fn short() -> DecodeError {
    DecodeError::Msgpack("value ends early")
}

/// A msgpack reader over borrowed bytes. Every read is bounds-checked, so it is safe on any input; lengths
/// are only ever used to slice `buf`, never to size an allocation.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// One scalar, or where a container / ext value starts (its marker byte).
enum Item<'a> {
    Nil,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(usize),
    Map(usize),
    Ext(i8, &'a [u8]),
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or_else(short)?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(short)?;
        self.pos = end;
        Ok(bytes)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn len(&mut self, n: usize) -> Result<usize, DecodeError> {
        usize::try_from(self.be(n)?).map_err(|_| short())
    }

    fn item(&mut self) -> Result<Item<'a>, DecodeError> {
        use rmp::Marker as M;
        let marker = M::from_u8(self.take(1)?[0]);
        Ok(match marker {
            M::Null => Item::Nil,
            M::True => Item::Bool(true),
            M::False => Item::Bool(false),
            M::FixPos(n) => Item::UInt(u64::from(n)),
            M::FixNeg(n) => Item::Int(i64::from(n)),
            M::U8 => Item::UInt(self.be(1)?),
            M::U16 => Item::UInt(self.be(2)?),
            M::U32 => Item::UInt(self.be(4)?),
            M::U64 => Item::UInt(self.be(8)?),
            M::I8 => Item::Int(i64::from(self.take(1)?[0] as i8)),
            M::I16 => Item::Int(i64::from(self.be(2)? as u16 as i16)),
            M::I32 => Item::Int(i64::from(self.be(4)? as u32 as i32)),
            M::I64 => Item::Int(self.be(8)? as i64),
            M::F32 => Item::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            M::F64 => Item::Float(f64::from_bits(self.be(8)?)),
            M::FixStr(n) => Item::Str(self.take(usize::from(n))?),
            M::Str8 => {
                let n = self.len(1)?;
                Item::Str(self.take(n)?)
            }
            M::Str16 => {
                let n = self.len(2)?;
                Item::Str(self.take(n)?)
            }
            M::Str32 => {
                let n = self.len(4)?;
                Item::Str(self.take(n)?)
            }
            M::Bin8 => {
                let n = self.len(1)?;
                Item::Bin(self.take(n)?)
            }
            M::Bin16 => {
                let n = self.len(2)?;
                Item::Bin(self.take(n)?)
            }
            M::Bin32 => {
                let n = self.len(4)?;
                Item::Bin(self.take(n)?)
            }
            M::FixArray(n) => Item::Array(usize::from(n)),
            M::Array16 => Item::Array(self.len(2)?),
            M::Array32 => Item::Array(self.len(4)?),
            M::FixMap(n) => Item::Map(usize::from(n)),
            M::Map16 => Item::Map(self.len(2)?),
            M::Map32 => Item::Map(self.len(4)?),
            M::FixExt1 => self.ext(1)?,
            M::FixExt2 => self.ext(2)?,
            M::FixExt4 => self.ext(4)?,
            M::FixExt8 => self.ext(8)?,
            M::FixExt16 => self.ext(16)?,
            M::Ext8 => {
                let n = self.len(1)?;
                self.ext(n)?
            }
            M::Ext16 => {
                let n = self.len(2)?;
                self.ext(n)?
            }
            M::Ext32 => {
                let n = self.len(4)?;
                self.ext(n)?
            }
            M::Reserved => return Err(DecodeError::Msgpack("reserved marker 0xc1")),
        })
    }

    fn ext(&mut self, n: usize) -> Result<Item<'a>, DecodeError> {
        let ty = self.take(1)?[0] as i8;
        Ok(Item::Ext(ty, self.take(n)?))
    }

    /// Skip one whole value (containers included), measured by [`scan_value`]'s marker table rather than
    /// decoded item by item: slicing out each record this way was a fifth of the fluentd decode.
    fn skip(&mut self) -> Result<(), DecodeError> {
        let rest = &self.buf[self.pos..];
        match scan_value(rest, rest.len()) {
            Ok(Some(len)) => {
                self.pos += len;
                Ok(())
            }
            // Running past the end of what is there is a short value here, whatever the scan calls it.
            Ok(None) | Err(DecodeError::TooLarge { .. }) => Err(short()),
            Err(e) => Err(e),
        }
    }

    /// The bytes of the next whole value.
    fn value_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        self.skip()?;
        Ok(&self.buf[start..self.pos])
    }

    /// Where the next value starts, without moving.
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }
}

fn utf8(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// The `Display` of a compound value (an array, a map or an ext kept as text), as `rmpv` writes it.
fn display_of(bytes: &[u8]) -> Result<String, DecodeError> {
    // Check lengths and depth first, so rmpv only sees a complete, plausible value.
    let len = scan_value(bytes, bytes.len())?.ok_or_else(short)?;
    let value = rmpv::decode::read_value(&mut &bytes[..len]).map_err(|_| DecodeError::Msgpack("bad value"))?;
    Ok(value.to_string())
}

/// EventTime (ext 0: u32 s + u32 ns, big endian), an integer, or a float.
fn event_time(item: &Item<'_>) -> Option<EventTime> {
    match item {
        Item::Ext(0, data) if data.len() == 8 => Some(EventTime {
            secs: u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
            nanos: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        }),
        Item::UInt(s) => u32::try_from(*s).ok().map(|secs| EventTime { secs, nanos: 0 }),
        Item::Float(f) if *f >= 0.0 && *f < 4_294_967_296.0 => {
            Some(EventTime { secs: f.trunc() as u32, nanos: (f.fract() * 1e9) as u32 })
        }
        _ => None,
    }
}

/// The option map: (`chunk`, whether the entries are gzip-compressed).
fn read_option(r: &mut Reader<'_>) -> Result<(Option<String>, bool), DecodeError> {
    let n = match r.item()? {
        Item::Nil => return Ok((None, false)),
        Item::Map(n) => n,
        _ => return Err(forward_err("option is not a map")),
    };
    let mut chunk = None;
    let mut gzip = false;
    for _ in 0..n {
        let key = match r.item()? {
            Item::Str(k) | Item::Bin(k) => k,
            _ => {
                r.skip()?;
                continue;
            }
        };
        match key {
            b"chunk" => match r.item()? {
                Item::Str(v) | Item::Bin(v) => chunk = utf8(v).map(str::to_string),
                _ => chunk = None,
            },
            b"compressed" => {
                gzip = match r.item()? {
                    Item::Str(b"gzip") | Item::Bin(b"gzip") => true,
                    Item::Str(b"text") | Item::Bin(b"text") => false,
                    Item::Str(_) | Item::Bin(_) => return Err(forward_err("unknown `compressed` option")),
                    _ => false,
                }
            }
            _ => r.skip()?,
        }
    }
    Ok((chunk, gzip))
}

/// `[time, record]` of Forward and PackedForward modes; the record's bytes are sliced from `frame`.
fn read_entry(r: &mut Reader<'_>, frame: &Bytes) -> Result<(EventTime, Bytes), DecodeError> {
    if !matches!(r.item()?, Item::Array(2)) {
        return Err(forward_err("an entry must be [time, record]"));
    }
    let time = event_time(&r.item()?).ok_or_else(|| forward_err("bad event time in an entry"))?;
    let record = r.value_bytes()?;
    Ok((time, frame.slice_ref(record)))
}

fn read_ping(r: &mut Reader<'_>, items: usize) -> Result<Ping, DecodeError> {
    if items != 6 {
        return Err(forward_err("a PING has 6 elements"));
    }
    let mut field = || match r.item()? {
        Item::Str(b) | Item::Bin(b) => Ok(b.to_vec()),
        _ => Err(forward_err("PING elements are strings")),
    };
    Ok(Ping {
        hostname: field()?,
        shared_key_salt: field()?,
        shared_key_digest: field()?,
        username: field()?,
        password_digest: field()?,
    })
}

/// One complete forward message (the bytes [`scan_value`] delimited) → its events. Records are not copied:
/// each is a slice of `frame` (or of the decompressed entries).
pub fn parse_message(frame: &Bytes) -> Result<ForwardMessage, DecodeError> {
    let mut r = Reader::new(frame);
    let items = match r.item()? {
        Item::Nil => return Ok(ForwardMessage::Heartbeat),
        Item::Array(n) => n,
        _ => return Err(forward_err("a message must be an array")),
    };
    if items == 0 {
        return Err(forward_err("empty array"));
    }
    let tag = match r.item()? {
        Item::Str(t) | Item::Bin(t) => utf8(t).ok_or_else(|| forward_err("tag is not a string"))?,
        _ => return Err(forward_err("tag is not a string")),
    };
    if tag == "PING" {
        return read_ping(&mut r, items).map(ForwardMessage::Ping);
    }
    let tag = tag.to_string();
    if items < 2 {
        return Err(forward_err("no time or entries after the tag"));
    }
    let mut events = Vec::new();
    let chunk;
    match r.peek() {
        // Forward mode: [tag, [[time, record], …], option?]
        Some(0x90..=0x9f | 0xdc | 0xdd) => {
            let Item::Array(n) = r.item()? else { return Err(short()) };
            // Each entry takes at least 3 bytes: bound the reservation by what is there.
            events.reserve(n.min(frame.len() / 3));
            for _ in 0..n {
                events.push(read_entry(&mut r, frame)?);
            }
            chunk = if items > 2 { read_option(&mut r)?.0 } else { None };
        }
        // PackedForward / CompressedPackedForward: [tag, bin(entries…), option?]
        Some(0xa0..=0xbf | 0xd9..=0xdb | 0xc4..=0xc6) => {
            let (Item::Bin(packed) | Item::Str(packed)) = r.item()? else { return Err(short()) };
            let packed = frame.slice_ref(packed);
            let (c, gzip) = if items > 2 { read_option(&mut r)? } else { (None, false) };
            chunk = c;
            let entries = if gzip { Bytes::from(gunzip(&packed)?) } else { packed };
            let mut at = 0;
            while at < entries.len() {
                let len = scan_value(&entries[at..], entries.len() - at)?
                    .ok_or_else(|| forward_err("packed entries end inside an entry"))?;
                let mut er = Reader::new(&entries[..at + len]);
                er.pos = at;
                events.push(read_entry(&mut er, &entries)?);
                at += len;
            }
        }
        // Message mode: [tag, time, record, option?]
        _ => {
            let time = event_time(&r.item()?).ok_or_else(|| forward_err("bad event time"))?;
            if items < 3 {
                return Err(forward_err("no record"));
            }
            let record = r.value_bytes()?;
            events.push((time, frame.slice_ref(record)));
            chunk = if items > 3 { read_option(&mut r)?.0 } else { None };
        }
    }
    Ok(ForwardMessage::Events { tag, events, chunk })
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

/// Text of a string value: borrowed when it is UTF-8 (checked with `from_utf8`, several times faster on
/// these short ASCII values than `from_utf8_lossy`'s chunked scan), else the lossy copy.
fn text_of(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// One event's record (the msgpack bytes of a map) → a [`G3Log`]; `msg` becomes the message. Values are
/// read straight into their wire form, borrowing strings from `record`.
pub fn event_to_log(tag: &str, time: EventTime, record: &[u8]) -> Result<G3Log, DecodeError> {
    let mut r = Reader::new(record);
    let Item::Map(n) = r.item()? else { return Err(forward_err("record is not a map")) };
    let mut msg = String::new();
    // Each pair takes at least 2 bytes: bound the reservation by what is there.
    let mut wire = Vec::with_capacity(n.min(record.len() / 2));
    for _ in 0..n {
        let (Item::Str(key) | Item::Bin(key)) = r.item()? else {
            return Err(forward_err("record key is not a string"));
        };
        let start = r.pos;
        let item = r.item()?;
        if key == b"msg" {
            // Always the message, even when it is not valid UTF-8 text (found by fuzzing: kept as a field it
            // came back as a second `msg` key).
            msg = match item {
                Item::Str(s) | Item::Bin(s) => text_of(s).into_owned(),
                _ => {
                    r.pos = start;
                    display_of(r.value_bytes()?)?
                }
            };
            continue;
        }
        let value = match item {
            Item::Nil => WireValue::Null,
            Item::Bool(b) => WireValue::Bool(b),
            Item::UInt(u) => WireValue::UInt(u),
            Item::Int(i) if i >= 0 => WireValue::UInt(i as u64),
            Item::Int(i) => WireValue::Int(i),
            Item::Float(f) => WireValue::Float(f),
            Item::Str(s) | Item::Bin(s) => WireValue::Str(text_of(s)),
            Item::Array(_) | Item::Map(_) | Item::Ext(..) => {
                r.pos = start;
                WireValue::Str(Cow::Owned(display_of(r.value_bytes()?)?))
            }
        };
        // Only names g3proxy does not write need their UTF-8 checked: the known ones are text already.
        let key = match known_field_bytes(key) {
            Some(field) => LookedUpKey::Known(field),
            None => LookedUpKey::Other(utf8(key).ok_or_else(|| forward_err("record key is not a string"))?),
        };
        wire.push((key, value));
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
    let text = |v: &rmpv::Value| v.as_str().map(str::to_string);
    match value {
        rmpv::Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| k.as_str() == Some("ack"))
            .and_then(|(_, v)| text(v))
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

// ---------------------------------------------------------------------------------------------------------
// The `shared_key` handshake (Forward protocol v1, "Handshake Messages"), both sides, sans-IO.
//
// server → HELO  ["HELO", {"nonce": nonce, "auth": user_auth_salt or "", "keepalive": true}]
// client → PING  ["PING", hostname, salt, sha512_hex(salt + hostname + nonce + shared_key), user, pass]
//                (pass = sha512_hex(user_auth_salt + user + password) when the server asked for users)
// server → PONG  ["PONG", true, "", server_hostname, sha512_hex(salt + server_hostname + nonce + shared_key)]
//             or ["PONG", false, reason, "", ""] and the server closes.

/// What a forward server requires before it takes records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKeyConfig {
    pub shared_key: String,
    /// Sent in the PONG and mixed into its digest, so the client can check the server knows the key too.
    pub hostname: String,
    /// `(username, password)` pairs; when not empty, the PING must also carry one of them.
    pub users: Vec<(String, String)>,
}

/// sha512 of the concatenated parts, as lowercase hex.
pub fn sha512_hex(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality that takes the same time wherever the first difference is (digests of secrets).
fn same_digest(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn encode_array(out: &mut Vec<u8>, items: u32) {
    // Writes into a Vec cannot fail.
    let _ = rmp::encode::write_array_len(out, items);
}

fn encode_bytes_as_str(out: &mut Vec<u8>, bytes: &[u8]) {
    let _ = rmp::encode::write_str_len(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// Where a server connection is in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// HELO sent; only a PING (or a heartbeat) is accepted.
    AwaitingPing,
    /// Records are accepted (right away when no shared key is configured).
    Established,
    /// Authentication failed: the server sent its PONG and closes.
    Closed,
}

/// What the server does with one decoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionStep {
    /// Records to store (and maybe acknowledge).
    Events { tag: String, events: Vec<(EventTime, Bytes)>, chunk: Option<String> },
    /// Send these bytes (a successful PONG) and go on.
    Reply(Vec<u8>),
    /// Send these bytes (a failed PONG), then close the connection.
    ReplyAndClose(Vec<u8>, DecodeError),
    /// Nothing to do (a heartbeat).
    Nothing,
}

/// Server side of one forward connection: the handshake, then records.
#[derive(Debug, Clone)]
pub struct ServerSession {
    auth: Option<(SharedKeyConfig, Vec<u8>, Vec<u8>)>,
    state: SessionState,
}

impl ServerSession {
    /// Without `config`, records are accepted at once. With it, `nonce` and `user_auth_salt` must be fresh
    /// random bytes for this connection.
    pub fn new(config: Option<SharedKeyConfig>, nonce: &[u8], user_auth_salt: &[u8]) -> Self {
        match config {
            None => ServerSession { auth: None, state: SessionState::Established },
            Some(c) => ServerSession {
                auth: Some((c, nonce.to_vec(), user_auth_salt.to_vec())),
                state: SessionState::AwaitingPing,
            },
        }
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The HELO to send as soon as the connection opens, if a shared key is configured.
    pub fn helo(&self) -> Option<Vec<u8>> {
        let (config, nonce, salt) = self.auth.as_ref()?;
        let mut out = Vec::with_capacity(64);
        encode_array(&mut out, 2);
        let _ = rmp::encode::write_str(&mut out, "HELO");
        let _ = rmp::encode::write_map_len(&mut out, 3);
        let _ = rmp::encode::write_str(&mut out, "nonce");
        let _ = rmp::encode::write_bin(&mut out, nonce);
        let _ = rmp::encode::write_str(&mut out, "auth");
        let _ = rmp::encode::write_bin(&mut out, if config.users.is_empty() { &[] } else { salt });
        let _ = rmp::encode::write_str(&mut out, "keepalive");
        let _ = rmp::encode::write_bool(&mut out, true);
        Some(out)
    }

    /// The next decoded message. `Err` means the connection must be closed (records before the handshake,
    /// a PING when none was asked for).
    pub fn on_message(&mut self, message: ForwardMessage) -> Result<SessionStep, DecodeError> {
        match (self.state, message) {
            (_, ForwardMessage::Heartbeat) => Ok(SessionStep::Nothing),
            (SessionState::Established, ForwardMessage::Events { tag, events, chunk }) => {
                Ok(SessionStep::Events { tag, events, chunk })
            }
            (SessionState::AwaitingPing, ForwardMessage::Ping(ping)) => Ok(self.check_ping(&ping)),
            (SessionState::AwaitingPing, ForwardMessage::Events { .. }) => {
                self.state = SessionState::Closed;
                Err(forward_err("records before the shared_key handshake"))
            }
            (SessionState::Established, ForwardMessage::Ping(_)) => {
                self.state = SessionState::Closed;
                Err(forward_err("unexpected PING (no handshake pending)"))
            }
            (SessionState::Closed, _) => Err(forward_err("connection already refused")),
        }
    }

    fn check_ping(&mut self, ping: &Ping) -> SessionStep {
        let Some((config, nonce, user_salt)) = &self.auth else {
            return SessionStep::Nothing;
        };
        let key = config.shared_key.as_bytes();
        let expected = sha512_hex(&[&ping.shared_key_salt, &ping.hostname, nonce, key]);
        let failure = if !same_digest(expected.as_bytes(), &ping.shared_key_digest) {
            Some("shared_key mismatch")
        } else if !config.users.is_empty()
            && !config.users.iter().any(|(user, password)| {
                user.as_bytes() == ping.username.as_slice()
                    && same_digest(
                        sha512_hex(&[user_salt, user.as_bytes(), password.as_bytes()]).as_bytes(),
                        &ping.password_digest,
                    )
            })
        {
            Some("username/password mismatch")
        } else {
            None
        };
        let mut out = Vec::with_capacity(200);
        encode_array(&mut out, 5);
        let _ = rmp::encode::write_str(&mut out, "PONG");
        match failure {
            Some(reason) => {
                self.state = SessionState::Closed;
                let _ = rmp::encode::write_bool(&mut out, false);
                let _ = rmp::encode::write_str(&mut out, reason);
                let _ = rmp::encode::write_str(&mut out, "");
                let _ = rmp::encode::write_str(&mut out, "");
                SessionStep::ReplyAndClose(out, forward_err(format!("handshake refused: {reason}")))
            }
            None => {
                self.state = SessionState::Established;
                let host = config.hostname.as_bytes();
                let _ = rmp::encode::write_bool(&mut out, true);
                let _ = rmp::encode::write_str(&mut out, "");
                encode_bytes_as_str(&mut out, host);
                let _ = rmp::encode::write_str(&mut out, &sha512_hex(&[&ping.shared_key_salt, host, nonce, key]));
                SessionStep::Reply(out)
            }
        }
    }
}

/// What a forward server sends: the handshake messages and acks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    Helo { nonce: Vec<u8>, user_auth_salt: Vec<u8>, keepalive: bool },
    Pong { ok: bool, reason: String, hostname: Vec<u8>, digest: Vec<u8> },
    Ack(String),
}

/// Client side: the next server message in `buf`, `None` when more bytes are needed.
pub fn decode_server_message(buf: &mut BytesMut) -> Result<Option<ServerMessage>, DecodeError> {
    // Server messages are small: refuse anything above 64 KiB.
    let Some(len) = scan_value(buf, 64 << 10)? else { return Ok(None) };
    let frame = buf.split_to(len).freeze();
    let mut r = Reader::new(&frame);
    let bytes = |r: &mut Reader<'_>| match r.item()? {
        Item::Str(b) | Item::Bin(b) => Ok(b.to_vec()),
        _ => Err(forward_err("expected a string")),
    };
    match r.item()? {
        Item::Map(n) => {
            for _ in 0..n {
                let key = bytes(&mut r)?;
                if key == b"ack" {
                    let chunk = bytes(&mut r)?;
                    return Ok(Some(ServerMessage::Ack(String::from_utf8_lossy(&chunk).into_owned())));
                }
                r.skip()?;
            }
            Err(forward_err("a map without `ack`"))
        }
        Item::Array(n) => match bytes(&mut r)?.as_slice() {
            b"HELO" if n == 2 => {
                let Item::Map(m) = r.item()? else { return Err(forward_err("HELO options are not a map")) };
                let (mut nonce, mut user_auth_salt, mut keepalive) = (None, Vec::new(), true);
                for _ in 0..m {
                    match bytes(&mut r)?.as_slice() {
                        b"nonce" => nonce = Some(bytes(&mut r)?),
                        b"auth" => user_auth_salt = bytes(&mut r)?,
                        b"keepalive" => keepalive = matches!(r.item()?, Item::Bool(true)),
                        _ => r.skip()?,
                    }
                }
                let nonce = nonce.ok_or_else(|| forward_err("HELO without a nonce"))?;
                Ok(Some(ServerMessage::Helo { nonce, user_auth_salt, keepalive }))
            }
            b"PONG" if n == 5 => {
                let Item::Bool(ok) = r.item()? else { return Err(forward_err("PONG result is not a bool")) };
                let reason = String::from_utf8_lossy(&bytes(&mut r)?).into_owned();
                Ok(Some(ServerMessage::Pong { ok, reason, hostname: bytes(&mut r)?, digest: bytes(&mut r)? }))
            }
            _ => Err(forward_err("neither HELO nor PONG")),
        },
        _ => Err(forward_err("not a server message")),
    }
}

/// Client side, blocking: read exactly one server message from `r` (byte by byte: these are small and
/// must not eat the bytes of the next one).
pub fn read_server_message<R: Read>(r: &mut R) -> std::io::Result<ServerMessage> {
    let mut buf = BytesMut::new();
    let mut byte = [0u8; 1];
    loop {
        match decode_server_message(&mut buf) {
            Ok(Some(m)) => return Ok(m),
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        r.read_exact(&mut byte)?;
        buf.extend_from_slice(&byte);
    }
}

/// Client side of the handshake: what a fluentd/fluent-bit forward output with `shared_key` does.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    pub shared_key: String,
    pub hostname: String,
    /// Fresh random bytes per connection.
    pub salt: Vec<u8>,
    pub username: String,
    pub password: String,
}

impl ClientHandshake {
    /// The PING answering a HELO.
    pub fn ping(&self, nonce: &[u8], user_auth_salt: &[u8]) -> Vec<u8> {
        let host = self.hostname.as_bytes();
        let mut out = Vec::with_capacity(200);
        encode_array(&mut out, 6);
        let _ = rmp::encode::write_str(&mut out, "PING");
        encode_bytes_as_str(&mut out, host);
        let _ = rmp::encode::write_bin(&mut out, &self.salt);
        let _ = rmp::encode::write_str(&mut out, &sha512_hex(&[&self.salt, host, nonce, self.shared_key.as_bytes()]));
        if user_auth_salt.is_empty() {
            let _ = rmp::encode::write_str(&mut out, "");
            let _ = rmp::encode::write_str(&mut out, "");
        } else {
            let user = self.username.as_bytes();
            let _ = rmp::encode::write_str(&mut out, &self.username);
            let _ = rmp::encode::write_str(&mut out, &sha512_hex(&[user_auth_salt, user, self.password.as_bytes()]));
        }
        out
    }

    /// Check a PONG: `Ok(server hostname)` if the server accepted and proved it knows the shared key.
    pub fn check_pong(&self, nonce: &[u8], pong: &ServerMessage) -> Result<String, DecodeError> {
        let ServerMessage::Pong { ok, reason, hostname, digest } = pong else {
            return Err(forward_err("expected a PONG"));
        };
        if !ok {
            return Err(forward_err(format!("server refused the handshake: {reason}")));
        }
        let expected = sha512_hex(&[&self.salt, hostname, nonce, self.shared_key.as_bytes()]);
        if !same_digest(expected.as_bytes(), digest) {
            return Err(forward_err("server's PONG digest does not match the shared key"));
        }
        Ok(String::from_utf8_lossy(hostname).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value as Mp;

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
        // Byte by byte, the decoder waits for the rest, going on from where it stopped.
        let mut d = ForwardDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in &stream {
            buf.extend_from_slice(&[*b]);
            while let Some(m) = d.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, msgs);
    }

    #[test]
    fn a_scan_stopped_anywhere_goes_on_to_the_same_length() {
        let value = enc(&Mp::Array(vec![
            Mp::from("g3proxy.Task"),
            Mp::Array(vec![Mp::Array(vec![time(), record()]), Mp::Array(vec![Mp::from(1), Mp::Map(vec![])])]),
            Mp::Binary(vec![7; 300]),
            Mp::Map(vec![(Mp::from("chunk"), Mp::from("x".repeat(40)))]),
        ]));
        let stream = [value.clone(), vec![0xc0]].concat();
        let whole = scan_value(&stream, MAX_MESSAGE_LEN).unwrap();
        assert_eq!(whole, Some(value.len()));
        for cut in 0..value.len() {
            let mut scan = ValueScan::new();
            assert_eq!(scan.resume(&stream[..cut], MAX_MESSAGE_LEN).unwrap(), None, "cut {cut}");
            // Twice at the same cut: stopping is idempotent.
            assert_eq!(scan.resume(&stream[..cut], MAX_MESSAGE_LEN).unwrap(), None, "cut {cut}");
            assert_eq!(scan.resume(&stream, MAX_MESSAGE_LEN).unwrap(), whole, "cut {cut}");
        }
        // The limit still holds for a value walked in pieces.
        let mut scan = ValueScan::new();
        assert_eq!(scan.resume(&value[..10], 200).unwrap(), None);
        assert!(matches!(scan.resume(&value, 200), Err(DecodeError::TooLarge { .. })));
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
        assert!(parse_message(&Bytes::from(enc(&Mp::from(3)))).is_err());
        assert!(parse_message(&Bytes::from(enc(&Mp::Array(vec![Mp::from("t"), Mp::from(true)])))).is_err());
        // A record whose map announces more pairs than there are bytes: an error, no huge reservation.
        assert!(event_to_log("t", EventTime { secs: 0, nanos: 0 }, &[0xdf, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(event_to_log("t", EventTime { secs: 0, nanos: 0 }, &[0x81, 0xa1, b'a', 0x9f]).is_err());
    }

    #[test]
    fn ack_is_a_one_key_map() {
        let v = rmpv::decode::read_value(&mut &encode_ack("abc")[..]).unwrap();
        assert_eq!(v, Mp::Map(vec![(Mp::from("ack"), Mp::from("abc"))]));
        assert_eq!(read_ack(&mut &encode_ack("abc")[..]).unwrap(), "abc");
        assert!(read_ack(&mut &[0x91, 0x01][..]).is_err());
    }

    fn config(users: Vec<(String, String)>) -> SharedKeyConfig {
        SharedKeyConfig { shared_key: "s3cret".into(), hostname: "logwire-test".into(), users }
    }

    fn client(key: &str) -> ClientHandshake {
        ClientHandshake {
            shared_key: key.into(),
            hostname: "g3-host".into(),
            salt: b"client-salt-0123".to_vec(),
            username: "alice".into(),
            password: "pw".into(),
        }
    }

    /// Runs HELO → PING → PONG between `server` and `client` in memory; returns the server's step and the
    /// decoded PONG.
    fn handshake(server: &mut ServerSession, client: &ClientHandshake) -> (SessionStep, ServerMessage, Vec<u8>) {
        let mut wire = BytesMut::from(&server.helo().expect("a HELO with a shared key")[..]);
        let Some(ServerMessage::Helo { nonce, user_auth_salt, keepalive }) = decode_server_message(&mut wire).unwrap()
        else {
            panic!("not a HELO")
        };
        assert!(keepalive);
        let mut ping = BytesMut::from(&client.ping(&nonce, &user_auth_salt)[..]);
        let message = ForwardDecoder::default().decode(&mut ping).unwrap().unwrap();
        assert!(matches!(message, ForwardMessage::Ping(_)));
        let step = server.on_message(message).unwrap();
        let pong_bytes = match &step {
            SessionStep::Reply(b) | SessionStep::ReplyAndClose(b, _) => b.clone(),
            other => panic!("no PONG: {other:?}"),
        };
        let pong = decode_server_message(&mut BytesMut::from(&pong_bytes[..])).unwrap().unwrap();
        (step, pong, nonce)
    }

    fn events_message() -> ForwardMessage {
        let message = Mp::Array(vec![Mp::from("g3proxy.Task"), time(), record()]);
        ForwardDecoder::default().decode(&mut BytesMut::from(&enc(&message)[..])).unwrap().unwrap()
    }

    #[test]
    fn shared_key_handshake_with_the_right_key_then_records() {
        let mut server = ServerSession::new(Some(config(vec![])), b"nonce-0123456789", b"user-salt-012345");
        assert_eq!(server.state(), SessionState::AwaitingPing);
        let alice = client("s3cret");
        let (step, pong, nonce) = handshake(&mut server, &alice);
        assert!(matches!(step, SessionStep::Reply(_)));
        assert_eq!(alice.check_pong(&nonce, &pong).unwrap(), "logwire-test");
        assert_eq!(server.state(), SessionState::Established);
        let SessionStep::Events { events, .. } = server.on_message(events_message()).unwrap() else {
            panic!("records refused after the handshake")
        };
        assert_eq!(event_to_log("g3proxy.Task", events[0].0, &events[0].1).unwrap().msg, "finished");
        // A second PING is a protocol error.
        let again = client("s3cret").ping(b"nonce-0123456789", b"");
        let ping = ForwardDecoder::default().decode(&mut BytesMut::from(&again[..])).unwrap().unwrap();
        assert!(server.on_message(ping).is_err());
    }

    #[test]
    fn shared_key_handshake_with_a_wrong_key_is_refused_and_closed() {
        let mut server = ServerSession::new(Some(config(vec![])), b"nonce-0123456789", b"user-salt-012345");
        let mallory = client("guess");
        let (step, pong, nonce) = handshake(&mut server, &mallory);
        let SessionStep::ReplyAndClose(_, err) = step else { panic!("not refused: {step:?}") };
        assert!(err.to_string().contains("shared_key mismatch"), "{err}");
        let ServerMessage::Pong { ok, reason, .. } = &pong else { panic!("not a PONG") };
        assert!(!ok);
        assert_eq!(reason, "shared_key mismatch");
        assert!(mallory.check_pong(&nonce, &pong).is_err());
        assert_eq!(server.state(), SessionState::Closed);
        assert!(server.on_message(events_message()).is_err());
    }

    #[test]
    fn records_before_the_handshake_are_refused() {
        let mut server = ServerSession::new(Some(config(vec![])), b"n", b"s");
        assert_eq!(server.on_message(ForwardMessage::Heartbeat).unwrap(), SessionStep::Nothing);
        assert!(server.on_message(events_message()).is_err());
        assert_eq!(server.state(), SessionState::Closed);
        // Without a shared key: no HELO, records at once, and a PING is refused.
        let mut open = ServerSession::new(None, b"", b"");
        assert!(open.helo().is_none());
        assert!(matches!(open.on_message(events_message()).unwrap(), SessionStep::Events { .. }));
        let ping = client("x").ping(b"n", b"");
        assert!(open
            .on_message(ForwardDecoder::default().decode(&mut BytesMut::from(&ping[..])).unwrap().unwrap())
            .is_err());
    }

    #[test]
    fn user_auth_needs_a_known_user_and_password() {
        let users = vec![("alice".to_string(), "pw".to_string())];
        let mut server = ServerSession::new(Some(config(users.clone())), b"nonce-0123456789", b"user-salt-012345");
        let (step, pong, nonce) = handshake(&mut server, &client("s3cret"));
        assert!(matches!(step, SessionStep::Reply(_)), "{step:?}");
        assert!(client("s3cret").check_pong(&nonce, &pong).is_ok());
        let mut server = ServerSession::new(Some(config(users)), b"nonce-0123456789", b"user-salt-012345");
        let wrong = ClientHandshake { password: "nope".into(), ..client("s3cret") };
        let (step, _, _) = handshake(&mut server, &wrong);
        let SessionStep::ReplyAndClose(_, err) = step else { panic!("not refused: {step:?}") };
        assert!(err.to_string().contains("username/password mismatch"), "{err}");
    }

    #[test]
    fn ping_digest_follows_the_spec_formula() {
        // sha512_hex(salt + hostname + nonce + shared_key), computed independently of ClientHandshake.
        let ping = client("s3cret").ping(b"NONCE", b"");
        let Ok(Some(ForwardMessage::Ping(p))) = ForwardDecoder::default().decode(&mut BytesMut::from(&ping[..])) else {
            panic!("not a PING")
        };
        assert_eq!(p.hostname, b"g3-host");
        assert_eq!(p.shared_key_salt, b"client-salt-0123");
        assert_eq!(p.shared_key_digest, sha512_hex(&[b"client-salt-0123g3-hostNONCEs3cret"]).into_bytes());
        assert_eq!(p.username, b"");
        assert_eq!(sha512_hex(&[b""]).len(), 128);
        // The known SHA-512 of "abc".
        assert!(sha512_hex(&[b"a", b"bc"]).starts_with("ddaf35a193617aba"));
    }
}
