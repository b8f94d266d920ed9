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
//! - `open-matrix DIR`: makes DIR afresh (fixtures: a file, a directory, symlinks to both, a
//!   dangling one, a FIFO, 0600/0000 files, a 0555 directory), chdirs into it and issues a
//!   fixed list of open, openat, openat2 and creat calls by raw syscall number, the fixtures
//!   made again before each. One line per call: `CASE ok fd=… type=… mode=… flags=… …` or
//!   `CASE errno=N`, then what the call changed in DIR (`+new=REG:0644:0`); nothing that
//!   differs between two runs (see [`open_matrix`]). Then `open-matrix done N`; DIR is removed.
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
        ["open-matrix", dir] => return open_matrix(dir),
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

/// Which open-family syscall an `open-matrix` case issues.
#[derive(Clone, Copy)]
enum Sys {
    Open,
    OpenAt,
    OpenAt2,
    Creat,
}

/// The directory descriptor an `openat`/`openat2` case passes.
#[derive(Clone, Copy)]
enum At {
    /// `AT_FDCWD` (the scratch directory).
    Cwd,
    /// The scratch directory, opened `O_RDONLY|O_DIRECTORY`.
    Dir,
    /// `dir`, opened `O_PATH`.
    PathDir,
    /// `file`, opened `O_RDONLY` (not a directory).
    File,
    /// A descriptor number that is not open.
    Bad,
}

/// One call of the matrix. In `path`, `{FILEFD}` and `{DIRFD}` stand for the numbers of the
/// descriptors on `file` and on the scratch directory, `{PIPEFD}` for the read end of a pipe,
/// `{CWD}` for the scratch directory's absolute path.
struct Case {
    name: &'static str,
    sys: Sys,
    at: At,
    /// `None`: a NULL pointer.
    path: Option<String>,
    flags: i32,
    mode: u32,
    /// Set just before the call (0o022 around it).
    umask: u32,
    /// openat2 only: `open_how.resolve`.
    resolve: u64,
    /// openat2 only: flag bits above the 32 an `int` holds.
    high: u64,
    /// openat2 only: the size passed (24: `struct open_how` of Linux 5.6).
    size: usize,
    /// openat2 only: the u64 after the 24 bytes (read when `size` > 24).
    tail: u64,
    /// openat2 only: a NULL `open_how`.
    null_how: bool,
}

impl Case {
    fn new(name: &'static str, sys: Sys, at: At, path: &str, flags: i32, mode: u32) -> Case {
        Case {
            name,
            sys,
            at,
            path: Some(path.into()),
            flags,
            mode,
            umask: 0o022,
            resolve: 0,
            high: 0,
            size: 24,
            tail: 0,
            null_how: false,
        }
    }

    fn umask(mut self, umask: u32) -> Case {
        self.umask = umask;
        self
    }
}

/// `open(path, flags)`.
fn op(name: &'static str, path: &str, flags: i32) -> Case {
    Case::new(name, Sys::Open, At::Cwd, path, flags, 0)
}

/// `open(path, O_CREAT|flags, mode)`.
fn cr(name: &'static str, path: &str, flags: i32, mode: u32) -> Case {
    Case::new(name, Sys::Open, At::Cwd, path, libc::O_CREAT | flags, mode)
}

/// `openat(at, path, flags, mode)`.
fn at(name: &'static str, at: At, path: &str, flags: i32, mode: u32) -> Case {
    Case::new(name, Sys::OpenAt, at, path, flags, mode)
}

/// `openat2(at, path, {flags, mode, resolve}, 24)`.
fn two(name: &'static str, at: At, path: &str, flags: i32, mode: u32, resolve: u64) -> Case {
    let mut c = Case::new(name, Sys::OpenAt2, at, path, flags, mode);
    c.resolve = resolve;
    c
}

/// `creat(path, mode)`.
fn creat(name: &'static str, path: &str, mode: u32) -> Case {
    Case::new(name, Sys::Creat, At::Cwd, path, 0, mode)
}

