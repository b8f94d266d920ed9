//! One module per subcommand. Each exposes clap `Args` (or a subcommand enum) and a `run`
//! function returning the process exit code; errors go back to `main`, which prints them.

pub mod approve;
pub mod audit;
pub mod deny;
pub mod events;
pub mod inspect;
pub mod kill;
pub mod pause;
pub mod pending;
pub mod policy;
pub mod ps;
pub mod resume;
pub mod run;
pub mod watch;

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGWINCH in this thread and every thread spawned after
/// (call before spawning any), so they can be taken synchronously (`sigwait`, a signalfd)
/// instead of interrupting a thread at random. `run` and `watch` both work this way.
pub fn block_session_signals() -> anyhow::Result<nix::sys::signal::SigSet> {
    use anyhow::Context;
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGWINCH,
    ] {
        set.add(sig);
    }
    set.thread_block().context("cannot block signals")?;
    Ok(set)
}
