//! The binary end to end without HAProxy: serve ↔ `spop probe`/`spop bench` (logwire's own engine
//! client), query, tail, errors.

mod peers;

use peers::*;
use std::process::Command;

fn logwire(args: &[&str]) -> std::process::Output {
    Command::new(LOGWIRE).args(args).output().unwrap()
}

#[test]
fn probe_and_bench_against_serve_then_query_and_tail() {
    let env = TestEnv::new("cli");
    let rules = env
        .write("rules.toml", "[[rule]]\nname = \"score\"\nset = { scope = \"txn\", name = \"score\", value = 42 }\n");
    let agent = env.start_logwire(&["--rules", &rules]);
    let addr = format!("127.0.0.1:{}", env.spop_port);

    let out = logwire(&["spop", "probe", &addr]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("health check: ok"), "{text}");
    assert!(text.contains("capabilities \"pipelining,async,fragmentation\""), "{text}");
    assert!(text.contains("\"score\""), "the probe shows the set-var: {text}");

    let out = logwire(&[
        "spop",
        "bench",
        &addr,
        "--conns",
        "2",
        "--inflight",
        "10",
        "--duration",
        "5",
        "--max-requests",
        "3000",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("3000 ACK"), "{text}");
    assert!(text.contains("NOTIFY/s") && text.contains("p99"), "{text}");

    let modern =
        logwire(&["spop", "bench", &addr, "--modern", "--conns", "1", "--duration", "5", "--max-requests", "500"]);
    assert!(modern.status.success(), "{}", String::from_utf8_lossy(&modern.stdout));

    let db = agent.stop();
    let db = db.to_str().unwrap();
    let rows = query_json(
        std::path::Path::new(db),
        "SELECT count(*) AS n FROM events WHERE kind = 'event' AND name = 'check-request'",
    );
    assert_eq!(rows[0]["n"], 1 + 3000 + 500);

    // Table output, read-only enforcement, tail from the start.
    let out = logwire(&["query", "--db", db, "SELECT source, count(*) AS n FROM spans GROUP BY source"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("spop") && table.contains("3501"), "{table}");
    let out = logwire(&["query", "--db", db, "DELETE FROM records"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = logwire(&["tail", "--db", db, "--from-start", "--limit", "5"]);
    let tail = String::from_utf8_lossy(&out.stdout);
    assert_eq!(tail.lines().count(), 5, "{tail}");
    assert!(tail.lines().all(|l| l.contains(" spop ")), "{tail}");
}

#[test]
fn clear_errors() {
    let out = logwire(&["query", "--db", "/nonexistent/x.db", "SELECT 1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no store at /nonexistent/x.db"), "{err}");
    assert_eq!(err.lines().count(), 1, "one plain line: {err}");

    let port = free_port();
    let out = logwire(&["spop", "probe", &format!("127.0.0.1:{port}"), "--timeout", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot connect"));

    let help = logwire(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--spop") && help.contains("127.0.0.1:12345") && help.contains("--rules"), "{help}");
}

/// The overview in `logwire --help` names every source and how to start it; each flag and command it names
/// must exist, so the overview cannot drift from the real command line.
#[test]
fn the_overview_names_every_source_and_only_real_flags() {
    let out = logwire(&["--help"]);
    assert!(out.status.success());
    let overview = String::from_utf8_lossy(&out.stdout);
    for source in ["HAProxy SPOE/SPOP", "Nix daemon", "qlog", "g3proxy"] {
        assert!(overview.contains(source), "{source} missing from:\n{overview}");
    }
    let serve = String::from_utf8_lossy(&logwire(&["serve", "--help"]).stdout).into_owned();
    // The overview is the text above the usage line (below it, subcommand summaries name their own flags).
    let overview = overview.split("Usage:").next().unwrap_or_default();
    let named: Vec<&str> = overview
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    assert!(named.len() >= 7, "the overview names the serve flags: {named:?}");
    for flag in named {
        assert!(serve.contains(&format!("{flag} ")) || serve.contains(&format!("{flag}\n")), "`serve` has no {flag}");
    }
    for command in ["query", "tail", "nix", "qlog", "g3"] {
        let out = logwire(&[command, "--help"]);
        assert!(out.status.success(), "`logwire {command} --help` failed");
    }
}

/// Storage never delays an ACK: with the store's file locked by another writer, every NOTIFY is still
/// answered; the records that do not fit the queue are dropped, counted, printed and recorded.
#[test]
fn a_stalled_store_never_delays_acks() {
    let env = TestEnv::new("stall");
    let agent = env.start_logwire(&["--queue", "200"]);
    let addr = format!("127.0.0.1:{}", env.spop_port);
    // Another process holds the write lock: the writer thread cannot commit anything.
    let blocker = rusqlite::Connection::open(env.db()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let started = std::time::Instant::now();
    let out = logwire(&["spop", "bench", &addr, "--conns", "2", "--duration", "20", "--max-requests", "4000"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("4000 ACK"), "every NOTIFY was answered while the store was stalled: {text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "ACKs did not wait for the store");

    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let db = agent.stop();
    let dropped = query_json(&db, "SELECT coalesce(sum(dropped), 0) AS n FROM drops");
    let dropped = dropped[0]["n"].as_u64().unwrap();
    assert!(dropped > 0, "the full queue dropped and counted records");
    let stored = query_json(&db, "SELECT count(*) AS n FROM events WHERE source = 'spop'")[0]["n"].as_u64().unwrap();
    // 4000 NOTIFYs make 3 records each (span start, message, span end); the rest were dropped.
    assert!(stored < 3 * 4000);
}

fn fixture(name: &str) -> String {
    format!("{}/../../../shared/fixtures/spop/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `check-conf` on the fixtures is clean; a rule setting a variable HAProxy would ignore is an error.
#[test]
fn check_conf_reports_what_haproxy_does_silently() {
    let env = TestEnv::new("check");
    let good =
        env.write("good.toml", "[[rule]]\nname = \"score\"\nset = { scope = \"txn\", name = \"score\", value = 42 }\n");
    let out = logwire(&[
        "spop",
        "check-conf",
        &fixture("spoe.conf"),
        "--rules",
        &good,
        "--haproxy-cfg",
        &fixture("haproxy.cfg"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("0 error(s)"), "{text}");

    let bad =
        env.write("bad.toml", "[[rule]]\nname = \"tag\"\nset = { scope = \"txn\", name = \"tag\", value = \"x\" }\n");
    let out = logwire(&[
        "spop",
        "check-conf",
        &fixture("spoe.conf"),
        "--rules",
        &bad,
        "--haproxy-cfg",
        &fixture("haproxy.cfg"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.lines().any(|l| l.starts_with("error:") && l.contains("tag")), "{text}");
}

/// The engine client sends what HAProxy would send for a spoe.conf.
#[test]
fn bench_with_a_spoe_conf_sends_its_messages() {
    let env = TestEnv::new("bench-conf");
    let agent = env.start_logwire(&[]);
    let addr = format!("127.0.0.1:{}", env.spop_port);
    let out =
        logwire(&["spop", "bench", &addr, "--spoe-conf", &fixture("bench/spoe-bench.conf"), "--max-requests", "200"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let db = agent.stop();
    let rows = query_json(&db, "SELECT attrs FROM events WHERE name = 'check-request'");
    assert_eq!(rows.len(), 200);
    let args = &rows[0]["attrs"]["args"];
    // spoe-bench.conf: args ip=src method=method path=path host=req.hdr(host) ua=req.hdr(user-agent)
    let mut keys: Vec<&str> = args.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["host", "ip", "method", "path", "ua"]);
    assert_eq!(rows[0]["attrs"]["types"]["ip"], "ipv4");
}
