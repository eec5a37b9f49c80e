//! Op framing beyond what the captures hold: conversations built with the crate's encoders for protocol
//! 1.10–1.38, fed to the observer one byte at a time in alternation, must be walked completely.

use logwire_nix::emit::{ErrorReport, TunnelLogger};
use logwire_nix::handshake::{encode_client_magic, ClientHello, DaemonHello, TrustedFlag};
use logwire_nix::logger::{Message, Verbosity};
use logwire_nix::nar::write::{nar, Node};
use logwire_nix::observer::{Direction, Event, Observer};
use logwire_nix::ops::Op;
use logwire_nix::wire::{put_bool, put_bytes, put_bytes_list, put_framed, put_u64};
use logwire_nix::ProtocolVersion;

const PATH: &[u8] = b"/nix/store/d8azz3a8088l850drcz8f344djfpsgyn-hello.drv";

/// A conversation being written: client bytes, daemon bytes, the negotiated version.
struct Conversation {
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    version: ProtocolVersion,
}

impl Conversation {
    fn new(client: ProtocolVersion, daemon: ProtocolVersion) -> Self {
        let version = ProtocolVersion::negotiate(client, daemon);
        let mut c = Conversation { c2s: Vec::new(), s2c: Vec::new(), version };
        encode_client_magic(&mut c.c2s);
        let mut hello = ClientHello::new(client);
        hello.features = vec![b"add-to-store-scanning".to_vec()];
        hello.encode_version(&mut c.c2s);
        hello.encode_rest(version, &mut c.c2s);
        let mut daemon_hello = DaemonHello::new(daemon, b"2.24.9");
        daemon_hello.features = vec![b"add-to-store-scanning".to_vec(), b"submit-output".to_vec()];
        daemon_hello.trusted = TrustedFlag::Trusted;
        daemon_hello.encode_version(&mut c.s2c);
        daemon_hello.encode_rest(version, &mut c.s2c);
        Message::Last.encode(&mut c.s2c);
        c
    }

    fn op(&mut self, op: u64) -> &mut Vec<u8> {
        put_u64(&mut self.c2s, op);
        &mut self.c2s
    }

    fn last(&mut self) -> &mut Vec<u8> {
        Message::Last.encode(&mut self.s2c);
        &mut self.s2c
    }
}

fn unkeyed_path_info(out: &mut Vec<u8>, version: ProtocolVersion) {
    put_bytes(out, b""); // deriver
    put_bytes(out, b"49f255665d12571c31933ca87efc7a4eca7b36bc68d6232947dfda1b7b98b1b2");
    put_bytes_list(out, &[PATH]);
    put_u64(out, 1_795_246_041);
    put_u64(out, 600);
    if version.at_least(16) {
        put_bool(out, false);
        put_bytes_list::<&[u8]>(out, &[]);
        put_bytes(out, b"text:sha256:0zppyxxl52b0g3in8h9y0asdawgnr4lkc2z21682vaxx91l4drv4");
    }
}

fn build_result(out: &mut Vec<u8>, version: ProtocolVersion) {
    put_u64(out, 3); // PermanentFailure
    put_bytes(out, b"builder failed");
    if version.at_least(29) {
        for v in [1, 0, 1_795_246_092, 1_795_246_093] {
            put_u64(out, v);
        }
    }
    if version.at_least(37) {
        put_u64(out, 1);
        put_u64(out, 12_345);
        put_u64(out, 0);
    }
    if version.at_least(28) {
        put_u64(out, 1);
        put_bytes(out, b"sha256:17ad!out");
        put_bytes(out, b"{\"id\":\"sha256:17ad!out\"}");
    }
}

fn small_nar() -> Vec<u8> {
    let mut out = Vec::new();
    nar(
        &mut out,
        &Node::Directory(vec![
            (
                b"bin",
                Node::Directory(vec![(
                    b"hello",
                    Node::Regular { executable: true, contents: b"#!/bin/sh\necho hi\n" },
                )]),
            ),
            (b"lib", Node::Symlink { target: b"/nix/store/x-lib" }),
        ]),
    );
    out
}

