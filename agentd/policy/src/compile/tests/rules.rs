//! `[[rule]]`, `[approval]` and host names in `network.allow`.

use std::collections::HashMap;
use std::net::IpAddr;

use super::*;
use crate::event::{OpenAccess, EACCES, ENOENT};
use crate::model::{Action, AddrPattern, Matcher};

const R: &str = "version = 1\n[[rule]]\n";

fn rule_text(body: &str) -> String {
    format!("{R}{body}")
}

#[test]
fn rule_errors_point_at_file_line_col_and_name_the_rule() {
    let ok_tail = "action = \"deny\"\nreason = \"r\"\n";
    let texts: Vec<(String, &str, Option<&str>)> = vec![
        (rule_text(""), "p.toml:2:1: rule `rule-1` has no `on`", Some("write on = \"exec\", \"open\" or \"connect\"")),
        (rule_text("on = \"read\"\n"), "p.toml:3:6: rule `rule-1`: unknown kind on = \"read\"", None),
        (rule_text(&format!("on = \"open\"\n{ok_tail}")), "p.toml:2:1: rule `rule-1` has no `path`", None),
        (rule_text(&format!("on = \"exec\"\n{ok_tail}")), "p.toml:2:1: rule `rule-1` has no `path`", None),
        (rule_text(&format!("on = \"connect\"\n{ok_tail}")), "p.toml:2:1: rule `rule-1` has no `addr`", None),
        (rule_text("id = \"a b\"\n"), "p.toml:3:6: invalid rule id \"a b\"", Some("write an id without spaces, like \"no-dotenv\"")),
        (rule_text("id = \"\"\n"), "p.toml:3:6: invalid rule id \"\"", None),
        (rule_text("id = \"x\"\non = \"open\"\npath = \"/a/../b\"\n"), "p.toml:5:8: rule `x`: `..` in pattern", None),
        (rule_text("on = \"open\"\npath = \"${NOPE}/x\"\n"), "p.toml:4:8: rule `rule-1`: unknown variable `${NOPE}`", None),
        (rule_text("on = \"open\"\npath = \"/a\"\naccess = \"rw\"\n"), "p.toml:5:10: rule `rule-1`: unknown access `rw`", None),
        (rule_text("on = \"exec\"\naccess = \"read\"\n"), "p.toml:4:10: rule `rule-1`: `access` does not apply to on = \"exec\"", Some("an exec rule takes path and argv")),
        (rule_text("on = \"open\"\nargv = \"*\"\n"), "p.toml:4:8: rule `rule-1`: `argv` does not apply to on = \"open\"", Some("an open rule takes path and access")),
        (rule_text("on = \"exec\"\naddr = \"1.2.3.4:1\"\n"), "p.toml:4:8: rule `rule-1`: `addr` does not apply", None),
        (rule_text("on = \"connect\"\npath = \"/a\"\n"), "p.toml:4:8: rule `rule-1`: `path` does not apply to on = \"connect\"", Some("a connect rule takes addr")),
        (rule_text("on = \"exec\"\npath = \"/a\"\nargv = \"\"\n"), "p.toml:5:8: rule `rule-1`: empty argv pattern", None),
        (rule_text("on = \"connect\"\naddr = \"db:0\"\n"), "p.toml:4:8: rule `rule-1`: invalid port `0`", Some("a port is a number from 1 to 65535, or * for any port")),
        (rule_text("on = \"connect\"\naddr = \"10.0.0.1/8:*\"\n"), "p.toml:4:8: rule `rule-1`: host bits set", None),
        (rule_text("on = \"open\"\npath = \"/a\"\n"), "p.toml:2:1: rule `rule-1` has no `action`", None),
        (rule_text("on = \"open\"\npath = \"/a\"\naction = \"block\"\n"), "p.toml:5:10: rule `rule-1`: unknown action `block`", Some("write action = \"allow\", \"deny\", \"ask\" or \"pause\"")),
        (rule_text("on = \"open\"\npath = \"/a\"\naction = \"ask\"\nerrno = \"EPERM\"\n"), "p.toml:6:9: rule `rule-1`: errno applies only to action = \"deny\"", None),
        (rule_text("on = \"open\"\npath = \"/a\"\naction = \"deny\"\nerrno = \"EFOO\"\n"), "p.toml:6:9: rule `rule-1`: unknown errno `EFOO`", Some("write one of EACCES, EPERM, ENOENT, ECONNREFUSED, ENETUNREACH")),
        (rule_text("on = \"open\"\npath = \"/a\"\naction = \"deny\"\n"), "p.toml:2:1: rule `rule-1` has no `reason`", None),
        (rule_text("on = \"open\"\npath = \"/a\"\naction = \"deny\"\nreason = \" \"\n"), "p.toml:6:10: rule `rule-1`: empty reason", None),
        (rule_text("patth = \"/a\"\n"), "p.toml:3:1: unknown key `patth`", Some("valid keys here: id, on, path, access, argv, addr, action, errno, reason")),
        (format!("{R}on = \"open\"\npath = \"/a\"\n{ok_tail}[[rule]]\non = \"x\"\n"), "p.toml:8:6: rule `rule-2`: unknown kind", None),
        (format!("{R}id = \"a\"\non = \"open\"\npath = \"/a\"\n{ok_tail}\n[[rule]]\nid = \"a\"\non = \"open\"\npath = \"/b\"\n{ok_tail}"), "p.toml:10:6: duplicate rule id `a` (first at p.toml:3:6)", Some("give each rule its own id = \"…\"")),
        (format!("{R}on = \"open\"\npath = \"/a\"\n{ok_tail}[[rule]]\nid = \"rule-1\"\non = \"open\"\npath = \"/b\"\n{ok_tail}"), "p.toml:8:6: duplicate rule id `rule-1` (first at p.toml:2:1)", None),
        ("version = 1\n[approval]\ntimeout = \"0s\"\n".into(), "p.toml:3:11: timeout must be more than zero", None),
        ("version = 1\n[approval]\ntimeout = \"soon\"\n".into(), "p.toml:3:11: invalid duration \"soon\"", None),
        ("version = 1\n[approval]\ndefault = \"allow\"\n".into(), "p.toml:3:11: unsupported approval default `allow`", Some("only default = \"deny\" is accepted today: an unanswered ask or pause is denied")),
        ("version = 1\n[approval]\nwait = 1\n".into(), "p.toml:3:1: unknown key `wait`", Some("valid keys here: timeout, default")),
        ("version = 1\n[[rules]]\n".into(), "p.toml:2:3: unknown key `rules`", Some("valid keys here: version, extends, filesystem, env, network, resources, approval, rule")),
    ];
    let cases: Vec<(&str, &str, Option<&str>)> =
        texts.iter().map(|(t, p, h)| (t.as_str(), *p, *h)).collect();
    check_errors(&cases);
}

