//! `agentctl deny ID [--errno ERRNO]`: refuse a held call; the agent's syscall fails with the
//! rule's errno (EACCES unless the rule says otherwise) or the one given here.

use std::path::Path;

use agentd_proto::Request;
use anyhow::Result;

/// Refuse a pending request (see `agentctl pending`)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Request id, or a unique prefix of one
    pub id: String,
    /// The error the agent's call fails with: a name (EACCES, EPERM, ECONNREFUSED, ENOENT, …) or
    /// a number [default: the rule's errno, EACCES]
    #[arg(long, value_name = "ERRNO", value_parser = parse_errno)]
    pub errno: Option<i32>,
}

pub fn run(socket: &Path, args: &Args) -> Result<i32> {
    deny(socket, &args.id, args.errno)?;
    Ok(0)
}

/// Sends `deny`; shared with `watch`.
pub fn deny(socket: &Path, id: &str, errno: Option<i32>) -> Result<()> {
    let req = Request::Deny {
        id: id.into(),
        errno,
    };
    crate::client::request_ok(socket, req, &format!("deny request {id}"))
}

/// The errno names `--errno` understands.
const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("ENOTDIR", libc::ENOTDIR),
    ("EISDIR", libc::EISDIR),
    ("EINVAL", libc::EINVAL),
    ("ENOSPC", libc::ENOSPC),
    ("EROFS", libc::EROFS),
    ("ENOSYS", libc::ENOSYS),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("ENETDOWN", libc::ENETDOWN),
    ("ENETUNREACH", libc::ENETUNREACH),
    ("ECONNRESET", libc::ECONNRESET),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("EHOSTUNREACH", libc::EHOSTUNREACH),
];

/// The largest errno the kernel's error range allows (`MAX_ERRNO`).
const MAX_ERRNO: i32 = 4095;

/// `EACCES`, `eacces` or `13` → 13.
pub fn parse_errno(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=MAX_ERRNO).contains(&n) {
            Ok(n)
        } else {
            Err(format!("errno {n} is out of range 1..={MAX_ERRNO}"))
        };
    }
    ERRNOS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|&(_, n)| n)
        .ok_or_else(|| {
            let names: Vec<&str> = ERRNOS.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown errno `{s}` (one of {}, or a number)",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errno_accepts_names_in_any_case_and_numbers() {
        assert_eq!(parse_errno("EACCES"), Ok(13));
        assert_eq!(parse_errno("eperm"), Ok(1));
        assert_eq!(parse_errno("ECONNREFUSED"), Ok(111));
        assert_eq!(parse_errno("ENOENT"), Ok(2));
        assert_eq!(parse_errno("28"), Ok(28));
    }

    #[test]
    fn parse_errno_rejects_unknown_names_and_out_of_range_numbers() {
        for bad in ["", "EFOO", "0", "-1", "4096"] {
            assert!(parse_errno(bad).is_err(), "{bad}");
        }
    }
}
