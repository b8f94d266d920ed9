//! `agentctl watch [RUN]`: a terminal view for a second terminal: runs and pending requests as
//! they arrive, each request's countdown, and single-key answers.
//!
//! On a terminal (stdin and stdout both ttys) the screen is redrawn with plain ANSI (clear +
//! home; no curses, so it works over ssh) in raw mode; [`Screen`] restores the terminal when
//! dropped, and every exit path (q, Ctrl-C, SIGTERM, SIGHUP, an error, a panic) returns through
//! it. Otherwise watch runs in line mode: events are printed as lines and commands are read from
//! stdin lines ([`parse_line`]). One loop takes messages from the threads in [`feed`].

mod feed;
mod view;

use std::cell::Cell;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use agentd_proto::ApprovalScope;
use anyhow::{anyhow, Result};
use nix::sys::signal::Signal;
use nix::unistd::isatty;

use crate::cmd::events::{format_event, now_ms};
use crate::cmd::pending::table_lines;
use crate::cmd::run::tty::RawMode;
use feed::{Action, Job, Msg};
use view::View;

/// Watch runs and pending requests, and answer them with single keys
///
/// Keys: y approve the selected request once, a approve it for the rest of its run, n deny it,
/// p pause its run (or RUN), r resume it, j/k or arrows select, q or Ctrl-C quit. The selected
/// request is the one closest to its deadline unless you pick another.
///
/// When stdin or stdout is not a terminal, watch prints the pending requests and then one line
/// per event, and reads commands from stdin, one per line:
///   approve ID [once | run | for DURATION]
///   deny ID [ERRNO]
///   pause RUN
///   resume RUN
///   quit
/// It ends on `quit`, on an interrupt, or when agentd closes the event stream.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Only this run (an id or a unique prefix of one)
    pub run: Option<String>,
}

/// How often the screen is redrawn without news (the countdowns).
const REDRAW: Duration = Duration::from_secs(1);

/// What the loop decided.
enum Flow {
    Go,
    Quit(i32),
}

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    let tty = isatty(io::stdin()).unwrap_or(false) && isatty(io::stdout()).unwrap_or(false);
    // Before any thread exists, so that every thread has them blocked.
    let signals = super::block_session_signals()?;
    let (tx, rx) = mpsc::channel();
    feed::spawn_signals(signals, tx.clone())?;
    feed::spawn_events(socket.to_path_buf(), tx.clone())?;
    let jobs = Jobs {
        tx: feed::spawn_worker(socket.to_path_buf(), tty, tx.clone())?,
        in_flight: Cell::new(0),
    };
    jobs.refresh();
    feed::spawn_stdin(tty, tx)?;
    let mut view = View::new(args.run.clone());
    if tty {
        let screen = Screen::enter()?;
        let result = watch_tty(&mut view, &rx, &jobs, &screen);
        drop(screen);
        result
    } else {
        watch_lines(&mut view, &rx, &jobs)
    }
}

/// Raw mode plus the alternate screen with a hidden cursor, all undone on drop.
struct Screen {
    _raw: RawMode,
}

impl Screen {
    fn enter() -> Result<Self> {
        let raw = RawMode::enter()?;
        write_out("\x1b[?1049h\x1b[?25l");
        Ok(Self { _raw: raw })
    }

    fn draw(&self, view: &View) {
        let (width, height) = crate::sys::window_size(io::stdout().as_fd())
            .filter(|s| s.ws_col > 0 && s.ws_row > 0)
            .map_or((80, 24), |s| (usize::from(s.ws_col), usize::from(s.ws_row)));
        write_out(&view.render(now_ms(), width.max(20), height.max(10)));
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // Then `_raw` restores the saved terminal settings.
        write_out("\x1b[0m\x1b[?25h\x1b[?1049l");
    }
}

/// Writes to our stdout; a terminal that went away is noticed by SIGHUP, not here.
fn write_out(s: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|()| out.flush());
}

fn watch_tty(view: &mut View, rx: &Receiver<Msg>, jobs: &Jobs, screen: &Screen) -> Result<i32> {
    screen.draw(view);
    let mut quitting = None;
    loop {
        let msg = match rx.recv_timeout(REDRAW) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Err(anyhow!("watch lost its threads")),
        };
        // Handle everything already queued before drawing once.
        for msg in msg
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            if let Msg::Done(_) = msg {
                jobs.done();
            }
            if let Flow::Quit(code) = on_tty_msg(view, msg, jobs)? {
                quitting = Some(code);
            }
        }
        match quitting {
            // Answers already given are sent before watch ends.
            Some(code) if jobs.in_flight() == 0 => return Ok(code),
            Some(_) => view.status = "sending the answers given, then quitting…".into(),
            None => {}
        }
        screen.draw(view);
    }
}

