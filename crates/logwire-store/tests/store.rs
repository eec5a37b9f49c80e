//! End-to-end tests of the store: schema, writer, views, read side.

use logwire_model::{Attrs, JsonObjectWriter, Kind, Level, Record, Source};
use logwire_store::{
    open_read_only, query, query_each, render_json_lines, render_table, CommitOutcome, QueryResult, Store, StoreError,
    StoreHandle, Tailer, WriterConfig, SCHEMA_VERSION,
};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logwire.db");
    (dir, path)
}

fn config() -> WriterConfig {
    WriterConfig {
        queue_capacity: 100_000,
        max_batch: 1_000,
        max_delay: Duration::from_millis(5),
        busy_timeout: Duration::from_secs(10),
    }
}

fn columns(path: &Path, sql: &str) -> Vec<String> {
    query(path, sql).unwrap().columns
}

fn scalar(path: &Path, sql: &str) -> Value {
    let result = query(path, sql).unwrap();
    assert_eq!(result.rows.len(), 1, "{sql}");
    result.rows[0][0].clone()
}

fn sample() -> Record {
    Record::event(1_700_000_000_123_456_789, Source::Spop, "haproxy/42", "check-client-ip")
        .with_span("7")
        .with_parent("3")
        .with_level(Level::Warn)
        .with_attr("port", 443)
        .with_attr("ratio", 0.5)
        .with_attr("ip", "192.0.2.1")
        .with_attr("tls", true)
        .with_attr("nested", json!({"a": [1, 2, {"b": null}]}))
        .with_body("line\nwith newline")
}

#[test]
fn schema_is_idempotent_and_views_have_the_stable_columns() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let store = Store::open(&path).unwrap();
    drop(Store::open(&path).unwrap());

    // Direct inserts through a Store (no writer) work too.
    let mut store = store;
    store.insert(&[sample()]).unwrap();
    assert_eq!(scalar(&path, "SELECT count(*) FROM records"), json!(1));
    let version: i64 = store.connection().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let objects =
        query(&path, "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
            .unwrap();
    let objects: Vec<String> =
        objects.rows.iter().map(|r| format!("{} {}", r[0].as_str().unwrap(), r[1].as_str().unwrap())).collect();
    assert_eq!(
        objects,
        [
            "index records_span_end",
            "index records_time",
            "index records_trace",
            "table drops",
            "table records",
            "view events",
            "view spans",
        ]
    );

    let events = ["time_ns", "source", "kind", "trace_id", "span_id", "parent_id", "name", "level", "attrs", "body"];
    let spans = ["source", "trace_id", "span_id", "parent_id", "name", "start_ns", "end_ns", "duration_ns", "attrs"];
    assert_eq!(columns(&path, "SELECT * FROM events LIMIT 0"), events);
    assert_eq!(columns(&path, "SELECT * FROM spans LIMIT 0"), spans);
    assert_eq!(columns(&path, "SELECT * FROM drops LIMIT 0"), ["time_ns", "source", "dropped"]);
    // The same through PRAGMA table_info, which must also pass as a read-only statement.
    let info = query(&path, "PRAGMA table_info(events)").unwrap();
    let names: Vec<&str> = info.rows.iter().map(|r| r[1].as_str().unwrap()).collect();
    assert_eq!(names, events);
}

