//! Mapping what the [`crate::observer::Observer`] sees on one connection to logwire records
//! (DESIGN.md "Nix" row):
//!
//! - each op is a span `nix:op:<Op>` from its request to its reply or error;
//! - each activity is a span `nix:<ActivityType>`, its parent the parent activity when the daemon says
//!   so, otherwise the op it happened in (daemon activities have parent 0);
//! - results are events `nix:result:<ResultType>` on the activity's span (`span_id` `act-<activity id>`);
//!   attrs hold only the typed fields, so a BuildLogLine (its line is the body) has empty attrs: at a
//!   million lines a build, a JSON map per line was most of the decoder's CPU. Consecutive log lines of
//!   one activity that arrive within [`JOIN_WINDOW_NS`] of the first are one event (body: the lines joined
//!   by `\n`; `attrs.lines`: how many; `attrs.last_ns`: when the last arrived): a store row per line cost
//!   ≈ 1.2 µs of CPU per line, and a log-heavy build through `logwire serve` was 40 % slower for it (see
//!   `join_log_line`);
//! - STDERR_NEXT is a log record; STDERR_ERROR an error event with its traces; losing sync a warning.
//!
//! Strings are bytes on the wire: attrs hold them as text when they are UTF-8, else as
//! [`logwire_model::binary_value`].

use std::collections::HashMap;

use logwire_model::{binary_value, Attrs, Kind, Level, Record, Source};
use serde_json::Value;

use crate::logger::{
    ActivityType, ActivityView, ErrorMessage, FieldRef, FieldsRef, MessageRef, ResultType, ResultView, Verbosity,
};
use crate::observer::{Direction, Event, EventRef};
use crate::ops::Op;

/// Bytes as an attr value: a string when UTF-8, `{hex, text?}` otherwise.
pub fn bytes_value(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => binary_value(bytes),
    }
}

/// Nix's verbosity on logwire's five-step scale.
pub fn level_of(verbosity: Verbosity) -> Level {
    match verbosity {
        Verbosity::Error => Level::Error,
        Verbosity::Warn => Level::Warn,
        Verbosity::Notice | Verbosity::Info => Level::Info,
        Verbosity::Talkative | Verbosity::Chatty => Level::Debug,
        Verbosity::Debug | Verbosity::Vomit | Verbosity::Unknown(_) => Level::Trace,
    }
}

fn activity_span(id: u64) -> String {
    format!("act-{id}")
}

fn fields_value(fields: &FieldsRef<'_>) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|f| match f {
                FieldRef::Int(v) => Value::from(v),
                FieldRef::String(s) => bytes_value(s),
            })
            .collect(),
    )
}

/// The attrs of a START_ACTIVITY's span.
fn activity_attrs(
    id: u64,
    level: Verbosity,
    activity_type: ActivityType,
    text: &[u8],
    fields: &FieldsRef<'_>,
    attrs: &mut Attrs,
) {
    attrs.insert("activity_id".into(), id.into());
    attrs.insert("activity_type".into(), activity_type.to_wire().into());
    attrs.insert("verbosity".into(), level.to_wire().into());
    if !text.is_empty() {
        attrs.insert("text".into(), bytes_value(text));
    }
    match fields.activity_view(activity_type) {
        Some(ActivityView::Build { drv_path, machine, round, nr_rounds }) => {
            attrs.insert("drv_path".into(), bytes_value(drv_path));
            attrs.insert("machine".into(), bytes_value(machine));
            attrs.insert("round".into(), round.into());
            attrs.insert("nr_rounds".into(), nr_rounds.into());
        }
        Some(ActivityView::CopyPath { path, src_uri, dst_uri }) => {
            attrs.insert("path".into(), bytes_value(path));
            attrs.insert("src_uri".into(), bytes_value(src_uri));
            attrs.insert("dst_uri".into(), bytes_value(dst_uri));
        }
        Some(ActivityView::FileTransfer { uri }) => {
            attrs.insert("uri".into(), bytes_value(uri));
        }
        Some(ActivityView::Substitute { path, substituter }) => {
            attrs.insert("path".into(), bytes_value(path));
            attrs.insert("substituter".into(), bytes_value(substituter));
        }
        Some(ActivityView::QueryPathInfo { path, cache_uri }) => {
            attrs.insert("path".into(), bytes_value(path));
            attrs.insert("cache_uri".into(), bytes_value(cache_uri));
        }
        Some(ActivityView::PostBuildHook { drv_path }) => {
            attrs.insert("drv_path".into(), bytes_value(drv_path));
        }
        Some(ActivityView::FetchToStore { src_path }) => {
            attrs.insert("src_path".into(), bytes_value(src_path));
        }
        Some(ActivityView::NoFields) => {}
        None => {
            attrs.insert("fields".into(), fields_value(fields));
        }
    }
}

