//! The thin tokio layer: syslog over UDP, unix datagram and TCP (RFC 6587), and a fluentd forward server
//! that acknowledges `chunk`s only once the records are committed. Records go to a [`Sink`]; garbage is
//! counted and logged with the peer's address, and never stops a listener. A stream connection stops
//! reading while the sink has no room ([`Sink::has_room`]), so a sender faster than the store is slowed
//! down rather than losing records.

use crate::error::DecodeError;
use crate::forward::{encode_ack, event_to_log, ForwardDecoder, ServerSession, SessionStep, SharedKeyConfig};
use crate::framing::SyslogFramer;
use crate::record::to_records;
use bytes::BytesMut;
use logwire_model::{now_ns, Record};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

/// Where decoded records go.
pub trait Sink: Send + Sync + 'static {
    /// Take records without waiting (drop and count them if full).
    fn records(&self, records: Vec<Record>);
    /// Take records and call `done(true)` once they are durable, `done(false)` if they were dropped.
    fn records_with_commit(&self, records: Vec<Record>, done: Box<dyn FnOnce(bool) + Send>);
    /// Whether to take more from senders that can be held back. The stream listeners (syslog over TCP,
    /// fluentd) stop reading while it is false: TCP flow control then holds the sender, whose own queue
    /// keeps the records, instead of the sink dropping them. Datagram listeners cannot hold a sender back
    /// and never ask. Must be cheap: it is asked before every read.
    fn has_room(&self) -> bool {
        true
    }
}

/// Counters of every g3 listener.
#[derive(Debug, Default)]
pub struct Stats {
    /// g3proxy log records decoded.
    pub logs: AtomicU64,
    /// Datagrams, frames or forward events that did not decode.
    pub garbage: AtomicU64,
    pub connections: AtomicU64,
    /// fluentd acks sent (each after its records were committed).
    pub acks: AtomicU64,
    /// fluentd chunks not acknowledged because their records were dropped; the connection is closed so the
    /// client resends.
    pub unacked: AtomicU64,
    /// fluentd connections refused by the `shared_key` handshake (wrong key or user).
    pub handshake_failures: AtomicU64,
    /// Reads of a stream connection put off because the sink had no room (see [`Sink::has_room`]).
    pub held_back: AtomicU64,
}

/// Shared by all listeners of one `serve`.
#[derive(Clone)]
pub struct Ingest {
    pub sink: Arc<dyn Sink>,
    pub stats: Arc<Stats>,
}

/// Most garbage reports logged per listener before they are only counted (the count stays exact).
const MAX_GARBAGE_LOGS: u64 = 100;

/// How often a stream connection held back by a full sink looks again. The store's writer commits a batch
/// every few milliseconds under load, so a millisecond loses little of its pace.
const ROOM_POLL: std::time::Duration = std::time::Duration::from_millis(1);

impl Ingest {
    pub fn new(sink: Arc<dyn Sink>) -> Self {
        Ingest { sink, stats: Arc::new(Stats::default()) }
    }

    fn garbage(&self, peer: &dyn std::fmt::Display, err: &DecodeError) {
        let n = self.stats.garbage.fetch_add(1, Ordering::Relaxed);
        if n < MAX_GARBAGE_LOGS {
            tracing::warn!(%peer, error = %err, "g3: undecodable input (counted)");
        }
    }

