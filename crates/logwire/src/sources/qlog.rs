//! The qlog source: watches a directory (`QLOGDIR`), tails growing `.sqlog` files and reads finished
//! `.qlog` (and compressed) files, one trace per connection, one record per event, and one
//! `quic:connection` span per connection (ended at `connection_closed`, or at the last event once the
//! file is complete: for a tailed file, when it has not grown for the idle time or when logwire stops).

use logwire_model::now_ns;
use logwire_qlog::reader::{decode_event, seq_header};
use logwire_qlog::record::{event_record, span_id, trace_id, Anchor, Connections};
use logwire_qlog::tail::SeqTail;
use logwire_qlog::{Header, Reader, Trace};
use logwire_store::StoreHandle;
use std::collections::HashMap;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(200);
/// A contained-JSON or compressed file is read once it has not changed for this many polls.
const STABLE_POLLS: u32 = 2;

#[derive(Default)]
pub struct QlogStats {
    pub files: AtomicU64,
    pub events: AtomicU64,
    pub damaged: AtomicU64,
}

enum FileState {
    Tail {
        pos: u64,
        // Boxed, so that the two variants stay close in size (clippy::large_enum_variant).
        tail: Box<SeqTail>,
        session: Option<Box<(Header, Trace)>>,
        anchor: Option<Anchor>,
        record: usize,
        connections: Connections,
        /// When the file last grew.
        grew: Instant,
    },
    Whole {
        size: u64,
        stable: u32,
        done: bool,
    },
}

/// Polls `dir` until `stop` is set, then takes what is left and returns.
/// A tailed file idle for `idle` ends its open connection spans.
pub fn watch(dir: PathBuf, idle: Duration, store: StoreHandle, stats: Arc<QlogStats>, stop: Arc<AtomicBool>) {
    let mut files: HashMap<PathBuf, FileState> = HashMap::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let state = match files.get_mut(&path) {
                    Some(s) => s,
                    None if name.ends_with(".sqlog") => {
                        stats.files.fetch_add(1, Ordering::Relaxed);
                        files.entry(path.clone()).or_insert(FileState::Tail {
                            pos: 0,
                            tail: Box::new(SeqTail::new()),
                            session: None,
                            anchor: None,
                            record: 0,
                            connections: Connections::new(),
                            grew: Instant::now(),
                        })
                    }
                    None if [".qlog", ".sqlog.gz", ".sqlog.zst", ".qlog.gz", ".qlog.zst"]
                        .iter()
                        .any(|e| name.ends_with(e)) =>
                    {
                        stats.files.fetch_add(1, Ordering::Relaxed);
                        files.entry(path.clone()).or_insert(FileState::Whole { size: u64::MAX, stable: 0, done: false })
                    }
                    None => continue,
                };
                poll_file(&path, &name, state, &store, &stats, stopping, idle);
            }
        }
        if stopping {
            return;
        }
        std::thread::sleep(POLL);
    }
}

