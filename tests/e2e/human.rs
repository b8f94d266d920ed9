//! The human in the loop: pause, resume and kill act on a whole run at once; `ask` rules hold a
//! call until the owner answers with `agentctl approve`/`deny` (or the timeout denies it); only
//! the owner or root may answer, never a process inside a run; and a burst of asks neither grows
//! the daemon nor delays another run.
//!
//! The stand-in "production API" of the incident test is a TCP server thread on the host's
//! 127.0.0.1; it is first shown to delete its data file for an unconfined client, so a refused
//! request can never pass for a wall that held.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_tests::caller::OTHER_UID;
use agentd_tests::command::Background;
use agentd_tests::daemon::rss_kib;
use agentd_tests::tempdir::{set_mode, write_owned};
use agentd_tests::{require, Caller, Daemon, Feature};
use serde_json::Value;

use crate::{check, check_code, contains_ci, display, start, write_policy};

/// How long a background run may take to print its first line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a held call may take to show up in `agentctl pending`.
const PENDING_TIMEOUT: Duration = Duration::from_secs(20);

/// `agentctl run --policy POLICY -- ARGV…` in the background as `c`.
fn spawn_run(d: &Daemon, c: &Caller, policy: &Path, argv: &[&str]) -> Background {
    let mut cmd = c.command(agentd_tests::bins::agentctl());
    cmd.arg("--socket")
        .arg(d.socket())
        .args(["run", "--policy"])
        .arg(policy)
        .arg("--")
        .args(argv);
    Background::spawn(cmd)
}

/// Waits for a line of a background run; on failure panics with agentd's log.
#[track_caller]
fn wait_line(d: &Daemon, bg: &mut Background, line: &str, timeout: Duration) {
    if let Err(why) = bg.wait_for_line(line, timeout) {
        panic!("{}: {why}\n--- agentd log ---\n{}", bg.cmdline, d.log());
    }
}

/// Waits for a background run to end; returns its status and stderr, or fails the test.
#[track_caller]
fn wait_end(
    d: &Daemon,
    bg: &mut Background,
    timeout: Duration,
) -> (std::process::ExitStatus, String) {
    match bg.wait_timeout(timeout) {
        Some(end) => end,
        None => panic!(
            "{} did not end within {timeout:?} (killed)\n--- agentd log ---\n{}",
            bg.cmdline,
            d.log()
        ),
    }
}

/// A policy extending `default` with `extra`.
fn policy(d: &Daemon, name: &str, extra: &str) -> PathBuf {
    write_policy(
        d,
        name,
        &format!("version = 1\nextends = [\"default\"]\n{extra}"),
    )
}

/// An `ask` rule `id` on `on` `key = value`.
fn ask_rule(id: &str, on: &str, key: &str, value: &str, reason: &str) -> String {
    format!(
        "\n[[rule]]\nid = \"{id}\"\non = \"{on}\"\n{key} = \"{value}\"\naction = \"ask\"\n\
         reason = \"{reason}\"\n"
    )
}

/// The caller's runs from `ps --json`.
fn runs(d: &Daemon, c: &Caller) -> Vec<Value> {
    let out = c.agentctl(&["ps", "--json"]);
    check_code(d, &out, 0, "agentctl ps --json");
    serde_json::from_str::<Vec<Value>>(&out.stdout).unwrap_or_default()
}

/// The run whose argv mentions `marker`.
fn run_with(d: &Daemon, c: &Caller, marker: &str) -> Value {
    runs(d, c)
        .into_iter()
        .find(|r| {
            r["argv"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(marker)))
        })
        .unwrap_or_else(|| {
            panic!(
                "no run {marker} in ps --json\n--- agentd log ---\n{}",
                d.log()
            )
        })
}

/// Polls `agentctl pending --json` as `c` until a request satisfies `want` (bounded).
#[track_caller]
fn wait_pending(d: &Daemon, c: &Caller, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PENDING_TIMEOUT;
    loop {
        let out = c.agentctl(&["pending", "--json"]);
        check_code(d, &out, 0, "agentctl pending --json");
        let list: Vec<Value> = serde_json::from_str(&out.stdout).unwrap_or_default();
        if let Some(p) = list.into_iter().find(|p| want(p)) {
            return p;
        }
        check(
            d,
            &out,
            Instant::now() < deadline,
            &format!("no pending request for {what} within {PENDING_TIMEOUT:?}"),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The run's audit records, as the owner reads them, once `want` holds for them (bounded: the
/// writer flushes when its queue is empty).
#[track_caller]
fn audit_until(d: &Daemon, c: &Caller, run: &str, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = c.agentctl(&["audit", run, "--json"]);
        check_code(d, &out, 0, "agentctl audit --json");
        let records: Vec<Value> = out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if want(&records) {
            return records;
        }
        let brief: Vec<String> = records
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {} {} by={}",
                    r["seq"], r["kind"], r["verdict"], r["addr"], r["rule"], r["decided_by"]
                )
            })
            .collect();
        check(
            d,
            &out,
            Instant::now() < deadline,
            &format!(
                "audit of {run} lacks the expected records:\n{}",
                brief.join("\n")
            ),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Panics with `what` and agentd's log unless `ok` (for checks not about one command).
#[track_caller]
fn ensure(d: &Daemon, ok: bool, what: &str) {
    assert!(ok, "{what}\n--- agentd log ---\n{}", d.log());
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Host pids whose command line mentions `marker` (agentctl's own included while it lives).
fn pids_with(marker: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == marker.as_bytes()))
        })
        .collect()
}

