//! The reference monitor: every exec, open and connect of a run is seen, decided by the policy's
//! rules and audited, whichever syscall variant issues it and whatever the agent rewrites while
//! the monitor looks. Every probe is first shown to work outside the sandbox.
//!
//! Rules deny with `EPERM` where the kernel walls would answer `EACCES` (or nothing at all), so
//! the errno a call fails with proves the monitor answered it.

use std::io::{ErrorKind, Read};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agentd_tests::caller::README_TEXT;
use agentd_tests::tempdir::{mkdir_owned, write_owned};
use agentd_tests::{require, Caller, Daemon, Output};
use serde_json::Value;

use crate::{audit, audit_path, check, check_code, display, start, write_policy};

const EPERM: i64 = 1;
const EACCES: i64 = 13;
const ECONNREFUSED: i64 = 111;
const EBUSY: i64 = 16;

/// `agentctl run --json-events --policy POLICY -- ARGV…` and the run's id (from the `started`
/// frame; empty if there was none, which the audit helpers report).
fn traced(c: &Caller, policy: &Path, argv: &[&str]) -> (Output, String) {
    let policy = display(policy);
    let mut args = vec!["run", "--json-events", "--policy", policy.as_str(), "--"];
    args.extend_from_slice(argv);
    let out = c.agentctl(&args);
    let run = frames(&out)
        .into_iter()
        .find(|f| f["type"] == "started")
        .and_then(|f| f["run"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (out, run)
}

/// The JSON frames `--json-events` printed on stderr.
fn frames(out: &Output) -> Vec<Value> {
    out.stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

/// A short form of a record for messages: `seq kind verdict path|addr rule errno by`.
fn brief(r: &Value) -> String {
    let what = r["path"].as_str().or(r["addr"].as_str()).unwrap_or("");
    format!(
        "{} {} {} {} rule={} errno={} by={}",
        r["seq"], r["kind"], r["verdict"], what, r["rule"], r["errno"], r["decided_by"]
    )
}

fn briefs<'a>(records: impl IntoIterator<Item = &'a Value>) -> String {
    records
        .into_iter()
        .map(brief)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value a `variant NAME VALUE` line of the probe printed.
fn variant<'a>(out: &'a Output, name: &str) -> Option<&'a str> {
    out.stdout.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("variant") && w.next() == Some(name))
            .then(|| w.next())
            .flatten()
    })
}

/// The counters a `race k=v …` line of the probe printed.
fn race_counts(out: &Output) -> std::collections::HashMap<String, u64> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("race "))
        .flat_map(|l| l.split_whitespace().skip(1))
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// A host listener on 127.0.0.1 that counts the connections it accepts until dropped.
struct Listener {
    port: u16,
    accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Listener {
    fn new() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (acc, st) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok(_) => {
                        acc.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(_) => {}
                }
            }
        });
        Listener {
            port,
            accepted,
            stop,
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Accepted so far, after giving the backlog a moment to drain.
    fn accepted(&self) -> u64 {
        std::thread::sleep(Duration::from_millis(200));
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A policy extending `default` with `extra` (rules, tables).
fn policy(d: &Daemon, name: &str, extra: &str) -> std::path::PathBuf {
    write_policy(
        d,
        name,
        &format!("version = 1\nextends = [\"default\"]\n{extra}"),
    )
}

/// A `[[rule]]` that denies with EPERM.
fn deny_rule(id: &str, on: &str, key: &str, value: &str) -> String {
    format!(
        "\n[[rule]]\nid = \"{id}\"\non = \"{on}\"\n{key} = \"{value}\"\naction = \"deny\"\n\
         errno = \"EPERM\"\nreason = \"e2e {id}\"\n"
    )
}

fn write_file(c: &Caller, name: &str, text: &str) {
    write_owned(
        &c.workspace.join(name),
        text.as_bytes(),
        0o644,
        c.uid,
        c.gid,
    );
}

const VARIANTS: [&str; 10] = [
    "openat2", "open", "openat", "creat", "execve", "execveat", "connect", "sendto", "sendmsg",
    "bind",
];

#[test]
fn monitor_denies_every_syscall_variant_with_rule_errno() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    let host = Listener::new();
    let addr = host.addr();
    let secret = "AGENTD-E2E-SECRET-denied-variants";
    let argv = [
        probe.as_str(),
        "variants",
        "denied.txt",
        "/usr/bin/id",
        &addr,
    ];

    write_file(&c, "denied.txt", secret);
    let out = c.unconfined(&argv);
    for v in VARIANTS {
        check(
            &d,
            &out,
            variant(&out, v) == Some("ok"),
            &format!("unconfined: variant {v} must succeed (else the probe proves nothing)"),
        );
    }
    write_file(&c, "denied.txt", secret); // creat truncated it

    let rules = deny_rule("deny-file", "open", "path", "${WORKSPACE}/denied.txt")
        + &deny_rule("deny-exe", "exec", "path", "/usr/bin/id")
        + &deny_rule("deny-addr", "connect", "addr", &addr);
    let p = policy(&d, "variants", &rules);
    let (out, run) = traced(&c, &p, &argv);
    check_code(&d, &out, 0, "the variants probe");
    for v in VARIANTS {
        check(
            &d,
            &out,
            variant(&out, v) == Some("errno:1"),
            &format!("variant {v} must fail with the rule's EPERM"),
        );
    }
    let left = std::fs::read_to_string(c.workspace.join("denied.txt")).unwrap_or_default();
    check(
        &d,
        &out,
        left == secret,
        "creat must not have truncated the denied file",
    );

    let records = audit(&d, &out, &run);
    let file = display(&c.workspace.join("denied.txt"));
    let denied = |kind: &str, rule: &str, what: &str| {
        records
            .iter()
            .filter(|r| {
                r["kind"] == kind
                    && r["verdict"] == "deny"
                    && r["rule"] == rule
                    && r["errno"] == EPERM
                    && (r["path"] == what || r["addr"] == what)
            })
            .count()
    };
    let all = briefs(records.iter().filter(|r| r["verdict"] == "deny"));
    for (kind, rule, what, n) in [
        ("open", "deny-file", file.as_str(), 4),
        ("exec", "deny-exe", "/usr/bin/id", 2),
        ("connect", "deny-addr", addr.as_str(), 4),
    ] {
        let got = denied(kind, rule, what);
        check(
            &d,
            &out,
            got == n,
            &format!("{n} deny records ({kind} {what} rule {rule}) expected, got {got}; deny records:\n{all}"),
        );
    }
    check(
        &d,
        &out,
        !records
            .iter()
            .any(|r| r["path"] == file.as_str() && r["verdict"] != "deny"),
        &format!("no variant may reach the denied file:\n{all}"),
    );
}

#[test]
fn monitor_open_race_never_reads_the_denied_file() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    let marker = "AGENTD-E2E-SECRET-race";
    write_file(&c, "race-ok", "an ordinary file\n");
    write_file(&c, "race-no", &format!("{marker}\n"));

    let out = c.unconfined(&[
        &probe,
        "race-open",
        "race-ok",
        "race-no",
        marker,
        "200000",
        "10",
    ]);
    let n = race_counts(&out);
    check(
        &d,
        &out,
        n.get("leaked").copied().unwrap_or(0) >= 1,
        "unconfined: the flipping probe must read the secret at least once (else it is not live)",
    );

    let p = policy(
        &d,
        "race-open",
        &deny_rule("deny-race", "open", "path", "${WORKSPACE}/race-no"),
    );
    let (out, _) = traced(
        &c,
        &p,
        &[
            &probe,
            "race-open",
            "race-ok",
            "race-no",
            marker,
            "20000",
            "10",
        ],
    );
    check_code(&d, &out, 0, "the race probe");
    let n = race_counts(&out);
    let get = |k: &str| n.get(k).copied().unwrap_or(0);
    check(
        &d,
        &out,
        get("attempts") >= 1000,
        "at least 1000 racing opens",
    );
    check(
        &d,
        &out,
        get("leaked") == 0,
        "a racing open read the denied file",
    );
    check(
        &d,
        &out,
        get("opened") > 0 && get("denied") > 0,
        "both names must have been seen (the flip must be live inside too)",
    );
    check(&d, &out, !out.stdout.contains(marker), "the secret leaked");
}

