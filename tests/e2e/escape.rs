//! The escape-probe suite (issue 7): `tests/probes/escape.c`, compiled with `cc` at test time,
//! runs one attack per probe (reading secrets, destroying what is out of scope, reaching the
//! network, out-voting supervision, running code where exec is not granted, exhausting the run's
//! limits). Each probe first runs *unconfined* as the caller, where it must succeed ("live"),
//! then inside agentd:
//!
//! - `default` plus `[resources] pids = 64, memory = "128M"`: every class but `exec`;
//! - the same with `network = "filtered"` (one allowed listener): the `net` class again;
//! - `base` plus a write-only workspace (exec granted only for the probe's own directory): `exec`.
//!
//! One `PROBE name: escaped|blocked (evidence)` line per probe and mode, then a summary. The test
//! fails on any escape, and on any probe that does not succeed unconfined unless the table below
//! says why it cannot (no virtual console: evidence only) or that it depends on the host's
//! configuration (printed as `n/a unconfined`, never silently). A probe that needs a capability
//! the caller lacks is run unconfined again as root, against targets the test creates and
//! removes, and must succeed there (`live as root`); its confined run stays the caller's.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_tests::daemon::{ps_once, rss_kib};
use agentd_tests::tempdir::{chown, mkdir_owned, set_mode, write_owned};
use agentd_tests::{require, Caller, Daemon, Feature, Output};

use crate::{check, display, start, write_policy};

