//! The defaults per kind, with no rules: hide, grants, implicit grants, network modes.

use super::*;

#[test]
fn decide_defaults_follow_the_grants() {
    let p = base();
    let mut no_tmp = base();
    no_tmp.filesystem.tmp = TmpMode::None;
    // A read-only workspace under /tmp sits on top of the private /tmp: its grant decides.
    let mut ro_in_tmp = base();
    ro_in_tmp.filesystem.read.push("/tmp/ws".into());
    let cases: Vec<(&Policy, Event, Verdict, &str)> = vec![
        (
            &p,
            read("/w/.env"),
            deny(EACCES),
            "hidden by the policy (hide = \"/w/**/.env\")",
        ),
        (&p, write("/w/a/b/.env"), deny(EACCES), "hidden by"),
        (&p, read("/w/.env/below"), deny(EACCES), "hidden by"),
        (&p, read("/etc/shadow"), deny(EACCES), "hidden by"),
        (&p, exec("/w/bin/.env", "x"), deny(EACCES), "hidden by"),
        (&p, read("/etc/passwd"), ALLOW, "inside the read grant /etc"),
        (
            &p,
            write("/etc/passwd"),
            deny(EACCES),
            "outside the policy's write grants",
        ),
        (
            &p,
            read("/w/src/main.rs"),
            ALLOW,
            "inside the write grant /w",
        ),
        (
            &p,
            write("/w/src/main.rs"),
            ALLOW,
            "inside the write grant /w",
        ),
        (&p, write("/w"), ALLOW, "inside the write grant /w"),
        (
            &p,
            read("/opt/tools/t"),
            ALLOW,
            "inside the exec grant /opt/tools",
        ),
        (
            &p,
            write("/opt/tools/t"),
            deny(EACCES),
            "outside the policy's write grants",
        ),
        (
            &p,
            read("/home/u/x"),
            deny(EACCES),
            "outside the policy's read grants",
        ),
        (
            &p,
            read("/usrx"),
            deny(EACCES),
            "outside the policy's read grants",
        ),
        (
            &p,
            exec("/usr/bin/ls", "ls"),
            ALLOW,
            "inside the exec grant /usr/bin",
        ),
        (
            &p,
            exec("/w/bin/tool", "tool"),
            ALLOW,
            "inside the exec grant /w/bin",
        ),
        (
            &p,
            exec("/w/script", "x"),
            deny(EACCES),
            "outside the policy's exec grants",
        ),
        (
            &p,
            exec("/usr/lib/x", "x"),
            deny(EACCES),
            "outside the policy's exec grants",
        ),
        (
            &p,
            exec("/tmp/x", "x"),
            deny(EACCES),
            "outside the policy's exec grants",
        ),
        (
            &p,
            write("/dev/null"),
            ALLOW,
            "inside the implicit grant /dev/null",
        ),
        (
            &p,
            read("/dev/urandom"),
            ALLOW,
            "inside the implicit grant /dev/urandom",
        ),
        (
            &p,
            write("/dev/pts/3"),
            ALLOW,
            "inside the implicit grant /dev/pts",
        ),
        (
            &p,
            write("/dev/ptmx"),
            ALLOW,
            "inside the implicit grant /dev/ptmx",
        ),
        (&p, write("/tmp/x"), ALLOW, "inside the implicit grant /tmp"),
        (
            &ro_in_tmp,
            write("/tmp/ws/out/x"),
            deny(EACCES),
            "outside the policy's write grants (inside the read grant /tmp/ws)",
        ),
        (
            &ro_in_tmp,
            read("/tmp/ws/out/x"),
            ALLOW,
            "inside the read grant /tmp/ws",
        ),
        (
            &ro_in_tmp,
            write("/tmp/other"),
            ALLOW,
            "inside the implicit grant /tmp",
        ),
        (
            &p,
            write("/var/tmp/x"),
            ALLOW,
            "inside the implicit grant /var/tmp",
        ),
        (
            &p,
            write("/dev/shm/x"),
            ALLOW,
            "inside the implicit grant /dev/shm",
        ),
        (
            &no_tmp,
            write("/tmp/x"),
            deny(EACCES),
            "outside the policy's write grants",
        ),
        (
            &no_tmp,
            read("/tmp/x"),
            deny(EACCES),
            "outside the policy's read grants",
        ),
        (
            &p,
            read("/proc/self/status"),
            ALLOW,
            "inside the implicit read-only grant /proc",
        ),
        (
            &p,
            write("/proc/self/attr"),
            deny(EACCES),
            "outside the policy's write grants",
        ),
        (
            &p,
            read("/"),
            ALLOW,
            "inside the implicit read-only grant /",
        ),
        (&p, write("/"), deny(EACCES), "outside"),
        (
            &p,
            read("/dev"),
            ALLOW,
            "inside the implicit read-only grant /dev",
        ),
        (
            &p,
            read("/dev/sda"),
            deny(EACCES),
            "outside the policy's read grants",
        ),
        (
            &p,
            read("w/a"),
            deny(EACCES),
            "\"w/a\" is not an absolute, normalised path",
        ),
        (&p, read(""), deny(EACCES), "is not an absolute"),
        (&p, write("/w/../etc/x"), deny(EACCES), "is not an absolute"),
        (&p, exec("", ""), deny(EACCES), "is not an absolute"),
        (&p, exec("bin/ls", "ls"), deny(EACCES), "is not an absolute"),
    ];
    for (policy, event, verdict, reason) in cases {
        let d = decide(policy, &event);
        assert_eq!(d.verdict, verdict, "{event:?}: {}", d.reason);
        assert_eq!(d.rule_id, None, "{event:?}");
        assert!(d.reason.contains(reason), "{event:?}: {}", d.reason);
    }
}

