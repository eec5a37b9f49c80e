//! What g3proxy logs: log types, task types and events, `reason` values, and the type of every field as
//! g3proxy's code emits it (`g3proxy/src/log/**`, `lib/g3-slog-types`), which is sometimes not what its
//! docs say (`udp_listen_addr`, not `udp_server_addr`; `task_event`, `Inspect` and `Intercept` are
//! undocumented; UdpConnect's `upstream` is optional).
//!
//! Syslog RFC 5424 sends every value as a string and RFC 3164 text leaves ints bare but durations quoted,
//! so the type comes from here, not from the wire: [`type_value`] turns a wire value into its typed JSON
//! form. A value that does not fit its field's type is kept as it came (and reported by the caller), never
//! dropped.

use crate::value::{format_duration, format_timestamp, parse_duration, parse_timestamp};
use logwire_model::PlainKey;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// `log_type`: which logger wrote the record. Unknown values are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogType {
    Task,
    Escape,
    Resolve,
    Inspect,
    Intercept,
    Other(String),
}

impl LogType {
    pub fn parse(s: &str) -> LogType {
        match s {
            "Task" => LogType::Task,
            "Escape" => LogType::Escape,
            "Resolve" => LogType::Resolve,
            "Inspect" => LogType::Inspect,
            "Intercept" => LogType::Intercept,
            other => LogType::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            LogType::Task => "Task",
            LogType::Escape => "Escape",
            LogType::Resolve => "Resolve",
            LogType::Inspect => "Inspect",
            LogType::Intercept => "Intercept",
            LogType::Other(s) => s,
        }
    }
}

impl fmt::Display for LogType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `task_type` values g3proxy 1.13 emits (CamelCase).
pub const TASK_TYPES: [&str; 5] = ["TcpConnect", "HttpForward", "FtpOverHttp", "UdpAssociate", "UdpConnect"];

/// `task_event`: one task emits several records sharing its `task_id`; only `Finished` is always sent.
pub const TASK_EVENTS: [&str; 6] =
    ["Created", "Connected", "Periodic", "ClientShutdown", "UpstreamShutdown", "Finished"];

/// `stage` (`g3proxy/src/serve/task.rs`).
pub const STAGES: [&str; 8] =
    ["Created", "Preparing", "Connecting", "Connected", "Replying", "LoggedIn", "Relaying", "Finished"];

/// `reason` of a task's `Finished` record: `ServerTaskError::brief()` (`g3proxy/src/serve/error.rs`).
pub const TASK_REASONS: [&str; 36] = [
    "InternalServerError",
    "InternalAdapterError",
    "InternalResolverError",
    "InternalTlsClientError",
    "EscaperNotUsable",
    "ForbiddenByRule",
    "InvalidClientProtocol",
    "UnimplementedProtocol",
    "ClientTcpReadFailed",
    "ClientTcpWriteFailed",
    "ClientUdpRecvFailed",
    "ClientUdpSendFailed",
    "ClientAuthFailed",
    "ClientAppTimeout",
    "ClientAppError",
    "UpstreamNotResolved",
    "UpstreamNotConnected",
    "UpstreamNotAvailable",
    "InvalidUpstreamProtocol",
    "UpstreamReadFailed",
    "UpstreamWriteFailed",
    "UpstreamTlsHandshakeTimeout",
    "UpstreamTlsHandshakeFailed",
    "UpstreamNotNegotiated",
    "UpstreamAppUnavailable",
    "UpstreamAppTimeout",
    "UpstreamAppError",
    "ClosedByUpstream",
    "ClosedByClient",
    "ClosedEarlyByClient",
    "CanceledAsUserBlocked",
    "CanceledAsServerQuit",
    "Idle",
    "InterceptionError",
    "Finished",
    "UnclassifiedError",
];

/// A task's final `reason`, as an open enum: the 36 known values by index, anything else kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reason {
    Known(&'static str),
    Other(String),
}

