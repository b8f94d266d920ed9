//! The real `agentctl` binary against a fake agentd: a `UnixListener` in a temp directory that
//! checks the frames (and fds) agentctl sends and answers with canned responses.
//!
//! No privileges needed: the fake daemon plays the agent by writing to the fds it received.
// clippy.toml's allow-*-in-tests is not honoured in tests/ directories (rust-clippy#13981).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use agentd_proto::{codec, Envelope, ErrorBody, ErrorCode, ExitStatus, Request, Response};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("agentctl-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads one request frame, with the fds that came with it.
fn read_request(stream: &mut UnixStream) -> (Envelope, Vec<OwnedFd>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 3]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(raw) = c {
            for fd in raw {
                // SAFETY: the kernel just installed `fd` in our table for us; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    let n = msg.bytes;
    let mut data = buf[..n].to_vec();
    while !data.ends_with(b"\n") {
        let mut more = [0u8; 4096];
        let m = stream.read(&mut more).unwrap();
        assert!(m > 0, "client closed mid-frame");
        data.extend_from_slice(&more[..m]);
    }
    let env = codec::decode_request(&data[..data.len() - 1]).unwrap();
    (env, fds)
}

fn send(stream: &mut UnixStream, resp: &Response) {
    stream.write_all(&codec::encode(resp).unwrap()).unwrap();
}

/// Serves one connection with `serve` on a fresh socket; returns the socket path.
fn fake_daemon<F>(dir: &TempDir, serve: F) -> (PathBuf, JoinHandle<()>)
where
    F: FnOnce(UnixStream) + Send + 'static,
{
    let path = dir.0.join("agentd.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        serve(stream);
    });
    (path, handle)
}

fn agentctl(socket: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("AGENTD_SOCKET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn ps_sends_ps_frame_and_prints_table() {
    let dir = TempDir::new();
    let (socket, server) = fake_daemon(&dir, |mut s| {
        let (env, fds) = read_request(&mut s);
        assert_eq!(env, Envelope::new(Request::Ps));
        assert!(fds.is_empty());
        let run = serde_json::from_str(
            r#"{"id":"r42","uid":1000,"state":"running","argv":["claude"],"workspace":"/w",
                "policy":"default","started_at":0,"pid":77,"exit":null}"#,
        )
        .unwrap();
        send(&mut s, &Response::Runs { runs: vec![run] });
    });
    let out = agentctl(&socket, &["ps"], b"");
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ID   STATE    UID   AGE"), "{stdout}");
    assert!(stdout.contains("r42  running  1000"), "{stdout}");
    assert!(stdout.trim_end().ends_with("default  claude"), "{stdout}");
}

#[test]
fn run_with_pipes_relays_stdio_and_returns_exit_code() {
    let dir = TempDir::new();
    let workspace = dir.0.canonicalize().unwrap();
    let expected_ws = workspace.to_str().unwrap().to_string();
    let (socket, server) = fake_daemon(&dir, move |mut s| {
        let (env, fds) = read_request(&mut s);
        let Request::Run(req) = env.req else {
            panic!("not a run request: {env:?}")
        };
        assert_eq!(req.argv, ["cat", "-n"]);
        assert_eq!(req.workspace, expected_ws);
        assert_eq!(req.policy.as_deref(), Some("strict"));
        assert_eq!(req.stdio, agentd_proto::Stdio::Pipes);
        assert!(req.env.iter().any(|(k, _)| k == "PATH"));
        let [stdin, stdout, stderr]: [OwnedFd; 3] = fds.try_into().unwrap();
        send(
            &mut s,
            &Response::Started {
                run: "r1".into(),
                policy: "strict".into(),
                pid: 9,
            },
        );
        let mut input = String::new();
        std::fs::File::from(stdin)
            .read_to_string(&mut input)
            .unwrap();
        std::fs::File::from(stdout)
            .write_all(format!("out:{input}").as_bytes())
            .unwrap();
        std::fs::File::from(stderr).write_all(b"err\n").unwrap();
        let status = ExitStatus::Code { code: 3 };
        send(
            &mut s,
            &Response::Exited {
                run: "r1".into(),
                status,
            },
        );
    });
    let ws = workspace.to_str().unwrap();
    let out = agentctl(
        &socket,
        &[
            "run",
            "--policy",
            "strict",
            "--workspace",
            ws,
            "--",
            "cat",
            "-n",
        ],
        b"hello\n",
    );
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out:hello\n");
    assert_eq!(text(&out.stderr), "err\n");
}