const RULES: &str = r#"
version = 1
[network]
mode = "filtered"
allow = ["10.0.0.0/8:443", "API.example.com:443"]
[approval]
timeout = "90s"
default = "deny"
[[rule]]
id = "no-dotenv"
on = "open"
path = "${WORKSPACE}/**/.env"
access = "read"
action = "deny"
errno = "ENOENT"
reason = "secrets"
[[rule]]
on = "exec"
path = "/usr/bin/git"
argv = "* push *"
action = "ask"
reason = "pushes leave the machine"
[[rule]]
on = "connect"
addr = "db.internal:*"
action = "pause"
reason = "the database"
[[rule]]
on = "connect"
addr = "${HOME}/run/*.sock"
action = "allow"
reason = "own sockets"
[[rule]]
on = "connect"
addr = "@dbus"
action = "deny"
reason = "no session bus"
"#;

#[test]
fn rules_compile_with_default_ids_errnos_and_sources() {
    let p = load(RULES).unwrap();
    assert_eq!(p.approval.timeout, Duration::from_secs(90));
    let ids: Vec<&str> = p.rules.iter().map(|r| r.id.as_str()).collect();
    let want = [
        "no-dotenv",
        "rule-2",
        "rule-3",
        "rule-4",
        "rule-5",
        "network.allow api.example.com:443",
    ];
    assert_eq!(ids, want);
    let r = &p.rules[0];
    let m = Matcher::Open {
        path: Glob::new("/w/proj/**/.env").unwrap(),
        access: Some(OpenAccess::Read),
    };
    assert_eq!((&r.matcher, r.action, r.errno), (&m, Action::Deny, ENOENT));
    assert_eq!(
        (r.reason.as_str(), r.source.as_str()),
        ("secrets", "p.toml:9")
    );
    assert_eq!(p.rules[1].errno, EACCES);
    assert_eq!(p.rules[1].action, Action::Ask);
    let unix = Matcher::Connect(AddrPattern::Unix(Glob::new("/home/u/run/*.sock").unwrap()));
    assert_eq!(p.rules[3].matcher, unix);
    assert_eq!(p.rules[5].action, Action::Allow);
    assert_eq!(p.network.allow.len(), 1);
    assert_eq!(p.hosts(), ["db.internal", "api.example.com"]);
    assert!(p.connect_needs_emulation());
    assert!(p.open_needs_emulation());
}