impl Reason {
    pub fn parse(s: &str) -> Reason {
        match TASK_REASONS.iter().find(|r| **r == s) {
            Some(r) => Reason::Known(r),
            None => Reason::Other(s.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Reason::Known(s) => s,
            Reason::Other(s) => s,
        }
    }

    /// Whether the task ended the normal way: `Finished` ("this isn't an error, for log only") or a side
    /// closing the connection.
    pub fn is_success(&self) -> bool {
        matches!(self.as_str(), "Finished" | "ClosedByClient" | "ClosedByUpstream")
    }
}

/// How a field's value is typed, and, for fluentd, the msgpack width g3proxy writes it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Free text (names, URIs, `upstream` which may be `host:port` with a domain).
    Text,
    /// Rust `{:.3?}` duration (`593.810µs`, `1.385ms`, `2.500s`) → integer nanoseconds.
    Duration,
    /// RFC 3339 with µs (`2026-11-21T07:45:43.261926Z`) → integer nanoseconds since the epoch.
    Timestamp,
    /// `ip:port` → text, checked.
    SocketAddr,
    /// An IP address → text, checked.
    Ip,
    /// The 32-hex "simple" UUID → text, checked.
    TaskId,
    /// Unsigned integer written as msgpack u16 / u32 / u64 by g3proxy's fluentd driver.
    U16,
    U32,
    U64,
    Bool,
}

/// A field name g3proxy writes, with what the decoders need to know of it.
#[derive(Debug)]
pub(crate) struct KnownField {
    pub(crate) name: &'static str,
    pub(crate) ty: FieldType,
    /// One bit per known name (its place in the list): a record's names seen so far fit in a `u128`.
    pub(crate) bit: u128,
    /// The name as a JSON key that needs no escape.
    pub(crate) key: PlainKey,
    /// Whether a finished task's span start carries it too ([`crate::record::START_ATTRS`]).
    pub(crate) start_attr: bool,
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn position(names: &[&str], name: &str) -> Option<usize> {
    let mut i = 0;
    while i < names.len() {
        if str_eq(names[i], name) {
            return Some(i);
        }
        i += 1;
    }
    None
}

impl KnownField {
    /// Evaluated at compile time, once per name.
    const fn new(name: &'static str, ty: FieldType) -> KnownField {
        let Some(index) = position(KNOWN_NAMES, name) else { panic!("not in KNOWN_NAMES") };
        assert!(index < 128, "more known names than bits in a u128");
        KnownField {
            name,
            ty,
            bit: 1 << index,
            key: PlainKey::new(name),
            start_attr: position(&crate::record::START_ATTRS, name).is_some(),
        }
    }
}

/// Declares every field name g3proxy writes with its type: [`field_type`], [`known_name`] and
/// [`known_field`] all come from this one list, so a name is never typed one way and interned another.
macro_rules! known_fields {
    ($($ty:ident: $($name:literal)|+;)*) => {
        const KNOWN_NAMES: &[&str] = &[$($($name),+),*];

        /// Field `key` when g3proxy writes that name; a `'static` entry, so a decoded log holds its keys
        /// without allocating one per field.
        pub(crate) fn known_field(key: &str) -> Option<&'static KnownField> {
            match key {
                $($($name => {
                    const FIELD: KnownField = KnownField::new($name, FieldType::$ty);
                    Some(&FIELD)
                })+)*
                _ => None,
            }
        }

        /// [`known_field`] of a key still in wire bytes: a known name is UTF-8 already, so a decoder
        /// only has to check the keys it does not know. `known_field` keeps its own `match` rather than
        /// calling this: on text keys the `match` ran fewer instructions (callgrind, CEE decode: 336.5M
        /// against 360.2M through this chain).
        pub(crate) fn known_field_bytes(key: &[u8]) -> Option<&'static KnownField> {
            $($(
                if key == $name.as_bytes() {
                    const FIELD: KnownField = KnownField::new($name, FieldType::$ty);
                    return Some(&FIELD);
                }
            )+)*
            None
        }
    };
}

/// The type of field `key` and, when g3proxy writes that name, the name as a `'static` string.
pub(crate) fn lookup(key: &str) -> (FieldType, Option<&'static str>) {
    known_field(key).map_or((FieldType::Text, None), |f| (f.ty, Some(f.name)))
}

