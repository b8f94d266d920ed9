//! What `watch` shows, as plain data, and how it is drawn: pure, so it is unit-tested without a
//! terminal or a daemon.
//!
//! The view keeps the last snapshot of runs and pending requests (filtered to `RUN` if given),
//! the selected request (by id: it survives refreshes; the request closest to its deadline when
//! none is selected), recent events and a status line. [`View::render`] draws it with plain ANSI:
//! clear screen + home, `\r\n` line ends (the terminal is raw), the selection in reverse video.

use std::collections::VecDeque;

use agentd_proto::{DaemonEvent, PendingRequest, RunInfo};

use crate::cmd::events::format_event;
use crate::cmd::pending::table_lines;
use crate::cmd::ps::{age, align, state_label};

/// How many event lines the view remembers.
const EVENT_LINES: usize = 50;
/// The widest COMMAND cell of the runs table.
const COMMAND_WIDTH: usize = 40;

pub const KEYS: &str =
    "y approve once  a approve for the run  n deny  p pause  r resume  j/k select  q quit";

#[derive(Debug, Default)]
pub struct View {
    /// Only runs whose id starts with this (`watch RUN`).
    pub filter: Option<String>,
    pub runs: Vec<RunInfo>,
    /// Sorted by deadline, the most urgent (oldest) first.
    pub pending: Vec<PendingRequest>,
    selected: Option<String>,
    events: VecDeque<String>,
    pub status: String,
    /// Requests agentd could not list in its last answer (too many or too large at once).
    pub omitted: u32,
}

impl View {
    pub fn new(filter: Option<String>) -> Self {
        Self {
            filter,
            ..Self::default()
        }
    }

    /// Whether run `id` is shown.
    pub fn wants(&self, run: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| run.starts_with(f))
    }

    /// Replaces runs and requests with a fresh snapshot.
    pub fn set_snapshot(&mut self, runs: Vec<RunInfo>, pending: Vec<PendingRequest>) {
        self.runs = runs.into_iter().filter(|r| self.wants(&r.id)).collect();
        self.pending = pending.into_iter().filter(|p| self.wants(&p.run)).collect();
        self.pending.sort_by_key(|p| p.deadline_ms);
        self.fix_selection();
    }

    /// Records an event; a `pending` or `decided` one updates the request list at once.
    pub fn on_event(&mut self, event: &DaemonEvent, now_ms: u64) {
        if !self.wants(&event.run) {
            return;
        }
        if self.events.len() == EVENT_LINES {
            self.events.pop_front();
        }
        self.events.push_back(format_event(event, now_ms));
        match (event.kind.as_str(), &event.pending) {
            ("pending", Some(p)) => {
                self.pending.retain(|q| q.id != p.id);
                self.pending.push(p.clone());
                self.pending.sort_by_key(|p| p.deadline_ms);
            }
            ("decided", Some(p)) => self.pending.retain(|q| q.id != p.id),
            _ => {}
        }
        self.fix_selection();
    }

    fn fix_selection(&mut self) {
        let still_there = self
            .selected
            .as_ref()
            .is_some_and(|id| self.pending.iter().any(|p| &p.id == id));
        if !still_there {
            self.selected = self.pending.first().map(|p| p.id.clone());
        }
    }

    pub fn selected(&self) -> Option<&PendingRequest> {
        let id = self.selected.as_ref()?;
        self.pending.iter().find(|p| &p.id == id)
    }

    /// Moves the selection `delta` requests down (negative: up), clamped.
    pub fn move_selection(&mut self, delta: isize) {
        let Some(at) = self
            .selected()
            .and_then(|s| self.pending.iter().position(|p| p.id == s.id))
        else {
            return;
        };
        let last = self.pending.len().saturating_sub(1);
        let to = at.saturating_add_signed(delta).min(last);
        self.selected = self.pending.get(to).map(|p| p.id.clone());
    }

    /// The run `p`/`r` act on: the selected request's, else `RUN`, else the only run shown.
    pub fn target_run(&self) -> Option<String> {
        if let Some(p) = self.selected() {
            return Some(p.run.clone());
        }
        if let Some(f) = &self.filter {
            return Some(f.clone());
        }
        match self.runs.as_slice() {
            [only] => Some(only.id.clone()),
            _ => None,
        }
    }

    /// The whole screen for a `width`×`height` terminal.
    pub fn render(&self, now_ms: u64, width: usize, height: usize) -> String {
        let now = now_ms / 1000;
        let title = match &self.filter {
            Some(f) => format!("agentctl watch {f}"),
            None => "agentctl watch".into(),
        };
        let mut lines = vec![
            bold(&clip(
                &format!(
                    "{title} — {} runs, {} pending",
                    self.runs.len(),
                    self.pending.len()
                ),
                width,
            )),
            String::new(),
        ];
        let budget = height.saturating_sub(8).max(4);
        let runs = self.run_lines(now);
        lines.extend(section(&runs, budget / 3 + 1, width, None));
        lines.push(String::new());
        let pending = table_lines(&self.pending, now_ms);
        let selected_row = self
            .selected()
            .and_then(|s| self.pending.iter().position(|p| p.id == s.id))
            .map(|i| i + 1);
        let shown = section(&pending, budget - budget / 3, width, selected_row);
        lines.extend(shown);
        if self.omitted > 0 {
            lines.push(clip(
                &format!(
                    "… and {} more requests agentd could not list at once (answer some first)",
                    self.omitted
                ),
                width,
            ));
        }
        // The selected request in full when its TARGET cell is shortened: `y` approves all of it.
        if let Some(p) = self.selected() {
            let full = agentd_proto::printable(&p.subject()).into_owned();
            if full.chars().count() > crate::cmd::pending::TARGET_WIDTH {
                lines.extend(wrap(
                    &format!("{} in full: {full}", p.id),
                    width,
                    FULL_LINES,
                ));
            }
        }
        lines.push(String::new());
        let room = height.saturating_sub(lines.len() + 3);
        let skip = self.events.len().saturating_sub(room);
        lines.extend(self.events.iter().skip(skip).map(|e| clip(e, width)));
        let fill = height.saturating_sub(lines.len() + 2);
        lines.extend(std::iter::repeat_n(String::new(), fill));
        lines.push(clip(&self.status, width));
        lines.push(dim(&clip(KEYS, width)));
        format!("\x1b[H\x1b[2J{}", lines.join("\r\n"))
    }

    fn run_lines(&self, now: u64) -> Vec<String> {
        let mut rows = vec![["RUN", "STATE", "UID", "AGE", "COMMAND"]
            .map(String::from)
            .to_vec()];
        rows.extend(self.runs.iter().map(|r| {
            let command = r.argv.join(" ");
            vec![
                r.id.clone(),
                state_label(r, now),
                r.uid.to_string(),
                age(now.saturating_sub(r.started_at)),
                crate::cmd::pending::target(&command)
                    .chars()
                    .take(COMMAND_WIDTH)
                    .collect(),
            ]
        }));
        align(&rows)
    }
}

