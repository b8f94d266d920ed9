use std::net::SocketAddr;
use std::path::PathBuf;

use super::*;
use crate::event::{ENOENT, EPERM};
use crate::glob::{ArgvGlob, Glob};
use crate::model::{Approval, EnvPolicy, Filesystem, NetAllow, Network, Resources, Rule, TmpMode};

mod defaults;
mod props;

fn glob(p: &str) -> Glob {
    Glob::new(p).unwrap()
}

fn paths(v: &[&str]) -> Vec<PathBuf> {
    v.iter().map(PathBuf::from).collect()
}

/// Grants: read /usr /etc, write /w, exec /usr/bin /w/bin /opt/tools; hides .env in /w and
/// /etc/shadow; private tmp; no network.
fn base() -> Policy {
    Policy {
        name: "t".into(),
        sources: vec![],
        filesystem: Filesystem {
            read: paths(&["/usr", "/etc"]),
            write: paths(&["/w"]),
            exec: paths(&["/usr/bin", "/w/bin", "/opt/tools"]),
            tmp: TmpMode::Private,
            hide: vec![glob("/w/**/.env"), glob("/etc/shadow")],
        },
        env: EnvPolicy::default(),
        network: Network::default(),
        resources: Resources::default(),
        rules: vec![],
        approval: Approval::default(),
    }
}

fn rule(id: &str, matcher: Matcher, action: Action, errno: i32) -> Rule {
    Rule {
        id: id.into(),
        matcher,
        action,
        errno,
        reason: format!("because {id}"),
        source: "p.toml:1".into(),
    }
}

fn exec_m(path: &str, argv: Option<&str>) -> Matcher {
    Matcher::Exec {
        path: glob(path),
        argv: argv.map(|a| ArgvGlob::new(a).unwrap()),
    }
}

fn open_m(path: &str, access: Option<OpenAccess>) -> Matcher {
    Matcher::Open {
        path: glob(path),
        access,
    }
}

fn net_m(addr: &str, prefix: u8, port: Option<u16>) -> Matcher {
    let addr = addr.parse().unwrap();
    Matcher::Connect(AddrPattern::Net { addr, prefix, port })
}

fn exec(path: &str, argv: &str) -> Event {
    let argv = argv.split(' ').map(String::from).collect();
    Event::Exec {
        path: path.into(),
        argv,
    }
}

fn read(path: &str) -> Event {
    Event::Open {
        path: path.into(),
        access: OpenAccess::Read,
    }
}

fn write(path: &str) -> Event {
    Event::Open {
        path: path.into(),
        access: OpenAccess::Write,
    }
}

fn inet(s: &str) -> Event {
    let sa: SocketAddr = s.parse().unwrap();
    Event::Connect {
        addr: SockAddr::Inet(sa),
    }
}

fn unix(p: &str) -> Event {
    Event::Connect {
        addr: SockAddr::Unix(p.into()),
    }
}

fn abstract_(name: &str) -> Event {
    Event::Connect {
        addr: SockAddr::Abstract(name.into()),
    }
}

const ALLOW: Verdict = Verdict::Allow;
const fn deny(errno: i32) -> Verdict {
    Verdict::Deny { errno }
}

/// One rule of every kind, each with its own action or errno.
fn ruled() -> Policy {
    use Action::*;
    use OpenAccess::{Read, Write};
    let host = |name: &str, port, resolved: &[&str]| {
        Matcher::Connect(AddrPattern::Host {
            name: name.into(),
            port,
            resolved: resolved.iter().map(|a| a.parse().unwrap()).collect(),
        })
    };
    let mut p = base();
    p.rules = vec![
        rule("git-push", exec_m("/usr/bin/git", Some("* push *")), Ask, 0),
        rule("curl", exec_m("curl", None), Deny, EPERM),
        rule("secrets", open_m("/w/secrets", Some(Read)), Deny, ENOENT),
        rule("log", open_m("/w/log", Some(Write)), Pause, 0),
        rule("ssh", open_m("/home/u/.ssh", None), Deny, EACCES),
        rule("db", net_m("10.0.0.0", 8, Some(5432)), Allow, 0),
        rule("v6", net_m("fd00::", 8, None), Deny, ECONNREFUSED),
        rule("any-port", net_m("192.168.1.1", 32, None), Ask, 0),
        rule(
            "api",
            host("api.example.com", Some(443), &["93.184.216.34"]),
            Allow,
            0,
        ),
        rule("nowhere", host("nowhere.example", None, &[]), Deny, EPERM),
        rule(
            "docker",
            Matcher::Connect(AddrPattern::Unix(glob("/run/*.sock"))),
            Deny,
            EPERM,
        ),
        rule(
            "dbus",
            Matcher::Connect(AddrPattern::Abstract("dbus".into())),
            Ask,
            0,
        ),
    ];
    p
}

