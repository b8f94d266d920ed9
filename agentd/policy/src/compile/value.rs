//! Checks and conversions of single values: variables, paths, sizes, durations, network
//! entries, environment names. Pure functions returning [`Bad`] without a location; the caller
//! attaches the value's span.

use std::path::PathBuf;
use std::time::Duration;

use super::error::Bad;
use crate::glob::Glob;
use crate::model::{NetMode, TmpMode, Vars};

const VARS_HINT: &str = "the variables are ${HOME}, ${WORKSPACE}, ${USER}";
const SIZE_HINT: &str = "write a size like \"512M\" or \"4G\"";
const WALL_HINT: &str = "write a duration like \"90s\", \"30m\" or \"1h30m\"";

/// Replaces `${HOME}`, `${WORKSPACE}` and `${USER}`; any other `${…}` is an error.
pub(crate) fn substitute(s: &str, vars: &Vars) -> Result<String, Bad> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(Bad::new(format!("unclosed `${{` in `{s}`")).hint(VARS_HINT));
        };
        match &after[..end] {
            "HOME" => out.push_str(&vars.home.to_string_lossy()),
            "WORKSPACE" => out.push_str(&vars.workspace.to_string_lossy()),
            "USER" => out.push_str(&vars.user),
            other => {
                return Err(Bad::new(format!("unknown variable `${{{other}}}`")).hint(VARS_HINT))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A granted path: substituted, absolute, without `..`, `.` and trailing `/` removed.
pub(crate) fn grant_path(s: &str, vars: &Vars) -> Result<PathBuf, Bad> {
    let path = substitute(s, vars)?;
    if path.contains('\0') {
        return Err(Bad::new(format!("path `{path}` contains a NUL character")));
    }
    if !path.starts_with('/') {
        return Err(Bad::new(format!("path `{path}` is not absolute"))
            .hint("write an absolute path or start it with ${WORKSPACE} or ${HOME}"));
    }
    let mut out = PathBuf::from("/");
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                return Err(Bad::new(format!("path `{path}` contains `..`"))
                    .hint("write the path without `..`"))
            }
            seg => out.push(seg),
        }
    }
    Ok(out)
}

/// A `hide` pattern: substituted, then compiled.
pub(crate) fn hide_glob(s: &str, vars: &Vars) -> Result<Glob, Bad> {
    let pattern = substitute(s, vars)?;
    Glob::new(&pattern).map_err(|e| {
        Bad::new(e).hint("write a path pattern like \"${WORKSPACE}/**/.env\" or \"**/*.pem\"")
    })
}

pub(crate) fn tmp_mode(s: &str) -> Result<TmpMode, Bad> {
    match s {
        "private" => Ok(TmpMode::Private),
        "none" => Ok(TmpMode::None),
        other => Err(Bad::new(format!("unknown tmp mode `{other}`"))
            .hint("write tmp = \"private\" or tmp = \"none\"")),
    }
}

pub(crate) fn net_mode(s: &str) -> Result<NetMode, Bad> {
    match s {
        "none" => Ok(NetMode::None),
        "filtered" => Ok(NetMode::Filtered),
        other => Err(Bad::new(format!("unknown network mode `{other}`"))
            .hint("write mode = \"none\" or mode = \"filtered\"")),
    }
}

/// An `env.pass` entry: a name, or a prefix followed by `*`.
pub(crate) fn env_pass(s: &str) -> Result<String, Bad> {
    env_name(s.strip_suffix('*').unwrap_or(s), s.ends_with('*'))?;
    Ok(s.to_string())
}

/// An `env.set` name.
pub(crate) fn env_set_name(s: &str) -> Result<(), Bad> {
    env_name(s, false)
}

fn env_name(name: &str, prefix: bool) -> Result<(), Bad> {
    if name.is_empty() && !prefix {
        return Err(Bad::new("empty variable name"));
    }
    if name.contains(['=', '\0', '*']) {
        return Err(Bad::new(format!("invalid variable name `{name}`"))
            .hint("a name cannot contain `=`; `*` is allowed only at the end of a pass entry"));
    }
    Ok(())
}

/// Bytes: an integer, or a string of digits with an optional K/M/G/T suffix (powers of 1024).
pub(crate) fn memory(v: &toml::Value) -> Result<u64, Bad> {
    let bytes = match v {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(s) => parse_size(s),
        _ => None,
    };
    match bytes {
        Some(0) => Err(Bad::new("memory must be more than zero").hint(SIZE_HINT)),
        Some(b) if i64::try_from(b).is_ok() => Ok(b),
        Some(_) => Err(Bad::new(format!("memory size {v} is too large")).hint(SIZE_HINT)),
        None => Err(Bad::new(format!("invalid memory size {v}")).hint(SIZE_HINT)),
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 10),
        (i, 'M' | 'm') => (&s[..i], 20),
        (i, 'G' | 'g') => (&s[..i], 30),
        (i, 'T' | 't') => (&s[..i], 40),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

pub(crate) fn pids(n: i64) -> Result<u64, Bad> {
    match u64::try_from(n) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Bad::new(format!("pids must be more than zero, not {n}"))
            .hint("write a process count like pids = 1024")),
    }
}

/// Cores: an integer or a float, finite and more than zero.
pub(crate) fn cpu(v: &toml::Value) -> Result<f64, Bad> {
    let cores = match v {
        // Exact for every count of cores a machine can have.
        #[allow(clippy::cast_precision_loss)]
        toml::Value::Integer(n) => Some(*n as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    };
    match cores {
        Some(c) if c.is_finite() && c > 0.0 => Ok(c),
        _ => Err(Bad::new(format!(
            "cpu must be a number of cores more than zero, not {v}"
        ))
        .hint("write cpu = 2 or cpu = 0.5")),
    }
}

/// The `wall` limit: a [`duration`].
pub(crate) fn wall(s: &str) -> Result<Duration, Bad> {
    duration(s, "wall")
}

/// A duration of `<n>d<n>h<n>m<n>s` parts, each at most once, largest first; `key` names it in
/// the error for zero.
pub(crate) fn duration(s: &str, key: &str) -> Result<Duration, Bad> {
    let bad = || Bad::new(format!("invalid duration \"{s}\"")).hint(WALL_HINT);
    let units = [('d', 86_400u64), ('h', 3_600), ('m', 60), ('s', 1)];
    let mut next_unit = 0;
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let i = units[next_unit..]
            .iter()
            .position(|(u, _)| *u == c)
            .ok_or_else(bad)?;
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let secs = n.checked_mul(units[next_unit + i].1).ok_or_else(bad)?;
        total = total.checked_add(secs).ok_or_else(bad)?;
        next_unit += i + 1;
        digits.clear();
    }
    if !digits.is_empty() || next_unit == 0 {
        return Err(bad());
    }
    if total == 0 {
        return Err(Bad::new(format!("{key} must be more than zero")).hint(WALL_HINT));
    }
    Ok(Duration::from_secs(total))
}

/// The canonical text of a duration (`1h30m`), which [`duration`] parses back.
pub(crate) fn wall_text(d: Duration) -> String {
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [('d', 86_400u64), ('h', 3_600), ('m', 60), ('s', 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests;
