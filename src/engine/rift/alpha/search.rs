//! α selection by search (issue 5; this project's addition, not in the paper): the same
//! grid and the same rule as the full sweep (SPEC.md §3), for a fraction of its attack work.
//!
//! 1. Clean accuracy needs no attack: every α gets it on the full evaluated set (forward
//!    passes only, reported apart from the attack work).
//! 2. Robust accuracy of every α is screened on a deterministic random subset.
//! 3. α = 0 (the AT model) is completed to the full set (unless `rift run` already measured
//!    it): the rule's tolerance is relative to it, so it must not carry subset noise.
//! 4. The rule takes the largest clean accuracy among admissible α, and clean accuracies are
//!    already exact. So candidates are taken in order of decreasing clean accuracy. Each one
//!    is compared with α = 0 on the same samples (paired: the same attack seeds, so most
//!    samples agree and the difference is known far better than either accuracy), and
//!    completed chunk by chunk of the remaining samples. It is rejected as soon as the 99 %
//!    interval of its full-set robust difference to α = 0 lies wholly below −tolerance;
//!    it is accepted only once it is complete and admissible on the full set — then it is
//!    the rule's choice and the search stops. The work budget (default 1/3 of the grid's)
//!    caps the attacks; hitting it is recorded.
//! 5. Optional refinement screens midpoints around the choice and treats them likewise.
//! 6. The rule is applied to full-set numbers only: rejections are statistical, the choice
//!    is exact.
use crate::engine::attack::{clean_correct, robust_correct, AttackError, Noise};
use crate::engine::batches::range_batch;
use crate::engine::data::ImageSet;
use crate::engine::models::Model;
use crate::engine::rift::alpha::interpolate::{
    choose_alpha, refinement, Endpoints, InterpolateError, SweepConfig, SweepTask,
};
use crate::engine::rift::alpha::stats::Paired;
pub use crate::engine::rift::alpha::stats::{
    fpc_interval, wilson, SubsetSize, MIN_SUBSET, Z95, Z99,
};
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::rift::mrc::results::{
    AlphaSearch, InterpolationResult, PairedDrop, SearchPoint, SweepPoint,
};
use crate::engine::CancelFlag;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use tch::Kind;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchConfig {
    pub subset: SubsetSize,
    /// Most attack work to spend, as a fraction of the grid's (1/3 by default: issue 5).
    pub budget: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            subset: SubsetSize::Auto,
            budget: 1.0 / 3.0,
        }
    }
}

impl SearchConfig {
    /// How a session records it, e.g. `subset=0.1 budget=0.3333`.
    pub fn text(&self) -> String {
        format!("subset={} budget={:.4}", self.subset.text(), self.budget)
    }
}

/// What is known about one α: clean counts on the full set, robust correctness per sample
/// on the subset and on each completed chunk of the rest (or only counts, for a point
/// measured elsewhere).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    pub alpha: f64,
    /// Clean correct of `clean_n` (always the full set).
    pub clean: usize,
    pub clean_n: usize,
    /// Robust correctness on the subset, then on chunks 0, 1, ... of the rest.
    pub sub: Vec<bool>,
    pub chunks: Vec<Vec<bool>>,
    /// (robust correct, n) of a full-set point measured elsewhere (no per-sample data).
    pub known: Option<(usize, usize)>,
}

fn pct(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * k as f64 / n as f64
    }
}

fn count(v: &[bool]) -> usize {
    v.iter().filter(|&&b| b).count()
}

impl Measured {
    /// Robust correct and samples so far.
    pub fn robust(&self) -> (usize, usize) {
        match self.known {
            Some(k) => k,
            None => (
                count(&self.sub) + self.chunks.iter().map(|c| count(c)).sum::<usize>(),
                self.sub.len() + self.chunks.iter().map(Vec::len).sum::<usize>(),
            ),
        }
    }

    /// Robust accuracy is on the full set.
    pub fn full(&self) -> bool {
        self.robust().1 == self.clean_n
    }

