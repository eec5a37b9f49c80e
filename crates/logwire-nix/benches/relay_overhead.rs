//! Relay overhead on a real build: `nix-build many.nix --arg lines N` against a `nix-daemon` socket,
//! directly and through logwire's relay (observer + records into a draining sink), alternating, in the
//! same run. Prints the medians and the ratio. Needs Debian's nix-bin (scripts/peers/nix.sh).
//!
//! With `NIX_BENCH_STORE=1` the records go into a real SQLite store (`logwire serve`'s path) instead of a
//! counting sink. At the end it prints the CPU time of this process's threads (from
//! `/proc/self/task/*/stat`): the relay's tokio workers (forwarding + decoding) and the store writer.
//!
//!     cargo bench -p logwire-nix --bench relay_overhead            # 1,000,000 lines, 6 pairs
//!     NIX_BENCH_LINES=200000 NIX_BENCH_RUNS=5 cargo bench -p logwire-nix --bench relay_overhead
//!     NIX_BENCH_STORE=1 cargo bench -p logwire-nix --bench relay_overhead
//!     NIX_BENCH_AA=1 cargo bench -p logwire-nix --bench relay_overhead   # both sides direct: noise floor
//!     NIX_BENCH_SCHED=normal cargo bench -p logwire-nix --bench relay_overhead   # relay thread never SCHED_BATCH
//!     NIX_BENCH_SCHED=batch cargo bench -p logwire-nix --bench relay_overhead    # relay thread always SCHED_BATCH
//!     NIX_BENCH_WORKERS=2 cargo bench -p logwire-nix --bench relay_overhead      # two relay worker threads, not one
//!
//! `NIX_BENCH_OPS=N` times an op-bound client instead: `nix-instantiate` of N fresh derivations, one
//! daemon op each, so every op's round trip crosses the relay twice. `NIX_BENCH_LOAD=1` keeps every CPU
//! busy meanwhile (one spinning `sh` per CPU, killed at the end), as builds running beside an evaluation
//! would: that is where a relay thread under `SCHED_BATCH` would make each crossing wait its turn.
//!
//!     NIX_BENCH_OPS=300 NIX_BENCH_LOAD=1 cargo bench -p logwire-nix --bench relay_overhead
//!
//! Pairs alternate their order (direct first, then relayed first), so drift and run-to-run carry-over
//! cancel instead of landing on one side.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logwire_model::Record;
use logwire_nix::runtime::{relay_runtime_builder, serve, RecordSink, RelayStats, Upstream};
use logwire_store::{Store, WriterConfig};

// The allocator of the `logwire` binary, so the relay's allocations cost what they cost in `logwire serve`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NIX_CONFIG: &str = "substituters =\nsandbox = false";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn many_nix() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/nix/many.nix")
}

/// Runs a Nix client against `socket` to completion and times it.
fn timed_client(program: &str, args: &[OsString], socket: &Path) -> Duration {
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .env("NIX_CONFIG", NIX_CONFIG)
        .env("NIX_REMOTE", format!("unix://{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}: run scripts/peers/nix.sh (apt-get install -y nix-bin)"));
    assert!(status.success(), "{program} failed");
    start.elapsed()
}

fn nix_build(socket: &Path, name: &str, lines: usize) -> Duration {
    let args = [many_nix().into(), "--argstr".into(), "n".into(), name.into(), "--arg".into(), "lines".into()];
    let rest = [lines.to_string().into(), "--no-out-link".into(), "-Q".into()];
    timed_client("nix-build", &[args.as_slice(), rest.as_slice()].concat(), socket)
}

/// `nix-instantiate` of `count` derivations named after `name` (so they are new to the store).
fn nix_instantiate(socket: &Path, expression: &Path, name: &str, count: usize) -> Duration {
    let args = [expression.into(), "--argstr".into(), "n".into(), name.into()];
    let rest = ["--arg".into(), "count".into(), count.to_string().into()];
    timed_client("nix-instantiate", &[args.as_slice(), rest.as_slice()].concat(), socket)
}

/// `count` trivial derivations: instantiating them is one AddTextToStore op each.
const OPS_NIX: &str = r#"{ n, count }:
builtins.genList (i: derivation {
  name = "op-${n}-${toString i}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo ${toString i} > $out" ];
}) count
"#;

/// One spinning process per CPU, killed when dropped.
struct CpuLoad(Vec<std::process::Child>);

