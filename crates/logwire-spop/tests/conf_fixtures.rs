//! The SPOE configuration parser, `check` and the rules handler against the real-peer fixtures in
//! `../shared/fixtures/spop/` (configurations verified with HAProxy 2.6.12) and deliberately broken
//! variants of them.

use bytes::Bytes;
use logwire_spop::conf::{check, CondKind, ConfError, Diagnostic, Level, Origin, SpoeConfig, SpoeEvent};
use logwire_spop::handler::{Handler, Notify};
use logwire_spop::rules::Rules;
use logwire_spop::template::{build_messages, messages_for_event, RequestTemplate};
use logwire_spop::{Action, Arg, Message, Scope, TypedData};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/spop").join(rel)
}

fn fixture(rel: &str) -> String {
    let p = fixture_path(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
}

fn rules_fixture() -> Rules {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rules.toml");
    Rules::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `text` with `from` replaced by `to`; `from` must be there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "fixture no longer contains {from:?}");
    text.replacen(from, to, 1)
}

fn run(spoe: &str, cfg: Option<&str>, rules: Option<&Rules>) -> Vec<Diagnostic> {
    let conf = SpoeConfig::parse(spoe).unwrap_or_else(|e| panic!("{e}\n{spoe}"));
    check(&conf, rules, cfg)
}

fn dump(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("  {d}\n")).collect()
}

/// Asserts a diagnostic of `level` whose message contains every one of `parts`.
#[track_caller]
fn expect(diags: &[Diagnostic], level: Level, parts: &[&str]) -> Diagnostic {
    match diags.iter().find(|d| d.level == level && parts.iter().all(|p| d.message.contains(p))) {
        Some(d) => d.clone(),
        None => panic!("no {level} containing {parts:?} in:\n{}", dump(diags)),
    }
}

#[track_caller]
fn no_errors(diags: &[Diagnostic]) {
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.level == Level::Error).collect();
    assert!(errors.is_empty(), "unexpected errors:\n{}", dump(diags));
}

fn names(v: &[logwire_spop::conf::Located<String>]) -> Vec<&str> {
    v.iter().map(|x| x.value.as_str()).collect()
}

