//! Value formats of `lib/g3-slog-types`: Rust `{:.3?}` durations, RFC 3339 µs timestamps, and the Rust
//! `escape_debug` quoting of the syslog formats. Hand-written because each is a few lines and sits on the
//! hot path of every record.

use std::time::Duration;

/// `593.810µs`, `1.385ms`, `2.500s`, `12.000ns` (and `us` for µs) → nanoseconds. `None` if malformed or
/// beyond u64.
pub fn parse_duration(s: &str) -> Option<u64> {
    let (number, unit_ns) = if let Some(n) = s.strip_suffix("ns") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix("µs").or_else(|| s.strip_suffix("us")) {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000_000)
    } else {
        return None;
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if number.ends_with('.') || frac.len() > 9 {
        return None;
    }
    let mut ns = int.parse::<u64>().ok()?.checked_mul(unit_ns)?;
    // Fraction digits scaled to the unit; digits below 1 ns are ignored.
    let mut scale = unit_ns;
    for d in frac.bytes() {
        scale /= 10;
        ns = ns.checked_add(u64::from(d - b'0') * scale)?;
    }
    Some(ns)
}

/// Nanoseconds → Rust `{:.3?}` of a `Duration`, exactly as g3proxy writes it.
pub fn format_duration(ns: u64) -> String {
    format!("{:.3?}", Duration::from_nanos(ns))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |acc, &b| acc * 10 + i64::from(b - b'0')))
}

/// RFC 3339 (`2026-11-21T07:45:43.261926Z`, any fraction length up to ns, `Z` or `±hh:mm`) → ns since
/// the epoch. `None` if malformed.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, min, sec) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        nanos = digits(&frac[..n])? * 10i64.pow(9 - n as u32);
        rest = &frac[n..];
    }
    let offset_s = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let off = digits(&[*h1, *h2])? * 3600 + digits(&[*m1, *m2])? * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// ns since the epoch → RFC 3339 UTC with µs and `Z`, as g3proxy writes `start_at` (with ns when the
/// time has them, so nothing is lost).
pub fn format_timestamp(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    let frac = if nanos % 1_000 == 0 { format!("{:06}", nanos / 1_000) } else { format!("{nanos:09}") };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac}Z", tod / 3600, tod / 60 % 60, tod % 60)
}

/// Append `s` quoted the way g3proxy's syslog formats do: each char through `char::escape_debug`, and,
/// with `escape_bracket` (RFC 5424 SD values), `]` as `\]`.
pub fn push_escaped(out: &mut String, s: &str, escape_bracket: bool) {
    for c in s.chars() {
        if escape_bracket && c == ']' {
            out.push_str("\\]");
        } else {
            out.extend(c.escape_debug());
        }
    }
}

/// Undo [`push_escaped`]: `\t \r \n \0 \\ \' \" \]` and `\u{…}`. Unknown escapes are kept as written.
/// `None` for a `\u{…}` that is not a char, or a trailing lone backslash.
pub fn unescape(s: &str) -> Option<String> {
    if !s.contains('\\') {
        return Some(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'n' => out.push('\n'),
            '0' => out.push('\0'),
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let mut code = 0u32;
                let mut n = 0;
                loop {
                    let d = chars.next()?;
                    if d == '}' {
                        break;
                    }
                    n += 1;
                    if n > 6 {
                        return None;
                    }
                    code = code * 16 + d.to_digit(16)?;
                }
                out.push(char::from_u32(code)?);
            }
            other @ ('\\' | '\'' | '"' | ']') => out.push(other),
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for (text, ns) in [
            ("593.810µs", 593_810),
            ("1.385ms", 1_385_000),
            ("2.500s", 2_500_000_000),
            ("12.000ns", 12),
            ("1000.000ms", 1_000_000_000),
        ] {
            assert_eq!(parse_duration(text), Some(ns), "{text}");
        }
        for ns in [0u64, 1, 999, 1000, 58_347, 1_385_000, 2_500_000_000, 86_400_000_000_000] {
            assert_eq!(parse_duration(&format_duration(ns)), Some(ns));
        }
        for bad in ["", "s", "1.s", ".5s", "1.2.3ms", "1x", "-1ms", "99999999999999999999s", "1.0000000001s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let t = "2026-11-21T07:45:43.261926Z";
        let ns = parse_timestamp(t).unwrap();
        assert_eq!(ns, 1_795_247_143_261_926_000);
        assert_eq!(format_timestamp(ns), t);
        assert_eq!(parse_timestamp("2026-11-21T08:45:43.261926+01:00"), Some(ns));
        assert_eq!(format_timestamp(-1_000), "1969-12-31T23:59:59.999999Z");
        // Found by fuzzing: a time with ns must not lose them when written back.
        assert_eq!(format_timestamp(1_795_247_143_282_780_500), "2026-11-21T07:45:43.282780500Z");
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-11-21T07:45:43.Z",
            "2026-11-21T07:45:43",
            "2026-11-21T07:45:43.1234567890Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn escapes_round_trip() {
        for s in ["plain", "a\"d\"\ta", "时间\t\"Time\"", "[::ffff:1.2.3.4]:8123", "it's \\ \u{1b} \u{301}", "\n\r\0"]
        {
            let mut e = String::new();
            push_escaped(&mut e, s, true);
            assert_eq!(unescape(&e).as_deref(), Some(s), "{e}");
        }
        let mut e = String::new();
        push_escaped(&mut e, "[::ffff:1.2.3.4]:8123", true);
        assert_eq!(e, "[::ffff:1.2.3.4\\]:8123");
        assert_eq!(unescape("\\u{110000}"), None);
        assert_eq!(unescape("x\\"), None);
        assert_eq!(unescape("\\q").as_deref(), Some("\\q"));
    }
}