    /// Per-sample robust correctness over the subset and the first `chunks` chunks.
    fn mask(&self, chunks: usize) -> Vec<bool> {
        let mut v = self.sub.clone();
        for c in self.chunks.iter().take(chunks) {
            v.extend_from_slice(c);
        }
        v
    }

    pub fn point(&self) -> SearchPoint {
        let (k, m) = self.robust();
        SearchPoint {
            alpha: self.alpha,
            clean_acc: pct(self.clean, self.clean_n),
            clean_ci: wilson(self.clean, self.clean_n, Z95),
            clean_n: self.clean_n,
            robust_acc: pct(k, m),
            robust_ci: wilson(k, m, Z95),
            robust_n: m,
        }
    }

    /// As screened: clean on the full set, robust on the subset.
    pub fn screened_point(&self) -> SearchPoint {
        let k = count(&self.sub);
        SearchPoint {
            robust_acc: pct(k, self.sub.len()),
            robust_ci: wilson(k, self.sub.len(), Z95),
            robust_n: self.sub.len(),
            ..self.point()
        }
    }

    fn sweep_point(&self) -> SweepPoint {
        let (k, m) = self.robust();
        SweepPoint {
            alpha: self.alpha,
            clean_acc: pct(self.clean, self.clean_n),
            robust_acc: pct(k, m),
            n: self.clean_n,
        }
    }

    /// From a full-set point measured elsewhere (the baseline of `rift run`).
    fn from_known(p: &SweepPoint) -> Measured {
        let k = |acc: f64| (acc * p.n as f64 / 100.0).round() as usize;
        Measured {
            alpha: p.alpha,
            clean: k(p.clean_acc),
            clean_n: p.n,
            known: Some((k(p.robust_acc), p.n)),
            ..Measured::default()
        }
    }
}

/// The interval (points, at quantile `z`) of α's full-set robust accuracy minus α = 0's,
/// from what both have measured: paired on their common samples when α = 0 has per-sample
/// data, else α's own finite-population interval against α = 0's exact count.
pub fn drop_interval(cand: &Measured, base: &Measured, z: f64) -> (f64, [f64; 2], usize) {
    let n = cand.clean_n;
    match base.known {
        None => {
            let p = Paired::of(&cand.mask(cand.chunks.len()), &base.mask(cand.chunks.len()));
            (p.diff(), p.interval(n, z), p.m)
        }
        Some((bk, bn)) => {
            let (k, m) = cand.robust();
            let b = pct(bk, bn);
            let [lo, hi] = fpc_interval(k, m, n, z);
            (pct(k, m) - b, [lo - b, hi - b], m)
        }
    }
}

/// Screened α in the order to examine them: the rule's order — larger clean accuracy
/// first, smaller α on ties — so the first admissible one is the rule's choice.
pub fn finalist_order(screened: &[SearchPoint]) -> Vec<SearchPoint> {
    let mut v = screened.to_vec();
    v.sort_by(|a, b| {
        b.clean_acc
            .total_cmp(&a.clean_acc)
            .then(a.alpha.total_cmp(&b.alpha))
    });
    v
}

/// The rule applied to the full-set points only.
pub fn decide(measured: &[Measured], tolerance: f64) -> f64 {
    choose_alpha(&full_points(measured), tolerance)
}

fn full_points(measured: &[Measured]) -> Vec<SweepPoint> {
    let mut v: Vec<SweepPoint> = measured
        .iter()
        .filter(|m| m.full())
        .map(Measured::sweep_point)
        .collect();
    v.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
    v
}

/// The evaluated samples (the first n) split into a random subset and the rest, the rest
/// in random order and cut into chunks that candidates complete one at a time. Each part
/// keeps the samples' indices in the set, which key their random starts.
struct Split {
    all: ImageSet,
    sub: Part,
    chunks: Vec<Part>,
}

struct Part {
    set: ImageSet,
    idx: Vec<usize>,
}

