//! agentd-e2e-probe: a tiny helper the e2e tests copy into a run's workspace and execute inside
//! the sandbox, so they do not depend on which of python3, nc or socat the sandbox shows.
//!
//! Usage:
//! - `connect-unix PATH|@ABSTRACT` | `connect-tcp ADDR:PORT` | `connect-host HOST:PORT`:
//!   exit 0 and print `connected` if the connection was made; exit 1 and print the error.
//! - `variants FILE EXE ADDR:PORT`: every mediated syscall issued directly by number (no libc
//!   wrapper, no fallback), one line `variant NAME ok|errno:N` each (see [`variants`]).
//! - `race-open ALLOWED SECRET MARKER ATTEMPTS SECS`: one thread flips a path buffer between
//!   two equally long names while this one opens it; prints the counts (see [`race_open`]).
//! - `race-connect PORT_A PORT_B ATTEMPTS SECS`: listens on 127.0.0.1:A and :B (0: any port),
//!   one thread flips a sockaddr's port while this one connects; prints the counts.
//!   `race-connect-to` does the same against listeners someone else runs. `race-family` and
//!   `race-family-to` connect to B only, flipping the sockaddr's family between AF_UNIX and
//!   AF_INET instead (a Unix address must not let an IP connect through).
//! - `openat2 beneath|in-root DIR PATH [TEXT]`: opens DIR, then `openat2(DIR, PATH, O_RDONLY,
//!   RESOLVE_BENEATH|RESOLVE_IN_ROOT)`; prints `read TEXT` (the file's first line) or
//!   `errno:N`. With TEXT: opens `O_WRONLY`, writes TEXT and a newline, prints `wrote`.
//! - `exec-flip PROGRAM FROM TO WAIT_MS`: after WAIT_MS, `execv(PROGRAM, [PROGRAM, FROM])`
//!   while a thread, after one second, overwrites FROM in place with TO (as long) and prints
//!   `flipped`; prints `exec errno:N` if the exec fails.
//! - `exec-swap LINK FIRST SECOND WAIT_MS`: makes LINK a symlink to FIRST; after WAIT_MS,
//!   `execv(LINK, [LINK, "/a/b"])` while a thread, after one second, points LINK at SECOND
//!   (symlink + rename) and prints `swapped`; prints `exec errno:N` if the exec fails.
//!   `exec-replace` does the same with copies: LINK a copy of FIRST, then a copy of SECOND
//!   renamed over it (no symlink: the same path, another file).
//! - `seccomp-listener`: installs an allow-all seccomp filter with a notification listener;
//!   prints `seccomp ok` or `seccomp errno:N`.
//!
//! Exit 2 on a usage error.

