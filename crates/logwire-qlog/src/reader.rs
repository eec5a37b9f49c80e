//! The reader: every qlog version, JSON-SEQ and contained JSON, borrowed and lazy.
//!
//! [`Reader::new`] sniffs the first non-blank byte (0x1E: JSON-SEQ; `{`: contained JSON), reads the
//! header and the traces, then yields [`Event`]s one at a time. An event borrows from the input: its name
//! is normalised (usually without allocating), its time is normalised to milliseconds since the trace's
//! reference, and its `data` is kept as the exact JSON text — validated, not built into a tree. Packet
//! events (the bulk of every file) are typed in the same pass by a strict reader (`fastread`) when they
//! fit its subset; everything else is typed on demand. [`Event::data`] and [`Event::typed`] /
//! [`Event::into_typed`] give the normalised tree or the typed event.
//!
//! JSON-SEQ records are split on RS (0x1E), never on newlines, so pretty-printed records work. A record
//! that does not parse (corrupt, truncated by a crash) yields a [`Damage`] with its record number and byte
//! offset, and reading goes on at the next RS.

use crate::error::{QlogError, Result};
use crate::fastread::FastKind;
use crate::header::{Header, Serialization, TimeFormat, Trace};
use crate::normalise;
use crate::number::LenientF64;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// The record separator of RFC 7464.
pub const RS: u8 = 0x1E;

/// One event, borrowed from the input.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Record number: in JSON-SEQ the header is record 0; in contained JSON the index in its trace.
    pub record: usize,
    /// Byte offset of the record in the input.
    pub offset: usize,
    /// Index of the trace in [`Reader::traces`].
    pub trace: usize,
    /// Milliseconds since the trace's reference time (units, `time_offset` and deltas applied); since the
    /// Unix epoch when the trace's times are absolute. See [`crate::TimeBase::epoch_ms`].
    pub time_ms: f64,
    /// The newest-draft name (see [`crate::normalise`]).
    pub name: Cow<'a, str>,
    /// The name as written.
    pub original_name: Cow<'a, str>,
    /// `data` exactly as written (validated JSON).
    pub data_raw: Option<&'a str>,
    /// The event's own `group_id`, as text.
    pub group_id: Option<Cow<'a, str>>,
    /// Every other top-level field, exactly as written (`tuple`, `time_format`, custom fields…).
    pub extra: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// The whole record, exactly as written.
    pub raw: &'a str,
    /// The typed data, when the reader built it while reading (packet events).
    typed_data: Option<Box<crate::EventData>>,
}

impl Event<'_> {
    /// The data as written, as a tree (`{}` when absent).
    pub fn data_as_written(&self) -> Value {
        self.data_raw.and_then(|r| serde_json::from_str(r).ok()).unwrap_or_else(|| Value::Object(Map::new()))
    }

    /// The data with newest-draft field names and units.
    pub fn data(&self, trace: &Trace) -> Value {
        let mut data = self.data_as_written();
        normalise::event_data(&self.name, &mut data, trace.rtt_in_seconds);
        data
    }

    /// The typed event (known names) or [`crate::EventData::Other`].
    pub fn typed(&self, trace: &Trace) -> crate::EventData {
        if let Some(t) = &self.typed_data {
            return (**t).clone();
        }
        crate::EventData::from_parts(&self.name, self.data(trace))
    }

    /// [`Event::typed`] without a copy of data the reader already typed.
    pub fn into_typed(self, trace: &Trace) -> crate::EventData {
        match self.typed_data {
            Some(t) => *t,
            None => crate::EventData::from_parts(&self.name, self.data(trace)),
        }
    }

    /// Time since the Unix epoch in ms, when the trace has a real clock.
    pub fn epoch_ms(&self, trace: &Trace) -> Option<f64> {
        trace.time.epoch_ms(self.time_ms)
    }

    /// The connection the event belongs to: its own `group_id`, else the trace's.
    pub fn group<'t>(&'t self, trace: &'t Trace) -> Option<&'t str> {
        self.group_id.as_deref().or(trace.group_id.as_deref())
    }
}

/// A record that could not be read; reading went on after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub record: usize,
    pub offset: usize,
    /// The record ends the input without being complete JSON (a crash while writing).
    pub truncated: bool,
    pub message: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.truncated { "truncated" } else { "damaged" };
        write!(f, "record {} at byte {} is {what}: {}", self.record, self.offset, self.message)
    }
}

enum Body<'a> {
    Seq { pos: usize },
    Contained { events: Vec<Vec<&'a RawValue>>, trace: usize, index: usize },
}

