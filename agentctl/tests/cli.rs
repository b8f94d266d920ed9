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

/// Serves every connection on a fresh socket, each on its own thread: `serve` gets the first
/// request frame and the stream. Returns the socket path.
fn fake_daemon_many<F>(dir: &TempDir, serve: F) -> PathBuf
where
    F: Fn(Request, UnixStream) + Send + Sync + 'static,
{
    let path = dir.0.join("agentd.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let serve = serve.clone();
            std::thread::spawn(move || {
                let (env, _) = read_request(&mut stream);
                serve(env.req, stream);
            });
        }
    });
    path
}

/// Answers one request with `resp` and returns the request it got.
fn one_request(args: &[&str], resp: Response) -> (Request, Output) {
    let dir = TempDir::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let (socket, server) = fake_daemon(&dir, move |mut s| {
        let (env, _) = read_request(&mut s);
        send(&mut s, &resp);
        tx.send(env.req).unwrap();
    });
    let out = agentctl(&socket, args, b"");
    server.join().unwrap();
    (rx.recv().unwrap(), out)
}

fn pending_request(id: &str) -> agentd_proto::PendingRequest {
    agentd_proto::PendingRequest {
        id: id.into(),
        run: "r1".into(),
        uid: 1000,
        kind: "connect".into(),
        target: "127.0.0.1:5432".into(),
        argv: None,
        access: None,
        argv_hidden: 0,
        pid: 42,
        comm: "curl".into(),
        rule: Some("db".into()),
        reason: "production database".into(),
        pause: false,
        waiting: 1,
        // A minute from now, so the countdown reads `in 60s` (or 59s on a slow machine).
        deadline_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap() + 60_000)
            .unwrap(),
        key: String::new(),
    }
}

fn daemon_event(kind: &str, pending: Option<agentd_proto::PendingRequest>) -> Response {
    let decided = kind == "decided";
    Response::DaemonEvent {
        event: agentd_proto::DaemonEvent {
            kind: kind.into(),
            run: "r1".into(),
            uid: 1000,
            at_ms: 1_735_725_600_000,
            pending,
            decision: decided.then(|| "deny".into()),
            by: decided.then(|| "uid:1000".into()),
            exit: None,
        },
    }
}

#[test]
fn kill_with_signal_sends_its_number_and_rejects_unknown_names() {
    let (req, out) = one_request(&["kill", "r1", "--signal", "TERM"], Response::Ok);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        req,
        Request::Kill {
            run: "r1".into(),
            signal: Some(libc::SIGTERM)
        }
    );
    let (req, _) = one_request(&["kill", "r1", "--signal", "SIGUSR1"], Response::Ok);
    assert!(matches!(req, Request::Kill { signal: Some(s), .. } if s == libc::SIGUSR1));
    let (req, _) = one_request(&["kill", "r1"], Response::Ok);
    assert_eq!(
        req,
        Request::Kill {
            run: "r1".into(),
            signal: None
        }
    );
    let bad = agentctl(
        Path::new("/nonexistent/agentd.sock"),
        &["kill", "r1", "--signal", "NOPE"],
        b"",
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
}

#[test]
fn pause_and_resume_send_their_frames() {
    let (req, out) = one_request(&["pause", "r1"], Response::Ok);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(req, Request::Pause { run: "r1".into() });
    let (req, out) = one_request(&["resume", "r1"], Response::Ok);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(req, Request::Resume { run: "r1".into() });
}

#[test]
fn approve_sends_the_scope_its_flags_name() {
    use agentd_proto::ApprovalScope;
    for (flags, scope) in [
        (&[][..], ApprovalScope::Once),
        (&["--once"][..], ApprovalScope::Once),
        (&["--for", "5m"][..], ApprovalScope::For { seconds: 300 }),
        (&["--run"][..], ApprovalScope::Run),
    ] {
        let mut args = vec!["approve", "q1"];
        args.extend_from_slice(flags);
        let (req, out) = one_request(&args, Response::Ok);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(
            req,
            Request::Approve {
                id: "q1".into(),
                scope
            },
            "{flags:?}"
        );
    }
    let unused = Path::new("/nonexistent/agentd.sock");
    for bad in [&["--once", "--run"][..], &["--for", "soon"][..]] {
        let mut args = vec!["approve", "q1"];
        args.extend_from_slice(bad);
        let out = agentctl(unused, &args, b"");
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
}

#[test]
fn deny_sends_errno_by_name_and_prints_a_refusal_with_its_hint() {
    let (req, out) = one_request(&["deny", "q1", "--errno", "ECONNREFUSED"], Response::Ok);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        req,
        Request::Deny {
            id: "q1".into(),
            errno: Some(libc::ECONNREFUSED)
        }
    );
    let body = ErrorBody::new(
        ErrorCode::PermissionDenied,
        "agentctl inside a run cannot answer requests",
    )
    .with_hint("answer from a terminal outside the sandbox");
    let (req, out) = one_request(&["deny", "q1"], Response::Error(body));
    assert_eq!(
        req,
        Request::Deny {
            id: "q1".into(),
            errno: None
        }
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "agentctl: cannot deny request q1: agentctl inside a run cannot answer requests\n\
         hint: answer from a terminal outside the sandbox\n"
    );
}

