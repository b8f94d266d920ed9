//! The agentd control-socket protocol.
//!
//! Wire format: one JSON object per line (`\n`-terminated), at most [`MAX_FRAME`] bytes including
//! the newline. Every request carries the protocol version `v`; the daemon answers a version it
//! does not speak with [`ErrorCode::UnsupportedVersion`]. File descriptors (the agent's terminal or
//! pipes) travel as `SCM_RIGHTS` ancillary data attached to the bytes of the `run` request that
//! announces them (`fds`).
//!
//! The caller's identity is never a field of a request: the daemon takes it from `SO_PEERCRED`.
//!
//! This crate is `#![forbid(unsafe_code)]` and knows nothing of sockets: it only encodes and
//! decodes frames ([`codec`]).
#![forbid(unsafe_code)]

pub mod codec;
pub mod time;

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;
/// The largest frame either side accepts, newline included.
pub const MAX_FRAME: usize = 256 * 1024;
/// The most file descriptors one request may carry.
pub const MAX_FDS: usize = 3;
/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/agentd/agentd.sock";

/// A request frame: `{"v":1,"req":{"type":"ps",...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub v: u32,
    pub req: Request,
}

impl Envelope {
    pub fn new(req: Request) -> Self {
        Self { v: VERSION, req }
    }
}

/// What a client asks of the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Start a confined run. The connection stays open for the run's lifetime: the daemon answers
    /// [`Response::Started`] (or an error), later [`Response::Exited`]. Closing the connection
    /// before the run ends kills the run.
    Run(RunRequest),
    /// Deliver a signal to the run's main process (Ctrl-C relay in pipe mode).
    Signal { run: String, signal: i32 },
    /// List the caller's runs (root: all runs).
    Ps,
    /// Details of one run; `run` is an id or a unique prefix of one.
    Inspect { run: String },
    /// Kill every process of a run at once (cgroup kill); with `signal`, deliver that signal to
    /// every process of the run instead (race-free against forks: the run is frozen meanwhile).
    Kill {
        run: String,
        #[serde(default)]
        signal: Option<i32>,
    },
    /// Freeze every process of the run (cgroup freezer). Held calls stay held.
    Pause { run: String },
    /// Thaw a paused run.
    Resume { run: String },
    /// The pending approval requests the caller may answer ([`Response::Pending`]); with
    /// `follow`, the connection then streams [`Response::DaemonEvent`]s of kinds `pending` and
    /// `decided`.
    Pending {
        #[serde(default)]
        follow: bool,
    },
    /// Allow a pending request (`id` or a unique prefix of one).
    Approve {
        id: String,
        #[serde(default)]
        scope: ApprovalScope,
    },
    /// Refuse a pending request; `errno` defaults to the rule's (EACCES).
    Deny {
        id: String,
        #[serde(default)]
        errno: Option<i32>,
    },
    /// Subscribe to run and approval events ([`Response::DaemonEvent`]), for the caller's runs
    /// (root and the admin group: all). A client that falls behind is disconnected.
    Events,
    /// Read a run's audit log (owner or root). The daemon answers with zero or more
    /// [`Response::AuditRecords`] frames, then [`Response::AuditEnd`] (or an error). With
    /// `verify`, it only checks the hash chain: [`Response::AuditEnd`] with `verified` set, or
    /// an [`ErrorCode::AuditBroken`] error naming the first broken record.
    Audit {
        run: String,
        /// Keep sending records as they are written until the run has ended.
        #[serde(default)]
        follow: bool,
        /// Only records of this kind: `exec`, `open`, `connect`, `run_start`, `run_end`,
        /// `daemon_start` or `note`.
        #[serde(default)]
        kind: Option<String>,
        /// Only records with this verdict: `allow`, `deny`, `ask` or `pause`.
        #[serde(default)]
        verdict: Option<String>,
        #[serde(default)]
        verify: bool,
    },
}

/// How far an approval reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ApprovalScope {
    /// This one call.
    #[default]
    Once,
    /// This call, and the same rule and subject (`PendingRequest::subject`) in this run for
    /// `seconds`.
    For { seconds: u64 },
    /// This call, and the same rule and subject for the rest of this run.
    Run,
}

