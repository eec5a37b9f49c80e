//! # HAProxy's SPOE configuration file, and `check-conf`
//!
//! HAProxy reads the SPOE side of its configuration from a separate file named by
//! `filter spoe [engine <name>] config <file>` (SPOE.txt §2). logwire needs that file for three
//! things: to know which messages and args HAProxy will send, to generate the same messages in its
//! engine-side load generator ([`crate::template`]), and to tell users what HAProxy would do silently:
//! ignore a variable the agent sets, drop a message without an event, reconnect in a loop because of
//! fragmentation. [`SpoeConfig::parse`] reads the file the way HAProxy 2.6 does; [`check`] reports
//! those problems, optionally against a [`Rules`] file and the `haproxy.cfg` text.
//!
//! ## What the parser follows
//! - **Lines** are split by HAProxy's `parse_line()` rules: `#` starts a comment outside quotes;
//!   `"…"` and `'…'` group words (they may be glued to other text: `a"b c"` is `ab c`); outside single
//!   quotes `\` escapes a space, `\`, `#`, `'`, `"`, and makes `\t` `\n` `\r` `\xHH`; `"$NAME"`,
//!   `"${NAME}"`, `"${NAME-default}"` and `"${NAME[*]}"` expand environment variables **only inside
//!   double quotes** (with [`SpoeConfig::parse`], no environment: every variable is unset); at most 64
//!   words. HAProxy has **no line continuation**: a trailing `\` is an ordinary character.
//! - `.if`/`.elif`/`.else`/`.endif` blocks (2.4+) with `defined()`, `feature()`, `streq()`,
//!   `strneq()`, `version_atleast()`, `version_before()`, `!`, `&&`, `||` and parentheses; the version
//!   is [`ASSUMED_VERSION`]; `feature()` cannot be known and is assumed true (with an info).
//!   `.diag`/`.notice`/`.warning`/`.alert` become diagnostics.
//! - `[name]` starts a scope (one per engine); lines before the first `[...]` belong to the unnamed
//!   scope (used by `filter spoe` without `engine`). `spoe-agent`, `spoe-message` and `spoe-group`
//!   start sections with every keyword SPOE.txt lists; `no` negates `option`s that allow it.
//! - Sample and ACL expressions are kept as text: `args ip=src req.hdr(host)` gives
//!   `(Some("ip"), "src")` and `(None, "req.hdr(host)")` (the name ends at the first `=`, as in
//!   HAProxy).
//!
//! ## Errors
//! HAProxy distinguishes errors that stop parsing (`ERR_ABORT`: an invalid `[scope]` line, a section
//! header without a valid name, a second `spoe-agent` in one scope) from errors it reports before
//! refusing to start (`ERR_FATAL`: unknown keywords, bad values, unknown events). The first kind is a
//! [`ConfError::Fatal`]; the second is an [`Level::Error`] [`Diagnostic`] in
//! [`SpoeConfig::diagnostics`], and parsing goes on so that every problem is reported at once.
//! Warnings are what HAProxy warns about. Nothing in this module panics on any input.

use crate::message::Scope as VarScope;
use crate::rules::Rules;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use check::check;

/// HAProxy's default `tune.bufsize`.
pub const DEFAULT_BUFSIZE: u32 = 16384;
/// Default `max-frame-size`: `tune.bufsize - 4`.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = DEFAULT_BUFSIZE - 4;
/// Smallest `max-frame-size` SPOP allows.
pub const MIN_FRAME_SIZE: u32 = 256;
/// Default `max-waiting-frames`.
pub const DEFAULT_MAX_WAITING_FRAMES: u32 = 20;
/// The HAProxy version `.if version_atleast(...)` is evaluated against (Debian 12's).
pub const ASSUMED_VERSION: (u32, u32, u32) = (2, 6, 12);
/// HAProxy's limit of words per line (`MAX_LINE_ARGS`).
const MAX_LINE_ARGS: usize = 64;
/// HAProxy's limit of nested `.if` (`MAXNESTEDCONDS`).
const MAX_NESTED_CONDS: usize = 10;
/// Largest timer HAProxy accepts, in ms.
const MAX_TIMER_MS: u128 = 0x7fff_ffff;

// ---------------------------------------------------------------------------------------------------
// Diagnostics
// ---------------------------------------------------------------------------------------------------

/// How bad a [`Diagnostic`] is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Worth knowing; HAProxy says nothing.
    Info,
    /// HAProxy warns, or something will not work as the user probably expects.
    Warning,
    /// HAProxy refuses the configuration, or a rule can never have an effect.
    Error,
}

/// Which file a [`Diagnostic`]'s line refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    SpoeConf,
    HaproxyCfg,
    Rules,
}

/// One finding: a level, the line it is about (in the file named by `origin`), and one sentence
/// saying what HAProxy does and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    pub origin: Origin,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::SpoeConf => "spoe.conf",
            Origin::HaproxyCfg => "haproxy.cfg",
            Origin::Rules => "rules",
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}: {}:{}: {}", self.level, self.origin, l, self.message),
            None => write!(f, "{}: {}: {}", self.level, self.origin, self.message),
        }
    }
}

/// Collects diagnostics for one file.
struct Diags<'a> {
    list: &'a mut Vec<Diagnostic>,
    origin: Origin,
}

impl Diags<'_> {
    fn push(&mut self, level: Level, line: Option<usize>, message: impl Into<String>) {
        self.list.push(Diagnostic { level, origin: self.origin, line, message: message.into() });
    }
    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.push(Level::Error, Some(line), message)
    }
    fn warning(&mut self, line: usize, message: impl Into<String>) {
        self.push(Level::Warning, Some(line), message)
    }
    fn info(&mut self, line: usize, message: impl Into<String>) {
        self.push(Level::Info, Some(line), message)
    }
}

// ---------------------------------------------------------------------------------------------------
// Errors and small types
// ---------------------------------------------------------------------------------------------------

/// Why a SPOE configuration could not be parsed at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("cannot read SPOE configuration {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An error after which HAProxy stops parsing the file (`ERR_ABORT`).
    #[error("line {line}: {message}; HAProxy stops parsing the file here")]
    Fatal { line: usize, message: String },
}

/// A value and the line it was read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Located<T> {
    pub value: T,
    pub line: usize,
}

impl<T> Located<T> {
    pub fn new(value: T, line: usize) -> Self {
        Located { value, line }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Why a HAProxy time value is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{0:?} does not start with a digit")]
    NotANumber(String),
    #[error("{0:?} has an unknown unit (HAProxy accepts us, ms, s, m, h, d; no unit means ms)")]
    BadUnit(String),
    #[error("{0:?} is too large: HAProxy's maximum is 2147483647 ms (~24.8 days)")]
    Overflow(String),
}

/// Parses a HAProxy time value: digits and an optional unit, `us`, `ms`, `s`, `m`, `h` or `d`; no
/// unit means milliseconds (`2s`, `500ms`, `2m`, `1h`, `1d`, `100us`, `250`). Values of 2³¹ ms or
/// more are refused, as HAProxy refuses them. Unlike HAProxy 2.6, which only warns about characters
/// after the unit (`2sec`), this function refuses them.
pub fn parse_time(s: &str) -> Result<Duration, TimeError> {
    match parse_time_lenient(s)? {
        (d, None) => Ok(d),
        (_, Some(_)) => Err(TimeError::BadUnit(s.to_string())),
    }
}

/// HAProxy's `parse_time_err()`: the duration, and the trailing text after a valid unit (which 2.6
/// only warns about).
fn parse_time_lenient(s: &str) -> Result<(Duration, Option<&str>), TimeError> {
    let b = s.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Err(TimeError::NotANumber(s.to_string()));
    }
    let mut value: u128 = 0;
    for &c in &b[..digits] {
        value = value.saturating_mul(10).saturating_add(u128::from(c - b'0'));
    }
    let rest = &s[digits..];
    let (micros_per_unit, unit_len): (u128, usize) = if rest.is_empty() {
        (1_000, 0)
    } else if rest.starts_with("us") {
        (1, 2)
    } else if rest.starts_with("ms") {
        (1_000, 2)
    } else if rest.starts_with('s') {
        (1_000_000, 1)
    } else if rest == "m" {
        (60_000_000, 1)
    } else if rest.starts_with('h') {
        (3_600_000_000, 1)
    } else if rest.starts_with('d') {
        (86_400_000_000, 1)
    } else {
        return Err(TimeError::BadUnit(s.to_string()));
    };
    let micros = value.saturating_mul(micros_per_unit);
    if micros / 1000 > MAX_TIMER_MS {
        return Err(TimeError::Overflow(s.to_string()));
    }
    let trailing = rest.get(unit_len..).filter(|t| !t.is_empty());
    Ok((Duration::from_micros(micros as u64), trailing))
}

/// Formats a duration the way HAProxy configurations write it (`2s`, `500ms`, `2m`).
pub fn format_time(d: Duration) -> String {
    let us = d.as_micros();
    let sub_ms = us % 1000;
    if sub_ms != 0 {
        return format!("{us}us");
    }
    let ms = us / 1000;
    for (unit, n) in [("d", 86_400_000u128), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms != 0 && (ms / n) * n == ms {
            return format!("{}{unit}", ms / n);
        }
    }
    format!("{ms}ms")
}

/// C's `atol()`: leading spaces, a sign, digits; anything after is ignored. Also says whether the
/// whole text was a number, to warn about what HAProxy silently accepts.
fn atol(s: &str) -> (i64, bool) {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = digits.bytes().take_while(|c| c.is_ascii_digit()).count();
    let mut v: i64 = 0;
    for c in digits.bytes().take(n) {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    (if neg { -v } else { v }, n > 0 && n == digits.len() && t.len() == s.len())
}

// ---------------------------------------------------------------------------------------------------
// Tokenizer: HAProxy's parse_line()
// ---------------------------------------------------------------------------------------------------

/// What `$.FILE`, `$.LINE`, `$.SECTION` and environment variables expand to.
struct LineEnv<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: &'a str,
    line: usize,
    section: &'a str,
}

/// `isspace()` minus `\n`/`\r`, which end the line before this is asked.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | 0x0b | 0x0c)
}

/// Splits one line into words as HAProxy's `parse_line()` does with the options `readcfgfile()` uses
/// (env, double and single quotes, backslash, `#` comments, `[*]` word expansion). Leading spaces
/// must already be skipped. Errors name the byte position, as HAProxy's messages do.
fn split_words(line: &str, env: &LineEnv) -> Result<Vec<String>, String> {
    let b = line.as_bytes();
    let mut words: Vec<Vec<u8>> = vec![Vec::new()];
    let (mut sq, mut dq) = (false, false);
    let mut quote_at = 0usize;
    let mut i = 0usize;
    macro_rules! emit {
        ($c:expr) => {
            if let Some(w) = words.last_mut() {
                w.push($c)
            }
        };
    }
    while let Some(&c) = b.get(i) {
        match c {
            b'\0' | b'\n' | b'\r' => break,
            b'#' if !sq && !dq => break,
            b'"' if !sq => {
                dq = !dq;
                quote_at = i;
                i += 1;
            }
            b'\'' if !dq => {
                sq = !sq;
                quote_at = i;
                i += 1;
            }
            b'\\' if !sq => match b.get(i + 1).copied() {
                Some(n @ (b' ' | b'\\' | b'#' | b'\'' | b'"')) => {
                    emit!(n);
                    i += 2;
                }
                Some(b't') => {
                    emit!(b'\t');
                    i += 2;
                }
                Some(b'n') => {
                    emit!(b'\n');
                    i += 2;
                }
                Some(b'r') => {
                    emit!(b'\r');
                    i += 2;
                }
                Some(b'$') if dq => {
                    emit!(b'$');
                    i += 2;
                }
                Some(b'x') => {
                    let hex = |k: usize| b.get(k).and_then(|h| (*h as char).to_digit(16));
                    match (hex(i + 2), hex(i + 3)) {
                        (Some(h), Some(l)) => {
                            emit!((h * 16 + l) as u8);
                            i += 4;
                        }
                        _ => return Err(format!("truncated or invalid hexadecimal sequence at position {}", i + 1)),
                    }
                }
                _ => {
                    emit!(b'\\');
                    i += 1;
                }
            },
            c if is_space(c) && !sq && !dq => {
                while b.get(i).is_some_and(|c| is_space(*c)) {
                    i += 1;
                }
                words.push(Vec::new());
            }
            b'$' if dq => {
                i = expand_var(b, i, env, &mut words)?;
            }
            c => {
                emit!(c);
                i += 1;
            }
        }
    }
    if sq || dq {
        return Err(format!("unmatched quote at position {}", quote_at + 1));
    }
    // HAProxy does not count an empty word after trailing spaces
    if words.last().is_some_and(|w| w.is_empty()) {
        words.pop();
    }
    if words.len() > MAX_LINE_ARGS {
        return Err(format!("too many words ({}), HAProxy accepts at most {MAX_LINE_ARGS}", words.len()));
    }
    Ok(words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect())
}

