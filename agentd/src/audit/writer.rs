//! The writer: one thread per log, fed through a bounded queue.
//!
//! Invariants:
//! - a record is never dropped: [`AuditHandle::record`] blocks while the queue is full, so a slow
//!   disk slows the agent (whose syscall waits on the monitor), never loses its trail;
//! - after an I/O error the writer stops and every later `record` fails, so the caller can fail
//!   closed (deny or kill);
//! - records reach the file in queue order; the buffer is flushed whenever the queue is
//!   momentarily empty and the file is fsynced at [`AuditHandle::close`];
//! - rotation (a size limit): before a record would take `audit.jsonl` past the limit, the file
//!   is flushed, fsynced and renamed `audit.<N>.jsonl`, and the record starts a fresh
//!   `audit.jsonl`. A segment is therefore complete once its name exists, which is what the
//!   reader relies on. The chain (seq, prev) simply continues.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::record::{rfc3339, seal, Entry, Record, GENESIS};

/// Lines a slow `subscribe` receiver may fall behind before it loses some.
const SUBSCRIBER_BACKLOG: usize = 1024;
/// How far from the end of an existing log to look for its last record.
const TAIL_WINDOW: u64 = 256 * 1024;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    /// The writer stopped (an I/O error, or the log was closed); nothing more can be recorded.
    #[error("audit log {path} is not writable: {reason}")]
    Stopped { path: String, reason: String },
}

enum Msg {
    Entry(Box<Entry>),
    Close(mpsc::Sender<Result<(), String>>),
}

struct Shared {
    path: PathBuf,
    /// Why the writer stopped, once it has.
    stopped: Mutex<Option<String>>,
    events: broadcast::Sender<Arc<str>>,
}

impl Shared {
    fn error(&self) -> AuditError {
        let reason = self
            .stopped
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
            .unwrap_or_else(|| "the log is closed".into());
        AuditError::Stopped {
            path: self.path.display().to_string(),
            reason,
        }
    }

    fn stop(&self, reason: String) {
        let mut g = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert(reason);
    }
}

/// Namespace of [`AuditLog::open`].
pub struct AuditLog;

/// A cheap, cloneable handle on one log's writer.
#[derive(Clone)]
pub struct AuditHandle {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditHandle")
            .field("path", &self.shared.path)
            .finish()
    }
}

/// Where the chain of an existing file stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainHead {
    pub next_seq: u64,
    pub prev: String,
    /// The file ends inside a line (a crash mid-write): start on a fresh line.
    pub needs_newline: bool,
}

impl ChainHead {
    /// The head of an empty log.
    pub fn genesis() -> Self {
        ChainHead {
            next_seq: 1,
            prev: GENESIS.into(),
            needs_newline: false,
        }
    }
}

impl AuditLog {
    /// Opens (creating, mode 0600, append-only) `path` and starts its writer thread, rotating at
    /// the daemon's `audit_rotate_bytes` ([`super::set_rotate_bytes`]). If the log already holds
    /// records, the chain continues from its last complete one.
    pub fn open(path: &Path, run: &str, capacity: usize) -> io::Result<AuditHandle> {
        Self::open_rotating(path, run, capacity, super::rotate_bytes())
    }

    /// [`AuditLog::open`] with an explicit rotation size (0 = never rotate).
    pub fn open_rotating(
        path: &Path,
        run: &str,
        capacity: usize,
        rotate_bytes: u64,
    ) -> io::Result<AuditHandle> {
        let mut file = open_live(path)?;
        let size = file.metadata()?.len();
        let mut head = chain_head(&mut file)?;
        let segments = super::segments(path)?;
        if head.next_seq == 1 {
            // An empty live file after a rotation (or a crash right after one): the chain
            // continues from the newest segment.
            if let Some((_, last)) = segments.last() {
                let seg_head = chain_head(&mut File::open(last)?)?;
                head.next_seq = seg_head.next_seq;
                head.prev = seg_head.prev;
            }
        }
        let rotation = (rotate_bytes > 0).then(|| Rotation {
            live: path.to_path_buf(),
            max: rotate_bytes,
            next_n: segments.last().map_or(1, |(n, _)| n + 1),
        });
        spawn_with(file, path, run, head, capacity, (rotation, size))
    }
}

