//! Path globs for `hide` and rule paths: patterns on `/`-separated segments; and
//! [`ArgvGlob`], the flat pattern of a rule's `argv`.
//!
//! - `*` matches any characters within one segment (dots included: `*.pem` matches `.x.pem`),
//! - `?` matches one character within a segment,
//! - `**` (a whole segment) matches zero or more whole segments.
//!
//! Every other character is literal (`[`, `{` and `\` have no meaning). A pattern that does
//! not start with `/` matches anywhere: `*.pem` means `/**/*.pem`. Matching is on whole
//! segments of absolute, normalised paths; the matcher never touches the filesystem.

use std::path::{Component, Path, PathBuf};

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// The pattern as written (after variable substitution).
    pattern: String,
    /// `false` for a pattern that matches anywhere.
    absolute: bool,
    /// The segments, `.` and empty ones removed, runs of `**` collapsed.
    segs: Vec<Seg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// `**`
    Any,
    /// A segment without `**`; may hold `*` and `?`.
    Part(String),
}

impl Glob {
    /// Compiles `pattern` (already substituted). Rejects empty patterns, `..` segments and
    /// `**` that is not a whole segment.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty pattern".to_string());
        }
        if pattern.contains('\0') {
            return Err("pattern contains a NUL character".to_string());
        }
        let absolute = pattern.starts_with('/');
        let mut segs = Vec::new();
        if !absolute {
            segs.push(Seg::Any);
        }
        for s in pattern.split('/') {
            match s {
                "" | "." => {}
                ".." => return Err(format!("`..` in pattern `{pattern}`")),
                "**" => {
                    if segs.last() != Some(&Seg::Any) {
                        segs.push(Seg::Any);
                    }
                }
                s if s.contains("**") => {
                    return Err(format!(
                        "`**` must be a whole segment (`/**/`) in pattern `{pattern}`"
                    ))
                }
                s => segs.push(Seg::Part(s.to_string())),
            }
        }
        Ok(Glob {
            pattern: pattern.to_string(),
            absolute,
            segs,
        })
    }

    /// The pattern as written, after variable substitution.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern has no wildcard at all (it names one path).
    pub fn is_literal(&self) -> bool {
        self.segs.iter().all(|s| match s {
            Seg::Any => false,
            Seg::Part(p) => !has_wildcard(p),
        })
    }

    /// The leading segments without a wildcard: every match lies at or below it. `/` for a
    /// pattern that matches anywhere.
    pub fn literal_prefix(&self) -> PathBuf {
        let mut out = PathBuf::from("/");
        for s in &self.segs {
            match s {
                Seg::Part(p) if !has_wildcard(p) => out.push(p),
                _ => break,
            }
        }
        out
    }

    /// Whether `path` (absolute, normalised) matches the pattern itself. A relative path or one
    /// with `..` never matches.
    pub fn matches(&self, path: &Path) -> bool {
        self.match_path(path, false)
    }

    /// Whether `path` matches or lies below a matching path: hiding `~/.ssh` hides
    /// `~/.ssh/id_ed25519`.
    pub fn matches_or_below(&self, path: &Path) -> bool {
        self.match_path(path, true)
    }

    fn match_path(&self, path: &Path, below: bool) -> bool {
        let Some(names) = segments(path) else {
            return false;
        };
        // done[j]: the pattern from segment i on matches names[j..]; filled from the end.
        let n = names.len();
        let mut done: Vec<bool> = (0..=n).map(|j| below || j == n).collect();
        for seg in self.segs.iter().rev() {
            let mut cur = vec![false; n + 1];
            for j in (0..=n).rev() {
                cur[j] = match seg {
                    Seg::Any => done[j] || (j < n && cur[j + 1]),
                    Seg::Part(p) => j < n && done[j + 1] && segment_matches(p, &names[j]),
                };
            }
            done = cur;
        }
        done[0]
    }
}

/// A pattern over a command line (argv joined by single spaces): `*` matches any run of
/// characters, spaces included, `?` one character; everything else is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgvGlob {
    pattern: String,
}

impl ArgvGlob {
    /// Rejects an empty pattern and NUL characters (no argument can hold one).
    pub fn new(pattern: &str) -> Result<ArgvGlob, String> {
        if pattern.is_empty() {
            return Err("empty argv pattern".to_string());
        }
        if pattern.contains('\0') {
            return Err("argv pattern contains a NUL character".to_string());
        }
        Ok(ArgvGlob {
            pattern: pattern.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `argv`, joined with single spaces, matches the whole pattern.
    pub fn matches(&self, argv: &[String]) -> bool {
        segment_matches(&self.pattern, &argv.join(" "))
    }
}

impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.pattern)
    }
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// The names of an absolute path, or `None` for a relative path or one with `..`.
fn segments(path: &Path) -> Option<Vec<String>> {
    let mut comps = path.components();
    if comps.next() != Some(Component::RootDir) {
        return None;
    }
    let mut out = Vec::new();
    for c in comps {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Wildcard match of a whole string: `*` any run of characters, `?` one character.
fn segment_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    let (mut pi, mut si) = (0, 0);
    // The last `*` seen and the name position it was tried at, for backtracking.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests;
