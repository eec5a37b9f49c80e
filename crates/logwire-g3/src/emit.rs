//! The emit side: write task logs (or any g3proxy-style log) the way g3proxy's drivers do, for Rust daemon
//! authors who want their logs read by anything that reads g3proxy's.
//!
//! ```
//! use logwire_g3::emit::{Emitter, LogBuilder};
//! use std::time::Duration;
//! let log = LogBuilder::new("Task")
//!     .str("server_name", "http")
//!     .str("task_id", "8e1624fce57f11f18869c59c5f289d8d")
//!     .str("task_type", "TcpConnect")
//!     .str("task_event", "Finished")
//!     .time("start_at", 1_795_247_143_261_926_000)
//!     .duration("total_time", Duration::from_micros(1385))
//!     .u64("c_rd_bytes", 146)
//!     .none("user")
//!     .msg("finished");
//! let emitter = Emitter::new("g3proxy", 5714);
//! let datagram = emitter.rfc5424(&log, 1_795_247_143_263_082_000);
//! assert!(datagram.starts_with(b"<29>1 2026-11-21T07:45:43.263082Z - g3proxy 5714 - [g3proxy@0 "));
//! let back = logwire_g3::syslog::decode(&datagram).unwrap();
//! assert_eq!(back.get_u64("total_time"), Some(1_385_000));
//! ```
//!
//! Layouts (`lib/g3-syslog/src/format/*.rs`, `lib/g3-fluentd/src/format.rs`): RFC 5424 with one SD element
//! `[g3proxy@<enterprise_id> k="v" …]` then ` MSG`, every value quoted, `"` `\` `]` and controls escaped;
//! RFC 3164 text `MSG, k="v", k=1`; CEE `@cee:{…,"msg":"…"}` after either header; fluentd Message mode
//! `[tag, EventTime, {…, "msg": "…"}]` with `None` as `nil` and ints at g3proxy's widths. Syslog leaves
//! `None` out.

use crate::log::{EventTime, FieldName, G3Log, Origin, SyslogFormat, SyslogHeader};
use crate::schema::{field_type, is_bare_in_text, known_name, value_text, FieldType};
use crate::value::{format_duration, format_timestamp, push_escaped};
use serde_json::Value;
use std::time::Duration;

/// Builds the fields of one log in the order they will be written.
#[derive(Debug, Clone, PartialEq)]
pub struct LogBuilder {
    fields: Vec<(FieldName, Value)>,
}

impl LogBuilder {
    /// A log of `log_type` (`Task`, `Escape`, `Resolve`, …).
    pub fn new(log_type: &str) -> Self {
        LogBuilder { fields: vec![(FieldName::Borrowed("log_type"), log_type.into())] }
    }

    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.fields.push((name(key), value.into()));
        self
    }

    pub fn u64(mut self, key: &str, value: u64) -> Self {
        self.fields.push((name(key), value.into()));
        self
    }

    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.fields.push((name(key), value.into()));
        self
    }

    /// A duration (written `{:.3?}`); a zero duration is left out, as g3proxy does.
    pub fn duration(mut self, key: &str, value: Duration) -> Self {
        if !value.is_zero() {
            self.fields.push((name(key), u64::try_from(value.as_nanos()).unwrap_or(u64::MAX).into()));
        }
        self
    }

    /// A time in ns since the epoch (written RFC 3339 with µs).
    pub fn time(mut self, key: &str, ns: i64) -> Self {
        self.fields.push((name(key), ns.into()));
        self
    }

    /// An unset optional field: `nil` in fluentd, absent in syslog.
    pub fn none(mut self, key: &str) -> Self {
        self.fields.push((name(key), Value::Null));
        self
    }

    /// Finish with the message (empty for every task event but `Finished`).
    pub fn msg(self, msg: &str) -> G3Log {
        G3Log {
            fields: self.fields,
            msg: msg.to_string(),
            untyped: Vec::new(),
            origin: Origin::Fluentd { tag: String::new(), time: EventTime { secs: 0, nanos: 0 } },
        }
    }
}

/// `key` as a field name: g3proxy's own names are kept as `'static` strings.
fn name(key: &str) -> FieldName {
    known_name(key).map_or_else(|| FieldName::Owned(key.to_string()), FieldName::Borrowed)
}

/// Header settings of a g3proxy-style logger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitter {
    /// `<PRI>`: facility daemon (3) × 8 + severity notice (5) = 29, what g3proxy sends for its logs.
    pub pri: u8,
    pub hostname: Option<String>,
    pub process: String,
    pub pid: u32,
    /// SD-ID is `g3proxy@<enterprise_id>`.
    pub enterprise_id: i32,
    /// RFC 5424 MSGID (`None` → `-`).
    pub message_id: Option<String>,
    pub cee_flag: String,
    /// fluentd tag prefix: records are tagged `<prefix>.<log_type>`.
    pub tag_prefix: String,
}

