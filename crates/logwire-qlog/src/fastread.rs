//! A strict single-pass reader for the hottest records: `quic:packet_sent` / `quic:packet_received` (ACK,
//! STREAM, CRYPTO, PING and PADDING frames) and `quic:recovery_metrics_updated`. Time, name and typed data
//! come straight from the bytes, without `serde_json` trees or buffered internally tagged enums: keys are
//! matched as literals against the input (`"header":`), known string values too (`"1RTT"`), numbers are
//! parsed in the same scan. Anything outside that strict subset (escapes, whitespace inside a member, nulls,
//! strings for numbers, unknown or duplicate keys, other events) returns `None`, and the caller takes the
//! serde path, which gives the same result for what this accepts.

use crate::events::{AckRange, EventData, PacketEvent, PacketHeader, PacketType, QuicFrame, RawInfo, RecoveryMetrics};

/// Which typed event a record's (written) name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FastKind {
    PacketSent,
    PacketReceived,
    RecoveryMetrics,
}

/// What one record holds when it fits the strict subset.
pub(crate) struct FastRecord<'a> {
    pub time: f64,
    pub name: &'a str,
    /// The `data` object's exact text.
    pub data: &'a str,
    pub typed: EventData,
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
        // Writers put no blanks between tokens: test the byte before looping.
        let c = *b.get(self.pos)?;
        if c > b' ' {
            return Some(c);
        }
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

    /// Consumes `lit` when the input continues with it (a key with its quotes and colon, or a string
    /// value with its quotes).
    fn lit(&mut self, lit: &[u8]) -> bool {
        let hit = self.bytes().get(self.pos..self.pos + lit.len()) == Some(lit);
        if hit {
            self.pos += lit.len();
        }
        hit
    }

    /// A string without escapes or control characters.
    fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        // Strings here are short: eight bytes at a time beats memchr's set-up.
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

    /// `[-]digits[.digits]` with at most 15 significant digits in one scan, as the exact integer over an
    /// exact power of ten: one correctly rounded division, so the same value `str::parse` gives (Clinger's
    /// fast path). Longer numbers and exponents go through `str::parse`.
    fn f64(&mut self) -> Option<f64> {
        const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
        self.peek()?;
        let b = self.bytes();
        let start = self.pos;
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        i += usize::from(negative);
        let int_start = i;
        let (mut mantissa, mut count) = (0u64, 0usize);
        while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
            mantissa = mantissa * 10 + u64::from(d - b'0');
            count += 1;
            i += 1;
            if count > 15 {
                return self.f64_slow();
            }
        }
        let int_digits = i - int_start;
        if int_digits == 0 || (int_digits > 1 && b[int_start] == b'0') {
            return None;
        }
        let mut scale = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let frac_start = i;
            while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
                mantissa = mantissa * 10 + u64::from(d - b'0');
                count += 1;
                i += 1;
                if count > 15 {
                    return self.f64_slow();
                }
            }
            scale = i - frac_start;
            if scale == 0 {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            return self.f64_slow();
        }
        self.pos = i;
        let value = mantissa as f64 / POW10[scale];
        Some(if negative { -value } else { value })
    }

    /// Any JSON number through the standard library's correctly rounded parser. serde_json rejects numbers
    /// out of f64's range; so does this (and leaves them to serde).
    fn f64_slow(&mut self) -> Option<f64> {
        let text = self.number()?;
        text.parse().ok().filter(|v: &f64| v.is_finite())
    }

    fn bool(&mut self) -> Option<bool> {
        self.peek()?;
        if self.lit(b"true") {
            Some(true)
        } else if self.lit(b"false") {
            Some(false)
        } else {
            None
        }
    }

    /// `{ member, … }`: `member` reads one key (as a literal) and its value, or says `None`.
    fn object(&mut self, mut member: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.peek()?;
            member(self)?;
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

/// The record as time, name and typed data, when it fits the strict subset. `kind` says which typed
/// event a written name stands for once normalised (`None`: not one this reader types).
pub(crate) fn fast_record<'a>(text: &'a str, kind: impl Fn(&str) -> Option<FastKind>) -> Option<FastRecord<'a>> {
    let mut c = Cursor { text, pos: 0 };
    let (mut time, mut name, mut data, mut typed) = (None, None, None, None);
    let mut which = None;
    c.object(|c| {
        if c.lit(b"\"time\":") {
            once(&mut time, c.f64()?)
        } else if c.lit(b"\"name\":") {
            let n = c.str()?;
            once(&mut which, kind(n)?)?;
            once(&mut name, n)
        } else if c.lit(b"\"data\":") {
            let k = which?;
            c.peek()?;
            let start = c.pos;
            let t = match k {
                FastKind::PacketSent => EventData::PacketSent(packet_event(c)?),
                FastKind::PacketReceived => EventData::PacketReceived(packet_event(c)?),
                FastKind::RecoveryMetrics => EventData::RecoveryMetricsUpdated(recovery_metrics(c)?),
            };
            once(&mut typed, t)?;
            once(&mut data, text.get(start..c.pos)?)
        } else {
            None
        }
    })?;
    if c.peek().is_some() {
        return None;
    }
    Some(FastRecord { time: time?, name: name?, data: data?, typed: typed? })
}

