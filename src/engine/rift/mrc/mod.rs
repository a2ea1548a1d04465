//! Module robust criticality (SPEC.md §1). For each module, starting from the AT weights
//! with only its weight trainable and BatchNorm in eval mode: gradient *ascent* on the
//! cross-entropy over the fixed adversarial set (SGD, lr 1, batch 512, shuffled), the
//! weight change projected back onto the ε-sphere (relative Frobenius norm) after each
//! epoch, then loss and accuracy on the whole set. MRC = largest end-of-epoch loss −
//! baseline loss ("code" variant, the published default) or the loss at the first epoch
//! whose update reached the ε-ball ("paper" variant, Algorithm 1).
//!
//! The fast path caches, once per module, everything upstream of the module (which is
//! frozen, with eval-mode BatchNorm, so it never changes) and runs only the suffix: the
//! same numbers for far less work. The walk through the prefix is shared between modules
//! (`prefix_walk.rs`), so a whole run computes the frozen prefix about once, and so is
//! the first ascent step, the same for every module up to which weight it moves
//! (`first_steps.rs`).
pub mod adv_set;
pub mod first_steps;
pub mod multi_device;
pub mod partial;
pub mod prefix_walk;
pub mod results;
pub mod scoring;
pub mod screen;
pub mod shard;
pub mod stage;
use crate::engine::models::{Model, ModuleInfo};
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::rift::mrc::adv_set::TensorSet;
use crate::engine::rift::mrc::first_steps::FirstSteps;
use crate::engine::rift::mrc::prefix_walk::PrefixWalk;
use crate::engine::rift::mrc::results::{criticality_cmp, ModuleScore, MrcResult};
use crate::engine::tensors::mean_cross_entropy;
use crate::engine::CancelFlag;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Max end-of-epoch loss over all epochs (the published code).
    Code,
    /// Stop at the first epoch that reaches the ε-ball (the paper's Algorithm 1).
    Paper,
}

