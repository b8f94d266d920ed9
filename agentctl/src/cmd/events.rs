//! `agentctl events [--json]`: stream run and approval events (started, paused, resumed,
//! pending, decided, exited) until interrupted or until agentd closes the connection.
//!
//! The lines are built by the pure [`format_event`], shared with `pending --follow` and `watch`.

use std::io::{self, Write};
use std::path::Path;

use agentd_proto::{DaemonEvent, Request, Response};
use anyhow::{anyhow, Context, Result};

use crate::client::{Connection, Hinted};
use crate::cmd::pending::{expires, target};

/// Stream run and approval events (started, paused, resumed, pending, decided, exited)
///
/// Runs until interrupted or until agentd closes the connection (exit 0). You see the events of
/// your own runs; root sees every run's.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print each event as a JSON object on its own line
    #[arg(long)]
    pub json: bool,
}

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    let mut conn = Connection::connect(socket)?;
    conn.send(Request::Events, &[])
        .context("cannot subscribe to events")?;
    let mut out = io::stdout().lock();
    loop {
        let Some(event) = next_event(&mut conn).context("cannot read events")? else {
            return Ok(0);
        };
        if print_event(&mut out, &event, args.json).is_err() {
            // Our reader went away (`agentctl events | head`): that is a normal end.
            return Ok(0);
        }
    }
}

/// The next event on a subscribed connection; `None` once agentd closed it.
pub fn next_event(conn: &mut Connection) -> Result<Option<DaemonEvent>> {
    match conn.recv()? {
        Some(Response::DaemonEvent { event }) => Ok(Some(event)),
        Some(Response::Error(body)) => Err(Hinted::from(body).into()),
        Some(other) => Err(anyhow!("unexpected frame from agentd: {other:?}")),
        None => Ok(None),
    }
}

/// Writes one event as a line (or a JSON line) and flushes.
pub fn print_event(out: &mut impl Write, event: &DaemonEvent, json: bool) -> io::Result<()> {
    let line = if json {
        serde_json::to_string(event).map_err(io::Error::other)?
    } else {
        format_event(event, now_ms())
    };
    writeln!(out, "{line}")?;
    out.flush()
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `TIME  KIND  RUN  DETAILS`, e.g.
/// `2025-01-01T10:00:00.250Z  pending   r1  q7 connect 10.0.0.5:5432 (rule: db — production database) 42/curl, expires in 30s`.
pub fn format_event(e: &DaemonEvent, now_ms: u64) -> String {
    let details = match e.kind.as_str() {
        "pending" => e.pending.as_ref().map_or_else(String::new, |p| {
            // In full: a human may answer from this line.
            let mut s = format!("{} {} {}", p.id, p.kind, p.subject());
            match &p.rule {
                Some(rule) => s.push_str(&format!(" (rule: {rule} — {})", p.reason)),
                None => s.push_str(&format!(" ({})", p.reason)),
            }
            s.push_str(&format!(
                " {}/{}, expires {}",
                p.pid,
                agentd_proto::printable(&p.comm),
                expires(p.deadline_ms, now_ms)
            ));
            if p.waiting > 1 {
                s.push_str(&format!(", {} waiting", p.waiting));
            }
            if p.pause {
                s.push_str(", run paused");
            }
            s
        }),
        "decided" => {
            let what = e.pending.as_ref().map_or_else(String::new, |p| {
                format!("{} {} {}: ", p.id, p.kind, target(&p.subject()))
            });
            let by =
                e.by.as_deref()
                    .map(|b| format!(" by {b}"))
                    .unwrap_or_default();
            format!("{what}{}{by}", e.decision.as_deref().unwrap_or("?"))
        }
        "exited" => e
            .exit
            .as_ref()
            .map(crate::cmd::inspect::describe_exit)
            .unwrap_or_default(),
        _ => format!("uid {}", e.uid),
    };
    let line = format!("{}  {:<8}  {}  {details}", utc_time(e.at_ms), e.kind, e.run);
    agentd_proto::printable(line.trim_end()).into_owned()
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (the audit log's clock, UTC).
pub fn utc_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = agentd_proto::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_proto::{ExitStatus, PendingRequest};

    fn event(kind: &str) -> DaemonEvent {
        DaemonEvent {
            kind: kind.into(),
            run: "r1".into(),
            uid: 1000,
            at_ms: 1_735_725_600_250,
            pending: None,
            decision: None,
            by: None,
            exit: None,
        }
    }

    fn pending() -> PendingRequest {
        PendingRequest {
            id: "q7".into(),
            run: "r1".into(),
            uid: 1000,
            kind: "connect".into(),
            target: "10.0.0.5:5432".into(),
            argv: None,
            access: None,
            argv_hidden: 0,
            pid: 42,
            comm: "curl".into(),
            rule: Some("db".into()),
            reason: "production database".into(),
            pause: false,
            waiting: 1,
            deadline_ms: 1_735_725_630_250,
            key: String::new(),
        }
    }

    #[test]
    fn utc_time_formats_known_instants() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_time(1_735_725_600_250), "2025-01-01T10:00:00.250Z");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn format_event_pending_names_request_rule_and_countdown() {
        let mut e = event("pending");
        e.pending = Some(pending());
        assert_eq!(
            format_event(&e, 1_735_725_600_250),
            "2025-01-01T10:00:00.250Z  pending   r1  q7 connect 10.0.0.5:5432 \
             (rule: db — production database) 42/curl, expires in 30s"
        );
    }

    #[test]
    fn format_event_decided_and_exited_and_plain_kinds() {
        let mut e = event("decided");
        e.pending = Some(pending());
        e.decision = Some("deny".into());
        e.by = Some("uid:1000".into());
        assert!(
            format_event(&e, 0)
                .ends_with("decided   r1  q7 connect 10.0.0.5:5432: deny by uid:1000"),
            "{}",
            format_event(&e, 0)
        );
        let mut e = event("exited");
        e.exit = Some(ExitStatus::Code { code: 0 });
        assert!(format_event(&e, 0).ends_with("exited    r1  exited with code 0 (exit code 0)"));
        assert!(format_event(&event("paused"), 0).ends_with("paused    r1  uid 1000"));
    }
}
