//! The audit record, its exact byte form, and the hash rule.
//!
//! A record is one JSON object on one line, its fields in the order of [`Record`], with `hash`
//! always last. The hash of a record is the lower-case hex SHA-256 of its line with the
//! `,"hash":"<64 hex>"` member cut out, i.e. `line[..len-75] + "}"` (see docs/audit.md). Every
//! record carries in `prev` the hash of the record before it (64 zeros for the first), so
//! changing, removing or reordering a record breaks the chain at that record.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The bytes a line ends with after its hashed part: `,"hash":"` + 64 hex + `"}`.
pub const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;
/// Longest string field (path, address, reason, …) kept in a record; longer ones are cut.
const MAX_FIELD: usize = 4096;
/// Most bytes of argv kept in a record.
const MAX_ARGV: usize = 32 * 1024;

/// One audit record as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1 for the first record of the file, then +1 per line.
    pub seq: u64,
    /// RFC 3339 UTC with microseconds: `2025-01-31T12:00:00.123456Z`.
    pub ts: String,
    pub run: String,
    pub kind: Kind,
    #[serde(flatten)]
    pub body: Body,
    /// `hash` of the previous record; [`GENESIS`] for the first.
    pub prev: String,
    /// Empty only while the record is being sealed (and then not serialized).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    RunStart,
    Exec,
    Open,
    Connect,
    RunEnd,
    DaemonStart,
    Note,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::RunStart,
        Kind::Exec,
        Kind::Open,
        Kind::Connect,
        Kind::RunEnd,
        Kind::DaemonStart,
        Kind::Note,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RunStart => "run_start",
            Kind::Exec => "exec",
            Kind::Open => "open",
            Kind::Connect => "connect",
            Kind::RunEnd => "run_end",
            Kind::DaemonStart => "daemon_start",
            Kind::Note => "note",
        }
    }

    /// The kind named `s` (`exec`, `run_start`, …).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What the caller fills in; the writer adds `seq`, `ts`, `prev` and `hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: Kind,
    pub body: Body,
}

/// The fields of a record that depend on its kind. Absent fields are not written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Body {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// `allow`, `deny`, `ask` or `pause`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `policy`, `timeout` or `uid:N` (the human who answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Set when a field was cut to keep the record under its size bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
}

impl Body {
    /// Cuts oversized strings and argv so one record stays far below a protocol frame.
    pub fn clamp(&mut self) {
        let mut cut = false;
        for s in [
            &mut self.user,
            &mut self.comm,
            &mut self.path,
            &mut self.addr,
            &mut self.access,
            &mut self.rule,
            &mut self.reason,
            &mut self.decided_by,
            &mut self.policy_digest,
            &mut self.workspace,
            &mut self.message,
        ]
        .into_iter()
        .flatten()
        {
            cut |= clamp_str(s, MAX_FIELD);
        }
        if let Some(argv) = &mut self.argv {
            let mut budget = MAX_ARGV;
            let mut keep = 0;
            for arg in argv.iter_mut() {
                cut |= clamp_str(arg, MAX_FIELD.min(budget));
                if arg.len() >= budget {
                    break;
                }
                budget -= arg.len();
                keep += 1;
            }
            if keep < argv.len() {
                argv.truncate(keep);
                cut = true;
            }
        }
        if cut {
            self.truncated = Some(true);
        }
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary; `true` if it was cut.
fn clamp_str(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Serializes `record` (its `hash` is ignored), computes the hash, and returns the line (no
/// newline) with `hash` filled in; `record.hash` is set too.
pub fn seal(record: &mut Record) -> serde_json::Result<Vec<u8>> {
    record.hash.clear();
    let mut line = serde_json::to_vec(&*record)?;
    record.hash = sha256_hex(&line);
    line.pop(); // the closing brace
    line.extend_from_slice(b",\"hash\":\"");
    line.extend_from_slice(record.hash.as_bytes());
    line.extend_from_slice(b"\"}");
    Ok(line)
}

/// Splits a line into the bytes its hash covers and the hash it claims, if it has the form
/// `…,"hash":"<64 lower-case hex>"}`.
pub fn split_hash(line: &[u8]) -> Option<(Vec<u8>, &str)> {
    let cut = line.len().checked_sub(HASH_SUFFIX_LEN)?;
    let (head, tail) = line.split_at(cut);
    let hex = tail.strip_prefix(b",\"hash\":\"")?.strip_suffix(b"\"}")?;
    if !hex
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let hex = std::str::from_utf8(hex).ok()?;
    let mut covered = head.to_vec();
    covered.push(b'}');
    Some((covered, hex))
}

/// `t` as RFC 3339 UTC with microseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = agentd_proto::time::civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_known_instants() {
        let at = |s: u64, us: u32| rfc3339(UNIX_EPOCH + Duration::new(s, us * 1000));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_709_251_199, 999_999), "2024-02-29T23:59:59.999999Z");
        assert_eq!(at(4_102_444_800, 0), "2100-01-01T00:00:00.000000Z");
    }

    #[test]
    fn seal_puts_hash_last_and_hash_covers_line_without_it() {
        let mut r = Record {
            seq: 1,
            ts: "t".into(),
            run: "r".into(),
            kind: Kind::Exec,
            body: Body {
                pid: Some(3),
                verdict: Some("allow".into()),
                ..Body::default()
            },
            prev: GENESIS.into(),
            hash: String::new(),
        };
        let line = seal(&mut r).unwrap();
        let text = String::from_utf8(line.clone()).unwrap();
        let head =
            r#"{"seq":1,"ts":"t","run":"r","kind":"exec","pid":3,"verdict":"allow","prev":""#;
        assert!(text.starts_with(head), "{text}");
        assert!(
            text.ends_with(&format!(r#","hash":"{}"}}"#, r.hash)),
            "{text}"
        );
        let (covered, hex) = split_hash(&line).unwrap();
        assert_eq!(hex, r.hash);
        assert_eq!(sha256_hex(&covered), r.hash);
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn sha256_hex_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn clamp_cuts_long_fields_and_marks_truncated() {
        let mut b = Body {
            path: Some("é".repeat(MAX_FIELD)),
            argv: Some(vec!["x".repeat(3000); 20]),
            ..Body::default()
        };
        b.clamp();
        assert!(b.path.as_ref().unwrap().len() <= MAX_FIELD);
        let argv = b.argv.as_ref().unwrap();
        assert!(argv.iter().map(String::len).sum::<usize>() <= MAX_ARGV);
        assert_eq!(argv.len(), MAX_ARGV / 3000);
        assert_eq!(b.truncated, Some(true));
        let mut small = Body {
            argv: Some(vec!["ls".into()]),
            ..Body::default()
        };
        small.clamp();
        assert_eq!(small.truncated, None);
    }
}
