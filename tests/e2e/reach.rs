//! What a run can reach: no daemon socket, no host Unix sockets (path or abstract), no host
//! network with `network = "none"`. Each target is first shown reachable from outside.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};

use agentd_tests::require;
use agentd_tests::tempdir::set_mode;

use crate::{check_code, check_failed_inside, display, inside, start};

#[test]
fn run_cannot_see_daemon_socket_or_state() {
    require!(sandbox);
    let (d, c) = start();
    let socket = display(d.socket());
    let out = c.unconfined(&["test", "-e", &socket]);
    check_code(&d, &out, 0, "unconfined: the caller sees the daemon socket");
    for path in [socket.as_str(), "/run/agentd", &display(d.state_dir())] {
        let out = inside(&c, &["test", "-e", path]);
        check_failed_inside(&d, &out, &format!("{path} must not exist inside the run"));
    }
}

/// A listening socket at `path`, connectable by anyone (outside a sandbox).
fn listen(path: &std::path::Path) -> UnixListener {
    let l = UnixListener::bind(path).unwrap();
    set_mode(path, 0o777);
    l
}

#[test]
fn run_cannot_connect_to_host_unix_sockets() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    let outside = d.dir().join("host.sock");
    let beside = c.workspace.parent().unwrap().join("beside.sock");
    let _l1 = listen(&outside);
    let _l2 = listen(&beside);
    let abstract_name = format!("@agentd-e2e-{}-{}", std::process::id(), c.uid);
    let sa = SocketAddr::from_abstract_name(&abstract_name.as_bytes()[1..]).unwrap();
    let _l3 = UnixListener::bind_addr(&sa).unwrap();
    for target in [display(&outside), display(&beside), abstract_name] {
        let out = c.unconfined(&[&probe, "connect-unix", &target]);
        check_code(
            &d,
            &out,
            0,
            &format!("unconfined: the caller can connect to {target}"),
        );
        let out = inside(&c, &[&probe, "connect-unix", &target]);
        check_failed_inside(&d, &out, &format!("connecting to {target}"));
    }
}

#[test]
fn run_network_none_cannot_reach_host_loopback_listener() {
    require!(sandbox);
    let (d, c) = start();
    let probe = display(&c.install_probe());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let out = c.unconfined(&[&probe, "connect-tcp", &addr]);
    check_code(&d, &out, 0, &format!("unconfined: {addr} is reachable"));
    let out = inside(&c, &[&probe, "connect-tcp", &addr]);
    check_failed_inside(
        &d,
        &out,
        &format!("connecting to {addr} with network = none"),
    );
    // The same through bash's /dev/tcp, the way an agent's shell would try.
    if std::path::Path::new("/usr/bin/bash").exists() {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/{}",
            listener.local_addr().unwrap().port()
        );
        let out = c.unconfined(&["bash", "-c", &script]);
        check_code(
            &d,
            &out,
            0,
            "unconfined: bash /dev/tcp reaches the listener",
        );
        let out = inside(&c, &["bash", "-c", &script]);
        check_failed_inside(&d, &out, "bash /dev/tcp");
    }
}