/// Whether a probe can be shown live outside the sandbox.
#[derive(Clone, Copy)]
enum Live {
    /// It must succeed unconfined; if it does not, the probe is dead and the test fails.
    Always,
    /// It cannot succeed as an unprivileged caller (why): its confined result is evidence only.
    Never(&'static str),
    /// It needs a capability the caller lacks (which): it is shown live by running it unconfined
    /// as root (uid 0, every capability) against targets the test creates; dead if that fails.
    Root(&'static str),
    /// Whether it succeeds depends on the host's configuration (what): n/a if it does not.
    Host(&'static str),
}

/// Every probe `escape.c` runs, with how its liveness is shown. A probe the C file runs that is
/// missing here (or the reverse) fails the test.
const PROBES: &[(&str, Live)] = &[
    ("secret.home-key.libc", Live::Always),
    ("secret.home-key.raw-open", Live::Always),
    ("secret.home-key.raw-openat", Live::Always),
    ("secret.home-key.raw-openat2", Live::Always),
    ("secret.home-key.thread", Live::Always),
    ("secret.home-key.symlink", Live::Always),
    ("secret.home-key.hardlink", Live::Always),
    ("secret.outside-file.libc", Live::Always),
    ("secret.outside-file.raw-openat2", Live::Always),
    ("secret.dotenv.libc", Live::Always),
    ("secret.dotenv.raw-openat2", Live::Always),
    ("secret.dotenv.thread", Live::Always),
    ("secret.dotenv.dotdot", Live::Always),
    ("secret.dotenv.slashes", Live::Always),
    ("secret.dotenv.absolute", Live::Always),
    ("secret.dotenv.proc-self-fd", Live::Always),
    ("secret.dotenv.openat-dirfd", Live::Always),
    ("secret.dotenv.symlink", Live::Always),
    ("secret.dotenv.hardlink", Live::Always),
    ("secret.dotenv.race-open", Live::Always),
    ("secret.proc-environ", Live::Always),
    ("secret.proc-root", Live::Always),
    ("secret.name-to-handle", Live::Always),
    (
        "secret.open-by-handle",
        Live::Root("needs CAP_DAC_READ_SEARCH"),
    ),
    ("destroy.unlink", Live::Always),
    ("destroy.unlinkat-raw", Live::Always),
    ("destroy.rename", Live::Always),
    ("destroy.rename-into-workspace", Live::Always),
    ("destroy.truncate", Live::Always),
    ("destroy.open-trunc", Live::Always),
    ("destroy.chmod", Live::Always),
    ("destroy.chown", Live::Always),
    ("destroy.mount-over", Live::Root("needs CAP_SYS_ADMIN")),
    (
        "destroy.bind-over-workspace",
        Live::Root("needs CAP_SYS_ADMIN"),
    ),
    ("net.tcp4", Live::Always),
    ("net.tcp4.thread", Live::Always),
    ("net.tcp6", Live::Host("an IPv6 loopback address")),
    ("net.tcp-v4-mapped", Live::Always),
    ("net.mptcp", Live::Host("MPTCP (net.mptcp.enabled)")),
    (
        "net.tcp-fastopen",
        Live::Host("TCP Fast Open (net.ipv4.tcp_fastopen)"),
    ),
    ("net.udp.sendto", Live::Always),
    ("net.udp.sendmsg", Live::Always),
    ("net.udp.connect", Live::Always),
    ("net.dns", Live::Always),
    ("net.raw-socket", Live::Root("needs CAP_NET_RAW")),
    ("net.packet-socket", Live::Root("needs CAP_NET_RAW")),
    ("net.unix-path", Live::Always),
    ("net.unix-abstract", Live::Always),
    ("net.daemon-socket", Live::Always),
    ("net.race-connect", Live::Always),
    ("sup.seccomp-listener", Live::Always),
    ("sup.ptrace-child", Live::Always),
    (
        "sup.ptrace-outside",
        Live::Host("Yama ptrace_scope = 0 (attach to a non-descendant)"),
    ),
    ("sup.process-vm-readv", Live::Always),
    ("sup.process-vm-writev", Live::Always),
    ("sup.pidfd-getfd", Live::Always),
    (
        "sup.io-uring",
        Live::Host("io_uring (kernel.io_uring_disabled)"),
    ),
    ("sup.unshare-user", Live::Always),
    ("sup.clone-user", Live::Always),
    ("sup.clone3-user", Live::Always),
    ("sup.userns-mount", Live::Always),
    ("sup.fsopen", Live::Root("needs CAP_SYS_ADMIN")),
    (
        "sup.setuid-binary",
        Live::Host("a temp dir mounted without nosuid"),
    ),
    ("sup.i386-int80", Live::Host("IA32 emulation (x86-64 only)")),
    ("sup.x32", Live::Host("the x32 ABI (CONFIG_X86_X32_ABI)")),
    ("sup.personality-aslr", Live::Always),
    ("sup.personality-rie", Live::Always),
    (
        "sup.tiocsti",
        Live::Host("TIOCSTI (dev.tty.legacy_tiocsti = 1)"),
    ),
    (
        "sup.tioclinux",
        Live::Never("needs a Linux virtual console"),
    ),
    ("sup.signal-outside", Live::Always),
    (
        "sup.cgroup-write",
        Live::Root("the cgroup files are root's"),
    ),
    (
        "sup.bpf",
        Live::Root("unprivileged bpf is off (kernel.unprivileged_bpf_disabled)"),
    ),
    (
        "sup.perf-event-open",
        Live::Host("kernel.perf_event_paranoid <= 2"),
    ),
    ("sup.keyctl", Live::Always),
    (
        "sup.userfaultfd",
        Live::Host("userfaultfd UFFD_USER_MODE_ONLY (Linux 5.11+)"),
    ),
    ("exec.workspace-binary", Live::Always),
    ("exec.tmp-binary", Live::Always),
    ("exec.ld-so", Live::Always),
    ("exec.memfd", Live::Always),
    ("abuse.fork-bomb", Live::Always),
    ("abuse.memory-balloon", Live::Always),
];

const MARKER: &str = "AGENTD-E2E-SECRET";
const OUTSIDE_SECRET: &str = "AGENTD-E2E-SECRET-outside-the-view-71c3";
const ENVIRON_SECRET: &str = "AGENTD-E2E-SECRET-environ-0e5d";
/// The files `escape.c` tries to destroy, in `<workspace parent>/victims`.
const VICTIMS: &[&str] = &[
    "unlink-me",
    "unlinkat-me",
    "rename-me",
    "steal-me",
    "truncate-me",
    "otrunc-me",
    "chmod-me",
    "chown-me",
];
const VICTIM_TEXT: &str = "out of scope: must survive the run\n";
/// Bounds one run of the whole suite.
const SUITE_TIMEOUT: Duration = Duration::from_secs(100);

/// One probe's result in one run: whether the attack succeeded, and its evidence.
type Results = BTreeMap<String, (bool, String)>;

/// The `R NAME ok|no EVIDENCE` lines of a run (`R-END` must be there: the run finished).
fn parse(out: &Output) -> Option<Results> {
    if !out.stdout.lines().any(|l| l == "R-END") {
        return None;
    }
    let mut results = Results::new();
    for line in out.stdout.lines() {
        let Some(rest) = line.strip_prefix("R ") else {
            continue;
        };
        let mut w = rest.splitn(3, ' ');
        if let (Some(name), Some(verdict)) = (w.next(), w.next()) {
            let evidence = w.next().unwrap_or("").to_owned();
            results.insert(name.to_owned(), (verdict == "ok", evidence));
        }
    }
    Some(results)
}

/// A TCP listener on the host that greets every connection with a banner, until dropped.
struct Banner {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl Banner {
    fn bind(addr: &str) -> Option<Banner> {
        let l = TcpListener::bind(addr).ok()?;
        l.set_nonblocking(true).ok()?;
        let addr = l.local_addr().ok()?.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(b"AGENTD-E2E-BANNER tcp\n");
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(_) => {}
                }
            }
        });
        Some(Banner { addr, stop })
    }
}

