//! `agentctl kill RUN [--signal SIG]`: kill every process of a run at once (the daemon uses the
//! cgroup), or deliver one signal to every process of it.

use std::path::Path;

use agentd_proto::Request;
use anyhow::Result;
use nix::sys::signal::Signal;

/// Kill every process of a run at once
///
/// Without --signal the daemon kills the run's whole cgroup (nothing can fork away). With
/// --signal it freezes the run, delivers the signal to every process of it, and thaws it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run id, or a unique prefix of one (see `agentctl ps`)
    pub run: String,
    /// Send this signal to every process of the run instead: a name (TERM, SIGTERM, INT, HUP,
    /// KILL, USR1, …) or a number
    #[arg(long, short = 's', value_name = "SIG", value_parser = parse_signal)]
    pub signal: Option<i32>,
}

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    let req = Request::Kill {
        run: args.run.clone(),
        signal: args.signal,
    };
    crate::client::request_ok(socket, req, &format!("kill run {}", args.run))?;
    Ok(0)
}

/// The highest signal number Linux has (`SIGRTMAX`).
const MAX_SIGNAL: i32 = 64;

/// `TERM`, `SIGTERM`, `sigterm` or `15` → 15. Numbers may name real-time signals too.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=MAX_SIGNAL).contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "signal number {n} is out of range 1..={MAX_SIGNAL}"
            ))
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| format!("unknown signal `{s}` (try TERM, INT, HUP, KILL, USR1 or a number)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_signal_accepts_names_with_or_without_sig_and_numbers() {
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("SIGTERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("int"), Ok(libc::SIGINT));
        assert_eq!(parse_signal("HUP"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("KILL"), Ok(libc::SIGKILL));
        assert_eq!(parse_signal("USR1"), Ok(libc::SIGUSR1));
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("34"), Ok(34));
    }

    #[test]
    fn parse_signal_rejects_unknown_names_and_out_of_range_numbers() {
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
        assert!(parse_signal("-9").is_err());
        assert!(parse_signal("").is_err());
    }
}