#[test]
fn decide_connect_defaults_follow_the_network_mode() {
    let none = base();
    let mut filtered = base();
    filtered.network.mode = NetMode::Filtered;
    filtered.network.allow = vec![NetAllow {
        addr: "10.0.0.0".parse().unwrap(),
        prefix: 8,
        port: 443,
    }];
    let other = Event::Connect {
        addr: SockAddr::Other(16),
    };
    let cases: Vec<(&Policy, Event, Verdict)> = vec![
        (&none, inet("127.0.0.1:80"), ALLOW),
        (&none, inet("127.5.6.7:80"), ALLOW),
        (&none, inet("[::1]:80"), ALLOW),
        (&none, inet("[::ffff:127.0.0.1]:80"), ALLOW),
        (&none, inet("10.1.1.1:443"), deny(ENETUNREACH)),
        (&none, inet("[2001:db8::1]:443"), deny(ENETUNREACH)),
        (&none, unix("/run/x.sock"), ALLOW),
        (&none, abstract_("x"), ALLOW),
        (&none, other.clone(), deny(EACCES)),
        (&filtered, inet("10.1.1.1:443"), ALLOW),
        (&filtered, inet("10.1.1.1:80"), deny(ECONNREFUSED)),
        (&filtered, inet("11.1.1.1:443"), deny(ECONNREFUSED)),
        (&filtered, inet("127.0.0.1:443"), deny(ECONNREFUSED)),
        (&filtered, inet("[::1]:443"), deny(ECONNREFUSED)),
        (&filtered, unix("/run/x.sock"), ALLOW),
        (&filtered, abstract_("x"), ALLOW),
        (&filtered, other, deny(EACCES)),
    ];
    for (policy, event, verdict) in cases {
        let d = decide(policy, &event);
        assert_eq!(
            d.verdict, verdict,
            "{:?} {event:?}: {}",
            policy.network.mode, d.reason
        );
        assert_eq!(d.rule_id, None);
        assert!(!d.reason.is_empty());
    }
}
