//! The shipped presets end to end. Under `coding-agent` with the toolchain presets (`git`,
//! `node`, `python`, `rust`) real toolchains run to success with no denial, while the caller's
//! secrets and an unlisted loopback port stay out of reach and every refusal is audited; and
//! `agentctl audit --suggest` turns a denied workspace-subdirectory write into exactly that grant.
//!
//! Homes and workspaces live outside `/tmp` here ([`outside_tmp`]), where a real user's are: a
//! run with `tmp = "private"` replaces the host's `/tmp`, so a home below it would vanish from
//! the run for a reason that has nothing to do with the presets, and opens below it would be
//! decided by the implicit `/tmp` grant instead of the presets' grants.
//!
//! No test needs a host name (there is no internet here): every destination is an address, and
//! the model API names of `coding-agent` simply resolve to nothing.

use std::io::{ErrorKind, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentd_tests::caller::{AWS_SECRET, DOTENV_SECRET, OWNER_UID, SSH_KEY_SECRET};
use agentd_tests::command;
use agentd_tests::tempdir::{mkdir_owned, outside_tmp, write_owned};
use agentd_tests::{current_test, require, Caller, Daemon, Output};
use serde_json::Value;

use crate::{audit, check, check_code, check_failed_inside, display, write_policy, INSIDE};

/// The bound of one toolchain run (a cold `cargo build` or `npm ci` on a loaded machine).
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

const ECONNREFUSED: i64 = 111;

/// `coding-agent` with every toolchain preset, composed as docs/policy.md shows.
const PRESETS: &str =
    "version = 1\nextends = [\"coding-agent\", \"git\", \"node\", \"python\", \"rust\"]\n";

/// The ports `guard-rails` asks about: a "non-allowed" port must be none of them.
const ASK_PORTS: [u16; 5] = [5432, 3306, 27017, 6379, 1433];

/// A daemon whose temp dir is outside `/tmp`, the usual caller, and the presets policy.
fn start() -> (Daemon, Caller, PathBuf) {
    let d = Daemon::start_in(&outside_tmp());
    let c = Caller::new(&d, OWNER_UID);
    let p = write_policy(&d, "presets", PRESETS);
    (d, c, p)
}

/// Writes `SKIP <test>: <why>` where libtest does not capture it (see `feature::require`).
fn skip(why: &str) {
    let line = format!("SKIP {}: {why}\n", current_test());
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `agentctl run --json-events --policy POLICY -- ARGV…` as `c`, bounded by `timeout`, and the
/// run's id (from the `started` frame; empty if there was none, which [`audit`] reports).
fn traced(c: &Caller, policy: &Path, argv: &[&str], timeout: Duration) -> (Output, String) {
    let policy = display(policy);
    let mut args = vec!["run", "--json-events", "--policy", policy.as_str(), "--"];
    args.extend_from_slice(argv);
    let out = c.agentctl_with_stdin(&args, b"", timeout);
    let run = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|f| f["type"] == "started")
        .and_then(|f| f["run"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (out, run)
}

/// `sh -c 'echo INSIDE; exec "$@"' sh ARGV…` under `policy`.
fn traced_inside(c: &Caller, policy: &Path, argv: &[&str]) -> (Output, String) {
    let script = format!("echo {INSIDE}; exec \"$@\"");
    let mut full = vec!["sh", "-c", script.as_str(), "sh"];
    full.extend_from_slice(argv);
    traced(c, policy, &full, command::TIMEOUT)
}

/// A short form of a record for messages: `seq kind verdict path|addr access rule errno reason`.
fn brief(r: &Value) -> String {
    let what = r["path"].as_str().or(r["addr"].as_str()).unwrap_or("");
    format!(
        "{} {} {} {} access={} rule={} errno={} reason={}",
        r["seq"], r["kind"], r["verdict"], what, r["access"], r["rule"], r["errno"], r["reason"]
    )
}

fn briefs<'a>(records: impl IntoIterator<Item = &'a Value>) -> String {
    records
        .into_iter()
        .map(brief)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The run succeeded and every decision the monitor recorded was `allow`: no deny, and no
/// `ask` or `pause` a human would have had to answer. One kind of record is not a refusal: a
/// look at a *hidden* name that does not exist in the run's view (npm checks for `.npmrc`),
/// recorded with errno ENOENT and a reason starting "not in the run's view" — the tool gets
/// ENOENT either way, exactly as on a machine without the file.
#[track_caller]
fn check_clean_success(d: &Daemon, out: &Output, run: &str, what: &str) -> Vec<Value> {
    check_code(d, out, 0, what);
    let records = audit(d, out, run);
    let absent_secret_probe = |r: &Value| {
        r["errno"] == 2
            && r["reason"]
                .as_str()
                .is_some_and(|s| s.starts_with("not in the run's view"))
    };
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| r["verdict"].as_str().is_some_and(|v| v != "allow"))
        .filter(|r| !absent_secret_probe(r))
        .collect();
    check(
        d,
        out,
        refused.is_empty(),
        &format!(
            "{what}: the presets must allow every step, but the monitor recorded:\n{}",
            briefs(refused)
        ),
    );
    records
}

/// Some record was allowed for `reason` (proves which preset grant the run went through).
#[track_caller]
fn check_allowed_by(d: &Daemon, out: &Output, records: &[Value], reason: &str, what: &str) {
    check(
        d,
        out,
        records
            .iter()
            .any(|r| r["verdict"] == "allow" && r["reason"] == reason),
        &format!(
            "{what}: expected a record allowed as {reason:?}; reasons seen: {:?}",
            records
                .iter()
                .filter_map(|r| r["reason"].as_str())
                .collect::<std::collections::BTreeSet<_>>()
        ),
    );
}

/// Runs `sh -c SCRIPT` outside any sandbox as `c`, in its workspace, bounded by `timeout`.
fn unconfined_sh(c: &Caller, script: &str, timeout: Duration) -> Output {
    let mut cmd = c.command("sh");
    cmd.args(["-c", script]);
    command::run(cmd, b"", timeout)
}

fn write_file(c: &Caller, rel: &str, text: &str) {
    let path = c.workspace.join(rel);
    if let Some(parent) = path.parent() {
        mkdir_owned(parent, 0o755, c.uid, c.gid);
    }
    write_owned(&path, text.as_bytes(), 0o644, c.uid, c.gid);
}

// --- toolchains under the presets: success, no denial ---

#[test]
fn presets_git_init_add_commit_log_without_denial() {
    require!(sandbox);
    let (d, c, p) = start();
    // The git preset's read grant of ~/.gitconfig is what gives the commit its author.
    write_owned(
        &c.home.join(".gitconfig"),
        b"[user]\n\tname = Agentd E2E\n\temail = e2e@agentd.invalid\n",
        0o644,
        c.uid,
        c.gid,
    );
    let script = "git init -q . && git add README.md && git commit -q -m 'first commit' \
                  && git log --format='%an <%ae> %s'";
    let want = "Agentd E2E <e2e@agentd.invalid> first commit";

    // Outside first, in a directory beside the workspace (the run must start without .git).
    let outside = c.workspace.parent().unwrap().join("git-outside");
    mkdir_owned(&outside, 0o755, c.uid, c.gid);
    std::fs::copy(c.workspace.join("README.md"), outside.join("README.md")).unwrap();
    let out = unconfined_sh(
        &c,
        &format!("cd '{}' && {script}", outside.display()),
        TOOL_TIMEOUT,
    );
    check(
        &d,
        &out,
        out.success() && out.stdout.trim() == want,
        "unconfined: git init/add/commit/log",
    );

    let (out, run) = traced(&c, &p, &["sh", "-c", script], TOOL_TIMEOUT);
    let records = check_clean_success(&d, &out, &run, "git init/add/commit/log");
    check(
        &d,
        &out,
        out.stdout.trim() == want,
        &format!("git log must show the commit by the ~/.gitconfig identity: {want:?}"),
    );
    check_allowed_by(
        &d,
        &out,
        &records,
        &format!(
            "inside the read grant {}",
            display(&c.home.join(".gitconfig"))
        ),
        "git read ~/.gitconfig through the git preset",
    );
    check(
        &d,
        &out,
        !c.workspace.join(".git/hooks").exists(),
        "GIT_TEMPLATE_DIR=\"\" (guard-rails): git init must not create .git/hooks",
    );
}

#[test]
fn presets_npm_ci_offline_and_npm_test_without_denial() {
    require!(sandbox);
    let (d, c, p) = start();
    // A dependency that exists only in the caller's npm cache (~/.npm, the node preset's
    // grant): packed, `npm cache add`ed, and its source and tarball removed. The lock file
    // resolves it at an unreachable loopback registry (the discard port); `--offline` makes npm
    // take it from the cache by its integrity, never from the network.
    let setup = r#"set -e
src="$HOME/e2e-dep-src"; mkdir -p "$src"
printf '{"name":"e2e-dep","version":"1.0.0","main":"index.js"}\n' > "$src/package.json"
printf 'module.exports = (a, b) => a + b;\n' > "$src/index.js"
(cd "$src" && npm pack --silent --pack-destination "$HOME" >/dev/null)
tgz="$HOME/e2e-dep-1.0.0.tgz"
npm cache add "$tgz" >/dev/null 2>&1
node -e 'const c = require("crypto"), f = require("fs");
process.stdout.write("sha512-" + c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tgz"
rm -rf "$src" "$tgz""#;
    let out = unconfined_sh(&c, setup, TOOL_TIMEOUT);
    check_code(&d, &out, 0, "unconfined: pack the dependency into ~/.npm");
    let integrity = out.stdout.trim().to_owned();
    check(
        &d,
        &out,
        integrity.starts_with("sha512-"),
        "the dependency's integrity",
    );
    write_file(
        &c,
        "package.json",
        r#"{"name":"e2e-app","version":"1.0.0","private":true,
"scripts":{"test":"node test.js"},"dependencies":{"e2e-dep":"1.0.0"}}
"#,
    );
    write_file(
        &c,
        "package-lock.json",
        &format!(
            r#"{{"name":"e2e-app","version":"1.0.0","lockfileVersion":3,"requires":true,
"packages":{{"":{{"name":"e2e-app","version":"1.0.0","dependencies":{{"e2e-dep":"1.0.0"}}}},
"node_modules/e2e-dep":{{"version":"1.0.0",
"resolved":"http://127.0.0.1:9/e2e-dep/-/e2e-dep-1.0.0.tgz","integrity":"{integrity}"}}}}}}
"#
        ),
    );
    write_file(
        &c,
        "test.js",
        "const add = require(\"e2e-dep\");\n\
         if (add(2, 3) !== 5) { console.error(\"wrong sum\"); process.exit(1); }\n\
         console.log(\"npm-test-ok\");\n",
    );
    let script = "npm ci --offline --no-audit --no-fund && npm test";
    let out = unconfined_sh(
        &c,
        &format!("{script} && rm -rf node_modules"),
        TOOL_TIMEOUT,
    );
    check(
        &d,
        &out,
        out.success() && out.stdout.contains("npm-test-ok"),
        "unconfined: npm ci --offline && npm test",
    );

    let (out, run) = traced(&c, &p, &["sh", "-c", script], TOOL_TIMEOUT);
    let records = check_clean_success(&d, &out, &run, "npm ci --offline && npm test");
    check(
        &d,
        &out,
        out.stdout.contains("added 1 package") && out.stdout.contains("npm-test-ok"),
        "npm installed the dependency from the cache and the test passed",
    );
    check_allowed_by(
        &d,
        &out,
        &records,
        &format!("inside the write grant {}", display(&c.home.join(".npm"))),
        "npm used its cache through the node preset",
    );
}

