//! [`explain`]: why [`crate::decide`] answers what it answers. Every rule that matches the
//! event, in policy order, with its action; which one won and why (deny beats pause beats ask
//! beats allow, the first of the winning action in policy order); or, with no matching rule,
//! the default for the event's kind and the grant or hide that produced it.
//!
//! The decision is always the one `decide` returns: `explain` calls it and only adds the
//! account of how it came about. Pure, like `decide`.

use std::fmt;

use crate::decide::{canonical, decide, rank};
use crate::event::{Decision, Event, OpenAccess, SockAddr, Verdict};
use crate::model::{Action, Policy};

/// One rule that matched the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub id: String,
    pub action: Action,
    /// The errno of a `deny` rule.
    pub errno: i32,
    /// Where the rule is defined (`file:line`).
    pub source: String,
    pub reason: String,
}

/// What [`explain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub event: Event,
    /// Every matching rule, in policy order (bases first).
    pub matched: Vec<Matched>,
    /// The decision, exactly as [`decide`] returns it.
    pub decision: Decision,
    /// How the decision came about, in one sentence.
    pub why: String,
}

/// Explains the decision of `policy` on `event`.
pub fn explain(policy: &Policy, event: &Event) -> Explanation {
    let decision = decide(policy, event);
    let canon = canonical(event);
    let matched: Vec<Matched> = policy
        .rules
        .iter()
        .filter(|r| r.matcher.matches(&canon))
        .map(|r| Matched {
            id: r.id.clone(),
            action: r.action,
            errno: r.errno,
            source: r.source.clone(),
            reason: r.reason.clone(),
        })
        .collect();
    let why = why(&matched, &decision, event);
    Explanation {
        event: event.clone(),
        matched,
        decision,
        why,
    }
}

fn why(matched: &[Matched], decision: &Decision, event: &Event) -> String {
    let kind = match event {
        Event::Exec { .. } => "exec",
        Event::Open { .. } => "open",
        Event::Connect { .. } => "connect",
    };
    let Some(top) = matched.iter().map(|m| m.action).max_by_key(|a| rank(*a)) else {
        return format!("no rule matches: the default for {kind} decides");
    };
    let same = matched.iter().filter(|m| m.action == top).count();
    let first = matched
        .iter()
        .find(|m| m.action == top)
        .map_or("", |m| &m.id);
    if top == Action::Allow && decision.rule_id.is_none() {
        return format!(
            "rule {first} allows, but an allow rule never un-hides: the hide default decides"
        );
    }
    let mut out = if matched.len() == 1 {
        format!("rule {first} is the only matching rule")
    } else if same == matched.len() {
        format!("every matching rule says {}", action_name(top))
    } else {
        let beaten: Vec<&str> = [Action::Pause, Action::Ask, Action::Allow]
            .into_iter()
            .filter(|a| rank(*a) < rank(top) && matched.iter().any(|m| m.action == *a))
            .map(action_name)
            .collect();
        format!(
            "{} beats {} (deny > pause > ask > allow)",
            action_name(top),
            beaten.join(" and ")
        )
    };
    if same > 1 {
        out.push_str(&format!(
            "; of the {same} {} rules the first in policy order, {first}, decides",
            action_name(top)
        ));
    }
    out
}

/// The action as a policy spells it.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::Allow => "allow",
        Action::Deny => "deny",
        Action::Ask => "ask",
        Action::Pause => "pause",
    }
}

/// An errno's name, for the errnos a decision can carry.
pub fn errno_name(errno: i32) -> String {
    crate::compile::ERRNOS
        .iter()
        .find(|(_, e)| *e == errno)
        .map_or_else(|| format!("errno {errno}"), |(n, _)| (*n).to_string())
}

/// The verdict as `allow`, `deny (EACCES)`, `ask` or `pause`.
pub fn verdict_text(v: Verdict) -> String {
    match v {
        Verdict::Allow => "allow".into(),
        Verdict::Deny { errno } => format!("deny ({})", errno_name(errno)),
        Verdict::Ask => "ask".into(),
        Verdict::Pause => "pause".into(),
    }
}

/// The event in one line: `exec /usr/bin/git: git push`, `open /w/.env (read)`,
/// `connect 127.0.0.1:5432`.
pub fn event_text(e: &Event) -> String {
    match e {
        Event::Exec { path, argv } => format!("exec {}: {}", path.display(), argv.join(" ")),
        Event::Open { path, access } => {
            let a = match access {
                OpenAccess::Read => "read",
                OpenAccess::Write => "write",
            };
            format!("open {} ({a})", path.display())
        }
        Event::Connect { addr } => match addr {
            SockAddr::Inet(sa) => format!("connect {sa}"),
            SockAddr::Unix(p) => format!("connect unix:{}", p.display()),
            SockAddr::Abstract(n) => format!("connect @{n}"),
            SockAddr::Other(f) => format!("connect (address family {f})"),
        },
    }
}

impl fmt::Display for Explanation {
    /// The table `agentctl policy explain` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "event:    {}", event_text(&self.event))?;
        if self.matched.is_empty() {
            writeln!(f, "rules:    none match")?;
        } else {
            writeln!(f, "rules:    (every matching rule, in policy order)")?;
            let wid = self.matched.iter().map(|m| m.id.len()).max().unwrap_or(0);
            for m in &self.matched {
                let won = self.decision.rule_id.as_deref() == Some(m.id.as_str());
                let action = match m.action {
                    Action::Deny => format!("deny ({})", errno_name(m.errno)),
                    a => action_name(a).to_string(),
                };
                writeln!(
                    f,
                    "  {} {:<wid$}  {:<15} {}  {:?}",
                    if won { "*" } else { " " },
                    m.id,
                    action,
                    m.source,
                    m.reason
                )?;
            }
        }
        writeln!(f, "why:      {}", self.why)?;
        let by = match &self.decision.rule_id {
            Some(id) => format!("rule {id}"),
            None => "the default".to_string(),
        };
        writeln!(
            f,
            "decision: {} by {by}: {}",
            verdict_text(self.decision.verdict),
            self.decision.reason
        )
    }
}

#[cfg(test)]
mod tests;
