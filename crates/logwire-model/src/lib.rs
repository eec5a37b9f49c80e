//! # logwire-model: one record shape for four protocols
//!
//! Every capture source in logwire (HAProxy SPOP, the Nix daemon's logging channel, qlog, g3proxy logs)
//! turns what it sees into [`Record`]s. A record is one row: a time, the protocol it came from, what kind
//! of thing it is, which trace (connection, session, task) it belongs to, optional span links, a name, a
//! level, typed attributes and an optional body. Nothing here does I/O (one scheduling hint for logwire's
//! own threads aside, in [`sched`]); the store crate persists records and the protocol crates produce
//! them.
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
//! | Nix | relay connection | activity START/STOP, parent = parent activity | RESULT → event (an activity's log lines from one read: one event, lines joined by `\n`); NEXT → log; ERROR → event |
//! | qlog | connection (group_id / ODCID) | connection lifetime | each qlog event, normalised name |
//! | g3 | task_id | task lifecycle | escape/resolve records linked by task_id |
//!
//! Attribute values are JSON values with their natural types: integers stay numbers, IP addresses are
//! text, binary data is written as `{"hex": "…"}` by [`binary_value`] so that it stays readable and
//! lossless.

pub mod sched;

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
    /// The attrs already rendered as the text of one JSON object (see [`JsonObjectWriter`]), for producers on
    /// hot paths: the store writes this text as it is instead of serialising [`Record::attrs`], which must
    /// then be empty. Records read back from the store always come with `attrs` filled and this `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs_json: Option<String>,
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
            attrs_json: None,
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

    /// Attrs already rendered by a [`JsonObjectWriter`]; see [`Record::attrs_json`].
    pub fn with_attrs_json(mut self, object: JsonObjectWriter) -> Self {
        self.attrs_json = Some(object.finish());
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

/// Writes one JSON object straight to text, key by key, for [`Record::attrs_json`]: a producer that has its
/// values at hand (a decoded g3proxy record, a Nix log line) skips building an [`Attrs`] map that the store
/// would only serialise again — per record that map costs an allocation per key and value plus a tree.
///
/// Keys must be unique: the writer does not check (JSON readers disagree on which duplicate wins).
#[derive(Debug, Clone)]
pub struct JsonObjectWriter {
    out: String,
    empty: bool,
}

impl Default for JsonObjectWriter {
    fn default() -> Self {
        JsonObjectWriter::with_capacity(64)
    }
}

impl JsonObjectWriter {
    /// An empty object, with room for `bytes` of text.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut out = String::with_capacity(bytes.max(2));
        out.push('{');
        JsonObjectWriter { out, empty: true }
    }

    /// Whether no key has been written.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        write_json_str(&mut self.out, key);
        self.out.push(':');
    }

    /// A [`PlainKey`]: copied as it is, no scan for bytes to escape.
    fn plain_key(&mut self, key: PlainKey) {
        let key = key.as_str();
        self.out.reserve(key.len() + 4);
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    /// [`JsonObjectWriter::str`] under a [`PlainKey`].
    pub fn str_plain(&mut self, key: PlainKey, value: &str) -> &mut Self {
        self.plain_key(key);
        write_json_str(&mut self.out, value);
        self
    }

    /// [`JsonObjectWriter::u64`] under a [`PlainKey`].
    pub fn u64_plain(&mut self, key: PlainKey, value: u64) -> &mut Self {
        self.plain_key(key);
        self.out.push_str(itoa::Buffer::new().format(value));
        self
    }

    /// [`JsonObjectWriter::i64`] under a [`PlainKey`].
    pub fn i64_plain(&mut self, key: PlainKey, value: i64) -> &mut Self {
        self.plain_key(key);
        self.out.push_str(itoa::Buffer::new().format(value));
        self
    }

    /// [`JsonObjectWriter::bool`] under a [`PlainKey`].
    pub fn bool_plain(&mut self, key: PlainKey, value: bool) -> &mut Self {
        self.plain_key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        write_json_str(&mut self.out, value);
        self
    }

    pub fn i64(&mut self, key: &str, value: i64) -> &mut Self {
        self.key(key);
        self.out.push_str(itoa::Buffer::new().format(value));
        self
    }

    pub fn u64(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        self.out.push_str(itoa::Buffer::new().format(value));
        self
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// Any JSON value; strings, integers and booleans take the direct paths above.
    pub fn value(&mut self, key: &str, value: &Value) -> &mut Self {
        match value {
            Value::String(s) => self.str(key, s),
            Value::Bool(b) => self.bool(key, *b),
            Value::Number(n) if n.is_u64() => self.u64(key, n.as_u64().unwrap_or_default()),
            Value::Number(n) if n.is_i64() => self.i64(key, n.as_i64().unwrap_or_default()),
            other => {
                self.key(key);
                // Serialising a `Value` cannot fail (its map keys are strings).
                self.out.push_str(&serde_json::to_string(other).unwrap_or_default());
                self
            }
        }
    }

    /// [`JsonObjectWriter::value`] here, and the same member into `also`, copied rather than rendered
    /// twice (for an object that holds a subset of this one's members).
    pub fn value_also(&mut self, also: &mut JsonObjectWriter, key: &str, value: &Value) -> &mut Self {
        self.member_also(also, |out| {
            out.value(key, value);
        })
    }

    /// The one member `write` adds here, and the same member into `also`, copied rather than rendered twice.
    pub fn member_also(&mut self, also: &mut JsonObjectWriter, write: impl FnOnce(&mut Self)) -> &mut Self {
        let start = self.out.len() + usize::from(!self.empty);
        write(self);
        if self.out.len() <= start {
            return self;
        }
        if !also.empty {
            also.out.push(',');
        }
        also.empty = false;
        also.out.push_str(&self.out[start..]);
        self
    }

    /// The object's text.
    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// An object key that needs no JSON escape (no control character, `"` or backslash), so that
/// [`JsonObjectWriter`] copies it without scanning it: for the field names a producer knows when it is
/// built. [`PlainKey::new`] checks the key; in a `const`, at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainKey(&'static str);

impl PlainKey {
    /// Panics if `key` holds a byte JSON must escape.
    pub const fn new(key: &'static str) -> Self {
        let bytes = key.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(b >= 0x20 && b != b'"' && b != b'\\', "a PlainKey must need no JSON escape");
            i += 1;
        }
        PlainKey(key)
    }

    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

/// `s` as a JSON string literal, escaped as serde_json does (quotes, backslash and control characters).
/// Most keys and values need no escape at all: those are found eight bytes at a time and copied whole;
/// only the others go through serde_json's byte-by-byte escaper.
fn write_json_str(out: &mut String, s: &str) {
    if needs_json_escape(s.as_bytes()) {
        // Serialising a `&str` cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    } else {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Whether any byte is a control character (< 0x20), `"` or a backslash — the bytes JSON must escape.
fn needs_json_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // Per byte of `x`, the high bit of the result is set iff that byte is below `n` (n ≤ 0x80), and only
    // then ("Bit Twiddling Hacks", hasless); a zero byte is one below 1.
    let any_below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS != 0;
    let special = |x: u64| any_below(x, 0x20) || any_below(x ^ (ONES * 0x22), 1) || any_below(x ^ (ONES * 0x5c), 1);
    let word = |chunk: &[u8]| {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        u64::from_le_bytes(word)
    };
    if bytes.len() < 8 {
        return bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
    }
    let mut chunks = bytes.chunks_exact(8);
    if chunks.by_ref().any(|chunk| special(word(chunk))) {
        return true;
    }
    // The tail as the last eight bytes, overlapping the last whole word: no copy of a variable length.
    !chunks.remainder().is_empty() && special(word(&bytes[bytes.len() - 8..]))
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
    fn json_object_writer_matches_serde_json() {
        let mut w = JsonObjectWriter::default();
        assert!(w.is_empty());
        w.str("a\"b", "line\n\u{1}é").i64("neg", -5).u64("big", u64::MAX).bool("ok", true);
        w.value("list", &serde_json::json!([1, "x", null])).value("f", &serde_json::json!(1.5));
        assert!(!w.is_empty());
        let text = w.finish();
        let parsed: Attrs = serde_json::from_str(&text).unwrap();
        let expected = serde_json::json!({
            "a\"b": "line\n\u{1}é", "neg": -5, "big": u64::MAX, "ok": true, "list": [1, "x", null], "f": 1.5
        });
        assert_eq!(Value::Object(parsed), expected);
        assert_eq!(JsonObjectWriter::default().finish(), "{}");
        // Plain keys write what the escaping methods write for the same key.
        const PLAIN: PlainKey = PlainKey::new("client_addr");
        let mut plain = JsonObjectWriter::default();
        plain.str_plain(PLAIN, "a\"b").u64_plain(PLAIN, 7).i64_plain(PLAIN, -7).bool_plain(PLAIN, true);
        let mut escaping = JsonObjectWriter::default();
        escaping.str("client_addr", "a\"b").u64("client_addr", 7).i64("client_addr", -7).bool("client_addr", true);
        assert_eq!(plain.finish(), escaping.finish());
        assert!(std::panic::catch_unwind(|| PlainKey::new("a\"b")).is_err());
    }

    #[test]
    fn a_member_written_into_both_objects_is_the_same_text() {
        let (mut all, mut some) = (JsonObjectWriter::default(), JsonObjectWriter::default());
        all.u64("a", 1);
        all.value_also(&mut some, "b\"", &serde_json::json!("x\ny"));
        all.str("c", "z");
        all.value_also(&mut some, "d", &serde_json::json!([1, {"e": null}]));
        assert_eq!(all.finish(), r#"{"a":1,"b\"":"x\ny","c":"z","d":[1,{"e":null}]}"#);
        assert_eq!(some.finish(), r#"{"b\"":"x\ny","d":[1,{"e":null}]}"#);
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain ascii text that is long enough".into(),
            "ünïcödé → 漢字 🦀 and more".into(),
            "\u{7f}\u{80}\u{ff}".into(),
        ];
        // Each byte that must be escaped (and its neighbours that must not), at every offset of a word.
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}', ' ', '!', '#', '[', ']', '\u{7f}', 'é'] {
            for at in 0..17 {
                let mut s = "x".repeat(at);
                s.push(special);
                // At the end (in the padded tail word) and inside full words.
                cases.push(s.clone());
                s.push_str("tail-of-the-string");
                cases.push(s);
            }
        }
        for s in cases {
            let mut ours = String::new();
            write_json_str(&mut ours, &s);
            assert_eq!(ours, serde_json::to_string(&s).unwrap(), "{s:?}");
        }
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
