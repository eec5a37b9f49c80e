//! The benchmark workload of ../shared/notes/qlog.md §4, built with both crates: alternating
//! `quic:packet_sent` (1-RTT, ACK + STREAM) and `quic:packet_received` (1-RTT, ACK), 12.3 µs apart.
#![allow(dead_code)]

use logwire_qlog as lw;
use lw::smallvec::smallvec;

pub const STEP_MS: f64 = 0.0123;

pub fn time_of(i: u64) -> f64 {
    (i as f64 * STEP_MS * 10_000.0).round() / 10_000.0
}

pub fn logwire_event(i: u64) -> lw::EventData {
    let header = |pn| lw::PacketHeader {
        packet_type: lw::PacketType::OneRtt,
        packet_number: Some(pn),
        version: None,
        scid: None,
        dcid: None,
        spin_bit: None,
        key_phase_bit: None,
    };
    if i % 2 == 0 {
        lw::EventData::PacketSent(lw::PacketEvent {
            header: header(i),
            raw: Some(lw::RawInfo { length: Some(1252), payload_length: Some(1230), data: None }),
            frames: Some(smallvec![
                lw::QuicFrame::Ack {
                    ack_delay: Some(0.25),
                    acked_ranges: smallvec![lw::AckRange(0, i / 2)],
                    ect1: None,
                    ect0: None,
                    ce: None,
                },
                lw::QuicFrame::Stream {
                    stream_id: 0,
                    offset: Some(i * 1200),
                    fin: Some(false),
                    length: None,
                    raw: Some(lw::RawInfo { length: None, payload_length: Some(1200), data: None }),
                },
            ]),
            trigger: None,
        })
    } else {
        lw::EventData::PacketReceived(lw::PacketEvent {
            header: header(i / 2),
            raw: Some(lw::RawInfo { length: Some(45), payload_length: Some(20), data: None }),
            frames: Some(smallvec![lw::QuicFrame::Ack {
                ack_delay: Some(0.5),
                acked_ranges: smallvec![lw::AckRange(0, i)],
                ect1: None,
                ect0: None,
                ce: None,
            }]),
            trigger: None,
        })
    }
}

pub fn anchor_event(i: u64) -> qlog::events::Event {
    use qlog::events::quic::{AckRange, PacketHeader, PacketReceived, PacketSent, PacketType, QuicFrame};
    use qlog::events::{EventData, RawInfo};
    let header = |pn| PacketHeader::new(PacketType::OneRtt, Some(pn), None, None, None, None, None);
    let data = if i % 2 == 0 {
        EventData::QuicPacketSent(PacketSent {
            header: header(i),
            raw: Some(RawInfo { length: Some(1252), payload_length: Some(1230), data: None }),
            frames: Some(vec![
                QuicFrame::Ack {
                    ack_delay: Some(0.25),
                    acked_ranges: Some(vec![AckRange::new(0, i / 2)]),
                    ect1: None,
                    ect0: None,
                    ce: None,
                    raw: None,
                },
                QuicFrame::Stream {
                    stream_id: 0,
                    offset: Some(i * 1200),
                    fin: Some(false),
                    raw: Some(Box::new(RawInfo { length: None, payload_length: Some(1200), data: None })),
                },
            ]),
            ..Default::default()
        })
    } else {
        EventData::QuicPacketReceived(PacketReceived {
            header: header(i / 2),
            raw: Some(RawInfo { length: Some(45), payload_length: Some(20), data: None }),
            frames: Some(vec![QuicFrame::Ack {
                ack_delay: Some(0.5),
                acked_ranges: Some(vec![AckRange::new(0, i)]),
                ect1: None,
                ect0: None,
                ce: None,
                raw: None,
            }]),
            ..Default::default()
        })
    };
    qlog::events::Event::with_time(time_of(i), data)
}

pub fn anchor_streamer(out: Box<dyn std::io::Write + Send + Sync>) -> qlog::streamer::QlogStreamer {
    let trace = qlog::TraceSeq::new(
        Some("bench".into()),
        None,
        None,
        Some(qlog::VantagePoint { name: Some("bench".into()), ty: qlog::VantagePointType::Server, flow: None }),
        vec![qlog::events::QUIC_URI.to_string()],
    );
    qlog::streamer::QlogStreamer::new(
        Some("bench".into()),
        None,
        std::time::Instant::now(),
        trace,
        qlog::events::EventImportance::Extra,
        qlog::streamer::EventTimePrecision::MicroSeconds,
        out,
    )
}

pub fn logwire_config() -> lw::StreamerConfig {
    lw::StreamerConfig {
        title: Some("bench".into()),
        vantage_point: "server".into(),
        vantage_point_name: Some("bench".into()),
        ..lw::StreamerConfig::default()
    }
}
