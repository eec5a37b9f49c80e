//! Hand-written JSON for the hottest events (packets and their frames, recovery metrics): the same bytes
//! serde would write, without the per-token `io::Write` round trips. Every key is one constant literal
//! with its separator (`,"packet_number":`), so it compiles to a few stores instead of a `memcpy` call.
//! Numbers are formatted in a small stack array that is appended whole and then cut to length (a
//! fixed-size copy is a few stores; a copy of the digits' own length is a `memcpy` call). Floats that are
//! exact in at most 6 decimals (qlog times and delays in ms) take a fixed-point path; all others go
//! through zmij (what serde_json uses), and both write the same shortest round-trip text. The benchmark
//! (`benches/qlog_vs_crate.rs`) is why this exists; every other event goes through serde.

use crate::events::{AckRange, PacketEvent, PacketHeader, PacketType, QuicFrame, RawInfo, RecoveryMetrics};

const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// The two digits of `n < 100`.
#[inline(always)]
fn pair(n: u64) -> [u8; 2] {
    let i = n as usize % 100 * 2;
    [DIGIT_PAIRS[i], DIGIT_PAIRS[i + 1]]
}

/// Writes the `len` lowest decimal digits of `v` into `out[..len]`, four at a time from the right, as itoa
/// does (`len` ≤ 20, and `v < 10^len` unless the digits above are to be cut).
#[inline(always)]
fn digits_into(out: &mut [u8; 20], mut v: u64, len: usize) {
    let mut end = len.min(20);
    while end >= 4 {
        let four = v % 10_000;
        v /= 10_000;
        let (hi, lo) = (pair(four / 100), pair(four % 100));
        out[end - 4..end].copy_from_slice(&[hi[0], hi[1], lo[0], lo[1]]);
        end -= 4;
    }
    if end >= 2 {
        out[end - 2..end].copy_from_slice(&pair(v % 100));
        v /= 100;
        end -= 2;
    }
    if end == 1 {
        out[0] = b'0' + (v % 10) as u8;
    }
}

/// The number of decimal digits of `v` (1 for 0).
#[inline(always)]
fn decimal_len(v: u64) -> usize {
    const POW10: [u64; 20] = {
        let mut t = [0u64; 20];
        let mut i = 1;
        t[0] = 1;
        while i < 20 {
            t[i] = t[i - 1] * 10;
            i += 1;
        }
        t
    };
    // log10(2) ≈ 1233/4096: a first guess from the bit length, off by at most one.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    let guess = (bits * 1233) >> 12;
    guess + usize::from(v >= POW10[guess % 20])
}

/// Appends the fixed-size `scratch` and cuts it back to its first `len` bytes.
#[inline(always)]
fn append_cut<const N: usize>(buf: &mut Vec<u8>, scratch: &[u8; N], len: usize) {
    let at = buf.len();
    buf.extend_from_slice(scratch);
    buf.truncate(at + len);
}

#[inline(always)]
pub(crate) fn u64(buf: &mut Vec<u8>, v: u64) {
    if v < 10 {
        buf.push(b'0' + v as u8);
    } else if v < 100 {
        buf.extend_from_slice(&pair(v));
    } else {
        let len = decimal_len(v);
        let mut scratch = [0u8; 20];
        digits_into(&mut scratch, v, len);
        append_cut(buf, &scratch, len);
    }
}

pub(crate) fn f64(buf: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        buf.extend_from_slice(b"null");
    } else if !fixed_point(buf, v) {
        buf.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    }
}

/// Below this, `m / 10^6` is exact in `f64` and a multiple of 10^-6 is more than one ulp away from the next.
const FIXED_MAX_MICROS: f64 = (1u64 << 52) as f64;