#[test]
fn human_pause_freezes_every_process_resume_continues_kill_ends_the_tree() {
    require!(sandbox, Feature::Cgroup2Unified);
    let (d, c) = start();
    let marker = "e2e-pause-tree";
    let p = policy(&d, "forks", "[resources]\npids = 1024\n");
    let script = "echo started; for i in $(seq 100); do \
                  (while :; do echo x >> out; sleep 0.01; done) & done; wait";
    let mut bg = spawn_run(&d, &c, &p, &["sh", "-c", script, marker]);
    wait_line(&d, &mut bg, "started", START_TIMEOUT);
    let out_file = c.workspace.join("out");
    let id = run_with(&d, &c, marker)["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Running: ≥ 100 processes, and the file grows.
    let deadline = Instant::now() + Duration::from_secs(20);
    let pids = loop {
        let out = c.agentctl(&["inspect", &id, "--json"]);
        check_code(&d, &out, 0, "agentctl inspect --json");
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        let pids: Vec<i64> = v["detail"]["pids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        if pids.len() >= 100 {
            break pids;
        }
        check(
            &d,
            &out,
            Instant::now() < deadline,
            "100 forked writers within 20 s",
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let before = file_len(&out_file);
    std::thread::sleep(Duration::from_millis(300));
    ensure(
        &d,
        file_len(&out_file) > before,
        "the writers append to the file while running",
    );

    // Paused: once `pause` returns, nothing runs.
    let out = c.agentctl(&["pause", &id]);
    check_code(&d, &out, 0, "agentctl pause");
    check(
        &d,
        &out,
        out.elapsed < Duration::from_secs(5),
        "pause returns within 5 s",
    );
    let frozen = file_len(&out_file);
    // Letting time pass is the point here: nothing may happen meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    check(
        &d,
        &out,
        file_len(&out_file) == frozen,
        &format!(
            "the file must not grow while paused ({frozen} -> {} bytes)",
            file_len(&out_file)
        ),
    );
    let run = run_with(&d, &c, marker);
    check(
        &d,
        &out,
        run["state"] == "paused" && run["paused_since"].as_u64().is_some(),
        &format!("ps --json says paused, with paused_since: {run}"),
    );
    let ps = c.agentctl(&["ps"]);
    check(
        &d,
        &ps,
        ps.stdout.contains("paused("),
        "plain ps shows paused(AGE)",
    );
    let inspect = c.agentctl(&["inspect", &id]);
    check(
        &d,
        &inspect,
        inspect.stdout.contains("paused:") && inspect.stdout.contains("since"),
        "inspect says since when the run is paused",
    );

    // Resumed: it grows again.
    let out = c.agentctl(&["resume", &id]);
    check_code(&d, &out, 0, "agentctl resume");
    let deadline = Instant::now() + Duration::from_secs(5);
    while file_len(&out_file) == frozen && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    check(
        &d,
        &out,
        file_len(&out_file) > frozen,
        "the file grows again after resume",
    );
    check(
        &d,
        &out,
        run_with(&d, &c, marker)["state"] == "running",
        "ps --json says running after resume",
    );

    // Killed: no process of the tree is left.
    let out = c.agentctl(&["kill", &id]);
    check_code(&d, &out, 0, "agentctl kill");
    let (status, _) = wait_end(&d, &mut bg, Duration::from_secs(20));
    check(
        &d,
        &out,
        !status.success(),
        "agentctl run ends non-zero after the kill",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let alive = |pids: &[i64]| -> Vec<i64> {
        pids.iter()
            .copied()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.contains(marker))
            })
            .collect()
    };
    while (!alive(&pids).is_empty() || !pids_with(marker).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    check(
        &d,
        &out,
        alive(&pids).is_empty() && pids_with(marker).is_empty(),
        &format!(
            "every process of the run must be gone: still {:?} / {:?}",
            alive(&pids),
            pids_with(marker)
        ),
    );
}

/// The stand-in production API: deletes its data file when a client sends the right token.
struct ProductionApi {
    port: u16,
    data: PathBuf,
    accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl ProductionApi {
    fn start(data: PathBuf, token: &str) -> ProductionApi {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let (accepted, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (acc, st, file, token) = (
            accepted.clone(),
            stop.clone(),
            data.clone(),
            token.to_owned(),
        );
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        acc.fetch_add(1, Ordering::Relaxed);
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        let mut line = String::new();
                        let _ = BufReader::new(&s).read_line(&mut line);
                        let reply = if line.trim() == token {
                            let _ = std::fs::remove_file(&file);
                            "deleted\n"
                        } else {
                            "bad token\n"
                        };
                        let _ = (&s).write_all(reply.as_bytes());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => {}
                }
            }
        });
        ProductionApi {
            port,
            data,
            accepted,
            stop,
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn restore(&self) {
        std::fs::write(&self.data, "customer records\n").unwrap();
    }

    fn intact(&self) -> bool {
        self.data.exists()
    }
}

impl Drop for ProductionApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The agent: reads the token from its workspace and sends it to the API.
fn agent_script(port: u16) -> String {
    format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} || exit 7; cat token >&3; read -r reply <&3; \
         echo \"reply: $reply\""
    )
}

