//! The SQLite file: connection settings, schema (tables, indexes, views) and the batch insert.

use crate::error::{Result, StoreError};
use crate::insert::RecordInsert;
use crate::writer::SOURCES;
use logwire_model::{now_ns, Record, Source};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Version of the schema below, kept in `PRAGMA user_version`. Bump it (and add a migration step in
/// `Store::ensure_schema`) whenever a table, index or view changes.
pub const SCHEMA_VERSION: i64 = 1;

/// Page size of a new database file.
const PAGE_SIZE: i64 = 32 * 1024;

/// What the WAL file is cut back to when it starts over after a checkpoint (`journal_size_limit`).
const WAL_SIZE_LIMIT_BYTES: i64 = 64 << 20;

/// Page cache of a writing connection, in KiB.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// Busy timeout used by [`Store::open`] and the read side: how long a statement waits for a lock held by
/// another connection before failing with "database is locked".
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The whole schema. Every statement is idempotent so opening an existing file re-runs it harmlessly.
///
/// - `records` is the only base table for the model; the ids are rowids, so `tail` follows `id > last`.
/// - `records_time` serves time-range queries on `events`/`spans`; `records_trace` serves "everything about
///   this connection/task".
/// - `records_span_end` is a *partial* index over `span_end` rows only (cheap to maintain) that the `spans`
///   view's lookup of a start's end uses.
/// - `spans` pairs each `span_start` with the first `span_end` of the same `(source, trace_id, span_id)` that
///   is not earlier than the start, so the view has exactly one row per `span_start` even if a span id is
///   reused later in the same trace. The end's attrs are merged over the start's with `json_patch`
///   (RFC 7396: an end attr set to `null` removes the key).
/// - `drops` counts records dropped because the writer queue was full: one row per source each time the
///   count grew, `dropped` being the number dropped since the previous row (so `SUM(dropped)` is the total).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    id        INTEGER PRIMARY KEY,
    time_ns   INTEGER NOT NULL,
    source    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    trace_id  TEXT NOT NULL,
    span_id   TEXT,
    parent_id TEXT,
    name      TEXT NOT NULL,
    level     TEXT,
    attrs     TEXT NOT NULL,
    body      TEXT
);
CREATE INDEX IF NOT EXISTS records_time ON records(time_ns);
CREATE INDEX IF NOT EXISTS records_trace ON records(trace_id, time_ns);
CREATE INDEX IF NOT EXISTS records_span_end ON records(source, trace_id, span_id, time_ns)
    WHERE kind = 'span_end';

CREATE VIEW IF NOT EXISTS events AS
SELECT time_ns, source, kind, trace_id, span_id, parent_id, name, level, attrs, body
FROM records;

CREATE VIEW IF NOT EXISTS spans AS
SELECT s.source AS source,
       s.trace_id AS trace_id,
       s.span_id AS span_id,
       COALESCE(s.parent_id, e.parent_id) AS parent_id,
       s.name AS name,
       s.time_ns AS start_ns,
       e.time_ns AS end_ns,
       e.time_ns - s.time_ns AS duration_ns,
       CASE WHEN e.id IS NULL THEN s.attrs ELSE json_patch(s.attrs, e.attrs) END AS attrs
FROM records AS s
LEFT JOIN records AS e ON e.id = (
    SELECT x.id FROM records AS x
    WHERE x.kind = 'span_end'
      AND x.source = s.source
      AND x.trace_id = s.trace_id
      AND x.span_id = s.span_id
      AND x.time_ns >= s.time_ns
    ORDER BY x.time_ns, x.id
    LIMIT 1)
WHERE s.kind = 'span_start';

CREATE TABLE IF NOT EXISTS drops (
    time_ns INTEGER NOT NULL,
    source  TEXT NOT NULL,
    dropped INTEGER NOT NULL
);
";

/// Rows per multi-row INSERT. One statement step per chunk instead of per record saves the per-statement
/// work (opening cursors on the table and its three indexes, halt/reset); 10 parameters per row keeps a
/// chunk far below SQLite's variable limit. Measured with callgrind (writer thread, instructions per
/// record), when text was still bound with copies: 1 row 22.7k, 8 rows 19.7k, 16 rows 19.0k, 32 rows 19.6k
/// (the copies outgrew SQLite's lookaside memory). Bound in place ([`RecordInsert`]), 32 rows is the
/// better one: `store_write 50000` 16.6k → 16.4k, g3 records (`ingest_tcp 300`) 12.9k → 12.8k.
///
/// The statement is `INSERT OR ROLLBACK`: a constraint failure in a multi-row INSERT with the default
/// ABORT needs a statement journal to undo the rows before it (≈ 0.7k instructions per record). The batch
/// is one transaction that is given up (and retried) as a whole on any error anyway, so rolling back the
/// whole transaction changes nothing, and the columns that could fail (NOT NULL) come from non-optional
/// fields of [`Record`].
const CHUNK_ROWS: usize = 32;

const INSERT_DROP: &str = "INSERT INTO drops (time_ns, source, dropped) VALUES (?1, ?2, ?3)";

