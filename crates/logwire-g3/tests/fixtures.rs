//! The real g3proxy 1.13 captures (`shared/fixtures/g3/`): every record decodes with every field typed,
//! counts per log type / task type / event match the traffic, sample values match the decoded `.jsonl`
//! beside each capture, and re-encoding gives the captured bytes back.

use logwire_g3::forward::{event_to_log, ForwardDecoder, ForwardMessage};
use logwire_g3::{emit, syslog, G3Log, Origin};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/g3").join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    let p = fixture(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
}

/// The datagrams of a syslog capture: one per line, the receiver's `\n` removed.
fn datagrams(rel: &str) -> Vec<Vec<u8>> {
    read(rel).split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

fn fluentd_logs() -> Vec<(G3Log, Vec<u8>)> {
    let bytes = read("fluentd/fluentd-forward.bin");
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let mut decoder = ForwardDecoder::default();
    let mut out = Vec::new();
    let mut offset = 0;
    while let Some(msg) = decoder.decode(&mut buf).unwrap() {
        let consumed = bytes.len() - buf.len();
        let ForwardMessage::Events { tag, events, chunk } = msg else { panic!("not events: {msg:?}") };
        assert_eq!(chunk, None, "g3proxy sends no chunk");
        assert_eq!(events.len(), 1, "Message mode: one event per message");
        let (time, record) = &events[0];
        out.push((event_to_log(&tag, *time, record).unwrap(), bytes[offset..consumed].to_vec()));
        offset = consumed;
    }
    assert!(buf.is_empty());
    out
}

fn counts(logs: &[&G3Log]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in logs {
        let key = format!(
            "{}/{}/{}",
            l.get_str("log_type").unwrap(),
            l.get_str("task_type").unwrap_or("-"),
            l.get_str("task_event").unwrap_or("-")
        );
        *m.entry(key).or_default() += 1;
    }
    m
}

fn expected_counts() -> BTreeMap<String, usize> {
    [
        ("Escape/-/-", 1),
        ("Resolve/-/-", 1),
        ("Task/HttpForward/Connected", 4),
        ("Task/HttpForward/Created", 6),
        ("Task/HttpForward/Finished", 7),
        ("Task/TcpConnect/Connected", 1),
        ("Task/TcpConnect/Created", 1),
        ("Task/TcpConnect/Finished", 2),
        ("Task/TcpConnect/UpstreamShutdown", 2),
        ("Task/UdpAssociate/Finished", 1),
        ("Task/UdpConnect/Finished", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Every field has its schema type: durations and start_at are numbers, counters numbers, bools bools.
fn assert_typed(log: &G3Log) {
    assert!(log.untyped.is_empty(), "untyped fields {:?} in {log:?}", log.untyped);
    for (k, v) in &log.fields {
        let ok = match logwire_g3::schema::field_type(k) {
            logwire_g3::schema::FieldType::Text => v.is_string() || v.is_null(),
            logwire_g3::schema::FieldType::Bool => v.is_boolean(),
            logwire_g3::schema::FieldType::Duration
            | logwire_g3::schema::FieldType::Timestamp
            | logwire_g3::schema::FieldType::U16
            | logwire_g3::schema::FieldType::U32
            | logwire_g3::schema::FieldType::U64 => v.is_number() || v.is_null(),
            _ => v.is_string() || v.is_null(),
        };
        assert!(ok, "{k} = {v} is not typed");
    }
    if log.get_str("log_type") == Some("Task") {
        assert!(log.start_ns().is_some());
        assert_eq!(log.task_id().map(str::len), Some(32));
    }
}

#[test]
fn rfc5424_capture_decodes_typed_and_reencodes_byte_for_byte() {
    let grams = datagrams("rfc5424/syslog-udp.raw");
    assert_eq!(grams.len(), 27);
    let logs: Vec<G3Log> = grams.iter().map(|g| syslog::decode(g).unwrap()).collect();
    assert_eq!(counts(&logs.iter().collect::<Vec<_>>()), expected_counts());
    for (log, gram) in logs.iter().zip(&grams) {
        assert_typed(log);
        let Origin::Syslog(h) = &log.origin else { panic!() };
        assert_eq!(h.sd_id.as_deref(), Some("g3proxy@32473"));
        assert_eq!(emit::reencode(log), *gram, "re-encoded:\n{}", String::from_utf8_lossy(&emit::reencode(log)));
    }
    // The .jsonl holds the same datagrams.
    let jsonl = String::from_utf8(read("rfc5424/syslog-udp.jsonl")).unwrap();
    for (line, gram) in jsonl.lines().zip(&grams) {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["datagram"].as_str().unwrap().as_bytes(), &gram[..]);
        assert_eq!(v["len"].as_u64().unwrap() as usize, gram.len());
    }
    let first = &logs[0];
    assert_eq!(first.get_u64("wait_time"), Some(58_347));
    assert_eq!(first.get_u64("pipeline_wait"), Some(53_619));
    assert_eq!(first.get_u64("pid"), Some(5714));
    assert_eq!(first.start_ns(), Some(1_795_247_143_261_926_000));
    assert_eq!(first.get_str("user_agent"), Some("capture-curl/1.0"));
    assert_eq!(logwire_g3::value::format_timestamp(first.start_ns().unwrap()), "2026-11-21T07:45:43.261926Z");
    assert_eq!(logs[1].get("reuse_connection"), Some(&Value::Bool(false)));
    assert_eq!(logs[1].get_u64("tcp_connect_tries"), Some(1));
}

#[test]
fn rfc5424_params_agree_with_syslog_loose() {
    for gram in datagrams("rfc5424/syslog-udp.raw") {
        let text = std::str::from_utf8(&gram).unwrap();
        let loose = syslog_loose::parse_message(text, syslog_loose::Variant::RFC5424);
        let ours = syslog::decode(&gram).unwrap();
        let sd = &loose.structured_data;
        assert_eq!(sd.len(), 1);
        assert_eq!(sd[0].id, "g3proxy@32473");
        assert_eq!(sd[0].params().count(), ours.fields.len());
        for ((lk, lv), (k, v)) in sd[0].params().zip(&ours.fields) {
            assert_eq!(*lk, k.as_ref());
            assert_eq!(logwire_g3::schema::value_text(k, v).as_deref(), Some(&*lv.to_string()), "{k}");
        }
        // syslog_loose leaves g3proxy's escape_debug quoting in MSG (`\"`); we undo it.
        let mut escaped = String::new();
        logwire_g3::value::push_escaped(&mut escaped, &ours.msg, true);
        assert_eq!(loose.msg.trim(), escaped);
    }
}

#[test]
fn rfc3164_capture_decodes_typed_and_reencodes_byte_for_byte() {
    let grams = datagrams("rfc3164/syslog-udp.raw");
    assert_eq!(grams.len(), 27);
    let logs: Vec<G3Log> = grams.iter().map(|g| syslog::decode(g).unwrap()).collect();
    assert_eq!(counts(&logs.iter().collect::<Vec<_>>()), expected_counts());
    for (log, gram) in logs.iter().zip(&grams) {
        assert_typed(log);
        assert_eq!(emit::reencode(log), *gram, "re-encoded:\n{}", String::from_utf8_lossy(&emit::reencode(log)));
    }
    let finished: Vec<&G3Log> = logs.iter().filter(|l| l.get_str("task_event") == Some("Finished")).collect();
    let mut reasons: Vec<&str> = finished.iter().map(|l| l.get_str("reason").unwrap()).collect();
    reasons.sort();
    assert_eq!(reasons.iter().filter(|r| **r == "Finished").count(), 7);
    assert!(reasons.contains(&"UpstreamNotConnected") && reasons.contains(&"InternalResolverError"));
    let refused = finished.iter().find(|l| l.get_str("reason") == Some("UpstreamNotConnected")).unwrap();
    assert_eq!(refused.get_u64("rsp_status"), Some(521));
    assert_eq!(refused.get_u64("origin_status"), Some(0));
    assert!(refused.msg.starts_with("upstream not connected"), "{}", refused.msg);
    let escape = logs.iter().find(|l| l.get_str("log_type") == Some("Escape")).unwrap();
    assert_eq!(escape.get_str("task_id"), refused.get_str("task_id"), "escape linked to its task by task_id");
    let alice = finished.iter().find(|l| l.get_str("user") == Some("alice")).unwrap();
    assert_eq!(alice.get_str("server_name"), Some("http-auth"));
}

#[test]
fn fluentd_capture_decodes_typed_matches_jsonl_and_reencodes_byte_for_byte() {
    let logs = fluentd_logs();
    assert_eq!(logs.len(), 27);
    assert_eq!(counts(&logs.iter().map(|(l, _)| l).collect::<Vec<_>>()), expected_counts());
    let jsonl = String::from_utf8(read("fluentd/fluentd-forward.jsonl")).unwrap();
    let mut compared = 0;
    for ((log, bytes), line) in logs.iter().zip(jsonl.lines()) {
        assert_typed(log);
        assert_eq!(emit::reencode(log), *bytes, "fluentd re-encoding differs for {log:?}");
        let v: Value = serde_json::from_str(line).unwrap();
        let Origin::Fluentd { tag, time } = &log.origin else { panic!() };
        assert_eq!(v[0], Value::from(tag.as_str()));
        assert_eq!(v[1]["$EventTime"][0].as_u64(), Some(u64::from(time.secs)));
        assert_eq!(v[1]["$EventTime"][1].as_u64(), Some(u64::from(time.nanos)));
        let record = v[2].as_object().unwrap();
        assert_eq!(record.len(), log.fields.len() + 1, "every key, nil ones included, plus msg");
        assert_eq!(record["msg"].as_str(), Some(log.msg.as_str()));
        for (k, typed) in &log.fields {
            // The jsonl has the wire value; typing it the same way must give ours.
            let raw = &record[k.as_ref()];
            let expect = match raw {
                Value::String(s) => {
                    logwire_g3::schema::type_value(k, logwire_g3::schema::WireValue::Str(std::borrow::Cow::Borrowed(s)))
                        .unwrap()
                }
                other => other.clone(),
            };
            assert_eq!(typed, &expect, "{k}");
            compared += 1;
        }
    }
    assert!(compared > 500, "{compared}");
    // Nil keys are kept (g3proxy sends None as nil).
    let udp = logs.iter().find(|(l, _)| l.get_str("task_type") == Some("UdpConnect")).unwrap();
    assert_eq!(udp.0.get("upstream"), Some(&Value::Null), "UdpConnect Finished has no upstream");
    assert!(udp.0.get("udp_listen_addr").is_some_and(Value::is_string));
}
