//! Nix internal-json: arbitrary text as `@nix` lines. Checks: no panic; a line that parses re-parses
//! identically after being written back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwire_nix::json::JsonEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for line in text.lines() {
        if let Ok(event) = JsonEvent::parse_line(line) {
            let written = event.to_line();
            assert_eq!(JsonEvent::parse_line(&written).ok(), Some(event));
        }
    }
});