/// A held call waiting for a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingRequest {
    /// Short id for `approve`/`deny`.
    pub id: String,
    pub run: String,
    pub uid: u32,
    /// `exec`, `open` or `connect`.
    pub kind: String,
    /// The path (exec, open) or address (connect) asked about.
    pub target: String,
    /// exec: the argument list asked about (at most [`MAX_SHOWN_ARGV`] bytes of it; see
    /// `argv_hidden`). An approval covers exactly the whole list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// exec: how many arguments past `argv` are not shown (a longer list than
    /// [`MAX_SHOWN_ARGV`]; `agentctl audit` records the first 32 KiB).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub argv_hidden: u32,
    /// open: `read` or `write`. An approval covers exactly this access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    pub pid: i32,
    pub comm: String,
    pub rule: Option<String>,
    pub reason: String,
    /// `true` when the rule was `pause`: the whole run is frozen until the answer.
    pub pause: bool,
    /// How many identical calls wait on this request.
    pub waiting: u32,
    /// Unix time (milliseconds) when the request is denied if nobody answers.
    pub deadline_ms: u64,
    /// The daemon's own key of what is asked, over the whole argv (never sent): identical asks
    /// collapse into one request, and `approve --for/--run` grants later calls, only when it
    /// is equal.
    #[serde(skip)]
    pub key: String,
}

/// The most argv text a pending request carries (so a request, and a list of them, stays far
/// below [`MAX_FRAME`]).
pub const MAX_SHOWN_ARGV: usize = 4096;

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl PendingRequest {
    /// What is asked, as shown to a human: the target with the argv of an exec or the access of
    /// an open (`/usr/bin/git: git push --force`, `/w/.env [write]`), and how many arguments
    /// are not shown, if any.
    pub fn subject(&self) -> String {
        let mut s = subject(&self.target, self.argv.as_deref(), self.access.as_deref());
        if self.argv_hidden > 0 {
            s.push_str(&format!(" … and {} more arguments", self.argv_hidden));
        }
        s
    }
}

/// [`PendingRequest::subject`] from its parts (the monitor builds it from the event).
pub fn subject(target: &str, argv: Option<&[String]>, access: Option<&str>) -> String {
    let mut out = target.to_string();
    if let Some(argv) = argv {
        out.push(':');
        for a in argv {
            out.push(' ');
            out.push_str(&shell_word(a));
        }
    }
    if let Some(access) = access {
        out.push_str(&format!(" [{access}]"));
    }
    out
}

