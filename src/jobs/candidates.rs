//! Several candidates in one explorer session: every module set fine-tuned is a candidate
//! with its own fine-tuning, α curve and accepted α, laid out as `rift compare` lays them
//! out, so either tool opens the other's sessions.
//!
//! Decisions:
//! - The first module fine-tuned lives in the explorer's own session directory (a session
//!   with one candidate is exactly what it was before); every further one is a complete
//!   session under `candidates/NAME/` (NAME: its modules joined by `-`), as `rift compare`
//!   writes them, so `rift report` and `rift tui --resume` open each on its own. A `rift
//!   compare` directory's candidates (`candidates/rift/`, `candidates/all/`, …) are listed
//!   under the names `rift compare` gave them.
//! - One candidate is on display at a time: the pipeline's session. Showing another (or
//!   fine-tuning a new one) first saves the one on display to its directory, fine-tuned
//!   weights included, so a candidate off display is always on disk and costs no memory
//!   (large zoo models hold hundreds of MB per fine-tuned copy). Its weights are read back
//!   when it is shown again.
//! - The results every candidate shares (AT baseline, MRC, the AT model's OOD accuracy)
//!   are carried from the session on display to the next, and saved into the explorer's
//!   own session as well, so the MRC panel never depends on which candidate is shown.
//! - The accepted α is per candidate: `a` writes `chosen.pth`/`chosen.safetensors` in the
//!   directory of the candidate on display.
use super::messages::CandidateSummary;
use crate::engine::rift::candidate_dir::CandidateDir;
use crate::engine::rift::compare::{Candidate, CompareResult, COMPARE_FILE};
use crate::engine::rift::pipeline::Pipeline;
use crate::engine::session::{Session, SessionError};
use std::path::{Path, PathBuf};

/// The explorer's candidates, found on disk under its session directory.
pub(super) struct Candidates {
    /// The session directory the explorer was started with.
    root: PathBuf,
}

impl Candidates {
    pub fn new(root: PathBuf) -> Candidates {
        Candidates { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every directory that may hold a candidate: the explorer's own, then
    /// `candidates/*` in name order.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut sub: Vec<PathBuf> = CandidateDir::all(&self.root)
            .into_iter()
            .map(CandidateDir::into_path)
            .collect();
        // A `rift compare` directory: its candidates in the order it ran them (the
        // table's), the others after them by name.
        let order = self.compare_order();
        sub.sort_by_key(|d| {
            let rel = self.relative(d);
            let at = order.iter().position(|o| *o == rel);
            (at.unwrap_or(usize::MAX), d.clone())
        });
        std::iter::once(self.root.clone()).chain(sub).collect()
    }

    /// The candidates' directories (relative) in `compare.yaml`'s order; none without it.
    fn compare_order(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join(COMPARE_FILE))
            .ok()
            .and_then(|t| serde_yaml::from_str::<CompareResult>(&t).ok())
            .map_or(Vec::new(), |c| {
                c.candidates.into_iter().map(|r| r.session).collect()
            })
    }

    /// A warning for each file of the session's candidates that is there but cannot be
    /// read: a candidate whose `session.yaml` is unreadable is left out of the list (its
    /// files are not written over: showing or fine-tuning into it fails naming the file),
    /// one whose `candidate.yaml` is unreadable is listed by its modules, and an unreadable
    /// `compare.yaml` leaves the candidates in name order.
    pub fn unreadable(&self) -> Vec<String> {
        let mut out = Vec::new();
        let compare = self.root.join(COMPARE_FILE);
        if compare.exists() {
            if let Err(e) = read_yaml::<CompareResult>(&compare) {
                out.push(format!("{e}; the candidates are listed in name order"));
            }
        }
        for dir in self.dirs().iter().skip(1) {
            if let Err(e) = Session::load(dir) {
                let e = crate::engine::error_text::paragraph(&e);
                out.push(format!("candidate {} is left out: {e}", dir.display()));
                continue;
            }
            if let Err(e) = CandidateDir::at(dir).row() {
                out.push(format!("{e}; the candidate is listed by its modules"));
            }
        }
        out
    }

    /// The candidates to list: the one on display (from the pipeline, live), and every
    /// other directory whose session has a fine-tuning.
    pub fn summaries(&self, p: &Pipeline) -> Vec<CandidateSummary> {
        let shown = &p.setup.session_dir;
        let mut dirs = self.dirs();
        // A new candidate is on display before its directory is written.
        if !dirs.contains(shown) {
            dirs.push(shown.clone());
        }
        let mut out = Vec::new();
        for dir in dirs {
            if &dir == shown {
                out.extend(self.shown_summary(p));
            } else if let Ok(s) = Session::load(&dir) {
                out.extend(self.summary(&dir, &s, false));
            }
        }
        out
    }

