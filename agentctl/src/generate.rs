//! Packaging hook, hidden from users: `agentctl __generate DIR` writes, from the CLI definition
//! itself, the man pages `DIR/man/agentctl.1` and `agentctl-<sub>[-<sub>].1` (one per
//! subcommand, git style) and the completions `DIR/completions/{agentctl.bash,_agentctl,
//! agentctl.fish}`. `make install` and `make deb` run it; nothing else does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

/// The argument that selects this hook (checked before normal parsing, so the public command
/// set is unchanged).
pub const ARG: &str = "__generate";

pub fn run(dir: Option<std::ffi::OsString>) -> Result<()> {
    let dir = PathBuf::from(dir.context("usage: agentctl __generate DIR")?);
    let mut cmd = crate::Cli::command();
    cmd.build();
    let man = dir.join("man");
    create(&man)?;
    write_man(&cmd, "agentctl", &man)?;
    let completions = dir.join("completions");
    create(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "agentctl", &completions)
            .with_context(|| format!("cannot write {shell} completions"))?;
    }
    Ok(())
}

fn create(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes `name.1` for `cmd`, then one page per visible subcommand, recursively.
fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let page = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .title(name.to_uppercase())
        .section("1")
        .manual("agentd")
        .render(&mut out)
        .with_context(|| format!("cannot render {name}.1"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
