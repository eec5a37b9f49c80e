//! The relay between a client and a replaying fake daemon over unix sockets in a temp dir: bytes pass
//! unchanged both ways (even when the observer loses sync) and the records describe the conversation.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logwire_model::{Kind, Level, Record};
use logwire_nix::runtime::{serve, RecordSink, RelayStats, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/nix").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs one conversation through the relay: the fake daemon reads all of `c2s`, then sends `s2c`.
/// Returns what the daemon received, what the client received, the records, and the stats.
async fn converse(c2s: Vec<u8>, s2c: Vec<u8>) -> (Vec<u8>, Vec<u8>, Vec<Record>, Arc<RelayStats>) {
    let (daemon_got, received, records, stats, _) = converse_with(c2s, s2c, None).await;
    (daemon_got, received, records, stats)
}

/// [`converse`], optionally with a sink that blocks until `gate` lets it go; also returns how long the
/// client took to receive everything.
async fn converse_with(
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    gate: Option<Arc<Mutex<std::sync::mpsc::Receiver<()>>>>,
) -> (Vec<u8>, Vec<u8>, Vec<Record>, Arc<RelayStats>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let daemon_path = dir.path().join("daemon.sock");
    let relay_path = dir.path().join("relay.sock");
    let daemon = UnixListener::bind(&daemon_path).unwrap();
    let expected_len = c2s.len();
    let fake_daemon = tokio::spawn(async move {
        let (mut conn, _) = daemon.accept().await.unwrap();
        let mut got = vec![0u8; expected_len];
        conn.read_exact(&mut got).await.unwrap();
        conn.write_all(&s2c).await.unwrap();
        conn.shutdown().await.unwrap();
        got
    });
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink_records = records.clone();
    let sink: RecordSink = Arc::new(move |r: Vec<Record>| {
        if let Some(gate) = &gate {
            // A stuck store: the first batch waits until the test has seen every byte arrive. The
            // sink contract is "never block"; a sink that blocks anyway must at least tell tokio
            // (block_in_place), or tasks parked in this worker's LIFO slot would wait with it.
            tokio::task::block_in_place(|| {
                let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(10));
            });
        }
        sink_records.lock().unwrap().extend(r)
    });
    let stats = Arc::new(RelayStats::default());
    let listener = UnixListener::bind(&relay_path).unwrap();
    let relay = tokio::spawn(serve(listener, Upstream::Socket(daemon_path), sink, stats.clone()));

    let started = std::time::Instant::now();
    let mut client = UnixStream::connect(&relay_path).await.unwrap();
    client.write_all(&c2s).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut received)).await.unwrap().unwrap();
    let read_elapsed = started.elapsed();
    let daemon_got = tokio::time::timeout(Duration::from_secs(10), fake_daemon).await.unwrap().unwrap();
    drop(client);
    // The relay finishes the connection (and its records) once both directions are closed.
    for _ in 0..500 {
        if stats.connections_closed.load(std::sync::atomic::Ordering::Relaxed) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stats.connections_closed.load(std::sync::atomic::Ordering::Relaxed), 1, "connection not closed");
    relay.abort();
    let records = records.lock().unwrap().clone();
    (daemon_got, received, records, stats, read_elapsed)
}

