//! # Request templates: the messages HAProxy would send, without HAProxy
//!
//! logwire's engine-side client (a load generator and probe) takes a `spoe.conf` and sends "the same
//! messages HAProxy would". This module does the HAProxy part: it evaluates each arg's sample
//! expression against a [`RequestTemplate`] (a made-up HTTP request and response) and encodes the
//! result with the typed data HAProxy 2.6 uses (`spoe_encode_data`, notes §1.3):
//!
//! | samples | type |
//! |---|---|
//! | `src`, `dst`, `req.hdr_ip(..)`, `ipv4(..)`, `ipv6(..)` | IPV4 / IPV6 |
//! | every integer: `src_port`, `dst_port`, `req.hdr_cnt(..)`, `req.body_len`, `status`, `fe_id`, `int(..)`, `date`… | INT64 |
//! | `method`, `path`, `url`, `query`, `pathq`, `base`, `req.ver`, `req.hdr(..)`, `req.fhdr(..)`, `req.cook(..)`, `req.hdrs`, `unique-id`, `fe_name`, `be_name`, `ssl_fc_sni`, `str(..)` | STRING |
//! | `req.hdrs_bin`, `res.hdrs_bin`, `req.body`, `res.body`, `bin(..)` | BINARY |
//! | `ssl_fc`, `ssl_c_used`, `src_is_local`, `http_first_req`, `req.proto_http`, `bool(..)`, `always_true`, `always_false` | BOOL |
//!
//! Details that match HAProxy: header names are lowercase in `req.hdrs`/`req.hdrs_bin` (HTX stores
//! them so); `req.hdr(name[,occ])` splits values on commas and takes the last one by default,
//! `req.fhdr` does not split; a sample that is not available (a missing header, `query` without
//! `?`, `var(..)`, `env(..)`) is sent as NULL. `req.hdrs_bin` is HAProxy's `smp_fetch_hdrs_bin`
//! layout: for each header a varint length and the name, a varint length and the value, ended by two
//! zero-length strings (`00 00`).
//!
//! Not evaluated: **unknown fetches are sent as a STRING holding the expression text** (so the
//! agent still sees something with the right name), and converters other than `lower`, `upper`,
//! `length` and `hex` are skipped (the fetched value is sent unchanged).
//!
//! `{seq}` in the path, query, header values and unique-id is replaced by the sequence number given
//! to [`build_messages`], so that every generated request differs.

use crate::conf::{SpoeConfig, SpoeMessage};
use crate::data::TypedData;
use crate::message::{Arg, Message};
use crate::varint;
use bytes::Bytes;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A made-up HTTP exchange to evaluate sample expressions against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTemplate {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub method: String,
    /// The path, without the query string; may contain `{seq}`.
    pub path: String,
    /// The query string (after `?`), if any; may contain `{seq}`.
    pub query: Option<String>,
    /// HTTP version as `req.ver` gives it (`1.1`, `2.0`).
    pub version: String,
    /// Request headers in order; names as written (HAProxy lowercases them in `req.hdrs*`).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// `ssl_fc`: whether the client connection is TLS.
    pub ssl: bool,
    /// `ssl_fc_sni`, when `ssl`.
    pub sni: Option<String>,
    /// `unique-id`; `None` is what HAProxy has without `unique-id-format` (NULL).
    pub unique_id: Option<String>,
    pub frontend: String,
    pub frontend_id: i64,
    pub backend: String,
    pub backend_id: i64,
    /// `date`: Unix time in seconds (fixed, so that generated messages are reproducible).
    pub date: i64,
    /// Response, for `on-http-response` messages.
    pub status: u16,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Bytes,
}

impl Default for RequestTemplate {
    /// `GET /index.html HTTP/1.1` from 127.0.0.1:40000 to 127.0.0.1:8080 with `host`, `user-agent`
    /// and `accept` headers, no body; `unique-id` `logwire-{seq}`; response `200` `text/plain`.
    fn default() -> Self {
        RequestTemplate {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            src_port: 40000,
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst_port: 8080,
            method: "GET".into(),
            path: "/index.html".into(),
            query: None,
            version: "1.1".into(),
            headers: vec![
                ("host".into(), "127.0.0.1:8080".into()),
                ("user-agent".into(), concat!("logwire/", env!("CARGO_PKG_VERSION")).into()),
                ("accept".into(), "*/*".into()),
            ],
            body: Bytes::new(),
            ssl: false,
            sni: None,
            unique_id: Some("logwire-{seq}".into()),
            frontend: "fe_http".into(),
            frontend_id: 1,
            backend: "be_app".into(),
            backend_id: 2,
            date: 1_700_000_000,
            status: 200,
            response_headers: vec![("content-type".into(), "text/plain".into()), ("content-length".into(), "3".into())],
            response_body: Bytes::from_static(b"ok\n"),
        }
    }
}

