#!/usr/bin/env bash
# Cost of full mediation: each workload bare, under bwrap and under agentd (reference monitor
# on every exec/open/connect, one audit record per call), as ratios to bare; medians.
#
#   bench/mediation.sh [--quick] [--runs N] [--rev REV]      (as root; agentd needs it)
#
# By default the working tree is built (cargo build --release --bins). --rev REV builds a
# committed revision instead, from `git archive REV` in /var/tmp/agentd-bench-src/REV (kept,
# with its target dir, for the next run); use it while the working tree is mid-edit.
#
# Workloads (built once in a temp dir; see docs/performance.md):
#   (a) openclose  N open+close, alternating a workspace file and /etc/hostname   (100k)
#   (a′) the same with the other CPUs kept busy (nice-19 spinners): informational
#   (b) forkexec   N fork + execve(/bin/true) + waitpid                           (5k)
#   (c) connect    N socket+connect+close to an in-process 127.0.0.1 listener    (5k)
#   (d) git        git status + git log + git grep in a generated 20k-file repo
#   (e) cargo      cold `cargo build --offline` of a small crate, 13 vendored deps
#   (f) python     `python3 -m unittest`: 300 tests touching files, 130 subprocesses
# (a)-(c) report the in-process loop time per operation (the launch is not in it; see
# bench/run-latency.sh for that); (d)-(f) report the wall time of the whole command, launch
# included. Every workload runs as `nobody` in its own workspace, except (e), which runs as
# root in all three variants: the Rust toolchain lives under /root (mode 700).
#
# Variants:  bare    the command itself
#            bwrap   bwrap --dev-bind / / --unshare-all --die-with-parent CMD
#            agentd  agentctl run --policy bench/policy.toml -- CMD   (cargo: policy-cargo.toml)
# Each sample runs the three variants in turn (bare, bwrap, agentd), after one warm-up round.
#
# Also printed: the seccomp-notify floor (shared/bench/notify-floor.c, modes 0/2/4, SYNC=1)
# beside agentd's added µs per mediated call, the emulated-open floor when the monitor does
# some work first (bench/workloads/notify-work.c, idle and busy), and agentd's VmRSS with 20
# idle runs.
# --quick: smaller workloads and 3 samples, for a smoke check (< 3 minutes).
set -euo pipefail

quick=0
runs=
rev=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --runs) runs=$2; shift ;;
    --rev) rev=$2; shift ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$quick" = 1 ]; then
  runs=${runs:-3}; n_open=20000; n_fork=1000; n_conn=1000; n_files=5000; floor_n=1
else
  runs=${runs:-5}; n_open=100000; n_fork=5000; n_conn=5000; n_files=20000; floor_n=3
fi
idle_runs=20

repo=$(cd "$(dirname "$0")/.." && pwd)
wl_src=$repo/bench/workloads
floor_src=${NOTIFY_FLOOR_SRC:-$repo/../shared/bench/notify-floor.c}
[ -f "$floor_src" ] || floor_src=/work/shared/bench/notify-floor.c
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "run as root: agentd needs it" >&2; exit 1; }
command -v bwrap >/dev/null || { echo "bwrap not installed (apt-get install bubblewrap)" >&2; exit 1; }
py=/usr/bin/python3   # the system Python: pyenv's (under /root, mode 700) is not readable by nobody

t_start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "$rev" ]; then
  commit=$(cd "$repo" && git rev-parse --verify "$rev^{commit}")
  src=/var/tmp/agentd-bench-src/$commit
  if [ ! -f "$src/Cargo.toml" ]; then
    mkdir -p "$src" && (cd "$repo" && git archive "$commit") | tar -x -C "$src"
  fi
  commit_label=$(cd "$repo" && git rev-parse --short "$commit")
else
  src=$repo
  commit_label="$(cd "$repo" && git rev-parse --short HEAD)$(cd "$repo" && git diff --quiet HEAD -- 2>/dev/null || echo ' + uncommitted changes')"
fi
echo "building release binaries of $commit_label…"
(cd "$src" && cargo build --release --bins -q)
bin=$src/target/release
cargo_bin=$(rustup which cargo)
rustc_bin=$(rustup which rustc)

