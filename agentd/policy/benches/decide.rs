//! Times `decide` on the shipped presets (`policies/`): the monitor calls it for every
//! mediated open, exec and connect. No framework: each case runs several rounds of many calls
//! and prints the median time per call.
//!
//!     cargo bench -p agentd-policy --bench decide
//!
//! Optional arguments: the number of calls per round (default 200000) and of rounds (7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use agentd_policy::{decide, Event, Loader, OpenAccess, Policy, SockAddr, Vars};

fn policy(name: &str) -> Policy {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let vars = Vars {
        home: PathBuf::from("/home/u"),
        workspace: PathBuf::from("/home/u/ws"),
        user: "u".into(),
    };
    Loader::new(vec![dir])
        .load(name, &vars)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn events() -> Vec<(&'static str, Event)> {
    let open = |p: &str| Event::Open {
        path: PathBuf::from(p),
        access: OpenAccess::Read,
    };
    vec![
        ("open workspace file", open("/home/u/ws/src/agent/main.rs")),
        ("open /etc/hostname", open("/etc/hostname")),
        ("open hidden .env", open("/home/u/ws/app/.env")),
        (
            "exec /usr/bin/git",
            Event::Exec {
                path: PathBuf::from("/usr/bin/git"),
                argv: ["git", "commit", "-m", "fix the parser"]
                    .map(String::from)
                    .to_vec(),
            },
        ),
        (
            "connect 127.0.0.1:8080",
            Event::Connect {
                addr: SockAddr::Inet("127.0.0.1:8080".parse::<SocketAddr>().unwrap()),
            },
        ),
    ]
}

/// Nanoseconds per call: the median of `rounds` rounds of `calls` calls.
fn time(policy: &Policy, event: &Event, calls: u32, rounds: usize) -> f64 {
    let mut per_call: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                black_box(decide(black_box(policy), black_box(event)));
            }
            start.elapsed().as_nanos() as f64 / f64::from(calls)
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[rounds / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; numbers are ours.
    let nums: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let calls = nums.first().map_or(200_000, |&n| u32::try_from(n).unwrap());
    let rounds = nums
        .get(1)
        .map_or(7, |&n| usize::try_from(n).unwrap())
        .max(1);
    for name in ["default", "guard-rails"] {
        let p = policy(name);
        println!(
            "preset {name}: {} hide globs, {} rules ({calls} calls x {rounds} rounds, median)",
            p.filesystem.hide.len(),
            p.rules.len()
        );
        for (what, event) in events() {
            let ns = time(&p, &event, calls, rounds);
            let d = decide(&p, &event);
            println!("  {what:<24} {ns:>8.1} ns/call  ({:?})", d.verdict);
        }
    }
}
