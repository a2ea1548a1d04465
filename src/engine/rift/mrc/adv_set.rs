//! The fixed adversarial set MRC measures on (SPEC.md §1 step 1), the held-out split of
//! the training data, and mean loss/accuracy over a set of tensors.
use crate::engine::attack::{clean_correct, robust_correct, AttackError, Noise, PgdConfig};
use crate::engine::batches::images_to_tensor;
use crate::engine::data::{gather_batch, load_split, DataError, DatasetKind, ImageSet, Split};
use crate::engine::models::Model;
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::CancelFlag;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tch::{Kind, Tensor};

/// Fraction of the training split held out for validation (fine-tuning selection) and
/// for `--adv-split holdout`.
pub const HOLDOUT_FRACTION: f64 = 0.1;
/// The split is fixed (not tied to `--seed`), so every run and stage sees the same one.
const HOLDOUT_SEED: u64 = 0x5249_4654;

/// `--adv-split` value that picks the split per dataset as the published code does.
pub const ADV_SPLIT_AS_PUBLISHED: &str = "auto";

/// The split the adversarial set comes from: `flag` unless it is `auto`, then as published
/// per dataset — Tiny-ImageNet's training split (its reference code attacks
/// `TinyImageNet("train")`), every other dataset's test split (CIFAR: `train=False`).
pub fn adv_split_for(kind: DatasetKind, flag: &str) -> &str {
    match (flag, kind) {
        (ADV_SPLIT_AS_PUBLISHED, DatasetKind::TinyImageNet) => "train",
        (ADV_SPLIT_AS_PUBLISHED, _) => "test",
        (other, _) => other,
    }
}

/// Where the adversarial set's samples come from (`--adv-split`, after `auto` is resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvSplit {
    /// The test split (CIFAR's published choice).
    Test,
    /// The whole training split (Tiny-ImageNet's published choice).
    Train,
    /// The held-out tenth of the training split ([`holdout_split`]).
    Holdout,
}

/// Why an adversarial set cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum AdvSetError {
    #[error("unknown --adv-split `{0}`; expected auto, test, train or holdout")]
    UnknownSplit(String),
    #[error("the adversarial set would be empty (--adv-limit 0 or an empty {0} split)")]
    Empty(&'static str),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Attack(#[from] AttackError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

impl AdvSplit {
    /// `--adv-split` text for `kind`: `auto` becomes the published split ([`adv_split_for`]).
    pub fn parse(kind: DatasetKind, flag: &str) -> Result<AdvSplit, AdvSetError> {
        match adv_split_for(kind, flag) {
            "test" => Ok(AdvSplit::Test),
            "train" => Ok(AdvSplit::Train),
            "holdout" => Ok(AdvSplit::Holdout),
            other => Err(AdvSetError::UnknownSplit(other.to_string())),
        }
    }

    /// The name sessions and results record.
    pub fn name(self) -> &'static str {
        match self {
            AdvSplit::Test => "test",
            AdvSplit::Train => "train",
            AdvSplit::Holdout => "holdout",
        }
    }

    /// The dataset split the samples are read from.
    pub fn split(self) -> Split {
        match self {
            AdvSplit::Test => Split::Test,
            AdvSplit::Train | AdvSplit::Holdout => Split::Train,
        }
    }

    /// The indices of a split of `n` samples the set is built from, first `limit` only.
    pub fn indices(self, n: usize, limit: Option<usize>) -> Result<Vec<usize>, AdvSetError> {
        let mut idx = match self {
            AdvSplit::Test | AdvSplit::Train => (0..n).collect(),
            AdvSplit::Holdout => holdout_split(n).1,
        };
        if let Some(l) = limit {
            idx.truncate(l);
        }
        if idx.is_empty() {
            return Err(AdvSetError::Empty(self.name()));
        }
        Ok(idx)
    }

    /// Reads the split from disk and picks the samples: for commands that have no split
    /// loaded yet.
    pub fn load(
        self,
        kind: DatasetKind,
        data_dir: &std::path::Path,
        limit: Option<usize>,
    ) -> Result<(ImageSet, Vec<usize>), AdvSetError> {
        let set = load_split(kind, data_dir, self.split())?;
        let idx = self.indices(set.n, limit)?;
        Ok((set, idx))
    }
}

