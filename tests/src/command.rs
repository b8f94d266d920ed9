//! Running a child with a deadline: every wait in the e2e suite is bounded, and a child that
//! overruns is killed and reaped before the test fails, so CI can never hang on us.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The default bound for one agentctl invocation.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// What a finished child did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// The exit code; a death by signal N is reported as 128+N, as a shell would.
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        match (self.status.code(), self.status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => -1,
        }
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// A multi-line description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nexit: {} ({:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.code(),
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }
}

/// A printable form of `cmd`.
pub fn cmdline(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Kills `pid` with SIGKILL, ignoring an already-gone process.
pub fn kill_pid(pid: u32) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

/// `cmd.spawn()`, retried while it fails with `ETXTBSY`: a test that has just written an
/// executable (`install_probe`) can find it still open for writing in a child another test
/// thread forked meanwhile, until that child execs (the fork/exec race of rust-lang/rust#114554).
pub fn spawn(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Runs `cmd` to completion with `stdin` as its input, killing it after `timeout`.
/// Panics (the test fails) on a spawn error or a timeout, with what the child printed so far.
pub fn run(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Output {
    let line = cmdline(&cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = spawn(&mut cmd).unwrap_or_else(|e| panic!("cannot spawn {line}: {e}"));
    let pid = child.id();
    let mut input = child.stdin.take();
    let data = stdin.to_vec();
    let writer = thread::spawn(move || {
        if let Some(w) = input.as_mut() {
            let _ = w.write_all(&data);
        }
        // Dropping the pipe closes the child's stdin.
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let result = match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => {
            kill_pid(pid);
            let late = rx.recv_timeout(Duration::from_secs(10));
            let partial = match late {
                Ok(Ok(o)) => format!(
                    "--- stdout ---\n{}\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
                _ => "(output unavailable)".to_owned(),
            };
            panic!("timed out after {timeout:?} (killed): {line}\n{partial}");
        }
    };
    let _ = writer.join();
    let out = result.unwrap_or_else(|e| panic!("waiting for {line}: {e}"));
    Output {
        cmdline: line,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// A child left running in the background (a long run for the control tests). Its stdout lines
/// arrive on a channel so a test can wait for a readiness line; it is killed and reaped on drop.
#[derive(Debug)]
pub struct Background {
    pub cmdline: String,
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Background {
    pub fn spawn(mut cmd: Command) -> Background {
        let line = cmdline(&cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(&mut cmd).unwrap_or_else(|e| panic!("cannot spawn {line}: {e}"));
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = child.stderr.take().map(|mut err| {
            thread::spawn(move || {
                let mut s = String::new();
                let _ = std::io::Read::read_to_string(&mut err, &mut s);
                s
            })
        });
        Background {
            cmdline: line,
            child: Some(child),
            lines: rx,
            stderr,
        }
    }

    /// Waits (bounded) for a stdout line equal to `want`.
    pub fn wait_for_line(&mut self, want: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.trim() == want => return Ok(()),
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("no line {want:?} within {timeout:?}"))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.try_status();
                    return Err(format!("stdout closed before {want:?}; status {status:?}"));
                }
            }
        }
    }

    /// The exit status if the child has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits (bounded) for the child to exit; `None` on timeout (the child is left running).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<(ExitStatus, String)> {
        let mut child = self.child.take()?;
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let r = child.wait();
            let _ = tx.send(());
            (child, r)
        });
        let timed_out = rx.recv_timeout(timeout).is_err();
        if timed_out {
            kill_pid(pid);
        }
        let (child, r) = waiter.join().ok()?;
        if timed_out {
            // Killed: the caller sees None and must fail the test; keep nothing running.
            drop(child);
            return None;
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        r.ok().map(|s| (s, stderr))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_pid(child.id());
            let _ = child.wait();
        }
    }
}
