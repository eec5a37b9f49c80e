//! The relay (feature `tokio`): a unix socket in front of the real daemon. Each client connection is
//! relayed to the daemon's socket or to a `nix-daemon --stdio` spawned for it. Bytes are written to the
//! other side as soon as they are read; only then is a copy queued for the connection's decoder task
//! (an [`Observer`] and a [`ConnectionRecorder`]), whose records go to a non-blocking sink. Forwarding
//! never waits for decoding or storage (a slow reader stalls Nix builds): if the decoder falls behind,
//! the connection is recorded as out of sync and relayed unobserved.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

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
}

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Chunks queued for a connection's decoder before it is declared too slow (chunks are one `read()`
/// each, usually one daemon message).
const DECODE_QUEUE_CHUNKS: usize = 16 * 1024;

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
            let mut child = tokio::process::Command::new(program)
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
    let (chunks, decoder_input) = mpsc::channel::<(Direction, Vec<u8>)>(DECODE_QUEUE_CHUNKS);
    let overflow = Arc::new(AtomicBool::new(false));
    let decoder = tokio::spawn(decode(decoder_input, trace_id, sink, overflow.clone(), stats.clone()));
    let (client_read, client_write) = client.into_split();
    let c2s = pump(Box::new(client_read), daemon_write, Direction::ClientToDaemon, chunks.clone(), &overflow, &stats);
    let s2c = pump(daemon_read, Box::new(client_write), Direction::DaemonToClient, chunks, &overflow, &stats);
    let (c2s, s2c) = tokio::join!(c2s, s2c);
    // Both senders are gone: the decoder drains what is queued, closes open spans and ends.
    let _ = decoder.await;
    if let Some(mut child) = child {
        // The daemon exits once its stdin is closed; don't leave a zombie.
        let _ = child.wait().await;
    }
    c2s.and(s2c)
}

/// Decodes the copies of one connection's chunks, off the forwarding path.
async fn decode(
    mut input: mpsc::Receiver<(Direction, Vec<u8>)>,
    trace_id: String,
    sink: RecordSink,
    overflow: Arc<AtomicBool>,
    stats: Arc<RelayStats>,
) {
    let mut observer = Observer::default();
    let mut recorder = ConnectionRecorder::new(trace_id);
    let mut lost = false;
    let mut records = Vec::new();
    while let Some((direction, bytes)) = input.recv().await {
        // Messages are mapped straight from the observer's buffer; only records are allocated.
        let now = now_ns();
        observer.feed_with(direction, &bytes, |event| recorder.on_event_ref(&event, now, &mut records));
        if overflow.load(Ordering::Relaxed) {
            observer.abandon(direction, "the decoder fell behind the relay; the rest was relayed unobserved".into());
        }
        while let Some(event) = observer.poll_event() {
            recorder.on_event(&event, now, &mut records);
        }
        if observer.is_out_of_sync() && !lost {
            lost = true;
            stats.out_of_sync.fetch_add(1, Ordering::Relaxed);
        }
        if !records.is_empty() {
            sink(std::mem::take(&mut records));
        }
    }
    if overflow.load(Ordering::Relaxed) && !observer.is_out_of_sync() {
        observer.abandon(
            Direction::DaemonToClient,
            "the decoder fell behind the relay; the rest was relayed unobserved".into(),
        );
        stats.out_of_sync.fetch_add(1, Ordering::Relaxed);
    }
    let now = now_ns();
    while let Some(event) = observer.poll_event() {
        recorder.on_event(&event, now, &mut records);
    }
    recorder.on_close(now, &mut records);
    if !records.is_empty() {
        sink(records);
    }
}

/// Copies one direction, forwarding each chunk before queueing its copy for the decoder. A full queue
/// never delays forwarding: the connection is left unobserved instead.
async fn pump(
    mut from: BoxRead,
    mut to: BoxWrite,
    direction: Direction,
    chunks: mpsc::Sender<(Direction, Vec<u8>)>,
    overflow: &AtomicBool,
    stats: &RelayStats,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let counter = match direction {
        Direction::ClientToDaemon => &stats.bytes_client_to_daemon,
        Direction::DaemonToClient => &stats.bytes_daemon_to_client,
    };
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        };
        if let Err(e) = to.write_all(&buf[..n]).await {
            // The other side is gone; nothing more can be relayed this way.
            tracing::debug!("nix relay: write failed: {e}");
            break;
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
        if !overflow.load(Ordering::Relaxed) && chunks.try_send((direction, buf[..n].to_vec())).is_err() {
            overflow.store(true, Ordering::Relaxed);
        }
    }
    let _ = to.shutdown().await;
    Ok(())
}