#[test]
fn decide_rules_of_every_kind_match_or_fall_to_the_default() {
    let p = ruled();
    let cases: Vec<(Event, Verdict, Option<&str>)> = vec![
        (
            exec("/usr/bin/git", "git push origin"),
            Verdict::Ask,
            Some("git-push"),
        ),
        (exec("/usr/bin/git", "git status"), ALLOW, None),
        (exec("/usr/bin/git", "git push"), ALLOW, None),
        (exec("/opt/tools/curl", "curl x"), deny(EPERM), Some("curl")),
        (exec("/usr/bin/curlx", "curlx"), ALLOW, None),
        (read("/w/secrets"), deny(ENOENT), Some("secrets")),
        (read("/w/secrets/a/b"), deny(ENOENT), Some("secrets")),
        (write("/w/secrets"), ALLOW, None),
        (read("/w/secretsx"), ALLOW, None),
        (write("/w/log"), Verdict::Pause, Some("log")),
        (read("/w/log"), ALLOW, None),
        (read("/home/u/.ssh/id"), deny(EACCES), Some("ssh")),
        (write("/home/u/.ssh"), deny(EACCES), Some("ssh")),
        (inet("10.1.2.3:5432"), ALLOW, Some("db")),
        (inet("[::ffff:10.1.2.3]:5432"), ALLOW, Some("db")),
        (inet("10.1.2.3:5433"), deny(ENETUNREACH), None),
        (inet("11.0.0.1:5432"), deny(ENETUNREACH), None),
        (inet("[fd00::1]:1"), deny(ECONNREFUSED), Some("v6")),
        (inet("[fe80::1]:1"), deny(ENETUNREACH), None),
        (inet("192.168.1.1:1"), Verdict::Ask, Some("any-port")),
        (inet("192.168.1.1:65535"), Verdict::Ask, Some("any-port")),
        (inet("192.168.1.2:1"), deny(ENETUNREACH), None),
        (inet("93.184.216.34:443"), ALLOW, Some("api")),
        (inet("93.184.216.34:80"), deny(ENETUNREACH), None),
        (inet("93.184.216.35:443"), deny(ENETUNREACH), None),
        (unix("/run/docker.sock"), deny(EPERM), Some("docker")),
        (unix("/run/x/docker.sock"), ALLOW, None),
        (abstract_("dbus"), Verdict::Ask, Some("dbus")),
        (abstract_("dbus2"), ALLOW, None),
    ];
    for (event, verdict, id) in cases {
        let d = decide(&p, &event);
        assert_eq!(
            (d.verdict, d.rule_id.as_deref()),
            (verdict, id),
            "{event:?}"
        );
        if let Some(id) = id {
            assert_eq!(d.reason, format!("because {id}"));
        }
    }
}

#[test]
fn decide_net_v4_and_v6_are_distinct_and_hosts_resolve() {
    let mut p = base();
    p.rules = vec![
        rule("all-v6", net_m("::", 0, None), Action::Ask, 0),
        rule("all-v4", net_m("0.0.0.0", 0, Some(22)), Action::Pause, 0),
    ];
    assert_eq!(decide(&p, &inet("10.0.0.1:80")).verdict, deny(ENETUNREACH));
    assert_eq!(decide(&p, &inet("10.0.0.1:22")).verdict, Verdict::Pause);
    assert_eq!(decide(&p, &inet("[fe80::1]:22")).verdict, Verdict::Ask);

    p.rules = vec![rule("h", host_any("db.internal"), Action::Ask, 0)];
    assert_eq!(
        decide(&p, &inet("10.9.9.9:5432")).verdict,
        deny(ENETUNREACH)
    );
    let table = [("db.internal".to_string(), vec!["10.9.9.9".parse().unwrap()])];
    let resolved = p.with_resolved(&table.into_iter().collect());
    assert_eq!(
        decide(&resolved, &inet("10.9.9.9:5432")).verdict,
        Verdict::Ask
    );
    assert_eq!(
        decide(&resolved, &inet("10.9.9.8:5432")).verdict,
        deny(ENETUNREACH)
    );
}

fn host_any(name: &str) -> Matcher {
    Matcher::Connect(AddrPattern::Host {
        name: name.into(),
        port: None,
        resolved: vec![],
    })
}

