//! The reader on the real fixtures (every event, per-name counts checked against the file's text) and
//! on every layout and leniency the issue lists.

mod common;

use logwire_qlog::{EventData, QuicFrame, Reader, Serialization, Version};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/qlog").join(name);
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("fixture {} is missing ({e}); it lives in ../shared/fixtures/qlog", p.display()))
}

/// Counts `"name":"…"` at the top level of each record by scanning the text, independently of the reader.
fn names_in_text(bytes: &[u8]) -> BTreeMap<String, usize> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = BTreeMap::new();
    for record in text.split('\u{1e}').skip(2) {
        // Every event record of these files starts with {"time":…,"name":"…".
        let i = record.find("\"name\":\"").expect("an event without a name");
        let rest = &record[i + 8..];
        let name = &rest[..rest.find('"').unwrap()];
        *out.entry(name.to_string()).or_insert(0) += 1;
    }
    out
}

fn names_read(bytes: &[u8]) -> (BTreeMap<String, usize>, Vec<logwire_qlog::Damage>) {
    let (_, _, events, damage) = Reader::new(bytes).unwrap().read_all();
    let mut out = BTreeMap::new();
    for e in &events {
        *out.entry(e.original_name.to_string()).or_insert(0) += 1;
    }
    (out, damage)
}

#[test]
fn every_fixture_is_read_completely() {
    for (file, total, version) in [
        ("ngtcp2-0.12.1-client-clean.sqlog", 122, Version::V0_3),
        ("quinn-0.11.19-server.sqlog", 124, Version::V0_3),
        ("SYNTHETIC-qlog-crate-0.18.2-streamer.sqlog", 60, Version::Newest),
    ] {
        let bytes = fixture(file);
        let expected = names_in_text(&bytes);
        let (read, damage) = names_read(&bytes);
        assert!(damage.is_empty(), "{file}: {damage:?}");
        assert_eq!(read, expected, "{file}");
        assert_eq!(read.values().sum::<usize>(), total, "{file}");
        let r = Reader::new(&bytes).unwrap();
        assert_eq!(r.header.version, version, "{file}");
        assert_eq!(r.header.serialization, Serialization::Seq);
    }
}

