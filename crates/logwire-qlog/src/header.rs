//! File headers and traces of every qlog version, and the time base of a trace.
//!
//! | layout | recognised by | names |
//! |---|---|---|
//! | draft-00/01 | `qlog_version` `draft-00`/`draft-01`/`0.1`, `event_fields` arrays | `category` + `event` |
//! | 0.3 (main-schema-02..05) | `qlog_version` `0.3` (or the draft-02 aliases qvis knows) | `transport:`, `recovery:`, `http:` … |
//! | 0.4 (main-schema-06..08) | `qlog_version` `0.4` | `quic:`, `recovery:`, `h3:` … |
//! | newest (main-schema-09+) | `file_schema` | `quic:`, `http3:`, `http:`, `loglevel:` |
//!
//! quic-go writes the newest header *and* `qlog_version`/`qlog_format` (qvis needs them); such a header
//! is [`Version::Newest`] with [`Header::dual`] set, and its events keep the old names.

use serde_json::{Map, Value};

/// Which qlog version a file was written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// draft-00: array events described by `event_fields`.
    Draft00,
    /// draft-01 (and `0.1`): array events too.
    Draft01,
    /// draft-02 aliases and `0.3` (main-schema-02..05): what most stacks still write.
    V0_3,
    /// `0.4` (main-schema-06..08).
    V0_4,
    /// `file_schema` + `serialization_format` (main-schema-09 to -14).
    Newest,
    /// A `qlog_version` this reader does not know; read like 0.3.
    Unknown(String),
}

impl Version {
    pub fn from_qlog_version(v: &str) -> Version {
        match v {
            "draft-00" => Version::Draft00,
            "draft-01" | "0.1" => Version::Draft01,
            "0.3" | "draft-02" | "draft-02-wip" | "draft-02-RC1" | "qlog-03-WIP" | "0.2" => Version::V0_3,
            "0.4" => Version::V0_4,
            other => Version::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Version::Draft00 => "draft-00",
            Version::Draft01 => "draft-01",
            Version::V0_3 => "0.3",
            Version::V0_4 => "0.4",
            Version::Newest => "newest",
            Version::Unknown(v) => v,
        }
    }

    /// Whether events are JSON arrays described by `event_fields`.
    pub fn array_events(&self) -> bool {
        matches!(self, Version::Draft00 | Version::Draft01)
    }
}

/// How the file is serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serialization {
    /// `application/qlog+json`: one JSON object with `traces`.
    Contained,
    /// `application/qlog+json-seq`: RFC 7464 records, the first one the header.
    Seq,
}

impl Serialization {
    pub fn media_type(self) -> &'static str {
        match self {
            Serialization::Contained => crate::MEDIA_TYPE_JSON,
            Serialization::Seq => crate::MEDIA_TYPE_JSON_SEQ,
        }
    }
}

/// The top of a file, minus its traces. `fields` keeps every field as written (lossless).
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub version: Version,
    pub serialization: Serialization,
    /// Both the newest and the old fields (quic-go).
    pub dual: bool,
    pub fields: Map<String, Value>,
}

impl Header {
    pub fn from_fields(fields: Map<String, Value>, serialization: Serialization) -> Header {
        let qlog_version = fields.get("qlog_version").and_then(Value::as_str).map(Version::from_qlog_version);
        let (version, dual) = match (fields.contains_key("file_schema"), qlog_version) {
            (true, v) => (Version::Newest, v.is_some()),
            (false, Some(v)) => (v, false),
            (false, None) => (Version::Unknown(String::new()), false),
        };
        Header { version, serialization, dual, fields }
    }

    pub fn title(&self) -> Option<&str> {
        self.fields.get("title").and_then(Value::as_str)
    }

    /// Event names use the old categories (0.3, draft, or quic-go's dual header).
    pub fn old_names(&self) -> bool {
        self.version != Version::Newest || self.dual
    }
}

/// How times are written in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// Relative to the reference time (0.3 `relative`, newest `relative_to_epoch`).
    Relative,
    /// Milliseconds since the Unix epoch (0.3 `absolute`, the 0.3 default).
    Absolute,
    /// Relative to the previous event (0.3 `delta`, newest `relative_to_previous_event`).
    Delta,
}

/// What turns an event's written `time` into milliseconds since the trace's reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeBase {
    pub format: TimeFormat,
    /// Milliseconds since the Unix epoch that time 0 stands for, when the file says (`None`: unknown).
    pub reference_epoch_ms: Option<f64>,
    /// Milliseconds per written unit (`time_units: "us"` gives 0.001).
    pub unit_ms: f64,
    /// `configuration.time_offset`, in milliseconds.
    pub offset_ms: f64,
}

/// 2000-01-01 in ms since the epoch: an earlier "epoch" is a placeholder such as ngtcp2's `reference_time: 0`.
const PLAUSIBLE_EPOCH_MS: f64 = 946_684_800_000.0;

impl TimeBase {
    /// Milliseconds since the Unix epoch of a normalised event time, when the file gives a real clock.
    pub fn epoch_ms(&self, time_ms: f64) -> Option<f64> {
        let t = match self.format {
            TimeFormat::Absolute => time_ms,
            _ => self.reference_epoch_ms? + time_ms,
        };
        (t >= PLAUSIBLE_EPOCH_MS && t.is_finite()).then_some(t)
    }
}