fn packet_event(c: &mut Cursor<'_>) -> Option<PacketEvent> {
    let (mut header, mut frames, mut raw, mut trigger) = (None, None, None, None);
    c.object(|c| {
        if c.lit(b"\"header\":") {
            once(&mut header, packet_header(c)?)
        } else if c.lit(b"\"raw\":") {
            once(&mut raw, raw_info(c)?)
        } else if c.lit(b"\"frames\":") {
            let mut list = crate::events::Frames::new();
            c.array(|c| {
                list.push(frame(c)?);
                Some(())
            })?;
            once(&mut frames, list)
        } else if c.lit(b"\"trigger\":") {
            once(&mut trigger, c.str()?.to_string())
        } else {
            None
        }
    })?;
    Some(PacketEvent { header: header?, frames, raw, trigger })
}

fn packet_type(c: &mut Cursor<'_>) -> Option<PacketType> {
    c.peek()?;
    // The common ones as literals; the rest by name.
    if c.lit(b"\"1RTT\"") {
        return Some(PacketType::OneRtt);
    }
    Some(match c.str()? {
        "initial" => PacketType::Initial,
        "handshake" => PacketType::Handshake,
        "0RTT" => PacketType::ZeroRtt,
        "1RTT" => PacketType::OneRtt,
        "retry" => PacketType::Retry,
        "version_negotiation" => PacketType::VersionNegotiation,
        "stateless_reset" => PacketType::StatelessReset,
        _ => PacketType::Unknown,
    })
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
    c.object(|c| {
        if c.lit(b"\"packet_type\":") {
            once(&mut ty, packet_type(c)?)
        } else if c.lit(b"\"packet_number\":") {
            once(&mut h.packet_number, c.u64()?)
        } else if c.lit(b"\"dcid\":") {
            once(&mut h.dcid, c.str()?.to_string())
        } else if c.lit(b"\"scid\":") {
            once(&mut h.scid, c.str()?.to_string())
        } else if c.lit(b"\"version\":") {
            once(&mut h.version, c.str()?.to_string())
        } else if c.lit(b"\"spin_bit\":") {
            once(&mut h.spin_bit, c.bool()?)
        } else if c.lit(b"\"key_phase_bit\":") {
            once(&mut h.key_phase_bit, c.bool()?)
        } else {
            None
        }
    })?;
    h.packet_type = ty?;
    Some(h)
}

fn raw_info(c: &mut Cursor<'_>) -> Option<RawInfo> {
    let mut r = RawInfo::default();
    c.object(|c| {
        if c.lit(b"\"length\":") {
            once(&mut r.length, c.u64()?)
        } else if c.lit(b"\"payload_length\":") {
            once(&mut r.payload_length, c.u64()?)
        } else if c.lit(b"\"data\":") {
            once(&mut r.data, c.str()?.to_string())
        } else {
            None
        }
    })?;
    Some(r)
}

fn ack_range(c: &mut Cursor<'_>) -> Option<AckRange> {
    c.eat(b'[')?;
    let a = c.u64()?;
    let b = match c.peek()? {
        b']' => a,
        b',' => {
            c.pos += 1;
            c.u64()?
        }
        _ => return None,
    };
    c.eat(b']')?;
    Some(AckRange(a, b))
}

