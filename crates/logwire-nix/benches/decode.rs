//! Decode throughput of the logging channel: logwire's `Message::decode` (owned, what the relay uses)
//! and `MessageRef::decode` (borrowed, zero allocation) vs the `nix-daemon` 0.1.1 crate's `wire::read_stderr` (tokio `BufReader` over the same in-memory bytes), on a build that prints
//! 200,000 lines of 69 characters (the shape of `fixtures/nix/many.nix`), in the same run.
//!
//!     cargo bench -p logwire-nix --bench decode

use std::hint::black_box;
use std::time::{Duration, Instant};

use logwire_nix::logger::{
    ActivityResult, ActivityType, Field, FieldRef, Message, MessageRef, ResultType, StartActivity, Verbosity,
};
use logwire_nix::wire::{Limits, Reader};
use logwire_nix::ProtocolVersion;

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
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let (ours, ours_counts) = best(|| logwire_decode(black_box(&bytes)));
    let (borrowed, borrowed_counts) = best(|| logwire_decode_ref(black_box(&bytes)));
    assert_eq!(ours_counts, borrowed_counts);
    let (anchor, anchor_counts) = best(|| runtime.block_on(anchor_decode(black_box(&bytes))));
    assert_eq!(ours_counts, anchor_counts, "the two decoders disagree");
    let mb = bytes.len() as f64 / 1e6;
    println!("stream: {:.1} MB, {} messages ({} lines of 69 chars)", mb, ours_counts.0, LINES);
    println!(
        "logwire Message::decode:        {:>8.2} ms  {:>7.0} MB/s",
        ours.as_secs_f64() * 1e3,
        mb / ours.as_secs_f64()
    );
    println!(
        "nix-daemon 0.1.1 read_stderr:   {:>8.2} ms  {:>7.0} MB/s",
        anchor.as_secs_f64() * 1e3,
        mb / anchor.as_secs_f64()
    );
    println!("ratio owned    (anchor time / logwire time): {:.1}x", anchor.as_secs_f64() / ours.as_secs_f64());
    println!("ratio borrowed (anchor time / logwire time): {:.1}x", anchor.as_secs_f64() / borrowed.as_secs_f64());
}