/// Feeds both directions one byte at a time in alternation; checks everything was consumed.
fn walk(c: &Conversation) -> Vec<Event> {
    let mut observer = Observer::default();
    let mut events = Vec::new();
    for i in 0..c.c2s.len().max(c.s2c.len()) {
        if let Some(b) = c.c2s.get(i) {
            observer.feed_client(std::slice::from_ref(b));
        }
        if let Some(b) = c.s2c.get(i) {
            observer.feed_daemon(std::slice::from_ref(b));
        }
        events.extend(std::iter::from_fn(|| observer.poll_event()));
    }
    let lost: Vec<_> = events.iter().filter(|e| matches!(e, Event::OutOfSync { .. })).collect();
    assert!(lost.is_empty(), "at {}: {lost:?}", c.version);
    assert_eq!(observer.consumed(Direction::ClientToDaemon), c.c2s.len() as u64);
    assert_eq!(observer.consumed(Direction::DaemonToClient), c.s2c.len() as u64);
    // The same conversation fed whole gives the same events.
    let mut whole = Observer::default();
    whole.feed_client(&c.c2s);
    whole.feed_daemon(&c.s2c);
    assert_eq!(std::iter::from_fn(|| whole.poll_event()).collect::<Vec<_>>(), events);
    events
}

fn ops_and_replies(events: &[Event]) -> (Vec<Op>, Vec<Op>) {
    let requests = events
        .iter()
        .filter_map(|e| match e {
            Event::Request { request, .. } => Some(request.op),
            _ => None,
        })
        .collect();
    let replies = events
        .iter()
        .filter_map(|e| match e {
            Event::Reply { op, .. } => Some(*op),
            _ => None,
        })
        .collect();
    (requests, replies)
}

#[test]
fn handshake_1_38_exchanges_features_and_the_trusted_flag() {
    let c = Conversation::new(ProtocolVersion::LATEST, ProtocolVersion::LATEST);
    let events = walk(&c);
    let Some(Event::Handshake { client, daemon, negotiated }) = events.first() else { panic!("{events:?}") };
    assert_eq!(*negotiated, ProtocolVersion::LATEST);
    assert_eq!(client.features, vec![b"add-to-store-scanning".to_vec()]);
    assert_eq!(daemon.features.len(), 2);
    assert_eq!(daemon.nix_version, b"2.24.9");
    assert_eq!(daemon.trusted, TrustedFlag::Trusted);
    assert_eq!(
        logwire_nix::handshake::common_features(&client.features, &daemon.features),
        vec![b"add-to-store-scanning".to_vec()]
    );
}

#[test]
fn handshake_1_10_has_nothing_after_the_versions() {
    let mut c = Conversation::new(ProtocolVersion::MINIMUM, ProtocolVersion::NIX_2_8);
    assert_eq!(c.c2s.len(), 16);
    assert_eq!(c.s2c.len(), 24);
    put_bytes(c.op(1), PATH); // IsValidPath
    put_u64(c.last(), 1);
    let events = walk(&c);
    let Some(Event::Handshake { daemon, negotiated, .. }) = events.first() else { panic!() };
    assert_eq!((*negotiated, daemon.nix_version.is_empty()), (ProtocolVersion::MINIMUM, true));
    assert_eq!(ops_and_replies(&events), (vec![Op::IsValidPath], vec![Op::IsValidPath]));
}

#[test]
fn nar_payloads_stream_through_nar_from_path_and_old_add_to_store() {
    for version in [ProtocolVersion::new(1, 24), ProtocolVersion::NIX_2_8] {
        let mut c = Conversation::new(version, ProtocolVersion::NIX_2_8);
        put_bytes(c.op(38), PATH); // NarFromPath
        c.last().extend_from_slice(&small_nar());
        if version.at_least(25) {
            // AddToStore ≥ 1.25: name, content-address method, references, repair, framed NAR.
            let out = c.op(7);
            put_bytes(out, b"hello.drv");
            put_bytes(out, b"text:sha256");
            put_bytes_list::<&[u8]>(out, &[]);
            put_bool(out, false);
            let nar = small_nar();
            put_framed(out, &[&nar[..5], &nar[5..]]);
            put_bytes(c.last(), PATH);
            unkeyed_path_info(&mut c.s2c, version);
        } else {
            // AddToStore < 1.25: baseName, fixed, recursive, hashAlgo, then a raw NAR; the reply is a path.
            let out = c.op(7);
            put_bytes(out, b"hello");
            put_u64(out, 1);
            put_u64(out, 1);
            put_bytes(out, b"sha256");
            out.extend_from_slice(&small_nar());
            put_bytes(c.last(), PATH);
        }
        put_bytes(c.op(11), PATH); // AddTempRoot after the NARs proves we are still in sync
        put_u64(c.last(), 1);
        let events = walk(&c);
        let expected = vec![Op::NarFromPath, Op::AddToStore, Op::AddTempRoot];
        assert_eq!(ops_and_replies(&events), (expected.clone(), expected), "{version}");
    }
}

