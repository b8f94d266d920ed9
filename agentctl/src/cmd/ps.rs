//! `agentctl ps`: list runs (the caller's own; root sees all) as a table or as JSON.
//!
//! The table is built by the pure [`format_table`], so its layout is unit-tested without a
//! daemon.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use agentd_proto::{Request, Response, RunInfo, RunState};
use anyhow::{bail, Context, Result};

/// List runs: your own, or every run when you are root
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the runs as a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

/// The widest COMMAND cell; longer commands end in `…`.
const COMMAND_WIDTH: usize = 48;

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    let resp = crate::client::request(socket, Request::Ps).context("cannot list runs")?;
    let Response::Runs { runs } = resp else {
        bail!("unexpected answer from agentd to ps: {resp:?}");
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        print!("{}", format_table(&runs, now_secs()));
    }
    Ok(0)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `ps` table, one line per run, columns padded to their widest cell.
pub fn format_table(runs: &[RunInfo], now: u64) -> String {
    let header = ["ID", "STATE", "UID", "AGE", "PID", "POLICY", "COMMAND"].map(String::from);
    let mut rows = vec![header.to_vec()];
    rows.extend(runs.iter().map(|r| {
        vec![
            r.id.clone(),
            state_label(r, now),
            r.uid.to_string(),
            age(now.saturating_sub(r.started_at)),
            r.pid.map_or_else(|| "-".to_string(), |p| p.to_string()),
            r.policy.clone(),
            truncate(&r.argv.join(" "), COMMAND_WIDTH),
        ]
    }));
    align(&rows)
        .into_iter()
        .fold(String::new(), |mut out, line| {
            out.push_str(&line);
            out.push('\n');
            out
        })
}

/// Rows of cells as lines, each column padded to its widest cell (two spaces apart), trailing
/// blanks trimmed. Shared by every table agentctl prints.
pub fn align(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|col| {
            rows.iter()
                .map(|row| row.get(col).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (cell, width) in row.iter().zip(&widths) {
                line.push_str(&format!("{cell:<width$}  "));
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// `running`, `paused(5m)` with how long it has been paused, or `exited(N)` with the code
/// `agentctl run` returned.
pub fn state_label(run: &RunInfo, now: u64) -> String {
    let state = match run.state {
        RunState::Starting => "starting",
        RunState::Running => "running",
        RunState::Paused => "paused",
        RunState::Exited => "exited",
        RunState::Lost => "lost",
    };
    match (&run.exit, run.paused_since) {
        (Some(status), _) => format!("{state}({})", status.exit_code()),
        (None, Some(since)) if run.state == RunState::Paused => {
            format!("{state}({})", age(now.saturating_sub(since)))
        }
        (None, _) => state.to_string(),
    }
}

/// A compact age: `42s`, `5m`, `3h`, `2d`.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_proto::ExitStatus;

    fn info(id: &str, argv: &[&str], exit: Option<ExitStatus>) -> RunInfo {
        RunInfo {
            id: id.into(),
            uid: 1000,
            state: if exit.is_some() {
                RunState::Exited
            } else {
                RunState::Running
            },
            argv: argv.iter().map(|s| s.to_string()).collect(),
            workspace: "/w".into(),
            policy: "default".into(),
            started_at: 1_000,
            pid: exit.is_none().then_some(4242),
            exit,
            paused_since: None,
            detail: None,
        }
    }

    #[test]
    fn format_table_aligns_columns() {
        let runs = [
            info("a1b2", &["claude", "--resume"], None),
            info("c3", &["sh"], Some(ExitStatus::Code { code: 3 })),
        ];
        let table = format_table(&runs, 1_090);
        let expected = "\
ID    STATE      UID   AGE  PID   POLICY   COMMAND
a1b2  running    1000  1m   4242  default  claude --resume
c3    exited(3)  1000  1m   -     default  sh
";
        assert_eq!(table, expected);
    }

    #[test]
    fn format_table_shows_paused_runs_with_their_pause_age() {
        let mut run = info("p1", &["sh"], None);
        run.state = RunState::Paused;
        run.paused_since = Some(1_030);
        let table = format_table(&[run], 1_090);
        assert!(
            table.contains("p1  paused(1m)  1000  1m   4242  default  sh"),
            "{table}"
        );
    }

    #[test]
    fn format_table_without_runs_prints_header_only() {
        assert_eq!(
            format_table(&[], 0),
            "ID  STATE  UID  AGE  PID  POLICY  COMMAND\n"
        );
    }

    #[test]
    fn format_table_truncates_long_commands() {
        let long = "x".repeat(100);
        let table = format_table(&[info("a", &[&long], None)], 1_000);
        let last = table.lines().last().unwrap_or_default();
        assert!(last.ends_with('…'), "{last}");
        assert_eq!(
            last.split_whitespace().last().map(|c| c.chars().count()),
            Some(COMMAND_WIDTH)
        );
    }

    #[test]
    fn age_uses_largest_unit() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(60), "1m");
        assert_eq!(age(7_200), "2h");
        assert_eq!(age(200_000), "2d");
    }
}