uid=$(id -u nobody); gid=$(id -g nobody)
tmp=$(mktemp -d /tmp/agentd-mediation.XXXXXX)
chmod 755 "$tmp"
agentd_pid=
idle_pids=()
cleanup() {
  local p
  for p in "${idle_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$agentd_pid" ]; then kill "$agentd_pid" 2>/dev/null || true; wait "$agentd_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# ---------------------------------------------------------------------------- workloads
echo "preparing workloads in $tmp…"
mkdir -p "$tmp/bin" "$tmp/ws/micro/bin" "$tmp/ws/repo" "$tmp/ws/py" "$tmp/ws/crate"
# in the workspace: under agentd, /tmp is private and only the workspace is visible of it
for w in openclose forkexec connect; do
  gcc -O2 -Wall -pthread -o "$tmp/ws/micro/bin/$w" "$wl_src/$w.c"
done
gcc -O2 -o "$tmp/bin/notify-floor" "$floor_src" 2>/dev/null
gcc -O2 -Wall -o "$tmp/bin/notify-work" "$wl_src/notify-work.c"
echo "a workspace file" >"$tmp/ws/micro/file.txt"

# (d) a git repo of $n_files small files, three commits, a few uncommitted changes
"$py" "$wl_src/gen-repo.py" "$tmp/ws/repo" "$n_files"
chown -R "$uid:$gid" "$tmp/ws/micro" "$tmp/ws/repo" "$tmp/ws/py"
(
  cd "$tmp/ws/repo"
  g() { setpriv --reuid="$uid" --regid="$gid" --clear-groups env -i PATH=/usr/local/bin:/usr/bin:/bin \
          HOME="$tmp/ws/repo" git -c user.name=bench -c user.email=bench@localhost "$@"; }
  g init -q -b main .
  g config gc.auto 0
  g add -A && g commit -q -m "import"
  for f in src/d000[0-4]/*.txt; do echo "changed" >>"$f"; done
  g add -A && g commit -q -m "change 500 files"
  "$py" - <<'EOF'
import os
for i in range(100):
    with open("src/new%03d.txt" % i, "w") as f:
        f.write("new file %d with a needle\n" % i)
EOF
  chown "$uid:$gid" src/new*.txt
  g add -A && g commit -q -m "add 100 files"
  for f in src/d0010/*.txt; do echo "dirty" >>"$f"; done
) >/dev/null

# (f) a unittest suite: 10 modules x 30 tests
"$py" "$wl_src/gen-pysuite.py" "$tmp/ws/py" 10 30
chown -R "$uid:$gid" "$tmp/ws/py"

# (e) a small crate with vendored dependencies (from the local cargo cache, offline); its
# CARGO_HOME is inside the workspace, so nothing of ~/.cargo is used by the build.
mkdir -p "$tmp/ws/crate/src" "$tmp/ws/crate/.cargo"
cat >"$tmp/ws/crate/Cargo.toml" <<'EOF'
[package]
name = "benchcrate"
version = "0.1.0"
edition = "2021"

[dependencies]
itoa = "1"
memchr = "2"
cfg-if = "1"
libc = "0.2"
serde_json = "1"
EOF
cat >"$tmp/ws/crate/src/main.rs" <<'EOF'
fn main() {
    let mut buf = itoa::Buffer::new();
    let s = buf.format(12345u64);
    let n = memchr::memchr_iter(b'3', s.as_bytes()).count();
    cfg_if::cfg_if! {
        if #[cfg(unix)] { let pid = unsafe { libc::getpid() }; } else { let pid = 1; }
    }
    let v = serde_json::json!({ "s": s, "n": n, "pid": pid > 0 });
    println!("{v}");
}
EOF
(cd "$tmp/ws/crate" && "$cargo_bin" vendor --offline -q vendor >/dev/null) || {
  echo "cannot vendor the crate's dependencies offline (are they in ~/.cargo/registry?)" >&2; exit 1; }
printf '[source.crates-io]\nreplace-with = "vendored-sources"\n\n[source.vendored-sources]\ndirectory = "vendor"\n' \
  >"$tmp/ws/crate/.cargo/config.toml"
chmod -R a+rX "$tmp/ws"

# ---------------------------------------------------------------------------- agentd
mkfifo "$tmp/ready"
"$bin/agentd" --socket "$tmp/agentd.sock" --state-dir "$tmp/state" \
  --policy-dir "$src/policies" --cgroup-parent "agentd-bench-$$" --ready-fd 3 --log-level info 3>"$tmp/ready" 2>"$tmp/agentd.log" &
agentd_pid=$!
if ! read -r -t 30 line <"$tmp/ready" || [ "$line" != ready ]; then
  echo "agentd did not start; its log:" >&2; cat "$tmp/agentd.log" >&2; exit 1
fi

# launch WHO VARIANT DIR CMD…: CMD in workspace DIR, as WHO (user = nobody, or root), under
# VARIANT, with a plain environment; stdout goes to our stdout, stderr to $tmp/last.err.
launch() {
  local who=$1 variant=$2 dir=$3; shift 3
  local pre=() policy=$repo/bench/policy.toml
  [ "$who" = user ] || policy=$repo/bench/policy-cargo.toml
  case $variant in
    bare) ;;
    bwrap) pre=(bwrap --dev-bind / / --unshare-all --die-with-parent) ;;
    agentd) pre=("$bin/agentctl" run --policy "$policy" --) ;;
  esac
  local su=() user=root
  if [ "$who" = user ]; then su=(setpriv --reuid="$uid" --regid="$gid" --clear-groups); user=nobody; fi
  (cd "$dir" && exec "${su[@]}" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$dir" USER=$user \
     LANG=C.UTF-8 AGENTD_SOCKET="$tmp/agentd.sock" "${pre[@]}" "$@") </dev/null 2>"$tmp/last.err"
}

failed() {
  echo "$1 ($2) failed:" >&2; tail -n 20 "$tmp/last.err" >&2
  echo "--- end of agentd log ---" >&2; tail -n 20 "$tmp/agentd.log" >&2
  exit 1
}

# sample KIND WHO VARIANT DIR CMD…: one measurement. KIND=op: the command prints
# "ns_per_op X"; the sample is X/1000 (µs per op). KIND=wall: the sample is the wall time in
# seconds. A "prep" function, if set, runs before (not timed).
prep=
sample() {
  local kind=$1 who=$2 variant=$3 dir=$4; shift 4
  local out t0 t1
  [ -z "$prep" ] || $prep
  if [ "$kind" = op ]; then
    out=$(launch "$who" "$variant" "$dir" "$@") || failed "$*" "$variant"
    grep -q '^ns_per_op' <<<"$out" || failed "$*" "$variant"
    awk '/^ns_per_op/ { printf "%.3f\n", $2 / 1000 }' <<<"$out"
  else
    t0=$(date +%s%N)
    launch "$who" "$variant" "$dir" "$@" >/dev/null || failed "$*" "$variant"
    t1=$(date +%s%N)
    awk -v d=$((t1 - t0)) 'BEGIN { printf "%.4f\n", d / 1e9 }'
  fi
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# measure NAME KIND WHO DIR CMD…: one warm-up round, then $runs rounds of bare, bwrap, agentd.
# Sets med_bare, med_bwrap, med_agentd and appends to $tmp/samples.
measure() {
  local name=$1 kind=$2 who=$3 dir=$4; shift 4
  local v r
  for v in bare bwrap agentd; do sample "$kind" "$who" "$v" "$dir" "$@" >/dev/null; done
  : >"$tmp/s.bare"; : >"$tmp/s.bwrap"; : >"$tmp/s.agentd"
  for ((r = 0; r < runs; r++)); do
    for v in bare bwrap agentd; do sample "$kind" "$who" "$v" "$dir" "$@" >>"$tmp/s.$v"; done
  done
  med_bare=$(median <"$tmp/s.bare"); med_bwrap=$(median <"$tmp/s.bwrap"); med_agentd=$(median <"$tmp/s.agentd")
  for v in bare bwrap agentd; do echo "$name $v $(tr '\n' ' ' <"$tmp/s.$v")" >>"$tmp/samples"; done
}

# newest_audit_records: records in the audit log of the most recent run.
newest_audit_records() {
  local d
  d=$(ls -td "$tmp"/state/runs/*/ 2>/dev/null | head -n 1)
  if [ -n "$d" ] && [ -f "$d/audit.jsonl" ]; then wc -l <"$d/audit.jsonl"; else echo 0; fi
}

