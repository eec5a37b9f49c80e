//! Nix logger messages: arbitrary bytes decoded as a stream of STDERR_* messages at the negotiated version
//! chosen by the first byte (1.10–1.38). Checks: no panic; every decoded message re-encodes to exactly
//! the bytes it came from; the borrowed decoder (`MessageRef`) agrees with the owned one; typed views
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwire_nix::logger::{Message, MessageRef};
use logwire_nix::wire::{Limits, Reader};
use logwire_nix::ProtocolVersion;

fuzz_target!(|data: &[u8]| {
    let Some((&v, mut rest)) = data.split_first() else { return };
    let version = ProtocolVersion::new(1, 10 + v % 29);
    let limits = Limits { max_string: 1 << 16, max_list: 1 << 10 };
    loop {
        let mut r = Reader::new(rest, limits);
        let owned = Message::decode(&mut r, version);
        let mut r2 = Reader::new(rest, limits);
        let borrowed = MessageRef::decode(&mut r2, version);
        // Errors may differ in kind (the owned decoder bounds a field count by the bytes present first),
        // but both succeed or fail together, and agree when they succeed.
        assert_eq!(owned.as_ref().ok(), borrowed.as_ref().ok().map(MessageRef::to_owned).as_ref());
        let Ok(message) = owned else { return };
        let used = r.position();
        assert_eq!(used, r2.position());
        let mut out = Vec::new();
        message.encode(&mut out);
        assert_eq!(out, rest[..used], "re-encoding differs");
        match &message {
            Message::StartActivity(a) => {
                let _ = a.view();
            }
            Message::Result(res) => {
                let _ = res.view();
            }
            _ => {}
        }
        rest = &rest[used..];
    }
});
