//! `[[rule]]` and `[approval]` of one file: which keys each kind of rule takes, their values,
//! and the default ids. Every error names the rule's id and points at the offending value, or
//! at the rule's table when a key is missing.

use std::time::Duration;

use toml::Spanned;

use super::addr::addr_pattern;
use super::error::{Bad, Location, Src};
use super::value::{duration, substitute};
use super::PolicyError;
use crate::event::{OpenAccess, EACCES, ECONNREFUSED, ENETUNREACH, ENOENT, EPERM};
use crate::glob::{ArgvGlob, Glob};
use crate::model::{Action, Matcher, Rule, Vars};
use crate::syntax;

/// The errno names a deny rule may give, and their values.
pub(crate) const ERRNOS: [(&str, i32); 5] = [
    ("EACCES", EACCES),
    ("EPERM", EPERM),
    ("ENOENT", ENOENT),
    ("ECONNREFUSED", ECONNREFUSED),
    ("ENETUNREACH", ENETUNREACH),
];

/// A compiled rule and where its id is (written or defaulted), for duplicate-id errors.
#[derive(Debug)]
pub(crate) struct Placed {
    pub rule: Rule,
    pub at: Location,
}

/// `approval.timeout`, if the file sets it; checks `approval.default`.
pub(crate) fn approval(
    src: &Src<'_>,
    a: &syntax::Approval,
) -> Result<Option<Duration>, PolicyError> {
    if let Some(d) = &a.default {
        if d.get_ref() != "deny" {
            let bad = Bad::new(format!("unsupported approval default `{}`", d.get_ref())).hint(
                "only default = \"deny\" is accepted today: an unanswered ask or pause is denied",
            );
            return Err(src.bad(d.span(), bad));
        }
    }
    let timeout = a.timeout.as_ref();
    timeout
        .map(|t| duration(t.get_ref(), "timeout").map_err(|e| src.bad(t.span(), e)))
        .transpose()
}

/// Compiles the rules of one file, in order; an unnamed rule is `rule-<N>`, N counting from 1.
pub(crate) fn rules(
    src: &Src<'_>,
    list: &[Spanned<syntax::Rule>],
    vars: &Vars,
) -> Result<Vec<Placed>, PolicyError> {
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        out.push(rule(src, i + 1, r, vars)?);
    }
    Ok(out)
}

fn rule(
    src: &Src<'_>,
    n: usize,
    spanned: &Spanned<syntax::Rule>,
    vars: &Vars,
) -> Result<Placed, PolicyError> {
    let r = spanned.get_ref();
    let table = src.at(spanned.span().start);
    let (id, at) = match &r.id {
        Some(v) => (conv(src, v, rule_id)?, src.at(v.span().start)),
        None => (format!("rule-{n}"), table.clone()),
    };
    let ctx = Ctx { src, id: &id };
    let missing = |key: &str, hint: &str| PolicyError::Invalid {
        at: table.clone(),
        message: format!("rule `{id}` has no `{key}`"),
        hint: Some(hint.to_string()),
    };
    let on = r.on.as_ref().ok_or_else(|| missing("on", ON_HINT))?;
    let matcher = match on.get_ref().as_str() {
        "exec" => {
            ctx.unused(&r.access, "access", "exec")?;
            ctx.unused(&r.addr, "addr", "exec")?;
            let path = r.path.as_ref().ok_or_else(|| missing("path", PATH_HINT))?;
            let argv = r
                .argv
                .as_ref()
                .map(|a| ctx.conv(a, argv_glob))
                .transpose()?;
            Matcher::Exec {
                path: ctx.conv(path, |s| path_glob(s, vars))?,
                argv,
            }
        }
        "open" => {
            ctx.unused(&r.argv, "argv", "open")?;
            ctx.unused(&r.addr, "addr", "open")?;
            let path = r.path.as_ref().ok_or_else(|| missing("path", PATH_HINT))?;
            Matcher::Open {
                path: ctx.conv(path, |s| path_glob(s, vars))?,
                access: r.access.as_ref().map(|a| ctx.conv(a, access)).transpose()?,
            }
        }
        "connect" => {
            ctx.unused(&r.path, "path", "connect")?;
            ctx.unused(&r.access, "access", "connect")?;
            ctx.unused(&r.argv, "argv", "connect")?;
            let addr = r
                .addr
                .as_ref()
                .ok_or_else(|| missing("addr", ADDR_MISSING))?;
            Matcher::Connect(ctx.conv(addr, |s| addr_pattern(s, vars))?)
        }
        other => {
            let bad = Bad::new(format!("rule `{id}`: unknown kind on = \"{other}\"")).hint(ON_HINT);
            return Err(src.bad(on.span(), bad));
        }
    };
    let action_v = r
        .action
        .as_ref()
        .ok_or_else(|| missing("action", ACTION_HINT))?;
    let action = ctx.conv(action_v, action)?;
    let errno = match &r.errno {
        Some(e) if action != Action::Deny => {
            let bad = Bad::new(format!(
                "rule `{id}`: errno applies only to action = \"deny\""
            ))
            .hint("remove errno, or set action = \"deny\"");
            return Err(src.bad(e.span(), bad));
        }
        Some(e) => ctx.conv(e, errno)?,
        None => EACCES,
    };
    let reason_v = r
        .reason
        .as_ref()
        .ok_or_else(|| missing("reason", REASON_HINT))?;
    let reason = ctx.conv(reason_v, reason)?;
    let source = format!("{}:{}", table.file.display(), table.line);
    let rule = Rule {
        id,
        matcher,
        action,
        errno,
        reason,
        source,
    };
    Ok(Placed { rule, at })
}

