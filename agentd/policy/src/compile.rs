//! Loading and compiling policies: preset lookup, `extends`, variable substitution, merging and
//! ALL validation. The result is a [`Policy`] that downstream code uses without further checks.
//!
//! Merge order: the files form a depth-first, bases-first list in which each file appears once
//! (a diamond of `extends` merges the shared base once). Lists are unions in that order without
//! duplicates, `env.set` maps merge with later files winning, and every scalar takes the value
//! of the last file that sets it. Rules are concatenated (bases first) and their ids must be
//! unique; the host names of `network.allow` become connect allow rules after them.

mod addr;
mod emit;
mod error;
mod rule;
pub(crate) use rule::ERRNOS;
mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{Location, PolicyError};

use crate::event::EACCES;
use crate::glob::Glob;
use crate::model::{
    Action, AddrPattern, Approval, EnvPolicy, Filesystem, Matcher, NetAllow, NetMode, Network,
    Policy, Resources, Rule, TmpMode, Vars,
};
use crate::syntax;
use addr::Allowed;
use error::{Bad, Src};
use rule::Placed;

/// The deepest chain of `extends` below the named file.
pub const MAX_EXTENDS_DEPTH: usize = 8;

/// Finds and loads policy files.
#[derive(Debug, Clone)]
pub struct Loader {
    /// Where preset names are looked up, first match wins.
    pub search_dirs: Vec<PathBuf>,
}

/// What one file contributes before merging.
#[derive(Debug, Default)]
struct Layer {
    read: Vec<PathBuf>,
    write: Vec<PathBuf>,
    exec: Vec<PathBuf>,
    tmp: Option<TmpMode>,
    hide: Vec<Glob>,
    pass: Vec<String>,
    set: BTreeMap<String, String>,
    mode: Option<NetMode>,
    allow: Vec<NetAllow>,
    /// Where the first `allow` entry is, to point at if the mode does not allow it.
    allow_at: Option<Location>,
    /// `network.allow` host names, as connect allow rules.
    allow_hosts: Vec<Rule>,
    resources: Resources,
    rules: Vec<Placed>,
    timeout: Option<Duration>,
    /// Where each grant of this file is written, for warnings.
    origins: Vec<Origin>,
}

/// Which list of `[filesystem]` a grant is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    Read,
    Write,
    Exec,
}

impl GrantKind {
    /// The key as written in `[filesystem]`.
    pub fn key(self) -> &'static str {
        match self {
            GrantKind::Read => "read",
            GrantKind::Write => "write",
            GrantKind::Exec => "exec",
        }
    }
}

/// One grant as written in one file: the compiled path and where it is. A grant written in two
/// files has two origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub kind: GrantKind,
    pub path: PathBuf,
    pub at: Location,
}

/// The state of one `load`: the files on the current `extends` path, the files merged so far.
struct Walk<'v> {
    vars: &'v Vars,
    stack: Vec<PathBuf>,
    layers: Vec<(PathBuf, Layer)>,
}

impl Loader {
    pub fn new(search_dirs: Vec<PathBuf>) -> Self {
        Loader { search_dirs }
    }

    /// A name without '/' and without ".toml" is a preset: NAME.toml in the first search dir
    /// that has it. Anything else is a path used as is.
    pub fn resolve(&self, name_or_path: &str) -> Result<PathBuf, PolicyError> {
        if !is_preset_name(name_or_path) {
            return Ok(PathBuf::from(name_or_path));
        }
        let file = format!("{name_or_path}.toml");
        self.search_dirs
            .iter()
            .map(|d| d.join(&file))
            .find(|p| p.is_file())
            .ok_or_else(|| PolicyError::NotFound {
                name: name_or_path.to_string(),
                searched: self.search_dirs.clone(),
            })
    }

    /// Finds, reads and compiles the policy `name_or_path`.
    pub fn load(&self, name_or_path: &str, vars: &Vars) -> Result<Policy, PolicyError> {
        let path = self.resolve(name_or_path)?;
        let text = read(&path)?;
        self.load_str(name_or_path, &path, &text, vars)
    }

    /// For tests and for text already read: `file` is used in messages and to resolve relative
    /// `extends` paths.
    pub fn load_str(
        &self,
        name: &str,
        file: &Path,
        text: &str,
        vars: &Vars,
    ) -> Result<Policy, PolicyError> {
        let mut walk = Walk {
            vars,
            stack: Vec::new(),
            layers: Vec::new(),
        };
        self.visit(&mut walk, file, text)?;
        merge(name, walk.layers)
    }

    /// As [`Loader::load`], plus where every grant was written (bases first), for
    /// [`crate::lint`]. The policy is the one `load` returns.
    pub fn load_traced(
        &self,
        name_or_path: &str,
        vars: &Vars,
    ) -> Result<(Policy, Vec<Origin>), PolicyError> {
        let path = self.resolve(name_or_path)?;
        let text = read(&path)?;
        let mut walk = Walk {
            vars,
            stack: Vec::new(),
            layers: Vec::new(),
        };
        self.visit(&mut walk, &path, &text)?;
        let origins = walk
            .layers
            .iter()
            .flat_map(|(_, l)| l.origins.iter().cloned())
            .collect();
        Ok((merge(name_or_path, walk.layers)?, origins))
    }

