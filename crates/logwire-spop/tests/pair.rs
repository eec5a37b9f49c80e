//! Agent ↔ engine driven in memory, without sockets (the quinn-proto way): every protocol path and
//! every status code the agent can send or receive.

use bytes::{BufMut, Bytes, BytesMut};
use logwire_spop::agent::{AgentConfig, AgentConnection, AgentEvent};
use logwire_spop::engine::{EngineConfig, EngineConnection, EngineEvent, Generation, NotifyError};
use logwire_spop::frame::{encode_with, Flags, FrameHeader, FrameType};
use logwire_spop::hello::{Capabilities, Disconnect, HaproxyHello};
use logwire_spop::message::{encode_messages, Arg};
use logwire_spop::{Action, Message, Scope, StatusCode, TypedData};
use std::net::Ipv4Addr;
use std::time::Instant;

struct Pair {
    agent: AgentConnection,
    engine: EngineConnection,
    to_agent: BytesMut,
    to_engine: BytesMut,
}

impl Pair {
    fn new(agent: AgentConfig, engine: EngineConfig) -> Self {
        Pair {
            agent: AgentConnection::new(agent),
            engine: EngineConnection::new(engine),
            to_agent: BytesMut::new(),
            to_engine: BytesMut::new(),
        }
    }

    /// Moves bytes both ways until quiet; the agent ACKs every NOTIFY with `actions`.
    fn drive(&mut self, actions: &[Action]) -> (Vec<AgentEvent>, Vec<EngineEvent>) {
        let (mut a_events, mut e_events) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            let e_out = self.engine.transmit().split();
            self.to_agent.put_slice(&e_out);
            while let Some(ev) = self.agent.poll_event(&mut self.to_agent) {
                if let AgentEvent::Notify(n) = &ev {
                    self.agent.ack(n.stream_id, n.frame_id, actions).unwrap();
                }
                a_events.push(ev);
            }
            let a_out = self.agent.transmit().split();
            self.to_engine.put_slice(&a_out);
            while let Some(ev) = self.engine.poll_event(Instant::now(), &mut self.to_engine) {
                e_events.push(ev);
            }
            if e_out.is_empty() && a_out.is_empty() {
                break;
            }
        }
        (a_events, e_events)
    }

    /// Raw bytes straight to the agent (a hostile or odd peer).
    fn raw_to_agent(&mut self, bytes: &[u8]) -> Vec<AgentEvent> {
        self.to_agent.put_slice(bytes);
        let mut events = Vec::new();
        while let Some(ev) = self.agent.poll_event(&mut self.to_agent) {
            events.push(ev);
        }
        events
    }

    /// Decodes the AGENT-DISCONNECT the agent queued.
    fn agent_disconnect(&mut self) -> Disconnect {
        let mut out = self.agent.transmit().split();
        let mut codec = logwire_spop::FrameCodec::new(1 << 20);
        let mut last = None;
        while let Some(f) = codec.decode_frame(&mut out).unwrap() {
            last = Some(f);
        }
        let f = last.expect("a frame");
        assert_eq!(f.header.frame_type, FrameType::AgentDisconnect);
        assert!(f.header.flags.fin());
        Disconnect::decode(f.payload).unwrap()
    }
}

fn request_message(path: &str) -> Message {
    Message::new(
        "check-request",
        vec![
            Arg::new("ip", TypedData::Ipv4(Ipv4Addr::new(127, 0, 0, 1))),
            Arg::new("port", TypedData::Int64(40000)),
            Arg::new("method", TypedData::string("GET")),
            Arg::new("path", TypedData::string(path)),
            Arg::new("hdrs", TypedData::Binary(Bytes::from(vec![b'x'; 100]))),
        ],
    )
}

fn frame(ty: FrameType, flags: Flags, sid: u64, fid: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_with(&mut out, FrameHeader::new(ty, flags, sid, fid), |o| o.put_slice(payload));
    out.to_vec()
}

fn hello_frame(h: &HaproxyHello) -> Vec<u8> {
    let mut payload = Vec::new();
    h.encode(&mut payload);
    frame(FrameType::HaproxyHello, Flags::FIN, 0, 0, &payload)
}

fn good_hello() -> HaproxyHello {
    HaproxyHello {
        supported_versions: Some(Bytes::from_static(b"2.0")),
        max_frame_size: Some(16380),
        capabilities: Capabilities::parse(b"pipelining,async"),
        engine_id: Some(Bytes::from_static(b"714d23f1-0000")),
        ..Default::default()
    }
}

