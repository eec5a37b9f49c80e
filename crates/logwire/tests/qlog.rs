//! qlog with real QUIC stacks on loopback: Debian's ngtcp2 (JSON-SEQ, 0.3) and aioquic from PyPI
//! (contained JSON, 0.3, HTTP/3 events), ingested by `logwire serve --qlog-dir` and read by `logwire qlog`.

mod peers;

use peers::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The newest-draft name of an 0.3 name, restated from the drafts independently of the crate.
fn newest(name: &str) -> String {
    let (cat, ev) = name.split_once(':').unwrap();
    let ev = match ev {
        "datagrams_sent" => "udp_datagrams_sent",
        "datagrams_received" => "udp_datagrams_received",
        "key_retired" => "key_discarded",
        "metrics_updated" => "recovery_metrics_updated",
        other => other,
    };
    match cat {
        "transport" | "connectivity" | "security" | "recovery" => format!("quic:{ev}"),
        "http" => format!("http3:{ev}"),
        _ => format!("{cat}:{ev}"),
    }
}

/// Event names in a qlog file's text (`"name":"cat:event"` or `"name": "cat:event"`), normalised.
fn expected_counts(text: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for pat in ["\"name\":\"", "\"name\": \""] {
        for (i, _) in text.match_indices(pat) {
            let rest = &text[i + pat.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            // Header field names (":method") and vantage point names are not events.
            if name.find(':').is_some_and(|p| p > 0) {
                *out.entry(newest(name)).or_insert(0) += 1;
            }
        }
    }
    out
}

fn stored_counts(db: &Path) -> BTreeMap<String, i64> {
    query_json(db, "SELECT name, count(*) AS n FROM events WHERE source='qlog' AND kind='event' GROUP BY name")
        .into_iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r["n"].as_i64().unwrap()))
        .collect()
}

/// JSON equality where an integer equals the same value written as a float (typed float fields).
fn numbers_alike(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| numbers_alike(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| numbers_alike(v, w)))
        }
        _ => a == b,
    }
}

/// The `quic:connection` spans, with the counters of their end merged into their attrs.
fn connection_spans(db: &Path) -> Vec<serde_json::Value> {
    query_json(
        db,
        "SELECT trace_id, span_id, start_ns, end_ns, duration_ns, attrs FROM spans \
         WHERE source='qlog' AND name='quic:connection' ORDER BY start_ns",
    )
    .into_iter()
    .map(|mut r| {
        // `--json` prints attrs as an object; as text, parse it.
        if let Some(text) = r["attrs"].as_str() {
            r["attrs"] = serde_json::from_str(text).unwrap();
        }
        r
    })
    .collect()
}

/// One number per event name out of the stored events, for checking a span's counters against them.
fn stored_sum(db: &Path, what: &str, name: &str) -> i64 {
    let sql =
        format!("SELECT coalesce({what}, 0) AS n FROM events WHERE source='qlog' AND kind='event' AND name='{name}'");
    query_json(db, &sql)[0]["n"].as_i64().unwrap()
}

fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    require_program("openssl", "apt-get install -y openssl");
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    (key, cert)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    v.sort();
    v
}

