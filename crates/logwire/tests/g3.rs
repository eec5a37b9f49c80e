//! g3proxy logs into `logwire serve`, over real sockets on loopback:
//! - Debian's `rsyslog`, configured by the test (its own config and work dir in a temp dir, foreground,
//!   unprivileged ports), relays the real g3proxy captures to logwire over TCP with RFC 6587 octet counting,
//!   and over UDP;
//! - the captures replayed as g3proxy sent them: UDP datagrams, a unix datagram socket, the fluentd stream;
//! - `logwire g3 import` of every capture, with garbage lines skipped and counted;
//! - fluentd forward acknowledgements over a real TCP connection: no ack before the store commit, and after
//!   a kill -9 of logwire and a restart every acknowledged record is there;
//! - garbage on every listener is counted and the listeners keep going;
//! - a TCP sender faster than a stalled store is held back by TCP, and nothing is lost;
//! - a fluentd client written by others (Node.js `fluent-logger` from npm) with the shared_key handshake and
//!   acks, in all three event modes.
//!
//! These tests fail (never skip) when a peer is missing: `scripts/peers/g3.sh` installs rsyslog, nodejs/npm
//! and fluent-logger.

mod peers;

use logwire_g3::emit::{encode_fluentd, LogBuilder};
use logwire_g3::EventTime;
use peers::*;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/g3").join(rel)
}

/// The 27 datagrams of a syslog capture (the receiver's `\n` removed).
fn datagrams(rel: &str) -> Vec<Vec<u8>> {
    let p = fixture(rel);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()));
    let grams: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    assert_eq!(grams.len(), 27);
    grams
}

fn count(db: &Path, sql: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    query_json(db, sql).first().and_then(|r| r.as_object()?.values().next()?.as_i64()).unwrap_or(0)
}