#[test]
fn monitor_connect_race_never_reaches_the_denied_address() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    // Unconfined first: the probe's own two listeners, the flipped port reaches both.
    let out = c.unconfined(&[&probe, "race-connect", "0", "0", "5000", "10"]);
    let n = race_counts(&out);
    check(
        &d,
        &out,
        n.get("b_peer").copied().unwrap_or(0) >= 1
            && n.get("b_accepted").copied().unwrap_or(0) >= 1,
        "unconfined: the flipping probe must reach port B at least once (else it is not live)",
    );

    // Inside, the listeners are the test's, on the host's loopback (mode "filtered"): a deny
    // rule on B's address also refuses a bind to it, so the run could not listen there itself.
    // Both ports are allowed (so Landlock's port wall lets B through): only the monitor's rule
    // stands between the agent and B.
    let (a, b) = (Listener::new(), Listener::new());
    let extra = format!(
        "[network]\nmode = \"filtered\"\nallow = [\"{}\", \"{}\"]\n{}",
        a.addr(),
        b.addr(),
        deny_rule("deny-b", "connect", "addr", &b.addr())
    );
    let p = policy(&d, "race-connect", &extra);
    let (pa, pb) = (a.port.to_string(), b.port.to_string());
    let (out, _) = traced(
        &c,
        &p,
        &[&probe, "race-connect-to", &pa, &pb, "10000", "10"],
    );
    check_code(&d, &out, 0, "the connect race probe");
    let n = race_counts(&out);
    let get = |k: &str| n.get(k).copied().unwrap_or(0);
    check(
        &d,
        &out,
        get("attempts") >= 1000,
        "at least 1000 racing connects",
    );
    check(
        &d,
        &out,
        get("b_peer") == 0,
        "a racing connect reached the denied port",
    );
    check(
        &d,
        &out,
        b.accepted() == 0,
        "the denied listener accepted a connection",
    );
    check(
        &d,
        &out,
        get("a_peer") > 0 && get("denied") > 0 && a.accepted() > 0,
        "both ports must have been seen (the flip must be live inside too)",
    );
}

#[test]
fn monitor_cannot_be_outvoted_by_a_second_listener() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    let out = c.unconfined(&[&probe, "seccomp-listener"]);
    check(
        &d,
        &out,
        out.stdout.trim() == "seccomp ok",
        "unconfined: a process can install a filter with a listener",
    );
    let p = policy(
        &d,
        "outvote",
        &deny_rule("deny-file", "open", "path", "${WORKSPACE}/denied.txt"),
    );
    write_file(&c, "denied.txt", "AGENTD-E2E-SECRET-outvote");
    let script = format!("{probe} seccomp-listener; cat denied.txt");
    let (out, _) = traced(&c, &p, &["sh", "-c", &script]);
    check(
        &d,
        &out,
        out.stdout.lines().next() == Some(&format!("seccomp errno:{EBUSY}")),
        "a second listener inside the run must fail with EBUSY",
    );
    check(
        &d,
        &out,
        out.code() != 0 && out.stderr.contains("Operation not permitted"),
        "the rule still holds after the attempt",
    );
}

#[test]
fn monitor_workspace_rules_hold_and_listing_works() {
    require!(sandbox);
    let (d, c) = start();
    let secret = "AGENTD-E2E-SECRET-conf";
    mkdir_owned(&c.workspace.join("conf"), 0o755, c.uid, c.gid);
    write_file(&c, "conf/app.secret", secret);
    write_file(&c, "conf/app.toml", "name = \"app\"\n");
    let out = c.unconfined(&["cat", ".env", "conf/app.secret"]);
    check_code(&d, &out, 0, "unconfined: the caller reads both secrets");

    let p = policy(
        &d,
        "workspace",
        &deny_rule("deny-conf", "open", "path", "${WORKSPACE}/conf/*.secret"),
    );
    let out = c.run_policy(&p, &["cat", ".env"]);
    check(
        &d,
        &out,
        out.code() == 1 && !out.stdout.contains("AGENTD-E2E"),
        "cat .env (hidden) must fail",
    );
    let out = c.run_policy(&p, &["cat", "conf/app.secret"]);
    check(
        &d,
        &out,
        out.code() == 1
            && out.stderr.contains("Operation not permitted")
            && !out.stdout.contains(secret),
        "cat of a deny-ruled file must fail with the rule's EPERM",
    );
    let out = c.run_policy(&p, &["ls", "-a", ".", "conf"]);
    check_code(&d, &out, 0, "ls of the directories of the denied files");
    for name in ["README.md", "app.secret", "app.toml"] {
        check(
            &d,
            &out,
            out.stdout.contains(name),
            &format!("ls shows {name}"),
        );
    }
    let out = c.run_policy(&p, &["cat", "conf/app.toml", "README.md"]);
    check(
        &d,
        &out,
        out.success() && out.stdout.contains(README_TEXT),
        "the files beside them stay readable",
    );
}

