//! Fine-tuning only the chosen module(s) (SPEC.md §2): SGD with momentum and weight decay
//! on clean, augmented training data, the model in train mode so every BatchNorm's
//! running statistics update (unless frozen), the learning rate ×0.1 at the milestones,
//! and the epoch with the best selection accuracy kept — on a held-out validation part
//! of the training split by default, on the test split to reproduce the published code.
pub mod finetuned_file;
pub mod optim;
pub mod progress;
use crate::engine::batches::{images_to_tensor, range_batch};
use crate::engine::data::{gather_batch, shuffled_batches, Augmenter, ImageSet};
use crate::engine::models::Model;
use crate::engine::rift::events::{Event, Sink, Stage, StageAbout};
use crate::engine::rift::finetune::optim::{multistep_lr, Sgd};
use crate::engine::rift::finetune::progress::{Found, Identity, ProgressError, ProgressRef};
use crate::engine::rift::mrc::adv_set::holdout_split;
use crate::engine::rift::mrc::results::{FinetuneEpoch, FinetuneResult};
use crate::engine::tensors::mean_cross_entropy;
use crate::engine::CancelFlag;
use rand::SeedableRng;
use std::path::Path;
use std::time::Instant;
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectOn {
    Val,
    Test,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinetuneConfig {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub milestones: Vec<usize>,
    pub select_on: SelectOn,
    pub freeze_bn_stats: bool,
    pub seed: u64,
    /// Evaluate test accuracy on the first N test samples only.
    pub test_limit: Option<usize>,
    pub eval_batch_size: usize,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            lr: 0.001,
            momentum: 0.9,
            weight_decay: 5e-4,
            batch_size: 128,
            epochs: 10,
            milestones: vec![5],
            select_on: SelectOn::Val,
            freeze_bn_stats: false,
            seed: 0,
            test_limit: None,
            eval_batch_size: 256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FinetuneError {
    #[error("cancelled")]
    Cancelled,
    #[error("`{name}` is not a module of {arch}; its modules are: {valid}")]
    UnknownModule {
        name: String,
        arch: String,
        valid: String,
    },
    #[error("--layer names `{0}` more than once; each module is trained once (a repeat would train the same weights twice per step: double learning rate and weight decay)")]
    RepeatedModule(String),
    #[error("libtorch error during fine-tuning: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Progress(#[from] ProgressError),
}

/// Refuses a module named twice in the modules to fine-tune.
pub fn check_distinct_layers(layers: &[String]) -> Result<(), FinetuneError> {
    for (i, layer) in layers.iter().enumerate() {
        if layers[..i].contains(layer) {
            return Err(FinetuneError::RepeatedModule(layer.clone()));
        }
    }
    Ok(())
}

/// Clean accuracy (percent) of `model` (eval mode) on `indices` of `set` (None = all).
pub fn clean_accuracy(
    model: &Model,
    set: &ImageSet,
    indices: Option<&[usize]>,
    limit: Option<usize>,
    batch: usize,
) -> Result<f64, tch::TchError> {
    tch::no_grad(|| {
        let mut correct = 0i64;
        let mut n = 0usize;
        let mut buf = Vec::new();
        let shape = |k: usize| {
            [
                k as i64,
                set.channels as i64,
                set.height as i64,
                set.width as i64,
            ]
        };
        match indices {
            Some(idx) => {
                for chunk in idx.chunks(batch.max(1)) {
                    gather_batch(set, chunk, &mut buf);
                    let labels: Vec<i64> = chunk.iter().map(|&i| set.labels[i]).collect();
                    let (x, y) =
                        images_to_tensor(&buf, &shape(chunk.len()), &labels, model.device())?;
                    correct += model
                        .forward(&x, false)
                        .f_argmax(-1, false)?
                        .f_eq_tensor(&y)?
                        .f_sum(Kind::Int64)?
                        .f_int64_value(&[])?;
                    n += chunk.len();
                }
            }
            None => {
                let total = limit.map_or(set.n, |l| l.min(set.n));
                let mut i = 0;
                while i < total {
                    let end = (i + batch.max(1)).min(total);
                    let (x, y) = range_batch(set, i, end, model.device())?;
                    correct += model
                        .forward(&x, false)
                        .f_argmax(-1, false)?
                        .f_eq_tensor(&y)?
                        .f_sum(Kind::Int64)?
                        .f_int64_value(&[])?;
                    n += end - i;
                    i = end;
                }
            }
        }
        Ok(100.0 * correct as f64 / n.max(1) as f64)
    })
}

/// A copy of every state tensor, to restore the best epoch.
type Snapshot = Vec<(String, Tensor)>;

fn snapshot(model: &Model) -> Snapshot {
    let vars = model.var_store().variables();
    model
        .keys()
        .iter()
        .map(|k| (k.clone(), tch::no_grad(|| vars[k].copy())))
        .collect()
}

fn restore(model: &Model, snap: &[(String, Tensor)]) -> Result<(), tch::TchError> {
    progress::put_state(model, snap)
}

/// The events of epochs read back from an unfinished run, as they were first sent.
fn replay(log: &[FinetuneEpoch], losses: &[f64], per_epoch: usize, epochs: usize, sink: Sink) {
    for (e, entry) in log.iter().enumerate() {
        let from = (e * per_epoch).min(losses.len());
        let to = ((e + 1) * per_epoch).min(losses.len());
        for (it, &loss) in losses[from..to].iter().enumerate() {
            sink(Event::FinetuneIter {
                epoch: entry.epoch,
                iter: it,
                loss,
                lr: entry.lr,
            });
        }
        sink(Event::Progress {
            stage: Stage::Finetune,
            done: to,
            total: epochs * per_epoch,
        });
        sink(Event::FinetuneEpoch { log: entry.clone() });
    }
}

/// The images fine-tuning reads: the training split (augmented, less the held-out part
/// when selecting on it) and the test split.
#[derive(Clone, Copy)]
pub struct FinetuneData<'a> {
    pub train: &'a ImageSet,
    pub test: &'a ImageSet,
    pub augmenter: &'a Augmenter,
}

/// What fine-tuning trains.
#[derive(Clone, Debug, PartialEq)]
pub enum Trained {
    /// The weight (and bias) of each named Conv/Linear module: RiFT's choice.
    Modules(Vec<String>),
    /// Every parameter of the model, BatchNorm's affine weights included: full
    /// fine-tuning, the WiSE-FT baseline `rift compare` sets against RiFT.
    AllParameters,
}

/// How results and events name `Trained::AllParameters` where they list modules.
pub const ALL_PARAMETERS: &str = "all parameters";

impl Trained {
    /// The names results and events list: the modules, or `ALL_PARAMETERS`.
    pub fn names(&self) -> Vec<String> {
        match self {
            Trained::Modules(m) => m.clone(),
            Trained::AllParameters => vec![ALL_PARAMETERS.to_string()],
        }
    }
}

/// The tensors `what` trains in `model`, checked against its modules.
fn trained_tensors(model: &Model, what: &Trained) -> Result<Vec<Tensor>, FinetuneError> {
    let layers = match what {
        Trained::AllParameters => return Ok(model.parameters()),
        Trained::Modules(layers) => layers,
    };
    check_distinct_layers(layers)?;
    let valid: Vec<String> = model.modules().into_iter().map(|m| m.name).collect();
    let mut params = Vec::new();
    for layer in layers {
        if !valid.contains(layer) {
            return Err(FinetuneError::UnknownModule {
                name: layer.clone(),
                arch: model.spec.name(),
                valid: valid.join(", "),
            });
        }
        params.extend(model.module_params(layer).into_iter().map(|(_, t)| t));
    }
    Ok(params)
}

/// Fine-tunes `what` of `model` in place; on return the model holds the selected epoch
/// (or, after divergence, the best state before it). Emits the stage's start (layers, lr,
/// epochs, the epoch it continues from), each iteration's loss and each epoch's
/// accuracies (those of epochs read back from `progress_file` first, so a loss panel shows
/// the whole run).
///
/// With `progress_file`, every finished epoch is written there (`progress.rs`), and a file
/// left by this same fine-tuning is continued from its last finished epoch: the result
/// equals an uninterrupted run's, bit for bit.
pub fn finetune(
    model: &Model,
    what: &Trained,
    data: FinetuneData,
    cfg: &FinetuneConfig,
    progress_file: Option<&Path>,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<FinetuneResult, FinetuneError> {
    let start = Instant::now();
    let params = trained_tensors(model, what)?;
    let layers = what.names();
    let initial = snapshot(model);
    let id = Identity {
        layers: &layers,
        config: cfg,
        train_n: data.train.n,
    };
    let found = match progress_file {
        Some(path) => progress::resume(path, model, &id)?,
        None => Found::Nothing,
    };
    let resumed = match found {
        Found::Continue(p) => Some(p),
        Found::Nothing => None,
        Found::Other => {
            sink(Event::Warning {
                message: format!(
                    "{} holds an unfinished fine-tuning with other modules or settings; this fine-tuning replaces it",
                    progress_file.map_or(String::new(), |p| p.display().to_string())
                ),
            });
            None
        }
    };
    sink(Event::started(
        Stage::Finetune,
        StageAbout::Finetune {
            layers: layers.clone(),
            lr: cfg.lr,
            epochs: cfg.epochs,
            from_epoch: resumed.as_ref().map_or(0, |p| p.next_epoch),
        },
    ));
    let trained_params: i64 = params.iter().map(|t| t.numel() as i64).sum();
    for p in &params {
        let _ = p.set_requires_grad(true);
    }
    let saving = progress_file.map(|path| (path, &id));
    let result = run(
        model,
        &params,
        data,
        cfg,
        Start {
            initial,
            resumed,
            saving,
        },
        cancel,
        sink,
    );
    for p in &params {
        let _ = p.set_requires_grad(false);
    }
    let (iter_losses, epochs_log, best_epoch, diverged, val_size) = result?;
    Ok(FinetuneResult {
        all_parameters: *what == Trained::AllParameters,
        layers,
        lr: cfg.lr,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
        batch_size: cfg.batch_size,
        epochs: cfg.epochs,
        lr_milestones: cfg.milestones.clone(),
        select_on: match cfg.select_on {
            SelectOn::Val => "val".into(),
            SelectOn::Test => "test".into(),
        },
        val_size,
        freeze_bn_stats: cfg.freeze_bn_stats,
        trained_params,
        iter_losses,
        epochs_log,
        best_epoch,
        diverged,
        seconds: start.elapsed().as_secs_f64(),
    })
}

type RunOutcome = (Vec<f64>, Vec<FinetuneEpoch>, usize, Option<String>, usize);

/// Where the loop starts: the AT state (to fall back on), the finished epochs read back,
/// and where to write each finished epoch.
struct Start<'a> {
    initial: Snapshot,
    resumed: Option<progress::Progress>,
    saving: Option<(&'a Path, &'a Identity<'a>)>,
}

fn run(
    model: &Model,
    params: &[Tensor],
    data: FinetuneData,
    cfg: &FinetuneConfig,
    start: Start,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<RunOutcome, FinetuneError> {
    let FinetuneData {
        train,
        test,
        augmenter,
    } = data;
    let (train_idx, val_idx) = match cfg.select_on {
        SelectOn::Val => holdout_split(train.n),
        SelectOn::Test => ((0..train.n).collect(), Vec::new()),
    };
    let mut opt = Sgd::new(
        params.iter().map(|p| p.shallow_clone()).collect(),
        cfg.lr,
        cfg.momentum,
        cfg.weight_decay,
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let Start {
        initial,
        resumed,
        saving,
    } = start;
    let (mut iter_losses, mut log) = (Vec::new(), Vec::new());
    let mut best: Option<(f64, usize, Snapshot)> = None;
    let mut first_epoch = 0;
    let per_epoch = train_idx.len().div_ceil(cfg.batch_size.max(1));
    if let Some(p) = resumed {
        rng.set_word_pos(p.rng_word_pos);
        opt.set_buffers(p.momentum);
        replay(&p.log, &p.iter_losses, per_epoch, cfg.epochs, sink);
        (iter_losses, log, best, first_epoch) = (p.iter_losses, p.log, p.best, p.next_epoch);
    }
    let shape = |k: usize| {
        [
            k as i64,
            train.channels as i64,
            train.height as i64,
            train.width as i64,
        ]
    };
    let mut diverged = None;
    let mut buf = Vec::new();
    'epochs: for epoch in first_epoch..cfg.epochs {
        opt.lr = multistep_lr(cfg.lr, &cfg.milestones, 0.1, epoch);
        let batches = shuffled_batches(train_idx.len(), cfg.batch_size, &mut rng);
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0i64, 0usize);
        for (it, batch) in batches.iter().enumerate() {
            if cancel.is_cancelled() {
                restore(model, best.as_ref().map_or(&initial, |b| &b.2))?;
                return Err(FinetuneError::Cancelled);
            }
            let indices: Vec<usize> = batch.iter().map(|&i| train_idx[i]).collect();
            augmenter.augment_batch(train, &indices, &mut rng, &mut buf);
            let labels: Vec<i64> = indices.iter().map(|&i| train.labels[i]).collect();
            let (x, y) = images_to_tensor(&buf, &shape(indices.len()), &labels, model.device())?;
            let logits = model.forward(&x, !cfg.freeze_bn_stats);
            let loss = mean_cross_entropy(&logits, &y)?;
            let l = loss.f_double_value(&[])?;
            if !l.is_finite() {
                diverged = Some(format!(
                    "the training loss became {l} at epoch {epoch}, iteration {it} (lr {}); kept the best state before it",
                    opt.lr
                ));
                sink(Event::Warning {
                    message: diverged.clone().unwrap_or_default(),
                });
                break 'epochs;
            }
            opt.zero_grad();
            loss.f_backward()?;
            opt.step()?;
            iter_losses.push(l);
            loss_sum += l * indices.len() as f64;
            correct += logits
                .f_argmax(-1, false)?
                .f_eq_tensor(&y)?
                .f_sum(Kind::Int64)?
                .f_int64_value(&[])?;
            seen += indices.len();
            sink(Event::FinetuneIter {
                epoch,
                iter: it,
                loss: l,
                lr: opt.lr,
            });
            sink(Event::Progress {
                stage: Stage::Finetune,
                done: epoch * batches.len() + it + 1,
                total: cfg.epochs * batches.len(),
            });
        }
        let val_acc = if val_idx.is_empty() {
            None
        } else {
            Some(clean_accuracy(
                model,
                train,
                Some(&val_idx),
                None,
                cfg.eval_batch_size,
            )?)
        };
        let test_acc = Some(clean_accuracy(
            model,
            test,
            None,
            cfg.test_limit,
            cfg.eval_batch_size,
        )?);
        let entry = FinetuneEpoch {
            epoch,
            lr: opt.lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: 100.0 * correct as f64 / seen.max(1) as f64,
            val_acc,
            test_acc,
        };
        log.push(entry.clone());
        let score = match cfg.select_on {
            SelectOn::Val => val_acc,
            SelectOn::Test => test_acc,
        }
        .unwrap_or(0.0);
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, epoch, snapshot(model)));
        }
        // On disk before the epoch is announced: whoever sees the epoch can rely on it.
        if let Some((path, id)) = saving {
            let state = ProgressRef {
                next_epoch: epoch + 1,
                rng_word_pos: rng.get_word_pos(),
                iter_losses: &iter_losses,
                log: &log,
                best: best.as_ref().map(|(s, e, snap)| (*s, *e, snap)),
                momentum: opt.buffers(),
            };
            progress::write(path, model, id, &state)?;
        }
        sink(Event::FinetuneEpoch { log: entry });
    }
    let best_epoch = best.as_ref().map_or(0, |b| b.1);
    restore(model, best.as_ref().map_or(&initial, |b| &b.2))?;
    Ok((iter_losses, log, best_epoch, diverged, val_idx.len()))
}
