//! `agentctl policy check` passes every shipped preset (exit 0, no warning), and
//! `agentctl policy explain` gives the decision with its rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn agentctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agentctl"))
        .args(args)
        .env("HOME", "/home/u")
        .env("USER", "u")
        .output()
        .unwrap()
}

#[test]
fn every_preset_passes_policy_check_without_warnings() {
    let dir = policies();
    let dir_s = dir.to_str().unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let out = agentctl(&[
            "policy",
            "check",
            "--workspace",
            "/home/u/project",
            "--policy-dir",
            dir_s,
            path.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}: {stderr}", path.display());
        assert!(stderr.is_empty(), "{}: {stderr}", path.display());
    }
}

#[test]
fn explain_names_the_rule_and_the_default() {
    let dir = policies();
    let file = dir.join("coding-agent.toml");
    let args = |ev: &[&str]| {
        let mut v = vec!["policy", "explain", "--workspace", "/home/u/project"];
        v.push(file.to_str().unwrap());
        v.extend_from_slice(ev);
        v.push("--policy-dir");
        v.push(dir.to_str().unwrap());
        agentctl(&v)
    };
    let out = args(&["--exec", "/usr/bin/psql -h db"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("decision: ask by rule ask-psql"), "{text}");
    let out = args(&["--open", "/home/u/project/.env"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("deny (EACCES) by the default: hidden"),
        "{text}"
    );
    let out = args(&["--open", "/home/u/project/a.rs", "--write"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("allow by the default: inside the write grant /home/u/project"),
        "{text}"
    );
    let out = args(&["--connect", "127.0.0.1:9"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("deny (ECONNREFUSED)"), "{text}");
}
