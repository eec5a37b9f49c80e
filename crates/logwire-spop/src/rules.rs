//! # Rules: a TOML file that turns NOTIFY message args into set-var actions
//!
//! Most SPOA agents do the same few things: block a path prefix, block a list of addresses, add up a
//! score. [`Rules`] does them without code: it loads a small TOML file, compiles it once (CIDRs parsed,
//! names and values turned into the exact bytes and [`TypedData`] sent back), and implements
//! [`Handler`], so the agent can use it directly. Matching allocates nothing per request beyond the
//! actions it pushes; it runs for every request on HAProxy's hot path.
//!
//! ## Format
//!
//! ```toml
//! [defaults]
//! scope = "txn"                       # default variable scope (proc, sess, txn, req, res); default "txn"
//!
//! [[rule]]
//! name = "block /block"               # optional label, used in diagnostics
//! message = "check-request"           # optional: only this message (or a list of names)
//! when = { arg = "path", prefix = "/block" }
//! set = { name = "block", value = true }
//! stop = true                         # optional: evaluate no later rule when this one fires
//!
//! [[rule]]
//! when = { arg = "ip", in_cidr = ["192.0.2.0/24", "198.51.100.7", "2001:db8::/32"] }
//! set = { scope = "txn", name = "block", value = true }
//!
//! [[rule]]                            # no `when`: fires for every NOTIFY
//! set = { name = "score", value = 42 }
//!
//! [[rule]]
//! when = { any = [ { arg = "ua", contains = "curl", nocase = true }, { arg = "ua", exists = false } ] }
//! score = { name = "risk", add = 10 } # summed over all firing rules, sent once as INT64
//!
//! [[rule]]
//! when = { not = { arg = "host", in = ["example.com", "www.example.com"] } }
//! unset = { name = "cache" }
//! ```
//!
//! - **`when`**: a table with `arg` and one or more tests, all of which must hold, or a combination
//!   `all = [..]`, `any = [..]`, `not = {..}`. Tests: `equals` (string, integer, bool, or an IP address
//!   for IP args), `prefix`, `suffix`, `contains` (strings; `nocase = true` folds ASCII case), `in`
//!   (list of strings and/or integers), `in_cidr` (list of CIDRs or single addresses, IPv4 and IPv6),
//!   `gt`, `ge`, `lt`, `le` (integer args), `exists` (true: the arg is present and not NULL; false:
//!   absent or NULL — HAProxy sends NULL when a sample is unavailable). String tests match STRING and
//!   BINARY args; `in_cidr` matches IPV4/IPV6 args and STRING args holding an address (e.g. a
//!   `req.hdr(x-forwarded-for)`); an IPv4-mapped IPv6 address also matches IPv4 entries.
//! - **Evaluation**: rules run in file order, at most once per NOTIFY each. A rule fires when some
//!   message of the NOTIFY passes its `message` filter and its `when`; `all` tests are evaluated on one
//!   message. A rule without `message` and `when` fires for every NOTIFY that carries a message.
//! - **Actions** (a table or a list of tables each): `set = { scope, name, value, type }`,
//!   `unset = { scope, name }`, `score = { scope, name, add }`. `set`/`unset` are sent in rule order;
//!   each score variable is sent once, after them, as the sum of the `add`s of the rules that fired
//!   (so do not also `set` a score variable: HAProxy applies actions in order, the sum would win).
//! - **Values**: TOML bool → BOOL, integer → INT64 (what HAProxy itself uses for integer samples; it
//!   accepts any integer type in set-var), string → STRING. `type` overrides: `"int32"`, `"uint32"`,
//!   `"int64"`, `"uint64"` (integers, range-checked), `"ipv4"`, `"ipv6"`, `"ip"` (a string address),
//!   `"binary"` (the string's bytes), `"string"`, `"bool"`.
//! - **Names**: HAProxy stores the variable as `<scope>.<var-prefix>.<name>`; a name may only contain
//!   `[a-zA-Z0-9_.]`. HAProxy ignores variables it does not know: register them with
//!   `register-var-names` (see [`crate::conf::check`], which reports the ones it would ignore).

use crate::data::TypedData;
use crate::handler::{Handler, Notify};
use crate::message::{Action, Message, Scope};
use bytes::Bytes;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Why a rules file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, or a key or value of the wrong shape.
    #[error("{}: {message}", line_label(*line))]
    Toml { line: Option<usize>, message: String },
    /// A well-formed rule that cannot work (bad CIDR, unknown scope, value out of range…).
    #[error("line {line}: rule {rule}: {message}")]
    Invalid { line: usize, rule: String, message: String },
}

fn line_label(line: Option<usize>) -> String {
    match line {
        Some(l) => format!("line {l}"),
        None => "rules file".to_string(),
    }
}

/// How a rule writes a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteKind {
    Set,
    Unset,
    Score,
}

/// A variable a rule writes: HAProxy will see `<scope>.<var-prefix>.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VarWrite {
    pub scope: Scope,
    pub name: String,
    pub kind: WriteKind,
}