rows=()
launch_notes=()
# launch_cost NAME WHO DIR: median wall time of `true` bare and under agentd in workspace DIR
# (agentd's launch builds the view and expands the hide globs over the workspace).
launch_cost() {
  local name=$1 who=$2 dir=$3 r b a
  : >"$tmp/l.bare"; : >"$tmp/l.agentd"
  for ((r = 0; r < 5; r++)); do
    sample wall "$who" bare "$dir" /bin/true >>"$tmp/l.bare"
    sample wall "$who" agentd "$dir" /bin/true >>"$tmp/l.agentd"
  done
  b=$(median <"$tmp/l.bare"); a=$(median <"$tmp/l.agentd")
  launch_notes+=("$(awk -v n="$name" -v b="$b" -v a="$a" -v wb="$med_bare" -v wa="$med_agentd" 'BEGIN {
    printf "%-8s agentd − bare = %.3f s, of which launching a run in that workspace (`true`) %.3f s; without it agentd/bare = %.2f×", n, wa - wb, a - b, (wa - (a - b)) / wb }')")
}
# row LABEL UNIT TARGET: append a table row from the medians.
row() {
  local label=$1 unit=$2 target=$3
  rows+=("$(awk -v l="$label" -v u="$unit" -v t="$target" -v b="$med_bare" -v w="$med_bwrap" -v a="$med_agentd" 'BEGIN {
    rw = w / b; ra = a / b; ok = (ra <= t) ? "yes" : "NO"
    printf "| %-42s | %10.3f %-2s | %10.3f %-2s (%5.2f×) | %10.3f %-2s (%5.2f×) | ≤ %.1f× | %-3s |", l, b, u, w, u, rw, a, u, ra, t, ok
  }')")
}

