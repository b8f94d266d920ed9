//! Tests of the writer together with the reader and verify.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use super::testlog::TestDir;
use super::writer::{spawn, ChainHead, Sink};
use super::*;

fn entry(kind: Kind, body: Body) -> Entry {
    Entry { kind, body }
}

fn decision(kind: Kind, what: Body, verdict: &str, rule: &str) -> Entry {
    entry(
        kind,
        Body {
            uid: Some(1000),
            user: Some("alice".into()),
            pid: Some(4242),
            comm: Some("sh".into()),
            verdict: Some(verdict.into()),
            rule: Some(rule.into()),
            reason: Some(format!("because {rule}")),
            decided_by: Some("policy".into()),
            ..what
        },
    )
}

/// The records of a scripted run: start, exec, open, connect, a denied open, end.
fn scripted_run() -> Vec<Entry> {
    vec![
        entry(
            Kind::RunStart,
            Body {
                policy_digest: Some("ab".repeat(32)),
                argv: Some(vec!["sh".into(), "-c".into(), "true".into()]),
                workspace: Some("/home/alice/w".into()),
                ..Body::default()
            },
        ),
        decision(
            Kind::Exec,
            Body {
                path: Some("/usr/bin/cat".into()),
                argv: Some(vec!["cat".into(), "x".into()]),
                ..Body::default()
            },
            "allow",
            "exec.system",
        ),
        decision(
            Kind::Open,
            Body {
                path: Some("/home/alice/w/x".into()),
                access: Some("read".into()),
                ..Body::default()
            },
            "allow",
            "fs.workspace",
        ),
        decision(
            Kind::Connect,
            Body {
                addr: Some("93.184.216.34:443".into()),
                ..Body::default()
            },
            "allow",
            "net.https",
        ),
        decision(
            Kind::Open,
            Body {
                path: Some("/home/alice/.ssh/id_ed25519".into()),
                access: Some("read".into()),
                errno: Some(13),
                ..Body::default()
            },
            "deny",
            "fs.secrets",
        ),
        entry(
            Kind::RunEnd,
            Body {
                status: Some(serde_json::json!({"kind": "code", "code": 0})),
                usage: Some(serde_json::json!({"cpu_seconds": 0.1})),
                ..Body::default()
            },
        ),
    ]
}

fn write_all(path: &std::path::Path, entries: Vec<Entry>) {
    let log = AuditLog::open(path, "ab12cd34", 4).unwrap();
    for e in entries {
        log.record(e).unwrap();
    }
    log.close().unwrap();
}

#[test]
fn scripted_run_log_holds_exactly_the_records_in_order_and_verifies() {
    let dir = TestDir::new("scripted");
    let path = dir.path().join(FILE_NAME);
    write_all(&path, scripted_run());

    let records: Vec<Record> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected = scripted_run();
    assert_eq!(records.len(), expected.len());
    for (i, (r, e)) in records.iter().zip(&expected).enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.run, "ab12cd34");
        assert_eq!((r.kind, &r.body), (e.kind, &e.body));
        assert_eq!(r.ts.len(), "2025-01-01T00:00:00.000000Z".len(), "{}", r.ts);
    }
    assert_eq!(records[0].prev, record::GENESIS);
    for w in records.windows(2) {
        assert_eq!(w[1].prev, w[0].hash);
    }
    assert_eq!(verify(&path), Ok(6));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn reopened_log_continues_the_chain() {
    let dir = TestDir::new("reopen");
    let path = dir.path().join(FILE_NAME);
    write_all(&path, scripted_run());
    write_all(
        &path,
        vec![entry(
            Kind::DaemonStart,
            Body {
                message: Some("agentd restarted".into()),
                ..Body::default()
            },
        )],
    );
    assert_eq!(verify(&path), Ok(7));
    let last = read(&path, &Filter::default()).unwrap().pop().unwrap();
    assert_eq!(
        (last["seq"].as_u64(), last["kind"].as_str()),
        (Some(7), Some("daemon_start"))
    );
}

#[test]
fn reopened_log_after_a_torn_write_starts_a_fresh_line_and_verify_names_it() {
    let dir = TestDir::new("torn");
    let path = dir.path().join(FILE_NAME);
    write_all(&path, scripted_run()[..2].to_vec());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"seq\":3,\"ts\":\"20").unwrap();
    write_all(&path, vec![entry(Kind::Note, Body::default())]);
    let err = verify(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("record 3 (audit.jsonl line 3): "),
        "{err}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let last: Record = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        last.seq, 3,
        "the chain continues from the last complete record"
    );
}

type Gate = Arc<(Mutex<bool>, std::sync::Condvar)>;

/// A sink whose writes wait until the test opens the gate, or fail.
struct GatedSink {
    gate: Gate,
    out: Arc<Mutex<Vec<u8>>>,
    fail: bool,
    /// Set once the writer has reached the sink (and, gate closed, is stuck there).
    entered: Arc<AtomicBool>,
}

