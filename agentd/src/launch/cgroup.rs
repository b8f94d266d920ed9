//! A cgroup per run: limits, usage, kill of the whole tree at once, removal.
//!
//! Two layouts are supported, detected at start:
//! - **unified** (pure cgroup v2, the usual systemd host): runs live in `<base>/runs/<id>`;
//!   under a delegated systemd unit the daemon first moves itself into `<unit>/daemon` so the
//!   unit's cgroup may enable controllers for its children ("no internal processes").
//! - **hybrid** (v1 controllers, cgroup2 at `<root>/unified`, e.g. this CI host): the v2 tree
//!   gives `cgroup.kill` (and later `cgroup.freeze`), the v1 `memory`, `pids`, `cpu`, `cpuacct`
//!   hierarchies enforce limits. Without a cgroup2 mount at all (pure v1), kill is done by
//!   freezing with the v1 freezer, signalling every task, and thawing.
//!
//! Every path is under the `root` given to [`Cgroups::detect`] (normally `/sys/fs/cgroup`), so
//! the logic is tested against a temp-dir fake.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentd_policy::Resources;

const V1_CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "freezer"];
const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
#[error("cgroup {path}: {source}")]
pub struct CgroupError {
    pub path: String,
    #[source]
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError {
        path: path.display().to_string(),
        source,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    Unified {
        base: PathBuf,
    },
    Hybrid {
        unified: Option<PathBuf>,
        v1: Vec<(String, PathBuf)>,
    },
}

#[derive(Debug, Clone)]
pub struct Cgroups {
    pub layout: Layout,
}

/// One run's cgroup(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCgroup {
    /// The v2 directory (unified or hybrid), if any.
    pub v2: Option<PathBuf>,
    /// v1 directories by controller name.
    pub v1: Vec<(String, PathBuf)>,
    /// The v2 directory carries the controllers (unified layout); in a hybrid layout it only
    /// gives `cgroup.kill` and `cgroup.freeze`.
    pub v2_limits: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub cpu_seconds: Option<f64>,
    pub memory_peak: Option<u64>,
    pub memory_current: Option<u64>,
}

impl Cgroups {
    /// Detects the layout under `root`; `self_cgroup` is the content of `/proc/self/cgroup`;
    /// `parent` names the directory that holds this daemon's runs.
    pub fn detect(root: &Path, self_cgroup: &str, parent: &str) -> Result<Self, CgroupError> {
        if parent.is_empty() || parent.contains('/') || parent.starts_with('.') {
            return Err(CgroupError {
                path: parent.to_string(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the cgroup parent must be a plain directory name",
                ),
            });
        }
        if root.join("cgroup.controllers").exists() {
            let own = self_cgroup
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .unwrap_or("/")
                .trim_start_matches('/');
            let base = if own.is_empty() {
                root.join(parent)
            } else {
                root.join(own)
            };
            return Ok(Cgroups {
                layout: Layout::Unified { base },
            });
        }
        let unified = root.join("unified");
        let unified = unified
            .join("cgroup.procs")
            .exists()
            .then(|| unified.join(parent));
        let mut v1: Vec<(String, PathBuf)> = Vec::new();
        for c in V1_CONTROLLERS {
            let dir = root.join(c);
            if dir.join("cgroup.procs").exists() {
                // cpu and cpuacct may be one co-mounted hierarchy: keep it once.
                let canon = fs::canonicalize(&dir).unwrap_or(dir.clone());
                if !v1.iter().any(|(_, p)| p.parent() == Some(canon.as_path())) {
                    v1.push((c.to_string(), canon.join(parent)));
                }
            }
        }
        if unified.is_none() && v1.is_empty() {
            return Err(CgroupError {
                path: root.display().to_string(),
                source: io::Error::new(io::ErrorKind::NotFound, "no cgroup hierarchy found"),
            });
        }
        Ok(Cgroups {
            layout: Layout::Hybrid { unified, v1 },
        })
    }

