//! `agentctl inspect RUN`: every field of one run, including the daemon's detail (pids, cgroup,
//! resource usage) and the effective policy as TOML.

use std::fmt::Write as _;
use std::path::Path;

use agentd_proto::{ExitStatus, Request, Response, RunInfo, RunState};
use anyhow::{bail, Context, Result};

use crate::cmd::ps::{age, now_secs, state_label};

/// Show everything about one run, including its effective policy
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run id, or a unique prefix of one (see `agentctl ps`)
    pub run: String,
    /// Print the run as a JSON object
    #[arg(long)]
    pub json: bool,
}

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    let resp = crate::client::request(
        socket,
        Request::Inspect {
            run: args.run.clone(),
        },
    )
    .with_context(|| format!("cannot inspect run {}", args.run))?;
    let Response::Run { run } = resp else {
        bail!("unexpected answer from agentd to inspect: {resp:?}");
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        print!("{}", format_run(&run, now_secs()));
    }
    Ok(0)
}

/// The human view: `key: value` lines, then the policy TOML.
pub fn format_run(run: &RunInfo, now: u64) -> String {
    let mut out = String::new();
    let mut field = |k: &str, v: String| {
        let _ = writeln!(out, "{k:<15} {v}");
    };
    field("id:", run.id.clone());
    field("state:", state_label(run, now));
    if let (RunState::Paused, Some(since)) = (run.state, run.paused_since) {
        field(
            "paused:",
            format!(
                "since {} ago (unix time {since})",
                age(now.saturating_sub(since))
            ),
        );
    }
    field("uid:", run.uid.to_string());
    field("command:", shell_words(&run.argv));
    field("workspace:", run.workspace.clone());
    field("policy:", run.policy.clone());
    field(
        "started:",
        format!(
            "{} ago (unix time {})",
            age(now.saturating_sub(run.started_at)),
            run.started_at
        ),
    );
    field("pid:", opt(run.pid));
    if let Some(exit) = &run.exit {
        field("exit:", describe_exit(exit));
    }
    let Some(d) = &run.detail else {
        return out;
    };
    let pids: Vec<String> = d.pids.iter().map(i32::to_string).collect();
    field("pids:", pids.join(" "));
    field("cgroup:", d.cgroup.clone());
    field(
        "cpu:",
        d.cpu_seconds.map_or("-".into(), |s| format!("{s:.2}s")),
    );
    field("memory peak:", bytes(d.memory_peak_bytes));
    field("memory now:", bytes(d.memory_current_bytes));
    out.push_str("\neffective policy:\n");
    for line in d.policy_toml.lines() {
        let _ = writeln!(out, "    {line}");
    }
    out
}

/// `exited with code 3 (exit code 3)`, `killed: memory limit (exit code 137)`, …
pub fn describe_exit(exit: &ExitStatus) -> String {
    let what = match exit {
        ExitStatus::Code { code } => format!("exited with code {code}"),
        ExitStatus::Signal { signal } => format!("killed by signal {signal}"),
        ExitStatus::ExecFailed { message, .. } => format!("could not execute: {message}"),
        ExitStatus::Killed { reason } => format!("killed: {reason}"),
        ExitStatus::Lost => "lost (agentd restarted while it ran)".into(),
    };
    format!("{what} (exit code {})", exit.exit_code())
}

fn opt(v: Option<i32>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn bytes(v: Option<u64>) -> String {
    const MIB: u64 = 1024 * 1024;
    match v {
        None => "-".into(),
        Some(b) if b >= MIB => format!("{} MiB ({b} bytes)", b / MIB),
        Some(b) => format!("{b} bytes"),
    }
}

/// argv joined by spaces, quoting words that would otherwise be ambiguous.
fn shell_words(argv: &[String]) -> String {
    let quote = |w: &String| {
        if !w.is_empty() && !w.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
            w.clone()
        } else {
            format!("'{}'", w.replace('\'', r"'\''"))
        }
    };
    argv.iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_proto::RunDetail;

    #[test]
    fn format_run_shows_detail_and_policy() {
        let run = RunInfo {
            id: "r1".into(),
            uid: 0,
            state: RunState::Running,
            argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
            workspace: "/w".into(),
            policy: "default".into(),
            started_at: 100,
            pid: Some(7),
            exit: None,
            paused_since: None,
            detail: Some(RunDetail {
                pids: vec![7, 8],
                cgroup: "/sys/fs/cgroup/agentd/r1".into(),
                cpu_seconds: Some(1.5),
                memory_peak_bytes: Some(3 * 1024 * 1024),
                memory_current_bytes: None,
                policy_toml: "[network]\nmode = \"none\"\n".into(),
            }),
        };
        let text = format_run(&run, 110);
        assert!(text.contains("command:        sh -c 'echo hi'\n"), "{text}");
        assert!(text.contains("pids:           7 8\n"), "{text}");
        assert!(text.contains("memory peak:    3 MiB"), "{text}");
        assert!(text.contains("memory now:     -\n"), "{text}");
        assert!(
            text.ends_with("    [network]\n    mode = \"none\"\n"),
            "{text}"
        );
    }

    #[test]
    fn format_run_shows_since_when_a_run_is_paused() {
        let run = RunInfo {
            id: "r1".into(),
            uid: 0,
            state: RunState::Paused,
            argv: vec!["sh".into()],
            workspace: "/w".into(),
            policy: "default".into(),
            started_at: 100,
            pid: Some(7),
            exit: None,
            paused_since: Some(400),
            detail: None,
        };
        let text = format_run(&run, 430);
        assert!(text.contains("state:          paused(30s)\n"), "{text}");
        assert!(
            text.contains("paused:         since 30s ago (unix time 400)\n"),
            "{text}"
        );
    }
}