#[test]
fn monitor_exec_rule_denies_with_its_errno() {
    require!(sandbox);
    let (d, c) = start();
    let out = c.unconfined(&["/usr/bin/id", "-u"]);
    check_code(&d, &out, 0, "unconfined: id runs");
    let p = policy(
        &d,
        "exec",
        &deny_rule("deny-id", "exec", "path", "/usr/bin/id"),
    );
    let (out, run) = traced(&c, &p, &["sh", "-c", "uname -s; id -u"]);
    check(
        &d,
        &out,
        out.stdout.contains("Linux")
            && out.code() != 0
            && out.stderr.contains("Operation not permitted"),
        "uname runs, id fails with the rule's EPERM",
    );
    let records = audit(&d, &out, &run);
    check(
        &d,
        &out,
        records.iter().any(|r| {
            r["kind"] == "exec"
                && r["path"] == "/usr/bin/id"
                && r["verdict"] == "deny"
                && r["rule"] == "deny-id"
                && r["errno"] == EPERM
        }),
        &format!("an exec deny record for /usr/bin/id:\n{}", briefs(&records)),
    );
}

/// An argv too long for the monitor to read whole is never judged on its beginning where an
/// argv rule applies: `printf` with 40,000 arguments and `--force` last is refused (E2BIG),
/// not let past the `*--force*` rule; a program no argv rule names still runs, its record
/// marked `truncated`.
#[test]
fn monitor_exec_argv_past_what_is_read_cannot_slip_past_an_argv_rule() {
    require!(sandbox);
    let (d, c) = start();
    // Past the count (40,000 arguments), then past the bytes (3 × 100,000 bytes) read.
    let many = "$(seq 40000)";
    let big = "\"$b\" \"$b\" \"$b\"";
    let script = format!(
        "b=$(printf '%100000s' x); \
         /usr/bin/printf '%.0s' x --force || echo short-refused; \
         /usr/bin/printf '%.0s' {many} --force || echo long-refused; \
         /usr/bin/printf '%.0s' {big} --force || echo bytes-refused; \
         /usr/bin/true {many} && echo long-true-ran; \
         /usr/bin/true {big} && echo bytes-true-ran"
    );
    let out = c.unconfined(&["sh", "-c", &script]);
    check(
        &d,
        &out,
        !out.stdout.contains("refused")
            && out.stdout.contains("long-true-ran")
            && out.stdout.contains("bytes-true-ran"),
        "unconfined: the long argv is accepted by the kernel",
    );
    let rule = "\n[[rule]]\nid = \"no-force\"\non = \"exec\"\npath = \"/usr/bin/printf\"\n\
                argv = \"*--force*\"\naction = \"deny\"\nerrno = \"EPERM\"\nreason = \"e2e\"\n";
    let p = policy(&d, "argv-cut", rule);
    let (out, run) = traced(&c, &p, &["sh", "-c", &script]);
    check(
        &d,
        &out,
        out.stdout.contains("short-refused")
            && out.stdout.contains("long-refused")
            && out.stdout.contains("bytes-refused")
            && out.stdout.contains("long-true-ran")
            && out.stdout.contains("bytes-true-ran")
            && out.stderr.contains("Argument list too long"),
        "the argv rule holds for the short and the long argv; true runs",
    );
    let records = audit(&d, &out, &run);
    let execs = |path: &str| -> Vec<&Value> {
        records
            .iter()
            .filter(|r| r["kind"] == "exec" && r["path"] == path)
            .collect()
    };
    let printf = execs("/usr/bin/printf");
    check(
        &d,
        &out,
        printf.len() == 3
            && printf[0]["rule"] == "no-force"
            && printf[0]["errno"] == EPERM
            && printf[1..]
                .iter()
                .all(|r| r["verdict"] == "deny" && r["errno"] == 7 && r["truncated"] == true),
        &format!(
            "printf: denied by the rule, then twice E2BIG and truncated:\n{}",
            briefs(printf.iter().copied())
        ),
    );
    let long_true = execs("/usr/bin/true");
    check(
        &d,
        &out,
        long_true.len() == 2
            && long_true
                .iter()
                .all(|r| r["verdict"] == "allow" && r["truncated"] == true),
        &format!(
            "true: allowed, truncated:\n{}",
            briefs(long_true.iter().copied())
        ),
    );
}

/// The agent's own `openat2` containment holds under the monitor: `RESOLVE_BENEATH` refuses a
/// `..` out of the directory (EXDEV) and `RESOLVE_IN_ROOT` keeps `/` and `..` inside it, as
/// they do unconfined (emulated from the run's root, both used to reach the file outside).
#[test]
fn monitor_openat2_keeps_the_agents_own_containment() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    let sub = c.workspace.join("sub");
    std::fs::create_dir(&sub).unwrap();
    agentd_tests::tempdir::chown(&sub, c.uid, c.gid);
    write_file(&c, "sub/inner.txt", "inner-text\n");
    write_file(&c, "sub/denied.txt", "denied-text\n");
    write_file(&c, "outside.txt", "outside-text\n");
    // (mode, path, unconfined, confined): the same, but for the file a rule denies.
    let cases: [(&str, &str, &str, &str); 7] = [
        ("beneath", "inner.txt", "read inner-text", "read inner-text"),
        ("beneath", "../outside.txt", "errno:18", "errno:18"),
        ("beneath", "/etc/hostname", "errno:18", "errno:18"),
        (
            "in-root",
            "/inner.txt",
            "read inner-text",
            "read inner-text",
        ),
        ("in-root", "../outside.txt", "errno:2", "errno:2"),
        ("in-root", "../../../etc/hostname", "errno:2", "errno:2"),
        ("in-root", "/denied.txt", "read denied-text", "errno:1"),
    ];
    let script: String = cases
        .iter()
        .map(|(mode, path, _, _)| format!("{probe} openat2 {mode} sub {path}; "))
        .collect();
    let p = policy(
        &d,
        "contained",
        &deny_rule("deny-sub", "open", "path", "${WORKSPACE}/sub/denied.txt"),
    );
    let mut last = None;
    for confined in [false, true] {
        let (out, run) = if confined {
            traced(&c, &p, &["sh", "-c", &script])
        } else {
            (c.unconfined(&["sh", "-c", &script]), String::new())
        };
        let lines: Vec<&str> = out.stdout.lines().collect();
        let want: Vec<&str> = cases
            .iter()
            .map(|(_, _, u, c)| if confined { *c } else { *u })
            .collect();
        check(
            &d,
            &out,
            lines == want,
            &format!("confined={confined}: want {want:?}, got {lines:?}"),
        );
        last = Some((out, run));
    }
    // Judged by the real path the contained resolution reached.
    let (out, run) = last.unwrap();
    let records = audit(&d, &out, &run);
    let inner = display(&sub.join("inner.txt"));
    let denied = display(&sub.join("denied.txt"));
    let opens = |path: &str, verdict: &str| {
        records
            .iter()
            .filter(|r| r["kind"] == "open" && r["path"] == path && r["verdict"] == verdict)
            .count()
    };
    assert!(
        opens(&inner, "allow") == 2 && opens(&denied, "deny") == 1,
        "records of the contained opens:\n{}\n--- agentd log ---\n{}",
        briefs(&records),
        d.log()
    );
}

