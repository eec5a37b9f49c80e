//! The one error type of the store.

use std::path::PathBuf;

/// Everything that can go wrong in the store, with the database path and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or configured (permissions, not a database, bad path).
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// A read-only open was asked for a database file that does not exist.
    #[error("database {} does not exist (run `logwire serve --db {}` first, or pass the right --db)", path.display(), path.display())]
    NotFound { path: PathBuf },

    /// Creating or checking the schema failed.
    #[error("cannot set up the logwire schema in {}: {source}", path.display())]
    Schema {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// The file was written by a newer logwire whose schema this version does not know.
    #[error(
        "database {} has schema version {found}, this logwire understands up to {supported}; use a newer logwire",
        path.display()
    )]
    SchemaTooNew { path: PathBuf, found: i64, supported: i64 },

    /// Writing records failed.
    #[error("writing records to {} failed: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// A read query failed (syntax, unknown table, bad parameters, …).
    #[error("query on {} failed: {source}", path.display())]
    Query {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// A query tried to change the database; queries are read-only.
    #[error("query on {} refused: the database is opened read-only and this statement would write ({message})", path.display())]
    ReadOnly { path: PathBuf, message: String },

    /// `query` takes exactly one SQL statement.
    #[error("query on {} refused: give exactly one SQL statement ({message})", path.display())]
    NotOneStatement { path: PathBuf, message: &'static str },

    /// A stored row could not be turned back into a [`logwire_model::Record`].
    #[error(
        "cannot read a stored record{}: bad {column}: {detail}",
        id.map(|i| format!(" (id {i})")).unwrap_or_default()
    )]
    Decode { id: Option<i64>, column: &'static str, detail: String },

    /// The writer thread could not be started.
    #[error("cannot start the store writer thread for {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The writer thread has stopped (closed, or it panicked), so it cannot flush.
    #[error("the store writer for {} has stopped", path.display())]
    WriterStopped { path: PathBuf },

    /// The writer thread panicked; what it had queued is lost.
    #[error("the store writer thread for {} panicked", path.display())]
    WriterPanicked { path: PathBuf },

    /// The output callback of [`crate::query_each`] failed (e.g. a closed pipe).
    #[error("writing query output failed: {0}")]
    Output(#[source] std::io::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