#[test]
fn a_newer_schema_is_refused() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    Connection::open(&path).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    match Store::open(&path) {
        Err(StoreError::SchemaTooNew { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn records_round_trip_through_writer_query_and_tail() {
    let (_dir, path) = temp_db();
    let writer = Store::spawn_writer(&path, config()).unwrap();
    let plain = Record::new(5, Source::Nix, Kind::Log, "conn-1", "next");
    assert!(writer.try_send(vec![sample(), plain.clone()]));
    writer.flush().unwrap();
    let stats = writer.stats();
    assert_eq!((stats.accepted, stats.written, stats.dropped, stats.queued), (2, 2, 0, 0));
    assert!(stats.batches >= 1);

    // query: typed values, attrs stored as JSON text whose numbers stay numbers.
    let result = query(&path, "SELECT * FROM events ORDER BY time_ns DESC").unwrap();
    assert_eq!(result.rows.len(), 2);
    let row = &result.rows[0];
    assert_eq!(row[0], json!(1_700_000_000_123_456_789_i64));
    assert_eq!(row[1], "spop");
    assert_eq!(row[2], "event");
    assert_eq!(row[7], "warn");
    assert_eq!(row[9], "line\nwith newline");
    let attrs: Value = serde_json::from_str(row[8].as_str().unwrap()).unwrap();
    assert_eq!(attrs, Value::Object(sample().attrs));
    assert_eq!(scalar(&path, "SELECT json_type(attrs, '$.port') FROM events WHERE source = 'spop'"), "integer");
    assert_eq!(scalar(&path, "SELECT attrs ->> '$.port' + 1 FROM events WHERE source = 'spop'"), json!(444));
    assert_eq!(result.rows[1][4], Value::Null);

    // JSON lines parse attrs back into an object.
    let lines = render_json_lines(&result);
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["attrs"]["port"], json!(443));
    assert_eq!(first["attrs"]["ratio"], json!(0.5));
    assert_eq!(first["body"], "line\nwith newline");

    // Tailer: from the start sees both, from the end sees only what comes later.
    let mut from_start = Tailer::new(&path, false).unwrap();
    let got = from_start.poll().unwrap();
    assert_eq!(got.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(), vec![sample(), plain.clone()]);
    assert!(got[0].0 < got[1].0);
    assert!(from_start.poll().unwrap().is_empty());
    let mut from_end = Tailer::new(&path, true).unwrap();
    assert!(from_end.poll().unwrap().is_empty());

    let later = Record::new(9, Source::G3, Kind::Event, "task-9", "Finished");
    writer.try_send_one(later.clone());
    writer.flush().unwrap();
    for tailer in [&mut from_start, &mut from_end] {
        let got = tailer.poll().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, later);
        assert_eq!(tailer.last_id(), got[0].0);
    }
    let stats = writer.close().unwrap();
    assert_eq!(stats.written, 3);
}

#[test]
fn tailer_limit_pages_through_records() {
    let (_dir, path) = temp_db();
    let writer = Store::spawn_writer(&path, config()).unwrap();
    writer.try_send((0..25).map(|i| Record::new(i, Source::Qlog, Kind::Event, "c", "e")).collect());
    writer.close().unwrap();
    let mut tail = Tailer::new(&path, false).unwrap().with_limit(10);
    let sizes: Vec<usize> = (0..4).map(|_| tail.poll().unwrap().len()).collect();
    assert_eq!(sizes, [10, 10, 5, 0]);
}

#[test]
fn tailer_reports_an_unreadable_row_once_and_goes_on() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let insert =
        "INSERT INTO records (time_ns, source, kind, trace_id, name, attrs) VALUES (?1, ?2, 'event', 't', 'n', '{}')";
    for (t, source) in [(1, "spop"), (2, "smtp"), (3, "nix")] {
        store.connection().execute(insert, (t, source)).unwrap();
    }
    let mut tail = Tailer::new(&path, false).unwrap();
    let first = tail.poll().unwrap();
    assert_eq!(first.len(), 1);
    match tail.poll() {
        Err(StoreError::Decode { column: "source", id: Some(2), .. }) => {}
        other => panic!("expected a decode error for row 2, got {other:?}"),
    }
    let rest = tail.poll().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1.source, Source::Nix);
}

