//! The four syslog layouts g3proxy writes (`lib/g3-syslog/src/format/`), one decoder.
//!
//! Hand-written rather than on `syslog_loose`: that crate rejects the RFC 5424 + CEE form g3proxy emits,
//! leaves the RFC 3164 body as text, and does not undo the Rust `escape_debug` quoting inside SD values;
//! `benches/parse.rs` measures both on the same records and `tests/fixtures.rs` checks that both read the
//! same SD params out of the RFC 5424 capture.

use crate::error::DecodeError;
use crate::log::{G3Log, Origin, SyslogFormat, SyslogHeader};
use crate::record::{map_records, to_records, MappedFields};
use crate::schema::{known_field, type_str, Typed, WireValue};
use crate::value::unescape;
use logwire_model::{JsonObjectWriter, Record};
use std::borrow::Cow;

/// Longest syslog record accepted (a TCP frame, a datagram or a line).
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// The CEE cookie g3proxy writes unless `cee_event_flag` says otherwise.
pub const CEE_FLAG: &str = "@cee:";

/// Decode one syslog record (a datagram, a frame, a line; a trailing `\n` or `\r\n` is ignored).
pub fn decode(bytes: &[u8]) -> Result<G3Log, DecodeError> {
    let text = record_text(bytes)?;
    let (pri, rest) = parse_pri(text)?;
    match rest.strip_prefix("1 ") {
        Some(after) => decode_5424(pri, after, text.len() - after.len()),
        None => decode_3164(pri, rest),
    }
}

/// [`decode`] then [`to_records`], the records pushed onto `out`: the same records and the same error.
///
/// RFC 5424 with an SD element, the layout of g3proxy's `format_rfc5424`, takes a fused path: each SD param
/// is typed and rendered straight into the attrs' JSON, with no [`G3Log`] (no `String` or [`Value`] per
/// field) in between. Every other layout, and an SD that needs [`G3Log`]'s rules for odd input (a key
/// that repeats, a value that does not fit its type, a `msg` or `untyped` param, no `log_type`), takes
/// [`decode`] and [`to_records`]. The two paths share the typing rules (`schema::type_str`) and the
/// mapping (`record::map_records`); this module's tests check that they agree on the captures and on odd
/// input, and the `g3_syslog` fuzz target on arbitrary bytes.
///
/// [`Value`]: serde_json::Value
pub fn decode_to_records(bytes: &[u8], received_ns: i64, out: &mut Vec<Record>) -> Result<(), DecodeError> {
    if fused_5424_sd(bytes, received_ns, out).is_some() {
        return Ok(());
    }
    out.extend(to_records(&decode(bytes)?, received_ns));
    Ok(())
}