    /// Compiles `file`, then its bases (depth first), then records `file` itself.
    fn visit(&self, walk: &mut Walk<'_>, file: &Path, text: &str) -> Result<(), PolicyError> {
        let src = Src { file, text };
        let parsed = syntax::parse(text).map_err(|e| src.toml(&e))?;
        if *parsed.version.get_ref() != 1 {
            let bad = Bad::new(format!(
                "unsupported policy version {}",
                parsed.version.get_ref()
            ));
            return Err(src.bad(parsed.version.span(), bad.hint("write `version = 1`")));
        }
        let layer = compile_layer(&src, &parsed, walk.vars)?;
        walk.stack.push(identity(file));
        for entry in &parsed.extends {
            let at = src.at(entry.span().start);
            let base = self
                .resolve_base(entry.get_ref(), file)
                .map_err(|e| src.bad(entry.span(), e))?;
            let id = identity(&base);
            if let Some(pos) = walk.stack.iter().position(|p| *p == id) {
                let mut chain = walk.stack[pos..].to_vec();
                chain.push(id);
                return Err(PolicyError::Cycle { at, chain });
            }
            if walk.layers.iter().any(|(p, _)| identity(p) == id) {
                continue;
            }
            if walk.stack.len() > MAX_EXTENDS_DEPTH {
                let limit = MAX_EXTENDS_DEPTH;
                return Err(PolicyError::TooDeep { at, limit });
            }
            let text = read(&base).map_err(|e| src.bad(entry.span(), Bad::new(chain_text(&e))))?;
            self.visit(walk, &base, &text)?;
        }
        walk.stack.pop();
        walk.layers.push((file.to_path_buf(), layer));
        Ok(())
    }

    /// An `extends` entry: a preset through the search dirs, a relative path against the
    /// directory of `from`, an absolute path as is.
    fn resolve_base(&self, entry: &str, from: &Path) -> Result<PathBuf, Bad> {
        if is_preset_name(entry) {
            return self.resolve(entry).map_err(|e| {
                let hint = e.hint().unwrap_or_default().to_string();
                Bad::new(format!("cannot extend: {e}")).hint(hint)
            });
        }
        let path = Path::new(entry);
        if path.is_absolute() {
            return Ok(path.to_path_buf());
        }
        Ok(from.parent().unwrap_or(Path::new("")).join(path))
    }
}

fn is_preset_name(s: &str) -> bool {
    !s.is_empty() && !s.contains('/') && !s.ends_with(".toml")
}

/// What makes two spellings of one file equal, for cycle detection.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn read(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// An error and its sources on one line, for an error that becomes a message.
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut out = format!("cannot extend: {e}");
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(&format!(": {s}"));
        cur = s.source();
    }
    out
}

/// Checks every value of one file.
fn compile_layer(src: &Src<'_>, f: &syntax::File, vars: &Vars) -> Result<Layer, PolicyError> {
    let each = |list: &[toml::Spanned<String>]| -> Result<Vec<PathBuf>, PolicyError> {
        let mut out = Vec::new();
        for v in list {
            let p = value::grant_path(v.get_ref(), vars).map_err(|e| src.bad(v.span(), e))?;
            push_unique(&mut out, p);
        }
        Ok(out)
    };
    let mut layer = Layer {
        read: each(&f.filesystem.read)?,
        write: each(&f.filesystem.write)?,
        exec: each(&f.filesystem.exec)?,
        ..Layer::default()
    };
    let fs = &f.filesystem;
    for (kind, list) in [
        (GrantKind::Read, &fs.read),
        (GrantKind::Write, &fs.write),
        (GrantKind::Exec, &fs.exec),
    ] {
        for v in list {
            let path = value::grant_path(v.get_ref(), vars).map_err(|e| src.bad(v.span(), e))?;
            let at = src.at(v.span().start);
            layer.origins.push(Origin { kind, path, at });
        }
    }
    layer.tmp = scalar(src, fs.tmp.as_ref(), |s| value::tmp_mode(s))?;
    for v in &fs.hide {
        let g = value::hide_glob(v.get_ref(), vars).map_err(|e| src.bad(v.span(), e))?;
        push_unique(&mut layer.hide, g);
    }
    for v in &f.env.pass {
        let name = value::env_pass(v.get_ref()).map_err(|e| src.bad(v.span(), e))?;
        push_unique(&mut layer.pass, name);
    }
    for (k, v) in &f.env.set {
        value::env_set_name(k.get_ref()).map_err(|e| src.bad(k.span(), e))?;
        let val = value::substitute(v.get_ref(), vars).map_err(|e| src.bad(v.span(), e))?;
        if val.contains('\0') {
            return Err(src.bad(v.span(), Bad::new("value contains a NUL character")));
        }
        layer.set.insert(k.get_ref().clone(), val);
    }
    layer.mode = scalar(src, f.network.mode.as_ref(), |s| value::net_mode(s))?;
    for v in &f.network.allow {
        let at = src.at(v.span().start);
        match addr::net_allow(v.get_ref()).map_err(|e| src.bad(v.span(), e))? {
            Allowed::Net(a) => push_unique(&mut layer.allow, a),
            Allowed::Host(name, port) => {
                push_unique(&mut layer.allow_hosts, host_rule(name, port, &at))
            }
        }
        layer.allow_at.get_or_insert(at);
    }
    let r = &f.resources;
    layer.resources = Resources {
        memory: scalar(src, r.memory.as_ref(), value::memory)?,
        pids: scalar(src, r.pids.as_ref(), |n| value::pids(*n))?,
        cpu: scalar(src, r.cpu.as_ref(), value::cpu)?,
        wall: scalar(src, r.wall.as_ref(), |s| value::wall(s))?,
    };
    layer.rules = rule::rules(src, &f.rule, vars)?;
    layer.timeout = rule::approval(src, &f.approval)?;
    Ok(layer)
}