#[test]
fn run_json_events_prints_daemon_frames_on_stderr() {
    let dir = TempDir::new();
    let (socket, server) = fake_daemon(&dir, |mut s| {
        let (_, fds) = read_request(&mut s);
        drop(fds);
        send(
            &mut s,
            &Response::Started {
                run: "r1".into(),
                policy: "default".into(),
                pid: 9,
            },
        );
        let status = ExitStatus::Signal { signal: 15 };
        send(
            &mut s,
            &Response::Exited {
                run: "r1".into(),
                status,
            },
        );
    });
    let out = agentctl(&socket, &["run", "--json-events", "true"], b"");
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(143));
    let lines: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["type"], "started");
    assert_eq!(lines[1]["status"]["signal"], 15);
}

#[test]
fn run_refused_by_daemon_exits_125_with_hint() {
    let dir = TempDir::new();
    let (socket, server) = fake_daemon(&dir, |mut s| {
        let _ = read_request(&mut s);
        let body = ErrorBody::new(ErrorCode::InvalidPolicy, "policy nope not found")
            .with_hint("see /etc/agentd/policies");
        send(&mut s, &Response::Error(body));
    });
    let out = agentctl(&socket, &["run", "--", "true"], b"");
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        "agentctl: policy nope not found\nhint: see /etc/agentd/policies\n"
    );
}

#[test]
fn run_connection_dropped_before_exit_exits_125() {
    let dir = TempDir::new();
    let (socket, server) = fake_daemon(&dir, |mut s| {
        let _ = read_request(&mut s);
        send(
            &mut s,
            &Response::Started {
                run: "r1".into(),
                policy: "default".into(),
                pid: 9,
            },
        );
    });
    let out = agentctl(&socket, &["run", "--", "true"], b"");
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("closed the connection before the run exited"));
}

#[test]
fn unreachable_daemon_exits_1_or_125_with_hint() {
    let dir = TempDir::new();
    let socket = dir.0.join("missing.sock");
    let ps = agentctl(&socket, &["ps"], b"");
    assert_eq!(ps.status.code(), Some(1));
    let stderr = text(&ps.stderr);
    let expected = format!(
        "agentctl: cannot list runs: cannot reach agentd at {}",
        socket.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(
        stderr.contains("\nhint: is the service running?"),
        "{stderr}"
    );
    let run = agentctl(&socket, &["run", "--", "true"], b"");
    assert_eq!(run.status.code(), Some(125));
}

#[test]
fn run_with_missing_workspace_exits_125() {
    let dir = TempDir::new();
    let missing = dir.0.join("nope");
    let out = agentctl(
        &dir.0.join("unused.sock"),
        &[
            "run",
            "--workspace",
            missing.to_str().unwrap(),
            "--",
            "true",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        format!("agentctl: workspace {} does not exist\n", missing.display())
    );
}

#[test]
fn run_with_pipes_forwards_sigint_to_the_run() {
    let dir = TempDir::new();
    let path = dir.0.join("agentd.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let (mut run_conn, _) = listener.accept().unwrap();
        let (_, fds) = read_request(&mut run_conn);
        send(
            &mut run_conn,
            &Response::Started {
                run: "r1".into(),
                policy: "p".into(),
                pid: 9,
            },
        );
        // agentctl blocks its signals before it sends the request: safe to signal it now.
        ready_tx.send(()).unwrap();
        let (mut sig_conn, _) = listener.accept().unwrap();
        let (env, _) = read_request(&mut sig_conn);
        assert_eq!(
            env.req,
            Request::Signal {
                run: "r1".into(),
                signal: libc::SIGINT
            }
        );
        send(&mut sig_conn, &Response::Ok);
        drop(fds);
        let status = ExitStatus::Signal {
            signal: libc::SIGINT,
        };
        send(
            &mut run_conn,
            &Response::Exited {
                run: "r1".into(),
                status,
            },
        );
    });
    let child = Command::new(env!("CARGO_BIN_EXE_agentctl"))
        .arg("--socket")
        .arg(&path)
        .args(["run", "--", "sleep", "100"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ready_rx.recv().unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
}

#[test]
fn policy_check_prints_effective_policy_or_located_error() {
    let dir = TempDir::new();
    let presets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/default.toml");
    let unused = dir.0.join("unused.sock");
    let ok = agentctl(
        &unused,
        &["policy", "check", presets.to_str().unwrap()],
        b"",
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("[filesystem]"),
        "{}",
        text(&ok.stdout)
    );

    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "[filesystem]\nreed = [\"/x\"]\n").unwrap();
    let err = agentctl(&unused, &["policy", "check", bad.to_str().unwrap()], b"");
    assert_eq!(err.status.code(), Some(1));
    let stderr = text(&err.stderr);
    assert!(
        stderr.starts_with(&format!("agentctl: {}:2:", bad.display())),
        "{stderr}"
    );
}

#[test]
fn run_json_events_asks_for_events_and_prints_them() {
    let dir = TempDir::new();
    let (socket, server) = fake_daemon(&dir, |mut s| {
        let (env, fds) = read_request(&mut s);
        let Request::Run(req) = env.req else {
            panic!("not a run request: {env:?}")
        };
        assert!(
            req.json_events,
            "--json-events must ask the daemon for events"
        );
        drop(fds);
        let record = serde_json::json!({"seq": 2, "kind": "exec", "verdict": "allow"});
        send(&mut s, &Response::Event { record });
        let status = ExitStatus::Code { code: 0 };
        send(
            &mut s,
            &Response::Exited {
                run: "r1".into(),
                status,
            },
        );
    });
    let out = agentctl(&socket, &["run", "--json-events", "true"], b"");
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stderr).lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "event");
    assert_eq!(first["record"]["kind"], "exec");
}

