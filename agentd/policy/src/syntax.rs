//! The serde mirror of a policy file (format version 1). This module is the only place that
//! knows the TOML shape; it checks nothing beyond types and key names (`deny_unknown_fields`
//! everywhere). Values that need a location in error messages are `Spanned`; values with more
//! than one accepted TOML type (`memory`, `cpu`) are kept as `toml::Value` and checked in
//! `compile`.
//!
//! The field order of each struct is the order the "valid keys here" hints list them in.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// One policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    pub version: Spanned<i64>,
    #[serde(default)]
    pub extends: Vec<Spanned<String>>,
    #[serde(default)]
    pub filesystem: Filesystem,
    #[serde(default)]
    pub env: Env,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub approval: Approval,
    /// `[[rule]]`: the span locates rule-level errors (a missing key).
    #[serde(default)]
    pub rule: Vec<Spanned<Rule>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Filesystem {
    #[serde(default)]
    pub read: Vec<Spanned<String>>,
    #[serde(default)]
    pub write: Vec<Spanned<String>>,
    #[serde(default)]
    pub exec: Vec<Spanned<String>>,
    pub tmp: Option<Spanned<String>>,
    #[serde(default)]
    pub hide: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Env {
    #[serde(default)]
    pub pass: Vec<Spanned<String>>,
    #[serde(default)]
    pub set: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Network {
    pub mode: Option<Spanned<String>>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Resources {
    /// Integer bytes or a string with a K/M/G/T suffix.
    pub memory: Option<Spanned<toml::Value>>,
    pub pids: Option<Spanned<i64>>,
    /// Integer or float cores.
    pub cpu: Option<Spanned<toml::Value>>,
    pub wall: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Approval {
    pub timeout: Option<Spanned<String>>,
    pub default: Option<Spanned<String>>,
}

/// One `[[rule]]`. Which keys a kind of rule takes is checked in `compile`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    pub id: Option<Spanned<String>>,
    pub on: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub access: Option<Spanned<String>>,
    pub argv: Option<Spanned<String>>,
    pub addr: Option<Spanned<String>>,
    pub action: Option<Spanned<String>>,
    pub errno: Option<Spanned<String>>,
    pub reason: Option<Spanned<String>>,
}

/// Parses `text`; the error keeps toml's byte span.
pub(crate) fn parse(text: &str) -> Result<File, toml::de::Error> {
    toml::from_str(text)
}