/// A table (header first) in at most `max` lines, clipped to `width`; row `selected` (1-based
/// after the header) is always shown and drawn in reverse video; hidden rows are counted.
fn section(table: &[String], max: usize, width: usize, selected: Option<usize>) -> Vec<String> {
    let max = max.max(3);
    let rows = table.len().saturating_sub(1);
    // Keep a line for "… N more" when not everything fits.
    let fits = if rows > max - 1 { max - 2 } else { rows };
    let first = match selected {
        Some(s) if s > fits => s + 1 - fits,
        _ => 1,
    };
    let mut out: Vec<String> = table
        .first()
        .map(|h| bold(&clip(h, width)))
        .into_iter()
        .collect();
    for (i, line) in table.iter().enumerate().skip(first).take(fits) {
        let text = clip(line, width);
        out.push(if Some(i) == selected {
            format!("\x1b[7m{text}\x1b[0m")
        } else {
            text
        });
    }
    if rows > fits {
        out.push(format!("… {} more", rows - fits));
    }
    out
}

/// At most this many lines show a selected request in full.
const FULL_LINES: usize = 6;

/// `s` in lines of `width` characters, at most `max` of them; the last one says what is cut.
fn wrap(s: &str, width: usize, max: usize) -> Vec<String> {
    let width = width.max(1);
    let chars: Vec<char> = s.chars().collect();
    let mut lines: Vec<String> = chars.chunks(width).map(|c| c.iter().collect()).collect();
    if lines.len() > max {
        lines.truncate(max);
        let note = " … (more: agentctl pending)";
        if let Some(last) = lines.last_mut() {
            let keep = width.saturating_sub(note.chars().count());
            *last = last.chars().take(keep).collect::<String>() + note;
        }
    }
    lines
}

fn clip(s: &str, width: usize) -> String {
    s.chars().take(width).collect()
}

fn bold(s: &str) -> String {
    format!("\x1b[1m{s}\x1b[0m")
}