#[test]
fn audit_sends_filters_and_prints_records_from_every_frame() {
    let dir = TempDir::new();
    let (socket, server) = fake_daemon(&dir, |mut s| {
        let (env, _) = read_request(&mut s);
        assert_eq!(
            env.req,
            Request::Audit {
                run: "ab".into(),
                follow: true,
                kind: Some("open".into()),
                verdict: Some("deny".into()),
                verify: false,
            }
        );
        for seq in [3, 5] {
            let records = vec![serde_json::json!({"seq": seq, "kind": "open", "verdict": "deny"})];
            send(&mut s, &Response::AuditRecords { records });
        }
        send(&mut s, &Response::AuditEnd { verified: None });
    });
    let args = [
        "audit",
        "ab",
        "--json",
        "--follow",
        "--kind",
        "open",
        "--verdict",
        "deny",
    ];
    let out = agentctl(&socket, &args, b"");
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let seqs: Vec<u64> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [3, 5]);
}

#[test]
fn audit_verify_reports_intact_chain() {
    let dir = TempDir::new();
    let (socket, server) = fake_daemon(&dir, |mut s| {
        let (env, _) = read_request(&mut s);
        assert!(matches!(env.req, Request::Audit { verify: true, .. }));
        send(&mut s, &Response::AuditEnd { verified: Some(6) });
    });
    let out = agentctl(&socket, &["audit", "ab", "--verify"], b"");
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "audit log of run ab: 6 records, chain intact\n"
    );
}

#[test]
fn audit_verify_of_broken_chain_exits_1_naming_the_record() {
    let dir = TempDir::new();
    let (socket, server) = fake_daemon(&dir, |mut s| {
        let _ = read_request(&mut s);
        let body = ErrorBody::new(
            ErrorCode::AuditBroken,
            "audit log of run ab is broken: record 4 (line 4): hash mismatch (the record was changed)",
        );
        send(&mut s, &Response::Error(body));
    });
    let out = agentctl(&socket, &["audit", "ab", "--verify"], b"");
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("record 4 (line 4): hash mismatch"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn audit_rejects_unknown_verdict_without_contacting_agentd() {
    let out = agentctl(
        Path::new("/nonexistent/agentd.sock"),
        &["audit", "ab", "--verdict", "maybe"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("maybe"), "{}", text(&out.stderr));
}