known_fields! {
    TaskId: "task_id";
    Timestamp: "start_at" | "next_expire" | "received_at";
    Duration: "wait_time" | "ready_time" | "total_time" | "pipeline_wait" | "tcp_connect_spend"
        | "dur_req_send_hdr" | "dur_req_send_all" | "dur_rsp_recv_hdr" | "dur_rsp_recv_all" | "ftp_c_connect_spend"
        | "ftp_d_connect_spend" | "duration" | "dur_req_pipeline" | "dur_rsp_send_hdr" | "dur_rsp_send_all";
    SocketAddr: "server_addr" | "client_addr" | "next_bound_addr" | "next_peer_addr" | "tcp_server_addr"
        | "tcp_client_addr" | "udp_listen_addr" | "udp_client_addr" | "ftp_c_bound_addr" | "ftp_c_peer_addr"
        | "ftp_d_bound_addr" | "ftp_d_peer_addr" | "bind_addr";
    Ip: "next_bind_ip" | "bind_ipv4" | "bind_ipv6" | "server";
    U32: "pid";
    U16: "rsp_status" | "origin_status" | "server_port";
    U64: "c_rd_bytes" | "c_wr_bytes" | "r_rd_bytes" | "r_wr_bytes" | "c_rd_packets" | "c_wr_packets"
        | "r_rd_packets" | "r_wr_packets" | "ftp_c_rd_bytes" | "ftp_c_wr_bytes" | "ftp_d_rd_bytes"
        | "ftp_d_wr_bytes" | "tcp_connect_tries" | "ftp_c_connect_tries" | "ftp_d_connect_tries" | "depth"
        | "request_id" | "report_ts";
    Bool: "reuse_connection";
    // Free text, listed only so that the names are interned.
    Text: "log_type" | "daemon_name" | "task_type" | "task_event" | "stage" | "server_type" | "server_name"
        | "upstream" | "escaper" | "user" | "user_agent" | "uri" | "method" | "reason" | "msg" | "rr_source"
        | "resolver_type" | "resolver_name" | "query_type" | "initial_peer" | "escaper_type" | "escaper_name"
        | "escape_type" | "error_type" | "error_subtype" | "domain" | "override_peer" | "intercept_type"
        | "auditor_name" | "peer" | "query";
}

/// The type of field `key`, from g3proxy's code. Fields not listed are [`FieldType::Text`] (and keep
/// whatever JSON type their wire format gave them).
pub fn field_type(key: &str) -> FieldType {
    lookup(key).0
}

/// `key` as a `'static` string when it is one of the names g3proxy writes.
pub fn known_name(key: &str) -> Option<&'static str> {
    lookup(key).1
}

/// A field name as a decoder found it, resolved to its type and the name a [`crate::G3Log`] keeps.
pub(crate) trait WireKey {
    fn resolve(self) -> (FieldType, crate::log::FieldName);
}

/// A name as text: looked up here.
impl WireKey for Cow<'_, str> {
    fn resolve(self) -> (FieldType, crate::log::FieldName) {
        match known_field(&self) {
            Some(field) => (field.ty, Cow::Borrowed(field.name)),
            None => (FieldType::Text, Cow::Owned(self.into_owned())),
        }
    }
}

/// A name the decoder looked up already in its wire bytes ([`known_field_bytes`]), so a known name needs
/// no UTF-8 check.
pub(crate) enum LookedUpKey<'a> {
    Known(&'static KnownField),
    /// Not a name g3proxy writes (checked to be UTF-8).
    Other(&'a str),
}

impl WireKey for LookedUpKey<'_> {
    fn resolve(self) -> (FieldType, crate::log::FieldName) {
        match self {
            LookedUpKey::Known(field) => (field.ty, Cow::Borrowed(field.name)),
            LookedUpKey::Other(other) => (FieldType::Text, Cow::Owned(other.to_string())),
        }
    }
}

