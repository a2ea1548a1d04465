//! Everything the explorer shows, as plain data: no terminal, no channels, no clocks.
use crate::engine::rift::events::Stage;
use crate::engine::rift::mrc::results::{
    criticality_cmp, CorruptionAcc, FinetuneEpoch, ModuleEstimate, ModuleScore, SweepPoint,
};
use crate::jobs::{CandidateSummary, JobCommand};

/// Iteration losses kept for the fine-tuning chart (older ones are halved in resolution).
pub const MAX_LOSSES: usize = 1000;

/// How the α panel plots the sweep (`v` switches).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlphaView {
    /// Clean and robust accuracy as changes from the AT model (points) against α, with the
    /// tolerance band: the 0.1–1.5-point differences that decide α are visible.
    #[default]
    Delta,
    /// The α points in the clean-vs-robust plane, in α order.
    Plane,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortOrder {
    Depth,
    Mrc,
}

/// The module MRC is ascending right now: its latest epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningModule {
    pub name: String,
    pub epoch: usize,
    pub loss: f64,
    pub losses: Vec<f64>,
}

/// The job the worker is running.
#[derive(Clone, Debug, PartialEq)]
pub struct JobStatus {
    pub stage: Stage,
    pub detail: String,
    pub done: usize,
    pub total: usize,
    /// Seconds since the app started, when the stage began (from `Tick`s).
    pub started: f64,
    /// Where the rate is measured from: (seconds since the app started, units done).
    /// Units reported in the tick the stage started were done before it (a continued MRC
    /// first reports the modules it already has), so they do not count as fast ones.
    pub rate_base: (f64, usize),
    /// Whether a `Progress` has come for this stage.
    pub progressed: bool,
}

impl JobStatus {
    pub fn new(stage: Stage, detail: String, now: f64) -> JobStatus {
        JobStatus {
            stage,
            detail,
            done: 0,
            total: 0,
            started: now,
            rate_base: (now, 0),
            progressed: false,
        }
    }

    /// Records a `Progress` event that arrived at `now`.
    pub fn record(&mut self, done: usize, total: usize, now: f64) {
        if !self.progressed && now == self.started {
            self.rate_base = (now, done);
        }
        self.progressed = true;
        self.done = done;
        self.total = total;
    }

