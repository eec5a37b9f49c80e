//! The writer: a bounded queue in front of one thread that owns the write connection.
//!
//! Producers (protocol sources on the data path) call [`StoreHandle::try_send`]; it reserves room in the
//! queue with one atomic compare-and-swap and hands the records to an unbounded channel, or, when the
//! reservation fails, drops them and bumps a counter. It never waits for the writer, the disk or a lock.
//! The queue is bounded in *records* (not messages): `queued` counts records accepted but not yet taken by
//! the writer, and it can never exceed [`WriterConfig::queue_capacity`].
//!
//! The writer thread takes records off the channel into a batch and commits the batch as one transaction
//! when it holds `max_batch` records, when `max_delay` has passed since its first record, or when someone
//! asks for a flush. Each commit also writes the growth of the drop counters into the `drops` table.

use crate::error::{Result, StoreError};
use crate::schema::Store;
use logwire_model::{Record, Source};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How the writer batches and how much it may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// Most records waiting in the queue; beyond it `try_send` drops and counts. A single `try_send` of more
    /// records than this is always dropped, so keep it well above the largest batch a producer sends
    /// (zero drops everything).
    pub queue_capacity: usize,
    /// Most records per transaction (a batch may exceed it by the size of the last `try_send` it took).
    /// Zero is treated as one.
    pub max_batch: usize,
    /// Longest time the first record of a batch waits for more before the batch is committed.
    pub max_delay: Duration,
    /// How long the writer waits for a lock held by another connection before the write fails.
    pub busy_timeout: Duration,
}

impl Default for WriterConfig {
    /// 65 536 queued records, batches of 4 096, 50 ms delay, 5 s busy timeout.
    fn default() -> Self {
        WriterConfig {
            queue_capacity: 65_536,
            max_batch: 4_096,
            max_delay: Duration::from_millis(50),
            busy_timeout: crate::schema::DEFAULT_BUSY_TIMEOUT,
        }
    }
}

/// A snapshot of the writer's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records accepted into the queue since the start.
    pub accepted: u64,
    /// Records in the queue now, not yet taken by the writer.
    pub queued: u64,
    /// Records committed to the database.
    pub written: u64,
    /// Records dropped because the queue was full (or the writer had stopped). Also in the `drops` table.
    pub dropped: u64,
    /// Transactions committed that held records.
    pub batches: u64,
    /// Records given up after a write error and one retry (not in the `drops` table: the database was
    /// failing when they were lost).
    pub failed: u64,
    /// Failed write attempts (each batch is tried at most twice).
    pub write_errors: u64,
    /// Text of the latest write error, if any.
    pub last_error: Option<String>,
}

/// What became of records sent with [`StoreHandle::try_send_with_commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The transaction holding them has committed.
    Committed,
    /// They were dropped: the queue was full, the writer had stopped, or the write failed twice.
    Dropped,
}

type CommitCallback = Box<dyn FnOnce(CommitOutcome) + Send + 'static>;

enum Msg {
    Records(Vec<Record>, Option<CommitCallback>),
    Flush(mpsc::Sender<()>),
    Shutdown,
}

/// Counters shared by the producers and the writer thread.
#[derive(Debug)]
struct Shared {
    path: PathBuf,
    capacity: u64,
    queued: AtomicU64,
    accepted: AtomicU64,
    written: AtomicU64,
    /// Dropped records per source, indexed like [`Source::ALL`].
    dropped: [AtomicU64; SOURCES],
    batches: AtomicU64,
    failed: AtomicU64,
    write_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Set by the writer when it shuts down; producers that see it drop instead of sending.
    closed: AtomicBool,
}

/// Number of sources; drop counters are kept per source, indexed like [`Source::ALL`].
pub(crate) const SOURCES: usize = Source::ALL.len();

fn source_index(source: Source) -> usize {
    match source {
        Source::Spop => 0,
        Source::Nix => 1,
        Source::Qlog => 2,
        Source::G3 => 3,
    }
}

impl Shared {
    fn count_dropped(&self, records: &[Record]) {
        let mut per_source = [0u64; SOURCES];
        for r in records {
            per_source[source_index(r.source)] += 1;
        }
        for (counter, n) in self.dropped.iter().zip(per_source) {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    fn dropped_now(&self) -> [u64; SOURCES] {
        std::array::from_fn(|i| self.dropped[i].load(Ordering::Relaxed))
    }

    /// Reserve room for `n` records; false when they do not fit.
    fn reserve(&self, n: u64) -> bool {
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                q.checked_add(n).filter(|&total| total <= self.capacity)
            })
            .is_ok()
    }
}

