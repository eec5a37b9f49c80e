//! logwire-qlog vs the `qlog` 0.18.2 crate, same events, same run (workload: ../shared/notes/qlog.md §4).
//!
//! - write: `QlogStreamer` → `BufWriter<File>` (64 KiB) vs logwire's `Streamer` → `File`, and
//!   `Streamer::background` (the file writes on their own thread);
//! - read of the newest layout (the crate's own output), both sides yielding every event's name, time and
//!   owned typed data: from the file (`QlogSeqReader` on a 64 KiB BufReader vs logwire's `stream::read_seq`),
//!   and from the same bytes in memory (`Cursor` vs `Reader`: the parsing alone); plus logwire's lazy view (name,
//!   time, `data` validated and kept as text, not typed), labelled as such;
//! - read of a 0.3 file (ngtcp2's fixture events repeated), which the crate cannot read at all.
//!
//! `cargo bench -p logwire-qlog --bench qlog_vs_crate [-- EVENTS] [write-only]` (default 300,000; the median
//! of 5 runs, logwire's and the crate's interleaved so that both see the same load on a busy machine).
//! `write-only` stops after the writes: for profiling them with callgrind, where `write_anchor`,
//! `write_logwire` and `write_logwire_background` are the functions to compare.

#[path = "../tests/common/workload.rs"]
mod workload;

use std::io::ErrorKind::NotFound;
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

#[inline(never)]
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

/// `n` events through logwire's `Streamer` `s`; returns its output.
fn write_logwire_into<W: std::io::Write>(mut s: logwire_qlog::Streamer<W>, n: u64) -> W {
    s.start_log().unwrap();
    for i in 0..n {
        s.add_event(workload::time_of(i), &workload::logwire_event(i)).unwrap();
    }
    s.finish_log().unwrap()
}

#[inline(never)]
fn write_logwire(path: &Path, n: u64) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    write_logwire_into(logwire_qlog::Streamer::new(file, workload::logwire_config()).unwrap(), n);
    n
}

/// The same, with the file writes on their own thread (`Streamer::background`); the clock stops once every
/// byte is written and the thread has ended.
#[inline(never)]
fn write_logwire_background(path: &Path, n: u64) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    write_logwire_into(logwire_qlog::Streamer::background(file, workload::logwire_config()).unwrap(), n);
    n
}

fn read_anchor(path: &Path) -> u64 {
    let file = std::fs::File::open(path).unwrap();
    read_anchor_from(Box::new(BufReader::with_capacity(64 * 1024, file)))
}

fn read_anchor_from(input: Box<dyn std::io::BufRead + Send + Sync>) -> u64 {
    let reader = qlog::reader::QlogSeqReader::new(input).unwrap();
    let mut n = 0;
    for e in reader {
        if let qlog::reader::Event::Qlog(e) = e {
            std::hint::black_box(&e);
            n += 1;
        }
    }
    n
}

/// From the file through `read_seq`'s reused buffer.
fn read_logwire(path: &Path, typed: bool) -> u64 {
    let mut n = 0;
    logwire_qlog::stream::read_seq(std::fs::File::open(path).unwrap(), |item, trace| {
        let e = item.unwrap();
        if typed {
            let (name, time) = (e.name.clone(), e.time_ms);
            std::hint::black_box((name, time, e.into_typed(trace)));
        } else {
            std::hint::black_box((&e.name, e.time_ms, e.data_raw));
        }
        n += 1;
    })
    .unwrap();
    n
}

