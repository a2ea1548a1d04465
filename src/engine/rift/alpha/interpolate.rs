//! Interpolation between the AT and fine-tuned weights (SPEC.md §3):
//!   θ(α) = (1 − α)·θ_AT + α·θ_FT
//! over every floating-point state entry (weights and BatchNorm statistics); integer
//! counters (`num_batches_tracked`) are carried from the nearer endpoint. α = 0 and α = 1
//! copy the endpoints exactly. Each α is evaluated for clean and robust accuracy with the
//! same attack seed, and α is chosen by the paper's rule: the largest clean-accuracy gain
//! whose robust accuracy is at most `tolerance` points below α = 0.
use crate::engine::attack::{AttackError, PgdConfig};
use crate::engine::checkpoint::RawTensor;
use crate::engine::data::ImageSet;
use crate::engine::eval::{evaluate, EvalPlan};
use crate::engine::models::file_layout::{in_rift_layout, FileLayout};
use crate::engine::models::Model;
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::rift::mrc::results::{InterpolationResult, SweepPoint};
use crate::engine::tensors::{to_raw, to_tensor};
use crate::engine::CancelFlag;
use std::time::Instant;
use tch::Tensor;

#[derive(Debug, thiserror::Error)]
pub enum InterpolateError {
    #[error("the fine-tuned weights do not match the AT model: {0}")]
    Mismatch(String),
    #[error("α must lie in [0, 1], got {0}")]
    BadAlpha(f64),
    #[error(transparent)]
    Attack(#[from] AttackError),
    #[error("libtorch error during interpolation: {0}")]
    Torch(#[from] tch::TchError),
}

/// The two endpoints, resident on the model's device, in the model's key order, and the
/// layout of the AT model's file (`file_state_at` writes in it).
pub struct Endpoints {
    keys: Vec<String>,
    at: Vec<Tensor>,
    ft: Vec<Tensor>,
    layout: Option<FileLayout>,
}

impl Endpoints {
    /// From the AT model's current state and a fine-tuned state with the same keys/shapes
    /// (in rift's layout or the AT file's).
    pub fn new(
        model: &Model,
        finetuned: &[(String, RawTensor)],
    ) -> Result<Endpoints, InterpolateError> {
        let finetuned = &*in_rift_layout(finetuned);
        let vars = model.var_store().variables();
        let mut at = Vec::new();
        let mut ft = Vec::new();
        for k in model.keys() {
            let a = &vars[k];
            let f = finetuned
                .iter()
                .find(|(name, _)| name == k)
                .ok_or_else(|| {
                    InterpolateError::Mismatch(format!(
                        "key `{k}` is missing from the fine-tuned weights"
                    ))
                })?;
            let f = to_tensor(&f.1)?
                .f_to_kind(a.kind())?
                .f_to_device(model.device())?;
            if f.size() != a.size() {
                return Err(InterpolateError::Mismatch(format!(
                    "`{k}` has shape {:?} there but {:?} in the AT model",
                    f.size(),
                    a.size()
                )));
            }
            at.push(tch::no_grad(|| a.copy()));
            ft.push(f);
        }
        if finetuned.len() != model.keys().len() {
            return Err(InterpolateError::Mismatch(format!(
                "{} keys there, {} in the AT model",
                finetuned.len(),
                model.keys().len()
            )));
        }
        Ok(Endpoints {
            keys: model.keys().to_vec(),
            at,
            ft,
            layout: model.file_layout().cloned(),
        })
    }

    /// A copy on `device` (for a model of the same checkpoint there).
    pub fn to_device(&self, device: tch::Device) -> Result<Endpoints, tch::TchError> {
        let copy = |ts: &[Tensor]| -> Result<Vec<Tensor>, tch::TchError> {
            ts.iter().map(|t| t.f_to_device(device)).collect()
        };
        Ok(Endpoints {
            keys: self.keys.clone(),
            at: copy(&self.at)?,
            ft: copy(&self.ft)?,
            layout: self.layout.clone(),
        })
    }

    /// Loads θ(α) into the model.
    pub fn apply(&self, model: &Model, alpha: f64) -> Result<(), InterpolateError> {
        let vars = model.var_store().variables();
        self.each_at(alpha, |k, value| {
            vars[k].shallow_clone().f_copy_(&value)?;
            Ok(())
        })
    }

    /// θ(α) as a state (the model's keys and order), computed from the endpoints alone:
    /// the model is not touched, so this may run while a stage is using it (the explorer
    /// writes an accepted α's weights during a running job). Equal to `apply` followed by
    /// `Model::state`.
    pub fn state_at(&self, alpha: f64) -> Result<Vec<(String, RawTensor)>, InterpolateError> {
        let mut out = Vec::with_capacity(self.keys.len());
        self.each_at(alpha, |k, value| {
            out.push((k.to_string(), to_raw(&value)?));
            Ok(())
        })?;
        Ok(out)
    }

    /// `state_at` in the layout of the AT model's file (`Model::file_state`): what rift
    /// writes for PyTorch to load.
    pub fn file_state_at(&self, alpha: f64) -> Result<Vec<(String, RawTensor)>, InterpolateError> {
        let state = self.state_at(alpha)?;
        Ok(match &self.layout {
            Some(layout) => layout.write_back(state),
            None => state,
        })
    }

    /// Hands each key's θ(α) = (1 − α)·AT + α·FT to `take` (integer buffers such as batch
    /// counts take the nearer endpoint).
    fn each_at(
        &self,
        alpha: f64,
        mut take: impl FnMut(&str, Tensor) -> Result<(), tch::TchError>,
    ) -> Result<(), InterpolateError> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(InterpolateError::BadAlpha(alpha));
        }
        tch::no_grad(|| -> Result<(), tch::TchError> {
            for ((k, a), f) in self.keys.iter().zip(&self.at).zip(&self.ft) {
                let value = if alpha == 0.0 || (!a.is_floating_point() && alpha < 0.5) {
                    a.shallow_clone()
                } else if alpha == 1.0 || !a.is_floating_point() {
                    f.shallow_clone()
                } else {
                    a.f_mul_scalar(1.0 - alpha)?
                        .f_add(&f.f_mul_scalar(alpha)?)?
                };
                take(k, value)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// A second handle on the same endpoint tensors (no copy; neither handle changes them).
    pub fn share(&self) -> Endpoints {
        let share = |ts: &[Tensor]| ts.iter().map(Tensor::shallow_clone).collect();
        Endpoints {
            keys: self.keys.clone(),
            at: share(&self.at),
            ft: share(&self.ft),
            layout: self.layout.clone(),
        }
    }
}

/// The rule of SPEC.md §3: among points whose robust accuracy is at most `tolerance`
/// points below α = 0, the one with the largest clean accuracy (smallest α on ties); α = 0
/// when none gains.
pub fn choose_alpha(points: &[SweepPoint], tolerance: f64) -> f64 {
    let Some(base) = points.iter().find(|p| p.alpha == 0.0) else {
        return 0.0;
    };
    let mut best = base;
    for p in points {
        let admissible = p.robust_acc >= base.robust_acc - tolerance - 1e-9;
        if admissible
            && (p.clean_acc > best.clean_acc
                || (p.clean_acc == best.clean_acc && p.alpha < best.alpha))
        {
            best = p;
        }
    }
    best.alpha
}

/// `start:stop:step` (inclusive of stop, within rounding) or a comma list.
pub fn parse_alphas(s: &str) -> Result<Vec<f64>, String> {
    let bad = || {
        format!(
            "`{s}` is not an α grid: use start:stop:step (e.g. 0:1:0.1) or a list (0,0.5,0.8,1)"
        )
    };
    let mut v: Vec<f64> = if s.contains(':') {
        let parts: Vec<f64> = s
            .split(':')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let [a, b, step] = parts[..] else {
            return Err(bad());
        };
        if step <= 0.0 || b < a {
            return Err(bad());
        }
        let n = ((b - a) / step + 1e-9).floor() as usize;
        (0..=n)
            .map(|i| ((a + step * i as f64) * 1e9).round() / 1e9)
            .collect()
    } else {
        s.split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?
    };
    if v.iter().any(|a| !(0.0..=1.0).contains(a)) {
        return Err(format!("every α must lie in [0, 1]: `{s}`"));
    }
    if !v.contains(&0.0) {
        v.push(0.0); // the AT baseline the rule compares against
    }
    v.sort_by(f64::total_cmp);
    v.dedup();
    Ok(v)
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepConfig {
    pub alphas: Vec<f64>,
    pub refine: usize,
    pub tolerance: f64,
    pub attack: PgdConfig,
    pub limit: Option<usize>,
    pub batch_size: usize,
    pub seed: u64,
}

impl SweepConfig {
    /// How each α is evaluated (the baseline uses the same plan: it is the α = 0 point).
    pub fn eval_plan(&self) -> EvalPlan<'_> {
        EvalPlan {
            attack: Some(&self.attack),
            seed: self.seed,
            limit: self.limit,
            batch_size: self.batch_size,
        }
    }
}

/// Evaluates one α (random starts keyed by sample, so every α faces the same ones).
pub fn evaluate_alpha(
    model: &Model,
    ends: &Endpoints,
    alpha: f64,
    test: &ImageSet,
    cfg: &SweepConfig,
    cancel: &CancelFlag,
    batch_done: &mut dyn FnMut(),
) -> Result<SweepPoint, InterpolateError> {
    ends.apply(model, alpha)?;
    let r = evaluate(model, test, &cfg.eval_plan(), cancel, &mut |_, _| {
        batch_done()
    })?;
    Ok(SweepPoint {
        alpha,
        clean_acc: r.clean_acc,
        robust_acc: r.robust_acc.unwrap_or(0.0),
        n: r.n,
    })
}

/// Midpoints between the current choice and its neighbours on the grid.
pub(crate) fn refinement(points: &[SweepPoint], chosen: f64) -> Vec<f64> {
    let alphas: Vec<f64> = points.iter().map(|p| p.alpha).collect();
    let i = alphas.iter().position(|&a| a == chosen).unwrap_or(0);
    let mut out = Vec::new();
    // Rounded to 1e-9 so grid values print as typed (0.65, not 0.6499999999999999).
    let mid = |a: f64| ((a + chosen) / 2.0 * 1e9).round() / 1e9;
    if i > 0 {
        out.push(mid(alphas[i - 1]));
    }
    if i + 1 < alphas.len() {
        out.push(mid(alphas[i + 1]));
    }
    out.retain(|a| !alphas.iter().any(|b| (a - b).abs() < 1e-9));
    out
}

/// What a sweep round's evaluator reports: a measured point, or one more batch of a
/// point done (`Event::Batch`: one α point of a large model takes minutes, and the
/// explorer's worker serves `s` and `a` at each event, so they wait a batch, not a point).
pub(crate) enum SweepStep {
    Point(SweepPoint),
    Batch,
}

/// The rounds of a sweep, whoever evaluates them: the grid (less the points already in
/// `known`, emitted as they are), then up to `cfg.refine` rounds of midpoints around the
/// current choice. `evaluate(alphas, emit)` measures one round's α and hands each point to
/// `emit` (`SweepStep::Point`), in any order, and may report its batches too. Returns the points sorted by α and the refinement rounds run.
pub(crate) fn sweep_rounds<E>(
    cfg: &SweepConfig,
    known: &[SweepPoint],
    sink: Sink,
    mut evaluate: impl FnMut(&[f64], &mut dyn FnMut(SweepStep)) -> Result<(), E>,
) -> Result<(Vec<SweepPoint>, usize), E> {
    let (mut points, mut todo) = (Vec::new(), Vec::new());
    for &alpha in &cfg.alphas {
        match known.iter().find(|p| p.alpha == alpha) {
            Some(p) => {
                sink(Event::SweepPoint { point: p.clone() });
                points.push(p.clone());
            }
            None => todo.push(alpha),
        }
    }
    let total_hint = cfg.alphas.len() + 2 * cfg.refine;
    let mut round = 0;
    loop {
        evaluate(&todo, &mut |step| match step {
            SweepStep::Point(p) => {
                sink(Event::SweepPoint { point: p.clone() });
                points.push(p);
                sink(Event::Progress {
                    stage: Stage::Interpolate,
                    done: points.len(),
                    total: total_hint.max(points.len()),
                });
            }
            SweepStep::Batch => sink(Event::Batch {
                stage: Stage::Interpolate,
            }),
        })?;
        points.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
        if round == cfg.refine {
            break;
        }
        todo = refinement(&points, choose_alpha(&points, cfg.tolerance));
        if todo.is_empty() {
            break;
        }
        round += 1;
    }
    Ok((points, round))
}

/// What every α sweep works on (the grid, `--search` and `--devices` alike): the
/// endpoints, the test set, the sweep's settings and the points already known.
#[derive(Clone, Copy)]
pub struct SweepTask<'a> {
    pub ends: &'a Endpoints,
    pub test: &'a ImageSet,
    pub cfg: &'a SweepConfig,
    /// Points already measured with the same attack, seed and samples: not evaluated again.
    pub known: &'a [SweepPoint],
}

/// The sweep over the grid plus `refine` rounds of midpoints around the current choice.
/// `known` holds points already measured with the same attack, seed and samples (e.g.
/// the AT baseline as α = 0), which are not evaluated again. Leaves the model at the
/// chosen α.
pub fn sweep(
    model: &Model,
    task: &SweepTask,
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
    let (points, round) = sweep_rounds(cfg, known, sink, |alphas, emit| {
        for &alpha in alphas {
            let batch = &mut || emit(SweepStep::Batch);
            let p = evaluate_alpha(model, ends, alpha, test, cfg, cancel, batch)?;
            emit(SweepStep::Point(p));
        }
        Ok::<(), InterpolateError>(())
    })?;
    let chosen_alpha = choose_alpha(&points, cfg.tolerance);
    ends.apply(model, chosen_alpha)?;
    Ok(InterpolationResult {
        points,
        chosen_alpha,
        tolerance: cfg.tolerance,
        refine_rounds: round,
        seconds: start.elapsed().as_secs_f64(),
        search: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(alpha: f64, clean: f64, robust: f64) -> SweepPoint {
        SweepPoint {
            alpha,
            clean_acc: clean,
            robust_acc: robust,
            n: 100,
        }
    }

    #[test]
    fn rule_takes_largest_gain_within_tolerance() {
        let pts = vec![
            p(0.0, 80.0, 50.0),
            p(0.5, 82.0, 49.95),
            p(0.8, 83.0, 49.0),
            p(1.0, 84.0, 45.0),
        ];
        assert_eq!(choose_alpha(&pts, 0.1), 0.5);
        assert_eq!(choose_alpha(&pts, 1.0), 0.8);
        assert_eq!(
            choose_alpha(&[p(0.0, 80.0, 50.0), p(1.0, 79.0, 51.0)], 0.1),
            0.0
        );
    }

    #[test]
    fn grids() {
        let g = parse_alphas("0:1:0.1").unwrap();
        assert_eq!(g.len(), 11);
        assert_eq!(g[3], 0.3);
        assert_eq!(parse_alphas("0.5,1").unwrap(), vec![0.0, 0.5, 1.0]);
        assert!(parse_alphas("0:2:0.5").is_err());
        assert!(parse_alphas("x").is_err());
    }

    #[test]
    fn refinement_is_around_the_choice() {
        let pts = vec![p(0.0, 80.0, 50.0), p(0.5, 82.0, 50.0), p(1.0, 79.0, 40.0)];
        assert_eq!(refinement(&pts, 0.5), vec![0.25, 0.75]);
        let grid = vec![p(0.6, 80.0, 50.0), p(0.7, 82.0, 50.0)];
        assert_eq!(refinement(&grid, 0.7), vec![0.65]);
    }
}