/// An agent that finished HELLO with `caps`.
fn ready_agent(caps: Capabilities, max_reassembled: usize) -> Pair {
    let mut p = Pair::new(
        AgentConfig { capabilities: caps, max_reassembled_size: max_reassembled, ..AgentConfig::default() },
        EngineConfig::default(),
    );
    let mut h = good_hello();
    h.capabilities = Capabilities::ALL;
    let ev = p.raw_to_agent(&hello_frame(&h));
    assert!(matches!(ev[..], [AgentEvent::Hello { .. }]), "{ev:?}");
    p.agent.transmit().clear();
    p
}

#[test]
fn legacy_handshake_notify_ack_with_stream_id_zero() {
    let mut p = Pair::new(AgentConfig::default(), EngineConfig::new(Generation::Legacy));
    let (a, e) = p.drive(&[]);
    let AgentEvent::Hello { negotiated, .. } = &a[0] else { panic!("{a:?}") };
    assert_eq!(negotiated.max_frame_size, 16380);
    assert_eq!(negotiated.capabilities, Capabilities { pipelining: true, async_: true, fragmentation: true });
    assert!(matches!(e[..], [EngineEvent::Ready(_)]));

    let set = [Action::set_var(Scope::Txn, "score", TypedData::Uint32(42))];
    // stream-id 0 is valid on <= 3.0; several in flight, pipelined.
    for sid in 0..5 {
        p.engine.notify(Instant::now(), sid, 1, &[request_message("/hello")]).unwrap();
    }
    assert_eq!(p.engine.in_flight(), 5);
    let (a, e) = p.drive(&set);
    assert_eq!(a.len(), 5);
    let AgentEvent::Notify(n) = &a[0] else { panic!() };
    assert_eq!((n.stream_id, n.frame_id, n.fragments), (0, 1, 1));
    assert_eq!(n.messages[0], request_message("/hello"));
    assert_eq!(e.len(), 5);
    for ev in &e {
        let EngineEvent::Ack { actions, aborted, latency, .. } = ev else { panic!("{ev:?}") };
        assert_eq!(actions[..], set[..]);
        assert!(!aborted && latency.is_some());
    }
    assert_eq!(p.engine.in_flight(), 0);
}

#[test]
fn modern_generation_rules() {
    let mut p = Pair::new(AgentConfig::default(), EngineConfig::new(Generation::Modern));
    let (_, e) = p.drive(&[]);
    let EngineEvent::Ready(n) = e[0] else { panic!() };
    assert_eq!(n.capabilities, Capabilities { pipelining: true, ..Capabilities::NONE });
    assert_eq!(p.engine.in_flight_limit(), 20);
    assert_eq!(p.engine.notify(Instant::now(), 2, 1, &[]), Err(NotifyError::EvenStreamId(2)));
    for _ in 0..20 {
        let sid = p.engine.next_stream_id();
        p.engine.notify(Instant::now(), sid, 1, &[request_message("/")]).unwrap();
    }
    let sid = p.engine.next_stream_id();
    assert!(matches!(
        p.engine.notify(Instant::now(), sid, 1, &[]),
        Err(NotifyError::TooManyInFlight { limit: 20, .. })
    ));
    let (a, e) = p.drive(&[]);
    assert_eq!(a.len(), 20);
    assert_eq!(e.len(), 20);
    // Too big without fragmentation is a per-stream error, the connection stays up.
    let big = Message::new("m", vec![Arg::new("b", TypedData::Binary(Bytes::from(vec![0u8; 20000])))]);
    assert!(matches!(p.engine.notify(Instant::now(), sid, 1, &[big]), Err(NotifyError::TooBig { .. })));
    assert!(p.engine.is_ready());
}

#[test]
fn fragmented_notify_is_reassembled() {
    let mut engine = EngineConfig::new(Generation::Legacy);
    engine.max_frame_size = 512;
    let mut p = Pair::new(AgentConfig::default(), engine);
    p.drive(&[]);
    assert!(p.engine.negotiated().unwrap().capabilities.fragmentation);
    let mut msg = request_message("/big");
    msg.args.push(Arg::new("hdrs2", TypedData::Binary(Bytes::from(vec![7u8; 1500]))));
    p.engine.notify(Instant::now(), 3, 1, std::slice::from_ref(&msg)).unwrap();
    let (a, e) = p.drive(&[]);
    let AgentEvent::Notify(n) = &a[0] else { panic!("{a:?}") };
    assert!(n.fragments >= 4, "{} fragments", n.fragments);
    assert_eq!(n.messages[0], msg);
    assert!(matches!(e[0], EngineEvent::Ack { stream_id: 3, frame_id: 1, .. }));
}

