//! α selection by search (issue 5; this project's addition, not in the paper): the same
//! grid and the same rule as the full sweep (SPEC.md §3), for a fraction of its attack work.
//!
//! 1. Clean accuracy needs no attack: every α gets it on the full evaluated set (forward
//!    passes only, reported apart from the attack work).
//! 2. Robust accuracy of every α is screened on a deterministic random subset.
//! 3. α = 0 (the AT model) is always completed to the full set: the rule's tolerance is
//!    relative to it, so it must not carry subset noise.
//! 4. The rule takes the largest clean accuracy among admissible α, and clean accuracies are
//!    already exact. So candidates are completed (robust accuracy on the remaining samples
//!    only — subset counts are reused, no sample is attacked twice for one α) in order of
//!    decreasing clean accuracy; the first that is admissible on the full set is the rule's
//!    choice, and the search stops. A candidate is skipped only when even the top of its
//!    subset's 95 % Wilson interval for robust accuracy is below the tolerance. The work
//!    budget (default 1/3 of the grid's) caps completions; hitting it is recorded.
//! 5. Optional refinement screens midpoints around the choice and completes them likewise.
//! 6. The rule is applied to full-set numbers only; screened-only α never decide.
use super::events::{Event, Sink};
use super::interpolate::{choose_alpha, refinement, Endpoints, InterpolateError, SweepConfig};
use super::results::{AlphaSearch, InterpolationResult, SearchPoint, SweepPoint};
use crate::engine::data::ImageSet;
use crate::engine::eval::evaluate;
use crate::engine::models::Model;
use crate::engine::CancelFlag;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Two-sided 95 % normal quantile, for the Wilson intervals.
pub const Z95: f64 = 1.959_963_984_540_054;
/// A fractional subset never goes below this many samples (nor above the set).
pub const MIN_SUBSET: usize = 200;

/// How many samples the screen uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SubsetSize {
    /// The default: a tenth of the evaluated samples (at least `MIN_SUBSET`), but never so
    /// many that α = 0 and one finalist no longer fit the work budget.
    Auto,
    /// This fraction of the evaluated samples, at least `MIN_SUBSET`.
    Fraction(f64),
    Count(usize),
}

impl SubsetSize {
    /// `N` (a sample count ≥ 1) or a fraction in (0, 1) such as `0.1` or `1/10`.
    pub fn parse(s: &str) -> Result<SubsetSize, String> {
        let bad = || {
            format!(
                "`{s}` is not a subset size: give a number of samples (e.g. 500) or a fraction \
                 of the evaluated test set between 0 and 1 (e.g. 0.1 or 1/10)"
            )
        };
        let t = s.trim();
        if let Ok(n) = t.parse::<usize>() {
            return if n >= 1 {
                Ok(SubsetSize::Count(n))
            } else {
                Err(bad())
            };
        }
        let f = match t.split_once('/') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse::<f64>(), b.trim().parse::<f64>());
                match (a, b) {
                    (Ok(a), Ok(b)) if b != 0.0 => a / b,
                    _ => return Err(bad()),
                }
            }
            None => t.parse::<f64>().map_err(|_| bad())?,
        };
        if f > 0.0 && f < 1.0 {
            Ok(SubsetSize::Fraction(f))
        } else {
            Err(bad())
        }
    }

    /// The subset size for `n` evaluated samples, `k` α to screen, `m` completions that
    /// must fit (α = 0 unless known, and one finalist) and the work budget (a fraction).
    pub fn resolve(self, n: usize, k: usize, m: usize, budget: f64) -> usize {
        match self {
            SubsetSize::Auto => {
                let want = SubsetSize::Fraction(0.1).resolve(n, k, m, budget);
                // k·S + m·(n − S) ≤ budget·k·n, solved for S.
                let cap = (budget * k as f64 - m as f64) * n as f64 / (k as f64 - m as f64);
                if k > m && cap >= 1.0 {
                    want.min(cap.floor() as usize)
                } else {
                    want
                }
            }
            SubsetSize::Fraction(f) => ((f * n as f64).round() as usize).max(MIN_SUBSET).min(n),
            SubsetSize::Count(c) => c.min(n),
        }
    }

    pub fn text(self) -> String {
        match self {
            SubsetSize::Auto => "auto".into(),
            SubsetSize::Fraction(f) => format!("{f}"),
            SubsetSize::Count(c) => format!("{c}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
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

/// Wilson score interval of `k` successes in `n`, in percent.
pub fn wilson(k: usize, n: usize, z: f64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 100.0];
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // Exact at the ends (rounding would leave 1e-16 there).
    let lo = if k == 0.0 {
        0.0
    } else {
        100.0 * (centre - half)
    };
    let hi = if k == n {
        100.0
    } else {
        100.0 * (centre + half)
    };
    [lo.max(0.0), hi.min(100.0)]
}

/// What is known about one α: correct counts and sample counts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measured {
    pub alpha: f64,
    /// Clean correct of `clean_n` (always the full set).
    pub clean: usize,
    pub clean_n: usize,
    /// Robust correct of `robust_n`: the subset's, or the full set's once completed.
    pub robust: usize,
    pub robust_n: usize,
    /// Robust accuracy is on the full set.
    pub full: bool,
    /// The subset's robust counts, kept after completion (zero for known points).
    pub sub_robust: usize,
    pub sub_n: usize,
}

fn pct(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * k as f64 / n as f64
    }
}

