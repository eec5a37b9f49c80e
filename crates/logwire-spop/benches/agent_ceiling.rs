//! The agent ceiling: NOTIFY→ACK throughput and CPU per NOTIFY of logwire's agent against an agent
//! built on the `spop` crate (0.13.1), the anchor of notes/spop.md §5 and §7.
//!
//! ```text
//! cargo bench -p logwire-spop --bench agent_ceiling -- --duration 3 --conns 8 --inflight 20
//! ```
//!
//! Options (also as environment variables `AGENT_CEILING_<NAME>`, e.g. `AGENT_CEILING_DURATION=3`):
//! `--duration S` measured seconds per agent (5), `--warmup S` (1), `--conns N` (8), `--inflight N`
//! NOTIFYs in flight per connection (20), `--agents a,b,…` which agents to run (all of `logwire`,
//! `spop-send`, `spop-feed`), `--pin` pins the agent thread to CPU 0 and the client thread to CPU 1.
//!
//! Method:
//! - Each agent runs alone on its own OS thread with a `current_thread` tokio runtime (one core), the
//!   load generator on another thread with its own `current_thread` runtime, so that the ratio compares
//!   agents, not schedulers.
//! - The same client for every agent: `run_load` with the HAProxy ≤ 3.0 behaviour (pipelining, async,
//!   stream-id from 0), N connections × a window of NOTIFYs in flight, the NOTIFY HAProxy sends for the
//!   fixture's `spoe.conf` (`check-request`: ip, port, method, path, host, ua, hdrs of ~300 bytes).
//! - Both agents answer each `check-request` with set-var(txn.score = 42).
//! - `spop-send` is `spop`'s own example (`examples/agent_tcp.rs`) minus its printing: sequential per
//!   connection, one `Framed::send` (and so one flush, one `write`) per ACK. `spop-feed` is the same
//!   agent with `feed` per ACK and one flush when no more decoded frames are ready.
//! - CPU time of the agent thread and of the client thread comes from their thread CPU clocks
//!   (`pthread_getcpuclockid` + `clock_gettime`: what `getrusage(RUSAGE_THREAD)` reports, at ns
//!   resolution, readable from the client thread), taken right before and after the measured load.
//!   An agent thread busy < ~95% of the wall time was not saturated: the client (or the machine) was
//!   the limit and its rate is not its ceiling; then `1 / CPU per NOTIFY` estimates the ceiling and
//!   the CPU ratio is the fair comparison. On loopback the agent's CPU includes the kernel's TCP work
//!   for both directions of its writes (about half of logwire's time).

use bytes::Bytes;
use logwire_spop::agent::AgentConfig;
use logwire_spop::engine::{EngineConfig, Generation};
use logwire_spop::handler::Notify;
use logwire_spop::message::Arg;
use logwire_spop::runtime::agent::{AgentServer, HandlerKind, NoObserver, ServerConfig};
use logwire_spop::runtime::client::{run_load, LoadConfig, LoadReport};
use logwire_spop::{Action, Capabilities, Message, Scope, TypedData};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Options {
    duration: Duration,
    warmup: Duration,
    conns: usize,
    inflight: usize,
    agents: Vec<AgentKind>,
    pin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentKind {
    Logwire,
    SpopSend,
    SpopFeed,
}

impl AgentKind {
    const ALL: [AgentKind; 3] = [AgentKind::Logwire, AgentKind::SpopSend, AgentKind::SpopFeed];

    fn name(self) -> &'static str {
        match self {
            AgentKind::Logwire => "logwire",
            AgentKind::SpopSend => "spop-send",
            AgentKind::SpopFeed => "spop-feed",
        }
    }
}

