//! `PolicyError` and the mapping of byte spans to `file:line:col`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A place in a policy file: 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// Why a policy could not be loaded. Every error inside a file starts with `FILE:LINE:COL: `.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A preset name that no search directory has.
    #[error("policy `{name}` not found in {}", dir_list(searched))]
    NotFound {
        name: String,
        searched: Vec<PathBuf>,
    },
    /// A policy file that could not be read.
    #[error("cannot read policy {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A syntax or validation error at a place in a file.
    #[error("{at}: {message}")]
    Invalid {
        at: Location,
        message: String,
        hint: Option<String>,
    },
    /// `extends` leads back to a file already being loaded.
    #[error("{at}: extends cycle: {}", chain_list(chain))]
    Cycle { at: Location, chain: Vec<PathBuf> },
    /// `extends` nested deeper than `limit` levels.
    #[error("{at}: extends nested deeper than {limit} levels")]
    TooDeep { at: Location, limit: usize },
}

impl PolicyError {
    /// What to write instead, when that is known.
    pub fn hint(&self) -> Option<&str> {
        match self {
            PolicyError::NotFound { .. } => Some(
                "install NAME.toml in one of these directories, or give a path such as ./NAME.toml",
            ),
            PolicyError::Io { .. } => None,
            PolicyError::Invalid { hint, .. } => hint.as_deref(),
            PolicyError::Cycle { .. } => Some("remove one of the `extends` entries in the cycle"),
            PolicyError::TooDeep { .. } => Some("flatten the chain of `extends`"),
        }
    }

    /// Where in which file the error is, if it is inside a file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            PolicyError::Invalid { at, .. }
            | PolicyError::Cycle { at, .. }
            | PolicyError::TooDeep { at, .. } => Some(at),
            PolicyError::NotFound { .. } | PolicyError::Io { .. } => None,
        }
    }
}

fn dir_list(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no search directories".to_string();
    }
    let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    list.join(", ")
}

fn chain_list(chain: &[PathBuf]) -> String {
    let list: Vec<String> = chain.iter().map(|d| d.display().to_string()).collect();
    list.join(" -> ")
}

/// A problem with one value, before its location is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bad {
    pub message: String,
    pub hint: Option<String>,
}

impl Bad {
    pub fn new(message: impl Into<String>) -> Bad {
        Bad {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Bad {
        self.hint = Some(hint.into());
        self
    }
}

/// One file being compiled: where errors point to.
#[derive(Clone, Copy)]
pub(crate) struct Src<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Src<'_> {
    /// The location of byte `offset`.
    pub fn at(&self, offset: usize) -> Location {
        let mut end = offset.min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &self.text[..end];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            file: self.file.to_path_buf(),
            line: before.matches('\n').count() + 1,
            col: before[line_start..].chars().count() + 1,
        }
    }

    /// `bad` located at the start of `span`.
    pub fn bad(&self, span: Range<usize>, bad: Bad) -> PolicyError {
        PolicyError::Invalid {
            at: self.at(span.start),
            message: bad.message,
            hint: bad.hint,
        }
    }

    /// A toml parse or type error, reworded where we know better.
    pub fn toml(&self, e: &toml::de::Error) -> PolicyError {
        let start = e.span().map_or(0, |s| s.start);
        self.bad(start..start, reword(e.message()))
    }
}

/// Turns serde's messages into ours: `unknown field` becomes `unknown key` with the valid keys
/// as the hint; a missing `version` says what to write.
fn reword(message: &str) -> Bad {
    let message = message.trim().trim_end_matches('.');
    let message = message
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(": ");
    let message = message.replace("expected i64", "expected an integer");
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (key, expected) = rest.split_once(", ").unwrap_or((rest, ""));
        let valid = expected
            .trim_start_matches("expected one of ")
            .trim_start_matches("expected ")
            .replace("` or `", "`, `")
            .replace('`', "");
        let bad = Bad::new(format!("unknown key {key}"));
        return if valid.is_empty() || valid.starts_with("there are no") {
            bad
        } else {
            bad.hint(format!("valid keys here: {valid}"))
        };
    }
    if message == "missing field `version`" {
        return Bad::new("missing key `version`").hint("start the file with `version = 1`");
    }
    let mut chars = message.chars();
    let lowered = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => "invalid policy".to_string(),
    };
    Bad::new(lowered)
}
