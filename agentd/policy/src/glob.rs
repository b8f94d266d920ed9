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
//!
//! Path components need not be UTF-8. A name is matched as a sequence of characters: each
//! UTF-8 encoded character is one, and so is each byte that does not begin one. Such a byte is
//! matched only by `?` or `*`: a pattern is UTF-8, so no literal in it equals the byte (in
//! particular `\u{FFFD}` in a pattern does not match it). `.` components of a path are
//! skipped; a path that is relative or has a `..` component matches nothing.
//!
//! Matching a path allocates nothing: the leading literal segments of a pattern are compared
//! with the first names of the path as they are read, so most paths are rejected after one or
//! two names; the rest is matched on names borrowed from the path, as bytes.

use std::path::{Path, PathBuf};

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// The pattern as written (after variable substitution).
    pattern: String,
    /// The segments, `.` and empty ones removed, runs of `**` collapsed; a pattern that matches
    /// anywhere starts with `**`.
    segs: Vec<Seg>,
    /// How many of `segs` are leading [`Seg::Lit`]s.
    lits: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// `**`
    Any,
    /// A segment without `*` or `?`: matches the name spelled the same, byte for byte.
    Lit(String),
    /// A segment with `*` or `?` (never `**`).
    Wild(String),
}

impl Seg {
    /// Whether this segment matches the one name `name`; `**` is the caller's business.
    fn matches(&self, name: &[u8]) -> bool {
        match self {
            Seg::Any => false,
            Seg::Lit(s) => s.as_bytes() == name,
            Seg::Wild(p) => wildcard_match(p, name),
        }
    }
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
        let mut segs = Vec::new();
        if !pattern.starts_with('/') {
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
                s if has_wildcard(s) => segs.push(Seg::Wild(s.to_string())),
                s => segs.push(Seg::Lit(s.to_string())),
            }
        }
        let lits = segs.iter().take_while(|s| matches!(s, Seg::Lit(_))).count();
        Ok(Glob {
            pattern: pattern.to_string(),
            segs,
            lits,
        })
    }

    /// The pattern as written, after variable substitution.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern has no wildcard at all (it names one path).
    pub fn is_literal(&self) -> bool {
        self.lits == self.segs.len()
    }

    /// The leading segments without a wildcard: every match lies at or below it. `/` for a
    /// pattern that matches anywhere.
    pub fn literal_prefix(&self) -> PathBuf {
        let mut out = PathBuf::from("/");
        for s in &self.segs[..self.lits] {
            if let Seg::Lit(p) = s {
                out.push(p);
            }
        }
        out
    }

    /// Whether `path` (absolute, normalised) matches the pattern itself. A relative path or one
    /// with `..` never matches.
    pub fn matches(&self, path: &Path) -> bool {
        self.match_path(path, false).unwrap_or(false)
    }

    /// Whether `path` matches or lies below a matching path: hiding `~/.ssh` hides
    /// `~/.ssh/id_ed25519`.
    pub fn matches_or_below(&self, path: &Path) -> bool {
        self.match_path(path, true).unwrap_or(false)
    }

    /// Whether the names of `path` match the segments; with `below`, whether some leading
    /// names do (as if the pattern ended in `/**`). `Err` for a path that is not absolute and
    /// normalised, which matches nothing.
    fn match_path(&self, path: &Path, below: bool) -> Result<bool, NotNormal> {
        let mut names = Names::of(path)?;
        // The literal prefix: one comparison per name, and most paths fail here.
        let (lits, rest) = self.segs.split_at(self.lits);
        for lit in lits {
            match names.next()? {
                Some(name) if lit.matches(name) => {}
                _ => return Ok(false),
            }
        }
        // The rest, by the classic wildcard algorithm with `**` as the star and each other
        // segment as one symbol: match segments to names left to right; on a mismatch, let the
        // last `**` take one more name and go on from there. Retrying only the last `**` is
        // enough because every other segment takes exactly one name: whatever an earlier `**`
        // would take in addition, the later one can take instead.
        //
        // `pi` indexes `rest`, `names` reads the path from the next name on; `star` is the
        // segment after the last `**` and where the names after that `**` begin.
        let mut pi = 0;
        let mut star: Option<(usize, Names<'_>)> = None;
        loop {
            match rest.get(pi) {
                Some(Seg::Any) => {
                    pi += 1;
                    star = Some((pi, names.clone()));
                    continue;
                }
                // Every segment matched: whatever lies below is below a match. `..` there
                // still makes the path unusable.
                None if below => {
                    while names.next()?.is_some() {}
                    return Ok(true);
                }
                _ => {}
            }
            let Some(name) = names.next()? else {
                // Out of names: a match iff out of segments too (a `**` left here would have
                // been taken above; any other segment needs a name).
                return Ok(pi == rest.len());
            };
            if rest.get(pi).is_some_and(|s| s.matches(name)) {
                pi += 1;
                continue;
            }
            let Some((after, from)) = star.as_mut() else {
                return Ok(false);
            };
            // `from` is at or before `name`, so it has a name to give up.
            if from.next()?.is_none() {
                return Ok(false);
            }
            names = from.clone();
            pi = *after;
        }
    }
}