/// Reads a whole qlog file held in memory. See the module docs.
pub struct Reader<'a> {
    input: &'a [u8],
    pub header: Header,
    pub traces: Vec<Trace>,
    body: Body<'a>,
    next_record: usize,
}

/// Sniffs the serialisation from the first non-blank byte.
pub fn sniff(input: &[u8]) -> Result<Serialization> {
    match input.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(QlogError::Empty),
        Some(&RS) => Ok(Serialization::Seq),
        Some(b'{') => Ok(Serialization::Contained),
        Some(&other) => Err(QlogError::NotQlog(other)),
    }
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Result<Reader<'a>> {
        match sniff(input)? {
            Serialization::Seq => {
                let start = memchr::memchr(RS, input).unwrap_or(0) + 1;
                let end = memchr::memchr(RS, &input[start..]).map_or(input.len(), |i| start + i);
                let header_text =
                    std::str::from_utf8(&input[start..end]).map_err(|e| QlogError::HeaderJson(de::Error::custom(e)))?;
                let (header, trace) = seq_header(header_text)?;
                Ok(Reader { input, header, traces: vec![trace], body: Body::Seq { pos: end }, next_record: 1 })
            }
            Serialization::Contained => {
                let text = std::str::from_utf8(input).map_err(|e| QlogError::Contained {
                    line: 0,
                    column: e.valid_up_to(),
                    source: de::Error::custom(e),
                })?;
                let top: RawMap<'a> = serde_json::from_str(text).map_err(|source| QlogError::Contained {
                    line: source.line(),
                    column: source.column(),
                    source,
                })?;
                let mut fields = Map::new();
                let mut raw_traces = None;
                for (k, v) in top.0 {
                    if k == "traces" {
                        raw_traces = Some(v);
                    } else {
                        fields.insert(k.into_owned(), value_of(v));
                    }
                }
                let header = Header::from_fields(fields, Serialization::Contained);
                let raw_traces: Vec<&'a RawValue> =
                    raw_traces.and_then(|t| serde_json::from_str(t.get()).ok()).ok_or(QlogError::NoTraces)?;
                let mut traces = Vec::with_capacity(raw_traces.len());
                let mut events = Vec::with_capacity(raw_traces.len());
                for t in raw_traces {
                    let map: RawMap<'a> = serde_json::from_str(t.get()).unwrap_or_default();
                    let mut fields = Map::new();
                    let mut trace_events = Vec::new();
                    for (k, v) in map.0 {
                        if k == "events" {
                            trace_events = serde_json::from_str(v.get()).unwrap_or_default();
                        } else {
                            fields.insert(k.into_owned(), value_of(v));
                        }
                    }
                    traces.push(Trace::from_fields(fields, &header.version));
                    events.push(trace_events);
                }
                Ok(Reader {
                    input,
                    header,
                    traces,
                    body: Body::Contained { events, trace: 0, index: 0 },
                    next_record: 0,
                })
            }
        }
    }

    /// Reads everything: the events and the damage, in file order.
    pub fn read_all(mut self) -> (Header, Vec<Trace>, Vec<Event<'a>>, Vec<Damage>) {
        let mut events = Vec::new();
        let mut damage = Vec::new();
        for item in self.by_ref() {
            match item {
                Ok(e) => events.push(e),
                Err(d) => damage.push(d),
            }
        }
        (self.header, self.traces, events, damage)
    }

    fn next_seq(&mut self, pos: usize) -> Option<(std::result::Result<Event<'a>, Damage>, usize)> {
        let input = self.input;
        let mut start = pos;
        loop {
            if start >= input.len() {
                return None;
            }
            // `start` is at an RS (or the end of the header); skip it and any consecutive RS.
            if input[start] == RS {
                start += 1;
                continue;
            }
            let end = memchr::memchr(RS, &input[start..]).map_or(input.len(), |i| start + i);
            let bytes = &input[start..end];
            if bytes.iter().all(u8::is_ascii_whitespace) {
                start = end;
                continue;
            }
            let record = self.next_record;
            self.next_record += 1;
            let offset = start - 1;
            let result = match std::str::from_utf8(bytes) {
                Ok(text) => decode_event(text, &self.header, &mut self.traces[0], record, offset, 0)
                    .map_err(|(message, eof)| Damage { record, offset, truncated: eof && end == input.len(), message }),
                Err(e) => Err(Damage { record, offset, truncated: false, message: format!("not UTF-8: {e}") }),
            };
            return Some((result, end));
        }
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = std::result::Result<Event<'a>, Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Body::Seq { pos } = self.body {
            let (item, end) = self.next_seq(pos)?;
            self.body = Body::Seq { pos: end };
            return Some(item);
        }
        match &mut self.body {
            Body::Seq { .. } => None,
            Body::Contained { events, trace, index } => loop {
                let list = events.get(*trace)?;
                let Some(raw) = list.get(*index) else {
                    *trace += 1;
                    *index = 0;
                    continue;
                };
                let (t, record) = (*trace, *index);
                *index += 1;
                let offset = raw.get().as_ptr() as usize - self.input.as_ptr() as usize;
                return Some(
                    decode_event(raw.get(), &self.header, &mut self.traces[t], record, offset, t)
                        .map_err(|(message, _)| Damage { record, offset, truncated: false, message }),
                );
            },
        }
    }
}

