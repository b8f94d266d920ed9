//! `agentctl resume RUN`: thaw a run that `agentctl pause` (or a `pause` rule) froze.

use std::path::Path;

use agentd_proto::Request;
use anyhow::Result;

/// Thaw a paused run
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run id, or a unique prefix of one (see `agentctl ps`)
    pub run: String,
}

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    resume(socket, &args.run)?;
    Ok(0)
}

/// Sends `resume` for `run`; shared with `watch`.
pub fn resume(socket: &Path, run: &str) -> Result<()> {
    let req = Request::Resume { run: run.into() };
    crate::client::request_ok(socket, req, &format!("resume run {run}"))
}
