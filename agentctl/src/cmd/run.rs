//! `agentctl run -- CMD…`: start a confined run and relay its terminal or pipes until it exits.
//!
//! The request and the agent's stdio fds travel in one `sendmsg` (fds as `SCM_RIGHTS`). When
//! stdin and stdout are both terminals, agentctl opens a pty, sends the slave and relays the
//! master in raw mode ([`tty`]); otherwise it sends three pipes and relays them, forwarding
//! SIGINT/SIGTERM/SIGHUP to the run. agentctl keeps only the relay ends: its copies of the fds
//! it sent are closed right after sending. The run ends when this connection closes.

mod session;
pub(crate) mod tty;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use agentd_proto::{Request, RunRequest, Stdio};
use anyhow::{anyhow, Context, Result};
use nix::fcntl::OFlag;
use nix::unistd::{isatty, pipe2};

use crate::client::Connection;
use session::{Output, Session, Sink};

/// Run a command in the sandbox, relaying its terminal (or stdin/stdout/stderr)
///
/// Exits with the command's status: its exit code, 128+N if killed by signal N, 126 if it
/// could not be executed, 127 if it was not found, 137 if agentd killed it (limit or
/// `agentctl kill`). Exits 125 if agentd refused the run or could not be reached.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy preset name (looked up in agentd's policy directories) or path of a policy file
    /// [default: the agent's preset when the command is a known agent (claude, codex, gemini,
    /// aider, opencode), else the daemon's `default` preset]
    #[arg(long, value_name = "NAME|PATH")]
    pub policy: Option<String>,
    /// The workspace the agent may write to (${WORKSPACE}) [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Print every frame agentd sends (started, each audit record as it is written, exited,
    /// errors) as a JSON line on stderr
    #[arg(long)]
    pub json_events: bool,
    /// The command to run and its arguments (put them after `--`)
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// The relay ends agentctl keeps once the request is sent.
struct Attached {
    outputs: Vec<Output>,
    /// Where our stdin goes: the stdin pipe's write end, or a dup of the pty master.
    stdin_target: OwnedFd,
    pty_master: Option<OwnedFd>,
}

/// Agents with a preset of the same purpose: the program name and the preset.
const AGENT_PRESETS: [(&str, &str); 5] = [
    ("claude", "claude-code"),
    ("codex", "codex"),
    ("gemini", "gemini-cli"),
    ("aider", "aider"),
    ("opencode", "opencode"),
];

/// The preset for `command` when its program is a known agent.
fn detect_preset(command: &[String]) -> Option<&'static str> {
    let program = Path::new(command.first()?).file_name()?.to_str()?;
    AGENT_PRESETS
        .iter()
        .find(|(name, _)| *name == program)
        .map(|(_, preset)| *preset)
}

pub fn run(socket: &Path, mut args: Args) -> Result<i32> {
    if args.policy.is_none() {
        if let Some(preset) = detect_preset(&args.command) {
            eprintln!(
                "agentctl: using policy {preset} (detected from the command); pass --policy to choose"
            );
            args.policy = Some(preset.to_string());
        }
    }
    let workspace = canonical_workspace(args.workspace)?;
    let cwd = std::env::current_dir()
        .and_then(|d| d.canonicalize())
        .context("cannot determine the current directory")?;
    let use_pty =
        isatty(std::io::stdin()).unwrap_or(false) && isatty(std::io::stdout()).unwrap_or(false);
    let req = RunRequest {
        argv: args.command,
        workspace: utf8(workspace)?,
        cwd: utf8(cwd)?,
        policy: args.policy,
        env: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
        stdio: if use_pty { Stdio::Pty } else { Stdio::Pipes },
        json_events: args.json_events,
    };
    // Before any thread exists, so that every thread has them blocked.
    let signals = session::block_signals()?;
    let mut conn = Connection::connect(socket)?;
    let attached = if use_pty {
        send_with_pty(&mut conn, req)?
    } else {
        send_with_pipes(&mut conn, req)?
    };
    // Restores the terminal when `run` returns, whichever way it does.
    let _raw = use_pty.then(tty::RawMode::enter).transpose()?;
    session::spawn_stdin_relay(attached.stdin_target)?;
    Session {
        socket,
        conn,
        signals,
        outputs: attached.outputs,
        pty_master: attached.pty_master,
        json_events: args.json_events,
    }
    .relay()
}

fn send_with_pty(conn: &mut Connection, req: RunRequest) -> Result<Attached> {
    let pty = tty::open_pty()?;
    conn.send(Request::Run(req), &[pty.slave.as_fd()])?;
    drop(pty.slave);
    let dup = |what| {
        pty.master
            .try_clone()
            .with_context(|| format!("cannot dup {what}"))
    };
    Ok(Attached {
        stdin_target: dup("the pty master")?,
        pty_master: Some(dup("the pty master")?),
        outputs: vec![Output {
            source: pty.master,
            sink: Sink::Stdout,
        }],
    })
}

fn send_with_pipes(conn: &mut Connection, req: RunRequest) -> Result<Attached> {
    let pipe = || pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe");
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    conn.send(
        Request::Run(req),
        &[in_r.as_fd(), out_w.as_fd(), err_w.as_fd()],
    )?;
    drop((in_r, out_w, err_w));
    Ok(Attached {
        stdin_target: in_w,
        pty_master: None,
        outputs: vec![
            Output {
                source: out_r,
                sink: Sink::Stdout,
            },
            Output {
                source: err_r,
                sink: Sink::Stderr,
            },
        ],
    })
}

/// The workspace as a canonical path: `--workspace` or the current directory.
fn canonical_workspace(dir: Option<PathBuf>) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::current_dir().context("cannot determine the current directory")?,
    };
    match dir.canonicalize() {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(anyhow!("workspace {} does not exist", dir.display()))
        }
        Err(e) => Err(e).with_context(|| format!("invalid workspace {}", dir.display())),
    }
}

fn utf8(path: PathBuf) -> Result<String> {
    path.into_os_string()
        .into_string()
        .map_err(|p| anyhow!("path {} is not valid UTF-8", Path::new(&p).display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_known_agents_by_program_name() {
        let cmd = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            detect_preset(&cmd(&["claude", "-p", "hi"])),
            Some("claude-code")
        );
        assert_eq!(
            detect_preset(&cmd(&["/usr/local/bin/codex"])),
            Some("codex")
        );
        assert_eq!(detect_preset(&cmd(&["gemini"])), Some("gemini-cli"));
        assert_eq!(detect_preset(&cmd(&["aider", "--yes"])), Some("aider"));
        assert_eq!(detect_preset(&cmd(&["opencode"])), Some("opencode"));
        assert_eq!(detect_preset(&cmd(&["sh", "-c", "claude"])), None);
        assert_eq!(detect_preset(&cmd(&["claude-code-helper"])), None);
    }
}
