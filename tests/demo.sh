#!/usr/bin/env bash
# `make demo`: agentd on a temp socket, a fake home holding an SSH key, a workspace holding a .env,
# and a confined shell acting for an unprivileged user (nobody): it can edit the workspace, and
# cannot read the key or the .env. Run as root after `cargo build --workspace --bins`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${AGENTD_BIN_DIR:-$repo/target/debug}
for b in agentd agentctl; do
  [ -x "$bin/$b" ] || { echo "missing $bin/$b: run \`make build\` first" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "the demo starts agentd, which needs root: sudo make demo" >&2; exit 1; }

uid=$(id -u nobody 2>/dev/null || echo 65534)
gid=$(id -g nobody 2>/dev/null || echo 65534)
user=nobody

tmp=$(mktemp -d /tmp/agentd-demo.XXXXXX)
chmod 755 "$tmp"
agentd_pid=
cleanup() {
  if [ -n "$agentd_pid" ]; then kill "$agentd_pid" 2>/dev/null || true; wait "$agentd_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# The scene: a home with secrets, a workspace with a README and a .env.
home=$tmp/home
ws=$tmp/work/project
mkdir -p "$home/.ssh" "$ws"
echo "DEMO-SECRET-SSH-PRIVATE-KEY" > "$home/.ssh/id_ed25519"
printf '# demo project\n' > "$ws/README.md"
echo "API_TOKEN=DEMO-SECRET-DOTENV" > "$ws/.env"
chmod 700 "$home" "$home/.ssh"; chmod 600 "$home/.ssh/id_ed25519" "$ws/.env"
chown -R "$uid:$gid" "$home" "$tmp/work"

# Start agentd; it writes "ready" to fd 3 (a fifo here) once it listens.
mkfifo "$tmp/ready"
"$bin/agentd" --socket "$tmp/agentd.sock" --state-dir "$tmp/state" \
  --policy-dir "$repo/policies" --cgroup-parent "agentd-demo-$$" --ready-fd 3 3>"$tmp/ready" 2>"$tmp/agentd.log" &
agentd_pid=$!
if ! read -r -t 30 line <"$tmp/ready" || [ "$line" != ready ]; then
  echo "agentd did not start; its log:" >&2; cat "$tmp/agentd.log" >&2; exit 1
fi
echo "agentd is listening on $tmp/agentd.sock (pid $agentd_pid)"
echo "acting as $user (uid $uid), HOME=$home, workspace $ws"

# as_user CMD…: run as the unprivileged user with a plain environment, in the workspace.
as_user() {
  (cd "$ws" && setpriv --reuid="$uid" --regid="$gid" --clear-groups \
     env -i PATH="$bin:/usr/local/bin:/usr/bin:/bin" HOME="$home" USER="$user" \
     AGENTD_SOCKET="$tmp/agentd.sock" "$@")
}

# show ARGS…: print a command line, single-quoting the arguments that need it.
show() {
  local a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./~=:-]+$ ]]; then printf ' %s' "$a"; else printf " '%s'" "${a//\'/\'\\\'\'}"; fi
  done
  printf '\n'
}

failures=0
# step EXPECT TITLE CMD…: run CMD as the user, show its output, compare with EXPECT (ok|fails).
step() {
  local expect=$1 title=$2; shift 2
  printf '\n--- %s\n$' "$title"; show "$@"
  local rc
  set +e
  as_user "$@" 2>&1 | sed 's/^/    /'
  rc=${PIPESTATUS[0]}
  set -e
  if { [ "$expect" = ok ] && [ "$rc" = 0 ]; } || { [ "$expect" = fails ] && [ "$rc" != 0 ]; }; then
    echo "=> exit $rc: as expected ($expect)"
  else
    echo "=> exit $rc: UNEXPECTED (wanted: $expect)"; failures=$((failures + 1))
  fi
}

step ok    "outside the sandbox the user can read its own key (this is what we protect)" \
  cat "$home/.ssh/id_ed25519"
step ok    "a confined shell edits the workspace" \
  agentctl run -- sh -c 'echo "line added by the agent" >> README.md && cat README.md'
step fails "the confined shell cannot read ~/.ssh/id_ed25519" \
  agentctl run -- sh -c 'cat ~/.ssh/id_ed25519'
step fails "the confined shell cannot read the workspace .env" \
  agentctl run -- cat .env
step ok    "what the agent sees of processes and privileges" \
  agentctl run -- sh -c 'id; ls /proc | grep -c "^[0-9]" | sed "s/^/processes visible: /"; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status'

printf '\nREADME.md after the run (outside the sandbox):\n'; sed 's/^/    /' "$ws/README.md"
if [ "$failures" -ne 0 ]; then
  printf '\n%d step(s) did not behave as expected; agentd log: \n' "$failures"; cat "$tmp/agentd.log"
  exit 1
fi
printf '\ndemo: every step behaved as expected\n'
