//! Dropping privilege for good: the caller's uid/gid/groups, every capability set empty
//! (bounding and ambient included), securebits locked so nothing can be regained by exec.

use caps::CapSet;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

use super::spec::Identity;
use super::LaunchError;
use crate::sys::creds;

fn err(what: &str) -> impl Fn(String) -> LaunchError + '_ {
    move |e| LaunchError::Privileges(format!("{what}: {e}"))
}

/// Becomes `who` with no capabilities. Must run as root with CAP_SETPCAP (the launcher's child).
pub fn drop_to(who: &Identity) -> Result<(), LaunchError> {
    creds::lock_securebits().map_err(|e| err("lock securebits")(e.to_string()))?;
    caps::clear(None, CapSet::Bounding)
        .map_err(|e| err("clear the bounding set")(e.to_string()))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| err("clear ambient caps")(e.to_string()))?;
    let groups: Vec<Gid> = who.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).map_err(|e| err("setgroups")(e.to_string()))?;
    let gid = Gid::from_raw(who.gid);
    setresgid(gid, gid, gid).map_err(|e| err("setresgid")(e.to_string()))?;
    let uid = Uid::from_raw(who.uid);
    setresuid(uid, uid, uid).map_err(|e| err("setresuid")(e.to_string()))?;
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::clear(None, set).map_err(|e| err("clear capabilities")(e.to_string()))?;
    }
    verify_none_left()
}

/// Keeps root's uid (so the agent cannot signal or trace it) but drops every capability:
/// the run's init, once the view is built.
pub fn drop_caps_keep_uid() -> Result<(), LaunchError> {
    creds::lock_securebits().map_err(|e| err("lock securebits")(e.to_string()))?;
    for set in [
        CapSet::Bounding,
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|e| err("clear capabilities")(e.to_string()))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| err("no_new_privs")(e.to_string()))?;
    verify_none_left()
}

fn verify_none_left() -> Result<(), LaunchError> {
    for set in [
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
        CapSet::Bounding,
        CapSet::Ambient,
    ] {
        let left = caps::read(None, set).map_err(|e| err("read capabilities")(e.to_string()))?;
        if !left.is_empty() {
            return Err(LaunchError::Privileges(format!(
                "capabilities left in {set:?}: {left:?}"
            )));
        }
    }
    Ok(())
}