    /// Units per second from the rate's base to `now`; `None` until time has passed
    /// with work done.
    pub fn rate(&self, now: f64) -> Option<f64> {
        let (t0, d0) = self.rate_base;
        (now > t0 && self.done > d0).then(|| (self.done - d0) as f64 / (now - t0))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct State {
    pub model_info: String,
    pub device: String,
    /// Clean and robust accuracy of the AT model, and n.
    pub baseline: Option<(f64, f64, usize)>,
    /// Adversarial set: n, loss, accuracy.
    pub adv_set: Option<(usize, f64, f64)>,
    /// Exact MRC scores (SPEC.md §1), as they finish.
    pub modules: Vec<ModuleScore>,
    /// First-order estimates (not in the paper) of every module, from screening: shown
    /// until the module's exact value replaces them, never used for the recommendation.
    pub estimates: Vec<ModuleEstimate>,
    pub mrc_total: usize,
    pub mrc_running: Option<RunningModule>,
    pub mrc_done: bool,
    pub recommended: Option<String>,
    /// Index into `rows()`.
    pub cursor: usize,
    pub sort: SortOrder,
    /// Fine-tuning learning rate for the next `Enter`.
    pub lr: f64,
    pub ft_layers: Vec<String>,
    pub ft_losses: Vec<f64>,
    /// Iterations each stored loss stands for (grows as `ft_losses` is halved).
    pub ft_stride: usize,
    pub ft_epochs: Vec<FinetuneEpoch>,
    pub ft_epoch: usize,
    pub ft_total_epochs: usize,
    pub ft_lr: f64,
    pub ft_done: bool,
    /// Iterations seen of the running fine-tuning, and the iteration each epoch began at
    /// (the chart's epoch boundaries).
    pub ft_iters: usize,
    pub ft_epoch_starts: Vec<usize>,
    pub sweep: Vec<SweepPoint>,
    pub alpha_cursor: Option<f64>,
    /// The rule's α (SPEC.md §3) over the points so far.
    pub best_alpha: Option<f64>,
    pub accepted_alpha: Option<f64>,
    pub tolerance: f64,
    pub alpha_view: AlphaView,
    pub job: Option<JobStatus>,
    pub busy: bool,
    pub worker_gone: bool,
    pub now: f64,
    pub status: String,
    pub error: Option<String>,
    pub unsaved: bool,
    pub confirm_quit: bool,
    pub help: bool,
    pub quit: bool,
    pub theme: usize,
    pub theme_names: Vec<String>,
    /// Set when watching another process's run (`rift tui --follow`): what is followed.
    /// Nothing can be started, cancelled or saved from here.
    pub read_only: Option<String>,
    /// A corrupted test set is configured: accepting an α evaluates OOD accuracy.
    pub ood_enabled: bool,
    /// Per-corruption accuracy of the AT model and of the accepted model, as they come.
    pub ood_at: Vec<CorruptionAcc>,
    pub ood_chosen: Vec<CorruptionAcc>,
    /// Which of the two the running OOD stage fills (true: the accepted model).
    pub ood_filling_chosen: bool,
    /// A user job (fine-tuning a module already exact, accept, save…) interrupted MRC: it
    /// runs first, then MRC continues with the modules left.
    pub pending: Option<(JobCommand, String)>,
    pub mrc_paused: bool,
    /// An `a` sent while a job ran, until the worker answers (`requests.rs`).
    pub requested_accept: Option<f64>,
    /// The AutoAttack check of the accepted α (`e`).
    pub aa: super::aa_state::AaCheck,
    /// The session's candidates (one per fine-tuned module set), as the worker last
    /// listed them; `compare_rows` puts the live panels in for the one on display.
    pub candidates: Vec<CandidateSummary>,
    /// `m`: the compare view (the candidates' table and their paths in one plane) in
    /// place of the fine-tuning and α panels.
    pub compare_view: bool,
    /// The compare view's selected row.
    pub candidate_cursor: usize,
}

/// One line of the MRC panel: a module with its exact score, its estimate, or both.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row<'a> {
    pub name: &'a str,
    pub depth: usize,
    pub exact: Option<&'a ModuleScore>,
    pub estimate: Option<&'a ModuleEstimate>,
}

impl Row<'_> {
    /// Kind, weight shape and parameter count, from whichever value the row has.
    pub fn info(&self) -> (&str, &[i64], i64) {
        match (self.exact, self.estimate) {
            (Some(m), _) => (&m.kind, &m.shape, m.params),
            (None, Some(e)) => (&e.kind, &e.shape, e.params),
            (None, None) => ("", &[], 0),
        }
    }

    pub fn estimate_value(&self) -> Option<f64> {
        self.estimate
            .map(|e| e.estimate)
            .or(self.exact.and_then(|m| m.estimate))
    }
}

impl State {
    pub fn new(lr: f64, tolerance: f64, ft_epochs: usize, theme_names: Vec<String>) -> State {
        State {
            model_info: String::new(),
            device: String::new(),
            baseline: None,
            adv_set: None,
            modules: Vec::new(),
            estimates: Vec::new(),
            mrc_total: 0,
            mrc_running: None,
            mrc_done: false,
            recommended: None,
            cursor: 0,
            sort: SortOrder::Depth,
            lr,
            ft_layers: Vec::new(),
            ft_losses: Vec::new(),
            ft_stride: 1,
            ft_epochs: Vec::new(),
            ft_epoch: 0,
            ft_total_epochs: ft_epochs,
            ft_lr: lr,
            ft_done: false,
            ft_iters: 0,
            ft_epoch_starts: Vec::new(),
            sweep: Vec::new(),
            alpha_cursor: None,
            best_alpha: None,
            accepted_alpha: None,
            tolerance,
            alpha_view: AlphaView::Delta,
            job: None,
            busy: false,
            worker_gone: false,
            now: 0.0,
            status: String::new(),
            error: None,
            unsaved: false,
            confirm_quit: false,
            help: false,
            quit: false,
            theme: 0,
            theme_names,
            read_only: None,
            ood_enabled: false,
            ood_at: Vec::new(),
            ood_chosen: Vec::new(),
            ood_filling_chosen: false,
            pending: None,
            mrc_paused: false,
            requested_accept: None,
            aa: Default::default(),
            candidates: Vec::new(),
            compare_view: false,
            candidate_cursor: 0,
        }
    }