/// The messages of the agent's `messages` list (in its order) that are attached to `event`, in the
/// scope of `engine` (`None`: the unnamed scope). Empty when the engine or its agent is missing.
pub fn messages_for_event<'a>(conf: &'a SpoeConfig, engine: Option<&str>, event: &str) -> Vec<&'a SpoeMessage> {
    conf.engine(engine).map_or_else(Vec::new, |scope| {
        scope.event_messages().into_iter().filter(|m| m.event.as_ref().is_some_and(|e| e.event == event)).collect()
    })
}

/// Builds the NOTIFY messages HAProxy would send for `req`, one per configured message, args in the
/// configured order with their configured names (unnamed args get an empty name). `{seq}` is
/// replaced by `seq`.
pub fn build_messages(conf_agent_messages: &[&SpoeMessage], req: &RequestTemplate, seq: u64) -> Vec<Message> {
    let ctx = Ctx::new(req, seq);
    conf_agent_messages
        .iter()
        .map(|m| {
            let args =
                m.args.iter().map(|a| Arg::new(Bytes::from(a.wire_name().to_string()), ctx.eval(&a.sample))).collect();
            Message::new(Bytes::from(m.name.clone()), args)
        })
        .collect()
}

/// Evaluates one sample expression (`src`, `req.hdr(host),lower`…) against `req`, as
/// [`build_messages`] does.
pub fn eval_sample(sample: &str, req: &RequestTemplate, seq: u64) -> TypedData {
    Ctx::new(req, seq).eval(sample)
}

/// The request with `{seq}` substituted.
struct Ctx<'a> {
    req: &'a RequestTemplate,
    path: Cow<'a, str>,
    query: Option<Cow<'a, str>>,
    headers: Vec<(&'a str, Cow<'a, str>)>,
    unique_id: Option<Cow<'a, str>>,
}

fn subst<'s>(s: &'s str, seq: &str) -> Cow<'s, str> {
    if s.contains("{seq}") {
        Cow::Owned(s.replace("{seq}", seq))
    } else {
        Cow::Borrowed(s)
    }
}

impl<'a> Ctx<'a> {
    fn new(req: &'a RequestTemplate, seq: u64) -> Self {
        let seq_s = seq.to_string();
        Ctx {
            req,
            path: subst(&req.path, &seq_s),
            query: req.query.as_deref().map(|q| subst(q, &seq_s)),
            headers: req.headers.iter().map(|(n, v)| (n.as_str(), subst(v, &seq_s))).collect(),
            unique_id: req.unique_id.as_deref().map(|u| subst(u, &seq_s)),
        }
    }

