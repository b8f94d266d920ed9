//! `agentctl audit RUN`: print a run's audit log, follow it, or verify its hash chain.
//!
//! The daemon reads the log (it is root's, mode 0600) and checks that the caller owns the run.
//! The human view is built by the pure [`format_record`], so it is unit-tested without a daemon.

use std::io::Write as _;
use std::path::Path;

use agentd_proto::{Request, Response};
use anyhow::{anyhow, Context, Result};
use serde_json::Value;

use crate::client::{Connection, Hinted};

mod suggest;

/// Show a run's audit log: every exec, open and connect decision, with its rule and reason
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run id, or a unique prefix of one (see `agentctl ps`)
    pub run: String,
    /// Print the raw records as JSON lines (one object per line, as stored)
    #[arg(long)]
    pub json: bool,
    /// Keep printing records as they are written, until the run has ended
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only show records of this kind
    #[arg(long, value_name = "KIND", value_parser = [
        "exec", "open", "connect", "run_start", "run_end", "daemon_start", "note",
    ])]
    pub kind: Option<String>,
    /// Only show decisions with this verdict
    #[arg(long, value_name = "VERDICT", value_parser = ["allow", "deny", "ask", "pause"])]
    pub verdict: Option<String>,
    /// Check the log's hash chain instead of printing it; exits 1 and names the first broken
    /// record if any record was changed, removed or reordered
    #[arg(long, conflicts_with_all = ["json", "follow", "kind", "verdict"])]
    pub verify: bool,
    /// Print the smallest policy additions that would have allowed the run's denials, as TOML
    /// to paste, each line with a comment saying what it would expose
    #[arg(long, conflicts_with_all = ["json", "follow", "kind", "verdict", "verify"])]
    pub suggest: bool,
}

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    let mut conn = Connection::connect(socket)?;
    let req = Request::Audit {
        run: args.run.clone(),
        follow: args.follow,
        kind: args.kind.clone(),
        verdict: if args.suggest {
            Some("deny".to_string())
        } else {
            args.verdict.clone()
        },
        verify: args.verify,
    };
    conn.send(req, &[])?;
    let mut out = std::io::stdout().lock();
    let mut denied: Vec<Value> = Vec::new();
    loop {
        let resp = conn
            .recv()
            .with_context(|| format!("cannot read the audit log of run {}", args.run))?;
        match resp {
            Some(Response::AuditRecords { records }) if args.suggest => denied.extend(records),
            Some(Response::AuditRecords { records }) => {
                for r in &records {
                    let line = if args.json {
                        serde_json::to_string(r)?
                    } else {
                        format_record(r)
                    };
                    writeln!(out, "{line}")?;
                }
                out.flush()?;
            }
            Some(Response::AuditEnd { verified }) => {
                if args.suggest {
                    write!(out, "{}", suggest::suggest(&args.run, &denied))?;
                }
                if let (true, Some(n)) = (args.verify, verified) {
                    writeln!(
                        out,
                        "audit log of run {}: {n} records, chain intact",
                        args.run
                    )?;
                }
                return Ok(0);
            }
            Some(Response::Error(body)) => return Err(Hinted::from(body).into()),
            Some(other) => {
                return Err(anyhow!("unexpected answer from agentd to audit: {other:?}"))
            }
            None => {
                return Err(anyhow!(
                    "agentd closed the connection before the end of the log"
                ))
            }
        }
    }
}

/// One record as a line: `SEQ  TIME  KIND  VERDICT  PID/COMM  WHAT  (rule: ID — REASON) [by WHO]`.
pub fn format_record(r: &Value) -> String {
    let s = |k: &str| r.get(k).and_then(Value::as_str);
    if let Some(why) = s("unreadable") {
        let at = r
            .get("seq")
            .or_else(|| r.get("line"))
            .map_or_else(|| "?".into(), Value::to_string);
        return format!("{at:>4}  unreadable record: {why}");
    }
    let seq = r.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let who = match (r.get("pid").and_then(Value::as_i64), s("comm")) {
        (Some(pid), Some(comm)) => format!("{pid}/{comm}"),
        (Some(pid), None) => pid.to_string(),
        (None, Some(comm)) => comm.to_string(),
        (None, None) => "-".into(),
    };
    let mut line = format!(
        "{seq:>4}  {}  {:<12}  {:<7}  {who}  {}",
        s("ts").unwrap_or("-"),
        s("kind").unwrap_or("-"),
        s("verdict").unwrap_or("-"),
        what(r),
    );
    match (s("rule"), s("reason")) {
        (Some(rule), Some(reason)) => line.push_str(&format!("  (rule: {rule} — {reason})")),
        (Some(rule), None) => line.push_str(&format!("  (rule: {rule})")),
        (None, Some(reason)) => line.push_str(&format!("  ({reason})")),
        (None, None) => {}
    }
    if let Some(by) = s("decided_by").filter(|b| *b != "policy") {
        line.push_str(&format!(" [by {by}]"));
    }
    // Paths, argv and command names are the agent's: never let one drive the terminal.
    agentd_proto::printable(line.trim_end()).into_owned()
}