fn open_live(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path)
}

/// Where records go: a file, or a fake in tests.
pub(crate) trait Sink: Write + Send + 'static {
    /// Makes everything written durable.
    fn sync(&mut self) -> io::Result<()>;

    /// Continues in a fresh file at `path` (after the old one was renamed away).
    fn reopen(&mut self, path: &Path) -> io::Result<()> {
        let _ = path;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this sink cannot rotate",
        ))
    }
}

impl Sink for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }

    fn reopen(&mut self, path: &Path) -> io::Result<()> {
        *self = open_live(path)?;
        Ok(())
    }
}

/// Size-based rotation of a file-backed log.
struct Rotation {
    live: PathBuf,
    max: u64,
    /// The number the live file gets when it is next renamed.
    next_n: u64,
}

/// Starts the writer thread of a log whose chain stands at `head` (no rotation).
#[cfg(test)]
pub(crate) fn spawn<S: Sink>(
    sink: S,
    path: &Path,
    run: &str,
    head: ChainHead,
    capacity: usize,
) -> io::Result<AuditHandle> {
    spawn_with(sink, path, run, head, capacity, (None, 0))
}

/// [`spawn`] with rotation and the live file's current size.
fn spawn_with<S: Sink>(
    sink: S,
    path: &Path,
    run: &str,
    head: ChainHead,
    capacity: usize,
    (rotation, size): (Option<Rotation>, u64),
) -> io::Result<AuditHandle> {
    let (tx, rx) = mpsc::sync_channel(capacity.max(1));
    let (events, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
    let shared = Arc::new(Shared {
        path: path.to_path_buf(),
        stopped: Mutex::new(None),
        events,
    });
    let writer = Writer {
        out: BufWriter::new(sink),
        run: run.to_string(),
        next_seq: head.next_seq,
        prev: head.prev,
        shared: shared.clone(),
        rotation,
        size,
    };
    let needs_newline = head.needs_newline;
    std::thread::Builder::new()
        .name(format!("audit-{run}"))
        .spawn(move || writer.run(rx, needs_newline))?;
    Ok(AuditHandle { tx, shared })
}

impl AuditHandle {
    /// Queues a record; blocks while the queue is full (never drops). `Err` only once the writer
    /// has stopped: the caller must then fail closed.
    pub fn record(&self, e: Entry) -> Result<(), AuditError> {
        self.tx
            .send(Msg::Entry(Box::new(e)))
            .map_err(|_| self.shared.error())
    }

    /// Every line written from now on. A receiver that falls more than 1024 lines behind loses
    /// the oldest (`RecvError::Lagged`); the writer never waits for it.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.shared.events.subscribe()
    }

    /// Writes every record queued before this call, fsyncs, and stops the writer. Blocking.
    /// Other clones of the handle fail from then on.
    pub fn close(self) -> Result<(), AuditError> {
        let (ack_tx, ack_rx) = mpsc::channel();
        self.tx
            .send(Msg::Close(ack_tx))
            .map_err(|_| self.shared.error())?;
        match ack_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => {
                self.shared.stop(reason);
                Err(self.shared.error())
            }
            Err(_) => Err(self.shared.error()),
        }
    }
}

struct Writer<S: Sink> {
    out: BufWriter<S>,
    run: String,
    next_seq: u64,
    prev: String,
    shared: Arc<Shared>,
    rotation: Option<Rotation>,
    /// Bytes in the live file.
    size: u64,
}

/// How long a busy writer sleeps between batches.
const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