/// The pending connect to the API, its run and id.
fn wait_api_request(d: &Daemon, c: &Caller, api: &ProductionApi) -> (String, String) {
    let addr = api.addr();
    let p = wait_pending(d, c, &addr, |p| {
        p["kind"] == "connect" && p["target"].as_str().is_some_and(|t| t.contains(&addr))
    });
    let id = p["id"].as_str().unwrap_or_default().to_owned();
    let run = p["run"].as_str().unwrap_or_default().to_owned();
    (id, run)
}

/// The audit has the ask record of rule `prod-api`, then a decision `verdict` by `by`.
fn check_decision_audited(d: &Daemon, c: &Caller, run: &str, addr: &str, verdict: &str, by: &str) {
    audit_until(d, c, run, |records| {
        let to_api: Vec<&Value> = records
            .iter()
            .filter(|r| r["kind"] == "connect" && r["addr"] == addr)
            .collect();
        let ask = to_api
            .iter()
            .position(|r| r["verdict"] == "ask" && r["rule"] == "prod-api");
        ask.is_some_and(|i| {
            to_api
                .iter()
                .skip(i + 1)
                .any(|r| r["verdict"] == verdict && r["decided_by"] == by)
        })
    });
}

#[test]
fn human_incident_deny_approve_and_timeout_decide_the_production_request() {
    require!(sandbox);
    let (d, c) = start();
    let token = "AGENTD-E2E-PROD-TOKEN-7f3a";
    write_owned(
        &c.workspace.join("token"),
        format!("{token}\n").as_bytes(),
        0o644,
        c.uid,
        c.gid,
    );
    let data = d.dir().join("production-data");
    let api = ProductionApi::start(data, token);
    let script = agent_script(api.port);

    // Unconfined, the agent's request goes through: the API deletes its data.
    api.restore();
    let out = c.unconfined(&["bash", "-c", &script]);
    check(
        &d,
        &out,
        out.success() && out.stdout.contains("reply: deleted") && !api.intact(),
        "unconfined: the agent's request deletes the data (else the probe proves nothing)",
    );
    api.restore();
    let accepted_before = api.accepted.load(Ordering::Relaxed);

    let rule = ask_rule(
        "prod-api",
        "connect",
        "addr",
        &api.addr(),
        "production database",
    );
    let net = format!(
        "[network]\nmode = \"filtered\"\nallow = [\"{}\"]\n",
        api.addr()
    );
    let slow = policy(
        &d,
        "prod-ask",
        &format!("{net}[approval]\ntimeout = \"60s\"\n{rule}"),
    );
    let fast = policy(
        &d,
        "prod-ask-3s",
        &format!("{net}[approval]\ntimeout = \"3s\"\n{rule}"),
    );
    let addr = api.addr();
    let owner = format!("uid:{}", c.uid);

    // Denied by the owner: the data survives and the agent got the errno.
    let mut bg = spawn_run(&d, &c, &slow, &["bash", "-c", &script]);
    let (id, run) = wait_api_request(&d, &c, &api);
    let out = c.agentctl(&["deny", &id, "--errno", "EPERM"]);
    check_code(&d, &out, 0, "agentctl deny --errno EPERM");
    let (status, stderr) = wait_end(&d, &mut bg, Duration::from_secs(20));
    check(
        &d,
        &out,
        !status.success() && stderr.contains("Operation not permitted") && api.intact(),
        &format!("denied: the connect fails with EPERM and the data survives ({status}): {stderr}"),
    );
    check(
        &d,
        &out,
        api.accepted.load(Ordering::Relaxed) == accepted_before,
        "denied: the API saw no connection",
    );
    check_decision_audited(&d, &c, &run, &addr, "deny", &owner);

    // Approved by the owner: the request goes through.
    let mut bg = spawn_run(&d, &c, &slow, &["bash", "-c", &script]);
    let (id, run) = wait_api_request(&d, &c, &api);
    let out = c.agentctl(&["approve", &id]);
    check_code(&d, &out, 0, "agentctl approve");
    wait_line(&d, &mut bg, "reply: deleted", Duration::from_secs(20));
    let (status, _) = wait_end(&d, &mut bg, Duration::from_secs(20));
    check(
        &d,
        &out,
        status.success() && !api.intact(),
        "approved: the data is deleted",
    );
    check_decision_audited(&d, &c, &run, &addr, "allow", &owner);
    api.restore();

    // Nobody answers: denied at the timeout.
    let started = Instant::now();
    let mut bg = spawn_run(&d, &c, &fast, &["bash", "-c", &script]);
    let (_, run) = wait_api_request(&d, &c, &api);
    let (status, stderr) = wait_end(&d, &mut bg, Duration::from_secs(30));
    let took = started.elapsed();
    ensure(
        &d,
        !status.success() && api.intact() && took >= Duration::from_millis(2500),
        &format!("unanswered: denied after the 3 s timeout ({status}, {took:?}): {stderr}"),
    );
    check_decision_audited(&d, &c, &run, &addr, "deny", "timeout");
}