/// One trace's description (everything but its events). `fields` keeps every field as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub fields: Map<String, Value>,
    /// The connection the trace is about: `common_fields.group_id`, `ODCID`, or `None`.
    pub group_id: Option<String>,
    pub time: TimeBase,
    /// draft-00/01: the meaning of each element of an array event.
    pub event_fields: Option<Vec<String>>,
    /// Set when the trace's RTTs are in seconds (quinn 0.11's unit bug): [`crate::normalise`] scales them.
    pub rtt_in_seconds: bool,
    pub(crate) rtt_unit_known: bool,
    /// The previous event's normalised time (for delta times).
    pub(crate) last_time_ms: f64,
}

impl Trace {
    pub fn from_fields(fields: Map<String, Value>, version: &Version) -> Trace {
        let common = fields.get("common_fields").and_then(Value::as_object);
        let config = fields.get("configuration").and_then(Value::as_object);
        let group_id = common
            .and_then(|c| c.get("group_id").or_else(|| c.get("ODCID")).or_else(|| c.get("odcid")))
            .and_then(id_text);
        let unit_ms = match config.and_then(|c| c.get("time_units")).and_then(Value::as_str) {
            Some("us") => 0.001,
            Some("ns") => 0.000_001,
            Some("s") => 1000.0,
            _ => 1.0,
        };
        let offset_ms = config.and_then(|c| c.get("time_offset")).and_then(crate::number::lenient_f64).unwrap_or(0.0);
        let time_format = common.and_then(|c| c.get("time_format")).and_then(Value::as_str);
        let format = match time_format {
            Some("relative") | Some("relative_to_epoch") => TimeFormat::Relative,
            Some("delta") | Some("relative_to_previous_event") => TimeFormat::Delta,
            Some("absolute") => TimeFormat::Absolute,
            // main-schema-02..05 default to absolute; the newest drafts to relative_to_epoch.
            _ if *version == Version::Newest => TimeFormat::Relative,
            _ if version.array_events() => TimeFormat::Relative,
            _ => TimeFormat::Absolute,
        };
        let reference_epoch_ms = match common.and_then(|c| c.get("reference_time")) {
            Some(Value::Object(r)) => reference_struct_ms(r),
            Some(other) => crate::number::lenient_f64(other).map(|t| t * unit_ms),
            None if *version == Version::Newest => Some(0.0),
            None => None,
        };
        let event_fields = fields
            .get("event_fields")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|f| f.as_str().unwrap_or_default().to_string()).collect());
        Trace {
            fields,
            group_id,
            time: TimeBase { format, reference_epoch_ms, unit_ms, offset_ms },
            event_fields,
            rtt_in_seconds: false,
            rtt_unit_known: false,
            last_time_ms: 0.0,
        }
    }

    pub fn vantage_point_type(&self) -> Option<&str> {
        self.fields.get("vantage_point").and_then(|v| v.get("type")).and_then(Value::as_str)
    }
}

/// `reference_time: {clock_type, epoch, wall_clock_time?}` (main-schema-10+): the epoch in ms when known.
fn reference_struct_ms(r: &Map<String, Value>) -> Option<f64> {
    match r.get("epoch").and_then(Value::as_str) {
        None => Some(0.0),
        // A monotonic clock: `wall_clock_time` says when its time 0 was (quiche, quic-go).
        Some("unknown") => r.get("wall_clock_time").and_then(Value::as_str).and_then(rfc3339_ms),
        Some(text) => rfc3339_ms(text),
    }
}

/// Group ids are strings in the spec, numbers in some files.
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]` to milliseconds since the Unix epoch.
pub fn rfc3339_ms(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 19 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || b.get(13) != Some(&b':') {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut frac_ms = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        frac_ms = format!("0.{}", &r[..digits]).parse::<f64>().ok()? * 1000.0;
        rest = &r[digits..];
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ if rest.len() == 6 => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest.get(1..3)?.parse::<i64>().ok()? * 60 + rest.get(4..6)?.parse::<i64>().ok()?)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs as f64 * 1000.0 + frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_epochs() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0.0));
        assert_eq!(rfc3339_ms("2024-10-01T12:00:00Z"), Some(1_727_784_000_000.0));
        assert_eq!(rfc3339_ms("2024-10-01T14:00:00.5+02:00"), Some(1_727_784_000_500.0));
        assert_eq!(rfc3339_ms("unknown"), None);
    }

    #[test]
    fn versions_from_headers() {
        let h = |j: &str| Header::from_fields(serde_json::from_str(j).unwrap(), Serialization::Seq);
        assert_eq!(h(r#"{"qlog_version":"0.3"}"#).version, Version::V0_3);
        assert_eq!(h(r#"{"qlog_version":"draft-00"}"#).version, Version::Draft00);
        let dual = h(r#"{"file_schema":"x","qlog_version":"0.3"}"#);
        assert_eq!(dual.version, Version::Newest);
        assert!(dual.dual && dual.old_names());
    }
}