impl Variant {
    pub fn parse(s: &str) -> Result<Variant, String> {
        match s.to_ascii_lowercase().as_str() {
            "code" => Ok(Variant::Code),
            "paper" => Ok(Variant::Paper),
            _ => Err(format!("unknown MRC variant `{s}`; expected code or paper")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Variant::Code => "code",
            Variant::Paper => "paper",
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MrcConfig {
    pub epsilon: f64,
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub variant: Variant,
    pub fast: bool,
    pub seed: u64,
    /// With `fast`: the most memory (MiB) one module's cached prefix activations may take;
    /// a module whose cache would need more recomputes its prefix each batch instead (the
    /// same values, more work). None: no limit.
    pub cache_budget_mib: Option<f64>,
}

impl Default for MrcConfig {
    fn default() -> Self {
        MrcConfig {
            epsilon: 0.1,
            epochs: 10,
            lr: 1.0,
            batch_size: 512,
            variant: Variant::Code,
            fast: false,
            seed: 0,
            cache_budget_mib: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MrcError {
    #[error("cancelled")]
    Cancelled,
    #[error("`{name}` is not a module of {arch}; its modules are: {valid}")]
    UnknownModule {
        name: String,
        arch: String,
        valid: String,
    },
    #[error("libtorch error during MRC: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Model(#[from] crate::engine::models::ModelError),
}

/// The modules to score: all Conv/Linear modules the forward pass uses, or `only`.
pub fn select_modules(
    model: &Model,
    only: &[String],
) -> Result<Vec<(usize, ModuleInfo)>, MrcError> {
    let all: Vec<(usize, ModuleInfo)> = model.modules().into_iter().enumerate().collect();
    if only.is_empty() {
        return Ok(all);
    }
    only.iter()
        .map(|name| {
            all.iter()
                .find(|(_, m)| &m.name == name)
                .cloned()
                .ok_or_else(|| MrcError::UnknownModule {
                    name: name.clone(),
                    arch: model.spec.name(),
                    valid: all
                        .iter()
                        .map(|(_, m)| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        })
        .collect()
}

/// The ascent's shuffles: every module of a run visits the set in the same orders (common
/// random numbers, from the run's seed alone), so a module's result depends neither on
/// which others ran before it nor on the device or machine that ran it, differences
/// between modules are not blurred by different batch orders, and every module's first
/// step is on the same batch (which the fast path computes once for all: `first_steps.rs`).
/// Returns the generator for the later epochs and the first epoch's order.
pub(crate) fn first_order(seed: u64, n: usize) -> (rand_chacha::ChaCha8Rng, Vec<i64>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut order: Vec<i64> = (0..n as i64).collect();
    order.shuffle(&mut rng);
    (rng, order)
}

/// What the fast path shares between the modules of one run: the walk through the frozen
/// prefix and the first ascent steps. Unused by the faithful path.
#[derive(Default)]
pub struct FastShared {
    pub walk: PrefixWalk,
    pub first_steps: FirstSteps,
}

/// One module's measurement: the model, the fixed set, the module (and its depth, for
/// the record), the set's loss and accuracy at the AT weights, and the settings.
#[derive(Clone, Copy)]
struct Ascent<'a> {
    model: &'a Model,
    adv: &'a TensorSet,
    depth: usize,
    info: &'a ModuleInfo,
    baseline: (f64, f64),
    cfg: &'a MrcConfig,
}

/// Scores one module (`(depth, info)`); the model's weights are restored before returning
/// (also on error). `shared` is what the fast path shares between modules (unused by the
/// faithful path); pass the same one for every module of a run.
#[allow(clippy::too_many_arguments)]
pub fn score_module(
    model: &Model,
    adv: &TensorSet,
    (depth, info): (usize, &ModuleInfo),
    baseline: (f64, f64),
    cfg: &MrcConfig,
    shared: &mut FastShared,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<ModuleScore, MrcError> {
    let key = format!("{}.weight", info.name);
    let w = model.var(&key).ok_or_else(|| MrcError::UnknownModule {
        name: info.name.clone(),
        arch: model.spec.name(),
        valid: String::new(),
    })?;
    let w0 = tch::no_grad(|| w.f_detach().map(|d| d.copy()))?;
    let job = Ascent {
        model,
        adv,
        depth,
        info,
        baseline,
        cfg,
    };
    let result = ascend(&job, &w, &w0, shared, cancel, sink);
    tch::no_grad(|| -> Result<(), tch::TchError> {
        let mut w = w.shallow_clone();
        w.f_copy_(&w0)?;
        let _ = w.set_requires_grad(false);
        Ok(())
    })?;
    result
}

/// The ascent of `w` (saved as `w0`) and the module's score.
fn ascend(
    job: &Ascent,
    w: &Tensor,
    w0: &Tensor,
    shared: &mut FastShared,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<ModuleScore, MrcError> {
    let &Ascent {
        model,
        adv,
        depth,
        info,
        baseline: (base_loss, base_acc),
        cfg,
    } = job;
    let device = model.device();
    let module = info.name.as_str();
    let fit = if cfg.fast {
        cache_fits(model, adv, module, cfg, sink)?
    } else {
        Fit::Neither
    };
    let cache = match fit {
        Fit::Neither => None,
        fit => Some(shared.walk.cache_for(
            model,
            adv,
            module,
            cfg.batch_size,
            fit == Fit::WithBoundary,
        )?),
    };
    let logits = |idx: &Tensor| -> Result<Tensor, tch::TchError> {
        match &cache {
            Some(c) => {
                let parts = c
                    .iter()
                    .map(|t| t.f_index_select(0, idx))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(model.suffix_logits(module, &parts))
            }
            None => Ok(model.forward(&adv.x.f_index_select(0, idx)?, false)),
        }
    };
    let w0_norm = w0.f_norm()?.f_double_value(&[])?;
    let (mut rng, mut order) = first_order(cfg.seed, adv.n);
    let (mut losses, mut accs) = (Vec::new(), Vec::new());
    let _ = w.set_requires_grad(true);
    let bs = cfg.batch_size.max(1);
    // The first step's gradient when the fast path computed it with every other module's.
    let mut first_grad = shared.first_steps.take(module);
    // Mean loss, with its graph, of the next epoch's first batch (see below).
    let mut carried: Option<Tensor> = None;
    for epoch in 0..cfg.epochs {
        for (b, chunk) in order.chunks(bs).enumerate() {
            if cancel.is_cancelled() {
                return Err(MrcError::Cancelled);
            }
            let grad = match (first_grad.take(), carried.take()) {
                (Some(g), _) => g,
                (None, Some(l)) if b == 0 => {
                    Tensor::f_run_backward(&[&l], &[w], false, false)?.remove(0)
                }
                _ => {
                    let idx = Tensor::f_from_slice(chunk)?.f_to_device(device)?;
                    let y = adv.y.f_index_select(0, &idx)?;
                    let loss = mean_cross_entropy(&logits(&idx)?, &y)?;
                    Tensor::f_run_backward(&[&loss], &[w], false, false)?.remove(0)
                }
            };
            tch::no_grad(|| -> Result<(), tch::TchError> {
                // SGD on −loss with lr: w ← w + lr·∇loss.
                let _ = w.shallow_clone().f_add_(&grad.f_mul_scalar(cfg.lr)?)?;
                Ok(())
            })?;
            sink(Event::Batch { stage: Stage::Mrc });
        }
        // Project the change back onto the ε-sphere when it left the ball.
        let reached = tch::no_grad(|| -> Result<bool, tch::TchError> {
            let diff = w.f_sub(w0)?;
            let ratio = diff.f_norm()?.f_double_value(&[])? / w0_norm.max(f64::MIN_POSITIVE);
            if ratio > cfg.epsilon {
                let scaled = diff.f_mul_scalar(cfg.epsilon / ratio)?;
                w.shallow_clone().f_copy_(&w0.f_add(&scaled)?)?;
            }
            Ok(ratio > cfg.epsilon)
        })?;
        let more = epoch + 1 < cfg.epochs && !(cfg.variant == Variant::Paper && reached);
        if more {
            // The next epoch's order, drawn now rather than at its start (the same draws).
            order.shuffle(&mut rng);
        }
        // Fused evaluation (exact): the whole set, in the next epoch's order; its first
        // batch keeps its graph and is that epoch's first step — same weights, same
        // samples, so the same loss and gradient for one forward pass fewer per epoch
        // (a third of the epoch's work when the set fits one batch).
        let (loss, acc, first) = evaluate_fused(&order, bs, more, device, &adv.y, &logits)?;
        carried = first;
        sink(Event::ModuleEpoch {
            module: module.to_string(),
            epoch,
            loss,
            acc,
        });
        losses.push(loss);
        accs.push(acc);
        if cfg.variant == Variant::Paper && reached {
            break;
        }
    }
    let pick = match cfg.variant {
        Variant::Code => worst_epoch(&losses),
        Variant::Paper => losses.len().saturating_sub(1),
    };
    let (loss, acc) = (
        losses.get(pick).copied().unwrap_or(base_loss),
        accs.get(pick).copied().unwrap_or(base_acc),
    );
    Ok(ModuleScore {
        name: info.name.clone(),
        depth,
        kind: info.kind.clone(),
        shape: info.shape.clone(),
        params: info.params,
        mrc: loss - base_loss,
        robust_acc_drop: base_acc - acc,
        epoch_losses: losses,
        epoch_accs: accs,
        recommended: false,
        estimate: None,
        estimate_step: None,
    })
}

/// The epoch of the highest loss (the first of equals). A NaN epoch loss is picked: the
/// ascent diverged, and its NaN score must surface (sorted as most critical) rather than
/// be skipped by the comparison, which a NaN never wins.
fn worst_epoch(losses: &[f64]) -> usize {
    if let Some(i) = losses.iter().position(|l| l.is_nan()) {
        return i;
    }
    losses
        .iter()
        .enumerate()
        .fold(0, |best, (i, &l)| if l > losses[best] { i } else { best })
}

/// Loss and accuracy (percent) over the whole set, visited in `order`; with `keep_first`
/// the first batch is computed with its graph and its mean loss returned as well.
fn evaluate_fused(
    order: &[i64],
    batch: usize,
    keep_first: bool,
    device: tch::Device,
    labels: &Tensor,
    logits: &dyn Fn(&Tensor) -> Result<Tensor, tch::TchError>,
) -> Result<(f64, f64, Option<Tensor>), tch::TchError> {
    let (mut loss_sum, mut correct, mut first) = (0.0f64, 0i64, None);
    for (b, chunk) in order.chunks(batch).enumerate() {
        let idx = Tensor::f_from_slice(chunk)?.f_to_device(device)?;
        let y = labels.f_index_select(0, &idx)?;
        let pass = || -> Result<(Tensor, Tensor), tch::TchError> {
            let l = logits(&idx)?;
            let mean = mean_cross_entropy(&l, &y)?;
            Ok((l, mean))
        };
        let (l, mean) = if keep_first && b == 0 {
            pass()?
        } else {
            tch::no_grad(pass)?
        };
        loss_sum += mean.f_double_value(&[])? * chunk.len() as f64;
        correct += tch::no_grad(|| {
            l.f_argmax(-1, false)?
                .f_eq_tensor(&y)?
                .f_sum(Kind::Int64)?
                .f_int64_value(&[])
        })?;
        if keep_first && b == 0 {
            first = Some(mean);
        }
    }
    let n = order.len().max(1) as f64;
    Ok((loss_sum / n, 100.0 * correct as f64 / n, first))
}

/// What the fast path may hold in memory for a module under `--cache-budget`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fit {
    /// Its cache and the shared walk's boundary activations.
    WithBoundary,
    /// Its cache only: the walk restarts from the input for the next module.
    CacheOnly,
    /// Not even its cache: its prefix is recomputed each batch (the faithful forward).
    Neither,
}

/// What of `module`'s fast path fits the budget, measured on one sample (both grow
/// linearly with the set); when not even its cache does, says so once.
fn cache_fits(
    model: &Model,
    adv: &TensorSet,
    module: &str,
    cfg: &MrcConfig,
    sink: Sink,
) -> Result<Fit, MrcError> {
    let Some(budget) = cfg.cache_budget_mib else {
        return Ok(Fit::WithBoundary);
    };
    let one = model.prefix_cache(&adv.x.f_narrow(0, 0, 1)?, module)?;
    let per_sample: usize = one
        .iter()
        .map(|t| t.numel() * t.kind().elt_size_in_bytes())
        .sum();
    let mib = |bytes: usize| (bytes * adv.n) as f64 / (1024.0 * 1024.0);
    let need = mib(per_sample);
    let boundary = mib(PrefixWalk::boundary_bytes_per_sample(model, adv, module)?);
    if need + boundary <= budget {
        return Ok(Fit::WithBoundary);
    }
    if need <= budget {
        return Ok(Fit::CacheOnly);
    }
    sink(Event::Warning {
        message: format!(
            "{module}: its cached activations would take {need:.1} MiB (budget {budget} MiB); recomputing its prefix each batch instead (same values, slower)"
        ),
    });
    Ok(Fit::Neither)
}

/// What an MRC result records about the adversarial set it measured on.
#[derive(Clone, Copy, Debug)]
pub struct MeasuredOn<'a> {
    /// The split the set came from.
    pub split: &'a str,
    pub n: usize,
    /// Loss and accuracy (percent) at the AT weights.
    pub baseline: (f64, f64),
}

/// Sorts scores by MRC (ties by depth) and marks the lowest as recommended.
pub fn finish(
    mut scores: Vec<ModuleScore>,
    cfg: &MrcConfig,
    on: &MeasuredOn,
    seconds: f64,
) -> MrcResult {
    let MeasuredOn {
        split: adv_split,
        n: adv_n,
        baseline: (baseline_loss, baseline_acc),
    } = *on;
    scores.sort_by(|a, b| criticality_cmp(a.mrc, b.mrc).then(a.depth.cmp(&b.depth)));
    // A NaN score (a diverged ascent) sorts last and is never recommended.
    for (i, s) in scores.iter_mut().enumerate() {
        s.recommended = i == 0 && !s.mrc.is_nan();
    }
    MrcResult {
        variant: cfg.variant.name().into(),
        epsilon: cfg.epsilon,
        epochs: cfg.epochs,
        lr: cfg.lr,
        batch_size: cfg.batch_size,
        adv_split: adv_split.into(),
        adv_n,
        fast: cfg.fast,
        baseline_loss,
        baseline_acc,
        recommended: scores
            .first()
            .filter(|s| !s.mrc.is_nan())
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        modules: scores,
        seconds,
        estimated_only: Vec::new(),
        screen: None,
    }
}

/// Kind of the set's labels (int64), for callers building sets by hand.
pub const LABEL_KIND: Kind = Kind::Int64;

#[cfg(test)]
mod nan_tests {
    const TEST_SET: MeasuredOn = MeasuredOn {
        split: "test",
        n: 8,
        baseline: (1.0, 50.0),
    };
    use super::*;

    fn score(name: &str, depth: usize, mrc: f64) -> ModuleScore {
        ModuleScore {
            name: name.into(),
            depth,
            kind: "Conv2d".into(),
            shape: vec![8, 8, 3, 3],
            params: 576,
            mrc,
            robust_acc_drop: 0.0,
            epoch_losses: vec![mrc],
            epoch_accs: vec![0.0],
            recommended: false,
            estimate: None,
            estimate_step: None,
        }
    }

    /// A diverged module (NaN MRC, of either sign bit) sorts as the most critical and is
    /// never recommended; with every score NaN nothing is.
    #[test]
    fn a_nan_score_is_never_recommended() {
        let negative_nan = f64::NAN.copysign(-1.0);
        assert!(negative_nan.is_sign_negative() && negative_nan.is_nan());
        let scores = vec![
            score("a", 0, negative_nan),
            score("b", 1, 0.3),
            score("c", 2, f64::NAN),
            score("d", 3, f64::INFINITY),
            score("e", 4, -0.1),
        ];
        let r = finish(scores, &MrcConfig::default(), &TEST_SET, 0.0);
        let order: Vec<&str> = r.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(&order[..3], ["e", "b", "d"]);
        assert_eq!(r.recommended, "e");
        assert!(r.modules[0].recommended);
        assert!(r.modules.iter().skip(1).all(|m| !m.recommended));

        let all_nan = vec![score("a", 0, f64::NAN), score("b", 1, negative_nan)];
        let r = finish(all_nan, &MrcConfig::default(), &TEST_SET, 0.0);
        assert_eq!(r.recommended, "");
        assert!(r.modules.iter().all(|m| !m.recommended));
    }

    #[test]
    fn a_nan_epoch_loss_is_the_worst_epoch() {
        assert_eq!(worst_epoch(&[0.5, 0.9, 0.7]), 1);
        assert_eq!(worst_epoch(&[0.5, f64::NAN, 0.7]), 1);
        assert_eq!(worst_epoch(&[f64::NAN, 0.9]), 0);
        assert_eq!(worst_epoch(&[]), 0);
    }
}