/// An approval covers the call asked about — with its argv or access — and no other: a
/// `--run` grant of `printf one` does not let `printf two` through, nor one of a read a write;
/// `pending` shows the argv and access, quoted so an argument cannot redraw the line.
#[test]
fn human_an_approval_covers_only_the_argv_and_access_asked_about() {
    require!(sandbox);
    let (d, c) = start();
    write_owned(
        &c.workspace.join("ask.txt"),
        b"asked-content\n",
        0o644,
        c.uid,
        c.gid,
    );
    let rules = format!(
        "[approval]\ntimeout = \"60s\"\n{}{}",
        ask_rule("printf", "exec", "path", "/usr/bin/printf", "e2e exec"),
        ask_rule("asked", "open", "path", "${WORKSPACE}/ask.txt", "e2e open"),
    );
    let pol = policy(&d, "grants", &rules);
    let script = "echo started; /usr/bin/printf 'one\\n'; /usr/bin/printf 'one\\n'; \
                  /usr/bin/printf 'two\\n' || echo two-refused; cat ask.txt; cat ask.txt; \
                  (echo more >> ask.txt) 2>/dev/null || echo write-refused; echo done";
    let mut bg = spawn_run(&d, &c, &pol, &["sh", "-c", script, "e2e-grants"]);
    wait_line(&d, &mut bg, "started", START_TIMEOUT);
    let exec_of = |word: &'static str| {
        move |p: &Value| {
            p["kind"] == "exec"
                && p["target"] == "/usr/bin/printf"
                && p["argv"][1].as_str() == Some(word)
        }
    };

    // `printf one`, approved for the rest of the run: the second runs without asking.
    let one = wait_pending(&d, &c, "printf one", exec_of("one\\n"));
    let out = c.agentctl(&["approve", "--run", one["id"].as_str().unwrap_or_default()]);
    check_code(&d, &out, 0, "approve --run printf one");
    wait_line(&d, &mut bg, "one", PENDING_TIMEOUT);
    wait_line(&d, &mut bg, "one", PENDING_TIMEOUT);

    // `printf two` is another request; the table shows its argv quoted.
    let two = wait_pending(&d, &c, "printf two", exec_of("two\\n"));
    ensure(
        &d,
        two["id"] != one["id"],
        "printf two is a request of its own",
    );
    let table = c.agentctl(&["pending"]);
    check(
        &d,
        &table,
        table
            .stdout
            .contains(r"/usr/bin/printf: /usr/bin/printf 'two\n'"),
        "pending shows the argv asked about, quoted",
    );
    let out = c.agentctl(&["deny", two["id"].as_str().unwrap_or_default()]);
    check_code(&d, &out, 0, "deny printf two");
    wait_line(&d, &mut bg, "two-refused", PENDING_TIMEOUT);

    // A read of ask.txt, approved for the run, does not cover a write of it.
    let is_open = |access: &'static str| {
        move |p: &Value| {
            p["kind"] == "open"
                && p["target"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("/ask.txt"))
                && p["access"] == access
        }
    };
    let read = wait_pending(&d, &c, "read ask.txt", is_open("read"));
    let out = c.agentctl(&["approve", "--run", read["id"].as_str().unwrap_or_default()]);
    check_code(&d, &out, 0, "approve --run the read");
    wait_line(&d, &mut bg, "asked-content", PENDING_TIMEOUT);
    wait_line(&d, &mut bg, "asked-content", PENDING_TIMEOUT);
    let write = wait_pending(&d, &c, "write ask.txt", is_open("write"));
    let out = c.agentctl(&["deny", write["id"].as_str().unwrap_or_default()]);
    check_code(&d, &out, 0, "deny the write");
    wait_line(&d, &mut bg, "write-refused", PENDING_TIMEOUT);
    wait_line(&d, &mut bg, "done", PENDING_TIMEOUT);
    let (status, stderr) = wait_end(&d, &mut bg, Duration::from_secs(20));
    ensure(
        &d,
        status.success(),
        &format!("the run ends well ({status}): {stderr}"),
    );
    ensure(
        &d,
        file_len(&c.workspace.join("ask.txt")) == 14,
        "the denied write changed nothing",
    );

    // The audit names who allowed each call: the grant answered the second `printf one`.
    let run = one["run"].as_str().unwrap_or_default().to_string();
    let owner = format!("uid:{}", c.uid);
    audit_until(&d, &c, &run, |records| {
        let by_owner = |kind: &str, key: &str, want: &str| {
            records
                .iter()
                .filter(|r| {
                    r["kind"] == kind
                        && r["verdict"] == "allow"
                        && r["decided_by"] == owner.as_str()
                        && (r[key] == want || r[key][1] == want)
                })
                .count()
        };
        by_owner("exec", "argv", "one\\n") == 2 && by_owner("open", "access", "read") == 2
    });
}

