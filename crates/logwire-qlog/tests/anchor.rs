//! Interoperability with the `qlog` 0.18.2 crate (quiche's): its writer's output read by logwire,
//! logwire's newest-layout output read by its reader, and lossless round trips.

mod common;
use common::workload;

use logwire_qlog::{EventData, Reader, Serialization, Streamer, Version};
use serde_json::Value;
use std::io::BufReader;
use std::path::PathBuf;

const N: u64 = 200;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/qlog").join(name)).unwrap()
}

/// The qlog crate's streamer writes to a `Box<dyn Write + Send + Sync>`: a file in a temp dir.
fn anchor_file(dir: &tempfile::TempDir, n: u64) -> Vec<u8> {
    let path = dir.path().join("anchor.sqlog");
    let file = std::fs::File::create(&path).unwrap();
    let mut s = workload::anchor_streamer(Box::new(std::io::BufWriter::new(file)));
    s.start_log().unwrap();
    for i in 0..n {
        s.add_event(workload::anchor_event(i)).unwrap();
    }
    s.finish_log().unwrap();
    drop(s);
    std::fs::read(&path).unwrap()
}

fn logwire_file(n: u64) -> Vec<u8> {
    let mut s = Streamer::new(Vec::new(), workload::logwire_config()).unwrap();
    s.start_log().unwrap();
    for i in 0..n {
        s.add_event(workload::time_of(i), &workload::logwire_event(i)).unwrap();
    }
    s.finish_log().unwrap()
}

#[test]
fn the_crates_writer_output_is_read_by_logwire() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = anchor_file(&dir, N);
    let r = Reader::new(&bytes).unwrap();
    assert_eq!(r.header.version, Version::Newest);
    assert!(!r.header.dual);
    let (_, traces, events, damage) = r.read_all();
    assert!(damage.is_empty());
    assert_eq!(events.len() as u64, N);
    for (i, e) in events.iter().enumerate() {
        let i = i as u64;
        let typed = e.typed(&traces[0]);
        assert_eq!(typed, workload::logwire_event(i), "event {i}");
        assert!((e.time_ms - workload::time_of(i)).abs() < 1e-9);
    }
}

#[test]
fn logwires_output_is_read_by_the_crates_reader() {
    let bytes = logwire_file(N);
    let reader =
        qlog::reader::QlogSeqReader::new(Box::new(BufReader::new(&bytes[..]))).expect("the crate reads the header");
    assert_eq!(reader.qlog.serialization_format, logwire_qlog::MEDIA_TYPE_JSON_SEQ);
    assert_eq!(reader.qlog.trace.event_schemas[0], logwire_qlog::writer::QUIC_SCHEMA);
    let mut count = 0;
    for (i, ev) in reader.enumerate() {
        let qlog::reader::Event::Qlog(ev) = ev else { panic!("event {i} fell back to untyped JSON") };
        let ours = serde_json::to_value(workload::logwire_event(i as u64)).unwrap();
        let theirs = serde_json::to_value(&ev.data).unwrap();
        // The crate serialises EventData as {name, data}.
        assert_eq!(theirs["data"], ours, "event {i}");
        assert_eq!(theirs["name"], workload::logwire_event(i as u64).name());
        count += 1;
    }
    assert_eq!(count, N);
}

#[test]
fn both_writers_write_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = anchor_file(&dir, N);
    let ours = logwire_file(N);
    let events = |b: &[u8]| -> Vec<Value> {
        let (_, traces, events, _) = Reader::new(b).unwrap().read_all();
        events.iter().map(|e| serde_json::json!([e.time_ms, e.name, e.data(&traces[0])])).collect()
    };
    assert_eq!(events(&theirs), events(&ours));
}

