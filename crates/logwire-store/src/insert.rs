//! The multi-row INSERT of records, with the text bound in place.
//!
//! rusqlite binds every text parameter `SQLITE_TRANSIENT`: SQLite copies each string into memory of its
//! own before the statement runs and frees it afterwards. On g3proxy records that was 18 % of the writer
//! thread's instructions (callgrind: `sqlite3_bind_text` and `vdbeUnbind`). Here the records outlive the
//! statement's run, so their text is bound `SQLITE_STATIC` and SQLite reads it where it is while building
//! the row. This module is the only place the crate uses SQLite's C API directly; what makes it sound is
//! that [`RecordInsert::execute`] binds, steps and resets within one call, so SQLite never reads a
//! binding after the borrow it came from has ended.

use logwire_model::Record;
use rusqlite::{ffi, Connection};
use std::ffi::{c_char, c_int, CStr};
use std::ops::Range;
use std::ptr::NonNull;

/// Parameters bound per record row, in the column order of [`insert_records_sql`].
pub(crate) const ROW_PARAMS: usize = 10;

/// `INSERT OR ROLLBACK INTO records (...) VALUES (?,…,?), …` with `rows` rows of [`ROW_PARAMS`] numbered
/// parameters.
pub(crate) fn insert_records_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT OR ROLLBACK INTO records \
         (time_ns, source, kind, trace_id, span_id, parent_id, name, level, attrs, body) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..ROW_PARAMS {
            if col > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("?{}", row * ROW_PARAMS + col + 1));
        }
        sql.push(')');
    }
    sql
}

/// A prepared INSERT of exactly `rows` records.
pub(crate) struct RecordInsert {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: NonNull<ffi::sqlite3>,
    rows: usize,
    /// The JSON of the attrs that were not rendered by their producer, for all rows of one run: bound in
    /// place too, so each row needs its own bytes until the step.
    rendered: Vec<u8>,
    ranges: Vec<Range<usize>>,
}

// SAFETY: the statement belongs to a connection opened without SQLite's mutex (`SQLITE_OPEN_NO_MUTEX`),
// which is safe to move between threads as long as one thread uses it at a time — the contract rusqlite's
// `Connection: Send` rests on too. A `RecordInsert` lives inside the `Store` that owns that connection and
// is only used through `&mut Store`.
unsafe impl Send for RecordInsert {}

impl std::fmt::Debug for RecordInsert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordInsert").field("rows", &self.rows).finish_non_exhaustive()
    }
}