impl CpuLoad {
    fn start() -> CpuLoad {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        CpuLoad(
            (0..cpus)
                .map(|_| Command::new("sh").args(["-c", "while :; do :; done"]).spawn().expect("start a CPU load (sh)"))
                .collect(),
        )
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The comm and the CPU seconds (user, system) of a `/proc/.../stat` line: `pid (comm) state ...`, where comm
/// may hold spaces (so the split is at the last ')'); utime and stime are fields 14 and 15 (proc(5)).
fn parse_stat(stat: &str) -> Option<(&str, f64, f64)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let seconds = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).map(|t| t / 100.0); // USER_HZ
    Some((&stat[open + 1..close], seconds(11)?, seconds(12)?))
}

/// CPU seconds (user, system) of each thread of this process, summed by thread name.
fn thread_cpu() -> Vec<(String, f64, f64)> {
    let mut by_name: Vec<(String, f64, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return by_name };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let Some((name, user, system)) = parse_stat(&stat) else { continue };
        match by_name.iter_mut().find(|(n, _, _)| n == name) {
            Some(entry) => {
                entry.1 += user;
                entry.2 += system;
            }
            None => by_name.push((name.to_string(), user, system)),
        }
    }
    by_name
}

/// CPU seconds (user, system) of this whole process so far, threads that have exited included.
fn process_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    parse_stat(&stat).map_or((0.0, 0.0), |(_, user, system)| (user, system))
}

/// The middle value, or the mean of the two middle values of an even count.
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 0 {
        (v[n / 2 - 1] + v[n / 2]) / 2
    } else {
        v[n / 2]
    }
}

