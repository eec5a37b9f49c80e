//! Parse throughput per format on one core, decode + map (general and fused), and parse + store end to end, against the anchor: Vector's
//! sizing guide, ~40 k events/s per vCPU (notes/g3.md A.1). Goals: ≥ 10× for parse, ≥ 300 k records/s into
//! the store. Also measures `syslog_loose` on the same RFC 5424 records (header + SD only, no typing, no
//! unescaping): the measurement behind hand-writing the syslog decoder.
//!
//! Input: the real captures (`shared/fixtures/g3/`), repeated; CEE inputs are the captures re-encoded by
//! the emitter. `cargo bench -p logwire-g3 --bench parse [-- ROUNDS [store]]` (default 2000 rounds × 27
//! records; `store` runs only the parse + store lines).

use logwire_g3::emit::{encode_syslog, reencode};
use logwire_g3::forward::{event_to_log, ForwardDecoder, ForwardMessage};
use logwire_g3::record::to_records;
use logwire_g3::{syslog, G3Log, Origin, SyslogFormat};
use logwire_model::Record;
use logwire_store::{Store, WriterConfig};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

mod common;
use common::{as_round, thread_cpu_secs};

const ANCHOR_PER_S: f64 = 40_000.0;

// The allocator of the `logwire` binary, so the numbers are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/g3").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
}

