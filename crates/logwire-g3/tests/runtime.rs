//! The tokio listeners against an in-memory sink, over real loopback sockets: garbage is counted per
//! listener and never stops it; fluentd acks wait for the sink's commit and leave in chunk order; stream
//! connections stop reading while the sink is full.

use logwire_g3::emit::{encode_fluentd, LogBuilder};
use logwire_g3::runtime::{serve_fluentd, serve_tcp, serve_udp, Ingest, Sink};
use logwire_g3::EventTime;
use logwire_model::Record;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Pending = Vec<(Vec<Record>, Box<dyn FnOnce(bool) + Send>)>;

/// Keeps records; commits of acknowledged ones wait until the test releases them.
#[derive(Default)]
struct MemorySink {
    records: Mutex<Vec<Record>>,
    pending: Mutex<Pending>,
    /// While set, the sink says it has no room.
    full: AtomicBool,
}

impl MemorySink {
    fn release(&self, committed: bool) -> usize {
        let pending: Pending = std::mem::take(&mut *self.pending.lock().unwrap());
        let n = pending.len();
        for (records, done) in pending {
            if committed {
                self.records.lock().unwrap().extend(records);
            }
            done(committed);
        }
        n
    }
}

impl Sink for MemorySink {
    fn records(&self, records: Vec<Record>) {
        self.records.lock().unwrap().extend(records);
    }
    fn records_with_commit(&self, records: Vec<Record>, done: Box<dyn FnOnce(bool) + Send>) {
        self.pending.lock().unwrap().push((records, done));
    }
    fn has_room(&self) -> bool {
        !self.full.load(Ordering::SeqCst)
    }
}

const RECORD: &[u8] =
    b"<29>Nov 21 07:45:53 g3proxy[1]: , log_type=\"Escape\", task_id=\"93e96471e57f11f1b860c0ff02d5e2ab\"";

async fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 2 s");
}

#[tokio::test]
async fn garbage_is_counted_and_listeners_go_on() {
    let sink = Arc::new(MemorySink::default());
    let ingest = Ingest::new(sink.clone());
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_addr = udp.local_addr().unwrap();
    tokio::spawn(serve_udp(udp, ingest.clone()));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    tokio::spawn(serve_tcp(tcp, ingest.clone()));
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for bytes in [&b"garbage"[..], RECORD, b"<29>1 x", RECORD] {
        client.send_to(bytes, udp_addr).await.unwrap();
    }
    // TCP: a good frame, a bad one, then a broken octet count that ends the connection.
    let mut conn = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    conn.write_all(format!("{} ", RECORD.len()).as_bytes()).await.unwrap();
    conn.write_all(RECORD).await.unwrap();
    conn.write_all(b"<29>not g3\n99999999999 x").await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.read_to_end(&mut rest)).await;
    // A new connection still works.
    let mut conn = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    conn.write_all(RECORD).await.unwrap();
    conn.write_all(b"\n").await.unwrap();
    drop(conn);
    wait_for(|| ingest.stats.logs.load(Ordering::Relaxed) == 4 && ingest.stats.garbage.load(Ordering::Relaxed) == 4)
        .await;
    assert_eq!(sink.records.lock().unwrap().len(), 4);
    assert!(sink.records.lock().unwrap().iter().all(|r| r.name == "g3:escape:"));
}

fn message(i: u32) -> Vec<u8> {
    let log = LogBuilder::new("Escape").str("task_id", &format!("{i:032x}")).msg("x");
    encode_fluentd(&log, "g3proxy.Escape", EventTime { secs: 1, nanos: i }, Some(&format!("c{i}")))
}

