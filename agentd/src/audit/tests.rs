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
    assert!(err.to_string().starts_with("record 3 (line 3): "), "{err}");
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
}

impl Write for GatedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.fail {
            return Err(io::Error::other("disk on fire"));
        }
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
    };
    (sink, gate, out)
}

#[test]
fn full_queue_blocks_the_sender_and_drops_nothing() {
    let (sink, gate, out) = gated(false);
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