#[test]
fn round_trips_are_lossless() {
    let dir = tempfile::tempdir().unwrap();
    for (label, bytes) in [
        ("qlog crate", anchor_file(&dir, N)),
        ("ngtcp2 0.3", fixture("ngtcp2-0.12.1-client-clean.sqlog")),
        ("quinn 0.3", fixture("quinn-0.11.19-server.sqlog")),
    ] {
        let view = |b: &[u8]| -> Vec<Value> {
            let (_, traces, events, damage) = Reader::new(b).unwrap().read_all();
            assert!(damage.is_empty());
            events
                .iter()
                .map(|e| {
                    let extra: Vec<(String, String)> =
                        e.extra.iter().map(|(k, v)| (k.to_string(), v.get().to_string())).collect();
                    serde_json::json!([e.time_ms, e.name, e.data(&traces[0]), e.group(&traces[e.trace]), extra])
                })
                .collect()
        };
        let original = view(&bytes);
        for to in [Serialization::Seq, Serialization::Contained] {
            let (converted, damage) =
                logwire_qlog::tools::convert(&bytes, to, logwire_qlog::tools::Layout::Newest).unwrap();
            assert!(damage.is_empty());
            let r = Reader::new(&converted).unwrap();
            assert_eq!(r.header.version, Version::Newest);
            assert_eq!(r.header.serialization, to);
            let mut again = view(&converted);
            // Normalised names and fields, times, group ids, and every other field survive.
            for v in again.iter_mut() {
                v[4] = serde_json::json!([]);
            }
            let mut expected = original.clone();
            for v in expected.iter_mut() {
                v[4] = serde_json::json!([]);
            }
            assert_eq!(again.len(), expected.len(), "{label} → {to:?}");
            for (i, (a, b)) in again.iter().zip(&expected).enumerate() {
                assert_eq!(a, b, "{label} → {to:?}: event {i}");
            }
        }
        // Raw copy: byte for byte.
        let (_, _, events, _) = Reader::new(&bytes).unwrap().read_all();
        let mut s = Streamer::new(Vec::new(), workload::logwire_config()).unwrap();
        s.start_log().unwrap();
        for e in &events {
            s.add_raw_event(e).unwrap();
        }
        let copy = s.finish_log().unwrap();
        let body = |b: &[u8]| -> Vec<u8> {
            let start = b[1..].iter().position(|&c| c == 0x1e).unwrap() + 1;
            b[start..].to_vec()
        };
        assert_eq!(body(&copy), body(&bytes), "{label}: events copied byte for byte");
    }
}

#[test]
fn the_crate_reads_logwires_conversion_of_a_0_3_file_it_cannot_read_itself() {
    let bytes = fixture("ngtcp2-0.12.1-client-clean.sqlog");
    let direct = qlog::reader::QlogSeqReader::new(Box::new(BufReader::new(&bytes[..])));
    assert!(direct.is_err(), "qlog 0.18.2 rejects the 0.3 header");
    let (converted, _) =
        logwire_qlog::tools::convert(&bytes, Serialization::Seq, logwire_qlog::tools::Layout::Newest).unwrap();
    let reader = qlog::reader::QlogSeqReader::new(Box::new(BufReader::new(&converted[..]))).unwrap();
    let events: Vec<_> = reader.collect();
    assert_eq!(events.len(), 122);
    // Everything is typed by the crate except the two parameters_set events: its `ParametersSet`
    // requires an `unknown_parameters` field that neither 0.3 nor the drafts make mandatory.
    let untyped: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            qlog::reader::Event::Json(j) => Some(j.name.as_str()),
            qlog::reader::Event::Qlog(_) => None,
        })
        .collect();
    assert_eq!(untyped, ["quic:parameters_set", "quic:parameters_set"]);
}

#[test]
fn frame_mode_matches_whole_events() {
    let mut s = Streamer::new(Vec::new(), workload::logwire_config()).unwrap();
    s.start_log().unwrap();
    let EventData::PacketSent(p) = workload::logwire_event(0) else { unreachable!() };
    s.start_packet(0.0, true, &p.header, p.raw.as_ref()).unwrap();
    for f in p.frames.as_deref().unwrap_or_default() {
        s.add_frame(f).unwrap();
    }
    s.finish_frames().unwrap();
    let out = s.finish_log().unwrap();
    let (_, traces, events, _) = Reader::new(&out).unwrap().read_all();
    assert_eq!(events[0].typed(&traces[0]), workload::logwire_event(0));
}

#[test]
fn background_streamer_writes_the_same_bytes() {
    // Enough events for a few hundred 64 KiB buffers to be handed over and recycled.
    let n = 20_000;
    let mut s = Streamer::background(Vec::new(), workload::logwire_config()).unwrap();
    s.start_log().unwrap();
    for i in 0..n {
        s.add_event(workload::time_of(i), &workload::logwire_event(i)).unwrap();
    }
    let out = s.finish_log().unwrap();
    assert!(out.len() > 64 * 64 * 1024 / 10, "{} bytes", out.len());
    assert!(out == logwire_file(n), "the background streamer's bytes differ from the plain streamer's");
}

#[test]
fn compressed_output_reads_back() {
    for c in [logwire_qlog::Compression::Gzip, logwire_qlog::Compression::Zstd] {
        let mut s =
            Streamer::new(Vec::new(), logwire_qlog::StreamerConfig { compression: c, ..workload::logwire_config() })
                .unwrap();
        s.start_log().unwrap();
        for i in 0..N {
            s.add_event(workload::time_of(i), &workload::logwire_event(i)).unwrap();
        }
        let packed = s.finish_log().unwrap();
        let plain = logwire_qlog::compress::decompress(packed.clone(), 1 << 24).unwrap();
        assert!(packed.len() < plain.len() / 4, "{c:?}");
        assert_eq!(plain, logwire_file(N));
    }
}