#[test]
fn spans_view_pairs_ends_merges_attrs_and_keeps_unfinished_spans() {
    let (_dir, path) = temp_db();
    let writer = Store::spawn_writer(&path, config()).unwrap();
    let mut start_attrs = Attrs::new();
    start_attrs.insert("stream_id".into(), json!(12));
    start_attrs.insert("status".into(), json!("pending"));
    let mut end_attrs = Attrs::new();
    end_attrs.insert("status".into(), json!("ok"));
    end_attrs.insert("actions".into(), json!(2));
    let [s, e] = Record::span_pair(Source::Spop, "h/1", "s1", "spoe:req", 1_000, 1_750, start_attrs, end_attrs);
    // Same span id in another trace and another source: must not pair with s1.
    let other_trace = Record::new(1_100, Source::Spop, Kind::SpanEnd, "h/2", "spoe:req").with_span("s1");
    let other_source = Record::new(1_200, Source::Nix, Kind::SpanEnd, "h/1", "x").with_span("s1");
    let open = Record::new(2_000, Source::Nix, Kind::SpanStart, "conn", "build").with_span("a1").with_parent("a0");
    // A span id used twice in one trace: each start pairs with its own end.
    let reuse = [
        Record::new(10, Source::G3, Kind::SpanStart, "t", "task").with_span("r"),
        Record::new(15, Source::G3, Kind::SpanEnd, "t", "task").with_span("r"),
        Record::new(20, Source::G3, Kind::SpanStart, "t", "task").with_span("r"),
        Record::new(29, Source::G3, Kind::SpanEnd, "t", "task").with_span("r"),
    ];
    let mut all = vec![e, other_trace, other_source, s, open];
    all.extend(reuse);
    writer.try_send(all);
    writer.close().unwrap();

    let spans = query(
        &path,
        "SELECT source, trace_id, span_id, parent_id, name, start_ns, end_ns, duration_ns, attrs FROM spans \
         ORDER BY source, start_ns",
    )
    .unwrap();
    let rows: Vec<Vec<Value>> = spans.rows;
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(
        rows[0][..8],
        [json!("g3"), json!("t"), json!("r"), Value::Null, json!("task"), json!(10), json!(15), json!(5)]
    );
    assert_eq!(rows[1][5..8], [json!(20), json!(29), json!(9)]);
    assert_eq!(
        rows[2][..8],
        [json!("nix"), json!("conn"), json!("a1"), json!("a0"), json!("build"), json!(2000), Value::Null, Value::Null]
    );
    assert_eq!(rows[3][5..8], [json!(1000), json!(1750), json!(750)]);
    let merged: Value = serde_json::from_str(rows[3][8].as_str().unwrap()).unwrap();
    assert_eq!(merged, json!({"stream_id": 12, "status": "ok", "actions": 2}));
}

#[test]
fn spans_view_finds_the_end_through_the_partial_index() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let plan = query(&path, "EXPLAIN QUERY PLAN SELECT * FROM spans").unwrap();
    let details: Vec<String> = plan.rows.iter().map(|r| r[3].as_str().unwrap_or_default().to_string()).collect();
    let text = details.join("\n");
    assert!(text.contains("USING COVERING INDEX records_span_end"), "{text}");
    assert!(text.contains("SEARCH e USING INTEGER PRIMARY KEY"), "{text}");
    assert_eq!(details.iter().filter(|d| d.starts_with("SCAN")).count(), 1, "only the starts are scanned:\n{text}");
}

#[test]
fn a_full_queue_drops_counts_and_never_blocks_the_producer() {
    let (_dir, path) = temp_db();
    let config = WriterConfig {
        queue_capacity: 1,
        max_batch: 1,
        max_delay: Duration::ZERO,
        busy_timeout: Duration::from_secs(30),
    };
    let writer = Store::spawn_writer(&path, config).unwrap();
    // Another connection holds the write lock: the writer stalls on its first batch.
    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let handle: StoreHandle = writer.handle();
    let sent = 10_000u64;
    let start = Instant::now();
    let mut accepted = 0;
    for i in 0..sent {
        let source = if i % 2 == 0 { Source::Spop } else { Source::Nix };
        accepted += u64::from(handle.try_send_one(Record::new(i as i64, source, Kind::Event, "t", "n")));
    }
    let spent = start.elapsed();
    assert!(spent < Duration::from_secs(2), "10k try_send calls took {spent:?}: the producer waited");
    let stats = handle.stats();
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(stats.accepted, accepted);
    assert_eq!(stats.accepted + stats.dropped, sent, "{stats:?}");
    assert_eq!(stats.written, 0, "nothing can be written while the lock is held");
    assert!(stats.queued <= 1);
    // WAL: readers are not stopped by the held write lock.
    assert_eq!(scalar(&path, "SELECT count(*) FROM events"), json!(0));

    // The callback of a dropped send is told so, at once.
    let (tx, rx) = mpsc::channel();
    assert!(!handle.try_send_with_commit(vec![Record::new(0, Source::G3, Kind::Event, "t", "n")], move |o| {
        let _ = tx.send(o);
    }));
    assert_eq!(rx.try_recv().unwrap(), CommitOutcome::Dropped);

    blocker.execute_batch("ROLLBACK").unwrap();
    handle.flush().unwrap();
    let stats = handle.stats();
    assert_eq!(stats.written, accepted);
    assert_eq!(stats.dropped, sent - accepted + 1);
    assert_eq!(stats.failed, 0);
    let drops = query(&path, "SELECT source, SUM(dropped) FROM drops GROUP BY source ORDER BY source").unwrap();
    let total: u64 = drops.rows.iter().map(|r| r[1].as_u64().unwrap()).sum();
    assert_eq!(total, stats.dropped, "{drops:?}");
    assert_eq!(drops.rows.iter().map(|r| r[0].as_str().unwrap()).collect::<Vec<_>>(), ["g3", "nix", "spop"]);
    assert_eq!(scalar(&path, "SELECT count(*) FROM events"), json!(accepted));

    // Counts already written are not written again.
    handle.flush().unwrap();
    writer.close().unwrap();
    assert_eq!(scalar(&path, "SELECT SUM(dropped) FROM drops"), json!(stats.dropped));
}