impl Emitter {
    pub fn new(process: &str, pid: u32) -> Self {
        Emitter {
            pri: 29,
            hostname: None,
            process: process.to_string(),
            pid,
            enterprise_id: 0,
            message_id: None,
            cee_flag: crate::syslog::CEE_FLAG.to_string(),
            tag_prefix: process.to_string(),
        }
    }

    fn header(&self, format: SyslogFormat, timestamp: String) -> SyslogHeader {
        SyslogHeader {
            format,
            pri: self.pri,
            timestamp,
            hostname: self.hostname.clone(),
            app_name: self.process.clone(),
            proc_id: self.pid.to_string(),
            msg_id: self.message_id.clone(),
            sd_id: Some(format!("g3proxy@{}", self.enterprise_id)),
            cee_flag: Some(self.cee_flag.clone()),
        }
    }

    /// RFC 5424 + SD, stamped `now_ns` (UTC, µs).
    pub fn rfc5424(&self, log: &G3Log, now_ns: i64) -> Vec<u8> {
        encode_syslog(log, &self.header(SyslogFormat::Rfc5424Sd, format_timestamp(now_ns)))
    }

    /// RFC 5424 header + CEE JSON where the SD goes (g3proxy's malformed-but-real combination).
    pub fn rfc5424_cee(&self, log: &G3Log, now_ns: i64) -> Vec<u8> {
        encode_syslog(log, &self.header(SyslogFormat::Rfc5424Cee, format_timestamp(now_ns)))
    }

    /// RFC 3164 + text body; `local_time` is the header's `Mmm dd hh:mm:ss` (local time, no year).
    pub fn rfc3164(&self, log: &G3Log, local_time: &str) -> Vec<u8> {
        encode_syslog(log, &self.header(SyslogFormat::Rfc3164Text, local_time.to_string()))
    }

    /// RFC 3164 + CEE JSON.
    pub fn rfc3164_cee(&self, log: &G3Log, local_time: &str) -> Vec<u8> {
        encode_syslog(log, &self.header(SyslogFormat::Rfc3164Cee, local_time.to_string()))
    }

    /// fluentd forward Message mode, tagged `<tag_prefix>.<log_type>`.
    pub fn fluentd(&self, log: &G3Log, time: EventTime) -> Vec<u8> {
        let tag = format!("{}.{}", self.tag_prefix, log.get_str("log_type").unwrap_or("Task"));
        encode_fluentd(log, &tag, time, None)
    }
}

/// `header` `g3proxy[pid]: ` prefix of RFC 3164.
fn push_3164_header(out: &mut String, h: &SyslogHeader) {
    out.push_str(&format!("<{}>{}", h.pri, h.timestamp));
    if let Some(host) = &h.hostname {
        out.push(' ');
        out.push_str(host);
    }
    out.push(' ');
    out.push_str(&h.app_name);
    if !h.proc_id.is_empty() {
        out.push('[');
        out.push_str(&h.proc_id);
        out.push(']');
    }
    out.push_str(": ");
}

fn push_5424_header(out: &mut String, h: &SyslogHeader) {
    out.push_str(&format!(
        "<{}>1 {} {} {} {} {} ",
        h.pri,
        h.timestamp,
        h.hostname.as_deref().unwrap_or("-"),
        h.app_name,
        if h.proc_id.is_empty() { "-" } else { &h.proc_id },
        h.message_id_or_nil()
    ));
}

impl SyslogHeader {
    fn message_id_or_nil(&self) -> &str {
        self.msg_id.as_deref().unwrap_or("-")
    }
}