#[test]
fn framed_uploads_and_read_answers_stay_in_sync() {
    let version = ProtocolVersion::NIX_2_8;
    let mut c = Conversation::new(version, version);
    // AddMultipleToStore: repair, dontCheckSigs, framed data; no reply.
    let out = c.op(44);
    put_bool(out, false);
    put_bool(out, true);
    put_framed(out, &[vec![7u8; 1000], vec![9u8; 3]]);
    c.last();
    // AddToStoreNar ≥ 1.23: path info, repair, dontCheckSigs, framed NAR; no reply.
    let out = c.op(39);
    put_bytes(out, PATH);
    unkeyed_path_info(out, version);
    put_bool(out, false);
    put_bool(out, false);
    put_framed(out, &[small_nar()]);
    c.last();
    // A log block that asks the client for data twice (as ImportPaths-era code does): the answers are
    // strings on c2s; the second one is EOF.
    put_bytes_list(c.op(31), &[PATH, PATH]); // QueryValidPaths
    put_bool(&mut c.c2s, true); // ≥ 1.27 substitute flag
    Message::Read { desired_len: 32 }.encode(&mut c.s2c);
    Message::Read { desired_len: 32 }.encode(&mut c.s2c);
    put_bytes(&mut c.c2s, b"thirteen byte");
    put_bytes(&mut c.c2s, b"");
    put_bytes_list(c.last(), &[PATH]);
    let events = walk(&c);
    let (requests, replies) = ops_and_replies(&events);
    assert_eq!(requests, vec![Op::AddMultipleToStore, Op::AddToStoreNar, Op::QueryValidPaths]);
    assert_eq!(replies, requests);
}

#[test]
fn build_results_follow_the_1_28_1_29_and_1_37_gates() {
    for minor in [27u8, 28, 29, 34, 37, 38] {
        let version = ProtocolVersion::new(1, minor);
        let mut c = Conversation::new(version, ProtocolVersion::LATEST);
        // BuildDerivation: drvPath, BasicDerivation, buildMode.
        let out = c.op(36);
        put_bytes(out, PATH);
        put_u64(out, 1);
        for s in [&b"out"[..], b"/nix/store/x-out", b"", b""] {
            put_bytes(out, s);
        }
        put_bytes_list(out, &[b"/nix/store/src"]);
        put_bytes(out, b"x86_64-linux");
        put_bytes(out, b"/bin/sh");
        put_bytes_list(out, &[&b"-c"[..], b"echo"]);
        put_u64(out, 1);
        put_bytes(out, b"out");
        put_bytes(out, b"/nix/store/x-out");
        put_u64(out, 0);
        build_result(c.last(), version);
        if version.at_least(30) {
            let out = c.op(46); // BuildPathsWithResults
            put_bytes_list(out, &[b"/nix/store/x.drv!out"]);
            put_u64(out, 0);
            put_u64(c.last(), 1);
            put_bytes(&mut c.s2c, b"/nix/store/x.drv!out");
            build_result(&mut c.s2c, version);
        }
        let events = walk(&c);
        let results: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Reply { reply, .. } => reply.build_results.first().cloned(),
                _ => None,
            })
            .collect();
        assert!(!results.is_empty());
        for result in results {
            assert_eq!(
                (result.status_name(), result.error_msg.as_slice()),
                ("PermanentFailure", &b"builder failed"[..])
            );
            assert_eq!(result.stop_time, if version.at_least(29) { 1_795_246_093 } else { 0 }, "{version}");
        }
    }
}

