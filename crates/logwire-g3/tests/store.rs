//! The captures through the record mapping into a real logwire store: task spans merged by task_id, the
//! timeline, escape linked to its task, resolve linked by domain, and the stats views.

use logwire_g3::forward::{event_to_log, ForwardDecoder, ForwardMessage};
use logwire_g3::record::to_records;
use logwire_g3::{sql, syslog, G3Log};
use logwire_store::{query, Store};
use serde_json::Value;
use std::path::PathBuf;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/g3").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
}

fn syslog_logs(rel: &str) -> Vec<G3Log> {
    fixture(rel).split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| syslog::decode(l).unwrap()).collect()
}

fn fluentd_logs() -> Vec<G3Log> {
    let mut buf = bytes::BytesMut::from(&fixture("fluentd/fluentd-forward.bin")[..]);
    let mut d = ForwardDecoder::default();
    let mut out = Vec::new();
    while let Some(ForwardMessage::Events { tag, events, .. }) = d.decode(&mut buf).unwrap() {
        for (t, r) in &events {
            out.push(event_to_log(&tag, *t, r).unwrap());
        }
    }
    out
}

fn store_with(logs: &[G3Log]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g3.db");
    let mut store = Store::open(&db).unwrap();
    let records: Vec<_> = logs.iter().flat_map(|l| to_records(l, 1)).collect();
    store.insert(&records).unwrap();
    drop(store);
    sql::install_views(&db).unwrap();
    sql::install_views(&db).unwrap(); // idempotent
    (dir, db)
}

fn check_store(logs: &[G3Log]) {
    let (_dir, db) = store_with(logs);
    let q = |s: &str| query(&db, s).unwrap().rows;
    // 11 finished tasks → 11 spans, each trace = its task_id, durations = total_time.
    let spans =
        q("SELECT trace_id, duration_ns, json_extract(attrs, '$.total_time'), json_extract(attrs, '$.task_type') \
                   FROM spans WHERE source = 'g3'");
    assert_eq!(spans.len(), 11);
    for s in &spans {
        assert_eq!(s[0].as_str().unwrap().len(), 32);
        assert_eq!(s[1], s[2], "span duration is the task's total_time");
    }
    // The HTTP forward tasks of the `http` server have a Created → Connected → Finished timeline.
    let timeline = q("SELECT task_id, group_concat(COALESCE(task_event, kind), '>') FROM \
                      (SELECT * FROM g3_task_timeline ORDER BY task_id, time_ns, kind DESC) GROUP BY task_id");
    let full: Vec<_> =
        timeline.iter().filter(|r| r[1].as_str().unwrap().starts_with("span_start>Created>Connected>")).collect();
    assert_eq!(full.len(), 5, "{timeline:?}");
    for r in &full {
        assert!(r[1].as_str().unwrap().ends_with(">Finished"), "{r:?}");
    }
    // The escape record is on the trace of the task that failed to connect.
    let linked = q("SELECT t.reason, t.rsp_status FROM events AS e JOIN g3_tasks AS t ON t.task_id = e.trace_id \
                    WHERE e.name = 'g3:escape:TcpConnect'");
    assert_eq!(linked, vec![vec![Value::from("UpstreamNotConnected"), Value::from(521)]]);
    // Stats: by task type, counts and reasons; percentiles are actual values of the group.
    let stats =
        q("SELECT task_type, tasks, reasons, total_p50, total_p99, bytes_up, bytes_down FROM g3_stats_by_task_type");
    let by: std::collections::BTreeMap<String, &Vec<Value>> =
        stats.iter().map(|r| (r[0].as_str().unwrap().to_string(), r)).collect();
    assert_eq!(by["HttpForward"][1], 7);
    assert_eq!(by["TcpConnect"][1], 2);
    assert_eq!(by["UdpConnect"][1], 1);
    let reasons: Value = serde_json::from_str(by["HttpForward"][2].as_str().unwrap()).unwrap();
    assert_eq!(reasons["Finished"], 5);
    assert_eq!(reasons["UpstreamNotConnected"], 1);
    assert_eq!(reasons["InternalResolverError"], 1);
    let totals = q("SELECT total_ns FROM g3_tasks WHERE task_type = 'HttpForward' ORDER BY total_ns");
    let totals: Vec<i64> = totals.iter().map(|r| r[0].as_i64().unwrap()).collect();
    assert_eq!(by["HttpForward"][3].as_i64(), Some(totals[3]), "p50 of 7 is the 4th");
    assert_eq!(by["HttpForward"][4].as_i64(), Some(totals[6]), "p99 of 7 is the 7th");
    let sums = q("SELECT SUM(bytes_up), SUM(bytes_down) FROM g3_tasks WHERE task_type = 'HttpForward'");
    assert_eq!(by["HttpForward"][5], sums[0][0]);
    assert_eq!(by["HttpForward"][6], sums[0][1]);
    assert!(by["HttpForward"][6].as_i64().unwrap() > 0);
    let users = q("SELECT user, tasks FROM g3_stats_by_user WHERE user = 'alice'");
    assert_eq!(users, vec![vec![Value::from("alice"), Value::from(1)]]);
    // Every dimension has a view.
    for d in sql::DIMENSIONS {
        let rows = q(&format!("SELECT SUM(tasks) FROM g3_stats_by_{d}"));
        assert_eq!(rows[0][0], 11, "{d}");
    }
}

#[test]
fn rfc5424_capture_in_the_store() {
    check_store(&syslog_logs("rfc5424/syslog-udp.raw"));
}

#[test]
fn rfc3164_capture_in_the_store() {
    check_store(&syslog_logs("rfc3164/syslog-udp.raw"));
}

#[test]
fn fluentd_capture_in_the_store_with_resolve_linked_by_domain() {
    let logs = fluentd_logs();
    check_store(&logs);
    let (_dir, db) = store_with(&logs);
    let links = query(&db, "SELECT l.domain, t.reason FROM g3_resolve_links AS l JOIN g3_tasks AS t USING (task_id)")
        .unwrap()
        .rows;
    assert_eq!(links, vec![vec![Value::from("nonexistent.invalid"), Value::from("InternalResolverError")]]);
}