/// Expands `$NAME`, `${NAME}`, `${NAME-default}` or `${NAME[*]}` starting at the `$` at `start`;
/// returns the position after it.
fn expand_var(b: &[u8], start: usize, env: &LineEnv, words: &mut Vec<Vec<u8>>) -> Result<usize, String> {
    let mut i = start + 1;
    let brace = b.get(i) == Some(&b'{');
    if brace {
        i += 1;
    }
    match b.get(i) {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b'.' => {}
        _ => return Err(format!("invalid variable name at position {}", i + 1)),
    }
    let name_start = i;
    if b.get(i) == Some(&b'.') {
        i += 1;
    }
    while b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
        i += 1;
    }
    let name = String::from_utf8_lossy(&b[name_start..i]).into_owned();
    let mut value = if let Some(pseudo) = name.strip_prefix('.') {
        Some(match pseudo {
            "LINE" => env.line.to_string(),
            "FILE" => env.file.to_string(),
            "SECTION" => env.section.to_string(),
            _ => return Err(format!("unsupported internal variable ${name} at position {}", name_start + 1)),
        })
    } else {
        (env.env)(&name)
    };
    let mut word_expand = false;
    if brace && b.get(i) == Some(&b'[') {
        if b.get(i + 1) != Some(&b'*') || b.get(i + 2) != Some(&b']') {
            return Err(format!("wrong word expansion (expected '[*]') at position {}", i + 1));
        }
        word_expand = true;
        i += 3;
    }
    if brace {
        if b.get(i) == Some(&b'-') {
            let close = b[i..].iter().position(|c| *c == b'}').map(|p| p + i);
            let Some(close) = close else {
                return Err(format!("unmatched brace in environment variable name at position {}", start + 2));
            };
            if value.is_none() {
                value = Some(String::from_utf8_lossy(&b[i + 1..close]).into_owned());
            }
            i = close;
        } else if b.get(i) != Some(&b'}') {
            return Err(format!("unmatched brace in environment variable name at position {}", start + 2));
        }
        i += 1;
    }
    if let Some(v) = value {
        let vb = v.as_bytes();
        let mut k = 0;
        while k < vb.len() {
            if word_expand && is_space(vb[k]) {
                words.push(Vec::new());
                while k < vb.len() && is_space(vb[k]) {
                    k += 1;
                }
            } else {
                if let Some(w) = words.last_mut() {
                    w.push(vb[k]);
                }
                k += 1;
            }
        }
    }
    Ok(i)
}

// ---------------------------------------------------------------------------------------------------
// Line reader: comments, .if blocks, scope lines
// ---------------------------------------------------------------------------------------------------

/// One meaningful line of a configuration file.
enum Item {
    /// A line starting with `[` (after spaces), unparsed.
    ScopeLine { line: usize, text: String },
    /// The words of a line.
    Words { line: usize, words: Vec<String> },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CondState {
    /// In a block whose condition held.
    Take,
    /// Condition false so far; a later `.elif`/`.else` may be taken.
    Skip,
    /// A branch was already taken, or the enclosing block is not taken.
    Drop,
}

/// Reads `text` into items, evaluating `.if` blocks; problems go to `d`.
fn read_items(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    file: &str,
    section_keywords: &[&str],
    d: &mut Diags,
) -> Vec<Item> {
    let mut items = Vec::new();
    let mut conds: Vec<(CondState, usize)> = Vec::new();
    let mut section = String::new();
    for (idx, raw) in text.split('\n').enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
        if trimmed.starts_with('[') {
            items.push(Item::ScopeLine { line, text: trimmed.to_string() });
            continue;
        }
        let lenv = LineEnv { env, file, line, section: &section };
        let words = match split_words(trimmed, &lenv) {
            Ok(w) => w,
            Err(e) => {
                d.error(line, format!("{e}; HAProxy refuses the line"));
                continue;
            }
        };
        let Some(first) = words.first() else { continue };
        let taking = conds.last().map(|c| c.0).unwrap_or(CondState::Take) == CondState::Take;
        match first.as_str() {
            ".if" | ".elif" => {
                let expr = words[1..].join(" ");
                let is_if = first == ".if";
                if is_if && conds.len() >= MAX_NESTED_CONDS {
                    d.error(line, format!("too many nested '.if', HAProxy's maximum is {MAX_NESTED_CONDS}"));
                    conds.push((CondState::Drop, line));
                    continue;
                }
                if !is_if && conds.is_empty() {
                    d.error(line, "'.elif' without '.if'");
                    continue;
                }
                let parent_taking =
                    if is_if { taking } else { conds.len() < 2 || conds[conds.len() - 2].0 == CondState::Take };
                let current = if is_if { CondState::Skip } else { conds.last().map_or(CondState::Drop, |c| c.0) };
                let next = if !parent_taking || current != CondState::Skip {
                    CondState::Drop
                } else {
                    match eval_condition(&expr, env) {
                        Ok((v, notes)) => {
                            for n in notes {
                                d.info(line, n);
                            }
                            if v {
                                CondState::Take
                            } else {
                                CondState::Skip
                            }
                        }
                        Err(e) => {
                            d.error(line, format!("cannot evaluate condition '{expr}': {e}; treated as false"));
                            CondState::Skip
                        }
                    }
                };
                if is_if {
                    conds.push((next, line));
                } else if let Some(top) = conds.last_mut() {
                    top.0 = next;
                }
            }
            ".else" => match conds.last_mut() {
                None => d.error(line, "'.else' without '.if'"),
                Some(top) => {
                    top.0 = if top.0 == CondState::Skip { CondState::Take } else { CondState::Drop };
                    let n = conds.len();
                    if n >= 2 && conds[n - 2].0 != CondState::Take {
                        conds[n - 1].0 = CondState::Drop;
                    }
                }
            },
            ".endif" => {
                if conds.pop().is_none() {
                    d.error(line, "'.endif' without '.if'");
                }
            }
            _ if !taking => {}
            ".diag" | ".notice" | ".warning" | ".alert" => {
                let msg = words[1..].join(" ");
                match first.as_str() {
                    ".alert" => d.error(line, format!(".alert: {msg}")),
                    ".warning" => d.warning(line, format!(".warning: {msg}")),
                    _ => d.info(line, format!("{first}: {msg}")),
                }
            }
            _ => {
                if section_keywords.contains(&first.as_str()) {
                    section = first.clone();
                }
                items.push(Item::Words { line, words });
            }
        }
    }
    for (_, line) in conds {
        d.error(line, "'.if' without '.endif' at end of file");
    }
    items
}

/// Evaluates a `.if` expression. Returns the value and notes about parts that had to be assumed.
fn eval_condition(expr: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(bool, Vec<String>), String> {
    let mut p = CondParser { s: expr.as_bytes(), i: 0, env, notes: Vec::new(), depth: 0 };
    let v = p.or()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(format!("unexpected text at position {}", p.i + 1));
    }
    Ok((v, p.notes))
}

struct CondParser<'a> {
    s: &'a [u8],
    i: usize,
    env: &'a dyn Fn(&str) -> Option<String>,
    notes: Vec<String>,
    depth: usize,
}

impl CondParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| is_space(*c)) {
            self.i += 1;
        }
    }
    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i.min(self.s.len())..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }
    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.term()?;
        while self.eat("&&") {
            let r = self.term()?;
            v = v && r;
        }
        Ok(v)
    }
    fn term(&mut self) -> Result<bool, String> {
        self.depth += 1;
        if self.depth > 64 {
            return Err("expression nested too deeply".into());
        }
        let r = self.term_inner();
        self.depth -= 1;
        r
    }
    fn term_inner(&mut self) -> Result<bool, String> {
        self.ws();
        if self.eat("!") {
            return Ok(!self.term()?);
        }
        if self.eat("(") {
            let v = self.or()?;
            if !self.eat(")") {
                return Err("missing ')'".into());
            }
            return Ok(v);
        }
        let start = self.i;
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            self.i += 1;
        }
        let word = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if word.is_empty() {
            return Err(format!("empty term at position {}", start + 1));
        }
        if word.bytes().all(|c| c.is_ascii_digit()) {
            return Ok(atol(&word).0 != 0);
        }
        if self.s.get(self.i) != Some(&b'(') {
            return Err(format!("unknown term '{word}'"));
        }
        self.i += 1;
        let close = self.s[self.i..].iter().position(|c| *c == b')').map(|p| p + self.i);
        let Some(close) = close else {
            return Err(format!("missing ')' after '{word}('"));
        };
        let inner = String::from_utf8_lossy(&self.s[self.i..close]).into_owned();
        self.i = close + 1;
        let args: Vec<String> =
            inner.split(',').map(|a| a.trim().trim_matches('"').to_string()).filter(|a| !a.is_empty()).collect();
        let arg = |n: usize| args.get(n).map(String::as_str).unwrap_or("");
        match word.as_str() {
            "defined" => Ok((self.env)(arg(0)).is_some()),
            "feature" => {
                self.notes.push(format!("feature({}) depends on how HAProxy was built; assumed true", arg(0)));
                Ok(true)
            }
            "streq" => Ok(arg(0) == arg(1)),
            "strneq" => Ok(arg(0) != arg(1)),
            "version_atleast" => Ok(version_cmp(arg(0)) != std::cmp::Ordering::Less),
            "version_before" => Ok(version_cmp(arg(0)) == std::cmp::Ordering::Less),
            other => Err(format!("unknown predicate '{other}'")),
        }
    }
}

/// Compares [`ASSUMED_VERSION`] with a dotted version.
fn version_cmp(v: &str) -> std::cmp::Ordering {
    let mut parts = v.split(['.', '-']).map(|p| atol(p).0.max(0) as u32);
    let other = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    ASSUMED_VERSION.cmp(&other)
}

// ---------------------------------------------------------------------------------------------------
// The configuration model
// ---------------------------------------------------------------------------------------------------

/// A parsed SPOE configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoeConfig {
    /// In file order; the unnamed scope (lines before the first `[...]`) comes first when it has
    /// content.
    pub scopes: Vec<Scope>,
    /// Errors HAProxy would report before refusing to start, and its warnings.
    pub diagnostics: Vec<Diagnostic>,
}

/// One `[name]` scope: the configuration of one SPOE engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// `None` for the unnamed scope.
    pub name: Option<String>,
    /// Line of the `[name]` line (`None` for the unnamed scope).
    pub line: Option<usize>,
    /// The scope's `spoe-agent` (HAProxy requires exactly one).
    pub agent: Option<SpoeAgent>,
    pub messages: Vec<SpoeMessage>,
    pub groups: Vec<SpoeGroup>,
}

