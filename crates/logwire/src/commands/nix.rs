//! `logwire nix -- <nix command…>`: runs the command with NIX_REMOTE pointing at a private relay in front
//! of the daemon, shows running builds and downloads live (phase and last log line, read from the wire),
//! stores everything, prints a summary and exits with the command's exit code.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use logwire_model::{Kind, Record};
use logwire_nix::runtime::{RecordSink, Upstream};
use logwire_store::{Store, WriterConfig};

use crate::commands::Result;

#[derive(Args, Debug)]
pub struct NixArgs {
    /// SQLite file to store records in (created if missing).
    #[arg(long, default_value = crate::DEFAULT_DB)]
    pub db: PathBuf,
    /// The daemon socket to relay to (default /nix/var/nix/daemon-socket/socket).
    #[arg(long, value_name = "SOCKET", conflicts_with = "nix_daemon_stdio")]
    pub nix_daemon: Option<PathBuf>,
    /// Spawn `nix-daemon --stdio` per connection instead of using a daemon socket.
    #[arg(long)]
    pub nix_daemon_stdio: bool,
    /// Records the store queue may hold; beyond it records are dropped and counted, never waited for.
    #[arg(long, default_value_t = 1 << 20, value_name = "RECORDS")]
    pub queue: usize,
    /// No live display (only the summary).
    #[arg(long)]
    pub quiet: bool,
    /// The Nix command, after `--` (e.g. `-- nix-build hello.nix`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// A finished activity for the summary.
struct Finished {
    label: String,
    kind: &'static str,
    duration: Duration,
}

/// A running build or download: its spinner, label, kind, start and current phase.
struct Running {
    bar: ProgressBar,
    label: String,
    kind: &'static str,
    started: Instant,
    phase: String,
    /// The newest log line, shown at the next refresh.
    last_line: Option<String>,
}

/// Live state built from the records: one spinner per running build/download.
struct Live {
    multi: MultiProgress,
    quiet: bool,
    running: HashMap<(String, String), Running>,
    finished: Vec<Finished>,
    errors: Vec<String>,
}

/// `/nix/store/<hash>-name.drv` → `name`.
fn short_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    match base.split_once('-') {
        Some((hash, name)) if hash.len() == 32 => name.to_string(),
        _ => base.to_string(),
    }
}

impl Live {
    fn on_record(&mut self, r: &Record) {
        let key = (r.trace_id.clone(), r.span_id.clone().unwrap_or_default());
        match (r.kind, r.name.as_str()) {
            (Kind::SpanStart, "nix:Build" | "nix:Substitute" | "nix:FileTransfer" | "nix:CopyPath") => {
                let kind = match r.name.as_str() {
                    "nix:Build" => "build",
                    "nix:FileTransfer" => "download",
                    _ => "copy",
                };
                let subject = ["drv_path", "path", "uri"]
                    .iter()
                    .find_map(|k| r.attrs.get(*k).and_then(|v| v.as_str()))
                    .unwrap_or("?");
                let label = short_name(subject);
                let bar = if self.quiet { ProgressBar::hidden() } else { self.multi.add(ProgressBar::new_spinner()) };
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:.bold} {elapsed:>4} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(format!("{kind} {label}"));
                bar.enable_steady_tick(Duration::from_millis(120));
                self.running.insert(
                    key,
                    Running { bar, label, kind, started: Instant::now(), phase: String::new(), last_line: None },
                );
            }
            (Kind::Event, "nix:result:BuildLogLine" | "nix:result:SetPhase") => {
                if let Some(running) = self.running.get_mut(&key) {
                    if r.name == "nix:result:SetPhase" {
                        running.phase = r.attrs.get("phase").and_then(|v| v.as_str()).unwrap_or_default().to_string();
                    }
                    running.last_line = Some(r.body.clone().unwrap_or_default());
                }
            }
            (Kind::SpanEnd, _) => {
                if let Some(running) = self.running.remove(&key) {
                    running.bar.finish_and_clear();
                    self.multi.remove(&running.bar);
                    self.finished.push(Finished {
                        label: running.label,
                        kind: running.kind,
                        duration: running.started.elapsed(),
                    });
                }
            }
            (Kind::Event, "nix:error") => {
                let first = r.body.as_deref().unwrap_or_default().lines().next().unwrap_or_default().to_string();
                self.errors.push(first);
            }
            _ => {}
        }
    }
}