/// A value as it came off the wire, before typing.
#[derive(Debug, Clone, PartialEq)]
pub enum WireValue<'a> {
    /// A string (unescaped; borrowed from the input when it had no escapes).
    Str(Cow<'a, str>),
    /// A bare token from RFC 3164 text (`123`, `true`, `1.5`).
    Bare(&'a str),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Null,
}

/// Turn a wire value into its typed JSON form for field `key`. `Err` carries the value kept as it came
/// (a string, or the JSON value) when it does not fit the field's type.
pub fn type_value(key: &str, wire: WireValue<'_>) -> Result<Value, Value> {
    type_wire(field_type(key), wire)
}

/// [`type_value`] for a field whose type is known already.
pub(crate) fn type_wire(ty: FieldType, wire: WireValue<'_>) -> Result<Value, Value> {
    match wire {
        WireValue::Null => Ok(Value::Null),
        WireValue::Str(s) => type_text(ty, s, false),
        WireValue::Bare(s) => type_text(ty, Cow::Borrowed(s), true),
        WireValue::Int(i) => match ty {
            FieldType::U16 | FieldType::U32 | FieldType::U64 if i < 0 => Err(i.into()),
            FieldType::Text | FieldType::U16 | FieldType::U32 | FieldType::U64 => Ok(i.into()),
            _ => Err(i.into()),
        },
        WireValue::UInt(u) => match ty {
            FieldType::Text | FieldType::U16 | FieldType::U32 | FieldType::U64 => Ok(u.into()),
            _ => Err(u.into()),
        },
        WireValue::Float(f) => {
            let v = serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
            if ty == FieldType::Text {
                Ok(v)
            } else {
                Err(v)
            }
        }
        WireValue::Bool(b) => match ty {
            FieldType::Text | FieldType::Bool => Ok(b.into()),
            _ => Err(b.into()),
        },
    }
}

/// The fast, common case of "prints back the same": three decimals in the unit `{:.3?}` picks for it.
fn is_canonical_duration(s: &str, ns: u64) -> bool {
    let unit = match ns {
        1_000_000_000.. => "s",
        1_000_000.. => "ms",
        1_000.. => "µs",
        _ => "ns",
    };
    let Some(number) = s.strip_suffix(unit) else { return false };
    // "ms" also ends with "s": make sure the unit is not longer than matched.
    if unit == "s" && number.ends_with(['m', 'µ', 'n', 'u']) {
        return false;
    }
    matches!(number.split_once('.'), Some((_, frac)) if frac.len() == 3)
}

/// `text` is taken by value so that a string the decoder already owns is moved into the result, not copied.
fn type_text(ty: FieldType, text: Cow<'_, str>, bare: bool) -> Result<Value, Value> {
    if bare && ty == FieldType::Text {
        return Ok(bare_value(&text));
    }
    match type_str(ty, &text) {
        // Kept as text: the text moves into the value (no copy when it is owned already).
        Some(Typed::Str(_)) => Ok(Value::String(text.into_owned())),
        Some(Typed::U64(n)) => Ok(n.into()),
        Some(Typed::I64(n)) => Ok(n.into()),
        Some(Typed::Bool(b)) => Ok(b.into()),
        None => Err(Value::String(text.into_owned())),
    }
}

/// A typed scalar that borrows its text: what [`type_value`] makes of a quoted value, without building a
/// [`Value`] (the fused RFC 5424 path renders it straight to JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Typed<'a> {
    Str(&'a str),
    U64(u64),
    I64(i64),
    Bool(bool),
}

impl Typed<'_> {
    /// As [`Value::as_i64`] reads the same value.
    pub(crate) fn as_i64(self) -> Option<i64> {
        match self {
            Typed::U64(n) => i64::try_from(n).ok(),
            Typed::I64(n) => Some(n),
            _ => None,
        }
    }
}