/// The fused path of [`decode_to_records`]; `None` (and nothing pushed) hands the record to the general one,
/// which also gives the errors.
fn fused_5424_sd(bytes: &[u8], received_ns: i64, out: &mut Vec<Record>) -> Option<()> {
    let (_pri, rest) = parse_pri(record_text(bytes).ok()?).ok()?;
    let ([timestamp, ..], s) = header_5424(rest.strip_prefix("1 ")?).ok()?;
    if !s.starts_with('[') {
        return None;
    }
    let mut attrs = JsonObjectWriter::with_capacity(1024);
    // Filled for every record, kept only for a finished task: whether it is one shows only once every
    // param has been read, and the subset is a few short members.
    let mut start_attrs = JsonObjectWriter::with_capacity(256);
    let mut mapped = MappedFields::default();
    // Names seen: a bit each for g3proxy's own, a short list for any other (usually none).
    let mut known_seen = 0u128;
    let mut others_seen: Vec<&str> = Vec::new();
    let mut general = false;
    let (_sd_id, msg) = parse_sd(s, 0, |name, value| {
        if general {
            return;
        }
        let typed = match known_field(name) {
            Some(field) => {
                // A repeated name, or a `msg` param beside the MSG: [`G3Log`]'s rules for those.
                if known_seen & field.bit != 0 || field.name == "msg" {
                    general = true;
                    return;
                }
                known_seen |= field.bit;
                // A value that does not fit its type is listed as untyped: the general path does that.
                let Some(typed) = type_str(field.ty, &value) else {
                    general = true;
                    return;
                };
                let write = |attrs: &mut JsonObjectWriter| {
                    match typed {
                        Typed::Str(v) => attrs.str_plain(field.key, v),
                        Typed::U64(n) => attrs.u64_plain(field.key, n),
                        Typed::I64(n) => attrs.i64_plain(field.key, n),
                        Typed::Bool(b) => attrs.bool_plain(field.key, b),
                    };
                };
                if field.start_attr {
                    attrs.member_also(&mut start_attrs, write);
                } else {
                    write(&mut attrs);
                }
                typed
            }
            None => {
                // The list stays short: past 16 other names the general path's hash set takes over.
                if name == "untyped" || others_seen.len() == 16 || others_seen.contains(&name) {
                    general = true;
                    return;
                }
                others_seen.push(name);
                attrs.str(name, &value);
                Typed::Str(&value)
            }
        };
        mapped.note(name, matches!(typed, Typed::Str(_)).then_some(&value), typed.as_i64());
    })
    .ok()?;
    if general {
        return None;
    }
    mapped.log_type()?;
    let msg = unescape(strip_bom(msg))?;
    if !msg.is_empty() {
        attrs.str("msg", &msg);
    }
    let start_attrs = mapped.is_finished_task().then_some(start_attrs);
    let fallback_ns = || crate::value::parse_timestamp(timestamp).unwrap_or(received_ns);
    map_records(&mapped, &msg, fallback_ns, attrs, start_attrs, out);
    Some(())
}

/// A record's bytes as text, within [`MAX_RECORD_LEN`], without its trailing `\n` or `\r\n`.
fn record_text(bytes: &[u8]) -> Result<&str, DecodeError> {
    if bytes.len() > MAX_RECORD_LEN {
        return Err(DecodeError::TooLarge { len: bytes.len(), limit: MAX_RECORD_LEN });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)?;
    Ok(text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(text))
}

fn parse_pri(text: &str) -> Result<(u8, &str), DecodeError> {
    let rest = text.strip_prefix('<').ok_or(DecodeError::Header("no <PRI>"))?;
    let end = rest.find('>').filter(|&e| (1..=3).contains(&e)).ok_or(DecodeError::Header("bad <PRI>"))?;
    let pri: u8 = rest[..end].parse().ok().filter(|&p| p <= 191).ok_or(DecodeError::Header("PRI above 191"))?;
    Ok((pri, &rest[end + 1..]))
}

/// Split off one space-terminated header field.
fn field(s: &str) -> Result<(&str, &str), DecodeError> {
    let end = memchr::memchr(b' ', s.as_bytes()).ok_or(DecodeError::Header("header ends early"))?;
    if end == 0 {
        return Err(DecodeError::Header("empty header field"));
    }
    Ok((&s[..end], &s[end + 1..]))
}

/// The RFC 5424 header after `1 `: TIMESTAMP, HOSTNAME, APP-NAME, PROCID and MSGID, then the rest.
fn header_5424(s: &str) -> Result<([&str; 5], &str), DecodeError> {
    let mut fields = [""; 5];
    let mut rest = s;
    for f in &mut fields {
        (*f, rest) = field(rest)?;
    }
    Ok((fields, rest))
}

fn nil(s: &str) -> Option<String> {
    (s != "-").then(|| s.to_string())
}