fn lines(rel: &str) -> Vec<Vec<u8>> {
    fixture(rel).split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

fn with_format(logs: &[G3Log], format: SyslogFormat) -> Vec<Vec<u8>> {
    logs.iter()
        .map(|l| {
            let Origin::Syslog(h) = &l.origin else { unreachable!() };
            let mut h = h.clone();
            h.format = format;
            h.cee_flag = Some("@cee:".into());
            encode_syslog(l, &h)
        })
        .collect()
}

fn report(name: &str, n: usize, secs: f64) -> f64 {
    let rate = n as f64 / secs;
    println!(
        "{name:<44} {n:>9} records {:>8.1} ms {:>12.0} records/s  {:>6.1}× anchor",
        secs * 1e3,
        rate,
        rate / ANCHOR_PER_S
    );
    rate
}

/// Run `f` over `inputs` `rounds` times; best of 3 runs.
fn time_each(inputs: &[Vec<u8>], rounds: usize, mut f: impl FnMut(&[u8])) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for _ in 0..rounds {
            for i in inputs {
                f(i);
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2000);
    let rfc5424 = lines("rfc5424/syslog-udp.raw");
    if std::env::args().any(|a| a == "store") {
        // `-- ROUNDS store`: only the end-to-end store lines (for profiling the write path).
        store_end_to_end(rounds, &rfc5424);
        return;
    }
    let rfc3164 = lines("rfc3164/syslog-udp.raw");
    let logs5424: Vec<G3Log> = rfc5424.iter().map(|g| syslog::decode(g).unwrap()).collect();
    let logs3164: Vec<G3Log> = rfc3164.iter().map(|g| syslog::decode(g).unwrap()).collect();
    let cee3164 = with_format(&logs3164, SyslogFormat::Rfc3164Cee);
    let cee5424 = with_format(&logs5424, SyslogFormat::Rfc5424Cee);
    let fluentd_bytes = fixture("fluentd/fluentd-forward.bin");
    let fluentd: Vec<Vec<u8>> = {
        let mut buf = bytes::BytesMut::from(&fluentd_bytes[..]);
        let mut d = ForwardDecoder::default();
        let mut out = Vec::new();
        while let Some(ForwardMessage::Events { tag, events, .. }) = d.decode(&mut buf).unwrap() {
            out.push(reencode(&event_to_log(&tag, events[0].0, &events[0].1).unwrap()));
        }
        out
    };
    assert_eq!(fluentd.len(), 27);
    let n = rounds * 27;
    println!(
        "g3 parse throughput, one core, {rounds} rounds of the 27 captured records; anchor: Vector ~40k events/s/vCPU"
    );
    let mut parse_rates = Vec::new();
    for (name, inputs) in [
        ("decode RFC 5424 + SD (typed)", &rfc5424),
        ("decode RFC 3164 text (typed)", &rfc3164),
        ("decode RFC 3164 + CEE (typed)", &cee3164),
        ("decode RFC 5424 + CEE (typed)", &cee5424),
    ] {
        let secs = time_each(inputs, rounds, |g| {
            black_box(syslog::decode(black_box(g)).ok());
        });
        parse_rates.push(report(name, n, secs));
    }
    let secs = time_each(&fluentd, rounds, |m| {
        let mut buf = bytes::BytesMut::from(m);
        if let Ok(Some(ForwardMessage::Events { tag, events, .. })) = ForwardDecoder::default().decode(&mut buf) {
            for (t, r) in &events {
                black_box(event_to_log(&tag, *t, r).ok());
            }
        }
    });
    parse_rates.push(report("decode fluentd forward Message (typed)", n, secs));
    // What a syslog listener does per record: decode and map to model records, the general way and the
    // fused RFC 5424 path it takes (`syslog::decode_to_records`).
    let mut out = Vec::with_capacity(4);
    let general = time_each(&rfc5424, rounds, |g| {
        black_box(syslog::decode(black_box(g)).map(|log| to_records(&log, 0)).ok());
    });
    report("decode + map RFC 5424 (decode, to_records)", n, general);
    let fused = time_each(&rfc5424, rounds, |g| {
        out.clear();
        black_box(syslog::decode_to_records(black_box(g), 0, &mut out).ok());
        black_box(&out);
    });
    report("decode + map RFC 5424 (fused path)", n, fused);
    println!("fused path: {:.2}× decode + to_records", general / fused);
    let text: Vec<String> = rfc5424.iter().map(|g| String::from_utf8(g.clone()).unwrap()).collect();
    let start = Instant::now();
    for _ in 0..rounds {
        for t in &text {
            black_box(syslog_loose::parse_message(black_box(t), syslog_loose::Variant::RFC5424));
        }
    }
    let loose = report("syslog_loose RFC 5424 (split only, untyped)", n, start.elapsed().as_secs_f64());
    // The alternative to hand-writing: syslog_loose, then the same typing of every SD param (it still
    // would not undo escape_debug in MSG, nor read RFC 5424 + CEE).
    let start = Instant::now();
    for _ in 0..rounds {
        for t in &text {
            let m = syslog_loose::parse_message(black_box(t), syslog_loose::Variant::RFC5424);
            for sd in &m.structured_data {
                for (k, v) in sd.params() {
                    let typed =
                        logwire_g3::schema::type_value(k, logwire_g3::schema::WireValue::Str(v.to_string().into()));
                    let _ = black_box((k.to_string(), typed));
                }
            }
        }
    }
    let loose_typed = report("syslog_loose RFC 5424 + the same typing", n, start.elapsed().as_secs_f64());
    println!(
        "hand-written RFC 5424 decoder: {:.2}× syslog_loose split only, {:.2}× syslog_loose + typing",
        parse_rates[0] / loose,
        parse_rates[0] / loose_typed
    );
    let min = parse_rates.iter().cloned().fold(f64::MAX, f64::min);
    println!("slowest format: {:.1}× the anchor (goal ≥ 10×)", min / ANCHOR_PER_S);
    store_end_to_end(rounds, &rfc5424);
}

/// Parse + map + store on the RFC 5424 capture: on one thread (`Store::insert` in turn with decoding, what
/// `logwire g3 import` did until stop 15), then through the writer thread as `serve` and `g3 import` do.
fn store_end_to_end(rounds: usize, rfc5424: &[Vec<u8>]) {
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<G3Log> = rfc5424.iter().map(|g| syslog::decode(g).unwrap()).collect();
    let store_rounds = rounds.min(4000);
    let rounds_input: Vec<Vec<Vec<u8>>> = (0..store_rounds).map(|r| as_round(&logs, r)).collect();
    let n = store_rounds * 27;
    {
        let mut store = Store::open(dir.path().join("import.db")).unwrap();
        let start = Instant::now();
        let mut batch: Vec<Record> = Vec::with_capacity(10_000);
        let mut records = 0usize;
        for inputs in &rounds_input {
            for g in inputs {
                let log = syslog::decode(g).unwrap();
                batch.extend(to_records(&log, 0));
                if batch.len() >= 8192 {
                    records += batch.len();
                    store.insert(&batch).unwrap();
                    batch.clear();
                }
            }
        }
        records += batch.len();
        store.insert(&batch).unwrap();
        let secs = start.elapsed().as_secs_f64();
        report("parse + store, one thread, g3 logs", n, secs);
        println!("{:<44} {:>9} model records {:>12.0} records/s (goal ≥ 300k)", "", records, records as f64 / secs);
    }
    {
        // The store alone, on the same records already decoded: the ceiling of the two lines above.
        let records: Vec<Record> = rounds_input
            .iter()
            .flat_map(|inputs| inputs.iter().flat_map(|g| to_records(&syslog::decode(g).unwrap(), 0)))
            .collect();
        assert!(records.iter().all(|r| r.attrs_json.is_some()), "g3 records come with their attrs rendered");
        let mut store = Store::open(dir.path().join("store-only.db")).unwrap();
        let start = Instant::now();
        for chunk in records.chunks(8192) {
            store.insert(chunk).unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<44} {:>9} model records {:>8.1} ms {:>12.0} records/s (logwire-store's ceiling for these records)",
            "store only (Store::insert, pre-decoded)",
            records.len(),
            secs * 1e3,
            records.len() as f64 / secs
        );
    }
    {
        let config = WriterConfig { queue_capacity: 4 << 20, max_batch: 8192, ..WriterConfig::default() };
        let guard = Store::spawn_writer(dir.path().join("serve.db"), config).unwrap();
        let handle = guard.handle();
        let start = Instant::now();
        let mut records = 0usize;
        let mut batch = Vec::with_capacity(300);
        for inputs in &rounds_input {
            for g in inputs {
                syslog::decode_to_records(g, 0, &mut batch).unwrap();
            }
            records += batch.len();
            assert!(handle.try_send(std::mem::take(&mut batch)), "queue sized to hold the whole run");
        }
        handle.flush().unwrap();
        let secs = start.elapsed().as_secs_f64();
        let writer_cpu = thread_cpu_secs("logwire-store-w");
        let checkpoint_cpu = thread_cpu_secs("logwire-store-c");
        let stats = guard.close().unwrap();
        assert_eq!(stats.written as usize, records);
        report("parse + store (writer thread)", n, secs);
        println!("{:<44} {:>9} model records {:>12.0} records/s (goal ≥ 300k)", "", records, records as f64 / secs);
        // CPU time does not depend on what else runs on the machine: the writer's ceiling in records/s.
        if let (Some(w), Some(c)) = (writer_cpu, checkpoint_cpu) {
            println!(
                "{:<44} writer thread {:.2} µs CPU/record ({:.0} records/s per core), checkpoint thread {:.2} µs",
                "",
                w * 1e6 / records as f64,
                records as f64 / w,
                c * 1e6 / records as f64
            );
        }
    }
}