/// What a rule reads and writes, for [`crate::conf::check`] and for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// The rule's `name`, or `#<n>` (1-based position in the file).
    pub label: String,
    /// Line of the rule in the TOML file.
    pub line: usize,
    /// The `message` filter (empty: every message).
    pub messages: Vec<String>,
    /// Arg names its `when` reads, without duplicates, in order of appearance.
    pub args: Vec<String>,
    /// Variables it sets, unsets or scores.
    pub writes: Vec<VarWrite>,
    /// Whether it has a `when` at all.
    pub conditional: bool,
}

/// A compiled rules file. Cheap to share (`Arc<Rules>` is a [`Handler`] too).
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<CompiledRule>,
    info: Vec<RuleInfo>,
    /// One slot per distinct score variable, in order of first appearance.
    score_slots: Vec<(Scope, Bytes)>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    /// Message names the rule applies to; empty = all.
    messages: Box<[Box<[u8]>]>,
    when: Option<Cond>,
    actions: Box<[Action]>,
    scores: Box<[(usize, i64)]>,
    stop: bool,
}

#[derive(Debug, Clone)]
enum Cond {
    All(Box<[Cond]>),
    Any(Box<[Cond]>),
    Not(Box<Cond>),
    Arg { name: Box<[u8]>, tests: Box<[Test]> },
}

#[derive(Debug, Clone)]
enum Test {
    Exists(bool),
    Equals(Literal),
    Prefix(Pattern),
    Suffix(Pattern),
    Contains(Pattern),
    In(StrSet),
    InCidr(CidrSet),
    Cmp(CmpOp, i128),
}

#[derive(Debug, Clone, Copy)]
enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
}

/// A literal of `equals`; a string that reads as an address also compares with IP args.
#[derive(Debug, Clone)]
enum Literal {
    Str { bytes: Box<[u8]>, nocase: bool, ip: Option<IpAddr> },
    Int(i128),
    Bool(bool),
}

/// A string pattern; with `nocase` the pattern is stored lowercase.
#[derive(Debug, Clone)]
struct Pattern {
    bytes: Box<[u8]>,
    nocase: bool,
}

#[derive(Debug, Clone)]
struct StrSet {
    /// Case-sensitive and short: linear; long: hash set. With nocase: always linear, lowercase.
    small: Box<[Box<[u8]>]>,
    big: Option<HashSet<Box<[u8]>>>,
    ints: Box<[i128]>,
    nocase: bool,
}

/// Networks grouped by prefix length; each group a sorted list of masked networks.
#[derive(Debug, Clone, Default)]
struct CidrSet {
    v4: Vec<(u32, Vec<u32>)>,
    v6: Vec<(u128, Vec<u128>)>,
}

// ---------------------------------------------------------------------------------------------------
// Matching (the hot path)
// ---------------------------------------------------------------------------------------------------

impl Rules {
    /// Evaluates every rule against the messages of one NOTIFY and appends the resulting actions.
    pub fn apply(&self, messages: &[Message], actions: &mut Vec<Action>) {
        let mut scores = ScoreAcc::new(self.score_slots.len());
        for rule in &self.rules {
            if !messages.iter().any(|m| rule.matches(m)) {
                continue;
            }
            actions.extend(rule.actions.iter().cloned());
            for &(slot, add) in rule.scores.iter() {
                scores.add(slot, add);
            }
            if rule.stop {
                break;
            }
        }
        scores.emit(&self.score_slots, actions);
    }

    /// What each rule reads and writes, in file order.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.info
    }

    /// Every variable some rule writes, without duplicates, in order of appearance.
    pub fn variables(&self) -> Vec<(Scope, &str)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for w in self.info.iter().flat_map(|r| &r.writes) {
            if seen.insert((w.scope, w.name.as_str())) {
                out.push((w.scope, w.name.as_str()));
            }
        }
        out
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when the file has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Handler for Rules {
    fn on_notify(&self, notify: &Notify, actions: &mut Vec<Action>) {
        self.apply(&notify.messages, actions)
    }
}

impl CompiledRule {
    #[inline]
    fn matches(&self, m: &Message) -> bool {
        if !self.messages.is_empty() && !self.messages.iter().any(|n| **n == *m.name) {
            return false;
        }
        match &self.when {
            Some(c) => c.eval(m),
            None => true,
        }
    }
}

impl Cond {
    fn eval(&self, m: &Message) -> bool {
        match self {
            Cond::All(cs) => cs.iter().all(|c| c.eval(m)),
            Cond::Any(cs) => cs.iter().any(|c| c.eval(m)),
            Cond::Not(c) => !c.eval(m),
            Cond::Arg { name, tests } => {
                let value = m.args.iter().find(|a| *a.name == **name).map(|a| &a.value);
                tests.iter().all(|t| t.eval(value))
            }
        }
    }
}

impl Test {
    fn eval(&self, value: Option<&TypedData>) -> bool {
        let value = match (self, value) {
            (Test::Exists(want), v) => return *want == matches!(v, Some(d) if *d != TypedData::Null),
            (_, None) | (_, Some(TypedData::Null)) => return false,
            (_, Some(v)) => v,
        };
        match self {
            Test::Exists(_) => false, // handled above
            Test::Equals(lit) => lit.equals(value),
            Test::Prefix(p) => value.as_bytes().is_some_and(|b| p.is_prefix_of(b)),
            Test::Suffix(p) => value.as_bytes().is_some_and(|b| p.is_suffix_of(b)),
            Test::Contains(p) => value.as_bytes().is_some_and(|b| p.is_in(b)),
            Test::In(set) => set.contains(value),
            Test::InCidr(set) => arg_ip(value).is_some_and(|ip| set.contains(ip)),
            Test::Cmp(op, n) => value.as_int().is_some_and(|v| match op {
                CmpOp::Gt => v > *n,
                CmpOp::Ge => v >= *n,
                CmpOp::Lt => v < *n,
                CmpOp::Le => v <= *n,
            }),
        }
    }
}

