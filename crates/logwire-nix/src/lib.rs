//! # logwire-nix: the Nix daemon's worker protocol, read and written
//!
//! A tour, bottom up (everything here is sans-IO):
//!
//! - [`wire`]: u64 little-endian words, padded byte strings with a length cap and a non-zero-padding
//!   error, lists, framed data. A [`wire::Reader`] over a slice reports "need N bytes in total" instead
//!   of failing, so callers buffer and retry.
//! - [`handshake`]: magic numbers, version negotiation (`min(client, daemon)`), nixVersion (≥ 1.33),
//!   the trusted flag (≥ 1.35) and the feature exchange (≥ 1.38), for both sides.
//! - [`logger`]: the 8 `STDERR_*` messages with their version gates (error form < 1.26), the open
//!   enums [`logger::Verbosity`], [`logger::ActivityType`], [`logger::ResultType`] (unknown and fork
//!   values such as 109/110/113 are kept) and typed views of known fields. Strings stay bytes.
//! - [`emit`]: a daemon-side `TunnelLogger` that writes what a client of any version expects
//!   (< 1.20 activities degrade to NEXT and results are dropped; < 1.26 errors are `what()` + exit status).
//! - [`json`]: the `@nix {…}` internal-json lines, read tolerantly and written byte-exact.
//! - [`ops`] and [`observer`]: request and reply framing for the ops real clients use (protocol
//!   1.10–1.38), including those that move data inside the log block (ImportPaths and AddToStoreNar at
//!   1.21–1.22 through STDERR_READ answers, ExportPath through STDERR_WRITE), so a passive observer of both
//!   directions stays in sync; it marks the connection out of sync on anything it cannot frame and never
//!   needs to touch the bytes. A request or reply arriving in pieces is parsed again as it grows, but its
//!   lists are walked once ([`wire::ListMemo`]).
//! - [`record`]: one connection's events as logwire records: ops and activities as spans, results as
//!   events, NEXT as logs, errors as error events.
//! - `runtime` (feature `tokio`): the relay in front of a daemon socket or `nix-daemon --stdio`, which
//!   forwards every chunk before decoding its copy, and hands records to the store in batches.
//!
//! Not supported, on purpose: op codes logwire does not know (a fork's, or a future Nix's) cannot be
//! framed; the observer marks the connection out of sync there and the relay keeps forwarding.

pub mod emit;
pub mod error;
pub mod handshake;
pub mod json;
pub mod logger;
pub mod nar;
pub mod observer;
pub mod ops;
pub mod record;
#[cfg(feature = "tokio")]
pub mod runtime;
pub mod version;
pub mod wire;

pub use error::DecodeError;
pub use version::ProtocolVersion;