/// One argument as a shell would need it written: bare when plain, `'…'` when it holds spaces
/// or quotes, `$'…'` with escapes when it holds a character that could reformat the line it
/// is shown on (see [`hidden_char`]).
pub fn shell_word(a: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !a.is_empty() && a.chars().all(plain) {
        return a.to_string();
    }
    if !a.chars().any(hidden_char) {
        return format!("'{}'", a.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for c in a.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            c if hidden_char(c) => out.push_str(&escaped(c)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `s` safe to print on a terminal: every [`hidden_char`] written as an escape (`\n`, `\x1b`,
/// `\u202e`). Paths, argv and command names come from the agent; shown raw, an escape
/// sequence or a bidirectional override in one could redraw what a human is asked to approve.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(hidden_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if hidden_char(c) {
                    escaped(c)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A character that changes how a line is shown rather than showing itself: control
/// characters (C0, DEL, C1: escape sequences, newlines, carriage returns), the line and
/// paragraph separators, every format character (Unicode category Cf: bidirectional marks,
/// overrides and isolates, zero-width characters, the soft hyphen, the byte-order mark, tags)
/// and the other characters Unicode says to draw as nothing (default-ignorable: the combining
/// grapheme joiner, Hangul fillers, variation selectors).
pub fn hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}'
            | '\u{890}'..='\u{891}' | '\u{8e2}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
            | '\u{feff}' | '\u{fff0}'..='\u{fffb}' | '\u{110bd}' | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}' | '\u{34f}' | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}' | '\u{180b}'..='\u{180f}' | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}' | '\u{ffa0}')
}

fn escaped(c: char) -> String {
    match c {
        '\n' => r"\n".into(),
        '\t' => r"\t".into(),
        '\r' => r"\r".into(),
        c if u32::from(c) < 0x100 => format!(r"\x{:02x}", u32::from(c)),
        c if u32::from(c) <= 0xffff => format!(r"\u{:04x}", u32::from(c)),
        c => format!(r"\U{:08x}", u32::from(c)),
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn subject_names_argv_and_access() {
        let argv = ["git".to_string(), "push".into(), "--force".into()];
        assert_eq!(
            subject("/usr/bin/git", Some(&argv), None),
            "/usr/bin/git: git push --force"
        );
        assert_eq!(subject("/w/.env", None, Some("write")), "/w/.env [write]");
        assert_eq!(subject("10.0.0.5:5432", None, None), "10.0.0.5:5432");
        // Two argv that differ only in how their words split are different subjects.
        let one = ["sh".to_string(), "-c".into(), "a b".into()];
        let two = ["sh".to_string(), "-c".into(), "a".into(), "b".into()];
        assert_ne!(
            subject("/bin/sh", Some(&one), None),
            subject("/bin/sh", Some(&two), None)
        );
    }

    #[test]
    fn shell_word_quotes_what_a_shell_would_split_or_hide() {
        assert_eq!(shell_word("--force"), "--force");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("a\nb"), r"$'a\nb'");
        assert_eq!(shell_word("\u{1b}[2J'x\\"), r"$'\x1b[2J\'x\\'");
        assert_eq!(shell_word("a\u{202e}b"), r"$'a\u202eb'");
    }

    #[test]
    fn printable_escapes_only_hidden_characters() {
        assert!(matches!(
            printable("/w/plain é.txt"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(printable("x\u{1b}[1A\ry\u{9b}z"), r"x\x1b[1A\ry\x9bz");
        assert_eq!(
            printable("a\u{2066}b\u{200b}c\u{feff}"),
            r"a\u2066b\u200bc\ufeff"
        );
        for c in [
            '\u{0}',
            '\u{7f}',
            '\u{85}',
            '\u{ad}',
            '\u{61c}',
            '\u{202a}',
            '\u{202e}',
            '\u{2028}',
            '\u{2069}',
            '\u{206f}',
            '\u{fffb}',
            '\u{e0041}',
            '\u{34f}',
            '\u{3164}',
            '\u{fe0f}',
            '\u{e0100}',
        ] {
            assert!(hidden_char(c), "{:x}", u32::from(c));
            assert!(printable(&c.to_string()).chars().all(|c| !hidden_char(c)));
        }
    }
}

/// Something that happened to a run, for `agentctl events` and `watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonEvent {
    /// `started`, `paused`, `resumed`, `pending`, `decided` or `exited`.
    pub kind: String,
    pub run: String,
    pub uid: u32,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRequest>,
    /// For `decided`: `allow`, `deny` or `timeout`, and by whom (`uid:N`, `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
}

/// How the agent's standard streams are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stdio {
    /// One fd is attached: the slave side of a pty the client opened; it becomes the agent's
    /// controlling terminal and its stdin, stdout and stderr.
    Pty,
    /// Three fds are attached, in order stdin (read end), stdout and stderr (write ends) of pipes the
    /// client relays.
    Pipes,
}

impl Stdio {
    /// How many fds a run request with this stdio carries.
    pub fn fd_count(self) -> usize {
        match self {
            Stdio::Pty => 1,
            Stdio::Pipes => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Command and arguments; `argv[0]` is looked up in the sandbox's `PATH` if it has no `/`.
    pub argv: Vec<String>,
    /// Absolute path of the workspace (`${WORKSPACE}`).
    pub workspace: String,
    /// Working directory of the agent (absolute); must be visible inside the run.
    pub cwd: String,
    /// A preset name (looked up in the policy directories) or a path; `None` = `default`.
    pub policy: Option<String>,
    /// The caller's environment; the policy's `[env]` filters it.
    pub env: Vec<(String, String)>,
    pub stdio: Stdio,
    /// Send every audit record of the run as a [`Response::Event`] on this connection.
    #[serde(default)]
    pub json_events: bool,
}

/// A frame the daemon sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
// One response per frame, built and dropped at once: boxing `Run` would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Response {
    /// The run is confined and its command is about to be executed.
    Started {
        run: String,
        /// Name or path of the policy that was applied.
        policy: String,
        /// The agent's pid as the host sees it.
        pid: i32,
    },
    /// The run ended.
    Exited {
        run: String,
        status: ExitStatus,
    },
    Runs {
        runs: Vec<RunInfo>,
    },
    Run {
        run: RunInfo,
    },
    Ok,
    Error(ErrorBody),
    /// Some records of an audit log, in file order (one of several frames, each well under
    /// [`MAX_FRAME`]).
    AuditRecords {
        records: Vec<serde_json::Value>,
    },
    /// The end of an `audit` answer; `verified` is the number of records when `verify` was asked.
    AuditEnd {
        verified: Option<u64>,
    },
    /// One audit record of the run, as it is written (only when the run asked for `json_events`).
    Event {
        record: serde_json::Value,
    },
    Pending {
        requests: Vec<PendingRequest>,
        /// Requests not listed: the list would not fit in one frame (the most urgent come
        /// first).
        #[serde(default, skip_serializing_if = "is_zero")]
        omitted: u32,
    },
    DaemonEvent {
        event: DaemonEvent,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExitStatus {
    Code {
        code: i32,
    },
    Signal {
        signal: i32,
    },
    /// The command could not be executed (errno from execve).
    ExecFailed {
        errno: i32,
        message: String,
    },
    /// The run was killed because of a limit or by a user; `reason` says which.
    Killed {
        reason: String,
    },
    /// The daemon lost track of the run (it restarted while the run was live).
    Lost,
}

impl ExitStatus {
    /// The exit code agentctl uses, as `docker run` does: the command's own code; 128+N for
    /// signal N; 126 not executable; 127 not found; 137 when killed.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExitStatus::Code { code } => *code,
            ExitStatus::Signal { signal } => 128 + signal,
            ExitStatus::ExecFailed { errno, .. } if *errno == ENOENT => 127,
            ExitStatus::ExecFailed { .. } => 126,
            ExitStatus::Killed { .. } => 137,
            ExitStatus::Lost => 125,
        }
    }
}

const ENOENT: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Starting,
    Running,
    /// Frozen by `agentctl pause` or a `pause` rule.
    Paused,
    Exited,
    Lost,
}

/// What `ps` and `inspect` show of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    pub id: String,
    pub uid: u32,
    pub state: RunState,
    pub argv: Vec<String>,
    pub workspace: String,
    pub policy: String,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub pid: Option<i32>,
    pub exit: Option<ExitStatus>,
    /// Unix time (seconds) since when the run is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<u64>,
    /// Only filled by `inspect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<RunDetail>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDetail {
    /// Host pids of the run's processes.
    pub pids: Vec<i32>,
    pub cgroup: String,
    pub cpu_seconds: Option<f64>,
    pub memory_peak_bytes: Option<u64>,
    pub memory_current_bytes: Option<u64>,
    /// The effective (merged, substituted) policy as TOML.
    pub policy_toml: String,
}

/// A structured error: what happened, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON of a known request.
    Malformed,
    /// The frame exceeded [`MAX_FRAME`].
    TooLarge,
    UnsupportedVersion,
    /// No run matches, or the prefix is ambiguous.
    NoSuchRun,
    /// The caller may not act on that run.
    PermissionDenied,
    /// The policy could not be found, parsed or compiled.
    InvalidPolicy,
    /// The request is well formed but cannot be carried out (missing workspace, bad fds, …).
    InvalidRequest,
    /// The kernel lacks a feature the policy needs.
    Unsupported,
    /// Anything else on the daemon's side.
    Internal,
    /// An audit log's hash chain is broken; the message names the first broken record.
    AuditBroken,
}
