//! The g3proxy source: the listeners of `logwire-g3` feeding the store, and the g3 views created next to
//! the store's schema.

use logwire_g3::runtime::{Ingest, Sink};
use logwire_model::Record;
use logwire_store::{CommitOutcome, StoreHandle};
use std::path::Path;

/// Queues g3 records into the store; acknowledged ones learn when they are committed.
pub struct StoreSink {
    pub store: StoreHandle,
}

impl Sink for StoreSink {
    fn records(&self, records: Vec<Record>) {
        self.store.try_send(records);
    }

    fn records_with_commit(&self, records: Vec<Record>, done: Box<dyn FnOnce(bool) + Send>) {
        self.store.try_send_with_commit(records, move |outcome| done(outcome == CommitOutcome::Committed));
    }

    fn has_room(&self) -> bool {
        self.store.has_room_for_bulk()
    }
}

/// A fresh ingest context writing into `store`.
pub fn ingest(store: StoreHandle) -> Ingest {
    Ingest::new(std::sync::Arc::new(StoreSink { store }))
}

/// Create the `g3_*` views in the store file (the store's writer must have created its schema first).
pub fn install_views(db: &Path) -> anyhow::Result<()> {
    logwire_g3::sql::install_views(db)
        .map_err(|e| anyhow::anyhow!("cannot create the g3 views in {}: {e}", db.display()))
}

/// The g3proxy listeners of `logwire serve`; each is off unless its flag is given.
#[derive(clap::Args, Debug, Default)]
pub struct G3ServeArgs {
    /// Receive g3proxy syslog datagrams on UDP (g3proxy's `target_udp`); alone, 127.0.0.1:5140.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:5140")]
    pub syslog_udp: Option<std::net::SocketAddr>,
    /// Receive syslog over TCP, RFC 6587 octet counting or newline framing (from rsyslog and other relays);
    /// alone, 127.0.0.1:5140.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:5140")]
    pub syslog_tcp: Option<std::net::SocketAddr>,
    /// Receive syslog datagrams on a unix datagram socket at PATH (g3proxy's `target_unix`).
    #[arg(long, value_name = "PATH")]
    pub syslog_unix: Option<std::path::PathBuf>,
    /// Be a fluentd forward server (g3proxy's `fluentd` driver): acks `chunk`s once committed, answers
    /// UDP heartbeats on the same port; alone, 127.0.0.1:24224.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:24224")]
    pub fluentd: Option<std::net::SocketAddr>,
    /// Require fluentd's `shared_key` handshake (HELO/PING/PONG) on the --fluentd listener: clients without
    /// this key are answered with a failed PONG and disconnected. Visible in `ps`; use a private host.
    #[arg(long, value_name = "KEY", requires = "fluentd")]
    pub fluentd_shared_key: Option<String>,
    /// Hostname the handshake's PONG proves the key with (fluentd's `self_hostname`); default: this host's.
    #[arg(long, value_name = "NAME", requires = "fluentd_shared_key")]
    pub fluentd_hostname: Option<String>,
    /// Also require this user in the handshake, as USER:PASSWORD (repeatable; fluentd's `security.users`).
    #[arg(long = "fluentd-user", value_name = "USER:PASSWORD", requires = "fluentd_shared_key")]
    pub fluentd_users: Vec<String>,
}

impl G3ServeArgs {
    fn any(&self) -> bool {
        self.syslog_udp.is_some() || self.syslog_tcp.is_some() || self.syslog_unix.is_some() || self.fluentd.is_some()
    }
}

/// Start the enabled g3 listeners (inside the tokio runtime), print where they listen, create the views.
pub async fn start(args: &G3ServeArgs, store: StoreHandle, db: &Path) -> anyhow::Result<Option<Ingest>> {
    use anyhow::Context;
    if !args.any() {
        return Ok(None);
    }
    install_views(db)?;
    let ingest = ingest(store);
    if let Some(addr) = args.syslog_udp {
        let socket = tokio::net::UdpSocket::bind(addr)
            .await
            .with_context(|| format!("cannot listen on UDP {addr} for g3 syslog (pick another with --syslog-udp)"))?;
        println!("logwire: g3 syslog UDP listening on {}", socket.local_addr().unwrap_or(addr));
        tokio::spawn(logwire_g3::runtime::serve_udp(socket, ingest.clone()));
    }
    if let Some(addr) = args.syslog_tcp {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on TCP {addr} for g3 syslog (pick another with --syslog-tcp)"))?;
        println!("logwire: g3 syslog TCP (RFC 6587) listening on {}", listener.local_addr().unwrap_or(addr));
        tokio::spawn(logwire_g3::runtime::serve_tcp(listener, ingest.clone()));
    }
    if let Some(path) = &args.syslog_unix {
        // A socket file left by a previous run would make bind fail.
        if std::fs::symlink_metadata(path)
            .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            .unwrap_or(false)
        {
            let _ = std::fs::remove_file(path);
        }
        let socket = tokio::net::UnixDatagram::bind(path)
            .with_context(|| format!("cannot bind the unix datagram socket {}", path.display()))?;
        println!("logwire: g3 syslog unix datagram listening on {}", path.display());
        tokio::spawn(logwire_g3::runtime::serve_unix_datagram(socket, ingest.clone()));
    }
    if let Some(addr) = args.fluentd {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on TCP {addr} for fluentd forward (pick another with --fluentd)")
        })?;
        let local = listener.local_addr().unwrap_or(addr);
        println!("logwire: g3 fluentd forward listening on {local}");
        let shared_key = fluentd_shared_key(args)?;
        if shared_key.is_some() {
            println!("logwire: g3 fluentd forward requires the shared_key handshake");
        }
        tokio::spawn(logwire_g3::runtime::serve_fluentd_with(listener, ingest.clone(), shared_key));
        match tokio::net::UdpSocket::bind(local).await {
            Ok(socket) => {
                tokio::spawn(logwire_g3::runtime::serve_fluentd_heartbeat(socket));
            }
            Err(e) => println!("logwire: no fluentd UDP heartbeat on {local}: {e}"),
        }
    }
    Ok(Some(ingest))
}

/// The handshake settings from `--fluentd-shared-key`, `--fluentd-hostname` and `--fluentd-user`.
fn fluentd_shared_key(
    args: &G3ServeArgs,
) -> anyhow::Result<Option<std::sync::Arc<logwire_g3::forward::SharedKeyConfig>>> {
    let Some(shared_key) = args.fluentd_shared_key.clone() else { return Ok(None) };
    let hostname = args.fluentd_hostname.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "logwire".to_string())
    });
    let users = args
        .fluentd_users
        .iter()
        .map(|u| {
            u.split_once(':')
                .map(|(user, password)| (user.to_string(), password.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--fluentd-user wants USER:PASSWORD, got no `:`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(std::sync::Arc::new(logwire_g3::forward::SharedKeyConfig { shared_key, hostname, users })))
}

/// One line of g3 counters for the exit summary.
pub fn summary(ingest: Option<&Ingest>) -> Option<String> {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &ingest?.stats;
    Some(format!(
        "g3: {} records, {} undecodable, {} connections, {} fluentd acks, {} chunks unacknowledged, \
         {} handshakes refused, {} reads held back for the store",
        s.logs.load(Relaxed),
        s.garbage.load(Relaxed),
        s.connections.load(Relaxed),
        s.acks.load(Relaxed),
        s.unacked.load(Relaxed),
        s.handshake_failures.load(Relaxed),
        s.held_back.load(Relaxed)
    ))
}