use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["connect-unix", name] => match name.strip_prefix('@') {
            Some(abs) => UnixAddr::from_abstract_name(abs.as_bytes())
                .and_then(|sa| UnixStream::connect_addr(&sa))
                .map(drop),
            None => UnixStream::connect(name).map(drop),
        },
        ["connect-tcp", addr] => match addr.parse() {
            Ok(sa) => TcpStream::connect_timeout(&sa, Duration::from_secs(5)).map(drop),
            Err(e) => return usage(&format!("bad address {addr}: {e}")),
        },
        ["connect-host", addr] => connect_host(addr),
        ["variants", file, exe, addr] => return variants(file, exe, addr),
        ["race-open", allowed, secret, marker, attempts, secs] => {
            return match (attempts.parse(), secs.parse()) {
                (Ok(n), Ok(s)) => race_open(allowed, secret, marker, n, s),
                _ => usage("race-open: ATTEMPTS and SECS are numbers"),
            }
        }
        [mode @ ("race-connect" | "race-connect-to" | "race-family" | "race-family-to"), a, b, attempts, secs] =>
        {
            let listen = matches!(*mode, "race-connect" | "race-family");
            let flip = if mode.starts_with("race-family") {
                Flip::Family
            } else {
                Flip::Port
            };
            return match (a.parse(), b.parse(), attempts.parse(), secs.parse()) {
                (Ok(a), Ok(b), Ok(n), Ok(s)) => race_connect(a, b, n, s, listen, flip),
                _ => usage("race-connect: PORT_A PORT_B ATTEMPTS SECS are numbers"),
            };
        }
        ["openat2", mode @ ("beneath" | "in-root"), dir, path, text @ ..] if text.len() <= 1 => {
            let resolve = if *mode == "beneath" {
                libc::RESOLVE_BENEATH
            } else {
                libc::RESOLVE_IN_ROOT
            };
            println!(
                "{}",
                openat2_under(dir, path, resolve, text.first().copied())
            );
            return ExitCode::SUCCESS;
        }
        ["exec-flip", program, from, to, wait] if from.len() == to.len() => {
            return match wait.parse() {
                Ok(ms) => exec_flip(program, from, to, Duration::from_millis(ms)),
                Err(_) => usage("exec-flip: WAIT_MS is a number"),
            };
        }
        [mode @ ("exec-swap" | "exec-replace"), link, first, second, wait] => {
            let copy = *mode == "exec-replace";
            return match wait.parse() {
                Ok(ms) => exec_swap(link, first, second, Duration::from_millis(ms), copy),
                Err(_) => usage("exec-swap: WAIT_MS is a number"),
            };
        }
        ["seccomp-listener"] => {
            println!("seccomp {}", seccomp_listener());
            return ExitCode::SUCCESS;
        }
        _ => return usage("usage: agentd-e2e-probe connect-unix PATH | connect-tcp ADDR:PORT | …"),
    };
    match result {
        Ok(()) => {
            println!("connected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("{msg}");
    ExitCode::from(2)
}

fn connect_host(addr: &str) -> std::io::Result<()> {
    let mut last = std::io::Error::other(format!("{addr} resolves to nothing"));
    for sa in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&sa, Duration::from_secs(5)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The errno of the call that just failed.
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `ok` (closing the descriptor a successful open returned) or `errno:N`.
fn outcome(r: libc::c_long, fd_result: bool) -> String {
    if r < 0 {
        return format!("errno:{}", errno());
    }
    if let (true, Ok(fd)) = (fd_result, i32::try_from(r)) {
        // SAFETY: the call just returned this descriptor to us; we own it and close it here.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    "ok".into()
}

/// A `sockaddr_in` for `a`.
fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::sa_family_t::try_from(libc::AF_INET).unwrap_or(2),
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

const SIN_LEN: libc::socklen_t = 16;

fn socket_of(ty: SockType) -> Option<OwnedFd> {
    socket::socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None).ok()
}

/// Every open, exec and address-carrying socket call by raw syscall number, on `file`, `exe` and
/// `addr`. Each prints `variant NAME ok` or `variant NAME errno:N`; no variant falls back to
/// another when one fails.
fn variants(file: &str, exe: &str, addr: &str) -> ExitCode {
    let (Ok(path), Ok(exe), Ok(sa)) = (
        CString::new(file),
        CString::new(exe),
        addr.parse::<SocketAddrV4>(),
    ) else {
        return usage("variants FILE EXE IPV4:PORT");
    };
    let p = path.as_ptr();
    let how: [u64; 3] = [0, 0, 0]; // open_how { flags: O_RDONLY, mode: 0, resolve: 0 }
    let say = |name: &str, what: String| println!("variant {name} {what}");
    // SAFETY: openat2 with a NUL-terminated path and a 24-byte open_how that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, p, how.as_ptr(), 24usize) };
    say("openat2", outcome(r, true));
    // SAFETY: open(2) with a NUL-terminated path.
    let r = unsafe { libc::syscall(libc::SYS_open, p, libc::O_RDONLY) };
    say("open", outcome(r, true));
    // SAFETY: openat(2) with a NUL-terminated path.
    let r = unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, p, libc::O_RDONLY) };
    say("openat", outcome(r, true));
    // SAFETY: creat(2) with a NUL-terminated path.
    let r = unsafe { libc::syscall(libc::SYS_creat, p, 0o644) };
    say("creat", outcome(r, true));
    say("execve", exec_variant(false, &exe));
    say("execveat", exec_variant(true, &exe));

    let sin = sockaddr_in(sa);
    let sin_ptr: *const libc::sockaddr_in = &sin;
    let data = b"agentd-e2e";
    let r = socket_of(SockType::Stream).map_or(-1, |s| {
        // SAFETY: connect(2) on our socket with a sockaddr_in of SIN_LEN bytes.
        unsafe { libc::syscall(libc::SYS_connect, s.as_raw_fd(), sin_ptr, SIN_LEN) }
    });
    say("connect", outcome(r, false));
    let r = socket_of(SockType::Datagram).map_or(-1, |s| {
        // SAFETY: sendto(2) of our buffer on our socket to a sockaddr_in of SIN_LEN bytes.
        unsafe {
            libc::syscall(
                libc::SYS_sendto,
                s.as_raw_fd(),
                data.as_ptr(),
                data.len(),
                0,
                sin_ptr,
                SIN_LEN,
            )
        }
    });
    say("sendto", outcome(r, false));
    let r = socket_of(SockType::Datagram).map_or(-1, |s| {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        // SAFETY: msghdr is plain data; all-zero is a valid (empty) header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = sin_ptr.cast_mut().cast();
        msg.msg_namelen = SIN_LEN;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        let msg_ptr: *const libc::msghdr = &msg;
        // SAFETY: sendmsg(2) with a header whose name and iovec outlive the call.
        unsafe { libc::syscall(libc::SYS_sendmsg, s.as_raw_fd(), msg_ptr, 0) }
    });
    say("sendmsg", outcome(r, false));
    let r = socket_of(SockType::Datagram).map_or(-1, |s| {
        // SAFETY: bind(2) on our socket with a sockaddr_in of SIN_LEN bytes.
        unsafe { libc::syscall(libc::SYS_bind, s.as_raw_fd(), sin_ptr, SIN_LEN) }
    });
    say("bind", outcome(r, false));
    ExitCode::SUCCESS
}

/// execve or execveat(AT_FDCWD) of `exe` in a forked child: `ok` if the program started (the
/// close-on-exec pipe closed without a word), else the child's `errno:N`.
fn exec_variant(at: bool, exe: &CStr) -> String {
    let Ok((rd, wr)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return "pipe failed".into();
    };
    let (mut rd, mut wr) = (std::fs::File::from(rd), std::fs::File::from(wr));
    let argv = [exe.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    // SAFETY: this process is single-threaded here; the child only issues syscalls and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        if let Ok(null) = std::fs::File::options().write(true).open("/dev/null") {
            // SAFETY: dup2 of a descriptor we own onto stdout.
            unsafe { libc::dup2(null.as_raw_fd(), 1) };
        }
        let r = if at {
            // SAFETY: execveat with a NUL-terminated path and NULL-terminated argv and envp.
            unsafe {
                libc::syscall(
                    libc::SYS_execveat,
                    libc::AT_FDCWD,
                    exe.as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    0,
                )
            }
        } else {
            // SAFETY: execve with a NUL-terminated path and NULL-terminated argv and envp.
            unsafe { libc::syscall(libc::SYS_execve, exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) }
        };
        let e = if r < 0 { errno() } else { 0 };
        let _ = wr.write_all(&e.to_ne_bytes());
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(127) };
    }
    drop(wr);
    if pid < 0 {
        return format!("fork errno:{}", errno());
    }
    let mut buf = Vec::new();
    let _ = rd.read_to_end(&mut buf);
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    match <[u8; 4]>::try_from(buf.as_slice()) {
        Ok(b) => format!("errno:{}", i32::from_ne_bytes(b)),
        Err(_) if buf.is_empty() => "ok".into(),
        Err(_) => "garbled".into(),
    }
}

