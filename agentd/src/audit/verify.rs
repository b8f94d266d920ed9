//! Checking a log's hash chain, naming the first record that breaks it.
//!
//! Line N must hold record `seq` N whose `prev` is the hash of line N-1 (64 zeros for line 1)
//! and whose own hash matches its bytes. Any changed, inserted, removed or reordered record
//! therefore fails at the first line it touches. Removing records at the *end* of the log leaves
//! a valid shorter chain; a finished run's log ends with `run_end`, which is how a reader tells.

use std::path::Path;

use super::record::{sha256_hex, split_hash, Record, GENESIS};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("cannot read audit log {path}: {reason}")]
    Io { path: String, reason: String },
    /// `line` is 1-based; in an intact log record `seq` N is on line N.
    #[error("record {line} (line {line}): {problem}")]
    Broken { line: u64, problem: String },
}

/// Verifies the chain of the log at `path`; the number of records when intact.
pub fn verify(path: &Path) -> Result<u64, VerifyError> {
    let bytes = std::fs::read(path).map_err(|e| VerifyError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    verify_bytes(&bytes)
}

/// [`verify`] on the content of a log.
pub fn verify_bytes(bytes: &[u8]) -> Result<u64, VerifyError> {
    let mut prev = GENESIS.to_string();
    let mut line_no = 0u64;
    let mut rest = bytes;
    while !rest.is_empty() {
        line_no += 1;
        let broken = |problem: &str| VerifyError::Broken {
            line: line_no,
            problem: problem.to_string(),
        };
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(broken("truncated: the last line has no newline"));
        };
        let (line, tail) = rest.split_at(end);
        rest = tail.get(1..).unwrap_or_default();
        prev = check_line(line, line_no, &prev).map_err(|p| broken(&p))?;
    }
    Ok(line_no)
}

/// Checks one line against the chain so far; returns its hash.
fn check_line(line: &[u8], expected_seq: u64, prev: &str) -> Result<String, String> {
    let (covered, claimed) = split_hash(line).ok_or("no hash at the end of the line")?;
    let record: Record =
        serde_json::from_slice(line).map_err(|e| format!("not a valid record: {e}"))?;
    if record.hash != claimed {
        return Err("hash field is not the last field".into());
    }
    if sha256_hex(&covered) != claimed {
        return Err("hash mismatch (the record was changed)".into());
    }
    if record.seq != expected_seq {
        return Err(format!(
            "seq {} where {expected_seq} was expected (a record was removed, added or moved)",
            record.seq
        ));
    }
    if record.prev != prev {
        return Err("prev does not match the previous record's hash".into());
    }
    Ok(record.hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{seal, Body, Kind, Record};

    /// A small chained log: run_start, exec, open (deny), connect, run_end.
    fn log() -> Vec<u8> {
        let kinds = [
            Kind::RunStart,
            Kind::Exec,
            Kind::Open,
            Kind::Connect,
            Kind::RunEnd,
        ];
        let mut prev = GENESIS.to_string();
        let mut out = Vec::new();
        for (i, kind) in kinds.into_iter().enumerate() {
            let mut r = Record {
                seq: i as u64 + 1,
                ts: "2025-01-01T00:00:00.000000Z".into(),
                run: "ab12cd34".into(),
                kind,
                body: Body {
                    pid: Some(42),
                    path: Some("/w/x".into()),
                    verdict: Some(if kind == Kind::Open { "deny" } else { "allow" }.into()),
                    ..Body::default()
                },
                prev: prev.clone(),
                hash: String::new(),
            };
            out.extend(seal(&mut r).unwrap());
            out.push(b'\n');
            prev = r.hash;
        }
        out
    }

    fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
        bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn broken_line(r: Result<u64, VerifyError>) -> u64 {
        match r {
            Err(VerifyError::Broken { line, .. }) => line,
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn verify_intact_log_counts_records() {
        assert_eq!(verify_bytes(&log()), Ok(5));
        assert_eq!(verify_bytes(b""), Ok(0));
    }

    #[test]
    fn verify_names_the_record_of_every_flipped_byte() {
        let good = log();
        // The line (1-based) each byte belongs to; a newline belongs to the line it ends.
        let mut owner = Vec::new();
        for (i, l) in lines(&good).iter().enumerate() {
            owner.extend(std::iter::repeat_n(i as u64 + 1, l.len()));
        }
        for pos in 0..good.len() {
            for mask in [0x01u8, 0x20, 0x80] {
                let mut bad = good.clone();
                bad[pos] ^= mask;
                let got = broken_line(verify_bytes(&bad));
                assert_eq!(got, owner[pos], "byte {pos} ^ {mask:#x}");
            }
        }
    }

    #[test]
    fn verify_error_message_names_record_and_line() {
        let mut bad = log();
        let at = lines(&bad)[..2].iter().map(Vec::len).sum::<usize>() + 20;
        bad[at] ^= 0x01;
        let err = verify_bytes(&bad).unwrap_err().to_string();
        assert!(err.starts_with("record 3 (line 3): "), "{err}");
    }

    #[test]
    fn verify_rejects_truncated_last_line() {
        let good = log();
        let err = verify_bytes(&good[..good.len() - 10]).unwrap_err();
        assert_eq!(broken_line(Err(err.clone())), 5);
        assert!(err.to_string().contains("truncated"), "{err}");
        // Only the newline missing.
        assert_eq!(broken_line(verify_bytes(&good[..good.len() - 1])), 5);
    }

    #[test]
    fn verify_rejects_reordered_records() {
        let mut l = lines(&log());
        l.swap(1, 2);
        let err = verify_bytes(&l.concat()).unwrap_err();
        assert_eq!(broken_line(Err(err.clone())), 2);
        assert!(err.to_string().contains("seq 3 where 2"), "{err}");
    }

    #[test]
    fn verify_rejects_deleted_record() {
        let mut l = lines(&log());
        l.remove(2);
        assert_eq!(broken_line(verify_bytes(&l.concat())), 3);
    }

    #[test]
    fn verify_rejects_duplicated_record_and_foreign_prev() {
        let mut l = lines(&log());
        l.insert(2, l[1].clone());
        assert_eq!(broken_line(verify_bytes(&l.concat())), 3);
        // A record re-sealed with a wrong prev: its own hash is fine, the chain is not.
        let mut l = lines(&log());
        let mut r: Record = serde_json::from_slice(l[3].trim_ascii_end()).unwrap();
        r.prev = GENESIS.into();
        l[3] = [seal(&mut r).unwrap(), b"\n".to_vec()].concat();
        let err = verify_bytes(&l.concat()).unwrap_err();
        assert_eq!(broken_line(Err(err.clone())), 4);
        assert!(err.to_string().contains("prev"), "{err}");
    }

    #[test]
    fn verify_missing_file_is_an_io_error() {
        let err = verify(Path::new("/nonexistent/audit.jsonl")).unwrap_err();
        assert!(matches!(err, VerifyError::Io { .. }), "{err}");
    }
}