#[test]
fn presets_python_pytest_without_denial() {
    require!(sandbox);
    let (d, c, p) = start();
    // Debian's python3-pytest (installed by `make deps`, which `make test` and .ci/run use).
    write_file(&c, "calc/__init__.py", "def add(a, b):\n    return a + b\n");
    // A package marker: pytest then puts the workspace (its first parent without one) on
    // sys.path, so `calc` imports.
    write_file(&c, "tests/__init__.py", "");
    write_file(
        &c,
        "tests/test_calc.py",
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n\
         def test_negative():\n    assert add(-2, -3) == -5\n",
    );
    let argv = [
        "/usr/bin/python3",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
    ];
    let ran = |out: &Output| out.stdout.contains("2 passed");
    let out = c.unconfined(&argv);
    check(
        &d,
        &out,
        out.success() && ran(&out),
        "unconfined: python3 -m pytest (is python3-pytest installed? `make deps`)",
    );

    let (out, run) = traced(&c, &p, &argv, TOOL_TIMEOUT);
    check_clean_success(&d, &out, &run, "python3 -m pytest");
    check(&d, &out, ran(&out), "both tests ran and passed");
}

/// The version of `name` in the repository's Cargo.lock: agentd's own build fetched it, so it
/// is in the registry cache of the user who built agentd.
fn locked_version(name: &str) -> Option<String> {
    let lock = std::fs::read_to_string(agentd_tests::bins::repo_root().join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == format!("name = \"{name}\"") {
            let v = lines
                .next()?
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            return Some(v.to_owned());
        }
    }
    None
}

