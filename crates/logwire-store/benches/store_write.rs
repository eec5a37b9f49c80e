//! Write throughput of the store: N SPOP-like records (a NOTIFY message with six typed args) through the
//! writer thread into a fresh WAL file, timed from the first `try_send` until `flush` returns.
//!
//! `cargo bench -p logwire-store --bench store_write [-- N]` (N defaults to 500 000).
//!
//! The producer sends frames of 4 records (span start, two messages, span end), as the SPOP agent does per
//! NOTIFY. It stays under the queue bound by waiting when the queue is 3/4 full, so the number measures
//! the writer, not drops; the time spent inside `try_send` is printed separately.

use logwire_model::{binary_value, Attrs, Record, Source};
use logwire_store::{Store, WriterConfig};
use serde_json::json;
use std::time::{Duration, Instant};

fn main() {
    let n: usize =
        std::env::args().skip(1).filter(|a| !a.starts_with('-')).find_map(|a| a.parse().ok()).unwrap_or(500_000);
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("store_write: cannot create a temporary directory: {e}");
            std::process::exit(1);
        }
    };
    let path = dir.path().join("bench.db");
    let config = WriterConfig::default();
    let capacity = config.queue_capacity as u64;
    let writer = match Store::spawn_writer(&path, config.clone()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("store_write: {e}");
            std::process::exit(1);
        }
    };

    let base_ns = logwire_model::now_ns();
    let frames: Vec<Vec<Record>> = (0..n.div_ceil(4)).map(|i| frame(base_ns, i as u64)).collect();

    let start = Instant::now();
    let mut in_send = Duration::ZERO;
    let mut sends = 0u64;
    let mut left = n;
    for mut records in frames {
        records.truncate(left);
        left -= records.len();
        while writer.stats().queued > capacity * 3 / 4 {
            std::thread::sleep(Duration::from_micros(200));
        }
        let t = Instant::now();
        writer.try_send(records);
        in_send += t.elapsed();
        sends += 1;
    }
    if let Err(e) = writer.flush() {
        eprintln!("store_write: flush failed: {e}");
        std::process::exit(1);
    }
    let elapsed = start.elapsed();
    let stats = writer.stats();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(path.with_extension("db-wal")).map(|m| m.len()).unwrap_or(0);

    println!(
        "store_write: {n} SPOP-like records, queue {capacity}, batch {}, delay {:?}",
        config.max_batch, config.max_delay
    );
    println!(
        "  written {} dropped {} failed {} in {} batches, {:.3} s",
        stats.written,
        stats.dropped,
        stats.failed,
        stats.batches,
        elapsed.as_secs_f64()
    );
    println!("  {:.0} records/s", stats.written as f64 / elapsed.as_secs_f64());
    println!(
        "  try_send: {:.0} ns per call ({sends} calls of up to 4 records)",
        in_send.as_nanos() as f64 / sends.max(1) as f64
    );
    println!(
        "  file size with the WAL {:.1} MiB ({:.0} bytes/record)",
        size as f64 / 1048576.0,
        size as f64 / n.max(1) as f64
    );
    if let Err(e) = writer.close() {
        eprintln!("store_write: close failed: {e}");
    }
    // After close the WAL is checkpointed and gone: what is left is what the records cost on disk.
    let closed = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "  after close: database {:.1} MiB ({:.0} bytes/record)",
        closed as f64 / 1048576.0,
        closed as f64 / n.max(1) as f64
    );
}

/// One NOTIFY as the SPOP source records it: span start, two messages with typed args, span end.
fn frame(base_ns: i64, i: u64) -> Vec<Record> {
    let t = base_ns + (i as i64) * 10_000;
    let trace = format!("haproxy-1/{}", i / 8);
    let span = format!("{i}");
    let mut start_attrs = Attrs::new();
    start_attrs.insert("stream_id".into(), json!(i / 8));
    start_attrs.insert("frame_id".into(), json!(i % 8));
    let mut end_attrs = Attrs::new();
    end_attrs.insert("status".into(), json!("ok"));
    end_attrs.insert("actions".into(), json!([{"set-var": {"scope": "sess", "name": "ip_score", "value": 12}}]));
    let [s, e] = Record::span_pair(
        Source::Spop,
        trace.clone(),
        span.clone(),
        "spoe:on-frontend-http-request",
        t,
        t + 7_500,
        start_attrs,
        end_attrs,
    );
    let args = json!({
        "ip": format!("192.0.2.{}", i % 250),
        "port": 40_000 + (i % 20_000),
        "method": "GET",
        "path": format!("/api/v1/items/{i}"),
        "tls": i % 3 == 1,
        "unique_id": binary_value(&i.to_be_bytes()),
    });
    let message = |name: &str, dt: i64| {
        Record::event(t + dt, Source::Spop, trace.clone(), name).with_span(span.clone()).with_attr("args", args.clone())
    };
    vec![s, message("check-client-ip", 1_000), message("log-request", 2_000), e]
}