fn on_tty_msg(view: &mut View, msg: Msg, jobs: &Jobs) -> Result<Flow> {
    match msg {
        Msg::Snapshot(Ok((runs, pending, omitted))) => {
            view.set_snapshot(runs, pending);
            view.omitted = omitted;
        }
        Msg::Snapshot(Err(e)) | Msg::Done(Err(e)) => view.status = one_line(&e),
        Msg::Done(Ok(what)) => view.status = what,
        Msg::Event(e) => {
            view.on_event(&e, now_ms());
            jobs.refresh();
        }
        Msg::EventsEnded(Ok(())) => return Err(anyhow!("agentd closed the event stream")),
        Msg::EventsEnded(Err(e)) => return Err(anyhow!("the event stream failed: {e}")),
        Msg::Keys(keys) => return Ok(on_keys(view, &keys, jobs)),
        Msg::Line(_) => {}
        Msg::InputEnded => return Ok(Flow::Quit(0)),
        Msg::Signal(Signal::SIGWINCH) => {}
        Msg::Signal(Signal::SIGINT) => return Ok(Flow::Quit(0)),
        Msg::Signal(sig) => return Ok(Flow::Quit(128 + sig as i32)),
    }
    Ok(Flow::Go)
}

fn one_line(s: &str) -> String {
    s.replace('\n', "  ")
}

/// Single keys: y a n p r, j/k or arrows, q or Ctrl-C.
fn on_keys(view: &mut View, keys: &[u8], jobs: &Jobs) -> Flow {
    let mut i = 0;
    while let Some(&key) = keys.get(i) {
        i += 1;
        let arrow = (key == 0x1b && keys.get(i) == Some(&b'['))
            .then(|| keys.get(i + 1).copied())
            .flatten();
        if arrow.is_some() {
            i += 2;
        }
        let selected = view.selected().map(|p| p.id.clone());
        let action = match (key, arrow) {
            (b'q' | 0x03 | 0x04, _) => return Flow::Quit(0),
            (b'j', _) | (0x1b, Some(b'B')) => {
                view.move_selection(1);
                None
            }
            (b'k', _) | (0x1b, Some(b'A')) => {
                view.move_selection(-1);
                None
            }
            (b'y', _) => selected.map(|id| Action::Approve {
                id,
                scope: ApprovalScope::Once,
            }),
            (b'a', _) => selected.map(|id| Action::Approve {
                id,
                scope: ApprovalScope::Run,
            }),
            (b'n', _) => selected.map(|id| Action::Deny { id, errno: None }),
            (b'p', _) => view.target_run().map(|run| Action::Pause { run }),
            (b'r', _) => view.target_run().map(|run| Action::Resume { run }),
            _ => continue,
        };
        match action {
            Some(action) => {
                view.status = format!("sending: {action:?}");
                jobs.act(action);
            }
            None if matches!(key, b'y' | b'a' | b'n') => {
                view.status = "no request selected".into();
            }
            None if matches!(key, b'p' | b'r') => {
                view.status = "which run? select a request or start `agentctl watch RUN`".into();
            }
            None => {}
        }
    }
    Flow::Go
}

fn watch_lines(view: &mut View, rx: &Receiver<Msg>, jobs: &Jobs) -> Result<i32> {
    let mut first_snapshot = true;
    let mut quitting = false;
    let mut ended = None;
    let mut out = io::stdout().lock();
    for msg in rx.iter() {
        match msg {
            Msg::Snapshot(Ok((runs, pending, omitted))) if first_snapshot => {
                first_snapshot = false;
                view.set_snapshot(runs, pending);
                if !view.pending.is_empty() {
                    let full = crate::cmd::pending::in_full(&view.pending);
                    for line in table_lines(&view.pending, now_ms()).iter().chain(&full) {
                        writeln!(out, "{line}")?;
                    }
                }
                if omitted > 0 {
                    writeln!(
                        out,
                        "… and {omitted} more requests agentd could not list at once"
                    )?;
                }
            }
            Msg::Snapshot(_) | Msg::Keys(_) | Msg::InputEnded => {}
            Msg::Event(e) if view.wants(&e.run) => {
                writeln!(out, "{}", format_event(&e, now_ms()))?;
            }
            Msg::Event(_) => {}
            Msg::Done(done) => {
                jobs.done();
                match done {
                    Ok(what) => writeln!(out, "ok: {what}")?,
                    Err(e) => eprintln!("agentctl: {e}"),
                }
            }
            Msg::EventsEnded(end) => {
                ended = Some(end.map_or_else(
                    |e| anyhow!("the event stream failed: {e}"),
                    |()| anyhow!("agentd closed the event stream"),
                ));
            }
            Msg::Line(line) => match parse_line(&line) {
                Ok(Some(Command::Act(action))) if ended.is_none() => jobs.act(action),
                Ok(Some(Command::Act(_))) => {}
                Ok(Some(Command::Quit)) => quitting = true,
                Ok(None) => {}
                Err(why) => eprintln!("agentctl: {why}"),
            },
            Msg::Signal(Signal::SIGWINCH) => {}
            Msg::Signal(sig) => return Ok(128 + sig as i32),
        }
        out.flush()?;
        // Answers already given are sent before watch ends.
        if jobs.in_flight() > 0 {
            continue;
        }
        if let Some(err) = ended.take() {
            return Err(err);
        }
        if quitting {
            return Ok(0);
        }
    }
    Err(anyhow!("watch lost its threads"))
}

