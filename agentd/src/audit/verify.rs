//! Checking a log's hash chain, naming the file and the first record that breaks it.
//!
//! The log is its rotated segments (`audit.1.jsonl`, `audit.2.jsonl`, …) then `audit.jsonl`,
//! read as one sequence: record N must have `seq` N, a `prev` equal to the hash of record N-1
//! (64 zeros for record 1, whichever file it is in) and a hash that matches its bytes. Any changed, inserted, removed or reordered record
//! therefore fails at the first line it touches. Removing records at the *end* of the log leaves
//! a valid shorter chain; a finished run's log ends with `run_end`, which is how a reader tells.

use std::path::Path;

use super::record::{sha256_hex, split_hash, Record, GENESIS};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("cannot read audit log {path}: {reason}")]
    Io { path: String, reason: String },
    /// `record` is the 1-based position in the whole log (= its `seq` when intact); `line` is
    /// 1-based within `file` (the file's name, e.g. `audit.2.jsonl`).
    #[error("record {record} ({file} line {line}): {problem}")]
    Broken {
        file: String,
        record: u64,
        line: u64,
        problem: String,
    },
}

/// Where the chain stands between files.
struct Chain {
    prev: String,
    records: u64,
}

/// Verifies the chain of the log whose live file is `path`, rotated segments first; the number
/// of records when intact. A live file missing after its last rotation is an empty file.
pub fn verify(path: &Path) -> Result<u64, VerifyError> {
    let io = |p: &Path, e: std::io::Error| VerifyError::Io {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    let mut files: Vec<_> = super::segments(path)
        .map_err(|e| io(path, e))?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if path.exists() || files.is_empty() {
        files.push(path.to_path_buf());
    }
    let mut chain = Chain {
        prev: GENESIS.to_string(),
        records: 0,
    };
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| io(&file, e))?;
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        verify_file(&bytes, &name, &mut chain)?;
    }
    Ok(chain.records)
}

/// [`verify`] on the content of a single, unrotated log.
pub fn verify_bytes(bytes: &[u8]) -> Result<u64, VerifyError> {
    let mut chain = Chain {
        prev: GENESIS.to_string(),
        records: 0,
    };
    verify_file(bytes, super::FILE_NAME, &mut chain)?;
    Ok(chain.records)
}

/// Checks the lines of one file, continuing `chain`.
fn verify_file(bytes: &[u8], name: &str, chain: &mut Chain) -> Result<(), VerifyError> {
    let mut line_no = 0u64;
    let mut rest = bytes;
    while !rest.is_empty() {
        line_no += 1;
        let record = chain.records + 1;
        let broken = |problem: &str| VerifyError::Broken {
            file: name.to_string(),
            record,
            line: line_no,
            problem: problem.to_string(),
        };
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(broken("truncated: the last line has no newline"));
        };
        let (line, tail) = rest.split_at(end);
        rest = tail.get(1..).unwrap_or_default();
        chain.prev = check_line(line, record, &chain.prev).map_err(|p| broken(&p))?;
        chain.records = record;
    }
    Ok(())
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
        assert!(err.starts_with("record 3 (audit.jsonl line 3): "), "{err}");
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