#[test]
fn ngtcp2_names_fields_and_times_are_normalised() {
    let bytes = fixture("ngtcp2-0.12.1-client-clean.sqlog");
    let r = Reader::new(&bytes).unwrap();
    assert_eq!(r.traces[0].group_id.as_deref(), Some("cff27fe25f1c143452d75fcd291a0f3c0efa"));
    assert_eq!(r.traces[0].vantage_point_type(), Some("client"));
    let (_, traces, events, _) = r.read_all();
    let by_name = |n: &str| events.iter().filter(|e| e.name == n).count();
    assert_eq!(by_name("quic:parameters_set"), 2);
    assert_eq!(by_name("quic:packet_sent"), 14);
    assert_eq!(by_name("quic:packet_received"), 46);
    assert_eq!(by_name("quic:recovery_metrics_updated"), 60);
    let params = events.iter().find(|e| e.name == "quic:parameters_set").unwrap().data(&traces[0]);
    assert_eq!(params["initiator"], "local");
    assert!(params.get("owner").is_none());
    // Integer ms times, ascending; reference_time 0 is no real clock.
    assert!(events.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    assert_eq!(events[0].epoch_ms(&traces[0]), None);
    // `[[0]]` ack ranges are typed as one packet.
    let typed: Vec<EventData> = events.iter().map(|e| e.typed(&traces[0])).collect();
    let ack = typed.iter().find_map(|d| match d {
        EventData::PacketReceived(p) => p.frames.as_ref()?.iter().find_map(|f| match f {
            QuicFrame::Ack { acked_ranges, .. } => Some(acked_ranges.clone()),
            _ => None,
        }),
        _ => None,
    });
    assert_eq!(ack.as_deref(), Some(&[logwire_qlog::AckRange(0, 0)][..]));
    assert_eq!(typed.iter().filter(|d| matches!(d, EventData::PacketSent(_))).count(), 14);
}

#[test]
fn quinn_rtts_in_seconds_and_u64_max() {
    let bytes = fixture("quinn-0.11.19-server.sqlog");
    let (_, traces, events, _) = Reader::new(&bytes).unwrap().read_all();
    assert!(traces[0].rtt_in_seconds, "quinn 0.11 logs RTTs in seconds");
    let m = events.iter().find(|e| e.name == "quic:recovery_metrics_updated").unwrap();
    assert_eq!(m.group_id.as_deref(), Some("a72b68ac17d2c78b"));
    match m.typed(&traces[0]) {
        EventData::RecoveryMetricsUpdated(r) => {
            assert_eq!(r.ssthresh, Some(u64::MAX));
            assert_eq!(r.min_rtt, Some(333.0));
        }
        other => panic!("{other:?}"),
    }
    // header.length → raw.length
    let sent = events.iter().find(|e| e.name == "quic:packet_sent").unwrap().data(&traces[0]);
    assert_eq!(sent["raw"]["length"], 145);
    assert!(sent["header"].get("length").is_none());
}

#[test]
fn draft_00_array_events() {
    // picoquic's layout (loglib/qlog.c): event_fields, microsecond units, reference_time as a string.
    let text = r#"{"qlog_version":"draft-00","title":"picoquic","traces":[{"vantage_point":{"name":"backend-67","type":"server"},
"title":"picoquic","description":"0123456789abcdef","event_fields":["relative_time","path_id","category","event","data"],
"configuration":{"time_units":"us"},"common_fields":{"protocol_type":"QUIC_HTTP3","reference_time":"1727784000000000"},
"events":[
[0, 0, "transport", "datagram_received", {"byte_length": 1252}],
[1500, 0, "transport", "packet_received", {"packet_type": "initial", "header": {"packet_size": 1252, "packet_number": 0}, "frames": [{"frame_type": "ack", "acked_ranges": [[0, 2]]}]}],
[2250, 0, "recovery", "metrics_updated", {"cwnd": 15360, "smoothed_rtt": 25000}],
[3000, 0, "recovery", "packet_lost", {"header": {"packet_number": 1}}]
]}]}"#;
    let r = Reader::new(text.as_bytes()).unwrap();
    assert_eq!(r.header.version, Version::Draft00);
    assert_eq!(r.header.serialization, Serialization::Contained);
    let (_, traces, events, damage) = r.read_all();
    assert!(damage.is_empty(), "{damage:?}");
    let names: Vec<&str> = events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(
        names,
        ["quic:udp_datagrams_received", "quic:packet_received", "quic:recovery_metrics_updated", "quic:packet_lost"]
    );
    assert_eq!(events[1].time_ms, 1.5);
    assert_eq!(events[1].epoch_ms(&traces[0]), Some(1_727_784_000_001.5));
    assert_eq!(events[1].extra[0].0, "path_id");
    let d = events[1].data(&traces[0]);
    assert_eq!(d["raw"]["length"], 1252);
    assert_eq!(events[2].data(&traces[0])["congestion_window"], 15360);
}

