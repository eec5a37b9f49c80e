//! Every SPOP decoder over arbitrary bytes: the frame splitter, then each frame's payload through every
//! payload decoder. Whatever decodes must re-encode to something that decodes to the same value, and
//! a frame must re-encode byte for byte (the varint is a bijection).
//!
//! Input: byte 0 picks the frame-size limit, the rest is the byte stream.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use logwire_spop::frame::{Frame, FrameCodec};
use logwire_spop::hello::{AgentHello, Disconnect, HaproxyHello};
use logwire_spop::message::{
    decode_actions, decode_kv_list, decode_messages, encode_actions, encode_kv_list, encode_messages,
};

/// Limits worth exploring: the smallest legal, HAProxy's default, the agent's default, and none at all
/// (what `Client::close` uses to read the last frames).
const LIMITS: [u32; 4] = [256, 16380, 1 << 20, u32::MAX];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, stream)) = data.split_first() else { return };
    let mut codec = FrameCodec::new(LIMITS[(sel & 3) as usize]);
    let mut buf = BytesMut::from(stream);
    // Each successful decode consumes ≥ 11 bytes, so this loop is bounded by the input.
    loop {
        let before = buf.len();
        match codec.decode_frame(&mut buf) {
            Ok(Some(frame)) => {
                assert!(buf.len() < before, "a decoded frame consumed nothing");
                check_frame(&frame, &stream[stream.len() - before..stream.len() - buf.len()]);
                check_payload(frame.payload);
            }
            Ok(None) => break,
            Err(e) => {
                // Every error maps to a DISCONNECT status; reading it must not panic.
                let _ = e.status();
                let _ = e.to_string();
                break;
            }
        }
    }
});

fn check_frame(frame: &Frame, original: &[u8]) {
    let mut out = BytesMut::new();
    frame.encode(&mut out);
    assert_eq!(&out[..], original, "frame does not re-encode byte for byte");
    let again = FrameCodec::new(u32::MAX).decode_frame(&mut out).expect("re-encoded frame decodes").expect("complete");
    assert_eq!(&again, frame);
    assert!(out.is_empty());
}

fn check_payload(payload: Bytes) {
    if let Ok(messages) = decode_messages(payload.clone()) {
        let mut out = Vec::new();
        encode_messages(&messages, &mut out);
        assert_eq!(out.len(), messages.iter().map(|m| m.encoded_len()).sum::<usize>());
        assert_eq!(decode_messages(Bytes::from(out)).expect("re-encoded messages decode"), messages);
    }
    if let Ok(actions) = decode_actions(payload.clone()) {
        let mut out = Vec::new();
        encode_actions(&actions, &mut out);
        assert_eq!(out.len(), actions.iter().map(|a| a.encoded_len()).sum::<usize>());
        assert_eq!(decode_actions(Bytes::from(out)).expect("re-encoded actions decode"), actions);
    }
    if let Ok(items) = decode_kv_list(payload.clone()) {
        let mut out = Vec::new();
        encode_kv_list(&items, &mut out);
        assert_eq!(decode_kv_list(Bytes::from(out)).expect("re-encoded KV list decodes"), items);
    }
    if let Ok(hello) = HaproxyHello::decode(payload.clone()) {
        let _ = hello.negotiate(16380, logwire_spop::Capabilities::ALL);
        let mut out = Vec::new();
        hello.encode(&mut out);
        assert_eq!(HaproxyHello::decode(Bytes::from(out)).expect("re-encoded HAPROXY-HELLO decodes"), hello);
    }
    if let Ok(hello) = AgentHello::decode(payload.clone()) {
        let _ = hello.check(16380, logwire_spop::Capabilities::ALL, false);
        let _ = hello.check(16380, logwire_spop::Capabilities::ALL, true);
        let mut out = Vec::new();
        hello.encode(&mut out);
        assert_eq!(AgentHello::decode(Bytes::from(out)).expect("re-encoded AGENT-HELLO decodes"), hello);
    }
    if let Ok(d) = Disconnect::decode(payload) {
        let mut out = Vec::new();
        d.encode(&mut out);
        assert_eq!(Disconnect::decode(Bytes::from(out)).expect("re-encoded DISCONNECT decodes"), d);
        let _ = d.message_str();
    }
}