fn split(test: &ImageSet, n: usize, s: usize, chunk: usize, seed: u64) -> Split {
    let mut idx: Vec<usize> = (0..n).collect();
    // Random, not a prefix: test files are often sorted by class.
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5EA2_C4A1));
    let (a, b) = idx.split_at(s);
    let part = |ix: &[usize]| {
        let mut ix = ix.to_vec();
        ix.sort_unstable();
        Part {
            set: test.subset(&ix),
            idx: ix,
        }
    };
    Split {
        all: test.subset(&(0..n).collect::<Vec<_>>()),
        sub: part(a),
        chunks: b.chunks(chunk.max(1)).map(part).collect(),
    }
}

struct Ctx<'a> {
    model: &'a Model,
    ends: &'a Endpoints,
    cfg: &'a SweepConfig,
    cancel: &'a CancelFlag,
}

/// Clean correct count and per-sample robust correctness of θ(α) on `set` (empty without
/// `robust`). Random starts are keyed by the samples' indices in the evaluated set
/// (`keys`), so every α faces the same starts on a sample — the pairing — and the very
/// starts the full grid uses there.
fn measure(
    ctx: &Ctx,
    alpha: f64,
    set: &ImageSet,
    keys: &[usize],
    robust: bool,
) -> Result<(usize, Vec<bool>), InterpolateError> {
    ctx.ends.apply(ctx.model, alpha)?;
    let noise = Noise::Listed {
        seed: ctx.cfg.seed,
        keys,
    };
    let (mut clean, mut mask) = (0usize, Vec::new());
    let bs = ctx.cfg.batch_size.max(1);
    let mut i = 0;
    while i < set.n {
        if ctx.cancel.is_cancelled() {
            return Err(AttackError::Cancelled.into());
        }
        let end = (i + bs).min(set.n);
        let (x, y) = range_batch(set, i, end, ctx.model.device())?;
        if robust {
            let (ok, _) =
                robust_correct(ctx.model, &x, &y, &ctx.cfg.attack, noise.at(i), ctx.cancel)?;
            let ok =
                Vec::<u8>::try_from(ok.f_to_kind(Kind::Uint8)?.f_to_device(tch::Device::Cpu)?)?;
            mask.extend(ok.iter().map(|&b| b != 0));
        } else {
            clean += clean_correct(ctx.model, &x, &y)?
                .f_sum(Kind::Int64)?
                .int64_value(&[]) as usize;
        }
        i = end;
    }
    Ok((clean, mask))
}

/// The search's running state: what was measured where, and the work spent.
struct State {
    split: Split,
    n: usize,
    measured: Vec<Measured>,
    attacked: usize,
    clean_only: usize,
    budget_work: f64,
    budget_exhausted: bool,
    /// α completed on the full set as candidates.
    finalists: Vec<f64>,
    /// α rejected by their paired interval before completion.
    rejected: Vec<f64>,
    done: usize,
    total: usize,
}

impl State {
    fn get(&self, alpha: f64) -> Option<&Measured> {
        self.measured.iter().find(|m| m.alpha == alpha)
    }

    fn get_mut(&mut self, alpha: f64) -> Option<&mut Measured> {
        self.measured.iter_mut().find(|m| m.alpha == alpha)
    }

    fn progress(&mut self, sink: Sink) {
        self.done += 1;
        sink(Event::Progress {
            stage: Stage::Interpolate,
            done: self.done,
            total: self.total.max(self.done),
        });
    }

    /// Clean accuracy on the full set, robust accuracy on the subset.
    fn screen(&mut self, ctx: &Ctx, alpha: f64, sink: Sink) -> Result<(), InterpolateError> {
        let (clean, _) = measure(ctx, alpha, &self.split.all, &[], false)?;
        let (_, sub) = measure(ctx, alpha, &self.split.sub.set, &self.split.sub.idx, true)?;
        self.clean_only += self.split.all.n;
        self.attacked += sub.len();
        self.measured.push(Measured {
            alpha,
            clean,
            clean_n: self.n,
            sub,
            ..Measured::default()
        });
        self.progress(sink);
        Ok(())
    }