/// Wait (bounded) until `sql` counts at least `want`; returns the last count.
fn wait_count(db: &Path, sql: &str, want: i64, limit: Duration) -> i64 {
    let start = Instant::now();
    loop {
        let n = count(db, sql);
        if n >= want || start.elapsed() > limit {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

const G3_LOGS: &str = "SELECT COUNT(*) AS n FROM records WHERE source = 'g3' AND kind != 'span_start'";

/// What every capture gives in the store: 27 records of which 11 finished tasks with their spans.
fn assert_capture_stored(db: &Path) {
    assert_eq!(count(db, G3_LOGS), 27);
    let spans = query_json(db, "SELECT trace_id, duration_ns, attrs FROM spans WHERE source = 'g3'");
    assert_eq!(spans.len(), 11);
    for s in &spans {
        assert_eq!(s["duration_ns"], s["attrs"]["total_time"], "{s}");
        assert!(s["attrs"]["start_at"].is_i64(), "start_at typed: {s}");
        assert!(s["attrs"]["c_rd_bytes"].is_u64(), "counters typed: {s}");
    }
    let by_type = query_json(db, "SELECT task_type, tasks FROM g3_stats_by_task_type ORDER BY task_type");
    let got: Vec<(String, i64)> =
        by_type.iter().map(|r| (r["task_type"].as_str().unwrap().to_string(), r["tasks"].as_i64().unwrap())).collect();
    assert_eq!(
        got,
        [("HttpForward".into(), 7), ("TcpConnect".into(), 2), ("UdpAssociate".into(), 1), ("UdpConnect".into(), 1)]
    );
    let escape = query_json(
        db,
        "SELECT t.reason FROM events AS e JOIN g3_tasks AS t ON t.task_id = e.trace_id WHERE e.name LIKE 'g3:escape:%'",
    );
    assert_eq!(escape.len(), 1);
    assert_eq!(escape[0]["reason"], "UpstreamNotConnected");
}

/// A foreground rsyslogd with its own config, pid file and work dir in `dir`.
struct Rsyslog {
    child: Child,
    udp_port: u16,
}

impl Rsyslog {
    fn start(dir: &Path, forward: &str) -> Rsyslog {
        let rsyslogd = require_program("rsyslogd", "apt-get install -y rsyslog");
        let udp_port = free_udp_port();
        let work = dir.join("rsyslog-work");
        std::fs::create_dir_all(&work).unwrap();
        let conf = format!(
            "global(workDirectory=\"{work}\" maxMessageSize=\"64k\")\n\
             module(load=\"imudp\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp_port}\")\n\
             {forward}\n",
            work = work.display()
        );
        let conf_path = dir.join("rsyslog.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let check = Command::new(&rsyslogd).args(["-N1", "-f"]).arg(&conf_path).output().unwrap();
        assert!(check.status.success(), "rsyslogd -N1 rejected the config: {}", String::from_utf8_lossy(&check.stderr));
        let child = Command::new(&rsyslogd)
            .args(["-n", "-f"])
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rsyslog.err")).unwrap())
            .spawn()
            .expect("start rsyslogd");
        wait_udp_listening(udp_port);
        Rsyslog { child, udp_port }
    }

    fn send(&self, grams: &[Vec<u8>]) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        for g in grams {
            socket.send_to(g, ("127.0.0.1", self.udp_port)).unwrap();
            // imudp reads in batches; a short pause keeps a loopback burst from overflowing its buffer.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait (bounded) until TCP 127.0.0.1:`port` accepts: `serve` prints the SPOP line before the g3
/// listeners are up.
fn wait_tcp(port: u16) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on TCP 127.0.0.1:{port} after 10 s");
}

fn wait_path(path: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) && !path.exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(path.exists(), "{} never appeared", path.display());
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Wait (bounded) until a UDP socket is bound on 127.0.0.1:`port` (from /proc/net/udp).
fn wait_udp_listening(port: u16) {
    let needle = format!("0100007F:{port:04X}");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if std::fs::read_to_string("/proc/net/udp").unwrap_or_default().contains(&needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on UDP 127.0.0.1:{port} after 10 s");
}

#[test]
fn rsyslog_relays_rfc5424_over_tcp_with_octet_counting() {
    let env = TestEnv::new("g3-rsyslog-tcp");
    let tcp = free_port();
    let logwire = env.start_logwire(&["--syslog-tcp", &format!("127.0.0.1:{tcp}")]);
    wait_tcp(tcp);
    let forward = format!(
        "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{tcp}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" \
         template=\"RSYSLOG_SyslogProtocol23Format\")"
    );
    let rsyslog = Rsyslog::start(env.dir.path(), &forward);
    rsyslog.send(&datagrams("rfc5424/syslog-udp.raw"));
    let n = wait_count(&logwire.db, G3_LOGS, 27, Duration::from_secs(20));
    drop(rsyslog);
    let db = logwire.stop();
    assert_eq!(
        n,
        27,
        "rsyslog relayed every record over TCP: {}",
        std::fs::read_to_string(env.path("rsyslog.err")).unwrap_or_default()
    );
    assert_capture_stored(&db);
    // Still typed after the relay: durations in ns, the user, the failing upstream's status.
    let alice = query_json(&db, "SELECT * FROM g3_tasks WHERE user = 'alice'");
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0]["server"], "http-auth");
    assert!(alice[0]["total_ns"].as_i64().is_some_and(|t| t > 0));
}

#[test]
fn a_tcp_sender_faster_than_the_store_is_held_back_and_loses_nothing() {
    let env = TestEnv::new("g3-held-back");
    let tcp = free_port();
    let logwire = env.start_logwire(&["--syslog-tcp", &format!("127.0.0.1:{tcp}"), "--queue", "4096"]);
    wait_tcp(tcp);
    // 2,000 copies of the capture, octet counted: 54,000 records, far more than the queue holds.
    let rounds = 2_000;
    let mut stream = Vec::new();
    for _ in 0..rounds {
        for g in datagrams("rfc5424/syslog-udp.raw") {
            logwire_g3::framing::encode_octet_counted(&g, &mut stream);
        }
    }
    // The store stalls: another connection holds its write lock (well inside the writer's 5 s busy timeout).
    let blocker = rusqlite::Connection::open(&logwire.db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let sender = std::thread::spawn(move || {
        let mut conn = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        conn.write_all(&stream).unwrap();
    });
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(!sender.is_finished(), "TCP should hold the sender back while the store is stalled");
    blocker.execute_batch("ROLLBACK").unwrap();
    sender.join().unwrap();
    let want = rounds * 27;
    let n = wait_count(&logwire.db, G3_LOGS, want, Duration::from_secs(60));
    let (db, out) = logwire.stop_with_output();
    assert_eq!(n, want, "every record stored:\n{out}");
    assert_eq!(count(&db, "SELECT COALESCE(SUM(dropped), 0) AS n FROM drops"), 0, "{out}");
    let held_back: u64 = out
        .lines()
        .find_map(|l| l.split(", ").find_map(|part| part.strip_suffix(" reads held back for the store")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no held-back count in the summary:\n{out}"));
    assert!(held_back > 0, "{out}");
}

#[test]
fn g3_import_loads_every_capture_and_skips_garbage() {
    let env = TestEnv::new("g3-import");
    let db = env.db();
    // The RFC 5424 capture with two garbage lines in the middle.
    let mut lines = datagrams("rfc5424/syslog-udp.raw");
    lines.insert(10, b"<29>1 - - - - - [unterminated".to_vec());
    lines.insert(20, b"not syslog at all".to_vec());
    let dirty = env.path("dirty.raw");
    std::fs::write(&dirty, lines.join(&b"\n"[..])).unwrap();
    let files = [dirty, fixture("rfc3164/syslog-udp.raw"), fixture("fluentd/fluentd-forward.bin")];
    let out = Command::new(LOGWIRE).args(["g3", "import", "--db", db.to_str().unwrap()]).args(&files).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("dirty.raw: 27 g3proxy records imported, 2 skipped"), "{stdout}");
    assert!(stdout.contains("syslog-udp.raw: 27 g3proxy records imported, 0 skipped"), "{stdout}");
    assert!(stdout.contains("fluentd-forward.bin: 27 g3proxy records imported, 0 skipped"), "{stdout}");
    assert!(stdout.contains("81 records imported, 2 skipped"), "{stdout}");
    assert_eq!(stderr.matches("skipped a record").count(), 2, "{stderr}");
    assert_eq!(count(&db, G3_LOGS), 3 * 27);
    // The same tasks three times over: every finished task is a span per import.
    assert_eq!(count(&db, "SELECT COUNT(*) AS n FROM spans WHERE source = 'g3'"), 3 * 11);
    let stats = Command::new(LOGWIRE)
        .args(["g3", "stats", "--db", db.to_str().unwrap(), "--by", "task_type"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&stats.stdout);
    assert!(stats.status.success() && text.contains("HttpForward"), "{text}");
}

#[test]
fn rsyslog_relays_rfc3164_over_udp() {
    let env = TestEnv::new("g3-rsyslog-udp");
    let udp = free_udp_port();
    let logwire = env.start_logwire(&["--syslog-udp", &format!("127.0.0.1:{udp}")]);
    wait_udp_listening(udp);
    let forward = format!("action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{udp}\" protocol=\"udp\")");
    let rsyslog = Rsyslog::start(env.dir.path(), &forward);
    rsyslog.send(&datagrams("rfc3164/syslog-udp.raw"));
    let n = wait_count(&logwire.db, G3_LOGS, 27, Duration::from_secs(20));
    drop(rsyslog);
    let db = logwire.stop();
    assert_eq!(n, 27, "rsyslog relayed every record over UDP");
    assert_capture_stored(&db);
    // rsyslog's traditional forward format adds a hostname; the body is g3proxy's, typed.
    let reasons = query_json(&db, "SELECT reason, tasks FROM g3_stats_by_reason ORDER BY reason");
    let got: Vec<(String, i64)> =
        reasons.iter().map(|r| (r["reason"].as_str().unwrap().to_string(), r["tasks"].as_i64().unwrap())).collect();
    assert_eq!(
        got,
        [
            ("ClosedByClient".into(), 2),
            ("Finished".into(), 7),
            ("InternalResolverError".into(), 1),
            ("UpstreamNotConnected".into(), 1)
        ]
    );
}

#[test]
fn captures_replayed_on_udp_unix_and_fluentd_listeners_with_garbage_in_between() {
    let env = TestEnv::new("g3-replay");
    let (udp, fluentd) = (free_udp_port(), free_port());
    let unix = env.path("g3.sock");
    let logwire = env.start_logwire(&[
        "--syslog-udp",
        &format!("127.0.0.1:{udp}"),
        "--syslog-unix",
        unix.to_str().unwrap(),
        "--fluentd",
        &format!("127.0.0.1:{fluentd}"),
    ]);
    wait_udp_listening(udp);
    wait_path(&unix);
    wait_tcp(fluentd);
    // UDP: garbage first, then the RFC 5424 capture as g3proxy sent it.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(b"\xff\xfenot syslog", ("127.0.0.1", udp)).unwrap();
    socket.send_to(b"<29>1 - - - - - [unterminated", ("127.0.0.1", udp)).unwrap();
    for g in datagrams("rfc5424/syslog-udp.raw") {
        socket.send_to(&g, ("127.0.0.1", udp)).unwrap();
    }
    // Unix datagram (g3proxy's default transport): the RFC 3164 capture.
    let unix_socket = std::os::unix::net::UnixDatagram::unbound().unwrap();
    unix_socket.send_to(b"<29>garbage", &unix).unwrap();
    for g in datagrams("rfc3164/syslog-udp.raw") {
        unix_socket.send_to(&g, &unix).unwrap();
    }
    // fluentd: a connection with garbage is closed; the capture on a new connection is stored.
    let mut bad = TcpStream::connect(("127.0.0.1", fluentd)).unwrap();
    bad.write_all(b"\xc1\xc1\xc1").unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = Vec::new();
    let _ = bad.read_to_end(&mut sink);
    let mut good = TcpStream::connect(("127.0.0.1", fluentd)).unwrap();
    good.write_all(&std::fs::read(fixture("fluentd/fluentd-forward.bin")).unwrap()).unwrap();
    drop(good);
    let n = wait_count(&logwire.db, G3_LOGS, 81, Duration::from_secs(20));
    // fluentd's UDP heartbeat is answered on the forward port.
    let hb = UdpSocket::bind("127.0.0.1:0").unwrap();
    hb.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    hb.send_to(b"", ("127.0.0.1", fluentd)).unwrap();
    let mut reply = [0u8; 4];
    let (len, _) = hb.recv_from(&mut reply).expect("heartbeat answered");
    assert_eq!(&reply[..len], b"\0");
    let db = logwire.stop();
    assert_eq!(n, 81, "27 records per capture, the garbage before them did not stop any listener");
    let per_task_type = query_json(
        &db,
        "SELECT json_extract(attrs, '$.task_type') AS t, COUNT(*) AS n FROM records \
         WHERE kind = 'span_end' AND source = 'g3' GROUP BY t ORDER BY t",
    );
    let got: Vec<i64> = per_task_type.iter().map(|r| r["n"].as_i64().unwrap()).collect();
    assert_eq!(got, [21, 6, 3, 3], "{per_task_type:?}");
}

/// One forward message with a `chunk`, carrying one Finished task record with a unique task id.
fn chunk_message(i: u32) -> (Vec<u8>, String) {
    let task_id = format!("{i:032x}");
    let log = LogBuilder::new("Task")
        .str("server_name", "ack-test")
        .str("server_type", "HttpProxy")
        .str("task_type", "TcpConnect")
        .str("task_id", &task_id)
        .str("task_event", "Finished")
        .str("stage", "Finished")
        .time("start_at", 1_795_247_143_000_000_000 + i64::from(i) * 1_000)
        .str("reason", "Finished")
        .duration("total_time", Duration::from_micros(100 + u64::from(i)))
        .u64("c_rd_bytes", u64::from(i))
        .msg("finished");
    let chunk = format!("chunk-{i}");
    (encode_fluentd(&log, "g3proxy.Task", EventTime { secs: 1_795_247_143, nanos: i }, Some(&chunk)), chunk)
}

/// Read one `{"ack": chunk}` (bounded by the stream's read timeout).
fn read_ack(stream: &mut TcpStream) -> std::io::Result<String> {
    logwire_g3::forward::read_ack(stream)
}

#[test]
fn fluentd_ack_waits_for_the_store_commit() {
    let env = TestEnv::new("g3-ack");
    let fluentd = free_port();
    let logwire = env.start_logwire(&["--fluentd", &format!("127.0.0.1:{fluentd}")]);
    wait_tcp(fluentd);
    // Hold the store's write lock: the writer cannot commit until it is released.
    let lock = rusqlite::Connection::open(&logwire.db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", fluentd)).unwrap();
    let (message, chunk) = chunk_message(1);
    stream.write_all(&message).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
        other => panic!("an ack (or close) came while the record could not be committed: {other:?}"),
    }
    let stored: i64 = lock.query_row("SELECT COUNT(*) FROM records WHERE source = 'g3'", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 0);
    lock.execute_batch("ROLLBACK").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(read_ack(&mut stream).unwrap(), chunk, "the ack comes once the lock is gone");
    // The ack came after the commit: the record is readable now, by another connection.
    assert_eq!(count(&logwire.db, "SELECT COUNT(*) AS n FROM g3_tasks WHERE server = 'ack-test'"), 1);
    drop(stream);
    logwire.stop();
}

#[test]
fn every_acknowledged_record_survives_kill_9() {
    let env = TestEnv::new("g3-kill9");
    let fluentd = free_port();
    let args = ["--fluentd".to_string(), format!("127.0.0.1:{fluentd}")];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let logwire = env.start_logwire(&args);
    wait_tcp(fluentd);
    let mut stream = TcpStream::connect(("127.0.0.1", fluentd)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = stream.try_clone().unwrap();
    // Send in the background; read acks here; kill logwire -9 after 300 of 2000.
    let sender = std::thread::spawn(move || {
        for i in 0..2000 {
            if stream.write_all(&chunk_message(i).0).is_err() {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    while acked.len() < 300 {
        acked.push(read_ack(&mut reader).expect("ack"));
    }
    drop(logwire); // SIGKILL, no flush
                   // Acks that were already on their way count as acknowledged too.
    reader.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    while let Ok(chunk) = read_ack(&mut reader) {
        acked.push(chunk);
    }
    let _ = sender.join();
    let restarted = env.start_logwire(&args);
    wait_tcp(fluentd);
    let db = restarted.stop();
    let stored: std::collections::HashSet<i64> = query_json(
        &db,
        "SELECT json_extract(attrs, '$.c_rd_bytes') AS i FROM records WHERE kind = 'span_end' AND source = 'g3'",
    )
    .iter()
    .map(|r| r["i"].as_i64().unwrap())
    .collect();
    assert!(acked.len() >= 300);
    for chunk in &acked {
        let i: i64 = chunk.trim_start_matches("chunk-").parse().unwrap();
        assert!(stored.contains(&i), "{chunk} was acknowledged but is not in the store after kill -9");
    }
    assert!(acked.iter().all(|c| c.starts_with("chunk-")));
}

/// The next HELO / PONG / ack from a blocking connection; `None` once the server closed it.
fn next_server_message(stream: &mut TcpStream) -> Option<logwire_g3::forward::ServerMessage> {
    match logwire_g3::forward::read_server_message(stream) {
        Ok(m) => Some(m),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) => None,
        Err(e) => panic!("reading from logwire: {e}"),
    }
}

/// `logwire serve --fluentd --fluentd-shared-key`, byte by byte with logwire's own client side of the Forward
/// protocol v1 (the real client is in `a_real_fluentd_client_with_shared_key_and_acks`): a client with the
/// key gets a proven PONG and its chunk acked and stored; a wrong key gets a failed PONG and a closed
/// connection.
#[test]
fn fluentd_shared_key_handshake_through_serve() {
    use logwire_g3::forward::{ClientHandshake, ServerMessage};
    let env = TestEnv::new("g3-shared-key");
    let fluentd = free_port();
    let addr = format!("127.0.0.1:{fluentd}");
    let logwire = env.start_logwire(&[
        "--fluentd",
        &addr,
        "--fluentd-shared-key",
        "k3y",
        "--fluentd-hostname",
        "logwire-test-host",
    ]);
    wait_tcp(fluentd);
    let client = |key: &str| ClientHandshake {
        shared_key: key.into(),
        hostname: "g3-capture-host".into(),
        salt: b"salt-from-client".to_vec(),
        username: String::new(),
        password: String::new(),
    };
    for (key, accepted) in [("wrong", false), ("k3y", true)] {
        let mut stream = TcpStream::connect(("127.0.0.1", fluentd)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let Some(ServerMessage::Helo { nonce, user_auth_salt, .. }) = next_server_message(&mut stream) else {
            panic!("no HELO from logwire")
        };
        stream.write_all(&client(key).ping(&nonce, &user_auth_salt)).unwrap();
        let pong = next_server_message(&mut stream).expect("a PONG");
        let (message, chunk) = chunk_message(if accepted { 7 } else { 8 });
        if accepted {
            assert_eq!(client(key).check_pong(&nonce, &pong).unwrap(), "logwire-test-host");
            stream.write_all(&message).unwrap();
            assert_eq!(next_server_message(&mut stream), Some(ServerMessage::Ack(chunk)));
        } else {
            assert!(matches!(&pong, ServerMessage::Pong { ok: false, .. }), "{pong:?}");
            let _ = stream.write_all(&message);
            assert_eq!(next_server_message(&mut stream), None, "closed after a refused handshake");
        }
    }
    let db = logwire.stop();
    let stored = query_json(
        &db,
        "SELECT json_extract(attrs, '$.c_rd_bytes') AS i FROM records WHERE kind = 'span_end' AND source = 'g3'",
    );
    let stored: Vec<i64> = stored.iter().map(|r| r["i"].as_i64().unwrap()).collect();
    assert_eq!(stored, [7], "only the authenticated client's record is stored");
}

/// The Node.js `fluent-logger` client (installed by scripts/peers/g3.sh into scripts/peers/.node): a fluentd
/// forward implementation written by others. It sends g3proxy task records, asks for an ack of every chunk,
/// and with `key` does the shared_key handshake. Prints `acked N` and exits 0 once every record is acked.
const FLUENT_LOGGER_CLIENT: &str = r#"
const logger = require('fluent-logger');
const [port, key, mode, count, first] = process.argv.slice(2);
const n = Number(count);
const sender = logger.createFluentSender('g3proxy', {
  host: '127.0.0.1', port: Number(port), timeout: 5.0, enableReconnect: false,
  requireAckResponse: true, ackResponseTimeout: 10000, eventMode: mode,
  security: { clientHostname: 'node-fluent-logger', sharedKey: key },
  internalLogger: { info() {}, error(m) { console.error(String(m)); } },
});
sender.on('error', (e) => { console.error('error: ' + e); process.exit(2); });
let acked = 0;
for (let i = 0; i < n; i++) {
  const id = (Number(first) + i).toString(16).padStart(8, '0') + 'e57f11f1a62b53652a7bde5d';
  const task = {
    server_name: 'http', server_type: 'HttpProxy', log_type: 'Task', task_type: 'HttpForward',
    task_id: id, task_event: 'Finished', stage: 'Finished', reason: 'Finished',
    start_at: '2026-11-21T07:46:22.366078Z', total_time: '1.666ms', wait_time: '74.501µs',
    c_rd_bytes: Number(first) + i, c_wr_bytes: 233, client_addr: '127.0.0.1:52446', user: null,
    msg: 'finished',
  };
  sender.emit('Task', task, logger.EventTime.now(), (err) => {
    if (err) { console.error('not acked: ' + err); process.exit(3); }
    if (++acked === n) { console.log('acked ' + acked); process.exit(0); }
  });
}
setTimeout(() => { console.error('timed out with ' + acked + ' acked'); process.exit(4); }, 20000);
"#;

/// Runs the Node.js client; returns its exit code and output.
fn fluent_logger(dir: &Path, port: u16, key: &str, mode: &str, count: u32, first: u32) -> (i32, String) {
    let node = require_program("node", "apt-get install -y nodejs npm");
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers/.node/node_modules");
    assert!(
        modules.join("fluent-logger/package.json").exists(),
        "the fluent-logger npm package is missing: run scripts/peers/g3.sh (npm install fluent-logger@3.4.1)"
    );
    let script = dir.join("fluent-client.js");
    std::fs::write(&script, FLUENT_LOGGER_CLIENT).unwrap();
    let out = Command::new(node)
        .arg(&script)
        .args([&port.to_string(), key, mode, &count.to_string(), &first.to_string()])
        .env("NODE_PATH", &modules)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A fluentd client written by others (Node.js `fluent-logger` 3.4.1) against `logwire serve --fluentd
/// --fluentd-shared-key`: the handshake, an ack for every chunk in the Message, PackedForward and
/// CompressedPackedForward modes, each acked record already in the store when its ack arrives, and a
/// client with the wrong key refused with nothing stored.
#[test]
fn a_real_fluentd_client_with_shared_key_and_acks() {
    let env = TestEnv::new("g3-fluent-logger");
    let fluentd = free_port();
    let addr = format!("127.0.0.1:{fluentd}");
    let logwire = env.start_logwire(&["--fluentd", &addr, "--fluentd-shared-key", "k3y"]);
    wait_tcp(fluentd);
    let tasks = "SELECT COUNT(*) AS n FROM spans WHERE source = 'g3' AND name = 'g3:task:HttpForward'";
    let mut expected = 0;
    for (i, mode) in ["Message", "PackedForward", "CompressedPackedForward"].into_iter().enumerate() {
        let first = 1000 * (i as u32 + 1);
        let (code, out) = fluent_logger(&env.path(""), fluentd, "k3y", mode, 20, first);
        assert_eq!(code, 0, "{mode}: {out}");
        assert!(out.contains("acked 20"), "{mode}: {out}");
        // Acked means committed: every record is there the moment the client has its acks.
        expected += 20;
        assert_eq!(count(&logwire.db, tasks), expected, "{mode}: acked records missing from the store");
        let typed = count(
            &logwire.db,
            &format!(
                "SELECT COUNT(*) FROM spans WHERE source = 'g3' AND json_extract(attrs, '$.c_rd_bytes') >= {first} \
                 AND json_extract(attrs, '$.c_rd_bytes') < {} AND duration_ns = 1666000 \
                 AND json_type(attrs, '$.wait_time') = 'integer' AND json_type(attrs, '$.start_at') = 'integer'",
                first + 20
            ),
        );
        assert_eq!(typed, 20, "{mode}: fields typed");
    }
    let (code, out) = fluent_logger(&env.path(""), fluentd, "wrong", "Message", 5, 9000);
    assert_ne!(code, 0, "a wrong shared key was accepted: {out}");
    // The client read logwire's PONG and found the authentication refused.
    assert!(out.contains("Authentication failed"), "{out}");
    assert!(!out.contains("acked"), "{out}");
    let db = logwire.stop();
    assert_eq!(count(&db, tasks), expected, "nothing from the refused client");
}