/// Opens a path while another thread flips its bytes between `allowed` and `secret` (equally
/// long). Cycles through open, openat and openat2. Prints
/// `race leaked=N opened=N denied=N failed=N attempts=N`, where `leaked` counts the reads that
/// returned text containing `marker` (the secret's content).
fn race_open(allowed: &str, secret: &str, marker: &str, attempts: u64, secs: u64) -> ExitCode {
    let (a, s) = (allowed.as_bytes(), secret.as_bytes());
    if a.len() != s.len() || a.contains(&0) || s.contains(&0) {
        return usage("race-open: ALLOWED and SECRET must be equally long");
    }
    let buf: Arc<Vec<AtomicU8>> =
        Arc::new(a.iter().copied().chain([0]).map(AtomicU8::new).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (buf, stop) = (buf.clone(), stop.clone());
        let (a, s) = (a.to_vec(), s.to_vec());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for name in [&s, &a] {
                    for (slot, b) in buf.iter().zip(name) {
                        slot.store(*b, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let p = buf.as_ptr().cast::<libc::c_char>();
    let how: [u64; 3] = [0, 0, 0];
    let (mut leaked, mut opened, mut denied, mut failed, mut n) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut content = [0u8; 256];
    while n < attempts && (n % 64 != 0 || Instant::now() < deadline) {
        let r = match n % 3 {
            // SAFETY: open(2) of a NUL-terminated buffer (its last byte is never flipped).
            0 => unsafe { libc::syscall(libc::SYS_open, p, libc::O_RDONLY) },
            // SAFETY: openat(2) of the same buffer.
            1 => unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, p, libc::O_RDONLY) },
            // SAFETY: openat2(2) of the same buffer with a 24-byte open_how.
            _ => unsafe {
                libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, p, how.as_ptr(), 24usize)
            },
        };
        n += 1;
        match i32::try_from(r) {
            Ok(fd) if fd >= 0 => {
                // SAFETY: the open just returned this descriptor; we own it.
                let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
                let got = f.read(&mut content).unwrap_or(0);
                if String::from_utf8_lossy(&content[..got]).contains(marker) {
                    leaked += 1;
                } else {
                    opened += 1;
                }
            }
            _ if errno() == libc::EPERM => denied += 1,
            _ => failed += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = flipper.join();
    println!("race leaked={leaked} opened={opened} denied={denied} failed={failed} attempts={n}");
    ExitCode::SUCCESS
}

/// The `sockaddr_in` the flipper rewrites: the port is an atomic so both threads may touch it.
#[repr(C)]
#[allow(dead_code)] // the kernel reads the fields
struct FlipAddr {
    family: AtomicU16,
    port: AtomicU16,
    addr: u32,
    zero: [u8; 8],
}

/// Counts the connections a listener accepts, forever (the thread dies with the process).
fn count_accepts(l: TcpListener) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            if s.is_ok() {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    count
}

// sa_family_t values (2 and 1; they fit).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
const INET: u16 = libc::AF_INET as u16;
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
const UNIX: u16 = libc::AF_UNIX as u16;

/// What the flipping thread rewrites.
#[derive(Clone, Copy, PartialEq)]
enum Flip {
    /// The port, between A and B.
    Port,
    /// The family, between AF_UNIX and AF_INET (the port stays B).
    Family,
}

/// Connects while another thread flips the sockaddr's port between A and B (or its family,
/// see [`Flip`]). Prints
/// `race a_peer=N b_peer=N a_accepted=N b_accepted=N denied=N failed=N attempts=N ports=A,B`:
/// `*_peer` from `getpeername` after each successful connect, `*_accepted` from the listeners.
fn race_connect(a: u16, b: u16, attempts: u64, secs: u64, listen: bool, flip: Flip) -> ExitCode {
    let (a, b, acc_a, acc_b) = if listen {
        let bind = |port: u16| TcpListener::bind(("127.0.0.1", port));
        let (la, lb) = match (bind(a), bind(b)) {
            (Ok(la), Ok(lb)) => (la, lb),
            (Err(e), _) | (_, Err(e)) => {
                println!("race listen failed: {e}");
                return ExitCode::from(1);
            }
        };
        let port = |l: &TcpListener| l.local_addr().map(|x| x.port()).unwrap_or(0);
        (port(&la), port(&lb), count_accepts(la), count_accepts(lb))
    } else {
        let none = || Arc::new(AtomicU64::new(0));
        (a, b, none(), none())
    };
    let target = Arc::new(FlipAddr {
        family: AtomicU16::new(INET),
        port: AtomicU16::new(if flip == Flip::Family { b } else { a }.to_be()),
        addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        zero: [0; 8],
    });
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (target, stop) = (target.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if flip == Flip::Family {
                    target.family.store(UNIX, Ordering::Relaxed);
                    target.family.store(INET, Ordering::Relaxed);
                } else {
                    target.port.store(b.to_be(), Ordering::Relaxed);
                    target.port.store(a.to_be(), Ordering::Relaxed);
                }
            }
        })
    };
    let ptr: *const FlipAddr = Arc::as_ptr(&target);
    let (mut a_peer, mut b_peer, mut denied, mut failed, mut n) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while n < attempts && (n % 64 != 0 || Instant::now() < deadline) {
        n += 1;
        let Some(s) = socket_of(SockType::Stream) else {
            failed += 1;
            continue;
        };
        // No TIME_WAIT left behind: thousands of connections must not exhaust the ports.
        let _ = socket::setsockopt(
            &s,
            socket::sockopt::Linger,
            &libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        );
        // SAFETY: connect(2) on our socket with the 16-byte sockaddr the flipper rewrites.
        let r = unsafe { libc::syscall(libc::SYS_connect, s.as_raw_fd(), ptr, SIN_LEN) };
        if r < 0 {
            if errno() == libc::EPERM {
                denied += 1;
            } else {
                failed += 1;
            }
            continue;
        }
        match socket::getpeername::<socket::SockaddrIn>(s.as_raw_fd()) {
            Ok(peer) if peer.port() == b => b_peer += 1,
            Ok(_) => a_peer += 1,
            Err(_) => failed += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = flipper.join();
    // Let the listeners take what is still in their backlogs.
    std::thread::sleep(Duration::from_millis(300));
    let (acc_a, acc_b) = (acc_a.load(Ordering::Relaxed), acc_b.load(Ordering::Relaxed));
    println!(
        "race a_peer={a_peer} b_peer={b_peer} a_accepted={acc_a} b_accepted={acc_b} \
         denied={denied} failed={failed} attempts={n} ports={a},{b}"
    );
    ExitCode::SUCCESS
}

/// seccomp(SET_MODE_FILTER, NEW_LISTENER) with a one-instruction allow-all filter.
fn seccomp_listener() -> String {
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
    const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_long = 1 << 3;
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes no pointers.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        return format!("no_new_privs errno:{}", errno());
    }
    let mut filter = [libc::sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: SECCOMP_RET_ALLOW,
    }];
    let prog = libc::sock_fprog {
        len: 1,
        filter: filter.as_mut_ptr(),
    };
    let prog_ptr: *const libc::sock_fprog = &prog;
    // SAFETY: seccomp(2) with a program that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_NEW_LISTENER,
            prog_ptr,
        )
    };
    outcome(r, true)
}