#[test]
fn with_resolved_fills_hosts_and_leaves_unknown_names_empty() {
    let p = load(RULES).unwrap();
    let ip: IpAddr = "10.9.9.9".parse().unwrap();
    let table: HashMap<String, Vec<IpAddr>> = [("db.internal".to_string(), vec![ip])].into();
    let q = p.with_resolved(&table);
    let resolved = |p: &Policy, i: usize| match &p.rules[i].matcher {
        Matcher::Connect(AddrPattern::Host { resolved, .. }) => resolved.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(resolved(&q, 2), [ip]);
    assert!(resolved(&q, 5).is_empty());
    assert!(resolved(&p, 2).is_empty());
}

#[test]
fn needs_emulation_follows_hide_rules_and_mode() {
    let p = load("version = 1\n").unwrap();
    assert!(!p.open_needs_emulation() && !p.connect_needs_emulation());
    let p = load("version = 1\n[filesystem]\nhide = [\"*.pem\"]\n").unwrap();
    assert!(p.open_needs_emulation() && !p.connect_needs_emulation());
    let allow = "on = \"open\"\npath = \"/a\"\naction = \"allow\"\nreason = \"r\"\n";
    assert!(!load(&rule_text(allow)).unwrap().open_needs_emulation());
    let ask = "on = \"open\"\npath = \"/a\"\naction = \"ask\"\nreason = \"r\"\n";
    assert!(load(&rule_text(ask)).unwrap().open_needs_emulation());
    let conn = "on = \"connect\"\naddr = \"@x\"\naction = \"allow\"\nreason = \"r\"\n";
    assert!(!load(&rule_text(conn)).unwrap().connect_needs_emulation());
    let conn = conn.replace("allow", "deny");
    let p = load(&rule_text(&conn)).unwrap();
    assert!(p.connect_needs_emulation() && !p.open_needs_emulation());
    let p = load("version = 1\n[network]\nmode = \"filtered\"\n").unwrap();
    assert!(p.connect_needs_emulation());
}

#[test]
fn to_toml_round_trips_rules_and_approval() {
    for text in [RULES, "version = 1\n[approval]\ntimeout = \"2m\"\n"] {
        let p = load(text).unwrap();
        let emitted = p.to_toml();
        let mut again = Loader::new(vec![])
            .load_str("t", Path::new("e.toml"), &emitted, &vars())
            .unwrap();
        again.sources = p.sources.clone();
        assert_eq!(again.rules.len(), p.rules.len(), "{emitted}");
        for (a, b) in again.rules.iter_mut().zip(&p.rules) {
            a.source = b.source.clone();
        }
        assert_eq!(again, p, "{emitted}");
    }
}

#[test]
fn extends_concatenates_rules_and_checks_ids_across_files() {
    let dir = temp_dir("rules");
    let rule = |id: &str| {
        format!("[[rule]]\nid = \"{id}\"\non = \"open\"\npath = \"/{id}\"\naction = \"deny\"\nreason = \"r\"\n")
    };
    let base = format!("version = 1\n[approval]\ntimeout = \"2m\"\n{}", rule("a"));
    std::fs::write(dir.join("base.toml"), base).unwrap();
    let loader = Loader::new(vec![dir.0.clone()]);
    let top = format!("version = 1\nextends = [\"base\"]\n{}", rule("b"));
    let p = loader
        .load_str("top", &dir.join("top.toml"), &top, &vars())
        .unwrap();
    let ids: Vec<&str> = p.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(p.approval.timeout, Duration::from_secs(120));
    assert_eq!(
        p.rules[0].source,
        format!("{}:4", dir.join("base.toml").display())
    );

    let top = "version = 1\nextends = [\"base\"]\n[approval]\ntimeout = \"5s\"\n";
    let p = loader
        .load_str("top", &dir.join("top.toml"), top, &vars())
        .unwrap();
    assert_eq!(p.approval.timeout, Duration::from_secs(5));

    let top = format!("version = 1\nextends = [\"base\"]\n\n{}", rule("a"));
    let e = loader
        .load_str("top", &dir.join("top.toml"), &top, &vars())
        .unwrap_err();
    let want = format!(
        "{}:5:6: duplicate rule id `a` (first at {}:5:6)",
        dir.join("top.toml").display(),
        dir.join("base.toml").display()
    );
    assert_eq!(e.to_string(), want);
}