fn dim(s: &str) -> String {
    format!("\x1b[2m{s}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_proto::RunState;

    fn run(id: &str) -> RunInfo {
        RunInfo {
            id: id.into(),
            uid: 1000,
            state: RunState::Paused,
            argv: vec!["claude".into()],
            workspace: "/w".into(),
            policy: "default".into(),
            started_at: 100,
            pid: Some(7),
            exit: None,
            paused_since: Some(160),
            detail: None,
        }
    }

    fn request(id: &str, run: &str, deadline_ms: u64) -> PendingRequest {
        PendingRequest {
            id: id.into(),
            run: run.into(),
            uid: 1000,
            kind: "connect".into(),
            target: "127.0.0.1:5432".into(),
            argv: None,
            access: None,
            argv_hidden: 0,
            pid: 42,
            comm: "curl".into(),
            rule: Some("db".into()),
            reason: "production database".into(),
            pause: false,
            waiting: 1,
            deadline_ms,
            key: String::new(),
        }
    }

    fn event(kind: &str, p: PendingRequest) -> DaemonEvent {
        DaemonEvent {
            kind: kind.into(),
            run: p.run.clone(),
            uid: 1000,
            at_ms: 0,
            pending: Some(p),
            decision: None,
            by: None,
            exit: None,
        }
    }

    #[test]
    fn snapshot_filters_by_run_and_selects_the_most_urgent_request() {
        let mut v = View::new(Some("ab".into()));
        v.set_snapshot(
            vec![run("abc"), run("xyz")],
            vec![
                request("q2", "abc", 9_000),
                request("q1", "abc", 5_000),
                request("q3", "xyz", 1_000),
            ],
        );
        assert_eq!(v.runs.len(), 1);
        assert_eq!(v.pending.len(), 2);
        assert_eq!(v.selected().map(|p| p.id.as_str()), Some("q1"));
        assert_eq!(v.target_run().as_deref(), Some("abc"));
    }

    #[test]
    fn selection_moves_and_survives_refreshes_until_decided() {
        let mut v = View::new(None);
        let reqs = vec![request("q1", "r", 1_000), request("q2", "r", 2_000)];
        v.set_snapshot(vec![run("r")], reqs.clone());
        v.move_selection(1);
        v.move_selection(5);
        assert_eq!(v.selected().map(|p| p.id.as_str()), Some("q2"));
        v.set_snapshot(vec![run("r")], reqs.clone());
        assert_eq!(v.selected().map(|p| p.id.as_str()), Some("q2"));
        v.on_event(&event("decided", reqs[1].clone()), 0);
        assert_eq!(v.selected().map(|p| p.id.as_str()), Some("q1"));
        v.on_event(&event("pending", request("q0", "r", 500)), 0);
        assert_eq!(v.pending.first().map(|p| p.id.as_str()), Some("q0"));
        assert_eq!(v.selected().map(|p| p.id.as_str()), Some("q1"));
    }

    #[test]
    fn target_run_falls_back_to_the_only_run_shown() {
        let mut v = View::new(None);
        v.set_snapshot(vec![run("r1")], vec![]);
        assert_eq!(v.target_run().as_deref(), Some("r1"));
        v.set_snapshot(vec![run("r1"), run("r2")], vec![]);
        assert_eq!(v.target_run(), None);
    }

    #[test]
    fn render_shows_paused_runs_countdowns_and_highlights_the_selection() {
        let mut v = View::new(None);
        v.set_snapshot(
            vec![run("r1")],
            vec![request("q1", "r1", 230_000), request("q2", "r1", 250_000)],
        );
        v.status = "approved q0 once".into();
        let screen = v.render(220_000, 120, 30);
        assert!(screen.starts_with("\x1b[H\x1b[2J"), "{screen:?}");
        assert!(screen.contains("r1   paused(1m)"), "{screen:?}");
        assert!(
            screen.contains("\x1b[7mq1  r1   connect  127.0.0.1:5432"),
            "{screen:?}"
        );
        assert!(screen.contains("in 10s"), "{screen:?}");
        assert!(screen.contains("in 30s"), "{screen:?}");
        assert!(screen.contains("approved q0 once"), "{screen:?}");
        assert!(!screen.contains('\n') || screen.contains("\r\n"));
        assert_eq!(screen.matches("\r\n").count(), 29, "{screen:?}");
    }

    #[test]
    fn render_keeps_the_selected_row_visible_in_a_small_terminal() {
        let mut v = View::new(None);
        let reqs: Vec<_> = (0..20)
            .map(|i| request(&format!("q{i:02}"), "r", 1_000 + i))
            .collect();
        v.set_snapshot(vec![run("r")], reqs);
        v.move_selection(15);
        let screen = v.render(0, 80, 16);
        assert!(screen.contains("\x1b[7mq15"), "{screen:?}");
        assert!(screen.contains("more"), "{screen:?}");
    }

    #[test]
    fn wrap_keeps_lines_to_the_width_and_says_what_it_cuts() {
        let s = "a".repeat(250);
        let lines = wrap(&s, 40, 10);
        assert_eq!(lines.len(), 7);
        assert!(lines.iter().all(|l| l.chars().count() <= 40));
        assert_eq!(lines.concat(), s);
        let cut = wrap(&s, 40, 3);
        assert_eq!(cut.len(), 3);
        assert!(cut[2].ends_with("(more: agentctl pending)"));
        assert!(cut.iter().all(|l| l.chars().count() <= 40));
    }

    #[test]
    fn render_says_how_many_requests_were_not_listed() {
        let mut v = View::new(None);
        v.set_snapshot(vec![run("r1")], vec![request("q1", "r1", 60_000)]);
        assert!(!v.render(0, 100, 30).contains("could not list"));
        v.omitted = 7;
        assert!(v
            .render(0, 100, 30)
            .contains("… and 7 more requests agentd could not list"));
    }

    #[test]
    fn render_shows_a_shortened_selected_request_in_full() {
        let mut v = View::new(None);
        let mut p = request("q1", "r1", 60_000);
        p.target = format!("/w/{}/.env", "d".repeat(80));
        v.set_snapshot(vec![run("r1")], vec![p]);
        let screen = v.render(0, 100, 30);
        assert!(screen.contains("q1 in full: /w/ddd"), "{screen}");
        assert!(screen.contains("/.env"), "{screen}");
    }
}