#[test]
fn human_only_the_owner_outside_any_run_or_root_may_answer_or_control() {
    require!(sandbox, Feature::Cgroup2Unified);
    let (d, c) = start();
    let other = Caller::new(&d, OTHER_UID);
    write_owned(
        &c.workspace.join("ask.txt"),
        b"asked\n",
        0o644,
        c.uid,
        c.gid,
    );
    let held = policy(
        &d,
        "held",
        &format!(
            "[approval]\ntimeout = \"120s\"\n{}",
            ask_rule("held", "open", "path", "${WORKSPACE}/ask.txt", "e2e held")
        ),
    );
    // Run A asks twice (once for root to approve, once for root to deny), then sleeps.
    let marker = "e2e-held-run";
    let script = "echo started; cat ask.txt; cat ask.txt; echo second-done; exec sleep 60";
    let mut a = spawn_run(&d, &c, &held, &["sh", "-c", script, marker]);
    wait_line(&d, &mut a, "started", START_TIMEOUT);
    let is_ask = |p: &Value| {
        p["target"]
            .as_str()
            .is_some_and(|t| t.ends_with("/ask.txt"))
    };
    let q = wait_pending(&d, &c, "ask.txt", is_ask);
    let (q, run) = (
        q["id"].as_str().unwrap_or_default().to_owned(),
        q["run"].as_str().unwrap_or_default().to_owned(),
    );
    let out = c.agentctl(&["pause", &run]);
    check_code(&d, &out, 0, "the owner pauses run A (outside any run)");

    // Inside a run of the same uid, with the socket's directory granted and agentctl copied in.
    let ctl = c.workspace.join("agentctl");
    std::fs::copy(agentd_tests::bins::agentctl(), &ctl).unwrap();
    set_mode(&ctl, 0o755);
    agentd_tests::tempdir::chown(&ctl, c.uid, c.gid);
    let reach = policy(
        &d,
        "reach-socket",
        &format!("[filesystem]\nread = [\"{}\"]\n", display(d.dir())),
    );
    let sock = display(d.socket());
    let inside = format!(
        "echo inside; for cmd in 'approve {q}' 'deny {q}' 'resume {run}' 'kill {run}'; do \
         ./agentctl --socket {sock} $cmd; echo \"rc=$? $cmd\"; done"
    );
    let out = c.run_policy(&reach, &["sh", "-c", &inside]);
    check(
        &d,
        &out,
        out.stdout.starts_with("inside"),
        "the inside run started",
    );
    for cmd in ["approve", "deny", "resume", "kill"] {
        let refused = out
            .stdout
            .lines()
            .any(|l| l.starts_with("rc=1 ") && l.contains(cmd));
        check(
            &d,
            &out,
            refused,
            &format!("inside a run: {cmd} must be refused (rc=1)"),
        );
    }
    let refusals = out.stderr.matches("agentctl: ").count();
    check(
        &d,
        &out,
        refusals == 4 && contains_ci(&out.stderr, "inside a run"),
        "inside a run: each refusal says `inside a run` (so it came from agentd, not ENOENT)",
    );

    // Another user.
    for args in [
        vec!["approve", q.as_str()],
        vec!["deny", q.as_str()],
        vec!["resume", run.as_str()],
        vec!["kill", run.as_str()],
    ] {
        let out = other.agentctl(&args);
        check(
            &d,
            &out,
            out.code() == 1 && contains_ci(&out.stderr, "permission"),
            &format!("another user: {} must be refused with permission", args[0]),
        );
    }
    check(
        &d,
        &out,
        a.try_status().is_none(),
        "run A survived every refused kill",
    );
    let state = run_with(&d, &c, marker)["state"].clone();
    check(
        &d,
        &out,
        state == "paused",
        &format!("run A is still paused: {state}"),
    );
    let still = c.agentctl(&["pending", "--json"]);
    check(
        &d,
        &still,
        still.stdout.contains(&q),
        "the request is still pending",
    );

    // Root.
    for args in [vec!["resume", run.as_str()], vec!["approve", q.as_str()]] {
        let out = d.agentctl_as_root(&args);
        check_code(&d, &out, 0, &format!("root: {}", args[0]));
    }
    let q2 = wait_pending(&d, &c, "the second ask.txt", |p| {
        is_ask(p) && p["id"] != q.as_str()
    });
    let q2 = q2["id"].as_str().unwrap_or_default().to_owned();
    let out = d.agentctl_as_root(&["deny", &q2]);
    check_code(&d, &out, 0, "root: deny");
    wait_line(&d, &mut a, "asked", Duration::from_secs(10));
    // The denied cat has written its error before the run is killed.
    wait_line(&d, &mut a, "second-done", Duration::from_secs(10));
    let out = d.agentctl_as_root(&["kill", &run]);
    check_code(&d, &out, 0, "root: kill");
    let (status, stderr) = wait_end(&d, &mut a, Duration::from_secs(20));
    check(
        &d,
        &out,
        !status.success() && stderr.contains("Permission denied"),
        &format!("run A: the first cat was approved, the second denied, then killed: {stderr}"),
    );
}

