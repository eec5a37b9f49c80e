//! # logwire-spop: HAProxy's Stream Processing Offload Protocol, both ends
//!
//! A tour, bottom up (the layout follows quinn-proto and rustls: everything protocol is sans-IO):
//!
//! - [`varint`], [`data`], [`message`], [`frame`], [`hello`], [`status`]: the wire format of SPOP 2.0
//!   (SPOE.txt §3). Decoders take `Bytes` and return typed values or a [`DecodeError`] whose
//!   [`DecodeError::status`] is the DISCONNECT code the spec prescribes. Every length is checked against
//!   what is present, or against max-frame-size, before anything is allocated. Payload bytes are shared
//!   with the receive buffer, not copied.
//! - [`agent::AgentConnection`]: the agent side of one connection as a state machine. Bytes in,
//!   [`agent::AgentEvent`]s out (hello, notify, abort, disconnect), ACK bytes appended to an output
//!   buffer. It negotiates version/max-frame-size/capabilities, reassembles fragmented NOTIFYs, and
//!   answers every protocol error with AGENT-DISCONNECT and the right status code.
//! - [`engine::EngineConnection`]: the HAProxy side as a state machine, for tests, probes and load
//!   generation; it can behave like HAProxy ≤ 3.0 (fragmentation, async, stream-id 0) or ≥ 3.1 (odd
//!   stream-ids, FIN everywhere, at most 20 in flight).
//! - [`handler::Handler`]: what an agent author implements: messages in, actions out.
//! - [`rules`]: a TOML rules file turning message args into set-var actions, a ready-made handler.
//! - [`conf`]: a parser for HAProxy's SPOE configuration file and the `check-conf` diagnostics.
//! - `runtime` (feature `tokio`): the thin async layer: an agent server that pipelines NOTIFYs and
//!   batches ACK writes, and an engine client with per-frame timings.
//!
//! Not supported, on purpose: fragmenting ACKs (HAProxy refuses them) and SPOP versions other than 2.0
//! (no peer speaks one).

pub mod agent;
pub mod conf;
pub mod data;
pub mod engine;
pub mod error;
pub mod frame;
pub mod handler;
pub mod hello;
pub mod message;
pub mod record;
pub mod rules;
#[cfg(feature = "tokio")]
pub mod runtime;
pub mod status;
pub mod template;
pub mod varint;

pub use data::TypedData;
pub use error::DecodeError;
pub use frame::{Flags, Frame, FrameCodec, FrameHeader, FrameType};
pub use hello::{Capabilities, Negotiated};
pub use message::{Action, Arg, Message, Scope};
pub use status::StatusCode;

/// Errors of the runtime: decoding, protocol (with the status code sent or received) and I/O.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("protocol error, status {status}: {reason}")]
    Protocol { status: StatusCode, reason: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
