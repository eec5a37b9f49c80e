//! Hand-written JSON for the hottest events (packets and their frames, recovery metrics): the same bytes
//! serde would write, without the per-token `io::Write` round trips. Every key is one constant literal
//! with its separator (`,"packet_number":`), so it compiles to a few stores instead of a `memcpy` call;
//! numbers go through itoa and floats through zmij (what serde_json uses). The benchmark
//! (`benches/qlog_vs_crate.rs`) is why this exists; every other event goes through serde.

use crate::events::{AckRange, PacketEvent, PacketHeader, PacketType, QuicFrame, RawInfo, RecoveryMetrics};

pub(crate) fn u64(buf: &mut Vec<u8>, v: u64) {
    if v < 10 {
        buf.push(b'0' + v as u8);
    } else {
        buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
}

pub(crate) fn f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        buf.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    } else {
        buf.extend_from_slice(b"null");
    }
}

/// A string without characters that need escaping is copied; others go through serde_json.
pub(crate) fn str(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        // Serialising a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

/// Opens an object whose members are all optional: the first member writes `{`, the others `,`.
struct Members<'b> {
    buf: &'b mut Vec<u8>,
    open: bool,
}

impl<'b> Members<'b> {
    fn new(buf: &'b mut Vec<u8>) -> Members<'b> {
        Members { buf, open: false }
    }

    /// `key` is the member's `"name":` literal.
    fn key(&mut self, key: &[u8]) -> &mut Vec<u8> {
        self.buf.push(if self.open { b',' } else { b'{' });
        self.open = true;
        self.buf.extend_from_slice(key);
        self.buf
    }

    fn close(self) {
        if !self.open {
            self.buf.push(b'{');
        }
        self.buf.push(b'}');
    }
}

macro_rules! opt {
    ($buf:expr, $lit:literal, $v:expr, $write:path) => {
        if let Some(v) = $v {
            $buf.extend_from_slice($lit);
            $write($buf, v);
        }
    };
}

fn bool(buf: &mut Vec<u8>, v: bool) {
    buf.extend_from_slice(if v { b"true" } else { b"false" });
}

pub(crate) fn header(buf: &mut Vec<u8>, h: &PacketHeader) {
    match h.packet_type {
        PacketType::OneRtt => buf.extend_from_slice(b"{\"packet_type\":\"1RTT\""),
        PacketType::Initial => buf.extend_from_slice(b"{\"packet_type\":\"initial\""),
        PacketType::Handshake => buf.extend_from_slice(b"{\"packet_type\":\"handshake\""),
        PacketType::ZeroRtt => buf.extend_from_slice(b"{\"packet_type\":\"0RTT\""),
        PacketType::Retry => buf.extend_from_slice(b"{\"packet_type\":\"retry\""),
        PacketType::VersionNegotiation => buf.extend_from_slice(b"{\"packet_type\":\"version_negotiation\""),
        PacketType::StatelessReset => buf.extend_from_slice(b"{\"packet_type\":\"stateless_reset\""),
        PacketType::Unknown => buf.extend_from_slice(b"{\"packet_type\":\"unknown\""),
    }
    opt!(buf, b",\"packet_number\":", h.packet_number, u64);
    opt!(buf, b",\"version\":", h.version.as_deref(), str);
    opt!(buf, b",\"scid\":", h.scid.as_deref(), str);
    opt!(buf, b",\"dcid\":", h.dcid.as_deref(), str);
    opt!(buf, b",\"spin_bit\":", h.spin_bit, bool);
    opt!(buf, b",\"key_phase_bit\":", h.key_phase_bit, bool);
    buf.push(b'}');
}

pub(crate) fn raw(buf: &mut Vec<u8>, r: &RawInfo) {
    let mut m = Members::new(buf);
    if let Some(v) = r.length {
        u64(m.key(b"\"length\":"), v);
    }
    if let Some(v) = r.payload_length {
        u64(m.key(b"\"payload_length\":"), v);
    }
    if let Some(v) = &r.data {
        str(m.key(b"\"data\":"), v);
    }
    m.close();
}

fn ranges(buf: &mut Vec<u8>, rs: &[AckRange]) {
    buf.push(b'[');
    for (i, r) in rs.iter().enumerate() {
        buf.extend_from_slice(if i > 0 { b",[" } else { b"[" });
        u64(buf, r.0);
        if r.1 != r.0 {
            buf.push(b',');
            u64(buf, r.1);
        }
        buf.push(b']');
    }
    buf.push(b']');
}

/// ACK, STREAM and CRYPTO frames by hand; the others through serde (the same bytes, less often).
pub(crate) fn frame(buf: &mut Vec<u8>, f: &QuicFrame) {
    match f {
        QuicFrame::Ack { ack_delay, acked_ranges, ect1, ect0, ce } => {
            buf.extend_from_slice(b"{\"frame_type\":\"ack\"");
            opt!(buf, b",\"ack_delay\":", *ack_delay, f64);
            buf.extend_from_slice(b",\"acked_ranges\":");
            ranges(buf, acked_ranges);
            opt!(buf, b",\"ect1\":", *ect1, u64);
            opt!(buf, b",\"ect0\":", *ect0, u64);
            opt!(buf, b",\"ce\":", *ce, u64);
            buf.push(b'}');
        }
        QuicFrame::Stream { stream_id, offset, fin, length, raw: r } => {
            buf.extend_from_slice(b"{\"frame_type\":\"stream\",\"stream_id\":");
            u64(buf, *stream_id);
            opt!(buf, b",\"offset\":", *offset, u64);
            opt!(buf, b",\"fin\":", *fin, bool);
            opt!(buf, b",\"length\":", *length, u64);
            opt!(buf, b",\"raw\":", r, raw);
            buf.push(b'}');
        }
        QuicFrame::Crypto { offset, length, raw: r } => {
            buf.extend_from_slice(b"{\"frame_type\":\"crypto\",\"offset\":");
            u64(buf, *offset);
            opt!(buf, b",\"length\":", *length, u64);
            opt!(buf, b",\"raw\":", r, raw);
            buf.push(b'}');
        }
        other => {
            let _ = serde_json::to_writer(&mut *buf, other);
        }
    }
}

pub(crate) fn packet(buf: &mut Vec<u8>, p: &PacketEvent) {
    buf.extend_from_slice(b"{\"header\":");
    header(buf, &p.header);
    if let Some(frames) = &p.frames {
        buf.extend_from_slice(b",\"frames\":[");
        for (i, f) in frames.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            frame(buf, f);
        }
        buf.push(b']');
    }
    opt!(buf, b",\"raw\":", &p.raw, raw);
    opt!(buf, b",\"trigger\":", p.trigger.as_deref(), str);
    buf.push(b'}');
}

