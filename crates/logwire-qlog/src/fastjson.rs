//! Hand-written JSON for the hottest events (packets and their frames): the same bytes serde would
//! write, without the per-token `io::Write` round trips. The benchmark (`benches/qlog_vs_crate.rs`) is
//! why this exists; every other event goes through serde.

use crate::events::{AckRange, PacketEvent, PacketHeader, PacketType, QuicFrame, RawInfo};

pub(crate) fn u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
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

fn key(buf: &mut Vec<u8>, first: &mut bool, k: &[u8]) {
    if !*first {
        buf.push(b',');
    }
    *first = false;
    buf.push(b'"');
    buf.extend_from_slice(k);
    buf.extend_from_slice(b"\":");
}

fn opt_u64(buf: &mut Vec<u8>, first: &mut bool, k: &[u8], v: Option<u64>) {
    if let Some(v) = v {
        key(buf, first, k);
        u64(buf, v);
    }
}

fn opt_str(buf: &mut Vec<u8>, first: &mut bool, k: &[u8], v: &Option<String>) {
    if let Some(v) = v {
        key(buf, first, k);
        str(buf, v);
    }
}

fn opt_bool(buf: &mut Vec<u8>, first: &mut bool, k: &[u8], v: Option<bool>) {
    if let Some(v) = v {
        key(buf, first, k);
        buf.extend_from_slice(if v { b"true" } else { b"false" });
    }
}

fn packet_type(t: PacketType) -> &'static [u8] {
    match t {
        PacketType::Initial => b"initial",
        PacketType::Handshake => b"handshake",
        PacketType::ZeroRtt => b"0RTT",
        PacketType::OneRtt => b"1RTT",
        PacketType::Retry => b"retry",
        PacketType::VersionNegotiation => b"version_negotiation",
        PacketType::StatelessReset => b"stateless_reset",
        PacketType::Unknown => b"unknown",
    }
}

pub(crate) fn header(buf: &mut Vec<u8>, h: &PacketHeader) {
    buf.extend_from_slice(b"{\"packet_type\":\"");
    buf.extend_from_slice(packet_type(h.packet_type));
    buf.push(b'"');
    let first = &mut false;
    opt_u64(buf, first, b"packet_number", h.packet_number);
    opt_str(buf, first, b"version", &h.version);
    opt_str(buf, first, b"scid", &h.scid);
    opt_str(buf, first, b"dcid", &h.dcid);
    opt_bool(buf, first, b"spin_bit", h.spin_bit);
    opt_bool(buf, first, b"key_phase_bit", h.key_phase_bit);
    buf.push(b'}');
}

pub(crate) fn raw(buf: &mut Vec<u8>, r: &RawInfo) {
    buf.push(b'{');
    let first = &mut true;
    opt_u64(buf, first, b"length", r.length);
    opt_u64(buf, first, b"payload_length", r.payload_length);
    opt_str(buf, first, b"data", &r.data);
    buf.push(b'}');
}

fn ranges(buf: &mut Vec<u8>, rs: &[AckRange]) {
    buf.push(b'[');
    for (i, r) in rs.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.push(b'[');
        u64(buf, r.0);
        if r.1 != r.0 {
            buf.push(b',');
            u64(buf, r.1);
        }
        buf.push(b']');
    }
    buf.push(b']');
}

/// ACK and STREAM frames by hand; the others through serde (the same bytes, less often).
pub(crate) fn frame(buf: &mut Vec<u8>, f: &QuicFrame) {
    match f {
        QuicFrame::Ack { ack_delay, acked_ranges, ect1, ect0, ce } => {
            buf.extend_from_slice(b"{\"frame_type\":\"ack\"");
            let first = &mut false;
            if let Some(d) = ack_delay {
                key(buf, first, b"ack_delay");
                f64(buf, *d);
            }
            key(buf, first, b"acked_ranges");
            ranges(buf, acked_ranges);
            opt_u64(buf, first, b"ect1", *ect1);
            opt_u64(buf, first, b"ect0", *ect0);
            opt_u64(buf, first, b"ce", *ce);
            buf.push(b'}');
        }
        QuicFrame::Stream { stream_id, offset, fin, length, raw: r } => {
            buf.extend_from_slice(b"{\"frame_type\":\"stream\",\"stream_id\":");
            u64(buf, *stream_id);
            let first = &mut false;
            opt_u64(buf, first, b"offset", *offset);
            opt_bool(buf, first, b"fin", *fin);
            opt_u64(buf, first, b"length", *length);
            if let Some(r) = r {
                key(buf, first, b"raw");
                raw(buf, r);
            }
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
    if let Some(r) = &p.raw {
        buf.extend_from_slice(b",\"raw\":");
        raw(buf, r);
    }
    if let Some(t) = &p.trigger {
        buf.extend_from_slice(b",\"trigger\":");
        str(buf, t);
    }
    buf.push(b'}');
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
    }
}