#[test]
fn bulk_producers_are_told_to_wait_once_the_queue_is_half_full() {
    let (_dir, path) = temp_db();
    let config = WriterConfig { queue_capacity: 4, max_batch: 1, max_delay: Duration::ZERO, ..config() };
    let writer = Store::spawn_writer(&path, config).unwrap();
    let record = |i| Record::new(i, Source::G3, Kind::Event, "t", "n");
    assert!(writer.has_room_for_bulk());
    // Another connection holds the write lock: the writer takes the first record and stalls committing it.
    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert!(writer.try_send_one(record(0)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while writer.stats().queued > 0 {
        assert!(Instant::now() < deadline, "the writer never took the first record");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(writer.try_send(vec![record(1), record(2)]));
    assert!(writer.has_room_for_bulk(), "half the queue is still room: {:?}", writer.stats());
    assert!(writer.try_send_one(record(3)));
    assert!(!writer.has_room_for_bulk(), "more than half full: {:?}", writer.stats());
    // The other half is still there for producers that cannot wait.
    assert!(writer.try_send_one(record(4)));

    blocker.execute_batch("ROLLBACK").unwrap();
    writer.flush().unwrap();
    assert!(writer.has_room_for_bulk());
    let stats = writer.close().unwrap();
    assert_eq!((stats.written, stats.dropped), (5, 0), "{stats:?}");
}

#[test]
fn a_failed_write_is_counted_retried_and_the_writer_goes_on() {
    let (_dir, path) = temp_db();
    let config = WriterConfig { busy_timeout: Duration::from_millis(20), ..config() };
    let writer = Store::spawn_writer(&path, config).unwrap();
    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let (tx, rx) = mpsc::channel();
    let records: Vec<Record> = (0..3).map(|i| Record::new(i, Source::Spop, Kind::Event, "t", "lost")).collect();
    assert!(writer.try_send_with_commit(records, move |o| {
        let _ = tx.send(o);
    }));
    writer.flush().unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), CommitOutcome::Dropped);
    let stats = writer.stats();
    assert_eq!((stats.failed, stats.write_errors, stats.written), (3, 2, 0), "{stats:?}");
    let error = stats.last_error.unwrap();
    assert!(error.contains("locked"), "{error}");

    blocker.execute_batch("ROLLBACK").unwrap();
    let (tx, rx) = mpsc::channel();
    assert!(writer.try_send_with_commit(vec![Record::new(9, Source::Spop, Kind::Event, "t", "kept")], move |o| {
        let _ = tx.send(o);
    }));
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), CommitOutcome::Committed);
    let stats = writer.close().unwrap();
    assert_eq!((stats.written, stats.failed), (1, 3));
    assert_eq!(scalar(&path, "SELECT group_concat(name) FROM events"), "kept");
}

#[test]
fn after_close_handles_drop_and_flush_fails() {
    let (_dir, path) = temp_db();
    let writer = Store::spawn_writer(&path, config()).unwrap();
    let handle = writer.handle();
    handle.try_send_one(Record::new(1, Source::Spop, Kind::Event, "t", "n"));
    let stats = writer.close().unwrap();
    assert_eq!(stats.written, 1, "close commits what was queued");
    assert!(!handle.try_send_one(Record::new(2, Source::Spop, Kind::Event, "t", "n")));
    assert_eq!(handle.stats().dropped, 1);
    assert!(matches!(handle.flush(), Err(StoreError::WriterStopped { .. })));
}

#[test]
fn dropping_the_guard_flushes() {
    let (_dir, path) = temp_db();
    {
        let writer =
            Store::spawn_writer(&path, WriterConfig { max_delay: Duration::from_secs(60), ..config() }).unwrap();
        writer.try_send((0..10).map(|i| Record::new(i, Source::Spop, Kind::Event, "t", "n")).collect());
    }
    assert_eq!(scalar(&path, "SELECT count(*) FROM records"), json!(10));
}