/// The connect allow rule for a `network.allow` host name. Its id has a space, which written
/// ids cannot have, and names the entry.
fn host_rule(name: String, port: u16, at: &Location) -> Rule {
    Rule {
        id: format!("network.allow {name}:{port}"),
        matcher: Matcher::Connect(AddrPattern::Host {
            name,
            port: Some(port),
            resolved: Vec::new(),
        }),
        action: Action::Allow,
        errno: EACCES,
        reason: "listed in network.allow".to_string(),
        source: format!("{}:{}", at.file.display(), at.line),
    }
}

/// Converts an optional spanned value, locating its error.
fn scalar<T, U>(
    src: &Src<'_>,
    v: Option<&toml::Spanned<T>>,
    convert: impl Fn(&T) -> Result<U, Bad>,
) -> Result<Option<U>, PolicyError> {
    v.map(|v| convert(v.get_ref()).map_err(|e| src.bad(v.span(), e)))
        .transpose()
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn extend_unique<T: PartialEq>(list: &mut Vec<T>, items: Vec<T>) {
    for item in items {
        push_unique(list, item);
    }
}

/// Folds the layers, bases first, into the policy, and checks what only the whole can show.
fn merge(name: &str, layers: Vec<(PathBuf, Layer)>) -> Result<Policy, PolicyError> {
    let mut p = Policy {
        name: name.to_string(),
        sources: Vec::new(),
        filesystem: Filesystem::default(),
        env: EnvPolicy::default(),
        network: Network::default(),
        resources: Resources::default(),
        rules: Vec::new(),
        approval: Approval::default(),
    };
    let mut allow_at = None;
    let mut ids: BTreeMap<String, Location> = BTreeMap::new();
    let mut hosts: Vec<Rule> = Vec::new();
    for (file, l) in layers {
        p.sources.push(file);
        let fs = &mut p.filesystem;
        extend_unique(&mut fs.read, l.read);
        extend_unique(&mut fs.write, l.write);
        extend_unique(&mut fs.exec, l.exec);
        extend_unique(&mut fs.hide, l.hide);
        fs.tmp = l.tmp.unwrap_or(fs.tmp);
        extend_unique(&mut p.env.pass, l.pass);
        p.env.set.extend(l.set);
        p.network.mode = l.mode.unwrap_or(p.network.mode);
        extend_unique(&mut p.network.allow, l.allow);
        allow_at = l.allow_at.or(allow_at);
        let (r, n) = (&mut p.resources, l.resources);
        r.memory = n.memory.or(r.memory);
        r.pids = n.pids.or(r.pids);
        r.cpu = n.cpu.or(r.cpu);
        r.wall = n.wall.or(r.wall);
        p.approval.timeout = l.timeout.unwrap_or(p.approval.timeout);
        for placed in l.rules {
            if let Some(first) = ids.get(&placed.rule.id) {
                return Err(PolicyError::Invalid {
                    message: format!("duplicate rule id `{}` (first at {first})", placed.rule.id),
                    at: placed.at,
                    hint: Some("give each rule its own id = \"…\"".to_string()),
                });
            }
            ids.insert(placed.rule.id.clone(), placed.at);
            p.rules.push(placed.rule);
        }
        for h in l.allow_hosts {
            if !hosts.iter().any(|x| x.id == h.id) {
                hosts.push(h);
            }
        }
    }
    p.rules.extend(hosts);
    if let (NetMode::None, Some(at)) = (p.network.mode, allow_at) {
        return Err(PolicyError::Invalid {
            at,
            message: "network.allow needs mode = \"filtered\" (the mode is \"none\")".to_string(),
            hint: Some("set mode = \"filtered\" in [network]".to_string()),
        });
    }
    Ok(p)
}

#[cfg(test)]
mod tests;