fn decode_5424(pri: u8, s: &str, offset: usize) -> Result<G3Log, DecodeError> {
    let header_len = s.len();
    let ([timestamp, hostname, app_name, proc_id, msg_id], s) = header_5424(s)?;
    let mut header = SyslogHeader {
        format: SyslogFormat::Rfc5424Sd,
        pri,
        timestamp: timestamp.to_string(),
        hostname: nil(hostname),
        app_name: app_name.to_string(),
        proc_id: proc_id.to_string(),
        msg_id: nil(msg_id),
        sd_id: None,
        cee_flag: None,
    };
    let body_at = offset + header_len - s.len();
    if let Some(json) = cee_body(s) {
        header.format = SyslogFormat::Rfc5424Cee;
        header.cee_flag = Some(s[..s.len() - json.len()].to_string());
        return decode_cee(json, Origin::Syslog(header));
    }
    // g3proxy task records carry 20–40 params: room up front instead of growing four times.
    let mut params = Vec::with_capacity(32);
    let (sd_id, msg) = parse_sd(s, body_at, |name, value| params.push((name, value)))?;
    header.sd_id = sd_id.map(str::to_string);
    let msg = strip_bom(msg);
    if header.sd_id.is_none() {
        // No SD: an RFC 3164 g3proxy record a relay (rsyslog's RFC 5424 templates) re-wrapped; its body is
        // the MSG. Re-encoding it gives the relay's layout back, not g3proxy's.
        if let Some(json) = cee_body(msg) {
            header.format = SyslogFormat::Rfc5424Cee;
            header.cee_flag = Some(msg[..msg.len() - json.len()].to_string());
            return decode_cee(json, Origin::Syslog(header));
        }
        if let Ok((text_msg, pairs)) = crate::text::parse_body(msg) {
            header.format = SyslogFormat::Rfc5424Text;
            return G3Log::from_wire(pairs, text_msg, Origin::Syslog(header));
        }
    }
    let msg = unescape(msg).ok_or(DecodeError::Header("bad escape in MSG"))?;
    G3Log::from_wire(
        params.into_iter().map(|(k, v)| (Cow::Borrowed(k), WireValue::Str(v))),
        msg,
        Origin::Syslog(header),
    )
}

fn strip_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

/// The JSON of a `@cee:{…}` body (any `@…:` cookie followed by `{`).
fn cee_body(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix(CEE_FLAG) {
        return Some(rest.trim_start());
    }
    // A custom `cee_event_flag`: `@word:` then the object.
    let rest = s.strip_prefix('@')?;
    let colon = rest.find(':')?;
    let json = rest[colon + 1..].trim_start();
    (colon <= 64 && !rest[..colon].contains(' ') && json.starts_with('{')).then_some(json)
}

/// `-` or `[id k="v" …]…` then ` MSG`: every param of every element goes to `param` in order (names
/// borrowed; values borrowed unless they held escapes). Returns the first element's id and the MSG.
// Kept out of line: inlined into `decode_to_records` (with its visitor inlined into it) the listener ran
// 4 % more instructions per record (callgrind, `ingest_tcp 300`: 174.1M → 181.0M).
#[inline(never)]
fn parse_sd<'a>(
    s: &'a str,
    at: usize,
    mut param: impl FnMut(&'a str, Cow<'a, str>),
) -> Result<(Option<&'a str>, &'a str), DecodeError> {
    let err = |i: usize, what| DecodeError::StructuredData { at: at + i, what };
    let b = s.as_bytes();
    if let Some(rest) = s.strip_prefix('-') {
        let msg = rest.strip_prefix(' ').unwrap_or(rest);
        if !rest.is_empty() && !rest.starts_with(' ') {
            return Err(err(1, "expected a space after `-`"));
        }
        return Ok((None, msg));
    }
    let mut i = 0;
    let mut first_id = None;
    if b.first() != Some(&b'[') {
        return Err(err(0, "expected `[` or `-`"));
    }
    while b.get(i) == Some(&b'[') {
        i += 1;
        let id_end = s[i..].find([' ', ']']).map(|e| e + i).ok_or_else(|| err(i, "SD-ID never ends"))?;
        if id_end == i {
            return Err(err(i, "empty SD-ID"));
        }
        if first_id.is_none() {
            first_id = Some(&s[i..id_end]);
        }
        i = id_end;
        loop {
            match b.get(i) {
                Some(b']') => {
                    i += 1;
                    break;
                }
                Some(b' ') => {
                    i += 1;
                    // One byte loop over the name (on names this short, `str::find` costs more in setup than it
                    // saves): it ends at `=`; a space, `]` or `"` before it is not a name.
                    let eq = match b[i..].iter().position(|&c| matches!(c, b'=' | b' ' | b']' | b'"')) {
                        Some(e) if b[i + e] == b'=' && e > 0 => i + e,
                        Some(_) => return Err(err(i, "bad param name")),
                        None => return Err(err(i, "param without `=`")),
                    };
                    let name = &s[i..eq];
                    i = eq + 1;
                    if b.get(i) != Some(&b'"') {
                        return Err(err(i, "param value not quoted"));
                    }
                    i += 1;
                    let start = i;
                    let mut escaped = false;
                    // To the closing quote, skipping escaped characters; memchr2 jumps over plain text.
                    loop {
                        let next = b.get(i..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest));
                        match next.map(|off| i + off) {
                            Some(at) if b[at] == b'\\' => {
                                escaped = true;
                                i = at + 2;
                            }
                            Some(at) => {
                                i = at;
                                break;
                            }
                            None => return Err(err(i.min(b.len()), "param value never ends")),
                        }
                    }
                    let raw = s.get(start..i).ok_or_else(|| err(start, "param value never ends"))?;
                    let value = if escaped {
                        Cow::Owned(unescape(raw).ok_or_else(|| err(start, "bad escape in param value"))?)
                    } else {
                        Cow::Borrowed(raw)
                    };
                    param(name, value);
                    i += 1;
                }
                _ => return Err(err(i, "expected ` name=\"value\"` or `]`")),
            }
        }
    }
    let rest = &s[i..];
    let msg = match rest.strip_prefix(' ') {
        Some(m) => m,
        None if rest.is_empty() => "",
        None => return Err(err(i, "expected a space after the SD")),
    };
    Ok((first_id, msg))
}

