//! Decode throughput of the logging channel vs the `nix-daemon` 0.1.1 crate's `wire::read_stderr` (tokio
//! `BufReader` over the same in-memory bytes), on a build that prints 200,000 lines of 69 characters (the
//! shape of `fixtures/nix/many.nix`), in the same run.
//!
//! The goal line is the relay's decode path: `Observer::feed_with` fed the daemon's bytes in 64 KiB
//! chunks (the relay's read size), after a handshake and a BuildPaths request, handing each message
//! borrowed to a callback that touches its log line. Also printed, for information: the bare
//! `MessageRef::decode`, the owned `Message::decode` (`Observer::feed` + `poll_event`), and the whole
//! decoder task (observer + `ConnectionRecorder` building the records), fed 64 KiB reads and, as in the
//! relay bench, reads of ≈ 930 bytes (≈ 8 lines), each stamped with its own time (37 µs apart, as there)
//! and the records handed off in batches every 20 ms of those times, as the relay does (`BATCH_DELAY`):
//! log lines join across the reads of a batch.
//!
//!     cargo bench -p logwire-nix --bench decode

use std::hint::black_box;
use std::time::{Duration, Instant};

use logwire_model::Record;
use logwire_nix::handshake::{encode_client_magic, ClientHello, DaemonHello};
use logwire_nix::logger::{
    ActivityResult, ActivityType, Field, FieldRef, Message, MessageRef, ResultType, StartActivity, Verbosity,
};
use logwire_nix::observer::{Event, EventRef, Observer};
use logwire_nix::record::ConnectionRecorder;
use logwire_nix::runtime::{BATCH_DELAY, BATCH_RECORDS};
use logwire_nix::wire::{put_bytes_list, put_u64, Limits, Reader};
use logwire_nix::ProtocolVersion;

/// The relay reads (and hands the decoder) at most this much at a time.
const CHUNK: usize = 64 * 1024;

/// What a relay read carries on average in the relay bench (`relay_overhead`: ≈ 930 bytes, ≈ 8 lines).
const RELAY_READ: usize = 930;

/// Time between two relay reads in the relay bench (≈ 5 s for ≈ 136 k reads of a 1 M-line build).
const READ_GAP_NS: i64 = 37_000;

/// Client → daemon: magic, hello, BuildPaths of one derivation. Daemon → client: hello and the empty
/// startup log block, to which the log stream is appended.
fn conversation() -> (Vec<u8>, Vec<u8>) {
    let version = ProtocolVersion::NIX_2_8;
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    encode_client_magic(&mut c2s);
    let client = ClientHello::new(version);
    client.encode_version(&mut c2s);
    client.encode_rest(version, &mut c2s);
    put_u64(&mut c2s, 9); // BuildPaths
    put_bytes_list(&mut c2s, &[b"/nix/store/d8azz3a8088l850drcz8f344djfpsgyn-many.drv!out"]);
    put_u64(&mut c2s, 0); // buildMode normal
    let daemon = DaemonHello::new(version, b"2.8.0");
    daemon.encode_version(&mut s2c);
    daemon.encode_rest(version, &mut s2c);
    Message::Last.encode(&mut s2c);
    (c2s, s2c)
}

/// The relay's decode path: the observer hands each message borrowed; touch each log line.
fn relay_decode(c2s: &[u8], s2c: &[u8]) -> (usize, usize) {
    let mut observer = Observer::default();
    observer.feed_client(c2s);
    let (mut messages, mut line_bytes) = (0, 0);
    for chunk in s2c.chunks(CHUNK) {
        observer.feed_with(logwire_nix::observer::Direction::DaemonToClient, chunk, |event| {
            if let EventRef::Message { op: Some(_), message, .. } = event {
                messages += 1;
                if let MessageRef::Result { fields, .. } = message {
                    if let Some(FieldRef::String(line)) = fields.iter().next() {
                        line_bytes += line.len();
                    }
                }
            }
        });
    }
    assert!(!observer.is_out_of_sync());
    (messages, line_bytes)
}

