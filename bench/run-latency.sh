#!/usr/bin/env bash
# Start-up latency of a confined run: `agentctl run -- true` against `bwrap … true` and a bare
# `true`, each run N times (after 3 warm-ups) as an unprivileged user (nobody) from a temp
# workspace. Prints min / median / p90 in milliseconds. Needs root (agentd does).
#
#   bench/run-latency.sh [N]        (default N=50; or BENCH_N=…)
#
# Every sample includes the same setpriv + fork/exec of the measured command, so the bare `true`
# line is the floor the other two are compared to.
set -euo pipefail

n=${1:-${BENCH_N:-50}}
warmup=3
repo=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "run as root: agentd needs it" >&2; exit 1; }

echo "building release binaries…"
(cd "$repo" && cargo build --workspace --bins --release -q)
bin=$repo/target/release

uid=$(id -u nobody 2>/dev/null || echo 65534)
gid=$(id -g nobody 2>/dev/null || echo 65534)
tmp=$(mktemp -d /tmp/agentd-bench.XXXXXX)
chmod 755 "$tmp"
agentd_pid=
cleanup() {
  if [ -n "$agentd_pid" ]; then kill "$agentd_pid" 2>/dev/null || true; wait "$agentd_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ws=$tmp/work
mkdir -p "$ws" "$tmp/home"
chown "$uid:$gid" "$ws" "$tmp/home"

mkfifo "$tmp/ready"
"$bin/agentd" --socket "$tmp/agentd.sock" --state-dir "$tmp/state" \
  --policy-dir "$repo/policies" --cgroup-parent "agentd-bench-$$" --ready-fd 3 --log-level warn \
  3>"$tmp/ready" 2>"$tmp/agentd.log" &
agentd_pid=$!
if ! read -r -t 30 line <"$tmp/ready" || [ "$line" != ready ]; then
  echo "agentd did not start; its log:" >&2; cat "$tmp/agentd.log" >&2; exit 1
fi

# as_user CMD…: CMD as nobody in the workspace with a plain environment.
as_user() {
  (cd "$ws" && exec setpriv --reuid="$uid" --regid="$gid" --clear-groups \
     env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$tmp/home" USER=nobody \
     AGENTD_SOCKET="$tmp/agentd.sock" "$@") </dev/null >/dev/null
}

# failed LABEL WHAT: report a failed sample with the end of agentd's log.
failed() {
  echo "$1: $2" >&2
  echo "--- end of agentd log ---" >&2
  tail -n 20 "$tmp/agentd.log" >&2
  return 1
}

# measure LABEL CMD…: warm up, then N timed runs; prints min / median / p90 in ms.
measure() {
  local label=$1; shift
  local i t0 t1 samples=()
  for ((i = 0; i < warmup; i++)); do
    as_user "$@" || failed "$label" "warm-up run failed (exit $?)" || return 1
  done
  for ((i = 0; i < n; i++)); do
    t0=$(date +%s%N)
    as_user "$@" || failed "$label" "run $i failed (exit $?)" || return 1
    t1=$(date +%s%N)
    samples+=($(( (t1 - t0) / 1000 )))   # microseconds
  done
  printf '%s\n' "${samples[@]}" | sort -n | awk -v label="$label" '
    { v[NR] = $1 }
    END {
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      p90 = v[int(0.9 * NR + 0.999999)]
      printf "%-56s n=%-4d min %7.2f ms   median %7.2f ms   p90 %7.2f ms\n",
             label, NR, v[1] / 1000, med / 1000, p90 / 1000
    }'
}

echo "latency of one run, $n samples each after $warmup warm-ups, as uid $uid:"
measure "agentctl run -- true (default policy)" "$bin/agentctl" run -- true
if command -v bwrap >/dev/null; then
  measure "bwrap --ro-bind / / --unshare-all --die-with-parent true" \
    bwrap --ro-bind / / --unshare-all --die-with-parent true
else
  echo "bwrap not installed (apt-get install bubblewrap to compare)"
fi
measure "true (bare exec, the floor)" true
