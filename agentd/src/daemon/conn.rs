//! One client connection: frames in (with any attached fds), frames out.
//!
//! Reads always go through `recvmsg`, so descriptors attached to a frame are never lost, and at
//! most [`MAX_PENDING_FDS`] are held per connection (extra ones are closed at once). The frame
//! buffer never grows past the protocol's cap.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use agentd_proto::codec::{self, FrameBuffer, FrameError};
use agentd_proto::{ErrorBody, Response};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;

use crate::sys::fdpass;

const MAX_PENDING_FDS: usize = agentd_proto::MAX_FDS;

pub struct Conn {
    stream: UnixStream,
    frames: FrameBuffer,
    fds: VecDeque<OwnedFd>,
}

/// What a read produced.
pub enum Incoming {
    Frame(Vec<u8>),
    Bad(FrameError),
    Closed,
}

impl Conn {
    pub fn new(stream: UnixStream) -> Self {
        Conn {
            stream,
            frames: FrameBuffer::new(),
            fds: VecDeque::new(),
        }
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// The next frame. Cancel-safe: bytes already read stay buffered.
    pub async fn read(&mut self) -> io::Result<Incoming> {
        loop {
            match self.frames.next_frame() {
                Ok(Some(f)) => return Ok(Incoming::Frame(f)),
                Err(e) => return Ok(Incoming::Bad(e)),
                Ok(None) => {}
            }
            let mut buf = [0u8; 16 * 1024];
            let (n, fds) = loop {
                self.stream.readable().await?;
                let fd = self.stream.as_raw_fd();
                match self
                    .stream
                    .try_io(Interest::READABLE, || fdpass::recv_with_fds(fd, &mut buf))
                {
                    Ok(r) => break r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            };
            for fd in fds {
                if self.fds.len() < MAX_PENDING_FDS {
                    self.fds.push_back(fd);
                }
            }
            if n == 0 {
                return Ok(Incoming::Closed);
            }
            self.frames.extend(&buf[..n]);
        }
    }

    /// Takes every descriptor received so far.
    pub fn take_fds(&mut self) -> Vec<OwnedFd> {
        self.fds.drain(..).collect()
    }

    pub async fn send(&mut self, resp: &Response) -> io::Result<()> {
        let frame = codec::encode(resp).map_err(io::Error::other)?;
        self.stream.write_all(&frame).await
    }

    pub async fn send_error(&mut self, body: ErrorBody) -> io::Result<()> {
        self.send(&Response::Error(body)).await
    }
}