#[test]
fn monitor_filtered_connect_follows_the_allow_list_and_host_names() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    let (a, b, host) = (Listener::new(), Listener::new(), Listener::new());
    let by_name = format!("localhost:{}", host.port);
    for target in [a.addr(), b.addr(), host.addr()] {
        let out = c.unconfined(&[&probe, "connect-tcp", &target]);
        check_code(&d, &out, 0, &format!("unconfined: {target} is reachable"));
    }
    let extra = format!(
        "[network]\nmode = \"filtered\"\nallow = [\"{}\", \"{by_name}\"]\n",
        a.addr()
    );
    let p = policy(&d, "filtered", &extra);
    let (out, run) = traced(&c, &p, &[&probe, "connect-tcp", &a.addr()]);
    check_code(&d, &out, 0, "connect to an allowed address");
    let records = audit(&d, &out, &run);
    check(
        &d,
        &out,
        records.iter().any(|r| {
            r["kind"] == "connect" && r["addr"] == a.addr().as_str() && r["verdict"] == "allow"
        }),
        &format!("an allow record for {}:\n{}", a.addr(), briefs(&records)),
    );

    let (out, run) = traced(&c, &p, &[&probe, "connect-tcp", &host.addr()]);
    check_code(
        &d,
        &out,
        0,
        "connect to the address of an allowed host name (/etc/hosts)",
    );
    let records = audit(&d, &out, &run);
    check(
        &d,
        &out,
        records.iter().any(|r| {
            r["kind"] == "connect"
                && r["addr"] == host.addr().as_str()
                && r["verdict"] == "allow"
                && r["rule"].as_str().is_some_and(|id| id.contains(&by_name))
        }),
        &format!(
            "an allow record for {} by the host-name rule:\n{}",
            host.addr(),
            briefs(&records)
        ),
    );
    let (out, _) = traced(&c, &p, &[&probe, "connect-host", &by_name]);
    check_code(&d, &out, 0, "connect by name, resolved inside the run");

    let before = b.accepted();
    let (out, run) = traced(&c, &p, &[&probe, "connect-tcp", &b.addr()]);
    check(
        &d,
        &out,
        out.code() == 1 && out.stdout.contains("refused"),
        "connect outside the allow list must be refused",
    );
    let records = audit(&d, &out, &run);
    check(
        &d,
        &out,
        records.iter().any(|r| {
            r["kind"] == "connect"
                && r["addr"] == b.addr().as_str()
                && r["verdict"] == "deny"
                && r["errno"] == ECONNREFUSED
        }),
        &format!(
            "a deny ECONNREFUSED record for {}:\n{}",
            b.addr(),
            briefs(&records)
        ),
    );
    check(
        &d,
        &out,
        b.accepted() == before,
        "the refused listener accepted nothing",
    );
}

#[test]
fn monitor_audit_of_a_scripted_run_is_exact_and_verifiable() {
    require!(sandbox);
    let (d, c) = start();
    let host = Listener::new();
    write_file(&c, "ok.txt", "fine\n");
    write_file(&c, "denied.txt", "AGENTD-E2E-SECRET-script\n");
    let script = format!(
        "cat ok.txt; cat denied.txt; exec 3<>/dev/tcp/127.0.0.1/{}",
        host.port
    );
    let out = c.unconfined(&["bash", "-c", &script]);
    check_code(&d, &out, 0, "unconfined: the script runs");

    let extra = format!(
        "[network]\nmode = \"filtered\"\nallow = [\"{}\"]\n{}",
        host.addr(),
        deny_rule("deny-file", "open", "path", "${WORKSPACE}/denied.txt")
    );
    let p = policy(&d, "script", &extra);
    let (out, run) = traced(&c, &p, &["bash", "-c", &script]);
    check(
        &d,
        &out,
        out.success() && out.stdout.contains("fine") && !out.stdout.contains("SECRET"),
        "the script under the policy",
    );
    let records = audit(&d, &out, &run);
    let ws = format!("{}/", display(&c.workspace));
    let seen: Vec<String> = records
        .iter()
        .filter(|r| {
            let path = r["path"].as_str().unwrap_or("");
            (r["kind"] == "exec" && path.ends_with("/cat"))
                || (r["kind"] == "open" && path.starts_with(&ws))
                || (r["kind"] == "connect" && !r["addr"].as_str().unwrap_or("").starts_with('/'))
        })
        .map(|r| {
            let what = r["path"].as_str().or(r["addr"].as_str()).unwrap_or("");
            format!(
                "{} {} {}",
                r["kind"].as_str().unwrap_or(""),
                what.strip_prefix(&ws).unwrap_or(what),
                r["verdict"].as_str().unwrap_or("")
            )
        })
        .collect();
    let want = [
        "exec /usr/bin/cat allow".to_owned(),
        "open ok.txt allow".to_owned(),
        "exec /usr/bin/cat allow".to_owned(),
        "open denied.txt deny".to_owned(),
        format!("connect {} allow", host.addr()),
    ];
    check(
        &d,
        &out,
        seen == want,
        &format!(
            "expected records {want:#?}\ngot {seen:#?}\nall:\n{}",
            briefs(&records)
        ),
    );
    let kinds: Vec<&str> = records.iter().filter_map(|r| r["kind"].as_str()).collect();
    check(
        &d,
        &out,
        kinds.first() == Some(&"run_start") && kinds.last() == Some(&"run_end"),
        "the log runs from run_start to run_end",
    );
    let seqs: Vec<u64> = records.iter().filter_map(|r| r["seq"].as_u64()).collect();
    check(
        &d,
        &out,
        seqs == (1..=records.len() as u64).collect::<Vec<_>>(),
        "seq counts 1, 2, 3…",
    );

    let verify = c.agentctl(&["audit", &run, "--verify"]);
    check_code(&d, &verify, 0, "audit --verify of the untouched log");

    // One byte changed in a middle record: the deny of denied.txt.
    let target = records
        .iter()
        .find(|r| r["kind"] == "open" && r["verdict"] == "deny" && r["rule"] == "deny-file")
        .and_then(|r| r["seq"].as_u64())
        .unwrap_or(0);
    check(
        &d,
        &out,
        target > 1 && usize::try_from(target).is_ok_and(|t| t < records.len()),
        "the deny record is a middle record",
    );
    let path = audit_path(&d, &run);
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let start_of = |n: u64| -> usize {
        let mut at = 0;
        for _ in 1..n {
            at += bytes[at..].iter().position(|&b| b == b'\n').unwrap() + 1;
        }
        at
    };
    let line_start = start_of(target);
    let line = &bytes[line_start..];
    let needle = b"denied.txt";
    let off = line
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[line_start + off] = b'D';
    std::fs::write(&path, &bytes).unwrap();
    let verify = c.agentctl(&["audit", &run, "--verify"]);
    let text = format!("{}{}", verify.stdout, verify.stderr);
    check(
        &d,
        &verify,
        verify.code() == 1 && text.contains(&format!("record {target}")),
        &format!("audit --verify must fail naming record {target}"),
    );
}

