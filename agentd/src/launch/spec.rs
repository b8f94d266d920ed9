//! The launch spec: everything the launcher needs to build one confined process, as plain data.
//!
//! The daemon computes it from the compiled policy ([`super::plan`]) and sends it, JSON-encoded,
//! to the launcher process. The launcher never sees a policy, TOML or a request.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One confined run, ready to launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub run_id: String,
    /// `argv[0]` is looked up in the `PATH` of `env` when it has no `/`.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Working directory inside the view.
    pub cwd: PathBuf,
    pub identity: Identity,
    /// Standard streams are a pty slave (make it the controlling terminal) rather than pipes.
    pub tty: bool,
    /// An empty directory, owned by root, on which the view's root tmpfs is mounted.
    pub staging: PathBuf,
    /// The filesystem view, in mount order (parents before children).
    pub view: Vec<ViewEntry>,
    /// Hide patterns (deny wins over every grant): masked at launch wherever they match.
    pub hide: Vec<String>,
    /// Give the run its own empty network namespace (loopback only).
    pub isolate_network: bool,
    pub landlock: LandlockSpec,
    pub filter: FilterSpec,
    /// `cgroup.procs` files the run's init writes itself into, before anything else.
    pub cgroup_procs: Vec<PathBuf>,
    pub hostname: String,
}

/// Who the agent runs as: the caller, from `SO_PEERCRED`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// One entry of the view, at the same path as on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewEntry {
    /// Bind the host tree at `path` (resolved with the caller's permissions).
    Bind {
        path: PathBuf,
        write: bool,
        exec: bool,
    },
    /// A fresh tmpfs (mode 1777, not executable) at `path`.
    Tmpfs { path: PathBuf },
}

impl ViewEntry {
    pub fn path(&self) -> &PathBuf {
        match self {
            ViewEntry::Bind { path, .. } | ViewEntry::Tmpfs { path } => path,
        }
    }
}

/// Landlock rules, applied after the view is built (paths are view paths).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LandlockSpec {
    pub rules: Vec<LandlockRule>,
    /// `Some(ports)`: handle TCP connect and bind; connect allowed to these ports only, bind never.
    /// `None`: the network namespace is the wall (isolated runs).
    pub tcp_connect_ports: Option<Vec<u16>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockRule {
    pub path: PathBuf,
    pub access: Access,
}

/// Rights on a tree, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Access {
    /// List directories only.
    ListDir,
    Read,
    ReadExec,
    /// Read and write a device (ioctl too): /dev/null, /dev/tty, /dev/pts.
    Device,
    ReadWrite,
    ReadWriteExec,
}

/// Which optional entries of the seccomp deny list apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FilterSpec {
    /// Deny UDP sockets (`network = "filtered"`: Landlock cannot filter UDP before ABI 10).
    pub deny_udp: bool,
}