#[test]
fn fragmented_notify_abort() {
    let mut p = ready_agent(Capabilities::ALL, 1 << 20);
    let mut payload = Vec::new();
    encode_messages(&[request_message("/x")], &mut payload);
    let ev = p.raw_to_agent(&frame(FrameType::Notify, Flags::NONE, 9, 1, &payload[..10]));
    assert!(ev.is_empty());
    let ev = p.raw_to_agent(&frame(FrameType::Unset, Flags::FIN | Flags::ABORT, 9, 1, &[]));
    assert_eq!(ev, [AgentEvent::Aborted { stream_id: 9, frame_id: 1 }]);
    assert!(!p.agent.is_closing());
    // The agent may also abort: ACK with ABORT.
    p.agent.ack_abort(9, 2);
    assert_eq!(p.agent.transmit()[4], 103);
}

#[test]
fn healthcheck_hello_needs_no_capability_nor_engine_id() {
    let mut cfg = EngineConfig::new(Generation::Legacy);
    cfg.healthcheck = true;
    cfg.engine_id = Some("ignored".into());
    let mut p = Pair::new(AgentConfig::default(), cfg);
    let (a, e) = p.drive(&[]);
    let AgentEvent::Hello { hello, negotiated } = &a[0] else { panic!() };
    assert!(hello.healthcheck);
    assert_eq!(hello.engine_id, None);
    assert_eq!(negotiated.capabilities, Capabilities { fragmentation: true, ..Capabilities::NONE });
    assert!(p.agent.is_healthcheck());
    assert!(matches!(e[0], EngineEvent::Ready(_)));
}

#[test]
fn disconnect_both_directions() {
    let mut p = Pair::new(AgentConfig::default(), EngineConfig::default());
    p.drive(&[]);
    p.engine.disconnect(StatusCode::Normal, "bye");
    let (a, _) = p.drive(&[]);
    let AgentEvent::PeerDisconnect(d) = &a[0] else { panic!("{a:?}") };
    assert_eq!((d.status, &d.message[..]), (StatusCode::Normal, &b"bye"[..]));
    assert!(p.agent.is_closing());

    let mut p = Pair::new(AgentConfig::default(), EngineConfig::default());
    p.drive(&[]);
    p.agent.disconnect(StatusCode::Unknown, "handler failed");
    let (_, e) = p.drive(&[]);
    let EngineEvent::AgentDisconnect(d) = &e[0] else { panic!("{e:?}") };
    assert_eq!(d.status.code(), 99);
}

/// Every status code the agent sends, each from the peer behaviour that calls for it.
#[test]
fn every_agent_status_code() {
    fn expect(p: &mut Pair, bytes: &[u8], code: u32) {
        let ev = p.raw_to_agent(bytes);
        let Some(AgentEvent::ProtocolError { status, .. }) = ev.last() else { panic!("code {code}: {ev:?}") };
        assert_eq!(status.code(), code);
        assert!(p.agent.is_closing());
        assert_eq!(p.agent_disconnect().status.code(), code);
        // Input after the error is ignored.
        assert!(p.raw_to_agent(&hello_frame(&good_hello())).is_empty());
    }
    let fresh = || Pair::new(AgentConfig::default(), EngineConfig::default());

    // 3: a frame longer than the negotiated max-frame-size (checked before buffering).
    let mut p = ready_agent(Capabilities::ALL, 1 << 20);
    expect(&mut p, &[0, 0, 0x40, 0x00, 3], 3);
    // 4: invalid frame (an unknown typed-data type inside a NOTIFY) and NOTIFY before HELLO.
    let mut p = ready_agent(Capabilities::ALL, 1 << 20);
    expect(&mut p, &frame(FrameType::Notify, Flags::FIN, 1, 1, &[1, b'm', 1, 1, b'a', 0x0e]), 4);
    expect(&mut fresh(), &frame(FrameType::Notify, Flags::FIN, 1, 1, &[]), 4);
    // 5, 6, 8, 9: HELLO problems.
    let mut h = good_hello();
    h.supported_versions = None;
    expect(&mut fresh(), &hello_frame(&h), 5);
    let mut h = good_hello();
    h.max_frame_size = None;
    expect(&mut fresh(), &hello_frame(&h), 6);
    let mut h = good_hello();
    h.supported_versions = Some(Bytes::from_static(b"1.0"));
    expect(&mut fresh(), &hello_frame(&h), 8);
    let mut h = good_hello();
    h.max_frame_size = Some(100);
    expect(&mut fresh(), &hello_frame(&h), 9);
    // 7 is never sent: a HELLO without capabilities is fine.
    let mut h = good_hello();
    h.capabilities = Capabilities::NONE;
    assert!(matches!(fresh().raw_to_agent(&hello_frame(&h))[..], [AgentEvent::Hello { .. }]));
    // 10: a fragment when fragmentation was not negotiated; a HELLO without FIN.
    let mut p = ready_agent(Capabilities { pipelining: true, ..Capabilities::NONE }, 1 << 20);
    expect(&mut p, &frame(FrameType::Notify, Flags::NONE, 1, 1, &[1, b'm']), 10);
    let mut payload = Vec::new();
    good_hello().encode(&mut payload);
    expect(&mut fresh(), &frame(FrameType::HaproxyHello, Flags::NONE, 0, 0, &payload), 10);
    // 11: interlaced fragments.
    let mut p = ready_agent(Capabilities::ALL, 1 << 20);
    p.raw_to_agent(&frame(FrameType::Notify, Flags::NONE, 1, 1, &[1, b'm']));
    expect(&mut p, &frame(FrameType::Unset, Flags::FIN, 2, 1, &[0]), 11);
    let mut p = ready_agent(Capabilities::ALL, 1 << 20);
    p.raw_to_agent(&frame(FrameType::Notify, Flags::NONE, 1, 1, &[1, b'm']));
    expect(&mut p, &frame(FrameType::Notify, Flags::FIN, 2, 1, &[]), 11);
    // 12: a continuation of nothing.
    let mut p = ready_agent(Capabilities::ALL, 1 << 20);
    expect(&mut p, &frame(FrameType::Unset, Flags::FIN, 5, 5, &[0]), 12);
    // 13: a reassembled NOTIFY above the memory bound.
    let mut p = ready_agent(Capabilities::ALL, 600);
    p.raw_to_agent(&frame(FrameType::Notify, Flags::NONE, 1, 1, &[0u8; 400]));
    expect(&mut p, &frame(FrameType::Unset, Flags::NONE, 1, 1, &[0u8; 400]), 13);
    // Agent-only frame types from HAProxy are invalid.
    let mut p = ready_agent(Capabilities::ALL, 1 << 20);
    expect(&mut p, &frame(FrameType::Ack, Flags::FIN, 1, 1, &[]), 4);
}