const ON_HINT: &str = "write on = \"exec\", \"open\" or \"connect\"";
const PATH_HINT: &str =
    "write path = \"PATTERN\", like \"${WORKSPACE}/**/.env\" or \"/usr/bin/git\"";
const ADDR_MISSING: &str = "write addr = \"IP:PORT\", \"HOST:PORT\", \"/path.sock\" or \"@name\"";
const ACTION_HINT: &str = "write action = \"allow\", \"deny\", \"ask\" or \"pause\"";
const REASON_HINT: &str = "write reason = \"…\": it is copied into the audit record";

/// The rule being compiled: its id goes into every message.
struct Ctx<'a> {
    src: &'a Src<'a>,
    id: &'a str,
}

impl Ctx<'_> {
    fn conv<T>(
        &self,
        v: &Spanned<String>,
        f: impl Fn(&str) -> Result<T, Bad>,
    ) -> Result<T, PolicyError> {
        f(v.get_ref()).map_err(|b| {
            let message = format!("rule `{}`: {}", self.id, b.message);
            self.src.bad(v.span(), Bad { message, ..b })
        })
    }

    fn unused(&self, v: &Option<Spanned<String>>, key: &str, on: &str) -> Result<(), PolicyError> {
        let Some(v) = v else { return Ok(()) };
        let takes = match on {
            "exec" => "an exec rule takes path and argv",
            "open" => "an open rule takes path and access",
            _ => "a connect rule takes addr",
        };
        let bad = Bad::new(format!(
            "rule `{}`: `{key}` does not apply to on = \"{on}\"",
            self.id
        ))
        .hint(takes);
        Err(self.src.bad(v.span(), bad))
    }
}

fn conv<T>(
    src: &Src<'_>,
    v: &Spanned<String>,
    f: impl Fn(&str) -> Result<T, Bad>,
) -> Result<T, PolicyError> {
    f(v.get_ref()).map_err(|b| src.bad(v.span(), b))
}

/// Ids are printed in audit records and typed on command lines: no spaces or control
/// characters. (Rules made from `network.allow` host names have ids with a space, so they can
/// never collide with a written id.)
fn rule_id(s: &str) -> Result<String, Bad> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Bad::new(format!("invalid rule id {s:?}"))
            .hint("write an id without spaces, like \"no-dotenv\""));
    }
    Ok(s.to_string())
}

fn path_glob(s: &str, vars: &Vars) -> Result<Glob, Bad> {
    let pattern = substitute(s, vars)?;
    Glob::new(&pattern).map_err(|e| Bad::new(e).hint(PATH_HINT))
}

fn argv_glob(s: &str) -> Result<ArgvGlob, Bad> {
    ArgvGlob::new(s).map_err(|e| {
        Bad::new(e).hint("write a pattern over the arguments joined by spaces, like \"* push *\"")
    })
}

fn access(s: &str) -> Result<OpenAccess, Bad> {
    match s {
        "read" => Ok(OpenAccess::Read),
        "write" => Ok(OpenAccess::Write),
        other => Err(Bad::new(format!("unknown access `{other}`"))
            .hint("write access = \"read\" or \"write\", or omit it for both")),
    }
}

fn action(s: &str) -> Result<Action, Bad> {
    match s {
        "allow" => Ok(Action::Allow),
        "deny" => Ok(Action::Deny),
        "ask" => Ok(Action::Ask),
        "pause" => Ok(Action::Pause),
        other => Err(Bad::new(format!("unknown action `{other}`")).hint(ACTION_HINT)),
    }
}

fn errno(s: &str) -> Result<i32, Bad> {
    ERRNOS
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, n)| *n)
        .ok_or_else(|| {
            let names: Vec<&str> = ERRNOS.iter().map(|(n, _)| *n).collect();
            Bad::new(format!("unknown errno `{s}`"))
                .hint(format!("write one of {}", names.join(", ")))
        })
}

fn reason(s: &str) -> Result<String, Bad> {
    if s.trim().is_empty() {
        return Err(Bad::new("empty reason").hint(REASON_HINT));
    }
    Ok(s.to_string())
}

/// The text of `errno` for `to_toml`.
pub(crate) fn errno_name(errno: i32) -> &'static str {
    ERRNOS
        .iter()
        .find(|(_, n)| *n == errno)
        .map_or("EACCES", |(name, _)| name)
}
