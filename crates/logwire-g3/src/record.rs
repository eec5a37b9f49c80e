//! [`G3Log`] → logwire [`Record`]s.
//!
//! | g3proxy record | records | trace_id | name |
//! |---|---|---|---|
//! | Task, `task_event = Finished` | a span pair: start at `start_at`, end at `start_at + total_time`, the final attrs on the end | task_id | `g3:task:<task_type>` |
//! | Task, other events (Created, Connected, Periodic, …Shutdown) | an event in that span (`parent_id` = task_id) at `start_at` + the elapsed time the record carries | task_id | `g3:task_event:<task_event>` |
//! | Escape | an event linked to its task (`parent_id` = task_id) | task_id | `g3:escape:<escape_type>` |
//! | Resolve (no task_id on the wire) | an event; linked to tasks by domain in the `g3_resolve_links` view | `resolve:<resolver_name>:<domain>` | `g3:resolve` |
//! | Inspect / Intercept | an event | task_id when present | `g3:inspect`, `g3:intercept:<intercept_type>` |
//!
//! Merging is stateless: every record maps on its own, so the merge survives restarts, reordering across
//! g3proxy's per-logger connections and imports split over files. The task's timeline is the span plus its
//! events (`g3_task_timeline` view). Attrs hold every typed field (durations in ns, `start_at` in ns), the
//! message in `msg`, nulls omitted, plus `untyped` when a value did not fit its type. Time comes from
//! `start_at`, never from the transport header; a record without one takes `fallback_ns` (the fluentd
//! EventTime, or the RFC 5424 header time, else the receive time).

use crate::log::{FieldName, G3Log, Origin, SyslogFormat};
use crate::schema::{LogType, Reason};
use crate::value::parse_timestamp;
use logwire_model::{Attrs, JsonObjectWriter, Kind, Level, Record, Source};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// The attrs of `log` written straight to JSON text: every typed field in wire order, nulls omitted, then
/// `msg` and `untyped`. A key that repeats keeps its last value, as [`G3Log::get`] reads it. With `start`,
/// the [`START_ATTRS`] members also go there, copied as rendered (one pass for both ends of a span).
/// `repeats` is [`has_repeated_keys`] of the log's fields.
fn render_attrs(log: &G3Log, mut start: Option<&mut JsonObjectWriter>, repeats: bool) -> JsonObjectWriter {
    let fields = &log.fields;
    let mut out = JsonObjectWriter::with_capacity(1024);
    // Rare (hostile or odd input): then each key is written at the place of its last copy.
    let last: Option<HashMap<&str, usize>> =
        repeats.then(|| fields.iter().enumerate().map(|(i, (k, _))| (k.as_ref(), i)).collect());
    for (i, (k, v)) in fields.iter().enumerate() {
        if v.is_null() {
            continue;
        }
        if (k == "msg" && !log.msg.is_empty()) || (k == "untyped" && !log.untyped.is_empty()) {
            continue;
        }
        if last.as_ref().is_some_and(|last| last.get(k.as_ref()) != Some(&i)) {
            continue;
        }
        match start.as_deref_mut() {
            Some(start) if START_ATTRS.contains(&k.as_ref()) => out.value_also(start, k, v),
            _ => out.value(k, v),
        };
    }
    if !log.msg.is_empty() {
        out.str("msg", &log.msg);
    }
    if !log.untyped.is_empty() {
        out.value("untyped", &Value::from(log.untyped.clone()));
    }
    out
}

/// The fields the mapping reads besides the attrs, taken in one pass over a record's fields; a key that
/// repeats keeps its last value, as [`G3Log::get`] reads it.
#[derive(Debug, Default)]
pub(crate) struct MappedFields<'a> {
    log_type: Option<Cow<'a, str>>,
    task_event: Option<Cow<'a, str>>,
    task_type: Option<Cow<'a, str>>,
    task_id: Option<Cow<'a, str>>,
    escape_type: Option<Cow<'a, str>>,
    resolver_name: Option<Cow<'a, str>>,
    domain: Option<Cow<'a, str>>,
    intercept_type: Option<Cow<'a, str>>,
    reason: Option<Cow<'a, str>>,
    start_ns: Option<i64>,
    total_time: Option<i64>,
    ready_time: Option<i64>,
    wait_time: Option<i64>,
}

impl<'a> MappedFields<'a> {
    /// Field `key` with its value seen as text and as an integer (each `None` when it is not one). The text
    /// is cloned only for the fields read here; only an owned one (a syslog value that held escapes)
    /// allocates.
    pub(crate) fn note(&mut self, key: &str, text: Option<&Cow<'a, str>>, int: Option<i64>) {
        match key {
            "log_type" => self.log_type = text.cloned(),
            "task_event" => self.task_event = text.cloned(),
            "task_type" => self.task_type = text.cloned(),
            "task_id" => self.task_id = text.cloned(),
            "escape_type" => self.escape_type = text.cloned(),
            "resolver_name" => self.resolver_name = text.cloned(),
            "domain" => self.domain = text.cloned(),
            "intercept_type" => self.intercept_type = text.cloned(),
            "reason" => self.reason = text.cloned(),
            "start_at" => self.start_ns = int,
            "total_time" => self.total_time = int,
            "ready_time" => self.ready_time = int,
            "wait_time" => self.wait_time = int,
            _ => {}
        }
    }

