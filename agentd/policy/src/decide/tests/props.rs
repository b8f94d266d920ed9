//! Properties of `decide` over random policies (from a small generator of rules) and random
//! events, including paths and addresses no monitor would send.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::*;

const SEGS: [&str; 12] = [
    "w", "etc", "usr", "bin", ".env", "secrets", "..", ".", "a b", "é", "git", "x.sock",
];

fn path() -> impl Strategy<Value = PathBuf> {
    let built = (
        any::<bool>(),
        prop::collection::vec(prop::sample::select(&SEGS[..]), 0..5),
    )
        .prop_map(|(abs, segs)| {
            let s = segs.join("/");
            PathBuf::from(if abs { format!("/{s}") } else { s })
        });
    prop_oneof![3 => built, 1 => any::<String>().prop_map(PathBuf::from)]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        prop::sample::select(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            "fd00::1".parse().unwrap(),
            "::ffff:10.1.2.3".parse().unwrap(),
        ]),
        any::<u32>().prop_map(|n| IpAddr::V4(n.into())),
        any::<u128>().prop_map(|n| IpAddr::V6(n.into())),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    let access = prop_oneof![Just(OpenAccess::Read), Just(OpenAccess::Write)];
    let argv = prop::collection::vec(
        prop::sample::select(vec!["git", "push", "", "a b", "*"]),
        0..4,
    )
    .prop_map(|v| v.into_iter().map(String::from).collect());
    let port = prop_oneof![Just(5432u16), Just(443), any::<u16>()];
    let addr = prop_oneof![
        (ip(), port).prop_map(|(ip, port)| SockAddr::Inet(SocketAddr::new(ip, port))),
        path().prop_map(SockAddr::Unix),
        prop_oneof![Just("dbus".to_string()), any::<String>()].prop_map(SockAddr::Abstract),
        any::<u16>().prop_map(SockAddr::Other),
    ];
    prop_oneof![
        (path(), argv).prop_map(|(path, argv)| Event::Exec { path, argv }),
        (path(), access).prop_map(|(path, access)| Event::Open { path, access }),
        addr.prop_map(|addr| Event::Connect { addr }),
    ]
}

fn matcher() -> impl Strategy<Value = Matcher> {
    let globs = prop::sample::select(vec![
        "/w/**",
        "**/.env",
        "/etc/*",
        "/w/secrets",
        "*",
        "/usr/bin/git",
    ]);
    let access = prop::option::of(prop_oneof![Just(OpenAccess::Read), Just(OpenAccess::Write)]);
    let argv = prop::option::of(prop::sample::select(vec!["* push *", "*", "git ?"]));
    let nets = prop::sample::select(vec![
        ("10.0.0.0", 8u8),
        ("127.0.0.1", 32),
        ("::", 0),
        ("fd00::", 8),
        ("0.0.0.0", 0),
    ]);
    let port = prop::option::of(prop_oneof![Just(5432u16), Just(443)]);
    prop_oneof![
        (globs.clone(), argv).prop_map(|(g, a)| exec_m(g, a)),
        (globs.clone(), access).prop_map(|(g, a)| open_m(g, a)),
        (nets, port.clone()).prop_map(|((a, n), p)| net_m(a, n, p)),
        (ip(), port).prop_map(|(ip, port)| Matcher::Connect(AddrPattern::Host {
            name: "h.example".into(),
            port,
            resolved: vec![ip, IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))],
        })),
        globs.prop_map(|g| Matcher::Connect(AddrPattern::Unix(glob(g)))),
        Just(Matcher::Connect(AddrPattern::Abstract("dbus".into()))),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop::sample::select(vec![
        Action::Allow,
        Action::Deny,
        Action::Ask,
        Action::Pause,
    ])
}

fn rules() -> impl Strategy<Value = Vec<Rule>> {
    let errno = prop::sample::select(vec![EACCES, EPERM, ENOENT, ECONNREFUSED, ENETUNREACH]);
    prop::collection::vec((matcher(), action(), errno), 0..6).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (m, a, e))| rule(&format!("r{i}"), m, a, e))
            .collect()
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    (rules(), any::<bool>(), any::<bool>()).prop_map(|(rules, filtered, private)| {
        let mut p = base();
        p.rules = rules;
        if filtered {
            p.network.mode = NetMode::Filtered;
            p.network.allow = vec![NetAllow {
                addr: "10.0.0.0".parse().unwrap(),
                prefix: 8,
                port: 443,
            }];
        }
        if !private {
            p.filesystem.tmp = TmpMode::None;
        }
        p
    })
}

fn is_deny(v: Verdict) -> bool {
    matches!(v, Verdict::Deny { .. })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_matching_deny_rule_always_denies(p in policy(), e in event()) {
        let any_deny = p
            .rules
            .iter()
            .any(|r| r.action == Action::Deny && r.matcher.matches(&canonical(&e)));
        let d = decide(&p, &e);
        if any_deny {
            prop_assert!(is_deny(d.verdict), "{:?}", d);
            prop_assert!(d.rule_id.is_some());
        }
    }

    #[test]
    fn adding_an_allow_rule_only_ever_allows(
        p in policy(),
        e in event(),
        m in matcher(),
        at in any::<prop::sample::Index>(),
    ) {
        let before = decide(&p, &e);
        let mut q = p.clone();
        let pos = at.index(q.rules.len() + 1);
        q.rules.insert(pos, rule("added", m, Action::Allow, EACCES));
        let after = decide(&q, &e);
        // A deny by a rule or by hide stays exactly as it was.
        let hidden = before.reason.starts_with("hidden by the policy");
        if is_deny(before.verdict) && (before.rule_id.is_some() || hidden) {
            prop_assert_eq!(&after, &before);
        }
        // Otherwise the only change an allow rule can make is to allow.
        if after != before {
            prop_assert_eq!(after.verdict, Verdict::Allow);
        }
    }

    #[test]
    fn decide_is_deterministic_and_total(p in policy(), e in event()) {
        let d = decide(&p, &e);
        prop_assert_eq!(&d, &decide(&p, &e));
        prop_assert!(!d.reason.is_empty());
    }

    #[test]
    fn paths_that_are_not_absolute_are_denied(
        p in policy(),
        rel in prop::collection::vec(prop::sample::select(&SEGS[..]), 0..4),
        write in any::<bool>(),
    ) {
        let path = PathBuf::from(rel.join("/"));
        let access = if write { OpenAccess::Write } else { OpenAccess::Read };
        let open = Event::Open { path: path.clone(), access };
        prop_assert!(is_deny(decide(&p, &open).verdict));
        let exec = Event::Exec { path, argv: vec![] };
        prop_assert!(is_deny(decide(&p, &exec).verdict));
    }
}