    fn url(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.to_string(),
        }
    }

    fn eval(&self, sample: &str) -> TypedData {
        let parts = split_top_level(sample, ',');
        let Some((fetch, convs)) = parts.split_first() else {
            return TypedData::Null;
        };
        let (name, args) = split_call(fetch);
        let value = match self.fetch(name, &args) {
            Fetched::Value(v) => v,
            Fetched::Missing => return TypedData::Null,
            Fetched::Unknown => return TypedData::string(sample),
        };
        convs.iter().fold(value, |v, c| convert(v, split_call(c).0))
    }

    fn fetch(&self, name: &str, args: &[String]) -> Fetched {
        use Fetched::{Missing, Value};
        let r = self.req;
        let a0 = args.first().map(String::as_str).unwrap_or("");
        let s = |v: &str| Value(TypedData::string(v));
        let int = |v: i64| Value(TypedData::Int64(v));
        let opt = |v: Option<TypedData>| v.map_or(Missing, Value);
        match name {
            "src" => Value(ip(r.src)),
            "dst" => Value(ip(r.dst)),
            "src_port" => int(i64::from(r.src_port)),
            "dst_port" => int(i64::from(r.dst_port)),
            "src_is_local" => Value(TypedData::Bool(r.src.is_loopback())),
            "method" | "capture.req.method" => s(&r.method),
            "path" => s(&self.path),
            "query" => opt(self.query.as_deref().map(TypedData::string)),
            "url" | "pathq" | "capture.req.uri" => s(&self.url()),
            "base" => match self.last_value(&self.headers, "host", true, -1) {
                Some(h) => s(&format!("{h}{}", self.path)),
                None => s(&self.path),
            },
            "req.ver" | "req_ver" => s(&r.version),
            "capture.req.ver" => s(&format!("HTTP/{}", r.version)),
            "req.proto_http" | "http_first_req" => Value(TypedData::Bool(true)),
            "req.hdr" | "hdr" | "req.fhdr" => {
                let full = name == "req.fhdr";
                let occ = args.get(1).map_or(-1, |o| o.trim().parse().unwrap_or(-1));
                opt(self.last_value(&self.headers, a0, !full, occ).map(TypedData::string))
            }
            "req.hdr_cnt" | "hdr_cnt" | "req.fhdr_cnt" => {
                int(header_values(&self.headers, a0, name != "req.fhdr_cnt").count() as i64)
            }
            "req.hdr_ip" | "hdr_ip" => {
                opt(self.last_value(&self.headers, a0, true, -1).and_then(|v| v.trim().parse::<IpAddr>().ok()).map(ip))
            }
            "req.hdr_val" | "hdr_val" => {
                opt(self.last_value(&self.headers, a0, true, -1).map(|v| TypedData::Int64(leading_int(&v))))
            }
            "req.hdrs" => Value(TypedData::String(hdrs_text(&self.headers))),
            "req.hdrs_bin" => Value(TypedData::Binary(hdrs_bin(&self.headers))),
            "req.body" => Value(TypedData::Binary(r.body.clone())),
            "req.body_len" | "req.body_size" => int(r.body.len() as i64),
            "req.cook" | "cook" => opt(self.cookie(a0).map(TypedData::string)),
            "req.cook_cnt" | "cook_cnt" => {
                int(self.cookies().filter(|(n, _)| a0.is_empty() || *n == a0).count() as i64)
            }
            "unique-id" => opt(self.unique_id.as_deref().map(TypedData::string)),
            "ssl_fc" => Value(TypedData::Bool(r.ssl)),
            "ssl_c_used" => Value(TypedData::Bool(false)),
            "ssl_fc_sni" => opt(r.sni.as_deref().filter(|_| r.ssl).map(TypedData::string)),
            "ssl_fc_protocol" => opt(r.ssl.then(|| TypedData::string("TLSv1.3"))),
            "fe_name" => s(&r.frontend),
            "be_name" => s(&r.backend),
            "fe_id" => int(r.frontend_id),
            "be_id" => int(r.backend_id),
            "date" => int(r.date.saturating_add(leading_int(a0))),
            "rand" => {
                let x = self.seq_hash();
                let range = leading_int(a0);
                int(if range > 0 { (x % range as u64) as i64 } else { (x >> 33) as i64 })
            }
            "status" | "res.status" => int(i64::from(r.status)),
            "res.ver" | "resp_ver" => s(&r.version),
            "res.hdr" | "shdr" | "res.fhdr" => {
                let occ = args.get(1).map_or(-1, |o| o.trim().parse().unwrap_or(-1));
                let h = res_headers(r);
                opt(self.last_value(&h, a0, name != "res.fhdr", occ).map(TypedData::string))
            }
            "res.hdr_cnt" | "shdr_cnt" | "res.fhdr_cnt" => {
                int(header_values(&res_headers(r), a0, name != "res.fhdr_cnt").count() as i64)
            }
            "res.hdrs" => Value(TypedData::String(hdrs_text(&res_headers(r)))),
            "res.hdrs_bin" => Value(TypedData::Binary(hdrs_bin(&res_headers(r)))),
            "res.body" => Value(TypedData::Binary(r.response_body.clone())),
            "res.body_len" | "res.body_size" => int(r.response_body.len() as i64),
            "str" => s(a0),
            "int" => int(leading_int(a0)),
            "bool" => Value(TypedData::Bool(leading_int(a0) != 0)),
            "always_true" => Value(TypedData::Bool(true)),
            "always_false" => Value(TypedData::Bool(false)),
            "ipv4" => opt(a0.parse::<Ipv4Addr>().ok().map(TypedData::Ipv4)),
            "ipv6" => opt(a0.parse::<Ipv6Addr>().ok().map(TypedData::Ipv6)),
            "bin" => opt(unhex(a0).map(|b| TypedData::Binary(b.into()))),
            "var" | "env" => Missing,
            _ => Fetched::Unknown,
        }
    }

    fn seq_hash(&self) -> u64 {
        // deterministic per request (the unique-id or path carries {seq})
        let key = self.unique_id.as_deref().unwrap_or(&self.path);
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    /// HAProxy's occurrence selection: 1 = first, -1 = last (the default), 0 = last as well.
    fn last_value(&self, headers: &[(&str, Cow<'_, str>)], name: &str, split: bool, occ: i64) -> Option<String> {
        if name.is_empty() {
            return None;
        }
        let values: Vec<&str> = header_values(headers, name, split).collect();
        let idx = if occ > 0 {
            usize::try_from(occ - 1).ok()?
        } else {
            let back = usize::try_from(occ.unsigned_abs().max(1)).ok()?;
            values.len().checked_sub(back)?
        };
        values.get(idx).map(|v| v.to_string())
    }

    fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        header_values(&self.headers, "cookie", false)
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('=').map(|(n, v)| (n.trim(), v.trim())))
    }

    /// `req.cook(name)`: the last occurrence.
    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies().filter(|(n, _)| *n == name).last().map(|(_, v)| v)
    }
}

