//! Where the binaries under test are: next to the test executable's `deps/` directory.
//!
//! Cargo sets `CARGO_BIN_EXE_*` only for a package's own binaries, so the e2e binary finds
//! `agentd` and `agentctl` through `current_exe()` (ripgrep's fallback). A missing binary is a
//! hard failure, never a skip: a CI that forgot to build must not pass.

use std::path::{Path, PathBuf};

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The shipped policy presets (`policies/`).
pub fn policy_dir() -> PathBuf {
    repo_root().join("policies")
}

/// `target/<profile>/`: the test binary lives in `target/<profile>/deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe of the test binary");
    let deps = exe.parent().expect("test binary has a parent directory");
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps/ has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// The path of a workspace binary; panics with the fix if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} not found; the e2e tests drive the real binaries: run `cargo build --workspace --bins` \
         (same profile as the tests) first",
        path.display()
    );
    path
}

pub fn agentd() -> PathBuf {
    bin("agentd")
}

pub fn agentctl() -> PathBuf {
    bin("agentctl")
}

/// The helper that runs inside sandboxes (`src/bin/probe.rs`).
pub fn probe() -> PathBuf {
    bin("agentd-e2e-probe")
}
