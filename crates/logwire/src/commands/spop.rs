//! `logwire spop …`: probe an agent, load-test it, check a SPOE configuration.

use crate::commands::Result;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use logwire_spop::conf::{self, SpoeConfig};
use logwire_spop::engine::{EngineConfig, Generation};
use logwire_spop::runtime::client::{probe, run_load, LoadConfig};
use logwire_spop::template::{build_messages, messages_for_event, RequestTemplate, DEFAULT_SPOE_CONF};
use logwire_spop::Message;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum SpopCommand {
    /// Talk to an SPOA like HAProxy does: a health-check HELLO, a HELLO, one NOTIFY, a DISCONNECT;
    /// print what was negotiated, the actions returned and the timings.
    Probe(ProbeArgs),
    /// Load-test an SPOA with pipelined NOTIFYs; prints NOTIFY/s and latency percentiles.
    Bench(BenchArgs),
    /// Report what HAProxy would do silently with a SPOE configuration (and rules, and haproxy.cfg).
    CheckConf(CheckConfArgs),
}

/// Which messages to send, shared by probe and bench.
#[derive(Args, Debug)]
pub struct MessageArgs {
    /// Send the messages this SPOE configuration attaches to --event, filled from a request template;
    /// without it, one `check-request` message like the fixture's.
    #[arg(long, value_name = "FILE")]
    pub spoe_conf: Option<PathBuf>,
    /// The `[scope]` of the SPOE configuration (default: the first).
    #[arg(long, value_name = "NAME")]
    pub engine: Option<String>,
    /// SPOE event whose messages are sent.
    #[arg(long, default_value = "on-frontend-http-request")]
    pub event: String,
    /// Request path of the template; `{seq}` is replaced by a counter.
    #[arg(long, default_value = "/index.html?id={seq}")]
    pub path: String,
    /// Behave like HAProxy ≥ 3.1 (odd stream-ids, FIN everywhere, no fragmentation or async, ≤ 20 in
    /// flight) instead of ≤ 3.0 (Debian's 2.6).
    #[arg(long)]
    pub modern: bool,
    /// HAProxy's max-frame-size (tune.bufsize − 4).
    #[arg(long, default_value_t = 16380)]
    pub max_frame_size: u32,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Agent address, e.g. 127.0.0.1:12345.
    pub addr: SocketAddr,
    #[command(flatten)]
    pub messages: MessageArgs,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 3.0)]
    pub timeout: f64,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Agent address, e.g. 127.0.0.1:12345.
    pub addr: SocketAddr,
    #[command(flatten)]
    pub messages: MessageArgs,
    /// Connections to open.
    #[arg(long, default_value_t = 8)]
    pub conns: usize,
    /// NOTIFYs in flight per connection (HAProxy's max-waiting-frames is 20).
    #[arg(long, default_value_t = 20)]
    pub inflight: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Stop after this many ACKs.
    #[arg(long)]
    pub max_requests: Option<u64>,
}

#[derive(Args, Debug)]
pub struct CheckConfArgs {
    /// The SPOE configuration file (the `config` of `filter spoe`).
    pub spoe_conf: PathBuf,
    /// logwire rules file to check against the configuration.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// haproxy.cfg, to check variable references and the agents' backend.
    #[arg(long, value_name = "FILE")]
    pub haproxy_cfg: Option<PathBuf>,
}

pub fn run(cmd: SpopCommand) -> Result<ExitCode> {
    match cmd {
        SpopCommand::Probe(a) => run_probe(a),
        SpopCommand::Bench(a) => run_bench(a),
        SpopCommand::CheckConf(a) => run_check(a),
    }
}

fn engine_config(m: &MessageArgs) -> EngineConfig {
    let mut c = EngineConfig::new(if m.modern { Generation::Modern } else { Generation::Legacy });
    c.max_frame_size = m.max_frame_size;
    c.engine_id = Some(format!("logwire-{}", std::process::id()));
    c
}

