//! First-order screening of MRC (SPEC.md §1, "First-order screening"): this project's
//! addition, not in the paper, and always labelled as such.
//!
//! Linearised around the AT weights, the loss rise over the ε-ball of module `m` peaks at
//! `ε·‖w_m‖_F·‖∇_{w_m} L_adv‖_F`. One forward and backward pass over the whole adversarial
//! set (BatchNorm in eval mode, the same mean cross-entropy as exact MRC) yields that
//! gradient for every module at once. The estimates rank modules and order the exact work;
//! the recommendation and every reported MRC value stay exact.
use crate::engine::models::{Model, ModuleInfo};
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::rift::mrc::adv_set::{loss_and_acc, TensorSet};
pub use crate::engine::rift::mrc::results::{attach, Screened};
use crate::engine::rift::mrc::results::{
    criticality_cmp, ModuleEstimate, ModuleScore, MrcResult, ScreenSummary,
};
use crate::engine::rift::mrc::scoring::{MrcInputs, Scorer};
use crate::engine::rift::mrc::{finish, MeasuredOn, MrcConfig, MrcError};
use crate::engine::CancelFlag;
use std::time::Instant;
use tch::Tensor;

/// How every output names the estimates.
pub const ESTIMATE_LABEL: &str = "first-order estimate (not in the paper)";

#[derive(Clone, Debug)]
pub struct ScreenConfig {
    /// The same relative bound ε as exact MRC.
    pub epsilon: f64,
    pub batch_size: usize,
    /// Also measure the loss after one step of size ε‖w‖ along the normalised gradient.
    pub one_step: bool,
}

impl ScreenConfig {
    pub fn method(&self) -> &'static str {
        if self.one_step {
            "first_order+one_step"
        } else {
            "first_order"
        }
    }
}

/// Which screened modules get exact MRC, lowest estimate first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExactLowest {
    /// Estimates only.
    None,
    Count(usize),
    All,
}

impl ExactLowest {
    /// `K` (a positive number) or `all`.
    pub fn parse(s: &str) -> Result<ExactLowest, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(ExactLowest::All);
        }
        match s.parse::<usize>() {
            Ok(0) => Err("K must be at least 1: 0 would compute no exact MRC (leave the flag out for estimates only)".into()),
            Ok(k) => Ok(ExactLowest::Count(k)),
            Err(_) => Err(format!(
                "`{s}` is neither a number of modules (K ≥ 1) nor `all`"
            )),
        }
    }

    /// How many of `n` modules get exact MRC.
    pub fn count(self, n: usize) -> usize {
        match self {
            ExactLowest::None => 0,
            ExactLowest::Count(k) => k.min(n),
            ExactLowest::All => n,
        }
    }

    pub fn text(self) -> String {
        match self {
            ExactLowest::None => "none".into(),
            ExactLowest::Count(k) => k.to_string(),
            ExactLowest::All => "all".into(),
        }
    }
}