pub(crate) fn recovery_metrics(buf: &mut Vec<u8>, r: &RecoveryMetrics) {
    let mut m = Members::new(buf);
    let floats = [
        (&b"\"min_rtt\":"[..], r.min_rtt),
        (b"\"smoothed_rtt\":", r.smoothed_rtt),
        (b"\"latest_rtt\":", r.latest_rtt),
        (b"\"rtt_variance\":", r.rtt_variance),
    ];
    for (key, v) in floats {
        if let Some(v) = v {
            f64(m.key(key), v);
        }
    }
    let ints = [
        (&b"\"pto_count\":"[..], r.pto_count),
        (b"\"congestion_window\":", r.congestion_window),
        (b"\"bytes_in_flight\":", r.bytes_in_flight),
        (b"\"ssthresh\":", r.ssthresh),
        (b"\"packets_in_flight\":", r.packets_in_flight),
    ];
    for (key, v) in ints {
        if let Some(v) = v {
            u64(m.key(key), v);
        }
    }
    if let Some(v) = r.pacing_rate {
        f64(m.key(b"\"pacing_rate\":"), v);
    }
    m.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_as_serde() {
        let p = PacketEvent {
            header: PacketHeader {
                packet_type: PacketType::OneRtt,
                packet_number: Some(7),
                version: Some("00000001".into()),
                scid: None,
                dcid: Some("ab\"c".into()),
                spin_bit: Some(true),
                key_phase_bit: None,
            },
            frames: Some(vec![
                QuicFrame::Ack {
                    ack_delay: Some(0.25),
                    acked_ranges: vec![AckRange(0, 0), AckRange(2, 9)],
                    ect1: None,
                    ect0: Some(1),
                    ce: None,
                },
                QuicFrame::Stream {
                    stream_id: 4,
                    offset: None,
                    fin: Some(true),
                    length: Some(3),
                    raw: Some(RawInfo { length: None, payload_length: Some(3), data: Some("616263".into()) }),
                },
                QuicFrame::MaxData { maximum: 10 },
                QuicFrame::Ack { ack_delay: None, acked_ranges: vec![], ect1: None, ect0: None, ce: None },
            ]),
            raw: Some(RawInfo { length: Some(1252), payload_length: None, data: None }),
            trigger: Some("pto_probe".into()),
        };
        let mut fast = Vec::new();
        packet(&mut fast, &p);
        assert_eq!(String::from_utf8(fast).unwrap(), serde_json::to_string(&p).unwrap());
        let crypto = QuicFrame::Crypto { offset: 5, length: Some(90), raw: Some(RawInfo::default()) };
        let mut fast = Vec::new();
        frame(&mut fast, &crypto);
        assert_eq!(String::from_utf8(fast).unwrap(), serde_json::to_string(&crypto).unwrap());
        for m in [
            RecoveryMetrics::default(),
            RecoveryMetrics { smoothed_rtt: Some(1.5), ssthresh: Some(u64::MAX), ..Default::default() },
            RecoveryMetrics {
                min_rtt: Some(0.333),
                smoothed_rtt: Some(25.0),
                latest_rtt: Some(1e-9),
                rtt_variance: Some(7.25),
                pto_count: Some(0),
                congestion_window: Some(14520),
                bytes_in_flight: Some(1200),
                ssthresh: Some(1),
                packets_in_flight: Some(3),
                pacing_rate: Some(1e20),
            },
        ] {
            let mut fast = Vec::new();
            recovery_metrics(&mut fast, &m);
            assert_eq!(String::from_utf8(fast).unwrap(), serde_json::to_string(&m).unwrap());
        }
    }
}