fn decode_3164(pri: u8, s: &str) -> Result<G3Log, DecodeError> {
    // `Mmm dd hh:mm:ss ` (the day is space-padded), then `[hostname ]tag[pid]: `.
    let ts = s.get(..15).ok_or(DecodeError::Header("RFC 3164 timestamp too short"))?;
    let tb = ts.as_bytes();
    if tb[3] != b' ' || tb[6] != b' ' || tb[9] != b':' || tb[12] != b':' || s.as_bytes().get(15) != Some(&b' ') {
        return Err(DecodeError::Header("bad RFC 3164 timestamp"));
    }
    let rest = &s[16..];
    let (first, after_first) = field(rest)?;
    let (hostname, tag, body) = if first.ends_with(':') {
        (None, first, after_first)
    } else {
        let (tag, body) = field(after_first)?;
        (Some(first.to_string()), tag, body)
    };
    let tag = tag.strip_suffix(':').ok_or(DecodeError::Header("tag does not end with `:`"))?;
    let (app_name, proc_id) = match tag.split_once('[') {
        Some((app, pid)) => (app, pid.strip_suffix(']').ok_or(DecodeError::Header("bad [pid] in tag"))?),
        None => (tag, ""),
    };
    let mut header = SyslogHeader {
        format: SyslogFormat::Rfc3164Text,
        pri,
        timestamp: ts.to_string(),
        hostname,
        app_name: app_name.to_string(),
        proc_id: proc_id.to_string(),
        msg_id: None,
        sd_id: None,
        cee_flag: None,
    };
    if let Some(json) = cee_body(body) {
        header.format = SyslogFormat::Rfc3164Cee;
        header.cee_flag = Some(body[..body.len() - json.len()].to_string());
        return decode_cee(json, Origin::Syslog(header));
    }
    let (msg, pairs) = crate::text::parse_body(body)?;
    G3Log::from_wire(pairs, msg, Origin::Syslog(header))
}