#[test]
fn unknown_frame_types_are_skipped() {
    let mut p = ready_agent(Capabilities::ALL, 1 << 20);
    let ev = p.raw_to_agent(&frame(FrameType::Other(42), Flags::FIN, 0, 0, b"whatever"));
    assert_eq!(ev, [AgentEvent::Skipped { frame_type: 42 }]);
    assert!(!p.agent.is_closing());
}

#[test]
fn engine_checks_the_agent_hello() {
    // An agent that does not announce fragmentation makes a legacy engine send DISCONNECT 10 on a big NOTIFY.
    let mut engine = EngineConfig::new(Generation::Legacy);
    engine.max_frame_size = 512;
    let mut p = Pair::new(
        AgentConfig { capabilities: Capabilities { pipelining: true, ..Capabilities::NONE }, ..AgentConfig::default() },
        engine,
    );
    p.drive(&[]);
    let big = Message::new("m", vec![Arg::new("b", TypedData::Binary(Bytes::from(vec![0u8; 2000])))]);
    assert!(matches!(p.engine.notify(Instant::now(), 0, 1, &[big]), Err(NotifyError::FragmentationRefused { .. })));
    let (a, _) = p.drive(&[]);
    let AgentEvent::PeerDisconnect(d) = &a[0] else { panic!("{a:?}") };
    assert_eq!(d.status, StatusCode::FragNotSupported);

    // An agent announcing a bigger max-frame-size than HAProxy's is refused with 9.
    let mut e = EngineConnection::new(EngineConfig::default());
    let mut payload = Vec::new();
    logwire_spop::hello::AgentHello {
        version: Bytes::from_static(b"2.0"),
        max_frame_size: Some(100_000),
        capabilities: Capabilities::NONE,
        unknown: vec![],
    }
    .encode(&mut payload);
    let mut input = BytesMut::from(&frame(FrameType::AgentHello, Flags::FIN, 0, 0, &payload)[..]);
    let ev = e.poll_event(Instant::now(), &mut input);
    assert!(matches!(ev, Some(EngineEvent::ProtocolError { status: StatusCode::BadFrameSize, .. })), "{ev:?}");
}

#[test]
fn ack_too_big_falls_back_to_empty_ack() {
    let mut p = ready_agent(Capabilities::ALL, 1 << 20);
    let huge = [Action::set_var(Scope::Txn, "x", TypedData::Binary(Bytes::from(vec![0u8; 20000])))];
    assert!(p.agent.ack(1, 1, &huge).is_err());
    let out = p.agent.transmit().split();
    assert!(out.len() < 20);
}
