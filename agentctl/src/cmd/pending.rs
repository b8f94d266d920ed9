//! `agentctl pending [--json] [--follow]`: the held calls waiting for a human (the caller's
//! runs; root: every run), then optionally the `pending` and `decided` events as they happen.
//!
//! The table is built by the pure [`table_lines`], shared with `watch`.

use std::io::{self, Write};
use std::path::Path;

use agentd_proto::{PendingRequest, Request, Response};
use anyhow::{anyhow, bail, Context, Result};

use crate::client::{Connection, Hinted};
use crate::cmd::events::{next_event, now_ms, print_event};
use crate::cmd::ps::align;

/// List the calls waiting for your approval (answer with `agentctl approve` / `deny`)
///
/// Columns: ID (for approve/deny), RUN, KIND (exec, open, connect), TARGET, RULE, REASON,
/// EXPIRES (when nobody answers, the call is denied) and WAITING (identical calls held).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the requests as a JSON array (with --follow: one line, then one JSON object per
    /// event)
    #[arg(long)]
    pub json: bool,
    /// Then keep printing requests as they arrive and decisions as they are made, until
    /// interrupted
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// The widest TARGET cell; longer targets end in `…`.
pub(crate) const TARGET_WIDTH: usize = 48;

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    let mut conn = Connection::connect(socket)?;
    conn.send(
        Request::Pending {
            follow: args.follow,
        },
        &[],
    )
    .context("cannot list pending requests")?;
    let requests = match conn.recv().context("cannot list pending requests")? {
        Some(Response::Pending { requests, omitted }) => {
            if omitted > 0 {
                eprintln!(
                    "agentctl: {omitted} more requests are waiting than fit in one answer; \
                     the most urgent are listed"
                );
            }
            requests
        }
        Some(Response::Error(body)) => {
            return Err(
                anyhow::Error::new(Hinted::from(body)).context("cannot list pending requests")
            )
        }
        Some(other) => bail!("unexpected answer from agentd to pending: {other:?}"),
        None => return Err(anyhow!("agentd closed the connection without answering")),
    };
    let mut out = io::stdout().lock();
    let printed = match (args.json, args.follow) {
        (true, false) => writeln!(out, "{}", serde_json::to_string_pretty(&requests)?),
        (true, true) => writeln!(out, "{}", serde_json::to_string(&requests)?),
        (false, _) => table_lines(&requests, now_ms())
            .iter()
            .chain(in_full(&requests).iter())
            .try_for_each(|l| writeln!(out, "{l}")),
    };
    if printed.and_then(|()| out.flush()).is_err() || !args.follow {
        return Ok(0);
    }
    while let Some(event) = next_event(&mut conn).context("cannot follow pending requests")? {
        if event.kind != "pending" && event.kind != "decided" {
            continue;
        }
        if print_event(&mut out, &event, args.json).is_err() {
            break;
        }
    }
    Ok(0)
}