#[test]
fn query_ops_follow_their_version_gates() {
    for minor in [16u8, 21, 22, 26, 27, 34] {
        let version = ProtocolVersion::new(1, minor);
        let mut c = Conversation::new(version, ProtocolVersion::NIX_2_8);
        // SetOptions with overrides (≥ 1.12).
        let out = c.op(19);
        for v in [0, 0, 0, 7, 1, 0, 0, 0, 0, 0, 0, 1] {
            put_u64(out, v);
        }
        put_u64(out, 1);
        put_bytes(out, b"sandbox");
        put_bytes(out, b"false");
        c.last();
        // QuerySubstitutablePathInfos: a list < 1.22, a map path → CA ≥ 1.22.
        let out = c.op(30);
        put_u64(out, 1);
        put_bytes(out, PATH);
        if version.at_least(22) {
            put_bytes(out, b"");
        }
        put_u64(c.last(), 1);
        put_bytes(&mut c.s2c, PATH);
        put_bytes(&mut c.s2c, b"");
        put_bytes_list(&mut c.s2c, &[PATH]);
        put_u64(&mut c.s2c, 10);
        put_u64(&mut c.s2c, 20);
        // QueryValidPaths: the substitute flag ≥ 1.27.
        put_bytes_list(c.op(31), &[PATH]);
        if version.at_least(27) {
            put_bool(&mut c.c2s, false);
        }
        put_bytes_list::<&[u8]>(c.last(), &[]);
        // QueryPathInfo: the valid flag ≥ 1.17 (both versions here have it).
        put_bytes(c.op(26), PATH);
        put_bool(c.last(), true);
        unkeyed_path_info(&mut c.s2c, version);
        // QueryMissing, QueryReferrers, EnsurePath, AddIndirectRoot, QueryDerivationOutputMap.
        put_bytes_list(c.op(40), &[PATH]);
        let out = c.last();
        put_bytes_list(out, &[PATH]);
        put_bytes_list::<&[u8]>(out, &[]);
        put_bytes_list::<&[u8]>(out, &[]);
        put_u64(out, 0);
        put_u64(out, 0);
        put_bytes(c.op(6), PATH);
        put_bytes_list(c.last(), &[PATH]);
        put_bytes(c.op(10), PATH);
        put_u64(c.last(), 1);
        put_bytes(c.op(12), b"/tmp/result");
        put_u64(c.last(), 1);
        put_bytes(c.op(41), PATH);
        let out = c.last();
        put_u64(out, 1);
        put_bytes(out, b"out");
        put_bytes(out, b"/nix/store/x-out");
        // AddTextToStore.
        let out = c.op(8);
        put_bytes(out, b"hello.drv");
        put_bytes(out, b"Derive(...)");
        put_bytes_list::<&[u8]>(out, &[]);
        put_bytes(c.last(), PATH);
        let events = walk(&c);
        let (requests, replies) = ops_and_replies(&events);
        assert_eq!(requests.len(), 10, "{version}");
        assert_eq!(requests, replies, "{version}");
        let verbosity = events.iter().find_map(|e| match e {
            Event::Request { request, .. } => request.verbosity,
            _ => None,
        });
        assert_eq!(verbosity, Some(Verbosity::Vomit));
    }
}

#[test]
fn an_error_ends_the_op_without_a_reply() {
    for minor in [19u8, 25, 26, 34] {
        let version = ProtocolVersion::new(1, minor);
        let mut c = Conversation::new(version, ProtocolVersion::NIX_2_8);
        let out = c.op(9); // BuildPaths
        put_bytes_list(out, &[b"/nix/store/x.drv!out"]);
        if version.at_least(15) {
            put_u64(out, 0);
        }
        let report = ErrorReport {
            level: Verbosity::Error,
            message: b"build failed".to_vec(),
            traces: vec![],
            exit_status: 100,
        };
        TunnelLogger::new(version, Verbosity::Info).error(&mut c.s2c, &report);
        put_bytes(c.op(11), PATH);
        put_u64(c.last(), 1);
        let events = walk(&c);
        let (requests, replies) = ops_and_replies(&events);
        assert_eq!((requests, replies), (vec![Op::BuildPaths, Op::AddTempRoot], vec![Op::AddTempRoot]), "{version}");
    }
}

