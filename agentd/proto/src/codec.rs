//! Framing: newline-delimited JSON with a hard size cap.
//!
//! [`FrameBuffer`] accumulates bytes from any source (the daemon reads with `recvmsg`, the client
//! with `read`) and yields complete frames. A frame longer than [`MAX_FRAME`] is reported once as
//! [`FrameError::TooLarge`] and its bytes are skipped up to the next newline, so one bad frame
//! never desynchronises the stream nor grows the buffer beyond the cap.

use serde::{de::DeserializeOwned, Serialize};

use crate::{Envelope, ErrorBody, ErrorCode, MAX_FRAME, VERSION};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame exceeds {MAX_FRAME} bytes")]
    TooLarge,
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("unsupported protocol version {0} (this side speaks {VERSION})")]
    UnsupportedVersion(u32),
}

impl FrameError {
    /// The structured error a daemon answers with.
    pub fn to_body(&self) -> ErrorBody {
        let code = match self {
            FrameError::TooLarge => ErrorCode::TooLarge,
            FrameError::Malformed(_) => ErrorCode::Malformed,
            FrameError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
        };
        let hint = match self {
            FrameError::UnsupportedVersion(_) => "use an agentctl of the same version as agentd",
            _ => "send one JSON request per line, as agentctl does",
        };
        ErrorBody::new(code, self.to_string()).with_hint(hint)
    }
}

/// Encodes one frame (JSON + `\n`).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    out.push(b'\n');
    if out.len() > MAX_FRAME {
        return Err(FrameError::TooLarge);
    }
    Ok(out)
}

/// Decodes a request frame (without its newline), checking the version.
pub fn decode_request(line: &[u8]) -> Result<Envelope, FrameError> {
    // Read the version first so that a newer client gets "unsupported version", not "malformed".
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        v: u32,
    }
    match serde_json::from_slice::<VersionOnly>(line) {
        Ok(VersionOnly { v }) if v != VERSION => return Err(FrameError::UnsupportedVersion(v)),
        Ok(_) => {}
        Err(e) => return Err(FrameError::Malformed(e.to_string())),
    }
    serde_json::from_slice(line).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Decodes any frame (without its newline) into `T`.
pub fn decode<T: DeserializeOwned>(line: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(line).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Accumulates bytes and splits them into frames.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    /// Inside an oversized frame: drop bytes until the next newline.
    skipping: bool,
}

