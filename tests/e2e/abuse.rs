//! Abuse probes (issue 7's security evidence, the part `escape.rs` and `human.rs` leave out): a
//! flood of frames and a flood of connections on the control socket, and a huge audit volume.
//! Each probe samples agentd's resident memory (`VmRSS`) while it runs and measures how long an
//! ordinary request or run takes meanwhile; every bound is an assertion, and each probe prints one
//! `PROBE abuse.NAME: …` line with the figures.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agentd_proto::MAX_FRAME;
use agentd_tests::caller::OTHER_UID;
use agentd_tests::command::Background;
use agentd_tests::daemon::{ps_once, rss_kib};
use agentd_tests::tempdir::write_owned;
use agentd_tests::{require, Caller, Daemon};
use serde_json::Value;

use crate::{check, check_code, start};

/// How much agentd's RSS may grow during a probe.
const RSS_GROWTH_KIB: u64 = 32 * 1024;
/// How far above its baseline agentd's RSS may stay once a probe is over.
const RSS_AFTER_KIB: u64 = 16 * 1024;
/// How long an ordinary `ps` may take during a probe.
const PS_BOUND: Duration = Duration::from_secs(2);
/// How long an ordinary `agentctl run -- true` may take during a probe.
const RUN_BOUND: Duration = Duration::from_secs(5);

