//! The control socket's decoder: arbitrary bytes, fed to [`FrameBuffer`] in arbitrary chunks,
//! every frame it yields decoded as a request. Checks the framing invariants the daemon relies
//! on: nothing panics, the buffer never holds more than `MAX_FRAME` bytes of a partial frame,
//! every frame is shorter than `MAX_FRAME` and has no newline, and a request that decodes
//! re-encodes into a frame that decodes to the same request.
#![no_main]

use agentd_proto::codec::{decode_request, encode, FrameBuffer};
use agentd_proto::MAX_FRAME;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so frames split across reads are exercised too.
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first).max(1);
    let mut buf = FrameBuffer::new();
    for piece in bytes.chunks(chunk) {
        buf.extend(piece);
        loop {
            match buf.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() < MAX_FRAME, "frame of {} bytes", frame.len());
                    assert!(!frame.contains(&b'\n'), "a frame holds a newline");
                    if let Ok(req) = decode_request(&frame) {
                        let again = encode(&req).expect("a decoded request re-encodes");
                        let line = &again[..again.len() - 1];
                        let back = decode_request(line).expect("a re-encoded request decodes");
                        assert_eq!(
                            format!("{req:?}"),
                            format!("{back:?}"),
                            "request changed across a round trip"
                        );
                    }
                }
                Ok(None) => break,
                Err(_) => continue,
            }
        }
        assert!(
            buf.pending() <= MAX_FRAME,
            "{} bytes buffered (cap {MAX_FRAME})",
            buf.pending()
        );
    }
});
