//! The tokio runtime: thin layers that move bytes between sockets and the sans-IO state machines.
//!
//! - [`agent`]: an SPOA server. One task per connection reads a batch of bytes, runs every complete
//!   frame through [`crate::agent::AgentConnection`] and the handler, and writes all resulting ACKs in
//!   one `write` per batch (never one frame in several writes: haproxy #3478). Recording happens after
//!   the write, so storage never delays an ACK.
//! - [`client`]: an engine-side client (what HAProxy does), with per-frame timings; a pipelined load
//!   generator for `logwire spop bench`.

pub mod agent;
pub mod client;

/// Whether an I/O error is just the peer going away (HAProxy ≥ 3.1 closes idle connections with RST).
pub(crate) fn is_normal_close(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | BrokenPipe | ConnectionAborted | UnexpectedEof)
}
