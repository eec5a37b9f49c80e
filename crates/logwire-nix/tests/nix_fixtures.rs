//! The real captures in `fixtures/nix/` (Nix 2.8 daemon; 1.34, 1.25 and 1.19 clients): the observer
//! walks both directions completely, agrees with the reference decoder's `decoded.jsonl`, and every
//! handshake and logger message re-encodes byte for byte, through the emit side too.

use std::path::PathBuf;

use logwire_nix::emit::{render_what, ErrorReport, TunnelLogger};
use logwire_nix::handshake::encode_client_magic;
use logwire_nix::json::JsonEvent;
use logwire_nix::logger::{ActivityView, ErrorMessage, Message, ResultView};
use logwire_nix::observer::{Direction, Event, Observer};
use logwire_nix::ProtocolVersion;
use serde_json::Value;

fn fixtures() -> PathBuf {
    std::env::var_os("LOGWIRE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"))
        .join("nix")
}

/// (name, c2s path, s2c path, decoded.jsonl if any), relative to `fixtures/nix`.
const CAPTURES: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "cap1",
        "cap1-nix-build-ok/conn0.c2s.bin",
        "cap1-nix-build-ok/conn0.s2c.bin",
        Some("cap1-nix-build-ok/decoded.jsonl"),
    ),
    ("cap2", "cap2-json.c2s.bin", "cap2-json.s2c.bin", None),
    ("cap3", "cap3-fail/conn0.c2s.bin", "cap3-fail/conn0.s2c.bin", Some("cap3-fail/decoded.jsonl")),
    ("cap4", "cap4-nixbuild/conn0.c2s.bin", "cap4-nixbuild/conn0.s2c.bin", Some("cap4-nixbuild/decoded.jsonl")),
    ("v19f", "cap5-old-v19f/conn0.c2s.bin", "cap5-old-v19f/conn0.s2c.bin", Some("cap5-old-v19f/decoded.jsonl")),
    ("v25f", "cap5-old-v25f/conn0.c2s.bin", "cap5-old-v25f/conn0.s2c.bin", Some("cap5-old-v25f/decoded.jsonl")),
];

fn read(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {} missing ({e}); set LOGWIRE_FIXTURES", path.display()))
}

struct Capture {
    name: &'static str,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    decoded: Option<Vec<Value>>,
}

fn captures() -> Vec<Capture> {
    CAPTURES
        .iter()
        .map(|(name, c2s, s2c, decoded)| Capture {
            name,
            c2s: read(c2s),
            s2c: read(s2c),
            decoded: decoded.map(|d| {
                String::from_utf8(read(d)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
            }),
        })
        .collect()
}

/// Feeds both directions in alternating chunks of `chunk` bytes and collects every event.
fn observe(capture: &Capture, chunk: usize) -> (Observer, Vec<Event>) {
    let mut observer = Observer::default();
    let mut events = Vec::new();
    let (mut c, mut s) = (0, 0);
    while c < capture.c2s.len() || s < capture.s2c.len() {
        let c_end = (c + chunk).min(capture.c2s.len());
        observer.feed_client(&capture.c2s[c..c_end]);
        c = c_end;
        let s_end = (s + chunk).min(capture.s2c.len());
        observer.feed_daemon(&capture.s2c[s..s_end]);
        s = s_end;
        while let Some(event) = observer.poll_event() {
            events.push(event);
        }
    }
    (observer, events)
}

#[test]
fn observer_walks_every_capture_completely_in_any_split() {
    for capture in captures() {
        for chunk in [1, 3, 8, 13, 64, 100_000] {
            let (observer, events) = observe(&capture, chunk);
            let lost: Vec<_> = events.iter().filter(|e| matches!(e, Event::OutOfSync { .. })).collect();
            assert!(lost.is_empty(), "{} chunk {chunk}: {lost:?}", capture.name);
            assert_eq!(observer.consumed(Direction::ClientToDaemon), capture.c2s.len() as u64, "{}", capture.name);
            assert_eq!(observer.consumed(Direction::DaemonToClient), capture.s2c.len() as u64, "{}", capture.name);
            assert_eq!(observer.buffered(Direction::ClientToDaemon), 0);
            assert_eq!(observer.buffered(Direction::DaemonToClient), 0);
            // Same events whatever the split.
            assert_eq!(events, observe(&capture, 100_000).1, "{} chunk {chunk}", capture.name);
        }
    }
}

fn fields_json(fields: &[logwire_nix::logger::Field]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|f| match f {
                logwire_nix::logger::Field::Int(v) => Value::from(*v),
                logwire_nix::logger::Field::String(s) => Value::from(String::from_utf8_lossy(s).into_owned()),
            })
            .collect(),
    )
}

