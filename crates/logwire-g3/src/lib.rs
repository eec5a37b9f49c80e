//! # logwire-g3: g3proxy's task, escape and resolve logs, typed
//!
//! Generic collectors read g3proxy's syslog body as text and its fluentd records as untyped maps. This
//! crate knows what g3proxy 1.13 actually emits (from its code, which disagrees with its docs in places)
//! and turns every driver's output into one typed [`G3Log`]. A tour, bottom up; everything but `runtime`
//! is sans-IO:
//!
//! - [`schema`]: log types (`Task`, `Escape`, `Resolve`, and the undocumented `Inspect`, `Intercept`),
//!   task types and events, the 36 `reason`s as an open enum, and the type of every field:
//!   `{:.3?}` durations → ns, RFC 3339 µs times → ns, socket addresses and IPs checked, u16/u32/u64
//!   counters, bools, the 32-hex task_id. A value that does not fit is kept as it came and listed in
//!   [`G3Log::untyped`].
//! - [`value`]: those value formats, and Rust `escape_debug` quoting both ways.
//! - [`syslog`]: one decoder for the four layouts — RFC 3164 text (`MSG, k="v", k=1`, split by [`text`]),
//!   RFC 3164 + CEE (`@cee:{…}`), RFC 5424 with its SD element, and the malformed RFC 5424 + CEE.
//!   Hand-written; `benches/parse.rs` keeps the measurement against `syslog_loose`. The listeners call
//!   [`syslog::decode_to_records`]: for RFC 5424 + SD it types each SD param straight into the model
//!   records' JSON, without a [`G3Log`] in between (31.0k → 21.9k instructions per record); anything odd
//!   takes `decode` + [`record::to_records`], which share its typing rules and mapping.
//! - [`framing`]: RFC 6587 octet counting and newline framing for syslog over TCP.
//! - [`forward`]: fluentd Forward — Message, Forward, PackedForward, CompressedPackedForward (gzip),
//!   EventTime (ext 0), `chunk` acks, heartbeat, and the `shared_key` handshake (HELO/PING/PONG, optional
//!   users) as a [`forward::ServerSession`] state machine, with the client side for tests and emitters.
//!   Records are read straight from the msgpack bytes (no value tree), every length checked first.
//! - [`record`]: [`G3Log`] → logwire records: one span per task (trace = span = task_id, start at
//!   `start_at`, end at `start_at + total_time`), its other events inside it, escape records on their
//!   task's trace. Stateless, so the merge survives restarts and reordering.
//! - [`sql`]: the `g3_tasks`, `g3_task_timeline`, `g3_resolve_links` and `g3_stats_by_*` views, and the
//!   statistics query of `logwire g3 stats` (percentiles by nearest rank, in SQL).
//! - [`emit`]: the emit side for Rust daemon authors: RFC 5424 SD, RFC 3164 text, CEE JSON and fluentd
//!   forward exactly as g3proxy writes them. Decoding a real capture and re-encoding it gives the same
//!   bytes, for all three captured formats.
//! - [`stream`]: captured streams for `logwire g3 import`.
//! - `runtime` (feature `tokio`): listeners for UDP, unix datagram and TCP syslog, and a fluentd forward
//!   server that acknowledges a `chunk` only after its records are committed (through a [`runtime::Sink`]).
//!
//! Not supported, on purpose or not yet: TLS on either transport, and the journald driver. Resolve records carry
//! no task_id in g3proxy; they are linked to tasks by domain and time in `g3_resolve_links`.

pub mod emit;
pub mod error;
pub mod forward;
pub mod framing;
mod json;
pub mod log;
pub mod record;
#[cfg(feature = "tokio")]
pub mod runtime;
pub mod schema;
pub mod sql;
pub mod stream;
pub mod syslog;
pub mod text;
pub mod value;

pub use error::DecodeError;
pub use log::{EventTime, FieldName, G3Log, Origin, SyslogFormat, SyslogHeader};
