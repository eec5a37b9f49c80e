//! The agent side of one SPOP connection, as a sans-IO state machine.
//!
//! Feed received bytes to [`AgentConnection::poll_event`]; it returns [`AgentEvent`]s and appends what
//! must be sent (AGENT-HELLO, AGENT-DISCONNECT) to [`AgentConnection::transmit`]. The caller answers
//! each [`AgentEvent::Notify`] with [`AgentConnection::ack`] (in any order: pipelining), then writes the
//! transmit buffer to the socket in one `write` per batch.
//!
//! Rules enforced (SPOE.txt §3.2, notes/spop.md §3):
//! - HELLO: version 2.0 (else 5/8), max-frame-size present and ≥ 256 (else 6/9), negotiated as
//!   min(ours, HAProxy's); capabilities = ours ∩ announced; no capability and no engine-id is required,
//!   so health checks (`capabilities ""`, `healthcheck true`) pass.
//! - Frames above the negotiated size: 3. Malformed frames: 4. A frame without FIN when fragmentation
//!   was not negotiated: 10. A fragment of another frame while one is being reassembled: 11. A
//!   continuation with nothing to continue: 12. A reassembled NOTIFY above our memory bound: 13.
//! - HAPROXY-DISCONNECT is answered with AGENT-DISCONNECT (normal). Unknown frame types are skipped.

use crate::error::DecodeError;
use crate::frame::{encode_with, Flags, Frame, FrameCodec, FrameHeader, FrameType, MIN_FRAME_SIZE};
use crate::handler::Notify;
use crate::hello::{AgentHello, Capabilities, Disconnect, HaproxyHello, Negotiated};
use crate::message::{decode_messages, Action};
use crate::status::StatusCode;
use crate::varint;
use bytes::{BufMut, Bytes, BytesMut};

/// What the agent offers.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Largest frame we accept and announce; the negotiated size is min(this, HAProxy's).
    pub max_frame_size: u32,
    /// Capabilities we announce (intersected with HAProxy's).
    pub capabilities: Capabilities,
    /// Bound on one reassembled fragmented NOTIFY (status 13 above it).
    pub max_reassembled_size: usize,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            // Large on purpose: HAProxy's tune.bufsize can be raised, and we negotiate down anyway.
            max_frame_size: 1 << 20,
            capabilities: Capabilities::ALL,
            max_reassembled_size: 4 << 20,
        }
    }
}

/// What happened on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// HELLO negotiated and our AGENT-HELLO queued.
    Hello { hello: HaproxyHello, negotiated: Negotiated },
    /// A complete NOTIFY (reassembled if fragmented). Answer it with [`AgentConnection::ack`].
    Notify(Notify),
    /// HAProxy aborted a fragmented NOTIFY before its last fragment.
    Aborted { stream_id: u64, frame_id: u64 },
    /// HAProxy disconnected; our AGENT-DISCONNECT is queued. Flush, then close.
    PeerDisconnect(Disconnect),
    /// The peer broke the protocol; AGENT-DISCONNECT with `status` is queued. Flush, then close.
    ProtocolError { status: StatusCode, reason: String },
    /// A frame of a type we do not know, skipped as the spec asks.
    Skipped { frame_type: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitHello,
    Ready,
    /// A DISCONNECT was sent or received: input is ignored.
    Closing,
}

/// A NOTIFY being reassembled from fragments.
#[derive(Debug)]
struct Partial {
    stream_id: u64,
    frame_id: u64,
    payload: BytesMut,
    fragments: u32,
}

/// The agent side of one connection.
#[derive(Debug)]
pub struct AgentConnection {
    config: AgentConfig,
    codec: FrameCodec,
    state: State,
    negotiated: Option<Negotiated>,
    engine_id: Option<Bytes>,
    healthcheck: bool,
    partial: Option<Partial>,
    out: BytesMut,
}

impl AgentConnection {
    pub fn new(config: AgentConfig) -> Self {
        let max = config.max_frame_size.max(MIN_FRAME_SIZE);
        AgentConnection {
            config,
            codec: FrameCodec::new(max),
            state: State::AwaitHello,
            negotiated: None,
            engine_id: None,
            healthcheck: false,
            partial: None,
            out: BytesMut::with_capacity(4096),
        }
    }

    /// Negotiated parameters, once HELLO is done.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// The engine-id HAProxy announced, if any.
    pub fn engine_id(&self) -> Option<&Bytes> {
        self.engine_id.as_ref()
    }

    /// Whether HAProxy said this connection is a health check.
    pub fn is_healthcheck(&self) -> bool {
        self.healthcheck
    }

