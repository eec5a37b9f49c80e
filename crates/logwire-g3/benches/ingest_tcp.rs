//! End to end into the store, the way `logwire serve --syslog-tcp` runs: a client streams g3proxy's RFC 5424
//! records (RFC 6587 octet counting, as rsyslog forwards them) over loopback TCP; logwire's TCP listener
//! frames, decodes, types and maps them and hands each read's records to the store's writer thread; the
//! clock stops when the last record is committed. Goal (issue 5): ≥ 300 k records/s into the store.
//!
//! Input: the real capture (`shared/fixtures/g3/rfc5424`), as a long-running g3proxy would log it round after
//! round (fresh task ids and times, see `common::as_round`). `cargo bench -p logwire-g3 --bench ingest_tcp
//! [-- ROUNDS [RUNS]]` (default 20,000 rounds × 27 records = 760 k model records, 3 runs on fresh stores: the
//! median and the best are printed, since this machine's speed drifts from minute to minute). A run of
//! 4,000 rounds lasts 0.4 s, and its start (an empty file, the first batch, the first checkpoint) then
//! weighs on the result: such runs read 5–10 % lower in the same stretch.
//!
//! The writer is set up as `logwire serve` sets it up: the default queue (65,536 records), and the listener
//! stops reading while the queue is half full, so TCP holds the client back. Drops are printed and must be
//! 0; "reads held back" counts the listener's pauses. Until stop 15 the queue was sized to hold the whole
//! run instead: the listener then ran ahead of the writer, the backlog grew to hundreds of MB, and the
//! listener's CPU per record went up by a fifth (fresh pages from the kernel).
//!
//! A store does not slow much as it grows: `ingest_tcp 40000 1` (1.52 M records into one store) ran at
//! 328–398 k records/s in the stretch where the old bench read 205–238 k for it (see `as_round` on the
//! clock that made big stores look slow).

use logwire_g3::framing::encode_octet_counted;
use logwire_g3::runtime::{serve_tcp, Ingest, Sink};
use logwire_g3::{syslog, G3Log};
use logwire_model::Record;
use logwire_store::{Store, StoreHandle, WriterConfig};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct StoreSink(StoreHandle);

impl Sink for StoreSink {
    fn records(&self, records: Vec<Record>) {
        self.0.try_send(records);
    }
    fn records_with_commit(&self, records: Vec<Record>, done: Box<dyn FnOnce(bool) + Send>) {
        self.0.try_send_with_commit(records, move |o| done(o == logwire_store::CommitOutcome::Committed));
    }
    fn has_room(&self) -> bool {
        self.0.has_room_for_bulk()
    }
}

/// What one run measured.
struct Run {
    secs: f64,
    written: u64,
    dropped: u64,
    close_secs: f64,
    /// Reads the listener put off while the store's queue was half full.
    held_back: u64,
    /// CPU seconds of the listener, the writer and the checkpoint thread.
    cpu: [f64; 3],
}

impl Run {
    fn records_per_s(&self) -> f64 {
        self.written as f64 / self.secs
    }
}

/// One run on a fresh store: the client streams `stream` (`n_logs` g3 logs) and the clock stops when the
/// last record is committed.
fn run_once(stream: Vec<u8>, n_logs: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    // The writer as `logwire serve` runs it: the default queue, and the listener stops reading while it is
    // half full (`has_room_for_bulk`), so the client is held back by TCP rather than losing records.
    let config = WriterConfig::default();
    let guard = Store::spawn_writer(dir.path().join("ingest.db"), config).unwrap();
    let ingest = Ingest::new(Arc::new(StoreSink(guard.handle())));
    let stats = ingest.stats.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("g3-listener")
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(serve_tcp(listener, ingest));

    let start = Instant::now();
    let client = std::thread::spawn(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.write_all(&stream).unwrap();
    });
    client.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while stats.logs.load(Ordering::Relaxed) < n_logs {
        assert!(Instant::now() < deadline, "the listener stopped decoding");
        std::thread::sleep(Duration::from_millis(1));
    }
    guard.flush().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let cpu = |prefix| common::thread_cpu_secs(prefix).unwrap_or(f64::NAN);
    let cpu = [cpu("g3-listener"), cpu("logwire-store-w"), cpu("logwire-store-c")];
    let written = guard.stats().written;
    drop(runtime);
    // What the checkpoints had not copied yet is copied by close(): shown separately, since a long-running
    // store does that work as it goes.
    let closing = Instant::now();
    let closed = guard.close().unwrap();
    let close_secs = closing.elapsed().as_secs_f64();
    assert_eq!(stats.garbage.load(Ordering::Relaxed), 0);
    let held_back = stats.held_back.load(Ordering::Relaxed);
    Run { secs, written, dropped: closed.dropped, close_secs, held_back, cpu }
}

fn main() {
    let mut numbers = std::env::args().skip(1).filter_map(|a| a.parse::<usize>().ok());
    let rounds = numbers.next().unwrap_or(20_000);
    let runs = numbers.next().unwrap_or(3).max(1);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/g3/rfc5424/syslog-udp.raw");
    let capture = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let logs: Vec<G3Log> =
        capture.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| syslog::decode(l).unwrap()).collect();
    let mut stream = Vec::new();
    for round in 0..rounds {
        for line in common::as_round(&logs, round) {
            encode_octet_counted(&line, &mut stream);
        }
    }
    let n_logs = (rounds * logs.len()) as u64;
    println!(
        "g3 syslog over TCP → store: {runs} runs, each {rounds} rounds × {} records = {n_logs} g3 logs on a fresh store",
        logs.len()
    );
    let mut results = Vec::new();
    for i in 0..runs {
        let r = run_once(stream.clone(), n_logs);
        let per_record = |cpu: f64| cpu * 1e6 / r.written as f64;
        println!(
            "  run {}: {} model records committed in {:.0} ms = {:.0} records/s ({:.0} g3 logs/s), {} dropped, \
             {} reads held back; CPU per record: listener {:.2} µs, writer {:.2} µs, checkpoint thread {:.2} µs; close() {:.0} ms",
            i + 1,
            r.written,
            r.secs * 1e3,
            r.records_per_s(),
            n_logs as f64 / r.secs,
            r.dropped,
            r.held_back,
            per_record(r.cpu[0]),
            per_record(r.cpu[1]),
            per_record(r.cpu[2]),
            r.close_secs * 1e3
        );
        results.push(r);
    }
    results.sort_by(|a, b| a.records_per_s().total_cmp(&b.records_per_s()));
    let (median, best) = (&results[results.len() / 2], &results[results.len() - 1]);
    println!(
        "into the store: median {:.0} model records/s, best {:.0} (goal ≥ 300k records/s); median {:.0} g3 logs/s \
         = {:.1}× the anchor (Vector ~40k events/s/vCPU)",
        median.records_per_s(),
        best.records_per_s(),
        n_logs as f64 / median.secs,
        n_logs as f64 / median.secs / 40_000.0
    );
    let per_record = |cpu: f64| cpu * 1e6 / median.written as f64;
    println!(
        "CPU per model record (median run): listener (frame + decode + map) {:.2} µs, store writer {:.2} µs, \
         checkpoint thread (checkpoints + freeing committed records) {:.2} µs; close() then checkpointed the rest \
         in {:.0} ms",
        per_record(median.cpu[0]),
        per_record(median.cpu[1]),
        per_record(median.cpu[2]),
        median.close_secs * 1e3
    );
}