/// The members after a frame's `frame_type`, up to its closing brace.
fn rest(c: &mut Cursor<'_>, mut member: impl FnMut(&mut Cursor<'_>) -> Option<()>) -> Option<()> {
    loop {
        match c.peek()? {
            b',' => c.pos += 1,
            b'}' => {
                c.pos += 1;
                return Some(());
            }
            _ => return None,
        }
        c.peek()?;
        member(c)?;
    }
}

/// A frame whose `frame_type` comes first (as every writer puts it).
fn frame(c: &mut Cursor<'_>) -> Option<QuicFrame> {
    c.eat(b'{')?;
    c.peek()?;
    if !c.lit(b"\"frame_type\":") {
        return None;
    }
    c.peek()?;
    let kind = if c.lit(b"\"ack\"") {
        0
    } else if c.lit(b"\"stream\"") {
        1
    } else if c.lit(b"\"crypto\"") {
        2
    } else if c.lit(b"\"padding\"") {
        3
    } else if c.lit(b"\"ping\"") {
        4
    } else {
        return None;
    };
    match kind {
        0 => {
            let (mut ack_delay, mut ranges, mut ect1, mut ect0, mut ce) = (None, None, None, None, None);
            rest(c, |c| {
                if c.lit(b"\"ack_delay\":") {
                    once(&mut ack_delay, c.f64()?)
                } else if c.lit(b"\"acked_ranges\":") {
                    let mut list = crate::events::AckRanges::new();
                    c.array(|c| {
                        list.push(ack_range(c)?);
                        Some(())
                    })?;
                    once(&mut ranges, list)
                } else if c.lit(b"\"ect1\":") {
                    once(&mut ect1, c.u64()?)
                } else if c.lit(b"\"ect0\":") {
                    once(&mut ect0, c.u64()?)
                } else if c.lit(b"\"ce\":") {
                    once(&mut ce, c.u64()?)
                } else {
                    None
                }
            })?;
            Some(QuicFrame::Ack { ack_delay, acked_ranges: ranges.unwrap_or_default(), ect1, ect0, ce })
        }
        1 => {
            let (mut stream_id, mut offset, mut fin, mut length, mut raw) = (None, None, None, None, None);
            rest(c, |c| {
                if c.lit(b"\"stream_id\":") {
                    once(&mut stream_id, c.u64()?)
                } else if c.lit(b"\"offset\":") {
                    once(&mut offset, c.u64()?)
                } else if c.lit(b"\"fin\":") {
                    once(&mut fin, c.bool()?)
                } else if c.lit(b"\"length\":") {
                    once(&mut length, c.u64()?)
                } else if c.lit(b"\"raw\":") {
                    once(&mut raw, raw_info(c)?)
                } else {
                    None
                }
            })?;
            Some(QuicFrame::Stream { stream_id: stream_id?, offset, fin, length, raw })
        }
        2 => {
            let (mut offset, mut length, mut raw) = (None, None, None);
            rest(c, |c| {
                if c.lit(b"\"offset\":") {
                    once(&mut offset, c.u64()?)
                } else if c.lit(b"\"length\":") {
                    once(&mut length, c.u64()?)
                } else if c.lit(b"\"raw\":") {
                    once(&mut raw, raw_info(c)?)
                } else {
                    None
                }
            })?;
            Some(QuicFrame::Crypto { offset: offset?, length, raw })
        }
        3 => {
            let mut raw = None;
            rest(c, |c| if c.lit(b"\"raw\":") { once(&mut raw, raw_info(c)?) } else { None })?;
            Some(QuicFrame::Padding { raw })
        }
        _ => {
            rest(c, |_| None)?;
            Some(QuicFrame::Ping)
        }
    }
}