impl Drop for Banner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A UDP socket on the host that answers every datagram with a banner (a "resolver").
fn udp_echo(stop: Arc<AtomicBool>) -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((_, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(b"AGENTD-E2E-BANNER udp\n", from);
            }
        }
    });
    addr
}

/// `sleep 300` as the caller with `value` in its environment; killed and reaped on drop.
struct Outside(std::process::Child);

impl Outside {
    fn spawn(c: &Caller, value: &str) -> Outside {
        let mut cmd = c.command("sleep");
        cmd.arg("300")
            .env("AGENTD_E2E_OUTSIDE", value)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Outside(cmd.spawn().unwrap())
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }

    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The victims' directory beside the workspace, refilled before each run.
fn reset_victims(c: &Caller) -> PathBuf {
    let dir = c.workspace.parent().unwrap().join("victims");
    let _ = std::fs::remove_dir_all(&dir);
    mkdir_owned(&dir, 0o755, c.uid, c.gid);
    for v in VICTIMS {
        write_owned(&dir.join(v), VICTIM_TEXT.as_bytes(), 0o644, c.uid, c.gid);
    }
    let _ = std::fs::remove_file(c.workspace.join("stolen"));
    dir
}

/// What a confined run changed among the victims (empty: nothing).
fn victims_damage(c: &Caller, dir: &Path) -> Vec<String> {
    let mut damage = Vec::new();
    for v in VICTIMS {
        let p = dir.join(v);
        match std::fs::metadata(&p) {
            Err(e) => damage.push(format!("{v}: {e}")),
            Ok(m) => {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                if text != VICTIM_TEXT {
                    damage.push(format!("{v}: content changed"));
                }
                if m.permissions().mode() & 0o7777 != 0o644 {
                    damage.push(format!("{v}: mode {:o}", m.permissions().mode()));
                }
                if m.uid() != c.uid {
                    damage.push(format!("{v}: owner {}", m.uid()));
                }
            }
        }
    }
    if dir.join("renamed").exists() || c.workspace.join("stolen").exists() {
        damage.push("a victim was renamed".into());
    }
    damage
}

/// Compiles `tests/probes/escape.c` into `dir/escape` (root-owned, 0755).
fn compile(d: &Daemon, dir: &Path) -> PathBuf {
    let src = agentd_tests::bins::repo_root().join("tests/probes/escape.c");
    let exe = dir.join("escape");
    let out = agentd_tests::command::run(
        {
            let mut cmd = Command::new("cc");
            cmd.args(["-O2", "-Wall", "-pthread", "-o"])
                .arg(&exe)
                .arg(&src);
            cmd
        },
        b"",
        Duration::from_secs(60),
    );
    check(d, &out, out.success(), "cc tests/probes/escape.c");
    exe
}

fn copy_to(from: &Path, to: &Path, mode: u32, uid: u32, gid: u32) {
    std::fs::copy(from, to).unwrap();
    chown(to, uid, gid);
    set_mode(to, mode);
}

/// Runs the probe binary with `args` as the caller (unconfined, or under `policy`).
fn suite(c: &Caller, policy: Option<&Path>, exe: &str, args: &[String]) -> Output {
    let mut argv: Vec<&str> = vec![exe];
    argv.extend(args.iter().map(String::as_str));
    match policy {
        None => {
            let mut cmd = c.command(exe);
            cmd.args(args);
            agentd_tests::command::run(cmd, b"", SUITE_TIMEOUT)
        }
        Some(p) => {
            let p = display(p);
            let mut full = vec!["run", "--policy", p.as_str(), "--"];
            full.extend(argv);
            c.agentctl_with_stdin(&full, b"", SUITE_TIMEOUT)
        }
    }
}

/// A cgroup the test creates for the root run's `sup.cgroup-write`; removed on drop.
struct ScratchCgroup(PathBuf);

impl ScratchCgroup {
    fn create() -> std::io::Result<ScratchCgroup> {
        let hybrid = Path::new("/sys/fs/cgroup/unified");
        let root = if hybrid.join("cgroup.procs").exists() {
            hybrid
        } else {
            Path::new("/sys/fs/cgroup")
        };
        let dir = root.join(format!("agentd-e2e-escape-{}", std::process::id()));
        std::fs::create_dir(&dir)?;
        Ok(ScratchCgroup(dir))
    }
}

impl Drop for ScratchCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Runs the probes `names` (the ones that need a capability the caller lacks) unconfined as root,
/// with every capability, against targets the test creates: a scratch directory (root's, in the
/// daemon's test dir) as working directory (its `README.md` for the handle probe, the directory
/// `/` is bound over) and mount target (`mnt`), and a scratch cgroup. The run is in a private
/// mount namespace of its own (`unshare --mount --propagation private`), so whatever it mounts
/// goes with it and the host's mount table is never touched; the scratch directory and cgroup
/// are removed afterwards. `Err`: the run did not finish (its output).
fn root_suite(d: &Daemon, exe: &Path, names: &[&str]) -> Result<Results, Output> {
    let scratch = d.dir().join("escape-root");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir(&scratch).unwrap();
    set_mode(&scratch, 0o700);
    std::fs::write(
        scratch.join("README.md"),
        b"a file of the test, opened by handle\n",
    )
    .unwrap();
    let target = scratch.join("mnt");
    std::fs::create_dir(&target).unwrap();
    let cgroup = ScratchCgroup::create();
    let cgroup_arg = match &cgroup {
        Ok(cg) => display(&cg.0),
        Err(e) => format!("/nonexistent (could not create the scratch cgroup: {e})"),
    };
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .arg(format!("only={}", names.join(",")))
        .arg(format!("destroy={}", display(&target)))
        .arg(format!("cgroup={cgroup_arg}"))
        .current_dir(&scratch);
    let out = agentd_tests::command::run(cmd, b"", SUITE_TIMEOUT);
    let results = parse(&out);
    drop(cgroup);
    let _ = std::fs::remove_dir_all(&scratch);
    results.ok_or(out)
}

#[test]
fn escape_probe_suite_finds_no_escape() {
    require!(sandbox, Feature::CgroupV1, Feature::Cgroup2Unified);
    let started = Instant::now();
    let (d, c) = start();

    // The probe: compiled once, a root-owned copy in its own directory (the exec-less run's only
    // exec grant), a caller-owned copy in the workspace, and a setuid-root copy there.
    let bin_dir = d.dir().join("escape-bin");
    std::fs::create_dir(&bin_dir).unwrap();
    set_mode(&bin_dir, 0o755);
    let exe = compile(&d, &bin_dir);
    let in_ws = c.workspace.join("escape");
    copy_to(&exe, &in_ws, 0o755, c.uid, c.gid);
    let suid = c.workspace.join("escape-suid");
    copy_to(&exe, &suid, 0o4755, 0, 0);

    // Targets outside the sandbox.
    write_owned(
        &c.workspace.join(".enw"),
        b"an ordinary file whose name is one byte from .env\n",
        0o644,
        c.uid,
        c.gid,
    );
    mkdir_owned(&c.workspace.join("sub"), 0o755, c.uid, c.gid);
    let outside = d.dir().join("outside-secret");
    write_owned(&outside, OUTSIDE_SECRET.as_bytes(), 0o600, c.uid, c.gid);
    let denied = Banner::bind("127.0.0.1:0").unwrap();
    let allowed = Banner::bind("127.0.0.1:0").unwrap();
    let v6 = Banner::bind("[::1]:0");
    let stop = Arc::new(AtomicBool::new(false));
    let udp = udp_echo(stop.clone());
    let host_sock = d.dir().join("host.sock");
    let _unix = UnixListener::bind(&host_sock).unwrap();
    set_mode(&host_sock, 0o777);
    let abstract_name = format!("agentd-e2e-escape-{}", std::process::id());
    let _abstract =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap())
            .unwrap();
    let holder = Outside::spawn(&c, ENVIRON_SECRET);
    let envpid = holder.pid();