/// A path that is relative or has a `..` component: it matches no pattern.
struct NotNormal;

/// The names of an absolute path, read one at a time as bytes; a clone reads on from the same
/// place.
///
/// This is `Path::components` for Unix paths (the only ones agentd sees), without its cost:
/// the path is absolute iff it starts with `/`; after that, the components are the pieces
/// between `/`s, where empty pieces and `.` are skipped and `..` is `Component::ParentDir`.
/// A test checks the two agree.
#[derive(Clone)]
struct Names<'a>(&'a [u8]);

impl<'a> Names<'a> {
    /// The names of `path`, if it is absolute.
    fn of(path: &'a Path) -> Result<Names<'a>, NotNormal> {
        match path.as_os_str().as_encoded_bytes() {
            [b'/', rest @ ..] => Ok(Names(rest)),
            _ => Err(NotNormal),
        }
    }

    /// The next name (skipping empty ones and `.`), or `None` at the end of the path.
    fn next(&mut self) -> Result<Option<&'a [u8]>, NotNormal> {
        while !self.0.is_empty() {
            let (name, rest) = match self.0.iter().position(|&b| b == b'/') {
                Some(i) => (&self.0[..i], &self.0[i + 1..]),
                None => (self.0, &b""[..]),
            };
            self.0 = rest;
            match name {
                b"" | b"." => {}
                b".." => return Err(NotNormal),
                name => return Ok(Some(name)),
            }
        }
        Ok(None)
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

/// Wildcard match of a whole string: `*` any run of characters, `?` one character.
fn segment_matches(pattern: &str, name: &str) -> bool {
    wildcard_match(pattern, name.as_bytes())
}

/// Wildcard match of a whole name (see the module docs for what a character of a name that
/// is not UTF-8 is): `*` any run of characters, `?` one character, anything else itself.
///
/// The classic algorithm (on a mismatch, let the last `*` take one more character), on bytes.
/// It agrees with the same algorithm on characters because every position it moves to in
/// `name` is a character boundary, and so is every position in `pattern` where it looks for
/// `*` or `?`:
/// - `?` and the retry of a `*` move `si` by a whole character ([`char_len`]);
/// - a literal character of the pattern (valid UTF-8, `k` bytes) is compared byte by byte,
///   starting at two boundaries. Either all `k` bytes are equal: then `name` holds the same
///   valid UTF-8 sequence there, which is its character at that place ([`char_len`] is `k`),
///   and both indexes end on the next boundary. Or some byte differs: the attempt fails (back
///   to the last `*`, or no match). In between, `pi` is on UTF-8 continuation bytes, which
///   are never `*` or `?`.
///
/// So a literal character matches exactly the character of `name` with the same bytes, and a
/// byte of `name` that begins no UTF-8 character only matches `?` or `*`.
fn wildcard_match(pattern: &str, name: &[u8]) -> bool {
    let p = pattern.as_bytes();
    let (mut pi, mut si) = (0, 0);
    // The last `*` seen and the name position it was tried at, for backtracking.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = name.get(si) {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(b'?') => {
                pi += 1;
                si += char_len(name, si);
            }
            Some(&b) if b == c => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    // `ss` <= `si` < `name.len()`: there is a character at `ss`.
                    let ss = ss + char_len(name, ss);
                    pi = sp + 1;
                    si = ss;
                    star = Some((sp, ss));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|r| r.iter().all(|&c| c == b'*'))
}

/// The length in bytes of the character at `name[i]`: of the valid UTF-8 sequence that begins
/// there, or 1 for a byte that begins none (a name need not be UTF-8).
fn char_len(name: &[u8], i: usize) -> usize {
    let len = match name.get(i) {
        Some(0..=0x7f) => return 1,
        Some(0xc2..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf4) => 4,
        _ => return 1,
    };
    match name.get(i..i + len) {
        Some(c) if std::str::from_utf8(c).is_ok() => len,
        _ => 1,
    }
}

#[cfg(test)]
mod tests;
