//! A real `agentd` on a temp socket and state dir, started for one test and stopped on drop.
//!
//! Readiness comes from `--ready-fd` (agentd writes `ready\n` once it listens): no sleeps. The
//! daemon's stdout and stderr go to `agentd.log` in the temp dir, which assertion messages quote.
//!
//! Each daemon gets its own cgroup parent (`--cgroup-parent agentd-test-<pid>-<n>`): a daemon
//! kills every run it finds under its parent when it starts, so test daemons (and a real agentd
//! on the same machine) must never share one.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::command::{self, Output};
use crate::tempdir::{set_mode, TempDir};

/// How long agentd may take to start listening.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long agentd may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Numbers the daemons of this test process (see the module doc).
static NEXT: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    socket: PathBuf,
    state_dir: PathBuf,
    log_path: PathBuf,
    parent: String,
    // Dropped after the daemon is gone, in this order.
    dir: TempDir,
}

impl Daemon {
    /// Starts agentd with the repository's `policies/` and waits until it is ready.
    pub fn start() -> Daemon {
        Daemon::start_in(&std::env::temp_dir())
    }

    /// [`Daemon::start`] with its temp dir (socket, state, callers' homes and workspaces) in
    /// `base` (see [`crate::tempdir::outside_tmp`]).
    pub fn start_in(base: &Path) -> Daemon {
        let parent = format!(
            "agentd-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = TempDir::new_in(base);
        let socket = dir.path().join("agentd.sock");
        let state_dir = dir.path().join("state");
        std::fs::create_dir(&state_dir).expect("mkdir state dir");
        set_mode(&state_dir, 0o700);
        let log_path = dir.path().join("agentd.log");
        let mut daemon = Daemon {
            child: None,
            socket,
            state_dir,
            log_path,
            parent,
            dir,
        };
        daemon.launch();
        daemon
    }

    /// The agentd command line for this daemon's socket, state dir and cgroup parent.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(crate::bins::agentd());
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--policy-dir")
            .arg(crate::bins::policy_dir())
            .arg("--cgroup-parent")
            .arg(&self.parent)
            .arg("--log-level")
            .arg("debug")
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::null());
        cmd
    }

    /// Spawns agentd (appending to the log) and waits until it is ready.
    fn launch(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open agentd.log");
        let log2 = log.try_clone().expect("dup agentd.log");
        // Both ends close-on-exec; agentd inherits only a plain dup of the write end, made just
        // before spawn and closed just after, so other tests' children barely ever see it (and if
        // one does, the poll loop below still notices agentd's death).
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe2");
        let inherited = nix::unistd::dup(&write_end).expect("dup ready fd");
        let mut cmd = self.command();
        cmd.arg("--ready-fd")
            .arg(inherited.as_raw_fd().to_string())
            .stdout(log)
            .stderr(log2);
        let line = command::cmdline(&cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {line}: {e}"));
        drop(inherited);
        drop(write_end);
        self.child = Some(child);
        if let Err(why) = self.wait_ready(&read_end) {
            panic!(
                "agentd did not become ready: {why}\ncommand: {line}\n--- agentd log ---\n{}",
                self.log()
            );
        }
    }

    /// Kills agentd with SIGKILL (no clean-up of its own) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts agentd again on the same socket, state dir and cgroup parent.
    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    /// Polls the ready pipe until `ready\n`, agentd's death, or the timeout.
    fn wait_ready(&mut self, read_end: &impl AsFd) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("agentd exited during start-up: {status}"));
            }
            let mut fds = [PollFd::new(read_end.as_fd(), PollFlags::POLLIN)];
            let n = poll(&mut fds, 200u16).map_err(|e| format!("poll: {e}"))?;
            if n == 0 {
                continue;
            }
            let mut buf = [0u8; 64];
            let k =
                nix::unistd::read(read_end.as_fd(), &mut buf).map_err(|e| format!("read: {e}"))?;
            if k == 0 {
                return Err(format!(
                    "ready fd closed without `ready` (got {:?})",
                    String::from_utf8_lossy(&got)
                ));
            }
            got.extend_from_slice(&buf[..k]);
            if got.starts_with(b"ready\n") {
                return Ok(());
            }
        }
        Err(format!("no `ready` within {READY_TIMEOUT:?}"))
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The test's temp dir (0755, root-owned): socket, state, log, callers' homes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// agentd's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Whether agentd is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Everything agentd logged so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Runs `agentctl --socket S ARGS…` as root (a clean environment, HOME=/root).
    pub fn agentctl_as_root(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(crate::bins::agentctl());
        cmd.arg("--socket")
            .arg(&self.socket)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", "/root")
            .env("USER", "root")
            .current_dir(self.dir.path());
        command::run(cmd, b"", command::TIMEOUT)
    }

    /// `out.describe()` followed by agentd's log: the message for a failed assertion.
    pub fn explain(&self, out: &Output) -> String {
        format!("{}\n--- agentd log ---\n{}", out.describe(), self.log())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        if let Ok(raw) = i32::try_from(pid) {
            let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
        }
        let (tx, rx) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let _ = child.wait();
            let _ = tx.send(());
        });
        if rx.recv_timeout(STOP_TIMEOUT).is_err() {
            command::kill_pid(pid);
        }
        let _ = waiter.join();
    }
}

/// A process's resident memory in KiB (`VmRSS` of /proc/PID/status); 0 if it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One `ps` on a fresh connection to the socket at `sock`, as the calling process: how long the
/// answer took, or why there was none within `timeout`.
pub fn ps_once(sock: &Path, timeout: Duration) -> Result<Duration, String> {
    use std::io::{BufRead, BufReader, Write};
    let started = Instant::now();
    let mut s =
        std::os::unix::net::UnixStream::connect(sock).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| format!("timeout: {e}"))?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| format!("timeout: {e}"))?;
    s.write_all(b"{\"v\":1,\"req\":{\"type\":\"ps\"}}\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| format!("no answer within {timeout:?} ({e})"))?;
    let took = started.elapsed();
    let v: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("answer {line:?}: {e}"))?;
    if v["type"] != "runs" {
        return Err(format!("ps answered {line}"));
    }
    Ok(took)
}
