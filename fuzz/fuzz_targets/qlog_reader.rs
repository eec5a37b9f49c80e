//! qlog reader: arbitrary bytes as a whole file (sniffing, headers of every version, JSON-SEQ resync,
//! contained JSON, draft array events), every event normalised and typed; the same bytes through the
//! growing-file splitter in chunks. Checks: no panic; damage records and offsets lie inside the input;
//! the splitter's records never exceed the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwire_qlog::{Reader, SeqTail};

fuzz_target!(|data: &[u8]| {
    if let Ok(mut reader) = Reader::new(data) {
        while let Some(item) = reader.next() {
            match item {
                Ok(e) => {
                    assert!(e.offset < data.len());
                    let trace = &reader.traces[e.trace];
                    let _ = e.typed(trace);
                    let _ = e.epoch_ms(trace);
                }
                Err(d) => assert!(d.offset < data.len()),
            }
        }
    }
    let _ = logwire_qlog::tools::check(data);
    let _ = logwire_qlog::tools::summarise(data);
    let _ = logwire_qlog::tools::convert(data, logwire_qlog::Serialization::Seq, logwire_qlog::tools::Layout::Qvis);

    let mut tail = SeqTail::new();
    let step = 1 + data.first().copied().unwrap_or(0) as usize % 64;
    let mut total = 0;
    for chunk in data.chunks(step) {
        tail.push(chunk);
        while let Some(r) = tail.next_record(false) {
            total += r.bytes.len();
        }
    }
    while let Some(r) = tail.next_record(true) {
        total += r.bytes.len();
    }
    assert!(total <= data.len());
});
