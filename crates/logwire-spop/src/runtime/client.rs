//! The engine-side client: connects to any SPOA, says HELLO (also as a health check), sends NOTIFYs
//! and measures each frame. [`run_load`] is a pipelined load generator on top.

use crate::engine::{EngineConfig, EngineConnection, EngineEvent, Generation, NotifyError};
use crate::hello::{Disconnect, Negotiated};
use crate::message::{encode_messages, Action, Message};
use crate::status::StatusCode;
use bytes::BytesMut;
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why the client gave up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the agent refused HELLO: status {status}, {message:?}")]
    Refused { status: StatusCode, message: String },
    #[error("the agent disconnected: status {status}, {message:?}")]
    Disconnected { status: StatusCode, message: String },
    #[error("protocol error from the agent (we sent DISCONNECT {status}): {reason}")]
    Protocol { status: StatusCode, reason: String },
    #[error("the agent closed the connection")]
    Closed,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

/// The answer to one NOTIFY.
#[derive(Debug, Clone, PartialEq)]
pub struct AckReply {
    pub actions: Vec<Action>,
    pub aborted: bool,
    /// From the NOTIFY queued to the ACK decoded.
    pub latency: Duration,
}

/// One connection to an agent, HELLO done.
pub struct Client {
    stream: TcpStream,
    conn: EngineConnection,
    input: BytesMut,
    negotiated: Negotiated,
    hello_time: Duration,
    timeout: Duration,
    next_frame: u64,
}

impl Client {
    /// Connects and says HELLO. A health-check config gets the agent's answer and nothing more.
    pub async fn connect(addr: SocketAddr, config: EngineConfig, timeout: Duration) -> Result<Client, ClientError> {
        let started = Instant::now();
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(|source| ClientError::Connect { addr, source })?;
        stream.set_nodelay(true)?;
        let mut client = Client {
            stream,
            conn: EngineConnection::new(config),
            input: BytesMut::with_capacity(16 * 1024),
            negotiated: Negotiated { max_frame_size: 0, capabilities: Default::default() },
            hello_time: Duration::ZERO,
            timeout,
            next_frame: 0,
        };
        client.flush().await?;
        match client.next_event().await? {
            EngineEvent::Ready(n) => {
                client.negotiated = n;
                client.hello_time = started.elapsed();
                Ok(client)
            }
            EngineEvent::Refused(d) => Err(refused(d)),
            other => Err(unexpected(other)),
        }
    }

    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// Connect + HELLO round trip.
    pub fn hello_time(&self) -> Duration {
        self.hello_time
    }

    /// Sends one NOTIFY and waits for its ACK. Stream-ids follow the configured generation.
    pub async fn notify(&mut self, messages: &[Message]) -> Result<AckReply, ClientError> {
        self.next_frame += 1;
        let (sid, fid) = match self.conn.config().generation {
            Generation::Modern => (self.conn.next_stream_id(), 1),
            Generation::Legacy => (self.next_frame - 1, 1),
        };
        self.conn.notify(Instant::now(), sid, fid, messages)?;
        self.flush().await?;
        loop {
            match self.next_event().await? {
                EngineEvent::Ack { stream_id, frame_id, actions, aborted, latency }
                    if (stream_id, frame_id) == (sid, fid) =>
                {
                    return Ok(AckReply { actions, aborted, latency: latency.unwrap_or_default() })
                }
                EngineEvent::Ack { .. } | EngineEvent::UnknownAck { .. } | EngineEvent::Skipped { .. } => continue,
                other => return Err(unexpected(other)),
            }
        }
    }