echo "measuring: $runs samples per variant after one warm-up round (takes a while)…"
echo "  (a) open+close ×$n_open"
measure openclose op user "$tmp/ws/micro" "$tmp/ws/micro/bin/openclose" "$n_open" "$tmp/ws/micro/file.txt"
row "(a) open+close ×$n_open (µs/op)" µs 6
open_bare=$med_bare; open_agentd=$med_agentd
open_records=$(newest_audit_records)

# (a′) the same with the other CPUs kept busy by a nice-19 spinner each: on these VMs a
# wake-up sent to an idle vCPU is slow (tens of µs) and the monitor's ADDFD wake-ups go to it
# when it is idle; with it busy, the agent and the monitor stay on one CPU. Informational.
echo "  (a′) open+close ×$n_open, other CPUs busy (nice 19 spinners)"
spinners=()
for ((i = 1; i < $(nproc); i++)); do nice -n 19 sh -c 'while :; do :; done' & spinners+=($!); done
measure openclose_busy op user "$tmp/ws/micro" "$tmp/ws/micro/bin/openclose" "$n_open" "$tmp/ws/micro/file.txt"
kill "${spinners[@]}" 2>/dev/null; wait "${spinners[@]}" 2>/dev/null || true
row "(a′) the same, other CPUs busy (µs/op)" µs 6
busy_bare=$med_bare; busy_agentd=$med_agentd

echo "  (b) fork+exec ×$n_fork"
measure forkexec op user "$tmp/ws/micro" "$tmp/ws/micro/bin/forkexec" "$n_fork"
row "(b) fork+exec /bin/true ×$n_fork (µs/op)" µs 1.5
fork_bare=$med_bare; fork_agentd=$med_agentd
fork_records=$(newest_audit_records)