/// The producer side of the writer: cheap to clone, `Send + Sync`, and never blocks in `try_send*`.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle").field("path", &self.shared.path).finish_non_exhaustive()
    }
}

impl StoreHandle {
    /// Queue `records` for writing. Never blocks: if they do not all fit in the queue (or the writer has
    /// stopped) they are dropped and counted in [`WriterStats::dropped`] and the `drops` table. Returns whether
    /// they were queued; a producer on the data path can ignore it.
    pub fn try_send(&self, records: Vec<Record>) -> bool {
        self.enqueue(records, None)
    }

    /// Queue one record; see [`StoreHandle::try_send`].
    pub fn try_send_one(&self, record: Record) -> bool {
        self.enqueue(vec![record], None)
    }

    /// Queue `records` and learn when they are committed: `on_commit` is called exactly once, with
    /// [`CommitOutcome::Committed`] on the writer thread after the transaction holding them has committed, or
    /// with [`CommitOutcome::Dropped`] if they were dropped (on the calling thread at once when the queue is
    /// full, on the writer thread when the write failed twice). It must be quick and must not block: send on a
    /// channel (a tokio `oneshot`, an `mpsc::Sender<()>`…) and return. This is what an acknowledging source
    /// (fluentd forward `ack`) needs; never blocks, like [`StoreHandle::try_send`].
    pub fn try_send_with_commit(
        &self,
        records: Vec<Record>,
        on_commit: impl FnOnce(CommitOutcome) + Send + 'static,
    ) -> bool {
        self.enqueue(records, Some(Box::new(on_commit)))
    }

    fn enqueue(&self, records: Vec<Record>, on_commit: Option<CommitCallback>) -> bool {
        let shared = &*self.shared;
        let n = records.len() as u64;
        if n == 0 {
            // Nothing to commit, so nothing to wait for.
            if let Some(cb) = on_commit {
                cb(CommitOutcome::Committed);
            }
            return true;
        }
        // Reserve first, then look at `closed` (both SeqCst): the writer sets `closed` and then waits until
        // `queued` is zero, so a reservation it does not see was made by a producer that will see `closed`.
        if !shared.reserve(n) {
            shared.count_dropped(&records);
            if let Some(cb) = on_commit {
                cb(CommitOutcome::Dropped);
            }
            return false;
        }
        if shared.closed.load(Ordering::SeqCst) {
            return self.give_back(records, on_commit);
        }
        shared.accepted.fetch_add(n, Ordering::Relaxed);
        match self.tx.send(Msg::Records(records, on_commit)) {
            Ok(()) => true,
            Err(mpsc::SendError(msg)) => {
                shared.accepted.fetch_sub(n, Ordering::Relaxed);
                match msg {
                    Msg::Records(records, on_commit) => self.give_back(records, on_commit),
                    Msg::Flush(_) | Msg::Shutdown => false,
                }
            }
        }
    }

    /// Undo a reservation for records that will not be sent, and count them as dropped.
    fn give_back(&self, records: Vec<Record>, on_commit: Option<CommitCallback>) -> bool {
        self.shared.queued.fetch_sub(records.len() as u64, Ordering::SeqCst);
        self.shared.count_dropped(&records);
        if let Some(cb) = on_commit {
            cb(CommitOutcome::Dropped);
        }
        false
    }

    /// Wait until everything queued before this call has been committed (or given up after a failed retry,
    /// see [`WriterStats::failed`]). Blocks the caller — not for the data path; from async code call it in
    /// `spawn_blocking`. Fails only if the writer has stopped.
    pub fn flush(&self) -> Result<()> {
        let (done_tx, done_rx) = mpsc::channel();
        let stopped = || StoreError::WriterStopped { path: self.shared.path.clone() };
        self.tx.send(Msg::Flush(done_tx)).map_err(|_| stopped())?;
        done_rx.recv().map_err(|_| stopped())
    }