    /// Sends HAPROXY-DISCONNECT and waits (bounded) for the agent's AGENT-DISCONNECT.
    pub async fn close(mut self) -> Result<Option<Disconnect>, ClientError> {
        self.conn.disconnect(StatusCode::Normal, "normal");
        self.flush().await?;
        let deadline = Instant::now() + self.timeout;
        let mut codec = crate::FrameCodec::new(u32::MAX);
        loop {
            while let Some(f) = codec
                .decode_frame(&mut self.input)
                .map_err(|e| ClientError::Protocol { status: e.status(), reason: e.to_string() })?
            {
                if f.header.frame_type == crate::FrameType::AgentDisconnect {
                    return Ok(Some(
                        Disconnect::decode(f.payload)
                            .map_err(|e| ClientError::Protocol { status: e.status(), reason: e.to_string() })?,
                    ));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read_buf(&mut self.input)).await {
                Err(_) => return Err(ClientError::Timeout(self.timeout)),
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(_)) => {}
                Ok(Err(e)) if super::is_normal_close(&e) => return Ok(None),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.conn.transmit().is_empty() {
            let out = self.conn.transmit().split();
            self.stream.write_all(&out).await?;
        }
        Ok(())
    }

    async fn next_event(&mut self) -> Result<EngineEvent, ClientError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(ev) = self.conn.poll_event(Instant::now(), &mut self.input) {
                if let EngineEvent::ProtocolError { status, reason } = ev {
                    let _ = self.flush().await;
                    return Err(ClientError::Protocol { status, reason });
                }
                return Ok(ev);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read_buf(&mut self.input)).await {
                Err(_) => return Err(ClientError::Timeout(self.timeout)),
                Ok(Ok(0)) => return Err(ClientError::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) if super::is_normal_close(&e) => return Err(ClientError::Closed),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }
}

fn refused(d: Disconnect) -> ClientError {
    ClientError::Refused { status: d.status, message: d.message_str().into_owned() }
}

fn unexpected(ev: EngineEvent) -> ClientError {
    match ev {
        EngineEvent::Refused(d) => refused(d),
        EngineEvent::AgentDisconnect(d) => {
            ClientError::Disconnected { status: d.status, message: d.message_str().into_owned() }
        }
        EngineEvent::ProtocolError { status, reason } => ClientError::Protocol { status, reason },
        other => ClientError::Protocol { status: StatusCode::Invalid, reason: format!("unexpected {other:?}") },
    }
}

/// What `logwire spop probe` reports.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub healthcheck: Result<(Negotiated, Duration), String>,
    pub hello: Result<(Negotiated, Duration), String>,
    pub notify: Option<Result<AckReply, String>>,
    pub disconnect: Option<Result<Option<(StatusCode, String)>, String>>,
}

/// Health-check HELLO, then a normal HELLO, one NOTIFY with `messages`, and a clean DISCONNECT.
pub async fn probe(addr: SocketAddr, mut config: EngineConfig, messages: &[Message], timeout: Duration) -> ProbeReport {
    let mut hc_config = config.clone();
    hc_config.healthcheck = true;
    let healthcheck = match Client::connect(addr, hc_config, timeout).await {
        Ok(c) => Ok((c.negotiated(), c.hello_time())),
        Err(e) => Err(e.to_string()),
    };
    config.healthcheck = false;
    let mut report = ProbeReport { healthcheck, hello: Err(String::new()), notify: None, disconnect: None };
    match Client::connect(addr, config, timeout).await {
        Ok(mut c) => {
            report.hello = Ok((c.negotiated(), c.hello_time()));
            report.notify = Some(c.notify(messages).await.map_err(|e| e.to_string()));
            report.disconnect = Some(
                c.close().await.map(|d| d.map(|d| (d.status, d.message_str().into_owned()))).map_err(|e| e.to_string()),
            );
        }
        Err(e) => report.hello = Err(e.to_string()),
    }
    report
}

/// Settings of [`run_load`].
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub addr: SocketAddr,
    pub engine: EngineConfig,
    pub connections: usize,
    /// NOTIFYs in flight per connection (pipelining window).
    pub in_flight: usize,
    pub duration: Duration,
    /// Stop after this many ACKs in total (bounded load).
    pub max_requests: Option<u64>,
    /// The NOTIFY payloads to cycle through (LIST-OF-MESSAGES each).
    pub payloads: Vec<Vec<Message>>,
    pub timeout: Duration,
}

/// What [`run_load`] measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub elapsed: Duration,
    pub sent: u64,
    pub acked: u64,
    pub errors: Vec<String>,
    /// NOTIFY→ACK latency in µs.
    pub latency_us: Histogram<u64>,
}

