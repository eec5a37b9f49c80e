//! # logwire-store: records into one SQLite file, without ever slowing the data path
//!
//! ```text
//!  producers (SPOP agent, Nix relay, …)          writer thread                      SQLite file (WAL)
//!  handle.try_send(records) ──► bounded queue ──► batch ≤ max_batch / max_delay ──► records, drops
//!        │ full? drop + count                      one transaction, cached INSERT     views: events, spans
//!        └──────────────► dropped counter ───────► drops table
//! ```
//!
//! ## Write path
//! [`Store::spawn_writer`] opens the file (WAL journal, `synchronous=NORMAL`, busy timeout, schema) and
//! starts one thread that owns the only write connection. It returns a [`WriterGuard`] that derefs to a
//! cloneable [`StoreHandle`] (`Send + Sync`) for producers.
//!
//! [`StoreHandle::try_send`] never blocks and never returns an error to handle: it reserves room in a queue
//! bounded in records with one atomic operation and hands the records over, or, when the queue is full,
//! drops them and counts them. logwire sits on the data path of the daemons it logs (it ACKs HAProxy, it
//! relays Nix's bytes), so a slow disk, a long `query` or a lock held by another process must cost log
//! records, never latency; and the loss is visible: [`StoreHandle::stats`] counts it and the writer records
//! it in the `drops` table.
//!
//! The writer drains the queue into batches of up to `max_batch` records or `max_delay`, whichever comes
//! first, and commits each as one transaction of prepared multi-row INSERTs (32 records per statement, their
//! text bound in place, not copied). The `attrs` of each record are serialised to JSON on the writer thread,
//! unless the producer rendered them already (`Record::attrs_json`). A failed write
//! (disk full, database locked past the busy timeout) is counted, its text kept in the stats, retried once,
//! then given up and counted; the thread keeps going.
//!
//! The writer and its checkpoint thread run under `SCHED_BATCH` ([`logwire_model::sched`]): they keep
//! their share of the CPU, but a batch arriving does not preempt the daemon that produced it.
//!
//! Learning that records are durable: [`StoreHandle::flush`] blocks until everything queued before it is
//! committed; [`StoreHandle::try_send_with_commit`] calls back once the transaction holding the records has
//! committed (or they were dropped) — what a source that acknowledges its peer (fluentd `ack`) needs.
//! [`WriterGuard::close`], or dropping the guard, commits what is queued and joins the thread.
//!
//! ## Schema (stable contract)
//! - table `records(id, time_ns, source, kind, trace_id, span_id, parent_id, name, level, attrs, body)`,
//!   `attrs` being JSON object text;
//! - view `events(time_ns, source, kind, trace_id, span_id, parent_id, name, level, attrs, body)`: every
//!   record;
//! - view `spans(source, trace_id, span_id, parent_id, name, start_ns, end_ns, duration_ns, attrs)`: each
//!   `span_start` with its `span_end` (NULL end and duration while unfinished), attrs merged with
//!   `json_patch`; the end is found through a partial index on `span_end` rows;
//! - table `drops(time_ns, source, dropped)`: records dropped at the queue since the previous row.
//!
//! The schema version is kept in `PRAGMA user_version` ([`SCHEMA_VERSION`]); opening is idempotent.
//!
//! ## Read path
//! [`query`] and [`query_each`] run one SQL statement on a read-only connection (`SQLITE_OPEN_READ_ONLY`
//! and `PRAGMA query_only`) and give rows as JSON values; [`render_table`] and [`render_json_lines`] print
//! them. [`Tailer`] follows new records by rowid. WAL lets all of these read while the writer writes.
//!
//! ## Not supported (deliberately)
//! Retention/pruning, schema migrations beyond version 1 (there is none yet), and async APIs: the writer is
//! one OS thread, and a blocking call such as `flush` goes in `spawn_blocking` from async code.

mod error;
mod insert;
mod read;
mod render;
mod schema;
mod writer;

pub use error::{Result, StoreError};
pub use read::{
    open_read_only, query, query_each, row_to_record, sql_to_json, QueryResult, QuerySummary, Tailer,
    DEFAULT_TAIL_LIMIT,
};
pub use render::{cell_text, render_json_line, render_json_lines, render_table};
pub use schema::{Store, DEFAULT_BUSY_TIMEOUT, SCHEMA_VERSION};
pub use writer::{CommitOutcome, StoreHandle, WriterConfig, WriterGuard, WriterStats};

/// Where `logwire` keeps its database unless told otherwise.
pub const DEFAULT_DB_PATH: &str = "logwire.db";