/// Answers the daemon's STDERR_READ requests for `data`, as Nix's client does: each answer is a string of
/// at most the requested length.
fn serve_reads(c: &mut Conversation, data: &[u8], desired_len: usize) {
    for piece in data.chunks(desired_len) {
        Message::Read { desired_len: desired_len as u64 }.encode(&mut c.s2c);
        put_bytes(&mut c.c2s, piece);
    }
}

/// `nix-store --export`'s format for one path around `nar`: 1, NAR, magic, path, references, deriver,
/// no signature, then 0 (`export-import.cc`).
fn export_stream(nar: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u64(&mut out, 1);
    out.extend_from_slice(nar);
    put_u64(&mut out, 0x4558_494e);
    put_bytes(&mut out, PATH);
    put_bytes_list::<&[u8]>(&mut out, &[]);
    put_bytes(&mut out, b"");
    put_u64(&mut out, 0);
    put_u64(&mut out, 0);
    out
}

#[test]
fn add_to_store_nar_at_1_21_and_1_22_streams_through_read_answers() {
    for minor in [21u8, 22] {
        let version = ProtocolVersion::new(1, minor);
        let mut c = Conversation::new(version, ProtocolVersion::NIX_2_8);
        let out = c.op(39); // AddToStoreNar: path, path info, repair, dontCheckSigs; no tail
        put_bytes(out, PATH);
        unkeyed_path_info(out, version);
        put_bool(out, false);
        put_bool(out, true);
        // The daemon pulls the NAR in pieces, and may log in between.
        let nar = small_nar();
        serve_reads(&mut c, &nar[..100], 32);
        let logger = TunnelLogger::new(version, Verbosity::Info);
        logger.log(&mut c.s2c, Verbosity::Info, b"adding path");
        serve_reads(&mut c, &nar[100..], 64);
        c.last(); // no reply
        put_bytes(c.op(11), PATH); // AddTempRoot proves the observer is still in sync
        put_u64(c.last(), 1);
        let events = walk(&c);
        let (requests, replies) = ops_and_replies(&events);
        assert_eq!(requests, vec![Op::AddToStoreNar, Op::AddTempRoot], "{version}");
        assert_eq!(replies, requests, "{version}");
        let reads = events.iter().filter(|e| matches!(e, Event::Message { message: Message::Read { .. }, .. })).count();
        assert_eq!(reads, 100usize.div_ceil(32) + (nar.len() - 100).div_ceil(64), "{version}");
    }
}

#[test]
fn an_empty_reply_at_the_end_of_the_stream_ends_the_op_at_once() {
    // As a relay sees it: each side's message in its own chunk, in causal order; the op (AddToStoreNar at
    // 1.22) has no reply, and nothing follows its LAST.
    let version = ProtocolVersion::new(1, 22);
    let c = Conversation::new(version, ProtocolVersion::NIX_2_8);
    let mut observer = Observer::default();
    observer.feed_client(&c.c2s);
    observer.feed_daemon(&c.s2c);
    let mut chunk = Vec::new();
    put_u64(&mut chunk, 39);
    put_bytes(&mut chunk, PATH);
    unkeyed_path_info(&mut chunk, version);
    put_bool(&mut chunk, false);
    put_bool(&mut chunk, true);
    observer.feed_client(&chunk);
    let nar = small_nar();
    for piece in nar.chunks(200) {
        chunk.clear();
        Message::Read { desired_len: 200 }.encode(&mut chunk);
        observer.feed_daemon(&chunk);
        chunk.clear();
        put_bytes(&mut chunk, piece);
        observer.feed_client(&chunk);
    }
    chunk.clear();
    Message::Last.encode(&mut chunk);
    observer.feed_daemon(&chunk);
    let events: Vec<_> = std::iter::from_fn(|| observer.poll_event()).collect();
    assert!(
        matches!(events.last(), Some(Event::Reply { op: Op::AddToStoreNar, .. })),
        "no reply event: {:?}",
        events.last()
    );
}

