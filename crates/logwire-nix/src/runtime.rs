//! The relay (feature `tokio`): a unix socket in front of the real daemon. Each client connection is
//! relayed to the daemon's socket or to a `nix-daemon --stdio` spawned for it. Bytes are written to the
//! other side as soon as they are read; only then is a copy queued, stamped with the time it was read,
//! for the connection's decoder task (an [`Observer`] and a [`ConnectionRecorder`]), whose records go to
//! a non-blocking sink. Forwarding never waits for decoding or storage (a slow reader stalls Nix builds):
//! if the decoder falls behind, the connection is recorded as out of sync and relayed unobserved.
//!
//! The copies share one reused read buffer ([`BytesMut`] split into [`Bytes`]), and the decoder hands
//! records to the sink in batches (up to [`BATCH_RECORDS`] or [`BATCH_DELAY`] old), not per message: a
//! daemon writes each log line on its own, so per-message hand-offs would wake the store per line.
//!
//! Run the relay on its own runtime from [`relay_runtime_builder`]. Its thread picks its scheduling
//! policy ([`logwire_model::sched`]) from what the connections do:
//! - **A build log streams** (a connection forwarded [`STREAMING_READS`] daemon reads in a row with
//!   nothing from its client): `SCHED_BATCH`. A build's log arrives as one small write per line, and a
//!   relay that preempted the daemon at each one would wake for every line. Without preempting, it wakes
//!   a moment later and forwards the lines written meanwhile in one read and one write. On a busy 2-core
//!   machine, for a 1 M-line build (`benches/relay_overhead.rs`, 6 pairs per run, runs interleaved), this
//!   cut the relay's reads from 131–146 k to 100–119 k, its CPU from 1.9 to 1.4–1.6 s, and its overhead
//!   from +19–20 % to +4–11 % (median of pairs).
//! - **The client sends a request:** the normal policy again. Each op crosses the relay twice (request
//!   and reply). With both CPUs busy, a relay kept under `SCHED_BATCH` waited for its turn at each
//!   crossing: `nix-instantiate` of 300 derivations took 1.1–2.0 s through it, against 0.3–0.5 s with
//!   this switch back and 0.5–1.0 s straight to the daemon (`NIX_BENCH_OPS=300 NIX_BENCH_LOAD=1`, with
//!   `NIX_BENCH_SCHED=batch` for the relay kept batch).
//!
//! With a CPU free, the relay is woken at once under either policy.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use logwire_model::{now_ns, Record};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::observer::{Direction, Observer};
use crate::record::ConnectionRecorder;

/// Where the real daemon is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A daemon socket, e.g. `/nix/var/nix/daemon-socket/socket`.
    Socket(PathBuf),
    /// A program speaking the protocol on stdin/stdout, spawned per connection (`nix-daemon --stdio`).
    Stdio { program: PathBuf, args: Vec<String> },
}

impl Upstream {
    pub const DEFAULT_SOCKET: &'static str = "/nix/var/nix/daemon-socket/socket";

    /// `nix-daemon --stdio` from PATH.
    pub fn stdio() -> Self {
        Upstream::Stdio { program: PathBuf::from("nix-daemon"), args: vec!["--stdio".to_string()] }
    }
}

/// A tokio runtime builder for the relay: one named worker thread that switches to `SCHED_BATCH` while
/// a build log streams (see the module docs). Add what you need (`enable_all`) and build it. The relay
/// also runs on any other runtime, under whatever policy that runtime's threads have.
///
/// One worker keeps each connection's forwarding and decoding tasks on one thread, so handing a chunk to
/// the decoder never wakes a second thread. On 2 cores, with the relay under `SCHED_BATCH` throughout, it
/// relayed a 1 M-line build with +1–6 % overhead against +6–13 % for two workers (3 interleaved runs
/// each, median of pairs). One thread forwards and decodes far more log lines per second than a daemon
/// writes.
pub fn relay_runtime_builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(1)
        .thread_name("logwire-nix-relay")
        .on_thread_start(|| THREAD_BATCH.with(|batch| batch.set(Some(false))));
    builder
}

/// Daemon reads forwarded in a row, with nothing from the client in between, after which a connection
/// counts as streaming a build log (a request and its reply take a few).
pub const STREAMING_READS: u32 = 32;