#[test]
fn decide_precedence_is_deny_pause_ask_allow_in_any_order() {
    let actions = [Action::Allow, Action::Ask, Action::Pause, Action::Deny];
    let event = read("/w/x");
    // Every order of the four actions, and every subset: the highest present wins.
    for mask in 1u8..16 {
        let present: Vec<Action> = (0..4)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| actions[i])
            .collect();
        for rotation in 0..present.len() {
            let mut order = present.clone();
            order.rotate_left(rotation);
            let mut p = base();
            p.rules = order
                .iter()
                .map(|a| rule(&format!("{a:?}"), open_m("/w", None), *a, EPERM))
                .collect();
            let d = decide(&p, &event);
            let top = present.iter().max_by_key(|a| rank(**a)).copied().unwrap();
            assert_eq!(d.rule_id, Some(format!("{top:?}")), "{order:?}");
        }
        let mut reversed = present.clone();
        reversed.reverse();
        let mut p = base();
        p.rules = reversed
            .iter()
            .map(|a| rule(&format!("{a:?}"), open_m("/w", None), *a, EPERM))
            .collect();
        let top = present.iter().max_by_key(|a| rank(**a)).copied().unwrap();
        assert_eq!(decide(&p, &event).rule_id, Some(format!("{top:?}")));
    }
}

#[test]
fn decide_first_rule_of_the_winning_action_decides_with_its_errno() {
    let mut p = base();
    p.rules = vec![
        rule("ask", open_m("/w", None), Action::Ask, 0),
        rule("first", open_m("/w/a", None), Action::Deny, ENOENT),
        rule("second", open_m("**", None), Action::Deny, EPERM),
    ];
    let d = decide(&p, &read("/w/a/b"));
    assert_eq!(d.verdict, deny(ENOENT));
    assert_eq!(d.rule_id.as_deref(), Some("first"));
    assert_eq!(d.reason, "because first");
    let d = decide(&p, &read("/w/b"));
    assert_eq!(d.verdict, deny(EPERM));
    assert_eq!(d.rule_id.as_deref(), Some("second"));
}

#[test]
fn decide_allow_rule_never_unhides_but_ask_still_asks() {
    let mut p = base();
    p.rules = vec![rule("ok", open_m("/w", None), Action::Allow, 0)];
    let d = decide(&p, &read("/w/.env"));
    assert_eq!((d.verdict, d.rule_id), (deny(EACCES), None));
    let d = decide(&p, &read("/w/a"));
    assert_eq!((d.verdict, d.rule_id.as_deref()), (ALLOW, Some("ok")));
    // An allow rule may reach past the default (here: outside the read grants).
    p.rules = vec![rule(
        "home",
        open_m("/home/u/notes", None),
        Action::Allow,
        0,
    )];
    assert_eq!(decide(&p, &read("/home/u/notes")).verdict, ALLOW);
    p.rules = vec![rule("trip", open_m("**/.env", None), Action::Pause, 0)];
    assert_eq!(decide(&p, &read("/w/.env")).verdict, Verdict::Pause);
}

#[test]
fn canonical_borrows_all_but_v4_mapped_connects() {
    use std::borrow::Cow;

    for e in [
        read("/w/a"),
        exec("/usr/bin/git", "git push"),
        inet("10.1.2.3:5432"),
        inet("[::1]:80"),
        unix("/run/x.sock"),
        abstract_("dbus"),
    ] {
        assert!(
            matches!(canonical(&e), Cow::Borrowed(b) if *b == e),
            "{e:?}"
        );
    }
    let e = inet("[::ffff:10.1.2.3]:5432");
    let mapped = canonical(&e);
    assert!(matches!(mapped, Cow::Owned(_)));
    assert_eq!(*mapped, inet("10.1.2.3:5432"));
}

#[test]
fn argv_matters_only_where_an_argv_rule_names_the_program() {
    let mut p = base();
    assert!(!argv_matters(&p, std::path::Path::new("/usr/bin/git")));
    p.rules.push(rule(
        "git-any",
        exec_m("/usr/bin/git", None),
        Action::Ask,
        0,
    ));
    assert!(
        !argv_matters(&p, std::path::Path::new("/usr/bin/git")),
        "a rule without argv"
    );
    p.rules.push(rule(
        "no-force",
        exec_m("/usr/bin/git", Some("git push *--force*")),
        Action::Deny,
        EPERM,
    ));
    assert!(argv_matters(&p, std::path::Path::new("/usr/bin/git")));
    assert!(!argv_matters(&p, std::path::Path::new("/usr/bin/ls")));
    p.rules.push(rule(
        "any-rm",
        exec_m("**/rm", Some("rm -rf *")),
        Action::Deny,
        0,
    ));
    assert!(argv_matters(&p, std::path::Path::new("/bin/rm")));
}