/// The fixed list of `open-matrix` calls.
#[allow(clippy::too_many_lines)]
fn matrix_cases() -> Vec<Case> {
    use libc::{
        O_APPEND as APPEND, O_CLOEXEC as CLOEXEC, O_CREAT as CREAT, O_DIRECT, O_DIRECTORY as DIR,
        O_EXCL as EXCL, O_NOATIME, O_NOFOLLOW as NOFOLLOW, O_NONBLOCK as NONBLOCK, O_PATH as PATH,
        O_RDONLY as RD, O_RDWR as RDWR, O_SYNC, O_TMPFILE as TMPFILE, O_TRUNC as TRUNC,
        O_WRONLY as WR, RESOLVE_BENEATH as BENEATH, RESOLVE_IN_ROOT as IN_ROOT,
        RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS as NO_SYMLINKS, RESOLVE_NO_XDEV,
    };
    const UNKNOWN: i32 = 0x4000_0000;
    let long_max = format!(".{}file", "/".repeat(4090)); // 4095 bytes: PATH_MAX with its NUL
    let long_over = format!(".{}file", "/".repeat(4091)); // 4096 bytes
    let name255 = "n".repeat(255);
    let name256 = "n".repeat(256);
    let mut cases = vec![
        // Access modes, each syscall, each kind of directory descriptor.
        op("open-rdonly", "file", RD),
        op("open-wronly", "file", WR),
        op("open-rdwr", "file", RDWR),
        op("open-accmode3", "file", 3),
        op("open-cloexec", "file", RD | CLOEXEC),
        op("open-abs", "{CWD}/file", RD),
        Case::new(
            "open-mode-without-creat",
            Sys::Open,
            At::Cwd,
            "file",
            RD,
            0o644,
        ),
        op("open-sync", "file", WR | O_SYNC),
        op("open-noatime", "file", RD | O_NOATIME),
        op("open-direct", "file", RD | O_DIRECT),
        op("open-private-rdwr", "private", RDWR),
        op("open-noperm", "noperm", RD),
        op("open-noperm-wronly", "noperm", WR),
        op("open-rodir", "rodir", RD),
        at("openat-cwd-rdonly", At::Cwd, "file", RD, 0),
        at("openat-dirfd-rdwr", At::Dir, "file", RDWR, 0),
        at("openat-dirfd-dir-dotdot", At::Dir, "dir/../file", RD, 0),
        at("openat-pathfd-inner", At::PathDir, "inner", RD, 0),
        at("openat-pathfd-dotdot", At::PathDir, "../file", WR, 0),
        at("openat-filefd-relative", At::File, "x", RD, 0),
        at("openat-filefd-empty", At::File, "", RD, 0),
        at("openat-badfd-relative", At::Bad, "file", RD, 0),
        at("openat-badfd-absolute", At::Bad, "{CWD}/file", RD, 0),
        at("openat-unknown-flag", At::Cwd, "file", RD | UNKNOWN, 0),
        two("openat2-rdonly", At::Cwd, "file", RD, 0, 0),
        two(
            "openat2-dirfd-wronly-cloexec",
            At::Dir,
            "file",
            WR | CLOEXEC,
            0,
            0,
        ),
        two("openat2-pathfd-inner", At::PathDir, "inner", RD, 0, 0),
        two("openat2-filefd-relative", At::File, "x", RD, 0, 0),
        two("openat2-badfd", At::Bad, "file", RD, 0, 0),
        two("openat2-accmode3", At::Cwd, "file", 3, 0, 0),
        // Creating: modes (file-type bits, set-id bits), umasks, what the name already is.
        cr("creat-new-0644", "new", WR, 0o644),
        cr("creat-new-excl", "new", EXCL | RDWR, 0o644),
        cr("creat-new-rdonly", "new", RD, 0o644),
        cr("creat-new-0100644", "new", WR, 0o100_644),
        cr("creat-new-0020644", "new", WR, 0o20_644),
        cr("creat-new-4755", "new", WR, 0o4755),
        cr("creat-new-7777", "new", WR, 0o7777),
        cr("creat-new-0000-rdwr", "new", RDWR, 0),
        cr("creat-new-excl-4755", "new", EXCL | WR, 0o4755),
        cr("umask077-creat-new-0644", "new", WR, 0o644).umask(0o077),
        cr("umask077-creat-new-7777", "new", WR, 0o7777).umask(0o077),
        cr("umask077-creat-new-0100666", "new", WR, 0o100_666).umask(0o077),
        cr("umask000-creat-new-7777", "new", WR, 0o7777).umask(0),
        cr("umask777-creat-new-0666-rdwr", "new", RDWR, 0o666).umask(0o777),
        at(
            "umask077-openat-dirfd-creat",
            At::Dir,
            "new",
            CREAT | WR,
            0o666,
        )
        .umask(0o077),
        at("openat-pathfd-creat", At::PathDir, "new", CREAT | WR, 0o640),
        cr("creat-existing", "file", WR, 0o600),
        cr("creat-existing-excl", "file", EXCL | WR, 0o600),
        cr("creat-existing-private", "private", RD, 0o644),
        cr("creat-existing-noperm", "noperm", RD, 0o644),
        cr("creat-trunc-existing", "file", TRUNC | WR, 0o600),
        cr("creat-symlink", "link", RDWR, 0o600),
        cr("creat-symlink-excl", "link", EXCL | RDWR, 0o600),
        cr("creat-symlink-nofollow", "link", NOFOLLOW | RDWR, 0o600),
        cr("creat-dangling", "dangling", WR, 0o640),
        cr("creat-dangling-excl", "dangling", EXCL | WR, 0o640),
        cr("creat-dangling-nofollow", "dangling", NOFOLLOW | WR, 0o640),
        cr("creat-dangling-umask077", "dangling", WR, 0o666).umask(0o077),
        cr("creat-abslink", "abslink", WR, 0o600),
        cr("creat-dir", "dir", RD, 0o644),
        cr("creat-dir-wronly", "dir", WR, 0o644),
        cr("creat-dirlink", "dirlink", RD, 0o644),
        cr("creat-via-dirlink", "dirlink/new", WR, 0o644),
        cr("creat-in-rodir", "rodir/new", WR, 0o644),
        cr("creat-missing-parent", "missing/new", WR, 0o644),
        cr("creat-file-parent", "file/new", WR, 0o644),
        cr("creat-directory-new", "new", DIR | RD, 0o644),
        cr("creat-directory-dir", "dir", DIR | RD, 0o644),
        cr("creat-fifo", "fifo", RDWR, 0o644),
        cr("creat-fifo-nonblock-wronly", "fifo", NONBLOCK | WR, 0o644),
        cr("creat-name255", &name255, WR, 0o644),
        cr("creat-name256", &name256, WR, 0o644),
        cr("creat-dot", ".", RD, 0o644),
        cr("creat-dotdot", "..", RD, 0o644),
        cr("creat-empty", "", WR, 0o644),
        cr("creat-long-over", &long_over, WR, 0o644),
        cr("creat-unknown-flag", "new", WR | UNKNOWN, 0o644),
        cr("creat-cloexec", "new", WR | CLOEXEC, 0o644),
        cr("creat-append", "new", WR | APPEND, 0o644),
        two("openat2-creat-0644", At::Cwd, "new", CREAT | WR, 0o644, 0),
        two(
            "openat2-creat-0100644",
            At::Cwd,
            "new",
            CREAT | WR,
            0o100_644,
            0,
        ),
        two("openat2-creat-7777", At::Dir, "new", CREAT | WR, 0o7777, 0),
        two(
            "openat2-creat-7777-umask077",
            At::Dir,
            "new",
            CREAT | WR,
            0o7777,
            0,
        )
        .umask(0o077),
        two(
            "openat2-creat-excl-existing",
            At::Dir,
            "file",
            CREAT | EXCL | WR,
            0o644,
            0,
        ),
        two(
            "openat2-creat-dangling",
            At::Dir,
            "dangling",
            CREAT | WR,
            0o644,
            0,
        ),
        two(
            "openat2-creat-beneath",
            At::Dir,
            "new",
            CREAT | WR,
            0o644,
            BENEATH,
        ),
        two(
            "openat2-creat-pathfd",
            At::PathDir,
            "new",
            CREAT | RDWR,
            0o600,
            0,
        ),
        creat("creat-call-new", "new", 0o644),
        creat("creat-call-existing", "file", 0o600),
        creat("creat-call-0100755", "new", 0o100_755),
        creat("creat-call-6777", "new", 0o6777),
        creat("creat-call-dir", "dir", 0o644),
        creat("creat-call-dangling", "dangling", 0o644),
        creat("creat-call-noperm", "noperm", 0o644),
        creat("umask077-creat-call-new", "new", 0o666).umask(0o077),
        // Truncating, appending.
        op("trunc-wronly", "file", WR | TRUNC),
        op("trunc-rdonly", "file", RD | TRUNC),
        op("trunc-private-rdonly", "private", RD | TRUNC),
        op("trunc-noperm", "noperm", WR | TRUNC),
        op("trunc-dir", "dir", RD | TRUNC),
        op("trunc-fifo", "fifo", RDWR | TRUNC),
        op("trunc-link", "link", WR | TRUNC),
        op("append-wronly", "file", WR | APPEND),
        op("append-rdonly", "file", RD | APPEND),
        two("openat2-append-rdwr", At::Dir, "file", RDWR | APPEND, 0, 0),
        two("openat2-trunc", At::Dir, "file", WR | TRUNC, 0, 0),
        // O_DIRECTORY, O_NOFOLLOW, directories opened for writing.
        op("directory-file", "file", RD | DIR),
        op("directory-dir", "dir", RD | DIR),
        op("directory-dirlink", "dirlink", RD | DIR),
        op("directory-link", "link", RD | DIR),
        op("directory-fifo", "fifo", RD | DIR | NONBLOCK),
        op("directory-nofollow-dirlink", "dirlink", RD | DIR | NOFOLLOW),
        op("directory-wronly-dir", "dir", WR | DIR),
        op("nofollow-link", "link", RD | NOFOLLOW),
        op("nofollow-dangling", "dangling", RD | NOFOLLOW),
        op("nofollow-dirlink", "dirlink", RD | NOFOLLOW),
        op("nofollow-file", "file", RD | NOFOLLOW),
        op("nofollow-through-dirlink", "dirlink/inner", RD | NOFOLLOW),
        op("nofollow-dirlink-slash", "dirlink/", RD | NOFOLLOW),
        op("wronly-dir", "dir", WR),
        op("rdwr-dir", "dir", RDWR),
        op("link-rdonly", "link", RD),
        op("dangling-rdonly", "dangling", RD),
        op("abslink-rdonly", "abslink", RD),
        // O_PATH.
        op("path-file", "file", PATH),
        op("path-dir", "dir", PATH),
        op("path-noperm", "noperm", PATH),
        op("path-fifo", "fifo", PATH),
        op("path-cloexec", "file", PATH | CLOEXEC),
        op(
            "path-rdonly-directory-cloexec",
            "dir",
            RD | PATH | DIR | CLOEXEC,
        ),
        op("path-wronly-cloexec", "file", WR | PATH | CLOEXEC),
        op("path-creat-new", "new", PATH | CREAT),
        cr("path-creat-existing", "file", PATH, 0o600),
        op("path-directory-dir", "dir", PATH | DIR),
        op("path-directory-file", "file", PATH | DIR),
        op("path-wronly-trunc", "file", PATH | WR | TRUNC),
        op("path-nofollow-link", "link", PATH | NOFOLLOW),
        op("path-nofollow-dangling", "dangling", PATH | NOFOLLOW),
        op("path-dangling", "dangling", PATH),
        op("path-tmpfile", ".", PATH | TMPFILE),
        two("openat2-path-file", At::Cwd, "file", PATH, 0, 0),
        two("openat2-path-creat", At::Cwd, "file", PATH | CREAT, 0, 0),
        two("openat2-path-wronly", At::Cwd, "file", PATH | WR, 0, 0),
        two(
            "openat2-path-nofollow-link",
            At::Cwd,
            "link",
            PATH | NOFOLLOW,
            0,
            0,
        ),
        // O_TMPFILE (the probe then tries to link the file in as `linked`).
        op("tmpfile-dot-mode0", ".", TMPFILE | RDWR),
        Case::new(
            "tmpfile-dot-0600",
            Sys::Open,
            At::Cwd,
            ".",
            TMPFILE | RDWR,
            0o600,
        ),
        Case::new(
            "tmpfile-excl",
            Sys::Open,
            At::Cwd,
            ".",
            TMPFILE | EXCL | RDWR,
            0o600,
        ),
        Case::new(
            "tmpfile-dir-7777",
            Sys::Open,
            At::Cwd,
            "dir",
            TMPFILE | WR,
            0o7777,
        ),
        Case::new(
            "tmpfile-dirlink",
            Sys::Open,
            At::Cwd,
            "dirlink",
            TMPFILE | WR,
            0o644,
        ),
        Case::new(
            "tmpfile-0100644",
            Sys::Open,
            At::Cwd,
            ".",
            TMPFILE | WR,
            0o100_644,
        ),
        Case::new(
            "tmpfile-umask077",
            Sys::Open,
            At::Cwd,
            ".",
            TMPFILE | RDWR,
            0o666,
        )
        .umask(0o077),
        Case::new("tmpfile-rdonly", Sys::Open, At::Cwd, ".", TMPFILE, 0o600),
        Case::new(
            "tmpfile-file",
            Sys::Open,
            At::Cwd,
            "file",
            TMPFILE | RDWR,
            0o600,
        ),
        Case::new(
            "tmpfile-missing",
            Sys::Open,
            At::Cwd,
            "missing",
            TMPFILE | RDWR,
            0o600,
        ),
        Case::new(
            "tmpfile-rodir",
            Sys::Open,
            At::Cwd,
            "rodir",
            TMPFILE | RDWR,
            0o600,
        ),
        Case::new(
            "tmpfile-creat",
            Sys::Open,
            At::Cwd,
            ".",
            TMPFILE | CREAT | RDWR,
            0o600,
        ),
        at(
            "openat-tmpfile-pathfd",
            At::PathDir,
            ".",
            TMPFILE | RDWR,
            0o640,
        ),
        two("openat2-tmpfile", At::Dir, ".", TMPFILE | RDWR, 0o640, 0),
        two(
            "openat2-tmpfile-excl",
            At::Dir,
            ".",
            TMPFILE | EXCL | WR,
            0o640,
            0,
        ),
        two(
            "openat2-tmpfile-0100640",
            At::Dir,
            ".",
            TMPFILE | RDWR,
            0o100_640,
            0,
        ),
        // Trailing slashes, dots, empty, NULL and overlong paths.
        op("slash-file", "file/", RD),
        op("slash-dir", "dir/", RD),
        op("slash-link", "link/", RD),
        op("slash-dirlink", "dirlink/", RD),
        op("slash-dangling", "dangling/", RD),
        op("slash-fifo", "fifo/", RD | NONBLOCK),
        cr("slash-new-creat", "new/", WR, 0o644),
        cr("slash-dangling-creat", "dangling/", WR, 0o644),
        cr("slash-file-creat", "file/", WR, 0o644),
        cr("slash-dir-creat", "dir/", RD, 0o644),
        cr("slash-new-creat-excl", "new/", EXCL | WR, 0o644),
        two(
            "openat2-slash-new-creat",
            At::Dir,
            "new/",
            CREAT | WR,
            0o644,
            0,
        ),
        two("openat2-slash-file", At::Dir, "file/", RD, 0, 0),
        op("file-dot", "file/.", RD),
        op("dir-dot", "dir/.", RD),
        op("dir-dotdot", "dir/..", RD),
        op("dot", ".", RD),
        op("dot-wronly", ".", WR),
        op("dotdot", "..", RD),
        op("dot-slash-file", "./file", RD),
        op("empty", "", RD),
        at("openat-dirfd-empty", At::Dir, "", RD, 0),
        two("openat2-dirfd-empty", At::Dir, "", RD, 0, 0),
        op("long-max", &long_max, RD),
        op("long-over", &long_over, RD),
        op("long-5000", &"n".repeat(5000), RD),
        op("name255-missing", &name255, RD),
        op("name256", &name256, RD),
        op("missing", "missing", RD),
        op("missing-component", "missing/x", RD),
        op("file-component", "file/x", RD),
        op("magiclink-file", "/proc/self/fd/{FILEFD}", RD),
        op("magiclink-file-wronly", "/proc/self/fd/{FILEFD}", WR),
        op("magiclink-pipe", "/proc/self/fd/{PIPEFD}", RD | NONBLOCK),
        op("magiclink-file-slash", "/proc/self/fd/{FILEFD}/", RD),
        op(
            "magiclink-file-nofollow",
            "/proc/self/fd/{FILEFD}",
            RD | NOFOLLOW,
        ),
        op(
            "magiclink-file-directory",
            "/proc/self/fd/{FILEFD}",
            RD | DIR,
        ),
        cr(
            "magiclink-file-creat-excl",
            "/proc/self/fd/{FILEFD}",
            EXCL | WR,
            0o644,
        ),
        cr("magiclink-file-creat", "/proc/self/fd/{FILEFD}", WR, 0o600),
        op("magiclink-dir-slash", "/proc/self/fd/{DIRFD}/", RD),
        op(
            "magiclink-pipe-slash",
            "/proc/self/fd/{PIPEFD}/",
            RD | NONBLOCK,
        ),
        op("magiclink-dir-file", "/proc/self/fd/{DIRFD}/file", RD),
        two(
            "openat2-no-magiclinks",
            At::Cwd,
            "/proc/self/fd/{FILEFD}",
            RD,
            0,
            RESOLVE_NO_MAGICLINKS,
        ),
        // FIFOs (never the blocking ends).
        op("fifo-rdonly-nonblock", "fifo", RD | NONBLOCK),
        op("fifo-wronly-nonblock", "fifo", WR | NONBLOCK),
        op("fifo-rdwr", "fifo", RDWR),
        two(
            "openat2-fifo-rdonly-nonblock",
            At::Dir,
            "fifo",
            RD | NONBLOCK,
            0,
            0,
        ),
        // Flags and fields the kernel ignores for open/openat and refuses for openat2.
        op("open-unknown-flag", "file", RD | UNKNOWN),
        two("openat2-unknown-flag", At::Cwd, "file", RD | UNKNOWN, 0, 0),
        two("openat2-mode-without-creat", At::Cwd, "file", RD, 0o644, 0),
        two("openat2-bad-resolve", At::Cwd, "file", RD, 0, 0x1000),
        two(
            "openat2-beneath-and-in-root",
            At::Dir,
            "file",
            RD,
            0,
            BENEATH | IN_ROOT,
        ),
        // openat2's resolve flags.
        two(
            "openat2-no-symlinks-link",
            At::Dir,
            "link",
            RD,
            0,
            NO_SYMLINKS,
        ),
        two(
            "openat2-no-symlinks-through-dirlink",
            At::Dir,
            "dirlink/inner",
            RD,
            0,
            NO_SYMLINKS,
        ),
        two(
            "openat2-no-symlinks-path-nofollow",
            At::Dir,
            "link",
            PATH | NOFOLLOW,
            0,
            NO_SYMLINKS,
        ),
        two(
            "openat2-no-symlinks-creat-dangling",
            At::Dir,
            "dangling",
            CREAT | WR,
            0o644,
            NO_SYMLINKS,
        ),
        two(
            "openat2-no-symlinks-file",
            At::Dir,
            "file",
            RD,
            0,
            NO_SYMLINKS,
        ),
        two("openat2-beneath-dotdot", At::Dir, "../x", RD, 0, BENEATH),
        two(
            "openat2-beneath-dotdot-creat",
            At::Dir,
            "../x",
            CREAT | WR,
            0o644,
            BENEATH,
        ),
        two("openat2-beneath-file", At::Dir, "file", RD, 0, BENEATH),
        two(
            "openat2-beneath-dir-dotdot",
            At::Dir,
            "dir/../file",
            RD,
            0,
            BENEATH,
        ),
        two(
            "openat2-beneath-absolute",
            At::Dir,
            "{CWD}/file",
            RD,
            0,
            BENEATH,
        ),
        two(
            "openat2-beneath-dirlink",
            At::Dir,
            "dirlink/inner",
            RD,
            0,
            BENEATH,
        ),
        two(
            "openat2-beneath-abslink",
            At::Dir,
            "abslink",
            RD,
            0,
            BENEATH,
        ),
        two("openat2-beneath-cwd", At::Cwd, "file", RD, 0, BENEATH),
        two("openat2-in-root-absolute", At::Dir, "/file", RD, 0, IN_ROOT),
        two(
            "openat2-in-root-dotdot",
            At::Dir,
            "../../file",
            RD,
            0,
            IN_ROOT,
        ),
        two(
            "openat2-in-root-abslink",
            At::Dir,
            "abslink",
            RD,
            0,
            IN_ROOT,
        ),
        two(
            "openat2-in-root-creat",
            At::Dir,
            "/new",
            CREAT | WR,
            0o644,
            IN_ROOT,
        ),
        two(
            "openat2-no-xdev-file",
            At::Dir,
            "file",
            RD,
            0,
            RESOLVE_NO_XDEV,
        ),
        two(
            "openat2-no-xdev-proc",
            At::Cwd,
            "/proc/self/fd/{FILEFD}",
            RD,
            0,
            RESOLVE_NO_XDEV,
        ),
    ];
    // openat2's open_how: sizes, a nonzero tail, a NULL pointer, flag bits above 32.
    let mut c = two("openat2-size16", At::Cwd, "file", RD, 0, 0);
    c.size = 16;
    cases.push(c);
    let mut c = two("openat2-size32-zero-tail", At::Cwd, "file", RD, 0, 0);
    c.size = 32;
    cases.push(c);
    let mut c = two("openat2-size32-nonzero-tail", At::Cwd, "file", RD, 0, 0);
    c.size = 32;
    c.tail = 1;
    cases.push(c);
    let mut c = two("openat2-size8192", At::Cwd, "file", RD, 0, 0);
    c.size = 8192;
    cases.push(c);
    let mut c = two("openat2-null-how", At::Cwd, "file", RD, 0, 0);
    c.null_how = true;
    cases.push(c);
    let mut c = two("openat2-flag-bit-32", At::Cwd, "file", RD, 0, 0);
    c.high = 1 << 32;
    cases.push(c);
    for (name, sys) in [
        ("open-null-path", Sys::Open),
        ("openat-null-path", Sys::OpenAt),
        ("openat2-null-path", Sys::OpenAt2),
        ("creat-null-path", Sys::Creat),
    ] {
        let mode = if matches!(sys, Sys::Creat) { 0o644 } else { 0 };
        let mut c = Case::new(name, sys, At::Cwd, "", RD, mode);
        c.path = None;
        cases.push(c);
    }
    cases
}

