//! `logwire nix -- <nix command…>`: runs the command with NIX_REMOTE pointing at a private relay in front
//! of the daemon, shows running builds and downloads live (phase and last log line, read from the wire),
//! stores everything, prints a summary and exits with the command's exit code.

use std::collections::{HashMap, HashSet};
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
use logwire_model::{now_ns, Kind, Record};
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

/// A span of the live tree: `(trace_id, span_id)`.
type Key = (String, String);

/// One activity (or op) of the live tree, built from records only.
#[derive(Debug, Clone)]
struct Node {
    /// `Build`, `FileTransfer`, `Builds`, …, or `op BuildPaths`.
    name: String,
    /// What it is about: a short derivation/path name, a URI, or the activity text.
    label: String,
    parent: Option<Key>,
    children: Vec<Key>,
    phase: String,
    last_line: Option<String>,
    /// The newest Progress result: (done, expected).
    progress: Option<(u64, u64)>,
    running: bool,
    /// When its start, and its end, arrived on the wire (the records' `time_ns`): durations come from the
    /// relay's receive times, not from when the display got round to drawing.
    started_ns: i64,
    ended_ns: Option<i64>,
}

impl Node {
    /// How long it ran, start to end, or until `now_ns` while running.
    fn duration(&self, now_ns: i64) -> Duration {
        let end = self.ended_ns.unwrap_or(now_ns);
        Duration::from_nanos(u64::try_from(end.saturating_sub(self.started_ns)).unwrap_or(0))
    }
}

/// The tree the live view renders: activities under their parent activity (or their op), with phase,
/// progress and last log line. Pure state, so it is tested on a capture without a terminal.
#[derive(Debug, Default)]
struct Tree {
    nodes: HashMap<Key, Node>,
    roots: Vec<Key>,
}

impl Tree {
    /// Applies one record; returns the node it ended, if any.
    fn on_record(&mut self, r: &Record) -> Option<Node> {
        let key = (r.trace_id.clone(), r.span_id.clone().unwrap_or_default());
        match r.kind {
            Kind::SpanStart => {
                let name = r.name.strip_prefix("nix:")?;
                let name = name.strip_prefix("op:").map_or_else(|| name.to_string(), |op| format!("op {op}"));
                let label = ["drv_path", "path", "uri", "text"]
                    .iter()
                    .find_map(|k| r.attrs.get(*k).and_then(|v| v.as_str()))
                    .map(short_name)
                    .unwrap_or_default();
                let parent = r.parent_id.as_ref().map(|p| (r.trace_id.clone(), p.clone()));
                let parent = parent.filter(|p| self.nodes.contains_key(p));
                match &parent {
                    Some(p) => self.nodes.get_mut(p)?.children.push(key.clone()),
                    None => self.roots.push(key.clone()),
                }
                let node = Node {
                    name,
                    label,
                    parent,
                    children: Vec::new(),
                    phase: String::new(),
                    last_line: None,
                    progress: None,
                    running: true,
                    started_ns: r.time_ns,
                    ended_ns: None,
                };
                self.nodes.insert(key, node);
                None
            }
            Kind::Event => {
                let node = self.nodes.get_mut(&key)?;
                let int = |k: &str| r.attrs.get(k).and_then(|v| v.as_u64());
                match r.name.as_str() {
                    "nix:result:SetPhase" => {
                        node.phase = r.attrs.get("phase").and_then(|v| v.as_str()).unwrap_or_default().to_string();
                    }
                    "nix:result:BuildLogLine" | "nix:result:PostBuildLogLine" => {
                        // Lines that arrive close together come as one event, its body the lines joined by '\n'.
                        node.last_line = r.body.as_deref().and_then(|b| b.rsplit('\n').next()).map(str::to_string)
                    }
                    "nix:result:Progress" => node.progress = int("done").zip(int("expected")),
                    _ => {}
                }
                None
            }
            Kind::SpanEnd => {
                let node = self.nodes.get_mut(&key)?;
                node.running = false;
                node.ended_ns = Some(r.time_ns);
                Some(node.clone())
            }
            Kind::Log => None,
        }
    }

