//! The tokio agent server and engine client over loopback TCP.

use logwire_spop::agent::AgentConfig;
use logwire_spop::engine::{EngineConfig, Generation};
use logwire_spop::handler::{AsyncHandler, BoxFuture, Notify};
use logwire_spop::message::Arg;
use logwire_spop::record::{Outcome, Timing};
use logwire_spop::runtime::agent::{AgentServer, CloseReason, ConnInfo, HandlerKind, Observer, ServerConfig};
use logwire_spop::runtime::client::{probe, run_load, Client, ClientError, LoadConfig};
use logwire_spop::{Action, Message, Scope, StatusCode, TypedData};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Recorder {
    processed: Mutex<Vec<(u64, u64, usize)>>,
    closed: Mutex<Vec<CloseReason>>,
}

impl Observer for Recorder {
    fn on_processed(&self, _c: &ConnInfo, n: &Notify, actions: &[Action], _o: Outcome, t: Timing) {
        assert!(t.acked_ns >= t.received_ns);
        self.processed.lock().unwrap().push((n.stream_id, n.frame_id, actions.len()));
    }
    fn on_closed(&self, _c: &ConnInfo, reason: &CloseReason) {
        self.closed.lock().unwrap().push(reason.clone());
    }
}

fn score_handler(n: &Notify, actions: &mut Vec<Action>) {
    actions.push(Action::set_var(Scope::Txn, "score", TypedData::Uint32(42)));
    if n.messages.iter().any(|m| m.arg("path").and_then(|p| p.as_str()).is_some_and(|p| p.starts_with("/block"))) {
        actions.push(Action::set_var(Scope::Txn, "block", TypedData::Bool(true)));
    }
}

async fn start(handler: HandlerKind, agent: AgentConfig) -> (SocketAddr, Arc<Recorder>, Arc<AgentServer>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rec = Arc::new(Recorder::default());
    let server = AgentServer::new(ServerConfig { agent, ..ServerConfig::default() }, handler, rec.clone());
    tokio::spawn(server.clone().serve(listener, std::future::pending()));
    (addr, rec, server)
}

fn msg(path: &str) -> Vec<Message> {
    vec![Message::new("check-request", vec![Arg::new("path", TypedData::string(path))])]
}

#[tokio::test]
async fn notify_ack_over_tcp_both_generations() {
    let (addr, rec, server) = start(HandlerKind::Sync(Arc::new(score_handler)), AgentConfig::default()).await;
    for generation in [Generation::Legacy, Generation::Modern] {
        let mut c = Client::connect(addr, EngineConfig::new(generation), TIMEOUT).await.unwrap();
        let ack = c.notify(&msg("/block/x")).await.unwrap();
        assert_eq!(ack.actions.len(), 2);
        assert_eq!(ack.actions[1], Action::set_var(Scope::Txn, "block", TypedData::Bool(true)));
        let ack = c.notify(&msg("/ok")).await.unwrap();
        assert_eq!(ack.actions, vec![Action::set_var(Scope::Txn, "score", TypedData::Uint32(42))]);
        let bye = c.close().await.unwrap().expect("AGENT-DISCONNECT");
        assert_eq!(bye.status, StatusCode::Normal);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(rec.processed.lock().unwrap().len(), 4);
    assert!(rec.closed.lock().unwrap().iter().all(|r| matches!(r, CloseReason::PeerDisconnect { .. })));
    assert_eq!(server.stats().acks.load(std::sync::atomic::Ordering::Relaxed), 4);
}

#[tokio::test]
async fn probe_reports_healthcheck_hello_and_notify() {
    let (addr, _rec, _s) = start(HandlerKind::Sync(Arc::new(score_handler)), AgentConfig::default()).await;
    let r = probe(addr, EngineConfig::default(), &msg("/"), TIMEOUT).await;
    let (hc, _) = r.healthcheck.unwrap();
    assert!(!hc.capabilities.pipelining && !hc.capabilities.async_);
    let (n, _) = r.hello.unwrap();
    assert!(n.capabilities.fragmentation && n.capabilities.pipelining && n.capabilities.async_);
    assert_eq!(r.notify.unwrap().unwrap().actions.len(), 1);
}

#[tokio::test]
async fn refusal_is_a_typed_error() {
    // An agent whose max-frame-size is above HAProxy's is refused by the engine; here the other way:
    // an engine announcing a max-frame-size below 256 is refused by the agent with status 9.
    let (addr, _rec, _s) = start(HandlerKind::Sync(Arc::new(score_handler)), AgentConfig::default()).await;
    let cfg = EngineConfig { max_frame_size: 100, ..EngineConfig::default() };
    match Client::connect(addr, cfg, TIMEOUT).await {
        Err(ClientError::Refused { status, .. }) => assert_eq!(status, StatusCode::BadFrameSize),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn pipelined_load_is_all_acked() {
    let (addr, rec, _s) = start(HandlerKind::Sync(Arc::new(score_handler)), AgentConfig::default()).await;
    let report = run_load(LoadConfig {
        addr,
        engine: EngineConfig::new(Generation::Legacy),
        connections: 4,
        in_flight: 20,
        duration: Duration::from_secs(10),
        max_requests: Some(5000),
        payloads: vec![msg("/a"), msg("/block")],
        timeout: TIMEOUT,
    })
    .await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.sent, 5000);
    assert_eq!(report.acked, 5000);
    assert!(report.percentile_us(99.0) >= report.percentile_us(50.0));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rec.processed.lock().unwrap().len(), 5000);
}

struct SlowFirst;
impl AsyncHandler for SlowFirst {
    fn on_notify(&self, n: Notify) -> BoxFuture<Vec<Action>> {
        Box::pin(async move {
            // The first NOTIFY of each batch is slow, so later ones overtake it.
            if n.stream_id == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            vec![Action::set_var(Scope::Txn, "sid", TypedData::Uint64(n.stream_id))]
        })
    }
}

#[tokio::test]
async fn async_handler_acks_out_of_order() {
    use bytes::BytesMut;
    use logwire_spop::engine::{EngineConnection, EngineEvent};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _rec, _s) = start(HandlerKind::Async(Arc::new(SlowFirst)), AgentConfig::default()).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut engine = EngineConnection::new(EngineConfig::default());
    let mut input = BytesMut::new();
    let mut events = Vec::new();
    stream.write_all(&engine.transmit().split()).await.unwrap();
    while events.is_empty() {
        stream.read_buf(&mut input).await.unwrap();
        while let Some(ev) = engine.poll_event(Instant::now(), &mut input) {
            events.push(ev);
        }
    }
    for sid in 0..3 {
        engine.notify(Instant::now(), sid, 1, &msg("/")).unwrap();
    }
    stream.write_all(&engine.transmit().split()).await.unwrap();
    let mut order = Vec::new();
    while order.len() < 3 {
        tokio::time::timeout(TIMEOUT, stream.read_buf(&mut input)).await.unwrap().unwrap();
        while let Some(ev) = engine.poll_event(Instant::now(), &mut input) {
            if let EngineEvent::Ack { stream_id, actions, .. } = ev {
                assert_eq!(actions[0], Action::set_var(Scope::Txn, "sid", TypedData::Uint64(stream_id)));
                order.push(stream_id);
            }
        }
    }
    assert_eq!(*order.last().unwrap(), 0, "the slow NOTIFY is ACKed last: {order:?}");
}