impl Write for GatedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.fail {
            return Err(io::Error::other("disk on fire"));
        }
        self.entered.store(true, Ordering::SeqCst);
        let (open, cv) = &*self.gate;
        let mut g = open.lock().unwrap();
        while !*g {
            g = cv.wait(g).unwrap();
        }
        self.out.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for GatedSink {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn gated(fail: bool) -> (GatedSink, Gate, Arc<Mutex<Vec<u8>>>) {
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = GatedSink {
        gate: gate.clone(),
        out: out.clone(),
        fail,
        entered: Arc::new(AtomicBool::new(false)),
    };
    (sink, gate, out)
}

#[test]
fn full_queue_blocks_the_sender_and_drops_nothing() {
    let (sink, gate, out) = gated(false);
    let entered = sink.entered.clone();
    let log = spawn(sink, "mem".as_ref(), "r", ChainHead::genesis(), 2).unwrap();
    let note = |n: i32| {
        entry(
            Kind::Note,
            Body {
                pid: Some(n),
                ..Body::default()
            },
        )
    };
    // The writer takes record 1 and stalls flushing it; 2 and 3 fill the queue.
    log.record(note(1)).unwrap();
    log.record(note(2)).unwrap();
    log.record(note(3)).unwrap();
    // Whatever it buffered, once the writer is stuck in the sink at most two slots are free,
    // so the sender's three records cannot all fit (under load the writer may take more than
    // record 1 into its buffer before it flushes).
    for _ in 0..5000 {
        if entered.load(Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        entered.load(Ordering::SeqCst),
        "the writer never reached the sink"
    );
    let returned = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel();
    let sender = {
        let log = log.clone();
        let returned = returned.clone();
        std::thread::spawn(move || {
            for n in 4..=6 {
                log.record(note(n)).unwrap();
            }
            returned.store(true, Ordering::SeqCst);
            let _ = done_tx.send(());
        })
    };
    // A negative check needs a bound: the sender must still be waiting after it.
    assert!(done_rx.recv_timeout(Duration::from_millis(200)).is_err());
    assert!(!returned.load(Ordering::SeqCst), "the sender must block");
    {
        let (open, cv) = &*gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
    sender.join().unwrap();
    log.close().unwrap();
    let bytes = out.lock().unwrap().clone();
    assert_eq!(verify::verify_bytes(&bytes), Ok(6));
    let pids: Vec<i64> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["pid"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(pids, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn write_error_stops_the_writer_and_later_records_fail() {
    let (sink, _gate, _out) = gated(true);
    let log = spawn(
        sink,
        "/x/audit.jsonl".as_ref(),
        "r",
        ChainHead::genesis(),
        1,
    )
    .unwrap();
    // The first record is accepted into the queue; the failed flush stops the writer.
    let _ = log.record(entry(Kind::Note, Body::default()));
    let mut failed = None;
    for _ in 0..10_000 {
        if let Err(e) = log.record(entry(Kind::Note, Body::default())) {
            failed = Some(e);
            break;
        }
    }
    let err = failed.expect("records must fail once the writer stopped");
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert!(err.to_string().contains("/x/audit.jsonl"), "{err}");
    assert!(log.close().is_err());
}

#[test]
fn record_after_close_fails() {
    let dir = TestDir::new("closed");
    let log = AuditLog::open(&dir.path().join(FILE_NAME), "r", 4).unwrap();
    let other = log.clone();
    log.close().unwrap();
    let err = other
        .record(entry(Kind::Note, Body::default()))
        .unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
}

#[test]
fn dropping_every_handle_still_writes_the_queue() {
    let dir = TestDir::new("drop");
    let path = dir.path().join(FILE_NAME);
    let log = AuditLog::open(&path, "r", 4).unwrap();
    let mut rx = log.subscribe();
    for _ in 0..3 {
        log.record(entry(Kind::Note, Body::default())).unwrap();
    }
    drop(log);
    // The subscription ends once the writer thread is gone; the lines come first.
    let mut lines = Vec::new();
    while let Ok(line) = rx.blocking_recv() {
        lines.push(line.to_string());
    }
    assert_eq!(lines.len(), 3);
    assert_eq!(verify(&path), Ok(3));
    let file: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines, file, "subscribers see exactly the lines written");
}

/// Rotation size for the tests below: about two records per file.
const TINY: u64 = 700;

fn write_rotating(path: &std::path::Path, entries: Vec<Entry>) {
    let log = AuditLog::open_rotating(path, "ab12cd34", 4, TINY).unwrap();
    for e in entries {
        log.record(e).unwrap();
    }
    log.close().unwrap();
}

fn seq_of(v: &serde_json::Value) -> u64 {
    v["seq"].as_u64().unwrap()
}

#[test]
fn rotation_at_a_tiny_size_keeps_the_chain_verifiable_across_files() {
    let dir = TestDir::new("rotate");
    let path = dir.path().join(FILE_NAME);
    write_rotating(&path, scripted_run());
    write_rotating(&path, scripted_run()); // reopened: numbering and chain continue

    let segs = segments(&path).unwrap();
    assert!(segs.len() >= 3, "{segs:?}");
    let numbers: Vec<u64> = segs.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=segs.len() as u64).collect::<Vec<_>>());
    for (_, p) in &segs {
        let len = std::fs::metadata(p).unwrap().len();
        let lines = std::fs::read_to_string(p).unwrap().lines().count();
        assert!(len <= TINY || lines == 1, "{} is {len} bytes", p.display());
    }
    assert_eq!(verify(&path), Ok(12));
    let all = read(&path, &Filter::default()).unwrap();
    assert_eq!(
        all.iter().map(seq_of).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    // The first record of each later file chains to the last one of the file before.
    let first_of_2: Record = serde_json::from_str(
        std::fs::read_to_string(&segs[1].1)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let last_of_1: Record = serde_json::from_str(
        std::fs::read_to_string(&segs[0].1)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first_of_2.prev, last_of_1.hash);
    assert_eq!(first_of_2.seq, last_of_1.seq + 1);
}

#[test]
fn verify_names_the_rotated_file_and_record_of_a_flipped_byte() {
    let dir = TestDir::new("rotate-flip");
    let path = dir.path().join(FILE_NAME);
    write_rotating(&path, scripted_run());
    let segs = segments(&path).unwrap();
    let first_lines = std::fs::read_to_string(&segs[0].1).unwrap().lines().count() as u64;
    // Flip a byte inside the first line of the second segment.
    let target = &segs[1].1;
    let mut bytes = std::fs::read(target).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(target, &bytes).unwrap();
    let err = verify(&path).unwrap_err();
    match &err {
        VerifyError::Broken {
            file, record, line, ..
        } => {
            assert_eq!(file, "audit.2.jsonl");
            assert_eq!(*line, 1);
            assert_eq!(*record, first_lines + 1);
        }
        other => panic!("expected a broken chain, got {other:?}"),
    }
    assert!(err.to_string().contains("audit.2.jsonl line 1"), "{err}");
}

#[test]
fn verify_finds_a_removed_segment() {
    let dir = TestDir::new("rotate-gap");
    let path = dir.path().join(FILE_NAME);
    write_rotating(&path, scripted_run());
    let segs = segments(&path).unwrap();
    std::fs::remove_file(&segs[1].1).unwrap();
    let err = verify(&path).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Broken { file, line: 1, .. } if file == "audit.3.jsonl"),
        "{err}"
    );
}

#[test]
fn chain_continues_from_the_newest_segment_when_the_live_file_is_missing() {
    let dir = TestDir::new("rotate-crash");
    let path = dir.path().join(FILE_NAME);
    write_rotating(&path, scripted_run());
    // A crash between the rename and the first write of the fresh file.
    let n = segments(&path).unwrap().len() as u64;
    std::fs::rename(&path, segment_path(&path, n + 1)).unwrap();
    assert_eq!(verify(&path), Ok(6));
    write_rotating(&path, scripted_run());
    assert_eq!(verify(&path), Ok(12));
}

#[test]
fn tail_follows_the_log_across_rotations_without_gaps_or_repeats() {
    let dir = TestDir::new("rotate-tail");
    let path = dir.path().join(FILE_NAME);
    let run = scripted_run();
    write_rotating(&path, run[..1].to_vec());
    let mut tail = Tail::open(&path).unwrap();
    let mut seen: Vec<u64> = tail
        .next_batch(&Filter::default())
        .unwrap()
        .iter()
        .map(seq_of)
        .collect();
    // The live file the tail holds open is renamed under it, more than once.
    write_rotating(&path, run[1..].to_vec());
    write_rotating(&path, run.clone());
    seen.extend(
        tail.next_batch(&Filter::default())
            .unwrap()
            .iter()
            .map(seq_of),
    );
    assert_eq!(seen, (1..=12).collect::<Vec<_>>());
    assert!(tail.next_batch(&Filter::default()).unwrap().is_empty());
    assert!(tail.ended);
}

#[test]
fn rotation_disabled_keeps_one_file() {
    let dir = TestDir::new("rotate-off");
    let path = dir.path().join(FILE_NAME);
    let log = AuditLog::open_rotating(&path, "ab12cd34", 4, 0).unwrap();
    for e in scripted_run() {
        log.record(e).unwrap();
    }
    log.close().unwrap();
    assert!(segments(&path).unwrap().is_empty());
    assert_eq!(verify(&path), Ok(6));
}