/// The address an arg carries: IPV4/IPV6, or a STRING that parses as one.
#[inline]
fn arg_ip(v: &TypedData) -> Option<IpAddr> {
    match v {
        TypedData::Ipv4(ip) => Some(IpAddr::V4(*ip)),
        TypedData::Ipv6(ip) => Some(IpAddr::V6(*ip)),
        TypedData::String(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

impl Literal {
    fn equals(&self, v: &TypedData) -> bool {
        match self {
            Literal::Str { bytes, nocase, ip } => match v {
                TypedData::String(b) | TypedData::Binary(b) => eq_bytes(b, bytes, *nocase),
                TypedData::Ipv4(_) | TypedData::Ipv6(_) => {
                    ip.is_some_and(|ip| arg_ip(v).is_some_and(|a| same_ip(a, ip)))
                }
                _ => false,
            },
            Literal::Int(n) => v.as_int() == Some(*n),
            Literal::Bool(b) => *v == TypedData::Bool(*b),
        }
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

/// IPv4-mapped IPv6 addresses as IPv4.
#[inline]
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[inline]
fn eq_bytes(a: &[u8], pattern: &[u8], nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(pattern)
    } else {
        a == pattern
    }
}

impl Pattern {
    #[inline]
    fn is_prefix_of(&self, b: &[u8]) -> bool {
        b.len() >= self.bytes.len() && eq_bytes(&b[..self.bytes.len()], &self.bytes, self.nocase)
    }

    #[inline]
    fn is_suffix_of(&self, b: &[u8]) -> bool {
        b.len() >= self.bytes.len() && eq_bytes(&b[b.len() - self.bytes.len()..], &self.bytes, self.nocase)
    }

    fn is_in(&self, b: &[u8]) -> bool {
        let p = &self.bytes;
        if p.is_empty() {
            return true;
        }
        if b.len() < p.len() {
            return false;
        }
        let first = p[0];
        (0..=b.len() - p.len()).any(|i| {
            let c = b[i];
            let hit = if self.nocase { c.to_ascii_lowercase() == first } else { c == first };
            hit && eq_bytes(&b[i..i + p.len()], p, self.nocase)
        })
    }
}

impl StrSet {
    fn contains(&self, v: &TypedData) -> bool {
        if let Some(n) = v.as_int() {
            return self.ints.contains(&n);
        }
        let Some(b) = v.as_bytes() else { return false };
        if let Some(big) = &self.big {
            return big.contains(b);
        }
        self.small.iter().any(|s| eq_bytes(b, s, self.nocase))
    }
}

impl CidrSet {
    fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(v4) => {
                let a = u32::from(v4);
                self.v4.iter().any(|(mask, nets)| nets.binary_search(&(a & mask)).is_ok())
            }
            IpAddr::V6(v6) => {
                let a = u128::from(v6);
                self.v6.iter().any(|(mask, nets)| nets.binary_search(&(a & mask)).is_ok())
            }
        }
    }
}

/// Score sums of one NOTIFY; on the stack for up to 16 score variables.
#[allow(clippy::large_enum_variant)] // the big variant is the point: no allocation per request
enum ScoreAcc {
    Inline([Option<i64>; 16]),
    Heap(Vec<Option<i64>>),
}

impl ScoreAcc {
    fn new(n: usize) -> Self {
        if n <= 16 {
            ScoreAcc::Inline([None; 16])
        } else {
            ScoreAcc::Heap(vec![None; n])
        }
    }

    fn slots(&mut self) -> &mut [Option<i64>] {
        match self {
            ScoreAcc::Inline(a) => a,
            ScoreAcc::Heap(v) => v,
        }
    }

    fn add(&mut self, slot: usize, n: i64) {
        if let Some(s) = self.slots().get_mut(slot) {
            *s = Some(s.unwrap_or(0).saturating_add(n));
        }
    }

    fn emit(mut self, names: &[(Scope, Bytes)], out: &mut Vec<Action>) {
        for (sum, (scope, name)) in self.slots().iter().zip(names) {
            if let Some(total) = sum {
                out.push(Action::SetVar { scope: *scope, name: name.clone(), value: TypedData::Int64(*total) });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    defaults: Option<DefaultsSpec>,
    #[serde(default)]
    rule: Vec<Spanned<RuleSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsSpec {
    scope: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: Option<String>,
    message: Option<Spanned<Names>>,
    when: Option<Spanned<CondSpec>>,
    set: Option<Spanned<OneOrMany<SetSpec>>>,
    unset: Option<Spanned<OneOrMany<VarSpec>>>,
    score: Option<Spanned<OneOrMany<ScoreSpec>>>,
    #[serde(default)]
    stop: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CondSpec {
    arg: Option<Spanned<String>>,
    equals: Option<Spanned<toml::Value>>,
    prefix: Option<String>,
    suffix: Option<String>,
    contains: Option<String>,
    #[serde(rename = "in")]
    in_: Option<Spanned<Vec<toml::Value>>>,
    in_cidr: Option<Vec<Spanned<String>>>,
    gt: Option<i64>,
    ge: Option<i64>,
    lt: Option<i64>,
    le: Option<i64>,
    exists: Option<bool>,
    #[serde(default)]
    nocase: bool,
    all: Option<Vec<Spanned<CondSpec>>>,
    any: Option<Vec<Spanned<CondSpec>>>,
    not: Option<Box<Spanned<CondSpec>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetSpec {
    scope: Option<Spanned<String>>,
    name: Spanned<String>,
    value: Spanned<toml::Value>,
    #[serde(rename = "type")]
    ty: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VarSpec {
    scope: Option<Spanned<String>>,
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreSpec {
    scope: Option<Spanned<String>>,
    name: Spanned<String>,
    add: i64,
}

/// A table or an array of tables.
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table or an array of tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A string or an array of strings.
struct Names(Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message name or an array of message names")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Names, E> {
                Ok(Names(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Names, A::Error> {
                Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Names)
            }
        }
        d.deserialize_any(V)
    }
}

/// Maps byte offsets of the source to 1-based line numbers.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.0.len());
        self.0.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }
    fn of<T>(&self, s: &Spanned<T>) -> usize {
        self.line(s.span().start)
    }
}

/// Context for errors of one rule.
struct RuleCtx<'a> {
    lines: Lines<'a>,
    label: String,
}

impl RuleCtx<'_> {
    fn err(&self, line: usize, message: impl Into<String>) -> RulesError {
        RulesError::Invalid { line, rule: self.label.clone(), message: message.into() }
    }
}

impl Rules {
    /// Parses and compiles a rules file.
    pub fn from_toml(text: &str) -> Result<Rules, RulesError> {
        let spec: FileSpec = toml::from_str(text).map_err(|e| RulesError::Toml {
            line: e.span().map(|s| Lines(text).line(s.start)),
            message: e.message().trim().to_string(),
        })?;
        let lines = Lines(text);
        let default_scope = match &spec.defaults {
            Some(DefaultsSpec { scope: Some(s) }) => s.get_ref().parse::<Scope>().map_err(|m| RulesError::Invalid {
                line: lines.of(s),
                rule: "[defaults]".into(),
                message: m,
            })?,
            _ => Scope::Txn,
        };
        let mut rules = Rules { rules: Vec::new(), info: Vec::new(), score_slots: Vec::new() };
        for (i, r) in spec.rule.into_iter().enumerate() {
            let line = lines.of(&r);
            let r = r.into_inner();
            let label = r.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
            let ctx = RuleCtx { lines: Lines(text), label };
            rules.compile(&ctx, line, r, default_scope)?;
        }
        Ok(rules)
    }

    /// Reads and compiles a rules file.
    pub fn load(path: impl AsRef<Path>) -> Result<Rules, RulesError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| RulesError::Io { path: path.to_path_buf(), source })?;
        Rules::from_toml(&text)
    }

    fn compile(&mut self, ctx: &RuleCtx, line: usize, r: RuleSpec, default_scope: Scope) -> Result<(), RulesError> {
        let mut info = RuleInfo {
            label: ctx.label.clone(),
            line,
            messages: Vec::new(),
            args: Vec::new(),
            writes: Vec::new(),
            conditional: r.when.is_some(),
        };
        if let Some(m) = &r.message {
            if m.get_ref().0.is_empty() {
                return Err(ctx.err(ctx.lines.of(m), "`message` is an empty list: the rule would never fire"));
            }
            info.messages = m.get_ref().0.clone();
        }
        let when = match r.when {
            Some(w) => Some(compile_cond(ctx, w, &mut info.args)?),
            None => None,
        };
        let mut actions = Vec::new();
        for s in r.set.map(|s| s.into_inner().into_vec()).unwrap_or_default() {
            let scope = scope_of(ctx, s.scope.as_ref(), default_scope)?;
            let name = var_name(ctx, &s.name)?;
            let value = typed_value(ctx, &s.value, s.ty.as_ref())?;
            info.writes.push(VarWrite { scope, name: name.clone(), kind: WriteKind::Set });
            actions.push(Action::SetVar { scope, name: shared(name.into_bytes()), value });
        }
        for u in r.unset.map(|s| s.into_inner().into_vec()).unwrap_or_default() {
            let scope = scope_of(ctx, u.scope.as_ref(), default_scope)?;
            let name = var_name(ctx, &u.name)?;
            info.writes.push(VarWrite { scope, name: name.clone(), kind: WriteKind::Unset });
            actions.push(Action::UnsetVar { scope, name: shared(name.into_bytes()) });
        }
        let mut scores = Vec::new();
        for s in r.score.map(|s| s.into_inner().into_vec()).unwrap_or_default() {
            let scope = scope_of(ctx, s.scope.as_ref(), default_scope)?;
            let name = var_name(ctx, &s.name)?;
            info.writes.push(VarWrite { scope, name: name.clone(), kind: WriteKind::Score });
            let slot = match self.score_slots.iter().position(|(sc, n)| *sc == scope && **n == *name.as_bytes()) {
                Some(p) => p,
                None => {
                    self.score_slots.push((scope, shared(name.into_bytes())));
                    self.score_slots.len() - 1
                }
            };
            scores.push((slot, s.add));
        }
        if actions.is_empty() && scores.is_empty() {
            return Err(ctx.err(line, "no action: give `set`, `unset` or `score`"));
        }
        self.rules.push(CompiledRule {
            messages: info.messages.iter().map(|m| m.as_bytes().into()).collect(),
            when,
            actions: actions.into(),
            scores: scores.into(),
            stop: r.stop,
        });
        self.info.push(info);
        Ok(())
    }
}

/// `Bytes` whose clones never allocate: a `Bytes` made from a `Vec` allocates its shared header on its
/// first clone, so that clone happens here, at load time, not on the request path.
fn shared(v: Vec<u8>) -> Bytes {
    let b = Bytes::from(v);
    drop(b.clone());
    b
}

fn scope_of(ctx: &RuleCtx, s: Option<&Spanned<String>>, default: Scope) -> Result<Scope, RulesError> {
    match s {
        None => Ok(default),
        Some(s) => s.get_ref().parse().map_err(|m: String| ctx.err(ctx.lines.of(s), m)),
    }
}

fn var_name(ctx: &RuleCtx, n: &Spanned<String>) -> Result<String, RulesError> {
    let name = n.get_ref();
    if name.is_empty() {
        return Err(ctx.err(ctx.lines.of(n), "empty variable name"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.')) {
        return Err(ctx.err(
            ctx.lines.of(n),
            format!("variable name {name:?} has {c:?}; HAProxy only accepts [a-zA-Z0-9_.] and would ignore it"),
        ));
    }
    Ok(name.clone())
}

fn typed_value(ctx: &RuleCtx, v: &Spanned<toml::Value>, ty: Option<&Spanned<String>>) -> Result<TypedData, RulesError> {
    use toml::Value as V;
    let line = ctx.lines.of(v);
    let bad = |what: &str| ctx.err(line, what.to_string());
    let Some(ty) = ty else {
        return match v.get_ref() {
            V::Boolean(b) => Ok(TypedData::Bool(*b)),
            V::Integer(i) => Ok(TypedData::Int64(*i)),
            V::String(s) => Ok(TypedData::String(shared(s.clone().into_bytes()))),
            other => Err(bad(&format!("value must be a bool, an integer or a string, not a {}", other.type_str()))),
        };
    };
    let ty_line = ctx.lines.of(ty);
    let int_of = |v: &V| match v {
        V::Integer(i) => Ok(*i),
        _ => Err(ctx.err(line, format!("type {:?} needs an integer value", ty.get_ref()))),
    };
    let str_of = |v: &V| match v {
        V::String(s) => Ok(s.clone()),
        _ => Err(ctx.err(line, format!("type {:?} needs a string value", ty.get_ref()))),
    };
    let range = |what: &str| ctx.err(line, format!("value out of range for {what}"));
    let val = v.get_ref();
    Ok(match ty.get_ref().as_str() {
        "bool" => match val {
            V::Boolean(b) => TypedData::Bool(*b),
            _ => return Err(bad("type \"bool\" needs a bool value")),
        },
        "int32" => TypedData::Int32(i32::try_from(int_of(val)?).map_err(|_| range("int32"))?),
        "uint32" => TypedData::Uint32(u32::try_from(int_of(val)?).map_err(|_| range("uint32"))?),
        "int64" => TypedData::Int64(int_of(val)?),
        "uint64" => TypedData::Uint64(u64::try_from(int_of(val)?).map_err(|_| range("uint64"))?),
        "string" => TypedData::String(shared(str_of(val)?.into_bytes())),
        "binary" => TypedData::Binary(shared(str_of(val)?.into_bytes())),
        "ipv4" => TypedData::Ipv4(
            str_of(val)?.parse::<Ipv4Addr>().map_err(|_| bad("type \"ipv4\" needs an IPv4 address string"))?,
        ),
        "ipv6" => TypedData::Ipv6(
            str_of(val)?.parse::<Ipv6Addr>().map_err(|_| bad("type \"ipv6\" needs an IPv6 address string"))?,
        ),
        "ip" => match str_of(val)?.parse::<IpAddr>().map_err(|_| bad("type \"ip\" needs an address string"))? {
            IpAddr::V4(a) => TypedData::Ipv4(a),
            IpAddr::V6(a) => TypedData::Ipv6(a),
        },
        other => {
            return Err(ctx.err(
                ty_line,
                format!(
                    "unknown type {other:?} (expected bool, int32, uint32, int64, uint64, string, binary, ipv4, ipv6 or ip)"
                ),
            ))
        }
    })
}

fn compile_cond(ctx: &RuleCtx, spec: Spanned<CondSpec>, args: &mut Vec<String>) -> Result<Cond, RulesError> {
    let line = ctx.lines.of(&spec);
    let c = spec.into_inner();
    let has_tests = c.equals.is_some()
        || c.prefix.is_some()
        || c.suffix.is_some()
        || c.contains.is_some()
        || c.in_.is_some()
        || c.in_cidr.is_some()
        || c.gt.is_some()
        || c.ge.is_some()
        || c.lt.is_some()
        || c.le.is_some()
        || c.exists.is_some();
    let combos = [c.all.is_some(), c.any.is_some(), c.not.is_some()].iter().filter(|b| **b).count();
    if combos > 0 {
        if has_tests || c.arg.is_some() {
            return Err(ctx.err(line, "a condition is either `arg` with tests or one of `all`/`any`/`not`, not both"));
        }
        if combos > 1 {
            return Err(ctx.err(line, "give only one of `all`, `any`, `not` per table (nest them instead)"));
        }
        let list = |v: Vec<Spanned<CondSpec>>, args: &mut Vec<String>| -> Result<Box<[Cond]>, RulesError> {
            if v.is_empty() {
                return Err(ctx.err(line, "empty `all`/`any` list"));
            }
            v.into_iter().map(|s| compile_cond(ctx, s, args)).collect()
        };
        return Ok(match (c.all, c.any, c.not) {
            (Some(v), _, _) => Cond::All(list(v, args)?),
            (_, Some(v), _) => Cond::Any(list(v, args)?),
            (_, _, Some(n)) => Cond::Not(Box::new(compile_cond(ctx, *n, args)?)),
            _ => return Err(ctx.err(line, "internal: no combination")),
        });
    }
    let Some(arg) = c.arg else {
        return Err(ctx.err(line, "a condition needs `arg` (the message argument to test) or `all`/`any`/`not`"));
    };
    if !has_tests {
        return Err(
            ctx.err(line, "no test: give equals, prefix, suffix, contains, in, in_cidr, gt, ge, lt, le or exists")
        );
    }
    let arg_name = arg.into_inner();
    if !args.contains(&arg_name) {
        args.push(arg_name.clone());
    }
    let nocase = c.nocase;
    let pat = |s: String| Pattern { bytes: fold(s, nocase).into_bytes().into(), nocase };
    let mut tests = Vec::new();
    if let Some(e) = c.exists {
        tests.push(Test::Exists(e));
    }
    if let Some(v) = c.equals {
        let l = ctx.lines.of(&v);
        tests.push(Test::Equals(match v.into_inner() {
            toml::Value::String(s) => {
                Literal::Str { ip: s.parse().ok(), bytes: fold(s, nocase).into_bytes().into(), nocase }
            }
            toml::Value::Integer(i) => Literal::Int(i as i128),
            toml::Value::Boolean(b) => Literal::Bool(b),
            other => {
                return Err(
                    ctx.err(l, format!("`equals` takes a string, an integer or a bool, not a {}", other.type_str()))
                )
            }
        }));
    }
    if let Some(p) = c.prefix {
        tests.push(Test::Prefix(pat(p)));
    }
    if let Some(p) = c.suffix {
        tests.push(Test::Suffix(pat(p)));
    }
    if let Some(p) = c.contains {
        tests.push(Test::Contains(pat(p)));
    }
    if let Some(list) = c.in_ {
        let l = ctx.lines.of(&list);
        let mut strs: Vec<Box<[u8]>> = Vec::new();
        let mut ints = Vec::new();
        for v in list.into_inner() {
            match v {
                toml::Value::String(s) => strs.push(fold(s, nocase).into_bytes().into()),
                toml::Value::Integer(i) => ints.push(i as i128),
                other => return Err(ctx.err(l, format!("`in` takes strings and integers, not a {}", other.type_str()))),
            }
        }
        let big = (!nocase && strs.len() > 8).then(|| strs.drain(..).collect::<HashSet<_>>());
        tests.push(Test::In(StrSet { small: strs.into(), big, ints: ints.into(), nocase }));
    }
    if let Some(list) = c.in_cidr {
        let mut set = CidrSetBuilder::default();
        for s in &list {
            set.add(s.get_ref()).map_err(|m| ctx.err(ctx.lines.of(s), m))?;
        }
        tests.push(Test::InCidr(set.build()));
    }
    for (op, v) in [(CmpOp::Gt, c.gt), (CmpOp::Ge, c.ge), (CmpOp::Lt, c.lt), (CmpOp::Le, c.le)] {
        if let Some(n) = v {
            tests.push(Test::Cmp(op, n as i128));
        }
    }
    Ok(Cond::Arg { name: arg_name.into_bytes().into(), tests: tests.into() })
}

fn fold(s: String, nocase: bool) -> String {
    if nocase {
        s.to_ascii_lowercase()
    } else {
        s
    }
}

#[derive(Default)]
struct CidrSetBuilder {
    v4: Vec<(u8, u32)>,
    v6: Vec<(u8, u128)>,
}

impl CidrSetBuilder {
    /// Adds `a.b.c.d`, `a.b.c.d/len`, `x::y` or `x::y/len`. Host bits are cleared, as HAProxy does.
    fn add(&mut self, s: &str) -> Result<(), String> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: prefix length must be 0..={max}")),
            },
        };
        match canonical(ip) {
            IpAddr::V4(a) => {
                // an IPv4-mapped IPv6 network keeps its meaning as IPv4
                let len = if ip.is_ipv6() { len.saturating_sub(96) } else { len };
                self.v4.push((len, u32::from(a) & mask32(len)));
            }
            IpAddr::V6(a) => self.v6.push((len, u128::from(a) & mask128(len))),
        }
        Ok(())
    }

    fn build(self) -> CidrSet {
        fn group<T: Ord + Copy>(mut v: Vec<(u8, T)>, mask: impl Fn(u8) -> T) -> Vec<(T, Vec<T>)> {
            v.sort_unstable();
            v.dedup();
            let mut out: Vec<(u8, Vec<T>)> = Vec::new();
            for (len, net) in v {
                match out.last_mut() {
                    Some((l, nets)) if *l == len => nets.push(net),
                    _ => out.push((len, vec![net])),
                }
            }
            // longest prefixes (most specific, usually most numerous: single hosts) first
            out.into_iter().rev().map(|(l, nets)| (mask(l), nets)).collect()
        }
        CidrSet { v4: group(self.v4, mask32), v6: group(self.v6, mask128) }
    }
}

fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Arg;

    fn msg(name: &str, args: Vec<(&str, TypedData)>) -> Message {
        Message::new(
            Bytes::copy_from_slice(name.as_bytes()),
            args.into_iter().map(|(n, v)| Arg::new(Bytes::copy_from_slice(n.as_bytes()), v)).collect(),
        )
    }

    fn run(rules: &Rules, messages: &[Message]) -> Vec<Action> {
        let mut out = Vec::new();
        rules.apply(messages, &mut out);
        out
    }

    fn s(v: &str) -> TypedData {
        TypedData::string(v)
    }

    #[test]
    fn prefix_block_and_unconditional_score() {
        let r = Rules::from_toml(
            r#"
            [[rule]]
            when = { arg = "path", prefix = "/admin" }
            set = { scope = "txn", name = "block", value = true }
            [[rule]]
            set = { name = "score", value = 42 }
            "#,
        )
        .unwrap();
        let out = run(&r, &[msg("m", vec![("path", s("/admin/x"))])]);
        assert_eq!(
            out,
            vec![
                Action::set_var(Scope::Txn, "block", TypedData::Bool(true)),
                Action::set_var(Scope::Txn, "score", TypedData::Int64(42)),
            ]
        );
        let out = run(&r, &[msg("m", vec![("path", s("/adm"))])]);
        assert_eq!(out, vec![Action::set_var(Scope::Txn, "score", TypedData::Int64(42))]);
        assert!(run(&r, &[]).is_empty(), "no message, nothing fires");
    }

    #[test]
    fn cidr_v4_v6_exact_and_mapped() {
        let r = Rules::from_toml(
            r#"
            [[rule]]
            when = { arg = "ip", in_cidr = ["10.0.0.0/8", "192.0.2.7", "::1/128", "2001:db8::/32", "10.1.2.3/8"] }
            set = { name = "block", value = true }
            "#,
        )
        .unwrap();
        let hit = |d: TypedData| !run(&r, &[msg("m", vec![("ip", d)])]).is_empty();
        assert!(hit(TypedData::Ipv4("10.200.1.1".parse().unwrap())));
        assert!(hit(TypedData::Ipv4("192.0.2.7".parse().unwrap())));
        assert!(!hit(TypedData::Ipv4("192.0.2.8".parse().unwrap())));
        assert!(hit(TypedData::Ipv6("::1".parse().unwrap())));
        assert!(hit(TypedData::Ipv6("2001:db8:1::5".parse().unwrap())));
        assert!(!hit(TypedData::Ipv6("2001:db9::".parse().unwrap())));
        assert!(hit(TypedData::Ipv6("::ffff:10.9.9.9".parse().unwrap())), "v4-mapped");
        assert!(hit(s(" 192.0.2.7 ")), "address in a STRING arg");
        assert!(!hit(s("not an ip")));
        assert!(!hit(TypedData::Null));
    }

    #[test]
    fn scores_add_up_once() {
        let r = Rules::from_toml(
            r#"
            [[rule]]
            when = { arg = "ua", contains = "CURL", nocase = true }
            score = { name = "risk", add = 10 }
            [[rule]]
            when = { arg = "n", gt = 3 }
            score = [{ name = "risk", add = 5 }, { scope = "sess", name = "seen", add = 1 }]
            [[rule]]
            when = { arg = "n", lt = 0 }
            score = { name = "risk", add = 1000 }
            "#,
        )
        .unwrap();
        let out = run(&r, &[msg("m", vec![("ua", s("x-curl/8")), ("n", TypedData::Int64(4))])]);
        assert_eq!(
            out,
            vec![
                Action::set_var(Scope::Txn, "risk", TypedData::Int64(15)),
                Action::set_var(Scope::Sess, "seen", TypedData::Int64(1)),
            ]
        );
        assert!(run(&r, &[msg("m", vec![("n", TypedData::Int64(2))])]).is_empty());
    }

    #[test]
    fn combinations_filters_exists_in_and_stop() {
        let r = Rules::from_toml(
            r#"
            [defaults]
            scope = "req"
            [[rule]]
            message = ["a", "b"]
            when = { all = [ { arg = "m", in = ["GET", "HEAD"] }, { not = { arg = "h", exists = true } } ] }
            set = { name = "nohost", value = "yes" }
            stop = true
            [[rule]]
            when = { any = [ { arg = "code", in = [200, 204] }, { arg = "f", equals = false } ] }
            unset = { name = "x" }
            "#,
        )
        .unwrap();
        let out = run(&r, &[msg("a", vec![("m", s("GET"))])]);
        assert_eq!(out, vec![Action::set_var(Scope::Req, "nohost", s("yes"))], "stop skips rule 2");
        let out = run(&r, &[msg("c", vec![("m", s("GET")), ("h", TypedData::Null), ("code", TypedData::Int64(204))])]);
        assert_eq!(out, vec![Action::unset_var(Scope::Req, "x")], "message filter, NULL = absent");
        let out = run(&r, &[msg("c", vec![("f", TypedData::Bool(false))])]);
        assert_eq!(out, vec![Action::unset_var(Scope::Req, "x")]);
        assert!(run(&r, &[msg("c", vec![("f", TypedData::Bool(true))])]).is_empty());
    }

    #[test]
    fn equals_and_suffix_and_big_in() {
        let list: Vec<String> = (0..50).map(|i| format!("\"h{i}.example\"")).collect();
        let text = format!(
            r#"
            [[rule]]
            when = {{ arg = "host", in = [{}] }}
            set = {{ name = "known", value = 1, type = "uint32" }}
            [[rule]]
            when = {{ arg = "ip", equals = "::ffff:127.0.0.1" }}
            set = {{ name = "local", value = "127.0.0.1", type = "ipv4" }}
            [[rule]]
            when = {{ arg = "path", suffix = ".PHP", nocase = true }}
            set = {{ name = "php", value = "x", type = "binary" }}
            "#,
            list.join(", ")
        );
        let r = Rules::from_toml(&text).unwrap();
        assert_eq!(
            run(&r, &[msg("m", vec![("host", s("h42.example"))])]),
            vec![Action::set_var(Scope::Txn, "known", TypedData::Uint32(1))]
        );
        assert!(run(&r, &[msg("m", vec![("host", s("h50.example"))])]).is_empty());
        assert_eq!(
            run(&r, &[msg("m", vec![("ip", TypedData::Ipv4(Ipv4Addr::LOCALHOST))])]),
            vec![Action::set_var(Scope::Txn, "local", TypedData::Ipv4(Ipv4Addr::LOCALHOST))]
        );
        assert_eq!(
            run(&r, &[msg("m", vec![("path", TypedData::Binary(Bytes::from_static(b"/a/index.php")))])]),
            vec![Action::set_var(Scope::Txn, "php", TypedData::Binary(Bytes::from_static(b"x")))]
        );
    }

    #[test]
    fn info_for_check() {
        let r = Rules::from_toml(
            r#"
            [[rule]]
            name = "blk"
            message = "check-request"
            when = { any = [ { arg = "path", prefix = "/a" }, { arg = "ip", in_cidr = ["::1"] }, { arg = "path", suffix = "x" } ] }
            set = { name = "block", value = true }
            unset = { scope = "sess", name = "u" }
            "#,
        )
        .unwrap();
        let info = &r.rules()[0];
        assert_eq!(info.label, "blk");
        assert_eq!(info.line, 2);
        assert_eq!(info.messages, ["check-request"]);
        assert_eq!(info.args, ["path", "ip"]);
        assert_eq!(r.variables(), vec![(Scope::Txn, "block"), (Scope::Sess, "u")]);
    }

    #[test]
    fn errors_carry_lines() {
        let e = Rules::from_toml("[[rule]]\nset = { name = \"a\", value = 1 }\nbogus = 3\n").unwrap_err();
        assert!(matches!(e, RulesError::Toml { line: Some(_), .. }), "{e}");
        let e = Rules::from_toml(
            "[[rule]]\nwhen = { arg = \"ip\", in_cidr = [\n \"10.0.0.0/33\"] }\nset = { name = \"a\", value = 1 }\n",
        )
        .unwrap_err();
        match e {
            RulesError::Invalid { line, rule, .. } => assert_eq!((line, rule.as_str()), (3, "#1")),
            other => panic!("{other}"),
        }
        for bad in [
            "[[rule]]\nwhen = { arg = \"x\" }\nset = { name = \"a\", value = 1 }",
            "[[rule]]\nwhen = { arg = \"x\", exists = true }",
            "[[rule]]\nset = { name = \"a-b\", value = 1 }",
            "[[rule]]\nset = { name = \"a\", value = 1.5 }",
            "[[rule]]\nset = { name = \"a\", value = -1, type = \"uint32\" }",
            "[[rule]]\nset = { name = \"a\", value = \"x\", type = \"ipv4\" }",
            "[[rule]]\nset = { scope = \"global\", name = \"a\", value = 1 }",
            "[[rule]]\nmessage = []\nset = { name = \"a\", value = 1 }",
            "[[rule]]\nwhen = { all = [], }\nset = { name = \"a\", value = 1 }",
            "[[rule]]\nwhen = { arg = \"x\", exists = true, any = [] }\nset = { name = \"a\", value = 1 }",
        ] {
            assert!(Rules::from_toml(bad).is_err(), "{bad}");
        }
        let e = Rules::load("/nonexistent/rules.toml").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/rules.toml"));
    }

    #[test]
    fn masks() {
        assert_eq!(mask32(0), 0);
        assert_eq!(mask32(8), 0xff00_0000);
        assert_eq!(mask32(32), u32::MAX);
        assert_eq!(mask128(128), u128::MAX);
        assert_eq!(mask128(1), 1u128 << 127);
    }

    proptest::proptest! {
        #[test]
        fn from_toml_never_panics(text in "\\PC{0,200}") {
            let _ = Rules::from_toml(&text);
        }
    }
}
