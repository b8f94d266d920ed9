//! The control-socket client: socket resolution, connecting, sending one request (optionally with
//! file descriptors as `SCM_RIGHTS`) and reading newline-JSON responses.
//!
//! Every frame read goes through [`codec::FrameBuffer`], so a misbehaving daemon can never make
//! agentctl buffer more than [`agentd_proto::MAX_FRAME`] bytes. This module is the only place
//! that touches the socket.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use agentd_proto::codec::{self, FrameBuffer};
use agentd_proto::{Envelope, ErrorBody, Request, Response, DEFAULT_SOCKET};
use anyhow::{anyhow, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// The socket path: `--socket` wins over `AGENTD_SOCKET`, which wins over the default. An empty
/// value counts as unset.
pub fn resolve_socket(flag: Option<PathBuf>, env: Option<OsString>) -> PathBuf {
    flag.filter(|p| !p.as_os_str().is_empty())
        .or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// An error that comes with a known fix, printed as a `hint:` line by `main`.
#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

impl From<ErrorBody> for Hinted {
    fn from(body: ErrorBody) -> Self {
        Self {
            message: body.message,
            hint: body.hint,
        }
    }
}

/// One connection to agentd.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    frames: FrameBuffer,
}

impl Connection {
    /// Connects to the daemon at `path`.
    pub fn connect(path: &Path) -> Result<Self> {
        let stream = UnixStream::connect(path).map_err(|e| Hinted {
            message: format!("cannot reach agentd at {}: {}", path.display(), io_desc(&e)),
            hint: Some(
                "is the service running? `systemctl status agentd`, or pass --socket / \
                 AGENTD_SOCKET"
                    .into(),
            ),
        })?;
        Ok(Self {
            stream,
            frames: FrameBuffer::new(),
        })
    }

    /// Sends `req` as one frame; `fds` ride on the same `sendmsg` as `SCM_RIGHTS`.
    pub fn send(&mut self, req: Request, fds: &[BorrowedFd<'_>]) -> Result<()> {
        let frame = codec::encode(&Envelope::new(req)).context("cannot encode request")?;
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let cmsgs: Vec<ControlMessage<'_>> = if raw.is_empty() {
            Vec::new()
        } else {
            vec![ControlMessage::ScmRights(&raw)]
        };
        let sent = loop {
            match sendmsg::<()>(
                self.stream.as_raw_fd(),
                &[IoSlice::new(&frame)],
                &cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Err(Errno::EINTR) => continue,
                other => break other.context("cannot send request to agentd")?,
            }
        };
        // The fds went with the first byte; a short send only leaves plain bytes to write.
        let rest = frame.get(sent..).unwrap_or_default();
        (&self.stream)
            .write_all(rest)
            .context("cannot send request to agentd")
    }

    /// The next response, `None` when the daemon closed the connection.
    pub fn recv(&mut self) -> Result<Option<Response>> {
        loop {
            if let Some(resp) = self.next_buffered()? {
                return Ok(Some(resp));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// A response already buffered, if a complete frame is there.
    pub fn next_buffered(&mut self) -> Result<Option<Response>> {
        match self.frames.next_frame().context("bad frame from agentd")? {
            Some(frame) => Ok(Some(
                codec::decode::<Response>(&frame).context("bad response from agentd")?,
            )),
            None => Ok(None),
        }
    }

    /// Reads once from the socket into the frame buffer; `false` at end of stream.
    pub fn fill(&mut self) -> Result<bool> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.frames.extend(buf.get(..n).unwrap_or_default());
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("cannot read from agentd"),
            }
        }
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

/// Sends a request whose only good answer is `Ok`: errors read "cannot WHAT: …", any other
/// answer "unexpected answer from agentd to VERB" (`what` = "VERB object", e.g. "pause run x").
pub fn request_ok(path: &Path, req: Request, what: &str) -> Result<()> {
    match request(path, req).with_context(|| format!("cannot {what}"))? {
        Response::Ok => Ok(()),
        other => {
            let verb = what.split_whitespace().next().unwrap_or(what);
            Err(anyhow!(
                "unexpected answer from agentd to {verb}: {other:?}"
            ))
        }
    }
}

/// Sends one request and returns the single response; a daemon error becomes a [`Hinted`].
pub fn request(path: &Path, req: Request) -> Result<Response> {
    let mut conn = Connection::connect(path)?;
    conn.send(req, &[])?;
    match conn.recv()? {
        Some(Response::Error(body)) => Err(Hinted::from(body).into()),
        Some(resp) => Ok(resp),
        None => Err(anyhow!("agentd closed the connection without answering")),
    }
}

/// "Connection refused" rather than "Connection refused (os error 111)".
fn io_desc(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(errno) => Errno::from_raw(errno).desc().to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_socket_prefers_flag_then_env_then_default() {
        let flag = Some(PathBuf::from("/flag.sock"));
        let env = Some(OsString::from("/env.sock"));
        assert_eq!(
            resolve_socket(flag.clone(), env.clone()),
            PathBuf::from("/flag.sock")
        );
        assert_eq!(resolve_socket(None, env), PathBuf::from("/env.sock"));
        assert_eq!(resolve_socket(None, None), PathBuf::from(DEFAULT_SOCKET));
    }

    #[test]
    fn resolve_socket_ignores_empty_values() {
        assert_eq!(
            resolve_socket(Some(PathBuf::new()), Some(OsString::new())),
            PathBuf::from(DEFAULT_SOCKET)
        );
    }

    #[test]
    fn io_desc_drops_os_error_suffix() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_desc(&e), "Connection refused");
    }
}
