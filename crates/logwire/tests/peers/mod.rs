//! Test support: real peers (HAProxy) and the logwire binary as child processes, on loopback only,
//! in a temp dir. Everything is bounded in time; children are killed on drop.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const LOGWIRE: &str = env!("CARGO_BIN_EXE_logwire");

/// Fails the test (never skips) when a peer program is missing.
pub fn require_program(name: &str, install: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/sbin"]) {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not installed; this test needs the real peer. Install it with `{install}` (or run ./scripts/test.sh, which installs every peer).");
}

/// A free loopback port (bound then released; good enough for tests run in sequence per port).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub spop_port: u16,
}

impl TestEnv {
    pub fn new(_name: &str) -> Self {
        TestEnv { dir: tempfile::tempdir().unwrap(), spop_port: free_port() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, content: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }

    pub fn db(&self) -> PathBuf {
        self.path("logwire.db")
    }

    /// `logwire serve` on the test's SPOP port; returns once it says it listens.
    pub fn start_logwire(&self, extra: &[&str]) -> LogwireProc {
        let addr = format!("127.0.0.1:{}", self.spop_port);
        let mut child = Command::new(LOGWIRE)
            .args(["serve", "--db", self.db().to_str().unwrap(), "--spop", &addr])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start logwire");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = child.kill();
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).ok();
            panic!("logwire serve did not start: {err}");
        }
        LogwireProc { child: Some(child), db: self.db(), stdout: Some(reader) }
    }

    /// HAProxy with the fixture's configuration, ports and options set by the test.
    pub fn start_haproxy(&self, setup: &HaproxySetup) -> HaproxyProc {
        let haproxy = require_program("haproxy", "apt-get install -y haproxy");
        let http_port = free_port();
        let cfg = haproxy_cfg(http_port, self.spop_port, setup);
        self.write("haproxy.cfg", &cfg);
        self.write("spoe.conf", &spoe_conf(setup));
        let log = std::fs::File::create(self.path("haproxy.log")).unwrap();
        let check =
            Command::new(&haproxy).args(["-c", "-f", "haproxy.cfg"]).current_dir(self.dir.path()).output().unwrap();
        assert!(check.status.success(), "haproxy -c failed:\n{}", String::from_utf8_lossy(&check.stderr));
        let child = Command::new(&haproxy)
            .args(["-db", "-f", "haproxy.cfg"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        HaproxyProc {
            child: Some(child),
            http: SocketAddr::from(([127, 0, 0, 1], http_port)),
            log: self.path("haproxy.log"),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct HaproxySetup {
    /// `max-frame-size` in spoe.conf (to force fragmentation).
    pub max_frame_size: Option<u32>,
    /// Health-check interval (`option spop-check`); default 5 s as in the fixture.
    pub check_inter_ms: Option<u64>,
    /// Deny with 503 when the SPOE processing failed (`set-on-error err`).
    pub fail_closed: bool,
}

fn haproxy_cfg(http_port: u16, spop_port: u16, s: &HaproxySetup) -> String {
    format!(
        r#"global
    log stderr format short local0 info
    nbthread 2
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client  30s
    timeout server  30s
frontend fe_http
    bind 127.0.0.1:{http_port}
    filter spoe engine spop-test config spoe.conf
    {fail_closed}
    http-request deny deny_status 403 if {{ var(txn.spoa.block) -m found }}
    http-after-response set-header x-spoa-score %[var(txn.spoa.score)] if {{ var(txn.spoa.score) -m found }}
    http-after-response set-header x-spoe-ms   %[var(txn.spoa.ptime)]  if {{ var(txn.spoa.ptime) -m found }}
    default_backend be_app
backend be_app
    http-request return status 200 content-type text/plain string "ok\n"
backend spoe-agents
    mode tcp
    balance roundrobin
    timeout connect 5s
    timeout server  3m
    option spop-check
    server agent1 127.0.0.1:{spop_port} check inter {inter}
"#,
        fail_closed =
            if s.fail_closed { "http-request deny deny_status 503 if { var(txn.spoa.err) -m found }" } else { "" },
        inter = s.check_inter_ms.unwrap_or(5000),
    )
}

fn spoe_conf(s: &HaproxySetup) -> String {
    format!(
        r#"[spop-test]
spoe-agent spop-agent
    messages   check-request
    option     var-prefix spoa
    option     set-on-error err
    option     set-process-time ptime
    register-var-names block score
    option     pipelining
    {mfs}
    timeout hello      2s
    timeout idle       2m
    timeout processing 500ms
    use-backend spoe-agents
    log global
spoe-message check-request
    args ip=src port=src_port method=method path=path host=req.hdr(host) ua=req.hdr(user-agent) hdrs=req.hdrs_bin
    event on-frontend-http-request
"#,
        mfs = s.max_frame_size.map(|m| format!("max-frame-size {m}")).unwrap_or_default()
    )
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub struct LogwireProc {
    child: Option<Child>,
    pub db: PathBuf,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl LogwireProc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM, expect a flush and exit 0; returns the store path.
    pub fn stop(self) -> PathBuf {
        self.stop_with_output().0
    }

    /// [`LogwireProc::stop`], also returning what `serve` printed.
    pub fn stop_with_output(mut self) -> (PathBuf, String) {
        let mut child = self.child.take().unwrap();
        sigterm(&child);
        let status = wait_timeout(&mut child, Duration::from_secs(15));
        let out = self.stdout.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            e.read_to_string(&mut err).ok();
        }
        match status {
            Some(st) => assert!(st.success(), "logwire serve exited with {st}\nstdout:\n{out}\nstderr:\n{err}"),
            None => {
                let _ = child.kill();
                panic!("logwire serve did not exit within 15 s of SIGTERM\n{out}\n{err}");
            }
        }
        assert!(out.contains("flushing"), "{out}");
        (self.db.clone(), out)
    }
}

impl Drop for LogwireProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct HaproxyProc {
    child: Option<Child>,
    pub http: SocketAddr,
    log: PathBuf,
}

impl HaproxyProc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Waits until the frontend accepts connections (bounded).
    pub fn wait_http_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if TcpStream::connect(self.http).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("haproxy did not listen on {}: {}", self.http, std::fs::read_to_string(&self.log).unwrap_or_default());
    }

    /// Stops HAProxy and returns its log.
    pub fn stop(mut self) -> String {
        if let Some(mut c) = self.child.take() {
            sigterm(&c);
            if wait_timeout(&mut c, Duration::from_secs(5)).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HaproxyProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 GET with `Connection: close` (bounded by a 10 s timeout).
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to haproxy");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    BufReader::new(s).read_to_string(&mut raw).expect("read the HTTP response");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    HttpResponse { status, headers, body: body.to_string() }
}

/// Runs `logwire query --json` (the real CLI) and parses the rows.
pub fn query_json(db: &Path, sql: &str) -> Vec<Value> {
    let out = Command::new(LOGWIRE).args(["query", "--db", db.to_str().unwrap(), "--json", sql]).output().unwrap();
    assert!(out.status.success(), "logwire query failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