    pub(crate) fn log_type(&self) -> Option<&str> {
        self.log_type.as_deref()
    }

    /// Whether the record is a task's `Finished` one (then a span, whose start gets [`START_ATTRS`]).
    pub(crate) fn is_finished_task(&self) -> bool {
        self.log_type() == Some("Task") && self.task_event.as_deref().unwrap_or("Finished") == "Finished"
    }
}

/// Whether any key occurs twice: an open-addressing set on the stack, one probe per key in the usual case.
fn has_repeated_keys(fields: &[(FieldName, Value)]) -> bool {
    const SLOTS: usize = 128;
    if fields.len() > SLOTS / 2 {
        // Hostile input can carry many thousands of keys: a hash set keeps the check linear.
        let mut seen = std::collections::HashSet::with_capacity(fields.len());
        return !fields.iter().all(|(k, _)| seen.insert(k.as_ref()));
    }
    // Slots hold index + 1 of the field whose key is there (0 = empty).
    let mut slots = [0u8; SLOTS];
    for (i, (k, _)) in fields.iter().enumerate() {
        // A few bytes and the length: enough to spread g3proxy's key names; a collision only costs a compare.
        let b = k.as_bytes();
        let at = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
        let hash =
            ((b.len() as u64) ^ at(0) << 8 ^ at(2) << 16 ^ at(b.len() / 2) << 24 ^ at(b.len().wrapping_sub(1)) << 32)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                >> 32;
        let mut slot = (hash as usize) % SLOTS;
        loop {
            match slots[slot] {
                0 => {
                    slots[slot] = (i + 1) as u8;
                    break;
                }
                j if fields[usize::from(j) - 1].0 == *k => return true,
                _ => slot = (slot + 1) % SLOTS,
            }
        }
    }
    false
}

/// The records for one g3proxy log. `received_ns` is used only when the record has no `start_at` and no
/// fluentd EventTime.
pub fn to_records(log: &G3Log, received_ns: i64) -> Vec<Record> {
    let fallback_ns = || match &log.origin {
        Origin::Fluentd { time, .. } => time.as_ns(),
        Origin::Syslog(h)
            if matches!(h.format, SyslogFormat::Rfc5424Sd | SyslogFormat::Rfc5424Cee | SyslogFormat::Rfc5424Text) =>
        {
            parse_timestamp(&h.timestamp).unwrap_or(received_ns)
        }
        // RFC 3164 stamps local time without a year: not a usable time.
        Origin::Syslog(_) => received_ns,
    };
    let mut mapped = MappedFields::default();
    for (k, v) in &log.fields {
        mapped.note(k, v.as_str().map(Cow::Borrowed).as_ref(), v.as_i64());
    }
    let repeats = has_repeated_keys(&log.fields);
    let mut start_attrs = mapped.is_finished_task().then(|| JsonObjectWriter::with_capacity(256));
    let attrs = render_attrs(log, start_attrs.as_mut(), repeats);
    let mut out = Vec::with_capacity(2);
    map_records(&mapped, &log.msg, fallback_ns, attrs, start_attrs, &mut out);
    out
}