#[test]
fn monitor_ask_without_approver_times_out_to_deny() {
    require!(sandbox);
    let (d, c) = start();
    write_file(&c, "ask.txt", "asked\n");
    let extra = "[approval]\ntimeout = \"1s\"\n\n[[rule]]\nid = \"ask-file\"\non = \"open\"\n\
                 path = \"${WORKSPACE}/ask.txt\"\naction = \"ask\"\nreason = \"e2e ask\"\n";
    let p = policy(&d, "ask", extra);
    let (out, run) = traced(&c, &p, &["cat", "ask.txt"]);
    check(
        &d,
        &out,
        out.code() == 1
            && out.stderr.contains("Permission denied")
            && !out.stdout.contains("asked"),
        "the open must fail with EACCES when nobody answers",
    );
    check(
        &d,
        &out,
        out.elapsed >= Duration::from_millis(900) && out.elapsed < Duration::from_secs(15),
        &format!(
            "the answer must come after about 1 s, took {:?}",
            out.elapsed
        ),
    );
    let records = audit(&d, &out, &run);
    let ask: Vec<&Value> = records
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/ask.txt")))
        .collect();
    let ok = ask.len() == 2
        && ask[0]["verdict"] == "ask"
        && ask[0]["rule"] == "ask-file"
        && ask[1]["verdict"] == "deny"
        && ask[1]["decided_by"] == "timeout"
        && ask[1]["errno"] == EACCES;
    check(
        &d,
        &out,
        ok,
        &format!("an ask record, then a deny by timeout:\n{}", briefs(ask)),
    );
}

#[test]
fn monitor_json_events_prints_records_on_stderr() {
    require!(sandbox);
    let (d, c) = start();
    let p = policy(&d, "events", "");
    let (out, run) = traced(&c, &p, &["sh", "-c", "cat README.md; cat README.md"]);
    check_code(
        &d,
        &out,
        0,
        "sh -c 'cat README.md; cat README.md' with --json-events",
    );
    check(
        &d,
        &out,
        out.stdout.contains(README_TEXT),
        "stdout is the file",
    );
    let events: Vec<Value> = frames(&out)
        .into_iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["record"].clone())
        .collect();
    let readme = |r: &&Value| {
        r["kind"] == "open"
            && r["verdict"] == "allow"
            && r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/README.md"))
    };
    check(
        &d,
        &out,
        events.iter().filter(readme).count() == 2,
        "two open allow events for README.md",
    );
    check(
        &d,
        &out,
        events
            .iter()
            .any(|r| r["kind"] == "exec" && r["verdict"] == "allow"),
        "an exec event with its verdict",
    );
    // "prints each record as it is written" (docs/audit.md): every decision of the log is
    // among the events, the agent's own first exec and the last decisions included.
    let shown: Vec<u64> = events.iter().filter_map(|r| r["seq"].as_u64()).collect();
    let missing: Vec<String> = audit(&d, &out, &run)
        .iter()
        .filter(|r| ["exec", "open", "connect"].iter().any(|k| r["kind"] == *k))
        .filter(|r| r["seq"].as_u64().is_some_and(|s| !shown.contains(&s)))
        .map(brief)
        .collect();
    check(
        &d,
        &out,
        missing.is_empty(),
        &format!(
            "decisions missing from --json-events:\n{}",
            missing.join("\n")
        ),
    );
}

#[test]
fn monitor_ordinary_workload_runs_under_default_policy() {
    require!(sandbox);
    let (d, c) = start();
    let script = "for i in $(seq 200); do cat README.md >/dev/null; done; ls -la; \
                  mkdir d; echo x > d/f; cat d/f; rm -r d";
    let out = c.sh(script);
    check_code(&d, &out, 0, "an ordinary workload");
    check(&d, &out, out.stdout.contains("README.md"), "ls -la output");
    check(&d, &out, !c.workspace.join("d").exists(), "d removed");
}