    /// Forgets ended nodes; their running children move up to the top.
    fn prune(&mut self) {
        let ended: Vec<Key> = self.nodes.iter().filter(|(_, n)| !n.running).map(|(k, _)| k.clone()).collect();
        for key in ended {
            let Some(node) = self.nodes.remove(&key) else { continue };
            for child in node.children {
                if let Some(c) = self.nodes.get_mut(&child) {
                    c.parent = None;
                    self.roots.push(child);
                }
            }
        }
        let alive: HashSet<Key> = self.nodes.keys().cloned().collect();
        self.roots.retain(|k| alive.contains(k));
        for node in self.nodes.values_mut() {
            node.children.retain(|k| alive.contains(k));
        }
    }

    /// The nodes in display order (depth first, in start order) with their depth.
    fn rows(&self) -> Vec<(usize, &Node)> {
        let mut out = Vec::new();
        let mut stack: Vec<(usize, &Key)> = self.roots.iter().rev().map(|k| (0, k)).collect();
        while let Some((depth, key)) = stack.pop() {
            let Some(node) = self.nodes.get(key) else { continue };
            out.push((depth, node));
            stack.extend(node.children.iter().rev().map(|k| (depth + 1, k)));
        }
        out
    }
}

/// One line of the live view, `now_ns` being the current time.
fn render(depth: usize, node: &Node, now_ns: i64) -> String {
    let mut line = format!("{:indent$}{}", "", node.name, indent = depth * 2);
    if !node.label.is_empty() {
        line.push(' ');
        line.push_str(&node.label);
    }
    line.push_str(&format!(" {:.0}s", node.duration(now_ns).as_secs_f64()));
    if let Some((done, expected)) = node.progress {
        line.push_str(&format!(" {done}/{expected}"));
    }
    if !node.phase.is_empty() {
        line.push_str(&format!(" [{}]", node.phase));
    }
    if let Some(last) = &node.last_line {
        line.push_str(": ");
        line.extend(last.chars().take(160));
    }
    line
}