#[test]
fn handles_are_send_sync_clone_and_work_from_many_threads() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<StoreHandle>();

    let (_dir, path) = temp_db();
    let writer = Store::spawn_writer(&path, config()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let handle = writer.handle();
            std::thread::spawn(move || {
                for i in 0..500 {
                    assert!(handle.try_send_one(Record::new(i, Source::Qlog, Kind::Event, format!("c{t}"), "e")));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = writer.close().unwrap();
    assert_eq!((stats.written, stats.dropped), (2_000, 0));
    assert_eq!(scalar(&path, "SELECT count(DISTINCT trace_id) FROM events"), json!(4));
}

#[test]
fn many_records_are_all_written_and_counted() {
    let (_dir, path) = temp_db();
    let config = WriterConfig { queue_capacity: 50_000, max_batch: 5_000, ..config() };
    let writer = Store::spawn_writer(&path, config).unwrap();
    let total = 200_000u64;
    let chunk = 100u64;
    for c in 0..total / chunk {
        // Stay under the bound so that nothing is dropped; the producer itself never blocks in try_send.
        while writer.stats().queued > 40_000 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let records = (0..chunk)
            .map(|i| {
                let n = c * chunk + i;
                Record::event(n as i64, Source::Spop, format!("h/{}", n / 10), "msg").with_attr("n", n)
            })
            .collect();
        assert!(writer.try_send(records));
    }
    let stats = writer.close().unwrap();
    assert_eq!((stats.accepted, stats.written, stats.dropped, stats.failed), (total, total, 0, 0));
    assert!(stats.batches >= total / 5_000 && stats.batches < total / chunk, "{stats:?}");
    let result = query(&path, "SELECT count(*), SUM(attrs ->> '$.n'), MIN(time_ns), MAX(time_ns) FROM events").unwrap();
    assert_eq!(result.rows[0], [json!(total), json!(total * (total - 1) / 2), json!(0), json!(total - 1)]);
}

#[test]
fn a_new_file_gets_32_kib_pages_and_an_old_file_keeps_its_own() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let pragma = |conn: &Connection, name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    assert_eq!(pragma(store.connection(), "page_size").unwrap(), 32 * 1024);
    assert_eq!(pragma(store.connection(), "journal_size_limit").unwrap(), 64 << 20);
    drop(store);

    // A file an older logwire made with 8 KiB pages: opening it must neither fail nor change them, and the
    // writer (whose checkpoint backstop is counted in pages) must still write.
    let (_old_dir, old_path) = temp_db();
    let conn = Connection::open(&old_path).unwrap();
    conn.pragma_update(None, "page_size", 8192).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)).unwrap();
    conn.execute_batch("CREATE TABLE placeholder (x)").unwrap();
    drop(conn);
    let writer = Store::spawn_writer(&old_path, config()).unwrap();
    assert!(writer.try_send(vec![sample(), sample()]));
    let stats = writer.close().unwrap();
    assert_eq!((stats.written, stats.dropped, stats.failed), (2, 0, 0));
    assert_eq!(scalar(&old_path, "SELECT count(*) FROM events"), json!(2));
    let conn = Connection::open(&old_path).unwrap();
    assert_eq!(pragma(&conn, "page_size").unwrap(), 8192);
}