impl Measured {
    pub fn point(&self) -> SearchPoint {
        SearchPoint {
            alpha: self.alpha,
            clean_acc: pct(self.clean, self.clean_n),
            clean_ci: wilson(self.clean, self.clean_n, Z95),
            clean_n: self.clean_n,
            robust_acc: pct(self.robust, self.robust_n),
            robust_ci: wilson(self.robust, self.robust_n, Z95),
            robust_n: self.robust_n,
        }
    }

    /// As screened: clean on the full set, robust on the subset.
    pub fn screened_point(&self) -> SearchPoint {
        SearchPoint {
            robust_acc: pct(self.sub_robust, self.sub_n),
            robust_ci: wilson(self.sub_robust, self.sub_n, Z95),
            robust_n: self.sub_n,
            ..self.point()
        }
    }

    fn sweep_point(&self) -> SweepPoint {
        SweepPoint {
            alpha: self.alpha,
            clean_acc: pct(self.clean, self.clean_n),
            robust_acc: pct(self.robust, self.robust_n),
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
            robust: k(p.robust_acc),
            robust_n: p.n,
            full: true,
            sub_robust: 0,
            sub_n: 0,
        }
    }
}

/// Whether the rule could still choose a screened α over the current full-set choice
/// `best` (α, clean %): its exact clean accuracy beats it (ties go to the smaller α), and
/// the top of its robust interval is within `tolerance` of the full-set α = 0.
pub fn could_be_chosen(
    screened: &SearchPoint,
    base_robust: f64,
    best: (f64, f64),
    tolerance: f64,
) -> bool {
    let (best_alpha, best_clean) = best;
    let beats = screened.clean_acc > best_clean
        || (screened.clean_acc == best_clean && screened.alpha < best_alpha);
    beats && screened.robust_ci[1] >= base_robust - tolerance - 1e-9
}

/// Screened α in the order to complete them: the rule's order — larger clean accuracy
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
        .filter(|m| m.full)
        .map(Measured::sweep_point)
        .collect();
    v.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
    v
}

/// The evaluated samples (the first n) split into a random subset and the rest.
struct Split {
    all: ImageSet,
    sub: ImageSet,
    rest: ImageSet,
}

fn split(test: &ImageSet, n: usize, s: usize, seed: u64) -> Split {
    let mut idx: Vec<usize> = (0..n).collect();
    // Random, not a prefix: test files are often sorted by class.
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5EA2_C4A1));
    let (a, b) = idx.split_at(s);
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable();
    b.sort_unstable();
    Split {
        all: test.subset(&(0..n).collect::<Vec<_>>()),
        sub: test.subset(&a),
        rest: test.subset(&b),
    }
}

/// (clean correct, robust correct, n) of θ(α) on `set`; no attack when `robust` is false.
fn measure(
    ctx: &Ctx,
    alpha: f64,
    set: &ImageSet,
    robust: bool,
) -> Result<(usize, usize, usize), InterpolateError> {
    if set.n == 0 {
        return Ok((0, 0, 0));
    }
    ctx.ends.apply(ctx.model, alpha)?;
    tch::manual_seed(ctx.cfg.seed as i64);
    let r = evaluate(
        ctx.model,
        set,
        robust.then_some(&ctx.cfg.attack),
        None,
        ctx.cfg.batch_size,
        ctx.cancel,
        &mut |_, _| {},
    )?;
    Ok((r.clean_correct, r.robust_correct.unwrap_or(0), r.n))
}

struct Ctx<'a> {
    model: &'a Model,
    ends: &'a Endpoints,
    cfg: &'a SweepConfig,
    cancel: &'a CancelFlag,
}

/// The search's running state: what was measured where, and the work spent.
struct State {
    split: Split,
    measured: Vec<Measured>,
    attacked: usize,
    clean_only: usize,
    budget_work: f64,
    budget_exhausted: bool,
    finalists: Vec<f64>,
    done: usize,
    total: usize,
}

impl State {
    fn get(&mut self, alpha: f64) -> Option<&mut Measured> {
        self.measured.iter_mut().find(|m| m.alpha == alpha)
    }

    fn progress(&mut self, sink: Sink) {
        self.done += 1;
        sink(Event::Progress {
            stage: "interpolate".into(),
            done: self.done,
            total: self.total.max(self.done),
        });
    }

    /// Clean accuracy on the full set, robust accuracy on the subset.
    fn screen(&mut self, ctx: &Ctx, alpha: f64, sink: Sink) -> Result<(), InterpolateError> {
        let (clean, _, clean_n) = measure(ctx, alpha, &self.split.all, false)?;
        let (_, robust, robust_n) = measure(ctx, alpha, &self.split.sub, true)?;
        self.clean_only += clean_n;
        self.attacked += robust_n;
        self.measured.push(Measured {
            alpha,
            clean,
            clean_n,
            robust,
            robust_n,
            full: robust_n == clean_n,
            sub_robust: robust,
            sub_n: robust_n,
        });
        self.progress(sink);
        Ok(())
    }

