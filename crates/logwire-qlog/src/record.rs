//! qlog events to logwire records: one trace per connection (the group id, else the file and trace
//! index), one `event` record per qlog event under its normalised name, with the normalised data as
//! attrs. The version the file was written in and the original name are kept in attrs.
//!
//! [`Connections`] adds the connection's lifetime as one span (`quic:connection`): it starts at the
//! connection's first event and ends at `quic:connection_closed`, or at its last event when the input
//! ends without one; the end carries what the connection did (packets and bytes each way, losses, the
//! QUIC version). Each event record names that span as its `span_id`.

use crate::header::{Header, Trace};
use crate::number::lenient_u64;
use crate::reader::Event;
use logwire_model::{Attrs, Kind, Level, Record, Source};
use serde_json::Value;
use std::collections::HashMap;

/// The name of the connection-lifetime span.
pub const CONNECTION_SPAN: &str = "quic:connection";

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

/// The span id of a trace's connection span: its file and trace index, so that the client's and the
/// server's file of one connection (same group id, so same trace) are two spans.
pub fn span_id(event: &Event<'_>, file_label: &str) -> String {
    format!("{file_label}#{}", event.trace)
}

/// What one open connection has done so far.
#[derive(Debug, Default)]
struct Connection {
    last_ns: i64,
    events: u64,
    packets_sent: u64,
    packets_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
    packets_lost: u64,
    version: Option<Value>,
}

/// The connection-lifetime spans of the events seen so far (see the module docs). Sans-IO: feed it each
/// event record as it is made; it adds the span records to the same batch.
#[derive(Debug, Default)]
pub struct Connections {
    open: HashMap<(String, String), Connection>,
    /// Connections already ended by `quic:connection_closed`: later events do not reopen them.
    closed: std::collections::HashSet<(String, String)>,
}

impl Connections {
    pub fn new() -> Connections {
        Connections::default()
    }

    /// Accounts `record` (made by [`event_record`] for `event`, with its span id set); pushes the span's
    /// start when the connection is first seen and its end at `quic:connection_closed`.
    pub fn observe(&mut self, header: &Header, trace: &Trace, record: &Record, out: &mut Vec<Record>) {
        let Some(span_id) = &record.span_id else { return };
        let key = (record.trace_id.clone(), span_id.clone());
        if self.closed.contains(&key) {
            return;
        }
        let conn = match self.open.get_mut(&key) {
            Some(c) => c,
            None => {
                let mut attrs = Attrs::new();
                if let Some(vp) = trace.vantage_point_type() {
                    attrs.insert("vantage_point".into(), Value::from(vp));
                }
                if let Some(name) = trace.fields.get("vantage_point").and_then(|v| v.get("name")) {
                    attrs.insert("vantage_point_name".into(), name.clone());
                }
                attrs.insert("group_id".into(), Value::from(record.trace_id.as_str()));
                let common = trace.fields.get("common_fields");
                if let Some(odcid) = common.and_then(|c| c.get("ODCID").or_else(|| c.get("odcid"))) {
                    attrs.insert("odcid".into(), odcid.clone());
                }
                attrs.insert("qlog_version".into(), Value::from(header.version.as_str()));
                let mut start =
                    Record::new(record.time_ns, Source::Qlog, Kind::SpanStart, &record.trace_id, CONNECTION_SPAN)
                        .with_span(span_id.as_str());
                start.attrs = attrs;
                out.push(start);
                self.open.entry(key.clone()).or_default()
            }
        };
        conn.last_ns = conn.last_ns.max(record.time_ns);
        conn.events += 1;
        let data = record.attrs.get("data");
        let raw_length = || data.and_then(|d| d.get("raw")).and_then(|r| r.get("length")).and_then(lenient_u64);
        let header_version = || data.and_then(|d| d.get("header")).and_then(|h| h.get("version")).cloned();
        match record.name.as_str() {
            "quic:packet_sent" => {
                conn.packets_sent += 1;
                conn.bytes_sent += raw_length().unwrap_or(0);
                conn.version = conn.version.take().or_else(header_version);
            }
            "quic:packet_received" => {
                conn.packets_received += 1;
                conn.bytes_received += raw_length().unwrap_or(0);
                conn.version = conn.version.take().or_else(header_version);
            }
            "quic:packet_lost" => conn.packets_lost += 1,
            "quic:version_information" => {
                if let Some(v) = data.and_then(|d| d.get("chosen_version")) {
                    conn.version = Some(v.clone());
                }
            }
            "quic:connection_closed" => {
                if let Some(conn) = self.open.remove(&key) {
                    out.push(end_record(&key, conn, "connection_closed", data));
                }
                self.closed.insert(key);
            }
            _ => {}
        }
    }

