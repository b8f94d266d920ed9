//! Reading a log for display: complete lines only, filtered by kind and verdict.
//!
//! A [`Tail`] reads the rotated segments (`audit.<N>.jsonl`, ascending N) and then the live
//! `audit.jsonl`, and remembers how far it has read, so `follow` re-reads only what was appended;
//! a last line without its newline is still being written and is left for the next call. When
//! the live file it holds open is renamed into a segment (rotation), it reads that file to its
//! end (the writer renames only complete, fsynced files) and moves on to the next. A line that is
//! not a JSON object is not hidden: it comes back as `{"line": N, "unreadable": "…"}` (use
//! [`verify`](super::verify) to learn whether the log was tampered with).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::record::Kind;

/// Which records to return; `None` matches every record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub kind: Option<Kind>,
    pub verdict: Option<String>,
}

impl Filter {
    pub fn matches(&self, record: &Value) -> bool {
        if record.get("unreadable").is_some() {
            return true;
        }
        let kind_ok = self
            .kind
            .is_none_or(|k| record.get("kind").and_then(Value::as_str) == Some(k.as_str()));
        let verdict_ok = self
            .verdict
            .as_deref()
            .is_none_or(|v| record.get("verdict").and_then(Value::as_str) == Some(v));
        kind_ok && verdict_ok
    }
}

/// Every complete record of the log at `path` that `filter` matches, in file order.
pub fn read(path: &Path, filter: &Filter) -> io::Result<Vec<Value>> {
    Tail::open(path)?.next_batch(filter)
}

/// An incremental reader of one log (its segments, then the live file).
#[derive(Debug)]
pub struct Tail {
    live: PathBuf,
    /// The file being read: its handle, (dev, inode), and its segment number if it was opened
    /// as a segment (`None`: opened as the live file).
    file: Option<(File, (u64, u64), Option<u64>)>,
    /// Highest segment number read to its end.
    consumed: u64,
    /// Bytes of the current file consumed (always at a line boundary).
    offset: u64,
    /// Lines of the current file consumed.
    line: u64,
    /// A `run_end` record has been consumed (whatever the filter): the log is complete.
    pub ended: bool,
}

impl Tail {
    /// Opens the log whose live file is `path`; `NotFound` when neither it nor a segment exists.
    pub fn open(path: &Path) -> io::Result<Tail> {
        let mut tail = Tail {
            live: path.to_path_buf(),
            file: None,
            consumed: 0,
            offset: 0,
            line: 0,
            ended: false,
        };
        if !tail.open_next()? {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} does not exist", path.display()),
            ));
        }
        Ok(tail)
    }

    /// Opens the first segment not yet read, else the live file; `false` if there is neither.
    fn open_next(&mut self) -> io::Result<bool> {
        let next = super::segments(&self.live)?
            .into_iter()
            .find(|(n, _)| *n > self.consumed);
        let (path, seg) = match next {
            Some((n, p)) => (p, Some(n)),
            None => (self.live.clone(), None),
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        self.file = Some((file, (meta.dev(), meta.ino()), seg));
        self.offset = 0;
        self.line = 0;
        Ok(true)
    }

    /// The segment number of the file with identity `id`, if it is (now) a segment.
    fn segment_of(&self, id: (u64, u64)) -> io::Result<Option<u64>> {
        for (n, p) in super::segments(&self.live)? {
            if let Ok(m) = std::fs::metadata(&p) {
                if (m.dev(), m.ino()) == id {
                    return Ok(Some(n));
                }
            }
        }
        Ok(None)
    }

    /// The matching records completed since the last call.
    pub fn next_batch(&mut self, filter: &Filter) -> io::Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            if self.file.is_none() && !self.open_next()? {
                return Ok(out);
            }
            let Some((_, id, seg)) = self.file.as_ref() else {
                return Ok(out);
            };
            let (id, seg) = (*id, *seg);
            // Decided before reading: a file already renamed into a segment is complete.
            let finished = match seg {
                Some(n) => Some(n),
                None => self.segment_of(id)?,
            };
            self.read_complete(filter, &mut out)?;
            match finished {
                Some(n) => {
                    self.consumed = self.consumed.max(n);
                    self.file = None;
                }
                None => return Ok(out),
            }
        }
    }

    /// Appends the matching complete lines of the current file past `offset` to `out`.
    fn read_complete(&mut self, filter: &Filter, out: &mut Vec<Value>) -> io::Result<()> {
        let Some((file, _, _)) = self.file.as_mut() else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        let complete = match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => buf.get(..=i).unwrap_or_default(),
            None => &[],
        };
        self.offset += complete.len() as u64;
        for line in complete.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            self.line += 1;
            let value = match serde_json::from_slice::<Value>(line) {
                Ok(v) if v.is_object() => {
                    self.ended |= v.get("kind").and_then(Value::as_str) == Some("run_end");
                    v
                }
                Ok(_) => unreadable(self.line, "not a JSON object"),
                Err(e) => unreadable(self.line, &e.to_string()),
            };
            if filter.matches(&value) {
                out.push(value);
            }
        }
        Ok(())
    }
}

