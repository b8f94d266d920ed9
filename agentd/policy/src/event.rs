//! What the agent tried ([`Event`]) and what the policy says about it ([`Decision`]).
//!
//! The monitor builds an `Event` from a seccomp notification (paths already resolved inside the
//! run's view, addresses already copied out of the agent's memory) and asks
//! [`crate::decide`]. Nothing here touches the kernel.

use std::net::SocketAddr;
use std::path::PathBuf;

/// One mediated action of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `execve`/`execveat` of `path` (absolute, symlinks resolved) with `argv`.
    Exec { path: PathBuf, argv: Vec<String> },
    /// `open` family: `path` (absolute, symlinks resolved) for reading or writing.
    Open { path: PathBuf, access: OpenAccess },
    /// `connect`, and `sendto`/`sendmsg`/`bind` that carry an address.
    Connect { addr: SockAddr },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpenAccess {
    /// `O_RDONLY` without `O_CREAT`/`O_TRUNC` (also `O_PATH`).
    Read,
    /// Any write intent: `O_WRONLY`, `O_RDWR`, `O_CREAT`, `O_TRUNC`, `creat`.
    Write,
}

/// A socket address, copied out of the agent's memory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SockAddr {
    /// IPv4 or IPv6 (v4-mapped v6 addresses are given as IPv4 by the monitor).
    Inet(SocketAddr),
    /// A Unix socket path, absolute, resolved inside the run's view.
    Unix(PathBuf),
    /// An abstract Unix socket name (without the leading NUL).
    Abstract(String),
    /// Any other address family (by number).
    Other(u16),
}

/// What to do with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Fail the call with this errno.
    Deny {
        errno: i32,
    },
    /// Hold the call until a human answers (or the approval timeout denies it).
    Ask,
    /// Freeze the whole run and hold the call until a human answers.
    Pause,
}

/// Who or what decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The rule that decided; `None` when the policy's default for the event's kind did.
    pub rule_id: Option<String>,
    /// Why, in words: the rule's `reason`, or a sentence naming the default that applied.
    pub reason: String,
}

/// errno values rules may name (a policy spells them `"EACCES"`, `"EPERM"`, …).
pub const EACCES: i32 = 13;
pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const ECONNREFUSED: i32 = 111;
pub const ENETUNREACH: i32 = 101;