#[test]
fn query_refuses_writes_and_more_than_one_statement() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    for sql in [
        "INSERT INTO records (time_ns, source, kind, trace_id, name, attrs) VALUES (1, 'spop', 'event', 't', 'n', '{}')",
        "DELETE FROM records",
        "CREATE TABLE x(a)",
        "DROP VIEW events",
        "PRAGMA user_version = 7",
    ] {
        match query(&path, sql) {
            Err(e @ StoreError::ReadOnly { .. }) => assert!(e.to_string().contains("read-only"), "{e}"),
            other => panic!("{sql}: expected ReadOnly, got {other:?}"),
        }
    }
    // Under the statement check: on the read-only connection, even with query_only turned off, a write
    // fails in SQLite itself.
    let conn = open_read_only(&path).unwrap();
    conn.execute_batch("PRAGMA query_only = 0").unwrap();
    let e = conn.execute("DELETE FROM records", []).unwrap_err();
    assert_eq!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::ReadOnly), "{e}");
    assert!(matches!(query(&path, "SELECT 1; DELETE FROM records"), Err(StoreError::NotOneStatement { .. })));
    assert!(matches!(query(&path, "  -- nothing\n"), Err(StoreError::NotOneStatement { .. })));
    // A trailing semicolon, space or comment is still one statement.
    assert_eq!(query(&path, "SELECT 1; -- done\n").unwrap().rows, [[json!(1)]]);
    assert!(matches!(query(&path, "SELEC 1"), Err(StoreError::Query { .. })));
    let missing = path.with_file_name("missing.db");
    assert!(matches!(query(&missing, "SELECT 1"), Err(StoreError::NotFound { .. })));
    assert!(!missing.exists(), "a query must not create the file");
    assert_eq!(scalar(&path, "SELECT count(*) FROM sqlite_schema WHERE name = 'x'"), json!(0));
}

#[test]
fn query_maps_every_sqlite_type() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let result = query(&path, "SELECT 42 AS i, 2.5 AS r, 'text' AS t, x'00ff' AS b, x'6869' AS p, NULL AS n").unwrap();
    assert_eq!(result.columns, ["i", "r", "t", "b", "p", "n"]);
    assert_eq!(
        result.rows,
        [[
            json!(42),
            json!(2.5),
            json!("text"),
            json!({"hex": "00ff"}),
            json!({"hex": "6869", "text": "hi"}),
            Value::Null
        ]]
    );
}

#[test]
fn query_each_streams_rows_and_reports_output_errors() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let sql = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000) SELECT x FROM n";
    let mut sum = 0;
    let summary = query_each(&path, sql, |cols, row| {
        assert_eq!(cols, ["x"]);
        sum += row[0].as_i64().unwrap();
        Ok(())
    })
    .unwrap();
    assert_eq!((summary.rows, sum), (1000, 500_500));
    let summary = query_each(&path, "SELECT * FROM events", |_, _| Ok(())).unwrap();
    assert_eq!((summary.rows, summary.columns.len()), (0, 10));

    let mut seen = 0;
    let e = query_each(&path, sql, |_, _| {
        seen += 1;
        if seen == 3 {
            Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed"))
        } else {
            Ok(())
        }
    });
    assert!(matches!(e, Err(StoreError::Output(ref io)) if io.kind() == std::io::ErrorKind::BrokenPipe), "{e:?}");
    assert_eq!(seen, 3);
}