    /// Decode one syslog record into `out` (a batch the caller sends once). `received_ns` is read once per
    /// read or wakeup, not per record: it is only the time of a record with no time of its own.
    fn decode_syslog(&self, peer: &dyn std::fmt::Display, bytes: &[u8], received_ns: i64, out: &mut Vec<Record>) {
        match crate::syslog::decode_to_records(bytes, received_ns, out) {
            Ok(()) => {
                self.stats.logs.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.garbage(peer, &e),
        }
    }

    /// Before a stream read: wait while the sink has no room, so the sender waits instead of losing records.
    async fn wait_for_room(&self) {
        if self.sink.has_room() {
            return;
        }
        self.stats.held_back.fetch_add(1, Ordering::Relaxed);
        while !self.sink.has_room() {
            tokio::time::sleep(ROOM_POLL).await;
        }
    }

    fn send(&self, batch: &mut Vec<Record>) {
        if !batch.is_empty() {
            self.sink.records(std::mem::take(batch));
        }
    }
}

/// Most datagrams taken per wakeup before their records go to the store in one batch: one queue message
/// per busy wakeup instead of one per datagram, without holding records back when traffic is light (the
/// batch goes as soon as the socket has nothing more).
const DATAGRAMS_PER_BATCH: usize = 256;

/// One record per datagram (UDP).
pub async fn serve_udp(socket: UdpSocket, ingest: Ingest) {
    let mut buf = vec![0u8; 65_536];
    let mut batch = Vec::new();
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, peer)) => {
                let now = now_ns();
                ingest.decode_syslog(&peer, &buf[..n], now, &mut batch);
                for _ in 1..DATAGRAMS_PER_BATCH {
                    match socket.try_recv_from(&mut buf) {
                        Ok((n, peer)) => ingest.decode_syslog(&peer, &buf[..n], now, &mut batch),
                        Err(_) => break,
                    }
                }
                ingest.send(&mut batch);
            }
            Err(e) => {
                tracing::warn!(error = %e, "g3: UDP receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// One record per datagram on a unix datagram socket (what g3proxy's `/dev/log` default speaks).
#[cfg(unix)]
pub async fn serve_unix_datagram(socket: tokio::net::UnixDatagram, ingest: Ingest) {
    fn name(peer: &tokio::net::unix::SocketAddr) -> String {
        peer.as_pathname().map_or_else(|| "unix:unnamed".to_string(), |p| p.display().to_string())
    }
    let mut buf = vec![0u8; 65_536];
    let mut batch = Vec::new();
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, peer)) => {
                let now = now_ns();
                ingest.decode_syslog(&name(&peer), &buf[..n], now, &mut batch);
                for _ in 1..DATAGRAMS_PER_BATCH {
                    match socket.try_recv_from(&mut buf) {
                        Ok((n, peer)) => ingest.decode_syslog(&name(&peer), &buf[..n], now, &mut batch),
                        Err(_) => break,
                    }
                }
                ingest.send(&mut batch);
            }
            Err(e) => {
                tracing::warn!(error = %e, "g3: unix datagram receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Syslog over TCP, RFC 6587 octet counting or newline framing, per frame.
pub async fn serve_tcp(listener: TcpListener, ingest: Ingest) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                ingest.stats.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(syslog_tcp_connection(stream, peer, ingest.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "g3: TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn syslog_tcp_connection(mut stream: TcpStream, peer: SocketAddr, ingest: Ingest) {
    let mut framer = SyslogFramer::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    // The records of every frame one read brought, sent to the store together.
    let mut batch = Vec::new();
    loop {
        ingest.wait_for_room().await;
        match stream.read_buf(&mut buf).await {
            Ok(0) => {
                match framer.decode_eof(&mut buf) {
                    Ok(Some(frame)) => ingest.decode_syslog(&peer, &frame, now_ns(), &mut batch),
                    Ok(None) => {}
                    Err(e) => ingest.garbage(&peer, &e),
                }
                ingest.send(&mut batch);
                return;
            }
            Ok(_) => {
                let now = now_ns();
                loop {
                    match framer.decode(&mut buf) {
                        Ok(Some(frame)) => ingest.decode_syslog(&peer, &frame, now, &mut batch),
                        Ok(None) => {
                            ingest.send(&mut batch);
                            break;
                        }
                        Err(e) => {
                            // A broken frame length cannot be resynchronised: drop the connection.
                            ingest.send(&mut batch);
                            ingest.garbage(&peer, &e);
                            return;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "g3: syslog TCP connection failed");
                return;
            }
        }
    }
}

/// fluentd forward over TCP, without the `shared_key` handshake.
pub async fn serve_fluentd(listener: TcpListener, ingest: Ingest) {
    serve_fluentd_with(listener, ingest, None).await
}

/// fluentd forward over TCP; with `shared_key`, every connection must pass the HELO/PING/PONG handshake
/// before its records are taken.
pub async fn serve_fluentd_with(listener: TcpListener, ingest: Ingest, shared_key: Option<Arc<SharedKeyConfig>>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                ingest.stats.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(fluentd_connection(stream, peer, ingest.clone(), shared_key.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "g3: fluentd accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// 16 fresh random bytes (the HELO nonce and user-auth salt).
fn random_16() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; 16];
    #[cfg(unix)]
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut out)).is_ok() {
        return out;
    }
    // Fallback: std's randomly keyed SipHash over the time.
    for half in out.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// fluentd's UDP heartbeat on the forward port: every datagram is answered with one `\0` byte.
pub async fn serve_fluentd_heartbeat(socket: UdpSocket) {
    let mut buf = [0u8; 512];
    loop {
        if let Ok((_, peer)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(b"\0", peer).await;
        }
    }
}

/// What the connection's writer sends, in order.
enum Outgoing {
    /// Ack `chunk` once its records are committed.
    Ack(String, oneshot::Receiver<bool>),
    /// Handshake bytes; `close` after a refused handshake.
    Bytes(Vec<u8>, bool),
}

async fn fluentd_connection(
    stream: TcpStream,
    peer: SocketAddr,
    ingest: Ingest,
    shared_key: Option<Arc<SharedKeyConfig>>,
) {
    let peer = peer.to_string();
    let (mut rd, mut wr) = stream.into_split();
    let mut session = ServerSession::new(shared_key.as_deref().cloned(), &random_16(), &random_16());
    if let Some(helo) = session.helo() {
        if wr.write_all(&helo).await.is_err() {
            return;
        }
    }
    // Acks leave in the order the chunks came, each once its records are committed.
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outgoing>();
    let stats = ingest.stats.clone();
    let writer = tokio::spawn(async move {
        while let Some(out) = out_rx.recv().await {
            match out {
                Outgoing::Bytes(bytes, close) => {
                    if wr.write_all(&bytes).await.is_err() || close {
                        let _ = wr.shutdown().await;
                        return;
                    }
                }
                Outgoing::Ack(chunk, committed) => match committed.await {
                    Ok(true) => {
                        if wr.write_all(&encode_ack(&chunk)).await.is_err() {
                            return;
                        }
                        stats.acks.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        // Not stored: no ack, and close so the client resends the chunk elsewhere or later.
                        stats.unacked.fetch_add(1, Ordering::Relaxed);
                        let _ = wr.shutdown().await;
                        return;
                    }
                },
            }
        }
    });
    let mut decoder = ForwardDecoder::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'read: loop {
        ingest.wait_for_room().await;
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => loop {
                if writer.is_finished() {
                    break 'read;
                }
                let step = match decoder.decode(&mut buf) {
                    Ok(Some(message)) => session.on_message(message),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                match step {
                    Ok(SessionStep::Events { tag, events, chunk }) => {
                        let mut records = Vec::with_capacity(events.len() * 2);
                        let now = now_ns();
                        for (time, record) in &events {
                            match event_to_log(&tag, *time, record) {
                                Ok(log) => {
                                    ingest.stats.logs.fetch_add(1, Ordering::Relaxed);
                                    records.extend(to_records(&log, now));
                                }
                                Err(e) => ingest.garbage(&peer, &e),
                            }
                        }
                        match chunk {
                            Some(chunk) => {
                                let (tx, rx) = oneshot::channel();
                                ingest.sink.records_with_commit(
                                    records,
                                    Box::new(move |ok| {
                                        let _ = tx.send(ok);
                                    }),
                                );
                                if out_tx.send(Outgoing::Ack(chunk, rx)).is_err() {
                                    break 'read;
                                }
                            }
                            None => ingest.sink.records(records),
                        }
                    }
                    Ok(SessionStep::Nothing) => {}
                    Ok(SessionStep::Reply(bytes)) => {
                        if out_tx.send(Outgoing::Bytes(bytes, false)).is_err() {
                            break 'read;
                        }
                    }
                    Ok(SessionStep::ReplyAndClose(bytes, e)) => {
                        ingest.stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                        ingest.garbage(&peer, &e);
                        let _ = out_tx.send(Outgoing::Bytes(bytes, true));
                        break 'read;
                    }
                    Err(e) => {
                        ingest.garbage(&peer, &e);
                        break 'read;
                    }
                }
            },
        }
    }
    drop(out_tx);
    // Pending acks are still sent once their records commit.
    let _ = writer.await;
}