    /// Every module known (exact or estimated) in display order: by depth, or by value —
    /// exact modules by MRC first, then estimate-only ones by estimate (the two scales
    /// differ, so they are never interleaved).
    pub fn rows(&self) -> Vec<Row<'_>> {
        let mut v: Vec<Row> = self
            .modules
            .iter()
            .map(|m| Row {
                name: &m.name,
                depth: m.depth,
                exact: Some(m),
                estimate: self.estimates.iter().find(|e| e.name == m.name),
            })
            .collect();
        for e in &self.estimates {
            if !self.modules.iter().any(|m| m.name == e.name) {
                v.push(Row {
                    name: &e.name,
                    depth: e.depth,
                    exact: None,
                    estimate: Some(e),
                });
            }
        }
        match self.sort {
            SortOrder::Depth => v.sort_by_key(|r| r.depth),
            SortOrder::Mrc => v.sort_by(|a, b| {
                let key = |r: &Row| match r.exact {
                    Some(m) => (0, m.mrc),
                    None => (1, r.estimate_value().unwrap_or(f64::MAX)),
                };
                let (ka, kb) = (key(a), key(b));
                ka.0.cmp(&kb.0)
                    .then(criticality_cmp(ka.1, kb.1))
                    .then(a.depth.cmp(&b.depth))
            }),
        }
        v
    }

    /// Puts the module cursor on `name` (in the current order), if it is listed.
    pub fn select_module(&mut self, name: &str) {
        if let Some(i) = self.rows().iter().position(|r| r.name == name) {
            self.cursor = i;
        }
    }

    /// Adds a fine-tuning iteration's loss, keeping at most `MAX_LOSSES` points by
    /// averaging pairs when full.
    pub fn push_loss(&mut self, loss: f64) {
        self.ft_iters += 1;
        self.ft_losses.push(loss);
        if self.ft_losses.len() > MAX_LOSSES {
            self.ft_losses = self
                .ft_losses
                .chunks(2)
                .map(|c| c.iter().sum::<f64>() / c.len() as f64)
                .collect();
            self.ft_stride *= 2;
        }
    }

    pub fn selected_row(&self) -> Option<Row<'_>> {
        self.rows().get(self.cursor).copied()
    }

    /// The selected module's exact score, if it has one.
    pub fn selected_module(&self) -> Option<&ModuleScore> {
        self.selected_row().and_then(|r| r.exact)
    }

    pub fn cursor_point(&self) -> Option<&SweepPoint> {
        let a = self.alpha_cursor?;
        self.sweep.iter().find(|p| p.alpha == a)
    }

    /// The AT model's clean and robust accuracy that the α panel measures changes from:
    /// the sweep's α = 0 point (the same samples as every other point), else the baseline.
    pub fn alpha_baseline(&self) -> Option<(f64, f64)> {
        match self.sweep.iter().find(|p| p.alpha == 0.0) {
            Some(p) => Some((p.clean_acc, p.robust_acc)),
            None => self.baseline.map(|(c, r, _)| (c, r)),
        }
    }

    /// Every sweep point as (α, clean change, robust change) in points from the AT model.
    pub fn alpha_deltas(&self) -> Vec<(f64, f64, f64)> {
        let Some((c0, r0)) = self.alpha_baseline() else {
            return Vec::new();
        };
        self.sweep
            .iter()
            .map(|p| (p.alpha, p.clean_acc - c0, p.robust_acc - r0))
            .collect()
    }

    /// Mean corruption accuracy of the AT and the accepted model (over what is known).
    pub fn ood_means(&self) -> (Option<f64>, Option<f64>) {
        let mean = |v: &[CorruptionAcc]| {
            (!v.is_empty()).then(|| v.iter().map(|c| c.acc).sum::<f64>() / v.len() as f64)
        };
        (mean(&self.ood_at), mean(&self.ood_chosen))
    }

    pub fn theme_name(&self) -> &str {
        self.theme_names
            .get(self.theme)
            .map_or("default", String::as_str)
    }

    /// The running job's fraction done (`None` until a `Progress` tells the total), units
    /// per second and estimated seconds left, at `now` (the clock `Tick`s bring in).
    pub fn progress(&self) -> Option<JobProgress> {
        let j = self.job.as_ref()?;
        let frac = (j.total > 0).then(|| (j.done as f64 / j.total as f64).clamp(0.0, 1.0));
        let rate = j.rate(self.now);
        let left = rate
            .filter(|_| j.total > 0)
            .map(|r| j.total.saturating_sub(j.done) as f64 / r);
        Some(JobProgress { frac, rate, left })
    }
}

/// What the status bar shows of a running job's progress.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobProgress {
    pub frac: Option<f64>,
    pub rate: Option<f64>,
    pub left: Option<f64>,
}
