//! qlog events to logwire records: one trace per connection (the group id, else the file and trace
//! index), one `event` record per qlog event under its normalised name, with the normalised data as
//! attrs. The version the file was written in and the original name are kept in attrs.

use crate::header::{Header, Trace};
use crate::reader::Event;
use logwire_model::{Attrs, Level, Record, Source};
use serde_json::Value;

/// Where a trace's relative times are anchored when its file has no real clock (ngtcp2's
/// `reference_time: 0`, quinn 0.11): ns since the epoch of the trace's first event.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    pub first_event_ns: i64,
    pub first_time_ms: f64,
}

/// The record of one event.
pub fn event_record(header: &Header, trace: &Trace, event: &Event<'_>, trace_id: &str, anchor: &Anchor) -> Record {
    let time_ns = match event.epoch_ms(trace) {
        Some(ms) => (ms * 1e6) as i64,
        None => anchor.first_event_ns + ((event.time_ms - anchor.first_time_ms) * 1e6) as i64,
    };
    let mut attrs = Attrs::new();
    attrs.insert("data".into(), event.data(trace));
    attrs.insert("time_ms".into(), Value::from(event.time_ms));
    if event.original_name != event.name {
        attrs.insert("original_name".into(), Value::from(event.original_name.as_ref()));
    }
    attrs.insert("qlog_version".into(), Value::from(header.version.as_str()));
    if let Some(vp) = trace.vantage_point_type() {
        attrs.insert("vantage_point".into(), Value::from(vp));
    }
    for (k, v) in &event.extra {
        attrs.insert(format!("event_{k}"), serde_json::from_str(v.get()).unwrap_or(Value::Null));
    }
    let level = match event.name.as_ref() {
        "loglevel:error" => Some(Level::Error),
        "loglevel:warning" | "quic:packet_lost" | "quic:packet_dropped" => Some(Level::Warn),
        "loglevel:info" => Some(Level::Info),
        "loglevel:debug" => Some(Level::Debug),
        "loglevel:verbose" => Some(Level::Trace),
        _ => None,
    };
    let mut r = Record::event(time_ns, Source::Qlog, trace_id, event.name.as_ref());
    r.attrs = attrs;
    r.level = level;
    r
}

/// The trace id of an event: its connection's group id, else `<file label>#<trace index>`.
pub fn trace_id(event: &Event<'_>, trace: &Trace, file_label: &str) -> String {
    match event.group(trace) {
        Some(g) => g.to_string(),
        None => format!("{file_label}#{}", event.trace),
    }
}
