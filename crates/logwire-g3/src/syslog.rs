//! The four syslog layouts g3proxy writes (`lib/g3-syslog/src/format/`), one decoder.
//!
//! Hand-written rather than on `syslog_loose`: that crate rejects the RFC 5424 + CEE form g3proxy emits,
//! leaves the RFC 3164 body as text, and does not undo the Rust `escape_debug` quoting inside SD values;
//! `benches/parse.rs` measures both on the same records and `tests/fixtures.rs` checks that both read the
//! same SD params out of the RFC 5424 capture.

use crate::error::DecodeError;
use crate::log::{G3Log, Origin, SyslogFormat, SyslogHeader};
use crate::schema::WireValue;
use crate::value::unescape;
use std::borrow::Cow;

/// Longest syslog record accepted (a TCP frame, a datagram or a line).
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// The CEE cookie g3proxy writes unless `cee_event_flag` says otherwise.
pub const CEE_FLAG: &str = "@cee:";

/// Decode one syslog record (a datagram, a frame, a line; a trailing `\n` or `\r\n` is ignored).
pub fn decode(bytes: &[u8]) -> Result<G3Log, DecodeError> {
    if bytes.len() > MAX_RECORD_LEN {
        return Err(DecodeError::TooLarge { len: bytes.len(), limit: MAX_RECORD_LEN });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)?;
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(text);
    let (pri, rest) = parse_pri(text)?;
    match rest.strip_prefix("1 ") {
        Some(after) => decode_5424(pri, after, text.len() - after.len()),
        None => decode_3164(pri, rest),
    }
}

fn parse_pri(text: &str) -> Result<(u8, &str), DecodeError> {
    let rest = text.strip_prefix('<').ok_or(DecodeError::Header("no <PRI>"))?;
    let end = rest.find('>').filter(|&e| (1..=3).contains(&e)).ok_or(DecodeError::Header("bad <PRI>"))?;
    let pri: u8 = rest[..end].parse().ok().filter(|&p| p <= 191).ok_or(DecodeError::Header("PRI above 191"))?;
    Ok((pri, &rest[end + 1..]))
}

/// Split off one space-terminated header field.
fn field(s: &str) -> Result<(&str, &str), DecodeError> {
    let end = s.find(' ').ok_or(DecodeError::Header("header ends early"))?;
    if end == 0 {
        return Err(DecodeError::Header("empty header field"));
    }
    Ok((&s[..end], &s[end + 1..]))
}

fn nil(s: &str) -> Option<String> {
    (s != "-").then(|| s.to_string())
}

fn decode_5424(pri: u8, s: &str, offset: usize) -> Result<G3Log, DecodeError> {
    let header_len = s.len();
    let (timestamp, s) = field(s)?;
    let (hostname, s) = field(s)?;
    let (app_name, s) = field(s)?;
    let (proc_id, s) = field(s)?;
    let (msg_id, s) = field(s)?;
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
    let (sd_id, params, msg) = parse_sd(s, body_at)?;
    header.sd_id = sd_id;
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

/// `-` or `[id k="v" …]…` then ` MSG`. Returns the first element's id, every param of every element,
/// and the MSG.
/// An SD: the first element's id, every param, and the MSG after it.
/// Param names are borrowed; values are borrowed unless they held escapes.
type Sd<'a> = (Option<String>, Vec<(&'a str, Cow<'a, str>)>, &'a str);

fn parse_sd(s: &str, at: usize) -> Result<Sd<'_>, DecodeError> {
    let err = |i: usize, what| DecodeError::StructuredData { at: at + i, what };
    let b = s.as_bytes();
    if let Some(rest) = s.strip_prefix('-') {
        let msg = rest.strip_prefix(' ').unwrap_or(rest);
        if !rest.is_empty() && !rest.starts_with(' ') {
            return Err(err(1, "expected a space after `-`"));
        }
        return Ok((None, Vec::new(), msg));
    }
    let mut i = 0;
    let mut first_id = None;
    // g3proxy task records carry 20–40 params: room up front instead of growing four times.
    let mut params = Vec::with_capacity(32);
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
            first_id = Some(s[i..id_end].to_string());
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
                    params.push((name, value));
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
    Ok((first_id, params, msg))
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
