//! How SPOP maps into logwire's model (see `logwire-model`):
//!
//! - trace_id = `<engine-id or peer address>/<stream-id>`: one HAProxy stream (stream-ids are per
//!   HAProxy thread in ≤ 3.0, whose engine-id is per thread too; per connection in ≥ 3.1);
//! - one span per NOTIFY→ACK processing, `span_id` = `<frame-id>@<connection-id>`, named after the
//!   SPOE event when known, else `spoe:<first message name>`; start attrs: stream_id, frame_id,
//!   fragments, messages; end attrs: status ("ack" | "aborted" | "error"), actions count, handler and
//!   queue timings in ns;
//! - one event per message, `name` = message name, `attrs.args` = the typed args (IPs as text, ints as
//!   numbers, strings as text, binary as `{"hex","text"}`), `attrs.actions` = the actions returned.

use crate::data::TypedData;
use crate::handler::Notify;
use crate::message::Action;
use logwire_model::{binary_value, Attrs, Level, Record, Source};
use serde_json::{Map, Value};

/// Timings of one NOTIFY→ACK, wall clock in ns since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// When the frame's last byte was read.
    pub received_ns: i64,
    /// When the ACK was handed to the socket.
    pub acked_ns: i64,
    /// Time spent in the handler.
    pub handler_ns: i64,
}

/// How a NOTIFY ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Acked,
    /// The ACK did not fit max-frame-size; an empty ACK went out.
    AckTooBig,
    Aborted,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Acked => "ack",
            Outcome::AckTooBig => "ack_too_big",
            Outcome::Aborted => "aborted",
        }
    }
}

/// A typed SPOP value as a JSON value.
pub fn typed_to_json(v: &TypedData) -> Value {
    match v {
        TypedData::Null => Value::Null,
        TypedData::Bool(b) => Value::Bool(*b),
        TypedData::Int32(i) => Value::from(*i),
        TypedData::Uint32(i) => Value::from(*i),
        TypedData::Int64(i) => Value::from(*i),
        TypedData::Uint64(i) => Value::from(*i),
        TypedData::Ipv4(ip) => Value::String(ip.to_string()),
        TypedData::Ipv6(ip) => Value::String(ip.to_string()),
        TypedData::String(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => binary_value(b),
        },
        TypedData::Binary(b) => binary_value(b),
    }
}

/// An action as JSON: `{"action":"set-var","scope":"txn","name":"score","value":42,"type":"uint32"}`.
pub fn action_to_json(a: &Action) -> Value {
    let mut m = Map::new();
    match a {
        Action::SetVar { scope, name, value } => {
            m.insert("action".into(), "set-var".into());
            m.insert("scope".into(), scope.as_str().into());
            m.insert("name".into(), String::from_utf8_lossy(name).into_owned().into());
            m.insert("value".into(), typed_to_json(value));
            m.insert("type".into(), value.type_name().into());
        }
        Action::UnsetVar { scope, name } => {
            m.insert("action".into(), "unset-var".into());
            m.insert("scope".into(), scope.as_str().into());
            m.insert("name".into(), String::from_utf8_lossy(name).into_owned().into());
        }
    }
    Value::Object(m)
}