/// Every event's normalised name and time, and with `typed` its owned typed data (what the crate's
/// reader yields); without, `data` only validated and kept as text.
fn read_logwire_from(bytes: &[u8], typed: bool) -> u64 {
    let mut r = logwire_qlog::Reader::new(bytes).unwrap();
    let mut n = 0;
    while let Some(item) = r.next() {
        let e = item.unwrap();
        if typed {
            let (name, time) = (e.name.clone(), e.time_ms);
            let trace = e.trace;
            std::hint::black_box((name, time, e.into_typed(&r.traces[trace])));
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
    let write_only = std::env::args().any(|a| a == "write-only");
    let dir = tempfile::tempdir().unwrap();
    let (a_path, l_path, v03) =
        (dir.path().join("anchor.sqlog"), dir.path().join("logwire.sqlog"), dir.path().join("v03.sqlog"));
    println!("qlog_vs_crate: {n} events, median of 5 interleaved runs (0.3 reads: 3)");

    // Interleaved runs, so both writers see the same load on a busy machine; median of 5.
    let (mut anchor_rates, mut ours_rates, mut background_rates) = (Vec::new(), Vec::new(), Vec::new());
    let b_path = dir.path().join("logwire-background.sqlog");
    // Every run writes a new file, as a QUIC stack does per connection: the previous run's file is removed
    // before the clock starts (truncating it on create would free its ~85 MB of page cache inside the timing).
    let remove =
        |path: &Path| std::fs::remove_file(path).or_else(|e| if e.kind() == NotFound { Ok(()) } else { Err(e) });
    for _ in 0..5 {
        remove(&a_path).unwrap();
        anchor_rates.push(rate(1, || write_anchor(&a_path, n)).0);
        remove(&l_path).unwrap();
        ours_rates.push(rate(1, || write_logwire(&l_path, n)).0);
        remove(&b_path).unwrap();
        background_rates.push(rate(1, || write_logwire_background(&b_path, n)).0);
    }
    assert_eq!(std::fs::read(&l_path).unwrap(), std::fs::read(&b_path).unwrap(), "both logwire writers, same bytes");
    let (anchor_w, ours_w, background_w) = (median(anchor_rates), median(ours_rates), median(background_rates));
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
    println!(
        "write   logwire Streamer::background(File):        {:>10.0} events/s ({:.0} MB/s)   ratio {:.2}x \
         (file writes on their own thread)",
        background_w,
        background_w * std::fs::metadata(&b_path).unwrap().len() as f64 / n as f64 / 1e6,
        background_w / anchor_w
    );
    if write_only {
        return;
    }

    // From the file: the crate through a 64 KiB BufReader, logwire through `stream::read_seq`; and from
    // the same bytes in memory, for both: the parsing alone. Interleaved rounds, median of 5 each.
    let bytes: &'static [u8] = Vec::leak(std::fs::read(&a_path).unwrap());
    let mut rounds: [Vec<f64>; 5] = Default::default();
    let mut counts = [0u64; 5];
    for _ in 0..5 {
        let runs: [&dyn Fn() -> u64; 5] = [
            &|| read_anchor(&a_path),
            &|| read_logwire(&a_path, true),
            &|| read_anchor_from(Box::new(bytes)),
            &|| read_logwire_from(bytes, true),
            &|| read_logwire_from(bytes, false),
        ];
        for (i, run) in runs.iter().enumerate() {
            let (r, n) = rate(1, run);
            rounds[i].push(r);
            counts[i] = n;
        }
    }
    let [anchor_r, ours_t, anchor_m, ours_m, ours_lazy] = rounds.map(median);
    let [na, nt, nam, nm, nlazy] = counts;
    assert_eq!((na, nt, nam, nm, nlazy), (n, n, n, n, n), "every reader reads every event");
    let line = |what: &str, r: f64, anchor: Option<f64>| {
        let ratio = anchor.map(|a| format!("   ratio {:.2}x", r / a)).unwrap_or_default();
        println!("{what:<51}{r:>10.0} events/s ({:.0} MB/s){ratio}", r * size / n as f64 / 1e6);
    };
    line("read    file: qlog 0.18.2 QlogSeqReader (typed):", anchor_r, None);
    line("read    file: logwire read_seq (names, times, typed):", ours_t, Some(anchor_r));
    line("read    memory: qlog 0.18.2 QlogSeqReader (typed):", anchor_m, None);
    line("read    memory: logwire Reader (names, times, typed):", ours_m, Some(anchor_m));
    line("read    memory: logwire Reader, lazy (data as text):", ours_lazy, Some(anchor_m));

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
