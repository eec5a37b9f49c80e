//! A passive observer of one worker connection: feed it copies of both directions as they pass, in any
//! split, and it reports the handshake, each request, each logger message and each reply with byte
//! offsets. It never produces bytes, so the connection it watches cannot notice it.
//!
//! The logging channel cannot be framed on its own (an op's reply follows STDERR_LAST and its shape
//! depends on op and version), so the observer walks both directions: request on c2s, log block on s2c
//! (answers to STDERR_READ on c2s), reply on s2c. Large payloads (framed data, NARs, READ answers) are
//! skipped as they stream, never buffered. On anything it cannot frame it reports
//! [`Event::OutOfSync`] once and ignores the rest of the connection.

use std::collections::VecDeque;

use crate::error::DecodeError;
use crate::handshake::{ClientHello, DaemonHello};
use crate::logger::{Message, MessageRef};
use crate::nar::NarSkipper;
use crate::ops::{FrameError, Op, Reply, Request, Tail};
use crate::version::ProtocolVersion;
use crate::wire::{padding, FramedSkipper, Limits, ListMemo, Reader};

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToDaemon,
    DaemonToClient,
}

/// What the observer saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Handshake {
        client: ClientHello,
        daemon: DaemonHello,
        negotiated: ProtocolVersion,
    },
    /// A complete request (its streamed tail may still be arriving).
    Request {
        c2s_offset: u64,
        request: Request,
    },
    /// A logger message; `op` is `None` in the startup block.
    Message {
        s2c_offset: u64,
        end: u64,
        op: Option<Op>,
        message: Message,
    },
    /// The reply after STDERR_LAST.
    Reply {
        op: Op,
        s2c_offset: u64,
        end: u64,
        reply: Reply,
    },
    /// The observer lost the thread; nothing more is reported for this connection.
    OutOfSync {
        direction: Direction,
        offset: u64,
        reason: String,
    },
}

/// What the observer saw, with logger messages borrowed from its buffer ([`Observer::feed_with`]): the
/// relay's path, which copies nothing the record mapping does not need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRef<'a> {
    /// A logger message; `op` is `None` in the startup block.
    Message { s2c_offset: u64, end: u64, op: Option<Op>, message: MessageRef<'a> },
    /// Any other event (handshake, request, reply, out of sync): rare, so owned.
    Other(Event),
}

