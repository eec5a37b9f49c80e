//! Nix records: the relay's decoder (observer `feed_with` + `ConnectionRecorder`) fed arbitrary client and
//! daemon bytes (laid out as `shared/nix_conversation.rs` says) in chunks. The relay stamps each read with
//! one time, so consecutive log lines of one activity within `JOIN_WINDOW_NS` are joined into one event;
//! here reads are 7 ms apart, so a join spans up to three reads. The same chunks recorded with every event
//! further apart than the window (nothing joins) are the reference. Checks: no panic; every joined event
//! has `attrs.lines` ≥ 2 and that many `\n`-separated lines in its body, at most `JOIN_BODY_MAX` bytes, and
//! `attrs.last_ns` within the window after its time; split back into single-line events, the joined
//! records equal the reference records (times aside), so joining loses, adds and reorders nothing.
#![no_main]

#[path = "shared/nix_conversation.rs"]
mod nix_conversation;

use libfuzzer_sys::fuzz_target;
use logwire_model::Record;
use logwire_nix::observer::{Direction, Observer};
use logwire_nix::record::{ConnectionRecorder, JOIN_BODY_MAX, JOIN_WINDOW_NS};
use logwire_nix::wire::Limits;

/// Records of the whole conversation fed in `chunk`-byte reads; `time(read)` gives the time of each event.
fn record(c2s: &[u8], s2c: &[u8], chunk: usize, mut time: impl FnMut(i64) -> i64) -> Vec<Record> {
    let mut observer = Observer::new(Limits { max_string: 1 << 16, max_list: 1 << 10 });
    let mut recorder = ConnectionRecorder::new("fuzz");
    let mut records = Vec::new();
    let (mut c, mut s, mut read) = (0, 0, 0);
    while c < c2s.len() || s < s2c.len() {
        let ce = (c + chunk).min(c2s.len());
        let se = (s + chunk).min(s2c.len());
        for (direction, bytes) in [(Direction::ClientToDaemon, &c2s[c..ce]), (Direction::DaemonToClient, &s2c[s..se])] {
            read += 1;
            observer.feed_with(direction, bytes, |event| recorder.on_event_ref(&event, time(read), &mut records));
            while let Some(event) = observer.poll_event() {
                recorder.on_event(&event, time(read), &mut records);
            }
        }
        (c, s) = (ce, se);
    }
    recorder.on_close(0, &mut records);
    records
}

/// Each joined log-line event as the single-line events it holds; times zeroed.
fn split_joined(records: Vec<Record>) -> Vec<Record> {
    let mut out = Vec::new();
    for mut record in records {
        let time_ns = std::mem::take(&mut record.time_ns);
        let Some(lines) = record.attrs.get("lines").and_then(|n| n.as_u64()) else {
            out.push(record);
            continue;
        };
        assert!(lines >= 2, "a joined event holds at least two lines: {record:?}");
        assert_eq!(record.attrs.len(), 2, "a joined event has no attrs but `lines` and `last_ns`: {record:?}");
        let last_ns = record.attrs.get("last_ns").and_then(|n| n.as_i64()).expect("`last_ns` is a number");
        assert!((0..=JOIN_WINDOW_NS).contains(&(last_ns - time_ns)), "last line outside the window: {record:?}");
        let body = record.body.take().expect("a joined event has a body");
        assert!(body.len() <= JOIN_BODY_MAX, "a joined body is capped: {} bytes", body.len());
        let pieces: Vec<&str> = body.split('\n').collect();
        assert_eq!(pieces.len() as u64, lines, "`lines` counts the lines in the body: {body:?}");
        for piece in pieces {
            let mut single = record.clone();
            single.attrs.clear();
            single.body = Some(piece.to_string());
            out.push(single);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((c2s, s2c, chunk_byte)) = nix_conversation::split(data) else { return };
    let chunk = 1 + chunk_byte as usize * 8;
    let joined = record(c2s, s2c, chunk, |read| read * 7_000_000);
    let mut events = 0;
    let reference = record(c2s, s2c, chunk, |_| {
        events += 1;
        events * (JOIN_WINDOW_NS + 1)
    });
    assert!(reference.iter().all(|r| !r.attrs.contains_key("lines")), "events with distinct times never join");
    let zeroed: Vec<Record> = reference.into_iter().map(|r| Record { time_ns: 0, ..r }).collect();
    assert_eq!(split_joined(joined), zeroed, "joining log lines changed what was recorded");
});
