//! A strict single-pass reader for the hottest records (`quic:packet_sent` / `quic:packet_received` with
//! ACK, STREAM, PING and PADDING frames): time, name and typed data straight from the bytes, without
//! building `serde_json` trees or buffering internally tagged enums. Anything outside that strict subset
//! (escapes, nulls, strings for numbers, unknown or duplicate keys, other events, other key orders) returns
//! `None`, and the caller takes the serde path, which gives the same result for what this accepts.

use crate::events::{AckRange, PacketEvent, PacketHeader, PacketType, QuicFrame, RawInfo};

/// What one record holds when it fits the strict subset.
pub(crate) struct FastRecord<'a> {
    pub time: f64,
    pub name: &'a str,
    /// The `data` object's exact text.
    pub data: &'a str,
    pub packet: PacketEvent,
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&mut self) -> Option<u8> {
        let b = self.bytes();
        while let Some(c) = b.get(self.pos) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(*c);
            }
            self.pos += 1;
        }
        None
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.pos += 1)
    }

    /// A string without escapes or control characters.
    fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        // Keys and values here are short: eight bytes at a time beats memchr's set-up.
        let start = self.pos;
        let b = self.bytes();
        let mut end = start;
        while let Some(word) = b.get(end..end + 8) {
            let w = u64::from_le_bytes(word.try_into().ok()?);
            let special = special_bytes(w);
            if special != 0 {
                end += (special.trailing_zeros() / 8) as usize;
                break;
            }
            end += 8;
        }
        loop {
            match *b.get(end)? {
                b'"' => break,
                b'\\' | 0..0x20 => return None,
                _ => end += 1,
            }
        }
        self.pos = end + 1;
        self.text.get(start..end)
    }

    /// The text of a number, checked against JSON's grammar.
    fn number(&mut self) -> Option<&'a str> {
        self.peek()?;
        let b = self.bytes();
        let start = self.pos;
        let mut i = start;
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > s
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        if b.get(i) == Some(&b'0') {
            i += 1;
        } else if !digits(&mut i) {
            return None;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.pos = i;
        self.text.get(start..i)
    }

    /// A plain unsigned integer (no sign, fraction or exponent; those go to serde).
    fn u64(&mut self) -> Option<u64> {
        self.peek()?;
        let b = self.bytes();
        let start = self.pos;
        let mut i = start;
        let mut v: u64 = 0;
        while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            i += 1;
        }
        let leading_zero = b[start] == b'0' && i > start + 1;
        if i == start || leading_zero || matches!(b.get(i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.pos = i;
        Some(v)
    }

    fn f64(&mut self) -> Option<f64> {
        // serde_json rejects numbers out of f64's range; so does this (and leaves them to serde).
        let text = self.number()?;
        decimal_fast_path(text).or_else(|| text.parse().ok()).filter(|v: &f64| v.is_finite())
    }

    fn bool(&mut self) -> Option<bool> {
        self.peek()?;
        let rest = &self.bytes()[self.pos..];
        if rest.starts_with(b"true") {
            self.pos += 4;
            Some(true)
        } else if rest.starts_with(b"false") {
            self.pos += 5;
            Some(false)
        } else {
            None
        }
    }

    /// `{ "key": value, … }`, each value read by `field`.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.str()?;
            self.eat(b':')?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// `[-]digits[.digits]` with at most 15 significant digits, as the exact integer over an exact power of
/// ten: one correctly rounded division, so the same value `str::parse` gives (Clinger's fast path).
fn decimal_fast_path(text: &str) -> Option<f64> {
    const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mut mantissa, mut count, mut scale) = (0u64, 0usize, None);
    for (i, c) in digits.bytes().enumerate() {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                count += 1;
                if count > 15 {
                    return None;
                }
            }
            b'.' if scale.is_none() => scale = Some(digits.len() - i - 1),
            _ => return None,
        }
    }
    let value = mantissa as f64 / POW10[scale.unwrap_or(0)];
    Some(if negative { -value } else { value })
}

