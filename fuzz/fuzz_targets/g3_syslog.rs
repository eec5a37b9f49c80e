//! g3proxy syslog records (RFC 3164 text / CEE, RFC 5424 SD / CEE) from arbitrary bytes: no panic, and
//! whatever decodes re-encodes (in its own layout) to bytes that decode to the same fields and message, and
//! the listeners' fused path (`decode_to_records`) gives the same records or error as decode + to_records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwire_g3::{emit, record, syslog};

fuzz_target!(|data: &[u8]| {
    let mut fused = Vec::new();
    let fused = syslog::decode_to_records(data, 0, &mut fused).map(|()| fused);
    let general = syslog::decode(data).map(|log| record::to_records(&log, 0));
    assert_eq!(format!("{fused:?}"), format!("{general:?}"));
    let Ok(log) = syslog::decode(data) else { return };
    let again = emit::reencode(&log);
    let back = syslog::decode(&again).unwrap_or_else(|e| panic!("re-encoded record does not decode: {e}\n{again:?}"));
    // Typing is idempotent on what we print: the same fields, the same message.
    if log.untyped.is_empty() {
        assert_eq!(back.fields, log.fields, "{again:?}");
        assert_eq!(back.msg, log.msg);
    }
});
