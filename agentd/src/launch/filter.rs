//! The seccomp-bpf deny list: the kernel attack surface and the escape primitives a coding agent
//! never needs. One table, one reason per entry. Native architecture only: any other syscall
//! ABI (i386 `int 0x80`, x32) kills the process.
//!
//! The list is a wall of its own: it holds whatever the reference monitor decides.

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

use super::spec::FilterSpec;
use super::LaunchError;

const EPERM: i32 = libc::EPERM;
/// "Not implemented": callers (libc, tokio, libuv) fall back to an older, filterable syscall.
const ENOSYS: i32 = libc::ENOSYS;

/// Syscalls denied outright: (name, errno, reason).
pub const DENY: &[(&str, i32, &str)] = &[
    (
        "io_uring_setup",
        ENOSYS,
        "ring ops bypass seccomp; runtimes fall back to epoll",
    ),
    ("io_uring_enter", ENOSYS, "ring ops bypass seccomp"),
    ("io_uring_register", ENOSYS, "ring ops bypass seccomp"),
    ("ptrace", EPERM, "reading or steering other processes"),
    (
        "process_vm_readv",
        EPERM,
        "reading another process's memory",
    ),
    (
        "process_vm_writev",
        EPERM,
        "writing another process's memory",
    ),
    ("kcmp", EPERM, "probing other processes' kernel objects"),
    (
        "pidfd_getfd",
        EPERM,
        "stealing file descriptors from other processes",
    ),
    ("bpf", EPERM, "kernel attack surface"),
    (
        "perf_event_open",
        EPERM,
        "kernel attack surface, side channels",
    ),
    (
        "userfaultfd",
        EPERM,
        "race-widening primitive for kernel exploits",
    ),
    ("keyctl", EPERM, "the kernel keyring is not namespaced"),
    ("add_key", EPERM, "the kernel keyring is not namespaced"),
    ("request_key", EPERM, "the kernel keyring is not namespaced"),
    ("mount", EPERM, "changing the filesystem view"),
    ("umount2", EPERM, "uncovering masked paths"),
    ("pivot_root", EPERM, "changing the filesystem view"),
    ("chroot", EPERM, "changing the filesystem view"),
    ("fsopen", ENOSYS, "new mount API (CVE-2021-41133)"),
    ("fsconfig", ENOSYS, "new mount API"),
    ("fsmount", ENOSYS, "new mount API"),
    ("fspick", ENOSYS, "new mount API"),
    ("move_mount", ENOSYS, "new mount API"),
    ("open_tree", ENOSYS, "new mount API"),
    ("mount_setattr", ENOSYS, "new mount API"),
    (
        "open_by_handle_at",
        EPERM,
        "bypasses path-based access control (shocker)",
    ),
    (
        "name_to_handle_at",
        EPERM,
        "file handles bypass path-based access control",
    ),
    ("kexec_load", EPERM, "replacing the kernel"),
    ("kexec_file_load", EPERM, "replacing the kernel"),
    ("init_module", EPERM, "loading kernel code"),
    ("finit_module", EPERM, "loading kernel code"),
    ("delete_module", EPERM, "unloading kernel code"),
    ("reboot", EPERM, "host control"),
    ("swapon", EPERM, "host control"),
    ("swapoff", EPERM, "host control"),
    ("acct", EPERM, "host control"),
    ("quotactl", EPERM, "host control"),
    ("syslog", EPERM, "kernel log leaks addresses"),
    ("iopl", EPERM, "raw I/O port access"),
    ("ioperm", EPERM, "raw I/O port access"),
    ("modify_ldt", EPERM, "kernel attack surface"),
    ("uselib", EPERM, "obsolete loader entry point"),
    ("settimeofday", EPERM, "host clock"),
    ("clock_settime", EPERM, "host clock"),
    ("clock_adjtime", EPERM, "host clock"),
    ("adjtimex", EPERM, "host clock"),
    ("vhangup", EPERM, "terminal control"),
    ("move_pages", EPERM, "NUMA control of other processes"),
    ("mbind", EPERM, "NUMA control"),
    ("migrate_pages", EPERM, "NUMA control of other processes"),
    ("set_mempolicy", EPERM, "NUMA control"),
    (
        "unshare",
        EPERM,
        "new namespaces (user namespaces are an LPE gateway)",
    ),
    ("setns", EPERM, "joining other namespaces"),
    (
        "clone3",
        ENOSYS,
        "flags are in memory, uncheckable; libc falls back to clone",
    ),
    ("lookup_dcookie", EPERM, "kernel attack surface"),
    ("nfsservctl", EPERM, "obsolete"),
];