impl FrameBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame (without its newline), `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            let newline = self.buf.iter().position(|&b| b == b'\n');
            if self.skipping {
                match newline {
                    Some(i) => {
                        self.buf.drain(..=i);
                        self.skipping = false;
                        continue;
                    }
                    None => {
                        self.buf.clear();
                        return Ok(None);
                    }
                }
            }
            return match newline {
                Some(i) if i + 1 > MAX_FRAME => {
                    self.buf.drain(..=i);
                    Err(FrameError::TooLarge)
                }
                Some(i) => {
                    let frame: Vec<u8> = self.buf.drain(..=i).take(i).collect();
                    Ok(Some(frame))
                }
                None if self.buf.len() >= MAX_FRAME => {
                    self.buf.clear();
                    self.skipping = true;
                    Err(FrameError::TooLarge)
                }
                None => Ok(None),
            };
        }
    }

    /// Bytes buffered but not yet part of a complete frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Request;

    #[test]
    fn roundtrip_request() {
        let frame = encode(&Envelope::new(Request::Ps)).unwrap();
        assert_eq!(frame.last(), Some(&b'\n'));
        let env = decode_request(&frame[..frame.len() - 1]).unwrap();
        assert_eq!(env.req, Request::Ps);
    }

    #[test]
    fn decode_request_rejects_other_version() {
        let err = decode_request(br#"{"v":99,"req":{"type":"ps"}}"#).unwrap_err();
        assert_eq!(err, FrameError::UnsupportedVersion(99));
        assert_eq!(err.to_body().code, ErrorCode::UnsupportedVersion);
    }

    #[test]
    fn decode_request_rejects_unknown_fields_and_types() {
        assert!(matches!(
            decode_request(br#"{"v":1,"req":{"type":"kill","run":"a","x":1}}"#),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode_request(br#"{"v":1,"req":{"type":"nope"}}"#),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode_request(b"not json"),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn audit_request_defaults_optional_fields() {
        let env = decode_request(br#"{"v":1,"req":{"type":"audit","run":"ab"}}"#).unwrap();
        assert_eq!(
            env.req,
            Request::Audit {
                run: "ab".into(),
                follow: false,
                kind: None,
                verdict: None,
                verify: false,
            }
        );
    }

    #[test]
    fn run_request_without_json_events_still_decodes() {
        let line = br#"{"v":1,"req":{"type":"run","argv":["sh"],"workspace":"/w","cwd":"/w",
            "policy":null,"env":[],"stdio":"pipes"}}"#;
        let Request::Run(run) = decode_request(line).unwrap().req else {
            panic!("not a run request");
        };
        assert!(!run.json_events);
    }

    #[test]
    fn audit_responses_roundtrip() {
        use crate::Response;
        let resp = Response::AuditRecords {
            records: vec![serde_json::json!({"seq": 1, "kind": "exec"})],
        };
        let frame = encode(&resp).unwrap();
        assert_eq!(decode::<Response>(&frame[..frame.len() - 1]).unwrap(), resp);
        let end = encode(&Response::AuditEnd { verified: Some(3) }).unwrap();
        assert_eq!(end, b"{\"type\":\"audit_end\",\"verified\":3}\n");
    }

    #[test]
    fn frame_buffer_splits_frames_across_reads() {
        let mut fb = FrameBuffer::new();
        fb.extend(b"{\"a\":");
        assert_eq!(fb.next_frame().unwrap(), None);
        fb.extend(b"1}\n{\"b\":2}\n{");
        assert_eq!(fb.next_frame().unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(fb.next_frame().unwrap().unwrap(), b"{\"b\":2}");
        assert_eq!(fb.next_frame().unwrap(), None);
        assert_eq!(fb.pending(), 1);
    }

    #[test]
    fn frame_buffer_rejects_oversized_frame_and_resyncs() {
        let mut fb = FrameBuffer::new();
        fb.extend(&vec![b'x'; MAX_FRAME]);
        assert_eq!(fb.next_frame(), Err(FrameError::TooLarge));
        assert_eq!(fb.pending(), 0, "the buffer never grows past the cap");
        fb.extend(&vec![b'y'; 1000]);
        assert_eq!(fb.next_frame().unwrap(), None);
        fb.extend(b"zz\n{\"ok\":1}\n");
        assert_eq!(fb.next_frame().unwrap().unwrap(), b"{\"ok\":1}");
    }

    #[test]
    fn frame_buffer_rejects_oversized_complete_frame() {
        let mut fb = FrameBuffer::new();
        let mut big = vec![b'x'; MAX_FRAME];
        big.push(b'\n');
        big.extend_from_slice(b"{}\n");
        fb.extend(&big);
        assert_eq!(fb.next_frame(), Err(FrameError::TooLarge));
        assert_eq!(fb.next_frame().unwrap().unwrap(), b"{}");
    }

    #[test]
    fn exit_codes_follow_docker_run() {
        assert_eq!(ExitStatusFixture::code(3), 3);
        assert_eq!(
            crate::ExitStatus::Signal { signal: 9 }.exit_code(),
            137,
            "128+N for signal N"
        );
        assert_eq!(
            crate::ExitStatus::ExecFailed {
                errno: 2,
                message: String::new()
            }
            .exit_code(),
            127
        );
        assert_eq!(
            crate::ExitStatus::ExecFailed {
                errno: 13,
                message: String::new()
            }
            .exit_code(),
            126
        );
    }

    struct ExitStatusFixture;
    impl ExitStatusFixture {
        fn code(c: i32) -> i32 {
            crate::ExitStatus::Code { code: c }.exit_code()
        }
    }
}
