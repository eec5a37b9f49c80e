//! # logwire-qlog: every qlog in the wild, read fast and written faster
//!
//! qlog is the structured event log of QUIC and HTTP/3 stacks. Real stacks write several versions at once
//! (ngtcp2, aioquic, neqo and quinn 0.11 write 0.3; quiche and quinn's main branch the newest layout;
//! quic-go a header with both; picoquic and mvfst draft-00 arrays), so this crate reads them all and
//! normalises them to the newest drafts (main-schema-14, quic-events-13, h3-events-13).
//!
//! ## Tour
//! - [`reader`]: [`Reader`] sniffs JSON-SEQ vs contained JSON, reads the [`Header`] and [`Trace`]s of any
//!   version, and yields borrowed [`Event`]s: normalised name and time, `data` kept as the exact JSON text.
//!   Damaged records become [`Damage`] (record number, byte offset) and reading resumes at the next RS.
//!   [`SeqTail`] splits a growing JSON-SEQ file into records for tailing; [`stream::read_seq`] reads a
//!   JSON-SEQ file through one reused buffer instead of holding it whole.
//! - [`normalise`]: old names and fields to new (`transport:X` → `quic:X`, `header.packet_size` →
//!   `raw.length`, `owner` → `initiator`, quinn 0.11's RTT seconds → ms, …).
//! - [`events`]: [`EventKind`] names every event of the drafts (and the legacy QPACK events);
//!   [`EventData`] types every QUIC and HTTP/3 event, each struct keeping the fields it does not name, and
//!   keeps every other event (extensions, QPACK) as JSON.
//! - [`writer`]: [`Streamer`], a buffered JSON-SEQ / contained-JSON writer with a frame mode, the spec's
//!   media types and draft-suffixed `event_schemas`, optional qvis header fields and gzip/zstd;
//!   [`Streamer::background`] hands its filled buffers to a [`BackgroundWriter`] thread for the file writes.
//!   Packet events carry their frames and ACK ranges in inline vectors ([`Frames`], [`AckRanges`]), so
//!   building and dropping a typical one allocates nothing.
//! - [`compress`]: `.sqlog.gz` / `.sqlog.zst` by magic bytes.
//! - [`tools`]: what `logwire qlog summary|check|plot|convert` compute. [`record`]: events to logwire
//!   records (one trace per connection).
//!
//! ## Deliberately not supported
//! NDJSON qlog (an abandoned draft-02 variant), writing the old versions (convert writes the newest layout,
//! optionally with qvis's header fields and old names), and typed data for QPACK, `simulation:` and
//! `http:capsule_*` events: they keep their JSON (normalised), which loses nothing.

pub mod background;
pub mod compress;
pub mod error;
pub mod events;
mod events_more;
mod fastjson;
mod fastread;
pub mod header;
pub mod normalise;
pub mod number;
pub mod reader;
pub mod record;
pub mod stream;
pub mod tail;
pub mod tools;
pub mod writer;

pub use background::BackgroundWriter;
pub use error::{QlogError, Result};
pub use events::{
    AckRange, AckRanges, AlpnInformation, ConnectionClosed, ConnectionIdUpdated, ConnectionStarted, DatagramDataMoved,
    EventData, EventKind, Frames, FramesProcessed, Http3Datagram, Http3Frame, Http3FrameEvent, Http3Parameters,
    Http3PriorityUpdated, Http3PushResolved, Http3StreamTypeSet, HttpField, KeyEvent, LogLevel, LogMessage,
    MarkedForRetransmit, MtuUpdated, PacketBuffered, PacketEvent, PacketHeader, PacketLossEvent, PacketType,
    PacketsAcked, QuicFrame, RawInfo, RecoveryMetrics, RecoveryParameters, ServerListening, SpinBitUpdated, StateKind,
    StateUpdated, StreamDataMoved, StreamStateUpdated, TimerUpdated, TransportParameters, TupleAssigned,
    UdpDatagramDropped, UdpDatagrams, VersionInformation,
};
pub use header::{Header, Serialization, TimeBase, TimeFormat, Trace, Version};
pub use reader::{sniff, Damage, Event, Reader, RS};
/// The inline vectors of [`AckRanges`] and [`Frames`] (`smallvec![…]` builds them).
pub use smallvec;
pub use tail::SeqTail;
pub use writer::{Compression, Streamer, StreamerConfig};

/// The media type of contained JSON qlog.
pub const MEDIA_TYPE_JSON: &str = "application/qlog+json";
/// The media type of JSON-SEQ qlog.
pub const MEDIA_TYPE_JSON_SEQ: &str = "application/qlog+json-seq";