impl EventRef<'_> {
    pub fn into_owned(self) -> Event {
        match self {
            EventRef::Message { s2c_offset, end, op, message } => {
                Event::Message { s2c_offset, end, op, message: message.to_owned() }
            }
            EventRef::Other(event) => event,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Versions,
    HandshakeRest,
    StartupLog,
    Idle,
    LogBlock(Op),
    Reply(Op),
    OutOfSync,
}

#[derive(Debug)]
enum TailState {
    Framed(FramedSkipper),
    Nar(NarSkipper),
    Skip(u64),
}

#[derive(Debug, Default)]
struct Stream {
    buf: Vec<u8>,
    start: usize,
    /// Absolute stream offset of `buf[start]`.
    offset: u64,
    /// Don't retry a parse until this many bytes are buffered.
    wait_for: usize,
    /// Where the previous attempts at the item being parsed got to in its lists.
    memo: ListMemo,
    /// Bytes request/reply parses have walked, jumps excluded (a measure of re-parsing work).
    walked: u64,
    tail: Option<TailState>,
}

impl Stream {
    fn available(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
        self.wait_for = 0;
        self.memo.clear();
    }

    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 1 << 16 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Runs the streamed tail, if any. Returns whether it made progress, or an error.
    fn run_tail(&mut self) -> Result<bool, DecodeError> {
        let Some(tail) = self.tail.as_mut() else { return Ok(false) };
        let input = &self.buf[self.start..];
        let (used, done) = match tail {
            TailState::Framed(skipper) => skipper.advance(input),
            TailState::Nar(skipper) => {
                let used = skipper.advance(input)?;
                (used, skipper.is_done())
            }
            TailState::Skip(left) => {
                let step = (*left).min(input.len() as u64);
                *left -= step;
                (step as usize, *left == 0)
            }
        };
        if done {
            self.tail = None;
        }
        self.start += used;
        self.offset += used as u64;
        Ok(used > 0 || done)
    }
}

enum Parse<T> {
    Done { value: T, offset: u64, end: u64 },
    Wait,
    Fail { error: FrameError, offset: u64 },
}

/// Parses one item from the start of the stream's unconsumed bytes, or learns how many bytes to wait for.
/// An item arriving in pieces is parsed again from its start each time, but its lists are not walked
/// again: the stream's [`ListMemo`] carries the progress from one attempt to the next.
fn parse<T>(
    stream: &mut Stream,
    limits: Limits,
    f: impl FnOnce(&mut Reader<'_>, &mut ListMemo) -> Result<T, FrameError>,
) -> Parse<T> {
    if stream.available().len() < stream.wait_for {
        return Parse::Wait;
    }
    let mut memo = std::mem::take(&mut stream.memo);
    let jumped_before = memo.jumped();
    let mut r = Reader::new(&stream.buf[stream.start..], limits);
    let result = f(&mut r, &mut memo);
    let used = r.position();
    stream.walked += (used as u64).saturating_sub(memo.jumped() - jumped_before);
    match result {
        Ok(value) => {
            let offset = stream.offset;
            stream.consume(used);
            Parse::Done { value, offset, end: stream.offset }
        }
        Err(FrameError::Decode(DecodeError::Incomplete { needed })) => {
            stream.wait_for = needed;
            stream.memo = memo;
            Parse::Wait
        }
        Err(error) => Parse::Fail { error, offset: stream.offset },
    }
}

/// The observer state a log block changes (borrowed apart from the stream being read).
struct LogBlockState<'s> {
    phase: &'s mut Phase,
    pending_reads: &'s mut u64,
    pending: &'s mut VecDeque<Event>,
}

/// Decodes logger messages from `input` (at stream offset `offset`) while the phase is a log block,
/// handing each out borrowed after any pending events. Returns the bytes used, and how it stopped:
/// `Ok` at the end of the block, `Incomplete` (`needed` counted from the first unused byte), or an error.
fn run_log_block(
    state: LogBlockState<'_>,
    input: &[u8],
    offset: u64,
    limits: Limits,
    negotiated: ProtocolVersion,
    on_event: &mut impl FnMut(EventRef<'_>),
) -> (usize, Result<(), DecodeError>) {
    let mut used = 0;
    loop {
        let op = match *state.phase {
            Phase::LogBlock(op) => Some(op),
            Phase::StartupLog => None,
            _ => return (used, Ok(())),
        };
        let mut r = Reader::new(&input[used..], limits);
        let message = match MessageRef::decode(&mut r, negotiated) {
            Ok(message) => message,
            Err(error) => return (used, Err(error)),
        };
        match &message {
            MessageRef::Read { .. } => *state.pending_reads += 1,
            MessageRef::Last => {
                *state.phase = match op {
                    Some(op) => Phase::Reply(op),
                    None => Phase::Idle,
                }
            }
            MessageRef::Error(_) => *state.phase = Phase::Idle,
            _ => {}
        }
        while let Some(event) = state.pending.pop_front() {
            on_event(EventRef::Other(event));
        }
        let start = offset + used as u64;
        used += r.position();
        on_event(EventRef::Message { s2c_offset: start, end: offset + used as u64, op, message });
    }
}

/// Observes one connection. See the module docs.
#[derive(Debug)]
pub struct Observer {
    limits: Limits,
    max_buffer: usize,
    phase: Phase,
    c2s: Stream,
    s2c: Stream,
    client_version: Option<ProtocolVersion>,
    daemon_version: Option<ProtocolVersion>,
    negotiated: ProtocolVersion,
    client_hello: Option<ClientHello>,
    daemon_hello: Option<DaemonHello>,
    /// STDERR_READ requests whose c2s answers are still to come.
    pending_reads: u64,
    /// Events found but not yet handed to the `feed_with` callback (kept in order with messages).
    pending: VecDeque<Event>,
    /// Events for [`Observer::poll_event`].
    events: VecDeque<Event>,
}

impl Default for Observer {
    fn default() -> Self {
        Observer::new(Limits::default())
    }
}

impl Observer {
    pub fn new(limits: Limits) -> Self {
        let max_buffer =
            usize::try_from(limits.max_string.saturating_mul(2).saturating_add(1 << 20)).unwrap_or(usize::MAX);
        Observer {
            limits,
            max_buffer,
            phase: Phase::Versions,
            c2s: Stream::default(),
            s2c: Stream::default(),
            client_version: None,
            daemon_version: None,
            negotiated: ProtocolVersion::MINIMUM,
            client_hello: None,
            daemon_hello: None,
            pending_reads: 0,
            pending: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Bytes the client sent.
    pub fn feed_client(&mut self, bytes: &[u8]) {
        self.feed(Direction::ClientToDaemon, bytes);
    }

    /// Bytes the daemon sent.
    pub fn feed_daemon(&mut self, bytes: &[u8]) {
        self.feed(Direction::DaemonToClient, bytes);
    }

    /// Feeds bytes and queues what they complete for [`Observer::poll_event`] (messages copied).
    pub fn feed(&mut self, direction: Direction, bytes: &[u8]) {
        let mut events = std::mem::take(&mut self.events);
        self.feed_with(direction, bytes, |event| events.push_back(event.into_owned()));
        self.events = events;
    }

    /// Feeds bytes and hands each event they complete to `on_event`, in order, with logger messages
    /// borrowed from the observer's buffer (no copy). The relay's decode path.
    pub fn feed_with(&mut self, direction: Direction, bytes: &[u8], mut on_event: impl FnMut(EventRef<'_>)) {
        let stream = match direction {
            Direction::ClientToDaemon => &mut self.c2s,
            Direction::DaemonToClient => &mut self.s2c,
        };
        if self.phase == Phase::OutOfSync {
            stream.offset += bytes.len() as u64;
            return;
        }
        let mut bytes = bytes;
        // Daemon bytes in a log block (most of them) are decoded straight from the caller's slice; only an
        // incomplete message is buffered, and it is completed by topping the buffer up with just the bytes
        // it needs, so a chunk is never copied whole.
        while direction == Direction::DaemonToClient
            && !bytes.is_empty()
            && matches!(self.phase, Phase::LogBlock(_) | Phase::StartupLog)
            && self.s2c.tail.is_none()
        {
            let buffered = self.s2c.available().len();
            if buffered == 0 {
                let offset = self.s2c.offset;
                let state = LogBlockState {
                    phase: &mut self.phase,
                    pending_reads: &mut self.pending_reads,
                    pending: &mut self.pending,
                };
                let (used, result) = run_log_block(state, bytes, offset, self.limits, self.negotiated, &mut on_event);
                self.s2c.offset += used as u64;
                // Nothing is buffered, so an earlier wait does not apply to what comes next (which may be a
                // reply of zero bytes, parsed at once).
                self.s2c.wait_for = 0;
                bytes = &bytes[used..];
                match result {
                    Ok(()) | Err(DecodeError::Incomplete { .. }) => break,
                    Err(error) => {
                        let offset = self.s2c.offset;
                        self.lose_sync(Direction::DaemonToClient, offset, error.to_string());
                        break;
                    }
                }
            }
            if self.s2c.wait_for <= buffered {
                break;
            }
            let top_up = (self.s2c.wait_for - buffered).min(bytes.len());
            self.s2c.buf.extend_from_slice(&bytes[..top_up]);
            bytes = &bytes[top_up..];
            while self.phase != Phase::OutOfSync && self.step(&mut on_event) {}
            self.s2c.compact();
        }
        if self.phase == Phase::OutOfSync {
            // Lost the thread while decoding these bytes: count the rest as seen.
            self.s2c.offset += bytes.len() as u64;
            while let Some(event) = self.pending.pop_front() {
                on_event(EventRef::Other(event));
            }
            return;
        }
        let stream = match direction {
            Direction::ClientToDaemon => &mut self.c2s,
            Direction::DaemonToClient => &mut self.s2c,
        };
        stream.buf.extend_from_slice(bytes);
        while self.phase != Phase::OutOfSync && self.step(&mut on_event) {}
        self.c2s.compact();
        self.s2c.compact();
        if self.phase != Phase::OutOfSync {
            for direction in [Direction::ClientToDaemon, Direction::DaemonToClient] {
                let stream = match direction {
                    Direction::ClientToDaemon => &self.c2s,
                    Direction::DaemonToClient => &self.s2c,
                };
                if stream.available().len() > self.max_buffer {
                    let offset = stream.offset;
                    let reason = format!("more than {} bytes buffered without a complete item", self.max_buffer);
                    self.lose_sync(direction, offset, reason);
                    break;
                }
            }
        }
        while let Some(event) = self.pending.pop_front() {
            on_event(EventRef::Other(event));
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the observer has lost the thread.
    pub fn is_out_of_sync(&self) -> bool {
        self.phase == Phase::OutOfSync
    }

    /// The negotiated version, once the handshake has been seen.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.daemon_hello.as_ref().map(|_| self.negotiated)
    }

    /// Bytes of a direction fully decoded (or skipped) so far.
    pub fn consumed(&self, direction: Direction) -> u64 {
        match direction {
            Direction::ClientToDaemon => self.c2s.offset,
            Direction::DaemonToClient => self.s2c.offset,
        }
    }

    /// Bytes that request and reply parses of a direction have walked, list elements jumped over on
    /// retries not counted: about the bytes of its ops when each is parsed once, much more if long
    /// requests were parsed again from the start as they arrived.
    pub fn parse_work(&self, direction: Direction) -> u64 {
        match direction {
            Direction::ClientToDaemon => self.c2s.walked,
            Direction::DaemonToClient => self.s2c.walked,
        }
    }

    /// Bytes of a direction received but not yet decoded.
    pub fn buffered(&self, direction: Direction) -> usize {
        match direction {
            Direction::ClientToDaemon => self.c2s.available().len(),
            Direction::DaemonToClient => self.s2c.available().len(),
        }
    }

    /// Gives up on the connection from outside (e.g. the relay could not keep up): reports
    /// [`Event::OutOfSync`] once and ignores what follows.
    pub fn abandon(&mut self, direction: Direction, reason: String) {
        if self.phase != Phase::OutOfSync {
            let offset = self.consumed(direction) + self.buffered(direction) as u64;
            self.lose_sync(direction, offset, reason);
            self.events.extend(self.pending.drain(..));
        }
    }

    fn lose_sync(&mut self, direction: Direction, offset: u64, reason: String) {
        self.phase = Phase::OutOfSync;
        for stream in [&mut self.c2s, &mut self.s2c] {
            stream.offset += stream.available().len() as u64;
            stream.buf = Vec::new();
            stream.start = 0;
            stream.tail = None;
            stream.memo = ListMemo::default();
        }
        self.pending.push_back(Event::OutOfSync { direction, offset, reason });
    }

    /// One unit of progress; false when nothing more can be done with the bytes at hand.
    fn step(&mut self, on_event: &mut impl FnMut(EventRef<'_>)) -> bool {
        match self.c2s.run_tail() {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => {
                let offset = self.c2s.offset;
                self.lose_sync(Direction::ClientToDaemon, offset, e.to_string());
                return false;
            }
        }
        match self.s2c.run_tail() {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => {
                let offset = self.s2c.offset;
                self.lose_sync(Direction::DaemonToClient, offset, e.to_string());
                return false;
            }
        }
        if self.pending_reads > 0 && self.c2s.tail.is_none() {
            // The answer to STDERR_READ is a string; skip it as it streams.
            match parse(&mut self.c2s, self.limits, |r, _| Ok(r.u64()?)) {
                Parse::Done { value: len, .. } => {
                    self.pending_reads -= 1;
                    let total = len.saturating_add(padding(len));
                    if total > 0 {
                        self.c2s.tail = Some(TailState::Skip(total));
                    }
                    return true;
                }
                Parse::Wait => {}
                Parse::Fail { error, offset } => {
                    self.lose_sync(Direction::ClientToDaemon, offset, error.to_string());
                    return false;
                }
            }
        }
        let limits = self.limits;
        let negotiated = self.negotiated;
        match self.phase {
            Phase::Versions => {
                let mut progressed = false;
                if self.client_version.is_none() {
                    match parse(&mut self.c2s, limits, |r, _| Ok(ClientHello::decode_version(r)?)) {
                        Parse::Done { value, .. } => {
                            self.client_version = Some(value);
                            progressed = true;
                        }
                        Parse::Wait => {}
                        Parse::Fail { error, offset } => return self.fail(Direction::ClientToDaemon, offset, error),
                    }
                }
                if self.daemon_version.is_none() {
                    match parse(&mut self.s2c, limits, |r, _| Ok(DaemonHello::decode_version(r)?)) {
                        Parse::Done { value, .. } => {
                            self.daemon_version = Some(value);
                            progressed = true;
                        }
                        Parse::Wait => {}
                        Parse::Fail { error, offset } => return self.fail(Direction::DaemonToClient, offset, error),
                    }
                }
                if let (Some(client), Some(daemon)) = (self.client_version, self.daemon_version) {
                    self.negotiated = ProtocolVersion::negotiate(client, daemon);
                    self.phase = Phase::HandshakeRest;
                    return true;
                }
                progressed
            }
            Phase::HandshakeRest => {
                let (Some(client), Some(daemon)) = (self.client_version, self.daemon_version) else {
                    return false;
                };
                let mut progressed = false;
                if self.client_hello.is_none() {
                    match parse(&mut self.c2s, limits, |r, _| Ok(ClientHello::decode_rest(client, negotiated, r)?)) {
                        Parse::Done { value, .. } => {
                            self.client_hello = Some(value);
                            progressed = true;
                        }
                        Parse::Wait => {}
                        Parse::Fail { error, offset } => return self.fail(Direction::ClientToDaemon, offset, error),
                    }
                }
                if self.daemon_hello.is_none() {
                    match parse(&mut self.s2c, limits, |r, _| Ok(DaemonHello::decode_rest(daemon, negotiated, r)?)) {
                        Parse::Done { value, .. } => {
                            self.daemon_hello = Some(value);
                            progressed = true;
                        }
                        Parse::Wait => {}
                        Parse::Fail { error, offset } => return self.fail(Direction::DaemonToClient, offset, error),
                    }
                }
                if let (Some(client), Some(daemon)) = (&self.client_hello, &self.daemon_hello) {
                    self.pending.push_back(Event::Handshake {
                        client: client.clone(),
                        daemon: daemon.clone(),
                        negotiated,
                    });
                    self.phase = Phase::StartupLog;
                    return true;
                }
                progressed
            }
            Phase::StartupLog | Phase::LogBlock(_) => {
                if self.s2c.tail.is_some() {
                    return false;
                }
                let stream = &self.s2c;
                if stream.available().len() < stream.wait_for {
                    return false;
                }
                let (used, result) = run_log_block(
                    LogBlockState {
                        phase: &mut self.phase,
                        pending_reads: &mut self.pending_reads,
                        pending: &mut self.pending,
                    },
                    &stream.buf[stream.start..],
                    stream.offset,
                    limits,
                    negotiated,
                    on_event,
                );
                self.s2c.consume(used);
                match result {
                    Ok(()) => true,
                    Err(DecodeError::Incomplete { needed }) => {
                        self.s2c.wait_for = needed;
                        used > 0
                    }
                    Err(error) => {
                        let offset = self.s2c.offset;
                        self.fail(Direction::DaemonToClient, offset, FrameError::Decode(error))
                    }
                }
            }
            Phase::Reply(op) => {
                match parse(&mut self.s2c, limits, |r, memo| Reply::decode_with(op, r, negotiated, memo)) {
                    Parse::Done { value, offset, end } => {
                        if value.nar_follows {
                            self.s2c.tail = Some(TailState::Nar(NarSkipper::default()));
                        }
                        self.pending.push_back(Event::Reply { op, s2c_offset: offset, end, reply: value });
                        self.phase = Phase::Idle;
                        true
                    }
                    Parse::Wait => false,
                    Parse::Fail { error, offset } => self.fail(Direction::DaemonToClient, offset, error),
                }
            }
            Phase::Idle => {
                if self.c2s.tail.is_some() || self.pending_reads > 0 {
                    return false;
                }
                match parse(&mut self.c2s, limits, |r, memo| Request::decode_with(r, negotiated, memo)) {
                    Parse::Done { value, offset, .. } => {
                        self.c2s.tail = match value.tail {
                            Tail::None => None,
                            Tail::Framed => Some(TailState::Framed(FramedSkipper::default())),
                            Tail::Nar => Some(TailState::Nar(NarSkipper::default())),
                        };
                        self.phase = Phase::LogBlock(value.op);
                        self.pending.push_back(Event::Request { c2s_offset: offset, request: value });
                        true
                    }
                    Parse::Wait => false,
                    Parse::Fail { error, offset } => self.fail(Direction::ClientToDaemon, offset, error),
                }
            }
            Phase::OutOfSync => false,
        }
    }

    fn fail(&mut self, direction: Direction, offset: u64, error: FrameError) -> bool {
        self.lose_sync(direction, offset, error.to_string());
        false
    }
}