/// The mapping of the table above, from the fields it reads and the rendered attrs (`start_attrs` is
/// `Some` exactly for a finished task). Shared by [`to_records`] and the fused RFC 5424 path of
/// [`crate::syslog::decode_to_records`], so the two cannot drift apart.
pub(crate) fn map_records(
    mapped: &MappedFields<'_>,
    msg: &str,
    fallback_ns: impl FnOnce() -> i64,
    attrs: JsonObjectWriter,
    start_attrs: Option<JsonObjectWriter>,
    out: &mut Vec<Record>,
) {
    let text = |v: &Option<Cow<'_, str>>| v.as_deref().unwrap_or("").to_string();
    let body = || (!msg.is_empty()).then(|| msg.to_string());
    let task_id = || mapped.task_id.as_deref().map_or_else(|| "unknown-task".to_string(), str::to_string);
    match LogType::parse(mapped.log_type().unwrap_or("")) {
        LogType::Task => {
            let task_id = task_id();
            let start = mapped.start_ns.unwrap_or_else(fallback_ns);
            if let Some(start_attrs) = start_attrs {
                let end = start.saturating_add(mapped.total_time.unwrap_or(0));
                let name = format!("g3:task:{}", text(&mapped.task_type));
                let [mut s, mut e] =
                    Record::span_pair(Source::G3, &task_id, &task_id, name, start, end, Attrs::new(), Attrs::new());
                s.attrs_json = Some(start_attrs.finish());
                e.attrs_json = Some(attrs.finish());
                e.level = Some(match mapped.reason.as_deref().map(Reason::parse) {
                    Some(r) if !r.is_success() => Level::Warn,
                    _ => Level::Info,
                });
                e.body = body();
                out.extend([s, e]);
            } else {
                // The record's own elapsed time: what it measured when it was written.
                let at = start.saturating_add(
                    [mapped.total_time, mapped.ready_time, mapped.wait_time]
                        .into_iter()
                        .map(|t| t.unwrap_or(0))
                        .find(|&t| t > 0)
                        .unwrap_or(0),
                );
                let event = mapped.task_event.as_deref().unwrap_or("Finished");
                let r = Record::event(at, Source::G3, &task_id, format!("g3:task_event:{event}"))
                    .with_parent(task_id.clone())
                    .with_level(Level::Debug)
                    .with_attrs_json(attrs);
                out.push(r);
            }
        }
        LogType::Escape => {
            let task_id = task_id();
            let name = format!("g3:escape:{}", text(&mapped.escape_type));
            let mut r = Record::event(fallback_ns(), Source::G3, &task_id, name)
                .with_parent(task_id.clone())
                .with_level(Level::Warn)
                .with_attrs_json(attrs);
            r.body = body();
            out.push(r);
        }
        LogType::Resolve => {
            let trace = format!("resolve:{}:{}", text(&mapped.resolver_name), text(&mapped.domain));
            let mut r = Record::event(fallback_ns(), Source::G3, trace, "g3:resolve")
                .with_level(Level::Warn)
                .with_attrs_json(attrs);
            r.body = body();
            out.push(r);
        }
        other => {
            let name = match other {
                LogType::Inspect => "g3:inspect".to_string(),
                LogType::Intercept => format!("g3:intercept:{}", text(&mapped.intercept_type)),
                other => format!("g3:{}", other.as_str()),
            };
            let trace = mapped.task_id.as_deref().map_or_else(|| "g3".to_string(), str::to_string);
            let mut r = Record::new(mapped.start_ns.unwrap_or_else(fallback_ns), Source::G3, Kind::Event, trace, name)
                .with_attrs_json(attrs);
            r.body = body();
            out.push(r);
        }
    }
}

/// What a task span's start record carries; the end record has every field.
pub(crate) const START_ATTRS: [&str; 7] =
    ["server_type", "server_name", "task_type", "task_id", "start_at", "user", "escaper"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_keep_their_last_value_once() {
        let mut fields: Vec<(FieldName, Value)> =
            (0..40).map(|i| (format!("key_{i}").into(), Value::from(i))).collect::<Vec<_>>();
        assert!(!has_repeated_keys(&fields));
        fields.push(("key_7".into(), Value::from("last")));
        assert!(has_repeated_keys(&fields));
        let many: Vec<(FieldName, Value)> = (0..100).map(|i| (format!("k{}", i % 99).into(), Value::from(i))).collect();
        assert!(has_repeated_keys(&many));
        assert!(!has_repeated_keys(&many[..99]));

        let log = G3Log {
            fields,
            msg: String::new(),
            untyped: Vec::new(),
            origin: Origin::Fluentd { tag: "t".into(), time: crate::EventTime { secs: 0, nanos: 0 } },
        };
        let text = render_attrs(&log, None, has_repeated_keys(&log.fields)).finish();
        let attrs: Attrs = serde_json::from_str(&text).unwrap();
        assert_eq!(attrs.len(), 40);
        assert_eq!(attrs["key_7"], "last");
        assert_eq!(text.matches("\"key_7\"").count(), 1);
    }

    #[test]
    fn a_finished_task_start_holds_the_identifying_subset_of_its_end() {
        let fields: Vec<(FieldName, Value)> = vec![
            ("log_type".into(), "Task".into()),
            ("server_name".into(), "first".into()),
            ("task_type".into(), "TcpConnect".into()),
            ("task_id".into(), "0123456789abcdef0123456789abcdef".into()),
            ("user".into(), Value::Null),
            ("c_rd_bytes".into(), 146.into()),
            ("server_name".into(), "bind \"main\"".into()),
            ("task_event".into(), "Finished".into()),
            ("total_time".into(), 5_000.into()),
        ];
        let log = G3Log {
            fields,
            msg: "Upstream closed".into(),
            untyped: Vec::new(),
            origin: Origin::Fluentd { tag: "t".into(), time: crate::EventTime { secs: 0, nanos: 0 } },
        };
        let records = to_records(&log, 0);
        assert_eq!(records.len(), 2);
        let attrs = |r: &Record| serde_json::from_str::<Attrs>(r.attrs_json.as_deref().unwrap()).unwrap();
        let (start, end) = (attrs(&records[0]), attrs(&records[1]));
        // Only START_ATTRS, non-null, the repeated key with its last value, no message.
        // (Sorted: whether a JSON map keeps its order depends on serde_json's features in the build.)
        let mut keys: Vec<&str> = start.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["server_name", "task_id", "task_type"]);
        for key in keys {
            assert_eq!(start[key], end[key], "{key}");
        }
        assert_eq!(start["server_name"], "bind \"main\"");
        assert_eq!(end["msg"], "Upstream closed");
        assert_eq!(end["c_rd_bytes"], 146);
    }
}
