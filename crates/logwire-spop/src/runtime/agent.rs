//! The SPOA server: accepts HAProxy's connections and answers every NOTIFY.

use crate::agent::{AgentConfig, AgentConnection, AgentEvent};
use crate::handler::{AsyncHandler, Handler, Notify};
use crate::hello::Negotiated;
use crate::message::Action;
use crate::record::{Outcome, Timing};
use crate::status::StatusCode;
use bytes::{Bytes, BytesMut};
use logwire_model::now_ns;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What a connection looked like to the agent, for observers.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub id: u64,
    pub peer: SocketAddr,
    pub engine_id: Option<Bytes>,
    pub negotiated: Option<Negotiated>,
    /// What HAProxy announced in its HELLO.
    pub announced: Option<crate::Capabilities>,
    pub healthcheck: bool,
}

impl ConnInfo {
    /// The HAProxy side's name in records: its engine-id, else the peer address.
    pub fn origin(&self) -> String {
        match &self.engine_id {
            Some(e) => String::from_utf8_lossy(e).into_owned(),
            None => self.peer.to_string(),
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// EOF or RST from HAProxy: a normal close.
    PeerClosed,
    /// HAProxy sent HAPROXY-DISCONNECT.
    PeerDisconnect {
        status: StatusCode,
        message: String,
    },
    /// We sent AGENT-DISCONNECT because of a protocol error.
    ProtocolError {
        status: StatusCode,
        reason: String,
    },
    /// The server is shutting down.
    Shutdown,
    Io(String),
}

/// Told about everything the agent sees, after the ACKs are written. Implementations must not block
/// (push to a bounded queue and drop when full): they run on the connection's task.
pub trait Observer: Send + Sync + 'static {
    fn on_hello(&self, _conn: &ConnInfo) {}
    fn on_processed(
        &self,
        _conn: &ConnInfo,
        _notify: &Notify,
        _actions: &[Action],
        _outcome: Outcome,
        _timing: Timing,
    ) {
    }
    fn on_aborted(&self, _conn: &ConnInfo, _stream_id: u64, _frame_id: u64) {}
    fn on_closed(&self, _conn: &ConnInfo, _reason: &CloseReason) {}
}

/// An observer that sees nothing.
pub struct NoObserver;
impl Observer for NoObserver {}

/// How NOTIFYs are answered.
#[derive(Clone)]
pub enum HandlerKind {
    /// Inline on the connection task; ACKs in arrival order, batched per read.
    Sync(Arc<dyn Handler>),
    /// One task per NOTIFY; ACKs in completion order, on any connection of the same engine when
    /// `async` was negotiated and the original connection is gone.
    Async(Arc<dyn AsyncHandler>),
}

/// Counters of a running server.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub connections: AtomicU64,
    pub active: AtomicU64,
    pub notifies: AtomicU64,
    pub acks: AtomicU64,
    pub protocol_errors: AtomicU64,
}

/// Settings of the server.
#[derive(Clone)]
pub struct ServerConfig {
    pub agent: AgentConfig,
    /// Per connection: NOTIFYs handed to an async handler and not yet ACKed before we stop reading.
    pub max_in_flight: usize,
    /// Read buffer bound per connection (frames above max-frame-size are refused before this matters).
    pub read_chunk: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { agent: AgentConfig::default(), max_in_flight: 1024, read_chunk: 64 * 1024 }
    }
}

type AckSender = mpsc::UnboundedSender<AckMsg>;

struct AckMsg {
    notify: Notify,
    actions: Vec<Action>,
    received_ns: i64,
    handler_ns: i64,
}

/// Live connections per engine-id, so that an async ACK can leave on a sibling connection.
#[derive(Default)]
struct EngineRegistry {
    by_engine: Mutex<HashMap<Bytes, Vec<(u64, AckSender)>>>,
}

impl EngineRegistry {
    fn add(&self, engine: &Bytes, id: u64, tx: AckSender) {
        if let Ok(mut m) = self.by_engine.lock() {
            m.entry(engine.clone()).or_default().push((id, tx));
        }
    }

    fn remove(&self, engine: &Bytes, id: u64) {
        if let Ok(mut m) = self.by_engine.lock() {
            if let Some(v) = m.get_mut(engine) {
                v.retain(|(i, _)| *i != id);
                if v.is_empty() {
                    m.remove(engine);
                }
            }
        }
    }

    /// Sends to any live connection of `engine`; gives the message back if none is left.
    fn send_any(&self, engine: &Bytes, mut msg: AckMsg) -> Result<(), AckMsg> {
        let Ok(m) = self.by_engine.lock() else { return Err(msg) };
        for (_, tx) in m.get(engine).into_iter().flatten() {
            match tx.send(msg) {
                Ok(()) => return Ok(()),
                Err(e) => msg = e.0,
            }
        }
        Err(msg)
    }
}