fn options() -> Options {
    let mut o = Options {
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        conns: 8,
        inflight: 20,
        agents: AgentKind::ALL.to_vec(),
        pin: false,
    };
    let mut set = |name: &str, value: &str| {
        let secs = |v: &str| v.parse::<f64>().ok().filter(|s| *s >= 0.0 && *s <= 600.0).map(Duration::from_secs_f64);
        let bad = || -> ! {
            eprintln!("agent_ceiling: bad value {value:?} for {name}");
            std::process::exit(2)
        };
        match name {
            "duration" => o.duration = secs(value).unwrap_or_else(|| bad()),
            "warmup" => o.warmup = secs(value).unwrap_or_else(|| bad()),
            "conns" => o.conns = value.parse().ok().filter(|n| (1..=1024).contains(n)).unwrap_or_else(|| bad()),
            "inflight" => o.inflight = value.parse().ok().filter(|n| (1..=4096).contains(n)).unwrap_or_else(|| bad()),
            "agents" => {
                o.agents = value
                    .split(',')
                    .map(|a| AgentKind::ALL.into_iter().find(|k| k.name() == a.trim()).unwrap_or_else(|| bad()))
                    .collect()
            }
            "pin" => o.pin = !matches!(value, "0" | "false" | "no"),
            _ => {}
        }
    };
    for name in ["duration", "warmup", "conns", "inflight", "agents", "pin"] {
        if let Ok(v) = std::env::var(format!("AGENT_CEILING_{}", name.to_uppercase())) {
            set(name, &v);
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].trim_start_matches("--");
        if let Some((k, v)) = arg.split_once('=') {
            set(k, v);
        } else if arg == "pin" {
            set("pin", "1");
        } else if ["duration", "warmup", "conns", "inflight", "agents"].contains(&arg) && i + 1 < args.len() {
            set(arg, &args[i + 1]);
            i += 1;
        }
        // Anything else (cargo's `--bench`, filters) is ignored.
        i += 1;
    }
    o
}

// ---------------------------------------------------------------------------------------------
// The NOTIFY: what HAProxy sends for the fixture's `spoe.conf`
//   spoe-message check-request
//       args ip=src port=src_port method=method path=path host=req.hdr(host) ua=req.hdr(user-agent) hdrs=req.hdrs_bin
// Integer samples travel as INT64, methods and header values as STRING, `req.hdrs_bin` as BINARY
// (notes/spop.md §1.3).

/// `req.hdrs_bin`: `<name len varint><name><value len varint><value>` per header, then two empty
/// strings.
fn hdrs_bin(headers: &[(&str, &str)]) -> Bytes {
    let mut out = Vec::new();
    for s in headers.iter().flat_map(|(n, v)| [n, v]) {
        logwire_spop::varint::encode(s.len() as u64, &mut out);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    Bytes::from(out)
}

fn check_request() -> Vec<Message> {
    let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let hdrs = hdrs_bin(&[
        ("host", "www.example.com"),
        ("user-agent", ua),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "session=7f3c9a2e41d84b6c9e0a5f1d2c3b4a59; theme=dark"),
    ]);
    vec![Message::new(
        "check-request",
        vec![
            Arg::new("ip", TypedData::Ipv4(Ipv4Addr::new(192, 0, 2, 17))),
            Arg::new("port", TypedData::Int64(51234)),
            Arg::new("method", TypedData::string("GET")),
            Arg::new("path", TypedData::string("/api/v1/items?page=2&sort=desc")),
            Arg::new("host", TypedData::string("www.example.com")),
            Arg::new("ua", TypedData::string(ua)),
            Arg::new("hdrs", TypedData::Binary(hdrs)),
        ],
    )]
}

// ---------------------------------------------------------------------------------------------
// Thread CPU clocks

/// A handle on another thread's CPU clock.
#[derive(Clone, Copy)]
struct CpuClock(libc::clockid_t);

impl CpuClock {
    /// The calling thread's clock (readable from any thread of the process).
    fn current() -> CpuClock {
        let mut id: libc::clockid_t = 0;
        // SAFETY: pthread_self() is always valid for the calling thread; `id` is a valid out pointer.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
        assert_eq!(rc, 0, "pthread_getcpuclockid failed");
        CpuClock(id)
    }