/// Renders an observer event the way the reference decoder does, for the keys it shares.
fn as_reference(event: &Event) -> Option<Value> {
    let text = |b: &[u8]| Value::from(String::from_utf8_lossy(b).into_owned());
    Some(match event {
        Event::Message { s2c_offset, end, message, .. } => {
            let mut v = serde_json::json!({"off": s2c_offset, "msg": message.kind(), "end": end});
            let o = v.as_object_mut()?;
            match message {
                Message::Next(t) => {
                    o.insert("text".into(), text(t));
                }
                Message::StartActivity(a) => {
                    o.insert("id".into(), a.id.into());
                    o.insert("level".into(), a.level.to_wire().into());
                    o.insert("type".into(), a.activity_type.label().into());
                    o.insert("text".into(), text(&a.text));
                    o.insert("fields".into(), fields_json(&a.fields));
                    o.insert("parent".into(), a.parent.into());
                }
                Message::StopActivity { id } => {
                    o.insert("id".into(), (*id).into());
                }
                Message::Result(r) => {
                    o.insert("id".into(), r.id.into());
                    o.insert("type".into(), r.result_type.label().into());
                    o.insert("fields".into(), fields_json(&r.fields));
                }
                Message::Error(ErrorMessage::Legacy { message, exit_status }) => {
                    o.insert("text".into(), text(message));
                    o.insert("exit_status".into(), (*exit_status).into());
                }
                Message::Error(ErrorMessage::Structured { level, name, message, traces }) => {
                    o.insert("etype".into(), "Error".into());
                    o.insert("level".into(), level.to_wire().into());
                    o.insert("name".into(), text(name));
                    o.insert("text".into(), text(message));
                    o.insert("have_pos".into(), 0.into());
                    o.insert("traces".into(), Value::Array(traces.iter().map(|t| text(t)).collect()));
                }
                Message::Read { .. } | Message::Write(_) | Message::Last => {}
            }
            v
        }
        Event::Request { c2s_offset, request } => {
            serde_json::json!({"request": {"op": request.op.name(), "c2s_off": c2s_offset}})
        }
        Event::Reply { s2c_offset, end, .. } => {
            serde_json::json!({"response": {"resp_off": s2c_offset, "resp_end": end}})
        }
        Event::Handshake { client, daemon, .. } => serde_json::json!({"handshake": {
            "magic1": "0x6e697863", "client": client.version.to_string(),
            "magic2": "0x6478696f", "server": daemon.version.to_string()}}),
        Event::OutOfSync { .. } => return None,
    })
}

/// Keeps only the keys the observer reports (requests and responses carry decoded arguments we skip).
fn reference_view(line: &Value) -> Option<Value> {
    if let Some(request) = line.get("request") {
        return Some(serde_json::json!({"request": {"op": request["op"], "c2s_off": request["c2s_off"]}}));
    }
    if let Some(response) = line.get("response") {
        return Some(
            serde_json::json!({"response": {"resp_off": response["resp_off"], "resp_end": response["resp_end"]}}),
        );
    }
    if line.get("daemonNixVersion").is_some() || line.get("c2s_consumed").is_some() {
        return None;
    }
    Some(line.clone())
}

#[test]
fn observer_agrees_with_the_reference_decoder() {
    for capture in captures() {
        let Some(decoded) = &capture.decoded else { continue };
        let (_, events) = observe(&capture, 100_000);
        let ours: Vec<Value> = events.iter().filter_map(as_reference).collect();
        let theirs: Vec<Value> = decoded.iter().filter_map(reference_view).collect();
        assert!(ours.len() >= 8, "{}: {} events", capture.name, ours.len());
        assert_eq!(ours.len(), theirs.len(), "{}: event counts differ", capture.name);
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "{}", capture.name);
        }

        let nix_version = decoded.iter().find_map(|l| l.get("daemonNixVersion")).and_then(Value::as_str);
        let Some(Event::Handshake { daemon, .. }) = events.first() else {
            panic!("{}: no handshake first", capture.name)
        };
        assert_eq!(nix_version.map(str::as_bytes), (!daemon.nix_version.is_empty()).then_some(&daemon.nix_version[..]));

        let totals = decoded.last().unwrap();
        assert_eq!(totals["c2s_consumed"], capture.c2s.len(), "{}", capture.name);
        assert_eq!(totals["s2c_consumed"], capture.s2c.len(), "{}", capture.name);
    }
}

