//! What a run can see and do: the walls of the default policy, each probe first shown to work
//! outside the sandbox.

use std::os::unix::fs::MetadataExt;

use agentd_tests::caller::{AWS_SECRET, DOTENV_SECRET, LEAK, README_TEXT, SSH_KEY_SECRET};
use agentd_tests::{require, Caller, Daemon, Output};

use crate::{check, check_code, check_failed_inside, display, inside, inside_sh, start};

/// The probe failed inside and the secret appears nowhere in what the run printed.
#[track_caller]
fn check_secret_denied(d: &Daemon, out: &Output, secret: &str, what: &str) {
    check_failed_inside(d, out, what);
    check(
        d,
        out,
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        &format!("{what}: the secret leaked"),
    );
}

/// The caller can read `path` outside the sandbox and it contains `secret`.
#[track_caller]
fn check_readable_outside(d: &Daemon, c: &Caller, path: &str, secret: &str) {
    let out = c.unconfined(&["cat", path]);
    check(
        d,
        &out,
        out.success() && out.stdout.contains(secret),
        "unconfined: the caller must be able to read its own secret (else the probe proves nothing)",
    );
}

#[test]
fn run_cannot_read_home_ssh_key() {
    require!(sandbox);
    let (d, c) = start();
    let key = display(&c.home.join(".ssh/id_ed25519"));
    check_readable_outside(&d, &c, &key, SSH_KEY_SECRET);
    let out = inside(&c, &["cat", &key]);
    check_secret_denied(&d, &out, SSH_KEY_SECRET, "cat ~/.ssh/id_ed25519 (absolute)");
    let out = inside_sh(&c, "cat ~/.ssh/id_ed25519");
    check_secret_denied(&d, &out, SSH_KEY_SECRET, "cat ~/.ssh/id_ed25519 (via HOME)");
}

#[test]
fn run_cannot_read_home_aws_credentials() {
    require!(sandbox);
    let (d, c) = start();
    let creds = display(&c.home.join(".aws/credentials"));
    check_readable_outside(&d, &c, &creds, AWS_SECRET);
    let out = inside(&c, &["cat", &creds]);
    check_secret_denied(&d, &out, AWS_SECRET, "cat ~/.aws/credentials");
}

#[test]
fn run_cannot_read_workspace_dotenv_but_sees_workspace() {
    require!(sandbox);
    let (d, c) = start();
    check_readable_outside(&d, &c, ".env", DOTENV_SECRET);
    let out = inside(&c, &["cat", ".env"]);
    check_secret_denied(&d, &out, DOTENV_SECRET, "cat .env in the workspace");
    let out = c.run(&["ls", "-a"]);
    check_code(&d, &out, 0, "ls -a of the workspace");
    check(
        &d,
        &out,
        out.stdout.contains("README.md"),
        "ls shows README.md",
    );
    let out = c.run(&["cat", "README.md"]);
    check_code(&d, &out, 0, "cat README.md");
    check(
        &d,
        &out,
        out.stdout.contains(README_TEXT),
        "README.md content",
    );
}

#[test]
fn run_can_create_file_in_workspace_owned_by_caller() {
    require!(sandbox);
    let (d, c) = start();
    let out = c.sh("echo made-inside > new-file && echo more >> README.md");
    check_code(&d, &out, 0, "writing in the workspace");
    let new = c.workspace.join("new-file");
    let content = std::fs::read_to_string(&new).unwrap_or_default();
    check(
        &d,
        &out,
        content == "made-inside\n",
        "new-file visible outside with its content",
    );
    let meta = std::fs::metadata(&new).unwrap();
    check(
        &d,
        &out,
        meta.uid() == c.uid && meta.gid() == c.gid,
        &format!(
            "new-file owned by {}:{}, not {}:{}",
            meta.uid(),
            meta.gid(),
            c.uid,
            c.gid
        ),
    );
    let readme = std::fs::read_to_string(c.workspace.join("README.md")).unwrap();
    check(&d, &out, readme.ends_with("more\n"), "README.md appended");
}

#[test]
fn run_cannot_write_outside_workspace() {
    require!(sandbox);
    let (d, c) = start();
    let parent = c.workspace.parent().unwrap().to_path_buf();
    let targets = [
        c.home.join("pwned"),
        parent.join("pwned"),
        "/etc/agentd-e2e-pwned".into(),
        "/usr/agentd-e2e-pwned".into(),
    ];
    // The caller owns its home and the workspace's parent: outside, those writes succeed.
    for t in &targets[..2] {
        let out = c.unconfined_sh(&format!("echo x > '{}'", t.display()));
        check_code(&d, &out, 0, "unconfined: the caller can write here");
        std::fs::remove_file(t).unwrap();
    }
    for t in &targets {
        let out = inside_sh(&c, &format!("echo x > '{}'", t.display()));
        check_failed_inside(&d, &out, &format!("writing {}", t.display()));
        check(
            &d,
            &out,
            !t.exists(),
            &format!("{} must not exist", t.display()),
        );
    }
}