/// An SPOA server.
pub struct AgentServer {
    config: ServerConfig,
    handler: HandlerKind,
    observer: Arc<dyn Observer>,
    stats: Arc<ServerStats>,
    registry: Arc<EngineRegistry>,
    next_id: AtomicU64,
    warn_limiter: RateLimit,
}

/// At most one warning per interval, across connections.
struct RateLimit {
    started: Instant,
    last_ms: AtomicU64,
}

impl RateLimit {
    const INTERVAL_MS: u64 = 10_000;

    fn new() -> Self {
        RateLimit { started: Instant::now(), last_ms: AtomicU64::new(u64::MAX) }
    }

    fn allow(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_ms.load(Ordering::Relaxed);
        (last == u64::MAX || now.saturating_sub(last) >= Self::INTERVAL_MS)
            && self.last_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

impl AgentServer {
    pub fn new(config: ServerConfig, handler: HandlerKind, observer: Arc<dyn Observer>) -> Arc<Self> {
        Arc::new(AgentServer {
            config,
            handler,
            observer,
            stats: Arc::new(ServerStats::default()),
            registry: Arc::new(EngineRegistry::default()),
            next_id: AtomicU64::new(1),
            warn_limiter: RateLimit::new(),
        })
    }

    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.stats
    }

    /// Accepts connections until `shutdown` completes, then returns (open connections end when
    /// HAProxy closes them or the runtime stops).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        // Out of file descriptors and the like: keep serving the others.
                        Err(e) => { tracing::warn!("accept failed: {e}"); tokio::time::sleep(std::time::Duration::from_millis(10)).await; continue; }
                    };
                    let _ = stream.set_nodelay(true);
                    let server = self.clone();
                    tokio::spawn(async move { server.run_connection(stream, peer).await });
                }
            }
        }
    }

    /// Serves one already accepted connection to the end.
    pub async fn run_connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        let mut info = ConnInfo { id, peer, engine_id: None, negotiated: None, announced: None, healthcheck: false };
        let (tx, rx) = mpsc::unbounded_channel();
        let reason = self.connection_loop(stream, &mut info, tx, rx).await;
        if let Some(e) = &info.engine_id {
            self.registry.remove(e, id);
        }
        self.stats.active.fetch_sub(1, Ordering::Relaxed);
        self.observer.on_closed(&info, &reason);
    }

    async fn connection_loop(
        &self,
        mut stream: TcpStream,
        info: &mut ConnInfo,
        ack_tx: AckSender,
        mut ack_rx: mpsc::UnboundedReceiver<AckMsg>,
    ) -> CloseReason {
        let mut conn = AgentConnection::new(self.config.agent.clone());
        let mut input = BytesMut::with_capacity(self.config.read_chunk);
        let mut actions = Vec::new();
        // ACKed NOTIFYs waiting for the write, then for the observer. Their actions live in one pool
        // (`Done::actions`), so that no NOTIFY allocates a Vec of its own.
        let mut done = Done::default();
        let mut in_flight = 0usize;
        let mut close: Option<CloseReason> = None;
        loop {
            let can_read = in_flight < self.config.max_in_flight;
            tokio::select! {
                read = stream.read_buf(&mut input), if can_read => {
                    match read {
                        Ok(0) => return close.unwrap_or(CloseReason::PeerClosed),
                        Ok(_) => {}
                        Err(e) if crate::runtime::is_normal_close(&e) => return close.unwrap_or(CloseReason::PeerClosed),
                        Err(e) => return CloseReason::Io(e.to_string()),
                    }
                    let received_ns = now_ns();
                    while let Some(event) = conn.poll_event(&mut input) {
                        match event {
                            AgentEvent::Hello { hello, negotiated } => {
                                info.engine_id = hello.engine_id.clone();
                                info.negotiated = Some(negotiated);
                                info.healthcheck = hello.healthcheck;
                                info.announced = Some(hello.capabilities);
                                if let Some(e) = &info.engine_id {
                                    self.registry.add(e, info.id, ack_tx.clone());
                                }
                                self.observer.on_hello(info);
                            }
                            AgentEvent::Notify(notify) => {
                                self.stats.notifies.fetch_add(1, Ordering::Relaxed);
                                match &self.handler {
                                    HandlerKind::Sync(h) => {
                                        let t0 = Instant::now();
                                        actions.clear();
                                        h.on_notify(&notify, &mut actions);
                                        let handler_ns = t0.elapsed().as_nanos() as i64;
                                        let outcome = match conn.ack(notify.stream_id, notify.frame_id, &actions) {
                                            Ok(()) => Outcome::Acked,
                                            Err(e) => { tracing::warn!("{e}"); Outcome::AckTooBig }
                                        };
                                        done.push(notify, actions.drain(..), outcome, Timing { received_ns, acked_ns: 0, handler_ns });
                                    }
                                    HandlerKind::Async(h) => {
                                        in_flight += 1;
                                        let fut = h.on_notify(notify.clone());
                                        let tx = ack_tx.clone();
                                        // With async, an ACK whose connection is gone may leave on a sibling.
                                        let sibling = match (&info.engine_id, info.negotiated) {
                                            (Some(e), Some(n)) if n.capabilities.async_ => Some((self.registry.clone(), e.clone())),
                                            _ => None,
                                        };
                                        tokio::spawn(async move {
                                            let t0 = Instant::now();
                                            let actions = fut.await;
                                            let handler_ns = t0.elapsed().as_nanos() as i64;
                                            let msg = AckMsg { notify, actions, received_ns, handler_ns };
                                            if let Err(returned) = tx.send(msg) {
                                                if let Some((registry, engine)) = sibling {
                                                    let _ = registry.send_any(&engine, returned.0);
                                                }
                                            }
                                        });
                                    }
                                }
                            }
                            AgentEvent::Aborted { stream_id, frame_id } => self.observer.on_aborted(info, stream_id, frame_id),
                            AgentEvent::PeerDisconnect(d) => {
                                // HAProxy reconnects at once after such errors (hundreds per second):
                                // say it once in a while, the store has every occurrence.
                                if let Some(advice) = d.status.advice() {
                                    if self.warn_limiter.allow() {
                                        tracing::warn!(peer = %info.peer, "HAProxy disconnected with status {}: {}", d.status, advice);
                                    }
                                }
                                close = Some(CloseReason::PeerDisconnect { status: d.status, message: d.message_str().into_owned() });
                            }
                            AgentEvent::ProtocolError { status, reason } => {
                                self.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(peer = %info.peer, "SPOP protocol error, sent DISCONNECT {status}: {reason}");
                                close = Some(CloseReason::ProtocolError { status, reason });
                            }
                            AgentEvent::Skipped { frame_type } => tracing::debug!("skipped unknown frame type {frame_type}"),
                        }
                    }
                }
                Some(msg) = ack_rx.recv() => {
                    in_flight = in_flight.saturating_sub(1);
                    self.queue_async_ack(&mut conn, info, msg, &mut done);
                    // Take every ACK that is ready, so that they share one write.
                    while let Ok(msg) = ack_rx.try_recv() {
                        in_flight = in_flight.saturating_sub(1);
                        self.queue_async_ack(&mut conn, info, msg, &mut done);
                    }
                }
            }
            if !conn.transmit().is_empty() {
                let out = conn.transmit().split();
                if let Err(e) = stream.write_all(&out).await {
                    return if crate::runtime::is_normal_close(&e) {
                        CloseReason::PeerClosed
                    } else {
                        CloseReason::Io(e.to_string())
                    };
                }
            }
            if !done.notifies.is_empty() {
                let acked_ns = now_ns();
                self.stats.acks.fetch_add(done.notifies.len() as u64, Ordering::Relaxed);
                for (notify, range, outcome, mut timing) in done.notifies.drain(..) {
                    timing.acked_ns = acked_ns;
                    self.observer.on_processed(info, &notify, &done.actions[range], outcome, timing);
                }
                done.actions.clear();
            }
            if conn.is_closing() {
                let _ = stream.shutdown().await;
                return close.unwrap_or(CloseReason::Shutdown);
            }
        }
    }

    fn queue_async_ack(&self, conn: &mut AgentConnection, info: &ConnInfo, msg: AckMsg, done: &mut Done) {
        let outcome = match conn.ack(msg.notify.stream_id, msg.notify.frame_id, &msg.actions) {
            Ok(()) => Outcome::Acked,
            Err(e) => {
                tracing::warn!(peer = %info.peer, "{e}");
                Outcome::AckTooBig
            }
        };
        done.push(
            msg.notify,
            msg.actions,
            outcome,
            Timing { received_ns: msg.received_ns, acked_ns: 0, handler_ns: msg.handler_ns },
        );
    }
}

/// NOTIFYs ACKed in the current batch, with their actions in one shared pool.
#[derive(Default)]
struct Done {
    notifies: Vec<(Notify, std::ops::Range<usize>, Outcome, Timing)>,
    actions: Vec<Action>,
}

impl Done {
    fn push(&mut self, notify: Notify, actions: impl IntoIterator<Item = Action>, outcome: Outcome, timing: Timing) {
        let start = self.actions.len();
        self.actions.extend(actions);
        self.notifies.push((notify, start..self.actions.len(), outcome, timing));
    }
}