thread_local! {
    /// On a relay runtime's thread, whether it runs under `SCHED_BATCH` now; `None` elsewhere, where the
    /// policy is left alone.
    static THREAD_BATCH: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Moves this relay thread to `SCHED_BATCH` (or back to the normal policy), with one system call when
/// that changes it. If the call fails, the thread keeps its policy: it only wakes more or less often.
fn set_thread_batch(batch: bool) {
    THREAD_BATCH.with(|state| {
        if state.get() == Some(!batch) {
            let changed =
                if batch { logwire_model::sched::prefer_throughput() } else { logwire_model::sched::restore_normal() };
            if changed.is_ok() {
                state.set(Some(batch));
            }
        }
    });
}

/// Receives the records of every connection; must not block.
pub type RecordSink = Arc<dyn Fn(Vec<Record>) + Send + Sync>;

/// Counters of a relay.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub connections: AtomicU64,
    /// Connections whose both directions are closed and whose records were handed to the sink.
    pub connections_closed: AtomicU64,
    pub upstream_failures: AtomicU64,
    pub out_of_sync: AtomicU64,
    pub bytes_client_to_daemon: AtomicU64,
    pub bytes_daemon_to_client: AtomicU64,
    /// Reads that returned data, both directions (bytes per read show how much each forward carried).
    pub reads: AtomicU64,
}

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Chunks queued for a connection's decoder before it is declared too slow (chunks are one `read()`
/// each, usually one daemon message).
const DECODE_QUEUE_CHUNKS: usize = 16 * 1024;

/// Largest read; the shared read buffer is refilled in steps of this size.
const READ_SIZE: usize = 64 * 1024;

/// Records handed to the sink at once, at most (a batch may exceed it by one chunk's records).
pub const BATCH_RECORDS: usize = 1024;

/// Longest a record waits in the decoder for its batch to fill.
pub const BATCH_DELAY: Duration = Duration::from_millis(20);

/// A copy of what one `read()` returned, with the time it was read (ns since the epoch).
type Chunk = (Direction, i64, Bytes);

/// Accepts connections forever, relaying each one.
pub async fn serve(listener: UnixListener, upstream: Upstream, sink: RecordSink, stats: Arc<RelayStats>) {
    let started = now_ns();
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                tracing::warn!("nix relay: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let n = stats.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let trace_id = format!("nix-{}-{started:x}-{n}", std::process::id());
        let (upstream, sink, stats) = (upstream.clone(), sink.clone(), stats.clone());
        tokio::spawn(async move {
            if let Err(e) = relay(client, &upstream, trace_id, sink, stats.clone()).await {
                stats.upstream_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("nix relay: {e}");
            }
            stats.connections_closed.fetch_add(1, Ordering::Relaxed);
        });
    }
}

/// Relays one connection until both directions are closed.
pub async fn relay(
    client: UnixStream,
    upstream: &Upstream,
    trace_id: String,
    sink: RecordSink,
    stats: Arc<RelayStats>,
) -> std::io::Result<()> {
    let (daemon_read, daemon_write, child): (BoxRead, BoxWrite, Option<tokio::process::Child>) = match upstream {
        Upstream::Socket(path) => {
            let stream = UnixStream::connect(path).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot connect to the daemon at {}: {e}", path.display()))
            })?;
            let (r, w) = stream.into_split();
            (Box::new(r), Box::new(w), None)
        }
        Upstream::Stdio { program, args } => {
            let mut command = tokio::process::Command::new(program);
            // The daemon (and every build it runs) would inherit the relay thread's SCHED_BATCH.
            // SAFETY: restore_normal makes one system call and allocates nothing.
            unsafe { command.pre_exec(logwire_model::sched::restore_normal) };
            let mut child = command
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start {}: {e}", program.display())))?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(std::io::Error::other("the daemon's stdio was not captured"));
            };
            (Box::new(stdout), Box::new(stdin), Some(child))
        }
    };
    let (chunks, decoder_input) = mpsc::channel::<Chunk>(DECODE_QUEUE_CHUNKS);
    let overflow = Arc::new(AtomicBool::new(false));
    let decoder = tokio::spawn(decode(decoder_input, trace_id, sink, overflow.clone(), stats.clone()));
    let (client_read, client_write) = client.into_split();
    // Daemon reads since the client last sent something (both pumps run in this one task).
    let daemon_streak = AtomicU32::new(0);
    let c2s = pump(
        Box::new(client_read),
        daemon_write,
        Direction::ClientToDaemon,
        chunks.clone(),
        &overflow,
        &daemon_streak,
        &stats,
    );
    let s2c =
        pump(daemon_read, Box::new(client_write), Direction::DaemonToClient, chunks, &overflow, &daemon_streak, &stats);
    let (c2s, s2c) = tokio::join!(c2s, s2c);
    // Both senders are gone: the decoder drains what is queued, closes open spans and ends.
    let _ = decoder.await;
    if let Some(mut child) = child {
        // The daemon exits once its stdin is closed; don't leave a zombie.
        let _ = child.wait().await;
    }
    c2s.and(s2c)
}

/// One connection's decoding state. Dropping it (at the end of the connection, or when the runtime shuts
/// down mid-connection) decodes the chunks still queued, closes what is open and hands the last batch
/// to the sink, so a shutdown right after a client exits loses nothing already relayed.
struct Decoder {
    input: mpsc::Receiver<Chunk>,
    observer: Observer,
    recorder: ConnectionRecorder,
    records: Vec<Record>,
    sink: RecordSink,
    overflow: Arc<AtomicBool>,
    stats: Arc<RelayStats>,
    lost: bool,
}