/// `view` is `fields.result_view(..)`, computed once by the caller (which also looks at it for log lines).
fn result_attrs(view: Option<ResultView<'_>>, fields: &FieldsRef<'_>, attrs: &mut Attrs) -> Option<String> {
    let mut body = None;
    match view {
        Some(ResultView::BuildLogLine { line } | ResultView::PostBuildLogLine { line }) => {
            body = Some(text_body(line, attrs))
        }
        Some(ResultView::SetPhase { phase }) => {
            attrs.insert("phase".into(), bytes_value(phase));
        }
        Some(ResultView::Progress { done, expected, running, failed }) => {
            attrs.insert("done".into(), done.into());
            attrs.insert("expected".into(), expected.into());
            attrs.insert("running".into(), running.into());
            attrs.insert("failed".into(), failed.into());
        }
        Some(ResultView::SetExpected { activity_type, expected }) => {
            attrs.insert("expected_type".into(), activity_type.label().into());
            attrs.insert("expected".into(), expected.into());
        }
        Some(ResultView::FileLinked { size, blocks }) => {
            attrs.insert("size".into(), size.into());
            attrs.insert("blocks".into(), blocks.into());
        }
        Some(ResultView::UntrustedPath { path } | ResultView::CorruptedPath { path }) => {
            attrs.insert("path".into(), bytes_value(path));
        }
        Some(ResultView::FetchStatus { text }) => {
            attrs.insert("text".into(), bytes_value(text));
        }
        Some(ResultView::FetchToStore { store_path }) => {
            attrs.insert("store_path".into(), bytes_value(store_path));
        }
        None => {
            attrs.insert("fields".into(), fields_value(fields));
        }
    }
    body
}

struct OpSpan {
    span_id: String,
    op: Op,
}

/// A log line as a record body: the text when it is UTF-8 (the common case, checked once), else the lossy
/// text with the exact bytes kept in `attrs.bytes`.
fn text_body(line: &[u8], attrs: &mut Attrs) -> String {
    match std::str::from_utf8(line) {
        Ok(text) => text.to_owned(),
        Err(_) => {
            attrs.insert("bytes".into(), binary_value(line));
            String::from_utf8_lossy(line).into_owned()
        }
    }
}

/// How long after an event's first log line later lines of the same activity may still join it. The
/// relay hands its records to the store every 20 ms ([`crate::runtime::BATCH_DELAY`]) anyway, so joining
/// within that window delays nothing; `attrs.last_ns` keeps when the last line arrived.
pub const JOIN_WINDOW_NS: i64 = 20_000_000;

/// A joined body stops growing at this many bytes: the next line starts a new event.
pub const JOIN_BODY_MAX: usize = 64 * 1024;

/// Most bytes reserved ahead when a second line joins an event's body (past it, the body grows as usual).
const JOIN_RESERVE_MAX: usize = 4096;

/// Appends one more log line to a joined body.
fn push_line(body: &mut String, line: &str) {
    body.push('\n');
    body.push_str(line);
}

/// An activity between its START and STOP: names computed once, cloned into each of its records.
struct OpenActivity {
    name: String,
    span_id: String,
}

/// Turns one connection's observer events into records.
pub struct ConnectionRecorder {
    trace_id: String,
    ops_seen: u64,
    current_op: Option<OpSpan>,
    /// Open activities by id (for their results' span ids, and for closing them when the connection ends).
    activities: HashMap<u64, OpenActivity>,
    /// `nix:result:<type>` by result type, so a log line's record name is a copy, not a `format!`.
    result_names: HashMap<u64, String>,
    /// The last result type's name and the last result's span id: a build's log lines repeat both, and
    /// each is a pure function of its key, so this one-entry cache never goes stale. It saves two SipHash
    /// lookups per line.
    last_result_name: Option<(u64, String)>,
    last_span_id: Option<(u64, String)>,
}