impl LoadReport {
    pub fn rate(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile_us(&self, p: f64) -> u64 {
        self.latency_us.value_at_quantile(p / 100.0)
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 60 s, 3 significant digits; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// Pipelined load: `connections` connections, each keeping `in_flight` NOTIFYs outstanding, until
/// `duration` or `max_requests`.
pub async fn run_load(config: LoadConfig) -> LoadReport {
    let started = Instant::now();
    let deadline = started + config.duration;
    let encoded: Vec<Vec<u8>> = config
        .payloads
        .iter()
        .map(|ms| {
            let mut b = Vec::new();
            encode_messages(ms, &mut b);
            b
        })
        .collect();
    let encoded = std::sync::Arc::new(if encoded.is_empty() { vec![Vec::new()] } else { encoded });
    let budget = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(config.max_requests.unwrap_or(u64::MAX)));
    let mut tasks = Vec::new();
    for i in 0..config.connections.max(1) {
        let config = config.clone();
        let encoded = encoded.clone();
        let budget = budget.clone();
        tasks.push(tokio::spawn(async move { load_connection(i, config, encoded, budget, deadline).await }));
    }
    let mut report =
        LoadReport { elapsed: Duration::ZERO, sent: 0, acked: 0, errors: Vec::new(), latency_us: new_histogram() };
    for t in tasks {
        match t.await {
            Ok(r) => {
                report.sent += r.sent;
                report.acked += r.acked;
                report.errors.extend(r.errors);
                let _ = report.latency_us.add(&r.latency_us);
            }
            Err(e) => report.errors.push(format!("load task failed: {e}")),
        }
    }
    report.elapsed = started.elapsed();
    report
}

async fn load_connection(
    index: usize,
    config: LoadConfig,
    payloads: std::sync::Arc<Vec<Vec<u8>>>,
    budget: std::sync::Arc<std::sync::atomic::AtomicU64>,
    deadline: Instant,
) -> LoadReport {
    use std::sync::atomic::Ordering;
    let mut report =
        LoadReport { elapsed: Duration::ZERO, sent: 0, acked: 0, errors: Vec::new(), latency_us: new_histogram() };
    let mut client = match Client::connect(config.addr, config.engine.clone(), config.timeout).await {
        Ok(c) => c,
        Err(e) => {
            report.errors.push(format!("connection {index}: {e}"));
            return report;
        }
    };
    let window = config.in_flight.max(1).min(client.conn.in_flight_limit());
    let mut legacy_sid = 0u64;
    let mut next_payload = index;
    let mut out_of_budget = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        while !out_of_budget && client.conn.in_flight() < window {
            if budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1)).is_err() {
                out_of_budget = true;
                break;
            }
            let sid = match client.conn.config().generation {
                Generation::Modern => client.conn.next_stream_id(),
                Generation::Legacy => {
                    legacy_sid += 1;
                    legacy_sid - 1
                }
            };
            let payload = &payloads[next_payload % payloads.len()];
            next_payload += 1;
            if let Err(e) = client.conn.notify_payload(now, sid, 1, payload) {
                report.errors.push(format!("connection {index}: {e}"));
                return report;
            }
            report.sent += 1;
        }
        if out_of_budget && client.conn.in_flight() == 0 {
            break;
        }
        if let Err(e) = client.flush().await {
            report.errors.push(format!("connection {index}: {e}"));
            return report;
        }
        let left = deadline.saturating_duration_since(Instant::now()).min(config.timeout);
        match tokio::time::timeout(left, client.stream.read_buf(&mut client.input)).await {
            Err(_) => {
                if Instant::now() < deadline {
                    report.errors.push(format!("connection {index}: no ACK within {:?}", config.timeout));
                }
                break;
            }
            Ok(Ok(0)) => {
                report.errors.push(format!("connection {index}: the agent closed the connection"));
                return report;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                report.errors.push(format!("connection {index}: {e}"));
                return report;
            }
        }
        let now = Instant::now();
        while let Some(ev) = client.conn.poll_event(now, &mut client.input) {
            match ev {
                EngineEvent::Ack { latency, .. } => {
                    report.acked += 1;
                    let us = latency.map(|l| l.as_micros() as u64).unwrap_or(0).max(1);
                    let _ = report.latency_us.record(us);
                }
                EngineEvent::UnknownAck { .. } | EngineEvent::Skipped { .. } => {}
                other => {
                    report.errors.push(format!("connection {index}: {}", unexpected(other)));
                    let _ = client.flush().await;
                    return report;
                }
            }
        }
    }
    let _ = client.close().await;
    report
}
