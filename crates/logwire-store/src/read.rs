//! The read side: read-only SQL queries, records read back, and a polling tail.

use crate::error::{Result, StoreError};
use crate::schema::DEFAULT_BUSY_TIMEOUT;
use logwire_model::{binary_value, Attrs, Record};
use rusqlite::types::{FromSql, ValueRef};
use rusqlite::{Batch, Connection, OpenFlags, Row};
use serde_json::{Number, Value};
use std::path::{Path, PathBuf};

/// Open `path` read-only: `SQLITE_OPEN_READ_ONLY` plus `PRAGMA query_only = 1`, so nothing run on this
/// connection can change the file (not even `PRAGMA query_only = 0`, which the open flag still stops).
pub fn open_read_only(path: impl AsRef<Path>) -> Result<Connection> {
    let path = path.as_ref();
    if !path.exists() {
        return Err(StoreError::NotFound { path: path.to_path_buf() });
    }
    let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(open_err)?;
    conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(open_err)?;
    conn.pragma_update(None, "query_only", true).map_err(open_err)?;
    Ok(conn)
}

/// The whole result of [`query`]: column names and rows of JSON values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// What [`query_each`] saw: the column names (also when there were no rows) and how many rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuerySummary {
    pub columns: Vec<String>,
    pub rows: u64,
}

/// Run one read-only SQL statement on the database at `path` and collect the result.
///
/// Values map as INTEGER → number, REAL → number (NaN/∞ → null), TEXT → string, BLOB → `{"hex": …}` (see
/// [`logwire_model::binary_value`]), NULL → null. A statement that would write fails with
/// [`StoreError::ReadOnly`]; more than one statement fails with [`StoreError::NotOneStatement`].
pub fn query(path: impl AsRef<Path>, sql: &str) -> Result<QueryResult> {
    let mut rows = Vec::new();
    let summary = query_each(path, sql, |_, row| {
        rows.push(row.to_vec());
        Ok(())
    })?;
    Ok(QueryResult { columns: summary.columns, rows })
}

/// Like [`query`] but hands each row to `each` as it is read, so a result of any size can be printed
/// without holding it. `each` gets the column names and the row; an error it returns (e.g. a closed pipe)
/// stops the query and comes back as [`StoreError::Output`].
pub fn query_each<F>(path: impl AsRef<Path>, sql: &str, mut each: F) -> Result<QuerySummary>
where
    F: FnMut(&[String], &[Value]) -> std::io::Result<()>,
{
    let path = path.as_ref();
    let conn = open_read_only(path)?;
    let err = |e| query_error(path, e);
    let mut batch = Batch::new(&conn, sql);
    let mut stmt = batch
        .next()
        .map_err(err)?
        .ok_or(StoreError::NotOneStatement { path: path.to_path_buf(), message: "the SQL is empty" })?;
    if batch.next().map_err(err)?.is_some() {
        return Err(StoreError::NotOneStatement { path: path.to_path_buf(), message: "found more than one statement" });
    }
    if !stmt.readonly() {
        return Err(StoreError::ReadOnly { path: path.to_path_buf(), message: "statement is not read-only".into() });
    }
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let width = columns.len();
    let mut rows = stmt.query([]).map_err(err)?;
    let mut values = Vec::with_capacity(width);
    let mut count = 0u64;
    while let Some(row) = rows.next().map_err(err)? {
        values.clear();
        for i in 0..width {
            values.push(sql_to_json(row.get_ref(i).map_err(err)?));
        }
        each(&columns, &values).map_err(StoreError::Output)?;
        count += 1;
    }
    Ok(QuerySummary { columns, rows: count })
}

/// Turn an SQLite error into the store's, naming writes for what they are.
fn query_error(path: &Path, source: rusqlite::Error) -> StoreError {
    match &source {
        rusqlite::Error::SqliteFailure(e, message) if e.code == rusqlite::ErrorCode::ReadOnly => {
            StoreError::ReadOnly { path: path.to_path_buf(), message: message.clone().unwrap_or_else(|| e.to_string()) }
        }
        rusqlite::Error::MultipleStatement => {
            StoreError::NotOneStatement { path: path.to_path_buf(), message: "found more than one statement" }
        }
        _ => StoreError::Query { path: path.to_path_buf(), source },
    }
}

/// One SQLite value as JSON; see [`query`] for the mapping.
pub fn sql_to_json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Number(i.into()),
        ValueRef::Real(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => binary_value(b),
    }
}