/// What the record is about: the argv of an exec, the path of an open, the address of a
/// connect, the command of a run start, the status of a run end, or a message.
fn what(r: &Value) -> String {
    let s = |k: &str| r.get(k).and_then(Value::as_str);
    let argv = r.get("argv").and_then(Value::as_array).map(|a| {
        a.iter()
            .map(|v| {
                v.as_str()
                    .map_or_else(|| "?".into(), agentd_proto::shell_word)
            })
            .collect::<Vec<_>>()
            .join(" ")
    });
    let mut out = match s("kind") {
        Some("exec") => match (s("path"), argv) {
            (Some(p), Some(a)) => format!("{p}: {a}"),
            (p, a) => a.or(p.map(str::to_string)).unwrap_or_default(),
        },
        Some("connect") => s("addr").unwrap_or_default().to_string(),
        Some("run_start") => {
            let ws = s("workspace")
                .map(|w| format!(" in {w}"))
                .unwrap_or_default();
            format!("{}{ws}", argv.unwrap_or_default())
        }
        Some("run_end") => r.get("status").map(Value::to_string).unwrap_or_default(),
        _ => s("path")
            .or(s("addr"))
            .or(s("message"))
            .unwrap_or_default()
            .to_string(),
    };
    if let Some(access) = s("access") {
        out.push_str(&format!(" [{access}]"));
    }
    if let Some(errno) = r.get("errno").and_then(Value::as_i64) {
        out.push_str(&format!(" errno={errno}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn format_record_shows_decision_rule_and_human() {
        let r = json!({"seq": 7, "ts": "2025-01-01T00:00:00.000001Z", "run": "ab", "kind": "open",
            "pid": 42, "comm": "cat", "path": "/home/a/.ssh/id", "access": "read", "errno": 13,
            "verdict": "deny", "rule": "fs.secrets", "reason": "keys stay home",
            "decided_by": "uid:1000", "prev": "0", "hash": "1"});
        assert_eq!(
            format_record(&r),
            "   7  2025-01-01T00:00:00.000001Z  open          deny     42/cat  \
             /home/a/.ssh/id [read] errno=13  (rule: fs.secrets — keys stay home) [by uid:1000]"
        );
    }

    #[test]
    fn format_record_exec_connect_and_run_records() {
        let exec = json!({"seq": 2, "ts": "t", "kind": "exec", "pid": 5, "comm": "sh",
            "path": "/usr/bin/ls", "argv": ["ls", "-l"], "verdict": "allow",
            "rule": "exec.system", "decided_by": "policy"});
        assert_eq!(
            format_record(&exec),
            "   2  t  exec          allow    5/sh  /usr/bin/ls: ls -l  (rule: exec.system)"
        );
        let conn = json!({"seq": 3, "ts": "t", "kind": "connect", "addr": "10.0.0.1:5432",
            "verdict": "deny", "decided_by": "timeout"});
        assert!(format_record(&conn).ends_with("-  10.0.0.1:5432 [by timeout]"));
        let start = json!({"seq": 1, "ts": "t", "kind": "run_start", "argv": ["claude"],
            "workspace": "/w"});
        assert!(format_record(&start).ends_with("-  claude in /w"));
    }

    #[test]
    fn format_record_marks_unreadable_lines() {
        let r = json!({"line": 4, "unreadable": "expected value"});
        assert_eq!(format_record(&r), "   4  unreadable record: expected value");
    }
}