echo "  (c) connect ×$n_conn"
measure connect op user "$tmp/ws/micro" "$tmp/ws/micro/bin/connect" "$n_conn"
row "(c) TCP connect ×$n_conn (µs/op)" µs 3
conn_bare=$med_bare; conn_agentd=$med_agentd
conn_records=$(newest_audit_records)

echo "  (d) git status + log + grep, $n_files files"
measure git wall user "$tmp/ws/repo" /bin/sh -c \
  'git status --porcelain >/dev/null && git log --oneline >/dev/null && git grep -c needle >/dev/null'
row "(d) git status+log+grep, $n_files files (s)" s 1.3
git_records=$(newest_audit_records)
launch_cost "(d) git" user "$tmp/ws/repo"

echo "  (e) cold cargo build (as root)"
crate_clean() { rm -rf "$tmp/ws/crate/target" "$tmp/ws/crate/.cargo-home"; }
prep=crate_clean
measure cargo wall root "$tmp/ws/crate" /usr/bin/env CARGO_HOME="$tmp/ws/crate/.cargo-home" \
  RUSTC="$rustc_bin" "$cargo_bin" build --offline -q
prep=
row "(e) cold cargo build, 13 deps (s)" s 1.3
cargo_records=$(newest_audit_records)
launch_cost "(e) cargo" root "$tmp/ws/crate"

echo "  (f) python unittest, 300 tests"
measure python wall user "$tmp/ws/py" "$py" -m unittest discover -s tests -t . -q
row "(f) python3 -m unittest, 300 tests (s)" s 1.3
py_records=$(newest_audit_records)
launch_cost "(f) python" user "$tmp/ws/py"

# ---------------------------------------------------------------------------- floor
echo "  notify floor (shared/bench/notify-floor.c, 100k opens, SYNC=1)…"
floor() {  # floor MODE: median µs per open+close over $floor_n runs
  local i
  for ((i = 0; i < floor_n; i++)); do
    SYNC=1 "$tmp/bin/notify-floor" "$1" 2>/dev/null | awk '{ print $(NF - 1) }'
  done | median
}
floor0=$(floor 0); floor2=$(floor 2); floor4=$(floor 4)
# The emulated-open floor with the monitor doing WORK open+close pairs first (3 ≈ the syscalls
# agentd's fast path makes beyond the floor's own open: the path read, ID_VALID, the O_PATH
# resolve and fstat, F_SETFL, a close), idle and with the other CPUs busy.
echo "  notify floor with monitor work (bench/workloads/notify-work.c)…"
work_floor() {  # work_floor WORK: median µs per open+close over $floor_n runs
  local i
  for ((i = 0; i < floor_n; i++)); do
    "$tmp/bin/notify-work" "$1" | awk '{ print $(NF - 1) }'
  done | median
}
work0=$(work_floor 0); work3=$(work_floor 3)
spinners=()
for ((i = 1; i < $(nproc); i++)); do nice -n 19 sh -c 'while :; do :; done' & spinners+=($!); done
work0_busy=$(work_floor 0); work3_busy=$(work_floor 3)
kill "${spinners[@]}" 2>/dev/null; wait "${spinners[@]}" 2>/dev/null || true

# ---------------------------------------------------------------------------- memory
echo "  agentd RSS with $idle_runs idle runs…"
rss_of() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
rss_idle=$(rss_of "$agentd_pid")
for ((i = 0; i < idle_runs; i++)); do
  launch user agentd "$tmp/ws/micro" sleep 60 >/dev/null 2>&1 &
  idle_pids+=($!)
done
running=0
for ((i = 0; i < 300; i++)); do
  running=$("$bin/agentctl" --socket "$tmp/agentd.sock" ps --json 2>/dev/null |
    "$py" -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r.get("pid") and r.get("exit") is None))' 2>/dev/null || echo 0)
  [ "$running" -ge "$idle_runs" ] && break
  sleep 0.1
done
sleep 1
rss_20=$(rss_of "$agentd_pid")
threads_20=$(awk '/^Threads/ { print $2 }' "/proc/$agentd_pid/status")
"$bin/agentctl" --socket "$tmp/agentd.sock" ps --json |
  "$py" -c 'import json,sys; [print(r["id"]) for r in json.load(sys.stdin) if r.get("exit") is None]' |
  while read -r id; do "$bin/agentctl" --socket "$tmp/agentd.sock" kill "$id" >/dev/null 2>&1 || true; done