/// The kernel's `O_LARGEFILE` (libc's is 0 on 64-bit targets; the kernel sets the bit itself on
/// every open but an `O_PATH` one).
#[cfg(target_arch = "aarch64")]
const KERNEL_O_LARGEFILE: i32 = 0o400_000;
#[cfg(not(target_arch = "aarch64"))]
const KERNEL_O_LARGEFILE: i32 = 0o100_000;

/// The `F_GETFL` bits a matrix line shows: those that change what the descriptor does.
const SHOWN_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DIRECT
    | libc::O_NOATIME
    | libc::O_PATH
    | libc::O_SYNC
    | KERNEL_O_LARGEFILE;

/// `REG`, `DIR`, … for an `st_mode`.
fn file_kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "REG",
        libc::S_IFDIR => "DIR",
        libc::S_IFLNK => "LNK",
        libc::S_IFIFO => "FIFO",
        libc::S_IFCHR => "CHR",
        libc::S_IFBLK => "BLK",
        libc::S_IFSOCK => "SOCK",
        _ => "?",
    }
}

/// `me` if this process's euid and egid own the file, else `other`.
fn owner(uid: u32, gid: u32) -> &'static str {
    if uid == nix::unistd::geteuid().as_raw() && gid == nix::unistd::getegid().as_raw() {
        "me"
    } else {
        "other"
    }
}