fn main() {
    let lines = env_usize("NIX_BENCH_LINES", 1_000_000);
    let runs = env_usize("NIX_BENCH_RUNS", 6);
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon_socket = dir.path().join("daemon.sock");
    let relay_socket = dir.path().join("relay.sock");
    let mut daemon = Command::new("nix-daemon")
        .env("NIX_DAEMON_SOCKET_PATH", &daemon_socket)
        .env("NIX_CONFIG", NIX_CONFIG)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nix-daemon is missing: run scripts/peers/nix.sh (apt-get install -y nix-bin)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon_socket.exists() {
        assert!(Instant::now() < deadline, "nix-daemon did not create its socket");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The relay runs on its own runtime, as in `logwire serve`; the sink counts records.
    let records = Arc::new(AtomicU64::new(0));
    let counted = records.clone();
    let store = std::env::var("NIX_BENCH_STORE").is_ok_and(|v| v == "1").then(|| {
        let config = WriterConfig { queue_capacity: 1 << 20, ..WriterConfig::default() };
        Store::spawn_writer(dir.path().join("bench.db"), config).expect("open the store")
    });
    let handle = store.as_ref().map(|guard| guard.handle());
    let sink: RecordSink = Arc::new(move |r: Vec<Record>| {
        counted.fetch_add(r.len() as u64, Ordering::Relaxed);
        if let Some(handle) = &handle {
            handle.try_send(r);
        }
    });
    let mut builder = relay_runtime_builder();
    // Either replaces the builder's hook, so the relay's thread never switches: it keeps the normal
    // policy, or SCHED_BATCH throughout (the store's threads are batch either way).
    match std::env::var("NIX_BENCH_SCHED").as_deref() {
        Ok("normal") => {
            builder.on_thread_start(|| {});
        }
        Ok("batch") => {
            builder.on_thread_start(|| {
                let _ = logwire_model::sched::prefer_throughput();
            });
        }
        _ => {}
    }
    if let Ok(workers) = std::env::var("NIX_BENCH_WORKERS") {
        builder.worker_threads(workers.parse().expect("NIX_BENCH_WORKERS: a thread count"));
    }
    let runtime = builder.enable_all().build().expect("runtime");
    let stats = Arc::new(RelayStats::default());
    let listener = runtime.block_on(async { tokio::net::UnixListener::bind(&relay_socket) }).expect("bind relay");
    runtime.spawn(serve(listener, Upstream::Socket(daemon_socket.clone()), sink, stats.clone()));

    let tag = format!("{}-{}", std::process::id(), Instant::now().elapsed().as_nanos());
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let (mut direct, mut relayed) = (Vec::new(), Vec::new());
    // The relay is idle during the direct runs, so the process's CPU over the relayed runs is the relay's.
    let (mut relay_user, mut relay_system) = (0.0, 0.0);
    // NIX_BENCH_AA=1 sends the "relayed" runs straight to the daemon too: the ratio it prints is the bench's
    // own noise floor (including any bias from a run's position in its pair).
    let calibrate = std::env::var("NIX_BENCH_AA").is_ok_and(|v| v == "1");
    let relayed_socket = if calibrate { &daemon_socket } else { &relay_socket };
    let ops = env_usize("NIX_BENCH_OPS", 0);
    let ops_nix = dir.path().join("ops.nix");
    std::fs::write(&ops_nix, OPS_NIX).expect("write ops.nix");
    let run = |socket: &Path, name: &str| {
        if ops > 0 {
            nix_instantiate(socket, &ops_nix, name, ops)
        } else {
            nix_build(socket, name, lines)
        }
    };
    let load = std::env::var("NIX_BENCH_LOAD").is_ok_and(|v| v == "1").then(CpuLoad::start);
    let mut pair_ratios = Vec::new();
    for i in 0..runs {
        // A fresh derivation name each time, so every run really builds.
        let run_direct = || run(&daemon_socket, &format!("d{i}-{tag}-{stamp}"));
        let mut run_relayed = || {
            let (user, system) = process_cpu();
            let took = run(relayed_socket, &format!("r{i}-{tag}-{stamp}"));
            let (user_after, system_after) = process_cpu();
            (relay_user, relay_system) = (relay_user + user_after - user, relay_system + system_after - system);
            took
        };
        // Counterbalanced (ABBA): the machine drifts, and whatever a run leaves behind (the daemon's log
        // and database writes being flushed) lands on the next one, so a fixed order would bias the ratio.
        let (d, r) = if i % 2 == 0 {
            let d = run_direct();
            (d, run_relayed())
        } else {
            let r = run_relayed();
            (run_direct(), r)
        };
        pair_ratios.push(r.as_secs_f64() / d.as_secs_f64());
        direct.push(d);
        relayed.push(r);
    }
    drop(load);
    let relay_cpu = relay_user + relay_system;
    // The relay finishes a connection (its last records) just after the client exits.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.connections_closed.load(Ordering::Relaxed) < stats.connections.load(Ordering::Relaxed)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let (d, r) = (median(direct.clone()), median(relayed.clone()));
    let load_note = if std::env::var("NIX_BENCH_LOAD").is_ok_and(|v| v == "1") { ", every CPU kept busy" } else { "" };
    if ops > 0 {
        println!("nix-instantiate of {ops} derivations (one op each){load_note}, {runs} runs each (median):");
    } else {
        println!("nix-build many.nix, {lines} lines{load_note}, {runs} runs each (median):");
    }
    println!("  direct to nix-daemon:   {:>8.2} s   {direct:?}", d.as_secs_f64());
    println!("  through logwire relay:  {:>8.2} s   {relayed:?}", r.as_secs_f64());
    println!(
        "  relay decoded {} records, {} bytes to clients in {} reads (both ways), {} lost sync",
        records.load(Ordering::Relaxed),
        stats.bytes_daemon_to_client.load(Ordering::Relaxed),
        stats.reads.load(Ordering::Relaxed),
        stats.out_of_sync.load(Ordering::Relaxed)
    );
    // The writer's CPU is read before closing the store, which ends its thread.
    if let Some(store) = &store {
        store.handle().flush().expect("flush the store");
    }
    let cpu = thread_cpu();
    if let Some(store) = store {
        let stats = store.close().expect("close the store");
        println!("  store: {} records written, {} dropped", stats.written, stats.dropped);
    }
    println!(
        "  relay CPU (whole process): {:.2} s per relayed run ({:.2} user + {:.2} system), {:.2} µs per {}",
        relay_cpu / runs as f64,
        relay_user / runs as f64,
        relay_system / runs as f64,
        relay_cpu / runs as f64 / if ops > 0 { ops } else { lines } as f64 * 1e6,
        if ops > 0 { "derivation" } else { "line" }
    );
    println!("  CPU of this process's live threads over the {runs} relayed runs (user + system s):");
    for (name, user, system) in cpu {
        if user + system > 0.0 {
            println!("    {name:<22} {user:>7.2} + {system:>6.2}  ({:.2} s per run)", (user + system) / runs as f64);
        }
    }
    pair_ratios.sort_by(f64::total_cmp);
    let pairs: Vec<String> = pair_ratios.iter().map(|r| format!("{:+.1}", (r - 1.0) * 100.0)).collect();
    println!("  per pair (%, sorted): {}", pairs.join(" "));
    if calibrate {
        println!("  NIX_BENCH_AA=1: both sides went straight to the daemon (noise floor)");
    }
    let n = pair_ratios.len();
    let pair_median = if n % 2 == 0 { (pair_ratios[n / 2 - 1] + pair_ratios[n / 2]) / 2.0 } else { pair_ratios[n / 2] };
    println!(
        "ratio (relayed / direct): {:.3} ({:+.1} %) of the medians; median of the pairs {:+.1} %",
        r.as_secs_f64() / d.as_secs_f64(),
        (r.as_secs_f64() / d.as_secs_f64() - 1.0) * 100.0,
        (pair_median - 1.0) * 100.0
    );
}
