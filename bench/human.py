#!/usr/bin/env python3
"""Human-in-the-loop latencies of agentd (issue 4), as root, on this machine.

  bench/human.py [--runs N] [--procs P]

1. Pause latency: a run with P processes (default 500) that keep working; a pause request is
   sent, and the clock stops when the cgroup freezer reports every process frozen
   (`cgroup.events: frozen 1`, or the v1 freezer's FROZEN). Measured twice per sample: from the
   moment the request frame is written on an open control socket (the issue's definition), and
   from the moment `agentctl pause RUN` is started (what a person at a terminal sees).
2. Approval round trip: a run whose program opens N files that an `ask` rule holds, one after
   the other; for each, the pending request is found, `agentctl approve ID` is started, and the
   clock stops when the program's open returns (it prints CLOCK_REALTIME right after open).

The approval figure includes starting `agentctl approve`. Prints min / median / p90 in ms.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "target", "release")
UID = 65534

ASK_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  char name[64];
  for (int i = 0; i < n; i++) {
    snprintf(name, sizeof name, "ask%d.txt", i);
    int fd = open(name, O_RDONLY);
    struct timespec t; clock_gettime(CLOCK_REALTIME, &t);
    printf("%d %lld %d\n", i, (long long)t.tv_sec * 1000000000LL + t.tv_nsec, fd >= 0);
    fflush(stdout);
    if (fd >= 0) close(fd);
  }
  return 0;
}
"""


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def report(label, samples):
    print(f"{label:<34} n={len(samples):<3} min {min(samples):7.2f}  median {statistics.median(samples):7.2f}  "
          f"p90 {pct(samples, 90):7.2f} ms")