fn logwire(args: &[&str]) -> (bool, String) {
    let out = Command::new(LOGWIRE).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn ngtcp2_json_seq_is_tailed_into_the_store() {
    let server = require_program("gtlsserver", "apt-get install -y ngtcp2-server");
    let client = require_program("gtlsclient", "apt-get install -y ngtcp2-client");
    let env = TestEnv::new("qlog-ngtcp2");
    let (key, cert) = self_signed(env.dir.path());
    let (htdocs, sq, cq) = (env.path("htdocs"), env.path("sq"), env.path("cq"));
    for d in [&htdocs, &sq, &cq] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(htdocs.join("file"), vec![b'q'; 50_000]).unwrap();
    let lw = env.start_logwire(&["--qlog-dir", cq.to_str().unwrap()]);

    let port = free_udp_port().to_string();
    let mut srv = Command::new(&server)
        .args(["-q", "-d", htdocs.to_str().unwrap(), &format!("--qlog-dir={}", sq.display()), "127.0.0.1", &port])
        .args([&key, &cert])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let url = format!("https://127.0.0.1:{port}/file");
    let mut cli = Command::new(&client)
        .args(["-q", "--exit-on-all-streams-close", &format!("--qlog-dir={}", cq.display()), "127.0.0.1", &port, &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut cli, Duration::from_secs(20));
    let _ = Command::new("kill").args(["-TERM", &srv.id().to_string()]).status();
    wait_exit(&mut srv, Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "gtlsclient failed: {status:?}");

    let client_file = files_in(&cq, ".sqlog").pop().expect("gtlsclient wrote no qlog");
    let text = std::fs::read_to_string(&client_file).unwrap();
    assert!(text.starts_with('\u{1e}'), "JSON-SEQ");
    let expected = expected_counts(&text);
    let events = text.matches('\u{1e}').count() as i64 - 1;
    assert_eq!(expected.values().sum::<i64>(), events);
    assert!(expected["quic:packet_received"] > 10, "{expected:?}");

    // The watcher tails the file while logwire runs: wait for every event, bounded.
    let start = Instant::now();
    while stored_counts(&lw.db).values().sum::<i64>() < events && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let db = lw.stop();
    assert_eq!(stored_counts(&db), expected);
    let group = text.split("\"group_id\":\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let traces = query_json(&db, "SELECT DISTINCT trace_id FROM events WHERE source='qlog'");
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0]["trace_id"], group.as_str(), "one trace per connection, named by its group id");
    // The connection's lifetime as one span: from its first event to its last (ngtcp2 0.12 logs no
    // connection_closed), with what it did.
    let spans = connection_spans(&db);
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span["trace_id"], group.as_str());
    let (first, last) = {
        let r = &query_json(
            &db,
            "SELECT min(time_ns) AS a, max(time_ns) AS b FROM events WHERE source='qlog' AND kind='event'",
        )[0];
        (r["a"].as_i64().unwrap(), r["b"].as_i64().unwrap())
    };
    assert_eq!((span["start_ns"].as_i64(), span["end_ns"].as_i64()), (Some(first), Some(last)));
    assert!(span["duration_ns"].as_i64().unwrap() > 0, "{span}");
    let a = &span["attrs"];
    assert_eq!(a["vantage_point"], "client");
    assert_eq!(a["group_id"], group.as_str());
    assert_eq!(a["ended_by"], "last_event");
    assert_eq!(a["events"], events);
    assert_eq!(a["packets_sent"], expected["quic:packet_sent"]);
    assert_eq!(a["packets_received"], expected["quic:packet_received"]);
    assert_eq!(a["packets_lost"], expected.get("quic:packet_lost").copied().unwrap_or(0));
    let bytes_sent = stored_sum(&db, "sum(json_extract(attrs,'$.data.raw.length'))", "quic:packet_sent");
    let bytes_received = stored_sum(&db, "sum(json_extract(attrs,'$.data.raw.length'))", "quic:packet_received");
    assert!(bytes_received > 50_000, "the 50 KB response came in: {bytes_received}");
    assert_eq!((a["bytes_sent"].as_i64(), a["bytes_received"].as_i64()), (Some(bytes_sent), Some(bytes_received)));
    let linked = query_json(
        &db,
        &format!(
            "SELECT count(*) AS n FROM events WHERE kind='event' AND span_id='{}'",
            span["span_id"].as_str().unwrap()
        ),
    );
    assert_eq!(linked[0]["n"].as_i64(), Some(events), "every event names its connection span");
    let row = &query_json(
        &db,
        "SELECT json_extract(attrs,'$.qlog_version') AS v, json_extract(attrs,'$.original_name') AS o, \
         json_extract(attrs,'$.data.initiator') AS i FROM events WHERE name='quic:parameters_set' LIMIT 1",
    )[0];
    assert_eq!(
        (row["v"].as_str(), row["o"].as_str(), row["i"].as_str()),
        (Some("0.3"), Some("transport:parameters_set"), Some("local"))
    );

    // Both ends' files in one directory: one trace (the connection), two `quic:connection` spans.
    let server_file = files_in(&sq, ".sqlog").pop().expect("gtlsserver wrote no qlog");
    let both_env = TestEnv::new("qlog-ngtcp2-both");
    let both = both_env.path("both");
    std::fs::create_dir(&both).unwrap();
    for f in [&client_file, &server_file] {
        std::fs::copy(f, both.join(f.file_name().unwrap())).unwrap();
    }
    // gtlsserver was stopped by SIGTERM, which can cut its last record short: that one is damage, not an
    // event, so count the records that are whole JSON events.
    let server_events = std::fs::read_to_string(&server_file)
        .unwrap()
        .split('\u{1e}')
        .filter(|r| serde_json::from_str::<serde_json::Value>(r.trim()).is_ok_and(|v| v.get("name").is_some()))
        .count() as i64;
    let lw_both = both_env.start_logwire(&["--qlog-dir", both.to_str().unwrap()]);
    // A tailed file's last record is only known complete when logwire stops (the file might still grow):
    // wait for all but those two, then check the total after the stop.
    let total = events + server_events;
    let start = Instant::now();
    while stored_counts(&lw_both.db).values().sum::<i64>() < total - 2 && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let db_both = lw_both.stop();
    assert_eq!(stored_counts(&db_both).values().sum::<i64>(), total, "every event of both files");
    let spans = connection_spans(&db_both);
    assert_eq!(spans.len(), 2, "{spans:?}");
    let mut vantage: Vec<&str> = spans.iter().map(|s| s["attrs"]["vantage_point"].as_str().unwrap()).collect();
    vantage.sort_unstable();
    assert_eq!(vantage, ["client", "server"]);
    assert!(spans.iter().all(|s| s["trace_id"] == group.as_str()), "both ends share the connection's trace: {spans:?}");
    assert_ne!(spans[0]["span_id"], spans[1]["span_id"]);
    let server_span = spans.iter().find(|s| s["attrs"]["vantage_point"] == "server").unwrap();
    // Its counters are its own file's: gtlsserver is stopped with SIGTERM, so how much of its log reached
    // the disk varies, but what did is counted exactly.
    let server_sent = query_json(
        &db_both,
        &format!(
            "SELECT count(*) AS n, coalesce(sum(json_extract(attrs,'$.data.raw.length')), 0) AS b FROM events \
             WHERE kind='event' AND name='quic:packet_sent' AND span_id='{}'",
            server_span["span_id"].as_str().unwrap()
        ),
    );
    assert!(server_sent[0]["n"].as_i64().unwrap() > 0, "{server_span}");
    assert_eq!(server_span["attrs"]["packets_sent"].as_i64(), server_sent[0]["n"].as_i64());
    assert_eq!(server_span["attrs"]["bytes_sent"].as_i64(), server_sent[0]["b"].as_i64());

    // The server's file (complete after it exits) through the tools.
    let (ok, out) = logwire(&["qlog", "summary", server_file.to_str().unwrap(), client_file.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("connection ").count(), 2, "{out}");
    assert!(out.contains(&group), "{out}");
    let (ok, out) = logwire(&["qlog", "check", client_file.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("transport:packet_sent is quic:packet_sent"), "{out}");
    let svg = env.path("ngtcp2.svg");
    let (ok, out) = logwire(&["qlog", "plot", client_file.to_str().unwrap(), "-o", svg.to_str().unwrap()]);
    assert!(ok, "{out}");
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.contains("congestion window") && svg.matches("<path").count() >= 3);
}

#[test]
fn aioquic_contained_json_with_http3_events() {
    require_program("python3", "apt-get install -y python3");
    let probe = Command::new("python3").args(["-c", "import aioquic"]).output().unwrap();
    assert!(
        probe.status.success(),
        "aioquic is not installed; this test needs the real peer. Install it with `pip install aioquic==1.7.2` (or run ./scripts/test.sh)"
    );
    let env = TestEnv::new("qlog-aioquic");
    let (key, cert) = self_signed(env.dir.path());
    let (sq, cq) = (env.path("sq"), env.path("cq"));
    std::fs::create_dir(&sq).unwrap();
    std::fs::create_dir(&cq).unwrap();
    let lw = env.start_logwire(&["--qlog-dir", sq.to_str().unwrap()]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aioquic_h3.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args([&cert, &key, &sq, &cq])
        .arg("3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(40));
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).ok();
    }
    assert!(status.is_some_and(|s| s.success()), "aioquic script failed: {err}");

    let server_file = files_in(&sq, ".qlog").pop().expect("aioquic server wrote no qlog");
    let text = std::fs::read_to_string(&server_file).unwrap();
    assert!(text.starts_with('{'), "contained JSON");
    let expected = expected_counts(&text);
    let total: i64 = expected.values().sum();
    assert!(expected.get("http3:frame_parsed").is_some_and(|n| *n >= 3), "{expected:?}");
    let start = Instant::now();
    while stored_counts(&lw.db).values().sum::<i64>() < total && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let db = lw.stop();
    assert_eq!(stored_counts(&db), expected);
    let odcid = server_file.file_stem().unwrap().to_string_lossy().into_owned();
    let requests = query_json(
        &db,
        "SELECT trace_id, json_extract(attrs,'$.data.frame.headers') AS h FROM events \
         WHERE name='http3:frame_parsed' AND json_extract(attrs,'$.data.frame.frame_type')='headers'",
    );
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r["trace_id"], odcid.as_str());
        assert!(r["h"].as_str().unwrap().contains(":method"), "{r}");
    }
    // One connection, one span, ended at connection_closed when aioquic logged one, else at the last event.
    let spans = connection_spans(&db);
    assert_eq!(spans.len(), 1, "{spans:?}");
    let a = &spans[0]["attrs"];
    assert_eq!(spans[0]["trace_id"], odcid.as_str());
    assert_eq!(a["vantage_point"], "server");
    assert!(spans[0]["duration_ns"].as_i64().unwrap() > 0, "{:?}", spans[0]);
    assert_eq!(a["packets_sent"], expected["quic:packet_sent"]);
    assert_eq!(a["packets_received"], expected["quic:packet_received"]);
    let bytes_sent = stored_sum(&db, "sum(json_extract(attrs,'$.data.raw.length'))", "quic:packet_sent");
    assert!(bytes_sent > 3 * 20_000, "three 20 KB responses went out: {bytes_sent}");
    assert_eq!(a["bytes_sent"].as_i64(), Some(bytes_sent));
    assert_eq!(a["odcid"], odcid.as_str(), "{a}");
    let closes = expected.get("quic:connection_closed").copied().unwrap_or(0);
    assert_eq!(a["ended_by"], if closes > 0 { "connection_closed" } else { "last_event" }, "{a}");
    // aioquic's events through logwire's typed model and back: every QUIC/HTTP/3 event beyond packets,
    // metrics and HTTP/3 frames is typed and writes back its (normalised) data.
    let bytes = std::fs::read(&server_file).unwrap();
    let (_, traces, read, damage) = logwire_qlog::Reader::new(&bytes).unwrap().read_all();
    assert!(damage.is_empty(), "{damage:?}");
    let mut round_trips = BTreeMap::new();
    for e in &read {
        let trace = &traces[e.trace];
        let typed = e.typed(trace);
        use logwire_qlog::EventData as D;
        if matches!(typed, D::Other { .. }) && (e.name.starts_with("quic:") || e.name.starts_with("http3:")) {
            panic!("{} is not typed: {}", e.name, e.raw);
        }
        if !matches!(
            typed,
            D::PacketSent(_)
                | D::PacketReceived(_)
                | D::PacketDropped(_)
                | D::RecoveryMetricsUpdated(_)
                | D::Http3FrameCreated(_)
                | D::Http3FrameParsed(_)
        ) {
            let got = serde_json::to_value(&typed).unwrap();
            assert!(numbers_alike(&got, &e.data(trace)), "{}: {got} from {}", e.name, e.raw);
            *round_trips.entry(e.name.to_string()).or_insert(0) += 1;
        }
    }
    for name in ["quic:parameters_set", "quic:key_updated", "quic:key_discarded", "http3:stream_type_set"] {
        assert!(round_trips.contains_key(name), "{name} round-tripped: {round_trips:?}");
    }
    // aioquic writes absolute epoch-ms times: stored as they are.
    let t = &query_json(&db, "SELECT min(time_ns) AS t FROM events WHERE source='qlog'")[0]["t"];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    assert!((now - t.as_i64().unwrap()).abs() < 600_000_000_000, "event times are the connection's wall-clock times");

    // Both sides through the tools; and the same events as JSON-SEQ after conversion.
    let client_file = files_in(&cq, ".qlog").pop().expect("aioquic client wrote no qlog");
    let (ok, out) = logwire(&["qlog", "summary", server_file.to_str().unwrap(), client_file.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("HTTP requests 3").count(), 2, "{out}");
    let seq = env.path("server.sqlog");
    let (ok, out) =
        logwire(&["qlog", "convert", server_file.to_str().unwrap(), "--to", "seq", "-o", seq.to_str().unwrap()]);
    assert!(ok, "{out}");
    let converted = std::fs::read_to_string(&seq).unwrap();
    assert!(converted.starts_with("\u{1e}{\"file_schema\":\"urn:ietf:params:qlog:file:sequential\""));
    assert_eq!(converted.matches('\u{1e}').count() as i64 - 1, total);
    let (ok, out) = logwire(&["qlog", "summary", seq.to_str().unwrap()]);
    assert!(ok && out.contains("HTTP requests 3") && out.contains("JSON-SEQ"), "{out}");
    let (ok, out) = logwire(&["qlog", "check", seq.to_str().unwrap()]);
    assert!(ok, "newest-layout output has no spec errors: {out}");
}

