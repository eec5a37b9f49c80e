//! logwire's SPOA agent behind the real HAProxy (Debian's 2.6), on loopback.
//!
//! Each test writes a haproxy.cfg + spoe.conf (from `shared/fixtures/spop/`, ports chosen by the test)
//! into a temp dir, starts `logwire serve` and `haproxy`, sends HTTP requests, stops logwire with
//! SIGTERM and reads the store. The tests fail, never skip, when haproxy is not installed.

mod peers;

use peers::*;
use serde_json::Value;
use std::time::Duration;

#[test]
fn rules_change_haproxy_answers_and_every_request_is_stored_typed() {
    let env = TestEnv::new("rules");
    let agent = env.start_logwire(&["--rules", env.write("rules.toml", RULES).as_str()]);
    let haproxy = env.start_haproxy(&HaproxySetup::default());
    haproxy.wait_http_ready();

    let ok = http_get(haproxy.http, "/hello", &[("user-agent", "logwire-test/1")]);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("x-spoa-score"), Some("42"), "the agent's set-var reached HAProxy: {ok:?}");
    let blocked = http_get(haproxy.http, "/block/this", &[]);
    assert_eq!(blocked.status, 403, "a rule in logwire turned the answer into 403: {blocked:?}");
    let admin = http_get(haproxy.http, "/admin", &[]);
    assert_eq!(admin.status, 200);
    let mut paths = vec!["/hello".to_string(), "/block/this".into(), "/admin".into()];
    for i in 0..20 {
        let p = format!("/many/{i}");
        assert_eq!(http_get(haproxy.http, &p, &[]).status, 200);
        paths.push(p);
    }
    drop(haproxy);
    let db = agent.stop();

    // Every request's message is stored, with typed args.
    let rows =
        query_json(&db, "SELECT attrs FROM events WHERE source = 'spop' AND name = 'check-request' ORDER BY time_ns");
    assert_eq!(rows.len(), paths.len(), "one event per request");
    let mut seen: Vec<String> = Vec::new();
    for row in &rows {
        let attrs: &Value = &row["attrs"];
        let args = &attrs["args"];
        assert_eq!(args["ip"], "127.0.0.1", "src arrives as an IPv4 and is stored as text: {attrs}");
        assert_eq!(attrs["types"]["ip"], "ipv4");
        assert!(args["port"].as_u64().is_some_and(|p| p > 0 && p < 65536), "src_port is a number: {attrs}");
        assert_eq!(attrs["types"]["port"], "int64");
        assert_eq!(args["method"], "GET");
        assert_eq!(attrs["types"]["path"], "string");
        assert_eq!(attrs["types"]["hdrs"], "binary");
        let hdrs_hex = args["hdrs"]["hex"].as_str().expect("binary as hex");
        let hdrs = unhex(hdrs_hex);
        assert!(contains(&hdrs, b"host"), "req.hdrs_bin holds the host header");
        seen.push(args["path"].as_str().unwrap().to_string());
    }
    seen.sort();
    paths.sort();
    assert_eq!(seen, paths);
    // The actions returned are stored with the message, and each NOTIFY is a span with timings.
    let blocked = query_json(
        &db,
        "SELECT attrs FROM events WHERE name = 'check-request' AND json_extract(attrs, '$.args.path') = '/block/this'",
    );
    let actions = blocked[0]["attrs"]["actions"].as_array().unwrap();
    assert!(actions.iter().any(|a| a["name"] == "block" && a["scope"] == "txn"), "{actions:?}");
    let spans = query_json(&db, "SELECT name, duration_ns, attrs FROM spans WHERE source = 'spop'");
    assert_eq!(spans.len(), paths.len());
    for s in &spans {
        assert_eq!(s["name"], "spoe:check-request");
        assert!(s["duration_ns"].as_i64().is_some_and(|d| d >= 0));
        assert_eq!(s["attrs"]["status"], "ack");
    }
    // HAProxy 2.6 announces its engine-id per thread: the trace ids carry it.
    let hellos = query_json(
        &db,
        "SELECT attrs FROM events WHERE name = 'spop:hello' AND json_extract(attrs, '$.healthcheck') = 0",
    );
    assert!(!hellos.is_empty());
    assert!(hellos.iter().all(|h| h["attrs"]["haproxy_capabilities"] == "pipelining,async"), "{hellos:?}");
    assert!(hellos.iter().all(|h| h["attrs"]["capabilities"] == "pipelining,async,fragmentation"), "{hellos:?}");
}