impl ConnectionRecorder {
    pub fn new(trace_id: impl Into<String>) -> Self {
        ConnectionRecorder {
            trace_id: trace_id.into(),
            ops_seen: 0,
            current_op: None,
            activities: HashMap::new(),
            result_names: HashMap::new(),
            last_result_name: None,
            last_span_id: None,
        }
    }

    fn result_name(&mut self, result_type: ResultType) -> String {
        let wire = result_type.to_wire();
        match &self.last_result_name {
            Some((last, name)) if *last == wire => name.clone(),
            _ => {
                let name = self
                    .result_names
                    .entry(wire)
                    .or_insert_with(|| format!("nix:result:{}", result_type.label()))
                    .clone();
                self.last_result_name = Some((wire, name.clone()));
                name
            }
        }
    }

    /// `act-<id>`, formatted once per run of results on the same activity.
    fn activity_span_id(&mut self, id: u64) -> String {
        match &self.last_span_id {
            Some((last, span_id)) if *last == id => span_id.clone(),
            _ => {
                let span_id = activity_span(id);
                self.last_span_id = Some((id, span_id.clone()));
                span_id
            }
        }
    }

    /// Appends `line` to `previous` when that is a log-line event of the same type and activity whose first
    /// line arrived at most [`JOIN_WINDOW_NS`] before this one, holding text lines only and less than
    /// [`JOIN_BODY_MAX`] bytes with it; true when it did.
    ///
    /// Its body is the lines joined by `\n` in wire order; once there are two or more, `attrs.lines` counts
    /// them and `attrs.last_ns` is the arrival time of the last (`time_ns` stays the first's). A line that
    /// is not UTF-8 or holds a `\n` itself is never joined, so splitting a body at `\n` gives back exactly
    /// the lines the daemon sent. Only the record just before (`previous`, the last one still waiting for
    /// the sink) is ever extended, so nothing is reordered. A log-heavy build writes far fewer rows this
    /// way: in the relay bench, 1 M lines came in ≈ 136 k reads, and joining only within a read still meant
    /// a row per read, 0.25 s of the store writer's CPU per build.
    fn join_log_line(
        &self,
        previous: Option<&mut Record>,
        time_ns: i64,
        result_type: ResultType,
        id: u64,
        line: &[u8],
    ) -> bool {
        let Some(previous) = previous else { return false };
        // The one-entry caches hold the name and span id of the last result recorded; the previous record
        // is that result only if both match it.
        let (Some((last_type, name)), Some((last_id, span_id))) = (&self.last_result_name, &self.last_span_id) else {
            return false;
        };
        if previous.kind != Kind::Event
            || !(0..=JOIN_WINDOW_NS).contains(&time_ns.saturating_sub(previous.time_ns))
            || *last_type != result_type.to_wire()
            || *last_id != id
            || previous.name != *name
            || previous.span_id.as_deref() != Some(span_id.as_str())
        {
            return false;
        }
        let Ok(line) = std::str::from_utf8(line) else { return false };
        let Some(body) = previous.body.as_mut() else { return false };
        if body.len() + 1 + line.len() > JOIN_BODY_MAX || memchr::memchr(b'\n', line.as_bytes()).is_some() {
            return false;
        }
        match previous.attrs.len() {
            // A single line so far: it must be text without a newline of its own.
            0 => {
                if memchr::memchr(b'\n', body.as_bytes()).is_some() {
                    return false;
                }
                // A read usually carries several lines (≈ 8 in the relay bench): room for them now instead
                // of a reallocation and copy at every doubling. Capped, so a long line is not multiplied.
                body.reserve((8 * (line.len() + 1)).min(JOIN_RESERVE_MAX));
                push_line(body, line);
                previous.attrs.insert("lines".into(), 2.into());
                previous.attrs.insert("last_ns".into(), time_ns.into());
            }
            // Joined already: `lines` and `last_ns`, found in one pass over the two.
            2 => {
                let (mut count, mut last_ns) = (None, None);
                for (key, value) in previous.attrs.iter_mut() {
                    match key.as_str() {
                        "lines" => count = Some(value),
                        "last_ns" => last_ns = Some(value),
                        _ => {}
                    }
                }
                let (Some(count), Some(last_ns)) = (count, last_ns) else { return false };
                let Some(lines) = count.as_u64() else { return false };
                *count = (lines + 1).into();
                *last_ns = time_ns.into();
                push_line(body, line);
            }
            _ => return false,
        }
        true
    }

    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    fn record(&self, time_ns: i64, kind: Kind, name: impl Into<String>) -> Record {
        Record::new(time_ns, Source::Nix, kind, self.trace_id.clone(), name)
    }

