//! The run registry: run id → run entry, with prefix lookup and the authority check.
//!
//! A user sees and controls only their own runs; root sees and controls all. Finished runs stay
//! listed (at most [`KEEP_FINISHED`]) so `ps` and `inspect` can show how they ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agentd_proto::{ErrorBody, ErrorCode, ExitStatus, RunInfo, RunState};

use crate::launch::cgroup::RunCgroup;

const KEEP_FINISHED: usize = 256;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One run, live or finished.
#[derive(Debug)]
pub struct RunEntry {
    pub id: String,
    pub owner: u32,
    pub cgroup: RunCgroup,
    pub policy_toml: String,
    info: Mutex<RunInfo>,
    kill_reason: Mutex<Option<String>>,
    pause: Mutex<PauseState>,
    grants: Mutex<Vec<TempGrant>>,
}

/// Pause bookkeeping: the wall-clock limit does not tick while a run is paused.
#[derive(Debug, Default)]
struct PauseState {
    since: Option<Instant>,
    /// Held `pause` rules and manual pauses currently in force.
    holds: u32,
    total: Duration,
}

/// A temporary allow added by `approve --for` or `--run`: the same rule and subject (target,
/// with the whole argv of an exec or the access of an open: `PendingRequest::key`) in this run.
#[derive(Debug, Clone)]
pub struct TempGrant {
    pub rule: Option<String>,
    pub kind: String,
    pub key: String,
    pub until: Option<Instant>,
    pub by: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another task panicked mid-update of plain data; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RunEntry {
    pub fn new(info: RunInfo, cgroup: RunCgroup, policy_toml: String) -> Self {
        RunEntry {
            id: info.id.clone(),
            owner: info.uid,
            cgroup,
            policy_toml,
            info: Mutex::new(info),
            kill_reason: Mutex::new(None),
            pause: Mutex::new(PauseState::default()),
            grants: Mutex::new(Vec::new()),
        }
    }

    /// Freezes the run (idempotent per hold). Returns whether this call froze it.
    pub fn pause(&self) -> Result<bool, String> {
        let mut p = lock(&self.pause);
        p.holds += 1;
        if p.since.is_some() {
            return Ok(false);
        }
        self.cgroup.freeze().map_err(|e| e.to_string())?;
        p.since = Some(Instant::now());
        let since = unix_now();
        drop(p);
        self.update(|i| {
            if i.state == RunState::Running {
                i.state = RunState::Paused;
                i.paused_since = Some(since);
            }
        });
        Ok(true)
    }

    /// Releases one hold; thaws the run when none is left (`force`: release them all).
    /// Returns whether this call thawed it.
    pub fn resume(&self, force: bool) -> Result<bool, String> {
        let mut p = lock(&self.pause);
        p.holds = if force { 0 } else { p.holds.saturating_sub(1) };
        let Some(since) = p.since else {
            return Ok(false);
        };
        if p.holds > 0 {
            return Ok(false);
        }
        self.cgroup.thaw().map_err(|e| e.to_string())?;
        p.total += since.elapsed();
        p.since = None;
        drop(p);
        self.update(|i| {
            if i.state == RunState::Paused {
                i.state = RunState::Running;
                i.paused_since = None;
            }
        });
        Ok(true)
    }

    /// When the wall-clock limit `wall`, counted from `start` without paused time, runs out;
    /// `None` while paused.
    pub fn wall_deadline(&self, start: Instant, wall: Duration) -> Option<Instant> {
        let p = lock(&self.pause);
        if p.since.is_some() {
            return None;
        }
        Some(start + wall + p.total)
    }

    pub fn add_grant(&self, g: TempGrant) {
        let mut grants = lock(&self.grants);
        grants.retain(|x| x.until.is_none_or(|u| u > Instant::now()));
        grants.push(g);
    }

    /// A temporary allow covering this rule and subject key, if one is in force.
    pub fn grant_for(&self, rule: Option<&str>, kind: &str, key: &str) -> Option<TempGrant> {
        lock(&self.grants)
            .iter()
            .find(|g| {
                g.rule.as_deref() == rule
                    && g.kind == kind
                    && g.key == key
                    && g.until.is_none_or(|u| u > Instant::now())
            })
            .cloned()
    }

    pub fn info(&self) -> RunInfo {
        lock(&self.info).clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut RunInfo)) {
        f(&mut lock(&self.info));
    }

    pub fn is_live(&self) -> bool {
        matches!(
            lock(&self.info).state,
            RunState::Starting | RunState::Running | RunState::Paused
        )
    }

    /// Kills every process of the run; the first reason given is the one reported.
    pub fn kill(&self, reason: &str) {
        {
            let mut r = lock(&self.kill_reason);
            if r.is_none() {
                *r = Some(reason.to_string());
            }
        }
        if let Err(e) = self.cgroup.kill() {
            tracing::warn!(run = %self.id, error = %e, "cgroup kill failed");
        }
    }

    /// The status to report: a kill's reason replaces the bare signal it caused.
    pub fn final_status(&self, status: ExitStatus) -> ExitStatus {
        match (lock(&self.kill_reason).clone(), &status) {
            (Some(reason), ExitStatus::Signal { signal: 9 } | ExitStatus::Killed { .. }) => {
                ExitStatus::Killed { reason }
            }
            _ => status,
        }
    }
}

#[derive(Default)]
pub struct Registry {
    runs: Mutex<HashMap<String, Arc<RunEntry>>>,
}

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub struct Asker {
    pub uid: u32,
    /// A member of the admin group (`admin_group`, default `agentd-admin`): acts on every run.
    pub admin: bool,
}

impl Asker {
    pub fn may_act_on(&self, run: &RunEntry) -> bool {
        self.may_act_on_uid(run.owner)
    }