/// A JSON-SEQ header record: the file's fields and its one trace.
pub fn seq_header(text: &str) -> Result<(Header, Trace)> {
    let mut fields: Map<String, Value> = match serde_json::from_str(text).map_err(QlogError::HeaderJson)? {
        Value::Object(m) => m,
        _ => return Err(QlogError::HeaderNotObject),
    };
    let trace_fields = match fields.remove("trace") {
        Some(Value::Object(t)) => t,
        _ => Map::new(),
    };
    let header = Header::from_fields(fields, Serialization::Seq);
    let trace = Trace::from_fields(trace_fields, &header.version);
    Ok((header, trace))
}

/// Decodes one event record (object or draft array) against its trace, advancing the trace's clock.
/// The error says what is wrong and whether the text simply ended early.
pub fn decode_event<'r>(
    text: &'r str,
    header: &Header,
    trace: &mut Trace,
    record: usize,
    offset: usize,
    trace_index: usize,
) -> std::result::Result<Event<'r>, (String, bool)> {
    let err = |e: serde_json::Error| (e.to_string(), e.is_eof());
    let old_names = header.old_names();
    // The typed events the one-pass reader knows. Metrics of an old-names file go through serde until
    // the file's RTT unit is known (quinn 0.11 writes seconds), then their RTTs are scaled here.
    let metrics_fast = !old_names || trace.rtt_unit_known;
    let fast_kind = |n: &str| match normalise::event_name(n, old_names).as_ref() {
        "quic:packet_sent" => Some(FastKind::PacketSent),
        "quic:packet_received" => Some(FastKind::PacketReceived),
        "quic:recovery_metrics_updated" if metrics_fast => Some(FastKind::RecoveryMetrics),
        _ => None,
    };
    let mut typed_data = None;
    let fields: RecordFields<'r> = if let Some(mut fast) = crate::fastread::fast_record(text, fast_kind) {
        if let crate::EventData::RecoveryMetricsUpdated(m) = &mut fast.typed {
            if trace.rtt_in_seconds {
                normalise::rtt_seconds_to_ms(m);
            }
        }
        typed_data = Some(Box::new(fast.typed));
        RecordFields {
            time: Some(LenientF64(fast.time)),
            name: Some(CowStr(Cow::Borrowed(fast.name))),
            data: Some(fast.data),
            ..RecordFields::default()
        }
    } else if first_non_blank(text) == Some(b'[') {
        let items: Vec<&'r RawValue> = serde_json::from_str(text).map_err(err)?;
        array_event(items, trace.event_fields.as_deref())
    } else {
        serde_json::from_str(text).map_err(err)?
    };
    let original_name = match (fields.name, fields.category, fields.event) {
        (Some(n), _, _) => n.0,
        (None, Some(c), Some(e)) => Cow::Owned(format!("{}:{}", c.0, e.0)),
        _ => return Err(("the event has no `name`".into(), false)),
    };
    let written = fields.time.ok_or_else(|| ("the event has no `time`".to_string(), false))?.0;
    let mut time_ms = written * trace.time.unit_ms + trace.time.offset_ms;
    let delta = match fields.time_format.as_ref().map(|f| f.0.as_ref()) {
        Some("delta") | Some("relative_to_previous_event") => true,
        Some(_) => false,
        None => trace.time.format == TimeFormat::Delta,
    };
    if delta {
        time_ms = trace.last_time_ms + written * trace.time.unit_ms;
    }
    trace.last_time_ms = time_ms;
    let name = match &original_name {
        Cow::Borrowed(n) => normalise::event_name(n, old_names),
        Cow::Owned(n) => Cow::Owned(normalise::event_name(n, old_names).into_owned()),
    };
    if old_names && !trace.rtt_unit_known && name == "quic:recovery_metrics_updated" {
        if let Some(data) = fields.data.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
            if let Some(seconds) = normalise::looks_like_rtt_in_seconds(&data) {
                trace.rtt_in_seconds = seconds;
                trace.rtt_unit_known = true;
            }
        }
    }
    let group_id = fields.group_id.map(|g| match serde_json::from_str::<CowStr<'r>>(g.get()) {
        Ok(s) => s.0,
        Err(_) => Cow::Borrowed(g.get()),
    });
    let mut extra = fields.extra;
    if let Some(f) = fields.time_format_raw {
        extra.push((Cow::Borrowed("time_format"), f));
    }
    Ok(Event {
        record,
        offset,
        trace: trace_index,
        time_ms,
        name,
        original_name,
        data_raw: fields.data,
        group_id,
        extra,
        raw: text.trim(),
        typed_data,
    })
}

