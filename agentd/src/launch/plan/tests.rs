use std::path::PathBuf;

use agentd_policy::{
    EnvPolicy, Filesystem, NetAllow, NetMode, Network, Policy, Resources, TmpMode,
};

use super::*;

fn policy(fs: Filesystem, network: Network) -> Policy {
    Policy {
        name: "test".into(),
        sources: vec![],
        filesystem: fs,
        env: EnvPolicy {
            pass: vec!["PATH".into()],
            set: [("X".to_string(), "1".to_string())].into_iter().collect(),
        },
        network,
        resources: Resources::default(),
        rules: vec![],
        approval: Default::default(),
    }
}

fn input<'a>(p: &'a Policy, env: &'a [(String, String)], cwd: &str) -> PlanInput<'a> {
    PlanInput {
        run_id: "abc123",
        policy: p,
        identity: Identity {
            uid: 1000,
            gid: 1000,
            groups: vec![],
        },
        argv: vec!["sh".into()],
        caller_env: env,
        cwd: cwd.into(),
        workspace: "/home/u/ws".into(),
        tty: false,
        staging: "/var/lib/agentd/runs/abc123/root".into(),
        cgroup_procs: vec![],
    }
}

fn pb(s: &str) -> PathBuf {
    PathBuf::from(s)
}

#[test]
fn plan_orders_view_parents_first_and_nested_grants_inherit_rights() {
    let p = policy(
        Filesystem {
            read: vec![pb("/usr"), pb("/home/u")],
            write: vec![pb("/home/u/ws")],
            exec: vec![pb("/usr"), pb("/home/u/ws/bin")],
            tmp: TmpMode::Private,
            hide: vec![],
        },
        Network::default(),
    );
    let spec = plan(input(&p, &[], "/home/u/ws")).unwrap();
    let paths: Vec<_> = spec.view.iter().map(|e| e.path().clone()).collect();
    assert_eq!(
        paths,
        vec![
            pb("/tmp"),
            pb("/usr"),
            pb("/home/u"),
            pb("/var/tmp"),
            pb("/home/u/ws"),
            pb("/home/u/ws/bin")
        ]
    );
    let bin = spec
        .view
        .iter()
        .find(|e| e.path() == &pb("/home/u/ws/bin"))
        .unwrap();
    assert_eq!(
        bin,
        &ViewEntry::Bind {
            path: pb("/home/u/ws/bin"),
            write: true,
            exec: true
        },
        "an exec grant inside a write grant keeps write"
    );
    let usr = spec
        .landlock
        .rules
        .iter()
        .find(|r| r.path == pb("/usr"))
        .unwrap();
    assert_eq!(usr.access, Access::ReadExec);
    let home = spec
        .landlock
        .rules
        .iter()
        .find(|r| r.path == pb("/home/u"))
        .unwrap();
    assert_eq!(home.access, Access::Read);
}

#[test]
fn plan_refuses_a_root_grant() {
    let p = policy(
        Filesystem {
            write: vec![pb("/")],
            ..Filesystem::default()
        },
        Network::default(),
    );
    assert_eq!(
        plan(input(&p, &[], "/")).unwrap_err(),
        PlanError::RootGranted { kind: "write" }
    );
}

#[test]
fn plan_refuses_empty_argv() {
    let p = policy(Filesystem::default(), Network::default());
    let mut i = input(&p, &[], "/");
    i.argv.clear();
    assert_eq!(plan(i).unwrap_err(), PlanError::EmptyArgv);
}

#[test]
fn plan_cwd_falls_back_to_workspace_then_root() {
    let p = policy(
        Filesystem {
            write: vec![pb("/home/u/ws")],
            tmp: TmpMode::None,
            ..Filesystem::default()
        },
        Network::default(),
    );
    assert_eq!(
        plan(input(&p, &[], "/home/u/ws/src")).unwrap().cwd,
        pb("/home/u/ws/src")
    );
    assert_eq!(plan(input(&p, &[], "/etc")).unwrap().cwd, pb("/home/u/ws"));
    let none = policy(Filesystem::default(), Network::default());
    assert_eq!(plan(input(&none, &[], "/etc")).unwrap().cwd, pb("/"));
}

#[test]
fn plan_network_none_isolates_and_filtered_lists_ports() {
    let p = policy(Filesystem::default(), Network::default());
    let spec = plan(input(&p, &[], "/")).unwrap();
    assert!(spec.isolate_network);
    assert_eq!(spec.landlock.tcp_connect_ports, None);
    assert!(!spec.filter.deny_udp);

    let allow = |port| NetAllow {
        addr: "127.0.0.1".parse().unwrap(),
        prefix: 32,
        port,
    };
    let f = policy(
        Filesystem::default(),
        Network {
            mode: NetMode::Filtered,
            allow: vec![allow(443), allow(80), allow(443)],
        },
    );
    let spec = plan(input(&f, &[], "/")).unwrap();
    assert!(!spec.isolate_network);
    assert_eq!(spec.landlock.tcp_connect_ports, Some(vec![80, 443]));
    assert!(spec.filter.deny_udp, "UDP escapes Landlock's port rules");
}

#[test]
fn plan_filters_environment() {
    let p = policy(Filesystem::default(), Network::default());
    let env = vec![
        ("PATH".to_string(), "/usr/bin".to_string()),
        ("GITHUB_TOKEN".to_string(), "secret".to_string()),
    ];
    let spec = plan(input(&p, &env, "/")).unwrap();
    assert_eq!(
        spec.env,
        vec![
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("X".to_string(), "1".to_string())
        ]
    );
}

#[test]
fn plan_tmp_none_has_no_tmpfs() {
    let p = policy(
        Filesystem {
            tmp: TmpMode::None,
            ..Filesystem::default()
        },
        Network::default(),
    );
    let spec = plan(input(&p, &[], "/")).unwrap();
    assert!(spec.view.is_empty());
    assert!(!spec.landlock.rules.iter().any(|r| r.path == pb("/dev/shm")));
}

fn compiled(text: &str) -> Policy {
    let vars = agentd_policy::Vars {
        home: "/home/u".into(),
        workspace: "/home/u/ws".into(),
        user: "u".into(),
    };
    agentd_policy::Loader::new(vec![])
        .load_str("t", std::path::Path::new("/t.toml"), text, &vars)
        .unwrap()
}

#[test]
fn plan_filtered_ports_include_connect_allow_rules() {
    let p = compiled(
        "version = 1\n[network]\nmode = \"filtered\"\nallow = [\"127.0.0.1:80\", \"api.example.com:443\"]\n\
         [[rule]]\nid = \"db\"\non = \"connect\"\naddr = \"10.0.0.0/8:5432\"\naction = \"allow\"\nreason = \"db\"\n\
         [[rule]]\nid = \"no\"\non = \"connect\"\naddr = \"10.0.0.1:22\"\naction = \"deny\"\nreason = \"ssh\"\n",
    );
    let spec = plan(input(&p, &[], "/")).unwrap();
    assert_eq!(spec.landlock.tcp_connect_ports, Some(vec![80, 443, 5432]));
}

#[test]
fn plan_filtered_any_port_allow_leaves_tcp_to_the_monitor() {
    let p = compiled(
        "version = 1\n[network]\nmode = \"filtered\"\n\
         [[rule]]\nid = \"any\"\non = \"connect\"\naddr = \"10.0.0.0/8:*\"\naction = \"allow\"\nreason = \"lan\"\n",
    );
    let spec = plan(input(&p, &[], "/")).unwrap();
    assert_eq!(spec.landlock.tcp_connect_ports, None);
}