    let common = |victim: &str, victims: &Path| -> Vec<String> {
        vec![
            format!("marker={MARKER}"),
            format!("key={}", display(&c.home.join(".ssh/id_ed25519"))),
            format!("outside={}", display(&outside)),
            format!("envpid={envpid}"),
            format!("victim={victim}"),
            format!("destroy={}", display(victims)),
            format!("tcp={}", denied.addr),
            format!(
                "tcp6={}",
                v6.as_ref().map_or("none:0".into(), |b| b.addr.clone())
            ),
            format!("allowed={}", allowed.addr),
            format!("udp={udp}"),
            format!("unix={}", display(&host_sock)),
            format!("abstract={abstract_name}"),
            format!("daemon={}", display(d.socket())),
            format!("suid={}", display(&suid)),
        ]
    };
    let ws_exe = display(&in_ws);

    // 1. Unconfined: every probe must succeed (or say why it cannot).
    let victims = reset_victims(&c);
    let victim_u = Outside::spawn(&c, "victim");
    let mut args = common(&victim_u.pid(), &victims);
    args.push("classes=fs,destroy,net,sup,exec,abuse".into());
    let out = suite(&c, None, &ws_exe, &args);
    let Some(unconfined) = parse(&out) else {
        return check(&d, &out, false, "the unconfined suite did not finish");
    };