#[test]
fn import_paths_and_export_path_move_data_through_read_and_write() {
    let version = ProtocolVersion::NIX_2_8;
    let mut c = Conversation::new(version, version);
    let export = export_stream(&small_nar());
    // ImportPaths: no arguments; the export stream comes through READ answers; the reply lists the paths.
    c.op(27);
    serve_reads(&mut c, &export, 40);
    put_bytes_list(c.last(), &[PATH]);
    // ExportPath: path and the obsolete sign flag; the export comes back as STDERR_WRITE; the reply is 1.
    let out = c.op(16);
    put_bytes(out, PATH);
    put_u64(out, 0);
    for piece in export[8..export.len() - 8].chunks(50) {
        Message::Write(piece.to_vec()).encode(&mut c.s2c);
    }
    put_u64(c.last(), 1);
    put_bytes(c.op(11), PATH); // AddTempRoot
    put_u64(c.last(), 1);
    let events = walk(&c);
    let expected = vec![Op::ImportPaths, Op::ExportPath, Op::AddTempRoot];
    assert_eq!(ops_and_replies(&events), (expected.clone(), expected));
    let written: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message { op: Some(Op::ExportPath), message: Message::Write(data), .. } => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(written, export[8..export.len() - 8]);
    let export_targets = events.iter().find_map(|e| match e {
        Event::Request { request, .. } if request.op == Op::ExportPath => Some(request.targets.clone()),
        _ => None,
    });
    assert_eq!(export_targets, Some(vec![PATH.to_vec()]));
}

#[test]
fn a_long_list_arriving_in_small_pieces_is_walked_once() {
    let version = ProtocolVersion::NIX_2_8;
    let mut c = Conversation::new(version, version);
    let paths: Vec<Vec<u8>> =
        (0..3000).map(|i| format!("/nix/store/{i:032}-p{}", "x".repeat(i % 9)).into_bytes()).collect();
    let out = c.op(31); // QueryValidPaths: paths, substitute flag; the reply lists the valid ones
    put_bytes_list(out, &paths);
    put_bool(out, false);
    put_bytes_list(c.last(), &paths);
    put_bytes(c.op(11), PATH);
    put_u64(c.last(), 1);

    let mut observer = Observer::default();
    let mut events = Vec::new();
    // Each direction in 24-byte pieces, c2s first: every piece completes at most one more path.
    for piece in c.c2s.chunks(24) {
        observer.feed_client(piece);
        events.extend(std::iter::from_fn(|| observer.poll_event()));
    }
    for piece in c.s2c.chunks(24) {
        observer.feed_daemon(piece);
        events.extend(std::iter::from_fn(|| observer.poll_event()));
    }
    assert_eq!(
        ops_and_replies(&events),
        (vec![Op::QueryValidPaths, Op::AddTempRoot], vec![Op::QueryValidPaths, Op::AddTempRoot])
    );
    let Some(Event::Request { request, .. }) = events.iter().find(|e| matches!(e, Event::Request { .. })) else {
        panic!("{events:?}")
    };
    assert_eq!(request.target_count, 3000);
    assert_eq!(request.targets[..], paths[..16]);
    // Parsed again from the start on every piece, the lists would cost ~ n²/2 / 24 bytes of walking
    // (tens of MB here); resumed, about their own size.
    for direction in [Direction::ClientToDaemon, Direction::DaemonToClient] {
        let total = observer.consumed(direction);
        let work = observer.parse_work(direction);
        assert!(work < 3 * total, "{direction:?}: walked {work} bytes to parse {total}");
    }
}

#[test]
fn ops_the_observer_cannot_follow_mark_the_connection_out_of_sync() {
    let version = ProtocolVersion::NIX_2_8;
    let mut c = Conversation::new(version, version);
    put_bytes(c.op(99), PATH); // no such op
    let mut observer = Observer::default();
    observer.feed_client(&c.c2s);
    observer.feed_daemon(&c.s2c);
    let events: Vec<_> = std::iter::from_fn(|| observer.poll_event()).collect();
    let Some(Event::OutOfSync { direction, reason, .. }) = events.last() else { panic!("{events:?}") };
    assert_eq!(*direction, Direction::ClientToDaemon);
    assert!(reason.contains("Op99") && reason.contains("1.34"), "{reason}");
}