#[test]
fn quic_go_dual_header_keeps_old_names_normalised() {
    let text = "\u{1e}{\"file_schema\":\"urn:ietf:params:qlog:file:sequential\",\"serialization_format\":\"application/qlog+json-seq\",\"title\":\"quic-go qlog\",\"code_version\":\"(devel)\",\"trace\":{\"vantage_point\":{\"type\":\"client\"},\"common_fields\":{\"ODCID\":\"b9c8d8a1\",\"group_id\":\"b9c8d8a1\",\"reference_time\":{\"clock_type\":\"monotonic\",\"epoch\":\"unknown\",\"wall_clock_time\":\"2026-08-03T10:00:00.000Z\"}},\"event_schemas\":[\"urn:ietf:params:qlog:events:quic-12\"]},\"qlog_format\":\"JSON-SEQ\",\"qlog_version\":\"0.3\"}\n\
\u{1e}{\"time\":0.5,\"name\":\"transport:packet_sent\",\"data\":{\"header\":{\"packet_type\":\"initial\",\"packet_number\":\"0\"},\"raw\":{\"length\":1280}}}\n\
\u{1e}{\"time\":1.25,\"name\":\"http3:frame_created\",\"data\":{\"stream_id\":0,\"frame\":{\"frame_type\":\"headers\",\"headers\":[{\"name\":\":method\",\"value\":\"GET\"}]}}}\n\
\u{1e}{\"time\":2,\"name\":\"recovery:spurious_loss\",\"data\":{\"packet_number\":3}}\n";
    let r = Reader::new(text.as_bytes()).unwrap();
    assert_eq!(r.header.version, Version::Newest);
    assert!(r.header.dual);
    assert_eq!(r.traces[0].group_id.as_deref(), Some("b9c8d8a1"));
    let (_, traces, events, _) = r.read_all();
    assert_eq!(events[0].name, "quic:packet_sent");
    assert_eq!(events[1].name, "http3:frame_created");
    assert_eq!(events[2].name, "quic:spurious_loss", "an extension event keeps its data");
    match events[0].typed(&traces[0]) {
        EventData::PacketSent(p) => assert_eq!(p.header.packet_number, Some(0), "uint64 from a string"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(events[1].typed(&traces[0]), EventData::Http3FrameCreated(_)));
    // Monotonic clock with a wall-clock anchor.
    assert!(events[0].epoch_ms(&traces[0]).is_some());
}

#[test]
fn newest_http_capsules_are_not_confused_with_old_http() {
    let newest = "\u{1e}{\"file_schema\":\"urn:ietf:params:qlog:file:sequential\",\"serialization_format\":\"application/qlog+json-seq\",\"trace\":{\"event_schemas\":[\"urn:ietf:params:qlog:events:http-14\"]}}\n\u{1e}{\"time\":1,\"name\":\"http:capsule_parsed\",\"data\":{}}\n\u{1e}{\"time\":2,\"name\":\"http:some_new_event\",\"data\":{}}\n";
    let (_, _, events, _) = Reader::new(newest.as_bytes()).unwrap().read_all();
    assert_eq!(events[0].name, "http:capsule_parsed");
    assert_eq!(events[1].name, "http:some_new_event");
    let old = "\u{1e}{\"qlog_version\":\"0.3\",\"qlog_format\":\"JSON-SEQ\",\"trace\":{}}\n\u{1e}{\"time\":1,\"name\":\"http:frame_parsed\",\"data\":{}}\n";
    let (_, _, events, _) = Reader::new(old.as_bytes()).unwrap().read_all();
    assert_eq!(events[0].name, "http3:frame_parsed");
}

#[test]
fn v0_4_and_delta_times() {
    let text = "\u{1e}{\"qlog_version\":\"0.4\",\"qlog_format\":\"JSON-SEQ\",\"trace\":{\"common_fields\":{\"time_format\":\"delta\",\"reference_time\":1727784000000}}}\n\
\u{1e}{\"time\":10,\"name\":\"quic:packet_sent\",\"data\":{\"header\":{\"packet_type\":\"1RTT\"}}}\n\
\u{1e}{\"time\":5,\"name\":\"h3:frame_parsed\",\"data\":{}}\n\
\u{1e}{\"time\":\"2.5\",\"name\":\"recovery:metrics_updated\",\"data\":{\"smoothed_rtt\":30}}\n";
    let (h, traces, events, _) = Reader::new(text.as_bytes()).unwrap().read_all();
    assert_eq!(h.version, Version::V0_4);
    let times: Vec<f64> = events.iter().map(|e| e.time_ms).collect();
    assert_eq!(times, [10.0, 15.0, 17.5]);
    assert_eq!(events[2].epoch_ms(&traces[0]), Some(1_727_784_000_017.5));
    assert_eq!(events[1].name, "http3:frame_parsed");
}

#[test]
fn pretty_printed_records_span_lines() {
    let text = "\u{1e}{\n  \"qlog_version\": \"0.3\",\n  \"trace\": {}\n}\n\u{1e}{\n  \"time\": 1,\n  \"name\": \"transport:packet_received\",\n  \"data\": {\n    \"header\": {\"packet_type\": \"1RTT\"}\n  }\n}\n\u{1e}{\"time\":2,\"name\":\"transport:packet_sent\",\"data\":{}}\n";
    let (_, _, events, damage) = Reader::new(text.as_bytes()).unwrap().read_all();
    assert!(damage.is_empty());
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].record, 1);
}

