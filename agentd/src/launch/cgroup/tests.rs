//! The cgroup logic against a temp-dir fake of `/sys/fs/cgroup` (no kernel involved).

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

struct FakeRoot(PathBuf);

impl FakeRoot {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("agentd-cgtest-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        FakeRoot(p)
    }
    fn hierarchy(&self, rel: &str) {
        let d = self.0.join(rel);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("cgroup.procs"), "").unwrap();
    }
}

impl Drop for FakeRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

#[test]
fn detect_hybrid_uses_unified_for_kill_and_v1_for_limits() {
    let root = FakeRoot::new("hybrid");
    for h in ["unified", "memory", "pids", "cpu", "cpuacct", "freezer"] {
        root.hierarchy(h);
    }
    let cg = Cgroups::detect(&root.0, "0::/\n4:memory:/\n", "agentd").unwrap();
    let Layout::Hybrid { unified, v1 } = &cg.layout else {
        panic!("expected hybrid, got {:?}", cg.layout)
    };
    assert_eq!(
        unified.as_deref(),
        Some(root.0.join("unified/agentd").as_path())
    );
    let names: Vec<_> = v1.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["memory", "pids", "cpu", "cpuacct", "freezer"]);
}

#[test]
fn detect_unified_under_a_delegated_unit_uses_the_units_cgroup() {
    let root = FakeRoot::new("unified");
    fs::write(root.0.join("cgroup.controllers"), "cpu memory pids").unwrap();
    let cg = Cgroups::detect(&root.0, "0::/system.slice/agentd.service\n", "agentd").unwrap();
    assert_eq!(
        cg.layout,
        Layout::Unified {
            base: root.0.join("system.slice/agentd.service")
        }
    );
    let cg = Cgroups::detect(&root.0, "0::/\n", "agentd").unwrap();
    assert_eq!(
        cg.layout,
        Layout::Unified {
            base: root.0.join("agentd")
        }
    );
}

#[test]
fn detect_rejects_a_parent_that_is_not_a_plain_name() {
    let root = FakeRoot::new("badparent");
    root.hierarchy("unified");
    for bad in ["", "a/b", "..", ".hidden"] {
        assert!(Cgroups::detect(&root.0, "", bad).is_err(), "{bad:?}");
    }
    let cg = Cgroups::detect(&root.0, "", "agentd-test-1").unwrap();
    let Layout::Hybrid { unified, .. } = cg.layout else {
        panic!("expected hybrid")
    };
    assert_eq!(unified, Some(root.0.join("unified/agentd-test-1")));
}

#[test]
fn detect_without_any_hierarchy_fails() {
    let root = FakeRoot::new("none");
    assert!(Cgroups::detect(&root.0, "", "agentd").is_err());
}

#[test]
fn hybrid_create_writes_v1_limits_and_lists_procs_files() {
    let root = FakeRoot::new("hybrid-limits");
    for h in ["unified", "memory", "pids", "cpu"] {
        root.hierarchy(h);
    }
    let cgs = Cgroups::detect(&root.0, "", "agentd").unwrap();
    cgs.init(1).unwrap();
    let limits = Resources {
        memory: Some(256 << 20),
        pids: Some(64),
        cpu: Some(1.5),
        wall: None,
    };
    let run = cgs.create("r1", &limits).unwrap();
    assert_eq!(
        read(&root.0.join("memory/agentd/r1/memory.limit_in_bytes")),
        "268435456"
    );
    assert_eq!(read(&root.0.join("pids/agentd/r1/pids.max")), "64");
    assert_eq!(
        read(&root.0.join("cpu/agentd/r1/cpu.cfs_quota_us")),
        "150000"
    );
    assert_eq!(
        read(&root.0.join("cpu/agentd/r1/cpu.cfs_period_us")),
        "100000"
    );
    assert_eq!(run.procs_files().len(), 4);
    assert_eq!(cgs.existing_runs(), vec!["r1".to_string()]);
}

#[test]
fn hybrid_limit_without_its_controller_is_refused() {
    let root = FakeRoot::new("hybrid-missing");
    root.hierarchy("unified");
    let cgs = Cgroups::detect(&root.0, "", "agentd").unwrap();
    cgs.init(1).unwrap();
    let err = cgs
        .create(
            "r2",
            &Resources {
                pids: Some(10),
                ..Resources::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("pids"), "{err}");
    assert!(
        !root.0.join("unified/agentd/r2").exists(),
        "a refused run leaves no cgroup"
    );
}

#[test]
fn unified_create_writes_v2_limits() {
    let root = FakeRoot::new("unified-limits");
    fs::write(root.0.join("cgroup.controllers"), "cpu memory pids").unwrap();
    let cgs = Cgroups::detect(&root.0, "0::/\n", "agentd").unwrap();
    fs::create_dir_all(root.0.join("agentd/runs")).unwrap();
    let run = cgs
        .create(
            "r3",
            &Resources {
                memory: Some(1 << 30),
                pids: Some(100),
                cpu: Some(2.0),
                wall: None,
            },
        )
        .unwrap();
    let d = root.0.join("agentd/runs/r3");
    assert_eq!(read(&d.join("memory.max")), "1073741824");
    assert_eq!(read(&d.join("pids.max")), "100");
    assert_eq!(read(&d.join("cpu.max")), "200000 100000");
    assert_eq!(run.v2.as_deref(), Some(d.as_path()));
}

#[test]
fn kill_prefers_cgroup_kill() {
    let root = FakeRoot::new("kill");
    root.hierarchy("unified");
    let cgs = Cgroups::detect(&root.0, "", "agentd").unwrap();
    cgs.init(1).unwrap();
    let run = cgs.create("r4", &Resources::default()).unwrap();
    let d = root.0.join("unified/agentd/r4");
    fs::write(d.join("cgroup.kill"), "").unwrap();
    run.kill().unwrap();
    assert_eq!(read(&d.join("cgroup.kill")), "1");
}

#[test]
fn cpu_quota_rounds_and_has_a_floor() {
    assert_eq!(cpu_quota_us(0.5), 50_000);
    assert_eq!(cpu_quota_us(0.001), 1000);
}
