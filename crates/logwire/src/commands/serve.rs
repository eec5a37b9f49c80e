//! `logwire serve`: every enabled listener, one store.

use crate::commands::Result;
use crate::sources::spop::{RecordMode, StoreObserver};
use anyhow::Context;
use clap::Args;
use logwire_spop::agent::AgentConfig;
use logwire_spop::handler::{AckAll, Handler};
use logwire_spop::runtime::agent::{AgentServer, HandlerKind, NoObserver, Observer, ServerConfig};
use logwire_spop::Capabilities;
use logwire_store::{Store, WriterConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// SQLite file to store records in (created if missing; WAL mode).
    #[arg(long, default_value = crate::DEFAULT_DB)]
    pub db: PathBuf,
    /// Address of the SPOA agent that HAProxy's `use-backend` servers point at.
    #[arg(long, default_value = "127.0.0.1:12345", value_name = "ADDR")]
    pub spop: SocketAddr,
    /// Do not start the SPOP agent.
    #[arg(long)]
    pub no_spop: bool,
    /// Rules file (TOML) turning SPOE message arguments into set-var actions; without it every NOTIFY
    /// gets an empty ACK.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// SPOP capabilities the agent announces (HAProxy uses those it also supports). Drop
    /// `fragmentation` only if HAProxy has `no option send-frag-payload`.
    #[arg(long, default_value = "pipelining,async,fragmentation", value_name = "LIST")]
    pub spop_capabilities: String,
    /// Largest SPOP frame the agent accepts; the negotiated size is the smaller of this and HAProxy's.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub spop_max_frame_size: u32,
    /// What the SPOP agent records: `all` (a span per NOTIFY, an event per message, connection
    /// events), `messages` (only the message events, with their actions) or `none` (answer only).
    #[arg(long, value_enum, default_value_t = RecordMode::All)]
    pub spop_record: RecordMode,
    /// Records the store queue may hold; beyond it records are dropped and counted, never waited for.
    /// The TCP syslog and fluentd listeners stop reading while it is half full, so their senders wait
    /// instead (keep it well above what one 64 KiB read brings, a few hundred records).
    #[arg(long, default_value_t = 65_536, value_name = "RECORDS")]
    pub queue: usize,
    /// Print counters every N seconds (0: only when records are dropped, and at exit).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub stats_interval: u64,
    #[command(flatten)]
    pub g3: crate::sources::g3::G3ServeArgs,
    #[command(flatten)]
    pub nix: crate::sources::nix::NixServeArgs,
    /// Watch this directory for qlog files (the stacks' QLOGDIR): tails growing .sqlog files, reads .qlog
    /// (and .gz/.zst) files once complete; one trace per connection.
    #[arg(long, value_name = "DIR")]
    pub qlog_dir: Option<PathBuf>,
    /// A tailed .sqlog file that has not grown for this many seconds ends its connections' spans at their
    /// last event (a stack killed before `connection_closed`, or one that never logs it); later events
    /// are still stored.
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "qlog_dir")]
    pub qlog_idle: u64,
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let writer = Store::spawn_writer(&args.db, WriterConfig { queue_capacity: args.queue, ..WriterConfig::default() })
        .with_context(|| format!("cannot open the store {}", args.db.display()))?;
    let store = writer.handle();
    let handler: Arc<dyn Handler> = match &args.rules {
        Some(path) => Arc::new(
            logwire_spop::rules::Rules::load(path)
                .with_context(|| format!("cannot load the rules file {}", path.display()))?,
        ),
        None => Arc::new(AckAll),
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the tokio runtime")?;
    let mut signals =
        runtime.block_on(async { ShutdownSignals::register() }).context("cannot handle SIGINT/SIGTERM")?;
    let server = runtime.block_on(async {
        let mut server = None;
        if !args.no_spop {
            let listener = tokio::net::TcpListener::bind(args.spop).await.with_context(|| {
                format!("cannot listen on {} for SPOP (is another agent running? pick another with --spop)", args.spop)
            })?;
            let config = ServerConfig {
                agent: AgentConfig {
                    max_frame_size: args.spop_max_frame_size,
                    capabilities: Capabilities::parse(args.spop_capabilities.as_bytes()),
                    ..AgentConfig::default()
                },
                ..ServerConfig::default()
            };
            let observer: Arc<dyn Observer> = match args.spop_record {
                RecordMode::None => Arc::new(NoObserver),
                mode => Arc::new(StoreObserver { store: store.clone(), mode }),
            };
            let s = AgentServer::new(config.clone(), HandlerKind::Sync(handler.clone()), observer);
            println!(
                "logwire: SPOP agent listening on {} (capabilities: {}; max-frame-size {}; rules: {})",
                listener.local_addr().unwrap_or(args.spop),
                config.agent.capabilities,
                config.agent.max_frame_size,
                args.rules.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none, empty ACKs".into())
            );
            tokio::spawn(s.clone().serve(listener, std::future::pending()));
            server = Some(s);
        }
        println!("logwire: storing records in {}", args.db.display());
        anyhow::Ok(server)
    })?;
    let g3 = runtime.block_on(crate::sources::g3::start(&args.g3, store.clone(), &args.db))?;
    let qlog =
        crate::sources::qlog::start(args.qlog_dir.as_deref(), Duration::from_secs(args.qlog_idle), store.clone())?;
    let nix = crate::sources::nix::start(&args.nix, store.clone())?;

    runtime.block_on(async {
        let mut last_dropped = 0;
        let interval = if args.stats_interval == 0 { Duration::from_secs(5) } else { Duration::from_secs(args.stats_interval) };
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        let shutdown = signals.recv();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    let st = store.stats();
                    if st.dropped > last_dropped {
                        println!("logwire: store queue full: {} records dropped so far (ACKs were not delayed; raise --queue)", st.dropped);
                        last_dropped = st.dropped;
                    } else if args.stats_interval > 0 {
                        println!("logwire: {}", summary(server.as_deref(), &st));
                    }
                }
            }
        }
    });
    println!("logwire: shutting down, flushing the store");
    runtime.shutdown_timeout(Duration::from_millis(500));
    let nix = nix.map(crate::sources::nix::Relay::stop);
    let qlog_summary = qlog.map(crate::sources::qlog::Watcher::stop);
    let stats = writer.close().context("the store could not be flushed")?;
    println!("logwire: {}", summary(server.as_deref(), &stats));
    if let Some(line) = crate::sources::g3::summary(g3.as_ref()) {
        println!("logwire: {line}");
    }
    if let Some(line) = qlog_summary {
        println!("logwire: {line}");
    }
    if let Some(line) = crate::sources::nix::summary(nix.as_ref()) {
        println!("logwire: {line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(server: Option<&AgentServer>, st: &logwire_store::WriterStats) -> String {
    let spop = server
        .map(|s| {
            let x = s.stats();
            format!(
                "SPOP: {} connections, {} NOTIFY, {} ACK, {} protocol errors; ",
                x.connections.load(Ordering::Relaxed),
                x.notifies.load(Ordering::Relaxed),
                x.acks.load(Ordering::Relaxed),
                x.protocol_errors.load(Ordering::Relaxed)
            )
        })
        .unwrap_or_default();
    format!("{spop}store: {} records written, {} dropped, {} failed", st.written, st.dropped, st.failed)
}

/// SIGINT and SIGTERM, registered at once (before any listener is announced), so that a signal that
/// arrives while the other listeners start still means "flush and exit 0" rather than the default kill.
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn register() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(ShutdownSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignals {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