enum Fetched {
    Value(TypedData),
    /// Known fetch, no value: HAProxy sends NULL.
    Missing,
    /// Not a fetch this module knows.
    Unknown,
}

fn ip(a: IpAddr) -> TypedData {
    match a {
        IpAddr::V4(v4) => TypedData::Ipv4(v4),
        IpAddr::V6(v6) => TypedData::Ipv6(v6),
    }
}

fn res_headers(r: &RequestTemplate) -> Vec<(&str, Cow<'_, str>)> {
    r.response_headers.iter().map(|(n, v)| (n.as_str(), Cow::Borrowed(v.as_str()))).collect()
}

/// Values of the headers named `name` (case-insensitive), split on commas when `split`.
fn header_values<'h>(
    headers: &'h [(&'h str, Cow<'h, str>)],
    name: &'h str,
    split: bool,
) -> impl Iterator<Item = &'h str> + 'h {
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).flat_map(move |(_, v)| {
        let v: &'h str = v;
        let parts: Box<dyn Iterator<Item = &'h str>> =
            if split { Box::new(v.split(',').map(str::trim)) } else { Box::new(std::iter::once(v.trim())) };
        parts
    })
}

/// `req.hdrs`: `name: value\r\n` per header (names lowercase, as HTX stores them), then `\r\n`.
fn hdrs_text(headers: &[(&str, Cow<'_, str>)]) -> Bytes {
    let mut out = Vec::new();
    for (n, v) in headers {
        out.extend_from_slice(n.to_ascii_lowercase().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// `req.hdrs_bin` (`smp_fetch_hdrs_bin`): varint-length name, varint-length value per header, then
/// two zero lengths. Names are lowercase, as HTX stores them.
pub fn hdrs_bin<V: AsRef<str>>(headers: &[(&str, V)]) -> Bytes {
    let mut out = Vec::new();
    for (n, v) in headers {
        let name = n.to_ascii_lowercase();
        let value = v.as_ref();
        varint::encode(name.len() as u64, &mut out);
        out.extend_from_slice(name.as_bytes());
        varint::encode(value.len() as u64, &mut out);
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    Bytes::from(out)
}

/// Applies a converter HAProxy would; unknown converters leave the value unchanged.
fn convert(v: TypedData, conv: &str) -> TypedData {
    match (conv, v) {
        (_, TypedData::Null) => TypedData::Null,
        ("lower", TypedData::String(b)) => TypedData::String(b.to_ascii_lowercase().into()),
        ("upper", TypedData::String(b)) => TypedData::String(b.to_ascii_uppercase().into()),
        ("lower", TypedData::Binary(b)) => TypedData::Binary(b.to_ascii_lowercase().into()),
        ("upper", TypedData::Binary(b)) => TypedData::Binary(b.to_ascii_uppercase().into()),
        ("length", TypedData::String(b) | TypedData::Binary(b)) => TypedData::Int64(b.len() as i64),
        ("hex", TypedData::String(b) | TypedData::Binary(b)) => {
            TypedData::String(b.iter().map(|x| format!("{x:02X}")).collect::<String>().into())
        }
        (_, v) => v,
    }
}

/// `fetch(a,b)` → (`fetch`, [`a`, `b`]); arguments trimmed and unquoted.
fn split_call(expr: &str) -> (&str, Vec<String>) {
    let expr = expr.trim();
    let Some(open) = expr.find('(') else {
        return (expr, Vec::new());
    };
    let inner = expr[open + 1..].strip_suffix(')').unwrap_or(&expr[open + 1..]);
    let args = split_top_level(inner, ',')
        .into_iter()
        .map(|a| {
            let a = a.trim();
            a.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(a).to_string()
        })
        .collect();
    (&expr[..open], args)
}

/// Splits on `sep` outside parentheses.
fn split_top_level(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c == sep && depth <= 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// C `atoll`-like: the leading integer, 0 when there is none.
fn leading_int(s: &str) -> i64 {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |v, c| v.saturating_mul(10).saturating_add(i64::from(c - b'0')));
    if neg {
        -v
    } else {
        v
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() & 1 == 1 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// The SPOE configuration the tools use when none is given: the `check-request` message of
/// `shared/fixtures/spop/spoe.conf`, which is what most SPOE setups send on every HTTP request.
pub const DEFAULT_SPOE_CONF: &str = "\
[logwire]
spoe-agent logwire
    messages check-request
    option var-prefix spoa
    use-backend spoe-agents
spoe-message check-request
    args ip=src port=src_port method=method path=path host=req.hdr(host) ua=req.hdr(user-agent) hdrs=req.hdrs_bin
    event on-frontend-http-request
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::SpoeConfig;

    fn eval(sample: &str, req: &RequestTemplate) -> TypedData {
        eval_sample(sample, req, 7)
    }

    #[test]
    fn types_follow_haproxy() {
        let mut req = RequestTemplate { query: Some("a=1&n={seq}".into()), ..RequestTemplate::default() };
        req.headers.push(("Accept".into(), "text/html, application/xml".into()));
        req.headers.push(("X-Forwarded-For".into(), "192.0.2.1, 198.51.100.2".into()));
        req.headers.push(("Cookie".into(), "a=1; sid=abc; a=2".into()));
        req.src = "2001:db8::1".parse().unwrap();
        assert_eq!(eval("src", &req), TypedData::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(eval("dst", &req), TypedData::Ipv4(Ipv4Addr::LOCALHOST));
        assert_eq!(eval("src_port", &req), TypedData::Int64(40000));
        assert_eq!(eval("method", &req), TypedData::string("GET"));
        assert_eq!(eval("path", &req), TypedData::string("/index.html"));
        assert_eq!(eval("query", &req), TypedData::string("a=1&n=7"));
        assert_eq!(eval("url", &req), TypedData::string("/index.html?a=1&n=7"));
        assert_eq!(eval("base", &req), TypedData::string("127.0.0.1:8080/index.html"));
        assert_eq!(eval("req.hdr(host)", &req), TypedData::string("127.0.0.1:8080"));
        assert_eq!(eval("req.hdr(accept)", &req), TypedData::string("application/xml"), "last comma value");
        assert_eq!(eval("req.hdr(accept,1)", &req), TypedData::string("*/*"));
        assert_eq!(eval("req.fhdr(accept)", &req), TypedData::string("text/html, application/xml"));
        assert_eq!(eval("req.hdr_cnt(accept)", &req), TypedData::Int64(3));
        assert_eq!(eval("req.fhdr_cnt(accept)", &req), TypedData::Int64(2));
        assert_eq!(eval("req.hdr_ip(x-forwarded-for)", &req), TypedData::Ipv4("198.51.100.2".parse().unwrap()));
        assert_eq!(eval("req.hdr(x-missing)", &req), TypedData::Null);
        assert_eq!(eval("req.cook(a)", &req), TypedData::string("2"));
        assert_eq!(eval("req.cook(sid)", &req), TypedData::string("abc"));
        assert_eq!(eval("unique-id", &req), TypedData::string("logwire-7"));
        assert_eq!(eval("ssl_fc", &req), TypedData::Bool(false));
        assert_eq!(eval("req.body", &req), TypedData::Binary(Bytes::new()));
        assert_eq!(eval("req.ver", &req), TypedData::string("1.1"));
        assert_eq!(eval("status", &req), TypedData::Int64(200));
        assert_eq!(eval("res.hdr(content-type)", &req), TypedData::string("text/plain"));
        assert_eq!(eval("int(42)", &req), TypedData::Int64(42));
        assert_eq!(eval("str(a,b)", &req), TypedData::string("a"));
        assert_eq!(eval("bin(00ff)", &req), TypedData::Binary(Bytes::from_static(&[0, 255])));
        assert_eq!(eval("var(txn.x)", &req), TypedData::Null);
        assert_eq!(eval("req.hdr(HOST),upper", &req), TypedData::string("127.0.0.1:8080"));
        assert_eq!(eval("method,lower", &req), TypedData::string("get"));
        assert_eq!(eval("path,length", &req), TypedData::Int64(11));
        assert_eq!(eval("str(ab),hex", &req), TypedData::string("6162"));
        assert_eq!(eval("path,url_dec", &req), TypedData::string("/index.html"), "unknown converter skipped");
        assert_eq!(eval("sc_http_req_rate(0)", &req), TypedData::string("sc_http_req_rate(0)"), "unknown fetch");
        let q = RequestTemplate::default();
        assert_eq!(eval("query", &q), TypedData::Null, "no '?'");
        assert!(matches!(eval("rand(10)", &q), TypedData::Int64(0..=9)));
    }

    #[test]
    fn hdrs_bin_layout() {
        let req = RequestTemplate {
            headers: vec![("Host".into(), "a".into()), ("X-Y".into(), "bc".into())],
            ..RequestTemplate::default()
        };
        let want: &[u8] = &[4, b'h', b'o', b's', b't', 1, b'a', 3, b'x', b'-', b'y', 2, b'b', b'c', 0, 0];
        assert_eq!(eval("req.hdrs_bin", &req), TypedData::Binary(Bytes::copy_from_slice(want)));
        assert_eq!(eval("req.hdrs", &req), TypedData::string("host: a\r\nx-y: bc\r\n\r\n"));
        let long = "v".repeat(300);
        let b = hdrs_bin(&[("h", long.as_str())]);
        assert_eq!(&b[..4], &[1, b'h', 0xfc, 0x03], "300 as a SPOP varint");
        assert_eq!(b.len(), 1 + 1 + 2 + 300 + 2);
    }

    #[test]
    fn messages_from_conf_with_seq() {
        let conf = SpoeConfig::parse(
            "[e]\nspoe-agent a\n messages m n r\n use-backend b\n\
             spoe-message m\n args ip=src path req.hdr(host)\n event on-frontend-http-request\n\
             spoe-message n\n args s=status\n event on-http-response\n\
             spoe-message r\n args u=unique-id\n event on-frontend-http-request\n\
             spoe-message unused\n args x=src\n event on-frontend-http-request\n",
        )
        .unwrap();
        let ms = messages_for_event(&conf, Some("e"), "on-frontend-http-request");
        assert_eq!(ms.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["m", "r"]);
        assert!(messages_for_event(&conf, None, "on-frontend-http-request").is_empty());
        let req = RequestTemplate { path: "/item/{seq}".into(), ..RequestTemplate::default() };
        let built = build_messages(&ms, &req, 3);
        assert_eq!(built.len(), 2);
        assert_eq!(built[0].name, "m");
        assert_eq!(built[0].args[0], Arg::new("ip", TypedData::Ipv4(Ipv4Addr::LOCALHOST)));
        assert_eq!(built[0].args[1], Arg::new("", TypedData::string("/item/3")), "unnamed arg, {{seq}}");
        assert_eq!(built[0].args[2], Arg::new("", TypedData::string("127.0.0.1:8080")));
        assert_eq!(built[1].args[0], Arg::new("u", TypedData::string("logwire-3")));
        let rs = messages_for_event(&conf, Some("e"), "on-http-response");
        assert_eq!(build_messages(&rs, &req, 0)[0].args[0].value, TypedData::Int64(200));
    }

    #[test]
    fn helpers() {
        assert_eq!(split_call(" req.hdr( host , 2 ) "), ("req.hdr", vec!["host".to_string(), "2".to_string()]));
        assert_eq!(split_top_level("a(b,c),d", ','), ["a(b,c)", "d"]);
        assert_eq!(leading_int("-12x"), -12);
        assert_eq!(unhex("0g"), None);
    }

    proptest::proptest! {
        #[test]
        fn eval_never_panics(sample in "\\PC{0,60}", occ in proptest::num::i64::ANY) {
            let req = RequestTemplate::default();
            let _ = eval_sample(&sample, &req, 1);
            let _ = eval_sample(&format!("req.hdr(host,{occ})"), &req, 1);
        }
    }
}