#[test]
fn presets_cargo_build_offline_with_vendored_deps_without_denial() {
    require!(sandbox);
    // rustup installed cargo for root only (/root is 0700): root is the caller, and agentd runs
    // its command as uid 0 without capabilities, which owning /root is enough for.
    let cargo = "/root/.cargo/bin/cargo";
    if !Path::new(cargo).is_file() {
        skip(&format!("{cargo} not found: no rustup toolchain for root"));
        return;
    }
    let Some(itoa) = locked_version("itoa") else {
        panic!("Cargo.lock has no itoa: pick another dependency agentd's build fetches");
    };
    let d = Daemon::start_in(&outside_tmp());
    let c = Caller::root(&d);
    let p = write_policy(&d, "presets", PRESETS);
    write_file(
        &c,
        "Cargo.toml",
        &format!(
            "[package]\nname = \"e2e-crate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nitoa = \"={itoa}\"\n\n\
             # A project of its own, wherever the test's temp dir lies.\n[workspace]\n"
        ),
    );
    write_file(
        &c,
        "src/main.rs",
        "fn main() {\n    let mut b = itoa::Buffer::new();\n    \
         println!(\"itoa says {}\", b.format(4242));\n}\n",
    );
    write_file(
        &c,
        ".cargo/config.toml",
        "[source.crates-io]\nreplace-with = \"vendored-sources\"\n\n\
         [source.vendored-sources]\ndirectory = \"vendor\"\n",
    );
    let script = format!("{cargo} build --offline && ./target/debug/e2e-crate");
    let out = unconfined_sh(
        &c,
        &format!("{cargo} vendor --offline vendor >/dev/null && {script} && rm -rf target"),
        TOOL_TIMEOUT,
    );
    check(
        &d,
        &out,
        out.success() && out.stdout.contains("itoa says 4242"),
        &format!("unconfined: cargo vendor --offline (itoa {itoa} from ~/.cargo) and build"),
    );

    let (out, run) = traced(&c, &p, &["sh", "-c", &script], TOOL_TIMEOUT);
    let records = check_clean_success(&d, &out, &run, "cargo build --offline");
    check(
        &d,
        &out,
        out.stdout.contains("itoa says 4242"),
        "the crate built from vendor/ and ran",
    );
    check_allowed_by(
        &d,
        &out,
        &records,
        "inside the exec grant /root/.rustup",
        "the toolchain ran through the rust preset",
    );
}

