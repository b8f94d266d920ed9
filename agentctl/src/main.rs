//! agentctl: the command-line client of agentd.
//!
//! This file parses the command line, dispatches to one module per subcommand (`cmd/`), prints
//! the error chain once (`agentctl: …` plus a `hint:` line when the fix is known) and picks the
//! exit code. It is the only place that calls `process::exit`.
//!
//! Exit codes: `run` exits with the agent's status (128+N for signal N, 126/127 when the command
//! could not be executed) and 125 when agentd refused the run or could not be reached. Every
//! other command exits 0 on success and 1 on any error.

#![deny(unsafe_code)]

mod client;
mod cmd;
mod generate;
mod sys;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::client::Hinted;

#[derive(Debug, Parser)]
#[command(
    name = "agentctl",
    version,
    about = "Control agentd: run AI coding agents in a kernel-enforced sandbox",
    after_help = "The socket is --socket if given, else $AGENTD_SOCKET, else /run/agentd/agentd.sock."
)]
struct Cli {
    /// Path of agentd's control socket [env: AGENTD_SOCKET] [default: /run/agentd/agentd.sock]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(cmd::run::Args),
    Ps(cmd::ps::Args),
    Inspect(cmd::inspect::Args),
    Kill(cmd::kill::Args),
    Pause(cmd::pause::Args),
    Resume(cmd::resume::Args),
    Pending(cmd::pending::Args),
    Approve(cmd::approve::Args),
    Deny(cmd::deny::Args),
    Events(cmd::events::Args),
    Watch(cmd::watch::Args),
    Audit(cmd::audit::Args),
    #[command(subcommand)]
    Policy(cmd::policy::Command),
}

/// Exit code of `run` when agentd refused the run or could not be reached (as `docker run`).
const EXIT_RUN_REFUSED: i32 = 125;
/// Exit code of every other command on error.
const EXIT_ERROR: i32 = 1;

fn main() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == generate::ARG)
    {
        let code = match generate::run(std::env::args_os().nth(2)) {
            Ok(()) => 0,
            Err(err) => {
                report(&err);
                EXIT_ERROR
            }
        };
        #[allow(clippy::exit)] // the one place agentctl exits (packaging hook)
        std::process::exit(code);
    }
    let cli = Cli::parse();
    let socket = client::resolve_socket(cli.socket, std::env::var_os("AGENTD_SOCKET"));
    let (result, error_code) = match cli.command {
        Command::Run(args) => (cmd::run::run(&socket, args), EXIT_RUN_REFUSED),
        Command::Ps(args) => (cmd::ps::run(&socket, &args), EXIT_ERROR),
        Command::Inspect(args) => (cmd::inspect::run(&socket, &args), EXIT_ERROR),
        Command::Kill(args) => (cmd::kill::run(&socket, &args), EXIT_ERROR),
        Command::Pause(args) => (cmd::pause::run(&socket, &args), EXIT_ERROR),
        Command::Resume(args) => (cmd::resume::run(&socket, &args), EXIT_ERROR),
        Command::Pending(args) => (cmd::pending::run(&socket, &args), EXIT_ERROR),
        Command::Approve(args) => (cmd::approve::run(&socket, &args), EXIT_ERROR),
        Command::Deny(args) => (cmd::deny::run(&socket, &args), EXIT_ERROR),
        Command::Events(args) => (cmd::events::run(&socket, &args), EXIT_ERROR),
        Command::Watch(args) => (cmd::watch::run(&socket, &args), EXIT_ERROR),
        Command::Audit(args) => (cmd::audit::run(&socket, &args), EXIT_ERROR),
        Command::Policy(command) => (cmd::policy::run(&command), EXIT_ERROR),
    };
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            error_code
        }
    };
    #[allow(clippy::exit)] // the one place agentctl exits
    std::process::exit(code);
}

/// Prints the whole error chain once, then the hint of the first error in it that has one.
fn report(err: &anyhow::Error) {
    eprintln!("agentctl: {err:#}");
    if let Some(hint) = hint_of(err) {
        eprintln!("hint: {hint}");
    }
}

fn hint_of(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|e| {
        if let Some(h) = e.downcast_ref::<Hinted>() {
            h.hint.clone()
        } else if let Some(p) = e.downcast_ref::<agentd_policy::PolicyError>() {
            p.hint().map(str::to_owned)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn hint_of_finds_hint_under_context() {
        let err = anyhow::Error::new(Hinted {
            message: "no such run".into(),
            hint: Some("see `agentctl ps`".into()),
        })
        .context("cannot inspect run x");
        assert_eq!(hint_of(&err).as_deref(), Some("see `agentctl ps`"));
        assert_eq!(format!("{err:#}"), "cannot inspect run x: no such run");
    }

    #[test]
    fn run_accepts_command_after_double_dash() {
        let cli = Cli::try_parse_from(["agentctl", "run", "--policy", "p", "--", "ls", "-la"])
            .expect("parses");
        match cli.command {
            Command::Run(args) => assert_eq!(args.command, ["ls", "-la"]),
            other => panic!("unexpected {other:?}"),
        }
    }
}
