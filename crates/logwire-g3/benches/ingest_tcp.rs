//! End to end into the store, the way `logwire serve --syslog-tcp` runs: a client streams g3proxy's RFC 5424
//! records (RFC 6587 octet counting, as rsyslog forwards them) over loopback TCP; logwire's TCP listener
//! frames, decodes, types and maps them and hands each read's records to the store's writer thread; the
//! clock stops when the last record is committed. Goal (issue 5): ≥ 300 k records/s into the store.
//!
//! Input: the real capture (`shared/fixtures/g3/rfc5424`), as a long-running g3proxy would log it round after
//! round (fresh task ids and times). `cargo bench -p logwire-g3 --bench ingest_tcp [-- ROUNDS]` (default
//! 4000 rounds × 27 records). The queue is sized to hold the whole run so that nothing is dropped: the
//! number is the store's sustained rate, not a drop rate (drops are printed and must be 0).

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
}

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(4000);
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

    let dir = tempfile::tempdir().unwrap();
    let config = WriterConfig { queue_capacity: 1 << 24, ..WriterConfig::default() };
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
    let decoded_at = start.elapsed().as_secs_f64();
    guard.flush().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let cpu = |prefix| common::thread_cpu_secs(prefix).unwrap_or(f64::NAN);
    let (listener_cpu, writer_cpu, checkpoint_cpu) =
        (cpu("g3-listener"), cpu("logwire-store-w"), cpu("logwire-store-c"));
    let store = guard.stats();
    drop(runtime);
    // What the checkpoints had not copied yet is copied by close(): shown separately, since a long-running
    // store does that work as it goes.
    let closing = Instant::now();
    let closed = guard.close().unwrap();
    let close_secs = closing.elapsed().as_secs_f64();
    assert_eq!(stats.garbage.load(Ordering::Relaxed), 0);
    println!(
        "g3 syslog over TCP → store, {rounds} rounds × {} records: {n_logs} g3 logs decoded in {:.0} ms, \
         {} model records committed in {:.0} ms, {} dropped",
        logs.len(),
        decoded_at * 1e3,
        store.written,
        secs * 1e3,
        closed.dropped
    );
    println!(
        "into the store: {:.0} g3 logs/s, {:.0} model records/s (goal ≥ 300k records/s; anchor Vector ~40k events/s/vCPU: {:.1}×)",
        n_logs as f64 / secs,
        store.written as f64 / secs,
        n_logs as f64 / secs / 40_000.0
    );
    println!(
        "close() then checkpointed the rest in {:.0} ms; counting that too: {:.0} model records/s",
        close_secs * 1e3,
        store.written as f64 / (secs + close_secs)
    );
    let per_record = |cpu: f64| cpu * 1e6 / store.written as f64;
    println!(
        "CPU per model record: listener (frame + decode + map) {:.2} µs, store writer {:.2} µs, \
         checkpoint thread (checkpoints + freeing committed records) {:.2} µs",
        per_record(listener_cpu),
        per_record(writer_cpu),
        per_record(checkpoint_cpu)
    );
}
