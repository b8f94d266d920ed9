//! The threads that feed `watch`'s one loop through one channel, so the loop never blocks on the
//! daemon, the keyboard or a signal:
//!
//! - the event stream (`Events` on its own connection);
//! - the worker, which owns every other request: a `Ps` + `Pending` snapshot once a second (or
//!   at once when nudged) and the user's answers, one at a time;
//! - stdin, as raw bytes (tty) or lines (line mode);
//! - signals, blocked in every thread by [`crate::cmd::block_session_signals`] and taken with `sigwait`, so no
//!   handler exists and every exit returns through the terminal guard.

use std::io::{self, BufRead, Read};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::Duration;

use agentd_proto::{ApprovalScope, DaemonEvent, PendingRequest, Request, Response, RunInfo};
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{SigSet, Signal};

use crate::client::{self, Connection};
use crate::cmd::{approve, deny, events, pause, resume};

/// How often the worker takes a snapshot.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Something for the loop.
#[derive(Debug)]
pub enum Msg {
    /// Runs, pending requests, and how many requests agentd could not list at once.
    Snapshot(Result<(Vec<RunInfo>, Vec<PendingRequest>, u32), String>),
    Event(Box<DaemonEvent>),
    /// The event stream ended: `Ok` when agentd closed it, else why it failed.
    EventsEnded(Result<(), String>),
    Keys(Vec<u8>),
    Line(String),
    InputEnded,
    Signal(Signal),
    /// An answer was sent: what was done, or the error (with its hint).
    Done(Result<String, String>),
}

/// An answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Approve { id: String, scope: ApprovalScope },
    Deny { id: String, errno: Option<i32> },
    Pause { run: String },
    Resume { run: String },
}

impl Action {
    fn send(&self, socket: &std::path::Path) -> Result<String> {
        match self {
            Action::Approve { id, scope } => {
                approve::approve(socket, id, *scope)?;
                let how = match scope {
                    ApprovalScope::Once => "once".to_string(),
                    ApprovalScope::For { seconds } => format!("for {seconds}s"),
                    ApprovalScope::Run => "for the rest of the run".to_string(),
                };
                Ok(format!("approved {id} {how}"))
            }
            Action::Deny { id, errno } => {
                deny::deny(socket, id, *errno)?;
                Ok(format!("denied {id}"))
            }
            Action::Pause { run } => pause::pause(socket, run).map(|()| format!("paused {run}")),
            Action::Resume { run } => {
                resume::resume(socket, run).map(|()| format!("resumed {run}"))
            }
        }
    }
}

/// Work for the worker thread.
#[derive(Debug)]
pub enum Job {
    Refresh,
    Act(Action),
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .with_context(|| format!("cannot start the {name} thread"))
}

pub fn spawn_signals(set: SigSet, tx: Sender<Msg>) -> Result<()> {
    spawn("signals", move || {
        while let Ok(sig) = set.wait() {
            if tx.send(Msg::Signal(sig)).is_err() {
                return;
            }
        }
    })
}

/// Subscribes to events on a connection of its own; `Events` failing to connect is reported as
/// the end of the stream.
pub fn spawn_events(socket: PathBuf, tx: Sender<Msg>) -> Result<()> {
    spawn("events", move || {
        let result = (|| -> Result<()> {
            let mut conn = Connection::connect(&socket)?;
            conn.send(Request::Events, &[])?;
            while let Some(e) = events::next_event(&mut conn)? {
                if tx.send(Msg::Event(Box::new(e))).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        })();
        let _ = tx.send(Msg::EventsEnded(result.map_err(|e| describe(&e))));
    })
}

/// The worker: answers, then a snapshot; a snapshot every [`PERIOD`] when `periodic`.
pub fn spawn_worker(socket: PathBuf, periodic: bool, tx: Sender<Msg>) -> Result<Sender<Job>> {
    let (jobs_tx, jobs): (Sender<Job>, Receiver<Job>) = mpsc::channel();
    spawn("worker", move || loop {
        let job = if periodic {
            match jobs.recv_timeout(PERIOD) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => Job::Refresh,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if let Job::Act(action) = job {
            let done = action.send(&socket).map_err(|e| describe(&e));
            if tx.send(Msg::Done(done)).is_err() {
                return;
            }
        }
        let snap = snapshot(&socket).map_err(|e| describe(&e));
        if tx.send(Msg::Snapshot(snap)).is_err() {
            return;
        }
    })?;
    Ok(jobs_tx)
}

fn snapshot(socket: &std::path::Path) -> Result<(Vec<RunInfo>, Vec<PendingRequest>, u32)> {
    let runs = match client::request(socket, Request::Ps).context("cannot list runs")? {
        Response::Runs { runs } => runs,
        other => bail!("unexpected answer from agentd to ps: {other:?}"),
    };
    let req = Request::Pending { follow: false };
    let pending = match client::request(socket, req).context("cannot list pending requests")? {
        Response::Pending { requests, omitted } => (requests, omitted),
        other => {
            return Err(anyhow!(
                "unexpected answer from agentd to pending: {other:?}"
            ))
        }
    };
    Ok((runs, pending.0, pending.1))
}

/// Reads stdin: raw chunks when `keys`, else lines; then [`Msg::InputEnded`].
pub fn spawn_stdin(keys: bool, tx: Sender<Msg>) -> Result<()> {
    spawn("stdin", move || {
        let stdin = io::stdin();
        if keys {
            let mut buf = [0u8; 64];
            loop {
                match stdin.lock().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let chunk = buf.get(..n).unwrap_or_default().to_vec();
                        if tx.send(Msg::Keys(chunk)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        } else {
            for line in stdin.lock().lines().map_while(Result::ok) {
                if tx.send(Msg::Line(line)).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Msg::InputEnded);
    })
}

/// The error chain, then a `hint:` line when the error carries one.
fn describe(err: &anyhow::Error) -> String {
    match crate::hint_of(err) {
        Some(hint) => format!("{err:#}\nhint: {hint}"),
        None => format!("{err:#}"),
    }
}