/// Estimates every module of `modules` from one pass over `adv`. `baseline_loss` (mean
/// cross-entropy of the unperturbed model on `adv`, from `loss_and_acc`) is the reference
/// of the one-step loss rise. Weights are unchanged on return, also on error.
pub fn estimate(
    model: &Model,
    adv: &TensorSet,
    modules: &[(usize, ModuleInfo)],
    baseline_loss: f64,
    cfg: &ScreenConfig,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<Screened, MrcError> {
    let start = Instant::now();
    let weights = modules
        .iter()
        .map(|(_, info)| {
            model
                .var(&format!("{}.weight", info.name))
                .ok_or_else(|| MrcError::UnknownModule {
                    name: info.name.clone(),
                    arch: model.spec.name(),
                    valid: String::new(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for w in &weights {
        let _ = w.set_requires_grad(true);
    }
    let grads = gradients(model, adv, &weights, cfg.batch_size, cancel, sink);
    for w in &weights {
        let _ = w.set_requires_grad(false);
    }
    let grads = grads?;
    let mut estimates = Vec::with_capacity(modules.len());
    for (k, ((depth, info), (w, g))) in modules.iter().zip(weights.iter().zip(&grads)).enumerate() {
        if cancel.is_cancelled() {
            return Err(MrcError::Cancelled);
        }
        let w_norm = w.f_norm()?.f_double_value(&[])?;
        let g_norm = g.f_norm()?.f_double_value(&[])?;
        let estimate_step = if cfg.one_step {
            let dir = Direction {
                w,
                g,
                w_norm,
                g_norm,
            };
            Some(one_step(model, adv, &dir, baseline_loss, cfg)?)
        } else {
            None
        };
        let e = ModuleEstimate {
            name: info.name.clone(),
            depth: *depth,
            kind: info.kind.clone(),
            shape: info.shape.clone(),
            params: info.params,
            estimate: cfg.epsilon * w_norm * g_norm,
            estimate_step,
        };
        sink(Event::ModuleEstimated {
            module: e.name.clone(),
            depth: e.depth,
            estimate: e.estimate,
            estimate_step: e.estimate_step,
            kind: e.kind.clone(),
            shape: e.shape.clone(),
            params: e.params,
        });
        if cfg.one_step {
            sink(Event::Progress {
                stage: Stage::ScreenStep,
                done: k + 1,
                total: modules.len(),
            });
        }
        estimates.push(e);
    }
    let seconds = start.elapsed().as_secs_f64();
    sink(Event::ScreenFinished {
        method: cfg.method().into(),
        modules: estimates.len(),
        seconds,
    });
    Ok(Screened {
        estimates,
        method: cfg.method().into(),
        seconds,
    })
}

/// ∇ of the mean cross-entropy over the whole set with respect to each of `weights`,
/// accumulated over batches (each batch's summed loss divided by the set size).
fn gradients(
    model: &Model,
    adv: &TensorSet,
    weights: &[Tensor],
    batch_size: usize,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<Vec<Tensor>, MrcError> {
    let n = adv.n.max(1);
    let batch = batch_size.max(1);
    let total = n.div_ceil(batch);
    let mut acc: Vec<Tensor> = Vec::new();
    let mut i = 0;
    while i < adv.n {
        if cancel.is_cancelled() {
            return Err(MrcError::Cancelled);
        }
        let len = batch.min(adv.n - i) as i64;
        let x = adv.x.f_narrow(0, i as i64, len)?;
        let y = adv.y.f_narrow(0, i as i64, len)?;
        let loss = model
            .forward(&x, false)
            .f_cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Sum, -100, 0.0)?
            .f_div_scalar(n as f64)?;
        let g = Tensor::f_run_backward(&[&loss], weights, false, false)?;
        if acc.is_empty() {
            acc = g;
        } else {
            tch::no_grad(|| -> Result<(), tch::TchError> {
                for (a, g) in acc.iter_mut().zip(&g) {
                    let _ = a.f_add_(g)?;
                }
                Ok(())
            })?;
        }
        i += len as usize;
        sink(Event::Progress {
            stage: Stage::Screen,
            done: i.div_ceil(batch),
            total,
        });
    }
    Ok(acc)
}

/// A module's weight and the loss gradient there, with their norms.
struct Direction<'a> {
    w: &'a Tensor,
    g: &'a Tensor,
    w_norm: f64,
    g_norm: f64,
}

/// Loss rise on the whole set after `w ← w + ε‖w‖·g/‖g‖`; `w` is restored (also on error).
fn one_step(
    model: &Model,
    adv: &TensorSet,
    dir: &Direction,
    baseline_loss: f64,
    cfg: &ScreenConfig,
) -> Result<f64, MrcError> {
    let &Direction {
        w,
        g,
        w_norm,
        g_norm,
    } = dir;
    if g_norm <= 0.0 || !g_norm.is_finite() {
        return Ok(0.0);
    }
    let w0 = tch::no_grad(|| w.f_detach().map(|d| d.copy()))?;
    let stepped = tch::no_grad(|| -> Result<(f64, f64), tch::TchError> {
        let step = g.f_mul_scalar(cfg.epsilon * w_norm / g_norm)?;
        let _ = w.shallow_clone().f_add_(&step)?;
        loss_and_acc(
            adv.n,
            cfg.batch_size.max(1),
            model.device(),
            &adv.y,
            &mut |idx| Ok(model.forward(&adv.x.f_index_select(0, idx)?, false)),
        )
    });
    tch::no_grad(|| w.shallow_clone().f_copy_(&w0))?;
    Ok(stepped?.0 - baseline_loss)
}

/// Screening, then exact MRC (SPEC.md §1, faithful or `cfg.fast`) for the `exact` lowest
/// modules in order of increasing estimate. The recommendation comes from exact values only.
pub fn screen_then_exact(
    what: &MrcInputs,
    modules: &[(usize, ModuleInfo)],
    screen: &ScreenConfig,
    exact: ExactLowest,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<MrcResult, MrcError> {
    let MrcInputs {
        model,
        adv,
        adv_split,
        cfg,
    } = *what;
    let start = Instant::now();
    let (base_loss, base_acc) = adv.announce_baseline(model, cfg.batch_size, sink)?;
    sink(Event::started_text(
        Stage::Screen,
        format!("{} modules, {ESTIMATE_LABEL}", modules.len()),
    ));
    let screened = estimate(model, adv, modules, base_loss, screen, cancel, sink)?;
    let order = exact_order(&screened, modules, exact);
    if !order.is_empty() {
        sink(Event::started_text(
            Stage::Mrc,
            format!(
                "exact MRC of the {} lowest-estimate modules{}",
                order.len(),
                if cfg.fast { " (fast path)" } else { "" }
            ),
        ));
    }
    let scorer = Scorer {
        model,
        adv,
        baseline: (base_loss, base_acc),
        cfg,
        screened: Some(&screened),
    };
    let mut scores = Vec::new();
    scorer.score_all(
        &order,
        &mut scores,
        cancel,
        sink,
        |_| Ok::<(), MrcError>(()),
    )?;
    let on = MeasuredOn {
        split: adv_split,
        n: adv.n,
        baseline: (base_loss, base_acc),
    };
    Ok(assemble(
        scores,
        &screened,
        exact,
        cfg,
        &on,
        start.elapsed().as_secs_f64(),
    ))
}

/// The modules that get exact MRC, lowest estimate first.
pub fn exact_order(
    screened: &Screened,
    modules: &[(usize, ModuleInfo)],
    exact: ExactLowest,
) -> Vec<(usize, ModuleInfo)> {
    let k = exact.count(screened.estimates.len());
    screened
        .by_estimate()
        .into_iter()
        .take(k)
        .filter_map(|e| modules.iter().find(|(_, m)| m.name == e.name).cloned())
        .collect()
}

/// The result of screening plus exact MRC of some modules: exact scores sorted and the
/// lowest recommended (as `finish`), the rest listed as estimates, and the rank agreement
/// when every screened module is exact.
pub fn assemble(
    mut scores: Vec<ModuleScore>,
    screened: &Screened,
    exact: ExactLowest,
    cfg: &MrcConfig,
    on: &MeasuredOn,
    seconds: f64,
) -> MrcResult {
    for s in &mut scores {
        attach(s, screened);
    }
    let estimated_only: Vec<ModuleEstimate> = screened
        .by_estimate()
        .into_iter()
        .filter(|e| !scores.iter().any(|s| s.name == e.name))
        .cloned()
        .collect();
    let all_exact = estimated_only.is_empty() && !scores.is_empty();
    let mut result = finish(scores, cfg, on, seconds);
    let (mut rho, mut rho_step, mut lowest) = (None, None, None);
    if all_exact {
        let mrc: Vec<f64> = result.modules.iter().map(|m| m.mrc).collect();
        let est: Vec<f64> = result
            .modules
            .iter()
            .map(|m| m.estimate.unwrap_or(f64::NAN))
            .collect();
        rho = spearman(&est, &mrc);
        let steps: Option<Vec<f64>> = result.modules.iter().map(|m| m.estimate_step).collect();
        rho_step = steps.and_then(|s| spearman(&s, &mrc));
        lowest = screened
            .by_estimate()
            .first()
            .map(|e| e.name == result.recommended);
    }
    result.estimated_only = estimated_only;
    result.screen = Some(ScreenSummary {
        method: screened.method.clone(),
        label: ESTIMATE_LABEL.into(),
        seconds: screened.seconds,
        exact_lowest: exact.text(),
        spearman_vs_exact: rho,
        spearman_step_vs_exact: rho_step,
        lowest_matches: lowest,
    });
    result
}

/// Ranks from 1, ties sharing the average of the ranks they span.
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| criticality_cmp(v[a], v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) hold equal values: ranks i+1..=j+1, averaged.
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's ρ (Pearson correlation of average ranks). `None` for fewer than two pairs,
/// lengths that differ, a non-finite value, or a constant side (ρ is undefined then).
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 || a.iter().chain(b).any(|v| !v.is_finite()) {
        return None;
    }
    let (ra, rb) = (average_ranks(a), average_ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa <= 0.0 || sbb <= 0.0 {
        return None;
    }
    Some(sab / (saa * sbb).sqrt())
}