#[test]
fn resync_after_corrupt_and_truncated_records() {
    let bytes = fixture("ngtcp2-0.12.1-client-clean.sqlog");
    let text = String::from_utf8(bytes).unwrap();
    let records: Vec<&str> = text.split('\u{1e}').collect();
    // Corrupt record 5 in the middle, and cut the file inside the last record (a crash while writing).
    let mut damaged = String::new();
    for (i, r) in records.iter().enumerate().skip(1) {
        damaged.push('\u{1e}');
        if i == 6 {
            damaged.push_str(&r[..r.len() / 2]);
            damaged.push('\n');
        } else {
            damaged.push_str(r);
        }
    }
    let cut = damaged.len() - 20;
    let damaged = &damaged.as_bytes()[..cut];
    let (_, _, events, damage) = Reader::new(damaged).unwrap().read_all();
    assert_eq!(events.len(), 122 - 2);
    assert_eq!(damage.len(), 2, "{damage:?}");
    assert_eq!(damage[0].record, 5);
    assert!(!damage[0].truncated);
    let offset5 = text.match_indices('\u{1e}').nth(5).unwrap().0;
    assert_eq!(damage[0].offset, offset5);
    assert_eq!(damage[1].record, 122);
    assert!(damage[1].truncated, "{}", damage[1]);
    assert!(damage[1].to_string().contains("record 122"));
}

#[test]
fn compressed_files_are_accepted() {
    use std::io::Write;
    let bytes = fixture("quinn-0.11.19-server.sqlog");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&bytes[..], 3).unwrap();
    for packed in [gz, zst] {
        assert!(packed.len() < bytes.len() / 4);
        let plain = logwire_qlog::compress::decompress(packed.clone(), 1 << 20).unwrap();
        assert_eq!(plain, bytes);
        assert!(logwire_qlog::compress::decompress(packed, 1000).is_err(), "the size limit holds");
    }
}

#[test]
fn hostile_inputs_are_errors_not_panics() {
    for input in [&b""[..], b"   ", b"x", b"\x1e", b"\x1e\x1e\x1e", b"{", b"{\"traces\":7}", b"\x1e[1,2]\n", b"{}"] {
        if let Ok(r) = Reader::new(input) {
            let _ = r.read_all();
        }
    }
    let (_, _, events, damage) =
        Reader::new(b"\x1e{\"qlog_version\":\"0.3\"}\n\x1e{\"name\":\"x\"}\n\x1e{\"time\":1}\n\x1e\xff\xfe\n")
            .unwrap()
            .read_all();
    assert!(events.is_empty());
    assert_eq!(damage.len(), 3);
}