fn recovery_metrics(c: &mut Cursor<'_>) -> Option<RecoveryMetrics> {
    let mut m = RecoveryMetrics::default();
    c.object(|c| {
        if c.lit(b"\"min_rtt\":") {
            once(&mut m.min_rtt, c.f64()?)
        } else if c.lit(b"\"smoothed_rtt\":") {
            once(&mut m.smoothed_rtt, c.f64()?)
        } else if c.lit(b"\"latest_rtt\":") {
            once(&mut m.latest_rtt, c.f64()?)
        } else if c.lit(b"\"rtt_variance\":") {
            once(&mut m.rtt_variance, c.f64()?)
        } else if c.lit(b"\"pto_count\":") {
            once(&mut m.pto_count, c.u64()?)
        } else if c.lit(b"\"congestion_window\":") {
            once(&mut m.congestion_window, c.u64()?)
        } else if c.lit(b"\"bytes_in_flight\":") {
            once(&mut m.bytes_in_flight, c.u64()?)
        } else if c.lit(b"\"ssthresh\":") {
            once(&mut m.ssthresh, c.u64()?)
        } else if c.lit(b"\"packets_in_flight\":") {
            once(&mut m.packets_in_flight, c.u64()?)
        } else if c.lit(b"\"pacing_rate\":") {
            once(&mut m.pacing_rate, c.f64()?)
        } else {
            None
        }
    })?;
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(n: &str) -> Option<FastKind> {
        match n {
            "quic:packet_sent" => Some(FastKind::PacketSent),
            "quic:recovery_metrics_updated" => Some(FastKind::RecoveryMetrics),
            _ => None,
        }
    }

    #[test]
    fn same_result_as_serde_and_strict_otherwise() {
        let text = r#" {"time": 1.5e0, "name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT","packet_number":7,"dcid":"ab"},"raw":{"length":45},"frames":[{"frame_type":"ack","ack_delay":0.25,"acked_ranges":[[0],[2,9]]},{"frame_type":"ping"},{"frame_type":"stream","stream_id":4,"fin":true,"raw":{"payload_length":3}},{ "frame_type": "crypto", "offset":0,"length":90},{"frame_type":"padding"}]}}
"#;
        let fast = fast_record(text, kind).unwrap();
        assert_eq!((fast.time, fast.name), (1.5, "quic:packet_sent"));
        let data_start = text.find("{\"header").unwrap();
        assert_eq!(fast.data, &text[data_start..text.len() - 2]);
        assert_eq!(fast.typed, EventData::PacketSent(serde_json::from_str(fast.data).unwrap()));
        let text = r#"{"time":2,"name":"quic:recovery_metrics_updated","data":{"min_rtt":1,"smoothed_rtt":1.25,"rtt_variance":0,"congestion_window":15720,"ssthresh":18446744073709551615,"pacing_rate":1e3}}"#;
        let fast = fast_record(text, kind).unwrap();
        assert_eq!(fast.typed, EventData::RecoveryMetricsUpdated(serde_json::from_str(fast.data).unwrap()));
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
            r#"{"time":1,"name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT"},"frames":[{"offset":1,"frame_type":"crypto"}]}}"#,
            r#"{"time":1,"name":"quic:packet_sent","data":{"header":{"packet_type":"1RTT"},"frames":[{"frame_type":"crypto","length":1}]}}"#,
            r#"{"time":1,"name":"quic:packet_sent","data":{"header" :{"packet_type":"1RTT"}}}"#,
            r#"{"time":1,"name":"quic:recovery_metrics_updated","data":{"cwnd":3}}"#,
            r#"{"time":1,"name":"quic:recovery_metrics_updated","data":{"min_rtt":null}}"#,
            r#"{"time":1.,"name":"quic:recovery_metrics_updated","data":{}}"#,
            r#"{"time":-,"name":"quic:recovery_metrics_updated","data":{}}"#,
        ] {
            assert!(fast_record(bad, kind).is_none(), "{bad}");
        }
        for t in [
            "0.0123",
            "123456.789012345",
            "-0.5",
            "7",
            "0.1",
            "1.00000000000001",
            "3.14159265358979",
            "1234567890.1234567",
            "2.5e-3",
            "-0",
        ] {
            let mut c = Cursor { text: t, pos: 0 };
            assert_eq!(c.f64().map(f64::to_bits), Some(t.parse::<f64>().unwrap().to_bits()), "{t}");
            assert_eq!(c.pos, t.len(), "{t}");
        }
        for (text, want) in [
            ("\"abcdefghijklmnop\"", Some("abcdefghijklmnop")),
            ("\"abcdefghij\\\"x\"", None),
            ("\"abcdefgh\u{1}\"", None),
        ] {
            assert_eq!(Cursor { text, pos: 0 }.str(), want, "{text}");
        }
    }
}