#[test]
fn pending_prints_a_table_or_the_json_array() {
    let requests = vec![pending_request("q1")];
    let (req, out) = one_request(
        &["pending"],
        Response::Pending {
            requests: requests.clone(),
            omitted: 0,
        },
    );
    assert_eq!(req, Request::Pending { follow: false });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("ID  RUN  KIND     TARGET") && header.ends_with("EXPIRES  WAITING"),
        "{stdout}"
    );
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with("q1  r1   connect  127.0.0.1:5432  db    production database  in 6")
            || row.contains("in 59s"),
        "{stdout}"
    );
    let (_, out) = one_request(
        &["pending", "--json"],
        Response::Pending {
            requests: requests.clone(),
            omitted: 0,
        },
    );
    let parsed: Vec<agentd_proto::PendingRequest> =
        serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(parsed, requests);
}

#[test]
fn pending_follow_streams_pending_and_decided_events_until_agentd_closes() {
    let dir = TempDir::new();
    let (socket, server) = fake_daemon(&dir, |mut s| {
        let (env, _) = read_request(&mut s);
        assert_eq!(env.req, Request::Pending { follow: true });
        send(
            &mut s,
            &Response::Pending {
                requests: vec![],
                omitted: 0,
            },
        );
        send(
            &mut s,
            &daemon_event("pending", Some(pending_request("q1"))),
        );
        send(&mut s, &daemon_event("started", None));
        send(
            &mut s,
            &daemon_event("decided", Some(pending_request("q1"))),
        );
    });
    let out = agentctl(&socket, &["pending", "--follow", "--json"], b"");
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0], serde_json::json!([]));
    assert_eq!(lines[1]["kind"], "pending");
    assert_eq!(lines[1]["pending"]["id"], "q1");
    assert_eq!(lines[2]["kind"], "decided");
    assert_eq!(lines[2]["by"], "uid:1000");
}

#[test]
fn events_prints_one_line_per_event_until_agentd_closes() {
    let dir = TempDir::new();
    let (socket, server) = fake_daemon(&dir, |mut s| {
        let (env, _) = read_request(&mut s);
        assert_eq!(env.req, Request::Events);
        send(&mut s, &daemon_event("started", None));
        send(
            &mut s,
            &daemon_event("pending", Some(pending_request("q1"))),
        );
        send(
            &mut s,
            &daemon_event("decided", Some(pending_request("q1"))),
        );
    });
    let out = agentctl(&socket, &["events"], b"");
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0], "2025-01-01T10:00:00.000Z  started   r1  uid 1000");
    assert!(
        lines[1]
            .contains("pending   r1  q1 connect 127.0.0.1:5432 (rule: db — production database)"),
        "{stdout}"
    );
    assert!(
        lines[2].ends_with("decided   r1  q1 connect 127.0.0.1:5432: deny by uid:1000"),
        "{stdout}"
    );
}

#[test]
fn watch_in_line_mode_prints_events_and_sends_the_answers_read_from_stdin() {
    let dir = TempDir::new();
    let (answered_tx, answered) = std::sync::mpsc::channel::<Request>();
    let answered_tx = std::sync::Mutex::new(answered_tx);
    let answered = std::sync::Mutex::new(answered);
    let socket = fake_daemon_many(&dir, move |req, mut s| match req {
        Request::Events => {
            send(
                &mut s,
                &daemon_event("pending", Some(pending_request("q1"))),
            );
            let rx = answered.lock().unwrap();
            let timeout = std::time::Duration::from_secs(20);
            let got: Vec<Request> = (0..3).map(|_| rx.recv_timeout(timeout).unwrap()).collect();
            assert!(
                got.contains(&Request::Pause { run: "r1".into() }),
                "{got:?}"
            );
            send(
                &mut s,
                &daemon_event("decided", Some(pending_request("q1"))),
            );
        }
        Request::Ps => send(&mut s, &Response::Runs { runs: vec![] }),
        Request::Pending { follow: false } => send(
            &mut s,
            &Response::Pending {
                requests: vec![pending_request("q1")],
                omitted: 0,
            },
        ),
        answer => {
            send(&mut s, &Response::Ok);
            answered_tx.lock().unwrap().send(answer).unwrap();
        }
    });
    let stdin = b"approve q1 run\n\nbogus\ndeny q2 EPERM\npause r1\n";
    let out = agentctl(&socket, &["watch"], stdin);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("pending   r1  q1 connect"), "{stdout}");
    assert!(
        stdout.contains("ok: approved q1 for the rest of the run\n"),
        "{stdout}"
    );
    assert!(stdout.contains("ok: denied q2\n"), "{stdout}");
    assert!(stdout.contains("ok: paused r1\n"), "{stdout}");
    assert!(stdout.contains("decided   r1  q1"), "{stdout}");
    assert!(
        stderr.contains("agentctl: unknown command `bogus`"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("agentctl: agentd closed the event stream\n"),
        "{stderr}"
    );
}
