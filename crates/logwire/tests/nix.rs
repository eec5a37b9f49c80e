//! Real peer: Debian's Nix 2.8 (`nix-bin`, protocol 1.34). `logwire serve --nix-socket … --nix-daemon SOCKET`
//! relays real `nix-build` / `nix build` runs and a small Rust client claiming protocol 1.19 or 1.25 to a
//! real `nix-daemon`; `logwire nix --nix-daemon-stdio -- …` does the same with a `nix-daemon --stdio` per
//! connection. The store must hold ops, the Build activity with its log lines, and the error in the right
//! form. No substituters, no sandbox (fixtures/nix/README.md).

mod peers;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use logwire_nix::handshake::{encode_client_magic, ClientHello, DaemonHello};
use logwire_nix::logger::{ErrorMessage, Message};
use logwire_nix::wire::{put_bool, put_bytes, put_bytes_list, put_u64, Limits, Reader};
use logwire_nix::ProtocolVersion;
use peers::{query_json, require_program, TestEnv};
use serde_json::Value;

const INSTALL: &str = "apt-get install -y nix-bin";
const NIX_CONFIG: &str = "substituters =\nsandbox = false\nexperimental-features = nix-command";

fn hello_nix() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/nix/hello.nix")
}

/// A derivation name no earlier run has built, so the daemon really builds it.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("lw-{tag}-{}-{nanos}", std::process::id())
}

/// Runs a Nix command with the test's configuration, bounded in time.
fn run_nix(program: &str, args: &[&str], relay: Option<&Path>) -> Output {
    run_nix_with_input(program, args, relay, None)
}

/// [`run_nix`] with `input` as the command's stdin (a file).
fn run_nix_with_input(program: &str, args: &[&str], relay: Option<&Path>, input: Option<&Path>) -> Output {
    let path = require_program(program, INSTALL);
    let mut cmd = Command::new(path);
    let stdin = match input {
        Some(file) => Stdio::from(std::fs::File::open(file).unwrap()),
        None => Stdio::null(),
    };
    cmd.args(args).env("NIX_CONFIG", NIX_CONFIG).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    match relay {
        Some(socket) => cmd.env("NIX_REMOTE", format!("unix://{}", socket.display())),
        None => cmd.env_remove("NIX_REMOTE"),
    };
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program} {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A real `nix-daemon` on a socket in the test's temp dir, killed on drop.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Relay {
    env: TestEnv,
    socket: PathBuf,
    logwire: peers::LogwireProc,
    _daemon: Daemon,
}