/// The typing rules for one quoted value: `None` when `s` does not fit `ty` (it is then kept as it came and
/// listed as untyped).
pub(crate) fn type_str(ty: FieldType, s: &str) -> Option<Typed<'_>> {
    match ty {
        FieldType::Text => Some(Typed::Str(s)),
        // Typed only when printing it back `{:.3?}` keeps the value (found by fuzzing: `72.2273ms` would
        // come back as `72.227ms`); g3proxy's own output always does.
        FieldType::Duration => parse_duration(s)
            .filter(|&ns| is_canonical_duration(s, ns) || parse_duration(&format_duration(ns)) == Some(ns))
            .map(Typed::U64),
        FieldType::Timestamp => parse_timestamp(s).map(Typed::I64),
        // Kept as text once checked.
        FieldType::SocketAddr | FieldType::Ip | FieldType::TaskId => {
            let valid = match ty {
                FieldType::SocketAddr => is_plain_v4_socket(s) || s.parse::<std::net::SocketAddr>().is_ok(),
                FieldType::Ip => s.parse::<std::net::IpAddr>().is_ok(),
                _ => s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()),
            };
            valid.then_some(Typed::Str(s))
        }
        FieldType::U16 | FieldType::U32 | FieldType::U64 => {
            let max = match ty {
                FieldType::U16 => u64::from(u16::MAX),
                FieldType::U32 => u64::from(u32::MAX),
                _ => u64::MAX,
            };
            // Only the canonical form: "007" or "+7" would not come back byte for byte.
            let canonical = !s.starts_with('+') && (s.len() == 1 || !s.starts_with('0'));
            s.parse::<u64>().ok().filter(|&n| n <= max && canonical).map(Typed::U64)
        }
        FieldType::Bool => match s {
            "true" => Some(Typed::Bool(true)),
            "false" => Some(Typed::Bool(false)),
            _ => None,
        },
    }
}

/// Whether `s` is `a.b.c.d:port` in plain decimal (octets ≤ 255, port ≤ 65535, no leading zeros): a form
/// `SocketAddr`'s parser always accepts, checked in a quarter of its time. g3proxy writes most of its
/// addresses this way; any other form (IPv6, or anything odd) goes to the full parser.
fn is_plain_v4_socket(s: &str) -> bool {
    // A decimal number of 1..=max_len digits without a leading zero, at most `max`, then `end`.
    fn number(b: &[u8], at: &mut usize, max_len: usize, max: u32, end: Option<u8>) -> bool {
        let start = *at;
        let mut value = 0u32;
        while *at < b.len() && b[*at].is_ascii_digit() && *at - start < max_len {
            value = value * 10 + u32::from(b[*at] - b'0');
            *at += 1;
        }
        let digits = *at - start;
        let ok = digits > 0 && (digits == 1 || b[start] != b'0') && value <= max;
        match end {
            Some(e) if ok && b.get(*at) == Some(&e) => {
                *at += 1;
                true
            }
            Some(_) => false,
            None => ok && *at == b.len(),
        }
    }
    let b = s.as_bytes();
    let mut at = 0;
    number(b, &mut at, 3, 255, Some(b'.'))
        && number(b, &mut at, 3, 255, Some(b'.'))
        && number(b, &mut at, 3, 255, Some(b'.'))
        && number(b, &mut at, 3, 255, Some(b':'))
        && number(b, &mut at, 5, 65_535, None)
}

/// A bare RFC 3164 token of an unlisted field: integer, bool or float as g3proxy's itoa/ryu wrote it.
fn bare_value(s: &str) -> Value {
    if let Ok(n) = s.parse::<u64>() {
        return n.into();
    }
    if let Ok(n) = s.parse::<i64>() {
        return n.into();
    }
    match s {
        "true" => return true.into(),
        "false" => return false.into(),
        _ => {}
    }
    match s.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
        Some(n) => Value::Number(n),
        None => Value::String(s.to_string()),
    }
}

