//! Control of running runs: ps, inspect, kill, and who may do what.

use std::time::Duration;

use agentd_tests::caller::OTHER_UID;
use agentd_tests::command::Background;
use agentd_tests::{require, Caller, Daemon, Feature};
use serde_json::Value;

use crate::{check, check_code, contains_ci, start};

/// How long a background run may take to print its readiness line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A run of `sh -c 'echo started; exec sleep 30' MARKER` in the background, started and confined.
fn spawn_sleeper(d: &Daemon, c: &Caller, marker: &str) -> Background {
    let mut cmd = c.command(agentd_tests::bins::agentctl());
    cmd.arg("--socket").arg(d.socket()).args([
        "run",
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 30",
        marker,
    ]);
    let mut bg = Background::spawn(cmd);
    if let Err(why) = bg.wait_for_line("started", START_TIMEOUT) {
        panic!("{}: {why}\n--- agentd log ---\n{}", bg.cmdline, d.log());
    }
    bg
}

/// The run objects in `ps --json` output: a list, or `{"runs": [...]}`.
fn runs(json: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Array(a)) => a,
        Ok(Value::Object(o)) => match o.get("runs") {
            Some(Value::Array(a)) => a.clone(),
            _ => vec![Value::Object(o)],
        },
        _ => Vec::new(),
    }
}

/// Whether a run's argv mentions `marker`.
fn has_marker(run: &Value, marker: &str) -> bool {
    run.get("argv")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(marker)))
}

/// `(id, state)` of the run whose argv mentions `marker`, from `ps --json` output.
fn find_run(json: &str, marker: &str) -> Option<(String, String)> {
    runs(json)
        .into_iter()
        .find(|r| has_marker(r, marker))
        .map(|r| {
            let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
            let state = r.get("state").and_then(Value::as_str).unwrap_or_default();
            (id.to_owned(), state.to_owned())
        })
}

/// The id of the caller's run marked `marker`, from the caller's own `ps --json`.
fn run_id(d: &Daemon, c: &Caller, marker: &str) -> String {
    let out = c.agentctl(&["ps", "--json"]);
    check_code(d, &out, 0, "agentctl ps --json");
    let found = find_run(&out.stdout, marker);
    check(
        d,
        &out,
        found.is_some(),
        &format!("ps --json lists the run {marker}"),
    );
    let (id, state) = found.unwrap();
    check(
        d,
        &out,
        !id.is_empty() && state == "running",
        "the run has an id and is running",
    );
    id
}

/// The first value under `key` anywhere in `v`.
fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o
            .get(key)
            .or_else(|| o.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

#[test]
fn ps_shows_callers_running_run() {
    require!(sandbox);
    let (d, c) = start();
    let _bg = spawn_sleeper(&d, &c, "e2e-ps");
    let id = run_id(&d, &c, "e2e-ps");
    let out = c.agentctl(&["ps"]);
    check_code(&d, &out, 0, "agentctl ps");
    let short: String = id.chars().take(8).collect();
    check(
        &d,
        &out,
        out.stdout.contains(&short),
        "plain ps shows the run's id",
    );
}

#[test]
fn kill_by_other_user_is_refused_and_run_keeps_running() {
    require!(sandbox, Feature::Cgroup2Unified);
    let (d, c) = start();
    let other = Caller::new(&d, OTHER_UID);
    let mut bg = spawn_sleeper(&d, &c, "e2e-victim");
    let id = run_id(&d, &c, "e2e-victim");

    let out = other.agentctl(&["kill", &id]);
    check(
        &d,
        &out,
        !out.success(),
        "another user's kill must be refused",
    );
    check(
        &d,
        &out,
        contains_ci(&out.stderr, "permission"),
        "the refusal says permission",
    );
    check(
        &d,
        &out,
        bg.try_status().is_none(),
        "the run survives the refused kill",
    );
    let out = d.agentctl_as_root(&["ps", "--json"]);
    let state = find_run(&out.stdout, "e2e-victim").map(|(_, s)| s);
    check(
        &d,
        &out,
        state.as_deref() == Some("running"),
        "root's ps: still running",
    );

    let out = c.agentctl(&["kill", &id]);
    check_code(&d, &out, 0, "the owner's kill");
    let ended = bg.wait_timeout(Duration::from_secs(20));
    check(
        &d,
        &out,
        ended.as_ref().is_some_and(|(s, _)| !s.success()),
        &format!("agentctl run must end non-zero after the kill: {ended:?}"),
    );
}

#[test]
fn ps_as_root_sees_all_users_runs() {
    require!(sandbox);
    let (d, c) = start();
    let other = Caller::new(&d, OTHER_UID);
    let _a = spawn_sleeper(&d, &c, "e2e-mine");
    let _b = spawn_sleeper(&d, &other, "e2e-theirs");
    let out = d.agentctl_as_root(&["ps", "--json"]);
    check_code(&d, &out, 0, "root: agentctl ps --json");
    check(
        &d,
        &out,
        find_run(&out.stdout, "e2e-mine").is_some()
            && find_run(&out.stdout, "e2e-theirs").is_some(),
        "root sees both users' runs",
    );
    let out = c.agentctl(&["ps", "--json"]);
    check_code(&d, &out, 0, "owner: agentctl ps --json");
    check(
        &d,
        &out,
        find_run(&out.stdout, "e2e-mine").is_some()
            && find_run(&out.stdout, "e2e-theirs").is_none(),
        "a user sees only their own runs",
    );
}

#[test]
fn inspect_json_shows_pids_and_cgroup() {
    require!(sandbox, Feature::Cgroup2Unified);
    let (d, c) = start();
    let _bg = spawn_sleeper(&d, &c, "e2e-inspect");
    let id = run_id(&d, &c, "e2e-inspect");
    let out = c.agentctl(&["inspect", &id, "--json"]);
    check_code(&d, &out, 0, "agentctl inspect --json");
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    let pids: Vec<i64> = find_key(&v, "pids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let cgroup = find_key(&v, "cgroup")
        .and_then(Value::as_str)
        .unwrap_or_default();
    check(&d, &out, !pids.is_empty(), "inspect lists the run's pids");
    check(
        &d,
        &out,
        !cgroup.is_empty(),
        "inspect names the run's cgroup",
    );
    let leaf = cgroup
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    for pid in &pids {
        let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        check(
            &d,
            &out,
            !leaf.is_empty() && membership.contains(leaf),
            &format!("pid {pid} is in cgroup {cgroup}: /proc/{pid}/cgroup =\n{membership}"),
        );
    }
}