    /// True once a DISCONNECT went either way: flush [`Self::transmit`] and close.
    pub fn is_closing(&self) -> bool {
        self.state == State::Closing
    }

    /// Bytes waiting to be written. Take them with `split()` and write them in one go.
    pub fn transmit(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// Consumes complete frames from `input` until one produces an event. `None`: need more bytes (or
    /// the connection is closing).
    pub fn poll_event(&mut self, input: &mut BytesMut) -> Option<AgentEvent> {
        while self.state != State::Closing {
            let frame = match self.codec.decode_frame(input) {
                Ok(Some(frame)) => frame,
                Ok(None) => return None,
                Err(e) => return Some(self.decode_failure(e)),
            };
            match self.handle_frame(frame) {
                Ok(Some(event)) => return Some(event),
                Ok(None) => continue,
                Err((status, reason)) => return Some(self.fail(status, reason)),
            }
        }
        input.clear();
        None
    }

    /// Queues the ACK of a NOTIFY. An ACK cannot be fragmented, so when the actions do not fit the
    /// negotiated frame size an empty ACK is sent instead and `Err` tells how big it would have been.
    pub fn ack(&mut self, stream_id: u64, frame_id: u64, actions: &[Action]) -> Result<(), AckTooBig> {
        let max = self.max_frame_size();
        encode_ack(&mut self.out, stream_id, frame_id, actions, max)
    }

    /// Queues an ACK with the ABORT flag: the agent gives up on a (fragmented) NOTIFY.
    pub fn ack_abort(&mut self, stream_id: u64, frame_id: u64) {
        encode_with(
            &mut self.out,
            FrameHeader::new(FrameType::Ack, Flags::FIN | Flags::ABORT, stream_id, frame_id),
            |_| {},
        );
    }

    /// Queues AGENT-DISCONNECT and stops reading.
    pub fn disconnect(&mut self, status: StatusCode, message: &str) {
        if self.state == State::Closing {
            return;
        }
        Disconnect::new(status, Bytes::copy_from_slice(message.as_bytes()))
            .encode_frame(FrameType::AgentDisconnect, &mut self.out);
        self.state = State::Closing;
    }

    /// The frame size ACKs must fit in.
    pub fn max_frame_size(&self) -> u32 {
        self.negotiated.map(|n| n.max_frame_size).unwrap_or(self.codec.max_frame_size())
    }

    fn decode_failure(&mut self, e: DecodeError) -> AgentEvent {
        self.fail(e.status(), e.to_string())
    }

    fn fail(&mut self, status: StatusCode, reason: String) -> AgentEvent {
        self.disconnect(status, &reason);
        AgentEvent::ProtocolError { status, reason }
    }

    fn handle_frame(&mut self, frame: Frame) -> Result<Option<AgentEvent>, (StatusCode, String)> {
        let h = frame.header;
        match (self.state, h.frame_type) {
            (_, FrameType::HaproxyDisconnect) => {
                let d = Disconnect::decode(frame.payload).map_err(invalid)?;
                self.disconnect(StatusCode::Normal, StatusCode::Normal.reason());
                Ok(Some(AgentEvent::PeerDisconnect(d)))
            }
            (State::AwaitHello, FrameType::HaproxyHello) => self.handle_hello(frame).map(Some),
            (State::Ready, FrameType::Notify) => self.handle_notify(frame),
            (State::Ready, FrameType::Unset) => self.handle_continuation(frame),
            (_, FrameType::Other(t)) => Ok(Some(AgentEvent::Skipped { frame_type: t })),
            (State::AwaitHello, t) => {
                Err((StatusCode::Invalid, format!("expected HAPROXY-HELLO, got frame type {}", t.as_u8())))
            }
            (_, t) => Err((StatusCode::Invalid, format!("unexpected frame type {} for an agent", t.as_u8()))),
        }
    }

    fn handle_hello(&mut self, frame: Frame) -> Result<AgentEvent, (StatusCode, String)> {
        if !frame.header.flags.fin() {
            return Err((StatusCode::FragNotSupported, "HAPROXY-HELLO without FIN".into()));
        }
        let hello = HaproxyHello::decode(frame.payload).map_err(invalid)?;
        let negotiated = hello
            .negotiate(self.config.max_frame_size, self.config.capabilities)
            .map_err(|s| (s, s.reason().to_string()))?;
        self.codec.set_max_frame_size(negotiated.max_frame_size);
        self.negotiated = Some(negotiated);
        self.engine_id = hello.engine_id.clone();
        self.healthcheck = hello.healthcheck;
        let reply = AgentHello::from_negotiated(negotiated);
        encode_with(&mut self.out, FrameHeader::new(FrameType::AgentHello, Flags::FIN, 0, 0), |o| reply.encode(o));
        self.state = State::Ready;
        Ok(AgentEvent::Hello { hello, negotiated })
    }

    fn fragmentation(&self) -> bool {
        self.negotiated.is_some_and(|n| n.capabilities.fragmentation)
    }

    fn handle_notify(&mut self, frame: Frame) -> Result<Option<AgentEvent>, (StatusCode, String)> {
        let h = frame.header;
        if self.partial.is_some() {
            return Err((StatusCode::InterlacedFrames, "NOTIFY while another one is being reassembled".into()));
        }
        if h.flags.fin() {
            let messages = decode_messages(frame.payload).map_err(invalid)?;
            return Ok(Some(self.notify(h.stream_id, h.frame_id, messages, 1)));
        }
        if !self.fragmentation() {
            return Err((StatusCode::FragNotSupported, StatusCode::FragNotSupported.reason().into()));
        }
        let mut payload = BytesMut::with_capacity(frame.payload.len() * 2);
        payload.put_slice(&frame.payload);
        self.partial = Some(Partial { stream_id: h.stream_id, frame_id: h.frame_id, payload, fragments: 1 });
        Ok(None)
    }

    fn handle_continuation(&mut self, frame: Frame) -> Result<Option<AgentEvent>, (StatusCode, String)> {
        let h = frame.header;
        let Some(partial) = self.partial.as_mut() else {
            if h.flags.abort() {
                // An abort racing with a frame we already finished: nothing to do.
                return Ok(None);
            }
            return Err((
                StatusCode::FrameIdNotFound,
                format!("continuation of unknown frame {}/{}", h.stream_id, h.frame_id),
            ));
        };
        if (partial.stream_id, partial.frame_id) != (h.stream_id, h.frame_id) {
            return Err((
                StatusCode::InterlacedFrames,
                format!(
                    "fragment of {}/{} while reassembling {}/{}",
                    h.stream_id, h.frame_id, partial.stream_id, partial.frame_id
                ),
            ));
        }
        if h.flags.abort() {
            self.partial = None;
            return Ok(Some(AgentEvent::Aborted { stream_id: h.stream_id, frame_id: h.frame_id }));
        }
        if partial.payload.len() + frame.payload.len() > self.config.max_reassembled_size {
            self.partial = None;
            return Err((
                StatusCode::Resources,
                format!("fragmented NOTIFY above {} bytes", self.config.max_reassembled_size),
            ));
        }
        partial.payload.put_slice(&frame.payload);
        partial.fragments += 1;
        if !h.flags.fin() {
            return Ok(None);
        }
        let Some(done) = self.partial.take() else { return Ok(None) };
        let messages = decode_messages(done.payload.freeze()).map_err(invalid)?;
        Ok(Some(self.notify(done.stream_id, done.frame_id, messages, done.fragments)))
    }

    fn notify(&self, stream_id: u64, frame_id: u64, messages: Vec<crate::Message>, fragments: u32) -> AgentEvent {
        AgentEvent::Notify(Notify { stream_id, frame_id, engine_id: self.engine_id.clone(), messages, fragments })
    }
}

fn invalid(e: DecodeError) -> (StatusCode, String) {
    (e.status(), e.to_string())
}

/// The actions did not fit in one frame; an empty ACK was sent instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ACK of {len} bytes exceeds max-frame-size {max}; sent an empty ACK instead")]
pub struct AckTooBig {
    pub len: usize,
    pub max: u32,
}

/// Appends an ACK frame (FIN set, as HAProxy ≥ 3.1 requires on every frame). Usable for any connection
/// of the same engine, which is what `async` allows.
pub fn encode_ack(
    out: &mut BytesMut,
    stream_id: u64,
    frame_id: u64,
    actions: &[Action],
    max_frame_size: u32,
) -> Result<(), AckTooBig> {
    let header = FrameHeader::new(FrameType::Ack, Flags::FIN, stream_id, frame_id);
    let len = header.encoded_len() + actions.iter().map(Action::encoded_len).sum::<usize>();
    if len > max_frame_size as usize {
        encode_with(out, header, |_| {});
        return Err(AckTooBig { len, max: max_frame_size });
    }
    out.reserve(4 + len);
    encode_with(out, header, |o| {
        for a in actions {
            a.encode(o);
        }
    });
    Ok(())
}

/// Bytes an ACK with no actions takes on the wire, length prefix included.
pub fn empty_ack_len(stream_id: u64, frame_id: u64) -> usize {
    4 + 5 + varint::encoded_len(stream_id) + varint::encoded_len(frame_id)
}
