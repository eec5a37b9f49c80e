//! The Nix source: a relay in front of the real daemon, recording what passes into the store.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use logwire_nix::runtime::{RecordSink, RelayStats, Upstream};
use logwire_store::StoreHandle;

/// `logwire serve` flags of the Nix relay (opt-in: nothing listens without `--nix-socket`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NixServeArgs {
    /// Relay Nix clients through this unix socket (point them at it with NIX_REMOTE=unix://PATH).
    #[arg(long, value_name = "PATH")]
    pub nix_socket: Option<PathBuf>,
    /// The daemon socket to relay to (default /nix/var/nix/daemon-socket/socket).
    #[arg(long, value_name = "SOCKET", requires = "nix_socket", conflicts_with = "nix_daemon_stdio")]
    pub nix_daemon: Option<PathBuf>,
    /// Spawn `nix-daemon --stdio` for each connection instead of using a daemon socket.
    #[arg(long, requires = "nix_socket")]
    pub nix_daemon_stdio: bool,
}

impl NixServeArgs {
    pub fn upstream(&self) -> Upstream {
        if self.nix_daemon_stdio {
            Upstream::stdio()
        } else {
            Upstream::Socket(self.nix_daemon.clone().unwrap_or_else(|| PathBuf::from(Upstream::DEFAULT_SOCKET)))
        }
    }
}

/// Records go to the store without ever waiting (a full queue drops and counts them).
pub fn store_sink(store: StoreHandle) -> RecordSink {
    Arc::new(move |records| {
        store.try_send(records);
    })
}

/// The relay, on a tokio runtime of its own whose thread stops preempting the daemon while a build log
/// streams ([`logwire_nix::runtime::relay_runtime_builder`]); the rest of `serve` keeps the normal policy,
/// so HAProxy's ACKs are never delayed by it.
pub struct Relay {
    runtime: tokio::runtime::Runtime,
    pub stats: Arc<RelayStats>,
}

impl Relay {
    /// Binds `path` (replacing a stale socket file) and relays every connection to `upstream`, handing
    /// the records to `sink` (which must not block).
    pub fn start(path: &Path, upstream: Upstream, sink: RecordSink) -> anyhow::Result<Relay> {
        let runtime = logwire_nix::runtime::relay_runtime_builder()
            .enable_all()
            .build()
            .context("cannot start the Nix relay's tokio runtime")?;
        if std::fs::symlink_metadata(path)
            .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            .unwrap_or(false)
        {
            let _ = std::fs::remove_file(path);
        }
        let listener = runtime
            .block_on(async { tokio::net::UnixListener::bind(path) })
            .with_context(|| format!("cannot listen on the unix socket {} for Nix clients", path.display()))?;
        let stats = Arc::new(RelayStats::default());
        runtime.spawn(logwire_nix::runtime::serve(listener, upstream, sink, stats.clone()));
        Ok(Relay { runtime, stats })
    }

    /// Stops relaying (open connections are cut after a short grace) and returns the counters.
    pub fn stop(self) -> Arc<RelayStats> {
        self.runtime.shutdown_timeout(Duration::from_millis(500));
        self.stats
    }
}

/// Starts the relay if `--nix-socket` was given and prints where it listens.
pub fn start(args: &NixServeArgs, store: StoreHandle) -> anyhow::Result<Option<Relay>> {
    let Some(path) = &args.nix_socket else { return Ok(None) };
    let upstream = args.upstream();
    let relay = Relay::start(path, upstream.clone(), store_sink(store))?;
    let to = match &upstream {
        Upstream::Socket(socket) => format!("the daemon at {}", socket.display()),
        Upstream::Stdio { program, .. } => format!("`{} --stdio` per connection", program.display()),
    };
    println!(
        "logwire: Nix relay listening on {} (NIX_REMOTE=unix://{}), relaying to {to}",
        path.display(),
        path.display()
    );
    Ok(Some(relay))
}

/// One summary line for the end of `serve`.
pub fn summary(stats: Option<&Arc<RelayStats>>) -> Option<String> {
    let s = stats?;
    Some(format!(
        "Nix: {} connections, {} lost sync, {} upstream failures, {} bytes to the daemon, {} bytes to clients",
        s.connections.load(Ordering::Relaxed),
        s.out_of_sync.load(Ordering::Relaxed),
        s.upstream_failures.load(Ordering::Relaxed),
        s.bytes_client_to_daemon.load(Ordering::Relaxed),
        s.bytes_daemon_to_client.load(Ordering::Relaxed),
    ))
}
