//! agentd-e2e-probe: a tiny helper the e2e tests copy into a run's workspace and execute inside
//! the sandbox, so they do not depend on which of python3, nc or socat the sandbox shows.
//!
//! Usage: `agentd-e2e-probe connect-unix PATH|@ABSTRACT` | `connect-tcp ADDR:PORT`
//! Exit 0 and print `connected` if the connection was made; exit 1 and print the error otherwise;
//! exit 2 on a usage error.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["connect-unix", name] => match name.strip_prefix('@') {
            Some(abs) => SocketAddr::from_abstract_name(abs.as_bytes())
                .and_then(|sa| UnixStream::connect_addr(&sa))
                .map(drop),
            None => UnixStream::connect(name).map(drop),
        },
        ["connect-tcp", addr] => match addr.parse() {
            Ok(sa) => std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(5)).map(drop),
            Err(e) => {
                eprintln!("bad address {addr}: {e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: agentd-e2e-probe connect-unix PATH | connect-tcp ADDR:PORT");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => {
            println!("connected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("failed: {e}");
            ExitCode::from(1)
        }
    }
}