#[test]
fn run_tmp_is_private() {
    require!(sandbox);
    let (d, c) = start();
    let file = format!("agentd-e2e-private-{}", std::process::id());
    let out = c.sh(&format!("echo x > /tmp/{file} && ls -A /tmp"));
    check_code(&d, &out, 0, "writing the run's /tmp");
    let host_file = std::path::Path::new("/tmp").join(&file);
    check(
        &d,
        &out,
        !host_file.exists(),
        "the run's /tmp file leaked to the host",
    );
    // Only our file, and the top of the workspace path if the workspace lives under /tmp.
    let ws_top = c
        .workspace
        .strip_prefix("/tmp")
        .ok()
        .and_then(|p| p.components().next())
        .map(|p| p.as_os_str().to_string_lossy().into_owned());
    let foreign: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| *l != file && Some(*l) != ws_top.as_deref())
        .collect();
    check(
        &d,
        &out,
        foreign.is_empty(),
        &format!("the run's /tmp shows host entries {foreign:?}"),
    );
}

#[test]
fn run_sees_only_its_own_processes() {
    require!(sandbox);
    let (d, c) = start();
    let numeric = |out: &Output| -> Vec<String> {
        out.stdout
            .split_whitespace()
            .filter(|e| e.chars().all(|ch| ch.is_ascii_digit()))
            .map(str::to_owned)
            .collect()
    };
    let daemon_pid = d.pid().to_string();
    let out = c.unconfined(&["ls", "/proc"]);
    check(
        &d,
        &out,
        numeric(&out).contains(&daemon_pid),
        "unconfined: ls /proc shows agentd",
    );
    let out = c.run(&["ls", "/proc"]);
    check_code(&d, &out, 0, "ls /proc");
    let pids = numeric(&out);
    check(
        &d,
        &out,
        !pids.is_empty() && pids.len() <= 5 && !pids.contains(&daemon_pid),
        &format!("/proc inside the run must list a handful of the run's own pids, got {pids:?}"),
    );
}

/// The value of `Key:` in a /proc/PID/status dump.
fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::trim))
}

#[test]
fn run_has_caller_uid_and_no_capabilities() {
    require!(sandbox);
    let (d, c) = start();
    let out = c.run(&["id", "-u"]);
    check_code(&d, &out, 0, "id -u");
    check(
        &d,
        &out,
        out.stdout.trim() == c.uid.to_string(),
        "id -u prints the caller's uid",
    );

    let caps = ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"];
    let confined = |s: &str| {
        caps.iter()
            .all(|k| status_field(s, k).is_some_and(|v| v.trim_start_matches('0').is_empty()))
            && status_field(s, "NoNewPrivs") == Some("1")
    };
    let out = c.unconfined(&["cat", "/proc/self/status"]);
    check(
        &d,
        &out,
        out.success() && !confined(&out.stdout),
        "unconfined: the bounding set is full",
    );
    let out = c.run(&["cat", "/proc/self/status"]);
    check_code(&d, &out, 0, "cat /proc/self/status");
    check(
        &d,
        &out,
        confined(&out.stdout),
        "all capability sets zero and NoNewPrivs 1",
    );
    let uid_line = status_field(&out.stdout, "Uid").unwrap_or_default();
    let want = format!("{0}\t{0}\t{0}\t{0}", c.uid);
    check(
        &d,
        &out,
        uid_line == want,
        "real, effective, saved and fs uid are the caller's",
    );
}

#[test]
fn run_env_drops_secrets_keeps_path() {
    require!(sandbox);
    let (d, c) = start();
    let out = c.unconfined(&["env"]);
    check(
        &d,
        &out,
        out.stdout.contains(LEAK),
        "unconfined: the leak variables are set",
    );
    let out = c.run(&["env"]);
    check_code(&d, &out, 0, "env");
    check(
        &d,
        &out,
        !out.stdout.contains(LEAK),
        "a secret variable reached the run",
    );
    for var in ["AWS_SECRET_ACCESS_KEY=", "GITHUB_TOKEN="] {
        check(
            &d,
            &out,
            !out.stdout.lines().any(|l| l.starts_with(var)),
            var,
        );
    }
    check(
        &d,
        &out,
        out.stdout.lines().any(|l| l.starts_with("PATH=")),
        "PATH kept",
    );
}