#[test]
fn spop_check_health_checks_pass() {
    let env = TestEnv::new("healthcheck");
    let agent = env.start_logwire(&[]);
    let haproxy = env.start_haproxy(&HaproxySetup { check_inter_ms: Some(200), ..HaproxySetup::default() });
    haproxy.wait_http_ready();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(http_get(haproxy.http, "/", &[]).status, 200);
    let log = haproxy.stop();
    let db = agent.stop();
    let checks = query_json(
        &db,
        "SELECT attrs FROM events WHERE name = 'spop:hello' AND json_extract(attrs, '$.healthcheck') = 1",
    );
    assert!(checks.len() >= 3, "several `option spop-check` hellos answered: {}", checks.len());
    assert!(checks.iter().all(|c| c["attrs"]["haproxy_capabilities"] == ""), "health checks announce no capability");
    assert!(!log.contains("is DOWN"), "HAProxy marked the agent down:\n{log}");
    let errors = query_json(&db, "SELECT body FROM events WHERE name = 'spop:closed' AND level = 'error'");
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn fragmented_notify_is_reassembled_when_announced() {
    let env = TestEnv::new("frag");
    let agent = env.start_logwire(&["--rules", env.write("rules.toml", RULES).as_str()]);
    let haproxy = env.start_haproxy(&HaproxySetup { max_frame_size: Some(512), ..HaproxySetup::default() });
    haproxy.wait_http_ready();
    let big = "v".repeat(1500);
    let r = http_get(haproxy.http, "/big", &[("x-big", &big)]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-spoa-score"), Some("42"));
    let r = http_get(haproxy.http, "/block/big", &[("x-big", &big)]);
    assert_eq!(r.status, 403, "rules apply to a reassembled NOTIFY too");
    drop(haproxy);
    let db = agent.stop();
    let rows = query_json(
        &db,
        "SELECT json_extract(s.attrs, '$.fragments') AS fragments, json_extract(e.attrs, '$.args.hdrs.hex') AS hdrs \
         FROM spans s JOIN events e ON e.span_id = s.span_id AND e.trace_id = s.trace_id AND e.name = 'check-request' \
         WHERE json_extract(e.attrs, '$.args.path') = '/big'",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0]["fragments"].as_u64().unwrap() >= 3, "NOTIFY arrived in several frames: {}", rows[0]["fragments"]);
    let hdrs = unhex(rows[0]["hdrs"].as_str().unwrap());
    assert!(contains(&hdrs, big.as_bytes()), "the whole 1500-byte header was reassembled");
}

#[test]
fn without_fragmentation_haproxy_gets_a_clear_refusal() {
    let env = TestEnv::new("nofrag");
    let agent = env.start_logwire(&["--spop-capabilities", "pipelining,async"]);
    let haproxy =
        env.start_haproxy(&HaproxySetup { max_frame_size: Some(512), fail_closed: true, ..HaproxySetup::default() });
    haproxy.wait_http_ready();
    // Small requests still work.
    assert_eq!(http_get(haproxy.http, "/small", &[]).status, 200);
    // A request whose NOTIFY needs fragmentation fails closed (503 from `set-on-error`) within
    // `timeout processing`, instead of hanging.
    let started = std::time::Instant::now();
    let r = http_get(haproxy.http, "/big", &[("x-big", &"v".repeat(1500))]);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(haproxy);
    let db = agent.stop();
    // logwire recorded HAProxy's DISCONNECT 10 and says what to do.
    let rows = query_json(
        &db,
        "SELECT body, attrs FROM events WHERE name = 'spop:closed' AND json_extract(attrs, '$.status_code') = 10",
    );
    assert!(!rows.is_empty(), "HAProxy's DISCONNECT 10 is recorded");
    assert!(rows[0]["body"].as_str().unwrap().contains("fragmentation"), "{rows:?}");
    // Nothing was half-stored for the refused request.
    let big = query_json(&db, "SELECT count(*) AS n FROM events WHERE json_extract(attrs, '$.args.path') = '/big'");
    assert_eq!(big[0]["n"], 0);
}

const RULES: &str = r#"
# Block a path prefix, block an IP list, and give every request a score.
[[rule]]
name = "block-prefix"
message = "check-request"
when = { arg = "path", prefix = "/block" }
set = { scope = "txn", name = "block", value = true }

[[rule]]
name = "block-ips"
when = { arg = "ip", in_cidr = ["192.0.2.0/24", "2001:db8::/32"] }
set = { scope = "txn", name = "block", value = true }

[[rule]]
name = "score"
set = { scope = "txn", name = "score", value = 42 }
"#;