/// The table: a header, then one line per request.
pub fn table_lines(requests: &[PendingRequest], now_ms: u64) -> Vec<String> {
    let header = [
        "ID", "RUN", "KIND", "TARGET", "RULE", "REASON", "EXPIRES", "WAITING",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    rows.extend(requests.iter().map(|p| {
        let mut reason = p.reason.clone();
        if p.pause {
            reason.push_str(" [run paused]");
        }
        vec![
            p.id.clone(),
            p.run.clone(),
            p.kind.clone(),
            target(&p.subject()),
            p.rule.clone().unwrap_or_else(|| "-".into()),
            reason,
            expires(p.deadline_ms, now_ms),
            p.waiting.to_string(),
        ]
    }));
    // Paths, argv and command names are the agent's: never let one drive the terminal.
    for cell in rows.iter_mut().flatten() {
        if let std::borrow::Cow::Owned(clean) = agentd_proto::printable(cell) {
            *cell = clean;
        }
    }
    align(&rows)
}

/// After the table, each request whose TARGET cell was shortened, in full (a human must see
/// all of what they approve): `ID in full: SUBJECT`.
pub fn in_full(requests: &[PendingRequest]) -> Vec<String> {
    let long: Vec<String> = requests
        .iter()
        .filter(|p| agentd_proto::printable(&p.subject()).chars().count() > TARGET_WIDTH)
        .map(|p| {
            format!(
                "{} in full: {}",
                p.id,
                agentd_proto::printable(&p.subject())
            )
        })
        .collect();
    if long.is_empty() {
        return long;
    }
    std::iter::once(String::new()).chain(long).collect()
}

/// `in 12s` (rounded up), or `now` once the deadline has passed.
pub fn expires(deadline_ms: u64, now_ms: u64) -> String {
    match deadline_ms.saturating_sub(now_ms) {
        0 => "now".into(),
        left => format!("in {}s", left.div_ceil(1000)),
    }
}

/// What a request asks (its subject: target with argv or access), printable (the agent
/// names it: see `agentd_proto::printable`) and shortened to [`TARGET_WIDTH`] characters.
pub fn target(t: &str) -> String {
    let t = agentd_proto::printable(t);
    if t.chars().count() <= TARGET_WIDTH {
        return t.into_owned();
    }
    let mut out: String = t.chars().take(TARGET_WIDTH - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str, deadline_ms: u64) -> PendingRequest {
        PendingRequest {
            id: id.into(),
            run: "r1".into(),
            uid: 1000,
            kind: "open".into(),
            target: "/w/.env".into(),
            argv: None,
            access: None,
            argv_hidden: 0,
            pid: 42,
            comm: "cat".into(),
            rule: Some("secrets".into()),
            reason: "keys".into(),
            pause: false,
            waiting: 1,
            deadline_ms,
            key: String::new(),
        }
    }

    #[test]
    fn table_lines_align_columns_and_count_down() {
        let mut second = request("q2", 9_000);
        second.pause = true;
        second.waiting = 3;
        second.rule = None;
        let lines = table_lines(&[request("q1", 31_500), second], 1_000);
        assert_eq!(
            lines,
            [
                "ID  RUN  KIND  TARGET   RULE     REASON             EXPIRES  WAITING",
                "q1  r1   open  /w/.env  secrets  keys               in 31s   1",
                "q2  r1   open  /w/.env  -        keys [run paused]  in 8s    3",
            ]
        );
    }

    #[test]
    fn expires_says_now_after_the_deadline() {
        assert_eq!(expires(1_000, 1_000), "now");
        assert_eq!(expires(1_000, 5_000), "now");
        assert_eq!(expires(1_001, 1_000), "in 1s");
    }

    #[test]
    fn requests_shortened_in_the_table_follow_it_in_full() {
        let short = request("ab12", 10_000);
        let mut long = request("cd34", 10_000);
        long.kind = "exec".into();
        long.target = "/usr/bin/git".into();
        long.argv = Some(vec![
            "git".into(),
            "push".into(),
            "origin".into(),
            "x".repeat(60),
            "--force".into(),
        ]);
        long.argv_hidden = 2;
        let lines = table_lines(&[short.clone(), long.clone()], 0);
        assert!(
            !lines[2].contains("--force"),
            "the cell is shortened: {}",
            lines[2]
        );
        let full = in_full(&[short.clone(), long]);
        assert_eq!(full.len(), 2, "{full:?}");
        assert!(full[1].starts_with("cd34 in full: /usr/bin/git: git push origin xxx"));
        assert!(
            full[1].ends_with("--force … and 2 more arguments"),
            "{}",
            full[1]
        );
        assert!(in_full(&[short]).is_empty());
    }

    #[test]
    fn table_escapes_what_could_drive_the_terminal() {
        let mut p = request("ab12", 10_000);
        p.kind = "exec".into();
        p.target = "/w/x\u{1b}[2J".into();
        p.argv = Some(vec!["x".into(), "a\rb".into()]);
        p.comm = "c\u{202e}d".into();
        let lines = table_lines(&[p], 0);
        assert!(lines
            .iter()
            .all(|l| !l.chars().any(agentd_proto::hidden_char)));
        assert!(lines[1].contains(r"/w/x\x1b[2J: x $'a\rb'"), "{}", lines[1]);
    }

    #[test]
    fn target_shortens_long_paths() {
        let long = "/x".repeat(40);
        let t = target(&long);
        assert_eq!(t.chars().count(), TARGET_WIDTH);
        assert!(t.ends_with('…'));
    }
}