#[test]
fn human_a_burst_of_asks_neither_grows_agentd_nor_delays_another_run() {
    require!(sandbox);
    let (d, c) = start();
    write_owned(
        &c.workspace.join("ask.txt"),
        b"asked\n",
        0o644,
        c.uid,
        c.gid,
    );
    write_owned(
        &c.workspace.join("ask-y.txt"),
        b"quick answer\n",
        0o644,
        c.uid,
        c.gid,
    );
    let burst = policy(
        &d,
        "burst",
        &format!(
            "[resources]\npids = 1024\n[approval]\ntimeout = \"2s\"\n{}",
            ask_rule("burst", "open", "path", "${WORKSPACE}/ask.txt", "e2e burst")
        ),
    );
    let quick = policy(
        &d,
        "quick",
        &format!(
            "[approval]\ntimeout = \"60s\"\n{}",
            ask_rule(
                "quick",
                "open",
                "path",
                "${WORKSPACE}/ask-y.txt",
                "e2e quick"
            )
        ),
    );
    let pid = d.pid();
    let rss_before = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(rss_before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // 200 processes × 5 opens = 1,000 asks, each denied after 2 s.
    let script = "echo started; for i in $(seq 200); do \
                  (for j in 1 2 3 4 5; do cat ask.txt 2>/dev/null; done) & done; wait; echo burst-done";
    let mut x = spawn_run(&d, &c, &burst, &["sh", "-c", script, "e2e-burst"]);
    wait_line(&d, &mut x, "started", START_TIMEOUT);
    wait_pending(&d, &c, "the burst", |p| {
        p["target"]
            .as_str()
            .is_some_and(|t| t.ends_with("/ask.txt"))
    });

    // Meanwhile another run is decided promptly, policy and human alike.
    let out = c.run(&["true"]);
    check_code(&d, &out, 0, "a simple run during the burst");
    check(
        &d,
        &out,
        out.elapsed < Duration::from_secs(5),
        &format!("it took {:?}", out.elapsed),
    );
    let started = Instant::now();
    let mut y = spawn_run(&d, &c, &quick, &["cat", "ask-y.txt"]);
    let p = wait_pending(&d, &c, "ask-y.txt", |p| {
        p["target"]
            .as_str()
            .is_some_and(|t| t.ends_with("/ask-y.txt"))
    });
    let out = c.agentctl(&["approve", p["id"].as_str().unwrap_or_default()]);
    check_code(&d, &out, 0, "approve the other run's request");
    wait_line(&d, &mut y, "quick answer", Duration::from_secs(5));
    let took = started.elapsed();
    check(
        &d,
        &out,
        took < Duration::from_secs(10),
        &format!("the other run's ask was shown and decided promptly ({took:?})"),
    );
    let _ = wait_end(&d, &mut y, Duration::from_secs(10));

    wait_line(&d, &mut x, "burst-done", Duration::from_secs(90));
    let (status, _) = wait_end(&d, &mut x, Duration::from_secs(20));
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let grew = peak.load(Ordering::Relaxed).saturating_sub(rss_before);
    println!(
        "PROBE abuse.approval-flood: blocked (daemon rss {:+.1} MiB peak during 1000 asks; the \
         other run's ask shown and decided in {:.0} ms)",
        grew as f64 / 1024.0,
        took.as_secs_f64() * 1000.0
    );
    ensure(&d, status.success(), "the burst run ends normally");
    ensure(
        &d,
        grew < 20 * 1024,
        &format!("agentd's RSS grew by {grew} KiB during the burst (limit 20 MiB)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = c.agentctl(&["pending", "--json"]);
        let left: Vec<Value> = serde_json::from_str(&out.stdout).unwrap_or_default();
        if left.is_empty() {
            break;
        }
        check(
            &d,
            &out,
            Instant::now() < deadline,
            "no request is left pending after the burst",
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `pause` rule holds the call *and* freezes the whole run until a human answers: a
/// background writer of the run stops writing; `approve` lets the call through and thaws it.
#[test]
fn human_pause_rule_freezes_the_run_until_answered() {
    require!(sandbox);
    let (d, c) = start();
    let rule = "\n[[rule]]\nid = \"hold-date\"\non = \"exec\"\npath = \"/usr/bin/date\"\n\
                action = \"pause\"\nreason = \"e2e pause rule\"\n";
    let p = policy(&d, "pause-rule", rule);
    let ticks = c.workspace.join("ticks");
    let script = "(while :; do echo t >> ticks; sleep 0.05; done) & \
                  sleep 0.3; date >/dev/null; echo pause-rule-done; kill $!";
    let mut bg = spawn_run(&d, &c, &p, &["sh", "-c", script, "pause-rule-marker"]);
    let req = wait_pending(&d, &c, "the paused exec of date", |r| {
        r["rule"].as_str() == Some("hold-date")
    });
    let run = run_with(&d, &c, "pause-rule-marker");
    ensure(
        &d,
        run["state"].as_str() == Some("paused"),
        &format!("the run is paused while the call waits: {run}"),
    );
    let before = file_len(&ticks);
    std::thread::sleep(Duration::from_millis(400));
    ensure(
        &d,
        file_len(&ticks) == before,
        "the frozen run's background writer wrote nothing",
    );
    let id = req["id"].as_str().unwrap_or_default().to_string();
    let out = c.agentctl(&["approve", &id]);
    check_code(&d, &out, 0, "approve the paused call");
    wait_line(&d, &mut bg, "pause-rule-done", Duration::from_secs(10));
    let (status, _) = wait_end(&d, &mut bg, Duration::from_secs(10));
    ensure(&d, status.success(), "the run ends normally once approved");
}

/// A call held by a `pause` rule is carried out after the run thaws: a FIFO's open, approved,
/// waits for its other end, which the run itself opens (frozen until then, it never could).
#[test]
fn human_pause_rule_on_a_fifo_open_completes_once_approved() {
    require!(sandbox);
    let (d, c) = start();
    let rule = "\n[[rule]]\nid = \"hold-fifo\"\non = \"open\"\npath = \"${WORKSPACE}/fifo\"\n\
                access = \"read\"\naction = \"pause\"\nreason = \"e2e pause fifo\"\n";
    let p = policy(&d, "pause-fifo", rule);
    let script = "mkfifo fifo && echo started; cat fifo & sleep 0.3; echo through > fifo; wait; \
                  echo fifo-done";
    let mut bg = spawn_run(&d, &c, &p, &["sh", "-c", script, "pause-fifo-marker"]);
    wait_line(&d, &mut bg, "started", START_TIMEOUT);
    let req = wait_pending(&d, &c, "the paused open of the fifo", |r| {
        r["rule"].as_str() == Some("hold-fifo")
    });
    let out = c.agentctl(&["approve", req["id"].as_str().unwrap_or_default()]);
    check_code(&d, &out, 0, "approve the paused fifo open");
    wait_line(&d, &mut bg, "through", Duration::from_secs(10));
    wait_line(&d, &mut bg, "fifo-done", Duration::from_secs(10));
    let (status, stderr) = wait_end(&d, &mut bg, Duration::from_secs(10));
    ensure(
        &d,
        status.success(),
        &format!("the run ends normally ({status}): {stderr}"),
    );
    let run = req["run"].as_str().unwrap_or_default();
    let listed = runs(&d, &c);
    ensure(
        &d,
        !listed
            .iter()
            .any(|r| r["id"] == run && r["state"] == "paused"),
        "the run is not left paused",
    );
}

/// A FIFO open allowed by an earlier `approve --run` waits for its other end on a worker, never
/// on the run's monitor (whose next call is that other end's open).
#[test]
fn human_a_granted_fifo_open_never_blocks_the_monitor() {
    require!(sandbox);
    let (d, c) = start();
    let p = policy(
        &d,
        "ask-fifo",
        &format!(
            "[approval]\ntimeout = \"60s\"\n{}access = \"read\"\n",
            ask_rule(
                "ask-fifo",
                "open",
                "path",
                "${WORKSPACE}/fifo",
                "e2e ask fifo"
            )
        ),
    );
    let script = "mkfifo fifo && echo started; cat fifo & sleep 0.2; echo first > fifo; wait; \
                  cat fifo & sleep 0.2; echo second > fifo; wait; echo fifo-done";
    let mut bg = spawn_run(&d, &c, &p, &["sh", "-c", script, "ask-fifo-marker"]);
    wait_line(&d, &mut bg, "started", START_TIMEOUT);
    let req = wait_pending(&d, &c, "the fifo open", |r| {
        r["rule"].as_str() == Some("ask-fifo")
    });
    let out = c.agentctl(&["approve", "--run", req["id"].as_str().unwrap_or_default()]);
    check_code(&d, &out, 0, "approve --run the fifo open");
    wait_line(&d, &mut bg, "first", Duration::from_secs(10));
    wait_line(&d, &mut bg, "second", Duration::from_secs(10));
    wait_line(&d, &mut bg, "fifo-done", Duration::from_secs(10));
    let (status, stderr) = wait_end(&d, &mut bg, Duration::from_secs(10));
    ensure(
        &d,
        status.success(),
        &format!("the run ends normally ({status}): {stderr}"),
    );
}

/// A held exec continues only if the agent's memory still holds the command line the human
/// was shown: an argument rewritten while it waits makes the approved exec fail (EACCES),
/// never run with the new argument (the kernel reads argv again when an exec continues).
#[test]
fn human_an_exec_rewritten_while_held_is_refused() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    let p = policy(
        &d,
        "ask-printf",
        &format!(
            "[approval]\ntimeout = \"60s\"\n{}",
            ask_rule(
                "ask-printf",
                "exec",
                "path",
                "/usr/bin/printf",
                "e2e ask printf"
            )
        ),
    );
    let flip = [probe.as_str(), "exec-flip", "/usr/bin/printf", "one", "two"];
    // Unconfined, an exec after the rewrite runs the rewritten argument.
    let out = c.unconfined(&[&flip[..], &["2000"]].concat());
    check(
        &d,
        &out,
        out.stdout.contains("two"),
        "unconfined: the rewrite reaches the exec (else the probe proves nothing)",
    );
    let req = approve_then_refused(&d, &c, &p, &[&flip[..], &["0"]].concat(), "one", "flipped");
    let run = req["run"].as_str().unwrap_or_default().to_string();
    audit_until(&d, &c, &run, |records| {
        records.iter().any(|r| {
            r["kind"] == "exec"
                && r["verdict"] == "deny"
                && r["reason"]
                    .as_str()
                    .is_some_and(|t| t.contains("changed while it was held"))
        })
    });

    // The same when the file the path names is swapped (a symlink re-pointed), not the text.
    let swap = [
        probe.as_str(),
        "exec-swap",
        "tool",
        "/usr/bin/printf",
        "/usr/bin/basename",
    ];
    let out = c.unconfined(&[&swap[..], &["2000"]].concat());
    check(
        &d,
        &out,
        out.stdout.lines().any(|l| l == "b"),
        "unconfined: the exec after the swap runs basename (else the probe proves nothing)",
    );
    approve_then_refused(&d, &c, &p, &[&swap[..], &["0"]].concat(), "/a/b", "swapped");

    // And when another file is renamed over the same path (no symlink: the text stays).
    let p = policy(
        &d,
        "ask-tool",
        &format!(
            "[approval]\ntimeout = \"60s\"\n{}",
            ask_rule(
                "ask-tool",
                "exec",
                "path",
                "${WORKSPACE}/tool2",
                "e2e ask tool"
            )
        ),
    );
    let replace = [
        probe.as_str(),
        "exec-replace",
        "tool2",
        "/usr/bin/printf",
        "/usr/bin/basename",
    ];
    let out = c.unconfined(&[&replace[..], &["2000"]].concat());
    check(
        &d,
        &out,
        out.stdout.lines().any(|l| l == "b"),
        "unconfined: the exec after the replace runs basename (else the probe proves nothing)",
    );
    approve_then_refused(
        &d,
        &c,
        &p,
        &[&replace[..], &["0"]].concat(),
        "/a/b",
        "swapped",
    );
}

/// Runs `argv` under `policy`, waits for its exec asking with `argv[1] == arg1` and for the
/// probe's `changed` line, approves it, and expects the exec refused (`exec errno:13`).
/// Returns the request.
fn approve_then_refused(
    d: &Daemon,
    c: &Caller,
    policy: &Path,
    argv: &[&str],
    arg1: &str,
    changed: &str,
) -> Value {
    let mut bg = spawn_run(d, c, policy, argv);
    let req = wait_pending(d, c, &format!("the exec of {arg1}"), |r| {
        r["kind"] == "exec" && r["argv"][1] == arg1
    });
    wait_line(d, &mut bg, changed, Duration::from_secs(10));
    let out = c.agentctl(&["approve", req["id"].as_str().unwrap_or_default()]);
    check_code(d, &out, 0, &format!("approve the exec of {arg1}"));
    wait_line(d, &mut bg, "exec errno:13", Duration::from_secs(10));
    let (status, _) = wait_end(d, &mut bg, Duration::from_secs(10));
    ensure(d, !status.success(), "the changed exec did not run");
    req
}