#[test]
fn table_and_json_lines_rendering() {
    let result = QueryResult {
        columns: vec!["id".into(), "name".into(), "attrs".into(), "end_ns".into()],
        rows: vec![
            vec![json!(1), json!("short"), json!(r#"{"port":443}"#), Value::Null],
            vec![json!(1234), json!("tab\there"), json!("not json"), json!(7)],
        ],
    };
    let table = render_table(&result);
    // Header cells are left-aligned; numbers are right-aligned; trailing spaces are trimmed.
    let expected = [
        "id   | name      | attrs        | end_ns",
        "-----+-----------+--------------+-------",
        "   1 | short     | {\"port\":443} | NULL",
        "1234 | tab\\there | not json     |      7",
        "(2 rows)",
        "",
    ]
    .join("\n");
    assert_eq!(table, expected);
    assert_eq!(
        render_table(&QueryResult { columns: vec!["x".into()], rows: vec![vec![json!(1)]] }),
        "x\n-\n1\n(1 row)\n"
    );
    assert_eq!(render_table(&QueryResult::default()), "(0 rows)\n");

    let lines = render_json_lines(&result);
    assert_eq!(
        lines,
        "{\"id\":1,\"name\":\"short\",\"attrs\":{\"port\":443},\"end_ns\":null}\n\
         {\"id\":1234,\"name\":\"tab\\there\",\"attrs\":\"not json\",\"end_ns\":7}\n"
    );
}

#[test]
fn batched_inserts_keep_every_field_and_the_order() {
    // Enough records for several multi-row statements plus a remainder inserted row by row, with every
    // optional field both set and unset, so each row's parameters are bound at their own offset. Text is
    // bound in place, so rows whose attrs the store renders sit between rows rendered by the producer, and
    // empty and non-ASCII text is in there too.
    let (_dir, path) = temp_db();
    let records: Vec<Record> = (0..77i64)
        .map(|i| {
            let kinds = [Kind::SpanStart, Kind::SpanEnd, Kind::Event, Kind::Log];
            let (trace, name) =
                if i == 7 { (String::new(), String::new()) } else { (format!("t/{}", i / 5), format!("n{i} ✓")) };
            let mut r = Record::new(1_000 + i, Source::ALL[i as usize % 4], kinds[i as usize % 4], trace, name);
            if i % 5 == 1 {
                let mut attrs = JsonObjectWriter::default();
                attrs.i64("i", i).str("text", &"é\"".repeat(i as usize));
                r = r.with_attrs_json(attrs);
            } else {
                r = r.with_attr("i", i).with_attr("text", "x".repeat(i as usize));
            }
            if i % 2 == 0 {
                r = r.with_span(format!("s{i}")).with_level(Level::Info);
            }
            if i % 3 == 0 {
                r = r.with_parent(format!("p{i}")).with_body(format!("body {i}"));
            }
            r
        })
        .collect();
    let mut store = Store::open(&path).unwrap();
    store.insert(&records).unwrap();
    store.insert(&records[..3]).unwrap();
    let read: Vec<Record> =
        Tailer::new(&path, false).unwrap().with_limit(1_000).poll().unwrap().into_iter().map(|(_, r)| r).collect();
    // Attrs rendered by the producer read back as ordinary attrs.
    let expected: Vec<Record> = records
        .iter()
        .chain(&records[..3])
        .cloned()
        .map(|mut r| {
            if let Some(text) = r.attrs_json.take() {
                r.attrs = serde_json::from_str(&text).unwrap();
            }
            r
        })
        .collect();
    assert_eq!(read.len(), expected.len());
    assert_eq!(read, expected);
}

#[test]
fn attrs_rendered_by_the_producer_are_stored_verbatim_and_read_back_as_attrs() {
    let (_dir, path) = temp_db();
    let mut object = JsonObjectWriter::default();
    object.str("task_id", "8e1624fce57f11f18869c59c5f289d8d").u64("c_rd_bytes", 146).bool("reuse", false);
    object.value("quoted", &json!("a \"b\"\n"));
    let rendered = Record::event(5, Source::G3, "t", "g3:escape:x").with_attrs_json(object);
    let text = rendered.attrs_json.clone().unwrap();
    let mut store = Store::open(&path).unwrap();
    store.insert(&[rendered, sample()]).unwrap();
    // The text went in as it was…
    assert_eq!(scalar(&path, "SELECT attrs FROM events WHERE time_ns = 5"), Value::String(text));
    assert_eq!(
        scalar(&path, "SELECT json_extract(attrs, '$.quoted') FROM events WHERE time_ns = 5"),
        json!("a \"b\"\n")
    );
    // …and reads back as ordinary attrs.
    let got = Tailer::new(&path, false).unwrap().poll().unwrap();
    let back = &got[0].1;
    assert_eq!(back.attrs_json, None);
    assert_eq!(back.attrs["c_rd_bytes"], json!(146));
    assert_eq!(back.attrs["reuse"], json!(false));
    assert_eq!(got[1].1, sample());
}

/// The writer and checkpoint threads run under SCHED_BATCH (policy 3, field 41 of their /proc stat), so
/// a batch arriving does not preempt the daemon that produced it.
#[cfg(target_os = "linux")]
#[test]
fn store_threads_do_not_preempt() {
    let (_dir, path) = temp_db();
    let writer = Store::spawn_writer(&path, config()).unwrap();
    writer.handle().flush().unwrap();
    let store_thread_policies = || {
        let mut policies = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("logwire-store-") {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            policies.push((comm.trim().to_string(), after_name.split(' ').nth(41 - 3).unwrap().to_string()));
        }
        policies
    };
    // A thread sets its policy as it starts, which may be a moment after spawn_writer returns.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut policies = store_thread_policies();
    while policies.iter().any(|(_, policy)| policy != "3") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        policies = store_thread_policies();
    }
    writer.close().unwrap();
    // Other tests' writers may be running too: every store thread must be batch, and ours are there.
    assert!(policies.iter().any(|(comm, _)| comm == "logwire-store-w"), "{policies:?}");
    assert!(policies.iter().any(|(comm, _)| comm == "logwire-store-c"), "{policies:?}");
    assert!(policies.iter().all(|(_, policy)| policy == "3"), "{policies:?}");
}