/// A KiB figure as a signed number (RSS figures are far below `i64::MAX`).
fn signed(kib: u64) -> i64 {
    i64::try_from(kib).unwrap_or(i64::MAX)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Samples agentd's RSS every 10 ms until stopped; remembers the baseline and the peak.
struct RssSampler {
    pid: u32,
    baseline: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    fn start(d: &Daemon) -> RssSampler {
        let pid = d.pid();
        let baseline = rss_kib(pid);
        assert!(baseline > 0, "cannot read VmRSS of agentd (pid {pid})");
        let peak = Arc::new(AtomicU64::new(baseline));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        RssSampler {
            pid,
            baseline,
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the peak growth over the baseline in KiB.
    fn finish(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak
            .load(Ordering::Relaxed)
            .saturating_sub(self.baseline)
    }

    /// Waits (up to 5 s) for the RSS to come back within [`RSS_AFTER_KIB`] of the baseline; the
    /// last growth seen in KiB (signed: it may end below the baseline).
    fn settle(&self) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = signed(rss_kib(self.pid)) - signed(self.baseline);
            if now < signed(RSS_AFTER_KIB) || Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Median and maximum of `samples`.
fn p50_max(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    (
        samples[samples.len() / 2],
        samples.last().copied().unwrap_or_default(),
    )
}

/// The frames a flooding client sends, in turn: mostly valid `ps`, malformed JSON, an unknown
/// version, an unknown request type; every 1000th an oversized frame (> MAX_FRAME).
fn flood_frame(i: usize, big: &[u8]) -> &[u8] {
    if i % 1000 == 999 {
        return big;
    }
    match i % 10 {
        0..=5 => b"{\"v\":1,\"req\":{\"type\":\"ps\"}}\n",
        6 => b"{\"v\":1,\"req\":{\"type\":\"ps\"\n",
        7 => b"not json at all \x00\xff\n",
        8 => b"{\"v\":99,\"req\":{\"type\":\"ps\"}}\n",
        _ => b"{\"v\":1,\"req\":{\"type\":\"format-the-disk\"}}\n",
    }
}

/// Replies one flooding client read, by kind.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    sent: u64,
    runs: u64,
    malformed: u64,
    too_large: u64,
    version: u64,
    other: u64,
}

#[test]
fn abuse_frame_flood_neither_grows_agentd_nor_delays_others() {
    require!(sandbox);
    let (d, c) = start();
    const CLIENTS: usize = 8;
    let mut rss = RssSampler::start(&d);
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, socket) = (stop.clone(), d.socket().to_path_buf());
            std::thread::spawn(move || flood_socket(&socket, 3000, 200_000, stop))
        })
        .collect();

    // Meanwhile: a run, then a few dozen `ps` on fresh connections.
    std::thread::sleep(Duration::from_millis(50));
    let run = c.run(&["true"]);
    check_code(&d, &run, 0, "agentctl run -- true during the frame flood");
    let mut lat = Vec::new();
    for i in 0..40 {
        match ps_once(d.socket(), PS_BOUND) {
            Ok(t) => lat.push(t),
            Err(e) => panic!("ps {i} during the frame flood: {e}\n{}", d.log()),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let still_flooding = clients.iter().filter(|h| !h.is_finished()).count();
    stop.store(true, Ordering::Relaxed);
    let tallies: Vec<Tally> = clients.into_iter().map(|h| h.join().unwrap()).collect();
    let took = flooding.elapsed();
    let grew = rss.finish();
    let after = rss.settle();

    let total: Tally = tallies.iter().fold(Tally::default(), |a, t| Tally {
        sent: a.sent + t.sent,
        runs: a.runs + t.runs,
        malformed: a.malformed + t.malformed,
        too_large: a.too_large + t.too_large,
        version: a.version + t.version,
        other: a.other + t.other,
    });
    let (p50, max) = p50_max(&mut lat);
    // Served afterwards.
    let ps = ps_once(d.socket(), PS_BOUND);
    let again = c.run(&["true"]);
    println!(
        "PROBE abuse.frame-flood: blocked (daemon rss {:+.1} MiB peak, {:+.1} MiB after; ps p50 {:.1} ms max {:.1} ms over {} samples, run true {:.0} ms, during {} frames from {CLIENTS} clients in {:.1} s: {} ps, {} malformed, {} bad version, {} oversized; {still_flooding}/{CLIENTS} clients still flooding at the last sample)",
        mib(grew),
        after as f64 / 1024.0,
        ms(p50),
        ms(max),
        lat.len(),
        ms(run.elapsed),
        total.sent,
        took.as_secs_f64(),
        total.runs,
        total.malformed,
        total.version,
        total.too_large,
    );
    assert_eq!(total.other, 0, "unexpected replies: {total:?}");
    assert!(
        total.too_large >= CLIENTS as u64,
        "oversized frames were sent: {total:?}"
    );
    assert!(
        still_flooding == CLIENTS,
        "the flood ended before the latency samples did ({still_flooding}/{CLIENTS} running)"
    );
    check(
        &d,
        &run,
        run.elapsed < RUN_BOUND,
        "run true during the flood took too long",
    );
    assert!(max < PS_BOUND, "ps took {max:?} during the flood");
    assert!(
        grew < RSS_GROWTH_KIB,
        "agentd's RSS grew by {grew} KiB during the flood (limit {RSS_GROWTH_KIB} KiB)"
    );
    assert!(
        after < signed(RSS_AFTER_KIB),
        "agentd's RSS stayed {after} KiB above its baseline after the flood"
    );
    assert!(ps.is_ok(), "ps after the flood: {ps:?}\n{}", d.log());
    check_code(&d, &again, 0, "agentctl run -- true after the frame flood");
}

/// One flooding client on `socket`: sends frames (at least `min`, at most `max`, until `stop`) on
/// one connection while reading every reply; panics if a reply is missing or of the wrong kind.
fn flood_socket(socket: &Path, min: usize, max: usize, stop: Arc<AtomicBool>) -> Tally {
    let s = UnixStream::connect(socket).unwrap();
    flood_stream(s, min, max, stop)
}

fn flood_stream(s: UnixStream, min: usize, max: usize, stop: Arc<AtomicBool>) -> Tally {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let sent = Arc::new(AtomicU64::new(u64::MAX));
    let writer = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            let mut big = vec![b'{'; MAX_FRAME + 64 * 1024];
            *big.last_mut().unwrap() = b'\n';
            // The total is published before the last frame is written, so the reader never
            // waits for a reply that will not come.
            for n in 0..max {
                let last = n + 1 == max || (n + 1 >= min && stop.load(Ordering::Relaxed));
                if last {
                    sent.store(n as u64 + 1, Ordering::SeqCst);
                }
                w.write_all(flood_frame(n, &big)).unwrap();
                if last {
                    break;
                }
            }
        })
    };
    let mut r = BufReader::new(s);
    let mut tally = Tally::default();
    let mut line = String::new();
    let mut read = 0u64;
    while read != sent.load(Ordering::SeqCst) {
        line.clear();
        let n = r
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("reply {read} of the flood: {e}"));
        assert!(
            n > 0,
            "agentd closed a flooding connection after {read} replies"
        );
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("reply {read} is not JSON ({e}): {line:?}"));
        let want = if read % 1000 == 999 {
            "too_large"
        } else {
            match read % 10 {
                0..=5 => "runs",
                6 | 7 | 9 => "malformed",
                _ => "unsupported_version",
            }
        };
        let got = if v["type"] == "runs" {
            tally.runs += 1;
            "runs"
        } else {
            match v["code"].as_str().unwrap_or("") {
                "malformed" => tally.malformed += 1,
                "too_large" => tally.too_large += 1,
                "unsupported_version" => tally.version += 1,
                _ => tally.other += 1,
            }
            v["code"].as_str().unwrap_or("?")
        };
        assert_eq!(got, want, "reply {read} of the flood: {line}");
        read += 1;
    }
    writer.join().unwrap();
    tally.sent = read;
    tally
}