/// `TYPE:MODE[:SIZE]:OWNER` of a directory entry (no size for directories: it is the file
/// system's business).
fn entry_text(m: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut s = format!("{}:{:04o}", file_kind(m.mode()), m.mode() & 0o7777);
    if !m.is_dir() {
        s.push_str(&format!(":{}", m.size()));
    }
    format!("{s}:{}", owner(m.uid(), m.gid()))
}

/// Every entry under `dir` (recursively, symlinks not followed) and its [`entry_text`].
fn snapshot(
    dir: &std::path::Path,
    prefix: &str,
    out: &mut std::collections::BTreeMap<String, String>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        out.insert(format!("{prefix}?"), "unreadable".into());
        return;
    };
    for e in entries.flatten() {
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            out.insert(name, "unstatable".into());
            continue;
        };
        out.insert(name.clone(), entry_text(&m));
        if m.is_dir() {
            snapshot(&e.path(), &format!("{name}/"), out);
        }
    }
}

fn scratch_state() -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    snapshot(std::path::Path::new("."), "", &mut out);
    out
}

/// ` +NAME=… -NAME ~NAME=…`: what changed between two [`scratch_state`]s.
fn changes(
    before: &std::collections::BTreeMap<String, String>,
    after: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    for (k, v) in after {
        match before.get(k) {
            None => out.push_str(&format!(" +{k}={v}")),
            Some(b) if b != v => out.push_str(&format!(" ~{k}={v}")),
            Some(_) => {}
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        out.push_str(&format!(" -{k}"));
    }
    out
}

fn chmod(path: &str, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
}

/// Empties the current directory.
fn wipe() -> std::io::Result<()> {
    for e in std::fs::read_dir(".")? {
        let path = e?.path();
        if std::fs::symlink_metadata(&path)?.is_dir() {
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// The fixtures, in the current directory, with explicit modes (whatever the umask).
fn make_fixtures(cwd: &str) -> std::io::Result<()> {
    use std::os::unix::fs::symlink;
    std::fs::write("file", "data\n")?;
    chmod("file", 0o644)?;
    std::fs::create_dir("dir")?;
    chmod("dir", 0o755)?;
    std::fs::write("dir/inner", "inner\n")?;
    chmod("dir/inner", 0o644)?;
    symlink("file", "link")?;
    symlink("missing", "dangling")?;
    symlink("dir", "dirlink")?;
    symlink(format!("{cwd}/file"), "abslink")?;
    nix::unistd::mkfifo("fifo", nix::sys::stat::Mode::from_bits_truncate(0o644))?;
    chmod("fifo", 0o644)?;
    std::fs::write("private", "private\n")?;
    chmod("private", 0o600)?;
    std::fs::write("noperm", "noperm\n")?;
    chmod("noperm", 0)?;
    std::fs::create_dir("rodir")?;
    chmod("rodir", 0o555)
}

/// Issues `c` by raw syscall number; the result and the errno.
fn issue(
    c: &Case,
    cwd: &str,
    dir: i32,
    path_dir: i32,
    file: i32,
    pipe: i32,
) -> (libc::c_long, i32) {
    let dfd = match c.at {
        At::Cwd => libc::AT_FDCWD,
        At::Dir => dir,
        At::PathDir => path_dir,
        At::File => file,
        At::Bad => 999,
    };
    let path = c.path.as_ref().map(|p| {
        let p = p
            .replace("{FILEFD}", &file.to_string())
            .replace("{PIPEFD}", &pipe.to_string())
            .replace("{DIRFD}", &dir.to_string())
            .replace("{CWD}", cwd);
        CString::new(p).unwrap_or_default()
    });
    let p = path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
    let flags = u32::from_ne_bytes(c.flags.to_ne_bytes());
    let mut how = vec![0u64; 1024]; // open_how and room for the largest size passed
    how[0] = u64::from(flags) | c.high;
    how[1] = u64::from(c.mode);
    how[2] = c.resolve;
    how[3] = c.tail;
    let how_ptr = if c.null_how {
        std::ptr::null()
    } else {
        how.as_ptr()
    };
    // SAFETY: umask(2) takes no pointers.
    unsafe { libc::umask(c.umask) };
    let r = match c.sys {
        // SAFETY: open(2) with a NUL-terminated path (or NULL, which the kernel refuses).
        Sys::Open => unsafe { libc::syscall(libc::SYS_open, p, c.flags, c.mode) },
        // SAFETY: openat(2), as open(2).
        Sys::OpenAt => unsafe { libc::syscall(libc::SYS_openat, dfd, p, c.flags, c.mode) },
        // SAFETY: creat(2), as open(2).
        Sys::Creat => unsafe { libc::syscall(libc::SYS_creat, p, c.mode) },
        // SAFETY: openat2(2), as open(2), with an open_how of 8192 bytes (or NULL) and a size
        // no larger.
        Sys::OpenAt2 => unsafe { libc::syscall(libc::SYS_openat2, dfd, p, how_ptr, c.size) },
    };
    let e = if r < 0 { errno() } else { 0 };
    // SAFETY: umask(2) takes no pointers.
    unsafe { libc::umask(0o022) };
    (r, e)
}

fn os_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// The lowest descriptor number free now (the one an open must return).
fn lowest_free_fd() -> i32 {
    // SAFETY: dup(2) of stdout, closed right after.
    let fd = unsafe { libc::dup(1) };
    if fd >= 0 {
        // SAFETY: dup just returned this descriptor to us.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    fd
}

/// `ok fd=… type=… mode=… [nlink=… size=…] own=… flags=… cloexec=…[ link=…]` of a returned
/// descriptor, which this closes. For an `O_TMPFILE` one, `link` tells whether it can be
/// linked in (as `linked`, beside where it was made; not with `O_EXCL`).
fn describe_fd(fd: i32, lowest: i32, tmpfile_dir: Option<&str>) -> String {
    // SAFETY: the call just returned this descriptor to us; we own it and close it here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let number = if fd.as_raw_fd() == lowest {
        "lowest"
    } else {
        "other"
    };
    let mut s = format!("ok fd={number}");
    match nix::sys::stat::fstat(&fd) {
        Ok(st) => {
            let mode = st.st_mode;
            s.push_str(&format!(
                " type={} mode={:04o}",
                file_kind(mode),
                mode & 0o7777
            ));
            if mode & libc::S_IFMT != libc::S_IFDIR {
                s.push_str(&format!(" nlink={} size={}", st.st_nlink, st.st_size));
            }
            s.push_str(&format!(" own={}", owner(st.st_uid, st.st_gid)));
        }
        Err(e) => s.push_str(&format!(" fstat-errno={}", e as i32)),
    }
    match nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL) {
        Ok(fl) => s.push_str(&format!(" flags={:#x}", fl & SHOWN_FLAGS)),
        Err(e) => s.push_str(&format!(" getfl-errno={}", e as i32)),
    }
    match nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFD) {
        Ok(fl) => s.push_str(&format!(
            " cloexec={}",
            i32::from(fl & libc::FD_CLOEXEC != 0)
        )),
        Err(e) => s.push_str(&format!(" getfd-errno={}", e as i32)),
    }
    if let Some(dir) = tmpfile_dir {
        let from = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default();
        let to = CString::new(format!("{dir}/linked")).unwrap_or_default();
        // SAFETY: linkat(2) with two NUL-terminated paths.
        let r = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        s.push_str(&if r == 0 {
            " link=ok".to_string()
        } else {
            format!(" link=errno:{}", errno())
        });
    }
    s
}

/// `open-matrix DIR`: see the module comment. Each case starts from the same fixtures; what
/// it prints is the outcome of the call and what the call changed in DIR, never a number that
/// differs between runs (descriptor numbers, inodes, times).
fn open_matrix(dir: &str) -> ExitCode {
    use std::os::unix::fs::OpenOptionsExt;
    let setup = || -> std::io::Result<String> {
        if std::fs::symlink_metadata(dir).is_ok() {
            std::env::set_current_dir(dir)?;
            wipe()?;
            std::env::set_current_dir("..")?;
            std::fs::remove_dir(dir)?;
        }
        std::fs::create_dir(dir)?;
        chmod(dir, 0o755)?;
        std::env::set_current_dir(dir)?;
        Ok(std::env::current_dir()?.to_string_lossy().into_owned())
    };
    let cwd = match setup() {
        Ok(cwd) => cwd,
        Err(e) => {
            println!("open-matrix setup failed: {e}");
            return ExitCode::from(1);
        }
    };
    // SAFETY: umask(2) takes no pointers.
    unsafe { libc::umask(0o022) };
    let Ok(scratch) = std::fs::File::open(".") else {
        println!("open-matrix: cannot open the scratch directory");
        return ExitCode::from(1);
    };
    let Ok(pipe) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        println!("open-matrix: no pipe");
        return ExitCode::from(1);
    };
    let cases = matrix_cases();
    for c in &cases {
        if let Err(e) = wipe().and_then(|()| make_fixtures(&cwd)) {
            println!("{} fixtures failed: {e}", c.name);
            return ExitCode::from(1);
        }
        let file = std::fs::File::open("file");
        let path_dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open("dir");
        // The descriptors some cases start from, opened as the kernel would; when one cannot
        // be, those cases say so instead of running.
        let raw = |f: &std::io::Result<std::fs::File>| f.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        let fixture_error = match (c.at, &file, &path_dir) {
            (At::PathDir, _, Err(e)) => Some(format!("pathdir-fixture-errno={}", os_errno(e))),
            (_, Err(e), _) => Some(format!("file-fixture-errno={}", os_errno(e))),
            _ => None,
        };
        let before = scratch_state();
        let lowest = lowest_free_fd();
        let (r, e) = match fixture_error {
            Some(_) => (-1, 0),
            None => issue(
                c,
                &cwd,
                scratch.as_raw_fd(),
                raw(&path_dir),
                raw(&file),
                pipe.0.as_raw_fd(),
            ),
        };
        let outcome = match i32::try_from(r) {
            _ if fixture_error.is_some() => fixture_error.unwrap_or_default(),
            Ok(fd) if fd >= 0 => {
                let made_in = match (c.at, c.path.as_deref()) {
                    (At::PathDir, _) => "dir",
                    (_, Some(p)) => p,
                    _ => ".",
                };
                let tmpfile = (c.flags & libc::O_TMPFILE == libc::O_TMPFILE).then_some(made_in);
                describe_fd(fd, lowest, tmpfile)
            }
            _ => format!("errno={e}"),
        };
        drop((file, path_dir));
        let after = scratch_state();
        println!("{} {outcome}{}", c.name, changes(&before, &after));
    }
    let _ = wipe();
    drop(scratch);
    let _ = std::env::set_current_dir("..");
    let _ = std::fs::remove_dir(dir);
    println!("open-matrix done {}", cases.len());
    ExitCode::SUCCESS
}