/// `openat2(DIR, PATH, O_RDONLY, resolve)`: `read FIRST-LINE` or `errno:N`; with `text`,
/// `O_WRONLY` and the text written: `wrote`.
fn openat2_under(dir: &str, path: &str, resolve: u64, text: Option<&str>) -> String {
    let dir = match std::fs::File::open(dir) {
        Ok(d) => d,
        Err(e) => return format!("dir errno:{}", e.raw_os_error().unwrap_or(0)),
    };
    let Ok(p) = CString::new(path) else {
        return "bad path".into();
    };
    let flags = if text.is_some() {
        libc::O_WRONLY
    } else {
        libc::O_RDONLY
    };
    // open_how { flags, mode: 0, resolve }
    let how: [u64; 3] = [u64::try_from(flags).unwrap_or(0), 0, resolve];
    // SAFETY: openat2 with an open directory, a NUL-terminated path and a 24-byte open_how
    // that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            p.as_ptr(),
            how.as_ptr(),
            24usize,
        )
    };
    if r < 0 {
        return format!("errno:{}", errno());
    }
    let Ok(fd) = i32::try_from(r) else {
        return "bad fd".into();
    };
    // SAFETY: the call just returned this descriptor to us; the File owns and closes it.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    if let Some(t) = text {
        return match writeln!(f, "{t}") {
            Ok(()) => "wrote".into(),
            Err(e) => format!("write errno:{}", e.raw_os_error().unwrap_or(0)),
        };
    }
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    format!("read {}", text.lines().next().unwrap_or(""))
}

