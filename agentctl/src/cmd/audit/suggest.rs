//! `agentctl audit RUN --suggest`: from a run's deny records, the smallest policy additions that
//! would have allowed them, as TOML to paste. Pure: records in, text out.
//!
//! - a default denial of an open: a `read` or `write` grant of the denied file's directory;
//!   a grant whose directory lies below another suggested grant of the same or a stronger kind
//!   is dropped (the ancestor covers it), and a read covered by a write is dropped;
//! - a default denial of an exec: an `exec` grant of the program itself;
//! - a default denial of a connect: a `network.allow` entry for the address (and
//!   `mode = "filtered"` when the run had no network);
//! - a denial by a rule or a hide: a comment naming the rule or hide entry to relax.
//!
//! Every line says what it would expose.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The suggestion for the deny records among `records` (other records are ignored).
pub fn suggest(run: &str, records: &[Value]) -> String {
    let mut read: BTreeSet<PathBuf> = BTreeSet::new();
    let mut write: BTreeSet<PathBuf> = BTreeSet::new();
    let mut exec: BTreeSet<PathBuf> = BTreeSet::new();
    let mut allow: BTreeSet<String> = BTreeSet::new();
    let mut need_filtered = false;
    let mut notes: BTreeSet<String> = BTreeSet::new();
    for r in records {
        let s = |k: &str| r.get(k).and_then(Value::as_str);
        if s("verdict") != Some("deny") {
            continue;
        }
        let reason = s("reason").unwrap_or("");
        if let Some(rule) = s("rule") {
            notes.insert(format!(
                "# denied by rule `{rule}` ({reason:?}): relax or remove that rule; \
                 a [[rule]] with action = \"allow\" cannot override a deny"
            ));
            continue;
        }
        if reason.starts_with("hidden by the policy") {
            let what = s("path").unwrap_or("?");
            notes.insert(format!(
                "# {what}: {reason}; remove that hide entry only if the agent must see it \
                 (exposes: whatever it hides)"
            ));
            continue;
        }
        match (s("kind"), s("path"), s("addr")) {
            (Some("open"), Some(path), _) => {
                let dir = Path::new(path)
                    .parent()
                    .unwrap_or(Path::new("/"))
                    .to_path_buf();
                if s("access") == Some("write") {
                    write.insert(dir);
                } else {
                    read.insert(dir);
                }
            }
            (Some("exec"), Some(path), _) => {
                exec.insert(PathBuf::from(path));
            }
            (Some("connect"), _, Some(addr)) if addr.parse::<std::net::SocketAddr>().is_ok() => {
                need_filtered |= reason.contains("network mode \"none\"");
                allow.insert(addr.to_string());
            }
            _ => {}
        }
    }
    let write = minimal(&write, &[]);
    let read = minimal(&read, &write);
    let mut out =
        format!("# Suggested for run {run}: paste into your policy and review each line.\n");
    if write.is_empty()
        && read.is_empty()
        && exec.is_empty()
        && allow.is_empty()
        && notes.is_empty()
    {
        out.push_str("# The run had no denials.\n");
        return out;
    }
    if !(write.is_empty() && read.is_empty() && exec.is_empty()) {
        out.push_str("[filesystem]\n");
        list(&mut out, "read", &read, |p| {
            format!("every file under {} (read)", p.display())
        });
        list(&mut out, "write", &write, |p| {
            format!(
                "every file under {} (read, write, create, delete)",
                p.display()
            )
        });
        list(
            &mut out,
            "exec",
            &exec.into_iter().collect::<Vec<_>>(),
            |p| format!("running {}", p.display()),
        );
    }
    if !allow.is_empty() {
        out.push_str("[network]\n");
        if need_filtered {
            out.push_str(
                "mode = \"filtered\"  # exposes: the host's network, limited to `allow`\n",
            );
        }
        out.push_str("allow = [\n");
        for a in &allow {
            let _ = writeln!(out, "    {a:?},  # exposes: connections to {a}");
        }
        out.push_str("]\n");
    }
    for n in notes {
        let _ = writeln!(out, "{n}");
    }
    out
}

/// `dirs` without those at or below another of `dirs` or of `covered`.
fn minimal(dirs: &BTreeSet<PathBuf>, covered: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter()
        .filter(|d| {
            !covered.iter().any(|c| d.starts_with(c))
                && !dirs.iter().any(|o| o != *d && d.starts_with(o))
        })
        .cloned()
        .collect()
}

fn list(out: &mut String, key: &str, items: &[PathBuf], exposes: impl Fn(&Path) -> String) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{key} = [");
    for p in items {
        let text = p.display().to_string();
        let _ = writeln!(out, "    {text:?},  # exposes: {}", exposes(p));
    }
    out.push_str("]\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deny(kind: &str, extra: Value) -> Value {
        let mut v = json!({"kind": kind, "verdict": "deny"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn workspace_subdirectory_write_becomes_exactly_that_grant() {
        let recs = vec![
            deny(
                "open",
                json!({"path": "/w/build/a.o", "access": "write",
                "reason": "outside the policy's write grants"}),
            ),
            deny(
                "open",
                json!({"path": "/w/build/b.o", "access": "write",
                "reason": "outside the policy's write grants"}),
            ),
            json!({"kind": "open", "verdict": "allow", "path": "/w/src/x"}),
        ];
        assert_eq!(
            suggest("r1", &recs),
            "# Suggested for run r1: paste into your policy and review each line.\n\
             [filesystem]\nwrite = [\n    \"/w/build\",  # exposes: every file under /w/build \
             (read, write, create, delete)\n]\n"
        );
    }

    #[test]
    fn minimal_dedup_connects_and_rules() {
        let recs = vec![
            deny(
                "open",
                json!({"path": "/h/.config/a/x", "access": "read", "reason": "r"}),
            ),
            deny(
                "open",
                json!({"path": "/h/.config/y", "access": "read", "reason": "r"}),
            ),
            deny(
                "open",
                json!({"path": "/h/.config/a/z", "access": "write", "reason": "r"}),
            ),
            deny("exec", json!({"path": "/opt/t/bin/t", "reason": "r"})),
            deny(
                "connect",
                json!({"addr": "10.0.0.5:5432",
                "reason": "network mode \"none\": only loopback is reachable"}),
            ),
            deny(
                "open",
                json!({"path": "/w/.npmrc", "rule": "secret-npmrc", "reason": "tokens"}),
            ),
            deny(
                "open",
                json!({"path": "/w/.npmrc", "rule": "secret-npmrc", "reason": "tokens"}),
            ),
            deny(
                "open",
                json!({"path": "/w/.env", "reason": "hidden by the policy (hide = \"/w/**/.env\")"}),
            ),
        ];
        let out = suggest("r2", &recs);
        assert!(
            out.contains(
                "read = [\n    \"/h/.config\",  # exposes: every file under /h/.config (read)\n]"
            ),
            "{out}"
        );
        assert!(out.contains("write = [\n    \"/h/.config/a\","), "{out}");
        assert!(
            out.contains("exec = [\n    \"/opt/t/bin/t\",  # exposes: running /opt/t/bin/t\n]"),
            "{out}"
        );
        assert!(out.contains("mode = \"filtered\""), "{out}");
        assert!(
            out.contains("    \"10.0.0.5:5432\",  # exposes: connections to 10.0.0.5:5432"),
            "{out}"
        );
        assert_eq!(out.matches("secret-npmrc").count(), 1, "{out}");
        assert!(out.contains("# /w/.env: hidden by the policy"), "{out}");
    }
}