#[tokio::test]
async fn fluentd_acks_follow_commits_in_order_and_a_drop_closes_the_connection() {
    let sink = Arc::new(MemorySink::default());
    let ingest = Ingest::new(sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_fluentd(listener, ingest.clone()));
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    for i in 0..3 {
        conn.write_all(&message(i)).await.unwrap();
    }
    wait_for(|| sink.pending.lock().unwrap().len() == 3).await;
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await.is_err(),
        "no ack before the commit"
    );
    assert_eq!(sink.release(true), 3);
    let mut acks = Vec::new();
    while acks.len() < 3 {
        let n = tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf)).await.unwrap().unwrap();
        acks.extend_from_slice(&buf[..n]);
    }
    let mut cursor = &acks[..];
    let mut got = Vec::new();
    while !cursor.is_empty() {
        got.push(logwire_g3::forward::read_ack(&mut cursor).unwrap());
    }
    assert_eq!(got, ["c0", "c1", "c2"]);
    assert_eq!(ingest.stats.acks.load(Ordering::Relaxed), 3);
    // A dropped chunk gets no ack; the connection is closed so the client resends.
    conn.write_all(&message(9)).await.unwrap();
    wait_for(|| sink.pending.lock().unwrap().len() == 1).await;
    sink.release(false);
    let n = tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "closed without an ack");
    assert_eq!(ingest.stats.unacked.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn stream_connections_stop_reading_while_the_sink_is_full_and_lose_nothing() {
    let sink = Arc::new(MemorySink::default());
    sink.full.store(true, Ordering::SeqCst);
    let ingest = Ingest::new(sink.clone());
    let syslog_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let syslog_addr = syslog_listener.local_addr().unwrap();
    tokio::spawn(serve_tcp(syslog_listener, ingest.clone()));
    let fluentd_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fluentd_addr = fluentd_listener.local_addr().unwrap();
    tokio::spawn(serve_fluentd(fluentd_listener, ingest.clone()));

    let mut syslog = tokio::net::TcpStream::connect(syslog_addr).await.unwrap();
    let lines = 50;
    for _ in 0..lines {
        syslog.write_all(format!("{} ", RECORD.len()).as_bytes()).await.unwrap();
        syslog.write_all(RECORD).await.unwrap();
    }
    let mut fluentd = tokio::net::TcpStream::connect(fluentd_addr).await.unwrap();
    for i in 0..3 {
        fluentd.write_all(&message(i)).await.unwrap();
    }
    // Both connections asked for room and were told to wait.
    wait_for(|| ingest.stats.held_back.load(Ordering::Relaxed) >= 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ingest.stats.logs.load(Ordering::Relaxed), 0, "read while the sink was full");
    assert!(sink.records.lock().unwrap().is_empty() && sink.pending.lock().unwrap().is_empty());

    sink.full.store(false, Ordering::SeqCst);
    wait_for(|| ingest.stats.logs.load(Ordering::Relaxed) == lines + 3).await;
    assert_eq!(sink.records.lock().unwrap().len(), lines as usize);
    assert_eq!(sink.pending.lock().unwrap().len(), 3);
    assert_eq!(ingest.stats.garbage.load(Ordering::Relaxed), 0);
}

/// Reads the next server message (HELO, PONG or ack) from a real connection; `None` at EOF.
async fn next_server_message(
    conn: &mut tokio::net::TcpStream,
    buf: &mut bytes::BytesMut,
) -> Option<logwire_g3::forward::ServerMessage> {
    loop {
        if let Some(m) = logwire_g3::forward::decode_server_message(buf).unwrap() {
            return Some(m);
        }
        let n = tokio::time::timeout(Duration::from_secs(2), conn.read_buf(buf)).await.unwrap().unwrap_or(0);
        if n == 0 {
            return None;
        }
    }
}

fn handshake_client(key: &str) -> logwire_g3::forward::ClientHandshake {
    logwire_g3::forward::ClientHandshake {
        shared_key: key.into(),
        hostname: "g3-capture-host".into(),
        salt: b"0123456789abcdef".to_vec(),
        username: String::new(),
        password: String::new(),
    }
}

#[tokio::test]
async fn fluentd_shared_key_handshake_over_tcp() {
    use logwire_g3::forward::{ServerMessage, SharedKeyConfig};
    let sink = Arc::new(MemorySink::default());
    let ingest = Ingest::new(sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = SharedKeyConfig { shared_key: "s3cret".into(), hostname: "logwire-host".into(), users: vec![] };
    tokio::spawn(logwire_g3::runtime::serve_fluentd_with(listener, ingest.clone(), Some(Arc::new(config))));

    // Right key: HELO, PING, PONG ok with the server's proof, then a chunk is stored and acknowledged.
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    let Some(ServerMessage::Helo { nonce, user_auth_salt, .. }) = next_server_message(&mut conn, &mut buf).await else {
        panic!("no HELO")
    };
    let client = handshake_client("s3cret");
    conn.write_all(&client.ping(&nonce, &user_auth_salt)).await.unwrap();
    let pong = next_server_message(&mut conn, &mut buf).await.expect("a PONG");
    assert_eq!(client.check_pong(&nonce, &pong).unwrap(), "logwire-host");
    conn.write_all(&message(1)).await.unwrap();
    wait_for(|| sink.pending.lock().unwrap().len() == 1).await;
    assert_eq!(sink.release(true), 1);
    assert_eq!(next_server_message(&mut conn, &mut buf).await, Some(ServerMessage::Ack("c1".into())));
    assert_eq!(sink.records.lock().unwrap().len(), 1);

    // Wrong key: PONG with auth false and a reason, then the server closes; nothing is stored.
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    let Some(ServerMessage::Helo { nonce, .. }) = next_server_message(&mut conn, &mut buf).await else {
        panic!("no HELO")
    };
    conn.write_all(&handshake_client("guess").ping(&nonce, b"")).await.unwrap();
    let Some(ServerMessage::Pong { ok, reason, .. }) = next_server_message(&mut conn, &mut buf).await else {
        panic!("no PONG")
    };
    assert!(!ok);
    assert_eq!(reason, "shared_key mismatch");
    let _ = conn.write_all(&message(2)).await;
    assert_eq!(next_server_message(&mut conn, &mut buf).await, None, "closed after a refused handshake");

    // Records without any handshake: refused, the connection closed, nothing stored or acknowledged.
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    assert!(matches!(next_server_message(&mut conn, &mut buf).await, Some(ServerMessage::Helo { .. })));
    conn.write_all(&message(3)).await.unwrap();
    assert_eq!(next_server_message(&mut conn, &mut buf).await, None, "closed: records before the handshake");

    assert_eq!(ingest.stats.handshake_failures.load(Ordering::Relaxed), 1);
    assert_eq!(ingest.stats.logs.load(Ordering::Relaxed), 1);
    assert!(sink.pending.lock().unwrap().is_empty());
    assert_eq!(sink.records.lock().unwrap().len(), 1);
    assert_eq!(ingest.stats.acks.load(Ordering::Relaxed), 1);
}