/// Review finding (critical): paths through the agent's own magic links must never lead the
/// monitor out of the run's view nor past the policy. `/proc/self/fd/../../self/root/…` once
/// walked the host from the daemon's own /proc; `/proc/self/cwd/<file>` skipped open rules.
#[test]
fn monitor_magic_link_paths_neither_leave_the_view_nor_skip_rules() {
    require!(sandbox);
    let (d, c) = start();
    let secret = "AGENTD-E2E-SECRET-magic";
    write_file(&c, "denied.txt", secret);
    let key = display(&c.home.join(".ssh/id_ed25519"));
    let escape = format!("/proc/self/fd/../../self/root{key}");
    let via_cwd = "/proc/self/cwd/denied.txt";
    let via_fd = "exec 3<.; cat /dev/fd/3/denied.txt";
    // Live unconfined: each path reaches its file for an ordinary process.
    let out = c.unconfined(&["cat", &escape]);
    check(
        &d,
        &out,
        out.stdout.contains("AGENTD-E2E-SECRET"),
        "unconfined: the escape path reads the key",
    );
    let out = c.unconfined(&["cat", via_cwd]);
    check(
        &d,
        &out,
        out.stdout.contains(secret),
        "unconfined: /proc/self/cwd reads the file",
    );
    let out = c.unconfined(&["bash", "-c", via_fd]);
    check(
        &d,
        &out,
        out.stdout.contains(secret),
        "unconfined: /dev/fd/N/file reads the file",
    );

    let p = policy(
        &d,
        "magic",
        &deny_rule("deny-file", "open", "path", "${WORKSPACE}/denied.txt"),
    );
    let out = c.run_policy(&p, &["cat", &escape]);
    check(
        &d,
        &out,
        out.code() == 1 && !out.stdout.contains("AGENTD-E2E-SECRET"),
        "the host key must stay out of reach through /proc/self/fd/../..",
    );
    let out = c.run_policy(&p, &["cat", via_cwd]);
    check(
        &d,
        &out,
        out.code() == 1
            && out.stderr.contains("Operation not permitted")
            && !out.stdout.contains(secret),
        "the deny rule must hold through /proc/self/cwd",
    );
    let out = c.run_policy(&p, &["bash", "-c", via_fd]);
    check(
        &d,
        &out,
        out.code() != 0
            && out.stderr.contains("Operation not permitted")
            && !out.stdout.contains(secret),
        "the deny rule must hold through /dev/fd/N/…",
    );
    let out = c.run_policy(
        &p,
        &[
            "bash",
            "-c",
            "echo ok | cat /dev/stdin; cat < README.md > /dev/stdout",
        ],
    );
    check_code(&d, &out, 0, "the agent's own descriptors still re-open");
}

/// Review finding: a socket listening on the host network (filtered mode) is a way in for
/// anyone who can reach the host. `listen` is emulated and refused there; in the run's own
/// network namespace (`none`) a server still binds 0.0.0.0 and listens.
#[test]
fn monitor_listen_is_refused_on_the_host_network_only() {
    require!(sandbox);
    let (d, c) = start();
    // No bind: listen() autobinds a port, the way the review's exploit did it.
    let autobind =
        "import socket\ns = socket.socket()\ns.listen(1)\nprint('listening', s.getsockname()[1])\n";
    let server = "import socket\ns = socket.socket()\ns.bind(('0.0.0.0', 0))\ns.listen(1)\nprint('listening', s.getsockname()[1])\n";
    for script in [autobind, server] {
        let out = c.unconfined(&["/usr/bin/python3", "-c", script]);
        check(
            &d,
            &out,
            out.success() && out.stdout.contains("listening"),
            "unconfined: python listens",
        );
    }
    let filtered = policy(&d, "listen-filtered", "\n[network]\nmode = \"filtered\"\n");
    let out = c.run_policy(&filtered, &["/usr/bin/python3", "-c", autobind]);
    check(
        &d,
        &out,
        !out.success()
            && !out.stdout.contains("listening")
            && out.stderr.contains("PermissionError"),
        "filtered mode: an IP socket must not listen on the host network",
    );
    let none = policy(&d, "listen-none", "");
    for script in [autobind, server] {
        let out = c.run_policy(&none, &["/usr/bin/python3", "-c", script]);
        check(
            &d,
            &out,
            out.success() && out.stdout.contains("listening"),
            "network none: a server listens inside the run's own namespace",
        );
    }
}

/// Opens the monitor carries out itself must mean what the kernel's would: a FIFO's open
/// waits for its other end (which is another call of the same run: the monitor must not wait
/// with it), `name/` needs a directory, and a symlink made during the run is judged by the
/// file it reaches, whatever its own name (those present at launch under a hidden name are
/// masked themselves).
#[test]
fn monitor_emulated_opens_keep_their_meaning() {
    require!(sandbox);
    let (d, c) = start();
    write_file(&c, "plain.txt", "plain-text\n");
    let script = "mkfifo p1 p2; \
                  (echo writer-first > p1 &); timeout 10 cat p1; echo rc1=$?; \
                  (timeout 10 cat p2 &); sleep 0.3; echo reader-first > p2; wait; \
                  cat plain.txt/ 2>&1; echo rc2=$?; \
                  ln -s .env innocent.txt; cat innocent.txt 2>&1; echo rc3=$?; \
                  ln -s plain.txt late.env; cat late.env; echo rc4=$?; \
                  (echo x > new.txt/) 2>&1; test -e new.txt && echo created-new.txt; \
                  python3 -c 'import os\nos.close(os.open(\"mode.txt\", os.O_CREAT | os.O_WRONLY, 0o100644)); print(\"mode-ok\", oct(os.stat(\"mode.txt\").st_mode & 0o777))\ntry: os.open(\"nothere\", os.O_PATH | os.O_CREAT)\nexcept OSError as e: print(\"opath-create\", e.errno)\nos.close(os.open(\"plain.txt\", os.O_RDONLY | 0x40000000)); print(\"unknown-flag-ok\")'; \
                  rm -f p1 p2 innocent.txt late.env new.txt mode.txt";
    let unconfined = c.unconfined_sh(script);
    check(
        &d,
        &unconfined,
        unconfined.stdout.contains("writer-first")
            && unconfined.stdout.contains("rc3=0")
            && unconfined.stdout.contains("Is a directory")
            && unconfined.stdout.contains("mode-ok 0o644")
            && unconfined.stdout.contains("opath-create 2")
            && unconfined.stdout.contains("unknown-flag-ok"),
        "unconfined: both FIFO orders work, the symlinks are readable, `new.txt/` is EISDIR",
    );
    let out = c.sh(script);
    for want in [
        "writer-first",
        "rc1=0",
        "reader-first",
        "Not a directory",
        "rc2=1",
        "Permission denied",
        "rc3=1",
        "plain-text",
        "rc4=0",
        "Is a directory",
        "mode-ok 0o644",
        "opath-create 2",
        "unknown-flag-ok",
    ] {
        check(
            &d,
            &out,
            out.stdout.contains(want),
            &format!(
                "confined output holds {want:?} (FIFOs both ways, `plain.txt/` \
                      is ENOTDIR, a symlink to .env is refused, a .env-named symlink to a \
                      plain file is not)"
            ),
        );
    }
    check(
        &d,
        &out,
        !out.stdout.contains("AGENTD-E2E") && !out.stdout.contains("created-new.txt"),
        "the hidden .env never shows; `new.txt/` creates nothing",
    );
}

