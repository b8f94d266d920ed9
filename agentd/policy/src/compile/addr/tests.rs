use super::*;

fn vars() -> Vars {
    Vars {
        home: "/home/u".into(),
        workspace: "/w/proj".into(),
        user: "u".into(),
    }
}

#[test]
fn net_allow_parses_v4_v6_and_round_trips() {
    let ok = [
        ("127.0.0.1:8080", "127.0.0.1", 32, 8080),
        ("10.0.0.0/8:443", "10.0.0.0", 8, 443),
        ("0.0.0.0/0:53", "0.0.0.0", 0, 53),
        ("[::1]:8080", "::1", 128, 8080),
        ("[fd00::/8]:443", "fd00::", 8, 443),
    ];
    for (s, addr, prefix, port) in ok {
        let Allowed::Net(a) = net_allow(s).unwrap() else {
            panic!("{s}: not a network")
        };
        let want = NetAllow {
            addr: addr.parse().unwrap(),
            prefix,
            port,
        };
        assert_eq!(a, want, "{s}");
        assert_eq!(net_allow_text(&a), s);
    }
}

#[test]
fn net_allow_rejects_with_hints() {
    let cases = [
        ("example.com:*", "a port is a number from 1 to 65535"),
        ("-bad.com:443", ALLOW_HINT),
        ("10.0.0.1/8:443", "write the network address: 10.0.0.0/8"),
        ("[fd00::1/8]:443", "write the network address: fd00::/8"),
        (
            "10.0.0.0/33:443",
            "a prefix length is 0 to 32 for an IPv4 address",
        ),
        (
            "[::/129]:443",
            "a prefix length is 0 to 128 for an IPv6 address",
        ),
        ("10.0.0.1:0", "a port is a number from 1 to 65535"),
        ("10.0.0.1:65536", "a port is a number from 1 to 65535"),
        ("10.0.0.1", ALLOW_HINT),
        ("::1:80", ALLOW_HINT),
        ("[::1]", ALLOW_HINT),
        ("10.0.0:80", ALLOW_HINT),
    ];
    for (s, hint) in cases {
        let e = net_allow(s).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some(hint), "{s}: {}", e.message);
    }
}

#[test]
fn net_allow_takes_host_names() {
    let cases = [
        ("example.com:443", "example.com", 443),
        ("API.Example.COM.:8443", "api.example.com", 8443),
        ("localhost:80", "localhost", 80),
        ("a-1.b2.io:1", "a-1.b2.io", 1),
    ];
    for (s, name, port) in cases {
        assert_eq!(
            net_allow(s).unwrap(),
            Allowed::Host(name.to_string(), port),
            "{s}"
        );
    }
}

#[test]
fn addr_pattern_parses_every_form_and_round_trips() {
    let cases = [
        "10.0.0.0/8:5432",
        "127.0.0.1:*",
        "[::1]:22",
        "[fd00::/8]:*",
        "db.internal:5432",
        "example.com:*",
        "/run/docker.sock",
        "/w/proj/**/*.sock",
        "@dbus-session",
    ];
    for s in cases {
        let a = addr_pattern(s, &vars()).unwrap();
        assert_eq!(addr_text(&a), s, "{a:?}");
        assert_eq!(addr_pattern(&addr_text(&a), &vars()).unwrap(), a);
    }
    let a = addr_pattern("${WORKSPACE}/s.sock", &vars()).unwrap();
    assert_eq!(addr_text(&a), "/w/proj/s.sock");
    let a = addr_pattern("10.0.0.0/8:*", &vars()).unwrap();
    let want = AddrPattern::Net {
        addr: "10.0.0.0".parse().unwrap(),
        prefix: 8,
        port: None,
    };
    assert_eq!(a, want);
}

#[test]
fn addr_pattern_rejects_with_hints() {
    let cases = [
        ("10.0.0.1/8:80", "write the network address: 10.0.0.0/8"),
        (
            "db:0",
            "a port is a number from 1 to 65535, or * for any port",
        ),
        ("db", ADDR_HINT),
        ("@", ADDR_HINT),
        ("/a/**x", ADDR_HINT),
        ("300.1.1.1:80", ADDR_HINT),
        ("under_score.com:80", ADDR_HINT),
        (
            "${NOPE}:80",
            "the variables are ${HOME}, ${WORKSPACE}, ${USER}",
        ),
    ];
    for (s, hint) in cases {
        let e = addr_pattern(s, &vars()).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some(hint), "{s}: {}", e.message);
    }
}