    fn op_span_id(&self) -> Option<String> {
        self.current_op.as_ref().map(|op| op.span_id.clone())
    }

    fn end_op(&mut self, time_ns: i64, ok: bool, mut attrs: Attrs, out: &mut Vec<Record>) {
        if let Some(op) = self.current_op.take() {
            attrs.insert("ok".into(), ok.into());
            let mut end = self.record(time_ns, Kind::SpanEnd, format!("nix:op:{}", op.op.name())).with_span(op.span_id);
            end.attrs = attrs;
            out.push(end);
        }
    }

    /// Appends the records for `event`, observed at `time_ns`.
    pub fn on_event(&mut self, event: &Event, time_ns: i64, out: &mut Vec<Record>) {
        match event {
            Event::Handshake { client, daemon, negotiated } => {
                let mut r = self
                    .record(time_ns, Kind::Event, "nix:handshake")
                    .with_level(Level::Debug)
                    .with_attr("client_version", client.version.to_string())
                    .with_attr("daemon_version", daemon.version.to_string())
                    .with_attr("protocol", negotiated.to_string());
                if !daemon.nix_version.is_empty() {
                    r = r.with_attr("nix_version", bytes_value(&daemon.nix_version));
                }
                if negotiated.at_least(35) {
                    r = r.with_attr("trusted", daemon.trusted.to_wire());
                }
                if negotiated.at_least(38) {
                    let features: Vec<Value> = crate::handshake::common_features(&client.features, &daemon.features)
                        .iter()
                        .map(|f| bytes_value(f))
                        .collect();
                    r = r.with_attr("features", features);
                }
                out.push(r);
            }
            Event::Request { c2s_offset, request } => {
                // A request while another op is open means its reply was never seen; close it first.
                self.end_op(time_ns, false, Attrs::new(), out);
                self.ops_seen += 1;
                let span_id = format!("op-{}", self.ops_seen);
                let mut r = self
                    .record(time_ns, Kind::SpanStart, format!("nix:op:{}", request.op.name()))
                    .with_span(span_id.clone())
                    .with_attr("op", request.op.to_wire())
                    .with_attr("c2s_offset", *c2s_offset);
                if !request.targets.is_empty() {
                    let targets: Vec<Value> = request.targets.iter().map(|t| bytes_value(t)).collect();
                    r = r.with_attr("targets", targets).with_attr("target_count", request.target_count);
                }
                if let Some(v) = request.verbosity {
                    r = r.with_attr("verbosity", v.to_wire());
                }
                out.push(r);
                self.current_op = Some(OpSpan { span_id, op: request.op });
            }
            Event::Reply { reply, .. } => {
                let mut attrs = Attrs::new();
                if let Some(v) = reply.value {
                    attrs.insert("value".into(), v.into());
                }
                if !reply.build_results.is_empty() {
                    let results: Vec<Value> = reply
                        .build_results
                        .iter()
                        .map(|b| {
                            serde_json::json!({
                                "path": bytes_value(&b.path),
                                "status": b.status_name(),
                                "error": bytes_value(&b.error_msg),
                                "times_built": b.times_built,
                                "start_time": b.start_time,
                                "stop_time": b.stop_time,
                            })
                        })
                        .collect();
                    attrs.insert("build_results".into(), results.into());
                    if reply.build_result_count > reply.build_results.len() as u64 {
                        attrs.insert("build_result_count".into(), reply.build_result_count.into());
                    }
                }
                self.end_op(time_ns, true, attrs, out);
            }
            Event::Message { message, .. } => self.on_message(&message.as_ref(), time_ns, out),
            Event::OutOfSync { direction, offset, reason } => {
                let direction = match direction {
                    Direction::ClientToDaemon => "client_to_daemon",
                    Direction::DaemonToClient => "daemon_to_client",
                };
                out.push(
                    self.record(time_ns, Kind::Event, "nix:out_of_sync")
                        .with_level(Level::Warn)
                        .with_attr("direction", direction)
                        .with_attr("offset", *offset)
                        .with_body(format!("lost sync with the connection: {reason}; bytes are still relayed")),
                );
            }
        }
    }

