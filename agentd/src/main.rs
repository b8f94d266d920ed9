//! `agentd`: the daemon's command line. Also the launcher's entry (`agentd __launch`, started by
//! the daemon itself, never by a user) and, for packaging, `agentd __generate-man DIR`, which
//! writes agentd(8) from this very definition.
//!
//! Logging: to the journal with structured fields (`AGENTD_RUN`, `AGENTD_UID`, …) when stderr
//! is the journal stream systemd gave us (`$JOURNAL_STREAM`), else human-readable on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use agentd::config::{Config, FileConfig, Flags, DEFAULT_CONFIG};
use agentd::launch;

/// The agentd daemon: launches coding agents in kernel-enforced sandboxes and serves agentctl.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Control socket path.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// State directory (runs, audit logs, lock).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// A policy directory searched after /etc/agentd/policies (repeatable).
    #[arg(long, value_name = "DIR")]
    policy_dir: Vec<PathBuf>,
    /// Config file (default /etc/agentd/agentd.toml, optional).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace; RUST_LOG also works).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Cgroup directory holding this daemon's runs (default `agentd`). Each daemon must have its
    /// own: at start a daemon kills every run it finds there.
    #[arg(long, value_name = "NAME")]
    cgroup_parent: Option<String>,
    /// Write `ready` to this inherited file descriptor once the socket listens.
    #[arg(long, value_name = "FD")]
    ready_fd: Option<i32>,
}

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == launch::LAUNCHER_ARG)
    {
        let code = launch::helper::main();
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == GENERATE_MAN_ARG)
    {
        return match generate_man(std::env::args_os().nth(2)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("agentd: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agentd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("agentd must run as root (it builds namespaces, mounts and cgroups for each run); start it with sudo or as the agentd service");
    }
    let (config_path, explicit) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let file = FileConfig::load(&config_path, explicit)?;
    let config = Config::merge(
        file,
        Flags {
            socket: cli.socket,
            state_dir: cli.state_dir,
            policy_dir: cli.policy_dir,
            cgroup_parent: cli.cgroup_parent,
            log_level: cli.log_level,
        },
    );
    init_logging(config.log_level.as_deref());
    let ready = cli
        .ready_fd
        .map(agentd::sys::process::take_inherited)
        .transpose()
        .context("--ready-fd is not an open file descriptor")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(agentd::daemon::run(config, ready))
}

/// Packaging hook: `agentd __generate-man DIR` writes `DIR/agentd.8`.
const GENERATE_MAN_ARG: &str = "__generate-man";

fn generate_man(dir: Option<std::ffi::OsString>) -> Result<()> {
    use clap::CommandFactory;
    let dir = PathBuf::from(dir.context("usage: agentd __generate-man DIR")?);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cmd = Cli::command().name("agentd").after_long_help(
        "agentd normally runs as the systemd service agentd.service (Type=notify, optionally \
             socket-activated by agentd.socket). Settings: /etc/agentd/agentd.toml. \
             See /usr/share/doc/agentd/operations.md.",
    );
    let path = dir.join("agentd.8");
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .render(&mut out)
        .context("cannot render agentd.8")?;
    std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// The journal when stderr is systemd's journal stream, else formatted text on stderr.
/// `--log-level` (or `log_level` in the config) wins over `RUST_LOG`; the default is `info`.
fn init_logging(level: Option<&str>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let journal = agentd::daemon::systemd::stderr_is_journal()
        .then(|| tracing_journald::layer().ok())
        .flatten()
        .map(|l| l.with_field_prefix(Some("AGENTD".into())));
    let registry = tracing_subscriber::registry().with(filter);
    match journal {
        Some(layer) => registry.with(layer).init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .init(),
    }
}