#[test]
fn handshakes_and_logger_messages_re_encode_byte_for_byte() {
    for capture in captures() {
        let (_, events) = observe(&capture, 7);
        let Some(Event::Handshake { client, daemon, negotiated }) = events.first() else { panic!("no handshake") };

        let mut c2s = Vec::new();
        encode_client_magic(&mut c2s);
        client.encode_version(&mut c2s);
        client.encode_rest(*negotiated, &mut c2s);
        assert_eq!(c2s, capture.c2s[..c2s.len()], "{} client handshake", capture.name);

        let mut s2c = Vec::new();
        daemon.encode_version(&mut s2c);
        daemon.encode_rest(*negotiated, &mut s2c);
        assert_eq!(s2c, capture.s2c[..s2c.len()], "{} daemon handshake", capture.name);

        // Every message alone, and the whole logger stream through the daemon-side emitter.
        let logger = TunnelLogger::new(*negotiated, logwire_nix::logger::Verbosity::Info);
        let mut emitted = Vec::new();
        let mut original = Vec::new();
        let mut messages = 0;
        for event in &events {
            if let Event::Message { s2c_offset, end, message, .. } = event {
                let range = *s2c_offset as usize..*end as usize;
                let mut one = Vec::new();
                message.encode(&mut one);
                assert_eq!(one, capture.s2c[range.clone()], "{} message at {s2c_offset}", capture.name);
                logger.emit(&mut emitted, message);
                original.extend_from_slice(&capture.s2c[range]);
                messages += 1;
            }
        }
        assert!(messages >= 3, "{}: only {messages} messages", capture.name);
        assert_eq!(emitted, original, "{}: emitter output differs", capture.name);
    }
}

