//! Landlock: per-path rights on the view, TCP port rules, abstract-socket and signal scoping.
//!
//! ABI 6 is the tested baseline and a hard requirement: on a kernel that lacks any right we
//! promise, the run is refused with the missing ABI named, never started half-confined.

use std::path::Path;

use landlock::{
    Access as _, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    PathFd, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use super::spec::{Access, LandlockSpec};
use super::LaunchError;

/// The Landlock ABI whose every feature a run relies on (Linux 6.12).
pub const REQUIRED_ABI: ABI = ABI::V6;
const REQUIRED_ABI_NUMBER: u32 = 6;

fn rights(access: Access, is_dir: bool) -> BitFlags<AccessFs> {
    let abi = REQUIRED_ABI;
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let all = match access {
        Access::ListDir => BitFlags::from(AccessFs::ReadDir),
        Access::Read => read,
        Access::ReadExec => read | AccessFs::Execute,
        Access::Device => read | AccessFs::WriteFile | AccessFs::IoctlDev | AccessFs::Truncate,
        Access::ReadWrite => read | AccessFs::from_write(abi),
        Access::ReadWriteExec => read | AccessFs::from_write(abi) | AccessFs::Execute,
    };
    if is_dir {
        all
    } else {
        all & AccessFs::from_file(abi)
    }
}

fn err(e: impl std::fmt::Display) -> LaunchError {
    LaunchError::Landlock(format!(
        "{e} (this kernel must support Landlock ABI {REQUIRED_ABI_NUMBER}, Linux 6.12 or later)"
    ))
}

/// Builds the ruleset (opening every rule's path in the view). Paths absent from the view are
/// skipped: a grant that does not exist on this host grants nothing.
pub fn prepare(spec: &LandlockSpec) -> Result<RulesetCreated, LaunchError> {
    let abi = REQUIRED_ABI;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .scope(Scope::from_all(abi))
        .map_err(err)?;
    if spec.tcp_connect_ports.is_some() {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(err)?;
    }
    let mut created = ruleset.create().map_err(err)?;
    for rule in &spec.rules {
        let Ok(meta) = std::fs::metadata(&rule.path) else {
            continue;
        };
        let fd = PathFd::new(Path::new(&rule.path)).map_err(err)?;
        created = created
            .add_rule(PathBeneath::new(fd, rights(rule.access, meta.is_dir())))
            .map_err(err)?;
    }
    for port in spec.tcp_connect_ports.iter().flatten() {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
            .map_err(err)?;
    }
    Ok(created)
}

/// Enforces the ruleset on the calling process (and sets `no_new_privs`).
pub fn enforce(created: RulesetCreated) -> Result<(), LaunchError> {
    let status = created.restrict_self().map_err(err)?;
    if status.ruleset != RulesetStatus::FullyEnforced || !status.no_new_privs {
        return Err(err(format!("ruleset only {:?}", status.ruleset)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_rights_never_include_write_or_exec() {
        let r = rights(Access::Read, true);
        assert!(r.contains(AccessFs::ReadFile | AccessFs::ReadDir));
        assert!(!r.intersects(AccessFs::from_write(REQUIRED_ABI) | AccessFs::Execute));
    }

    #[test]
    fn write_rights_exclude_exec_unless_granted() {
        assert!(!rights(Access::ReadWrite, true).contains(AccessFs::Execute));
        assert!(rights(Access::ReadWriteExec, true).contains(AccessFs::Execute));
        assert!(rights(Access::ReadWrite, true).contains(AccessFs::RemoveFile | AccessFs::Truncate));
    }

    #[test]
    fn file_rules_only_carry_file_rights() {
        let r = rights(Access::ReadWriteExec, false);
        assert!(!r.intersects(AccessFs::ReadDir | AccessFs::MakeDir | AccessFs::RemoveFile));
        assert!(r.contains(AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Execute));
    }
}
