//! agentd end to end: the real `agentd` on a temp socket, driven by the real `agentctl` as an
//! unprivileged caller (see `agentd_tests` for the fixtures). One binary, one module per area.
//!
//! Every confinement test first shows that its probe succeeds *outside* the sandbox (the secret is
//! readable by the caller, the listener is reachable), so a broken probe cannot pass as a wall.
//! Every test is gated with `require!` on the host capabilities it needs and bounded in time.

// Test code: a failed expectation must fail the test loudly. clippy.toml's allow-*-in-tests does
// not reach crates under tests/ (rust-clippy#13981).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abuse;
mod bad_input;
mod confine;
mod control;
mod escape;
mod exit;
mod human;
mod limits;
mod monitor;
mod presets;
mod reach;
mod recovery;

use std::path::{Path, PathBuf};

use agentd_tests::caller::OWNER_UID;
use agentd_tests::tempdir::write_owned;
use agentd_tests::{Caller, Daemon, Output};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A daemon and the usual caller.
fn start() -> (Daemon, Caller) {
    let daemon = Daemon::start();
    let caller = Caller::new(&daemon, OWNER_UID);
    (daemon, caller)
}

/// Panics with `what`, the command's output and agentd's log unless `ok`.
#[track_caller]
fn check(daemon: &Daemon, out: &Output, ok: bool, what: &str) {
    assert!(ok, "{what}\n{}", daemon.explain(out));
}

/// Panics unless the command exited with `code`.
#[track_caller]
fn check_code(daemon: &Daemon, out: &Output, code: i32, what: &str) {
    check(
        daemon,
        out,
        out.code() == code,
        &format!("{what}: expected exit {code}, got {}", out.code()),
    );
}

/// Writes a policy file (0644, root-owned) into `<daemon dir>/policies/NAME.toml`.
fn write_policy(daemon: &Daemon, name: &str, toml: &str) -> PathBuf {
    let dir = daemon.dir().join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    agentd_tests::tempdir::set_mode(&dir, 0o755);
    let path = dir.join(format!("{name}.toml"));
    write_owned(&path, toml.as_bytes(), 0o644, 0, 0);
    path
}

/// Whether `haystack` contains `needle` (ASCII case-insensitive).
fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

/// Whether `text` contains `FILE:LINE:COL` for a file whose path ends with `file`.
fn names_location(text: &str, file: &str, line: u32) -> bool {
    let pat = format!("{file}:{line}:");
    text.match_indices(&pat).any(|(i, _)| {
        text[i + pat.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// The first line every "must fail inside" probe prints, so a refused or broken run (exit 125,
/// nothing executed) can never pass as a wall that held.
const INSIDE: &str = "agentd-e2e-inside";

/// `sh -c 'echo INSIDE; exec ARGV…'` in a run.
fn inside(c: &Caller, argv: &[&str]) -> Output {
    let mut full = vec!["sh", "-c", "echo agentd-e2e-inside; exec \"$@\"", "sh"];
    full.extend_from_slice(argv);
    c.run(&full)
}

/// `sh -c 'echo INSIDE; SCRIPT'` in a run.
fn inside_sh(c: &Caller, script: &str) -> Output {
    c.sh(&format!("echo {INSIDE}; {script}"))
}

/// The run started (its first line is [`INSIDE`]) and then the probe failed with an ordinary
/// error status (1..=124: not agentd's 125, nor 126/127 for a missing command).
#[track_caller]
fn check_failed_inside(daemon: &Daemon, out: &Output, what: &str) {
    let ran = out.stdout.lines().next() == Some(INSIDE);
    check(daemon, out, ran, &format!("{what}: the run did not start"));
    check(
        daemon,
        out,
        (1..=124).contains(&out.code()),
        &format!(
            "{what}: must fail inside the run (exit 1..=124), got {}",
            out.code()
        ),
    );
}

pub fn audit_path(d: &Daemon, run: &str) -> std::path::PathBuf {
    d.state_dir().join("runs").join(run).join("audit.jsonl")
}

/// The run's audit records, read as root from the state dir once the log ends with `run_end`
/// (bounded: the writer flushes when its queue is empty and fsyncs at the run's end).
#[track_caller]
pub fn audit(d: &Daemon, out: &Output, run: &str) -> Vec<Value> {
    check(d, out, !run.is_empty(), "no `started` frame: no run id");
    let path = audit_path(d, run);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let records: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if records.last().is_some_and(|r| r["kind"] == "run_end") {
            return records;
        }
        if Instant::now() > deadline {
            check(
                d,
                out,
                false,
                &format!(
                    "{} has no run_end record 10 s after the run ({} records)",
                    path.display(),
                    records.len()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
