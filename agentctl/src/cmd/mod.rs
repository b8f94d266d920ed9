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
