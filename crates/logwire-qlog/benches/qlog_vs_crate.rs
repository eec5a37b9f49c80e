//! logwire-qlog vs the `qlog` 0.18.2 crate, same events, same run (workload: ../shared/notes/qlog.md §4).
//!
//! - write: `QlogStreamer` → `BufWriter<File>` (64 KiB) vs logwire's `Streamer` → `File`;
//! - read of the newest layout (the crate's own output): `QlogSeqReader` (BufReader 64 KiB, typed events)
//!   vs logwire's `Reader` (file read + every event: normalised name, time, data validated and kept raw),
//!   and logwire with typed data (`Event::typed`) too;
//! - read of a 0.3 file (ngtcp2's fixture events repeated), which the crate cannot read at all.
//!
//! `cargo bench -p logwire-qlog --bench qlog_vs_crate [-- EVENTS]` (default 300,000; median of 3 runs).

#[path = "../tests/common/workload.rs"]
mod workload;

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rate<F: FnMut() -> u64>(runs: usize, mut f: F) -> (f64, u64) {
    let mut rates = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = f();
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    (median(rates), n)
}

fn write_anchor(path: &Path, n: u64) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    let mut s = workload::anchor_streamer(Box::new(BufWriter::with_capacity(64 * 1024, file)));
    s.start_log().unwrap();
    for i in 0..n {
        s.add_event(workload::anchor_event(i)).unwrap();
    }
    s.finish_log().unwrap();
    n
}

fn write_logwire(path: &Path, n: u64) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    let mut s = logwire_qlog::Streamer::new(file, workload::logwire_config()).unwrap();
    s.start_log().unwrap();
    for i in 0..n {
        s.add_event(workload::time_of(i), &workload::logwire_event(i)).unwrap();
    }
    s.finish_log().unwrap();
    n
}

fn read_anchor(path: &Path) -> u64 {
    let file = std::fs::File::open(path).unwrap();
    let reader = qlog::reader::QlogSeqReader::new(Box::new(BufReader::with_capacity(64 * 1024, file))).unwrap();
    let mut n = 0;
    for e in reader {
        if let qlog::reader::Event::Qlog(e) = e {
            std::hint::black_box(&e);
            n += 1;
        }
    }
    n
}

fn read_logwire(path: &Path, typed: bool) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mut r = logwire_qlog::Reader::new(&bytes).unwrap();
    let mut n = 0;
    while let Some(item) = r.next() {
        let e = item.unwrap();
        if typed {
            std::hint::black_box(e.typed(&r.traces[e.trace]));
        } else {
            std::hint::black_box((&e.name, e.time_ms, e.data_raw));
        }
        n += 1;
    }
    n
}

/// A 0.3 file: ngtcp2's real events repeated with increasing times.
fn make_v03_file(path: &Path, n: u64) -> u64 {
    let fixture = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/qlog/ngtcp2-0.12.1-client-clean.sqlog"),
    )
    .unwrap();
    let text = String::from_utf8(fixture).unwrap();
    let mut records = text.split('\u{1e}').skip(1);
    let header = records.next().unwrap();
    let events: Vec<&str> = records.collect();
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    write!(out, "\u{1e}{header}").unwrap();
    for i in 0..n {
        let e = events[(i as usize) % events.len()];
        let rest = &e[e.find(",\"name\"").unwrap()..];
        write!(out, "\u{1e}{{\"time\":{}{rest}", i / 10).unwrap();
    }
    out.flush().unwrap();
    n
}

fn main() {
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(300_000);
    let dir = tempfile::tempdir().unwrap();
    let (a_path, l_path, v03) =
        (dir.path().join("anchor.sqlog"), dir.path().join("logwire.sqlog"), dir.path().join("v03.sqlog"));
    println!("qlog_vs_crate: {n} events, median of 3 runs");

    let (anchor_w, _) = rate(3, || write_anchor(&a_path, n));
    let (ours_w, _) = rate(3, || write_logwire(&l_path, n));
    let size = std::fs::metadata(&a_path).unwrap().len() as f64;
    println!(
        "write   qlog 0.18.2 QlogStreamer+BufWriter<File>: {:>10.0} events/s ({:.0} MB/s)",
        anchor_w,
        anchor_w * size / n as f64 / 1e6
    );
    println!(
        "write   logwire Streamer → File:                   {:>10.0} events/s ({:.0} MB/s)   ratio {:.2}x",
        ours_w,
        ours_w * std::fs::metadata(&l_path).unwrap().len() as f64 / n as f64 / 1e6,
        ours_w / anchor_w
    );

    let (anchor_r, na) = rate(3, || read_anchor(&a_path));
    let (ours_r, nl) = rate(3, || read_logwire(&a_path, false));
    let (ours_t, nt) = rate(3, || read_logwire(&a_path, true));
    assert_eq!((na, nl, nt), (n, n, n), "every reader reads every event");
    println!(
        "read    qlog 0.18.2 QlogSeqReader (typed):         {:>10.0} events/s ({:.0} MB/s)",
        anchor_r,
        anchor_r * size / n as f64 / 1e6
    );
    println!(
        "read    logwire Reader (names, times, raw data):   {:>10.0} events/s ({:.0} MB/s)   ratio {:.2}x",
        ours_r,
        ours_r * size / n as f64 / 1e6,
        ours_r / anchor_r
    );
    println!(
        "read    logwire Reader + typed data:               {:>10.0} events/s ({:.0} MB/s)   ratio {:.2}x",
        ours_t,
        ours_t * size / n as f64 / 1e6,
        ours_t / anchor_r
    );

    make_v03_file(&v03, n);
    let v03_size = std::fs::metadata(&v03).unwrap().len() as f64;
    let crate_result = qlog::reader::QlogSeqReader::new(Box::new(BufReader::new(std::fs::File::open(&v03).unwrap())))
        .err()
        .map(|e| format!("fails: {e}"))
        .unwrap_or_else(|| "reads it".into());
    let (v03_r, _) = rate(3, || read_logwire(&v03, false));
    let (v03_t, _) = rate(3, || read_logwire(&v03, true));
    println!("read 0.3 (ngtcp2 events, {:.0} B/event): qlog 0.18.2 {crate_result}", v03_size / n as f64);
    println!(
        "read 0.3 logwire Reader (normalised names):        {:>10.0} events/s ({:.0} MB/s)",
        v03_r,
        v03_r * v03_size / n as f64 / 1e6
    );
    println!(
        "read 0.3 logwire Reader + normalised typed data:   {:>10.0} events/s ({:.0} MB/s)",
        v03_t,
        v03_t * v03_size / n as f64 / 1e6
    );
}