/// The NOTIFY payloads to send (several, so that `{seq}` varies).
fn payloads(m: &MessageArgs, count: u64) -> Result<Vec<Vec<Message>>> {
    let template = RequestTemplate { path: m.path.clone(), ..RequestTemplate::default() };
    let (conf, origin) = match &m.spoe_conf {
        Some(path) => (
            SpoeConfig::parse_file(path)
                .with_context(|| format!("cannot read the SPOE configuration {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (SpoeConfig::parse(DEFAULT_SPOE_CONF)?, "the built-in check-request message".to_string()),
    };
    // Without --engine, the first scope that has an agent.
    let engine = match &m.engine {
        Some(e) => Some(e.as_str()),
        None => conf.scopes.iter().find(|s| s.agent.is_some()).and_then(|s| s.name.as_deref()),
    };
    let spoe_messages = messages_for_event(&conf, engine, &m.event);
    if spoe_messages.is_empty() {
        bail!("{origin} attaches no message to event {} (see --engine and --event)", m.event);
    }
    Ok((0..count).map(|seq| build_messages(&spoe_messages, &template, seq)).collect())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn run_probe(a: ProbeArgs) -> Result<ExitCode> {
    let messages = payloads(&a.messages, 1)?.pop().unwrap_or_default();
    let timeout = Duration::from_secs_f64(a.timeout);
    let report = runtime()?.block_on(probe(a.addr, engine_config(&a.messages), &messages, timeout));
    let mut ok = true;
    match &report.healthcheck {
        Ok((n, t)) => println!(
            "health check: ok in {:.3} ms (max-frame-size {}, capabilities \"{}\")",
            ms(*t),
            n.max_frame_size,
            n.capabilities
        ),
        Err(e) => {
            ok = false;
            println!("health check: FAILED: {e}")
        }
    }
    match &report.hello {
        Ok((n, t)) => println!(
            "hello:        ok in {:.3} ms (version 2.0, max-frame-size {}, capabilities \"{}\")",
            ms(*t),
            n.max_frame_size,
            n.capabilities
        ),
        Err(e) => {
            ok = false;
            println!("hello:        FAILED: {e}")
        }
    }
    match &report.notify {
        Some(Ok(ack)) => {
            println!(
                "notify:       ACK in {:.3} ms{}, {} action(s)",
                ms(ack.latency),
                if ack.aborted { " (ABORT)" } else { "" },
                ack.actions.len()
            );
            for act in &ack.actions {
                println!("              {}", logwire_spop::record::action_to_json(act));
            }
        }
        Some(Err(e)) => {
            ok = false;
            println!("notify:       FAILED: {e}")
        }
        None => {}
    }
    match &report.disconnect {
        Some(Ok(Some((status, msg)))) => println!("disconnect:   agent answered {status}: {msg:?}"),
        Some(Ok(None)) => println!("disconnect:   agent closed without AGENT-DISCONNECT"),
        Some(Err(e)) => println!("disconnect:   {e}"),
        None => {}
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run_bench(a: BenchArgs) -> Result<ExitCode> {
    let payloads = payloads(&a.messages, 256)?;
    let duration = Duration::from_secs_f64(a.duration);
    println!(
        "logwire spop bench: {} connections x {} in flight, {:.1} s, {} to {}",
        a.conns,
        a.inflight,
        a.duration,
        if a.messages.modern { "HAProxy >= 3.1 behaviour" } else { "HAProxy <= 3.0 behaviour" },
        a.addr
    );
    let config = LoadConfig {
        addr: a.addr,
        engine: engine_config(&a.messages),
        connections: a.conns,
        in_flight: a.inflight,
        duration,
        max_requests: a.max_requests,
        payloads,
        timeout: Duration::from_secs(5),
    };
    let rt = runtime()?;
    let report = rt.block_on(async {
        let load = tokio::spawn(run_load(config));
        // Progress while it runs.
        let started = std::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        tokio::pin!(load);
        loop {
            tokio::select! {
                r = &mut load => break r,
                _ = tick.tick() => eprint!("\r  {:.0}/{:.0} s", started.elapsed().as_secs_f64(), duration.as_secs_f64()),
            }
        }
    })?;
    eprint!("\r");
    println!("sent {} NOTIFY, {} ACK in {:.2} s", report.sent, report.acked, report.elapsed.as_secs_f64());
    println!("throughput: {:.0} NOTIFY/s", report.rate());
    println!(
        "latency µs: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        report.percentile_us(50.0),
        report.percentile_us(90.0),
        report.percentile_us(99.0),
        report.percentile_us(99.9),
        report.latency_us.max()
    );
    for e in report.errors.iter().take(10) {
        println!("error: {e}");
    }
    Ok(if report.errors.is_empty() && report.acked > 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run_check(a: CheckConfArgs) -> Result<ExitCode> {
    let conf =
        SpoeConfig::parse_file(&a.spoe_conf).with_context(|| format!("cannot read {}", a.spoe_conf.display()))?;
    let rules = match &a.rules {
        Some(p) => Some(logwire_spop::rules::Rules::load(p).with_context(|| format!("cannot load {}", p.display()))?),
        None => None,
    };
    let haproxy = match &a.haproxy_cfg {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => None,
    };
    let diags = conf::check(&conf, rules.as_ref(), haproxy.as_deref());
    let name_of = |p: &Option<PathBuf>, fallback: &str| {
        p.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| fallback.to_string())
    };
    let mut errors = 0;
    for d in &diags {
        if d.level == conf::Level::Error {
            errors += 1;
        }
        let file = match d.origin {
            conf::Origin::SpoeConf => a.spoe_conf.display().to_string(),
            conf::Origin::HaproxyCfg => name_of(&a.haproxy_cfg, "haproxy.cfg"),
            conf::Origin::Rules => name_of(&a.rules, "rules"),
        };
        match d.line {
            Some(line) => println!("{}: {file}:{line}: {}", d.level, d.message),
            None => println!("{}: {file}: {}", d.level, d.message),
        }
    }
    println!("{errors} error(s), {} warning(s) and note(s)", diags.len() - errors);
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