impl Live {
    /// Shows each running activity's newest line (once per batch of records, not once per line: a build
    /// can print a million lines).
    fn refresh(&mut self) {
        for running in self.running.values_mut() {
            if let Some(line) = running.last_line.take() {
                let line: String = line.chars().take(160).collect();
                let phase = &running.phase;
                running.bar.set_message(if phase.is_empty() { line } else { format!("[{phase}] {line}") });
            }
        }
    }
}

/// Strips ANSI escapes (Nix colours its error messages).
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn run(args: NixArgs) -> Result<ExitCode> {
    let writer = Store::spawn_writer(&args.db, WriterConfig { queue_capacity: args.queue, ..WriterConfig::default() })
        .with_context(|| format!("cannot open the store {}", args.db.display()))?;
    let store = writer.handle();
    let dir = std::env::temp_dir().join(format!("logwire-nix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let socket = dir.join("relay.sock");
    let upstream = if args.nix_daemon_stdio {
        Upstream::stdio()
    } else {
        Upstream::Socket(args.nix_daemon.clone().unwrap_or_else(|| PathBuf::from(Upstream::DEFAULT_SOCKET)))
    };

    // Records go to the store and, through an unbounded channel drained by the display thread, to the
    // live view; neither ever blocks the relay.
    let (tx, rx) = mpsc::channel::<Vec<Record>>();
    let store_for_sink = store.clone();
    let sink: RecordSink = Arc::new(move |records: Vec<Record>| {
        let _ = tx.send(records.clone());
        store_for_sink.try_send(records);
    });
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the tokio runtime")?;
    let stats = runtime.block_on(async { crate::sources::nix::spawn_relay_with_sink(&socket, upstream, sink) })?;

    let multi = MultiProgress::new();
    let mut live = Live {
        multi: multi.clone(),
        quiet: args.quiet,
        running: HashMap::new(),
        finished: Vec::new(),
        errors: Vec::new(),
    };
    let display = std::thread::spawn(move || {
        while let Ok(batch) = rx.recv() {
            for record in batch.iter().chain(rx.try_iter().flatten().collect::<Vec<_>>().iter()) {
                live.on_record(record);
            }
            live.refresh();
        }
        live
    });

    let started = Instant::now();
    let (program, rest) = args.command.split_first().context("no command given after --")?;
    let mut child = std::process::Command::new(program)
        .args(rest)
        .env("NIX_REMOTE", format!("unix://{}", socket.display()))
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", program.to_string_lossy()))?;
    // The command's own stderr is printed above the live view.
    let stderr_printer = child.stderr.take().map(|stderr| {
        let multi = multi.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(std::result::Result::ok) {
                // Without a terminal the live view is hidden, and so would be its println.
                if multi.is_hidden() {
                    eprintln!("{line}");
                } else {
                    let _ = multi.println(line);
                }
            }
        })
    });
    let status = child.wait().context("waiting for the command")?;
    if let Some(t) = stderr_printer {
        let _ = t.join();
    }
    // Let the relay finish its connections (their records) before closing the store.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.connections_closed.load(Ordering::Relaxed) < stats.connections.load(Ordering::Relaxed)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime.shutdown_timeout(Duration::from_millis(500));
    let live = display.join().map_err(|_| anyhow::anyhow!("the display thread panicked"))?;
    let _ = std::fs::remove_dir_all(&dir);
    let written = writer.close().context("the store could not be flushed")?;

    let failed: Vec<String> = live.errors.iter().map(|e| plain(e)).collect();
    let builds: Vec<&Finished> = live.finished.iter().filter(|f| f.kind == "build").collect();
    let built: Vec<&&Finished> =
        builds.iter().filter(|b| !failed.iter().any(|e| e.contains(&format!("-{}.drv", b.label)))).collect();
    let downloads = live.finished.iter().filter(|f| f.kind != "build").count();
    eprintln!(
        "logwire nix: {} built, {} failed, {} downloads/copies in {:.1} s; {} records in {}{}",
        built.len(),
        builds.len() - built.len(),
        downloads,
        started.elapsed().as_secs_f64(),
        written.written,
        args.db.display(),
        if written.dropped > 0 {
            format!(" ({} dropped: the store queue was full; raise --queue)", written.dropped)
        } else {
            String::new()
        }
    );
    for b in &built {
        eprintln!("  built  {} ({:.1} s)", b.label, b.duration.as_secs_f64());
    }
    for e in &failed {
        eprintln!("  failed {e}");
    }
    let code = status.code().unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