fn poll_file(
    path: &Path,
    label: &str,
    state: &mut FileState,
    store: &StoreHandle,
    stats: &QlogStats,
    eof: bool,
    idle: Duration,
) {
    match state {
        FileState::Tail { pos, tail, session, anchor, record, connections, grew } => {
            let Ok(mut f) = std::fs::File::open(path) else { return };
            if f.seek(SeekFrom::Start(*pos)).is_err() {
                return;
            }
            // Bounded per poll so that one huge file cannot starve the others.
            if let Ok(n) = tail.read_from(&mut f, 64 << 20) {
                *pos += n as u64;
                if n > 0 {
                    *grew = Instant::now();
                }
            }
            let mut batch = Vec::new();
            while let Some(rec) = tail.next_record(eof) {
                let Ok(text) = std::str::from_utf8(rec.bytes) else {
                    stats.damaged.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                match session {
                    None => match seq_header(text) {
                        Ok(s) => *session = Some(Box::new(s)),
                        Err(e) => {
                            stats.damaged.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!("qlog: {label}: the header at byte {} is unreadable: {e}", rec.offset);
                        }
                    },
                    Some(s) => {
                        let (header, trace) = &mut **s;
                        *record += 1;
                        match decode_event(text, header, trace, *record, rec.offset as usize, 0) {
                            Ok(e) => {
                                let a = *anchor
                                    .get_or_insert(Anchor { first_event_ns: now_ns(), first_time_ms: e.time_ms });
                                let id = trace_id(&e, trace, label);
                                let mut r = event_record(header, trace, &e, &id, &a);
                                r.span_id = Some(span_id(&e, label));
                                connections.observe(header, trace, &r, &mut batch);
                                batch.push(r);
                            }
                            Err((msg, _)) => {
                                stats.damaged.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(
                                    "qlog: {label}: record {} at byte {} is damaged: {msg}",
                                    record,
                                    rec.offset
                                );
                            }
                        }
                    }
                }
            }
            if eof || (connections.open_count() > 0 && grew.elapsed() >= idle) {
                // The file is complete, or its writer is gone quiet: connections without connection_closed
                // end at their last event. Later events are still stored; they do not reopen the span.
                connections.finish(&mut batch);
            }
            send(store, stats, batch);
        }
        FileState::Whole { size, stable, done } => {
            if *done {
                return;
            }
            let Ok(meta) = std::fs::metadata(path) else { return };
            if meta.len() != *size {
                *size = meta.len();
                *stable = 0;
                if !eof {
                    return;
                }
            }
            *stable += 1;
            if *stable < STABLE_POLLS && !eof {
                return;
            }
            let Ok(bytes) = logwire_qlog::compress::load(path) else { return };
            let Ok(mut reader) = Reader::new(&bytes) else {
                // Not complete yet (aioquic writes the whole file at the end); try again when it changes.
                *stable = 0;
                return;
            };
            *done = true;
            let mut anchors: HashMap<usize, Anchor> = HashMap::new();
            let mut connections = Connections::new();
            let mut batch = Vec::new();
            while let Some(item) = reader.next() {
                match item {
                    Ok(e) => {
                        let trace = &reader.traces[e.trace];
                        let a = *anchors
                            .entry(e.trace)
                            .or_insert(Anchor { first_event_ns: now_ns(), first_time_ms: e.time_ms });
                        let id = trace_id(&e, trace, label);
                        let mut r = event_record(&reader.header, trace, &e, &id, &a);
                        r.span_id = Some(span_id(&e, label));
                        connections.observe(&reader.header, trace, &r, &mut batch);
                        batch.push(r);
                    }
                    Err(d) => {
                        stats.damaged.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("qlog: {label}: {d}");
                    }
                }
            }
            connections.finish(&mut batch);
            send(store, stats, batch);
        }
    }
}

fn send(store: &StoreHandle, stats: &QlogStats, batch: Vec<logwire_model::Record>) {
    if batch.is_empty() {
        return;
    }
    let events = batch.iter().filter(|r| r.kind == logwire_model::Kind::Event).count();
    stats.events.fetch_add(events as u64, Ordering::Relaxed);
    // A full queue drops and counts (the store reports it); a file is never re-read for it.
    store.try_send(batch);
}

/// The running directory watcher.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    stats: Arc<QlogStats>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts watching `dir` when given; prints where.
pub fn start(dir: Option<&Path>, idle: Duration, store: StoreHandle) -> anyhow::Result<Option<Watcher>> {
    let Some(dir) = dir else { return Ok(None) };
    if !dir.is_dir() {
        anyhow::bail!("--qlog-dir {}: not a directory (create it, then point QLOGDIR at it)", dir.display());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(QlogStats::default());
    let (d, s, st) = (dir.to_path_buf(), stats.clone(), stop.clone());
    let thread = std::thread::Builder::new().name("qlog-dir".into()).spawn(move || watch(d, idle, store, s, st))?;
    println!(
        "logwire: qlog: watching {} for .sqlog/.qlog files (run the QUIC stacks with QLOGDIR={})",
        dir.display(),
        dir.display()
    );
    Ok(Some(Watcher { stop, stats, thread: Some(thread) }))
}

impl Watcher {
    /// Takes what the files hold now, stops, and returns a one-line summary.
    pub fn stop(mut self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        format!(
            "qlog: {} files, {} events, {} damaged records",
            self.stats.files.load(Ordering::Relaxed),
            self.stats.events.load(Ordering::Relaxed),
            self.stats.damaged.load(Ordering::Relaxed)
        )
    }
}