    /// Creates the base directories; on a unified host, moves the daemon out of the way and
    /// enables the controllers runs need.
    pub fn init(&self, own_pid: u32) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::Unified { base } => {
                let runs = base.join("runs");
                if base.join("cgroup.procs").exists() && has_procs(base) {
                    let daemon = base.join("daemon");
                    fs::create_dir_all(&daemon).map_err(at(&daemon))?;
                    let procs = daemon.join("cgroup.procs");
                    fs::write(&procs, own_pid.to_string()).map_err(at(&procs))?;
                }
                fs::create_dir_all(&runs).map_err(at(&runs))?;
                enable_controllers(base)?;
                enable_controllers(&runs)
            }
            Layout::Hybrid { unified, v1 } => {
                for dir in unified.iter().chain(v1.iter().map(|(_, p)| p)) {
                    fs::create_dir_all(dir).map_err(at(dir))?;
                }
                Ok(())
            }
        }
    }

    /// Removes this daemon's (empty) parent directories on a clean shutdown; best effort.
    pub fn remove_parents(&self) {
        if let Layout::Hybrid { unified, v1 } = &self.layout {
            for dir in unified.iter().chain(v1.iter().map(|(_, p)| p)) {
                let _ = fs::remove_dir(dir);
            }
        }
    }

    fn run_dirs(&self, id: &str) -> RunCgroup {
        match &self.layout {
            Layout::Unified { base } => RunCgroup {
                v2: Some(base.join("runs").join(id)),
                v1: vec![],
                v2_limits: true,
            },
            Layout::Hybrid { unified, v1 } => RunCgroup {
                v2: unified.as_ref().map(|u| u.join(id)),
                v1: v1.iter().map(|(c, p)| (c.clone(), p.join(id))).collect(),
                v2_limits: false,
            },
        }
    }

    /// Creates the run's cgroup(s) with the policy's limits.
    pub fn create(&self, id: &str, limits: &Resources) -> Result<RunCgroup, CgroupError> {
        let cg = self.run_dirs(id);
        for dir in cg.dirs() {
            fs::create_dir(dir).map_err(at(dir))?;
        }
        if let Err(e) = cg.apply_limits(limits) {
            let _ = cg.remove(Duration::ZERO);
            return Err(e);
        }
        Ok(cg)
    }

    /// Run ids that have a cgroup (left over by a previous daemon).
    pub fn existing_runs(&self) -> Vec<String> {
        let bases: Vec<PathBuf> = match &self.layout {
            Layout::Unified { base } => vec![base.join("runs")],
            Layout::Hybrid { unified, v1 } => unified
                .iter()
                .chain(v1.iter().map(|(_, p)| p))
                .cloned()
                .collect(),
        };
        let mut ids: Vec<String> = bases
            .iter()
            .filter_map(|b| fs::read_dir(b).ok())
            .flat_map(|rd| rd.flatten())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The cgroup of an existing run id (for cleanup of leftovers).
    pub fn existing(&self, id: &str) -> RunCgroup {
        let mut cg = self.run_dirs(id);
        cg.v2 = cg.v2.filter(|p| p.exists());
        cg.v1.retain(|(_, p)| p.exists());
        cg
    }
}

fn has_procs(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|s| !s.trim().is_empty())
}

fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<String> = ["memory", "pids", "cpu"]
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let ctl = dir.join("cgroup.subtree_control");
    fs::write(&ctl, wanted.join(" ")).map_err(at(&ctl))
}