/// The high bit set in the first byte of `w` (little endian) that is `"`, `\\` or a control character;
/// bits after the first may be wrong, so only the lowest is used.
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    zero_byte(w ^ (ONES * u64::from(b'"')))
        | zero_byte(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

/// Sets a field once; a duplicate key leaves the record to serde (which rejects it).
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

/// The record as time, name and typed packet data, when it fits the strict subset. `is_packet` says
/// whether a (written) name is one whose normalised name is `quic:packet_sent`/`quic:packet_received`.
pub(crate) fn packet_record<'a>(text: &'a str, is_packet: impl Fn(&str) -> bool) -> Option<FastRecord<'a>> {
    let mut c = Cursor { text, pos: 0 };
    let (mut time, mut name, mut data, mut packet) = (None, None, None, None);
    c.object(|c, key| match key {
        "time" => once(&mut time, c.f64()?),
        "name" => once(&mut name, c.str().filter(|n| is_packet(n))?),
        "data" if name.is_some() && data.is_none() => {
            c.peek()?;
            let start = c.pos;
            packet = Some(packet_event(c)?);
            data = text.get(start..c.pos);
            Some(())
        }
        _ => None,
    })?;
    if c.peek().is_some() {
        return None;
    }
    Some(FastRecord { time: time?, name: name?, data: data?, packet: packet? })
}

fn packet_event(c: &mut Cursor<'_>) -> Option<PacketEvent> {
    let (mut header, mut frames, mut raw, mut trigger) = (None, None, None, None);
    c.object(|c, key| match key {
        "header" => once(&mut header, packet_header(c)?),
        "frames" => {
            // One allocation for the usual handful of frames.
            let mut list = Vec::with_capacity(4);
            c.array(|c| {
                list.push(frame(c)?);
                Some(())
            })?;
            once(&mut frames, list)
        }
        "raw" => once(&mut raw, raw_info(c)?),
        "trigger" => once(&mut trigger, c.str()?.to_string()),
        _ => None,
    })?;
    Some(PacketEvent { header: header?, frames, raw, trigger })
}

fn packet_type(name: &str) -> PacketType {
    match name {
        "initial" => PacketType::Initial,
        "handshake" => PacketType::Handshake,
        "0RTT" => PacketType::ZeroRtt,
        "1RTT" => PacketType::OneRtt,
        "retry" => PacketType::Retry,
        "version_negotiation" => PacketType::VersionNegotiation,
        "stateless_reset" => PacketType::StatelessReset,
        _ => PacketType::Unknown,
    }
}

fn packet_header(c: &mut Cursor<'_>) -> Option<PacketHeader> {
    let mut ty = None;
    let mut h = PacketHeader {
        packet_type: PacketType::Unknown,
        packet_number: None,
        version: None,
        scid: None,
        dcid: None,
        spin_bit: None,
        key_phase_bit: None,
    };
    c.object(|c, key| match key {
        "packet_type" => once(&mut ty, packet_type(c.str()?)),
        "packet_number" => once(&mut h.packet_number, c.u64()?),
        "version" => once(&mut h.version, c.str()?.to_string()),
        "scid" => once(&mut h.scid, c.str()?.to_string()),
        "dcid" => once(&mut h.dcid, c.str()?.to_string()),
        "spin_bit" => once(&mut h.spin_bit, c.bool()?),
        "key_phase_bit" => once(&mut h.key_phase_bit, c.bool()?),
        _ => None,
    })?;
    h.packet_type = ty?;
    Some(h)
}

fn raw_info(c: &mut Cursor<'_>) -> Option<RawInfo> {
    let mut r = RawInfo::default();
    c.object(|c, key| match key {
        "length" => once(&mut r.length, c.u64()?),
        "payload_length" => once(&mut r.payload_length, c.u64()?),
        "data" => once(&mut r.data, c.str()?.to_string()),
        _ => None,
    })?;
    Some(r)
}

fn ack_range(c: &mut Cursor<'_>) -> Option<AckRange> {
    let mut n = [0u64; 2];
    let mut count = 0;
    c.array(|c| {
        *n.get_mut(count)? = c.u64()?;
        count += 1;
        Some(())
    })?;
    match count {
        1 => Some(AckRange(n[0], n[0])),
        2 => Some(AckRange(n[0], n[1])),
        _ => None,
    }
}

