//! The two systemd protocols agentd speaks, without a crate and without unsafe:
//!
//! - **readiness** (`sd_notify(3)`): `READY=1`, `STATUS=…`, `STOPPING=1` datagrams to
//!   `$NOTIFY_SOCKET` (a path, or an abstract address spelled with a leading `@`);
//! - **socket activation** (`sd_listen_fds(3)`): when `$LISTEN_PID` is this process and
//!   `$LISTEN_FDS` ≥ 1, fd 3 is the listening control socket;
//! - **the journal stream**: `$JOURNAL_STREAM` says stderr goes to journald (then `main` logs to
//!   journald natively, with structured fields).
//!
//! Both are no-ops when the variables are absent (agentd started by hand, tests, CI), so the
//! daemon binds its own socket and reports readiness only through `--ready-fd`.
//! Invariant: `READY=1` is sent by `daemon::run` only after the state-dir lock is held, the
//! runs a previous daemon left have been killed and recorded, and the socket listens.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};

/// The first passed file descriptor (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// Sends one notification (`READY=1`, `STATUS=…`, …) if `$NOTIFY_SOCKET` is set. Failures are
/// logged, never fatal: a lost `STATUS` must not stop the daemon (a lost `READY=1` makes systemd
/// time the start out, which is the right outcome).
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let target = target.to_string_lossy().into_owned();
    if let Err(e) = send(&target, state) {
        tracing::warn!(socket = %target, error = %e, "sd_notify failed");
    }
}

/// `STATUS=` line shown by `systemctl status agentd`.
pub fn status(text: &str) {
    // A newline would start a new assignment; keep the status on one line.
    notify(&format!("STATUS={}", text.replace('\n', " ")));
}

fn send(target: &str, state: &str) -> io::Result<()> {
    let addr = notify_addr(target)?;
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

fn notify_addr(target: &str) -> io::Result<SocketAddr> {
    if let Some(name) = target.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes())
    } else if target.starts_with('/') {
        SocketAddr::from_pathname(target)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsupported NOTIFY_SOCKET address {target:?}"),
        ))
    }
}

/// How many sockets systemd passed to *this* process (`$LISTEN_FDS` when `$LISTEN_PID` is our
/// pid; 0 otherwise, so a variable inherited from a parent is ignored).
pub fn listen_fds_count(listen_pid: Option<&str>, listen_fds: Option<&str>, own_pid: u32) -> u32 {
    let for_us = listen_pid
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|p| p == own_pid);
    if !for_us {
        return 0;
    }
    listen_fds
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0)
}

/// The control socket systemd passed us (`agentd.socket`), if any. The fd is taken once, made
/// close-on-exec (so no agent inherits it) and checked to be a listening Unix stream socket.
pub fn activated_listener() -> io::Result<Option<UnixListener>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let n = listen_fds_count(pid.as_deref(), fds.as_deref(), std::process::id());
    if n == 0 {
        return Ok(None);
    }
    if n > 1 {
        tracing::warn!(
            count = n,
            "systemd passed more than one socket; using fd 3, ignoring the rest"
        );
    }
    let fd: OwnedFd = crate::sys::process::take_inherited(LISTEN_FDS_START)?;
    check_listening_unix_stream(&fd)?;
    let listener = UnixListener::from(fd);
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

fn check_listening_unix_stream(fd: &OwnedFd) -> io::Result<()> {
    use nix::sys::socket::{getsockopt, sockopt, SockType};
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd 3 from systemd is not {what} (check ListenStream= in agentd.socket)"),
        )
    };
    if getsockopt(fd, sockopt::SockType).map_err(io::Error::from)? != SockType::Stream {
        return Err(bad("a stream socket"));
    }
    if !getsockopt(fd, sockopt::AcceptConn).map_err(io::Error::from)? {
        return Err(bad("a listening socket"));
    }
    Ok(())
}

/// `$JOURNAL_STREAM` is `DEV:INODE` of the stream systemd connected; it is only ours if stderr
/// is still that stream (not redirected by a shell started from the service).
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream.to_string_lossy() == format!("{}:{}", meta.dev(), meta.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_count_requires_our_pid() {
        assert_eq!(listen_fds_count(Some("42"), Some("1"), 42), 1);
        assert_eq!(listen_fds_count(Some("43"), Some("1"), 42), 0);
        assert_eq!(listen_fds_count(None, Some("1"), 42), 0);
        assert_eq!(listen_fds_count(Some("42"), None, 42), 0);
        assert_eq!(listen_fds_count(Some("42"), Some("x"), 42), 0);
    }

    #[test]
    fn notify_addr_accepts_path_and_abstract_and_rejects_others() {
        assert_eq!(
            notify_addr("/run/systemd/notify")
                .unwrap()
                .as_pathname()
                .unwrap(),
            std::path::Path::new("/run/systemd/notify")
        );
        {
            use std::os::linux::net::SocketAddrExt;
            let a = notify_addr("@sd-notify").unwrap();
            assert_eq!(a.as_abstract_name(), Some(&b"sd-notify"[..]));
        }
        assert!(notify_addr("relative").is_err());
    }

    #[test]
    fn send_delivers_one_datagram_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("agentd-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
