//! The daemon: a tokio shell that decides nothing itself.
//!
//! [`run`] takes the state-dir lock, sets up cgroups (killing runs a previous daemon left),
//! binds the control socket and serves ([`server`]) until SIGTERM/SIGINT, then kills every run.
//! Requests go through [`requests`]; a run request becomes a long-lived [`runs`] task.

pub mod approvals;
pub mod conn;
pub mod control;
pub mod identity;
pub mod registry;
pub mod requests;
pub mod runs;
pub mod server;
pub mod systemd;

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;

use crate::config::Config;
use crate::launch::cgroup::Cgroups;
use registry::Registry;

/// The group whose members may act on every run.
pub const ADMIN_GROUP: &str = "agentd-admin";

/// Everything the request handlers share.
pub struct State {
    pub config: Config,
    pub cgroups: Cgroups,
    pub registry: Registry,
    pub approvals: Arc<approvals::Approvals>,
    /// Members of this group act on every run (`agentd-admin` when it exists).
    pub admin_gid: Option<u32>,
}

impl State {
    /// The authority of a caller.
    pub fn asker(&self, caller: &identity::Caller) -> registry::Asker {
        let admin = self
            .admin_gid
            .is_some_and(|g| caller.gid == g || caller.groups.contains(&g));
        registry::Asker {
            uid: caller.uid,
            admin,
        }
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.config.state_dir.join("runs")
    }
}

/// Runs the daemon until SIGTERM or SIGINT. `ready` receives `ready\n`, and systemd `READY=1`,
/// once leftover runs are killed and recorded and the socket listens (docs/operations.md).
pub async fn run(config: Config, ready: Option<OwnedFd>) -> Result<()> {
    systemd::status("starting: locking the state directory");
    let _lock = lock_state_dir(&config.state_dir)?;
    crate::audit::set_rotate_bytes(config.audit_rotate_bytes);
    let self_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let cgroups = Cgroups::detect(&config.cgroup_root, &self_cgroup, &config.cgroup_parent)
        .context("no usable cgroup hierarchy")?;
    cgroups
        .init(std::process::id())
        .context("cannot prepare the run cgroups")?;
    tracing::info!(layout = ?cgroups.layout, "cgroups ready");
    let state = Arc::new(State {
        config,
        cgroups,
        registry: Registry::default(),
        approvals: Arc::new(approvals::Approvals::default()),
        admin_gid: nix::unistd::Group::from_name(ADMIN_GROUP)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw()),
    });
    systemd::status("starting: killing and recording runs a previous daemon left");
    runs::reap_leftovers(&state).await;
    let (listener, activated) = bind(&state.config.socket)?;
    tracing::info!(socket = %state.config.socket.display(), activated, "listening");
    if let Some(fd) = ready {
        let _ = std::fs::File::from(fd).write_all(b"ready\n");
    }
    systemd::notify("READY=1");
    let status = tokio::spawn(report_status(state.clone()));
    let shutdown = shutdown_signal();
    server::serve(listener, state.clone(), shutdown).await;
    status.abort();
    let live = state.registry.live().len();
    systemd::notify("STOPPING=1");
    systemd::status(&format!("stopping: killing {live} run(s)"));
    tracing::info!(runs = live, "shutting down: killing every run");
    state.registry.kill_all("agentd stopped");
    if !activated {
        // An activated socket belongs to agentd.socket: it stays, and clients queue on it.
        let _ = std::fs::remove_file(&state.config.socket);
    }
    // Give the runs' tasks a moment to record their end and remove their cgroups.
    for _ in 0..50 {
        if state.registry.live().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    state.cgroups.remove_parents();
    Ok(())
}

/// Keeps `systemctl status agentd` current: the number of live runs, every few seconds.
async fn report_status(state: Arc<State>) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let mut last = None;
    loop {
        let live = state.registry.live().len();
        if last != Some(live) {
            systemd::status(&format!(
                "listening on {}; {live} run(s)",
                state.config.socket.display()
            ));
            last = Some(live);
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// One daemon per state directory.
fn lock_state_dir(dir: &Path) -> Result<Flock<std::fs::File>> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir.join("runs"))
        .with_context(|| format!("cannot create state directory {}", dir.display()))?;
    let path = dir.join("agentd.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((_, nix::Error::EWOULDBLOCK)) => bail!(
            "another agentd is already running with state directory {} (hint: stop it, or pass a different --state-dir)",
            dir.display()
        ),
        Err((_, e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// The control socket: the one systemd passed (`agentd.socket`; `true`), else `path` bound here
/// (mode 0666: every request is checked against the peer's uid; `false`).
fn bind(path: &Path) -> Result<(UnixListener, bool)> {
    if let Some(std_listener) = systemd::activated_listener()
        .context("cannot use the socket systemd passed (LISTEN_FDS)")?
    {
        let at = std_listener.local_addr().ok();
        let at = at.as_ref().and_then(|a| a.as_pathname());
        if at != Some(path) {
            tracing::warn!(
                passed = ?at,
                configured = %path.display(),
                "the activated socket is not the configured one; clients must use the activated path"
            );
        }
        let listener =
            UnixListener::from_std(std_listener).context("cannot register the activated socket")?;
        return Ok((listener, true));
    }
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("another agentd is listening on {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    Ok((listener, false))
}
