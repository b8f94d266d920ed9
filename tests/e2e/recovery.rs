//! Failing closed: a killed daemon leaves no run behind, a restarted one reports it lost; one
//! daemon per state dir; the wall-clock limit; and agentd never lets a caller reach a path they
//! could not reach themselves.

use std::time::{Duration, Instant};

use agentd_tests::command::{self, Background};
use agentd_tests::tempdir::{chown, set_mode, write_owned};
use agentd_tests::{require, Caller, Daemon};
use serde_json::Value;

use crate::{check, check_code, contains_ci, display, start, write_policy};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const GONE_TIMEOUT: Duration = Duration::from_secs(10);

fn ps_json(c: &Caller) -> Vec<Value> {
    let out = c.agentctl(&["ps", "--json"]);
    match serde_json::from_str::<Value>(&out.stdout) {
        Ok(Value::Array(a)) => a,
        _ => panic!("ps --json did not print a list: {}", out.describe()),
    }
}

fn run_with_marker(runs: &[Value], marker: &str) -> Option<Value> {
    runs.iter()
        .find(|r| {
            r.get("argv")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(marker)))
        })
        .cloned()
}

fn background_run(d: &Daemon, c: &Caller, script: &str, marker: &str) -> Background {
    let mut cmd = c.command(agentd_tests::bins::agentctl());
    cmd.arg("--socket")
        .arg(d.socket())
        .args(["run", "--", "sh", "-c", script, marker]);
    let mut bg = Background::spawn(cmd);
    if let Err(why) = bg.wait_for_line("started", START_TIMEOUT) {
        panic!("{}: {why}\n--- agentd log ---\n{}", bg.cmdline, d.log());
    }
    bg
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .is_some_and(|r| !r.starts_with('Z') && !r.starts_with('X'))
}

#[test]
fn daemon_sigkill_kills_the_run_and_restart_reports_it_lost() {
    require!(sandbox);
    let (mut d, c) = start();
    let marker = "recovery-sigkill";
    let mut bg = background_run(&d, &c, "sleep 300 & echo started; exec sleep 301", marker);
    let run = run_with_marker(&ps_json(&c), marker).expect("the run is listed");
    let id = run["id"].as_str().expect("id").to_string();
    let inspect = c.agentctl(&["inspect", &id, "--json"]);
    let detail: Value = serde_json::from_str(&inspect.stdout).expect("inspect --json");
    let pids: Vec<i64> = detail["detail"]["pids"]
        .as_array()
        .expect("pids")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert!(
        pids.len() >= 3 && pids.iter().all(|p| alive(*p)),
        "init, the shell's sleep and the background sleep are running: {pids:?}"
    );

    d.kill9();
    let deadline = Instant::now() + GONE_TIMEOUT;
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<_> = pids.iter().filter(|p| alive(**p)).collect();
    assert!(
        left.is_empty(),
        "processes survived agentd's death: {left:?}\n{}",
        d.log()
    );
    let (status, _) = bg
        .wait_timeout(GONE_TIMEOUT)
        .expect("agentctl ends when agentd dies");
    assert_eq!(status.code(), Some(125), "agentctl reports the lost daemon");

    d.restart();
    let run = run_with_marker(&ps_json(&c), marker).expect("the run is still listed");
    assert_eq!(
        run["state"], "lost",
        "restarted agentd reports the run lost: {run}"
    );
    assert!(
        contains_ci(&d.log(), "left by a previous agentd"),
        "{}",
        d.log()
    );

    // The restart is on the record, chained to what the killed daemon wrote.
    let audit = c.agentctl(&["audit", &id, "--json"]);
    check_code(&d, &audit, 0, "audit of the lost run");
    let kinds: Vec<String> = audit
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|r| r["kind"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("run_start"),
        "{kinds:?}"
    );
    assert!(
        kinds.ends_with(&["daemon_start".to_string(), "run_end".to_string()]),
        "the log ends with daemon_start, run_end: {kinds:?}"
    );
    let verify = c.agentctl(&["audit", &id, "--verify"]);
    check_code(
        &d,
        &verify,
        0,
        "the chain still verifies across the restart",
    );
}

#[test]
fn second_daemon_on_the_same_state_dir_refuses_to_start() {
    require!(sandbox);
    let d = Daemon::start();
    // Another socket and cgroup parent, so that only the state-dir lock can stop it.
    let mut cmd = std::process::Command::new(agentd_tests::bins::agentd());
    cmd.arg("--socket")
        .arg(d.dir().join("second.sock"))
        .arg("--state-dir")
        .arg(d.state_dir())
        .args(["--cgroup-parent", "agentd-test-second"]);
    let out = command::run(cmd, b"", command::TIMEOUT);
    check(
        &d,
        &out,
        !out.success() && contains_ci(&out.stderr, "another agentd is already running"),
        "a second agentd on the same state dir exits with a clear message",
    );
}

#[test]
fn run_wall_clock_limit_kills_the_run() {
    require!(sandbox);
    let (d, c) = start();
    let policy = write_policy(
        &d,
        "wall.toml",
        "version = 1\nextends = [\"default\"]\n[resources]\nwall = \"1s\"\n",
    );
    let t = Instant::now();
    let out = c.run_policy(&policy, &["sh", "-c", "sleep 30", "wall-marker"]);
    check_code(&d, &out, 137, "a run past its wall-clock limit is killed");
    check(
        &d,
        &out,
        t.elapsed() < Duration::from_secs(20),
        "killed long before sleep 30 ends",
    );
    let run = run_with_marker(&ps_json(&c), "wall-marker").expect("listed");
    let reason = run["exit"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("wall-clock"), "ps says why: {run}");
}

#[test]
fn run_refuses_a_grant_the_caller_cannot_reach() {
    require!(sandbox);
    let (d, c) = start();
    // A root-only directory holding a world-readable file: root can read it, the caller cannot
    // even traverse to it. Binding it for the run as root would leak it.
    let private = d.dir().join("root-only");
    let inner = private.join("inner");
    std::fs::create_dir_all(&inner).expect("mkdir");
    chown(&private, 0, 0);
    set_mode(&private, 0o700);
    set_mode(&inner, 0o755);
    write_owned(&inner.join("note"), b"ROOT-ONLY-NOTE", 0o644, 0, 0);
    let note = display(&inner.join("note"));
    assert!(
        std::fs::read_to_string(&note).is_ok_and(|s| s.contains("ROOT-ONLY-NOTE")),
        "root can read the file (the probe is live)"
    );
    let out = c.unconfined(&["cat", &note]);
    check(
        &d,
        &out,
        !out.success(),
        "the caller cannot read it outside the sandbox",
    );

    let policy = write_policy(
        &d,
        "reach.toml",
        &format!(
            "version = 1\nextends = [\"default\"]\n[filesystem]\nread = [\"{}\"]\n",
            display(&inner)
        ),
    );
    let out = c.run_policy(&policy, &["cat", &note]);
    check_code(&d, &out, 125, "agentd refuses the run");
    check(
        &d,
        &out,
        contains_ci(&out.stderr, "cannot access") && !out.stdout.contains("ROOT-ONLY-NOTE"),
        "the refusal names the path and nothing leaks",
    );
}