    pub fn may_act_on_uid(&self, owner: u32) -> bool {
        self.uid == 0 || self.admin || self.uid == owner
    }
}

impl Registry {
    pub fn insert(&self, entry: Arc<RunEntry>) {
        let mut runs = lock(&self.runs);
        runs.insert(entry.id.clone(), entry);
        let finished = runs.values().filter(|r| !r.is_live()).count();
        if finished > KEEP_FINISHED {
            let mut old: Vec<(u64, String)> = runs
                .values()
                .filter(|r| !r.is_live())
                .map(|r| (r.info().started_at, r.id.clone()))
                .collect();
            old.sort();
            for (_, id) in old.into_iter().take(finished - KEEP_FINISHED) {
                runs.remove(&id);
            }
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        lock(&self.runs).contains_key(id)
    }

    /// Runs the asker may see, oldest first.
    pub fn visible(&self, asker: Asker) -> Vec<RunInfo> {
        let mut v: Vec<RunInfo> = lock(&self.runs)
            .values()
            .filter(|r| asker.may_act_on(r))
            .map(|r| r.info())
            .collect();
        v.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        v
    }

    /// Finds the run `prefix` names and checks the asker may act on it.
    pub fn find(&self, prefix: &str, asker: Asker) -> Result<Arc<RunEntry>, ErrorBody> {
        let runs = lock(&self.runs);
        let matches: Vec<&Arc<RunEntry>> = match runs.get(prefix) {
            Some(exact) => vec![exact],
            None => runs
                .values()
                .filter(|r| !prefix.is_empty() && r.id.starts_with(prefix))
                .collect(),
        };
        let run = match matches.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(ErrorBody::new(
                    ErrorCode::NoSuchRun,
                    format!("no run matches `{prefix}`"),
                )
                .with_hint("`agentctl ps` lists your runs"))
            }
            _ => {
                return Err(ErrorBody::new(
                    ErrorCode::NoSuchRun,
                    format!("`{prefix}` matches {} runs", matches.len()),
                )
                .with_hint("give more characters of the run id"))
            }
        };
        if !asker.may_act_on(&run) {
            return Err(ErrorBody::new(
                ErrorCode::PermissionDenied,
                format!(
                    "permission denied: run {} belongs to uid {}",
                    run.id, run.owner
                ),
            )
            .with_hint("only a run's owner or root may act on it"));
        }
        Ok(run)
    }

    pub fn live(&self) -> Vec<Arc<RunEntry>> {
        lock(&self.runs)
            .values()
            .filter(|r| r.is_live())
            .cloned()
            .collect()
    }

    pub fn kill_all(&self, reason: &str) {
        for run in self.live() {
            run.kill(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, uid: u32, started_at: u64, state: RunState) -> Arc<RunEntry> {
        Arc::new(RunEntry::new(
            RunInfo {
                id: id.into(),
                uid,
                state,
                argv: vec!["sh".into()],
                workspace: "/w".into(),
                policy: "default".into(),
                started_at,
                pid: None,
                exit: None,
                paused_since: None,
                detail: None,
            },
            RunCgroup {
                v2: None,
                v1: vec![],
                v2_limits: false,
            },
            String::new(),
        ))
    }

    #[test]
    fn find_by_prefix_exact_and_ambiguous() {
        let r = Registry::default();
        r.insert(entry("ab12", 1000, 1, RunState::Running));
        r.insert(entry("ab34", 1000, 2, RunState::Running));
        let me = Asker {
            uid: 1000,
            admin: false,
        };
        assert_eq!(r.find("ab1", me).unwrap().id, "ab12");
        assert_eq!(r.find("ab", me).unwrap_err().code, ErrorCode::NoSuchRun);
        assert_eq!(r.find("zz", me).unwrap_err().code, ErrorCode::NoSuchRun);
        assert_eq!(r.find("", me).unwrap_err().code, ErrorCode::NoSuchRun);
    }

    #[test]
    fn other_users_runs_are_refused_and_invisible_root_sees_all() {
        let r = Registry::default();
        r.insert(entry("aa", 1000, 1, RunState::Running));
        r.insert(entry("bb", 2000, 2, RunState::Running));
        let err = r
            .find(
                "aa",
                Asker {
                    uid: 2000,
                    admin: false,
                },
            )
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::PermissionDenied);
        assert!(err.message.contains("permission denied"));
        assert_eq!(
            r.visible(Asker {
                uid: 2000,
                admin: false
            })
            .len(),
            1
        );
        assert_eq!(
            r.visible(Asker {
                uid: 0,
                admin: false
            })
            .len(),
            2
        );
        assert!(r
            .find(
                "aa",
                Asker {
                    uid: 0,
                    admin: false
                }
            )
            .is_ok());
    }

    #[test]
    fn finished_runs_are_bounded() {
        let r = Registry::default();
        for i in 0..(KEEP_FINISHED as u64 + 10) {
            r.insert(entry(&format!("r{i}"), 1, i, RunState::Exited));
        }
        assert_eq!(
            r.visible(Asker {
                uid: 0,
                admin: false
            })
            .len(),
            KEEP_FINISHED
        );
        assert!(!r.contains("r0"), "the oldest finished runs go first");
    }

    #[test]
    fn kill_reason_replaces_sigkill_status() {
        let e = entry("k", 1, 1, RunState::Running);
        e.kill("wall-clock limit 1s reached");
        assert_eq!(
            e.final_status(ExitStatus::Signal { signal: 9 }),
            ExitStatus::Killed {
                reason: "wall-clock limit 1s reached".into()
            }
        );
        assert_eq!(
            e.final_status(ExitStatus::Code { code: 0 }),
            ExitStatus::Code { code: 0 }
        );
    }
}
