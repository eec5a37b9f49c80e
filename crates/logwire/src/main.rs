//! `logwire`: the binary only wires crates together — protocol sources (`sources/`), the SQLite sink
//! (`logwire-store`) and the command line. No protocol logic lives here.

mod commands;
mod sources;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Protocol-native structured logging for network daemons.
///
/// logwire speaks the log and event channels of network daemons in their own wire formats, turns them
/// into one span/event model and stores them in an embedded SQLite file (`--db`, default logwire.db):
///
///   HAProxy SPOE/SPOP   logwire is the SPOA agent: `serve` (on by default, 127.0.0.1:12345)
///   Nix daemon          a transparent relay: `serve --nix-socket PATH`, or `nix -- <command>`
///   qlog (QUIC, HTTP/3) `serve --qlog-dir DIR` watches a QLOGDIR; `qlog` reads and converts files
///   g3proxy             `serve --syslog-udp/--syslog-tcp/--syslog-unix/--fluentd`; `g3 import`, `g3 stats`
///
/// Then `query` runs SQL on what was stored and `tail` follows it as it arrives. Every listener binds to
/// loopback unless given another address.
#[derive(Parser)]
#[command(name = "logwire", version, propagate_version = true, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// `serve` carries every listener's flags; the enum is built once per run, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run every enabled listener and store what arrives (Ctrl-C or SIGTERM flushes and exits 0).
    Serve(commands::serve::ServeArgs),
    /// Run read-only SQL on the store and print a table (or JSON lines with --json).
    ///
    /// Views: events(time_ns, source, kind, trace_id, span_id, parent_id, name, level, attrs, body) and
    /// spans(source, trace_id, span_id, parent_id, name, start_ns, end_ns, duration_ns, attrs).
    Query(commands::query::QueryArgs),
    /// Follow new records as they are stored.
    Tail(commands::query::TailArgs),
    /// HAProxy SPOP tools: probe an agent, load-test it, check a SPOE configuration.
    #[command(subcommand)]
    Spop(commands::spop::SpopCommand),
    /// qlog tools (any version, JSON-SEQ or contained JSON, .gz/.zst): summary, convert, check, plot.
    #[command(subcommand)]
    Qlog(commands::qlog::QlogCommand),
    /// g3proxy logs: import captures, task statistics.
    #[command(subcommand)]
    G3(commands::g3::G3Command),
    /// Run a Nix command through a private relay: live builds, a summary, everything stored.
    Nix(commands::nix::NixArgs),
}

// Records are built on the network threads and freed on the store's writer thread; mimalloc handles
// that cross-thread pattern far better than glibc's malloc (see scripts/bench-haproxy.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The default store file.
pub const DEFAULT_DB: &str = "logwire.db";

pub fn default_db() -> PathBuf {
    PathBuf::from(DEFAULT_DB)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOGWIRE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Query(args) => commands::query::run_query(args),
        Command::Tail(args) => commands::query::run_tail(args),
        Command::Spop(cmd) => commands::spop::run(cmd),
        Command::Qlog(cmd) => commands::qlog::run(cmd),
        Command::G3(cmd) => commands::g3::run(cmd),
        Command::Nix(args) => commands::nix::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logwire: {e:#}");
            ExitCode::from(1)
        }
    }
}