/// Writes `v` as zmij would when it is exactly `m / 10^6` for an integer `m` (the shortest round-trip text
/// then has at most 6 decimals: the unique multiple of 10^-6 that reads back as `v`, trailing zeros cut).
/// zmij writes fixed notation from 1e-5 up to 1e16, scientific below, so smaller values (and negative
/// ones) are left to it. Returns false when it wrote nothing.
#[inline]
fn fixed_point(buf: &mut Vec<u8>, v: f64) -> bool {
    if v == 0.0 && v.is_sign_positive() {
        buf.extend_from_slice(b"0.0");
        return true;
    }
    let scaled = v * 1e6;
    if !(v >= 1e-5 && scaled < FIXED_MAX_MICROS) {
        return false;
    }
    // i64, not u64: x86 converts signed integers in one instruction (and 0 < scaled < 2^52 here).
    let micros = (scaled + 0.5) as i64;
    // Exact test: `micros` and 10^6 are exact in f64, so the division is the correctly rounded `micros/10^6`,
    // which is what a reader of the text makes of it.
    if micros as f64 / 1e6 != v {
        return false;
    }
    let micros = micros as u64;
    let (whole, frac) = (micros / 1_000_000, micros % 1_000_000);
    u64(buf, whole);
    if frac == 0 {
        buf.extend_from_slice(b".0");
        return true;
    }
    // All six decimals behind the point, then cut after the last one that is not 0.
    let mut scratch = *b".00000000";
    let (hi, mid, lo) = (pair(frac / 10_000), pair(frac / 100), pair(frac));
    scratch[1..7].copy_from_slice(&[hi[0], hi[1], mid[0], mid[1], lo[0], lo[1]]);
    let mut decimals = [0u8; 8];
    decimals.copy_from_slice(&scratch[1..9]);
    let not_zero = u64::from_le_bytes(decimals) ^ u64::from_le_bytes(*b"00000000");
    let last = (63 - not_zero.leading_zeros() as usize) / 8;
    append_cut(buf, &scratch, last + 2);
    true
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
    use smallvec::smallvec;

    fn zmij_text(v: f64) -> String {
        zmij::Buffer::new().format_finite(v).to_string()
    }

    fn ours(v: f64) -> String {
        let mut buf = Vec::new();
        f64(&mut buf, v);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn floats_are_written_as_zmij_writes_them() {
        let mut checked_fixed = 0;
        let mut check = |v: f64| {
            if v.is_finite() {
                let mut scratch = Vec::new();
                checked_fixed += usize::from(fixed_point(&mut scratch, v));
                assert_eq!(ours(v), zmij_text(v), "{v:e} (bits {:#x})", v.to_bits());
                assert_eq!(ours(v).parse::<f64>().unwrap().to_bits(), v.to_bits(), "{v:e} reads back");
            }
        };
        // Edges: zero, the fixed/scientific border, the fixed-point limit, tiny and huge.
        for v in [
            0.0,
            -0.0,
            1e-5,
            0.00001,
            9.99999e-6,
            1e-6,
            0.000001,
            1.5,
            25.0,
            0.1,
            0.2,
            0.3,
            1e20,
            1e-9,
            4503599627.370495,
            4503599627.370496,
            4503599627.370497,
            4503599.627370496,
            1e15,
            123456789.123456,
            f64::MIN_POSITIVE,
            f64::MAX,
            5e-324,
            -1.25,
            0.0123,
            12345.6789,
            1e9,
            999999.999999,
        ] {
            check(v);
            check(-v);
            check(f64::from_bits(v.to_bits() + 1));
            check(f64::from_bits(v.to_bits().saturating_sub(1)));
        }
        // Every qlog-like time: m / 10^k for k ≤ 7 over a wide spread of m, and their neighbours.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let m = x % 10u64.pow((x >> 59) as u32 % 13);
            let k = (x >> 40) % 8;
            let v = m as f64 / 10f64.powi(k as i32);
            check(v);
            check(f64::from_bits(v.to_bits() + 1));
            check(f64::from_bits(x >> 2)); // any positive double
        }
        assert!(checked_fixed > 100_000, "the fixed-point path was taken {checked_fixed} times");
    }

    #[test]
    fn integers_are_written_as_itoa_writes_them() {
        let mut values = vec![0, 9, 10, 99, 100, 1230, u64::MAX, u64::MAX / 10, 10u64.pow(19), 10u64.pow(19) - 1];
        values.extend((0..64).map(|b| 1u64 << b));
        values.extend((0..20).map(|e| 10u64.pow(e)));
        values.extend((1..20).map(|e| 10u64.pow(e) - 1));
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64)); // every magnitude
        }
        for v in values {
            let mut buf = b"x".to_vec();
            u64(&mut buf, v);
            assert_eq!(&buf[1..], itoa::Buffer::new().format(v).as_bytes());
        }
    }

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
            frames: Some(smallvec![
                QuicFrame::Ack {
                    ack_delay: Some(0.25),
                    acked_ranges: smallvec![AckRange(0, 0), AckRange(2, 9)],
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
                QuicFrame::Ack { ack_delay: None, acked_ranges: smallvec![], ect1: None, ect0: None, ce: None },
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