impl RunCgroup {
    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.v2.iter().chain(self.v1.iter().map(|(_, p)| p))
    }

    fn v1_dir(&self, controller: &str) -> Option<&PathBuf> {
        self.v1
            .iter()
            .find(|(c, _)| c == controller)
            .map(|(_, p)| p)
    }

    /// The `cgroup.procs` files the run's init writes itself into.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs().map(|d| d.join("cgroup.procs")).collect()
    }

    /// A short description for `inspect`.
    pub fn describe(&self) -> String {
        self.dirs()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn write(path: PathBuf, value: &str) -> Result<(), CgroupError> {
        fs::write(&path, value).map_err(at(&path))
    }

    fn apply_limits(&self, r: &Resources) -> Result<(), CgroupError> {
        let quota = r.cpu.map(|c| cpu_quota_us(c).to_string());
        if self.v2_limits {
            let Some(d) = &self.v2 else { return Ok(()) };
            if let Some(m) = r.memory {
                Self::write(d.join("memory.max"), &m.to_string())?;
                if d.join("memory.swap.max").exists() {
                    Self::write(d.join("memory.swap.max"), "0")?;
                }
            }
            if let Some(p) = r.pids {
                Self::write(d.join("pids.max"), &p.to_string())?;
            }
            if let Some(q) = quota {
                Self::write(d.join("cpu.max"), &format!("{q} {CPU_PERIOD_US}"))?;
            }
            return Ok(());
        }
        if let (Some(m), Some(d)) = (r.memory, self.v1_dir("memory")) {
            Self::write(d.join("memory.limit_in_bytes"), &m.to_string())?;
            if d.join("memory.memsw.limit_in_bytes").exists() {
                Self::write(d.join("memory.memsw.limit_in_bytes"), &m.to_string())?;
            }
        }
        if let (Some(p), Some(d)) = (r.pids, self.v1_dir("pids")) {
            Self::write(d.join("pids.max"), &p.to_string())?;
        }
        if let (Some(q), Some(d)) = (quota, self.v1_dir("cpu")) {
            Self::write(d.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
            Self::write(d.join("cpu.cfs_quota_us"), &q)?;
        }
        let missing: Vec<&str> = [
            (r.memory.is_some(), "memory"),
            (r.pids.is_some(), "pids"),
            (r.cpu.is_some(), "cpu"),
        ]
        .into_iter()
        .filter(|(set, c)| *set && self.v1_dir(c).is_none())
        .map(|(_, c)| c)
        .collect();
        if let Some(c) = missing.first() {
            return Err(CgroupError {
                path: c.to_string(),
                source: io::Error::new(
                    io::ErrorKind::Unsupported,
                    "controller not available on this host",
                ),
            });
        }
        Ok(())
    }

    /// Host pids of every process in the run.
    pub fn pids(&self) -> Vec<i32> {
        let Some(d) = self.dirs().next() else {
            return vec![];
        };
        fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills every process of the run at once, race-free against forks.
    pub fn kill(&self) -> Result<(), CgroupError> {
        if let Some(d) = &self.v2 {
            if d.join("cgroup.kill").exists() {
                return Self::write(d.join("cgroup.kill"), "1");
            }
        }
        // Pure v1: freeze (no new forks), signal everyone, thaw so the signals are delivered.
        let freezer = self.v1_dir("freezer");
        if let Some(f) = freezer {
            Self::write(f.join("freezer.state"), "FROZEN")?;
        }
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(f) = freezer {
            Self::write(f.join("freezer.state"), "THAWED")?;
        }
        Ok(())
    }

    /// Delivers `sig` to every process of the run, race-free against forks: the run is frozen
    /// while the list is read and signalled, then thawed (unless it was paused already).
    pub fn signal_all(&self, sig: nix::sys::signal::Signal) -> Result<(), CgroupError> {
        let frozen_before = self.is_frozen();
        self.freeze()?;
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
        if !frozen_before {
            self.thaw()?;
        }
        Ok(())
    }

    fn is_frozen(&self) -> bool {
        if let Some(d) = &self.v2 {
            if let Ok(s) = fs::read_to_string(d.join("cgroup.freeze")) {
                return s.trim() == "1";
            }
        }
        self.v1_dir("freezer")
            .and_then(|f| fs::read_to_string(f.join("freezer.state")).ok())
            .is_some_and(|s| s.trim() == "FROZEN")
    }

    /// Freezes every task of the run (v2 `cgroup.freeze`, else the v1 freezer).
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        if let Some(d) = &self.v2 {
            if d.join("cgroup.freeze").exists() {
                return Self::write(d.join("cgroup.freeze"), if frozen { "1" } else { "0" });
            }
        }
        match self.v1_dir("freezer") {
            Some(f) => Self::write(
                f.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ),
            None => Err(CgroupError {
                path: "freezer".into(),
                source: io::Error::new(io::ErrorKind::Unsupported, "no freezer on this host"),
            }),
        }
    }

    pub fn usage(&self) -> Usage {
        let read_u64 = |p: PathBuf| fs::read_to_string(p).ok()?.trim().parse::<u64>().ok();
        let mut u = Usage::default();
        if let Some(d) = &self.v2 {
            u.cpu_seconds = fs::read_to_string(d.join("cpu.stat")).ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|us| us as f64 / 1e6)
            });
            u.memory_peak = read_u64(d.join("memory.peak"));
            u.memory_current = read_u64(d.join("memory.current"));
        }
        if let Some(d) = self.v1_dir("cpuacct") {
            u.cpu_seconds = u
                .cpu_seconds
                .or(read_u64(d.join("cpuacct.usage")).map(|ns| ns as f64 / 1e9));
        }
        if let Some(d) = self.v1_dir("memory") {
            u.memory_peak = u
                .memory_peak
                .or(read_u64(d.join("memory.max_usage_in_bytes")));
            u.memory_current = u
                .memory_current
                .or(read_u64(d.join("memory.usage_in_bytes")));
        }
        u
    }

    /// Removes the cgroup directories, waiting up to `patience` for the last tasks to go.
    /// Blocking: call from a blocking thread.
    pub fn remove(&self, patience: Duration) -> Result<(), CgroupError> {
        let deadline = Instant::now() + patience;
        for dir in self.dirs() {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if Instant::now() >= deadline => return Err(at(dir)(e)),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        Ok(())
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // validated > 0, small
fn cpu_quota_us(cores: f64) -> u64 {
    ((cores * CPU_PERIOD_US as f64).round() as u64).max(1000)
}

#[cfg(test)]
mod tests;