/// `nix-daemon` on its own socket and `logwire serve --nix-socket relay.sock --nix-daemon daemon.sock`
/// in front of it. (`logwire nix` below covers `--nix-daemon-stdio`.)
fn start_relay() -> Relay {
    let nix_daemon = require_program("nix-daemon", INSTALL);
    let env = TestEnv::new("nix");
    let daemon_socket = env.path("daemon.sock");
    let daemon = Daemon(
        Command::new(nix_daemon)
            .env("NIX_DAEMON_SOCKET_PATH", &daemon_socket)
            .env("NIX_CONFIG", NIX_CONFIG)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !daemon_socket.exists() {
        assert!(Instant::now() < deadline, "nix-daemon did not create {}", daemon_socket.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    let socket = env.path("relay.sock");
    let logwire = env.start_logwire(&[
        "--no-spop",
        "--nix-socket",
        socket.to_str().unwrap(),
        "--nix-daemon",
        daemon_socket.to_str().unwrap(),
    ]);
    Relay { env, socket, logwire, _daemon: daemon }
}

fn stop(relay: Relay) -> (TestEnv, PathBuf) {
    let db = relay.logwire.stop();
    (relay.env, db)
}

fn rows(db: &Path, sql: &str) -> Vec<Value> {
    query_json(db, sql)
}

fn assert_no_lost_sync(db: &Path) {
    let lost = rows(db, "SELECT body FROM events WHERE source = 'nix' AND name = 'nix:out_of_sync'");
    assert!(lost.is_empty(), "{lost:?}");
}

/// The Build span of `name` (trace, span, parent) and its log lines.
fn build_span(db: &Path, name: &str) -> (String, Option<String>, Vec<String>) {
    let spans = rows(
        db,
        &format!(
            "SELECT trace_id, span_id, parent_id, end_ns FROM spans WHERE source = 'nix' AND name = 'nix:Build' \
             AND json_extract(attrs, '$.drv_path') LIKE '%-hello-log-{name}.drv'"
        ),
    );
    assert_eq!(spans.len(), 1, "{spans:?}");
    let trace_id = spans[0]["trace_id"].as_str().unwrap().to_string();
    let span_id = spans[0]["span_id"].as_str().unwrap().to_string();
    assert!(!spans[0]["end_ns"].is_null(), "Build span not ended: {spans:?}");
    let parent = spans[0]["parent_id"].as_str().map(str::to_string);
    let lines = rows(
        db,
        &format!(
            "SELECT body FROM records WHERE source = 'nix' AND name = 'nix:result:BuildLogLine' AND trace_id = '{trace_id}' \
             AND span_id = '{span_id}' ORDER BY id"
        ),
    )
    .iter()
    // Lines that arrive close together are one event, its body the lines joined by '\n'.
    .flat_map(|r| r["body"].as_str().unwrap().split('\n').map(str::to_string).collect::<Vec<_>>())
    .collect();
    (trace_id, parent, lines)
}

#[test]
fn nix_build_success_and_failure_through_the_relay() {
    let relay = start_relay();
    let ok = unique("ok");
    let failed = unique("fail");
    let hello = hello_nix();
    let hello = hello.to_str().unwrap();

    let out = run_nix("nix-build", &[hello, "--argstr", "n", &ok, "--no-out-link"], Some(&relay.socket));
    assert!(out.status.success(), "nix-build failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("-hello-log-{ok}")));

    let out = run_nix(
        "nix-build",
        &[hello, "--argstr", "n", &failed, "--arg", "fail", "true", "--no-out-link"],
        Some(&relay.socket),
    );
    assert!(!out.status.success(), "the failing build succeeded");
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed with exit code 3"));

    let (_env, db) = stop(relay);
    assert_no_lost_sync(&db);

    let (trace_id, parent, lines) = build_span(&db, &ok);
    assert_eq!(lines.first().map(String::as_str), Some("line one from builder"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "line two on stderr"), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("no trailing newline"), "{lines:?}");
    // Daemon activities have parent 0: the Build span hangs under the BuildPaths op that caused it.
    let parent = parent.expect("Build span without parent");
    let op = rows(&db, &format!("SELECT name, duration_ns FROM spans WHERE trace_id = '{trace_id}' AND span_id = '{parent}' AND name LIKE 'nix:op:%'"));
    assert_eq!(op.len(), 1, "{op:?}");
    assert_eq!(op[0]["name"], "nix:op:BuildPaths");
    assert!(op[0]["duration_ns"].as_i64().unwrap() > 0, "{op:?}");

    let (_, _, failed_lines) = build_span(&db, &failed);
    assert!(failed_lines.iter().any(|l| l == "progress 4"), "{failed_lines:?}");
    let errors = rows(
        &db,
        &format!(
            "SELECT level, body, json_extract(attrs, '$.traces') AS traces FROM events WHERE source = 'nix' \
             AND name = 'nix:error' AND body LIKE '%hello-log-{failed}.drv%'"
        ),
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["level"], "error");
    assert!(errors[0]["body"].as_str().unwrap().contains("failed with exit code 3"));
    // The structured (≥ 1.26) form: traces present (empty), no legacy exit status.
    assert_eq!(errors[0]["traces"], "[]");

    // Every op of both connections was framed and ended.
    let open = rows(&db, "SELECT name FROM spans WHERE source = 'nix' AND name LIKE 'nix:op:%' AND end_ns IS NULL");
    assert!(open.is_empty(), "{open:?}");
    let ops: Vec<String> = rows(&db, "SELECT DISTINCT name FROM spans WHERE source = 'nix' AND name LIKE 'nix:op:%'")
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    for op in ["nix:op:SetOptions", "nix:op:AddToStore", "nix:op:QueryMissing", "nix:op:BuildPaths"] {
        assert!(ops.iter().any(|o| o == op), "{op} missing from {ops:?}");
    }
}

#[test]
fn new_cli_nix_build_through_the_relay() {
    let relay = start_relay();
    let name = unique("new");
    let hello = hello_nix();
    let out = run_nix(
        "nix",
        &["build", "-f", hello.to_str().unwrap(), "--argstr", "n", &name, "-L", "--no-link"],
        Some(&relay.socket),
    );
    assert!(out.status.success(), "nix build failed: {}", String::from_utf8_lossy(&out.stderr));
    let (_env, db) = stop(relay);
    assert_no_lost_sync(&db);
    let (_, _, lines) = build_span(&db, &name);
    assert!(lines.iter().any(|l| l == "progress 2"), "{lines:?}");
    let results = rows(
        &db,
        "SELECT json_extract(attrs, '$.build_results[0].status') AS status FROM spans WHERE source = 'nix' \
         AND name = 'nix:op:BuildPathsWithResults'",
    );
    assert!(results.iter().any(|r| r["status"] == "Built"), "{results:?}");
}

/// A minimal worker-protocol client claiming any version, to drive ops Nix 2.8's own client no longer sends
/// (or sends only at its own version) against the real daemon.
struct RawClient {
    stream: UnixStream,
    inbox: Vec<u8>,
    negotiated: ProtocolVersion,
}

impl RawClient {
    /// Connects and shakes hands like Nix 2.8's client (waiting for the daemon's magic and version before
    /// sending its own), then reads the startup log block.
    fn connect(socket: &Path, version: ProtocolVersion) -> Self {
        let stream = UnixStream::connect(socket).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut client = RawClient { stream, inbox: Vec::new(), negotiated: version };
        let mut out = Vec::new();
        encode_client_magic(&mut out);
        client.send(&out);
        let daemon = client.next(DaemonHello::decode_version);
        client.negotiated = ProtocolVersion::negotiate(version, daemon);
        out.clear();
        let hello = ClientHello::new(version);
        hello.encode_version(&mut out);
        hello.encode_rest(client.negotiated, &mut out);
        client.send(&out);
        let negotiated = client.negotiated;
        client.next(|r| DaemonHello::decode_rest(daemon, negotiated, r));
        client.block(&mut &[][..]);
        client
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads until `parse` succeeds on the buffered bytes; returns its value and drops what it used.
    fn next<T>(&mut self, mut parse: impl FnMut(&mut Reader<'_>) -> Result<T, logwire_nix::DecodeError>) -> T {
        loop {
            let mut r = Reader::new(&self.inbox, Limits::default());
            match parse(&mut r) {
                Ok(v) => {
                    let used = r.position();
                    self.inbox.drain(..used);
                    return v;
                }
                Err(e) if e.is_incomplete() => {
                    let mut buf = [0u8; 65536];
                    let n = self.stream.read(&mut buf).unwrap();
                    assert!(n > 0, "daemon closed the connection");
                    self.inbox.extend_from_slice(&buf[..n]);
                }
                Err(e) => panic!("bad bytes from the daemon: {e}"),
            }
        }
    }

    /// Reads one log block up to LAST or ERROR, answering each STDERR_READ from `source` as Nix's client
    /// does (a string of at most the length asked for; empty at the end).
    fn block(&mut self, source: &mut &[u8]) -> Vec<Message> {
        let negotiated = self.negotiated;
        let mut messages = Vec::new();
        loop {
            let m = self.next(|r| Message::decode(r, negotiated));
            if let Message::Read { desired_len } = m {
                let n = source.len().min(usize::try_from(desired_len).unwrap());
                let mut answer = Vec::new();
                put_bytes(&mut answer, &source[..n]);
                *source = &source[n..];
                self.send(&answer);
            }
            let done = m.ends_block();
            messages.push(m);
            if done {
                return messages;
            }
        }
    }
}

/// A minimal client that claims `version`: handshake, SetOptions, BuildPaths of `drv!out`; returns the
/// logger messages of the BuildPaths block.
fn old_client(socket: &Path, version: ProtocolVersion, drv: &str) -> Vec<Message> {
    let mut client = RawClient::connect(socket, version);
    let mut out = Vec::new();
    put_u64(&mut out, 19); // SetOptions, verbosity Info
    for v in [0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 0, 0] {
        put_u64(&mut out, v);
    }
    put_u64(&mut out, 0); // no overrides
    client.send(&out);
    client.block(&mut &[][..]);

    out.clear();
    put_u64(&mut out, 9); // BuildPaths
    put_bytes_list(&mut out, &[format!("{drv}!out")]);
    put_u64(&mut out, 0);
    client.send(&out);
    client.block(&mut &[][..])
}

#[test]
fn clients_claiming_1_19_and_1_25_are_decoded() {
    let relay = start_relay();
    let hello = hello_nix();
    let mut drvs = Vec::new();
    for minor in [19u8, 25] {
        let name = unique(&format!("v{minor}"));
        let out = run_nix(
            "nix-instantiate",
            &[hello.to_str().unwrap(), "--argstr", "n", &name, "--arg", "fail", "true"],
            Some(&relay.socket),
        );
        assert!(out.status.success(), "nix-instantiate failed: {}", String::from_utf8_lossy(&out.stderr));
        let drv = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let messages = old_client(&relay.socket, ProtocolVersion::new(1, minor), &drv);
        // What the client itself decoded: the error form of its version.
        match messages.last() {
            Some(Message::Error(ErrorMessage::Legacy { exit_status: 100, message })) => {
                assert!(String::from_utf8_lossy(message).contains("failed with exit code 3"));
            }
            other => panic!("1.{minor}: expected a legacy error, got {other:?}"),
        }
        let activities = messages.iter().filter(|m| matches!(m, Message::StartActivity(_))).count();
        assert_eq!(activities > 0, minor >= 20, "1.{minor}: {activities} activities");
        drvs.push((minor, name));
    }
    let (_env, db) = stop(relay);
    assert_no_lost_sync(&db);
    for (minor, name) in drvs {
        let errors = rows(
            &db,
            &format!(
                "SELECT trace_id, json_extract(attrs, '$.exit_status') AS exit_status FROM events WHERE source = 'nix' \
                 AND name = 'nix:error' AND body LIKE '%hello-log-{name}.drv%'"
            ),
        );
        assert_eq!(errors.len(), 1, "1.{minor}: {errors:?}");
        assert_eq!(errors[0]["exit_status"], 100, "1.{minor}");
        let trace = errors[0]["trace_id"].as_str().unwrap();
        let handshake = rows(
            &db,
            &format!("SELECT json_extract(attrs, '$.protocol') AS p FROM events WHERE trace_id = '{trace}' AND name = 'nix:handshake'"),
        );
        assert_eq!(handshake[0]["p"], format!("1.{minor}"));
        if minor < 20 {
            let logs = rows(
                &db,
                &format!(
                    "SELECT body FROM events WHERE trace_id = '{trace}' AND kind = 'log' AND body LIKE 'building %...'"
                ),
            );
            assert_eq!(logs.len(), 1, "{logs:?}");
            let builds =
                rows(&db, &format!("SELECT span_id FROM spans WHERE trace_id = '{trace}' AND name = 'nix:Build'"));
            assert!(builds.is_empty(), "1.19 got activities: {builds:?}");
        } else {
            let (_, _, lines) = build_span(&db, &name);
            assert!(lines.iter().any(|l| l == "line one from builder"), "{lines:?}");
        }
    }
}

/// `logwire nix [--db] --nix-daemon-stdio -- <command…>`, bounded in time.
fn logwire_nix(db: &Path, command: &[&str]) -> Output {
    let mut child = Command::new(peers::LOGWIRE)
        .args(["nix", "--db", db.to_str().unwrap(), "--nix-daemon-stdio", "--"])
        .args(command)
        .env("NIX_CONFIG", NIX_CONFIG)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("logwire nix {command:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn logwire_nix_runs_the_command_stores_and_summarises() {
    require_program("nix-daemon", INSTALL);
    let nix_build = require_program("nix-build", INSTALL);
    let env = TestEnv::new("nix-cli");
    let db = env.db();
    let hello = hello_nix();
    let (ok, failed) = (unique("cli-ok"), unique("cli-fail"));

    let out = logwire_nix(
        &db,
        &[nix_build.to_str().unwrap(), hello.to_str().unwrap(), "--argstr", "n", &ok, "--no-out-link"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("-hello-log-{ok}")),
        "the command's stdout passes through"
    );
    assert!(stderr.contains("logwire nix: 1 built, 0 failed"), "{stderr}");
    assert!(stderr.contains(&format!("built  hello-log-{ok}")), "{stderr}");

    let out = logwire_nix(
        &db,
        &[
            nix_build.to_str().unwrap(),
            hello.to_str().unwrap(),
            "--argstr",
            "n",
            &failed,
            "--arg",
            "fail",
            "true",
            "--no-out-link",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("0 built, 1 failed"), "{stderr}");
    assert!(stderr.contains("error:"), "the command's own stderr passes through: {stderr}");

    // The exit code is the command's.
    let out = logwire_nix(&db, &["sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));

    let (_, _, lines) = build_span(&db, &ok);
    assert_eq!(lines.first().map(String::as_str), Some("line one from builder"));
    let errors = rows(
        &db,
        &format!("SELECT body FROM events WHERE name = 'nix:error' AND body LIKE '%hello-log-{failed}.drv%'"),
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
}

/// The text a Nix command printed, trimmed; fails with its stderr when it did not succeed.
fn nix_ok(program: &str, args: &[&str], relay: &Path) -> String {
    let out = run_nix(program, args, Some(relay));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Every op of the store's Nix connections ended, none lost sync; returns the distinct op names.
fn ops_all_framed(db: &Path) -> Vec<String> {
    assert_no_lost_sync(db);
    let open = rows(db, "SELECT name FROM spans WHERE source = 'nix' AND name LIKE 'nix:op:%' AND end_ns IS NULL");
    assert!(open.is_empty(), "{open:?}");
    rows(db, "SELECT DISTINCT name FROM spans WHERE source = 'nix' AND name LIKE 'nix:op:%'")
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn nix_store_export_delete_and_import_through_the_relay() {
    let relay = start_relay();
    let payload = relay.env.write("payload.txt", &unique("payload"));
    let path = nix_ok("nix-store", &["--add", &payload], &relay.socket);
    // Over a unix socket Nix 2.8's client is a local-filesystem store: `--export` asks the daemon only for
    // the path info (QueryPathInfo) and dumps the NAR itself; `--import` sends it with AddToStoreNar
    // (framed); `--delete` is CollectGarbage.
    let exported = run_nix("nix-store", &["--export", &path], Some(&relay.socket));
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let export_file = relay.env.path("export.bin");
    std::fs::write(&export_file, &exported.stdout).unwrap();
    nix_ok("nix-store", &["--delete", &path], &relay.socket);
    assert!(!run_nix("nix-store", &["--check-validity", &path], Some(&relay.socket)).status.success());
    let imported = run_nix_with_input("nix-store", &["--import"], Some(&relay.socket), Some(&export_file));
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    assert_eq!(String::from_utf8_lossy(&imported.stdout).trim(), path);
    nix_ok("nix-store", &["--check-validity", &path], &relay.socket);

    let (_env, db) = stop(relay);
    let ops = ops_all_framed(&db);
    for op in ["nix:op:QueryPathInfo", "nix:op:CollectGarbage", "nix:op:AddToStoreNar"] {
        assert!(ops.iter().any(|o| o == op), "{op} missing from {ops:?}");
    }
    let targets = rows(
        &db,
        "SELECT json_extract(attrs, '$.targets[0]') AS target FROM spans WHERE name = 'nix:op:AddToStoreNar'",
    );
    assert!(targets.iter().any(|t| t["target"] == path.as_str()), "{targets:?}");
}

#[test]
fn read_and_write_driven_ops_against_the_real_daemon() {
    let relay = start_relay();
    let payload = relay.env.write("payload.txt", &unique("tunnel"));
    let path = nix_ok("nix-store", &["--add", &payload], &relay.socket);
    let export = run_nix("nix-store", &["--export", &path], Some(&relay.socket)).stdout;
    let nar = run_nix("nix-store", &["--dump", &path], Some(&relay.socket)).stdout;
    let nar_hash = nix_ok("nix-store", &["--query", "--hash", &path], &relay.socket);
    assert!(nar.len() > 100 && export.len() > nar.len() + 16, "{} / {}", nar.len(), export.len());

    // ExportPath (1.34): the export comes back as STDERR_WRITE, framed by the daemon's `exportPaths`
    // markers in `nix-store --export` (a leading 1 and a trailing 0, which ExportPath leaves out).
    let mut client = RawClient::connect(&relay.socket, ProtocolVersion::NIX_2_8);
    let mut out = Vec::new();
    put_u64(&mut out, 16);
    put_bytes(&mut out, path.as_bytes());
    put_u64(&mut out, 0);
    client.send(&out);
    let written: Vec<u8> = client
        .block(&mut &[][..])
        .into_iter()
        .filter_map(|m| match m {
            Message::Write(data) => Some(data),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(written, export[8..export.len() - 8]);
    assert_eq!(client.next(|r| r.u64()), 1);

    // ImportPaths (1.34): the daemon pulls the export through STDERR_READ; the reply lists what it added.
    nix_ok("nix-store", &["--delete", &path], &relay.socket);
    out.clear();
    put_u64(&mut out, 27);
    client.send(&out);
    let messages = client.block(&mut &export[..]);
    assert!(messages.iter().any(|m| matches!(m, Message::Read { .. })), "{messages:?}");
    assert_eq!(messages.last(), Some(&Message::Last), "{messages:?}");
    assert_eq!(client.next(|r| r.bytes_list()), vec![path.as_bytes().to_vec()]);
    drop(client);
    nix_ok("nix-store", &["--check-validity", &path], &relay.socket);

    // AddToStoreNar from a client claiming 1.22: the NAR goes through STDERR_READ answers too.
    nix_ok("nix-store", &["--delete", &path], &relay.socket);
    let mut client = RawClient::connect(&relay.socket, ProtocolVersion::new(1, 22));
    out.clear();
    put_u64(&mut out, 39);
    put_bytes(&mut out, path.as_bytes());
    put_bytes(&mut out, b""); // deriver
    put_bytes(&mut out, nar_hash.as_bytes());
    put_bytes_list::<&[u8]>(&mut out, &[]); // references
    put_u64(&mut out, 0); // registration time
    put_u64(&mut out, nar.len() as u64);
    put_bool(&mut out, false); // ultimate
    put_bytes_list::<&[u8]>(&mut out, &[]); // signatures
    put_bytes(&mut out, b""); // content address
    put_bool(&mut out, false); // repair
    put_bool(&mut out, true); // dontCheckSigs (we are trusted: root, local socket)
    client.send(&out);
    let messages = client.block(&mut &nar[..]);
    assert_eq!(messages.last(), Some(&Message::Last), "{messages:?}");
    drop(client);
    nix_ok("nix-store", &["--check-validity", &path], &relay.socket);

    let (_env, db) = stop(relay);
    let ops = ops_all_framed(&db);
    for op in ["nix:op:ExportPath", "nix:op:ImportPaths", "nix:op:AddToStoreNar"] {
        assert!(ops.iter().any(|o| o == op), "{op} missing from {ops:?}");
    }
    // Each of them ended with its reply (not with an error or the disconnect).
    let ends = rows(
        &db,
        "SELECT s.name, json_extract(s.attrs, '$.ok') AS ok, json_extract(h.attrs, '$.protocol') AS protocol          FROM spans s JOIN events h ON h.trace_id = s.trace_id AND h.name = 'nix:handshake'          WHERE s.name IN ('nix:op:ExportPath', 'nix:op:ImportPaths', 'nix:op:AddToStoreNar') ORDER BY s.start_ns",
    );
    let ends: Vec<(String, i64, String)> = ends
        .iter()
        .map(|r| {
            (r["name"].as_str().unwrap().into(), r["ok"].as_i64().unwrap(), r["protocol"].as_str().unwrap().into())
        })
        .collect();
    assert_eq!(
        ends,
        vec![
            ("nix:op:ExportPath".into(), 1, "1.34".into()),
            ("nix:op:ImportPaths".into(), 1, "1.34".into()),
            ("nix:op:AddToStoreNar".into(), 1, "1.22".into()),
        ]
    );
}