/// The text g3proxy writes for a typed value of field `key` (what the syslog formats carry): durations
/// back to `{:.3?}`, timestamps to RFC 3339 µs, the rest as is. `None` for JSON null (g3proxy omits it).
pub fn value_text(key: &str, value: &Value) -> Option<String> {
    match (field_type(key), value) {
        (_, Value::Null) => None,
        (FieldType::Duration, Value::Number(n)) => n.as_u64().map(format_duration).or_else(|| Some(n.to_string())),
        (FieldType::Timestamp, Value::Number(n)) => n.as_i64().map(format_timestamp).or_else(|| Some(n.to_string())),
        (_, Value::String(s)) => Some(s.clone()),
        (_, Value::Bool(b)) => Some(b.to_string()),
        (_, Value::Number(n)) => Some(n.to_string()),
        (_, other) => Some(other.to_string()),
    }
}

/// Whether the RFC 3164 text format writes this value bare (ints, bools, floats) rather than quoted.
pub fn is_bare_in_text(key: &str, value: &Value) -> bool {
    match value {
        Value::Bool(_) => true,
        Value::Number(_) => !matches!(field_type(key), FieldType::Duration | FieldType::Timestamp),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_found_the_same_from_text_and_from_bytes() {
        for name in KNOWN_NAMES {
            let (text, bytes) = (known_field(name).unwrap(), known_field_bytes(name.as_bytes()).unwrap());
            assert_eq!((text.name, text.ty, text.bit), (bytes.name, bytes.ty, bytes.bit), "{name}");
        }
        for other in ["", "task", "task_id ", "Task_id", "msg\0", "rsp_statu"] {
            assert!(known_field(other).is_none() && known_field_bytes(other.as_bytes()).is_none(), "{other:?}");
        }
        assert!(known_field_bytes(b"task_\xffid").is_none());
    }

    #[test]
    fn the_plain_v4_socket_check_accepts_only_what_the_full_parser_accepts() {
        for ok in ["127.0.0.1:13128", "0.0.0.0:0", "255.255.255.255:65535", "10.2.30.44:8080"] {
            assert!(is_plain_v4_socket(ok), "{ok}");
        }
        for odd in [
            "01.0.0.1:80",
            "256.0.0.1:80",
            "1.2.3.4:65536",
            "1.2.3.4:080",
            "1.2.3:80",
            "1.2.3.4",
            "1.2.3.4:",
            "[::1]:80",
            "1.2.3.4:80 ",
            "1.2.3.4.5:80",
            "1.2.3.4:123456",
        ] {
            assert!(!is_plain_v4_socket(odd), "{odd}");
        }
        // Random candidates shaped like addresses (groups of 0–4 random digits, and sometimes a byte
        // swapped for a separator): whatever the check accepts, the full parser accepts too.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut random_accepted = 0;
        for _ in 0..200_000 {
            let mut s = String::new();
            for (group, sep) in [(4, "."), (4, "."), (4, "."), (4, ":"), (6, "")] {
                for _ in 0..next(group) + u64::from(group == 4) {
                    s.push(char::from(b'0' + next(10) as u8));
                }
                s.push_str(sep);
            }
            if next(4) == 0 {
                let at = next(s.len() as u64) as usize;
                s.replace_range(at..at + 1, [".", ":", "0", "9"][next(4) as usize]);
            }
            if is_plain_v4_socket(&s) {
                random_accepted += 1;
                assert!(s.parse::<std::net::SocketAddr>().is_ok(), "{s}");
            }
        }
        assert!(random_accepted > 1000, "{random_accepted}");
        let mut accepted = 0;
        for a in [0u32, 7, 10, 99, 100, 255] {
            for port in [0u32, 9, 10, 65_535] {
                let s = format!("{a}.{a}.1.{a}:{port}");
                assert!(is_plain_v4_socket(&s) && s.parse::<std::net::SocketAddr>().is_ok(), "{s}");
                accepted += 1;
            }
        }
        assert_eq!(accepted, 24);
    }

    fn ws(s: &str) -> WireValue<'_> {
        WireValue::Str(Cow::Borrowed(s))
    }

    #[test]
    fn g3proxy_field_names_are_interned_and_others_kept_as_they_came() {
        use crate::log::{EventTime, G3Log, Origin};
        let origin = Origin::Fluentd { tag: "t".into(), time: EventTime { secs: 0, nanos: 0 } };
        let unknown = String::from("x_site_field");
        let pairs = [
            (Cow::Borrowed("log_type"), ws("Task")),
            (Cow::Owned("total_time".to_string()), ws("1.500ms")),
            (Cow::Borrowed(unknown.as_str()), ws("7")),
        ];
        let log = G3Log::from_wire(pairs, String::new(), origin).unwrap();
        assert!(matches!(log.fields[0].0, Cow::Borrowed("log_type")));
        // An owned known name is swapped for the static one, and still typed by it.
        assert!(
            matches!(log.fields[1], (Cow::Borrowed("total_time"), Value::Number(ref n)) if n.as_u64() == Some(1_500_000))
        );
        assert!(matches!(&log.fields[2], (Cow::Owned(k), v) if k == "x_site_field" && v == "7"));
        // Each name the typing knows is one the interning knows, and the other way round.
        for key in ["task_id", "start_at", "wait_time", "server_addr", "server", "pid", "rsp_status", "c_rd_bytes"] {
            assert_eq!(known_name(key), Some(key));
            assert_ne!(field_type(key), FieldType::Text, "{key}");
        }
        assert_eq!((field_type("reason"), known_name("reason")), (FieldType::Text, Some("reason")));
        assert_eq!((field_type("x_site_field"), known_name("x_site_field")), (FieldType::Text, None));
    }

    #[test]
    fn types_follow_the_code() {
        assert_eq!(type_value("wait_time", ws("58.347µs")), Ok(Value::from(58_347u64)));
        assert_eq!(type_value("c_rd_bytes", ws("146")), Ok(Value::from(146u64)));
        assert_eq!(type_value("total_time", ws("1000.000ms")), Ok(Value::from(1_000_000_000u64)));
        assert_eq!(type_value("total_time", ws("72.2273ms")), Err(Value::from("72.2273ms")));
        assert_eq!(type_value("c_rd_bytes", ws("0146")), Err(Value::from("0146")));
        assert_eq!(type_value("rsp_status", ws("70000")), Err(Value::from("70000")));
        assert_eq!(type_value("reuse_connection", ws("false")), Ok(Value::from(false)));
        assert_eq!(type_value("reuse_connection", WireValue::Bare("false")), Ok(Value::from(false)));
        assert_eq!(type_value("client_addr", ws("[::1]:80")), Ok(Value::from("[::1]:80")));
        assert!(type_value("client_addr", ws("nope")).is_err());
        assert!(type_value("task_id", ws("8e1624fce57f11f18869c59c5f289d8d")).is_ok());
        assert!(type_value("task_id", ws("8e1624fc")).is_err());
        assert_eq!(type_value("start_at", ws("1970-01-01T00:00:01.000002Z")), Ok(Value::from(1_000_002_000i64)));
        assert_eq!(type_value("unknown_int", WireValue::Bare("12")), Ok(Value::from(12u64)));
        assert_eq!(type_value("unknown", ws("12")), Ok(Value::from("12")));
        assert_eq!(type_value("upstream", WireValue::Null), Ok(Value::Null));
        assert_eq!(type_value("pid", WireValue::Int(-1)), Err(Value::from(-1)));
    }

    #[test]
    fn reason_is_open() {
        assert_eq!(Reason::parse("ClosedByClient"), Reason::Known("ClosedByClient"));
        assert!(Reason::parse("ClosedByClient").is_success());
        assert_eq!(Reason::parse("Brand new").as_str(), "Brand new");
        assert!(!Reason::parse("UpstreamNotConnected").is_success());
    }

    #[test]
    fn typed_values_print_back_as_g3proxy_wrote_them() {
        assert_eq!(value_text("total_time", &Value::from(1_385_000u64)).as_deref(), Some("1.385ms"));
        assert_eq!(
            value_text("start_at", &Value::from(1_000_002_000i64)).as_deref(),
            Some("1970-01-01T00:00:01.000002Z")
        );
        assert_eq!(value_text("upstream", &Value::Null), None);
        assert!(is_bare_in_text("pid", &Value::from(3)));
        assert!(!is_bare_in_text("wait_time", &Value::from(3)));
    }
}
