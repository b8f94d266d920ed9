//! `agentctl policy check FILE`: load, merge and validate a policy locally, without the daemon,
//! and print the effective policy. It uses the same `agentd_policy::Loader` as agentd, so a
//! policy that passes here compiles there (for the same variables and search directories).

use std::path::{Path, PathBuf};

use agentd_policy::{Loader, Vars};
use anyhow::{Context, Result};
use nix::unistd::{getuid, User};

mod explain;

/// Where agentd looks for policy presets.
const SYSTEM_POLICY_DIR: &str = "/etc/agentd/policies";

/// Work with policy files
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate a policy file and print the effective (merged, substituted) policy
    ///
    /// Exits 0 and prints the policy as TOML when it is valid; exits 1 with the error as
    /// `file:line:col: message` and a hint when it is not.
    Check(CheckArgs),
    /// Explain which rule decides an event and why
    ///
    /// Prints every rule that matches, in policy order, with its action; which one wins
    /// (deny > pause > ask > allow, the first of the winning action in policy order); or the
    /// default for the event's kind and the grant or hide that produced it.
    Explain(ExplainArgs),
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("event").required(true))]
pub struct ExplainArgs {
    /// The policy file (or the name of a preset)
    pub file: String,
    /// An exec: the command line, e.g. "git push origin main" (the program is looked up in PATH)
    #[arg(long, value_name = "CMD", group = "event")]
    pub exec: Option<String>,
    /// An open of PATH (for reading unless --write)
    #[arg(long, value_name = "PATH", group = "event")]
    pub open: Option<PathBuf>,
    /// With --open: the open is for writing
    #[arg(long, requires = "open")]
    pub write: bool,
    /// A connect to ADDR: IP:PORT, [IPv6]:PORT, HOST:PORT (resolved here), /unix/path or @name
    #[arg(long, value_name = "ADDR", group = "event")]
    pub connect: Option<String>,
    /// Value of ${WORKSPACE} [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Also look for presets here first; may be repeated
    #[arg(long = "policy-dir", value_name = "DIR")]
    pub policy_dirs: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The policy file to check (or the name of a preset)
    pub file: String,
    /// Value of ${WORKSPACE} [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Also look for presets named by `extends` here (before /etc/agentd/policies and the
    /// file's own directory); may be repeated
    #[arg(long = "policy-dir", value_name = "DIR")]
    pub policy_dirs: Vec<PathBuf>,
}

pub fn run(command: &Command) -> Result<i32> {
    match command {
        Command::Check(args) => check(args),
        Command::Explain(args) => explain::run(args),
    }
}

fn check(args: &CheckArgs) -> Result<i32> {
    let workspace = match &args.workspace {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot determine the current directory")?,
    };
    // As `run` does; a workspace that does not exist yet still gets an absolute path.
    let workspace = workspace
        .canonicalize()
        .or_else(|_| std::path::absolute(&workspace))
        .with_context(|| format!("invalid workspace {}", workspace.display()))?;
    let vars = caller_vars(workspace)?;
    let loader = Loader::new(search_dirs(&args.policy_dirs, Path::new(&args.file)));
    let (policy, origins) = loader.load_traced(&args.file, &vars)?;
    // Warnings never change the exit code: the policy is valid.
    for w in agentd_policy::lint(&policy, &origins, &vars) {
        eprintln!("warning: {w}");
    }
    print!("{}", policy.to_toml());
    Ok(0)
}

/// `${WORKSPACE}` as `check` and `run` compute it: `dir` or the current directory, canonical.
pub(crate) fn workspace_of(dir: Option<&Path>) -> Result<PathBuf> {
    let workspace = match dir {
        Some(dir) => dir.to_path_buf(),
        None => std::env::current_dir().context("cannot determine the current directory")?,
    };
    workspace
        .canonicalize()
        .or_else(|_| std::path::absolute(&workspace))
        .with_context(|| format!("invalid workspace {}", workspace.display()))
}

/// `--policy-dir`s in order, the system directory, then the directory `file` is in.
pub(crate) fn search_dirs(extra: &[PathBuf], file: &Path) -> Vec<PathBuf> {
    let mut dirs = extra.to_vec();
    dirs.push(PathBuf::from(SYSTEM_POLICY_DIR));
    match file.parent() {
        Some(p) if p.as_os_str().is_empty() => dirs.push(PathBuf::from(".")),
        Some(p) => dirs.push(p.to_path_buf()),
        None => {}
    }
    dirs
}

/// `${HOME}` and `${USER}` from the environment, falling back to the passwd entry.
pub(crate) fn caller_vars(workspace: PathBuf) -> Result<Vars> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (home, user) = match (env("HOME"), env("USER")) {
        (Some(home), Some(user)) => (PathBuf::from(home), user),
        (home, user) => {
            let pw = User::from_uid(getuid())
                .context("cannot read the passwd entry of the current user")?
                .context("the current user has no passwd entry; set HOME and USER")?;
            (home.map_or(pw.dir, PathBuf::from), user.unwrap_or(pw.name))
        }
    };
    Ok(Vars {
        home,
        workspace,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_dirs_orders_flags_system_then_file_dir() {
        let dirs = search_dirs(
            &[PathBuf::from("/a"), PathBuf::from("/b")],
            Path::new("p/x.toml"),
        );
        assert_eq!(
            dirs,
            ["/a", "/b", SYSTEM_POLICY_DIR, "p"]
                .map(PathBuf::from)
                .to_vec()
        );
    }

    #[test]
    fn search_dirs_uses_dot_for_bare_file_name() {
        let dirs = search_dirs(&[], Path::new("x.toml"));
        assert_eq!(dirs, [SYSTEM_POLICY_DIR, "."].map(PathBuf::from).to_vec());
    }
}