/// Live state built from the records: the tree, one line (a spinner) per running node.
struct Live {
    multi: MultiProgress,
    quiet: bool,
    tree: Tree,
    bars: Vec<ProgressBar>,
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
        if let Some(ended) = self.tree.on_record(r) {
            let kind = match ended.name.as_str() {
                "Build" => Some("build"),
                "FileTransfer" => Some("download"),
                "Substitute" | "CopyPath" => Some("copy"),
                _ => None,
            };
            if let Some(kind) = kind {
                let duration = ended.duration(r.time_ns);
                self.finished.push(Finished { label: ended.label, kind, duration });
            }
        }
        if (r.kind, r.name.as_str()) == (Kind::Event, "nix:error") {
            let first = r.body.as_deref().unwrap_or_default().lines().next().unwrap_or_default().to_string();
            self.errors.push(first);
        }
    }

    /// Redraws the tree (once per batch of records, not once per line: a build can print a million
    /// lines), then forgets what ended.
    fn refresh(&mut self) {
        self.tree.prune();
        if self.quiet {
            return;
        }
        let rows = self.tree.rows();
        while self.bars.len() < rows.len() {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bars.push(bar);
        }
        while self.bars.len() > rows.len() {
            if let Some(bar) = self.bars.pop() {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
        let now = now_ns();
        for (bar, (depth, node)) in self.bars.iter().zip(rows) {
            bar.set_message(render(depth, node, now));
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
    let relay = crate::sources::nix::Relay::start(&socket, upstream, sink)?;
    let stats = relay.stats.clone();

    let multi = MultiProgress::new();
    let mut live = Live {
        multi: multi.clone(),
        quiet: args.quiet,
        tree: Tree::default(),
        bars: Vec::new(),
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
    relay.stop();
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

#[cfg(test)]
mod tests {
    use super::*;
    use logwire_nix::observer::Observer;
    use logwire_nix::record::ConnectionRecorder;

    /// The records of `fixtures/nix/cap4-nixbuild` (a real `nix-build` against Nix 2.8), as the relay makes them.
    fn capture_records() -> Vec<Record> {
        let dir = std::env::var_os("LOGWIRE_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"))
            .join("nix/cap4-nixbuild");
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut observer = Observer::default();
        let mut recorder = ConnectionRecorder::new("cap4");
        let mut records = Vec::new();
        observer.feed_client(&read("conn0.c2s.bin"));
        observer.feed_daemon(&read("conn0.s2c.bin"));
        while let Some(event) = observer.poll_event() {
            recorder.on_event(&event, 0, &mut records);
        }
        assert!(!observer.is_out_of_sync());
        records
    }

    #[test]
    fn tree_nests_activities_with_progress_phase_and_last_line() {
        let records = capture_records();
        let mut tree = Tree::default();
        let mut ended = Vec::new();
        for r in &records {
            ended.extend(tree.on_record(r));
        }
        let rows: Vec<(usize, String, String)> =
            tree.rows().iter().map(|(d, n)| (*d, n.name.clone(), n.label.clone())).collect();
        // Each op is a root; the daemon's activities (parent 0 on the wire) hang under the op they ran in.
        let names: Vec<(usize, &str)> = rows.iter().map(|(d, n, _)| (*d, n.as_str())).collect();
        assert_eq!(
            names,
            [
                (0, "op SetOptions"),
                (0, "op AddToStore"),
                (0, "op BuildPathsWithResults"),
                (1, "Realise"),
                (1, "Builds"),
                (1, "CopyPaths"),
                (1, "Unknown"),
                (1, "Build")
            ]
        );
        let build = tree.rows().into_iter().find(|(_, n)| n.name == "Build").expect("a Build node");
        assert_eq!((build.0, build.1.label.as_str()), (1, "hello-log-newcli1"));
        let last_line = records
            .iter()
            .rev()
            .find(|r| r.name == "nix:result:BuildLogLine")
            .and_then(|r| r.body.as_deref()?.rsplit('\n').next().map(str::to_string));
        assert!(last_line.is_some());
        assert_eq!(build.1.last_line, last_line);
        // Builds reported 0/1, then 1/1 (the wire's Progress results).
        let builds = tree.rows().into_iter().find(|(_, n)| n.name == "Builds").expect("a Builds node");
        assert_eq!((builds.0, builds.1.progress), (1, Some((1, 1))));
        assert!(ended.iter().any(|n| n.name == "Build"));
        // Everything ended with the connection's records; pruning leaves nothing on screen.
        tree.prune();
        assert!(tree.rows().is_empty());
    }

    #[test]
    fn durations_come_from_the_wire_times_of_start_and_stop() {
        // The capture's records restamped one second apart, as if each message arrived a second after the
        // previous one; the tree is fed them all at once, long after, as a slow display would.
        let records: Vec<Record> = capture_records()
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.time_ns = 1_000_000_000 * (i as i64 + 1);
                r
            })
            .collect();
        let start =
            records.iter().position(|r| r.kind == Kind::SpanStart && r.name == "nix:Build").expect("Build start");
        let end = records.iter().position(|r| r.kind == Kind::SpanEnd && r.name == "nix:Build").expect("Build end");
        let mut tree = Tree::default();
        let mut ended = Vec::new();
        for r in &records[..=start] {
            ended.extend(tree.on_record(r));
        }
        // While running, the live line counts from the start's arrival to now.
        let (depth, node) = tree.rows().into_iter().find(|(_, n)| n.name == "Build").expect("a running Build");
        let now = records[start].time_ns + 7_000_000_000;
        assert!(render(depth, node, now).contains(" 7s"), "{}", render(depth, node, now));
        for r in &records[start + 1..] {
            ended.extend(tree.on_record(r));
        }
        let build = ended.iter().find(|n| n.name == "Build").expect("Build ended");
        assert_eq!(build.duration(i64::MAX), Duration::from_secs((end - start) as u64));
    }

    #[test]
    fn tree_tracks_phase_and_progress_as_they_change() {
        let records = capture_records();
        let mut tree = Tree::default();
        let mut seen_progress = Vec::new();
        for r in &records {
            tree.on_record(r);
            if r.name == "nix:result:Progress" {
                let node = tree.rows().into_iter().find(|(_, n)| n.name == "Builds").map(|(_, n)| n.progress);
                seen_progress.extend(node.flatten());
            }
        }
        assert_eq!(seen_progress.first(), Some(&(0, 1)));
        assert_eq!(seen_progress.last(), Some(&(1, 1)));
    }
}
