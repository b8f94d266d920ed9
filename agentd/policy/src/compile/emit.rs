//! The effective policy as TOML: one flat version-1 file (no `extends`) that compiles back to
//! an equal policy (apart from `name` and `sources`, which the leading comment lists).

use std::fmt::Write as _;
use std::path::Path;

use super::addr::{addr_text, net_allow_text};
use super::rule::errno_name;
use super::value::wall_text;
use crate::event::OpenAccess;
use crate::model::{Action, AddrPattern, Matcher, NetMode, Policy, Rule, TmpMode};

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
        let hosts = self.rules.iter().filter_map(allow_host);
        let allow = self.network.allow.iter().map(net_allow_text).chain(hosts);
        list(&mut out, "allow", allow);

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

        out.push_str("\n[approval]\n");
        let timeout = wall_text(self.approval.timeout);
        let _ = writeln!(out, "timeout = {}\ndefault = \"deny\"", quote(&timeout));
        for r in self.rules.iter().filter(|r| allow_host(r).is_none()) {
            rule(&mut out, r);
        }
        out
    }
}

/// The `network.allow` entry a host-name rule came from, if it did.
fn allow_host(r: &Rule) -> Option<String> {
    match &r.matcher {
        Matcher::Connect(a @ AddrPattern::Host { port: Some(_), .. })
            if r.id.starts_with("network.allow ") =>
        {
            Some(addr_text(a))
        }
        _ => None,
    }
}

fn rule(out: &mut String, r: &Rule) {
    let _ = writeln!(out, "\n[[rule]]  # {}\nid = {}", r.source, quote(&r.id));
    let (on, pairs) = match &r.matcher {
        Matcher::Exec { path, argv } => {
            let argv = argv.as_ref().map(|a| ("argv", a.as_str().to_string()));
            ("exec", [Some(("path", path.to_string())), argv])
        }
        Matcher::Open { path, access } => {
            let access = access.map(|a| match a {
                OpenAccess::Read => ("access", "read".to_string()),
                OpenAccess::Write => ("access", "write".to_string()),
            });
            ("open", [Some(("path", path.to_string())), access])
        }
        Matcher::Connect(a) => ("connect", [Some(("addr", addr_text(a))), None]),
    };
    let _ = writeln!(out, "on = {}", quote(on));
    for (k, v) in pairs.into_iter().flatten() {
        let _ = writeln!(out, "{k} = {}", quote(&v));
    }
    let action = match r.action {
        Action::Allow => "allow",
        Action::Deny => "deny",
        Action::Ask => "ask",
        Action::Pause => "pause",
    };
    let _ = writeln!(out, "action = {}", quote(action));
    if r.action == Action::Deny {
        let _ = writeln!(out, "errno = {}", quote(errno_name(r.errno)));
    }
    let _ = writeln!(out, "reason = {}", quote(&r.reason));
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