/// `{"k": v, …, "msg": "…"}`, keys kept in order; `msg` becomes the message.
pub(crate) fn decode_cee(json: &str, origin: Origin) -> Result<G3Log, DecodeError> {
    use crate::json::{CeeObject, CeeValue};
    let object: CeeObject<'_> = serde_json::from_str(json).map_err(|e| DecodeError::Cee(e.to_string()))?;
    let mut msg = String::new();
    let mut wire = Vec::with_capacity(object.0.len());
    // Arrays and objects pass through typing as null and are put back as they came.
    let mut nested = Vec::new();
    for (k, v) in object.0 {
        match v {
            CeeValue::Wire(WireValue::Str(s)) if k == "msg" => msg = s.into_owned(),
            CeeValue::Wire(w) => wire.push((k, w)),
            CeeValue::Nested(value) => {
                nested.push((wire.len(), value));
                wire.push((k, WireValue::Null));
            }
        }
    }
    let mut log = G3Log::from_wire(wire, msg, origin)?;
    for (i, value) in nested {
        if let Some((_, slot)) = log.fields.get_mut(i) {
            *slot = value;
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn capture_lines(rel: &str) -> Vec<Vec<u8>> {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/g3").join(rel);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
    }

    /// The general path's records (or error) for `bytes`.
    fn general(bytes: &[u8]) -> Result<Vec<Record>, DecodeError> {
        decode(bytes).map(|log| to_records(&log, 7))
    }

    #[test]
    fn the_fused_path_takes_every_captured_rfc5424_record_and_maps_it_as_the_general_path_does() {
        let lines = capture_lines("rfc5424/syslog-udp.raw");
        assert!(lines.len() >= 20, "{} lines", lines.len());
        for line in &lines {
            let mut fused = Vec::new();
            assert!(fused_5424_sd(line, 7, &mut fused).is_some(), "{}", String::from_utf8_lossy(line));
            assert_eq!(fused, general(line).unwrap(), "{}", String::from_utf8_lossy(line));
        }
        // Other layouts go the general way, with the same result.
        for line in capture_lines("rfc3164/syslog-udp.raw") {
            assert!(fused_5424_sd(&line, 7, &mut Vec::new()).is_none());
            let mut out = Vec::new();
            decode_to_records(&line, 7, &mut out).unwrap();
            assert_eq!(out, general(&line).unwrap());
        }
    }

    #[test]
    fn a_record_of_a_hundred_thousand_params_decodes_with_every_name_once() {
        // ~1 MiB of distinct names, and of one repeated name: the repeat checks are linear (a quadratic one
        // took a minute on this record).
        for distinct in [true, false] {
            let mut line = String::from(
                "<29>1 2026-11-21T07:45:43.263082Z - g3proxy 5714 g3proxy [g3proxy@32473 log_type=\"Task\"",
            );
            let mut i = 0;
            while line.len() < MAX_RECORD_LEN - 32 {
                if distinct {
                    line.push_str(&format!(" k{i}=\"\""));
                } else {
                    line.push_str(" k=\"\"");
                }
                i += 1;
            }
            line.push(']');
            let mut out = Vec::new();
            decode_to_records(line.as_bytes(), 7, &mut out).unwrap();
            let attrs: serde_json::Map<String, Value> =
                serde_json::from_str(out[1].attrs_json.as_deref().unwrap()).unwrap();
            assert_eq!(attrs.len(), if distinct { i + 1 } else { 2 });
        }
    }

    #[test]
    fn odd_rfc5424_records_leave_the_fused_path_and_get_the_general_paths_records_or_error() {
        let head = "<29>1 2026-11-21T07:45:43.263082Z - g3proxy 5714 g3proxy ";
        let finished = r#"log_type="Task" task_type="TcpConnect" task_event="Finished" start_at="2026-11-21T07:45:43.261926Z" task_id="8e1624fce57f11f18869c59c5f289d8d""#;
        // (SD params, whether the fused path keeps it)
        let cases = [
            (format!("[g3proxy@32473 {finished} total_time=\"1.126ms\" reason=\"Idle\" uri=\"a\\\"b\"] \u{feff}done"), true),
            (format!("[g3proxy@32473 {finished}][other@1 server_name=\"x\"] msg"), true),
            (r#"[g3proxy@32473 log_type="Escape" escape_type="X" task_id="8e1624fce57f11f18869c59c5f289d8d"] e"#.to_string(), true),
            (r#"[g3proxy@32473 log_type="Resolve" resolver_name="r" domain="d" duration="1.000ms"]"#.to_string(), true),
            (r#"[g3proxy@32473 log_type="Intercept" intercept_type="Http"] i"#.to_string(), true),
            (r#"[g3proxy@32473 log_type="Task" task_event="Periodic" ready_time="2.000ms" start_at="2026-11-21T07:45:43.261926Z"]"#.to_string(), true),
            (r#"[g3proxy@32473 log_type="Novel" start_at="not a time"]"#.to_string(), false),
            (format!("[g3proxy@32473 {finished} total_time=\"1.5ms\"]"), true),
            (format!("[g3proxy@32473 {finished} total_time=\"1.1265ms\"]"), false),
            (format!("[g3proxy@32473 {finished} total_time=\"soon\"]"), false),
            (format!("[g3proxy@32473 {finished} c_rd_bytes=\"007\"]"), false),
            (format!("[g3proxy@32473 {finished} server_name=\"a\" server_name=\"b\"]"), false),
            (format!("[g3proxy@32473 {finished} msg=\"inner\"] outer"), false),
            (format!("[g3proxy@32473 {finished} untyped=\"x\"]"), false),
            (format!("[g3proxy@32473 {finished} custom=\"x\" na\tme=\"y\"]"), true),
            (format!("[g3proxy@32473 {finished} custom=\"x\" custom=\"y\"]"), false),
            (r#"[g3proxy@32473 log_type="Escape" escape_type="A\"B" task_id="8e1624fce57f11f18869c59c5f289d8d"]"#.to_string(), true),
            (r#"[g3proxy@32473 server_name="no log type"]"#.to_string(), false),
            (r#"[g3proxy@32473 log_type="Task" uri="never ends]"#.to_string(), false),
            ("- not g3".to_string(), false),
            (r#"@cee:{"log_type":"Task"}"#.to_string(), false),
        ];
        for (sd, fused_keeps_it) in &cases {
            let line = format!("{head}{sd}");
            let mut fused = Vec::new();
            let took = fused_5424_sd(line.as_bytes(), 7, &mut fused).is_some();
            assert_eq!(took, *fused_keeps_it, "{line}");
            if !took {
                assert!(fused.is_empty(), "{line}");
            }
            let mut out = Vec::new();
            let got = decode_to_records(line.as_bytes(), 7, &mut out).map(|()| out);
            assert_eq!(format!("{got:?}"), format!("{:?}", general(line.as_bytes())), "{line}");
        }
    }

    #[test]
    fn cee_keeps_order_escapes_nested_values_and_types_scalars() {
        let line = r#"<29>1 2026-11-21T07:45:43.263082Z - g3proxy 5714 g3proxy @cee:{"log_type":"Task","uri":"http://x/\"q\u00e9","extra":[1,{"a":null}],"obj":{"k":"v"},"c_rd_bytes":141,"offset":-3,"ratio":0.5,"gone":null,"msg":"a\nb","task_id":"8e1624fce57f11f18869c59c5f289d8d"}"#;
        let log = decode(line.as_bytes()).unwrap();
        let keys: Vec<&str> = log.fields.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["log_type", "uri", "extra", "obj", "c_rd_bytes", "offset", "ratio", "gone", "task_id"]);
        assert_eq!(log.get_str("uri"), Some("http://x/\"q\u{e9}"));
        assert_eq!(log.get("extra"), Some(&serde_json::json!([1, {"a": null}])));
        assert_eq!(log.get("obj"), Some(&serde_json::json!({"k": "v"})));
        assert_eq!(log.get_u64("c_rd_bytes"), Some(141));
        assert_eq!(log.get("offset"), Some(&serde_json::json!(-3)));
        assert_eq!(log.get("ratio"), Some(&serde_json::json!(0.5)));
        assert_eq!(log.get("gone"), Some(&Value::Null));
        assert_eq!(log.msg, "a\nb");
        assert!(decode(br#"<29>1 - - g3proxy 1 g3proxy @cee:{"log_type":"#).is_err());
    }

    #[test]
    fn rfc5424_sd_with_escapes_and_empty_msg() {
        let line = "<29>1 2026-11-21T07:45:43.261983Z - g3proxy 5714 g3proxy [g3proxy@32473 log_type=\"Task\" \
                    uri=\"http://x/\\\"a\\]b\\t\" c_rd_bytes=\"146\" task_id=\"8e1624fce57f11f18869c59c5f289d8d\"] ";
        let log = decode(line.as_bytes()).unwrap();
        assert_eq!(log.get_str("uri"), Some("http://x/\"a]b\t"));
        assert_eq!(log.get_u64("c_rd_bytes"), Some(146));
        assert_eq!(log.msg, "");
        let Origin::Syslog(h) = &log.origin else { panic!() };
        assert_eq!(h.sd_id.as_deref(), Some("g3proxy@32473"));
        assert_eq!(h.msg_id.as_deref(), Some("g3proxy"));
        assert_eq!(h.format, SyslogFormat::Rfc5424Sd);
    }

    #[test]
    fn rfc5424_cee_is_accepted() {
        let line = "<29>1 2026-11-21T07:45:43.263082Z - g3proxy 5714 g3proxy @cee:{\"log_type\":\"Task\",\
                    \"c_rd_bytes\":141,\"reuse_connection\":false,\"total_time\":\"1.385ms\",\"msg\":\"finished\"}";
        let log = decode(line.as_bytes()).unwrap();
        assert_eq!(log.msg, "finished");
        assert_eq!(log.get_u64("total_time"), Some(1_385_000));
        assert_eq!(log.get("reuse_connection"), Some(&Value::Bool(false)));
        let Origin::Syslog(h) = &log.origin else { panic!() };
        assert_eq!(h.format, SyslogFormat::Rfc5424Cee);
    }

    #[test]
    fn rfc3164_text_cee_and_hostname() {
        let line = "<29>Nov  1 07:45:53 host1 g3proxy[5881]: closed by client, log_type=\"Task\", \
                    pid=5881, reuse_connection=true, total_time=\"2.500s\"";
        let log = decode(line.as_bytes()).unwrap();
        assert_eq!(log.msg, "closed by client");
        assert_eq!(log.get_u64("pid"), Some(5881));
        assert_eq!(log.get_u64("total_time"), Some(2_500_000_000));
        let Origin::Syslog(h) = &log.origin else { panic!() };
        assert_eq!(h.hostname.as_deref(), Some("host1"));
        assert_eq!(h.timestamp, "Nov  1 07:45:53");
        let cee = "<29>Nov 21 07:45:53 g3proxy[5881]: @cee:{\"log_type\":\"Escape\",\"msg\":\"x\"}";
        let log = decode(cee.as_bytes()).unwrap();
        assert_eq!(log.log_type(), crate::schema::LogType::Escape);
        assert_eq!(log.msg, "x");
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in ["", "<", "<999>x", "<29>1 ", "<29>1 a b c d e [x", "<29>Nov 21", "<29>1 a b c d e [x y]", "hello"] {
            assert!(decode(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(decode(b"<29>1 t - a 1 - - plain message"), Err(DecodeError::NotG3));
        // A relay that re-wrapped an RFC 3164 record in RFC 5424 without SD.
        let relayed =
            decode(b"<29>1 2026-11-21T07:45:53+00:00 host g3proxy 5881 - - closed, log_type=\"Task\", pid=5881")
                .unwrap();
        assert_eq!((relayed.msg.as_str(), relayed.get_u64("pid")), ("closed", Some(5881)));
        // …and re-encodes in that layout, bare values staying bare (found by fuzzing).
        let again = crate::emit::reencode(&relayed);
        assert_eq!(decode(&again).unwrap().fields, relayed.fields);
        assert!(again.ends_with(b" - closed, log_type=\"Task\", pid=5881"), "{}", String::from_utf8_lossy(&again));
        assert_eq!(decode(&[0xff, 0xfe]), Err(DecodeError::NotUtf8));
    }
}