/// `clone` flags that create namespaces: any one set is refused.
const CLONE_NS_FLAGS: [u64; 8] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    0x80, // CLONE_NEWTIME
];

/// Socket families refused below NETLINK (everything but UNSPEC 0, UNIX 1, INET 2, INET6 10):
/// AX25, IPX, APPLETALK, NETROM, BRIDGE, ATMPVC, X25, then ROSE, DECnet, NETBEUI, SECURITY, KEY.
const DENIED_FAMILIES_BELOW_NETLINK: [u64; 12] = [3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15];
const AF_NETLINK: u64 = 16;
const IPPROTO_MPTCP: u64 = 262;
const IPPROTO_SCTP: u64 = 132;
const SOCK_TYPE_MASK: u64 = 0xf;

/// `personality` bits that weaken the agent's own hardening (ASLR, W^X) or switch ABI.
const PERSONALITY_BITS: [u64; 7] = [
    0x0040000, // ADDR_NO_RANDOMIZE
    0x0100000, // MMAP_PAGE_ZERO
    0x0200000, // ADDR_COMPAT_LAYOUT
    0x0400000, // READ_IMPLIES_EXEC
    0x0800000, // ADDR_LIMIT_32BIT
    0x8000000, // ADDR_LIMIT_3GB
    0x0000008, // PER_LINUX32
];
/// `personality(0xffffffff)` is a query; bit 31 is set only there.
const PERSONALITY_QUERY_BIT: u64 = 0x8000_0000;

/// Syscalls the reference monitor decides: every member of the exec, open and connect families
/// (a libc that falls back from one to another is still seen), and the address-carrying sends
/// and bind. `sendto` is notified only when it carries an address (a register check).
pub const NOTIFY: &[&str] = &[
    "execve", "execveat", "open", "openat", "openat2", "creat", "connect", "sendmsg", "sendmmsg",
    "bind", "listen",
];

fn err(e: impl std::fmt::Display) -> LaunchError {
    LaunchError::Seccomp(e.to_string())
}

fn cmp(arg: u32, op: ScmpCompareOp, datum: u64) -> ScmpArgCompare {
    ScmpArgCompare::new(arg, op, datum)
}