/// The reader types packet events in one strict pass and leaves everything else to serde: on the real
/// files, the logwire workload and edge cases, both ways must give the same typed events.
#[test]
fn fast_typed_packets_equal_the_serde_path() {
    let lenient = "\u{1e}{\"file_schema\":\"urn:ietf:params:qlog:file:sequential\",\"serialization_format\":\"application/qlog+json-seq\",\"trace\":{}}\n".to_string()
        + "\u{1e}{\"time\":1,\"name\":\"quic:packet_sent\",\"data\":{\"header\":{\"packet_type\":\"1RTT\",\"packet_number\":\"7\"}}}\n"
        + "\u{1e}{\"time\":2,\"name\":\"quic:packet_sent\",\"data\":{\"header\":{\"packet_type\":\"x\"},\"frames\":[{\"frame_type\":\"ack\",\"ack_delay\":1e999}]}}\n"
        + "\u{1e}{\"time\":3,\"name\":\"quic:packet_received\",\"data\":{\"header\":{\"packet_type\":\"initial\",\"length\":5},\"frames\":[{\"frame_type\":\"padding\"}]}}\n"
        + "\u{1e}{ \"time\" : 4.25 , \"name\" : \"quic:packet_received\" , \"data\" : { \"header\" : { \"packet_type\" : \"handshake\" } , \"frames\" : [ { \"frame_type\" : \"ack\" , \"acked_ranges\" : [ [ 1 , 3 ] , [ 5 ] ] } ] } }\n";
    let mut sent = Vec::new();
    let mut s = logwire_qlog::Streamer::new(&mut sent, Default::default()).unwrap();
    s.start_log().unwrap();
    for i in 0..200u64 {
        s.add_event(i as f64 * 0.0123, &common::workload::logwire_event(i)).unwrap();
    }
    s.finish_log().unwrap();
    let inputs = [
        fixture("ngtcp2-0.12.1-client-clean.sqlog"),
        fixture("quinn-0.11.19-server.sqlog"),
        fixture("SYNTHETIC-qlog-crate-0.18.2-streamer.sqlog"),
        lenient.into_bytes(),
        sent,
    ];
    let mut packets = 0;
    for bytes in &inputs {
        let (_, traces, events, damage) = Reader::new(bytes).unwrap().read_all();
        assert!(damage.is_empty(), "{damage:?}");
        for e in &events {
            let trace = &traces[e.trace];
            let slow = EventData::from_parts(&e.name, e.data(trace));
            assert_eq!(e.typed(trace), slow, "{}", e.raw);
            assert_eq!(e.clone().into_typed(trace), slow);
            packets += usize::from(matches!(slow, EventData::PacketSent(_) | EventData::PacketReceived(_)));
        }
    }
    assert!(packets > 250, "{packets} packet events compared");
}

/// JSON equality where a number written as an integer equals the same value as a float (the drafts type
/// RTTs and thresholds as floats: `333` reads as 333.0); integers are compared exactly.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Whether the typed form of an event keeps every field (the structs with `extra`, and `Other`).
pub fn keeps_every_field(d: &EventData) -> bool {
    !matches!(
        d,
        EventData::PacketSent(_)
            | EventData::PacketReceived(_)
            | EventData::PacketLost(_)
            | EventData::PacketDropped(_)
            | EventData::RecoveryMetricsUpdated(_)
            | EventData::Http3FrameCreated(_)
            | EventData::Http3FrameParsed(_)
            | EventData::Log(..)
    )
}