/// `exec-flip`: the argument an exec was judged on is rewritten while the exec waits.
fn exec_flip(program: &str, from: &str, to: &str, wait: Duration) -> ExitCode {
    let (Ok(prog), Ok(arg)) = (CString::new(program), CString::new(from)) else {
        return usage("exec-flip: no NUL in arguments");
    };
    let arg = arg.into_raw();
    let target = arg as usize;
    let to = to.as_bytes().to_vec();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        // SAFETY: `target` points at the CString leaked above (as long as `to` plus a NUL),
        // alive until the process execs or exits; this races the exec on purpose.
        unsafe { std::ptr::copy_nonoverlapping(to.as_ptr(), target as *mut u8, to.len()) };
        println!("flipped");
        let _ = std::io::stdout().flush();
    });
    std::thread::sleep(wait);
    let argv = [prog.as_ptr(), arg.cast_const(), std::ptr::null()];
    // SAFETY: NUL-terminated strings and a NULL-terminated array that outlive the call.
    unsafe { libc::execv(prog.as_ptr(), argv.as_ptr()) };
    println!("exec errno:{}", errno());
    ExitCode::from(1)
}

/// `exec-swap`/`exec-replace`: the file an exec's path names is swapped while the exec waits
/// (`copy`: by renaming a copy over it, else by re-pointing a symlink).
fn exec_swap(link: &str, first: &str, second: &str, wait: Duration, copy: bool) -> ExitCode {
    // `dst` becomes `src`: an executable copy of it, or a symlink to it.
    let place = move |src: &str, dst: &str| -> std::io::Result<()> {
        if copy {
            std::fs::copy(src, dst)?;
            std::fs::set_permissions(dst, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        } else {
            std::os::unix::fs::symlink(src, dst)
        }
    };
    let _ = std::fs::remove_file(link);
    if let Err(e) = place(first, link) {
        return usage(&format!("exec-swap: {link}: {e}"));
    }
    let (link_owned, second) = (link.to_string(), second.to_string());
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        let tmp = format!("{link_owned}.swap");
        let _ = std::fs::remove_file(&tmp);
        let swapped = place(&second, &tmp).and_then(|()| std::fs::rename(&tmp, &link_owned));
        println!(
            "{}",
            if swapped.is_ok() {
                "swapped"
            } else {
                "swap failed"
            }
        );
        let _ = std::io::stdout().flush();
    });
    std::thread::sleep(wait);
    let (Ok(prog), Ok(arg)) = (CString::new(link), CString::new("/a/b")) else {
        return usage("exec-swap: no NUL in arguments");
    };
    let argv = [prog.as_ptr(), arg.as_ptr(), std::ptr::null()];
    // SAFETY: NUL-terminated strings and a NULL-terminated array that outlive the call.
    unsafe { libc::execv(prog.as_ptr(), argv.as_ptr()) };
    println!("exec errno:{}", errno());
    ExitCode::from(1)
}