/// `/dev/tty` opened by the monitor would be the daemon's terminal (it has none: ENXIO); it
/// must be the run's own terminal, and a run without one still gets ENXIO.
#[test]
fn monitor_dev_tty_is_the_runs_terminal() {
    require!(sandbox);
    let (d, c) = start();
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: script(1) (util-linux) is not installed: no way to give agentctl a pty");
        return;
    }
    // Also through openat2(RESOLVE_BENEATH) from /dev, which the monitor resolves another way.
    let probe = display(&c.install_probe());
    let inner = format!(
        "{} --socket {} run -- sh -c 'echo via-dev-tty > /dev/tty; echo rc=$?; \
         {probe} openat2 beneath /dev tty via-openat2-tty'",
        agentd_tests::bins::agentctl().display(),
        d.socket().display()
    );
    let mut cmd = c.command("script");
    cmd.args(["-qec", &inner, "/dev/null"]);
    let out = agentd_tests::command::run(cmd, b"", agentd_tests::command::TIMEOUT);
    check(
        &d,
        &out,
        out.stdout.contains("via-dev-tty")
            && out.stdout.contains("rc=0")
            && out.stdout.contains("via-openat2-tty")
            && out.stdout.contains("wrote"),
        "in a pty run, /dev/tty is the run's terminal (opened directly or through openat2)",
    );
    let out = c.sh("echo x > /dev/tty; echo rc=$?");
    check(
        &d,
        &out,
        out.stdout.contains("rc=2") && out.stderr.contains("No such device or address"),
        "without a terminal, /dev/tty fails with ENXIO as the kernel's would",
    );
}

/// A file the monitor opens for the agent keeps the opener's credentials, and procfs checks
/// them: the monitor must hold no capability that changes what a file shows. Here
/// `/proc/self/pagemap`, which shows physical frame numbers only to CAP_SYS_ADMIN openers, and
/// `/proc/1/{environ,mem}` of the run's root-owned init.
#[test]
fn monitor_opens_carry_no_daemon_capability() {
    require!(sandbox);
    let (d, c) = start();
    let script = "import ctypes\n\
                  buf = ctypes.create_string_buffer(4096); buf[0] = b'x'\n\
                  page = ctypes.addressof(buf) // 4096\n\
                  with open('/proc/self/pagemap', 'rb') as f:\n    \
                  f.seek(page * 8); e = int.from_bytes(f.read(8), 'little')\n\
                  print('present', (e >> 63) & 1, 'pfn', 'nonzero' if e & ((1 << 55) - 1) else 'zero')\n";
    let root = Caller::root(&d);
    let live = root.unconfined(&["/usr/bin/python3", "-c", script]);
    check(
        &d,
        &live,
        live.stdout.contains("present 1 pfn nonzero"),
        "unconfined as root, pagemap shows the physical frame (the probe works)",
    );
    let out = c.run(&["/usr/bin/python3", "-c", script]);
    check(
        &d,
        &out,
        out.stdout.contains("present 1 pfn zero"),
        "confined, the frame number stays hidden",
    );
    // And no capability that overrides file modes: the run's init (uid 0) keeps its
    // environment and memory to itself (0400/0600 root files), whatever the ptrace check says.
    let live = root.unconfined_sh("head -c 1 /proc/$$/environ >/dev/null");
    check_code(
        &d,
        &live,
        0,
        "unconfined, a root process's environ is readable to root",
    );
    let out = c.sh("cat /proc/1/environ >/dev/null; echo rc=$?; head -c 1 /proc/1/mem; echo rc=$?");
    check(
        &d,
        &out,
        out.stdout.matches("rc=1").count() == 2 && out.stderr.contains("Permission denied"),
        "confined, the run's init's /proc/1/environ and /proc/1/mem are refused",
    );
}

/// A FIFO open waits on a monitor worker; when its task dies first (nobody ever opens the
/// other end), the worker must not wait for ever: the daemon would keep its thread.
#[test]
fn monitor_fifo_workers_of_dead_tasks_end() {
    require!(sandbox);
    let (d, c) = start();
    let workers = || -> usize {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", d.pid())) else {
            return 0;
        };
        tasks
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "monitor-worker")
            })
            .count()
    };
    let script = "mkfifo p; pids=; for i in 1 2 3 4 5; do cat p & pids=\"$pids $!\"; done; \
                  sleep 0.5; echo waiting=$(ls /proc/$pids/fd 2>/dev/null | wc -l); \
                  kill -9 $pids; wait; rm -f p";
    let out = c.sh(script);
    check(
        &d,
        &out,
        out.success(),
        "five readers waited on the FIFO and were killed",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while workers() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    check(
        &d,
        &out,
        workers() == 0,
        &format!(
            "the daemon keeps {} FIFO worker threads of dead tasks",
            workers()
        ),
    );
}

