//! The agent state machine fed arbitrary bytes in arbitrary chunks, ACKing every NOTIFY.
//!
//! Input: byte 0 picks the configuration (capabilities, max-frame-size, reassembly bound), byte 1 seeds
//! the chunk sizes, the rest is what "HAProxy" sends. Checked:
//! - nothing panics;
//! - everything the agent queues is a well-formed frame within the frame size it announced (or its
//!   own limit before HELLO), and ACK payloads decode;
//! - after a `ProtocolError`, the transmit buffer ends with an AGENT-DISCONNECT carrying that status,
//!   and the connection reads nothing more.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logwire_spop::agent::{AgentConfig, AgentConnection, AgentEvent};
use logwire_spop::frame::{FrameCodec, FrameType};
use logwire_spop::hello::{AgentHello, Disconnect};
use logwire_spop::message::decode_actions;
use logwire_spop::{Action, Capabilities, Scope, StatusCode, TypedData};

const FRAME_SIZES: [u32; 4] = [256, 300, 16380, 1 << 20];
const REASSEMBLY: [usize; 4] = [0, 300, 2000, 4 << 20];

/// A tiny deterministic PRNG for chunk sizes.
struct XorShift(u32);
impl XorShift {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

fn config(b: u8) -> AgentConfig {
    AgentConfig {
        capabilities: Capabilities { pipelining: b & 1 != 0, async_: b & 2 != 0, fragmentation: b & 4 != 0 },
        max_frame_size: FRAME_SIZES[((b >> 3) & 3) as usize],
        max_reassembled_size: REASSEMBLY[((b >> 5) & 3) as usize],
    }
}

/// Decodes everything queued so far and checks each frame; returns the last frame's type and payload.
fn drain(conn: &mut AgentConnection, limit: u32) -> Option<(FrameType, bytes::Bytes)> {
    let mut out = conn.transmit().split();
    let mut codec = FrameCodec::new(u32::MAX);
    let mut last = None;
    while let Some(f) = codec.decode_frame(&mut out).expect("the agent queued a malformed frame") {
        let len = f.header.encoded_len() + f.payload.len();
        assert!(len <= limit as usize, "{:?} frame of {len} bytes above max-frame-size {limit}", f.header.frame_type);
        assert!(f.header.flags.fin(), "agent frames always carry FIN");
        match f.header.frame_type {
            FrameType::Ack => {
                decode_actions(f.payload.clone()).expect("ACK payload decodes");
            }
            FrameType::AgentHello => {
                AgentHello::decode(f.payload.clone()).expect("AGENT-HELLO decodes");
            }
            FrameType::AgentDisconnect => {
                Disconnect::decode(f.payload.clone()).expect("AGENT-DISCONNECT decodes");
            }
            t => panic!("the agent sent frame type {t:?}"),
        }
        last = Some((f.header.frame_type, f.payload));
    }
    assert!(out.is_empty(), "the agent queued a partial frame");
    last
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cfg = config(data[0]);
    let own_limit = cfg.max_frame_size.max(256);
    let mut rng = XorShift(u32::from(data[1]).wrapping_mul(2654435761) | 1);
    let max_chunk = 1 + (data[1] as usize % 64);
    let mut rest = &data[2..];
    let mut conn = AgentConnection::new(cfg);
    let mut input = BytesMut::new();
    let actions = [Action::set_var(Scope::Txn, "score", TypedData::Uint32(42))];
    while !rest.is_empty() {
        let n = (1 + rng.next() as usize % max_chunk).min(rest.len());
        input.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        // Each event consumes at least one frame (≥ 11 bytes) or closes the connection.
        let mut events = 0;
        while let Some(event) = conn.poll_event(&mut input) {
            events += 1;
            assert!(events <= data.len(), "poll_event keeps returning events without consuming input");
            let limit = conn.negotiated().map_or(own_limit, |n| n.max_frame_size);
            match event {
                AgentEvent::Notify(n) => {
                    let _ = conn.ack(n.stream_id, n.frame_id, &actions);
                    drain(&mut conn, limit);
                }
                AgentEvent::Hello { negotiated, .. } => {
                    assert!(negotiated.max_frame_size >= 256);
                    assert!(negotiated.max_frame_size <= own_limit);
                    assert_eq!(drain(&mut conn, limit).map(|(t, _)| t), Some(FrameType::AgentHello));
                }
                AgentEvent::ProtocolError { status, .. } => {
                    assert!(conn.is_closing());
                    let (t, payload) = drain(&mut conn, limit).expect("nothing queued after a protocol error");
                    assert_eq!(t, FrameType::AgentDisconnect, "last frame after a protocol error");
                    assert_eq!(Disconnect::decode(payload).expect("decodes").status, status);
                    assert_ne!(status, StatusCode::Normal);
                }
                AgentEvent::PeerDisconnect(_) => {
                    assert!(conn.is_closing());
                    let (t, _) = drain(&mut conn, limit).expect("nothing queued after HAPROXY-DISCONNECT");
                    assert_eq!(t, FrameType::AgentDisconnect);
                }
                AgentEvent::Aborted { stream_id, frame_id } => {
                    conn.ack_abort(stream_id, frame_id);
                    drain(&mut conn, limit);
                }
                AgentEvent::Skipped { .. } => {}
            }
        }
        if conn.is_closing() {
            // A closing connection reads nothing more and queues nothing more.
            input.extend_from_slice(rest);
            assert!(conn.poll_event(&mut input).is_none());
            assert!(conn.transmit().is_empty());
            return;
        }
    }
});
