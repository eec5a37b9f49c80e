//! The engine (HAProxy-side) state machine fed arbitrary "agent" bytes in arbitrary chunks, for both
//! generations, with NOTIFYs in flight (fragmented ones too) so that ACKs can match.
//!
//! Input: byte 0 picks the configuration (generation, health check, send-frag-payload, max-frame-size,
//! NOTIFY size, engine-id), byte 1 seeds the chunk sizes, the rest is what "the agent" sends. Checked:
//! - nothing panics;
//! - everything the engine queues is a well-formed frame within the negotiated max-frame-size;
//! - after a `ProtocolError`, the transmit buffer ends with a HAPROXY-DISCONNECT carrying that status,
//!   and the connection reads nothing more.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use logwire_spop::engine::{EngineConfig, EngineConnection, EngineEvent, Generation, NotifyError};
use logwire_spop::frame::{FrameCodec, FrameType};
use logwire_spop::hello::{Disconnect, HaproxyHello};
use logwire_spop::message::{decode_messages, Arg};
use logwire_spop::{Message, StatusCode, TypedData};
use std::time::Instant;

const FRAME_SIZES: [u32; 4] = [256, 300, 1000, 16380];
const NOTIFY_SIZES: [usize; 4] = [10, 400, 1200, 5000];
/// NOTIFYs queued over one input, in total.
const MAX_NOTIFIES: u64 = 64;

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

fn config(b: u8) -> EngineConfig {
    let mut c = EngineConfig::new(if b & 1 == 0 { Generation::Legacy } else { Generation::Modern });
    c.healthcheck = b & 2 != 0;
    c.send_frag_payload = b & 4 != 0;
    c.max_frame_size = FRAME_SIZES[((b >> 3) & 3) as usize];
    if b & 0x80 != 0 {
        c.engine_id = Some("6f1c2e0a-fuzz".into());
    }
    c
}

/// Decodes everything queued so far and checks each frame; returns the last frame's type and payload.
/// A fragmented NOTIFY (NOTIFY without FIN, UNSET…, UNSET with FIN) must reassemble into messages.
fn drain(conn: &mut EngineConnection, limit: u32) -> Option<(FrameType, Bytes)> {
    let mut out = conn.transmit().split();
    let mut codec = FrameCodec::new(u32::MAX);
    let mut last = None;
    let mut partial: Option<BytesMut> = None;
    while let Some(f) = codec.decode_frame(&mut out).expect("the engine queued a malformed frame") {
        let len = f.header.encoded_len() + f.payload.len();
        match f.header.frame_type {
            FrameType::HaproxyHello => {
                HaproxyHello::decode(f.payload.clone()).expect("HAPROXY-HELLO decodes");
            }
            FrameType::HaproxyDisconnect => {
                Disconnect::decode(f.payload.clone()).expect("HAPROXY-DISCONNECT decodes");
            }
            FrameType::Notify | FrameType::Unset => {
                assert!(len <= limit as usize, "NOTIFY frame of {len} bytes above max-frame-size {limit}");
                if f.header.flags.abort() {
                    partial = None;
                } else {
                    let mut p = partial.take().unwrap_or_default();
                    p.extend_from_slice(&f.payload);
                    if f.header.flags.fin() {
                        decode_messages(p.freeze()).expect("NOTIFY reassembles into messages");
                    } else {
                        partial = Some(p);
                    }
                }
            }
            t => panic!("the engine sent frame type {t:?}"),
        }
        last = Some((f.header.frame_type, f.payload));
    }
    assert!(out.is_empty(), "the engine queued a partial frame");
    last
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cfg = config(data[0]);
    let generation = cfg.generation;
    let message = vec![Message::new(
        "check-request",
        vec![Arg::new("hdrs", TypedData::Binary(Bytes::from(vec![b'x'; NOTIFY_SIZES[((data[0] >> 5) & 3) as usize]])))],
    )];
    let mut rng = XorShift(u32::from(data[1]).wrapping_mul(2654435761) | 1);
    let max_chunk = 1 + (data[1] as usize % 64);
    let mut rest = &data[2..];
    let now = Instant::now();
    let mut conn = EngineConnection::new(cfg);
    let mut input = BytesMut::new();
    let mut sent = 0u64;
    let mut legacy_sid = 0u64;
    drain(&mut conn, u32::MAX);

    // Keeps the window full, as HAProxy would.
    let mut fill = |conn: &mut EngineConnection, sent: &mut u64| {
        while conn.is_ready() && *sent < MAX_NOTIFIES && conn.in_flight() < conn.in_flight_limit() {
            let sid = match generation {
                Generation::Modern => conn.next_stream_id(),
                Generation::Legacy => {
                    legacy_sid += 1;
                    legacy_sid - 1
                }
            };
            *sent += 1;
            match conn.notify(now, sid, 1, &message) {
                Ok(()) => {}
                Err(NotifyError::FragmentationRefused { .. }) => {
                    assert!(conn.is_closing());
                    break;
                }
                Err(NotifyError::TooBig { .. }) => break,
                Err(e) => panic!("unexpected NOTIFY error {e}"),
            }
        }
    };

    while !rest.is_empty() {
        let n = (1 + rng.next() as usize % max_chunk).min(rest.len());
        input.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        let mut events = 0;
        while let Some(event) = conn.poll_event(now, &mut input) {
            events += 1;
            assert!(events <= data.len(), "poll_event keeps returning events without consuming input");
            match event {
                EngineEvent::Ready(n) => {
                    assert!(conn.is_ready());
                    if generation == Generation::Modern {
                        assert!(!n.capabilities.async_ && !n.capabilities.fragmentation);
                    }
                }
                EngineEvent::ProtocolError { status, .. } => {
                    assert!(conn.is_closing());
                    let limit = conn.negotiated().map_or(u32::MAX, |n| n.max_frame_size);
                    let (t, payload) = drain(&mut conn, limit).expect("nothing queued after a protocol error");
                    assert_eq!(t, FrameType::HaproxyDisconnect, "last frame after a protocol error");
                    assert_eq!(Disconnect::decode(payload).expect("decodes").status, status);
                    assert_ne!(status, StatusCode::Normal);
                }
                EngineEvent::Refused(_) | EngineEvent::AgentDisconnect(_) => assert!(conn.is_closing()),
                EngineEvent::Ack { .. } | EngineEvent::UnknownAck { .. } | EngineEvent::Skipped { .. } => {}
            }
            fill(&mut conn, &mut sent);
            let limit = conn.negotiated().map_or(u32::MAX, |n| n.max_frame_size);
            drain(&mut conn, limit);
        }
        if conn.is_closing() {
            input.extend_from_slice(rest);
            assert!(conn.poll_event(now, &mut input).is_none());
            assert!(
                conn.transmit().is_empty()
                    || drain(&mut conn, u32::MAX).is_some_and(|(t, _)| t == FrameType::HaproxyDisconnect)
            );
            return;
        }
    }
});
