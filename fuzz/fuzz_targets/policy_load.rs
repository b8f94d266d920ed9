//! The policy loader: arbitrary text through `Loader::load_str` (TOML syntax → validation →
//! compiled policy), with no search directories so `extends` of a preset name fails cleanly and
//! a path in `extends` points into an empty directory. Nothing may panic; a policy that compiles
//! must also answer `decide` for a few fixed events without panicking.
#![no_main]

use std::path::{Path, PathBuf};

use agentd_policy::{decide, Event, Loader, OpenAccess, Vars};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars = Vars {
        home: PathBuf::from("/home/fuzz"),
        workspace: PathBuf::from("/home/fuzz/work"),
        user: "fuzz".into(),
    };
    let loader = Loader::new(Vec::new());
    let file = Path::new("/nonexistent-agentd-fuzz/p.toml");
    let Ok(policy) = loader.load_str("fuzz", file, text, &vars) else {
        return;
    };
    for event in [
        Event::Open {
            path: PathBuf::from("/home/fuzz/work/.env"),
            access: OpenAccess::Read,
        },
        Event::Open {
            path: PathBuf::from("/home/fuzz/.ssh/id_ed25519"),
            access: OpenAccess::Read,
        },
        Event::Exec {
            path: PathBuf::from("/usr/bin/sh"),
            argv: vec!["sh".into(), "-c".into(), "true".into()],
        },
    ] {
        let _ = decide(&policy, &event);
    }
});
