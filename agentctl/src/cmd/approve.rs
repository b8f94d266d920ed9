//! `agentctl approve ID [--once | --for DURATION | --run]`: allow a held call.
//!
//! The daemon checks that the caller owns the request's run (or is root) and is not itself
//! inside a run; agentctl only names the request and the scope.

use std::path::Path;

use agentd_proto::{ApprovalScope, Request};
use anyhow::Result;

/// Allow a pending request (see `agentctl pending`)
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("scope").args(["once", "for_", "for_run"]))]
pub struct Args {
    /// Request id, or a unique prefix of one
    pub id: String,
    /// Allow only this call (the default)
    #[arg(long)]
    pub once: bool,
    /// Also allow the same request (rule, path with the same argv or access, or address) in
    /// this run for DURATION (30s, 5m, 1h, 1h30m)
    #[arg(long = "for", id = "for_", value_name = "DURATION", value_parser = parse_duration)]
    pub for_: Option<u64>,
    /// Also allow the same request (rule, path with the same argv or access, or address) for the
    /// rest of the run
    #[arg(long = "run", id = "for_run")]
    pub for_run: bool,
}

impl Args {
    pub fn scope(&self) -> ApprovalScope {
        match (self.for_, self.for_run) {
            (Some(seconds), _) => ApprovalScope::For { seconds },
            (None, true) => ApprovalScope::Run,
            (None, false) => ApprovalScope::Once,
        }
    }
}

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    approve(socket, &args.id, args.scope())?;
    Ok(0)
}

/// Sends `approve`; shared with `watch`.
pub fn approve(socket: &Path, id: &str, scope: ApprovalScope) -> Result<()> {
    let req = Request::Approve {
        id: id.into(),
        scope,
    };
    crate::client::request_ok(socket, req, &format!("approve request {id}"))
}

/// `30s`, `5m`, `1h`, `1h30m`, `90` (seconds) → seconds; zero is refused.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid duration `{s}` (write e.g. 30s, 5m, 1h or 1h30m)");
    if let Ok(n) = s.parse::<u64>() {
        return (n > 0).then_some(n).ok_or_else(bad);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_accepts_units_and_combinations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("90"), Ok(90));
    }

    #[test]
    fn parse_duration_rejects_garbage_and_zero() {
        for bad in ["", "0", "0s", "5x", "m", "1h30", "-5s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
