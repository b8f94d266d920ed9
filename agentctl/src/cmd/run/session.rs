//! The relay loop of one run: daemon frames, signals and the agent's output, on one `poll`.
//!
//! Signals are blocked in every thread (see [`block_signals`]) and read from a signalfd, so no
//! signal handler exists and every exit path returns normally through the callers' guards (the
//! terminal is restored even on SIGTERM/SIGHUP). The agent's stdin is relayed by a separate
//! thread ([`spawn_stdin_relay`]) so that a reader that never reads cannot stall the output.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use agentd_proto::{Request, Response};
use anyhow::{anyhow, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::tty;
use crate::client::{self, Connection, Hinted};

/// How long to keep draining the agent's output after it exited (orphans may hold it open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGWINCH in this thread (and threads it spawns later) and
/// returns a signalfd that reports them. Call before spawning any thread.
pub fn block_signals() -> Result<SignalFd> {
    let set = crate::cmd::block_session_signals()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("cannot create a signalfd")
}

/// Copies our stdin to `target` until EOF, then closes `target` (the agent sees EOF).
pub fn spawn_stdin_relay(target: OwnedFd) -> Result<()> {
    std::thread::Builder::new()
        .name("stdin-relay".into())
        .spawn(move || {
            let mut target = File::from(target);
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 16 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if target.write_all(buf.get(..n).unwrap_or_default()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        })
        .context("cannot start the stdin relay")?;
    Ok(())
}

/// Where an output stream of the agent goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

/// One of the agent's output streams (pipe read end or pty master) and its destination.
#[derive(Debug)]
pub struct Output {
    pub source: OwnedFd,
    pub sink: Sink,
}

/// Everything the relay loop needs.
#[derive(Debug)]
pub struct Session<'a> {
    /// For `Signal` requests, which go on their own connection.
    pub socket: &'a Path,
    pub conn: Connection,
    pub signals: SignalFd,
    pub outputs: Vec<Output>,
    /// The pty master in pty mode: window-size changes go there, SIGTERM/SIGHUP end agentctl.
    pub pty_master: Option<OwnedFd>,
    /// Print every daemon frame as a JSON line on stderr.
    pub json_events: bool,
}

/// What the loop knows about the run so far.
#[derive(Debug, Default)]
struct Progress {
    run: Option<String>,
    exit: Option<i32>,
    deadline: Option<Instant>,
}

impl Session<'_> {
    /// Relays until the run exited and its output is drained; returns the exit code.
    pub fn relay(mut self) -> Result<i32> {
        let mut p = Progress::default();
        let mut conn_open = true;
        loop {
            if p.exit.is_some() && self.outputs.is_empty() {
                break;
            }
            let timeout = match p.deadline {
                None => PollTimeout::NONE,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
                    None => break,
                },
            };
            let (conn_ready, sig_ready, out_ready) = self.wait(conn_open, timeout)?;
            if conn_ready {
                conn_open = self.on_daemon(&mut p)?;
            }
            if sig_ready {
                if let Some(code) = self.on_signals(&p)? {
                    return Ok(code);
                }
            }
            self.on_output(&out_ready);
        }
        p.exit.context("the run did not exit")
    }

    /// Polls; returns readiness of the connection, the signalfd and each output.
    fn wait(&self, conn_open: bool, timeout: PollTimeout) -> Result<(bool, bool, Vec<bool>)> {
        let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        if conn_open {
            fds.push(PollFd::new(self.conn.as_fd(), PollFlags::POLLIN));
        }
        let first_output = fds.len();
        fds.extend(
            self.outputs
                .iter()
                .map(|o| PollFd::new(o.source.as_fd(), PollFlags::POLLIN)),
        );
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok((false, false, vec![false; self.outputs.len()])),
            Err(e) => return Err(e).context("poll failed"),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        let at = |i: usize| ready.get(i).copied().unwrap_or(false);
        let outs = (first_output..ready.len()).map(at).collect();
        Ok((conn_open && at(1), at(0), outs))
    }

    /// Reads daemon frames; `false` once the daemon closed the connection after the exit.
    fn on_daemon(&mut self, p: &mut Progress) -> Result<bool> {
        let open = self.conn.fill()?;
        while let Some(resp) = self.conn.next_buffered()? {
            if self.json_events {
                let line = serde_json::to_string(&resp)?;
                self.say(&line);
            }
            match resp {
                Response::Started { run, .. } => p.run = Some(run),
                Response::Exited { status, .. } => {
                    // The command never ran: say why (the agent's own stderr has nothing).
                    if let agentd_proto::ExitStatus::ExecFailed { message, .. } = &status {
                        self.say(&format!("agentctl: cannot execute the command: {message}"));
                        self.say("hint: the command must be inside the run's view and under an exec grant of the policy");
                    }
                    p.exit = Some(status.exit_code());
                    p.deadline = Some(Instant::now() + DRAIN_AFTER_EXIT);
                }
                Response::Error(body) => return Err(Hinted::from(body).into()),
                // Audit records: already printed above when asked for.
                Response::Event { .. } => {}
                other => return Err(anyhow!("unexpected frame from agentd: {other:?}")),
            }
        }
        if !open && p.exit.is_none() {
            return Err(anyhow!(
                "agentd closed the connection before the run exited"
            ));
        }
        Ok(open)
    }

    /// Handles pending signals; `Some(code)` when agentctl must end now.
    fn on_signals(&self, p: &Progress) -> Result<Option<i32>> {
        while let Some(info) = self.signals.read_signal().context("cannot read signalfd")? {
            let Ok(sig) = i32::try_from(info.ssi_signo).map(Signal::try_from) else {
                continue;
            };
            let Ok(sig) = sig else { continue };
            match (sig, &self.pty_master, &p.run) {
                (Signal::SIGWINCH, Some(master), _) => tty::copy_window_size(master.as_fd()),
                (Signal::SIGWINCH, None, _) => {}
                // Our terminal went away or we were told to stop: the daemon kills the run when
                // this connection closes.
                (Signal::SIGTERM | Signal::SIGHUP, Some(_), _) | (_, _, None) => {
                    return Ok(Some(128 + sig as i32));
                }
                (_, _, Some(run)) => self.forward(run, sig),
            }
        }
        Ok(None)
    }

    fn forward(&self, run: &str, sig: Signal) {
        let req = Request::Signal {
            run: run.to_string(),
            signal: sig as i32,
        };
        if let Err(e) = client::request(self.socket, req) {
            self.say(&format!(
                "agentctl: cannot forward {sig} to run {run}: {e:#}"
            ));
        }
    }

    /// Copies ready output to its sink; drops streams at EOF (EIO on a pty master).
    fn on_output(&mut self, ready: &[bool]) {
        let mut buf = [0u8; 64 * 1024];
        let mut done = Vec::new();
        for (i, out) in self.outputs.iter().enumerate() {
            if !ready.get(i).copied().unwrap_or(false) {
                continue;
            }
            match nix::unistd::read(&out.source, &mut buf) {
                Ok(0) | Err(Errno::EIO) => done.push(i),
                Ok(n) => write_sink(out.sink, buf.get(..n).unwrap_or_default()),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => done.push(i),
            }
        }
        for i in done.into_iter().rev() {
            self.outputs.remove(i);
        }
    }

    /// A line of our own on stderr (`\r\n` while the terminal is raw).
    fn say(&self, line: &str) {
        let end = if self.pty_master.is_some() {
            "\r\n"
        } else {
            "\n"
        };
        write_sink(Sink::Stderr, format!("{line}{end}").as_bytes());
    }
}

/// Writes to our stdout/stderr; if that fails (reader gone) the data is dropped, so the agent
/// is never blocked by a closed terminal or pipe.
fn write_sink(sink: Sink, bytes: &[u8]) {
    let _ = match sink {
        Sink::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Sink::Stderr => io::stderr().lock().write_all(bytes),
    };
}
