//! Feature gating: probe the real capability, never the kernel version.
//!
//! A missing feature skips the test with `SKIP <test>: <reason>` written straight to stderr
//! (libtest does not capture `std::io::stderr().write_all`, rust-lang/rust#90785, so the reason
//! shows in the CI log even for a passing test). If the feature's name is listed in
//! `AGENTD_TEST_EXPECT` (comma-separated), its absence is a failure instead: a misconfigured CI can
//! never turn into silent passes (rust-landlock's `LANDLOCK_CRATE_TEST_ABI` idea).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A host capability an e2e test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// The test process runs as root (agentd refuses anything else).
    Root,
    /// User namespaces can be created.
    UserNs,
    /// Landlock is enabled (any ABI).
    Landlock,
    /// seccomp user notification (`user_notif` in `actions_avail`).
    SeccompNotify,
    /// `/sys/fs/cgroup/pids` is a cgroup v1 hierarchy.
    CgroupV1,
    /// A cgroup v2 hierarchy: `/sys/fs/cgroup/unified` (hybrid) or `/sys/fs/cgroup` (unified).
    Cgroup2Unified,
}

/// What every confined run needs.
pub const SANDBOX: &[Feature] = &[
    Feature::Root,
    Feature::UserNs,
    Feature::Landlock,
    Feature::SeccompNotify,
];

impl Feature {
    /// The name used in `AGENTD_TEST_EXPECT`.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Root => "root",
            Feature::UserNs => "userns",
            Feature::Landlock => "landlock",
            Feature::SeccompNotify => "seccomp_notify",
            Feature::CgroupV1 => "cgroup_v1",
            Feature::Cgroup2Unified => "cgroup2_unified",
        }
    }

    /// `Ok(())` if the host has it, else why not.
    pub fn probe(self) -> Result<(), String> {
        match self {
            Feature::Root => probe_root(),
            Feature::UserNs => probe_userns(),
            Feature::Landlock => probe_landlock(),
            Feature::SeccompNotify => probe_seccomp_notify(),
            Feature::CgroupV1 => probe_cgroup_v1(),
            Feature::Cgroup2Unified => probe_cgroup2(),
        }
    }
}

fn probe_root() -> Result<(), String> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err("not root: agentd and the e2e tests need root (run `sudo make test`)".into())
    }
}

/// Creates a user namespace in a child process (a multi-threaded process cannot `unshare` one).
fn probe_userns() -> Result<(), String> {
    if let Ok(max) = std::fs::read_to_string("/proc/sys/user/max_user_namespaces") {
        if max.trim() == "0" {
            return Err("user.max_user_namespaces is 0".into());
        }
    }
    let status = Command::new("unshare")
        .args(["--user", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run unshare(1) to probe user namespaces: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("unshare --user true failed ({status})"))
    }
}

fn probe_landlock() -> Result<(), String> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag the kernel reads no
    // memory and creates no fd; it only returns the ABI version or an error.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if abi >= 1 {
        Ok(())
    } else {
        Err(format!(
            "landlock_create_ruleset(VERSION) failed: {} (is `landlock` in the lsm= boot list?)",
            std::io::Error::last_os_error()
        ))
    }
}

fn probe_seccomp_notify() -> Result<(), String> {
    let avail = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
        .map_err(|e| format!("cannot read /proc/sys/kernel/seccomp/actions_avail: {e}"))?;
    if avail.split_whitespace().any(|a| a == "user_notif") {
        Ok(())
    } else {
        Err(format!(
            "seccomp actions_avail lacks user_notif: {}",
            avail.trim()
        ))
    }
}

fn probe_cgroup_v1() -> Result<(), String> {
    use nix::sys::statfs::{statfs, CGROUP_SUPER_MAGIC};
    match statfs("/sys/fs/cgroup/pids") {
        Ok(fs) if fs.filesystem_type() == CGROUP_SUPER_MAGIC => Ok(()),
        Ok(_) => Err("/sys/fs/cgroup/pids is not a cgroup v1 mount".into()),
        Err(e) => Err(format!("/sys/fs/cgroup/pids: {e}")),
    }
}

fn probe_cgroup2() -> Result<(), String> {
    let hybrid = Path::new("/sys/fs/cgroup/unified/cgroup.procs");
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers");
    if hybrid.exists() || unified.exists() {
        Ok(())
    } else {
        Err("no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup".into())
    }
}

/// Features listed in `AGENTD_TEST_EXPECT`.
fn expected() -> Vec<String> {
    std::env::var("AGENTD_TEST_EXPECT")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The running test's name (libtest names each test's thread after it).
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned()
}

/// Whether the host has every feature. Missing and expected: panics (the test fails). Missing and
/// not expected: writes `SKIP <test>: <reason>` to stderr and returns false.
pub fn require(features: &[Feature]) -> bool {
    let expect = expected();
    for &f in features {
        if let Err(reason) = f.probe() {
            if expect.iter().any(|e| e == f.name()) {
                panic!(
                    "{}: feature `{}` is in AGENTD_TEST_EXPECT but absent: {reason}",
                    current_test(),
                    f.name()
                );
            }
            let line = format!("SKIP {}: {}: {reason}\n", current_test(), f.name());
            // Not eprintln!: libtest would capture it (rust-lang/rust#90785).
            let _ = std::io::stderr().write_all(line.as_bytes());
            return false;
        }
    }
    true
}

/// `require!(Feature::A, Feature::B)`: return from the test early (after a SKIP line) unless the
/// host has every feature. `require!(sandbox)` is every feature a confined run needs.
#[macro_export]
macro_rules! require {
    (sandbox $(, $f:expr)* $(,)?) => {
        if !$crate::require($crate::SANDBOX) || !$crate::require(&[$($f),*]) {
            return;
        }
    };
    ($($f:expr),+ $(,)?) => {
        if !$crate::require(&[$($f),+]) {
            return;
        }
    };
}