/// Opens `n` idle connections to agentd and holds them.
fn hold(d: &Daemon, n: usize) -> Vec<UnixStream> {
    (0..n)
        .map(|i| {
            UnixStream::connect(d.socket())
                .unwrap_or_else(|e| panic!("idle connection {i}: {e} (fd limit?)"))
        })
        .collect()
}

/// A process running as `uid` that connects `n` times to the daemon and holds the
/// connections open until it is killed; returns once they are all connected.
fn hold_as(d: &Daemon, uid: u32, n: usize) -> std::process::Child {
    let script = format!(
        "import socket, sys, time\nheld = []\nfor i in range({n}):\n    s = socket.socket(socket.AF_UNIX)\n    \
         s.connect({:?})\n    held.append(s)\nprint('held', flush=True)\ntime.sleep(60)\n",
        d.socket().display().to_string()
    );
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
        ])
        .args(["/usr/bin/python3", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the flooding process");
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    assert_eq!(
        line.trim(),
        "held",
        "the flooding process did not connect {n} times"
    );
    child
}

/// `agentctl run -- true` as `c`, killed after `timeout`: how long it took, or why it failed.
fn run_true(d: &Daemon, c: &Caller, timeout: Duration) -> Result<Duration, String> {
    let mut cmd = c.command(agentd_tests::bins::agentctl());
    cmd.arg("--socket")
        .arg(d.socket())
        .args(["run", "--", "true"]);
    let started = Instant::now();
    let mut bg = Background::spawn(cmd);
    match bg.wait_timeout(timeout) {
        Some((status, _)) if status.success() => Ok(started.elapsed()),
        Some((status, stderr)) => Err(format!("{status}: {stderr}")),
        None => Err(format!("not done within {timeout:?} (killed)")),
    }
}

#[test]
fn abuse_connection_flood_is_bounded_and_recovers() {
    require!(sandbox);
    let (d, c) = start();
    const MAX_CONNECTIONS: usize = 512;
    const FLOOD: usize = 600;
    const STARVE: Duration = Duration::from_secs(3);
    let mut rss = RssSampler::start(&d);

    // One below the daemon's limit: a fresh client is still served.
    let held = hold(&d, MAX_CONNECTIONS - 1);
    std::thread::sleep(Duration::from_millis(200));
    let below_ps = ps_once(d.socket(), PS_BOUND);
    assert!(
        below_ps.is_ok(),
        "ps with {} idle connections held: {below_ps:?}\n{}",
        held.len(),
        d.log()
    );

    drop(held);
    // Another (non-root) user opens more idle connections than the daemon serves in all: it
    // gets its per-user share and is refused the rest; root and the owner are still served.
    let mut flooder = hold_as(&d, OTHER_UID, FLOOD);
    let flood_ps = ps_once(d.socket(), STARVE);
    let flood_run = run_true(&d, &c, STARVE);
    let grew = rss.finish();

    let _ = flooder.kill();
    let _ = flooder.wait();
    let after_ps = ps_once(d.socket(), PS_BOUND);
    let after_run = run_true(&d, &c, RUN_BOUND);
    let after = rss.settle();
    // Memory the allocator keeps after the first flood is reused by a second one, not leaked.
    let before_again = rss_kib(d.pid());
    let again = hold(&d, FLOOD);
    std::thread::sleep(Duration::from_millis(300));
    drop(again);
    std::thread::sleep(Duration::from_millis(200));
    let again_grew = signed(rss_kib(d.pid())) - signed(before_again);
    // Two more floods. What the allocator keeps moves by up to ±4 MiB from one flood to the
    // next (glibc arenas; measured here: +4.4, -3.4, +2.1 MiB), while a leak grows on every
    // flood. So the check is on the three floods together, 1800 connections: under 8 MiB, i.e.
    // less than ~4.5 KiB kept per connection (the single-flood check it replaces, 4 MiB over
    // 600, allowed ~6.8 KiB).
    let before_more = rss_kib(d.pid());
    for _ in 0..2 {
        let more = hold(&d, FLOOD);
        std::thread::sleep(Duration::from_millis(300));
        drop(more);
        std::thread::sleep(Duration::from_millis(200));
    }
    let more_grew = signed(rss_kib(d.pid())) - signed(before_more);
    let verdict = if flood_ps.is_ok() && flood_run.is_ok() {
        "blocked"
    } else {
        "FINDING: starved"
    };
    println!(
        "PROBE abuse.connection-flood: {verdict} (daemon rss {:+.1} MiB peak, {:+.1} MiB after, \
         {:+.1} MiB more after a second flood, {:+.1} MiB after two more; \
         {} idle held: ps {}; {FLOOD} idle from another user (limit {MAX_CONNECTIONS}, 128 per user): ps {}, run true {}; \
         all closed: ps {}, run true {})",
        mib(grew),
        after as f64 / 1024.0,
        again_grew as f64 / 1024.0,
        more_grew as f64 / 1024.0,
        MAX_CONNECTIONS - 1,
        show(&below_ps),
        show(&flood_ps),
        show(&flood_run),
        show(&after_ps),
        show(&after_run),
    );
    assert!(
        grew < RSS_GROWTH_KIB,
        "agentd's RSS grew by {grew} KiB under {FLOOD} connections"
    );
    // The allocator keeps the pages of 512 connection tasks once they are freed (measured:
    // ~21 MiB): bounded by the peak, and not growing with a second flood.
    assert!(
        after < signed(RSS_GROWTH_KIB),
        "agentd's RSS stayed {after} KiB above its baseline after the connection flood"
    );
    // Measured from the first flood's high-water mark: what the allocator hands back after a
    // flood and takes again for the next is not a leak (seen in a CI run under load: +22.1 MiB
    // peak, +15.0 after, then +0.5 and +9.5 back up to +25.0), while leaked memory adds on top
    // of the mark flood after flood.
    let floods_grew = after + again_grew + more_grew - after.max(signed(grew));
    assert!(
        floods_grew < 8 * 1024,
        "three more connection floods (1800 connections) grew agentd {floods_grew} KiB above \
         the first flood's peak: a leak"
    );
    assert!(
        after_ps.is_ok(),
        "ps after the flood: {after_ps:?}\n{}",
        d.log()
    );
    assert!(
        after_run.is_ok(),
        "agentctl run -- true after the connection flood: {after_run:?}\n{}",
        d.log()
    );
    // Once a finding: the accept loop waited for one of 512 slots, so one user's idle
    // connections starved every other client. Now a user gets at most 128 and the rest are
    // refused at once, so others (and root) are still served.
    assert!(
        flood_ps.is_ok() && flood_run.is_ok(),
        "while another user held {FLOOD} idle connections: ps {flood_ps:?}, run {flood_run:?}\n{}",
        d.log()
    );
}

fn show(r: &Result<Duration, String>) -> String {
    match r {
        Ok(t) => format!("{:.1} ms", ms(*t)),
        Err(e) => format!("not served ({e})"),
    }
}

/// Opens (and closes) a workspace file N times, announcing `started` first and `done N` last.
const VOLUME_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[2]), ok = 0;
    printf("started\n");
    fflush(stdout);
    for (long i = 0; i < n; i++) {
        int fd = open(argv[1], O_RDONLY);
        if (fd >= 0) { ok++; close(fd); }
    }
    printf("done %ld\n", ok);
    return ok == n ? 0 : 1;
}
"#;

