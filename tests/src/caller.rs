//! An unprivileged caller: a uid with no passwd entry, a fake home holding known secrets, and a
//! workspace with a `.env` secret and an ordinary file. agentctl runs as that uid (std applies
//! `setgroups([])`, `setgid`, `setuid` when a root parent sets uid/gid), with a scrubbed
//! environment: only PATH, HOME, USER, LOGNAME and two "leak" variables a policy must drop.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::command::{self, Output};
use crate::daemon::Daemon;
use crate::tempdir::{mkdir_owned, write_owned};

/// The caller that owns the runs in most tests.
pub const OWNER_UID: u32 = 4242;
/// Another unprivileged user.
pub const OTHER_UID: u32 = 4243;

pub const SSH_KEY_SECRET: &str = "AGENTD-E2E-SECRET-ssh-ed25519-5c1f";
pub const AWS_SECRET: &str = "AGENTD-E2E-SECRET-aws-9b7e";
pub const DOTENV_SECRET: &str = "AGENTD-E2E-SECRET-dotenv-2d4a";
/// The value of the environment variables that must not reach the agent.
pub const LEAK: &str = "AGENTD-E2E-LEAKED-ENV";
/// The content of `README.md` in the workspace.
pub const README_TEXT: &str = "an ordinary workspace file";

pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[derive(Debug, Clone)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub home: PathBuf,
    pub workspace: PathBuf,
    socket: PathBuf,
}

impl Caller {
    /// Creates `<daemon dir>/users/<name>/{home,work/project}` for `uid` (gid = uid).
    pub fn new(daemon: &Daemon, uid: u32) -> Caller {
        let gid = uid;
        let name = format!("e2e{uid}");
        let users = daemon.dir().join("users");
        mkdir_owned(&users, 0o755, 0, 0);
        let base = users.join(&name);
        mkdir_owned(&base, 0o755, 0, 0);

        let home = base.join("home");
        mkdir_owned(&home, 0o700, uid, gid);
        mkdir_owned(&home.join(".ssh"), 0o700, uid, gid);
        let key = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{SSH_KEY_SECRET}\n-----END OPENSSH PRIVATE KEY-----\n"
        );
        write_owned(
            &home.join(".ssh/id_ed25519"),
            key.as_bytes(),
            0o600,
            uid,
            gid,
        );
        mkdir_owned(&home.join(".aws"), 0o700, uid, gid);
        let creds = format!(
            "[default]\naws_access_key_id = AKIAE2E\naws_secret_access_key = {AWS_SECRET}\n"
        );
        write_owned(
            &home.join(".aws/credentials"),
            creds.as_bytes(),
            0o600,
            uid,
            gid,
        );

        // The workspace's parent is the caller's too, so "cannot write beside the workspace" is
        // a sandbox property, not a permission one.
        let work = base.join("work");
        mkdir_owned(&work, 0o755, uid, gid);
        let workspace = work.join("project");
        mkdir_owned(&workspace, 0o755, uid, gid);
        let dotenv = format!("API_TOKEN={DOTENV_SECRET}\n");
        write_owned(&workspace.join(".env"), dotenv.as_bytes(), 0o600, uid, gid);
        write_owned(
            &workspace.join("README.md"),
            README_TEXT.as_bytes(),
            0o644,
            uid,
            gid,
        );

        Caller {
            uid,
            gid,
            name,
            home,
            workspace,
            socket: daemon.socket().to_path_buf(),
        }
    }

    /// Root as a caller: its real home `/root` (where rustup puts cargo and the toolchains,
    /// mode 0700) and a root-owned workspace `<daemon dir>/users/root/work/project` holding
    /// `README.md`. agentd runs root's commands as uid 0 without capabilities.
    pub fn root(daemon: &Daemon) -> Caller {
        let users = daemon.dir().join("users");
        mkdir_owned(&users, 0o755, 0, 0);
        let workspace = users.join("root/work/project");
        mkdir_owned(&workspace, 0o755, 0, 0);
        write_owned(
            &workspace.join("README.md"),
            README_TEXT.as_bytes(),
            0o644,
            0,
            0,
        );
        Caller {
            uid: 0,
            gid: 0,
            name: "root".into(),
            home: PathBuf::from("/root"),
            workspace,
            socket: daemon.socket().to_path_buf(),
        }
    }

    /// The environment agentctl (and an unconfined probe) gets.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), PATH.into()),
            ("HOME".into(), self.home.display().to_string()),
            ("USER".into(), self.name.clone()),
            ("LOGNAME".into(), self.name.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), LEAK.into()),
            ("GITHUB_TOKEN".into(), LEAK.into()),
        ]
    }

    /// A command running as this caller in the workspace with the caller's environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .envs(self.env())
            .current_dir(&self.workspace)
            .uid(self.uid)
            .gid(self.gid);
        cmd
    }

    /// `agentctl --socket S ARGS…` as this caller, with `stdin`.
    pub fn agentctl_with_stdin(&self, args: &[&str], stdin: &[u8], timeout: Duration) -> Output {
        let mut cmd = self.command(crate::bins::agentctl());
        cmd.arg("--socket").arg(&self.socket).args(args);
        command::run(cmd, stdin, timeout)
    }

    /// `agentctl --socket S ARGS…` as this caller.
    pub fn agentctl(&self, args: &[&str]) -> Output {
        self.agentctl_with_stdin(args, b"", command::TIMEOUT)
    }

    /// `agentctl run -- ARGV…` with the default policy and the workspace as cwd.
    pub fn run(&self, argv: &[&str]) -> Output {
        let mut args = vec!["run", "--"];
        args.extend_from_slice(argv);
        self.agentctl(&args)
    }

    /// `agentctl run -- sh -c SCRIPT`.
    pub fn sh(&self, script: &str) -> Output {
        self.run(&["sh", "-c", script])
    }

    /// `agentctl run --policy POLICY -- ARGV…`.
    pub fn run_policy(&self, policy: &Path, argv: &[&str]) -> Output {
        let policy = policy.display().to_string();
        let mut args = vec!["run", "--policy", policy.as_str(), "--"];
        args.extend_from_slice(argv);
        self.agentctl(&args)
    }

    /// The same ARGV run directly as this caller, outside any sandbox: proves a probe can fail.
    pub fn unconfined(&self, argv: &[&str]) -> Output {
        let mut cmd = self.command(argv[0]);
        cmd.args(&argv[1..]);
        command::run(cmd, b"", command::TIMEOUT)
    }

    /// `sh -c SCRIPT` outside any sandbox as this caller.
    pub fn unconfined_sh(&self, script: &str) -> Output {
        self.unconfined(&["sh", "-c", script])
    }

    /// Copies the probe helper into the workspace (executable, owned by the caller) and returns
    /// its path.
    pub fn install_probe(&self) -> PathBuf {
        let dst = self.workspace.join("probe");
        std::fs::copy(crate::bins::probe(), &dst)
            .unwrap_or_else(|e| panic!("copy probe to {}: {e}", dst.display()));
        crate::tempdir::set_mode(&dst, 0o755);
        crate::tempdir::chown(&dst, self.uid, self.gid);
        dst
    }
}