// --- under the same presets: secrets and unlisted ports denied and audited ---

/// `path` holds `secret` and the caller can read it outside; inside, `cat path` fails without
/// leaking it, and the run's audit has a deny record for an open of `path`.
#[track_caller]
fn check_secret_denied_and_audited(d: &Daemon, c: &Caller, p: &Path, path: &Path, secret: &str) {
    let what = format!("cat {}", path.display());
    let path = display(path);
    let out = c.unconfined(&["cat", &path]);
    check(
        d,
        &out,
        out.success() && out.stdout.contains(secret),
        "unconfined: the caller must be able to read its own secret (else the probe proves nothing)",
    );
    let (out, run) = traced_inside(c, p, &["cat", &path]);
    check_failed_inside(d, &out, &what);
    check(
        d,
        &out,
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        &format!("{what}: the secret leaked"),
    );
    let records = audit(d, &out, &run);
    check(
        d,
        &out,
        records
            .iter()
            .any(|r| r["kind"] == "open" && r["verdict"] == "deny" && r["path"] == path.as_str()),
        &format!(
            "{what}: the denial must be audited (a deny record for an open of {path}); records \
             after the exec of cat:\n{}",
            briefs(records.iter().skip_while(|r| r["argv"][0] != "cat"))
        ),
    );
}

#[test]
fn presets_deny_and_audit_home_ssh_key() {
    require!(sandbox);
    let (d, c, p) = start();
    let key = c.home.join(".ssh/id_ed25519");
    check_secret_denied_and_audited(&d, &c, &p, &key, SSH_KEY_SECRET);
}

#[test]
fn presets_deny_and_audit_home_aws_credentials() {
    require!(sandbox);
    let (d, c, p) = start();
    let creds = c.home.join(".aws/credentials");
    check_secret_denied_and_audited(&d, &c, &p, &creds, AWS_SECRET);
}

#[test]
fn presets_deny_and_audit_workspace_dotenv() {
    require!(sandbox);
    let (d, c, p) = start();
    let dotenv = c.workspace.join(".env");
    check_secret_denied_and_audited(&d, &c, &p, &dotenv, DOTENV_SECRET);
}