impl Decoder {
    fn feed(&mut self, (direction, received_ns, bytes): Chunk) {
        let (recorder, records) = (&mut self.recorder, &mut self.records);
        // Messages are mapped straight from the observer's buffer; only records are allocated.
        self.observer.feed_with(direction, &bytes, |event| recorder.on_event_ref(&event, received_ns, records));
        if self.overflow.load(Ordering::Relaxed) {
            self.observer
                .abandon(direction, "the decoder fell behind the relay; the rest was relayed unobserved".into());
        }
        self.drain_events(received_ns);
    }

    fn drain_events(&mut self, time_ns: i64) {
        while let Some(event) = self.observer.poll_event() {
            self.recorder.on_event(&event, time_ns, &mut self.records);
        }
        if self.observer.is_out_of_sync() && !self.lost {
            self.lost = true;
            self.stats.out_of_sync.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&mut self) {
        if !self.records.is_empty() {
            (self.sink)(std::mem::replace(&mut self.records, Vec::with_capacity(BATCH_RECORDS)));
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        while let Ok(chunk) = self.input.try_recv() {
            self.feed(chunk);
        }
        if self.overflow.load(Ordering::Relaxed) && !self.observer.is_out_of_sync() {
            self.observer.abandon(
                Direction::DaemonToClient,
                "the decoder fell behind the relay; the rest was relayed unobserved".into(),
            );
        }
        let now = now_ns();
        self.drain_events(now);
        self.recorder.on_close(now, &mut self.records);
        self.flush();
    }
}

/// Decodes the copies of one connection's chunks, off the forwarding path, handing records to the sink in
/// batches.
async fn decode(
    input: mpsc::Receiver<Chunk>,
    trace_id: String,
    sink: RecordSink,
    overflow: Arc<AtomicBool>,
    stats: Arc<RelayStats>,
) {
    let mut decoder = Decoder {
        input,
        observer: Observer::default(),
        recorder: ConnectionRecorder::new(trace_id),
        records: Vec::with_capacity(BATCH_RECORDS),
        sink,
        overflow,
        stats,
        lost: false,
    };
    // Armed while records wait for their batch, so a quiet connection still delivers within BATCH_DELAY.
    let flush_timer = tokio::time::sleep(BATCH_DELAY);
    tokio::pin!(flush_timer);
    let mut timer_armed = false;
    loop {
        tokio::select! {
            biased;
            chunk = decoder.input.recv() => match chunk {
                Some(chunk) => decoder.feed(chunk),
                // Both pumps are done; dropping the decoder finishes the connection.
                None => break,
            },
            () = &mut flush_timer, if timer_armed => {
                timer_armed = false;
                decoder.flush();
                continue;
            }
        }
        if decoder.records.len() >= BATCH_RECORDS {
            timer_armed = false;
            decoder.flush();
        } else if !decoder.records.is_empty() && !timer_armed {
            flush_timer.as_mut().reset(tokio::time::Instant::now() + BATCH_DELAY);
            timer_armed = true;
        }
    }
}

/// Copies one direction, forwarding each chunk before queueing its copy for the decoder. A full queue
/// never delays forwarding: the connection is left unobserved instead.
async fn pump(
    mut from: BoxRead,
    mut to: BoxWrite,
    direction: Direction,
    chunks: mpsc::Sender<Chunk>,
    overflow: &AtomicBool,
    daemon_streak: &AtomicU32,
    stats: &RelayStats,
) -> std::io::Result<()> {
    // Each read lands in the spare room of one buffer and is split off as a shared `Bytes` for the
    // decoder; once the decoder has dropped the earlier chunks, `reserve` reuses the same allocation.
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let counter = match direction {
        Direction::ClientToDaemon => &stats.bytes_client_to_daemon,
        Direction::DaemonToClient => &stats.bytes_daemon_to_client,
    };
    loop {
        if buf.capacity() < READ_SIZE / 4 {
            buf.reserve(READ_SIZE);
        }
        let n = match from.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        };
        let received_ns = now_ns();
        match direction {
            // A request: its reply should reach the client without waiting for this thread's turn.
            Direction::ClientToDaemon => {
                daemon_streak.store(0, Ordering::Relaxed);
                set_thread_batch(false);
            }
            // Only at the crossing, so a thread serving other clients' requests too is not flipped back
            // at every line.
            Direction::DaemonToClient => {
                if daemon_streak.fetch_add(1, Ordering::Relaxed) + 1 == STREAMING_READS {
                    set_thread_batch(true);
                }
            }
        }
        let chunk = buf.split().freeze();
        if let Err(e) = to.write_all(&chunk).await {
            // The other side is gone; nothing more can be relayed this way.
            tracing::debug!("nix relay: write failed: {e}");
            break;
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
        stats.reads.fetch_add(1, Ordering::Relaxed);
        if !overflow.load(Ordering::Relaxed) && chunks.try_send((direction, received_ns, chunk)).is_err() {
            overflow.store(true, Ordering::Relaxed);
        }
    }
    let _ = to.shutdown().await;
    Ok(())
}
