//! Bad input of every kind gets a clear, structured refusal, and the daemon keeps serving.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use agentd_proto::MAX_FRAME;
use agentd_tests::{bins, command, require, Daemon, Output};
use serde_json::Value;

use crate::{check, check_code, contains_ci, display, names_location, start, write_policy};

#[test]
fn run_with_invalid_policy_exits_125_naming_file_line_col() {
    require!(sandbox);
    let (d, c) = start();
    let policy = write_policy(
        &d,
        "unknown-key",
        "version = 1\nextends = [\"default\"]\nfrobnicate = true\n",
    );
    let out = c.run_policy(&policy, &["true"]);
    check_code(&d, &out, 125, "a policy with an unknown key");
    check(
        &d,
        &out,
        names_location(&out.stderr, "unknown-key.toml", 3),
        "the error names unknown-key.toml:3:COL",
    );
    check(
        &d,
        &out,
        out.stderr.contains("frobnicate"),
        "the error names the key",
    );
}

#[test]
fn run_with_missing_workspace_exits_125() {
    require!(sandbox);
    let (d, c) = start();
    let missing = d.dir().join("no-such-workspace");
    let ws = display(&missing);
    let out = c.agentctl(&["run", "--workspace", &ws, "--", "true"]);
    check_code(&d, &out, 125, "a workspace that does not exist");
    check(
        &d,
        &out,
        out.stderr.contains(&ws),
        "the error names the workspace",
    );
}

/// Sends `frame` raw on a fresh connection and returns the first reply line as JSON.
fn raw_exchange(d: &Daemon, frame: Vec<u8>) -> Value {
    let stream = UnixStream::connect(d.socket()).expect("connect to agentd");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    // A separate thread: the daemon may answer (and close) before it has read an oversized frame.
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&frame);
    });
    let mut line = String::new();
    let read = BufReader::new(stream).read_line(&mut line);
    let _ = sender.join();
    assert!(
        read.is_ok() && !line.is_empty(),
        "no reply from agentd ({read:?})\n--- agentd log ---\n{}",
        d.log()
    );
    serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "reply is not JSON ({e}): {line:?}\n--- agentd log ---\n{}",
            d.log()
        )
    })
}

/// Panics unless `reply` is `{"type":"error","code":CODE,"message":...}`.
#[track_caller]
fn assert_error(d: &Daemon, reply: &Value, code: &str) {
    let ok = reply.get("type").and_then(Value::as_str) == Some("error")
        && reply.get("code").and_then(Value::as_str) == Some(code)
        && reply
            .get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty());
    assert!(
        ok,
        "expected error {code}, got {reply}\n--- agentd log ---\n{}",
        d.log()
    );
}

/// The daemon still answers a normal client.
#[track_caller]
fn assert_still_serving(d: &mut Daemon, c: &agentd_tests::Caller) {
    assert!(
        d.is_running(),
        "agentd died\n--- agentd log ---\n{}",
        d.log()
    );
    let out = c.agentctl(&["ps"]);
    check_code(d, &out, 0, "agentctl ps after bad input");
}

#[test]
fn malformed_frames_get_structured_errors_and_daemon_keeps_serving() {
    require!(sandbox);
    let (mut d, c) = start();
    // The raw client works: a well-formed ps gets a list of runs.
    let reply = raw_exchange(&d, b"{\"v\":1,\"req\":{\"type\":\"ps\"}}\n".to_vec());
    assert_eq!(
        reply.get("type").and_then(Value::as_str),
        Some("runs"),
        "{reply}"
    );

    assert_error(
        &d,
        &raw_exchange(&d, b"this is not json\n".to_vec()),
        "malformed",
    );
    let unknown = b"{\"v\":1,\"req\":{\"type\":\"frobnicate\"}}\n".to_vec();
    assert_error(&d, &raw_exchange(&d, unknown), "malformed");
    let future = b"{\"v\":99,\"req\":{\"type\":\"ps\"}}\n".to_vec();
    assert_error(&d, &raw_exchange(&d, future), "unsupported_version");
    assert_still_serving(&mut d, &c);
}

#[test]
fn oversized_frame_gets_too_large_error_and_daemon_keeps_serving() {
    require!(sandbox);
    let (mut d, c) = start();
    let mut frame = vec![b'x'; MAX_FRAME + 4096];
    frame.push(b'\n');
    assert_error(&d, &raw_exchange(&d, frame), "too_large");
    assert_still_serving(&mut d, &c);
}

/// `agentctl policy check FILE` as root with a plain environment (no daemon involved).
fn policy_check(file: &Path) -> Output {
    let mut cmd = Command::new(bins::agentctl());
    cmd.args(["policy", "check"])
        .arg(file)
        .env_clear()
        .env("PATH", agentd_tests::caller::PATH)
        .env("HOME", "/root")
        .env("USER", "root")
        .current_dir(bins::repo_root());
    command::run(cmd, b"", command::TIMEOUT)
}

#[test]
fn policy_check_accepts_shipped_presets() {
    let dir = bins::policy_dir();
    let mut presets: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    presets.sort();
    for name in ["base.toml", "default.toml"] {
        assert!(dir.join(name).is_file(), "policies/{name} is missing");
    }
    for p in presets {
        let out = policy_check(&p);
        assert_eq!(
            out.code(),
            0,
            "{} must be valid\n{}",
            p.display(),
            out.describe()
        );
        assert!(
            !out.stdout.trim().is_empty(),
            "policy check prints the effective policy"
        );
    }
}

#[test]
fn policy_check_rejects_broken_file_with_location() {
    // Writing a temp file and running agentctl needs nothing privileged.
    let dir = agentd_tests::tempdir::TempDir::new();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        "version = 1\n\n[network]\nmode = \"none\"\nbogus = 1\n",
    )
    .unwrap();
    let out = policy_check(&file);
    assert_eq!(
        out.code(),
        1,
        "a broken policy must be rejected\n{}",
        out.describe()
    );
    assert!(
        names_location(&out.stderr, "broken.toml", 5),
        "the error must name broken.toml:5:COL\n{}",
        out.describe()
    );
    assert!(
        contains_ci(&out.stderr, "bogus"),
        "the error names the key\n{}",
        out.describe()
    );
}
