//! PGD adversarial training (Madry et al.) with the usual recipe (SPEC.md §4): SGD lr 0.1,
//! momentum 0.9, weight decay 5e-4, batch 128, PGD-10 ε 8/255 step 2/255, lr ÷10 at the
//! milestones (100 and 105 of 110 epochs). Adversarial examples are generated with the
//! model in eval mode (BatchNorm statistics untouched by the attack), then the update runs
//! in train mode. The caller saves after each epoch as it likes (`on_epoch`).
use crate::engine::attack::{pgd, AttackError, PgdConfig};
use crate::engine::batches::images_to_tensor;
use crate::engine::data::{shuffled_batches, Augmenter, ImageSet};
use crate::engine::eval::{evaluate, EvalPlan};
use crate::engine::models::Model;
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::rift::finetune::clean_accuracy;
use crate::engine::rift::finetune::optim::{multistep_lr, Sgd};
use crate::engine::tensors::mean_cross_entropy;
use crate::engine::CancelFlag;
use rand::SeedableRng;
use tch::{Kind, Tensor};

#[derive(Clone, Debug)]
pub struct TrainAtConfig {
    pub epochs: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub milestones: Vec<usize>,
    pub attack: PgdConfig,
    /// Test samples for the per-epoch clean/robust check.
    pub eval_limit: usize,
    pub seed: u64,
}

/// Milestones at 100/110 and 105/110 of the run, as published.
pub fn default_milestones(epochs: usize) -> Vec<usize> {
    let a = (epochs as f64 * 100.0 / 110.0).round() as usize;
    let b = (epochs as f64 * 105.0 / 110.0).round() as usize;
    let mut v = vec![a.max(1), b.max(1)];
    v.dedup();
    v
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("cancelled")]
    Cancelled,
    #[error("the training loss became {0} at epoch {1}; lower --lr")]
    Diverged(f64, usize),
    #[error(transparent)]
    Attack(#[from] AttackError),
    #[error("libtorch error during training: {0}")]
    Torch(#[from] tch::TchError),
    #[error("cannot save epoch {epoch}: {source}")]
    Save {
        epoch: usize,
        #[source]
        source: crate::engine::files::SaveError,
    },
}

/// The optimiser over every weight and bias of `model` (which this unfreezes), with the
/// state-dict key of each parameter, in order (to save and restore momentum by name).
pub fn optimizer(model: &Model, cfg: &TrainAtConfig) -> (Vec<String>, Sgd) {
    let names: Vec<String> = model
        .keys()
        .iter()
        .filter(|k| k.ends_with(".weight") || k.ends_with(".bias"))
        .cloned()
        .collect();
    let params: Vec<Tensor> = names
        .iter()
        .filter_map(|k| model.var(k))
        .map(|p| p.set_requires_grad(true))
        .collect();
    (
        names,
        Sgd::new(params, cfg.lr, cfg.momentum, cfg.weight_decay),
    )
}

/// What one adversarial-training run works on: the training split and its augmentation,
/// the test split of the per-epoch check, the recipe, and the first epoch to run (later
/// than 0 when continuing from a saved state).
#[derive(Clone, Copy)]
pub struct TrainAtTask<'a> {
    pub train: &'a ImageSet,
    pub test: &'a ImageSet,
    pub augmenter: &'a Augmenter,
    pub cfg: &'a TrainAtConfig,
    pub start_epoch: usize,
}

/// Trains epochs `task.start_epoch..task.cfg.epochs` of `model` with `opt`;
/// `on_epoch(model, opt, epoch)` runs after each.
pub fn train_at(
    model: &Model,
    opt: &mut Sgd,
    task: TrainAtTask,
    cancel: &CancelFlag,
    sink: Sink,
    on_epoch: &mut dyn FnMut(&Model, &Sgd, usize) -> Result<(), crate::engine::files::SaveError>,
) -> Result<(), TrainError> {
    let TrainAtTask {
        train,
        test,
        augmenter,
        cfg,
        start_epoch,
    } = task;
    let shape = |k: usize| {
        [
            k as i64,
            train.channels as i64,
            train.height as i64,
            train.width as i64,
        ]
    };
    let mut buf = Vec::new();
    for epoch in start_epoch..cfg.epochs {
        // Seeded per epoch so a resumed run continues exactly as an uninterrupted one.
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(epoch as u64 * 7919));
        tch::manual_seed(cfg.seed.wrapping_add(epoch as u64) as i64);
        opt.lr = multistep_lr(cfg.lr, &cfg.milestones, 0.1, epoch);
        let batches = shuffled_batches(train.n, cfg.batch_size, &mut rng);
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0i64, 0usize);
        for (it, batch) in batches.iter().enumerate() {
            if cancel.is_cancelled() {
                return Err(TrainError::Cancelled);
            }
            augmenter.augment_batch(train, batch, &mut rng, &mut buf);
            let labels: Vec<i64> = batch.iter().map(|&i| train.labels[i]).collect();
            let (x, y) = images_to_tensor(&buf, &shape(batch.len()), &labels, model.device())?;
            let adv = pgd(
                model,
                &x,
                &y,
                &cfg.attack,
                crate::engine::attack::Noise::Global,
                cancel,
            )?;
            let logits = model.forward(&adv, true);
            let loss = mean_cross_entropy(&logits, &y)?;
            let l = loss.f_double_value(&[])?;
            if !l.is_finite() {
                return Err(TrainError::Diverged(l, epoch));
            }
            opt.zero_grad();
            loss.f_backward()?;
            opt.step()?;
            loss_sum += l * batch.len() as f64;
            correct += logits
                .f_argmax(-1, false)?
                .f_eq_tensor(&y)?
                .f_sum(Kind::Int64)?
                .f_int64_value(&[])?;
            seen += batch.len();
            sink(Event::Progress {
                stage: Stage::TrainAt,
                done: it + 1,
                total: batches.len(),
            });
        }
        let limit = cfg.eval_limit.min(test.n);
        let clean = clean_accuracy(model, test, None, Some(limit), 256)?;
        let plan = EvalPlan {
            attack: Some(&cfg.attack),
            seed: cfg.seed,
            limit: Some(limit),
            batch_size: 256,
        };
        let robust = evaluate(model, test, &plan, cancel, &mut |_, _| {})?;
        sink(Event::TrainEpoch {
            epoch,
            lr: opt.lr,
            loss: loss_sum / seen.max(1) as f64,
            train_acc: 100.0 * correct as f64 / seen.max(1) as f64,
            test_clean_acc: clean,
            test_robust_acc: robust.robust_acc.unwrap_or(0.0),
        });
        on_epoch(model, opt, epoch).map_err(|source| TrainError::Save { epoch, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TrainError;
    use crate::engine::error_text::paragraph;

    /// A failed save keeps the caller's error as the typed cause, and the error paragraph
    /// names it once.
    #[test]
    fn a_failed_save_keeps_its_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device");
        let e = TrainError::Save {
            epoch: 3,
            source: Box::new(io),
        };
        let cause = std::error::Error::source(&e).expect("a cause");
        let io = cause
            .downcast_ref::<std::io::Error>()
            .expect("the io::Error itself");
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(
            paragraph(&e),
            "cannot save epoch 3: no space left on device"
        );
    }
}