impl RecordInsert {
    /// Prepares the INSERT of `rows` records on `conn`.
    ///
    /// # Safety
    /// The `RecordInsert` must be dropped before `conn` is closed.
    pub(crate) unsafe fn prepare(conn: &Connection, rows: usize) -> rusqlite::Result<RecordInsert> {
        let sql = insert_records_sql(rows);
        // SAFETY: the handle is valid while `conn` is open, which the caller guarantees for our lifetime.
        let db = NonNull::new(unsafe { conn.handle() }).ok_or(rusqlite::Error::InvalidQuery)?;
        let mut stmt = std::ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|_| rusqlite::Error::InvalidQuery)?;
        // SAFETY: `sql` is valid for `len` bytes; `stmt` is written by SQLite.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        let stmt = NonNull::new(stmt).ok_or(rusqlite::Error::InvalidQuery)?;
        Ok(RecordInsert { stmt, db, rows, rendered: Vec::new(), ranges: Vec::with_capacity(rows) })
    }

    /// Inserts `records`, exactly as many as the statement has rows.
    pub(crate) fn execute(&mut self, records: &[&Record]) -> rusqlite::Result<()> {
        if records.len() != self.rows {
            return Err(rusqlite::Error::InvalidParameterCount(records.len() * ROW_PARAMS, self.rows * ROW_PARAMS));
        }
        // Attrs the producer did not render are rendered first, all of them, so that none moves while the
        // others are bound.
        self.rendered.clear();
        self.ranges.clear();
        for r in records {
            let start = self.rendered.len();
            if r.attrs_json.is_none() {
                // A map of JSON values always serialises; a failure would still be reported.
                serde_json::to_writer(&mut self.rendered, &r.attrs)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            }
            self.ranges.push(start..self.rendered.len());
        }
        let result = self.bind_and_step(records);
        // SAFETY: a valid statement. Reset ends the run; the dangling bindings it keeps are never read,
        // because every parameter is bound again before the next step.
        unsafe { ffi::sqlite3_reset(self.stmt.as_ptr()) };
        result
    }

    fn bind_and_step(&self, records: &[&Record]) -> rusqlite::Result<()> {
        for (row, (r, range)) in records.iter().zip(&self.ranges).enumerate() {
            let attrs = match &r.attrs_json {
                // Rendered by the producer (the model says `attrs` is then empty).
                Some(text) => text.as_bytes(),
                None => &self.rendered[range.clone()],
            };
            let first = (row * ROW_PARAMS) as c_int;
            self.bind_i64(first + 1, r.time_ns)?;
            self.bind_text(first + 2, Some(r.source.as_str().as_bytes()))?;
            self.bind_text(first + 3, Some(r.kind.as_str().as_bytes()))?;
            self.bind_text(first + 4, Some(r.trace_id.as_bytes()))?;
            self.bind_text(first + 5, r.span_id.as_deref().map(str::as_bytes))?;
            self.bind_text(first + 6, r.parent_id.as_deref().map(str::as_bytes))?;
            self.bind_text(first + 7, Some(r.name.as_bytes()))?;
            self.bind_text(first + 8, r.level.map(|l| l.as_str().as_bytes()))?;
            self.bind_text(first + 9, Some(attrs))?;
            self.bind_text(first + 10, r.body.as_deref().map(str::as_bytes))?;
        }
        // SAFETY: a valid statement whose parameters all point at `records` and `self.rendered`, both
        // borrowed for this whole call.
        match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
            ffi::SQLITE_DONE => Ok(()),
            rc => Err(error(self.db, rc)),
        }
    }

    fn bind_i64(&self, index: c_int, value: i64) -> rusqlite::Result<()> {
        // SAFETY: a valid statement; SQLite checks the index.
        self.check(unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, value) })
    }

    /// Binds `text` (UTF-8: every column comes from a `str`) without copying it, or NULL.
    fn bind_text(&self, index: c_int, text: Option<&[u8]>) -> rusqlite::Result<()> {
        let rc = match text {
            // SAFETY: a valid statement; SQLite checks the index.
            None => unsafe { ffi::sqlite3_bind_null(self.stmt.as_ptr(), index) },
            Some(text) => {
                // An empty slice's pointer may dangle: point SQLite at a real empty string instead.
                let ptr = if text.is_empty() { c"".as_ptr() } else { text.as_ptr().cast::<c_char>() };
                // SAFETY: `ptr` is valid for `text.len()` bytes until `execute` resets the statement (see
                // the module docs); SQLITE_STATIC tells SQLite not to free it.
                unsafe {
                    ffi::sqlite3_bind_text64(
                        self.stmt.as_ptr(),
                        index,
                        ptr,
                        text.len() as u64,
                        ffi::SQLITE_STATIC(),
                        ffi::SQLITE_UTF8 as u8,
                    )
                }
            }
        };
        self.check(rc)
    }

    fn check(&self, rc: c_int) -> rusqlite::Result<()> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(self.db, rc))
        }
    }
}

impl Drop for RecordInsert {
    fn drop(&mut self) {
        // SAFETY: a valid statement, finalized once, before its connection closes (see `prepare`).
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The error for result code `rc`, with SQLite's message for it.
fn error(db: NonNull<ffi::sqlite3>, rc: c_int) -> rusqlite::Error {
    // SAFETY: a valid connection; the message is a NUL-terminated string owned by SQLite, copied at once.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(db.as_ptr());
        (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message)
}