#[test]
fn presets_deny_and_audit_connect_to_unlisted_loopback_port() {
    require!(sandbox);
    let (d, c, p) = start();
    let probe = display(&c.install_probe());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(
        !ASK_PORTS.contains(&port),
        "port {port} is one guard-rails asks about"
    );
    let addr = format!("127.0.0.1:{port}");
    // Connections waiting in the backlog, taken off it (after a moment for them to arrive).
    let drain = || {
        std::thread::sleep(Duration::from_millis(200));
        let mut n = 0;
        loop {
            match listener.accept() {
                Ok(_) => n += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
                Err(e) => panic!("accept on {addr}: {e}"),
            }
        }
    };

    let out = c.unconfined(&[&probe, "connect-tcp", &addr]);
    check_code(&d, &out, 0, &format!("unconfined: {addr} is reachable"));
    check(&d, &out, drain() == 1, "unconfined: the listener accepted");

    let (out, run) = traced_inside(&c, &p, &[&probe, "connect-tcp", &addr]);
    check_failed_inside(&d, &out, &format!("connect to {addr}"));
    check(
        &d,
        &out,
        out.stdout.contains("refused"),
        "the connect must be refused (ECONNREFUSED, network mode \"filtered\")",
    );
    check(&d, &out, drain() == 0, "the listener must accept nothing");
    let records = audit(&d, &out, &run);
    check(
        &d,
        &out,
        records.iter().any(|r| {
            r["kind"] == "connect"
                && r["addr"] == addr.as_str()
                && r["verdict"] == "deny"
                && r["errno"] == ECONNREFUSED
        }),
        &format!(
            "a deny ECONNREFUSED record for {addr}:\n{}",
            briefs(records.iter().filter(|r| r["kind"] == "connect"))
        ),
    );
}

// --- agentctl audit --suggest ---

/// A policy that grants the workspace read-only: a write into `out/` is denied; `--suggest`
/// must propose exactly `write = ["<workspace>/out"]`.
fn check_suggests_the_denied_subdirectory(d: &Daemon, c: &Caller) {
    let p = write_policy(
        d,
        "read-only-workspace",
        "version = 1\nextends = [\"base\"]\n\n[filesystem]\nread = [\"${WORKSPACE}\"]\nwrite = []\n",
    );
    let sub = c.workspace.join("out");
    mkdir_owned(&sub, 0o755, c.uid, c.gid);
    let target = sub.join("result.txt");
    let out = c.unconfined_sh("echo x > out/result.txt");
    check_code(
        d,
        &out,
        0,
        "unconfined: the caller can write out/result.txt",
    );
    std::fs::remove_file(&target).unwrap();

    let (out, run) = traced_inside(c, &p, &["sh", "-c", "echo x > out/result.txt"]);
    check_failed_inside(d, &out, "writing out/result.txt in a read-only workspace");
    check(d, &out, !target.exists(), "out/result.txt must not exist");
    let records = audit(d, &out, &run);

    let sug = c.agentctl(&["audit", &run, "--suggest"]);
    let dir = display(&sub);
    let want = format!(
        "# Suggested for run {run}: paste into your policy and review each line.\n\
         [filesystem]\nwrite = [\n    \"{dir}\",  # exposes: every file under {dir} \
         (read, write, create, delete)\n]\n"
    );
    check(
        d,
        &sug,
        sug.success() && sug.stdout == want,
        &format!(
            "--suggest must propose exactly write = [{dir:?}]\nwanted:\n{want}\nopen records \
             of the workspace:\n{}",
            briefs(records.iter().filter(|r| {
                r["kind"] == "open"
                    && r["path"]
                        .as_str()
                        .is_some_and(|s| s.starts_with(&display(&c.workspace)))
            }))
        ),
    );
}

#[test]
fn presets_suggest_proposes_exactly_the_denied_workspace_subdirectory() {
    require!(sandbox);
    let (d, c, _) = start();
    check_suggests_the_denied_subdirectory(&d, &c);
}

/// The same with the workspace below `/tmp` (where the other e2e tests keep theirs): the run's
/// private `/tmp` must not turn the workspace's read-only grant into a write.
#[test]
fn presets_suggest_proposes_exactly_the_denied_subdirectory_of_a_workspace_under_tmp() {
    require!(sandbox);
    let d = Daemon::start_in(Path::new("/tmp"));
    let c = Caller::new(&d, OWNER_UID);
    check_suggests_the_denied_subdirectory(&d, &c);
}
