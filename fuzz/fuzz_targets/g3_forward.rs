//! fluentd forward from arbitrary bytes (every mode, gzip entries, EventTime, the shared_key handshake):
//! no panic, no allocation sized by an unchecked length; every event through the record mapping, and a
//! Message-mode re-encoding of each decodes to the same fields.
//!
//! Byte 0 picks the server: bit 0 requires the `shared_key` handshake (fixed key and nonce, so a seed can
//! hold a valid PING), bit 1 also requires a user. The rest is the client's stream, through a
//! `ServerSession`: records are only ever taken once the handshake passed; a refused handshake or an error
//! ends the stream; every PONG decodes as one and, when it says ok, proves the key. The same bytes also go
//! through the client-side decoder of server messages. Bits 2–7 pick a read size: fed in reads of that
//! size, the decoder must give the same messages as when it has the whole stream at once.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logwire_g3::forward::{
    decode_server_message, event_to_log, sha512_hex, ForwardDecoder, ForwardMessage, ServerMessage, ServerSession,
    SessionState, SessionStep, SharedKeyConfig,
};
use logwire_g3::{emit, record};

const KEY: &str = "fuzz-key";
const HOST: &str = "fuzz-host";
const NONCE: &[u8] = b"fuzz-nonce-01234";

fn check_events(tag: &str, events: &[(logwire_g3::EventTime, bytes::Bytes)]) {
    for (time, rec) in events {
        let Ok(log) = event_to_log(tag, *time, rec) else { continue };
        let _ = record::to_records(&log, 0);
        let bytes = emit::reencode(&log);
        let mut again = BytesMut::from(&bytes[..]);
        let Ok(Some(ForwardMessage::Events { tag: t2, events: e2, .. })) = ForwardDecoder::default().decode(&mut again)
        else {
            panic!("re-encoded message does not decode");
        };
        assert_eq!(t2, tag);
        let back = event_to_log(&t2, e2[0].0, &e2[0].1).expect("re-encoded record decodes");
        if log.untyped.is_empty() {
            assert_eq!(back.fields, log.fields);
            assert_eq!(back.msg, log.msg);
        }
    }
}

/// The messages a decoder gives for `stream` fed in pieces of `step` bytes, and whether it ended without
/// an error.
fn messages(stream: &[u8], step: usize) -> (Vec<ForwardMessage>, bool) {
    let mut decoder = ForwardDecoder::with_max_len(1 << 16);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in stream.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(_) => return (out, false),
            }
        }
    }
    (out, true)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else { return };
    // However the stream is cut into reads, the decoder gives the same messages (it goes on with a
    // message from where the last read stopped).
    let (whole, whole_ok) = messages(stream, stream.len());
    let (pieces, pieces_ok) = messages(stream, 1 + usize::from(mode >> 2));
    let common = whole.len().min(pieces.len());
    assert_eq!(whole[..common], pieces[..common]);
    if whole_ok && pieces_ok {
        assert_eq!(whole.len(), pieces.len());
    }

    // The client-side decoder must not panic on anything either.
    let mut server_bytes = BytesMut::from(stream);
    while let Ok(Some(_)) = decode_server_message(&mut server_bytes) {}

    let config = (mode & 1 == 1).then(|| SharedKeyConfig {
        shared_key: KEY.into(),
        hostname: HOST.into(),
        users: if mode & 2 == 2 { vec![("user".into(), "pass".into())] } else { vec![] },
    });
    let mut session = ServerSession::new(config.clone(), NONCE, b"fuzz-user-salt-0");
    if let Some(helo) = session.helo() {
        let Ok(Some(ServerMessage::Helo { nonce, .. })) = decode_server_message(&mut BytesMut::from(&helo[..])) else {
            panic!("our HELO does not decode");
        };
        assert_eq!(nonce, NONCE);
    }
    let mut decoder = ForwardDecoder::with_max_len(1 << 16);
    let mut buf = BytesMut::from(stream);
    while let Ok(Some(msg)) = decoder.decode(&mut buf) {
        let was = session.state();
        let ping = match &msg {
            ForwardMessage::Ping(p) => Some(p.clone()),
            _ => None,
        };
        match session.on_message(msg) {
            Ok(SessionStep::Events { tag, events, .. }) => {
                assert_eq!(was, SessionState::Established, "records taken before the handshake");
                check_events(&tag, &events);
            }
            Ok(SessionStep::Nothing) => {}
            Ok(SessionStep::Reply(pong)) => {
                assert_eq!(session.state(), SessionState::Established);
                let ping = ping.expect("a reply only answers a PING");
                let Ok(Some(ServerMessage::Pong { ok: true, hostname, digest, .. })) =
                    decode_server_message(&mut BytesMut::from(&pong[..]))
                else {
                    panic!("an accepting PONG does not decode as one");
                };
                assert_eq!(hostname, HOST.as_bytes());
                let proof = sha512_hex(&[&ping.shared_key_salt, HOST.as_bytes(), NONCE, KEY.as_bytes()]);
                assert_eq!(digest, proof.into_bytes());
            }
            Ok(SessionStep::ReplyAndClose(pong, _)) => {
                assert_eq!(session.state(), SessionState::Closed);
                let Ok(Some(ServerMessage::Pong { ok: false, .. })) =
                    decode_server_message(&mut BytesMut::from(&pong[..]))
                else {
                    panic!("a refusing PONG does not decode as one");
                };
                return;
            }
            Err(_) => return,
        }
    }
});