/// Builds the filter (not loaded yet).
pub fn build(spec: &FilterSpec) -> Result<ScmpFilterContext, LaunchError> {
    let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).map_err(err)?;
    ctx.set_act_badarch(ScmpAction::KillProcess).map_err(err)?;
    for (name, errno, _reason) in DENY {
        // A name this libseccomp does not know is a syscall this kernel ABI does not have.
        let Ok(sys) = ScmpSyscall::from_name(name) else {
            continue;
        };
        ctx.add_rule(ScmpAction::Errno(*errno), sys).map_err(err)?;
    }
    let deny = ScmpAction::Errno(EPERM);
    let sys = |n: &str| ScmpSyscall::from_name(n).map_err(err);

    for flag in CLONE_NS_FLAGS {
        ctx.add_rule_conditional(
            deny,
            sys("clone")?,
            &[cmp(0, ScmpCompareOp::MaskedEqual(flag), flag)],
        )
        .map_err(err)?;
    }
    // Terminal injection (CVE-2017-5226, CVE-2023-28100): compare the low 32 bits only.
    for req in [libc::TIOCSTI, libc::TIOCLINUX] {
        ctx.add_rule_conditional(
            deny,
            sys("ioctl")?,
            &[cmp(1, ScmpCompareOp::MaskedEqual(0xffff_ffff), req)],
        )
        .map_err(err)?;
    }
    let socket = sys("socket")?;
    let no_family = ScmpAction::Errno(libc::EAFNOSUPPORT);
    for family in DENIED_FAMILIES_BELOW_NETLINK {
        ctx.add_rule_conditional(no_family, socket, &[cmp(0, ScmpCompareOp::Equal, family)])
            .map_err(err)?;
    }
    ctx.add_rule_conditional(
        no_family,
        socket,
        &[cmp(0, ScmpCompareOp::Greater, AF_NETLINK)],
    )
    .map_err(err)?;
    // Raw and packet sockets; MPTCP escapes Landlock's TCP rules.
    // 10 = SOCK_PACKET (obsolete packet sockets; libc deprecates the constant).
    for ty in [libc::SOCK_RAW as u64, 10] {
        ctx.add_rule_conditional(
            deny,
            socket,
            &[cmp(1, ScmpCompareOp::MaskedEqual(SOCK_TYPE_MASK), ty)],
        )
        .map_err(err)?;
    }
    // MPTCP and SCTP escape Landlock's TCP rules and connect without connect(2) (SCTP's
    // CONNECTX socket option, or a send with an address).
    for proto in [IPPROTO_MPTCP, IPPROTO_SCTP] {
        ctx.add_rule_conditional(deny, socket, &[cmp(2, ScmpCompareOp::Equal, proto)])
            .map_err(err)?;
    }
    // SOCK_SEQPACKET on IP families is SCTP (or something newer): refused too.
    for family in [libc::AF_INET as u64, libc::AF_INET6 as u64] {
        ctx.add_rule_conditional(
            deny,
            socket,
            &[
                cmp(0, ScmpCompareOp::Equal, family),
                cmp(
                    1,
                    ScmpCompareOp::MaskedEqual(SOCK_TYPE_MASK),
                    libc::SOCK_SEQPACKET as u64,
                ),
            ],
        )
        .map_err(err)?;
    }
    if spec.deny_udp {
        for family in [libc::AF_INET as u64, libc::AF_INET6 as u64] {
            ctx.add_rule_conditional(
                deny,
                socket,
                &[
                    cmp(0, ScmpCompareOp::Equal, family),
                    cmp(
                        1,
                        ScmpCompareOp::MaskedEqual(SOCK_TYPE_MASK),
                        libc::SOCK_DGRAM as u64,
                    ),
                ],
            )
            .map_err(err)?;
        }
    }
    for bit in PERSONALITY_BITS {
        ctx.add_rule_conditional(
            deny,
            sys("personality")?,
            &[cmp(
                0,
                ScmpCompareOp::MaskedEqual(bit | PERSONALITY_QUERY_BIT),
                bit,
            )],
        )
        .map_err(err)?;
    }
    for name in NOTIFY {
        ctx.add_rule(ScmpAction::Notify, sys(name)?).map_err(err)?;
    }
    ctx.add_rule_conditional(
        ScmpAction::Notify,
        sys("sendto")?,
        &[cmp(4, ScmpCompareOp::NotEqual, 0)],
    )
    .map_err(err)?;
    Ok(ctx)
}

/// The filter as a raw BPF program (libseccomp 2.5 exports only to a file descriptor).
pub fn program(ctx: &ScmpFilterContext) -> Result<Vec<u8>, LaunchError> {
    use std::io::Read;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(err)?;
    ctx.export_bpf(&w).map_err(err)?;
    drop(w);
    let mut prog = Vec::new();
    std::fs::File::from(r).read_to_end(&mut prog).map_err(err)?;
    Ok(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_table_has_a_reason_for_every_entry_and_no_duplicates() {
        let mut names: Vec<_> = DENY.iter().map(|(n, _, _)| *n).collect();
        assert!(DENY.iter().all(|(_, _, r)| !r.is_empty()));
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn deny_table_covers_the_architecture_families() {
        for must in [
            "io_uring_setup",
            "ptrace",
            "process_vm_readv",
            "bpf",
            "perf_event_open",
            "keyctl",
            "mount",
            "open_by_handle_at",
            "userfaultfd",
            "kexec_load",
            "unshare",
            "setns",
            "clone3",
        ] {
            assert!(DENY.iter().any(|(n, _, _)| *n == must), "{must} missing");
        }
    }

    #[test]
    fn ip_and_unix_families_are_never_refused() {
        for allowed in [
            libc::AF_UNIX,
            libc::AF_INET,
            libc::AF_INET6,
            libc::AF_NETLINK,
        ] {
            let allowed = u64::try_from(allowed).unwrap();
            assert!(
                !DENIED_FAMILIES_BELOW_NETLINK.contains(&allowed),
                "family {allowed} refused"
            );
        }
        assert!(DENIED_FAMILIES_BELOW_NETLINK.contains(&(libc::AF_KEY as u64)));
    }

    #[test]
    fn deny_table_names_are_known_to_libseccomp() {
        for (name, _, _) in DENY {
            assert!(ScmpSyscall::from_name(name).is_ok(), "{name} unknown");
        }
    }
}