    /// Appends the records for a borrowed event (the relay's path: [`crate::observer::Observer::feed_with`]).
    pub fn on_event_ref(&mut self, event: &EventRef<'_>, time_ns: i64, out: &mut Vec<Record>) {
        match event {
            EventRef::Message { message, .. } => self.on_message(message, time_ns, out),
            EventRef::Other(event) => self.on_event(event, time_ns, out),
        }
    }

    fn on_message(&mut self, message: &MessageRef<'_>, time_ns: i64, out: &mut Vec<Record>) {
        match *message {
            MessageRef::StartActivity { id, level, activity_type, text, fields, parent } => {
                let name = format!("nix:{}", activity_type.label());
                let span_id = activity_span(id);
                let mut r = self
                    .record(time_ns, Kind::SpanStart, name.clone())
                    .with_span(span_id.clone())
                    .with_level(level_of(level));
                if parent != 0 {
                    r = r.with_parent(activity_span(parent));
                } else if let Some(op) = self.op_span_id() {
                    r = r.with_parent(op);
                }
                activity_attrs(id, level, activity_type, text, &fields, &mut r.attrs);
                out.push(r);
                self.activities.insert(id, OpenActivity { name, span_id });
            }
            MessageRef::StopActivity { id } => {
                let (name, span_id) = match self.activities.remove(&id) {
                    Some(open) => (open.name, open.span_id),
                    None => ("nix:activity".to_string(), activity_span(id)),
                };
                out.push(self.record(time_ns, Kind::SpanEnd, name).with_span(span_id));
            }
            MessageRef::Result { id, result_type, fields } => {
                let view = fields.result_view(result_type);
                if let Some(ResultView::BuildLogLine { line } | ResultView::PostBuildLogLine { line }) = view {
                    if self.join_log_line(out.last_mut(), time_ns, result_type, id, line) {
                        return;
                    }
                }
                let name = self.result_name(result_type);
                let mut r = self.record(time_ns, Kind::Event, name);
                r.span_id = Some(self.activity_span_id(id));
                r.body = result_attrs(view, &fields, &mut r.attrs);
                out.push(r);
            }
            MessageRef::Next(text) => {
                let text = text.strip_suffix(b"\n").unwrap_or(text);
                let mut r = self.record(time_ns, Kind::Log, "nix:log").with_level(Level::Info);
                r.span_id = self.op_span_id();
                r.body = Some(text_body(text, &mut r.attrs));
                out.push(r);
            }
            MessageRef::Error(ref error) => {
                let mut r = self
                    .record(time_ns, Kind::Event, "nix:error")
                    .with_level(Level::Error)
                    .with_body(String::from_utf8_lossy(error.message()).into_owned());
                r.span_id = self.op_span_id();
                match error {
                    ErrorMessage::Legacy { exit_status, .. } => {
                        r = r.with_attr("exit_status", *exit_status);
                    }
                    ErrorMessage::Structured { level, traces, .. } => {
                        let traces: Vec<Value> = traces.iter().map(|t| bytes_value(t)).collect();
                        r = r.with_attr("verbosity", level.to_wire()).with_attr("traces", traces);
                    }
                }
                r = r.with_attr("message", bytes_value(error.message()));
                out.push(r);
                self.end_op(time_ns, false, Attrs::new(), out);
            }
            MessageRef::Read { .. } | MessageRef::Write(_) | MessageRef::Last => {}
        }
    }