/// Review finding (high): a Unix address is continued (the view is its wall), so the kernel
/// reads the sockaddr again. A thread flipping its family between AF_UNIX and AF_INET made an
/// IP socket's connect look like a Unix one to the monitor and reach an address the policy
/// refuses. Only a Unix socket may be continued with a Unix address.
#[test]
fn monitor_connect_family_race_never_reaches_the_denied_address() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    let out = c.unconfined(&[&probe, "race-family", "0", "0", "5000", "10"]);
    let n = race_counts(&out);
    check(
        &d,
        &out,
        n.get("b_peer").copied().unwrap_or(0) >= 1,
        "unconfined: the family-flipping probe must reach port B at least once",
    );
    let (a, b) = (Listener::new(), Listener::new());
    let extra = format!(
        "[network]\nmode = \"filtered\"\nallow = [\"{}\", \"{}\"]\n{}",
        a.addr(),
        b.addr(),
        deny_rule("deny-b", "connect", "addr", &b.addr())
    );
    let p = policy(&d, "race-family", &extra);
    let (pa, pb) = (a.port.to_string(), b.port.to_string());
    let (out, _) = traced(&c, &p, &[&probe, "race-family-to", &pa, &pb, "10000", "10"]);
    check_code(&d, &out, 0, "the family race probe");
    let n = race_counts(&out);
    let get = |k: &str| n.get(k).copied().unwrap_or(0);
    check(
        &d,
        &out,
        get("attempts") >= 1000,
        "at least 1000 racing connects",
    );
    check(
        &d,
        &out,
        get("b_peer") == 0 && b.accepted() == 0,
        "a connect with a flipped family reached the denied address",
    );
    check(
        &d,
        &out,
        get("denied") > 0,
        "the IP reads were refused by the rule (the flip is live inside)",
    );
}

/// Lines of the confined `open-matrix` output that differ from the unconfined one on purpose,
/// as (case, confined line). None: the scratch directory is in the workspace, which the default
/// policy makes writable, and no fixture has a hidden name, so the policy refuses nothing there
/// and every difference is the emulation's.
const OPEN_MATRIX_POLICY_EFFECTS: [(&str, &str); 0] = [];

/// Where the emulation knowingly differs (docs/security.md, "Known gaps in emulated opens"),
/// as (case, confined line): `RESOLVE_NO_XDEV` without `RESOLVE_BENEATH`/`RESOLVE_IN_ROOT` is
/// applied to a walk from the run's root, which crosses the workspace's bind mount; openat2
/// with `O_PATH` is refused (`EOPNOTSUPP`): it would have to continue, and the kernel would
/// read `open_how` again, which a racing thread can turn into a read.
const OPEN_MATRIX_KNOWN_GAPS: [(&str, &str); 4] = [
    ("openat2-no-xdev-file", "openat2-no-xdev-file errno=18"),
    ("openat2-path-file", "openat2-path-file errno=95"),
    (
        "openat2-path-nofollow-link",
        "openat2-path-nofollow-link errno=95",
    ),
    (
        "openat2-no-symlinks-path-nofollow",
        "openat2-no-symlinks-path-nofollow errno=95",
    ),
];

/// The case name of an `open-matrix` line (its first word).
fn matrix_case(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

/// The lines where the confined output is not the unconfined one with the intended policy
/// effects applied, as `CASE\n  unconfined: …\n  confined:   …`.
fn open_matrix_mismatches(unconfined: &str, confined: &str) -> Vec<String> {
    let want: Vec<String> = unconfined
        .lines()
        .map(|l| {
            OPEN_MATRIX_POLICY_EFFECTS
                .iter()
                .chain(OPEN_MATRIX_KNOWN_GAPS.iter())
                .find(|(case, _)| *case == matrix_case(l))
                .map_or_else(|| l.to_owned(), |(_, line)| (*line).to_owned())
        })
        .collect();
    let got: Vec<&str> = confined.lines().collect();
    let mut out = Vec::new();
    for i in 0..want.len().max(got.len()) {
        let (w, g) = (want.get(i).map(String::as_str), got.get(i).copied());
        if w != g {
            out.push(format!(
                "{}\n  unconfined: {}\n  confined:   {}",
                matrix_case(w.or(g).unwrap_or("")),
                w.unwrap_or("(no line)"),
                g.unwrap_or("(no line)")
            ));
        }
    }
    out
}

/// Differential: every open the monitor emulates must come out as the kernel's would (same
/// descriptor, errno, created file and mode, side effects). `open-matrix` issues a fixed
/// battery of open, openat, openat2 and creat calls (flags, modes with file-type and set-id
/// bits, umasks, symlinks, FIFOs, O_PATH, O_TMPFILE, trailing slashes, odd paths, openat2's
/// own fields; see the probe) in a scratch directory of the workspace, once outside the
/// sandbox and once under the default policy, where all of them are emulated; the two outputs
/// must be equal line for line (bar [`OPEN_MATRIX_POLICY_EFFECTS`]). Written after a mode
/// with file-type bits was passed on to openat2 (EINVAL where open succeeds), to find the
/// others of its kind.
#[test]
fn monitor_open_semantics_match_the_kernel() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    let argv = [probe.as_str(), "open-matrix", "scratch"];
    let unconfined = c.unconfined(&argv);
    check_code(&d, &unconfined, 0, "unconfined open-matrix");
    let cases = unconfined
        .stdout
        .lines()
        .filter(|l| !l.starts_with("open-matrix "))
        .count();
    check(
        &d,
        &unconfined,
        cases >= 150
            && unconfined
                .stdout
                .ends_with(&format!("open-matrix done {cases}\n")),
        "unconfined: the probe runs every case and says so",
    );
    // The kernel's answers the matrix is about, seen as such outside (else it proves nothing).
    for want in [
        "creat-new-0100644 ok fd=lowest type=REG mode=0644 ",
        "openat2-creat-0100644 errno=22",
        "open-unknown-flag ok ",
        "openat2-unknown-flag errno=22",
        "creat-dangling ok ",
        "path-file ok ",
        "nofollow-link errno=40",
    ] {
        check(
            &d,
            &unconfined,
            unconfined.stdout.lines().any(|l| l.starts_with(want)),
            &format!("unconfined: a line starts with {want:?}"),
        );
    }
    for (case, _) in OPEN_MATRIX_POLICY_EFFECTS
        .iter()
        .chain(&OPEN_MATRIX_KNOWN_GAPS)
    {
        check(
            &d,
            &unconfined,
            unconfined.stdout.lines().any(|l| matrix_case(l) == *case),
            &format!("a listed policy effect names a case the probe runs: {case}"),
        );
    }
    let confined = c.run(&argv);
    let mismatches = open_matrix_mismatches(&unconfined.stdout, &confined.stdout);
    check(
        &d,
        &confined,
        mismatches.is_empty() && confined.code() == 0,
        &format!(
            "emulated opens differ from the kernel's in {} case(s) (exit {}):\n{}\n\
             --- unconfined ---\n{}--- confined ---\n{}",
            mismatches.len(),
            confined.code(),
            mismatches.join("\n"),
            unconfined.stdout,
            confined.stdout
        ),
    );
}