#[tokio::test]
async fn relays_a_real_conversation_unchanged_and_records_it() {
    let c2s = fixture("cap1-nix-build-ok/conn0.c2s.bin");
    let s2c = fixture("cap1-nix-build-ok/conn0.s2c.bin");
    let (daemon_got, client_got, records, stats) = converse(c2s.clone(), s2c.clone()).await;
    assert_eq!(daemon_got, c2s);
    assert_eq!(client_got, s2c);
    assert_eq!(stats.bytes_client_to_daemon.load(std::sync::atomic::Ordering::Relaxed), c2s.len() as u64);

    assert!(!records.iter().any(|r| r.name == "nix:out_of_sync"));
    let handshake = records.iter().find(|r| r.name == "nix:handshake").expect("handshake event");
    assert_eq!(handshake.attrs["nix_version"], "2.8.0");
    assert_eq!(handshake.attrs["protocol"], "1.34");

    let op_starts: Vec<&str> = records
        .iter()
        .filter(|r| r.kind == Kind::SpanStart && r.name.starts_with("nix:op:"))
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        op_starts,
        [
            "nix:op:SetOptions",
            "nix:op:AddToStore",
            "nix:op:QueryMissing",
            "nix:op:QueryPathInfo",
            "nix:op:BuildPaths",
            "nix:op:QueryDerivationOutputMap",
            "nix:op:AddTempRoot",
            "nix:op:AddIndirectRoot"
        ]
    );
    let op_ends = records.iter().filter(|r| r.kind == Kind::SpanEnd && r.name.starts_with("nix:op:")).count();
    assert_eq!(op_ends, 8);

    let build = records.iter().find(|r| r.kind == Kind::SpanStart && r.name == "nix:Build").expect("Build span");
    assert!(build.attrs["drv_path"].as_str().unwrap().ends_with("-hello-log-daemon1.drv"));
    assert_eq!(build.attrs["round"], 1);
    let build_op = records
        .iter()
        .find(|r| r.name == "nix:op:BuildPaths" && r.kind == Kind::SpanStart)
        .and_then(|r| r.span_id.clone());
    assert_eq!(build.parent_id, build_op);
    let lines: Vec<&str> = records
        .iter()
        .filter(|r| r.name == "nix:result:BuildLogLine" && r.span_id == build.span_id)
        .filter_map(|r| r.body.as_deref())
        .flat_map(|body| body.split('\n'))
        .collect();
    assert_eq!(lines.first(), Some(&"line one from builder"));
    assert_eq!(lines.last(), Some(&"no trailing newline"));
    let stops = records.iter().filter(|r| r.kind == Kind::SpanEnd && r.span_id == build.span_id).count();
    assert_eq!(stops, 1);
}

#[tokio::test]
async fn an_old_client_error_is_an_error_event() {
    let c2s = fixture("cap5-old-v19f/conn0.c2s.bin");
    let s2c = fixture("cap5-old-v19f/conn0.s2c.bin");
    let (daemon_got, client_got, records, _) = converse(c2s.clone(), s2c.clone()).await;
    assert_eq!((daemon_got, client_got), (c2s, s2c));
    let log = records.iter().find(|r| r.kind == Kind::Log).expect("NEXT as a log");
    assert!(log.body.as_deref().unwrap().starts_with("building '/nix/store/"), "{log:?}");
    let error = records.iter().find(|r| r.name == "nix:error").expect("error event");
    assert_eq!((error.level, &error.attrs["exit_status"]), (Some(Level::Error), &serde_json::json!(100)));
    assert!(error.body.as_deref().unwrap().contains("failed with exit code 3"));
    // The failed op's span ends with ok = false.
    let end = records.iter().find(|r| r.kind == Kind::SpanEnd && r.name == "nix:op:BuildPaths").expect("op end");
    assert_eq!(end.attrs["ok"], false);
}

#[tokio::test]
async fn bytes_it_cannot_frame_are_still_relayed_untouched() {
    let mut c2s = fixture("cap1-nix-build-ok/conn0.c2s.bin");
    c2s[32] = 0xee; // SetOptions becomes an unknown op
    let s2c = fixture("cap1-nix-build-ok/conn0.s2c.bin");
    let (daemon_got, client_got, records, stats) = converse(c2s.clone(), s2c.clone()).await;
    assert_eq!((daemon_got, client_got), (c2s, s2c));
    let lost = records.iter().find(|r| r.name == "nix:out_of_sync").expect("out-of-sync event");
    assert_eq!((lost.level, &lost.attrs["offset"]), (Some(Level::Warn), &serde_json::json!(32)));
    assert_eq!(stats.out_of_sync.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_sink_never_delays_the_bytes() {
    let c2s = fixture("cap1-nix-build-ok/conn0.c2s.bin");
    let s2c = fixture("cap1-nix-build-ok/conn0.s2c.bin");
    let (release, gate) = std::sync::mpsc::channel();
    let gate = Arc::new(Mutex::new(gate));
    // The client reads the daemon's whole answer while the sink is still blocked on its first batch;
    // converse_with only returns after that, then we release the sink.
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        for _ in 0..1000 {
            let _ = release.send(());
        }
    });
    let (daemon_got, client_got, records, _, read_elapsed) = converse_with(c2s.clone(), s2c.clone(), Some(gate)).await;
    assert_eq!((daemon_got, client_got), (c2s, s2c));
    assert!(read_elapsed < Duration::from_secs(2), "the client waited for the sink: {read_elapsed:?}");
    releaser.join().unwrap();
    // The records still arrive once the sink moves again.
    assert!(records.iter().any(|r| r.name == "nix:Build"));
}