/// One event of every QUIC and HTTP/3 name of quic-events-13 / h3-events-13, with the drafts' fields and
/// an extension field each: every one is typed (not `Other`), and typed data written again is the data.
#[test]
fn every_quic_and_http3_event_is_typed_and_round_trips() {
    let events = [
        ("quic:server_listening", r#"{"ip_v4":"127.0.0.1","port_v4":4433,"retry_required":false}"#),
        ("quic:connection_id_updated", r#"{"initiator":"remote","old":"aa","new":"bb"}"#),
        ("quic:spin_bit_updated", r#"{"state":true}"#),
        ("quic:tuple_assigned", r#"{"tuple_id":"1","tuple_remote":{"ip_v4":"127.0.0.1"}}"#),
        ("quic:mtu_updated", r#"{"old":1200,"new":1452,"done":true}"#),
        (
            "quic:packet_buffered",
            r#"{"header":{"packet_type":"1RTT","packet_number":9},"raw":{"length":40},"trigger":"keys_unavailable"}"#,
        ),
        ("quic:packets_acked", r#"{"packet_number_space":"initial","packet_numbers":[0,1]}"#),
        (
            "quic:connection_started",
            r#"{"local":{"ip_v4":"127.0.0.1","port_v4":4433},"remote":{"ip_v4":"127.0.0.1","port_v4":50000},"x_ext":1}"#,
        ),
        (
            "quic:connection_closed",
            r#"{"initiator":"remote","connection_error":"no_error","error_code":"0","reason":"bye","trigger":"clean"}"#,
        ),
        ("quic:connection_state_updated", r#"{"old":"attempted","new":"handshake_started"}"#),
        ("quic:congestion_state_updated", r#"{"old":"slow_start","new":"congestion_avoidance","trigger":"ecn"}"#),
        ("quic:ecn_state_updated", r#"{"old":"testing","new":"capable"}"#),
        ("quic:migration_state_updated", r#"{"old":"probing_started","new":"probing_abandoned","tuple_id":"1"}"#),
        (
            "quic:version_information",
            r#"{"server_versions":["00000001"],"client_versions":["00000001","6b3343cf"],"chosen_version":"00000001"}"#,
        ),
        (
            "quic:alpn_information",
            r#"{"server_alpns":[{"string_value":"h3"}],"client_alpns":["h3","h3-29"],"chosen_alpn":{"string_value":"h3"}}"#,
        ),
        (
            "quic:parameters_set",
            r#"{"initiator":"local","max_idle_timeout":30000,"initial_max_data":"18446744073709551615","preferred_address":{"ip_v4":"127.0.0.2"},"grease_quic_bit":true,"x_mvfst":[1]}"#,
        ),
        ("quic:parameters_restored", r#"{"initial_max_data":1000,"max_datagram_frame_size":65535}"#),
        (
            "quic:udp_datagrams_sent",
            r#"{"count":2,"raw":[{"length":1200},{"length":45}],"ecn":["ECT0","Not-ECT"],"datagram_ids":[1,2]}"#,
        ),
        ("quic:udp_datagrams_received", r#"{"count":1,"raw":[{"length":1252}]}"#),
        ("quic:udp_datagram_dropped", r#"{"raw":{"length":9}}"#),
        (
            "quic:stream_state_updated",
            r#"{"stream_id":4,"stream_type":"bidirectional","old":"open","new":"half_closed_local","stream_side":"sending"}"#,
        ),
        (
            "quic:frames_created",
            r#"{"frames":[{"frame_type":"ping"},{"frame_type":"ack_frequency","sequence_number":1}]}"#,
        ),
        ("quic:frames_parsed", r#"{"frames":[{"frame_type":"max_data","maximum":5}],"packet_numbers":[3]}"#),
        (
            "quic:stream_data_moved",
            r#"{"stream_id":0,"offset":0,"raw":{"length":100},"from":"transport","to":"application"}"#,
        ),
        ("quic:datagram_data_moved", r#"{"raw":{"length":10},"from":"application","to":"transport"}"#),
        ("quic:key_updated", r#"{"key_type":"server_1rtt_secret","new":"aabb","key_phase":1,"trigger":"tls"}"#),
        ("quic:key_discarded", r#"{"key_type":"client_initial_secret","trigger":"tls"}"#),
        (
            "quic:recovery_parameters_set",
            r#"{"reordering_threshold":3,"time_threshold":1.125,"timer_granularity":1,"initial_rtt":333,"max_datagram_size":1200,"initial_congestion_window":12000,"minimum_congestion_window":2400,"loss_reduction_factor":0.5,"persistent_congestion_threshold":3}"#,
        ),
        (
            "quic:timer_updated",
            r#"{"timer_type":"loss_timeout","packet_number_space":"application_data","event_type":"set","delta":25.5}"#,
        ),
        ("quic:marked_for_retransmit", r#"{"frames":[{"frame_type":"stream","stream_id":0,"offset":0}]}"#),
        (
            "http3:parameters_set",
            r#"{"initiator":"local","max_field_section_size":16384,"max_table_capacity":0,"blocked_streams_count":0,"h3_datagram":true,"waits_for_settings":false}"#,
        ),
        ("http3:parameters_restored", r#"{"max_field_section_size":16384}"#),
        ("http3:stream_type_set", r#"{"initiator":"remote","stream_id":3,"stream_type":"control"}"#),
        ("http3:priority_updated", r#"{"stream_id":0,"old":"u=3","new":"u=1,i"}"#),
        ("http3:datagram_created", r#"{"quarter_stream_id":1,"datagram":{"context_id":0},"raw":{"length":20}}"#),
        ("http3:datagram_parsed", r#"{"quarter_stream_id":1,"raw":{"length":20}}"#),
        ("http3:push_resolved", r#"{"push_id":1,"stream_id":7,"decision":"claimed"}"#),
    ];
    let mut text = String::from("\u{1e}{\"file_schema\":\"urn:ietf:params:qlog:file:sequential\",\"serialization_format\":\"application/qlog+json-seq\",\"trace\":{}}\n");
    for (i, (name, data)) in events.iter().enumerate() {
        text.push_str(&format!("\u{1e}{{\"time\":{i},\"name\":\"{name}\",\"data\":{data}}}\n"));
    }
    let (_, traces, read, damage) = Reader::new(text.as_bytes()).unwrap().read_all();
    assert!(damage.is_empty(), "{damage:?}");
    assert_eq!(read.len(), events.len());
    for (e, (name, data)) in read.iter().zip(events) {
        let typed = e.typed(&traces[0]);
        assert!(!matches!(typed, EventData::Other { .. }), "{name} is not typed");
        assert_eq!(typed.name(), name);
        let mut want: serde_json::Value = serde_json::from_str(data).unwrap();
        // uint64 strings read as numbers; everything else as written.
        if name == "quic:connection_closed" {
            want["error_code"] = 0.into();
        }
        if name == "quic:parameters_set" {
            want["initial_max_data"] = u64::MAX.into();
        }
        let got = serde_json::to_value(&typed).unwrap();
        assert!(same_json(&got, &want), "{name}: {got} vs {want}");
    }
    // Typed data written by the Streamer reads back as the same typed data.
    let mut out = Vec::new();
    let mut s = logwire_qlog::Streamer::new(&mut out, Default::default()).unwrap();
    s.start_log().unwrap();
    let typed: Vec<EventData> = read.iter().map(|e| e.typed(&traces[0])).collect();
    for (i, t) in typed.iter().enumerate() {
        s.add_event(i as f64, t).unwrap();
    }
    s.finish_log().unwrap();
    let (_, traces2, again, _) = Reader::new(&out).unwrap().read_all();
    let again: Vec<EventData> = again.iter().map(|e| e.typed(&traces2[0])).collect();
    assert_eq!(again, typed);
}

/// On the real files, every event whose type keeps every field writes back exactly its normalised data.
#[test]
fn real_files_round_trip_through_the_typed_events() {
    let mut typed_events = 0;
    for name in ["ngtcp2-0.12.1-client-clean.sqlog", "quinn-0.11.19-server.sqlog"] {
        let bytes = fixture(name);
        let (_, traces, events, _) = Reader::new(&bytes).unwrap().read_all();
        for e in &events {
            let trace = &traces[e.trace];
            let typed = e.typed(trace);
            if keeps_every_field(&typed) {
                let got = serde_json::to_value(&typed).unwrap();
                assert!(same_json(&got, &e.data(trace)), "{name}: {got} from {}", e.raw);
                typed_events += usize::from(!matches!(typed, EventData::Other { .. }));
            }
        }
    }
    assert!(typed_events >= 2, "ngtcp2's parameters_set events are typed: {typed_events}");
}