class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="agentd-bench-human.")
        os.chmod(self.tmp, 0o755)
        self.ws = os.path.join(self.tmp, "work")
        self.home = os.path.join(self.tmp, "home")
        for d in (self.ws, self.home):
            os.makedirs(d)
            os.chown(d, UID, UID)
        self.sock = os.path.join(self.tmp, "agentd.sock")
        self.parent = f"agentd-bench-{os.getpid()}"
        r, w = os.pipe()
        self.log = open(os.path.join(self.tmp, "agentd.log"), "w")
        self.agentd = subprocess.Popen(
            [os.path.join(BIN, "agentd"), "--socket", self.sock, "--state-dir", os.path.join(self.tmp, "state"),
             "--policy-dir", os.path.join(REPO, "policies"), "--cgroup-parent", self.parent,
             "--ready-fd", str(w), "--log-level", "warn"],
            pass_fds=(w,), stdout=self.log, stderr=self.log)
        os.close(w)
        with os.fdopen(r) as ready:
            if ready.readline().strip() != "ready":
                sys.exit("agentd did not start: " + open(self.log.name).read())

    def ctl(self, *args, **kw):
        cmd = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", "env", "-i",
               "PATH=/usr/local/bin:/usr/bin:/bin", f"HOME={self.home}", "USER=nobody",
               os.path.join(BIN, "agentctl"), "--socket", self.sock, *args]
        return subprocess.Popen(cmd, cwd=self.ws, **kw)

    def run_json(self, *args):
        p = self.ctl(*args, stdout=subprocess.PIPE)
        out, _ = p.communicate(timeout=30)
        return json.loads(out)

    def policy(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def close(self):
        self.agentd.terminate()
        self.agentd.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def frozen(run):
    for path in (f"/sys/fs/cgroup/unified/{run['parent']}/{run['id']}/cgroup.events",
                 f"/sys/fs/cgroup/{run['parent']}/runs/{run['id']}/cgroup.events"):
        try:
            with open(path) as f:
                return "frozen 1" in f.read()
        except OSError:
            pass
    with open(f"/sys/fs/cgroup/freezer/{run['parent']}/{run['id']}/freezer.state") as f:
        return f.read().strip() == "FROZEN"


def wait_for(cond, timeout=30.0, step=0.0002):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


def bench_pause(env, runs, procs):
    pol = env.policy("pause.toml", f'version = 1\nextends = ["default"]\n[resources]\npids = {procs * 2 + 64}\n')
    script = f"for i in $(seq {procs}); do (while :; do :; sleep 0.05; done) & done; echo started; wait"
    run = env.ctl("run", "--policy", pol, "--", "sh", "-c", script, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert run.stdout.readline().strip() == b"started"
    ps = [r for r in env.run_json("ps", "--json") if r["state"] == "running"]
    info = {"id": ps[-1]["id"], "parent": env.parent}
    wait_for(lambda: len(env.run_json("inspect", info["id"], "--json")["detail"]["pids"]) > procs, 30, 0.05)
    with_cli, on_socket = [], []
    for _ in range(runs):
        # (a) a person typing `agentctl pause RUN`: includes starting agentctl.
        t0 = time.monotonic()
        p = env.ctl("pause", info["id"])
        if not wait_for(lambda: frozen(info), 10):
            sys.exit("the run did not freeze")
        with_cli.append((time.monotonic() - t0) * 1000)
        p.wait()
        env.ctl("resume", info["id"]).wait()
        wait_for(lambda: not frozen(info), 10)
        time.sleep(0.05)
        # (b) the request itself: the clock starts when the frame is written to the socket.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(env.sock)
        frame = json.dumps({"v": 1, "req": {"type": "pause", "run": info["id"]}}).encode() + b"\n"
        t0 = time.monotonic()
        s.sendall(frame)
        if not wait_for(lambda: frozen(info), 10):
            sys.exit("the run did not freeze")
        on_socket.append((time.monotonic() - t0) * 1000)
        s.recv(4096)
        s.close()
        env.ctl("resume", info["id"]).wait()
        wait_for(lambda: not frozen(info), 10)
        time.sleep(0.05)
    env.ctl("kill", info["id"]).wait()
    run.wait(timeout=30)
    report(f"pause, {procs} procs (request sent)", on_socket)
    report(f"pause, {procs} procs (agentctl started)", with_cli)


def bench_approve(env, runs):
    src = os.path.join(env.tmp, "ask.c")
    exe = os.path.join(env.ws, "ask")
    with open(src, "w") as f:
        f.write(ASK_C)
    subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
    os.chown(exe, UID, UID)
    for i in range(runs):
        p = os.path.join(env.ws, f"ask{i}.txt")
        with open(p, "w") as f:
            f.write("x")
        os.chown(p, UID, UID)
    pol = env.policy("ask.toml", 'version = 1\nextends = ["default"]\n[approval]\ntimeout = "60s"\n'
                                 '[[rule]]\nid = "ask"\non = "open"\npath = "${WORKSPACE}/ask*.txt"\n'
                                 'action = "ask"\nreason = "bench"\n')
    run = env.ctl("run", "--policy", pol, "--", "./ask", str(runs), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    samples = []
    for i in range(runs):
        pending = []
        wait_for(lambda: bool(pending.extend(env.run_json("pending", "--json")) or pending), 30, 0.01)
        if not pending:
            sys.exit("no pending request appeared")
        t0 = time.time_ns()
        env.ctl("approve", pending[0]["id"]).wait()
        line = run.stdout.readline().split()
        if len(line) != 3 or line[2] != b"1":
            sys.exit(f"the held open failed: {line}")
        samples.append((int(line[1]) - t0) / 1e6)
    run.wait(timeout=30)
    report("approval round trip", samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--procs", type=int, default=500)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: agentd needs it")
    subprocess.run(["cargo", "build", "--workspace", "--bins", "--release", "-q"], cwd=REPO, check=True)
    env = Env()
    try:
        bench_pause(env, a.runs, a.procs)
        bench_approve(env, a.runs)
    finally:
        env.close()


if __name__ == "__main__":
    main()
