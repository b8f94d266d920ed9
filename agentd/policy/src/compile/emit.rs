//! The effective policy as TOML: one flat version-1 file (no `extends`) that compiles back to
//! an equal policy (apart from `name` and `sources`, which the leading comment lists).

use std::fmt::Write as _;
use std::path::Path;

use super::value::{net_allow_text, wall_text};
use crate::model::{NetMode, Policy, TmpMode};

impl Policy {
    /// The effective policy as TOML, flattened, with a leading comment listing `sources`.
    pub fn to_toml(&self) -> String {
        let mut out = format!("# effective policy {:?}, merged from:\n", self.name);
        for s in &self.sources {
            let _ = writeln!(out, "#   {:?}", s.display().to_string());
        }
        out.push_str("version = 1\n\n[filesystem]\n");
        let fs = &self.filesystem;
        list(&mut out, "read", fs.read.iter().map(|p| path_text(p)));
        list(&mut out, "write", fs.write.iter().map(|p| path_text(p)));
        list(&mut out, "exec", fs.exec.iter().map(|p| path_text(p)));
        let tmp = match fs.tmp {
            TmpMode::Private => "private",
            TmpMode::None => "none",
        };
        let _ = writeln!(out, "tmp = {}", quote(tmp));
        list(
            &mut out,
            "hide",
            fs.hide.iter().map(|g| g.as_str().to_string()),
        );

        out.push_str("\n[env]\n");
        list(&mut out, "pass", self.env.pass.iter().cloned());
        out.push_str("\n[env.set]\n");
        for (k, v) in &self.env.set {
            let _ = writeln!(out, "{} = {}", key(k), quote(v));
        }

        out.push_str("\n[network]\n");
        let mode = match self.network.mode {
            NetMode::None => "none",
            NetMode::Filtered => "filtered",
        };
        let _ = writeln!(out, "mode = {}", quote(mode));
        list(
            &mut out,
            "allow",
            self.network.allow.iter().map(net_allow_text),
        );

        out.push_str("\n[resources]\n");
        let r = &self.resources;
        if r == &Default::default() {
            out.push_str("# no limits\n");
        }
        if let Some(m) = r.memory {
            let _ = writeln!(out, "memory = {m}");
        }
        if let Some(p) = r.pids {
            let _ = writeln!(out, "pids = {p}");
        }
        if let Some(c) = r.cpu {
            let _ = writeln!(out, "cpu = {}", toml::Value::Float(c));
        }
        if let Some(w) = r.wall {
            let _ = writeln!(out, "wall = {}", quote(&wall_text(w)));
        }
        out
    }
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A TOML string literal with every needed escape.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be, quoted otherwise.
fn key(k: &str) -> String {
    let bare = k
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare && !k.is_empty() {
        k.to_string()
    } else {
        quote(k)
    }
}

fn list(out: &mut String, key: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        let _ = writeln!(out, "{key} = []");
        return;
    }
    let _ = writeln!(out, "{key} = [");
    for item in items {
        let _ = writeln!(out, "    {},", quote(&item));
    }
    out.push_str("]\n");
}