    /// Whether the queue is at most half full. Producers that can hold their sender back (a TCP listener
    /// can stop reading, and TCP flow control and the sender's own queue do the rest) should wait while this
    /// is false instead of sending: then the records of a sender that outpaces the disk wait where nothing
    /// is lost, and the other half of the queue stays free for producers that cannot wait (the SPOP agent,
    /// the Nix relay, datagram listeners). One atomic load.
    pub fn has_room_for_bulk(&self) -> bool {
        self.shared.queued.load(Ordering::Relaxed) <= self.shared.capacity / 2
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> WriterStats {
        let s = &*self.shared;
        WriterStats {
            accepted: s.accepted.load(Ordering::Relaxed),
            queued: s.queued.load(Ordering::Relaxed),
            written: s.written.load(Ordering::Relaxed),
            dropped: s.dropped_now().iter().sum(),
            batches: s.batches.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            write_errors: s.write_errors.load(Ordering::Relaxed),
            last_error: s.last_error.lock().map(|e| e.clone()).unwrap_or_else(|p| p.into_inner().clone()),
        }
    }

    /// The database file the writer writes to.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

/// Owner of the writer thread. Derefs to a [`StoreHandle`]; [`WriterGuard::close`] (or dropping the guard)
/// commits everything queued, writes the last drop counts and joins the thread. Handles cloned from it keep
/// working until then; afterwards their `try_send` drops and counts, and `flush` fails.
#[derive(Debug)]
pub struct WriterGuard {
    handle: StoreHandle,
    thread: Option<JoinHandle<()>>,
}

impl Deref for WriterGuard {
    type Target = StoreHandle;
    fn deref(&self) -> &StoreHandle {
        &self.handle
    }
}

impl WriterGuard {
    /// A handle for producers (same as `guard.clone()` through `Deref`).
    pub fn handle(&self) -> StoreHandle {
        self.handle.clone()
    }

    /// Commit everything queued, stop the writer thread and return the final counters.
    pub fn close(mut self) -> Result<WriterStats> {
        self.shutdown()?;
        Ok(self.handle.stats())
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // If the send fails the thread has already ended; joining tells how.
        let _ = self.handle.tx.send(Msg::Shutdown);
        thread.join().map_err(|_| StoreError::WriterPanicked { path: self.handle.shared.path.clone() })
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Store {
    /// Open (or create) the database at `path` and start the writer thread that owns the connection.
    /// Opening happens here, so a bad path or a newer schema is reported to the caller, not lost in a
    /// thread. The crate docs tell how the queue and the batching work.
    pub fn spawn_writer(path: impl AsRef<Path>, config: WriterConfig) -> Result<WriterGuard> {
        let path = path.as_ref().to_path_buf();
        let store = Store::open_with_busy_timeout(&path, config.busy_timeout)?;
        let shared = Arc::new(Shared {
            path: path.clone(),
            capacity: config.queue_capacity as u64,
            queued: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: Default::default(),
            batches: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        // The writer leaves checkpoints to its own thread and only steps in when the WAL outgrows the backstop.
        // The backstop is set in pages, and a file made by an older logwire may have smaller ones.
        let open_err = |source| StoreError::Open { path: path.clone(), source };
        let page_size: i64 =
            store.connection().query_row("PRAGMA page_size", [], |row| row.get(0)).map_err(open_err)?;
        store
            .connection()
            .pragma_update(None, "wal_autocheckpoint", CHECKPOINT_BACKSTOP_BYTES / page_size.max(512))
            .map_err(open_err)?;
        let checkpointer = Checkpointer::spawn(&path, config.busy_timeout)?;
        let (tx, rx) = mpsc::channel();
        let mut writer = Writer {
            store,
            rx,
            shared: shared.clone(),
            max_batch: config.max_batch.max(1),
            max_delay: config.max_delay,
            batch: Vec::new(),
            batch_len: 0,
            callbacks: Vec::new(),
            flushes: Vec::new(),
            deadline: None,
            drops_written: [0; SOURCES],
            checkpointer,
            bytes_since_checkpoint: 0,
        };
        let thread = thread::Builder::new()
            .name("logwire-store-writer".into())
            .spawn(move || {
                // The writer is throughput work: it should not preempt the daemons whose logs it stores.
                let _ = logwire_model::sched::prefer_throughput();
                writer.run()
            })
            .map_err(|source| StoreError::Spawn { path, source })?;
        Ok(WriterGuard { handle: StoreHandle { tx, shared }, thread: Some(thread) })
    }
}

/// WAL growth (estimated from the records' text) after which the writer asks for a checkpoint. SQLite's own
/// automatic checkpoint would run every 1000 pages *on the writer's thread*, inside its commit: ≈ 9 % of
/// the writer's time on g3 records (perf, `parse -- 2000 store`), copying pages and waiting for fsync.
/// Index pages change again and again between two checkpoints but are copied once per checkpoint, so a
/// longer interval copies less per record: 4 MiB → 16 MiB took the checkpoint thread from 0.86–1.14 to
/// 0.53–0.77 µs of CPU per record (`ingest_tcp`). With 32 KiB pages the WAL can peak above 100 MB under a
/// sustained load (168 MB in `store_write`); `journal_size_limit` cuts the file back when it starts over.
const CHECKPOINT_EVERY_BYTES: usize = 16 << 20;

/// WAL size at which the writer checkpoints by itself: only reached if the checkpoint thread cannot keep
/// up (a reader holding an old snapshot, a slow disk).
const CHECKPOINT_BACKSTOP_BYTES: i64 = 64 << 20;

/// A thread with its own connection that runs passive checkpoints when the writer asks, so that copying
/// the WAL into the database and its fsyncs happen beside the writer instead of inside its commits.
/// A passive checkpoint never blocks the writer or readers; it copies what it can. The same thread frees
/// the records the writer has committed.
struct Checkpointer {
    jobs: Option<mpsc::SyncSender<Job>>,
    /// A checkpoint is queued and has not started: a request now is already covered by it.
    pending: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

enum Job {
    Checkpoint,
    Free(Vec<Vec<Record>>),
}

/// Jobs waiting for the checkpoint thread; past that, the writer frees its records itself.
const CHECKPOINT_JOBS: usize = 16;

impl Checkpointer {
    fn spawn(path: &Path, busy_timeout: Duration) -> Result<Checkpointer> {
        let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(busy_timeout).map_err(open_err)?;
        // Its commits are none, but closing a connection may checkpoint; the writer's close does that.
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(open_err)?;
        let (jobs, rx) = mpsc::sync_channel::<Job>(CHECKPOINT_JOBS);
        let pending = Arc::new(AtomicBool::new(false));
        let started = pending.clone();
        let thread = thread::Builder::new()
            .name("logwire-store-checkpoint".into())
            .spawn(move || {
                let _ = logwire_model::sched::prefer_throughput();
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Checkpoint => {
                            started.store(false, Ordering::SeqCst);
                            // A failure (another checkpoint running, a locked file) leaves the frames for the
                            // next request or for the writer's backstop; nothing is lost.
                            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                        }
                        Job::Free(records) => drop(records),
                    }
                }
            })
            .map_err(|source| StoreError::Spawn { path: path.to_path_buf(), source })?;
        Ok(Checkpointer { jobs: Some(jobs), pending, thread: Some(thread) })
    }

    fn request(&self) {
        if let Some(jobs) = &self.jobs {
            if !self.pending.swap(true, Ordering::SeqCst) && jobs.try_send(Job::Checkpoint).is_err() {
                // Queue full: the next request tries again.
                self.pending.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Frees `records` on the checkpoint thread, or here if its queue is full.
    fn free(&self, records: Vec<Vec<Record>>) {
        if records.is_empty() {
            return;
        }
        if let Some(jobs) = &self.jobs {
            // On failure the job, records and all, comes back and is dropped here.
            let _ = jobs.try_send(Job::Free(records));
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after its current job; the writer's connection, closed after
        // this, is the last one and checkpoints what is left.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How often an idle writer wakes up to write drop counts that grew while nothing was sent.
const IDLE_TICK: Duration = Duration::from_millis(200);

/// Pause before retrying a failed batch.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

struct Writer {
    /// Declared (so dropped) before `store`: its thread ends first and the writer's connection, closed last,
    /// checkpoints what is left.
    checkpointer: Checkpointer,
    store: Store,
    rx: mpsc::Receiver<Msg>,
    shared: Arc<Shared>,
    max_batch: usize,
    max_delay: Duration,
    /// The vectors producers sent, kept whole (moving records into one vector showed in the writer's
    /// profile), and how many records they hold.
    batch: Vec<Vec<Record>>,
    batch_len: usize,
    callbacks: Vec<CommitCallback>,
    flushes: Vec<mpsc::Sender<()>>,
    /// When the current batch must be committed; `None` while it is empty.
    deadline: Option<Instant>,
    /// Drop counts already in the `drops` table.
    drops_written: [u64; SOURCES],
    /// Text committed since the last checkpoint request (an estimate of the WAL's growth).
    bytes_since_checkpoint: usize,
}

impl Writer {
    fn run(&mut self) {
        loop {
            let received = match self.deadline {
                None => self.rx.recv_timeout(IDLE_TICK),
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => self.rx.recv_timeout(left),
                    _ => Err(RecvTimeoutError::Timeout),
                },
            };
            match received {
                Ok(Msg::Shutdown) => break,
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => self.commit(),
                // Every handle is gone, the guard included (it is being dropped without `close`).
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.drain_on_shutdown();
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Records(records, callback) => {
                self.shared.queued.fetch_sub(records.len() as u64, Ordering::SeqCst);
                if self.batch_len == 0 {
                    self.deadline = Some(Instant::now() + self.max_delay);
                }
                self.batch_len += records.len();
                if !records.is_empty() {
                    self.batch.push(records);
                }
                self.callbacks.extend(callback);
                if self.batch_len >= self.max_batch {
                    self.commit();
                }
            }
            Msg::Flush(done) => {
                self.flushes.push(done);
                self.commit();
            }
            // A second close request (from another path) needs nothing more.
            Msg::Shutdown => {}
        }
    }

    /// Stop accepting, take in everything that was accepted, commit it all.
    fn drain_on_shutdown(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        loop {
            match self.rx.try_recv() {
                Ok(msg) => self.handle(msg),
                // Empty with reservations outstanding: a producer is between reserving and sending.
                Err(TryRecvError::Empty) if self.shared.queued.load(Ordering::SeqCst) > 0 => {
                    if let Ok(msg) = self.rx.recv_timeout(Duration::from_millis(1)) {
                        self.handle(msg);
                    }
                }
                Err(_) => break,
            }
        }
        self.commit();
    }

    /// Commit the batch and any drop-count growth in one transaction; then tell whoever waits.
    fn commit(&mut self) {
        self.deadline = None;
        let drops_now = self.shared.dropped_now();
        let drops_delta: [u64; SOURCES] = std::array::from_fn(|i| drops_now[i].saturating_sub(self.drops_written[i]));
        let outcome = if self.batch_len == 0 && drops_delta.iter().all(|&n| n == 0) {
            None
        } else {
            Some(self.write_with_retry(&drops_delta))
        };
        let n = self.batch_len as u64;
        let committed = match outcome {
            Some(true) => {
                self.drops_written = drops_now;
                if n > 0 {
                    self.shared.written.fetch_add(n, Ordering::Relaxed);
                    self.shared.batches.fetch_add(1, Ordering::Relaxed);
                    self.bytes_since_checkpoint +=
                        self.batch.iter().flatten().map(approximate_row_bytes).sum::<usize>();
                    if self.bytes_since_checkpoint >= CHECKPOINT_EVERY_BYTES {
                        self.bytes_since_checkpoint = 0;
                        self.checkpointer.request();
                    }
                }
                CommitOutcome::Committed
            }
            Some(false) => {
                // The drop counts stay unwritten and go with the next commit.
                self.shared.failed.fetch_add(n, Ordering::Relaxed);
                CommitOutcome::Dropped
            }
            None => CommitOutcome::Committed,
        };
        // Freeing thousands of records is the checkpoint thread's job: the writer's thread is the store's
        // bottleneck, the checkpoint thread is mostly idle.
        self.checkpointer.free(std::mem::take(&mut self.batch));
        self.batch_len = 0;
        for cb in self.callbacks.drain(..) {
            cb(committed);
        }
        for done in self.flushes.drain(..) {
            let _ = done.send(());
        }
    }

    /// Try the write, and once more after a short pause if it fails. True when it committed.
    fn write_with_retry(&mut self, drops: &[u64; SOURCES]) -> bool {
        for attempt in 0..2 {
            if attempt > 0 {
                thread::sleep(RETRY_PAUSE);
            }
            match self.store.write_batch(&self.batch, drops) {
                Ok(()) => return true,
                Err(e) => {
                    self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
                    let text = e.to_string();
                    match self.shared.last_error.lock() {
                        Ok(mut last) => *last = Some(text),
                        Err(poisoned) => *poisoned.into_inner() = Some(text),
                    }
                }
            }
        }
        false
    }
}

/// About what a record adds to the table and its indexes, in bytes.
fn approximate_row_bytes(r: &Record) -> usize {
    const FIXED: usize = 64;
    let attrs = r.attrs_json.as_ref().map_or(r.attrs.len() * 24, String::len);
    FIXED + 2 * r.trace_id.len() + r.name.len() + attrs + r.body.as_ref().map_or(0, String::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_counters_are_indexed_like_source_all() {
        for (i, source) in Source::ALL.into_iter().enumerate() {
            assert_eq!(source_index(source), i);
        }
    }
}