#[test]
fn abuse_audit_volume_is_recorded_verified_and_bounded() {
    require!(sandbox);
    let (d, c) = start();
    const OPENS: u64 = 20_000;
    let src = d.dir().join("volume.c");
    std::fs::write(&src, VOLUME_C).unwrap();
    let exe = c.workspace.join("volume");
    let out = agentd_tests::command::run(
        {
            let mut cmd = Command::new("cc");
            cmd.args(["-O2", "-o"]).arg(&exe).arg(&src);
            cmd
        },
        b"",
        Duration::from_secs(60),
    );
    check(&d, &out, out.success(), "cc volume.c");
    agentd_tests::tempdir::chown(&exe, c.uid, c.gid);
    write_owned(&c.workspace.join("v.txt"), b"v\n", 0o644, c.uid, c.gid);
    let baseline_run = run_true(&d, &c, RUN_BOUND);
    assert!(baseline_run.is_ok(), "run true before: {baseline_run:?}");

    let mut rss = RssSampler::start(&d);
    let mut cmd = c.command(agentd_tests::bins::agentctl());
    cmd.arg("--socket").arg(d.socket()).args([
        "run",
        "--",
        "./volume",
        "v.txt",
        &OPENS.to_string(),
    ]);
    let started = Instant::now();
    let mut bg = Background::spawn(cmd);
    if let Err(e) = bg.wait_for_line("started", Duration::from_secs(30)) {
        panic!("the volume run did not start: {e}\n{}", d.log());
    }
    // Meanwhile: a few runs of `true`.
    let mut during = Vec::new();
    while during.len() < 5 && bg.try_status().is_none() {
        let t = run_true(&d, &c, RUN_BOUND);
        during.push(t.unwrap_or_else(|e| panic!("run true during the volume run: {e}")));
        std::thread::sleep(Duration::from_millis(200));
    }
    let end = bg.wait_timeout(Duration::from_secs(60));
    let took = started.elapsed();
    let grew = rss.finish();
    let (status, stderr) = end.unwrap_or_else(|| panic!("the volume run did not end\n{}", d.log()));
    assert!(
        status.success(),
        "the volume run: {status} {stderr}\n{}",
        d.log()
    );

    // The run's log: the newest run dir with the most lines.
    let runs = d.state_dir().join("runs");
    let (run, text) = std::fs::read_dir(&runs)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| {
            let text = std::fs::read_to_string(e.path().join("audit.jsonl")).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .max_by_key(|(_, t)| t.len())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = text;
    while !text.lines().last().unwrap_or("").contains("run_end") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        text = std::fs::read_to_string(runs.join(&run).join("audit.jsonl")).unwrap_or_default();
    }
    let records = text.lines().count() as u64;
    let opens = text
        .lines()
        .filter(|l| l.contains("\"open\"") && l.contains("/v.txt"))
        .count() as u64;
    let verify_started = Instant::now();
    let verify = c.agentctl(&["audit", &run, "--verify"]);
    let verify_took = verify_started.elapsed();
    let after = rss.settle();
    let mut during_sorted = during.clone();
    let (p50, max) = p50_max(&mut during_sorted);
    let base = baseline_run.unwrap();
    println!(
        "PROBE abuse.audit-volume: blocked (daemon rss {:+.1} MiB peak, {:+.1} MiB after; \
         {records} records ({opens} opens of v.txt) in {:.1} s = {:.0} records/s, log {:.1} MiB, \
         verified in {:.1} s; run true {:.0} ms before, p50 {:.0} ms max {:.0} ms over {} runs during)",
        mib(grew),
        after as f64 / 1024.0,
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64(),
        text.len() as f64 / (1024.0 * 1024.0),
        verify_took.as_secs_f64(),
        ms(base),
        ms(p50),
        ms(max),
        during.len(),
    );
    check_code(&d, &verify, 0, "audit --verify of the volume run");
    assert!(
        text.lines().last().unwrap_or("").contains("run_end"),
        "the volume log has no run_end"
    );
    assert!(opens >= OPENS, "only {opens} of {OPENS} opens were audited");
    assert!(
        !during.is_empty(),
        "the volume run ended before another run could be timed"
    );
    assert!(
        max < RUN_BOUND,
        "run true took {max:?} during the volume run"
    );
    assert!(
        max < base + Duration::from_secs(2),
        "run true took {max:?} during the volume run, {base:?} before"
    );
    assert!(
        grew < RSS_GROWTH_KIB,
        "agentd's RSS grew by {grew} KiB during the volume run (limit {RSS_GROWTH_KIB} KiB)"
    );
    assert!(
        after < signed(RSS_AFTER_KIB),
        "agentd's RSS stayed {after} KiB above its baseline after the volume run"
    );
}
