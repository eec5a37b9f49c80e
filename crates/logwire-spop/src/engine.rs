//! The HAProxy (engine) side of one SPOP connection, as a sans-IO state machine.
//!
//! No other Rust engine-side implementation exists; logwire uses this one for tests, `logwire spop probe`
//! and `logwire spop bench`. It can behave like either HAProxy generation ([`Generation`]):
//!
//! | | HAProxy ≤ 3.0 ([`Generation::Legacy`]) | HAProxy ≥ 3.1 ([`Generation::Modern`]) |
//! |---|---|---|
//! | capabilities announced | `pipelining,async` | `pipelining` |
//! | stream-ids | any, 0 valid | odd, per connection (1, 3, 5 …) |
//! | FIN | on the last frame of a NOTIFY | required on every frame |
//! | big NOTIFY | fragmented if the agent announced `fragmentation`, else DISCONNECT 10 | per-stream TOO_BIG |
//! | in flight per connection | `max-waiting-frames` (20) | 20 with pipelining, else 1 |
//!
//! Time is passed in (`now`) so that timings stay testable.

use crate::error::DecodeError;
use crate::frame::{encode_with, Flags, Frame, FrameCodec, FrameHeader, FrameType, DEFAULT_FRAME_SIZE};
use crate::hello::{AgentHello, Capabilities, Disconnect, HaproxyHello, Negotiated, VERSION};
use crate::message::{decode_actions, encode_messages, Action, Message};
use crate::status::StatusCode;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Which HAProxy to behave like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Generation {
    /// HAProxy ≤ 3.0 (the legacy SPOE applet), e.g. Debian 12's 2.6.
    #[default]
    Legacy,
    /// HAProxy ≥ 3.1 (the `mux_spop` rewrite).
    Modern,
}

/// What the engine announces.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub generation: Generation,
    pub max_frame_size: u32,
    pub capabilities: Capabilities,
    /// Send the health-check hello (`option spop-check`): empty capabilities, no engine-id.
    pub healthcheck: bool,
    pub engine_id: Option<String>,
    /// `option send-frag-payload` (≤ 3.0): fragment big NOTIFYs; without agent support this is a
    /// DISCONNECT 10, as HAProxy does.
    pub send_frag_payload: bool,
    /// `max-waiting-frames`; ≥ 3.1 caps it at 20 (1 without pipelining).
    pub max_in_flight: usize,
}

impl EngineConfig {
    /// Defaults of the given HAProxy generation.
    pub fn new(generation: Generation) -> Self {
        let capabilities = match generation {
            // What 2.6 announces; fragmentation is used when the agent announces it (HAProxy never
            // announces it itself).
            Generation::Legacy => Capabilities { pipelining: true, async_: true, fragmentation: false },
            Generation::Modern => Capabilities { pipelining: true, ..Capabilities::NONE },
        };
        EngineConfig {
            generation,
            max_frame_size: DEFAULT_FRAME_SIZE,
            capabilities,
            healthcheck: false,
            engine_id: None,
            send_frag_payload: true,
            max_in_flight: 20,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig::new(Generation::Legacy)
    }
}

/// What happened on the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// AGENT-HELLO accepted.
    Ready(Negotiated),
    /// The agent answered HELLO with AGENT-DISCONNECT.
    Refused(Disconnect),
    /// An ACK for a NOTIFY of this connection; `latency` is from the NOTIFY's last byte queued.
    Ack { stream_id: u64, frame_id: u64, actions: Vec<Action>, aborted: bool, latency: Option<Duration> },
    /// An ACK for a frame this connection did not send (with async it may belong to another
    /// connection of the same engine; HAProxy ignores the rest).
    UnknownAck { stream_id: u64, frame_id: u64, actions: Vec<Action>, aborted: bool },
    /// The agent disconnected after HELLO. Close.
    AgentDisconnect(Disconnect),
    /// The agent broke the protocol; HAPROXY-DISCONNECT with `status` is queued. Flush, then close.
    ProtocolError { status: StatusCode, reason: String },
    /// A frame of an unknown type, skipped.
    Skipped { frame_type: u8 },
}

/// Why a NOTIFY could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("the connection is not ready (HELLO not done, or closing)")]
    NotReady,
    #[error("{in_flight} NOTIFY already in flight (limit {limit})")]
    TooManyInFlight { in_flight: usize, limit: usize },
    #[error("NOTIFY of {len} bytes exceeds max-frame-size {max} and cannot be fragmented")]
    TooBig { len: usize, max: u32 },
    #[error("NOTIFY of {len} bytes needs fragmentation, which the agent did not announce; sent DISCONNECT 10")]
    FragmentationRefused { len: usize },
    #[error("frame {stream_id}/{frame_id} is already in flight")]
    Duplicate { stream_id: u64, frame_id: u64 },
    #[error("HAProxy >= 3.1 uses odd stream-ids; {0} is even")]
    EvenStreamId(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitHello,
    Ready,
    Closing,
}