/// The records of one processed NOTIFY: a span (start + end, when `with_span`) and one event per
/// message. `origin` names the HAProxy side: its engine-id if it sent one, else the peer address.
pub fn notify_records(
    origin: &str,
    connection_id: u64,
    notify: &Notify,
    actions: &[Action],
    outcome: Outcome,
    timing: Timing,
    with_span: bool,
) -> Vec<Record> {
    let trace_id = format!("{origin}/{}", notify.stream_id);
    let span_id = format!("{}@{}", notify.frame_id, connection_id);
    let mut out = Vec::with_capacity(2 + notify.messages.len());
    let actions_json = Value::Array(actions.iter().map(action_to_json).collect());
    for m in &notify.messages {
        let mut args = Map::new();
        let mut types = Map::new();
        for (i, a) in m.args.iter().enumerate() {
            let key = if a.name.is_empty() { format!("arg{i}") } else { a.name_str().into_owned() };
            types.insert(key.clone(), a.value.type_name().into());
            args.insert(key, typed_to_json(&a.value));
        }
        let mut ev = Record::event(timing.received_ns, Source::Spop, trace_id.clone(), m.name_str().into_owned())
            .with_span(span_id.clone())
            .with_level(Level::Info);
        ev.attrs.insert("args".into(), Value::Object(args));
        ev.attrs.insert("types".into(), Value::Object(types));
        ev.attrs.insert("actions".into(), actions_json.clone());
        out.push(ev);
    }
    if !with_span {
        return out;
    }
    let span_name = match notify.messages.first() {
        Some(m) => format!("spoe:{}", m.name_str()),
        None => "spoe:notify".to_string(),
    };
    let mut start = Attrs::new();
    start.insert("stream_id".into(), notify.stream_id.into());
    start.insert("frame_id".into(), notify.frame_id.into());
    start.insert("connection".into(), connection_id.into());
    start.insert("fragments".into(), notify.fragments.into());
    start.insert(
        "messages".into(),
        Value::Array(notify.messages.iter().map(|m| Value::String(m.name_str().into_owned())).collect()),
    );
    let mut end = Attrs::new();
    end.insert("status".into(), outcome.as_str().into());
    end.insert("actions".into(), actions.len().into());
    end.insert("handler_ns".into(), timing.handler_ns.into());
    let [mut s, mut e] =
        Record::span_pair(Source::Spop, trace_id, span_id, span_name, timing.received_ns, timing.acked_ns, start, end);
    s.level = Some(Level::Info);
    e.level = Some(if outcome == Outcome::Acked { Level::Info } else { Level::Warn });
    out.insert(0, s);
    out.push(e);
    out
}

/// A connection-level record (hello, disconnect, protocol error) on the trace of the connection.
pub fn connection_record(
    origin: &str,
    connection_id: u64,
    time_ns: i64,
    name: &str,
    level: Level,
    attrs: Attrs,
) -> Record {
    let mut r = Record::event(time_ns, Source::Spop, format!("{origin}/conn{connection_id}"), name).with_level(level);
    r.attrs = attrs;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Arg, Message, Scope};
    use bytes::Bytes;

    #[test]
    fn args_are_typed_in_attrs() {
        let n = Notify {
            stream_id: 0,
            frame_id: 1,
            engine_id: None,
            fragments: 1,
            messages: vec![Message::new(
                "check-request",
                vec![
                    Arg::new("ip", TypedData::Ipv4([127, 0, 0, 1].into())),
                    Arg::new("port", TypedData::Int64(5555)),
                    Arg::new("hdrs", TypedData::Binary(Bytes::from_static(b"\x04host"))),
                    Arg::new("", TypedData::Bool(true)),
                ],
            )],
        };
        let acts = [Action::set_var(Scope::Txn, "score", TypedData::Uint32(42))];
        let t = Timing { received_ns: 100, acked_ns: 150, handler_ns: 10 };
        let recs = notify_records("e1", 7, &n, &acts, Outcome::Acked, t, true);
        assert_eq!(notify_records("e1", 7, &n, &acts, Outcome::Acked, t, false).len(), 1);
        assert_eq!(recs.len(), 3);
        let ev = &recs[1];
        assert_eq!(ev.name, "check-request");
        assert_eq!(ev.trace_id, "e1/0");
        assert_eq!(ev.attrs["args"]["ip"], "127.0.0.1");
        assert_eq!(ev.attrs["args"]["port"], 5555);
        assert_eq!(ev.attrs["args"]["hdrs"]["hex"], "04686f7374");
        assert_eq!(ev.attrs["args"]["arg3"], true);
        assert_eq!(ev.attrs["types"]["hdrs"], "binary");
        assert_eq!(ev.attrs["actions"][0]["value"], 42);
        assert_eq!(recs[2].time_ns - recs[0].time_ns, 50);
    }
}