    fn now(self) -> Duration {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid out pointer; the clock id belongs to a thread that outlives its use.
        let rc = unsafe { libc::clock_gettime(self.0, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime failed");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity get valid pointers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("agent_ceiling: could not pin to CPU {cpu}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The agents

/// The same decision in both agents: every `check-request` gets txn.score = 42.
fn logwire_handler(n: &Notify, actions: &mut Vec<Action>) {
    for m in &n.messages {
        if &m.name[..] == b"check-request" {
            actions.push(Action::set_var(Scope::Txn, "score", TypedData::Uint32(42)));
        }
    }
}

async fn serve_logwire(listener: tokio::net::TcpListener, stop: tokio::sync::oneshot::Receiver<()>) {
    let agent =
        AgentConfig { capabilities: Capabilities { pipelining: true, ..Capabilities::NONE }, ..AgentConfig::default() };
    let server = AgentServer::new(
        ServerConfig { agent, ..ServerConfig::default() },
        HandlerKind::Sync(Arc::new(logwire_handler)),
        Arc::new(NoObserver),
    );
    let _ = server
        .serve(listener, async {
            let _ = stop.await;
        })
        .await;
}

mod spop_agent {
    //! `spop` 0.13.1's `examples/agent_tcp.rs`, without its printing, and with the `feed` variant.
    use futures_util::{FutureExt, SinkExt, StreamExt};
    use spop::actions::VarScope;
    use spop::frame::{FramePayload, FrameType};
    use spop::frames::{Ack, AgentDisconnect, AgentHello, FrameCapabilities, HaproxyHello};
    use spop::{SpopCodec, SpopFrame, StatusCode, MAX_FRAME_SIZE_LIMIT};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::codec::Framed;

    type Socket = Framed<TcpStream, SpopCodec>;

    pub async fn serve(listener: TcpListener, stop: tokio::sync::oneshot::Receiver<()>, feed: bool) {
        let mut stop = stop;
        loop {
            tokio::select! {
                _ = &mut stop => return,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let _ = if feed { handle_feed(stream).await } else { handle_send(stream).await };
                    });
                }
            }
        }
    }

    async fn disconnect(socket: &mut Socket, status: StatusCode) -> std::io::Result<()> {
        let frame = AgentDisconnect { status_code: status.to_u32(), message: status.message().to_string() };
        socket.send(Box::new(frame)).await?;
        socket.close().await
    }

    enum Step {
        Continue,
        Reply(Box<dyn SpopFrame>),
        /// A health check: answer, then close without DISCONNECT (as the example does).
        ReplyAndEnd(Box<dyn SpopFrame>),
        Close(StatusCode),
        Done,
    }

    /// What the example does with one frame.
    fn on_frame(socket: &mut Socket, frame: &dyn SpopFrame) -> Step {
        match frame.frame_type() {
            FrameType::HaproxyHello => {
                let Ok(hello) = HaproxyHello::try_from(frame.payload()) else {
                    return Step::Close(StatusCode::Invalid);
                };
                let Some(version) = hello.negotiate_version() else { return Step::Close(StatusCode::BadVersion) };
                let max_frame_size = match hello.negotiate_max_frame_size(MAX_FRAME_SIZE_LIMIT) {
                    Ok(size) => size,
                    Err(status) => return Step::Close(status),
                };
                socket.codec_mut().set_max_frame_size(max_frame_size);
                let reply =
                    Box::new(AgentHello { version, max_frame_size, capabilities: vec![FrameCapabilities::Pipelining] });
                if hello.healthcheck.unwrap_or(false) {
                    Step::ReplyAndEnd(reply)
                } else {
                    Step::Reply(reply)
                }
            }
            FrameType::HaproxyDisconnect => Step::Done,
            FrameType::Notify => {
                if let FramePayload::ListOfMessages(messages) = &frame.payload() {
                    let metadata = frame.metadata();
                    let mut ack = Ack::new(metadata.stream_id, metadata.frame_id);
                    for message in *messages {
                        if message.name.as_str() == "check-request" {
                            ack = ack.set_var(VarScope::Transaction, "score", 42u32);
                        }
                    }
                    Step::Reply(Box::new(ack))
                } else {
                    Step::Continue
                }
            }
            _ => Step::Continue,
        }
    }

    /// As the example: `send` (write + flush) per reply.
    async fn handle_send(stream: TcpStream) -> std::io::Result<()> {
        let mut socket = Framed::new(stream, SpopCodec::default());
        while let Some(result) = socket.next().await {
            let frame = result?;
            match on_frame(&mut socket, frame.as_ref()) {
                Step::Continue => {}
                Step::Reply(reply) => socket.send(reply).await?,
                Step::ReplyAndEnd(reply) => return socket.send(reply).await,
                Step::Close(status) => return disconnect(&mut socket, status).await,
                Step::Done => return disconnect(&mut socket, StatusCode::None).await,
            }
        }
        Ok(())
    }

    /// `feed` per reply, one flush when no decoded frame is ready any more (one write per read batch).
    async fn handle_feed(stream: TcpStream) -> std::io::Result<()> {
        let mut socket = Framed::new(stream, SpopCodec::default());
        while let Some(result) = socket.next().await {
            let mut next = Some(result);
            while let Some(result) = next.take() {
                let frame = result?;
                match on_frame(&mut socket, frame.as_ref()) {
                    Step::Continue => {}
                    Step::Reply(reply) => socket.feed(reply).await?,
                    Step::ReplyAndEnd(reply) => return socket.send(reply).await,
                    Step::Close(status) => return disconnect(&mut socket, status).await,
                    Step::Done => return disconnect(&mut socket, StatusCode::None).await,
                }
                // Another frame already buffered or readable without waiting?
                next = socket.next().now_or_never().flatten();
            }
            socket.flush().await?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// One run

struct AgentThread {
    addr: SocketAddr,
    clock: CpuClock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<()>>,
}

fn start_agent(kind: AgentKind, pin: bool) -> AgentThread {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    std_listener.set_nonblocking(true).expect("nonblocking listener");
    let addr = std_listener.local_addr().expect("local addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let (clock_tx, clock_rx) = mpsc::channel();
    let join = std::thread::Builder::new()
        .name(format!("agent-{}", kind.name()))
        .spawn(move || {
            if pin {
                pin_to(0);
            }
            let _ = clock_tx.send(CpuClock::current());
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("agent runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
                match kind {
                    AgentKind::Logwire => serve_logwire(listener, stop_rx).await,
                    AgentKind::SpopSend => spop_agent::serve(listener, stop_rx, false).await,
                    AgentKind::SpopFeed => spop_agent::serve(listener, stop_rx, true).await,
                }
            });
        })
        .expect("agent thread");
    let clock = clock_rx.recv().expect("agent clock");
    AgentThread { addr, clock, stop: Some(stop_tx), join: Some(join) }
}

impl AgentThread {
    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for AgentThread {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Measured {
    report: LoadReport,
    agent_cpu: Duration,
    client_cpu: Duration,
    wall: Duration,
}

impl Measured {
    fn cpu_per_notify_us(&self) -> f64 {
        self.agent_cpu.as_secs_f64() * 1e6 / self.report.acked.max(1) as f64
    }
    fn client_per_notify_us(&self) -> f64 {
        self.client_cpu.as_secs_f64() * 1e6 / self.report.acked.max(1) as f64
    }
    fn agent_busy(&self) -> f64 {
        self.agent_cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
    fn client_busy(&self) -> f64 {
        self.client_cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

fn load_config(addr: SocketAddr, o: &Options, duration: Duration, payload: &[Message]) -> LoadConfig {
    LoadConfig {
        addr,
        engine: EngineConfig::new(Generation::Legacy),
        connections: o.conns,
        in_flight: o.inflight,
        duration,
        // Bounded in count as well as time: far above what one core can ACK in `duration`.
        max_requests: Some(((duration.as_secs_f64() + 1.0) * 5_000_000.0) as u64),
        payloads: vec![payload.to_vec()],
        timeout: Duration::from_secs(5),
    }
}

fn run(kind: AgentKind, o: &Options, payload: &[Message]) -> Measured {
    let mut agent = start_agent(kind, o.pin);
    let (addr, agent_clock) = (agent.addr, agent.clock);
    let o2 = o.clone();
    let payload = payload.to_vec();
    let client = std::thread::Builder::new()
        .name("client".into())
        .spawn(move || {
            if o2.pin {
                pin_to(1);
            }
            let clock = CpuClock::current();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("client runtime");
            rt.block_on(async move {
                if !o2.warmup.is_zero() {
                    let w = run_load(load_config(addr, &o2, o2.warmup, &payload)).await;
                    if !w.errors.is_empty() {
                        eprintln!("warm-up errors: {:?}", &w.errors[..w.errors.len().min(3)]);
                    }
                }
                let (a0, c0, t0) = (agent_clock.now(), clock.now(), Instant::now());
                let report = run_load(load_config(addr, &o2, o2.duration, &payload)).await;
                let (a1, c1, wall) = (agent_clock.now(), clock.now(), t0.elapsed());
                Measured { report, agent_cpu: a1 - a0, client_cpu: c1 - c0, wall }
            })
        })
        .expect("client thread");
    let m = client.join().expect("client thread panicked");
    agent.stop();
    m
}

fn main() {
    let o = options();
    let payload = check_request();
    let payload_len: usize = payload.iter().map(Message::encoded_len).sum();
    let hdrs_len = payload[0].arg("hdrs").and_then(|h| h.as_bytes()).map_or(0, |h| h.len());
    println!(
        "agent_ceiling: {} conns x {} in flight, Legacy (HAProxy 2.6-like) client, NOTIFY check-request payload {} B (hdrs {} B), warm-up {:.1}s, {:.1}s per agent{}",
        o.conns,
        o.inflight,
        payload_len,
        hdrs_len,
        o.warmup.as_secs_f64(),
        o.duration.as_secs_f64(),
        if o.pin { ", pinned (agent CPU 0, client CPU 1)" } else { "" },
    );
    println!(
        "{:<10} {:>10} {:>10} {:>7} {:>7} {:>12} {:>10} {:>12} {:>11}",
        "agent", "acked", "ACK/s", "p50 us", "p99 us", "agent us/N", "agent busy", "client us/N", "client busy"
    );
    let mut results = Vec::new();
    for &kind in &o.agents {
        let m = run(kind, &o, &payload);
        println!(
            "{:<10} {:>10} {:>10.0} {:>7} {:>7} {:>12.3} {:>9.0}% {:>12.3} {:>10.0}%",
            kind.name(),
            m.report.acked,
            m.report.rate(),
            m.report.percentile_us(50.0),
            m.report.percentile_us(99.0),
            m.cpu_per_notify_us(),
            m.agent_busy() * 100.0,
            m.client_per_notify_us(),
            m.client_busy() * 100.0,
        );
        if !m.report.errors.is_empty() {
            println!("  {} errors, first: {}", m.report.errors.len(), m.report.errors[0]);
        }
        results.push((kind, m));
    }
    let get = |k: AgentKind| results.iter().find(|(kind, _)| *kind == k).map(|(_, m)| m);
    if let Some(lw) = get(AgentKind::Logwire) {
        for other in [AgentKind::SpopSend, AgentKind::SpopFeed] {
            let Some(sp) = get(other) else { continue };
            let suffix = if other == AgentKind::SpopFeed { " (feed)" } else { "" };
            println!(
                "ratio logwire/spop{suffix} = {:.2}   (ACK/s; CPU per NOTIFY: {:.2}; agent ceiling 1/CPU: logwire {:.0}/s, spop{suffix} {:.0}/s)",
                lw.report.rate() / sp.report.rate().max(1e-9),
                sp.cpu_per_notify_us() / lw.cpu_per_notify_us().max(1e-9),
                1e6 / lw.cpu_per_notify_us().max(1e-9),
                1e6 / sp.cpu_per_notify_us().max(1e-9),
            );
        }
        if lw.agent_busy() < 0.95 {
            println!(
                "note: logwire's agent thread was busy {:.0}% of the time: the client (busy {:.0}%) or the machine was the limit, not the agent; compare CPU per NOTIFY.",
                lw.agent_busy() * 100.0,
                lw.client_busy() * 100.0
            );
        }
    }
}