/// A read-write connection to one logwire database file, with the schema in place.
///
/// Most programs do not write through a `Store` directly but through [`Store::spawn_writer`], whose thread
/// owns one. Direct use is for tools and tests that can afford to wait for the disk.
#[derive(Debug)]
pub struct Store {
    /// The record INSERTs, prepared on first use. Declared before `conn` so that they are finalized
    /// before the connection closes.
    inserts: Option<Inserts>,
    conn: Connection,
    path: PathBuf,
}

/// One INSERT for whole chunks of [`CHUNK_ROWS`] records and one for single records (the remainder).
#[derive(Debug)]
struct Inserts {
    chunk: RecordInsert,
    one: RecordInsert,
}

impl Store {
    /// Create or open the database at `path`: WAL journal, `synchronous=NORMAL`, a busy timeout of
    /// [`DEFAULT_BUSY_TIMEOUT`], and the schema (created if missing; idempotent).
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with_busy_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`Store::open`] with another busy timeout.
    pub fn open_with_busy_timeout(path: impl AsRef<Path>, busy_timeout: Duration) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source| StoreError::Open { path: path.clone(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
        conn.busy_timeout(busy_timeout).map_err(open_err)?;
        // 32 KiB pages. The WAL gets each page as two `pwrite`s (frame header, page), and the kernel's
        // share of those was half the writer's time at 8 KiB; bigger pages also mean fewer B-tree splits.
        // `ingest_tcp` (g3 records into the store, 8 KiB vs 32 KiB interleaved): 4,000 rounds 283–288 k →
        // 324–343 k records/s, 16,000 rounds 224–229 k → 268–287 k; writer CPU per record 2.6–3.2 →
        // 2.0–2.5 µs. The closed file's size is the same (`store_write`: 117.1 vs 116.3 MiB). Only takes
        // effect on a new, empty file and must come before WAL is switched on; an existing file keeps its
        // page size.
        conn.pragma_update(None, "page_size", PAGE_SIZE).map_err(open_err)?;
        // `journal_mode` answers with the mode now in force; an in-memory database stays "memory".
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        // The WAL file keeps its largest size after a checkpoint lets it start over; cap what stays on disk.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES).map_err(open_err)?;
        // A page cache big enough for a whole batch (4096–8192 records of up to ~1 KiB, plus index pages):
        // with SQLite's default 2 MB a large transaction spills dirty pages into the WAL before its commit
        // and reads them back.
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB).map_err(open_err)?;
        let mut store = Store { inserts: None, conn, path };
        store.ensure_schema()?;
        Ok(store)
    }

    /// The path this store was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection, for statements this crate does not wrap.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Create whatever part of the schema is missing, inside one transaction, and check the version.
    fn ensure_schema(&mut self) -> Result<()> {
        let path = self.path.clone();
        let schema_err = |source| StoreError::Schema { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(schema_err)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(schema_err)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { path, found, supported: SCHEMA_VERSION });
        }
        tx.execute_batch(SCHEMA).map_err(schema_err)?;
        if found != SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(schema_err)?;
        }
        tx.commit().map_err(schema_err)
    }

    /// Insert `records` in one transaction, waiting for the disk (and for locks, up to the busy timeout).
    pub fn insert(&mut self, records: &[Record]) -> Result<()> {
        self.write_batch(&[records], &[0; SOURCES])
    }

    /// Insert the records of `parts`, in order, plus one `drops` row per non-zero entry of `drops` (records
    /// dropped since the last call, indexed like [`Source::ALL`]), in one transaction. `attrs` not rendered
    /// by their producer are serialised to JSON here.
    pub(crate) fn write_batch<R: AsRef<[Record]>>(&mut self, parts: &[R], drops: &[u64; SOURCES]) -> Result<()> {
        self.insert_inner(parts, drops).map_err(|source| StoreError::Write { path: self.path.clone(), source })
    }

    fn insert_inner<R: AsRef<[Record]>>(&mut self, parts: &[R], drops: &[u64; SOURCES]) -> rusqlite::Result<()> {
        // The writer hands over the vectors producers sent, as they came: chunks are cut across them.
        let records: Vec<&Record> = parts.iter().flat_map(|part| part.as_ref()).collect();
        let inserts = match &mut self.inserts {
            Some(inserts) => inserts,
            None => {
                // SAFETY: the statements live in `self.inserts`, which is dropped before `self.conn`.
                let (chunk, one) =
                    unsafe { (RecordInsert::prepare(&self.conn, CHUNK_ROWS)?, RecordInsert::prepare(&self.conn, 1)?) };
                self.inserts.insert(Inserts { chunk, one })
            }
        };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut chunks = records.chunks_exact(CHUNK_ROWS);
            for chunk in chunks.by_ref() {
                inserts.chunk.execute(chunk)?;
            }
            for r in chunks.remainder() {
                inserts.one.execute(std::slice::from_ref(r))?;
            }
            if drops.iter().any(|&n| n > 0) {
                let mut insert = tx.prepare_cached(INSERT_DROP)?;
                let now = now_ns();
                for (source, &n) in Source::ALL.iter().zip(drops) {
                    if n > 0 {
                        insert.execute(params![now, source.as_str(), i64::try_from(n).unwrap_or(i64::MAX)])?;
                    }
                }
            }
        }
        tx.commit()
    }
}
