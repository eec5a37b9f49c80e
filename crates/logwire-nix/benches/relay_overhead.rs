//! Relay overhead on a real build: `nix-build many.nix --arg lines N` against a `nix-daemon` socket,
//! directly and through logwire's relay (observer + records into a draining sink), alternating, in the
//! same run. Prints the medians and the ratio. Needs Debian's nix-bin (scripts/peers/nix.sh).
//!
//!     cargo bench -p logwire-nix --bench relay_overhead            # 1,000,000 lines, 3 runs each
//!     NIX_BENCH_LINES=200000 NIX_BENCH_RUNS=5 cargo bench -p logwire-nix --bench relay_overhead

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logwire_model::Record;
use logwire_nix::runtime::{serve, RecordSink, RelayStats, Upstream};

const NIX_CONFIG: &str = "substituters =\nsandbox = false";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn many_nix() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/nix/many.nix")
}

fn nix_build(socket: &Path, name: &str, lines: usize) -> Duration {
    let start = Instant::now();
    let status = Command::new("nix-build")
        .arg(many_nix())
        .args(["--argstr", "n", name, "--arg", "lines", &lines.to_string(), "--no-out-link", "-Q"])
        .env("NIX_CONFIG", NIX_CONFIG)
        .env("NIX_REMOTE", format!("unix://{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("nix-build is missing: run scripts/peers/nix.sh (apt-get install -y nix-bin)");
    assert!(status.success(), "nix-build failed");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let lines = env_usize("NIX_BENCH_LINES", 1_000_000);
    let runs = env_usize("NIX_BENCH_RUNS", 3);
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

    // The relay runs on its own 2-thread runtime, as in `logwire serve`; the sink counts records.
    let records = Arc::new(AtomicU64::new(0));
    let counted = records.clone();
    let sink: RecordSink = Arc::new(move |r: Vec<Record>| {
        counted.fetch_add(r.len() as u64, Ordering::Relaxed);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let stats = Arc::new(RelayStats::default());
    let listener = runtime.block_on(async { tokio::net::UnixListener::bind(&relay_socket) }).expect("bind relay");
    runtime.spawn(serve(listener, Upstream::Socket(daemon_socket.clone()), sink, stats.clone()));

    let tag = format!("{}-{}", std::process::id(), Instant::now().elapsed().as_nanos());
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let (mut direct, mut relayed) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // A fresh derivation name each time, so every run really builds.
        direct.push(nix_build(&daemon_socket, &format!("d{i}-{tag}-{stamp}"), lines));
        relayed.push(nix_build(&relay_socket, &format!("r{i}-{tag}-{stamp}"), lines));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let (d, r) = (median(direct.clone()), median(relayed.clone()));
    println!("nix-build many.nix, {lines} lines, {runs} runs each (median):");
    println!("  direct to nix-daemon:   {:>8.2} s   {direct:?}", d.as_secs_f64());
    println!("  through logwire relay:  {:>8.2} s   {relayed:?}", r.as_secs_f64());
    println!(
        "  relay decoded {} records, {} bytes to clients, {} lost sync",
        records.load(Ordering::Relaxed),
        stats.bytes_daemon_to_client.load(Ordering::Relaxed),
        stats.out_of_sync.load(Ordering::Relaxed)
    );
    println!(
        "ratio (relayed / direct): {:.3} ({:+.1} %)",
        r.as_secs_f64() / d.as_secs_f64(),
        (r.as_secs_f64() / d.as_secs_f64() - 1.0) * 100.0
    );
}