/// A frame whose `frame_type` comes first (as every writer puts it).
fn frame(c: &mut Cursor<'_>) -> Option<QuicFrame> {
    let mut kind: Option<&str> = None;
    let (mut ack_delay, mut ranges, mut ect1, mut ect0, mut ce) = (None, None, None, None, None);
    let (mut stream_id, mut offset, mut fin, mut length, mut raw) = (None, None, None, None, None);
    c.object(|c, key| match (kind, key) {
        (None, "frame_type") => {
            kind = Some(c.str().filter(|k| matches!(*k, "ack" | "stream" | "ping" | "padding"))?);
            Some(())
        }
        (Some("ack"), "ack_delay") => once(&mut ack_delay, c.f64()?),
        (Some("ack"), "acked_ranges") => {
            let mut list = Vec::with_capacity(4);
            c.array(|c| {
                list.push(ack_range(c)?);
                Some(())
            })?;
            once(&mut ranges, list)
        }
        (Some("ack"), "ect1") => once(&mut ect1, c.u64()?),
        (Some("ack"), "ect0") => once(&mut ect0, c.u64()?),
        (Some("ack"), "ce") => once(&mut ce, c.u64()?),
        (Some("stream"), "stream_id") => once(&mut stream_id, c.u64()?),
        (Some("stream"), "offset") => once(&mut offset, c.u64()?),
        (Some("stream"), "fin") => once(&mut fin, c.bool()?),
        (Some("stream"), "length") => once(&mut length, c.u64()?),
        (Some("stream" | "padding"), "raw") => once(&mut raw, raw_info(c)?),
        _ => None,
    })?;
    Some(match kind? {
        "ack" => QuicFrame::Ack { ack_delay, acked_ranges: ranges.unwrap_or_default(), ect1, ect0, ce },
        "stream" => QuicFrame::Stream { stream_id: stream_id?, offset, fin, length, raw },
        "padding" => QuicFrame::Padding { raw },
        _ => QuicFrame::Ping,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_packet(n: &str) -> bool {
        n == "quic:packet_sent"
    }

    #[test]
    fn same_result_as_serde_and_strict_otherwise() {
        let text = r#" {"time": 1.5e0, "name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT","packet_number":7,"dcid":"ab"},"raw":{"length":45},"frames":[{"frame_type":"ack","ack_delay":0.25,"acked_ranges":[[0],[2,9]]},{"frame_type":"ping"},{"frame_type":"stream","stream_id":4,"fin":true,"raw":{"payload_length":3}}]}}
"#;
        let fast = packet_record(text, is_packet).unwrap();
        assert_eq!((fast.time, fast.name), (1.5, "quic:packet_sent"));
        let data_start = text.find("{\"header").unwrap();
        assert_eq!(fast.data, &text[data_start..text.len() - 2]);
        assert_eq!(fast.packet, serde_json::from_str::<PacketEvent>(fast.data).unwrap());
        for bad in [
            r#"{"time":1,"name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT","packet_size":3}}}"#,
            r#"{"time":1,"name":"quic:packet_sent","data":{"header":{"packet_type":"1R\nTT"}}}"#,
            r#"{"time":1,"name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT","packet_number":"7"}}}"#,
            r#"{"time":1,"name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT"}}} x"#,
            r#"{"time":1,"name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT"}},"time":2}"#,
            r#"{"time":01,"name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT"}}}"#,
            r#"{"time":1,"name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT"},"frames":[{"frame_type":"ack","acked_ranges":[[1,2,3]]}]}}"#,
            r#"{"time":1,"name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT"}"#,
            r#"{"time":1,"name":"quic:packet_lost","data":{"header":{"packet_type":"1RTT"}}}"#,
            r#"{"time":1,"data":{"header":{"packet_type":"1RTT"}},"name":"quic:packet_sent"}"#,
        ] {
            assert!(packet_record(bad, is_packet).is_none(), "{bad}");
        }
        for t in ["0.0123", "123456.789012345", "-0.5", "7", "0.1", "1.00000000000001", "3.14159265358979"] {
            assert_eq!(decimal_fast_path(t), Some(t.parse::<f64>().unwrap()), "{t}");
        }
        assert_eq!(decimal_fast_path("1234567890.1234567"), None);
        for (text, want) in [
            ("\"abcdefghijklmnop\"", Some("abcdefghijklmnop")),
            ("\"abcdefghij\\\"x\"", None),
            ("\"abcdefgh\u{1}\"", None),
        ] {
            assert_eq!(Cursor { text, pos: 0 }.str(), want, "{text}");
        }
    }
}