    /// Ends every open connection at its last event (the input ended without `quic:connection_closed`).
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        let mut open: Vec<_> = self.open.drain().collect();
        open.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, conn) in open {
            out.push(end_record(&key, conn, "last_event", None));
            self.closed.insert(key);
        }
    }

    /// Connections started and not yet ended.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }
}

fn end_record(key: &(String, String), c: Connection, ended_by: &str, closed: Option<&Value>) -> Record {
    let mut end =
        Record::new(c.last_ns, Source::Qlog, Kind::SpanEnd, &key.0, CONNECTION_SPAN).with_span(key.1.as_str());
    let a = &mut end.attrs;
    a.insert("ended_by".into(), Value::from(ended_by));
    a.insert("events".into(), Value::from(c.events));
    a.insert("packets_sent".into(), Value::from(c.packets_sent));
    a.insert("packets_received".into(), Value::from(c.packets_received));
    a.insert("bytes_sent".into(), Value::from(c.bytes_sent));
    a.insert("bytes_received".into(), Value::from(c.bytes_received));
    a.insert("packets_lost".into(), Value::from(c.packets_lost));
    if let Some(v) = c.version {
        a.insert("version".into(), v);
    }
    if let Some(d) = closed {
        a.insert("close".into(), d.clone());
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_span_per_connection_with_its_counters() {
        let text = "\u{1e}{\"qlog_version\":\"0.3\",\"qlog_format\":\"JSON-SEQ\",\"trace\":{\"vantage_point\":{\"type\":\"client\"},\"common_fields\":{\"group_id\":\"ab\",\"time_format\":\"relative\",\"reference_time\":0}}}\n\
            \u{1e}{\"time\":1,\"name\":\"transport:packet_sent\",\"data\":{\"header\":{\"packet_type\":\"initial\",\"version\":\"1\",\"packet_size\":1200}}}\n\
            \u{1e}{\"time\":2,\"name\":\"transport:packet_received\",\"data\":{\"header\":{\"packet_type\":\"1RTT\"},\"raw\":{\"length\":45}}}\n\
            \u{1e}{\"time\":3,\"name\":\"recovery:packet_lost\",\"data\":{\"header\":{\"packet_type\":\"1RTT\"}}}\n\
            \u{1e}{\"time\":7,\"name\":\"transport:connection_closed\",\"data\":{\"owner\":\"local\",\"trigger\":\"clean\"}}\n\
            \u{1e}{\"time\":9,\"name\":\"transport:packet_sent\",\"data\":{\"header\":{\"packet_type\":\"1RTT\"}}}\n";
        let mut reader = crate::Reader::new(text.as_bytes()).unwrap();
        let anchor = Anchor { first_event_ns: 1_000_000_000, first_time_ms: 1.0 };
        let (mut out, mut conns) = (Vec::new(), Connections::new());
        while let Some(e) = reader.next() {
            let e = e.unwrap();
            let trace = &reader.traces[e.trace];
            let mut r = event_record(&reader.header, trace, &e, &trace_id(&e, trace, "f"), &anchor);
            r.span_id = Some(span_id(&e, "f"));
            conns.observe(&reader.header, trace, &r, &mut out);
            out.push(r);
        }
        conns.finish(&mut out);
        let spans: Vec<&Record> = out.iter().filter(|r| r.name == CONNECTION_SPAN).collect();
        assert_eq!(spans.len(), 2, "one start, one end: {spans:#?}");
        let (start, end) = (spans[0], spans[1]);
        assert_eq!((start.kind, end.kind), (Kind::SpanStart, Kind::SpanEnd));
        assert_eq!((start.trace_id.as_str(), start.span_id.as_deref()), ("ab", Some("f#0")));
        assert_eq!(end.span_id, start.span_id);
        assert_eq!((start.time_ns, end.time_ns), (1_000_000_000, 1_006_000_000), "ends at connection_closed");
        assert_eq!(start.attrs["vantage_point"], "client");
        let want = serde_json::json!({"ended_by": "connection_closed", "events": 4, "packets_sent": 1,
            "packets_received": 1, "bytes_sent": 1200, "bytes_received": 45, "packets_lost": 1, "version": "1",
            "close": {"initiator": "local", "trigger": "clean"}});
        assert_eq!(Value::Object(end.attrs.clone()), want);
        // Without connection_closed, the end is the last event.
        let (mut out2, mut conns) = (Vec::new(), Connections::new());
        let r = Record::event(5, Source::Qlog, "x", "quic:packet_sent").with_span("g#0");
        let h = crate::Header::from_fields(serde_json::Map::new(), crate::Serialization::Seq);
        let t = crate::Trace::from_fields(serde_json::Map::new(), &h.version);
        conns.observe(&h, &t, &r, &mut out2);
        assert_eq!(conns.open_count(), 1);
        conns.finish(&mut out2);
        assert_eq!(out2[1].attrs["ended_by"], "last_event");
        assert_eq!(out2[1].time_ns, 5);
    }
}