#[test]
fn serve_tails_a_growing_sqlog_and_resyncs_after_damage() {
    let env = TestEnv::new("qlog-tail");
    let dir = env.path("qlogdir");
    std::fs::create_dir(&dir).unwrap();
    let lw = env.start_logwire(&["--qlog-dir", dir.to_str().unwrap()]);
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/qlog/ngtcp2-0.12.1-client-clean.sqlog");
    let text = std::fs::read_to_string(fixture).unwrap();
    let records: Vec<&str> = text.split_inclusive('\n').collect();
    let half = records.len() / 2;
    let path = dir.join("growing.sqlog");
    std::fs::write(&path, records[..half].concat()).unwrap();
    let start = Instant::now();
    while stored_counts(&lw.db).values().sum::<i64>() < (half - 1) as i64 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(stored_counts(&lw.db).values().sum::<i64>(), (half - 1) as i64, "the first half, while the file grows");
    // A damaged record (a crash mid-write), then the rest.
    let mut rest = String::from("\u{1e}{\"time\":5,\"name\":\"transport:packet_se\n");
    rest.push_str(&records[half..].concat());
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, rest.as_bytes()))
        .unwrap();
    let total = records.len() as i64 - 1;
    let start = Instant::now();
    while stored_counts(&lw.db).values().sum::<i64>() < total && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let db = lw.stop();
    assert_eq!(stored_counts(&db), expected_counts(&text));
}