fn first_non_blank(text: &str) -> Option<u8> {
    text.bytes().find(|b| !b.is_ascii_whitespace())
}

/// draft-00/01: `[t, "transport", "packet_sent", {...}]` described by `event_fields`.
fn array_event<'r>(items: Vec<&'r RawValue>, event_fields: Option<&[String]>) -> RecordFields<'r> {
    const DEFAULT: [&str; 4] = ["relative_time", "category", "event", "data"];
    let mut f = RecordFields::default();
    for (i, item) in items.into_iter().enumerate() {
        let key = match event_fields {
            Some(fields) => fields.get(i).map(String::as_str).unwrap_or(""),
            None => DEFAULT.get(i).copied().unwrap_or(""),
        };
        let text = || serde_json::from_str::<CowStr<'r>>(item.get()).ok();
        match key {
            "relative_time" | "time" | "delta_time" => f.time = serde_json::from_str(item.get()).ok(),
            "category" => f.category = text(),
            "event" | "event_type" => f.event = text(),
            "data" => f.data = Some(item.get()),
            "" => f.extra.push((Cow::Owned(format!("field_{i}")), item)),
            other => f.extra.push((Cow::Owned(other.to_string()), item)),
        }
    }
    f
}

/// The top-level fields of an event record, borrowed; unknown fields kept as written.
#[derive(Default)]
struct RecordFields<'a> {
    time: Option<LenientF64>,
    name: Option<CowStr<'a>>,
    category: Option<CowStr<'a>>,
    event: Option<CowStr<'a>>,
    data: Option<&'a str>,
    group_id: Option<&'a RawValue>,
    time_format: Option<CowStr<'a>>,
    time_format_raw: Option<&'a RawValue>,
    extra: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> serde::Deserialize<'de> for RecordFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RecordFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a qlog event object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> std::result::Result<Self::Value, M::Error> {
                let mut f = RecordFields::default();
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    match key.0.as_ref() {
                        "time" => {
                            // Rust's float parser is correctly rounded and faster than deserialising.
                            let raw: &'de RawValue = map.next_value()?;
                            f.time = Some(
                                time_of_raw(raw.get()).ok_or_else(|| de::Error::custom("`time` is not a number"))?,
                            );
                        }
                        "name" => f.name = Some(map.next_value()?),
                        "data" => f.data = Some(map.next_value::<&'de RawValue>()?.get()),
                        "group_id" => f.group_id = Some(map.next_value()?),
                        "category" => f.category = Some(map.next_value()?),
                        "event" => f.event = Some(map.next_value()?),
                        "time_format" => {
                            let raw: &'de RawValue = map.next_value()?;
                            f.time_format = serde_json::from_str(raw.get()).ok();
                            f.time_format_raw = Some(raw);
                        }
                        _ => f.extra.push((key.0, map.next_value()?)),
                    }
                }
                Ok(f)
            }
        }
        d.deserialize_map(V)
    }
}

/// A time written as a number or as a number in a string.
fn time_of_raw(text: &str) -> Option<LenientF64> {
    let t = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    t.trim().parse().ok().map(LenientF64)
}

/// A string borrowed from the input when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CowStr<'a>(pub Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON object as borrowed (key, raw value) pairs, in file order.
#[derive(Default)]
struct RawMap<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for RawMap<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMap<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> std::result::Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    out.push((key.0, map.next_value()?));
                }
                Ok(RawMap(out))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, _seq: S) -> std::result::Result<Self::Value, S::Error> {
                Err(de::Error::custom("expected an object, found an array"))
            }
        }
        d.deserialize_map(V)
    }
}

fn value_of(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}
