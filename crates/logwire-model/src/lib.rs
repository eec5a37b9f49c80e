//! # logwire-model: one record shape for four protocols
//!
//! Every capture source in logwire (HAProxy SPOP, the Nix daemon's logging channel, qlog, g3proxy logs)
//! turns what it sees into [`Record`]s. A record is one row: a time, the protocol it came from, what kind
//! of thing it is, which trace (connection, session, task) it belongs to, optional span links, a name, a
//! level, typed attributes and an optional body. Nothing here does I/O; the store crate persists records
//! and the protocol crates produce them.
//!
//! ## Spans
//! A span is a pair of records with the same `(source, trace_id, span_id)`: a [`Kind::SpanStart`] and a
//! [`Kind::SpanEnd`]. The store's `spans` view joins the two and computes the duration. A producer that
//! learns both ends at once (SPOP learns the start when a NOTIFY arrives and the end when its ACK leaves)
//! emits both records together with [`Record::span_pair`].
//!
//! ## Mapping per protocol
//! | protocol | trace_id | span | event / log |
//! |---|---|---|---|
//! | SPOP | `<engine-id or peer>/<stream-id>`: one HAProxy stream | one NOTIFY→ACK processing (`spoe:<event>` or the first message name), attrs: stream_id, frame_id, status, timings | each message (`name` = message name) with its typed args in `attrs.args`, and the actions returned in `attrs.actions` |
//! | Nix | relay connection | activity START/STOP, parent = parent activity | RESULT → event; NEXT → log; ERROR → event |
//! | qlog | connection (group_id / ODCID) | connection lifetime | each qlog event, normalised name |
//! | g3 | task_id | task lifecycle | escape/resolve records linked by task_id |
//!
//! Attribute values are JSON values with their natural types: integers stay numbers, IP addresses are
//! text, binary data is written as `{"hex": "…"}` by [`binary_value`] so that it stays readable and
//! lossless.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Typed attributes of a record (a JSON object).
pub type Attrs = Map<String, Value>;

/// Which protocol a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Spop,
    Nix,
    Qlog,
    G3,
}

impl Source {
    pub const ALL: [Source; 4] = [Source::Spop, Source::Nix, Source::Qlog, Source::G3];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Spop => "spop",
            Source::Nix => "nix",
            Source::Qlog => "qlog",
            Source::G3 => "g3",
        }
    }
}

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SpanStart,
    SpanEnd,
    Event,
    Log,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SpanStart => "span_start",
            Kind::SpanEnd => "span_end",
            Kind::Event => "event",
            Kind::Log => "log",
        }
    }
}

/// Severity, on the usual five-step scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Error for parsing the textual names of [`Source`], [`Kind`] and [`Level`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName(pub String);

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown name {:?}", self.0)
    }
}

impl std::error::Error for UnknownName {}

macro_rules! impl_text {
    ($ty:ty, [$($v:expr),*]) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                [$($v),*]
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName(s.to_string()))
            }
        }
    };
}

impl_text!(Source, [Source::Spop, Source::Nix, Source::Qlog, Source::G3]);
impl_text!(Kind, [Kind::SpanStart, Kind::SpanEnd, Kind::Event, Kind::Log]);
impl_text!(Level, [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error]);

/// One row of the model. See the crate docs for what each protocol puts where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    pub source: Source,
    pub kind: Kind,
    /// The connection, session or task this record belongs to.
    pub trace_id: String,
    pub span_id: Option<String>,
    pub parent_id: Option<String>,
    pub name: String,
    pub level: Option<Level>,
    pub attrs: Attrs,
    pub body: Option<String>,
}

impl Record {
    /// A record with empty links, attrs and body.
    pub fn new(time_ns: i64, source: Source, kind: Kind, trace_id: impl Into<String>, name: impl Into<String>) -> Self {
        Record {
            time_ns,
            source,
            kind,
            trace_id: trace_id.into(),
            span_id: None,
            parent_id: None,
            name: name.into(),
            level: None,
            attrs: Attrs::new(),
            body: None,
        }
    }

    /// An event inside a span.
    pub fn event(time_ns: i64, source: Source, trace_id: impl Into<String>, name: impl Into<String>) -> Self {
        Record::new(time_ns, source, Kind::Event, trace_id, name)
    }

    pub fn with_span(mut self, span_id: impl Into<String>) -> Self {
        self.span_id = Some(span_id.into());
        self
    }

    pub fn with_parent(mut self, parent_id: impl Into<String>) -> Self {
        self.parent_id = Some(parent_id.into());
        self
    }

    pub fn with_level(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }

    pub fn with_attr(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attrs.insert(key.into(), value.into());
        self
    }

    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Both records of a span whose start and end are already known. Start attrs go on the start record,
    /// end attrs (status, results) on the end record; the `spans` view merges them.
    #[allow(clippy::too_many_arguments)]
    pub fn span_pair(
        source: Source,
        trace_id: impl Into<String>,
        span_id: impl Into<String>,
        name: impl Into<String>,
        start_ns: i64,
        end_ns: i64,
        start_attrs: Attrs,
        end_attrs: Attrs,
    ) -> [Record; 2] {
        let trace_id = trace_id.into();
        let span_id = span_id.into();
        let name = name.into();
        let mut start =
            Record::new(start_ns, source, Kind::SpanStart, trace_id.clone(), name.clone()).with_span(span_id.clone());
        start.attrs = start_attrs;
        let mut end = Record::new(end_ns, source, Kind::SpanEnd, trace_id, name).with_span(span_id);
        end.attrs = end_attrs;
        [start, end]
    }
}

/// Now, in nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// How binary data is written into attrs: `{"hex": "<lowercase hex>"}` plus `text` when the bytes are
/// printable UTF-8, so a person can read it and a program can recover the exact bytes.
pub fn binary_value(bytes: &[u8]) -> Value {
    let mut map = Map::new();
    map.insert("hex".into(), Value::String(hex(bytes)));
    if let Ok(s) = std::str::from_utf8(bytes) {
        if s.chars().all(|c| !c.is_control() || c == '\r' || c == '\n' || c == '\t') {
            map.insert("text".into(), Value::String(s.to_string()));
        }
    }
    Value::Object(map)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Source::ALL {
            assert_eq!(s.as_str().parse::<Source>().unwrap(), s);
        }
        assert_eq!("span_end".parse::<Kind>().unwrap(), Kind::SpanEnd);
        assert!("bogus".parse::<Level>().is_err());
    }

    #[test]
    fn binary_is_hex_and_text_when_printable() {
        let v = binary_value(b"ab\x00");
        assert_eq!(v["hex"], "616200");
        assert!(v.get("text").is_none());
        let v = binary_value(b"GET /");
        assert_eq!(v["text"], "GET /");
    }

    #[test]
    fn span_pair_links_both_ends() {
        let [s, e] = Record::span_pair(Source::Spop, "t", "s1", "n", 10, 25, Attrs::new(), Attrs::new());
        assert_eq!(s.kind, Kind::SpanStart);
        assert_eq!(e.kind, Kind::SpanEnd);
        assert_eq!(s.span_id, e.span_id);
        assert_eq!(e.time_ns - s.time_ns, 15);
    }
}