    // 1b. Unconfined as root: the probes that need a capability the caller lacks.
    let need_root: Vec<&str> = PROBES
        .iter()
        .filter(|(name, live)| {
            matches!(live, Live::Root(_)) && !unconfined.get(*name).is_some_and(|r| r.0)
        })
        .map(|p| p.0)
        .collect();
    let as_root = if need_root.is_empty() {
        Results::new()
    } else {
        match root_suite(&d, &exe, &need_root) {
            Ok(r) => r,
            Err(out) => return check(&d, &out, false, "the root suite did not finish"),
        }
    };

    // 2. Confined: default + limits (network none); the victims are fresh.
    let limits = "version = 1\nextends = [\"default\"]\n\n[resources]\npids = 64\n\
                  memory = \"128M\"\n";
    let p_default = write_policy(&d, "escape-default", limits);
    let victims = reset_victims(&c);
    let mut victim_c = Outside::spawn(&c, "victim");
    let mut args = common(&victim_c.pid(), &victims);
    args.push("classes=fs,destroy,net,sup,abuse".into());
    // The daemon's memory and its answer time while the confined suite (fork bomb and memory
    // balloon included) runs: sampled every 20 ms, printed, and bounded.
    let rss_before = rss_kib(d.pid());
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampling, pid, sock) = (sampling.clone(), d.pid(), d.socket().to_path_buf());
        std::thread::spawn(move || {
            let (mut peak, mut worst_ps) = (0u64, Duration::ZERO);
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                worst_ps = worst_ps
                    .max(ps_once(&sock, Duration::from_secs(2)).unwrap_or(Duration::from_secs(2)));
                std::thread::sleep(Duration::from_millis(20));
            }
            (peak, worst_ps)
        })
    };
    let out = suite(&c, Some(&p_default), &ws_exe, &args);
    sampling.store(false, Ordering::Relaxed);
    let (peak, worst_ps) = sampler.join().unwrap_or_default();
    let grew = peak.saturating_sub(rss_before);
    println!(
        "PROBE abuse.daemon-under-the-suite: blocked (daemon rss {:+.1} MiB peak while the fork \
         bomb, memory balloon and every other probe ran; slowest ps {:.1} ms)",
        grew as f64 / 1024.0,
        worst_ps.as_secs_f64() * 1000.0
    );
    check(
        &d,
        &out,
        grew < 32 * 1024,
        "agentd's memory stays bounded under the abuse probes",
    );
    check(
        &d,
        &out,
        worst_ps < Duration::from_secs(2),
        "agentd keeps answering under the abuse probes",
    );
    let Some(mut confined) = parse(&out) else {
        return check(&d, &out, false, "the confined suite did not finish");
    };
    let damage = victims_damage(&c, &victims);
    let victim_alive = victim_c.alive();

    // 3. Filtered network: only `allowed` may be reached.
    let p_filtered = write_policy(
        &d,
        "escape-filtered",
        &format!(
            "{limits}\n[network]\nmode = \"filtered\"\nallow = [\"{}\"]\n",
            allowed.addr
        ),
    );
    let mut args = common("0", &victims);
    args.push("classes=net,control".into());
    let out_f = suite(&c, Some(&p_filtered), &ws_exe, &args);
    let Some(filtered) = parse(&out_f) else {
        return check(&d, &out_f, false, "the filtered suite did not finish");
    };
    check(
        &d,
        &out_f,
        filtered.get("control.allowed").is_some_and(|r| r.0),
        "filtered mode must reach the allowed listener (else its net probes prove nothing)",
    );

    // 4. Exec not granted in the workspace: the probe runs from its own directory.
    let p_noexec = write_policy(
        &d,
        "escape-noexec",
        &format!(
            "version = 1\nextends = [\"base\"]\n\n[filesystem]\nread = [\"{0}\"]\n\
             exec = [\"{0}\"]\nwrite = [\"${{WORKSPACE}}\"]\n",
            display(&bin_dir)
        ),
    );
    let mut args = common("0", &victims);
    args.push("classes=exec".into());
    let out_x = suite(&c, Some(&p_noexec), &display(&exe), &args);
    let Some(noexec) = parse(&out_x) else {
        return check(&d, &out_x, false, "the exec-less suite did not finish");
    };
    confined.extend(noexec);

    // The verdicts.
    let mut lines = Vec::new();
    let (mut escaped, mut dead, mut blocked, mut na) = (0, 0, 0, 0);
    for (name, live) in PROBES {
        let live_line = match unconfined.get(*name) {
            Some((true, _)) => String::new(),
            Some((false, why)) => match live {
                Live::Always => {
                    dead += 1;
                    format!(" [DEAD: failed unconfined: {why}]")
                }
                Live::Root(reason) => match as_root.get(*name) {
                    Some((true, ev)) => format!(" [live as root: {ev}; as the caller: {why}]"),
                    Some((false, root_why)) => {
                        dead += 1;
                        format!(" [DEAD: {reason}, and failed as root too: {root_why}]")
                    }
                    None => {
                        dead += 1;
                        format!(" [DEAD: {reason}, and no result as root]")
                    }
                },
                Live::Never(reason) | Live::Host(reason) => {
                    na += 1;
                    format!(" [n/a unconfined: {reason}; unconfined: {why}]")
                }
            },
            None => {
                dead += 1;
                " [DEAD: no unconfined result]".into()
            }
        };
        let mut modes = vec![("", confined.get(*name))];
        if name.starts_with("net.") {
            modes = vec![("[none]", confined.get(*name))];
            modes.push(("[filtered]", filtered.get(*name)));
        }
        for (mode, result) in modes {
            let (mut hit, mut evidence) = match result {
                Some((ok, ev)) => (*ok, ev.clone()),
                None => {
                    dead += 1;
                    (false, "DEAD: no confined result".to_owned())
                }
            };
            if name.starts_with("destroy.") && !damage.is_empty() {
                hit = true;
                evidence = format!("{evidence}; host damage: {}", damage.join(", "));
            }
            if *name == "sup.signal-outside" && !victim_alive {
                hit = true;
                evidence = format!("{evidence}; the outside process died");
            }
            if hit {
                escaped += 1;
            } else {
                blocked += 1;
            }
            let verdict = if hit { "escaped" } else { "blocked" };
            lines.push(format!(
                "PROBE {name}{mode}: {verdict} ({evidence}){live_line}"
            ));
        }
    }
    let known: Vec<&str> = PROBES.iter().map(|p| p.0).collect();
    let unknown: Vec<&String> = unconfined
        .keys()
        .filter(|k| !known.contains(&k.as_str()) && !k.starts_with("control."))
        .collect();
    let summary = format!(
        "escape suite: {} probes, {} confined results: {blocked} blocked, {escaped} escaped, \
         {dead} dead, {na} n/a unconfined; {:?}",
        PROBES.len(),
        blocked + escaped,
        started.elapsed()
    );
    let report = format!("{}\n{summary}\n", lines.join("\n"));
    let _ = std::io::stderr().write_all(report.as_bytes());
    check(
        &d,
        &out,
        escaped == 0 && dead == 0 && unknown.is_empty(),
        &format!("{report}probes missing from the table: {unknown:?}"),
    );
    stop.store(true, Ordering::Relaxed);
}