    /// Robust accuracy of a screened α on the remaining samples, added to the subset's.
    fn complete(&mut self, ctx: &Ctx, alpha: f64, sink: Sink) -> Result<(), InterpolateError> {
        let (_, robust, n) = measure(ctx, alpha, &self.split.rest, true)?;
        self.attacked += n;
        if let Some(m) = self.get(alpha) {
            m.robust += robust;
            m.robust_n += n;
            m.full = true;
            let point = m.sweep_point();
            sink(Event::SweepPoint { point });
        }
        self.progress(sink);
        Ok(())
    }

    /// Completes screened α of `among` in the rule's order until one is admissible on the
    /// full set (it is then the rule's choice) or the budget is spent.
    fn finals(&mut self, ctx: &Ctx, among: &[f64], sink: Sink) -> Result<(), InterpolateError> {
        let tol = ctx.cfg.tolerance;
        let screened: Vec<SearchPoint> = self
            .measured
            .iter()
            .filter(|m| !m.full && among.contains(&m.alpha))
            .map(Measured::point)
            .collect();
        for cand in finalist_order(&screened) {
            let full = full_points(&self.measured);
            let Some(base) = full.iter().find(|p| p.alpha == 0.0) else {
                return Ok(());
            };
            let chosen = choose_alpha(&full, tol);
            let best = full
                .iter()
                .find(|p| p.alpha == chosen)
                .map_or((0.0, 0.0), |p| (p.alpha, p.clean_acc));
            if !could_be_chosen(&cand, base.robust_acc, best, tol) {
                continue;
            }
            if (self.attacked + self.split.rest.n) as f64 > self.budget_work + 1e-9 {
                self.budget_exhausted = true;
                break;
            }
            self.finalists.push(cand.alpha);
            self.complete(ctx, cand.alpha, sink)?;
            if decide(&self.measured, tol) == cand.alpha {
                // Every α left has lower clean accuracy (or equal and larger α).
                break;
            }
        }
        Ok(())
    }
}

/// The search over `cfg.alphas` (plus `cfg.refine` rounds of midpoints). `known` holds
/// full-set points already measured with the same attack, seed and samples (the AT baseline
/// as α = 0 in `rift run`); they cost nothing here and count on neither side of the ratio.
/// Leaves the model at the chosen α.
#[allow(clippy::too_many_arguments)]
pub fn search(
    model: &Model,
    ends: &Endpoints,
    test: &ImageSet,
    cfg: &SweepConfig,
    search: &SearchConfig,
    known: &[SweepPoint],
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<InterpolationResult, InterpolateError> {
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
    let must = 1 + usize::from(todo.contains(&0.0));
    let s = search.subset.resolve(n, todo.len(), must, search.budget);
    let grid_work = todo.len() * n;
    let mut st = State {
        split: split(test, n, s, cfg.seed),
        measured: known.iter().map(|p| Measured::from_known(p)).collect(),
        attacked: 0,
        clean_only: 0,
        budget_work: search.budget * grid_work as f64,
        budget_exhausted: false,
        finalists: Vec::new(),
        done: 0,
        // The screen, α = 0, and a finalist or two per round.
        total: todo.len() + 2 + 3 * cfg.refine,
    };
    for p in &known {
        sink(Event::SweepPoint {
            point: (*p).clone(),
        });
    }
    for &alpha in &todo {
        st.screen(&ctx, alpha, sink)?;
    }
    if st.get(0.0).is_some_and(|m| !m.full) {
        st.complete(&ctx, 0.0, sink)?;
    }
    st.finals(&ctx, &todo, sink)?;
    let mut round = 0;
    while round < cfg.refine {
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
        .filter(|m| m.full)
        .map(Measured::point)
        .collect();
    // As screened (subset robust numbers), also for α completed later.
    let screened: Vec<SearchPoint> = measured
        .iter()
        .filter(|m| m.sub_n > 0)
        .map(Measured::screened_point)
        .collect();
    let screened_only: Vec<f64> = measured
        .iter()
        .filter(|m| !m.full)
        .map(|m| m.alpha)
        .collect();
    let mut finalists = st.finalists.clone();
    finalists.sort_by(f64::total_cmp);
    Ok(InterpolationResult {
        points,
        chosen_alpha,
        tolerance: cfg.tolerance,
        refine_rounds: round,
        seconds: start.elapsed().as_secs_f64(),
        search: Some(AlphaSearch {
            method: "robust accuracy screened on a subset, finalists completed on the full set (not in the paper)".into(),
            confidence: 0.95,
            subset_n: s,
            full_n: n,
            budget: search.budget,
            screened,
            full,
            finalists,
            screened_only,
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
#[path = "alpha_search_tests.rs"]
mod tests;