/// A `spoe-agent` section. Options are `None` when not written; the methods give the value HAProxy
/// 2.6 uses then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoeAgent {
    pub name: String,
    pub line: usize,
    /// `messages`: names of messages sent on their events.
    pub messages: Vec<Located<String>>,
    /// `groups`: names of groups sent by `send-spoe-group` rules.
    pub groups: Vec<Located<String>>,
    pub use_backend: Option<Located<String>>,
    /// `log` lines, including `no log`.
    pub log: Vec<LogDirective>,
    pub maxconnrate: Option<Located<i64>>,
    pub maxerrrate: Option<Located<i64>>,
    pub max_frame_size: Option<Located<i64>>,
    pub max_waiting_frames: Option<Located<i64>>,
    /// `[no] option async`.
    pub option_async: Option<Located<bool>>,
    /// `[no] option dontlog-normal`.
    pub option_dontlog_normal: Option<Located<bool>>,
    /// `[no] option pipelining`.
    pub option_pipelining: Option<Located<bool>>,
    /// `[no] option send-frag-payload`.
    pub option_send_frag_payload: Option<Located<bool>>,
    /// `option continue-on-error` (the line).
    pub option_continue_on_error: Option<usize>,
    /// `option force-set-var` (the line).
    pub option_force_set_var: Option<usize>,
    pub option_set_on_error: Option<Located<String>>,
    pub option_set_process_time: Option<Located<String>>,
    pub option_set_total_time: Option<Located<String>>,
    pub option_var_prefix: Option<Located<String>>,
    pub register_var_names: Vec<Located<String>>,
    pub timeout_hello: Option<Located<Duration>>,
    pub timeout_idle: Option<Located<Duration>>,
    pub timeout_processing: Option<Located<Duration>>,
}

/// A `log` line of an agent, kept as words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirective {
    /// `no log`: forget the loggers declared before.
    pub negated: bool,
    /// The words after `log` (`["global"]`, `["127.0.0.1:514", "local0"]`…).
    pub args: Vec<String>,
    pub line: usize,
}

/// A `spoe-message` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoeMessage {
    pub name: String,
    pub line: usize,
    pub acls: Vec<Acl>,
    /// All `args` lines, in order: the order of the args on the wire.
    pub args: Vec<MessageArg>,
    /// The `event` (HAProxy keeps the last one when there are several).
    pub event: Option<EventSpec>,
}

/// One argument of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageArg {
    /// The name before `=`; `None` for an unnamed arg (sent with an empty name).
    pub name: Option<String>,
    /// The sample expression, as text (`src`, `req.hdr(host)`, `path,lower`).
    pub sample: String,
    pub line: usize,
}

/// `acl <name> <criterion> [flags] [operator] <value> ...`, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub name: String,
    /// The sample fetch (`path`, `src`, `req.hdr(host)`…).
    pub criterion: String,
    /// Flags, operator and values.
    pub args: Vec<String>,
    pub line: usize,
}

/// `if` or `unless`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CondKind {
    If,
    Unless,
}

/// `event <name> [ { if | unless } <condition> ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// The event name as written (unknown names are kept, with an error diagnostic).
    pub event: String,
    /// The ACL condition, as text (words joined by spaces, re-quoted when needed).
    pub condition: Option<(CondKind, String)>,
    pub line: usize,
}

/// A `spoe-group` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoeGroup {
    pub name: String,
    pub line: usize,
    pub messages: Vec<Located<String>>,
}

/// The events a message can be attached to (SPOE.txt §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpoeEvent {
    OnClientSession,
    OnServerSession,
    OnFrontendTcpRequest,
    OnBackendTcpRequest,
    OnTcpResponse,
    OnFrontendHttpRequest,
    OnBackendHttpRequest,
    OnHttpResponse,
}