fn messages(capture: &Capture) -> Vec<Message> {
    observe(capture, 100_000)
        .1
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

#[test]
fn version_gates_show_in_the_captures() {
    let all = captures();
    let by_name = |n: &str| all.iter().find(|c| c.name == n).unwrap();

    // 1.34: a Build activity with typed fields and its log lines.
    let cap1 = messages(by_name("cap1"));
    let build = cap1
        .iter()
        .find_map(|m| match m {
            Message::StartActivity(a) => match a.view() {
                Some(ActivityView::Build { drv_path, machine, round, nr_rounds }) => {
                    Some((a.id, drv_path.to_vec(), machine.to_vec(), round, nr_rounds))
                }
                _ => None,
            },
            _ => None,
        })
        .expect("Build activity");
    assert!(build.1.starts_with(b"/nix/store/") && build.1.ends_with(b"-hello-log-daemon1.drv"));
    assert_eq!((build.2.as_slice(), build.3, build.4), (&b""[..], 1, 1));
    let lines: Vec<Vec<u8>> = cap1
        .iter()
        .filter_map(|m| match m {
            Message::Result(r) if r.id == build.0 => match r.view() {
                Some(ResultView::BuildLogLine { line }) => Some(line.to_vec()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(lines.first().map(Vec::as_slice), Some(&b"line one from builder"[..]));
    assert_eq!(lines.last().map(Vec::as_slice), Some(&b"no trailing newline"[..]));

    // 1.19: no activities, results or stops; one NEXT "building '…'...\n"; legacy error with status 100.
    let v19 = messages(by_name("v19f"));
    assert!(!v19
        .iter()
        .any(|m| matches!(m, Message::StartActivity(_) | Message::Result(_) | Message::StopActivity { .. })));
    assert!(v19
        .iter()
        .any(|m| matches!(m, Message::Next(t) if t.starts_with(b"building '") && t.ends_with(b"'...\n"))));
    assert!(matches!(v19.last(), Some(Message::Error(ErrorMessage::Legacy { exit_status: 100, .. }))));

    // 1.25: activities, but the legacy error. 1.34: structured error.
    let v25 = messages(by_name("v25f"));
    assert!(v25.iter().any(|m| matches!(m, Message::StartActivity(_))));
    let Some(Message::Error(ErrorMessage::Legacy { message: v25_message, exit_status: 100 })) = v25.last() else {
        panic!("1.25 legacy error")
    };
    let cap3 = messages(by_name("cap3"));
    let Some(Message::Error(ErrorMessage::Structured { level, message: cap3_message, traces, .. })) = cap3.last()
    else {
        panic!("1.34 structured error")
    };
    assert_eq!((level.to_wire(), traces.len()), (0, 0));

    // The emitter turns the 1.34 error into the exact 1.25 bytes (after swapping in that run's drv path).
    let drv = |m: &[u8]| -> Vec<u8> {
        let start = m.windows(11).position(|w| w == b"/nix/store/").unwrap();
        let len = m[start..].iter().position(|&b| b == 0x1b).unwrap();
        m[start..start + len].to_vec()
    };
    let (old_drv, new_drv) = (drv(cap3_message), drv(v25_message));
    let swapped = String::from_utf8_lossy(cap3_message)
        .replace(&*String::from_utf8_lossy(&old_drv), &String::from_utf8_lossy(&new_drv))
        .into_bytes();
    let mut emitted = Vec::new();
    let report = ErrorReport { level: *level, message: swapped, traces: vec![], exit_status: 100 };
    TunnelLogger::new(ProtocolVersion::new(1, 25), logwire_nix::logger::Verbosity::Info).error(&mut emitted, &report);
    let mut expected = Vec::new();
    v25.last().unwrap().encode(&mut expected);
    assert_eq!(emitted, expected);
}

fn json_lines(rel: &str) -> Vec<String> {
    String::from_utf8(read(rel)).unwrap().lines().filter(|l| l.starts_with("@nix ")).map(str::to_string).collect()
}

#[test]
fn internal_json_lines_round_trip_byte_for_byte() {
    let mut total = 0;
    for rel in ["cap2-internal-json.stderr.txt", "cap3-fail-internal-json.stderr.txt", "cap4-nixbuild/client.stderr"] {
        let lines = json_lines(rel);
        assert!(lines.len() > 20, "{rel}");
        for line in lines {
            let event = JsonEvent::parse_line(&line).unwrap_or_else(|e| panic!("{rel}: {e}: {line}"));
            assert_eq!(event.to_line(), line, "{rel}");
            total += 1;
        }
    }
    assert!(total > 90);
}

#[test]
fn internal_json_twin_matches_the_wire() {
    // Every daemon start/result/stop of cap2's wire stream appears, rendered, among the client's lines.
    let lines = json_lines("cap2-internal-json.stderr.txt");
    let capture = captures().into_iter().find(|c| c.name == "cap2").unwrap();
    let mut matched = 0;
    for message in messages(&capture) {
        if let Some(event) = JsonEvent::from_message(&message, false) {
            let line = event.to_line();
            assert!(lines.contains(&line), "wire message not in the JSON twin: {line}");
            matched += 1;
        }
    }
    assert!(matched > 20, "{matched}");
}

#[test]
fn render_what_reproduces_the_json_error_msg() {
    // The same failing run's `msg` (what()) and `raw_msg` (the message).
    let line = json_lines("cap3-fail-internal-json.stderr.txt").into_iter().find(|l| l.contains("raw_msg")).unwrap();
    let Ok(JsonEvent::Msg { msg, error: Some(error), .. }) = JsonEvent::parse_line(&line) else { panic!() };
    assert_eq!(render_what(error.raw_msg.as_bytes()), msg.as_bytes());
}

#[test]
fn garbage_after_the_handshake_marks_the_connection_out_of_sync() {
    let capture = captures().into_iter().find(|c| c.name == "cap1").unwrap();
    // Replace SetOptions (op 19 at c2s offset 32) by an unknown op.
    let mut c2s = capture.c2s.clone();
    c2s[32] = 0xee;
    let mut observer = Observer::default();
    observer.feed_client(&c2s);
    observer.feed_daemon(&capture.s2c);
    let events: Vec<Event> = std::iter::from_fn(|| observer.poll_event()).collect();
    let Some(Event::OutOfSync { direction, offset, reason }) = events.last() else { panic!("{events:?}") };
    assert_eq!((*direction, *offset), (Direction::ClientToDaemon, 32));
    assert!(reason.contains("Op238"), "{reason}");
    assert!(observer.is_out_of_sync());
    // It keeps counting what passes without decoding.
    observer.feed_daemon(b"more");
    assert_eq!(observer.consumed(Direction::DaemonToClient), capture.s2c.len() as u64 + 4);
}