    /// Closes what is still open when the connection ends.
    pub fn on_close(&mut self, time_ns: i64, out: &mut Vec<Record>) {
        let mut open: Vec<(u64, OpenActivity)> = self.activities.drain().collect();
        open.sort_by_key(|(id, _)| *id);
        for (_, activity) in open {
            out.push(
                self.record(time_ns, Kind::SpanEnd, activity.name)
                    .with_span(activity.span_id)
                    .with_attr("closed_by", "disconnect"),
            );
        }
        let mut attrs = Attrs::new();
        attrs.insert("closed_by".into(), "disconnect".into());
        self.end_op(time_ns, false, attrs, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logger::{Field, Message, StartActivity};
    use crate::ops::{Request, Tail};

    fn start(id: u64, parent: u64, activity_type: ActivityType, fields: Vec<Field>) -> Event {
        Event::Message {
            s2c_offset: 0,
            end: 0,
            op: Some(Op::BuildPaths),
            message: Message::StartActivity(StartActivity {
                id,
                level: Verbosity::Info,
                activity_type,
                text: b"t".to_vec(),
                fields,
                parent,
            }),
        }
    }

    #[test]
    fn activities_hang_under_their_parent_or_the_op() {
        let mut recorder = ConnectionRecorder::new("c1");
        let mut out = Vec::new();
        let request = Request {
            op: Op::BuildPaths,
            targets: vec![b"/nix/store/x.drv!out".to_vec()],
            target_count: 1,
            verbosity: None,
            tail: Tail::None,
        };
        recorder.on_event(&Event::Request { c2s_offset: 0, request }, 1, &mut out);
        let build_fields =
            vec![Field::String(b"/nix/store/x.drv".to_vec()), Field::String(vec![]), Field::Int(1), Field::Int(1)];
        recorder.on_event(&start(5, 0, ActivityType::Build, build_fields), 2, &mut out);
        // A builder's `@nix {"action":"start","type":101}` becomes a daemon activity whose parent is the Build.
        recorder.on_event(
            &start(6, 5, ActivityType::FileTransfer, vec![Field::String(b"https://x".to_vec())]),
            3,
            &mut out,
        );
        // A fork's activity type with odd fields is kept raw.
        recorder.on_event(&start(7, 0, ActivityType::Unknown(10113), vec![Field::Int(9)]), 4, &mut out);
        recorder.on_close(5, &mut out);

        let op = &out[0];
        assert_eq!(
            (op.kind, op.name.as_str(), op.span_id.as_deref()),
            (Kind::SpanStart, "nix:op:BuildPaths", Some("op-1"))
        );
        let build = &out[1];
        assert_eq!((build.name.as_str(), build.parent_id.as_deref()), ("nix:Build", Some("op-1")));
        assert_eq!(build.attrs["drv_path"], "/nix/store/x.drv");
        let transfer = &out[2];
        assert_eq!((transfer.span_id.as_deref(), transfer.parent_id.as_deref()), (Some("act-6"), Some("act-5")));
        assert_eq!(transfer.attrs["uri"], "https://x");
        let fork = &out[3];
        assert_eq!((fork.name.as_str(), &fork.attrs["fields"]), ("nix:type10113", &serde_json::json!([9])));
        // The connection closed with everything open: three activity ends and the op's.
        let ends: Vec<_> = out[4..].iter().map(|r| (r.kind, r.span_id.clone().unwrap_or_default())).collect();
        assert_eq!(ends.len(), 4);
        assert!(ends.iter().all(|(k, _)| *k == Kind::SpanEnd));
        assert_eq!(out.last().map(|r| r.attrs["ok"].clone()), Some(Value::Bool(false)));
    }

    fn result(id: u64, result_type: ResultType, line: &[u8]) -> Event {
        use crate::logger::ActivityResult;
        Event::Message {
            s2c_offset: 0,
            end: 0,
            op: Some(Op::BuildPaths),
            message: Message::Result(ActivityResult { id, result_type, fields: vec![Field::String(line.to_vec())] }),
        }
    }

    #[test]
    fn log_lines_close_in_time_are_one_event_that_splits_back_into_them() {
        let mut recorder = ConnectionRecorder::new("c1");
        let mut out = Vec::new();
        let line = ResultType::BuildLogLine;
        // One read (time 10): three lines of activity 5, then one of activity 6, then 5 again.
        for text in [&b"first"[..], b"", b"third"] {
            recorder.on_event(&result(5, line, text), 10, &mut out);
        }
        recorder.on_event(&result(6, line, b"other build"), 10, &mut out);
        recorder.on_event(&result(5, line, b"back"), 10, &mut out);
        // The next read, still inside the window of "back": it joins, and `last_ns` says when it came.
        recorder.on_event(&result(5, line, b"next read"), 11, &mut out);
        // A post-build line, a line with a newline of its own, a line that is not UTF-8: none of them joins
        // what came before.
        recorder.on_event(&result(5, ResultType::PostBuildLogLine, b"post"), 11, &mut out);
        recorder.on_event(&result(5, line, b"two\nparts"), 11, &mut out);
        recorder.on_event(&result(5, line, b"after the newline"), 11, &mut out);
        recorder.on_event(&result(5, line, b"\xff"), 11, &mut out);
        recorder.on_event(&result(5, line, b"after the bytes"), 11, &mut out);
        // The window counts from an event's first line: at 11 + JOIN_WINDOW_NS a line still joins "after
        // the bytes", one nanosecond later it starts a new event. An earlier time never joins.
        recorder.on_event(&result(5, line, b"window end"), 11 + JOIN_WINDOW_NS, &mut out);
        recorder.on_event(&result(5, line, b"past the window"), 12 + JOIN_WINDOW_NS, &mut out);
        recorder.on_event(&result(5, line, b"back in time"), 11, &mut out);

        let seen: Vec<_> = out
            .iter()
            .map(|r| (r.time_ns, r.name.as_str(), r.span_id.as_deref().unwrap(), r.body.as_deref().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                (10, "nix:result:BuildLogLine", "act-5", "first\n\nthird"),
                (10, "nix:result:BuildLogLine", "act-6", "other build"),
                (10, "nix:result:BuildLogLine", "act-5", "back\nnext read"),
                (11, "nix:result:PostBuildLogLine", "act-5", "post"),
                (11, "nix:result:BuildLogLine", "act-5", "two\nparts"),
                (11, "nix:result:BuildLogLine", "act-5", "after the newline"),
                (11, "nix:result:BuildLogLine", "act-5", "\u{fffd}"),
                (11, "nix:result:BuildLogLine", "act-5", "after the bytes\nwindow end"),
                (12 + JOIN_WINDOW_NS, "nix:result:BuildLogLine", "act-5", "past the window"),
                (11, "nix:result:BuildLogLine", "act-5", "back in time"),
            ]
        );
        // `lines` counts joined lines and `last_ns` is the last one's time; a single line keeps empty
        // attrs, a non-UTF-8 one its exact bytes.
        assert_eq!(out[0].attrs.get("lines"), Some(&Value::from(3)));
        assert_eq!(out[0].attrs.get("last_ns"), Some(&Value::from(10)));
        assert_eq!(out[2].attrs.get("lines"), Some(&Value::from(2)));
        assert_eq!(out[2].attrs.get("last_ns"), Some(&Value::from(11)));
        assert_eq!(out[7].attrs.get("last_ns"), Some(&Value::from(11 + JOIN_WINDOW_NS)));
        assert!(out[1].attrs.is_empty() && out[5].attrs.is_empty() && out[8].attrs.is_empty());
        assert_eq!(out[6].attrs["bytes"]["hex"], "ff");
        // A join never crosses into a record that is not a log line (here an activity's start).
        recorder.on_event(&start(5, 0, ActivityType::Build, vec![]), 11, &mut out);
        recorder.on_event(&result(5, line, b"after a start"), 11, &mut out);
        assert_eq!(out.last().unwrap().body.as_deref(), Some("after a start"));
    }

    #[test]
    fn a_joined_body_stops_growing_at_its_cap() {
        let mut recorder = ConnectionRecorder::new("c1");
        let mut out = Vec::new();
        let text = vec![b'x'; 1000];
        let lines = 3 * JOIN_BODY_MAX / text.len();
        for _ in 0..lines {
            recorder.on_event(&result(5, ResultType::BuildLogLine, &text), 10, &mut out);
        }
        assert!(out.len() >= 3, "{} events", out.len());
        let mut total = 0;
        for r in &out {
            let body = r.body.as_deref().unwrap();
            assert!(body.len() <= JOIN_BODY_MAX, "{} bytes", body.len());
            let n = body.split('\n').count();
            assert!(body.split('\n').all(|l| l.len() == text.len()));
            assert_eq!(r.attrs.get("lines").and_then(Value::as_u64).unwrap_or(1), n as u64);
            total += n;
        }
        assert_eq!(total, lines, "every line is in exactly one event");
    }

    #[test]
    fn non_utf8_bytes_survive_in_attrs() {
        assert_eq!(bytes_value(b"ok"), Value::String("ok".into()));
        assert_eq!(bytes_value(b"\xff")["hex"], "ff");
    }
}