/// The engine side of one connection.
#[derive(Debug)]
pub struct EngineConnection {
    config: EngineConfig,
    codec: FrameCodec,
    state: State,
    negotiated: Option<Negotiated>,
    in_flight: HashMap<(u64, u64), Instant>,
    next_stream_id: u64,
    out: BytesMut,
}

impl EngineConnection {
    /// A connection with HAPROXY-HELLO already queued in [`Self::transmit`].
    pub fn new(config: EngineConfig) -> Self {
        let mut conn = EngineConnection {
            codec: FrameCodec::new(config.max_frame_size),
            state: State::AwaitHello,
            negotiated: None,
            in_flight: HashMap::new(),
            next_stream_id: 1,
            out: BytesMut::with_capacity(4096),
            config,
        };
        let hello = HaproxyHello {
            supported_versions: Some(Bytes::from_static(VERSION.as_bytes())),
            max_frame_size: Some(conn.config.max_frame_size as u64),
            capabilities: if conn.config.healthcheck { Capabilities::NONE } else { conn.config.capabilities },
            healthcheck: conn.config.healthcheck,
            engine_id: if conn.config.healthcheck { None } else { conn.config.engine_id.clone().map(Bytes::from) },
            unknown: Vec::new(),
        };
        encode_with(&mut conn.out, FrameHeader::new(FrameType::HaproxyHello, Flags::FIN, 0, 0), |o| hello.encode(o));
        conn
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    pub fn is_closing(&self) -> bool {
        self.state == State::Closing
    }

    /// NOTIFYs sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// How many NOTIFYs may be in flight now (the generation's rule applied to what was negotiated).
    pub fn in_flight_limit(&self) -> usize {
        let pipelining = self.negotiated.is_some_and(|n| n.capabilities.pipelining);
        match (self.config.generation, pipelining) {
            (_, false) => 1,
            (Generation::Modern, true) => self.config.max_in_flight.min(20),
            (Generation::Legacy, true) => self.config.max_in_flight.max(1),
        }
    }

    /// The next stream-id the way ≥ 3.1 allocates them (odd, per connection).
    pub fn next_stream_id(&mut self) -> u64 {
        let id = self.next_stream_id;
        self.next_stream_id += 2;
        id
    }

    /// Bytes waiting to be written.
    pub fn transmit(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// Queues a NOTIFY, fragmenting it when it does not fit and both sides allow it.
    pub fn notify(
        &mut self,
        now: Instant,
        stream_id: u64,
        frame_id: u64,
        messages: &[Message],
    ) -> Result<(), NotifyError> {
        let len: usize = messages.iter().map(Message::encoded_len).sum();
        let mut payload = BytesMut::with_capacity(len);
        encode_messages(messages, &mut payload);
        self.notify_payload(now, stream_id, frame_id, &payload)
    }

    /// Queues a NOTIFY whose LIST-OF-MESSAGES is already encoded (load generators reuse one payload).
    pub fn notify_payload(
        &mut self,
        now: Instant,
        stream_id: u64,
        frame_id: u64,
        payload: &[u8],
    ) -> Result<(), NotifyError> {
        if self.state != State::Ready {
            return Err(NotifyError::NotReady);
        }
        let limit = self.in_flight_limit();
        if self.in_flight.len() >= limit {
            return Err(NotifyError::TooManyInFlight { in_flight: self.in_flight.len(), limit });
        }
        if self.config.generation == Generation::Modern && stream_id % 2 == 0 {
            return Err(NotifyError::EvenStreamId(stream_id));
        }
        if self.in_flight.contains_key(&(stream_id, frame_id)) {
            return Err(NotifyError::Duplicate { stream_id, frame_id });
        }
        let max = self.codec.max_frame_size() as usize;
        let header = FrameHeader::new(FrameType::Notify, Flags::FIN, stream_id, frame_id);
        let header_len = header.encoded_len();
        if header_len + payload.len() <= max {
            self.out.reserve(4 + header_len + payload.len());
            encode_with(&mut self.out, header, |o| o.put_slice(payload));
        } else {
            let fragmentation = self.negotiated.is_some_and(|n| n.capabilities.fragmentation);
            match self.config.generation {
                Generation::Modern => {
                    return Err(NotifyError::TooBig { len: header_len + payload.len(), max: max as u32 })
                }
                Generation::Legacy if !self.config.send_frag_payload => {
                    return Err(NotifyError::TooBig { len: header_len + payload.len(), max: max as u32 })
                }
                Generation::Legacy if !fragmentation => {
                    self.disconnect(StatusCode::FragNotSupported, "fragmentation not supported");
                    return Err(NotifyError::FragmentationRefused { len: header_len + payload.len() });
                }
                Generation::Legacy => self.fragment(stream_id, frame_id, payload, max),
            }
        }
        self.in_flight.insert((stream_id, frame_id), now);
        Ok(())
    }

    /// NOTIFY without FIN, then UNSET frames, the last one with FIN, as HAProxy 2.6 does. Each frame is
    /// filled to max-frame-size, splitting values wherever the boundary falls.
    fn fragment(&mut self, stream_id: u64, frame_id: u64, payload: &[u8], max: usize) {
        let mut rest = payload;
        let mut frame_type = FrameType::Notify;
        loop {
            let room = max - FrameHeader::new(frame_type, Flags::NONE, stream_id, frame_id).encoded_len();
            let take = room.min(rest.len());
            let (chunk, tail) = rest.split_at(take);
            let flags = if tail.is_empty() { Flags::FIN } else { Flags::NONE };
            encode_with(&mut self.out, FrameHeader::new(frame_type, flags, stream_id, frame_id), |o| {
                o.put_slice(chunk)
            });
            rest = tail;
            frame_type = FrameType::Unset;
            if rest.is_empty() {
                break;
            }
        }
    }

    /// Aborts a NOTIFY in flight (UNSET with FIN|ABORT, as HAProxy ≤ 3.0 does when a stream dies).
    pub fn abort(&mut self, stream_id: u64, frame_id: u64) {
        self.in_flight.remove(&(stream_id, frame_id));
        encode_with(
            &mut self.out,
            FrameHeader::new(FrameType::Unset, Flags::FIN | Flags::ABORT, stream_id, frame_id),
            |_| {},
        );
    }

    /// Queues HAPROXY-DISCONNECT and stops reading.
    pub fn disconnect(&mut self, status: StatusCode, message: &str) {
        if self.state == State::Closing {
            return;
        }
        Disconnect::new(status, Bytes::copy_from_slice(message.as_bytes()))
            .encode_frame(FrameType::HaproxyDisconnect, &mut self.out);
        self.state = State::Closing;
    }

    /// Consumes complete frames from `input` until one produces an event.
    pub fn poll_event(&mut self, now: Instant, input: &mut BytesMut) -> Option<EngineEvent> {
        while self.state != State::Closing {
            let frame = match self.codec.decode_frame(input) {
                Ok(Some(f)) => f,
                Ok(None) => return None,
                Err(e) => return Some(self.fail(e.status(), e.to_string())),
            };
            match self.handle_frame(now, frame) {
                Ok(Some(ev)) => return Some(ev),
                Ok(None) => continue,
                Err((status, reason)) => return Some(self.fail(status, reason)),
            }
        }
        input.clear();
        None
    }

    fn fail(&mut self, status: StatusCode, reason: String) -> EngineEvent {
        self.disconnect(status, &reason);
        EngineEvent::ProtocolError { status, reason }
    }

    fn handle_frame(&mut self, now: Instant, frame: Frame) -> Result<Option<EngineEvent>, (StatusCode, String)> {
        let h = frame.header;
        if !h.flags.fin() && !matches!(h.frame_type, FrameType::Other(_)) {
            return Err((StatusCode::FragNotSupported, "agent frame without FIN".into()));
        }
        match (self.state, h.frame_type) {
            (State::AwaitHello, FrameType::AgentHello) => {
                let hello = AgentHello::decode(frame.payload).map_err(invalid)?;
                let modern = self.config.generation == Generation::Modern;
                let can_fragment = !modern && self.config.send_frag_payload;
                let ours = Capabilities { fragmentation: can_fragment, ..self.config.capabilities };
                let n =
                    hello.check(self.config.max_frame_size, ours, modern).map_err(|s| (s, s.reason().to_string()))?;
                let n = if modern {
                    // ≥ 3.1 removed fragmentation and async.
                    Negotiated {
                        capabilities: Capabilities { pipelining: n.capabilities.pipelining, ..Capabilities::NONE },
                        ..n
                    }
                } else {
                    n
                };
                self.codec.set_max_frame_size(n.max_frame_size);
                self.negotiated = Some(n);
                self.state = State::Ready;
                Ok(Some(EngineEvent::Ready(n)))
            }
            (State::AwaitHello, FrameType::AgentDisconnect) => {
                let d = Disconnect::decode(frame.payload).map_err(invalid)?;
                self.state = State::Closing;
                Ok(Some(EngineEvent::Refused(d)))
            }
            (State::Ready, FrameType::AgentDisconnect) => {
                let d = Disconnect::decode(frame.payload).map_err(invalid)?;
                self.state = State::Closing;
                Ok(Some(EngineEvent::AgentDisconnect(d)))
            }
            (State::Ready, FrameType::Ack) => {
                let aborted = h.flags.abort();
                let actions = decode_actions(frame.payload).map_err(invalid)?;
                Ok(Some(match self.in_flight.remove(&(h.stream_id, h.frame_id)) {
                    Some(sent) => EngineEvent::Ack {
                        stream_id: h.stream_id,
                        frame_id: h.frame_id,
                        actions,
                        aborted,
                        latency: Some(now.saturating_duration_since(sent)),
                    },
                    None => EngineEvent::UnknownAck { stream_id: h.stream_id, frame_id: h.frame_id, actions, aborted },
                }))
            }
            (_, FrameType::Other(t)) => Ok(Some(EngineEvent::Skipped { frame_type: t })),
            (_, t) => Err((StatusCode::Invalid, format!("unexpected frame type {} from an agent", t.as_u8()))),
        }
    }
}

fn invalid(e: DecodeError) -> (StatusCode, String) {
    (e.status(), e.to_string())
}