/// The worker's queue, counting the answers not yet sent.
struct Jobs {
    tx: Sender<Job>,
    in_flight: Cell<usize>,
}

impl Jobs {
    fn act(&self, action: Action) {
        if self.tx.send(Job::Act(action)).is_ok() {
            self.in_flight.set(self.in_flight.get() + 1);
        }
    }

    fn refresh(&self) {
        let _ = self.tx.send(Job::Refresh);
    }

    fn done(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
    }

    fn in_flight(&self) -> usize {
        self.in_flight.get()
    }
}

/// A line-mode command.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Act(Action),
    Quit,
}

/// `approve ID [once|run|for DUR]`, `deny ID [ERRNO]`, `pause RUN`, `resume RUN`, `quit`;
/// `None` for a blank line or a `#` comment.
fn parse_line(line: &str) -> Result<Option<Command>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let act = |a| Ok(Some(Command::Act(a)));
    match words.as_slice() {
        [] => Ok(None),
        [w, ..] if w.starts_with('#') => Ok(None),
        ["quit" | "q" | "exit"] => Ok(Some(Command::Quit)),
        ["approve", id, rest @ ..] => {
            let scope = match rest {
                [] | ["once" | "--once"] => ApprovalScope::Once,
                ["run" | "--run"] => ApprovalScope::Run,
                ["for" | "--for", d] => ApprovalScope::For {
                    seconds: crate::cmd::approve::parse_duration(d)?,
                },
                _ => {
                    return Err(format!(
                        "usage: approve ID [once | run | for DURATION]: {line}"
                    ))
                }
            };
            act(Action::Approve {
                id: (*id).into(),
                scope,
            })
        }
        ["deny", id, rest @ ..] => {
            let errno = match rest {
                [] => None,
                [e] | ["--errno", e] => Some(crate::cmd::deny::parse_errno(e)?),
                _ => return Err(format!("usage: deny ID [ERRNO]: {line}")),
            };
            act(Action::Deny {
                id: (*id).into(),
                errno,
            })
        }
        ["pause", run] => act(Action::Pause { run: (*run).into() }),
        ["resume", run] => act(Action::Resume { run: (*run).into() }),
        _ => Err(format!(
            "unknown command `{line}` (approve ID, deny ID, pause RUN, resume RUN, quit)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_line_understands_every_command() {
        let approve = |id: &str, scope| {
            Ok(Some(Command::Act(Action::Approve {
                id: id.into(),
                scope,
            })))
        };
        assert_eq!(parse_line("approve q1"), approve("q1", ApprovalScope::Once));
        assert_eq!(
            parse_line("approve q1 run"),
            approve("q1", ApprovalScope::Run)
        );
        assert_eq!(
            parse_line("  approve q1 --for 5m "),
            approve("q1", ApprovalScope::For { seconds: 300 })
        );
        assert_eq!(
            parse_line("deny q2 EPERM"),
            Ok(Some(Command::Act(Action::Deny {
                id: "q2".into(),
                errno: Some(1)
            })))
        );
        assert_eq!(
            parse_line("pause r1"),
            Ok(Some(Command::Act(Action::Pause { run: "r1".into() })))
        );
        assert_eq!(
            parse_line("resume r1"),
            Ok(Some(Command::Act(Action::Resume { run: "r1".into() })))
        );
        assert_eq!(parse_line("quit"), Ok(Some(Command::Quit)));
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("# note"), Ok(None));
    }

    #[test]
    fn parse_line_rejects_unknown_commands_and_bad_arguments() {
        for bad in [
            "approve",
            "approve q1 forever",
            "deny q1 EFOO",
            "kill r1",
            "pause",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }
}
