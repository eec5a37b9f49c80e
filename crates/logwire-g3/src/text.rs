//! The RFC 3164 text body g3proxy writes by default: `MSG, k1="str", k2=123, k3=true` — MSG and string
//! values through Rust `escape_debug` (so neither holds a raw `"`), ints and bools bare, `None` omitted.
//!
//! MSG itself may contain `, word=`, so the split is ambiguous in principle: the first `, ` after which
//! the whole rest reads as a key=value list wins. Trying split points is bounded ([`MAX_SPLIT_TRIES`]) so
//! a hostile body costs linear time.

use crate::error::DecodeError;
use crate::schema::WireValue;
use crate::value::unescape;
use std::borrow::Cow;

/// A key and its value, both borrowed from the body where they need no unescaping.
pub type Pair<'a> = (Cow<'a, str>, WireValue<'a>);

/// Most `, ` positions tried as the end of MSG before giving up.
pub const MAX_SPLIT_TRIES: usize = 32;

/// Split a body into the unescaped MSG and its key/value pairs.
pub fn parse_body(body: &str) -> Result<(String, Vec<Pair<'_>>), DecodeError> {
    let mut from = 0;
    let mut tries = 0;
    let mut first_error = None;
    while let Some(pos) = body[from..].find(", ").map(|p| p + from) {
        match parse_pairs(body, pos) {
            Ok(pairs) => {
                let msg = unescape(&body[..pos]).ok_or(DecodeError::Text { at: 0, what: "bad escape in MSG" })?;
                return Ok((msg, pairs));
            }
            Err(e) => {
                first_error.get_or_insert(e);
                tries += 1;
                if tries >= MAX_SPLIT_TRIES {
                    break;
                }
                from = pos + 2;
            }
        }
    }
    Err(first_error.unwrap_or(DecodeError::Text { at: body.len(), what: "no key=value pairs" }))
}

/// Parse `, k=v, k="v"…` from `at` to the end.
fn parse_pairs(body: &str, mut at: usize) -> Result<Vec<Pair<'_>>, DecodeError> {
    let b = body.as_bytes();
    let err = |at: usize, what| DecodeError::Text { at, what };
    let mut pairs = Vec::with_capacity(32);
    while at < b.len() {
        if !body[at..].starts_with(", ") {
            return Err(err(at, "expected `, ` between pairs"));
        }
        at += 2;
        let key_len =
            b[at..].iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')).count();
        if key_len == 0 || b.get(at + key_len) != Some(&b'=') {
            return Err(err(at, "expected `key=`"));
        }
        let key = &body[at..at + key_len];
        at += key_len + 1;
        if b.get(at) == Some(&b'"') {
            let start = at + 1;
            let mut i = start;
            loop {
                match b.get(i) {
                    Some(b'\\') => i += 2,
                    Some(b'"') => break,
                    Some(_) => i += 1,
                    None => return Err(err(start, "quoted value never ends")),
                }
            }
            let raw = body.get(start..i).ok_or(err(start, "quoted value never ends"))?;
            // Strings are borrowed when they hold no escapes: the common case.
            let value = if raw.contains('\\') {
                Cow::Owned(unescape(raw).ok_or(err(start, "bad escape in value"))?)
            } else {
                Cow::Borrowed(raw)
            };
            pairs.push((Cow::Borrowed(key), WireValue::Str(value)));
            at = i + 1;
        } else {
            let end = body[at..].find(", ").map_or(b.len(), |e| e + at);
            let token = &body[at..end];
            if token.is_empty() || token.contains('"') {
                return Err(err(at, "bad bare value"));
            }
            pairs.push((Cow::Borrowed(key), WireValue::Bare(token)));
            at = end;
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_may_contain_comma_space() {
        let (msg, pairs) = parse_body("forbidden by rule: a, b, c=\"d e\", log_type=\"Task\", pid=1").unwrap();
        assert_eq!(msg, "forbidden by rule: a, b");
        assert_eq!(pairs.len(), 3);
        // Truly ambiguous: the first split after which everything reads as pairs wins.
        let (msg, _) = parse_body("x, b=c, log_type=\"Task\"").unwrap();
        assert_eq!(msg, "x");
        let (msg, pairs) = parse_body(", log_type=\"T\\\"x\", ok=true").unwrap();
        assert_eq!(msg, "");
        assert_eq!(pairs[0].1, WireValue::Str(Cow::Owned("T\"x".into())));
        assert_eq!(pairs[1].1, WireValue::Bare("true"));
    }

    #[test]
    fn hostile_bodies_fail_quickly() {
        assert!(parse_body("no pairs at all").is_err());
        assert!(parse_body(", k=\"never ends").is_err());
        // Every split point parses up to the very end, then fails: at most MAX_SPLIT_TRIES passes.
        let many = format!("{}, !", ", a=1".repeat(20_000));
        assert!(parse_body(&many).is_err());
    }
}