/// How the adversarial set is attacked: the run's PGD, seed and evaluation batch size.
pub struct AdvSetPlan<'a> {
    pub attack: &'a PgdConfig,
    pub seed: u64,
    pub batch_size: usize,
}

/// The adversarial set of `indices` of `set`, as every command and the explorer build it:
/// seeded right before the attack with per-sample keyed random starts, so `rift mrc`, each
/// shard, `rift run` and the explorer build the very same set. Emits the stage's start,
/// progress and `AdvSetBaseline` (clean accuracy of the source samples, accuracy on the set).
pub fn build(
    model: &Model,
    set: &ImageSet,
    indices: &[usize],
    plan: &AdvSetPlan,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<TensorSet, AdvSetError> {
    let batch_size = plan.batch_size.max(1);
    sink(Event::started_text(
        Stage::AdvSet,
        format!("{} on {} samples", plan.attack.label(), indices.len()),
    ));
    tch::manual_seed(plan.seed as i64);
    let noise = Noise::Keyed {
        seed: plan.seed,
        first: 0,
    };
    let adv = generate(
        model,
        (set, indices),
        plan.attack,
        noise,
        batch_size,
        cancel,
        sink,
    )?;
    let mut clean = 0i64;
    let mut buf = Vec::new();
    for chunk in indices.chunks(batch_size) {
        gather_batch(set, chunk, &mut buf);
        let labels: Vec<i64> = chunk.iter().map(|&i| set.labels[i]).collect();
        let shape = [
            chunk.len() as i64,
            set.channels as i64,
            set.height as i64,
            set.width as i64,
        ];
        let (x, y) = images_to_tensor(&buf, &shape, &labels, model.device())?;
        clean += clean_correct(model, &x, &y)?
            .f_sum(Kind::Int64)?
            .f_int64_value(&[])?;
    }
    let (_, robust_acc) = adv.baseline(model, batch_size)?;
    sink(Event::AdvSetBaseline {
        clean_acc: 100.0 * clean as f64 / indices.len() as f64,
        robust_acc,
        n: indices.len(),
    });
    Ok(adv)
}

/// (train indices, held-out indices) of a training split of `n` samples.
pub fn holdout_split(n: usize) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(HOLDOUT_SEED));
    let hold = ((n as f64) * HOLDOUT_FRACTION).round() as usize;
    let held = idx.split_off(n - hold.min(n));
    let (mut train, mut held) = (idx, held);
    train.sort_unstable();
    held.sort_unstable();
    (train, held)
}

/// A set of (adversarial) images and labels, resident on the model's device.
pub struct TensorSet {
    pub x: Tensor,
    pub y: Tensor,
    pub n: usize,
}

impl TensorSet {
    pub fn batch(&self, idx: &Tensor) -> Result<(Tensor, Tensor), tch::TchError> {
        Ok((
            self.x.f_index_select(0, idx)?,
            self.y.f_index_select(0, idx)?,
        ))
    }
}