    /// Attacks θ(α) on its next chunk of the rest; false when the budget forbids it.
    fn extend(&mut self, ctx: &Ctx, alpha: f64, sink: Sink) -> Result<bool, InterpolateError> {
        let Some(next) = self.get(alpha).map(|m| m.chunks.len()) else {
            return Ok(false);
        };
        let Some(chunk) = self.split.chunks.get(next) else {
            return Ok(false);
        };
        if alpha != 0.0 && (self.attacked + chunk.set.n) as f64 > self.budget_work + 1e-9 {
            self.budget_exhausted = true;
            return Ok(false);
        }
        let (_, mask) = measure(ctx, alpha, &chunk.set, &chunk.idx, true)?;
        self.attacked += mask.len();
        if let Some(m) = self.get_mut(alpha) {
            m.chunks.push(mask);
            if m.full() {
                let point = m.sweep_point();
                sink(Event::SweepPoint { point });
            }
        }
        self.progress(sink);
        Ok(true)
    }

    /// Examines screened α of `among` in the rule's order (see the module comment) until
    /// one is complete and admissible — the rule's choice — or the budget is spent.
    fn finals(&mut self, ctx: &Ctx, among: &[f64], sink: Sink) -> Result<(), InterpolateError> {
        let tol = ctx.cfg.tolerance;
        let screened: Vec<SearchPoint> = self
            .measured
            .iter()
            .filter(|m| !m.full() && among.contains(&m.alpha))
            .map(Measured::point)
            .collect();
        for cand in finalist_order(&screened) {
            let full = full_points(&self.measured);
            if !full.iter().any(|p| p.alpha == 0.0) {
                return Ok(());
            }
            let chosen = choose_alpha(&full, tol);
            let best = full
                .iter()
                .find(|p| p.alpha == chosen)
                .map_or((0.0, 0.0), |p| (p.alpha, p.clean_acc));
            let beats =
                cand.clean_acc > best.1 || (cand.clean_acc == best.1 && cand.alpha < best.0);
            if !beats {
                continue;
            }
            while let (Some(c), Some(base)) = (self.get(cand.alpha), self.get(0.0)) {
                if c.full() {
                    self.finalists.push(cand.alpha);
                    if decide(&self.measured, tol) == cand.alpha {
                        // Every α left has lower clean accuracy (or equal and larger α).
                        return Ok(());
                    }
                    break;
                }
                let (_, [_, hi], _) = drop_interval(c, base, Z99);
                if hi < -tol - 1e-9 {
                    self.rejected.push(cand.alpha);
                    break;
                }
                if !self.extend(ctx, cand.alpha, sink)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Every screened α against α = 0 on the samples both have, with the verdict.
    fn paired(&self, chosen: f64) -> Vec<PairedDrop> {
        let Some(base) = self.get(0.0) else {
            return Vec::new();
        };
        let mut v: Vec<PairedDrop> = self
            .measured
            .iter()
            .filter(|m| m.alpha != 0.0 && m.known.is_none())
            .map(|m| {
                let (diff, ci, samples) = drop_interval(m, base, Z95);
                let verdict = if m.alpha == chosen {
                    "chosen"
                } else if self.rejected.contains(&m.alpha) {
                    "rejected: robust drop beyond the tolerance (99 % interval)"
                } else if m.full() {
                    "complete: robust drop beyond the tolerance"
                } else if self.budget_exhausted {
                    "not examined: work budget spent"
                } else {
                    "not examined: the choice has higher clean accuracy"
                };
                PairedDrop {
                    alpha: m.alpha,
                    samples,
                    diff,
                    ci,
                    verdict: verdict.into(),
                }
            })
            .collect();
        v.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
        v
    }
}

/// The search over `cfg.alphas` (plus `cfg.refine` rounds of midpoints). `known` holds
/// full-set points already measured with the same attack, seed and samples (the AT baseline
/// as α = 0 in `rift run`); they cost nothing here and count on neither side of the ratio.
/// Leaves the model at the chosen α.
pub fn search(
    model: &Model,
    task: &SweepTask,
    search: &SearchConfig,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<InterpolationResult, InterpolateError> {
    let SweepTask {
        ends,
        test,
        cfg,
        known,
    } = *task;
    let start = Instant::now();
    let ctx = Ctx {
        model,
        ends,
        cfg,
        cancel,
    };
    let n = cfg.limit.map_or(test.n, |l| l.min(test.n));
    let known: Vec<&SweepPoint> = known
        .iter()
        .filter(|p| cfg.alphas.contains(&p.alpha) && p.n == n)
        .collect();
    let todo: Vec<f64> = cfg
        .alphas
        .iter()
        .copied()
        .filter(|a| !known.iter().any(|p| p.alpha == *a))
        .collect();
    // α = 0 when it is to be measured, and two completions: the choice, and room to
    // reject others part-way. (At a tight tolerance a rejection can need most of the set;
    // the screen itself rarely decides, so it is kept small rather than the budget.)
    let must = usize::from(todo.contains(&0.0)) as f64 + 2.0;
    let s = search.subset.resolve(n, todo.len(), must, search.budget);
    // Chunks of the rest: small enough to reject early, large enough to batch well.
    let chunk = cfg.batch_size.max((n - s).div_ceil(8)).max(1);
    let grid_work = todo.len() * n;
    let mut st = State {
        split: split(test, n, s, chunk, cfg.seed),
        n,
        measured: known.iter().map(|p| Measured::from_known(p)).collect(),
        attacked: 0,
        clean_only: 0,
        budget_work: search.budget * grid_work as f64,
        budget_exhausted: false,
        finalists: Vec::new(),
        rejected: Vec::new(),
        done: 0,
        total: todo.len() + 2 * (n - s).div_ceil(chunk) + 3 * cfg.refine,
    };
    for p in &known {
        sink(Event::SweepPoint {
            point: (*p).clone(),
        });
    }
    for &alpha in &todo {
        st.screen(&ctx, alpha, sink)?;
    }
    while st.get(0.0).is_some_and(|m| !m.full()) {
        st.extend(&ctx, 0.0, sink)?;
    }
    st.finals(&ctx, &todo, sink)?;
    let mut round = 0;
    while round < cfg.refine && !st.budget_exhausted {
        let mut all: Vec<SweepPoint> = st.measured.iter().map(Measured::sweep_point).collect();
        all.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
        let mids = refinement(&all, decide(&st.measured, cfg.tolerance));
        if mids.is_empty() {
            break;
        }
        for &alpha in &mids {
            st.screen(&ctx, alpha, sink)?;
        }
        st.finals(&ctx, &mids, sink)?;
        round += 1;
    }
    let points = full_points(&st.measured);
    let chosen_alpha = choose_alpha(&points, cfg.tolerance);
    ends.apply(model, chosen_alpha)?;
    let mut measured = st.measured.clone();
    measured.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
    let full: Vec<SearchPoint> = measured
        .iter()
        .filter(|m| m.full())
        .map(Measured::point)
        .collect();
    // As screened (subset robust numbers), also for α completed later.
    let screened: Vec<SearchPoint> = measured
        .iter()
        .filter(|m| !m.sub.is_empty())
        .map(Measured::screened_point)
        .collect();
    let screened_only: Vec<f64> = measured
        .iter()
        .filter(|m| !m.full())
        .map(|m| m.alpha)
        .collect();
    let mut finalists = st.finalists.clone();
    finalists.sort_by(f64::total_cmp);
    let paired = st.paired(chosen_alpha);
    Ok(InterpolationResult {
        points,
        chosen_alpha,
        tolerance: cfg.tolerance,
        refine_rounds: round,
        seconds: start.elapsed().as_secs_f64(),
        search: Some(AlphaSearch {
            method: "robust accuracy screened on a subset; candidates compared with α = 0 on the same samples, rejected by a paired interval or completed on the full set (not in the paper)".into(),
            confidence: 0.95,
            decision_confidence: 0.99,
            subset_n: s,
            full_n: n,
            budget: search.budget,
            screened,
            full,
            finalists,
            screened_only,
            paired,
            clean_only_samples: st.clean_only,
            budget_exhausted: st.budget_exhausted,
            attacked_samples: st.attacked,
            grid_attacked_samples: grid_work,
            work_ratio: if grid_work == 0 {
                0.0
            } else {
                st.attacked as f64 / grid_work as f64
            },
        }),
    })
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