/// Read a [`Record`] back from a row that has the `events` columns (`SELECT * FROM events`, or
/// `SELECT … FROM records`), found by name. `source`, `kind` and `level` are parsed with the model's
/// `FromStr`; `attrs` must be a JSON object. An `id` column, if present, is named in errors.
pub fn row_to_record(row: &Row<'_>) -> Result<Record> {
    let id: Option<i64> = row.get("id").ok();
    let bad = |column: &'static str, detail: String| StoreError::Decode { id, column, detail };
    fn get<T: FromSql>(row: &Row<'_>, column: &'static str, id: Option<i64>) -> Result<T> {
        row.get(column).map_err(|e| StoreError::Decode { id, column, detail: e.to_string() })
    }
    let source: String = get(row, "source", id)?;
    let kind: String = get(row, "kind", id)?;
    let level: Option<String> = get(row, "level", id)?;
    let attrs: String = get(row, "attrs", id)?;
    Ok(Record {
        time_ns: get(row, "time_ns", id)?,
        source: source.parse().map_err(|e| bad("source", format!("{e}")))?,
        kind: kind.parse().map_err(|e| bad("kind", format!("{e}")))?,
        trace_id: get(row, "trace_id", id)?,
        span_id: get(row, "span_id", id)?,
        parent_id: get(row, "parent_id", id)?,
        name: get(row, "name", id)?,
        level: level.map(|l| l.parse()).transpose().map_err(|e| bad("level", format!("{e}")))?,
        attrs: serde_json::from_str::<Attrs>(&attrs).map_err(|e| bad("attrs", format!("not a JSON object: {e}")))?,
        attrs_json: None,
        body: get(row, "body", id)?,
    })
}

/// Most records one [`Tailer::poll`] returns unless [`Tailer::with_limit`] says otherwise.
pub const DEFAULT_TAIL_LIMIT: usize = 10_000;

const TAIL_SQL: &str = "SELECT id, time_ns, source, kind, trace_id, span_id, parent_id, name, level, attrs, body \
    FROM records WHERE id > ?1 ORDER BY id LIMIT ?2";

/// Follows the `records` table by rowid: each [`Tailer::poll`] returns the records committed since the
/// previous one. It holds one read-only connection; every poll is its own read transaction, so it sees
/// whatever the writer has committed (WAL lets it read while the writer writes).
#[derive(Debug)]
pub struct Tailer {
    conn: Connection,
    path: PathBuf,
    last_id: i64,
    limit: usize,
}

impl Tailer {
    /// Open `path` read-only. With `from_end`, the first poll returns only records committed after this
    /// call; otherwise it starts at the first record.
    pub fn new(path: impl AsRef<Path>, from_end: bool) -> Result<Tailer> {
        let path = path.as_ref().to_path_buf();
        let conn = open_read_only(&path)?;
        let last_id = if from_end {
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM records", [], |row| row.get(0))
                .map_err(|e| query_error(&path, e))?
        } else {
            0
        };
        Ok(Tailer { conn, path, last_id, limit: DEFAULT_TAIL_LIMIT })
    }

    /// Return at most `limit` records per poll (at least one); poll again at once when a poll came back full.
    pub fn with_limit(mut self, limit: usize) -> Tailer {
        self.limit = limit.max(1);
        self
    }

    /// The id of the last record returned (0 before any).
    pub fn last_id(&self) -> i64 {
        self.last_id
    }

    /// Records with an id greater than the last one returned, oldest first, at most the limit.
    ///
    /// A row that cannot be read back as a [`Record`] (say, a source name from a newer logwire) ends the
    /// poll: the rows before it are returned, the next poll returns the error and moves past the row, so
    /// a tail reports it once and goes on.
    pub fn poll(&mut self) -> Result<Vec<(i64, Record)>> {
        let err = |e| query_error(&self.path, e);
        let mut stmt = self.conn.prepare_cached(TAIL_SQL).map_err(err)?;
        let limit = i64::try_from(self.limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query((self.last_id, limit)).map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let id: i64 = row.get(0).map_err(err)?;
            match row_to_record(row) {
                Ok(record) => {
                    self.last_id = id;
                    out.push((id, record));
                }
                Err(e) if out.is_empty() => {
                    self.last_id = id;
                    return Err(e);
                }
                Err(_) => break,
            }
        }
        Ok(out)
    }
}
