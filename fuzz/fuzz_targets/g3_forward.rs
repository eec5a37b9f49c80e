//! fluentd forward from arbitrary bytes (every mode, gzip entries, EventTime): no panic, no allocation
//! sized by an unchecked length; every event through the record mapping, and a Message-mode re-encoding
//! of each decodes to the same fields.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logwire_g3::forward::{event_to_log, ForwardDecoder, ForwardMessage};
use logwire_g3::{emit, record};

fuzz_target!(|data: &[u8]| {
    let mut decoder = ForwardDecoder::with_max_len(1 << 16);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(msg)) = decoder.decode(&mut buf) {
        let ForwardMessage::Events { tag, events, .. } = msg else { continue };
        for (time, rec) in &events {
            let Ok(log) = event_to_log(&tag, *time, rec) else { continue };
            let _ = record::to_records(&log, 0);
            let bytes = emit::reencode(&log);
            let mut again = BytesMut::from(&bytes[..]);
            let Ok(Some(ForwardMessage::Events { tag: t2, events: e2, .. })) =
                ForwardDecoder::default().decode(&mut again)
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
});