/// The observer's owned path (`feed` + `poll_event`), which copies every message.
fn observer_owned_decode(c2s: &[u8], s2c: &[u8]) -> (usize, usize) {
    let mut observer = Observer::default();
    observer.feed_client(c2s);
    let (mut messages, mut line_bytes) = (0, 0);
    for chunk in s2c.chunks(CHUNK) {
        observer.feed_daemon(chunk);
        while let Some(event) = observer.poll_event() {
            if let Event::Message { op: Some(_), message, .. } = event {
                messages += 1;
                if let Message::Result(r) = &message {
                    if let Some(Field::String(line)) = r.fields.first() {
                        line_bytes += line.len();
                    }
                }
            }
        }
    }
    (messages, line_bytes)
}

/// The relay's whole decoder task: observer plus the records it stores, each chunk stamped with its own
/// read time and the records handed off as the relay does (every `BATCH_DELAY` of those times, or at
/// `BATCH_RECORDS`). Returns how many messages the records hold.
fn relay_decode_and_map(c2s: &[u8], s2c: &[u8], chunk_size: usize) -> usize {
    let batch_delay_ns = BATCH_DELAY.as_nanos() as i64;
    let mut observer = Observer::default();
    let mut recorder = ConnectionRecorder::new("bench");
    let mut records = Vec::new();
    let mut stored = 0;
    // Joined log lines hold `attrs.lines` messages: count those.
    let mut hand_off = |records: &mut Vec<Record>| {
        stored +=
            records.iter().map(|r| r.attrs.get("lines").and_then(|n| n.as_u64()).unwrap_or(1) as usize).sum::<usize>();
        black_box(std::mem::take(records));
    };
    observer.feed_with(logwire_nix::observer::Direction::ClientToDaemon, c2s, |event| {
        recorder.on_event_ref(&event, 0, &mut records)
    });
    let mut batch_since = 0;
    for (i, chunk) in s2c.chunks(chunk_size).enumerate() {
        let time_ns = (1 + i as i64) * READ_GAP_NS;
        if records.is_empty() {
            batch_since = time_ns;
        }
        observer.feed_with(logwire_nix::observer::Direction::DaemonToClient, chunk, |event| {
            recorder.on_event_ref(&event, time_ns, &mut records)
        });
        if records.len() >= BATCH_RECORDS || time_ns - batch_since >= batch_delay_ns {
            hand_off(&mut records);
        }
    }
    hand_off(&mut records);
    stored
}

const LINES: usize = 200_000;
const ROUNDS: usize = 5;

fn stream() -> Vec<u8> {
    let mut out = Vec::new();
    let id = (8393u64 << 32) | 5;
    Message::StartActivity(StartActivity {
        id,
        level: Verbosity::Info,
        activity_type: ActivityType::Build,
        text: b"building '/nix/store/d8azz3a8088l850drcz8f344djfpsgyn-many.drv'".to_vec(),
        fields: vec![
            Field::String(b"/nix/store/d8azz3a8088l850drcz8f344djfpsgyn-many.drv".to_vec()),
            Field::String(Vec::new()),
            Field::Int(1),
            Field::Int(1),
        ],
        parent: 0,
    })
    .encode(&mut out);
    for i in 0..LINES {
        let line = format!("line {i:>8} of the many.nix load test, padded to sixty-nine chars");
        let line = format!("{line:<69}");
        Message::Result(ActivityResult {
            id,
            result_type: ResultType::BuildLogLine,
            fields: vec![Field::String(line.into_bytes())],
        })
        .encode(&mut out);
    }
    Message::StopActivity { id }.encode(&mut out);
    Message::Last.encode(&mut out);
    out
}

/// logwire: decode every message, touching each log line.
fn logwire_decode(bytes: &[u8]) -> (usize, usize) {
    let mut reader = Reader::new(bytes, Limits::default());
    let (mut messages, mut line_bytes) = (0, 0);
    loop {
        let Ok(message) = Message::decode(&mut reader, ProtocolVersion::NIX_2_8) else { panic!("decode failed") };
        messages += 1;
        if let Message::Result(r) = &message {
            if let Some(Field::String(line)) = r.fields.first() {
                line_bytes += line.len();
            }
        }
        if message == Message::Last {
            return (messages, line_bytes);
        }
    }
}