#[test]
fn spoe_conf_fixture_every_field() {
    let conf = SpoeConfig::parse(&fixture("spoe.conf")).unwrap();
    assert!(conf.diagnostics.is_empty(), "{}", dump(&conf.diagnostics));
    assert_eq!(conf.scopes.len(), 1);
    assert!(conf.engine(None).is_none(), "nothing before [spop-test]");
    let scope = conf.engine(Some("spop-test")).unwrap();
    assert_eq!(scope.line, Some(2));

    let a = scope.agent.as_ref().unwrap();
    assert_eq!((a.name.as_str(), a.line), ("spop-agent", 3));
    assert_eq!(names(&a.messages), ["check-request"]);
    assert_eq!(a.messages[0].line, 4);
    assert!(a.groups.is_empty());
    assert_eq!(a.option_var_prefix.as_ref().map(|v| (v.value.as_str(), v.line)), Some(("spoa", 5)));
    assert_eq!(a.var_prefix(), "spoa");
    assert_eq!(a.var_name(Scope::Txn, "block"), "txn.spoa.block");
    assert_eq!(a.option_set_on_error.as_ref().map(|v| (v.value.as_str(), v.line)), Some(("err", 6)));
    assert_eq!(a.option_set_process_time.as_ref().map(|v| (v.value.as_str(), v.line)), Some(("ptime", 7)));
    assert!(a.option_set_total_time.is_none());
    assert_eq!(names(&a.register_var_names), ["block", "score"]);
    assert!(a.register_var_names.iter().all(|v| v.line == 10));
    assert_eq!(a.option_pipelining.as_ref().map(|v| (v.value, v.line)), Some((true, 12)));
    assert!(a.option_async.is_none(), "'# no option async' is a comment");
    assert!(a.max_frame_size.is_none(), "'# max-frame-size' is a comment");
    assert!(a.pipelining() && a.async_enabled() && a.send_frag_payload());
    assert!(!a.dontlog_normal() && !a.force_set_var() && !a.continue_on_error());
    assert_eq!(a.max_frame_size(), 16380);
    assert_eq!(a.max_waiting_frames(), 20);
    assert!(a.maxconnrate.is_none() && a.maxerrrate.is_none() && a.max_waiting_frames.is_none());
    assert_eq!(a.timeout_hello.as_ref().map(|t| (t.value, t.line)), Some((Duration::from_secs(2), 15)));
    assert_eq!(a.timeout_idle.as_ref().map(|t| (t.value, t.line)), Some((Duration::from_secs(120), 16)));
    assert_eq!(a.timeout_processing.as_ref().map(|t| (t.value, t.line)), Some((Duration::from_millis(500), 17)));
    assert_eq!(a.use_backend.as_ref().map(|b| (b.value.as_str(), b.line)), Some(("spoe-agents", 18)));
    assert_eq!(a.log.len(), 1);
    assert_eq!((a.log[0].args.as_slice(), a.log[0].negated, a.log[0].line), (&["global".to_string()][..], false, 19));

    assert_eq!(scope.messages.len(), 1);
    let m = &scope.messages[0];
    assert_eq!((m.name.as_str(), m.line), ("check-request", 21));
    assert!(m.acls.is_empty());
    let args: Vec<(Option<&str>, &str, usize)> =
        m.args.iter().map(|x| (x.name.as_deref(), x.sample.as_str(), x.line)).collect();
    assert_eq!(
        args,
        [
            (Some("ip"), "src", 23),
            (Some("port"), "src_port", 23),
            (Some("method"), "method", 23),
            (Some("path"), "path", 23),
            (Some("host"), "req.hdr(host)", 23),
            (Some("ua"), "req.hdr(user-agent)", 23),
            (Some("hdrs"), "req.hdrs_bin", 23),
        ]
    );
    let ev = m.event.as_ref().unwrap();
    assert_eq!((ev.event.as_str(), ev.condition.as_ref(), ev.line), ("on-frontend-http-request", None, 24));
    assert_eq!(ev.kind(), Some(SpoeEvent::OnFrontendHttpRequest));
    assert!(scope.groups.is_empty());
    assert_eq!(scope.sent_messages().len(), 1);
}

#[test]
fn bench_conf_fixture_every_field() {
    let conf = SpoeConfig::parse(&fixture("bench/spoe-bench.conf")).unwrap();
    assert!(conf.diagnostics.is_empty(), "{}", dump(&conf.diagnostics));
    let scope = conf.engine(Some("spop-test")).unwrap();
    assert_eq!(scope.line, Some(1));
    let a = scope.agent.as_ref().unwrap();
    assert_eq!((a.name.as_str(), a.line), ("spop-agent", 2));
    assert_eq!(names(&a.messages), ["check-request"]);
    assert_eq!(a.var_prefix(), "spoa");
    assert_eq!(a.option_set_on_error.as_ref().map(|v| v.value.as_str()), Some("err"));
    assert!(a.option_set_process_time.is_none() && a.option_pipelining.is_none() && a.log.is_empty());
    assert_eq!(names(&a.register_var_names), ["block", "score"]);
    assert_eq!(a.timeout_hello.as_ref().map(|t| (t.value, t.line)), Some((Duration::from_secs(2), 7)));
    assert_eq!(a.timeout_idle.as_ref().map(|t| (t.value, t.line)), Some((Duration::from_secs(120), 8)));
    assert_eq!(a.timeout_processing.as_ref().map(|t| (t.value, t.line)), Some((Duration::from_millis(500), 9)));
    assert_eq!(a.use_backend.as_ref().map(|b| (b.value.as_str(), b.line)), Some(("spoe-agents", 10)));
    let m = scope.message("check-request").unwrap();
    assert_eq!(m.line, 11);
    let args: Vec<(&str, &str)> = m.args.iter().map(|x| (x.wire_name(), x.sample.as_str())).collect();
    assert_eq!(
        args,
        [
            ("ip", "src"),
            ("method", "method"),
            ("path", "path"),
            ("host", "req.hdr(host)"),
            ("ua", "req.hdr(user-agent)")
        ]
    );
    assert_eq!(m.event.as_ref().map(|e| (e.event.as_str(), e.line)), Some(("on-frontend-http-request", 13)));
}

