//! `agentctl pause RUN`: freeze every process of a run at once (the daemon uses the cgroup
//! freezer). Held calls stay held; `agentctl resume` thaws the run.

use std::path::Path;

use agentd_proto::Request;
use anyhow::Result;

/// Freeze every process of a run at once (resume it with `agentctl resume`)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run id, or a unique prefix of one (see `agentctl ps`)
    pub run: String,
}

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    pause(socket, &args.run)?;
    Ok(0)
}

/// Sends `pause` for `run`; shared with `watch`.
pub fn pause(socket: &Path, run: &str) -> Result<()> {
    let req = Request::Pause { run: run.into() };
    crate::client::request_ok(socket, req, &format!("pause run {run}"))
}