/// PGD examples of the samples `indices` of `set` against `model` (per-sample worst case
/// over restarts); the k-th of `indices` gets the random start `noise.at(k)`.
pub fn generate(
    model: &Model,
    (set, indices): (&ImageSet, &[usize]),
    cfg: &PgdConfig,
    noise: Noise,
    batch_size: usize,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<TensorSet, AttackError> {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    let mut buf = Vec::new();
    let batches: Vec<&[usize]> = indices.chunks(batch_size.max(1)).collect();
    let shape = |n: usize| {
        [
            n as i64,
            set.channels as i64,
            set.height as i64,
            set.width as i64,
        ]
    };
    for (b, chunk) in batches.iter().enumerate() {
        gather_batch(set, chunk, &mut buf);
        let labels: Vec<i64> = chunk.iter().map(|&i| set.labels[i]).collect();
        let (x, y) = images_to_tensor(&buf, &shape(chunk.len()), &labels, model.device())?;
        let (_, adv) = robust_correct(model, &x, &y, cfg, noise.at(b * batch_size.max(1)), cancel)?;
        xs.push(adv);
        ys.push(y);
        sink(Event::Progress {
            stage: Stage::AdvSet,
            done: b + 1,
            total: batches.len(),
        });
    }
    if xs.is_empty() {
        return Err(AttackError::Torch(tch::TchError::Shape(
            "the adversarial set is empty".into(),
        )));
    }
    Ok(TensorSet {
        x: Tensor::f_cat(&xs, 0)?,
        y: Tensor::f_cat(&ys, 0)?,
        n: indices.len(),
    })
}

impl TensorSet {
    /// [`TensorSet::baseline`], announced as `AdvSetReady` (every MRC driver shows it).
    pub fn announce_baseline(
        &self,
        model: &Model,
        batch_size: usize,
        sink: Sink,
    ) -> Result<(f64, f64), tch::TchError> {
        let (loss, acc) = self.baseline(model, batch_size)?;
        sink(Event::AdvSetReady {
            n: self.n,
            loss,
            acc,
        });
        Ok((loss, acc))
    }

    /// Mean cross-entropy and accuracy (percent) of `model` (eval mode) on the whole set:
    /// the baseline MRC and screening measure against.
    pub fn baseline(&self, model: &Model, batch_size: usize) -> Result<(f64, f64), tch::TchError> {
        loss_and_acc(self.n, batch_size, model.device(), &self.y, &mut |idx| {
            Ok(model.forward(&self.x.f_index_select(0, idx)?, false))
        })
    }
}

/// Mean cross-entropy and accuracy (percent) of `logits_of(batch indices)` over a set, in
/// batches, without gradients.
pub fn loss_and_acc(
    n: usize,
    batch_size: usize,
    device: tch::Device,
    labels: &Tensor,
    logits_of: &mut dyn FnMut(&Tensor) -> Result<Tensor, tch::TchError>,
) -> Result<(f64, f64), tch::TchError> {
    tch::no_grad(|| {
        let (mut loss_sum, mut correct) = (0.0f64, 0i64);
        let mut i = 0;
        while i < n {
            let end = (i + batch_size).min(n);
            let idx = Tensor::f_arange_start(i as i64, end as i64, (Kind::Int64, device))?;
            let logits = logits_of(&idx)?;
            let y = labels.f_index_select(0, &idx)?;
            loss_sum += logits
                .f_cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Sum, -100, 0.0)?
                .f_double_value(&[])?;
            correct += logits
                .f_argmax(-1, false)?
                .f_eq_tensor(&y)?
                .f_sum(Kind::Int64)?
                .f_int64_value(&[])?;
            i = end;
        }
        let n = n.max(1) as f64;
        Ok((loss_sum / n, 100.0 * correct as f64 / n))
    })
}

#[cfg(test)]
mod split_tests {
    use super::*;

    /// The published code attacks Tiny-ImageNet's training split and CIFAR's test split.
    #[test]
    fn auto_picks_the_published_split_per_dataset() {
        assert_eq!(adv_split_for(DatasetKind::TinyImageNet, "auto"), "train");
        assert_eq!(adv_split_for(DatasetKind::Cifar10, "auto"), "test");
        assert_eq!(adv_split_for(DatasetKind::Cifar100, "auto"), "test");
        assert_eq!(adv_split_for(DatasetKind::Mnist, "auto"), "test");
        assert_eq!(adv_split_for(DatasetKind::TinyImageNet, "test"), "test");
        assert_eq!(adv_split_for(DatasetKind::Cifar10, "holdout"), "holdout");
    }
}
