//! One decoded g3proxy log record, whatever format it came in.

use crate::schema::{type_wire, LogType, Reason, WireKey, WireValue};
use serde_json::Value;
use std::borrow::Cow;

/// A field's name: one of the `'static` names g3proxy writes ([`crate::schema::known_name`]), or the name
/// as it came for any other.
pub type FieldName = Cow<'static, str>;

/// Which syslog layout a record used (`lib/g3-syslog/src/format/*.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFormat {
    /// RFC 3164 header + `MSG, k="v", k=1` text body (g3proxy's default).
    Rfc3164Text,
    /// RFC 3164 header + `@cee:{json}` (`use_cee_log_syntax`).
    Rfc3164Cee,
    /// RFC 5424 with one SD element `[g3proxy@<enterprise_id> k="v" …]`, MSG after it (`format_rfc5424`).
    Rfc5424Sd,
    /// RFC 5424 header, no SD (`-`), and the RFC 3164 text body as MSG: what a relay (rsyslog's RFC 5424
    /// templates) makes of g3proxy's default format.
    Rfc5424Text,
    /// RFC 5424 header with `@cee:{json}` where the SD should be: not valid RFC 5424, but what g3proxy sends
    /// with both options.
    Rfc5424Cee,
}

/// The syslog header, kept as written so a record can be re-emitted byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogHeader {
    pub format: SyslogFormat,
    pub pri: u8,
    /// RFC 3164: `Nov 21 07:45:53` (local time, no year); RFC 5424: RFC 3339.
    pub timestamp: String,
    /// `None` unless g3proxy's `emit_hostname` (or a relay such as rsyslog) put one there.
    pub hostname: Option<String>,
    pub app_name: String,
    pub proc_id: String,
    /// RFC 5424 MSGID; `None` for `-`.
    pub msg_id: Option<String>,
    /// RFC 5424 SD-ID of the element (`g3proxy@32473`).
    pub sd_id: Option<String>,
    /// The CEE event flag (`@cee:` unless configured otherwise).
    pub cee_flag: Option<String>,
}

/// fluentd forward EventTime (ext type 0) or an integer time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime {
    pub secs: u32,
    pub nanos: u32,
}

impl EventTime {
    pub fn as_ns(self) -> i64 {
        i64::from(self.secs) * 1_000_000_000 + i64::from(self.nanos)
    }
}

/// Where a record came from and the envelope it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Syslog(SyslogHeader),
    Fluentd { tag: String, time: EventTime },
}

/// One g3proxy log record: typed fields in wire order, the message, and its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct G3Log {
    /// Fields in the order they came, typed by [`crate::schema`]. `Null` = a fluentd `nil` (syslog omits
    /// the key instead).
    pub fields: Vec<(FieldName, Value)>,
    /// The syslog MSG / the `msg` key: for a task's `Finished` record the Display of its error.
    pub msg: String,
    /// Fields whose value did not fit their type; kept as they came.
    pub untyped: Vec<String>,
    pub origin: Origin,
}

impl G3Log {
    /// Build from wire pairs: every value goes through [`crate::schema::type_value`]. Fails with
    /// [`crate::DecodeError::NotG3`] when there is no `log_type`.
    pub(crate) fn from_wire<'a, K: WireKey>(
        pairs: impl IntoIterator<Item = (K, WireValue<'a>)>,
        msg: String,
        origin: Origin,
    ) -> Result<G3Log, crate::DecodeError> {
        let pairs = pairs.into_iter();
        // Reserved up front: growing a 30-field Vec step by step showed in the fluentd profile.
        let mut fields = Vec::with_capacity(pairs.size_hint().0);
        let mut untyped = Vec::new();
        for (key, wire) in pairs {
            let (ty, key) = key.resolve();
            let value = match type_wire(ty, wire) {
                Ok(v) => v,
                Err(kept) => {
                    untyped.push(key.to_string());
                    kept
                }
            };
            fields.push((key, value));
        }
        let log = G3Log { fields, msg, untyped, origin };
        if log.get_str("log_type").is_none() {
            return Err(crate::DecodeError::NotG3);
        }
        Ok(log)
    }

    /// The value of field `key` (the last one if it repeats).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    pub fn log_type(&self) -> LogType {
        LogType::parse(self.get_str("log_type").unwrap_or(""))
    }

    pub fn task_id(&self) -> Option<&str> {
        self.get_str("task_id")
    }

    /// `start_at` in ns since the epoch, when present and typed.
    pub fn start_ns(&self) -> Option<i64> {
        self.get("start_at").and_then(Value::as_i64)
    }

    pub fn reason(&self) -> Option<Reason> {
        self.get_str("reason").map(Reason::parse)
    }
}