#[test]
fn parse_file_reads_the_fixture_and_reports_missing_files() {
    let conf = SpoeConfig::parse_file(fixture_path("spoe.conf")).unwrap();
    assert_eq!(conf, SpoeConfig::parse(&fixture("spoe.conf")).unwrap());
    match SpoeConfig::parse_file(fixture_path("nope.conf")) {
        Err(e @ ConfError::Io { .. }) => assert!(e.to_string().contains("nope.conf"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fixtures_check_without_errors() {
    let rules = rules_fixture();
    let diags = run(&fixture("spoe.conf"), Some(&fixture("haproxy.cfg")), Some(&rules));
    no_errors(&diags);
    assert!(!diags.iter().any(|d| d.level == Level::Warning), "fixture should be warning-free:\n{}", dump(&diags));
    // what it does say: hdrs_bin near the frame size, and what 3.1 ignores
    expect(&diags, Level::Info, &["req.hdrs_bin", "fragmentation"]);
    expect(&diags, Level::Info, &["'timeout hello' is ignored by HAProxy ≥ 3.1"]);
    no_errors(&run(&fixture("spoe.conf"), None, None));

    let diags = run(&fixture("bench/spoe-bench.conf"), Some(&fixture("bench/haproxy-bench.cfg")), Some(&rules));
    no_errors(&diags);
    assert!(!diags.iter().any(|d| d.level == Level::Warning), "{}", dump(&diags));
}

#[test]
fn broken_variables() {
    let spoe = fixture("spoe.conf");
    let cfg = fixture("haproxy.cfg");
    let rules = rules_fixture();
    let unregistered = edit(&spoe, "    register-var-names block score\n", "");
    let cfg_no_score = edit(
        &cfg,
        "http-after-response set-header x-spoa-score %[var(txn.spoa.score)] if { var(txn.spoa.score) -m found }",
        "",
    );

    // score is neither registered nor referenced: HAProxy drops it; block is still referenced
    let diags = run(&unregistered, Some(&cfg_no_score), Some(&rules));
    let d = expect(&diags, Level::Error, &["'txn.spoa.score'", "silently ignores", "register-var-names score"]);
    assert_eq!((d.origin, d.line), (Origin::Rules, Some(26)), "the [[rule]] line");
    assert!(!diags.iter().any(|d| d.level == Level::Error && d.message.contains("txn.spoa.block")), "{}", dump(&diags));
    // referenced in haproxy.cfg is enough
    no_errors(&run(&unregistered, Some(&cfg), Some(&rules)));
    // without haproxy.cfg it cannot be known: a warning
    expect(&run(&unregistered, None, Some(&rules)), Level::Warning, &["'txn.spoa.score'", "not in register-var-names"]);
    // option force-set-var lets everything through
    let forced = edit(&unregistered, "    use-backend", "    option force-set-var\n    use-backend");
    no_errors(&run(&forced, Some(&cfg_no_score), Some(&rules)));

    // a rule writing a variable HAProxy itself sets
    let clash = Rules::from_toml("[[rule]]\nset = { name = \"err\", value = 1 }\n").unwrap();
    expect(&run(&spoe, Some(&cfg), Some(&clash)), Level::Warning, &["'err'", "option set-on-error"]);
    // haproxy.cfg reads a variable no rule sets
    let only_block = Rules::from_toml(
        "[[rule]]\nwhen = { arg = \"path\", prefix = \"/b\" }\nset = { name = \"block\", value = true }\n",
    )
    .unwrap();
    let d = expect(&run(&spoe, Some(&cfg), Some(&only_block)), Level::Info, &["spoa.score", "no rule sets 'score'"]);
    assert_eq!(d.origin, Origin::HaproxyCfg);
    // set and score the same variable
    let mixed = Rules::from_toml(
        "[[rule]]\nset = { name = \"score\", value = 1 }\n[[rule]]\nscore = { name = \"score\", add = 2 }\n",
    )
    .unwrap();
    expect(&run(&spoe, Some(&cfg), Some(&mixed)), Level::Warning, &["score", "overwrites"]);
}

#[test]
fn broken_rules_against_messages() {
    let spoe = fixture("spoe.conf");
    let cfg = fixture("haproxy.cfg");
    let r = Rules::from_toml(
        "[[rule]]\nname = \"typo\"\nmessage = \"check-requests\"\nset = { name = \"block\", value = true }\n\
         [[rule]]\nwhen = { arg = \"client\", in_cidr = [\"10.0.0.0/8\"] }\nset = { name = \"block\", value = true }\n",
    )
    .unwrap();
    let diags = run(&spoe, Some(&cfg), Some(&r));
    expect(&diags, Level::Warning, &["rule typo", "'check-requests'", "does not declare", "never fires"]);
    expect(&diags, Level::Warning, &["rule #2", "arg 'client'", "never send"]);

    let unconditional = Rules::from_toml("[[rule]]\nset = { name = \"score\", value = 42 }\n").unwrap();
    expect(&run(&spoe, Some(&cfg), Some(&unconditional)), Level::Info, &["'check-request'", "no rule reads it"]);

    // a message HAProxy never sends
    let orphan = format!("{spoe}\nspoe-message orphan\n    args src\n    event on-client-session\n");
    let r = Rules::from_toml("[[rule]]\nmessage = \"orphan\"\nset = { name = \"block\", value = true }\n").unwrap();
    let diags = run(&orphan, Some(&cfg), Some(&r));
    expect(&diags, Level::Warning, &["spoe-message 'orphan'", "never sends it"]);
    expect(&diags, Level::Warning, &["rule #1", "'orphan'", "HAProxy never sends"]);
}

#[test]
fn broken_agent_sections() {
    let spoe = fixture("spoe.conf");
    let cfg = fixture("haproxy.cfg");
    let check_one = |text: &str| run(text, Some(&cfg), None);

    let d = expect(&check_one(&edit(&spoe, "    timeout hello      2s", "")), Level::Warning, &["no 'timeout hello'"]);
    assert_eq!(d.line, Some(3));
    let diags = check_one(&edit(
        &edit(&spoe, "    timeout idle       2m", ""),
        "timeout processing 500ms",
        "timeout processing 0",
    ));
    expect(&diags, Level::Warning, &["no 'timeout idle', 'timeout processing'"]);
    expect(
        &check_one(&edit(&spoe, "processing 500ms", "processing 30s")),
        Level::Warning,
        &["timeout processing 30s", "typical"],
    );
    expect(&check_one(&edit(&spoe, "    use-backend spoe-agents\n", "")), Level::Error, &["no use-backend"]);
    expect(
        &check_one(&edit(&spoe, "use-backend spoe-agents", "use-backend agents")),
        Level::Error,
        &["'agents'", "no backend or listen"],
    );
    expect(&check_one(&edit(&spoe, "    option     var-prefix spoa", "")), Level::Error, &["default prefix", "'-'"]);
    expect(
        &check_one(&edit(&spoe, "    option     set-on-error err", "")),
        Level::Info,
        &["no 'option set-on-error'", "invisible"],
    );
    expect(
        &check_one(&edit(&spoe, "option     pipelining", "no option pipelining")),
        Level::Info,
        &["one NOTIFY at a time"],
    );
    expect(
        &check_one(&edit(&spoe, "messages   check-request", "messages   check-request other")),
        Level::Error,
        &["undefined spoe-message 'other'"],
    );
    let d = expect(
        &check_one(&edit(&spoe, "    event on-frontend-http-request", "")),
        Level::Warning,
        &["has no event", "ignores"],
    );
    assert_eq!(d.line, Some(21));
    let d = expect(
        &check_one(&edit(&spoe, "    log global", "    log global\n    option turbo")),
        Level::Error,
        &["option 'turbo'"],
    );
    assert_eq!((d.origin, d.line), (Origin::SpoeConf, Some(20)));
    expect(
        &check_one(&edit(&spoe, "on-frontend-http-request", "on-frontend-http-requests")),
        Level::Error,
        &["unknown event"],
    );
    expect(
        &check_one(&edit(&spoe, "    log global", "    frobnicate 1")),
        Level::Error,
        &["unknown keyword 'frobnicate'"],
    );

    // groups: declared, listed, never sent by a rule in haproxy.cfg
    let grouped = format!(
        "{}\nspoe-group g1\n    messages extra\nspoe-message extra\n    args ip=src\n",
        edit(&spoe, "    log global", "    log global\n    groups g1")
    );
    let diags = check_one(&grouped);
    no_errors(&diags);
    expect(&diags, Level::Info, &["spoe-group 'g1' is never sent", "send-spoe-group spop-test g1"]);
    let cfg_sends = edit(
        &cfg,
        "    default_backend be_app",
        "    http-request send-spoe-group spop-test g1\n    default_backend be_app",
    );
    let diags = run(&grouped, Some(&cfg_sends), None);
    assert!(!diags.iter().any(|d| d.message.contains("never sent")), "{}", dump(&diags));
    expect(&check_one(&edit(&grouped, "    groups g1", "    groups g2")), Level::Error, &["undefined spoe-group 'g2'"]);
}

#[test]
fn broken_backend_and_frames() {
    let spoe = fixture("spoe.conf");
    let cfg = fixture("haproxy.cfg");
    let with_cfg = |spoe: &str, cfg: &str| run(spoe, Some(cfg), None);

    let d = expect(
        &with_cfg(&spoe, &edit(&cfg, "timeout connect 5s    # must", "timeout connect 2s    # must")),
        Level::Warning,
        &["'timeout connect 2s'", "must exceed 'timeout hello 2s'"],
    );
    assert_eq!((d.origin, d.line), (Origin::SpoeConf, Some(15)));
    expect(
        &with_cfg(&spoe, &edit(&cfg, "timeout server  3m    # must", "timeout server  1m    # must")),
        Level::Warning,
        &["'timeout server 1m'", "must exceed 'timeout idle 2m'"],
    );
    // without its own timeouts the backend inherits the defaults section's (server 30s < idle 2m)
    let inherits = edit(
        &edit(&cfg, "    timeout connect 5s    # must be > \"timeout hello\" in spoe.conf\n", ""),
        "    timeout server  3m    # must be > \"timeout idle\" in spoe.conf\n",
        "",
    );
    expect(&with_cfg(&spoe, &inherits), Level::Warning, &["'timeout server 30s'", "haproxy.cfg line 20"]);

    // mode: inherits "mode http" from defaults without its "mode tcp"
    let http = edit(&cfg, "    mode tcp\n", "");
    expect(&with_cfg(&spoe, &http), Level::Error, &["'mode http'", "requires 'mode tcp'"]);
    expect(&with_cfg(&spoe, &edit(&cfg, "    mode tcp\n", "    mode spop\n")), Level::Warning, &["mode spop", "≥ 3.1"]);

    // max-frame-size
    let small = edit(&spoe, "    log global", "    log global\n    max-frame-size 512");
    let d = expect(
        &with_cfg(&small, &cfg),
        Level::Warning,
        &["req.hdrs_bin", "max-frame-size 512", "reconnect storm", "logwire announces fragmentation"],
    );
    assert_eq!(d.line, Some(20));
    let nofrag = edit(&small, "    log global", "    log global\n    no option send-frag-payload");
    expect(&with_cfg(&nofrag, &cfg), Level::Info, &["no option send-frag-payload", "value 3"]);
    let big = edit(&spoe, "    log global", "    log global\n    max-frame-size 20000");
    expect(&with_cfg(&big, &cfg), Level::Error, &["exceeds tune.bufsize-4 = 16380"]);
    no_errors(&with_cfg(&big, &edit(&cfg, "# tune.bufsize 16384", "tune.bufsize 32768")));
    let tiny = edit(&spoe, "    log global", "    log global\n    max-frame-size 100");
    expect(&with_cfg(&tiny, &cfg), Level::Error, &["range [256"]);

    // filters
    expect(
        &with_cfg(&spoe, &edit(&cfg, "    filter spoe engine spop-test config spoe.conf\n", "")),
        Level::Warning,
        &["no 'filter spoe' line"],
    );
    expect(
        &with_cfg(&spoe, &edit(&cfg, "engine spop-test", "engine other")),
        Level::Info,
        &["[spop-test] is used by no filter"],
    );
    let in_backend =
        edit(&cfg, "\nbackend be_app\n", "\nbackend be_app\n    filter spoe engine spop-test config spoe.conf\n");
    expect(&with_cfg(&spoe, &in_backend), Level::Warning, &["frontend event", "backend 'be_app'"]);
}

fn check_request(ip: &str, path: &str) -> Message {
    let ip: IpAddr = ip.parse().unwrap();
    let ip = match ip {
        IpAddr::V4(a) => TypedData::Ipv4(a),
        IpAddr::V6(a) => TypedData::Ipv6(a),
    };
    Message::new(
        "check-request",
        vec![
            Arg::new("ip", ip),
            Arg::new("port", TypedData::Int64(51234)),
            Arg::new("method", TypedData::string("GET")),
            Arg::new("path", TypedData::string(path)),
            Arg::new("host", TypedData::string("127.0.0.1:8080")),
            Arg::new("ua", TypedData::string("curl/7.88.1")),
            Arg::new("hdrs", TypedData::Binary(Bytes::from_static(b"\x04host\x0e127.0.0.1:8080\x00\x00"))),
        ],
    )
}

fn notify(messages: Vec<Message>) -> Notify {
    Notify { stream_id: 0, frame_id: 1, engine_id: None, messages, fragments: 1 }
}

fn ack(h: &impl Handler, n: &Notify) -> Vec<Action> {
    let mut out = Vec::new();
    h.on_notify(n, &mut out);
    out
}

#[test]
fn rules_fixture_through_the_handler() {
    let rules = rules_fixture();
    let block = Action::set_var(Scope::Txn, "block", TypedData::Bool(true));
    let score = Action::set_var(Scope::Txn, "score", TypedData::Int64(42));

    let both = vec![block, score.clone()];
    let score_only = vec![score];

    assert_eq!(ack(&rules, &notify(vec![check_request("127.0.0.1", "/block")])), both);
    assert_eq!(ack(&rules, &notify(vec![check_request("127.0.0.1", "/blocked/x")])), both);
    assert_eq!(ack(&rules, &notify(vec![check_request("192.0.2.99", "/hello")])), both);
    assert_eq!(ack(&rules, &notify(vec![check_request("203.0.113.7", "/hello")])), both);
    assert_eq!(ack(&rules, &notify(vec![check_request("2001:db8::5", "/hello")])), both);
    assert_eq!(ack(&rules, &notify(vec![check_request("127.0.0.1", "/hello")])), score_only);
    assert_eq!(ack(&rules, &notify(vec![check_request("203.0.113.8", "/")])), score_only);
    // the block rules only look at "check-request": another message only gets the unconditional score
    let mut other = check_request("192.0.2.1", "/block");
    other.name = Bytes::from_static(b"other");
    assert_eq!(ack(&rules, &notify(vec![other])), score_only);
    // the agent can share it
    let shared: std::sync::Arc<dyn Handler> = std::sync::Arc::new(rules);
    assert_eq!(ack(&shared, &notify(vec![check_request("127.0.0.1", "/hello")])), score_only);

    // the ACK bytes for "normal": set-var(txn, "score", INT64 42)
    let mut bytes = Vec::new();
    logwire_spop::message::encode_actions(&ack(&shared, &notify(vec![check_request("127.0.0.1", "/")])), &mut bytes);
    assert_eq!(bytes, [0x01, 0x03, 0x02, 0x05, b's', b'c', b'o', b'r', b'e', 0x04, 0x2a]);
}

#[test]
fn template_messages_through_the_rules() {
    let conf = SpoeConfig::parse(&fixture("spoe.conf")).unwrap();
    let msgs = messages_for_event(&conf, Some("spop-test"), "on-frontend-http-request");
    assert_eq!(msgs.len(), 1);
    let rules = rules_fixture();
    let block = Action::set_var(Scope::Txn, "block", TypedData::Bool(true));
    let score = Action::set_var(Scope::Txn, "score", TypedData::Int64(42));

    let req = RequestTemplate { path: "/block/{seq}".into(), ..RequestTemplate::default() };
    let built = build_messages(&msgs, &req, 9);
    let m = &built[0];
    assert_eq!(m.name, "check-request");
    let names: Vec<String> = m.args.iter().map(|a| a.name_str().into_owned()).collect();
    assert_eq!(names, ["ip", "port", "method", "path", "host", "ua", "hdrs"]);
    let types: Vec<&str> = m.args.iter().map(|a| a.value.type_name()).collect();
    assert_eq!(types, ["ipv4", "int64", "string", "string", "string", "string", "binary"], "as HAProxy 2.6 sends them");
    assert_eq!(m.arg("path"), Some(&TypedData::string("/block/9")));
    assert_eq!(ack(&rules, &notify(built)), [block.clone(), score.clone()]);

    let req = RequestTemplate { src: "198.51.100.23".parse().unwrap(), ..RequestTemplate::default() };
    assert_eq!(ack(&rules, &notify(build_messages(&msgs, &req, 1))), [block, score.clone()]);
    let req = RequestTemplate::default();
    assert_eq!(ack(&rules, &notify(build_messages(&msgs, &req, 2))), [score]);
}

#[test]
fn conditions_survive_as_text() {
    let text = edit(
        &fixture("spoe.conf"),
        "    event on-frontend-http-request",
        "    acl api path_beg /api\n    event on-frontend-http-request unless api || { src 10.0.0.0/8 }",
    );
    let conf = SpoeConfig::parse(&text).unwrap();
    assert!(conf.diagnostics.is_empty(), "{}", dump(&conf.diagnostics));
    let m = &conf.scopes[0].messages[0];
    assert_eq!(m.acls[0].text(), "path_beg /api");
    assert_eq!(m.event.as_ref().unwrap().condition, Some((CondKind::Unless, "api || { src 10.0.0.0/8 }".to_string())));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Any mangling of the real configurations parses or fails cleanly, and checks without panicking.
    #[test]
    fn mangled_fixtures_never_panic(cut in 0usize..2000, len in 0usize..64, insert in "\\PC{0,16}") {
        let spoe = fixture("spoe.conf");
        let cfg = fixture("haproxy.cfg");
        let mangle = |s: &str| {
            let mut b = s.as_bytes().to_vec();
            let at = cut.min(b.len());
            let end = (at + len).min(b.len());
            b.splice(at..end, insert.bytes());
            String::from_utf8_lossy(&b).into_owned()
        };
        let (spoe, cfg) = (mangle(&spoe), mangle(&cfg));
        if let Ok(conf) = SpoeConfig::parse(&spoe) {
            let rules = rules_fixture();
            let _ = check(&conf, Some(&rules), Some(&cfg));
            let _ = check(&conf, None, Some(&spoe));
            for m in conf.scopes.iter().flat_map(|s| s.sent_messages()) {
                let _ = build_messages(&[m], &RequestTemplate::default(), 0);
            }
        }
    }
}
