//! `agentctl kill RUN`: kill every process of a run at once (the daemon uses the cgroup).

use std::path::Path;

use agentd_proto::{Request, Response};
use anyhow::{bail, Context, Result};

/// Kill every process of a run at once
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run id, or a unique prefix of one (see `agentctl ps`)
    pub run: String,
}

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    let resp = crate::client::request(
        socket,
        Request::Kill {
            run: args.run.clone(),
        },
    )
    .with_context(|| format!("cannot kill run {}", args.run))?;
    match resp {
        Response::Ok => Ok(0),
        other => bail!("unexpected answer from agentd to kill: {other:?}"),
    }
}