/// Write `log` with `header`'s layout. Decoding a g3proxy capture and encoding it with its own header
/// gives back the same bytes.
pub fn encode_syslog(log: &G3Log, header: &SyslogHeader) -> Vec<u8> {
    let mut out = String::with_capacity(1024);
    match header.format {
        SyslogFormat::Rfc5424Sd => {
            push_5424_header(&mut out, header);
            out.push('[');
            out.push_str(header.sd_id.as_deref().unwrap_or("g3proxy@0"));
            for (k, v) in &log.fields {
                if let Some(text) = value_text(k, v) {
                    out.push(' ');
                    out.push_str(k);
                    out.push_str("=\"");
                    push_escaped(&mut out, &text, true);
                    out.push('"');
                }
            }
            out.push_str("] ");
            push_escaped(&mut out, &log.msg, true);
        }
        SyslogFormat::Rfc3164Text | SyslogFormat::Rfc5424Text => {
            if header.format == SyslogFormat::Rfc3164Text {
                push_3164_header(&mut out, header);
            } else {
                push_5424_header(&mut out, header);
                out.push_str("- ");
            }
            push_escaped(&mut out, &log.msg, false);
            for (k, v) in &log.fields {
                let Some(text) = value_text(k, v) else { continue };
                out.push_str(", ");
                out.push_str(k);
                out.push('=');
                if is_bare_in_text(k, v) {
                    out.push_str(&text);
                } else {
                    out.push('"');
                    push_escaped(&mut out, &text, false);
                    out.push('"');
                }
            }
        }
        SyslogFormat::Rfc3164Cee | SyslogFormat::Rfc5424Cee => {
            if header.format == SyslogFormat::Rfc3164Cee {
                push_3164_header(&mut out, header);
            } else {
                push_5424_header(&mut out, header);
            }
            out.push_str(header.cee_flag.as_deref().unwrap_or(crate::syslog::CEE_FLAG));
            let mut obj = String::from("{");
            for (k, v) in &log.fields {
                if v.is_null() {
                    continue;
                }
                let value = match field_type(k) {
                    FieldType::Duration | FieldType::Timestamp if v.is_number() => {
                        Value::String(value_text(k, v).unwrap_or_default())
                    }
                    _ => v.clone(),
                };
                obj.push_str(&serde_json::to_string(k).unwrap_or_default());
                obj.push(':');
                obj.push_str(&serde_json::to_string(&value).unwrap_or_default());
                obj.push(',');
            }
            obj.push_str("\"msg\":");
            obj.push_str(&serde_json::to_string(&log.msg).unwrap_or_default());
            obj.push('}');
            out.push_str(&obj);
        }
    }
    out.into_bytes()
}

/// Forward Message mode `[tag, EventTime, record]` (+ `{"chunk": …}` when given).
pub fn encode_fluentd(log: &G3Log, tag: &str, time: EventTime, chunk: Option<&str>) -> Vec<u8> {
    use rmp::encode as e;
    let mut out = Vec::with_capacity(1024);
    // Writes into a Vec cannot fail; the results are ignored for that reason.
    let _ = e::write_array_len(&mut out, if chunk.is_some() { 4 } else { 3 });
    let _ = e::write_str(&mut out, tag);
    let _ = e::write_ext_meta(&mut out, 8, 0);
    out.extend_from_slice(&time.secs.to_be_bytes());
    out.extend_from_slice(&time.nanos.to_be_bytes());
    let _ = e::write_map_len(&mut out, u32::try_from(log.fields.len() + 1).unwrap_or(u32::MAX));
    for (k, v) in &log.fields {
        let _ = e::write_str(&mut out, k);
        write_field(&mut out, k, v);
    }
    let _ = e::write_str(&mut out, "msg");
    let _ = e::write_str(&mut out, &log.msg);
    if let Some(chunk) = chunk {
        let _ = e::write_map_len(&mut out, 1);
        let _ = e::write_str(&mut out, "chunk");
        let _ = e::write_str(&mut out, chunk);
    }
    out
}

fn write_field(out: &mut Vec<u8>, key: &str, v: &Value) {
    use rmp::encode as e;
    let ty = field_type(key);
    let _ = match v {
        Value::Null => e::write_nil(out).map_err(|_| ()),
        Value::Bool(b) => e::write_bool(out, *b).map_err(|_| ()),
        Value::Number(n) => match (ty, n.as_u64()) {
            (FieldType::Duration, Some(ns)) => e::write_str(out, &format_duration(ns)).map_err(|_| ()),
            (FieldType::Timestamp, _) if n.is_i64() => {
                e::write_str(out, &format_timestamp(n.as_i64().unwrap_or(0))).map_err(|_| ())
            }
            (FieldType::U16, Some(u)) if u <= u64::from(u16::MAX) => e::write_u16(out, u as u16).map_err(|_| ()),
            (FieldType::U32, Some(u)) if u <= u64::from(u32::MAX) => e::write_u32(out, u as u32).map_err(|_| ()),
            (FieldType::U64, Some(u)) => e::write_u64(out, u).map_err(|_| ()),
            (_, Some(u)) => e::write_uint(out, u).map(|_| ()).map_err(|_| ()),
            (_, None) => match n.as_i64() {
                Some(i) => e::write_sint(out, i).map(|_| ()).map_err(|_| ()),
                None => e::write_f64(out, n.as_f64().unwrap_or(0.0)).map_err(|_| ()),
            },
        },
        Value::String(s) => e::write_str(out, s).map_err(|_| ()),
        other => e::write_str(out, &other.to_string()).map_err(|_| ()),
    };
}

/// Re-encode a decoded record in the layout it came in (byte for byte for g3proxy's own output).
pub fn reencode(log: &G3Log) -> Vec<u8> {
    match &log.origin {
        Origin::Syslog(h) => encode_syslog(log, h),
        Origin::Fluentd { tag, time } => encode_fluentd(log, tag, *time, None),
    }
}
