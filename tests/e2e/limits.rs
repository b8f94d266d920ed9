//! Resource limits from the policy's `[resources]`, enforced by the run's cgroup.

use agentd_tests::{require, Feature};

use crate::{check, start, write_policy};

#[test]
fn run_pids_limit_stops_fork_loop() {
    require!(sandbox, Feature::CgroupV1, Feature::Cgroup2Unified);
    let (d, c) = start();
    let policy = write_policy(
        &d,
        "pids64",
        "version = 1\nextends = [\"default\"]\n\n[resources]\npids = 64\nwall = \"20s\"\n",
    );
    // dash: a failed fork of a background job is an error that ends the shell; echo is a builtin.
    let script = "i=0; while [ $i -lt 200 ]; do sleep 5 & i=$((i+1)); echo started $i; done; \
                  echo all-started; wait";
    let out = c.run_policy(&policy, &["sh", "-c", script]);
    let started = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("started ")?.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    check(
        &d,
        &out,
        started >= 1,
        "the loop must have started (else the probe proves nothing)",
    );
    check(
        &d,
        &out,
        !out.stdout.contains("all-started") && started < 64,
        &format!("pids = 64 must stop the loop; {started} sleeps started"),
    );
    check(&d, &out, !out.success(), "the run reports the failed fork");
    check(
        &d,
        &out,
        out.elapsed < std::time::Duration::from_secs(25),
        "the run ends in bounded time",
    );
}
