//! Exit statuses and standard streams cross the sandbox as `docker run` users expect.

use agentd_tests::{require, tempdir::write_owned};

use crate::{check, check_code, display, start};

#[test]
fn run_exit_code_propagates() {
    require!(sandbox);
    let (d, c) = start();
    let out = c.sh("exit 7");
    check_code(&d, &out, 7, "sh -c 'exit 7'");
    let out = c.run(&["true"]);
    check_code(&d, &out, 0, "true");
}

#[test]
fn run_killed_by_signal_exits_128_plus_signal() {
    require!(sandbox);
    let (d, c) = start();
    let out = c.sh("kill -TERM $$");
    check_code(&d, &out, 143, "sh -c 'kill -TERM $$'");
}

#[test]
fn run_missing_command_exits_127() {
    require!(sandbox);
    let (d, c) = start();
    let out = c.run(&["agentd-e2e-no-such-command"]);
    check_code(&d, &out, 127, "a command that does not exist");
    check(
        &d,
        &out,
        out.stderr.contains("cannot execute the command")
            && out.stderr.contains("agentd-e2e-no-such-command"),
        "agentctl says why the command did not run",
    );
    let out = c.run(&["/usr/bin/agentd-e2e-no-such-command"]);
    check_code(&d, &out, 127, "an absolute path that does not exist");
}

#[test]
fn run_non_executable_file_exits_126() {
    require!(sandbox);
    let (d, c) = start();
    let script = c.workspace.join("not-executable.sh");
    write_owned(&script, b"#!/bin/sh\necho ran\n", 0o644, c.uid, c.gid);
    let out = c.run(&[&display(&script)]);
    check_code(&d, &out, 126, "a file without the x bit");
    check(
        &d,
        &out,
        !out.stdout.contains("ran"),
        "the file must not run",
    );
}

#[test]
fn run_relays_stdin_and_stdout_through_pipes() {
    require!(sandbox);
    let (d, c) = start();
    let out = c.agentctl_with_stdin(
        &["run", "--", "cat"],
        b"hi\n",
        agentd_tests::command::TIMEOUT,
    );
    check_code(&d, &out, 0, "echo hi | agentctl run -- cat");
    check(&d, &out, out.stdout == "hi\n", "cat must echo its stdin");
}

#[test]
fn run_relays_stderr_separately() {
    require!(sandbox);
    let (d, c) = start();
    let out = c.sh("echo to-out; echo to-err >&2");
    check_code(&d, &out, 0, "echo to both streams");
    check(&d, &out, out.stdout.contains("to-out"), "stdout relayed");
    check(
        &d,
        &out,
        !out.stdout.contains("to-err"),
        "stderr not on stdout",
    );
    check(&d, &out, out.stderr.contains("to-err"), "stderr relayed");
}
