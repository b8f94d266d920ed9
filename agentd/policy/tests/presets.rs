//! Every shipped preset (`policies/*.toml`) compiles, has no `lint` warning, and decides a fixed
//! set of events as its golden explain table says. A change to a preset or to `decide` that
//! changes an answer fails here until the golden file is regenerated on purpose:
//!
//!     UPDATE_GOLDEN=1 cargo test -p agentd-policy --test presets
//!
//! and the diff of `tests/golden/*.txt` is reviewed with the change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use agentd_policy::{explain, lint, Event, Loader, OpenAccess, SockAddr, Vars};

const HOME: &str = "/home/u";
const WORKSPACE: &str = "/home/u/project";
/// What every host name of a preset resolves to here (no DNS in tests): a documentation
/// address, one per name, in the order of `Policy::hosts`.
const HOST_NET: [u8; 3] = [192, 0, 2];

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn presets() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(policies_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn vars() -> Vars {
    Vars {
        home: PathBuf::from(HOME),
        workspace: PathBuf::from(WORKSPACE),
        user: "u".into(),
    }
}

fn loader() -> Loader {
    Loader::new(vec![policies_dir()])
}

fn open(path: &str, access: OpenAccess) -> Event {
    Event::Open {
        path: PathBuf::from(path),
        access,
    }
}

fn exec(path: &str, argv: &[&str]) -> Event {
    Event::Exec {
        path: PathBuf::from(path),
        argv: argv.iter().map(|s| s.to_string()).collect(),
    }
}

fn connect(addr: &str) -> Event {
    Event::Connect {
        addr: SockAddr::Inet(addr.parse::<SocketAddr>().unwrap()),
    }
}

/// The fixed events: secret reads, a workspace write, `ask` tools, the model API host, and a
/// few more every preset must answer deliberately.
fn events() -> Vec<(&'static str, Event)> {
    vec![
        (
            "secret read: an SSH key",
            open("/home/u/.ssh/id_ed25519", OpenAccess::Read),
        ),
        (
            "secret read: .env in the workspace",
            open("/home/u/project/.env", OpenAccess::Read),
        ),
        (
            "secret read: AWS credentials",
            open("/home/u/.aws/credentials", OpenAccess::Read),
        ),
        (
            "secret read: .npmrc in the workspace",
            open("/home/u/project/.npmrc", OpenAccess::Read),
        ),
        (
            "workspace write",
            open("/home/u/project/src/main.rs", OpenAccess::Write),
        ),
        (
            "write outside the workspace",
            open("/home/u/notes.txt", OpenAccess::Write),
        ),
        (
            "write to a git hook",
            open("/home/u/project/.git/hooks/pre-commit", OpenAccess::Write),
        ),
        (
            "ask tool: psql",
            exec("/usr/bin/psql", &["psql", "-h", "db.internal"]),
        ),
        (
            "ask tool: git push",
            exec("/usr/bin/git", &["git", "push", "origin", "main"]),
        ),
        (
            "git commit",
            exec("/usr/bin/git", &["git", "commit", "-m", "x"]),
        ),
        (
            "the model API host (first host name)",
            connect("192.0.2.1:443"),
        ),
        ("a database port on loopback", connect("127.0.0.1:5432")),
        ("another loopback port", connect("127.0.0.1:8080")),
    ]
}

#[test]
fn every_preset_compiles_without_warnings() {
    let names = presets();
    assert!(names.len() >= 13, "presets: {names:?}");
    for name in names {
        let (policy, origins) = loader()
            .load_traced(&name, &vars())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let warnings = lint(&policy, &origins, &vars());
        assert!(warnings.is_empty(), "{name}: {warnings:#?}");
        for r in &policy.rules {
            assert!(
                !r.reason.trim().is_empty(),
                "{name}: rule {} has no reason",
                r.id
            );
        }
    }
}

#[test]
fn every_preset_matches_its_golden_explain_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let root = policies_dir().canonicalize().unwrap();
    let mut failed = Vec::new();
    for name in presets() {
        let policy = loader().load(&name, &vars()).unwrap();
        let table: HashMap<String, Vec<IpAddr>> = policy
            .hosts()
            .into_iter()
            .zip(1u8..)
            .map(|(h, i)| {
                (
                    h,
                    vec![IpAddr::from([HOST_NET[0], HOST_NET[1], HOST_NET[2], i])],
                )
            })
            .collect();
        let policy = policy.with_resolved(&table);
        let mut text = format!(
            "# golden explain table of preset {name}\n# HOME={HOME} WORKSPACE={WORKSPACE}\n"
        );
        for (h, ips) in sorted(&table) {
            text.push_str(&format!("# {h} resolves to {}\n", ips[0]));
        }
        for (what, event) in events() {
            let e = explain(&policy, &event);
            text.push_str(&format!("\n## {what}\n{e}"));
        }
        // Sources are absolute paths: keep the golden files independent of the checkout.
        let text = text.replace(&format!("{}/", root.display()), "policies/");
        let text = text.replace(&format!("{}/", policies_dir().display()), "policies/");
        let file = dir.join(format!("{name}.txt"));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&file).unwrap_or_default();
        if want != text {
            failed.push(format!(
                "{}: differs (run with UPDATE_GOLDEN=1 and review the diff)\n--- got:\n{text}",
                file.display()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn sorted(t: &HashMap<String, Vec<IpAddr>>) -> Vec<(&String, &Vec<IpAddr>)> {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by_key(|(_, ips)| ips[0]);
    v
}