impl<S: Sink> Writer<S> {
    fn run(mut self, rx: Receiver<Msg>, needs_newline: bool) {
        if needs_newline {
            if let Err(e) = self.out.write_all(b"\n") {
                return self.fail(&e);
            }
        }
        // Under load the writer drains in batches and sleeps between them, so a sender never
        // has to wake it (a cross-CPU wake-up per record would cost the monitor more than the
        // record itself); only an idle writer blocks and is woken by the next record.
        let mut busy = false;
        loop {
            let msg = match rx.try_recv() {
                Ok(m) => {
                    busy = true;
                    m
                }
                Err(TryRecvError::Empty) => {
                    if let Err(e) = self.out.flush() {
                        return self.fail(&e);
                    }
                    if busy {
                        busy = false;
                        std::thread::sleep(BATCH_PAUSE);
                        continue;
                    }
                    match rx.recv() {
                        Ok(m) => m,
                        Err(_) => break,
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            };
            match msg {
                Msg::Entry(e) => {
                    if let Err(e) = self.write(*e) {
                        return self.fail(&e);
                    }
                }
                Msg::Close(ack) => {
                    let res = self.finish().map_err(|e| e.to_string());
                    self.shared.stop(
                        res.clone()
                            .err()
                            .unwrap_or_else(|| "the log is closed".into()),
                    );
                    let _ = ack.send(res);
                    return;
                }
            }
        }
        // Every handle is gone without `close`: still write out what we have.
        if let Err(e) = self.finish() {
            self.fail(&e);
        }
    }

    fn write(&mut self, e: Entry) -> io::Result<()> {
        let Entry { kind, mut body } = e;
        body.clamp();
        let mut record = Record {
            seq: self.next_seq,
            ts: rfc3339(SystemTime::now()),
            run: self.run.clone(),
            kind,
            body,
            prev: std::mem::take(&mut self.prev),
            hash: String::new(),
        };
        let mut line = seal(&mut record).map_err(io::Error::other)?;
        line.push(b'\n');
        let len = line.len() as u64;
        if self
            .rotation
            .as_ref()
            .is_some_and(|r| self.size > 0 && self.size.saturating_add(len) > r.max)
        {
            self.rotate()?;
        }
        self.out.write_all(&line)?;
        self.size += len;
        self.next_seq += 1;
        self.prev = record.hash;
        line.pop();
        if self.shared.events.receiver_count() > 0 {
            let text = String::from_utf8_lossy(&line);
            let _ = self.shared.events.send(Arc::from(text.as_ref()));
        }
        Ok(())
    }

    /// Makes the live file durable, renames it to the next segment and continues in a fresh one.
    fn rotate(&mut self) -> io::Result<()> {
        let Some(r) = self.rotation.as_mut() else {
            return Ok(());
        };
        self.out.flush()?;
        self.out.get_mut().sync()?;
        let mut target = super::segment_path(&r.live, r.next_n);
        while target.exists() {
            r.next_n += 1;
            target = super::segment_path(&r.live, r.next_n);
        }
        std::fs::rename(&r.live, &target)?;
        r.next_n += 1;
        self.out.get_mut().reopen(&r.live)?;
        if let Some(dir) = r.live.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        self.size = 0;
        tracing::debug!(run = %self.run, segment = %target.display(), "audit log rotated");
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_mut().sync()
    }

    fn fail(&self, e: &io::Error) {
        tracing::error!(path = %self.shared.path.display(), error = %e, "audit writer stopped");
        self.shared.stop(e.to_string());
    }
}

/// Reads the end of an existing log to continue its chain.
fn chain_head(file: &mut File) -> io::Result<ChainHead> {
    let len = file.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(TAIL_WINDOW);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(len - start).read_to_end(&mut tail)?;
    let needs_newline = tail.last().is_some_and(|&b| b != b'\n');
    let complete = match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => tail.get(..i).unwrap_or_default(),
        None => &[],
    };
    let last = complete
        .rsplit(|&b| b == b'\n')
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if last.is_empty() {
        return Ok(ChainHead {
            needs_newline,
            ..ChainHead::genesis()
        });
    }
    let record: Record = serde_json::from_slice(last).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot continue the audit chain: last record unreadable: {e}"),
        )
    })?;
    Ok(ChainHead {
        next_seq: record.seq + 1,
        prev: record.hash,
        needs_newline,
    })
}