struct SlowAll;
impl AsyncHandler for SlowAll {
    fn on_notify(&self, n: Notify) -> BoxFuture<Vec<Action>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            vec![Action::set_var(Scope::Txn, "sid", TypedData::Uint64(n.stream_id))]
        })
    }
}

/// Raw engine connection over TCP, HELLO done.
async fn raw_engine(
    addr: SocketAddr,
    engine_id: &str,
) -> (tokio::net::TcpStream, logwire_spop::engine::EngineConnection, bytes::BytesMut) {
    use logwire_spop::engine::{EngineConnection, EngineEvent};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut engine =
        EngineConnection::new(EngineConfig { engine_id: Some(engine_id.into()), ..EngineConfig::default() });
    let mut input = bytes::BytesMut::new();
    stream.write_all(&engine.transmit().split()).await.unwrap();
    loop {
        tokio::time::timeout(TIMEOUT, stream.read_buf(&mut input)).await.unwrap().unwrap();
        if let Some(ev) = engine.poll_event(std::time::Instant::now(), &mut input) {
            assert!(matches!(ev, EngineEvent::Ready(n) if n.capabilities.async_), "{ev:?}");
            return (stream, engine, input);
        }
    }
}

#[tokio::test]
async fn async_ack_leaves_on_a_sibling_connection_when_its_own_is_gone() {
    use logwire_spop::engine::EngineEvent;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _rec, _s) = start(HandlerKind::Async(Arc::new(SlowAll)), AgentConfig::default()).await;
    let (mut a, mut engine_a, _) = raw_engine(addr, "thread-1").await;
    let (mut b, mut engine_b, mut input_b) = raw_engine(addr, "thread-1").await;
    engine_a.notify(Instant::now(), 7, 1, &msg("/")).unwrap();
    a.write_all(&engine_a.transmit().split()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Connection A goes away while its NOTIFY is being handled (HAProxy ≤ 3.0 with async allows the
    // ACK on any connection of the same engine).
    drop(a);
    let ack = loop {
        tokio::time::timeout(TIMEOUT, b.read_buf(&mut input_b)).await.expect("the ACK reaches B").unwrap();
        if let Some(ev) = engine_b.poll_event(Instant::now(), &mut input_b) {
            break ev;
        }
    };
    match ack {
        EngineEvent::UnknownAck { stream_id: 7, frame_id: 1, actions, .. } => {
            assert_eq!(actions, vec![Action::set_var(Scope::Txn, "sid", TypedData::Uint64(7))])
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rst_on_idle_is_a_normal_close() {
    let (addr, rec, server) = start(HandlerKind::Sync(Arc::new(score_handler)), AgentConfig::default()).await;
    let (stream, _engine, _) = raw_engine(addr, "modern").await;
    // HAProxy ≥ 3.1 closes idle agent connections with RST and no DISCONNECT.
    // SO_LINGER 0 is exactly how an RST is made; the blocking-on-drop concern does not apply to it.
    #[allow(deprecated)]
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
    for _ in 0..100 {
        if !rec.closed.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rec.closed.lock().unwrap().as_slice(), &[CloseReason::PeerClosed]);
    assert_eq!(server.stats().protocol_errors.load(std::sync::atomic::Ordering::Relaxed), 0);
}