    /// The candidate on display, also before its first fine-tuning has finished (a new
    /// one, named by its layer setting); the explorer's own session without one is none.
    fn shown_summary(&self, p: &Pipeline) -> Option<CandidateSummary> {
        let dir = &p.setup.session_dir;
        if let Some(summary) = self.summary(dir, &p.session, true) {
            return Some(summary);
        }
        if dir == &self.root {
            return None;
        }
        let label = label_of(dir, &p.session)?;
        Some(CandidateSummary {
            modules: label.split('+').map(str::to_string).collect(),
            label,
            trained_params: 0,
            points: Vec::new(),
            accepted: None,
            dir: self.relative(dir),
            shown: true,
        })
    }

    fn summary(&self, dir: &Path, s: &Session, shown: bool) -> Option<CandidateSummary> {
        let ft = s.finetune.as_ref()?;
        Some(CandidateSummary {
            label: label_of(dir, s)?,
            modules: ft.layers.clone(),
            trained_params: ft.trained_params,
            points: s
                .interpolation
                .as_ref()
                .map_or(Vec::new(), |i| i.points.clone()),
            accepted: s.chosen.as_ref().map(|c| c.alpha),
            dir: self.relative(dir),
            shown,
        })
    }

    fn relative(&self, dir: &Path) -> String {
        match dir.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => dir.display().to_string(),
        }
    }

    /// Where fine-tuning `layers` goes: `None` for the session on display (the explorer's
    /// own before its first fine-tuning, a new candidate of these modules, or one that
    /// fine-tuned exactly these modules: they are fitted again), else the directory of the
    /// candidate of these modules (existing or new).
    pub fn dir_for(&self, p: &Pipeline, layers: &[String]) -> Option<PathBuf> {
        let same = |s: &Session| {
            s.finetune
                .as_ref()
                .is_some_and(|f| !f.all_parameters && f.layers == layers)
        };
        let shown = &p.session;
        let fresh = shown.finetune.is_none()
            && (p.setup.session_dir == self.root || shown.settings.layer == layers.join("+"));
        if fresh || same(shown) {
            return None;
        }
        let existing = self
            .dirs()
            .into_iter()
            .filter(|d| d != &p.setup.session_dir)
            .find(|d| Session::load(d).is_ok_and(|s| same(&s)));
        Some(existing.unwrap_or_else(|| {
            CandidateDir::of(&self.root, &Candidate::Named(layers.to_vec())).into_path()
        }))
    }

    /// The directory of the candidate listed as `label`.
    pub fn dir_of(&self, p: &Pipeline, label: &str) -> Option<PathBuf> {
        self.summaries(p)
            .into_iter()
            .find(|c| c.label == label)
            .map(|c| match c.dir.as_str() {
                "." => self.root.clone(),
                rel => self.root.join(rel),
            })
    }

    /// The session to show from `dir`: the saved one, or (a new candidate) a fresh one
    /// with `label` as its layer setting. Either way it gets the shared results of
    /// `current` (baseline, MRC, the AT model's OOD) when `current` has them.
    pub fn session_for(
        &self,
        dir: &Path,
        current: &Session,
        label: &str,
        model: &crate::engine::models::Model,
    ) -> Result<Session, SessionError> {
        let mut next = if Session::path(dir).is_file() {
            Session::load(dir)?
        } else {
            let mut settings = current.settings.clone();
            settings.layer = label.to_string();
            let config = current.config.clone().map(|mut c| {
                c.finetune.layer = label.to_string();
                c
            });
            Session::new(dir, settings, config, model)
        };
        share_results(current, &mut next);
        next.settings.device = current.settings.device.clone();
        Ok(next)
    }

    /// The explorer's own session with the shared results of `shown` (another
    /// candidate's), saved; nothing to do when `shown` is the explorer's own.
    pub fn save_shared(&self, shown_dir: &Path, shown: &Session) -> Result<(), SessionError> {
        if shown_dir == self.root || !Session::path(&self.root).is_file() {
            return Ok(());
        }
        let mut root = Session::load(&self.root)?;
        share_results(shown, &mut root);
        root.updated = crate::engine::session::now_rfc3339();
        root.save(&self.root)
    }
}

/// A YAML file read as `T`; the error names the file.
fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Copies what every candidate shares from `from` into `to` (where `from` has it).
fn share_results(from: &Session, to: &mut Session) {
    if from.baseline.is_some() {
        to.baseline = from.baseline.clone();
    }
    if from.mrc.is_some() {
        to.mrc = from.mrc.clone();
    }
    if from.ood_at.is_some() {
        to.ood_at = from.ood_at.clone();
    }
}

/// A candidate's name: `rift compare`'s (its `candidate.yaml`), else its modules joined by
/// `+` (`all` for every parameter), else the session's layer setting when it names one.
fn label_of(dir: &Path, s: &Session) -> Option<String> {
    let from_compare = CandidateDir::at(dir).compare_label();
    if from_compare.is_some() {
        return from_compare;
    }
    match &s.finetune {
        Some(f) if f.all_parameters => Some(Candidate::All.label()),
        Some(f) => Some(f.layers.join("+")),
        None => (s.settings.layer != "auto" && !s.settings.layer.is_empty())
            .then(|| s.settings.layer.clone()),
    }
}