#[test]
fn serve_ends_the_span_of_a_tailed_file_that_went_quiet() {
    // ngtcp2's client file has no connection_closed: a stack killed mid-connection looks like this.
    let env = TestEnv::new("qlog-idle");
    let dir = env.path("qlogdir");
    std::fs::create_dir(&dir).unwrap();
    let lw = env.start_logwire(&["--qlog-dir", dir.to_str().unwrap(), "--qlog-idle", "1"]);
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/qlog/ngtcp2-0.12.1-client-clean.sqlog");
    let text = std::fs::read_to_string(fixture).unwrap();
    std::fs::write(dir.join("quiet.sqlog"), &text).unwrap();
    let ended = |db: &Path| connection_spans(db).first().is_some_and(|s| !s["end_ns"].is_null());
    let start = Instant::now();
    while !ended(&lw.db) && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Ended while logwire still runs, at the connection's last event, counting every event.
    let spans = connection_spans(&lw.db);
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert!(!spans[0]["end_ns"].is_null(), "the span of a quiet file never ended: {spans:?}");
    assert_eq!(spans[0]["attrs"]["ended_by"], "last_event");
    let events: i64 = stored_counts(&lw.db).values().sum();
    assert_eq!(spans[0]["attrs"]["events"].as_i64(), Some(events));
    let last = query_json(&lw.db, "SELECT max(time_ns) AS t FROM events WHERE source='qlog' AND kind='event'");
    assert_eq!(spans[0]["end_ns"], last[0]["t"]);
    // Stopping logwire does not end it a second time.
    let db = lw.stop();
    let ends = query_json(&db, "SELECT count(*) AS n FROM events WHERE source='qlog' AND kind='span_end'");
    assert_eq!(ends[0]["n"].as_i64(), Some(1));
}
