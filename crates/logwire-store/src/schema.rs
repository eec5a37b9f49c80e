//! The SQLite file: connection settings, schema (tables, indexes, views) and the batch insert.

use crate::error::{Result, StoreError};
use crate::writer::SOURCES;
use logwire_model::{now_ns, Record, Source};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Version of the schema below, kept in `PRAGMA user_version`. Bump it (and add a migration step in
/// `Store::ensure_schema`) whenever a table, index or view changes.
pub const SCHEMA_VERSION: i64 = 1;

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

const INSERT_RECORD: &str = "INSERT INTO records \
    (time_ns, source, kind, trace_id, span_id, parent_id, name, level, attrs, body) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

const INSERT_DROP: &str = "INSERT INTO drops (time_ns, source, dropped) VALUES (?1, ?2, ?3)";

/// A read-write connection to one logwire database file, with the schema in place.
///
/// Most programs do not write through a `Store` directly but through [`Store::spawn_writer`], whose thread
/// owns one. Direct use is for tools and tests that can afford to wait for the disk.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
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
        // `journal_mode` answers with the mode now in force; an in-memory database stays "memory".
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        let mut store = Store { conn, path };
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
        self.write_batch(records, &[0; SOURCES])
    }

    /// Insert `records`, plus one `drops` row per non-zero entry of `drops` (records dropped since the
    /// last call, indexed like [`Source::ALL`]), in one transaction. `attrs` are serialised to JSON here.
    pub(crate) fn write_batch(&mut self, records: &[Record], drops: &[u64; SOURCES]) -> Result<()> {
        self.insert_inner(records, drops).map_err(|source| StoreError::Write { path: self.path.clone(), source })
    }

    fn insert_inner(&mut self, records: &[Record], drops: &[u64; SOURCES]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(INSERT_RECORD)?;
            let mut buf = Vec::with_capacity(256);
            for r in records {
                buf.clear();
                // A map of JSON values always serialises to UTF-8 text; a failure would still be reported.
                serde_json::to_writer(&mut buf, &r.attrs)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                let attrs =
                    std::str::from_utf8(&buf).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                insert.execute(params![
                    r.time_ns,
                    r.source.as_str(),
                    r.kind.as_str(),
                    r.trace_id,
                    r.span_id,
                    r.parent_id,
                    r.name,
                    r.level.map(|l| l.as_str()),
                    attrs,
                    r.body,
                ])?;
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