/// Field 41 of a /proc/PID/stat line: the scheduling policy (0 normal, 3 batch).
fn sched_policy(stat: &str) -> u32 {
    let after_name = &stat[stat.rfind(')').expect("comm ends with )") + 2..];
    after_name.split(' ').nth(41 - 3).expect("policy field").parse().expect("numeric policy")
}

/// The relay runtime's one thread: is it under SCHED_BATCH now?
fn relay_thread_is_batch(runtime: &tokio::runtime::Runtime) -> bool {
    runtime.block_on(async { tokio::spawn(async { logwire_model::sched::is_throughput_thread() }).await.unwrap() })
}

#[test]
fn the_relay_batches_while_a_log_streams_and_its_stdio_daemon_runs_normally() {
    use std::io::{Read, Write};
    let runtime = logwire_nix::runtime::relay_runtime_builder().enable_all().build().unwrap();
    assert!(!relay_thread_is_batch(&runtime), "the relay thread starts under the normal policy");

    // A daemon that streams a "log" in separate small writes, then answers one request.
    let dir = tempfile::tempdir().unwrap();
    let (daemon_path, relay_path, stdio_relay_path) =
        (dir.path().join("daemon.sock"), dir.path().join("relay.sock"), dir.path().join("stdio.sock"));
    let daemon = std::os::unix::net::UnixListener::bind(&daemon_path).unwrap();
    // Four times the threshold: a relay delayed now and then may join a few writes into one read.
    let writes = 4 * logwire_nix::runtime::STREAMING_READS as usize;
    let fake_daemon = std::thread::spawn(move || {
        let (mut conn, _) = daemon.accept().unwrap();
        for _ in 0..writes {
            conn.write_all(b"l").unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut request = [0u8; 1];
        conn.read_exact(&mut request).unwrap();
        conn.write_all(b"reply").unwrap();
    });
    // A "daemon" on stdio that answers with its own /proc stat line.
    let stdio = Upstream::Stdio { program: "cat".into(), args: vec!["/proc/self/stat".into()] };
    let sink: RecordSink = Arc::new(|_| {});
    runtime.block_on(async {
        let stats = Arc::new(RelayStats::default());
        let listener = UnixListener::bind(&relay_path).unwrap();
        tokio::spawn(serve(listener, Upstream::Socket(daemon_path), sink.clone(), stats.clone()));
        let listener = UnixListener::bind(&stdio_relay_path).unwrap();
        tokio::spawn(serve(listener, stdio, sink, stats));
    });

    let mut client = std::os::unix::net::UnixStream::connect(&relay_path).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut log = vec![0u8; writes];
    client.read_exact(&mut log).unwrap();
    assert!(relay_thread_is_batch(&runtime), "a streaming log moves the relay thread to SCHED_BATCH");

    // Spawned now, from the batch thread, the stdio daemon must still start under the normal policy.
    let mut stdio_client = std::os::unix::net::UnixStream::connect(&stdio_relay_path).unwrap();
    stdio_client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stat = String::new();
    stdio_client.read_to_string(&mut stat).unwrap();
    assert!(stat.contains("(cat)"), "{stat}");
    assert_eq!(sched_policy(&stat), 0, "the spawned daemon must not inherit SCHED_BATCH");

    client.write_all(b"?").unwrap();
    let mut reply = [0u8; 5];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"reply");
    assert!(!relay_thread_is_batch(&runtime), "a request moves the relay thread back to the normal policy");
    fake_daemon.join().unwrap();
}