for p in "${idle_pids[@]}"; do wait "$p" 2>/dev/null || true; done
idle_pids=()

# ---------------------------------------------------------------------------- report
t_end=$(date +%s)
echo
echo "agentd mediation benchmark — $(date -u +%Y-%m-%d), commit $commit_label, $(uname -r), $(nproc) CPUs"
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians of $runs samples each; (a)-(c) in-process loop time per op, (d)-(f) wall time; ratios to bare"
echo
echo "| workload                                   |          bare |                  bwrap (×) |                 agentd (×) | target | ok? |"
echo "|--------------------------------------------|--------------:|---------------------------:|---------------------------:|-------:|-----|"
printf '%s\n' "${rows[@]}"
echo
awk -v f0="$floor0" -v f2="$floor2" -v f4="$floor4" -v ob="$open_bare" -v oa="$open_agentd" -v xb="$busy_bare" -v xa="$busy_agentd" \
    -v w0="$work0" -v w3="$work3" -v w0b="$work0_busy" -v w3b="$work3_busy" \
    -v fb="$fork_bare" -v fa="$fork_agentd" -v cb="$conn_bare" -v ca="$conn_agentd" \
    -v orc="$open_records" -v frc="$fork_records" -v crc="$conn_records" \
    -v no="$n_open" -v nf="$n_fork" -v nc="$n_conn" 'BEGIN {
  printf "notify floor (notify-floor.c, SYNC=1, µs per open+close): bare %.2f, CONTINUE %.2f (+%.2f), ADDFD+SEND %.2f (+%.2f)\n", f0, f2, f2 - f0, f4, f4 - f0
  printf "agentd added µs per mediated open (a):          %6.2f   (floor for an emulated open: +%.2f, for CONTINUE: +%.2f)\n", oa - ob, f4 - f0, f2 - f0
  printf "agentd added µs per mediated open (a′), other CPUs busy: %6.2f\n", xa - xb
  printf "emulated-open floor with monitor work (notify-work.c, µs per open+close, bare %.2f):\n", f0
  printf "  other CPUs idle: work 0 %.2f (+%.2f), work 3 %.2f (+%.2f)   agentd (a): +%.2f = %.2f× the work-3 floor\n", w0, w0 - f0, w3, w3 - f0, oa - ob, (oa - ob) / (w3 - f0)
  printf "  other CPUs busy: work 0 %.2f (+%.2f), work 3 %.2f (+%.2f)   agentd (a′): +%.2f = %.2f× the work-3 floor\n", w0b, w0b - f0, w3b, w3b - f0, xa - xb, (xa - xb) / (w3b - f0)
  mpf = frc / nf
  printf "agentd added µs per fork+exec (b):              %6.2f   (%.1f audit records per fork+exec: the exec and the loader'"'"'s opens; %.2f µs per record)\n", fa - fb, mpf, (mpf > 0) ? (fa - fb) / mpf : 0
  printf "agentd added µs per connect (c):                %6.2f   (%.2f audit records per connect)\n", ca - cb, crc / nc
  printf "audit records in the last agentd sample: (a) %d for %d opens\n", orc, no
}'
echo "audit records in the last agentd sample: (d) $git_records, (e) $cargo_records, (f) $py_records"
printf '%s\n' "${launch_notes[@]}"
echo
awk -v i="$rss_idle" -v r="$rss_20" -v n="$idle_runs" -v running="$running" -v th="$threads_20" 'BEGIN {
  ok = (r / 1024 <= 50) ? "yes" : "NO"
  printf "agentd VmRSS: %.1f MiB with no runs after the benchmark, %.1f MiB with %d idle runs (%d seen running, %d threads)  target ≤ 50 MiB: %s\n", i / 1024, r / 1024, n, running, th, ok
}'
echo "total time: $((t_end - t_start)) s"
echo
echo "raw samples (name variant values…):"
cat "$tmp/samples"