impl SpoeEvent {
    pub const ALL: [SpoeEvent; 8] = [
        SpoeEvent::OnClientSession,
        SpoeEvent::OnServerSession,
        SpoeEvent::OnFrontendTcpRequest,
        SpoeEvent::OnBackendTcpRequest,
        SpoeEvent::OnTcpResponse,
        SpoeEvent::OnFrontendHttpRequest,
        SpoeEvent::OnBackendHttpRequest,
        SpoeEvent::OnHttpResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SpoeEvent::OnClientSession => "on-client-session",
            SpoeEvent::OnServerSession => "on-server-session",
            SpoeEvent::OnFrontendTcpRequest => "on-frontend-tcp-request",
            SpoeEvent::OnBackendTcpRequest => "on-backend-tcp-request",
            SpoeEvent::OnTcpResponse => "on-tcp-response",
            SpoeEvent::OnFrontendHttpRequest => "on-frontend-http-request",
            SpoeEvent::OnBackendHttpRequest => "on-backend-http-request",
            SpoeEvent::OnHttpResponse => "on-http-response",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// Events only a frontend can trigger (HAProxy ignores them on a backend-only proxy).
    pub fn is_frontend_only(self) -> bool {
        matches!(self, SpoeEvent::OnClientSession | SpoeEvent::OnFrontendTcpRequest | SpoeEvent::OnFrontendHttpRequest)
    }
}

impl fmt::Display for SpoeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EventSpec {
    /// The event, when it is one HAProxy knows.
    pub fn kind(&self) -> Option<SpoeEvent> {
        SpoeEvent::from_name(&self.event)
    }
}

impl MessageArg {
    /// The name sent on the wire (empty for an unnamed arg).
    pub fn wire_name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// The sample fetch keyword, without arguments and converters (`req.hdr` for `req.hdr(host),lower`).
    pub fn fetch(&self) -> &str {
        let end = self.sample.find(['(', ',']).unwrap_or(self.sample.len());
        &self.sample[..end]
    }
}

impl Acl {
    /// The ACL as one line of text (without `acl <name>`).
    pub fn text(&self) -> String {
        std::iter::once(self.criterion.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(requote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl SpoeAgent {
    /// `option var-prefix`, or the agent's name (HAProxy's default).
    pub fn var_prefix(&self) -> &str {
        self.option_var_prefix.as_ref().map_or(self.name.as_str(), |p| p.value.as_str())
    }

    /// The variable name HAProxy sees for `name` set in `scope`: `<scope>.<prefix>.<name>`.
    pub fn var_name(&self, scope: VarScope, name: &str) -> String {
        format!("{}.{}.{}", scope.as_str(), self.var_prefix(), name)
    }

    /// `option async` (default on; ignored by HAProxy ≥ 3.1).
    pub fn async_enabled(&self) -> bool {
        self.option_async.as_ref().map(|o| o.value).unwrap_or(true)
    }

    /// `option pipelining` (default on).
    pub fn pipelining(&self) -> bool {
        self.option_pipelining.as_ref().map(|o| o.value).unwrap_or(true)
    }

    /// `option send-frag-payload` (default on; ignored by HAProxy ≥ 3.1).
    pub fn send_frag_payload(&self) -> bool {
        self.option_send_frag_payload.as_ref().map(|o| o.value).unwrap_or(true)
    }

    /// `option dontlog-normal` (default off).
    pub fn dontlog_normal(&self) -> bool {
        self.option_dontlog_normal.as_ref().is_some_and(|o| o.value)
    }

    pub fn continue_on_error(&self) -> bool {
        self.option_continue_on_error.is_some()
    }

    pub fn force_set_var(&self) -> bool {
        self.option_force_set_var.is_some()
    }

    /// `max-frame-size`, or the default for the default `tune.bufsize`.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size.as_ref().map_or(DEFAULT_MAX_FRAME_SIZE, |m| m.value.clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// `max-waiting-frames`, or 20.
    pub fn max_waiting_frames(&self) -> u32 {
        self.max_waiting_frames
            .as_ref()
            .map_or(DEFAULT_MAX_WAITING_FRAMES, |m| m.value.clamp(0, i64::from(u32::MAX)) as u32)
    }
}

impl Scope {
    pub fn message(&self, name: &str) -> Option<&SpoeMessage> {
        self.messages.iter().find(|m| m.name == name)
    }

    pub fn group(&self, name: &str) -> Option<&SpoeGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The messages HAProxy sends on events: those the agent lists in `messages` that are declared,
    /// in the agent's order.
    pub fn event_messages(&self) -> Vec<&SpoeMessage> {
        self.agent.iter().flat_map(|a| &a.messages).filter_map(|n| self.message(n)).collect()
    }

    /// Every message HAProxy can send: [`Scope::event_messages`] and the messages of the agent's
    /// groups, without duplicates.
    pub fn sent_messages(&self) -> Vec<&SpoeMessage> {
        let mut out = self.event_messages();
        let groups = self.agent.iter().flat_map(|a| &a.groups).filter_map(|g| self.group(g));
        for m in groups.flat_map(|g| &g.messages).filter_map(|n| self.message(n)) {
            if !out.iter().any(|o| o.name == m.name) {
                out.push(m);
            }
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.agent.is_none() && self.messages.is_empty() && self.groups.is_empty()
    }

    /// `[name]`, or `the unnamed scope`.
    fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("[{n}]"),
            None => "the unnamed scope".to_string(),
        }
    }
}

impl SpoeConfig {
    /// Parses the text of a SPOE configuration file, with no environment (every `"$VAR"` is unset).
    pub fn parse(text: &str) -> Result<SpoeConfig, ConfError> {
        Self::parse_with_env(text, &|_| None)
    }

    /// Parses with `env` resolving environment variables inside double quotes.
    pub fn parse_with_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<SpoeConfig, ConfError> {
        Parser::run(text, env, "spoe.conf")
    }

    /// Reads and parses a file, resolving `"$VAR"` from the process environment as HAProxy does.
    pub fn parse_file(path: impl AsRef<Path>) -> Result<SpoeConfig, ConfError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfError::Io { path: path.to_path_buf(), source })?;
        Parser::run(&text, &|n| std::env::var(n).ok(), &path.display().to_string())
    }

    /// The scope of an engine: `engine(Some("x"))` is `[x]`; `engine(None)` is the unnamed scope
    /// (what `filter spoe config <file>` without `engine` uses).
    pub fn engine(&self, name: Option<&str>) -> Option<&Scope> {
        self.scopes.iter().find(|s| s.name.as_deref() == name)
    }

    /// True when a diagnostic is an error (HAProxy would refuse to start).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.level == Level::Error)
    }
}

/// Puts a word back in double quotes when it would not survive re-splitting.
fn requote(w: &str) -> String {
    if !w.is_empty() && !w.bytes().any(|c| is_space(c) || matches!(c, b'"' | b'\'' | b'\\' | b'#' | b'$')) {
        return w.to_string();
    }
    let mut s = String::with_capacity(w.len() + 2);
    s.push('"');
    for c in w.chars() {
        if matches!(c, '"' | '\\' | '$') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

// ---------------------------------------------------------------------------------------------------
// The parser
// ---------------------------------------------------------------------------------------------------

const SPOE_SECTIONS: [&str; 3] = ["spoe-agent", "spoe-message", "spoe-group"];

/// ACLs HAProxy predefines (`acl.c`), usable in `event ... if` without declaring them.
const PREDEFINED_ACLS: [&str; 23] = [
    "TRUE",
    "FALSE",
    "LOCALHOST",
    "HTTP",
    "HTTP_1.0",
    "HTTP_1.1",
    "HTTP_2.0",
    "HTTP_3.0",
    "METH_CONNECT",
    "METH_DELETE",
    "METH_GET",
    "METH_HEAD",
    "METH_OPTIONS",
    "METH_POST",
    "METH_PUT",
    "METH_TRACE",
    "HTTP_URL_ABS",
    "HTTP_URL_SLASH",
    "HTTP_URL_STAR",
    "HTTP_CONTENT",
    "RDP_COOKIE",
    "REQ_CONTENT",
    "WAIT_END",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Agent,
    Message(usize),
    Group(usize),
    /// A section HAProxy refused (duplicate name): its lines are read and dropped.
    Discard,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kwm {
    Std,
    No,
    Default,
}

/// HAProxy's `invalid_char()`: names of sections and scopes allow `[A-Za-z0-9_.:-]`.
fn invalid_char(s: &str) -> Option<char> {
    s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
}

/// Variable names and prefixes allow `[a-zA-Z0-9_.]`.
fn invalid_var_char(s: &str) -> Option<char> {
    s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_')))
}

/// `args[i]`, or "" past the end, like HAProxy's args array.
fn arg(w: &[String], i: usize) -> &str {
    w.get(i).map_or("", String::as_str)
}

/// The words from `from` up to the first empty one (HAProxy loops `while (*args[i])`).
fn list_args(w: &[String], from: usize) -> &[String] {
    let rest = w.get(from..).unwrap_or(&[]);
    let n = rest.iter().take_while(|s| !s.is_empty()).count();
    &rest[..n]
}

/// HAProxy's `alertif_too_many_args(max)`: an error when `args[max + 1]` is set.
fn too_many(w: &[String], max: usize, line: usize, d: &mut Diags) -> bool {
    let extra = arg(w, max + 1);
    if extra.is_empty() {
        return false;
    }
    d.error(line, format!("'{}' cannot handle unexpected argument '{extra}'", w[..=max.min(w.len() - 1)].join(" ")));
    true
}

struct Parser<'d> {
    scopes: Vec<Scope>,
    section: Section,
    d: Diags<'d>,
}

impl Parser<'_> {
    fn run(text: &str, env: &dyn Fn(&str) -> Option<String>, file: &str) -> Result<SpoeConfig, ConfError> {
        let mut diagnostics = Vec::new();
        let mut d = Diags { list: &mut diagnostics, origin: Origin::SpoeConf };
        let items = read_items(text, env, file, &SPOE_SECTIONS, &mut d);
        let mut p = Parser { scopes: vec![Scope::default()], section: Section::None, d };
        for item in items {
            match item {
                Item::ScopeLine { line, text } => p.scope_line(line, &text)?,
                Item::Words { line, words } => p.words(line, words)?,
            }
        }
        let mut scopes = p.scopes;
        if scopes.first().is_some_and(|s| s.name.is_none() && s.is_empty()) {
            scopes.remove(0);
        }
        Ok(SpoeConfig { scopes, diagnostics })
    }

    fn scope_line(&mut self, line: usize, text: &str) -> Result<(), ConfError> {
        let body = &text[1..];
        let Some(end) = body.find(']').filter(|e| *e > 0) else {
            self.d.error(line, "empty scope name is forbidden");
            return Ok(());
        };
        let name = &body[..end];
        if let Some(c) = invalid_char(name) {
            return Err(ConfError::Fatal {
                line,
                message: format!("character '{c}' is not permitted in a scope name"),
            });
        }
        let after = body[end + 1..].trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
        if let Some(c) = after.chars().next().filter(|c| !matches!(c, '#' | '\r')) {
            return Err(ConfError::Fatal {
                line,
                message: format!("character '{c}' is not permitted after scope declaration"),
            });
        }
        self.scopes.push(Scope { name: Some(name.to_string()), line: Some(line), ..Scope::default() });
        self.section = Section::None;
        Ok(())
    }

    fn scope(&mut self) -> &mut Scope {
        if self.scopes.is_empty() {
            self.scopes.push(Scope::default());
        }
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    fn words(&mut self, line: usize, mut words: Vec<String>) -> Result<(), ConfError> {
        let kwm = match words.first().map(String::as_str) {
            Some("no") => Kwm::No,
            Some("default") => Kwm::Default,
            _ => Kwm::Std,
        };
        if kwm != Kwm::Std {
            words.remove(0);
            if !matches!(words.first().map(String::as_str), Some("option" | "log")) {
                self.d.error(line, "negation/default is only supported for 'option' and 'log' keywords");
            }
        }
        let Some(kw) = words.first().cloned() else {
            return Ok(());
        };
        if SPOE_SECTIONS.contains(&kw.as_str()) {
            return self.section_header(line, &words);
        }
        match self.section {
            Section::None => {
                self.d.error(
                    line,
                    format!("unknown keyword '{kw}' out of section (expected spoe-agent, spoe-message or spoe-group)"),
                );
            }
            Section::Discard => {}
            Section::Agent => {
                let mut d = Diags { list: &mut *self.d.list, origin: self.d.origin };
                if let Some(agent) = self.scopes.last_mut().and_then(|s| s.agent.as_mut()) {
                    agent_keyword(agent, kwm, &words, line, &mut d);
                }
            }
            Section::Message(i) => {
                let mut d = Diags { list: &mut *self.d.list, origin: self.d.origin };
                if let Some(msg) = self.scopes.last_mut().and_then(|s| s.messages.get_mut(i)) {
                    message_keyword(msg, &words, line, &mut d);
                }
            }
            Section::Group(i) => {
                let mut d = Diags { list: &mut *self.d.list, origin: self.d.origin };
                if let Some(grp) = self.scopes.last_mut().and_then(|s| s.groups.get_mut(i)) {
                    group_keyword(grp, &words, line, &mut d);
                }
            }
        }
        Ok(())
    }

    fn section_header(&mut self, line: usize, w: &[String]) -> Result<(), ConfError> {
        let kw = w[0].as_str();
        let name = arg(w, 1);
        if name.is_empty() {
            return Err(ConfError::Fatal { line, message: format!("missing name for {kw} section") });
        }
        if w.len() > 2 {
            return Err(ConfError::Fatal {
                line,
                message: format!("'{kw}' cannot handle unexpected argument '{}'", w[2]),
            });
        }
        if let Some(c) = invalid_char(name) {
            return Err(ConfError::Fatal {
                line,
                message: format!("character '{c}' is not permitted in '{kw}' name '{name}'"),
            });
        }
        let name = name.to_string();
        let scope = self.scope();
        match kw {
            "spoe-agent" => {
                if let Some(a) = &scope.agent {
                    return Err(ConfError::Fatal {
                        line,
                        message: format!(
                            "another spoe-agent section ('{}', line {}) was defined before in this scope",
                            a.name, a.line
                        ),
                    });
                }
                scope.agent = Some(SpoeAgent { name, line, ..SpoeAgent::default() });
                self.section = Section::Agent;
            }
            "spoe-message" => {
                if let Some(m) = scope.message(&name) {
                    let prev = m.line;
                    self.d.error(
                        line,
                        format!(
                            "spoe-message section '{name}' has the same name as another one declared at line {prev}"
                        ),
                    );
                    self.section = Section::Discard;
                } else {
                    scope.messages.push(SpoeMessage { name, line, ..SpoeMessage::default() });
                    self.section = Section::Message(scope.messages.len() - 1);
                }
            }
            _ => {
                if let Some(g) = scope.group(&name) {
                    let prev = g.line;
                    self.d.error(
                        line,
                        format!("spoe-group section '{name}' has the same name as another one declared at line {prev}"),
                    );
                    self.section = Section::Discard;
                } else {
                    scope.groups.push(SpoeGroup { name, line, ..SpoeGroup::default() });
                    self.section = Section::Group(scope.groups.len() - 1);
                }
            }
        }
        Ok(())
    }
}

fn agent_keyword(a: &mut SpoeAgent, kwm: Kwm, w: &[String], line: usize, d: &mut Diags) {
    let kw = w[0].as_str();
    match kw {
        "use-backend" => {
            if arg(w, 1).is_empty() {
                d.error(line, "'use-backend' expects a backend name");
            } else if !too_many(w, 1, line, d) {
                a.use_backend = Some(Located::new(w[1].clone(), line));
            }
        }
        "messages" | "groups" => {
            let (list, what) = if kw == "messages" { (&mut a.messages, "message") } else { (&mut a.groups, "group") };
            for name in list_args(w, 1) {
                if list.iter().any(|m| m.value == *name) {
                    d.error(line, format!("spoe-{what} '{name}' already used"));
                    return;
                }
                list.push(Located::new(name.clone(), line));
            }
        }
        "timeout" => {
            let which = arg(w, 1);
            if which.is_empty() {
                d.error(line, "'timeout' expects 'hello', 'idle' or 'processing'");
                return;
            }
            if too_many(w, 2, line, d) {
                return;
            }
            let slot = match which {
                "hello" => &mut a.timeout_hello,
                "idle" => &mut a.timeout_idle,
                "processing" => &mut a.timeout_processing,
                other => {
                    d.error(line, format!("'timeout' supports 'hello', 'idle' or 'processing' (got '{other}')"));
                    return;
                }
            };
            let value = arg(w, 2);
            if value.is_empty() {
                d.error(line, format!("'timeout {which}' expects a time value (in milliseconds by default)"));
                return;
            }
            if let Some(t) = timer(value, &format!("timeout {which}"), line, d) {
                *slot = Some(Located::new(t, line));
            }
        }
        "option" => agent_option(a, kwm, w, line, d),
        "maxconnrate" | "maxerrrate" | "max-frame-size" | "max-waiting-frames" => {
            let v = arg(w, 1);
            if v.is_empty() {
                d.error(line, format!("'{kw}' expects an integer argument"));
                return;
            }
            if too_many(w, 1, line, d) {
                return;
            }
            let (n, exact) = atol(v);
            if !exact {
                d.warning(line, format!("'{kw} {v}': HAProxy reads this as {n} (atol); write a plain integer"));
            }
            let located = Some(Located::new(n, line));
            match kw {
                "maxconnrate" => a.maxconnrate = located,
                "maxerrrate" => a.maxerrrate = located,
                "max-frame-size" => {
                    if n < i64::from(MIN_FRAME_SIZE) {
                        d.error(line, format!("'max-frame-size' expects an integer in the range [{MIN_FRAME_SIZE}, tune.bufsize-4] (got {n})"));
                    }
                    a.max_frame_size = located;
                }
                _ => {
                    if n < 1 {
                        d.error(line, "'max-waiting-frames' expects a positive integer argument");
                    }
                    a.max_waiting_frames = located;
                }
            }
        }
        "register-var-names" => {
            let names = list_args(w, 1);
            if names.is_empty() {
                d.error(line, "'register-var-names' expects one or more variable names");
                return;
            }
            for n in names {
                if let Some(c) = invalid_var_char(n) {
                    d.error(line, format!("variable name '{n}' has '{c}': HAProxy fails to register it (only [a-zA-Z0-9_.] are allowed)"));
                }
                a.register_var_names.push(Located::new(n.clone(), line));
            }
        }
        "log" => {
            if kwm == Kwm::No {
                a.log.push(LogDirective { negated: true, args: w[1..].to_vec(), line });
                return;
            }
            let first = arg(w, 1);
            if first.is_empty() {
                d.error(line, "'log' expects either <address[:port]> and <facility> or 'global' as arguments");
                return;
            }
            if first == "global" && w.len() > 2 {
                d.error(line, "'log global' does not support any other argument");
                return;
            }
            if first != "global" && arg(w, 2).is_empty() {
                d.error(line, format!("'log {first}' expects a facility (e.g. local0)"));
                return;
            }
            a.log.push(LogDirective { negated: false, args: w[1..].to_vec(), line });
        }
        other => d.error(line, format!("unknown keyword '{other}' in spoe-agent section")),
    }
}

/// Parses a timer value as HAProxy does for `timeout ...`, reporting what it would refuse.
fn timer(value: &str, what: &str, line: usize, d: &mut Diags) -> Option<Duration> {
    match parse_time_lenient(value) {
        Ok((t, trailing)) => {
            if let Some(rest) = trailing {
                d.warning(
                    line,
                    format!(
                        "'{what} {value}': HAProxy 2.6 ignores '{rest}' after the unit (and newer versions refuse it)"
                    ),
                );
            }
            if !t.is_zero() && t.as_millis() == 0 {
                d.error(line, format!("'{what} {value}': timer underflow, HAProxy's minimum non-zero value is 1 ms"));
                return None;
            }
            Some(t)
        }
        Err(e) => {
            d.error(line, format!("'{what}': {e}"));
            None
        }
    }
}

fn agent_option(a: &mut SpoeAgent, kwm: Kwm, w: &[String], line: usize, d: &mut Diags) {
    let name = arg(w, 1);
    if name.is_empty() {
        d.error(line, "'option' expects an option name");
        return;
    }
    let toggle = match name {
        "pipelining" => Some(&mut a.option_pipelining),
        "async" => Some(&mut a.option_async),
        "send-frag-payload" => Some(&mut a.option_send_frag_payload),
        "dontlog-normal" => Some(&mut a.option_dontlog_normal),
        _ => None,
    };
    if let Some(slot) = toggle {
        if !too_many(w, 1, line, d) {
            *slot = Some(Located::new(kwm != Kwm::No, line));
        }
        return;
    }
    if kwm == Kwm::No {
        d.error(line, format!("negation is not supported for option '{name}'"));
        return;
    }
    match name {
        "var-prefix" | "set-on-error" | "set-process-time" | "set-total-time" => {
            let v = arg(w, 2);
            if v.is_empty() {
                d.error(line, format!("'option {name}' expects a value"));
                return;
            }
            if too_many(w, 2, line, d) {
                return;
            }
            if let Some(c) = invalid_var_char(v) {
                d.error(line, format!("'option {name}' only supports [a-zA-Z0-9_.] chars (got '{c}')"));
                return;
            }
            let slot = match name {
                "var-prefix" => &mut a.option_var_prefix,
                "set-on-error" => &mut a.option_set_on_error,
                "set-process-time" => &mut a.option_set_process_time,
                _ => &mut a.option_set_total_time,
            };
            *slot = Some(Located::new(v.to_string(), line));
        }
        "force-set-var" | "continue-on-error" => {
            if !too_many(w, 1, line, d) {
                if name == "force-set-var" {
                    a.option_force_set_var = Some(line);
                } else {
                    a.option_continue_on_error = Some(line);
                }
            }
        }
        other => d.error(line, format!("option '{other}' is not supported in a spoe-agent section")),
    }
}

fn message_keyword(m: &mut SpoeMessage, w: &[String], line: usize, d: &mut Diags) {
    match w[0].as_str() {
        "args" => {
            for a in list_args(w, 1) {
                let (name, sample) = match a.split_once('=') {
                    Some((n, s)) => (Some(n.to_string()), s),
                    None => (None, a.as_str()),
                };
                if sample.is_empty() {
                    d.error(line, format!("'args': '{a}' has no sample expression after '='"));
                    return;
                }
                m.args.push(MessageArg { name, sample: sample.to_string(), line });
            }
        }
        "acl" => {
            let name = arg(w, 1);
            if let Some(c) = invalid_char(name) {
                d.error(line, format!("character '{c}' is not permitted in acl name '{name}'"));
                return;
            }
            if name.is_empty() {
                d.error(line, "'acl' expects an ACL name and a criterion");
                return;
            }
            if name.eq_ignore_ascii_case("or") {
                d.error(line, "acl name 'or' will never match: 'or' is the disjunction of conditions");
                return;
            }
            let criterion = arg(w, 2);
            if criterion.is_empty() {
                d.error(line, format!("acl '{name}' has no criterion (sample fetch)"));
                return;
            }
            m.acls.push(Acl { name: name.to_string(), criterion: criterion.to_string(), args: w[3..].to_vec(), line });
        }
        "event" => {
            let ev = arg(w, 1);
            if ev.is_empty() {
                d.error(line, "missing event name");
                return;
            }
            if SpoeEvent::from_name(ev).is_none() {
                let known: Vec<&str> = SpoeEvent::ALL.iter().map(|e| e.as_str()).collect();
                d.error(line, format!("unknown event '{ev}' (HAProxy knows {})", known.join(", ")));
                return;
            }
            let condition = match arg(w, 2) {
                "" => None,
                k @ ("if" | "unless") => {
                    let words = &w[3..];
                    if words.is_empty() {
                        d.error(line, format!("'event {ev} {k}' has no condition"));
                        return;
                    }
                    check_condition_acls(m, words, line, d);
                    let kind = if k == "if" { CondKind::If } else { CondKind::Unless };
                    Some((kind, words.iter().map(|s| requote(s)).collect::<Vec<_>>().join(" ")))
                }
                other => {
                    d.error(
                        line,
                        format!(
                            "'event {ev}' expects either 'if' or 'unless' followed by a condition but found '{other}'"
                        ),
                    );
                    return;
                }
            };
            if let Some(prev) = &m.event {
                d.warning(
                    line,
                    format!(
                        "message '{}' already had 'event {}' (line {}); HAProxy keeps only this last one",
                        m.name, prev.event, prev.line
                    ),
                );
            }
            m.event = Some(EventSpec { event: ev.to_string(), condition, line });
        }
        other => d.error(line, format!("unknown keyword '{other}' in spoe-message section")),
    }
}

/// Every named ACL of a condition must be declared before in the message, or predefined.
fn check_condition_acls(m: &SpoeMessage, words: &[String], line: usize, d: &mut Diags) {
    let mut depth = 0i32;
    for w in words {
        match w.as_str() {
            "{" => depth += 1,
            "}" => depth -= 1,
            _ if depth > 0 => {}
            "||" | "!" => {}
            o if o.eq_ignore_ascii_case("or") => {}
            o => {
                let name = o.trim_start_matches('!');
                if !name.is_empty() && !m.acls.iter().any(|a| a.name == name) && !PREDEFINED_ACLS.contains(&name) {
                    d.error(
                        line,
                        format!("no such ACL: '{name}' (declare it with 'acl {name} ...' before the event line)"),
                    );
                }
            }
        }
    }
    if depth != 0 {
        d.error(line, "unbalanced '{' '}' in condition");
    }
}

fn group_keyword(g: &mut SpoeGroup, w: &[String], line: usize, d: &mut Diags) {
    match w[0].as_str() {
        "messages" => {
            for name in list_args(w, 1) {
                if g.messages.iter().any(|m| m.value == *name) {
                    d.error(line, format!("spoe-message '{name}' already used"));
                    return;
                }
                g.messages.push(Located::new(name.clone(), line));
            }
        }
        other => d.error(line, format!("unknown keyword '{other}' in spoe-group section")),
    }
}

// ---------------------------------------------------------------------------------------------------
// check-conf
// ---------------------------------------------------------------------------------------------------

mod check {
    //! `check`: what HAProxy would do silently, or what breaks the constraints of notes/spop.md.

    use super::*;
    use crate::rules::WriteKind;
    use std::collections::HashSet;

    /// Fetches whose value can be as large as a request or response buffer.
    const LARGE_FETCHES: [&str; 10] = [
        "req.hdrs",
        "req.hdrs_bin",
        "res.hdrs",
        "res.hdrs_bin",
        "req.body",
        "res.body",
        "req.payload",
        "res.payload",
        "req.payload_lv",
        "res.payload_lv",
    ];

    /// `timeout processing` above this is unusual: every request can wait that long.
    const LARGE_PROCESSING: Duration = Duration::from_secs(5);

    /// Checks a parsed SPOE configuration, optionally with the rules the agent will run and the text
    /// of `haproxy.cfg`. Returns the parse diagnostics of `conf` followed by its own findings. Pure:
    /// reads no file and no environment.
    ///
    /// Findings: HAProxy's own refusals and warnings (missing agent, backend or timeouts, undefined
    /// messages or groups, invalid default variable prefix, messages without event); variables a rule
    /// sets that HAProxy ignores (not in `register-var-names`, not referenced in `haproxy.cfg`, no
    /// `option force-set-var`); rules matching messages or args never sent, and sent messages no rule
    /// reads; the backend's existence, mode and timeouts against `timeout hello`/`idle`;
    /// `max-frame-size` range and the fragmentation reconnect storm (notes §3.5); and what
    /// HAProxy ≥ 3.1 ignores.
    pub fn check(conf: &SpoeConfig, rules: Option<&Rules>, haproxy_cfg: Option<&str>) -> Vec<Diagnostic> {
        let mut out = conf.diagnostics.clone();
        let ha = haproxy_cfg.map(|text| HaCfg::parse(text, &mut out));
        if conf.scopes.is_empty() {
            out.push(Diagnostic {
                level: Level::Error,
                origin: Origin::SpoeConf,
                line: None,
                message: "no spoe-agent section: HAProxy refuses the filter ('No SPOE agent found'); add spoe-agent, spoe-message and use-backend".into(),
            });
        }
        if let Some(ha) = &ha {
            check_filters(conf, ha, &mut out);
        }
        for scope in &conf.scopes {
            let mut c = Checker { scope, ha: ha.as_ref(), out: &mut out, multi: conf.scopes.len() > 1 };
            c.scope_checks();
            if let Some(rules) = rules {
                c.rule_checks(rules);
            }
        }
        if let Some(rules) = rules {
            rules_self_checks(rules, &mut out);
        }
        out
    }

    /// What `check` needs from `haproxy.cfg`.
    #[derive(Default)]
    struct HaCfg {
        bufsize: Option<Located<i64>>,
        /// `defaults`, `frontend`, `backend`, `listen` sections with inherited values resolved.
        proxies: Vec<ProxyCfg>,
        /// `<prefix>.<name>` parts of every `<scope>.<prefix>.<name>` variable the file mentions.
        var_refs: HashSet<String>,
        filters: Vec<SpoeFilter>,
        /// `send-spoe-group <engine> <group>`.
        send_groups: Vec<(String, String)>,
    }

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum ProxyKind {
        Defaults,
        Frontend,
        Backend,
        Listen,
    }

    #[derive(Clone, Debug)]
    struct ProxyCfg {
        kind: ProxyKind,
        name: String,
        line: usize,
        mode: Option<Located<String>>,
        connect: Option<Located<Duration>>,
        server: Option<Located<Duration>>,
    }

    struct SpoeFilter {
        engine: Option<String>,
        proxy_kind: ProxyKind,
        proxy: String,
        line: usize,
    }

    const HA_SECTIONS: [&str; 18] = [
        "global",
        "defaults",
        "frontend",
        "backend",
        "listen",
        "peers",
        "resolvers",
        "userlist",
        "mailers",
        "program",
        "http-errors",
        "ring",
        "cache",
        "fcgi-app",
        "log-forward",
        "traces",
        "crt-store",
        "acme",
    ];

    impl HaCfg {
        fn parse(text: &str, out: &mut Vec<Diagnostic>) -> HaCfg {
            let mut d = Diags { list: out, origin: Origin::HaproxyCfg };
            let items = read_items(text, &|_| None, "haproxy.cfg", &HA_SECTIONS, &mut d);
            let mut ha = HaCfg::default();
            let mut section = "";
            let mut current: Option<usize> = None;
            let mut last_defaults: Option<usize> = None;
            for item in items {
                let Item::Words { line, words } = item else {
                    continue;
                };
                for w in &words {
                    scan_var_refs(w, &mut ha.var_refs);
                }
                if let Some(i) = words.iter().position(|w| w == "send-spoe-group") {
                    ha.send_groups.push((arg(&words, i + 1).to_string(), arg(&words, i + 2).to_string()));
                }
                if let Some(set) = words.iter().position(|w| w == "set-var" || w == "set-var-fmt") {
                    scan_bare_var(arg(&words, set + 1), &mut ha.var_refs);
                }
                let kw = words[0].as_str();
                if let Some(s) = HA_SECTIONS.iter().find(|s| **s == kw) {
                    section = *s;
                    current = None;
                    let kind = match kw {
                        "defaults" => ProxyKind::Defaults,
                        "frontend" => ProxyKind::Frontend,
                        "backend" => ProxyKind::Backend,
                        "listen" => ProxyKind::Listen,
                        _ => continue,
                    };
                    let name = arg(&words, 1);
                    let name = if name == "from" { "" } else { name };
                    let from = words.iter().position(|w| w == "from").map(|i| arg(&words, i + 1));
                    let base = match from {
                        Some(f) => ha.proxies.iter().rposition(|p| p.kind == ProxyKind::Defaults && p.name == f),
                        None if kind == ProxyKind::Defaults => None,
                        None => last_defaults,
                    };
                    let mut p = base.and_then(|b| ha.proxies.get(b)).cloned().unwrap_or(ProxyCfg {
                        kind,
                        name: String::new(),
                        line,
                        mode: None,
                        connect: None,
                        server: None,
                    });
                    p.kind = kind;
                    p.name = name.to_string();
                    p.line = line;
                    ha.proxies.push(p);
                    current = Some(ha.proxies.len() - 1);
                    if kind == ProxyKind::Defaults {
                        last_defaults = current;
                    }
                    continue;
                }
                if section == "global" && kw == "tune.bufsize" {
                    ha.bufsize = Some(Located::new(atol(arg(&words, 1)).0, line));
                    continue;
                }
                let Some(p) = current.and_then(|i| ha.proxies.get_mut(i)) else {
                    continue;
                };
                match kw {
                    "mode" => p.mode = Some(Located::new(arg(&words, 1).to_string(), line)),
                    "timeout" => {
                        let t = parse_time_lenient(arg(&words, 2)).ok().map(|(t, _)| Located::new(t, line));
                        match arg(&words, 1) {
                            "connect" => p.connect = t,
                            "server" => p.server = t,
                            _ => {}
                        }
                    }
                    "filter" if arg(&words, 1) == "spoe" => {
                        let engine = words.iter().position(|w| w == "engine").map(|i| arg(&words, i + 1).to_string());
                        ha.filters.push(SpoeFilter { engine, proxy_kind: p.kind, proxy: p.name.clone(), line });
                    }
                    _ => {}
                }
            }
            ha
        }

        fn bufsize(&self) -> i64 {
            self.bufsize.as_ref().map_or(i64::from(DEFAULT_BUFSIZE), |b| b.value)
        }

        /// The backend (or listen) section HAProxy would pick for `use-backend name`.
        fn backend(&self, name: &str) -> Option<&ProxyCfg> {
            self.proxies.iter().find(|p| matches!(p.kind, ProxyKind::Backend | ProxyKind::Listen) && p.name == name)
        }
    }

    /// Collects `<prefix>.<name>` from every `proc.`/`sess.`/`txn.`/`req.`/`res.` variable in a word.
    fn scan_var_refs(w: &str, refs: &mut HashSet<String>) {
        let b = w.as_bytes();
        for scope in ["proc.", "sess.", "txn.", "req.", "res."] {
            let mut from = 0;
            while let Some(pos) = w.get(from..).and_then(|s| s.find(scope)).map(|p| p + from) {
                from = pos + scope.len();
                let boundary = pos == 0
                    || !b.get(pos - 1).is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
                if boundary {
                    let rest = &w[from..];
                    let n = rest.bytes().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.')).count();
                    let name = rest[..n].trim_end_matches('.');
                    if name.contains('.') {
                        refs.insert(name.to_string());
                    }
                }
            }
        }
    }

    /// The variable of a global `set-var <scope>.<name> <expr>`.
    fn scan_bare_var(w: &str, refs: &mut HashSet<String>) {
        if let Some((_, name)) = w.split_once('.') {
            if name.contains('.') {
                refs.insert(name.to_string());
            }
        }
    }

    fn check_filters(conf: &SpoeConfig, ha: &HaCfg, out: &mut Vec<Diagnostic>) {
        if ha.filters.is_empty() {
            out.push(Diagnostic {
                level: Level::Warning,
                origin: Origin::HaproxyCfg,
                line: None,
                message: "no 'filter spoe' line: HAProxy never sends anything to the agent; add 'filter spoe engine <scope> config <spoe.conf>' to a frontend or backend".into(),
            });
            return;
        }
        for scope in &conf.scopes {
            if !ha.filters.iter().any(|f| f.engine == scope.name) {
                let how = match &scope.name {
                    Some(n) => format!("'filter spoe engine {n} config ...'"),
                    None => "'filter spoe config ...' without 'engine'".to_string(),
                };
                out.push(Diagnostic {
                    level: Level::Info,
                    origin: Origin::SpoeConf,
                    line: scope.line,
                    message: format!("{} is used by no filter in haproxy.cfg (expected {how})", scope.label()),
                });
            }
        }
    }

    struct Checker<'a> {
        scope: &'a Scope,
        ha: Option<&'a HaCfg>,
        out: &'a mut Vec<Diagnostic>,
        multi: bool,
    }

    impl Checker<'_> {
        fn push(&mut self, level: Level, origin: Origin, line: Option<usize>, message: String) {
            let message = if self.multi { format!("{}: {message}", self.scope.label()) } else { message };
            self.out.push(Diagnostic { level, origin, line, message });
        }
        fn conf(&mut self, level: Level, line: usize, message: String) {
            self.push(level, Origin::SpoeConf, Some(line), message)
        }

        fn scope_checks(&mut self) {
            let scope = self.scope;
            let Some(agent) = &scope.agent else {
                let line = scope.line.or_else(|| scope.messages.first().map(|m| m.line)).unwrap_or(1);
                self.conf(Level::Error, line, format!("{} has no spoe-agent section: HAProxy refuses the filter ('No SPOE agent found'); add one with use-backend and messages", scope.label()));
                return;
            };
            self.agent_checks(agent);
            self.message_checks(agent);
            self.backend_checks(agent);
            self.frame_checks(agent);
            self.future_checks(agent);
        }

        fn agent_checks(&mut self, a: &SpoeAgent) {
            if a.use_backend.is_none() {
                self.conf(Level::Error, a.line, format!("spoe-agent '{}' has no use-backend: HAProxy refuses it ('No backend declared'); add 'use-backend <backend>'", a.name));
            }
            if a.option_var_prefix.is_none() {
                if let Some(c) = invalid_var_char(&a.name) {
                    self.conf(Level::Error, a.line, format!("spoe-agent '{}' has no 'option var-prefix' and its name, the default prefix, has '{c}': HAProxy refuses it; add 'option var-prefix <[a-zA-Z0-9_.]+>'", a.name));
                }
            }
            let missing: Vec<&str> =
                [("hello", &a.timeout_hello), ("idle", &a.timeout_idle), ("processing", &a.timeout_processing)]
                    .into_iter()
                    .filter(|(_, t)| t.as_ref().map(|t| t.value.is_zero()).unwrap_or(true))
                    .map(|(n, _)| n)
                    .collect();
            if !missing.is_empty() {
                self.conf(Level::Warning, a.line, format!("spoe-agent '{}' has no 'timeout {}': HAProxy 2.6 warns and waits forever (a stalled agent blocks requests); set e.g. timeout hello 2s, idle 2m, processing 500ms", a.name, missing.join("', 'timeout ")));
            }
            if let Some(p) = &a.timeout_processing {
                if p.value > LARGE_PROCESSING {
                    self.conf(Level::Warning, p.line, format!("'timeout processing {}': every request can wait this long when the agent stalls; typical values are 10ms to 1s", format_time(p.value)));
                }
            }
            if a.option_set_on_error.is_none() {
                self.conf(Level::Info, a.line, format!("spoe-agent '{}' has no 'option set-on-error': SPOE errors and timeouts are invisible to haproxy.cfg rules (they fail open); add 'option set-on-error err' and e.g. 'http-request deny if {{ var(txn.{}.err) -m found }}'", a.name, a.var_prefix()));
            }
            if !a.pipelining() {
                if let Some(p) = &a.option_pipelining {
                    self.conf(Level::Info, p.line, "'no option pipelining': HAProxy sends one NOTIFY at a time per connection and opens more connections (about 25-35% fewer requests/s measured, notes §7)".into());
                }
            }
            if a.messages.is_empty() && a.groups.is_empty() {
                self.conf(Level::Warning, a.line, format!("spoe-agent '{}' uses no message or group: HAProxy warns and never sends anything; add 'messages <name>'", a.name));
            }
        }

        fn message_checks(&mut self, a: &SpoeAgent) {
            let scope = self.scope;
            for m in &a.messages {
                match scope.message(m) {
                    None => self.conf(Level::Error, m.line, format!("spoe-agent '{}' uses undefined spoe-message '{}': HAProxy refuses it; declare 'spoe-message {}' in {}", a.name, m.value, m.value, scope.label())),
                    Some(msg) => match &msg.event {
                        None => self.conf(Level::Warning, msg.line, format!("spoe-message '{}' has no event: HAProxy ignores it ('Ignore SPOE message without event'); add e.g. 'event on-frontend-http-request', or send it from a spoe-group", msg.name)),
                        Some(ev) => {
                            if let (Some(kind), Some(ha)) = (ev.kind(), self.ha) {
                                let backends: Vec<String> = ha
                                    .filters
                                    .iter()
                                    .filter(|f| f.engine == scope.name && f.proxy_kind == ProxyKind::Backend)
                                    .map(|f| format!("'{}' (haproxy.cfg line {})", f.proxy, f.line))
                                    .collect();
                                if kind.is_frontend_only() && !backends.is_empty() {
                                    self.conf(Level::Warning, ev.line, format!("event '{kind}' of message '{}' is a frontend event but the filter is in backend {}: HAProxy ignores the message there; use the on-backend-* event", msg.name, backends.join(", ")));
                                }
                            }
                        }
                    },
                }
            }
            let mut in_group: Vec<(&str, &str)> = Vec::new();
            for g in &a.groups {
                let Some(grp) = scope.group(g) else {
                    self.conf(
                        Level::Error,
                        g.line,
                        format!("spoe-agent '{}' uses undefined spoe-group '{}': HAProxy refuses it", a.name, g.value),
                    );
                    continue;
                };
                for m in &grp.messages {
                    if scope.message(m).is_none() {
                        self.conf(
                            Level::Error,
                            m.line,
                            format!(
                                "spoe-group '{}' uses undefined spoe-message '{}': HAProxy refuses it",
                                grp.name, m.value
                            ),
                        );
                    } else if let Some((_, other)) = in_group.iter().find(|(n, _)| *n == m.value) {
                        let other = other.to_string();
                        self.conf(Level::Error, m.line, format!("spoe-message '{}' already belongs to spoe-group '{other}': HAProxy refuses it; a message belongs to at most one group", m.value));
                    } else {
                        in_group.push((m.value.as_str(), grp.name.as_str()));
                    }
                }
                if let (Some(ha), Some(engine)) = (self.ha, &scope.name) {
                    if !ha.send_groups.iter().any(|(e, gname)| e == engine && *gname == grp.name) {
                        self.conf(
                            Level::Info,
                            grp.line,
                            format!(
                                "spoe-group '{}' is never sent: haproxy.cfg has no 'send-spoe-group {engine} {}' rule",
                                grp.name, grp.name
                            ),
                        );
                    }
                }
            }
            let sent: Vec<&str> = scope.sent_messages().iter().map(|m| m.name.as_str()).collect();
            for msg in &scope.messages {
                if !sent.contains(&msg.name.as_str()) {
                    self.conf(Level::Warning, msg.line, format!("spoe-message '{}' is declared but no agent 'messages' line or used group lists it: HAProxy never sends it", msg.name));
                }
            }
            for g in &scope.groups {
                if !a.groups.iter().any(|n| n.value == g.name) {
                    self.conf(
                        Level::Warning,
                        g.line,
                        format!(
                            "spoe-group '{}' is declared but the agent's 'groups' does not list it: it cannot be sent",
                            g.name
                        ),
                    );
                }
            }
        }

        fn backend_checks(&mut self, a: &SpoeAgent) {
            let (Some(ha), Some(be)) = (self.ha, &a.use_backend) else {
                return;
            };
            let Some(p) = ha.backend(&be.value) else {
                self.conf(Level::Error, be.line, format!("use-backend '{}': haproxy.cfg has no backend or listen section of that name; HAProxy refuses to start", be.value));
                return;
            };
            let mode = p.mode.as_ref().map_or("tcp", |m| m.value.as_str());
            let mode_where = p.mode.as_ref().map(|m| format!(" (haproxy.cfg line {})", m.line)).unwrap_or_default();
            match mode {
                "tcp" => {}
                "spop" => self.conf(Level::Warning, be.line, format!("backend '{}' is 'mode spop'{mode_where}: only HAProxy ≥ 3.1 knows it; 2.6 refuses it, use 'mode tcp' (3.1+ converts it)", p.name)),
                other => self.conf(Level::Error, be.line, format!("backend '{}' is 'mode {other}'{mode_where}: HAProxy requires 'mode tcp' for SPOE agents (≥ 3.1 also 'mode spop'); add 'mode tcp' to the backend", p.name)),
            }
            match (&p.connect, &a.timeout_hello) {
                (None, _) => self.conf(Level::Warning, be.line, format!("backend '{}' has no 'timeout connect' (nor its defaults): HAProxy warns and a dead agent hangs the connection; set it above timeout hello", p.name)),
                (Some(c), Some(h)) if !h.value.is_zero() && c.value <= h.value => self.conf(Level::Warning, h.line, format!("backend '{}' 'timeout connect {}' (haproxy.cfg line {}) must exceed 'timeout hello {}' (SPOE.txt); raise timeout connect", p.name, format_time(c.value), c.line, format_time(h.value))),
                _ => {}
            }
            match (&p.server, &a.timeout_idle) {
                (None, _) => self.conf(Level::Warning, be.line, format!("backend '{}' has no 'timeout server' (nor its defaults): HAProxy warns; set it above timeout idle", p.name)),
                (Some(s), Some(i)) if !i.value.is_zero() && s.value <= i.value => self.conf(Level::Warning, i.line, format!("backend '{}' 'timeout server {}' (haproxy.cfg line {}) must exceed 'timeout idle {}': HAProxy closes idle agent connections early and reconnects; raise timeout server", p.name, format_time(s.value), s.line, format_time(i.value))),
                _ => {}
            }
        }

        fn frame_checks(&mut self, a: &SpoeAgent) {
            let bufsize = self.ha.map_or(i64::from(DEFAULT_BUFSIZE), HaCfg::bufsize);
            let max_allowed = bufsize - 4;
            let size = match &a.max_frame_size {
                Some(m) => {
                    if m.value > max_allowed {
                        self.conf(Level::Error, m.line, format!("'max-frame-size {}' exceeds tune.bufsize-4 = {max_allowed}: HAProxy refuses it; lower it or raise tune.bufsize", m.value));
                    }
                    m.value
                }
                None => max_allowed,
            };
            let explicit = a.max_frame_size.as_ref().filter(|m| m.value < max_allowed);
            for msg in self.scope.sent_messages() {
                let large: Vec<&str> =
                    msg.args.iter().map(MessageArg::fetch).filter(|f| LARGE_FETCHES.contains(f)).collect();
                if large.is_empty() {
                    continue;
                }
                let fetches = large.join(", ");
                let line = msg.args.iter().find(|x| LARGE_FETCHES.contains(&x.fetch())).map_or(msg.line, |x| x.line);
                if !a.send_frag_payload() {
                    self.conf(Level::Info, line, format!("message '{}' sends {fetches}, which can exceed max-frame-size {size}; with 'no option send-frag-payload' HAProxy then fails that request's processing (set-on-error value 3)", msg.name));
                } else if let Some(m) = explicit {
                    self.conf(Level::Warning, m.line, format!("message '{}' sends {fetches}, which can exceed 'max-frame-size {}' while 'option send-frag-payload' is on: HAProxy ≤ 3.0 then fragments the NOTIFY, and an agent that does not announce 'fragmentation' gets DISCONNECT 10 and a reconnect storm (notes §3.5); logwire announces fragmentation by default, other agents need 'no option send-frag-payload' or a larger max-frame-size", msg.name, m.value));
                } else {
                    self.conf(Level::Info, line, format!("message '{}' sends {fetches}, which can approach max-frame-size {size}: HAProxy ≤ 3.0 fragments larger NOTIFYs; logwire announces fragmentation by default, other agents may need 'no option send-frag-payload' (notes §3.5)", msg.name));
                }
            }
        }

        fn future_checks(&mut self, a: &SpoeAgent) {
            let ignored: [(&str, Option<usize>); 7] = [
                ("timeout hello", a.timeout_hello.as_ref().map(|t| t.line)),
                ("timeout idle", a.timeout_idle.as_ref().map(|t| t.line)),
                ("option async", a.option_async.as_ref().map(|t| t.line)),
                ("option send-frag-payload", a.option_send_frag_payload.as_ref().map(|t| t.line)),
                ("max-waiting-frames", a.max_waiting_frames.as_ref().map(|t| t.line)),
                ("maxconnrate", a.maxconnrate.as_ref().map(|t| t.line)),
                ("maxerrrate", a.maxerrrate.as_ref().map(|t| t.line)),
            ];
            for (kw, line) in ignored {
                if let Some(line) = line {
                    let why = match kw {
                        "timeout hello" | "timeout idle" => {
                            "the SPOP mux uses the backend's timeouts (timeout server) instead"
                        }
                        "option async" => "async was removed",
                        "option send-frag-payload" => {
                            "fragmentation was removed; a too-big NOTIFY is a per-request error"
                        }
                        _ => "the SPOP mux does not use it",
                    };
                    self.conf(Level::Info, line, format!("'{kw}' is ignored by HAProxy ≥ 3.1: {why}"));
                }
            }
        }

        fn rule_checks(&mut self, rules: &Rules) {
            let scope = self.scope;
            let Some(agent) = &scope.agent else { return };
            let prefix = agent.var_prefix();
            let spoe_vars: Vec<(&str, &str)> = [
                ("set-on-error", &agent.option_set_on_error),
                ("set-process-time", &agent.option_set_process_time),
                ("set-total-time", &agent.option_set_total_time),
            ]
            .into_iter()
            .filter_map(|(o, v)| v.as_ref().map(|v| (o, v.value.as_str())))
            .collect();
            let sent = scope.sent_messages();
            for r in rules.rules() {
                let rl = Some(r.line);
                let mut seen = HashSet::new();
                for w in &r.writes {
                    if !seen.insert((w.scope, w.name.as_str())) {
                        continue;
                    }
                    let full = agent.var_name(w.scope, &w.name);
                    if let Some((opt, _)) = spoe_vars.iter().find(|(_, v)| *v == w.name) {
                        self.push(Level::Warning, Origin::Rules, rl, format!("rule {} writes '{}', the variable of 'option {opt}': HAProxy overwrites it; rename one of them", r.label, w.name));
                        continue;
                    }
                    let registered = agent.register_var_names.iter().any(|n| n.value == w.name);
                    let referenced = self.ha.is_some_and(|ha| ha.var_refs.contains(&format!("{prefix}.{}", w.name)));
                    if agent.force_set_var() || registered || referenced {
                        continue;
                    }
                    let verb = if w.kind == WriteKind::Unset { "unsets" } else { "sets" };
                    if self.ha.is_some() {
                        self.push(Level::Error, Origin::Rules, rl, format!("rule {} {verb} '{full}', which HAProxy 2.6 silently ignores: it is not in register-var-names, haproxy.cfg never references it and option force-set-var is off; add 'register-var-names {}' to spoe-agent '{}'", r.label, w.name, agent.name));
                    } else {
                        self.push(Level::Warning, Origin::Rules, rl, format!("rule {} {verb} '{full}', which is not in register-var-names: HAProxy 2.6 ignores it unless haproxy.cfg references var({full}); add 'register-var-names {}' to be sure", r.label, w.name));
                    }
                }
                for m in &r.messages {
                    match scope.message(m) {
                        None => self.push(Level::Warning, Origin::Rules, rl, format!("rule {} matches message '{m}', which {} does not declare: it never fires", r.label, scope.label())),
                        Some(_) if !sent.iter().any(|s| s.name == *m) => self.push(Level::Warning, Origin::Rules, rl, format!("rule {} matches message '{m}', which HAProxy never sends (not in the agent's messages or groups)", r.label)),
                        Some(_) => {}
                    }
                }
                let candidates: Vec<&&SpoeMessage> =
                    sent.iter().filter(|s| r.messages.is_empty() || r.messages.contains(&s.name)).collect();
                if candidates.is_empty() {
                    continue;
                }
                for a in &r.args {
                    if !candidates.iter().any(|m| m.args.iter().any(|x| x.name.as_deref() == Some(a.as_str()))) {
                        let names: Vec<&str> = candidates.iter().map(|m| m.name.as_str()).collect();
                        self.push(Level::Warning, Origin::Rules, rl, format!("rule {} tests arg '{a}', which message(s) '{}' never send (args are matched by name; name it in spoe.conf with 'args {a}=<sample>')", r.label, names.join("', '")));
                    }
                }
            }
            for m in &sent {
                let looked_at = rules.rules().iter().any(|r| {
                    r.messages.contains(&m.name)
                        || (r.messages.is_empty()
                            && r.args.iter().any(|a| m.args.iter().any(|x| x.name.as_deref() == Some(a.as_str()))))
                });
                if !looked_at {
                    self.conf(
                        Level::Info,
                        m.line,
                        format!(
                            "message '{}' is sent but no rule reads it (only rules without a condition fire for it)",
                            m.name
                        ),
                    );
                }
            }
            if let Some(ha) = self.ha {
                let written: HashSet<&str> = rules.variables().into_iter().map(|(_, n)| n).collect();
                let mut reads: Vec<&String> =
                    ha.var_refs.iter().filter(|r| r.starts_with(&format!("{prefix}."))).collect();
                reads.sort();
                for r in reads {
                    let name = &r[prefix.len() + 1..];
                    if !written.contains(name) && !spoe_vars.iter().any(|(_, v)| *v == name) {
                        self.push(
                            Level::Info,
                            Origin::HaproxyCfg,
                            None,
                            format!("haproxy.cfg reads variable '{r}' (prefix '{prefix}') but no rule sets '{name}'"),
                        );
                    }
                }
            }
        }
    }

    /// Checks of the rules file alone.
    fn rules_self_checks(rules: &Rules, out: &mut Vec<Diagnostic>) {
        let scored: HashSet<(VarScope, &str)> = rules
            .rules()
            .iter()
            .flat_map(|r| &r.writes)
            .filter(|w| w.kind == WriteKind::Score)
            .map(|w| (w.scope, w.name.as_str()))
            .collect();
        for r in rules.rules() {
            for w in
                r.writes.iter().filter(|w| w.kind == WriteKind::Set && scored.contains(&(w.scope, w.name.as_str())))
            {
                out.push(Diagnostic {
                    level: Level::Warning,
                    origin: Origin::Rules,
                    line: Some(r.line),
                    message: format!(
                        "rule {} sets '{}', which other rules score: the score sum is sent after it and overwrites it",
                        r.label, w.name
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Result<Vec<String>, String> {
        let env = |n: &str| match n {
            "HOME" => Some("/root".to_string()),
            "LIST" => Some("a  b c".to_string()),
            _ => None,
        };
        split_words(line, &LineEnv { env: &env, file: "f.conf", line: 7, section: "spoe-agent" })
    }

    #[test]
    fn tokenizer_follows_parse_line() {
        assert_eq!(words("args  ip=src   port=src_port # comment").unwrap(), ["args", "ip=src", "port=src_port"]);
        assert_eq!(words(r#"a"b c"d 'e f' "g'h" 'i"j'"#).unwrap(), ["ab cd", "e f", "g'h", "i\"j"]);
        assert_eq!(words(r"a\ b c\#d \x41\x42 x\qy 'sq\ x'").unwrap(), ["a b", "c#d", "AB", "x\\qy", "sq\\ x"]);
        assert_eq!(words("\"\"").unwrap(), Vec::<String>::new());
        assert_eq!(words(r#"a "" b"#).unwrap(), ["a", "", "b"]);
        assert_eq!(words(r#"a "" "#).unwrap(), ["a", ""], "HAProxy keeps the quoted empty word");
        assert_eq!(words("a  ").unwrap(), ["a"]);
        assert_eq!(words(r#"x "$HOME/y" $HOME '$HOME'"#).unwrap(), ["x", "/root/y", "$HOME", "$HOME"]);
        assert_eq!(
            words(r#""${NOPE-dflt}" "${HOME}" "${LIST[*]}" "$.LINE" "\$X""#).unwrap(),
            ["dflt", "/root", "a", "b", "c", "7", "$X"]
        );
        assert_eq!(words("trailing\\").unwrap(), ["trailing\\"], "no line continuation");
        assert!(words("a \"b").unwrap_err().contains("unmatched quote"));
        assert!(words(r"\x4").unwrap_err().contains("hexadecimal"));
        assert!(words(r#""$5""#).unwrap_err().contains("variable name"));
        assert!(words(r#""${HOME""#).is_err());
        assert!(words(&vec!["w"; 65].join(" ")).unwrap_err().contains("too many words"));
        assert_eq!(words(&vec!["w"; 64].join(" ")).unwrap().len(), 64);
    }

    #[test]
    fn times() {
        let ms = Duration::from_millis;
        assert_eq!(parse_time("2s"), Ok(ms(2000)));
        assert_eq!(parse_time("500ms"), Ok(ms(500)));
        assert_eq!(parse_time("2m"), Ok(ms(120_000)));
        assert_eq!(parse_time("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_time("1d"), Ok(ms(86_400_000)));
        assert_eq!(parse_time("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_time("250"), Ok(ms(250)));
        assert_eq!(parse_time("0"), Ok(ms(0)));
        assert!(matches!(parse_time("s"), Err(TimeError::NotANumber(_))));
        assert!(matches!(parse_time("5x"), Err(TimeError::BadUnit(_))));
        assert!(matches!(parse_time("2sec"), Err(TimeError::BadUnit(_))));
        assert!(matches!(parse_time("25d"), Err(TimeError::Overflow(_))));
        assert!(matches!(parse_time("99999999999999999999999999999999999999999"), Err(TimeError::Overflow(_))));
        assert_eq!(parse_time("2147483647"), Ok(ms(2_147_483_647)));
        assert_eq!(format_time(ms(120_000)), "2m");
        assert_eq!(format_time(ms(500)), "500ms");
        assert_eq!(format_time(Duration::from_micros(100)), "100us");
        assert_eq!(format_time(ms(0)), "0ms");
    }

    #[test]
    fn atol_like_c() {
        assert_eq!(atol("42"), (42, true));
        assert_eq!(atol(" 42"), (42, false));
        assert_eq!(atol("42k"), (42, false));
        assert_eq!(atol("abc"), (0, false));
        assert_eq!(atol("-3"), (-3, true));
    }

    #[test]
    fn conditions() {
        let env = |n: &str| (n == "SET").then(|| "1".to_string());
        let ev = |e: &str| eval_condition(e, &env).map(|(v, _)| v);
        assert_eq!(ev("1"), Ok(true));
        assert_eq!(ev("0"), Ok(false));
        assert_eq!(ev("defined(SET) && !defined(UNSET)"), Ok(true));
        assert_eq!(ev("version_atleast(2.4) && version_before(3.1)"), Ok(true));
        assert_eq!(ev("version_atleast(3.0)"), Ok(false));
        assert_eq!(ev("streq(a,a) && (strneq(a,b) || 0)"), Ok(true));
        assert_eq!(ev("feature(QUIC)"), Ok(true));
        assert!(ev("bogus(1)").is_err());
        assert!(ev("(1").is_err());
        assert!(ev("1 1").is_err());
        assert!(ev(&"!".repeat(500)).is_err());
    }

    #[test]
    fn if_blocks() {
        let text = "\
.if version_atleast(9.0)
spoe-agent never
.elif 1
spoe-agent a
.else
spoe-agent b
.endif
    use-backend be
.if 0
.warning hidden
.else
.warning shown
.endif
";
        let c = SpoeConfig::parse(text).unwrap();
        let a = c.scopes[0].agent.as_ref().unwrap();
        assert_eq!(a.name, "a");
        assert_eq!(a.use_backend.as_ref().unwrap().value, "be");
        let msgs: Vec<&str> = c.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(msgs, [".warning: shown"]);
        let c = SpoeConfig::parse(".if 1\n.if 0\nx\n.else\n.endif\n.endif\n.endif\n.if 1\n").unwrap();
        assert_eq!(c.diagnostics.len(), 2, "{:?}", c.diagnostics);
    }

    const FULL: &str = r#"
# before any scope: the unnamed scope
spoe-agent anon
    use-backend be0
    messages m0
spoe-message m0
    args src
    event on-client-session

[eng1]
spoe-agent agent1
    groups g1
    groups g2
    log global
    log 127.0.0.1:514 local0 info
    no log
    maxconnrate 100
    maxerrrate 50
    max-frame-size 1024
    max-waiting-frames 5
    messages m1 m2
    no option async
    option dontlog-normal
    no option pipelining
    no option send-frag-payload
    option continue-on-error
    option force-set-var
    option set-on-error err
    option set-process-time pt
    option set-total-time tt
    option var-prefix pfx
    register-var-names a b
    register-var-names c
    timeout hello 2s
    timeout idle 2m
    timeout processing 100
    use-backend agents

spoe-message m1
    acl is_admin path_beg /admin
    acl local src 127.0.0.1/8 ::1
    args ip=src  req.hdr(host) =dst p=path,lower
    args h="req.hdr(x-a b)"
    event on-frontend-http-request if is_admin !local || { path_end .php }

spoe-message m2
    event on-http-response unless TRUE

spoe-group g1
    messages m3
spoe-message m3
    args x=str(a=b)
"#;

    #[test]
    fn every_keyword() {
        let c = SpoeConfig::parse(FULL).unwrap();
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        assert_eq!(c.scopes.len(), 2);
        let anon = c.engine(None).unwrap();
        assert_eq!(anon.agent.as_ref().unwrap().name, "anon");
        assert_eq!(anon.messages[0].args[0], MessageArg { name: None, sample: "src".into(), line: 7 });
        let s = c.engine(Some("eng1")).unwrap();
        assert_eq!(s.line, Some(10));
        let a = s.agent.as_ref().unwrap();
        assert_eq!((a.name.as_str(), a.line), ("agent1", 11));
        let names = |v: &[Located<String>]| v.iter().map(|x| x.value.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a.groups), ["g1", "g2"]);
        assert_eq!(names(&a.messages), ["m1", "m2"]);
        assert_eq!(a.log.len(), 3);
        assert_eq!(a.log[1].args, ["127.0.0.1:514", "local0", "info"]);
        assert!(a.log[2].negated);
        assert_eq!(a.maxconnrate.as_ref().map(|v| v.value), Some(100));
        assert_eq!(a.maxerrrate.as_ref().map(|v| v.value), Some(50));
        assert_eq!(a.max_frame_size(), 1024);
        assert_eq!(a.max_waiting_frames(), 5);
        assert!(!a.async_enabled() && !a.pipelining() && !a.send_frag_payload());
        assert!(a.dontlog_normal() && a.continue_on_error() && a.force_set_var());
        assert_eq!(a.option_set_on_error.as_ref().unwrap().value, "err");
        assert_eq!(a.option_set_process_time.as_ref().unwrap().value, "pt");
        assert_eq!(a.option_set_total_time.as_ref().unwrap().value, "tt");
        assert_eq!(a.var_prefix(), "pfx");
        assert_eq!(a.var_name(VarScope::Txn, "x"), "txn.pfx.x");
        assert_eq!(names(&a.register_var_names), ["a", "b", "c"]);
        assert_eq!(a.timeout_hello.as_ref().unwrap().value, Duration::from_secs(2));
        assert_eq!(a.timeout_idle.as_ref().unwrap().value, Duration::from_secs(120));
        assert_eq!(a.timeout_processing.as_ref().unwrap().value, Duration::from_millis(100));
        assert_eq!(a.use_backend.as_ref().unwrap().value, "agents");

        let m1 = s.message("m1").unwrap();
        assert_eq!(
            m1.acls[1],
            Acl {
                name: "local".into(),
                criterion: "src".into(),
                args: vec!["127.0.0.1/8".into(), "::1".into()],
                line: 41
            }
        );
        let args: Vec<(Option<&str>, &str)> = m1.args.iter().map(|a| (a.name.as_deref(), a.sample.as_str())).collect();
        assert_eq!(
            args,
            [
                (Some("ip"), "src"),
                (None, "req.hdr(host)"),
                (Some(""), "dst"),
                (Some("p"), "path,lower"),
                (Some("h"), "req.hdr(x-a b)")
            ]
        );
        assert_eq!(m1.args[3].fetch(), "path");
        let ev = m1.event.as_ref().unwrap();
        assert_eq!(ev.kind(), Some(SpoeEvent::OnFrontendHttpRequest));
        assert_eq!(ev.condition, Some((CondKind::If, "is_admin !local || { path_end .php }".into())));
        assert_eq!(s.message("m2").unwrap().event.as_ref().unwrap().condition, Some((CondKind::Unless, "TRUE".into())));
        assert_eq!(s.message("m3").unwrap().args[0].sample, "str(a=b)", "name ends at the first '='");
        assert_eq!(s.groups[0].messages[0].value, "m3");
        let sent: Vec<&str> = s.sent_messages().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(sent, ["m1", "m2", "m3"]);
    }

    #[test]
    fn defaults_when_unset() {
        let c = SpoeConfig::parse("spoe-agent my_agent\n").unwrap();
        let a = c.scopes[0].agent.as_ref().unwrap();
        assert!(a.pipelining() && a.async_enabled() && a.send_frag_payload());
        assert!(!a.dontlog_normal() && !a.force_set_var() && !a.continue_on_error());
        assert_eq!(a.max_frame_size(), 16380);
        assert_eq!(a.max_waiting_frames(), 20);
        assert_eq!(a.var_prefix(), "my_agent", "default prefix is the agent's name");
    }

    #[test]
    fn fatal_errors() {
        for (text, line) in [
            ("[bad name]\n", 1),
            ("[ok] trailing\n", 1),
            ("\nspoe-agent\n", 2),
            ("spoe-agent a b\n", 1),
            ("spoe-message a/b\n", 1),
            ("spoe-agent a\nspoe-agent b\n", 2),
        ] {
            match SpoeConfig::parse(text) {
                Err(ConfError::Fatal { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        // a second agent in another scope is fine
        assert!(SpoeConfig::parse("[a]\nspoe-agent x\n[b]\nspoe-agent x\n# c\n[c] # comment\n").is_ok());
    }

    #[test]
    fn errors_are_diagnostics_with_lines() {
        let text = "\
unknown-top 1
spoe-agent a
    bogus 1
    timeout hello
    timeout nap 1s
    timeout idle 1x
    timeout processing 100us
    timeout hello 2sec
    option nope
    no option var-prefix x
    option var-prefix a-b
    max-frame-size 100
    max-waiting-frames 0
    maxconnrate 10k
    use-backend a b
    messages m m
    register-var-names bad-name
    no use-backend x
    log
spoe-message m
    event on-nothing
    event on-client-session if undeclared_acl
    event on-client-session foo
    args ip=
    acl or src 1.2.3.4
    what
spoe-message m
    args ignored=src
spoe-group g
    messages x x
    nope
    \"unterminated
";
        let c = SpoeConfig::parse(text).unwrap();
        let lines: Vec<(Level, usize)> = c.diagnostics.iter().map(|d| (d.level, d.line.unwrap_or(0))).collect();
        let errs: Vec<usize> = lines.iter().filter(|(l, _)| *l == Level::Error).map(|(_, n)| *n).collect();
        for want in [1, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 21, 22, 23, 24, 25, 26, 27, 30, 31, 32] {
            assert!(errs.contains(&want), "no error on line {want}: {:#?}", c.diagnostics);
        }
        let warns: Vec<usize> = lines.iter().filter(|(l, _)| *l == Level::Warning).map(|(_, n)| *n).collect();
        assert!(warns.contains(&8) && warns.contains(&14), "{:#?}", c.diagnostics);
        let s = &c.scopes[0];
        assert_eq!(s.messages.len(), 1, "duplicate message discarded");
        assert!(s.messages[0].args.is_empty());
        assert_eq!(s.messages[0].event.as_ref().unwrap().event, "on-client-session");
        assert_eq!(
            s.agent.as_ref().unwrap().use_backend.as_ref().unwrap().value,
            "x",
            "'no use-backend' is an error but HAProxy applies it"
        );
        for d in &c.diagnostics {
            assert!(!d.to_string().is_empty());
        }
    }

    #[test]
    fn requote_round_trips() {
        for w in ["plain", "a b", "q\"x", "", "$v", "a#b"] {
            let q = requote(w);
            let back = words(&q).unwrap();
            assert_eq!(back.first().map(String::as_str).unwrap_or(""), w, "{q}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,300}") {
            let _ = SpoeConfig::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_config_like_text(lines in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just("spoe-agent a".to_string()),
                proptest::strategy::Just("spoe-message m".to_string()),
                proptest::strategy::Just("spoe-group g".to_string()),
                proptest::strategy::Just("[s]".to_string()),
                proptest::strategy::Just(".if 1".to_string()),
                proptest::strategy::Just(".else".to_string()),
                proptest::strategy::Just(".endif".to_string()),
                "[a-z .=\"'\\\\$#{}()\\[\\]-]{0,40}",
            ], 0..30)) {
            let text = lines.join("\n");
            if let Ok(c) = SpoeConfig::parse(&text) {
                let _ = check(&c, None, Some(&text));
            }
        }
    }
}