fn unreadable(line: u64, why: &str) -> Value {
    serde_json::json!({ "line": line, "unreadable": why })
}

/// Groups records so that each group's JSON stays under `budget` bytes. A record alone bigger
/// than `max_one` is replaced by a stub that names it, so no frame can exceed the protocol cap.
pub fn chunks(records: Vec<Value>, budget: usize, max_one: usize) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for record in records {
        let len = serde_json::to_vec(&record).map_or(usize::MAX, |v| v.len());
        let (record, len) = if len > max_one {
            let stub = serde_json::json!({
                "seq": record.get("seq"),
                "kind": record.get("kind"),
                "unreadable": format!("record too large to send ({len} bytes); read the file itself"),
            });
            let stub_len = serde_json::to_vec(&stub).map_or(max_one, |v| v.len());
            (stub, stub_len)
        } else {
            (record, len)
        };
        if !current.is_empty() && size + len + 1 > budget {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len + 1;
        current.push(record);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::testlog::TestDir;
    use std::io::Write;

    const LOG: &str = concat!(
        r#"{"seq":1,"kind":"run_start"}"#,
        "\n",
        r#"{"seq":2,"kind":"exec","verdict":"allow"}"#,
        "\n",
        r#"{"seq":3,"kind":"open","verdict":"deny"}"#,
        "\n",
        r#"{"seq":4,"kind":"connect","verdict":"deny"}"#,
        "\n",
        r#"{"seq":5,"kind":"run_end"}"#,
        "\n",
    );

    fn seqs(v: &[Value]) -> Vec<u64> {
        v.iter().filter_map(|r| r["seq"].as_u64()).collect()
    }

    #[test]
    fn read_filters_by_kind_and_verdict() {
        let dir = TestDir::new("read-filter");
        let path = dir.file("audit.jsonl", LOG.as_bytes());
        let all = read(&path, &Filter::default()).unwrap();
        assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
        let deny = Filter {
            verdict: Some("deny".into()),
            ..Filter::default()
        };
        assert_eq!(seqs(&read(&path, &deny).unwrap()), [3, 4]);
        let open_deny = Filter {
            kind: Some(Kind::Open),
            verdict: Some("deny".into()),
        };
        assert_eq!(seqs(&read(&path, &open_deny).unwrap()), [3]);
        let exec_deny = Filter {
            kind: Some(Kind::Exec),
            verdict: Some("deny".into()),
        };
        assert!(read(&path, &exec_deny).unwrap().is_empty());
    }

    #[test]
    fn tail_returns_only_complete_new_lines() {
        let dir = TestDir::new("tail");
        let path = dir.file("audit.jsonl", b"{\"seq\":1}\n{\"seq\":");
        let mut tail = Tail::open(&path).unwrap();
        assert_eq!(seqs(&tail.next_batch(&Filter::default()).unwrap()), [1]);
        assert!(tail.next_batch(&Filter::default()).unwrap().is_empty());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"2}\n{\"seq\":3}\n").unwrap();
        assert_eq!(seqs(&tail.next_batch(&Filter::default()).unwrap()), [2, 3]);
    }

    #[test]
    fn tail_notices_run_end_even_when_filtered_out() {
        let dir = TestDir::new("ended");
        let path = dir.file("audit.jsonl", LOG.as_bytes());
        let mut tail = Tail::open(&path).unwrap();
        let filter = Filter {
            kind: Some(Kind::Exec),
            ..Filter::default()
        };
        assert_eq!(seqs(&tail.next_batch(&filter).unwrap()), [2]);
        assert!(tail.ended);
    }

    #[test]
    fn chunks_respect_budget_and_stub_oversized_records() {
        let rec = |n: u64, pad: usize| serde_json::json!({"seq": n, "message": "x".repeat(pad)});
        let records = vec![
            rec(1, 100),
            rec(2, 100),
            rec(3, 100),
            rec(4, 5000),
            rec(5, 10),
        ];
        let got = chunks(records, 300, 1000);
        let shape: Vec<Vec<u64>> = got.iter().map(|c| seqs(c)).collect();
        assert_eq!(shape, [vec![1, 2], vec![3, 4, 5]]);
        assert!(got[1][1]["unreadable"]
            .as_str()
            .unwrap()
            .contains("too large"));
        for c in &got {
            assert!(serde_json::to_vec(c).unwrap().len() <= 300 + 2);
        }
        assert!(chunks(vec![], 300, 1000).is_empty());
    }

    #[test]
    fn unreadable_lines_are_shown_not_hidden() {
        let dir = TestDir::new("unreadable");
        let path = dir.file("audit.jsonl", b"{\"seq\":1}\ngarbage\n[1]\n");
        let filter = Filter {
            kind: Some(Kind::Exec),
            ..Filter::default()
        };
        let got = read(&path, &filter).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["line"], 2);
        assert_eq!(got[1]["unreadable"], "not a JSON object");
    }
}
