//! Launch: a compiled [`Spec`] → a confined process.
//!
//! The daemon side ([`spawn`]) starts the launcher (`agentd __launch`, [`helper`]) with the
//! agent's stdio as fds 0–2 and a socket as fd 3, sends the spec and reads [`HelperEvent`]s.
//! The launcher creates the namespaces and forks the run's init ([`init`]), which builds the
//! view ([`mounts`]) and forks the agent: privileges dropped ([`privs`]), Landlock
//! ([`landlock`]), the seccomp deny list ([`filter`]), exec. [`plan`] turns a policy into a spec;
//! [`cgroup`] gives each run its cgroup. Nothing here parses TOML.

pub mod cgroup;
pub mod filter;
pub mod helper;
mod init;
pub mod landlock;
mod mounts;
pub mod plan;
mod privs;
pub mod spec;

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

pub use spec::Spec;

/// The hidden first argument that makes `agentd` run as the launcher.
pub const LAUNCHER_ARG: &str = "__launch";

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot set up {0} in the run's view: {1}")]
    Mount(String, #[source] io::Error),
    #[error("the caller cannot access {0}: {1}")]
    Inaccessible(String, #[source] io::Error),
    #[error("hide pattern `{1}` walks more than {0} entries; narrow it (e.g. start it with ${{WORKSPACE}})")]
    HideWalkTooLarge(usize, String),
    #[error("landlock: {0}")]
    Landlock(String),
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("dropping privileges: {0}")]
    Privileges(String),
    #[error("{0}")]
    Namespace(String),
    #[error("cannot join cgroup {0}: {1}")]
    Cgroup(String, #[source] io::Error),
    #[error("launcher: {0}")]
    Launcher(#[source] io::Error),
}

/// What the run's init or agent reports before `execve` (report pipe).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum ChildReport {
    /// The agent installed its seccomp filter; the listener is its descriptor `fd`. It waits for
    /// one byte on the go pipe (sent once the launcher holds a copy) before exec.
    Listener {
        fd: i32,
    },
    SetupFailed {
        message: String,
    },
    ExecFailed {
        errno: i32,
        message: String,
    },
}

/// What the launcher tells the daemon (one JSON line each on fd 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum HelperEvent {
    /// The run's seccomp listener travels with this event (`SCM_RIGHTS`); `agent_pid` is the
    /// host pid of the process that installed it (its root is the run's view).
    Listener {
        agent_pid: i32,
    },
    /// The command is executing (the report pipe closed on exec).
    Started {
        init_pid: i32,
        agent_pid: i32,
    },
    /// The sandbox could not be built; nothing of the command ran.
    SetupFailed {
        message: String,
    },
    /// The sandbox was built but the command could not be executed.
    ExecFailed {
        errno: i32,
        message: String,
    },
    Exited {
        status: agentd_proto::ExitStatus,
    },
}

/// A launcher process and its event stream.
pub struct Launched {
    pub child: tokio::process::Child,
    events: crate::daemon::conn::Conn,
}

impl Launched {
    /// The next event and any descriptors that came with it; `None` when the launcher is gone.
    pub async fn next_event(&mut self) -> Option<(HelperEvent, Vec<OwnedFd>)> {
        use crate::daemon::conn::Incoming;
        match self.events.read().await {
            Ok(Incoming::Frame(f)) => {
                let ev = serde_json::from_slice(&f).ok()?;
                Some((ev, self.events.take_fds()))
            }
            _ => None,
        }
    }
}

/// Starts the launcher for `spec` with `stdio` (stdin, stdout, stderr) as its fds 0–2.
pub async fn spawn(spec: &Spec, stdio: [OwnedFd; 3]) -> Result<Launched, LaunchError> {
    let (ours, theirs) = StdUnixStream::pair().map_err(LaunchError::Launcher)?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg(LAUNCHER_ARG);
    cmd.env_clear();
    let [i, o, e] = stdio;
    cmd.stdin(Stdio::from(i))
        .stdout(Stdio::from(o))
        .stderr(Stdio::from(e));
    crate::sys::process::pass_as_fd3(&mut cmd, theirs.into());
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let child = cmd.spawn().map_err(LaunchError::Launcher)?;
    ours.set_nonblocking(true).map_err(LaunchError::Launcher)?;
    let mut stream = UnixStream::from_std(ours).map_err(LaunchError::Launcher)?;
    let mut line = serde_json::to_vec(spec).map_err(|e| LaunchError::Launcher(e.into()))?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .await
        .map_err(LaunchError::Launcher)?;
    Ok(Launched {
        child,
        events: crate::daemon::conn::Conn::new(stream),
    })
}