/// logwire, borrowed: the same, without copying any string.
fn logwire_decode_ref(bytes: &[u8]) -> (usize, usize) {
    let mut reader = Reader::new(bytes, Limits::default());
    let (mut messages, mut line_bytes) = (0, 0);
    loop {
        let Ok(message) = MessageRef::decode(&mut reader, ProtocolVersion::NIX_2_8) else { panic!("decode failed") };
        messages += 1;
        match message {
            MessageRef::Result { fields, .. } => {
                if let Some(FieldRef::String(line)) = fields.iter().next() {
                    line_bytes += line.len();
                }
            }
            MessageRef::Last => return (messages, line_bytes),
            _ => {}
        }
    }
}

/// The anchor: nix-daemon 0.1.1 reads until STDERR_LAST (which it returns as `None`).
async fn anchor_decode(bytes: &[u8]) -> (usize, usize) {
    let mut reader = tokio::io::BufReader::new(bytes);
    let (mut messages, mut line_bytes) = (0, 0);
    while let Some(stderr) = nix_daemon::nix::wire::read_stderr(&mut reader).await.expect("anchor decode") {
        messages += 1;
        if let nix_daemon::Stderr::Result(r) = &stderr {
            if let Some(nix_daemon::StderrField::String(line)) = r.fields.first() {
                line_bytes += line.len();
            }
        }
    }
    (messages + 1, line_bytes)
}

fn best<F: FnMut() -> (usize, usize)>(mut f: F) -> (Duration, (usize, usize)) {
    let mut best = Duration::MAX;
    let mut result = (0, 0);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        result = black_box(f());
        best = best.min(start.elapsed());
    }
    (best, result)
}

fn main() {
    let bytes = stream();
    let (c2s, mut s2c) = conversation();
    s2c.extend_from_slice(&bytes);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let (relay, relay_counts) = best(|| relay_decode(black_box(&c2s), black_box(&s2c)));
    let (observer_owned, observer_owned_counts) = best(|| observer_owned_decode(black_box(&c2s), black_box(&s2c)));
    let (owned, owned_counts) = best(|| logwire_decode(black_box(&bytes)));
    let (borrowed, borrowed_counts) = best(|| logwire_decode_ref(black_box(&bytes)));
    let (mapped, records) = best(|| (relay_decode_and_map(black_box(&c2s), black_box(&s2c), CHUNK), 0));
    let (mapped_small, small_records) =
        best(|| (relay_decode_and_map(black_box(&c2s), black_box(&s2c), RELAY_READ), 0));
    let (anchor, anchor_counts) = best(|| runtime.block_on(anchor_decode(black_box(&bytes))));
    for counts in [relay_counts, observer_owned_counts, owned_counts, borrowed_counts] {
        assert_eq!(counts, anchor_counts, "the decoders disagree");
    }
    assert_eq!(records.0, small_records.0, "the chunk size changed what was recorded");
    assert_eq!(
        records.0,
        anchor_counts.0 + 1,
        "every message but LAST in a record (joined log lines counted), plus handshake and op start"
    );
    let mb = bytes.len() as f64 / 1e6;
    let line = |name: &str, t: Duration| {
        println!(
            "{name:<46} {:>8.2} ms  {:>7.0} MB/s  ratio {:>5.1}x",
            t.as_secs_f64() * 1e3,
            mb / t.as_secs_f64(),
            anchor.as_secs_f64() / t.as_secs_f64()
        )
    };
    println!(
        "stream: {:.1} MB, {} messages ({} lines of 69 chars); ratio = anchor time / time",
        mb, anchor_counts.0, LINES
    );
    line("nix-daemon 0.1.1 read_stderr (anchor)", anchor);
    line("relay path: Observer::feed_with (borrowed)", relay);
    line("MessageRef::decode alone", borrowed);
    line("Observer::feed + poll_event (owned)", observer_owned);
    line("Message::decode alone (owned)", owned);
    line("decoder task incl. records, 64 KiB reads", mapped);
    line("decoder task incl. records, relay-sized reads", mapped_small);
    println!(
        "ratio relay decode path (anchor time / logwire time): {:.1}x",
        anchor.as_secs_f64() / relay.as_secs_f64()
    );
}
