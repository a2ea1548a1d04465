//! One function per subcommand; shared set-up (device, threads, seed, model) lives here.
mod aa_progress;
mod autoattack;
mod compare;
mod compare_check;
mod demo;
mod doctor;
mod eval;
mod eval_setup;
mod finetune;
mod held_locks;
mod inspect;
mod interpolate;
mod merge;
mod mrc;
mod ood;
mod predict;
mod progress;
mod progress_style;
mod run;
mod run_final;
mod train_at;
mod tui;
mod zoo;

pub use compare::compare;
pub use demo::demo;
pub use doctor::doctor;
pub use eval::eval;
pub use finetune::finetune;
pub use held_locks::release_held_locks;
pub use inspect::inspect;
pub use interpolate::interpolate;
pub use merge::merge;
pub use mrc::mrc;
pub use ood::ood;
pub use predict::predict;
pub use run::run;
pub use run_final::report;
pub use train_at::train_at;
pub use tui::tui;
pub use zoo::{apply_zoo, zoo};

use crate::cli::{AttackArgs, ModelArgs, RuntimeArgs};
use anyhow::{bail, Result};
use rift::engine::attack::{Norm, PgdConfig};
use rift::engine::checkpoint::{load_checkpoint, Checkpoint};
use rift::engine::data::DatasetKind;
use rift::engine::device;
use rift::engine::models::{Activation, Compute, Model, ModelChoice, NormalizeChoice, Precision};
use serde::Serialize;
use tch::Device;

/// Device, threads and seed, applied once per command.
pub struct Runtime {
    pub device: Device,
    /// `--precision`, `--channels-last`.
    pub compute: Compute,
    pub device_reason: String,
    pub threads: i32,
    pub seed: u64,
}

pub fn runtime(args: &RuntimeArgs) -> Result<Runtime> {
    let (device, device_reason) = device::choose(&args.device)?;
    let threads = device::configure_threads(args.threads);
    tch::manual_seed(args.seed as i64);
    let compute = Compute {
        precision: Precision::parse(&args.precision)
            .map_err(|e| anyhow::anyhow!("--precision: {e}"))?,
        channels_last: args.channels_last,
    };
    Ok(Runtime {
        device,
        compute,
        device_reason,
        threads,
        seed: args.seed,
    })
}

/// Loads a checkpoint and the model it holds, normalised as `--normalize` says (`auto`:
/// the checkpoint's own statistics when it has them, else `dataset`'s).
pub fn load_model(
    args: &ModelArgs,
    dataset: DatasetKind,
    device: Device,
    compute: Compute,
) -> Result<(Checkpoint, Model)> {
    let mut choice = model_choice(args)?;
    let ckpt = load_checkpoint(args.checkpoint())?;
    if let Some(normalize) = zoo::check_zoo_file(&args.reading, &ckpt)? {
        choice.normalize = normalize;
    }
    // Model errors name the checkpoint file themselves.
    let model = model_on(&ckpt, &choice, dataset, compute)(device)?;
    Ok((ckpt, model))
}

/// Builds the model of an already read checkpoint on any device: what each thread of
/// `--devices` calls, so the file is read once.
pub fn model_on<'a>(
    ckpt: &'a Checkpoint,
    choice: &'a ModelChoice,
    dataset: DatasetKind,
    compute: Compute,
) -> impl Fn(Device) -> Result<Model, rift::engine::models::ModelError> + Sync + 'a {
    move |device| {
        let (mean, std) = dataset.mean_std();
        let mut model =
            Model::from_checkpoint_with(ckpt, choice, device, (&mean, &std, dataset.name()))?;
        model.set_compute(compute)?;
        Ok(model)
    }
}

/// `--arch`, `--width`, `--activation` and `--normalize`, checked before any file is read.
pub fn model_choice(args: &ModelArgs) -> Result<ModelChoice> {
    let activation = match &args.reading.activation {
        Some(a) => Some(Activation::parse(a).map_err(|e| anyhow::anyhow!("--activation: {e}"))?),
        None => None,
    };
    let normalize = NormalizeChoice::parse(&args.reading.normalize)
        .map_err(|e| anyhow::anyhow!("--normalize: {e}"))?;
    Ok(ModelChoice {
        arch: Some(args.reading.arch.clone()),
        width: args.reading.width,
        activation,
        normalize,
    })
}

/// The attack of `--attack pgd|none` and its flags.
pub fn attack_config(args: &AttackArgs) -> Result<Option<PgdConfig>> {
    match args.attack.to_ascii_lowercase().as_str() {
        "none" => Ok(None),
        "pgd" => {
            if args.restarts == 0 {
                bail!("--restarts must be at least 1");
            }
            check_radius(args)?;
            Ok(Some(PgdConfig {
                eps: args.eps,
                step: args.step,
                steps: args.steps,
                random_start: !args.no_random_start,
                restarts: args.restarts,
                norm: args.norm,
            }))
        }
        other => bail!("unknown attack `{other}`; expected pgd or none"),
    }
}

/// `--eps`/`--step` in the norm's units. The L∞ defaults (8/255, 2/255) are no L2 radius,
/// so `--norm l2` needs both given (decision: no L2 default, since the L2 radius depends
/// on the image size: 0.5 on CIFAR, 3.0 on ImageNet).
fn check_radius(args: &AttackArgs) -> Result<()> {
    let positive = |v: f64| v > 0.0 && v.is_finite();
    match args.norm {
        Norm::Linf if args.eps > 1.0 || args.step > 1.0 || args.eps < 0.0 || args.step < 0.0 => {
            bail!("--eps and --step are in [0, 1] pixel units (e.g. 8/255), got eps {} and step {}", args.eps, args.step)
        }
        Norm::L2 if args.eps == 8.0 / 255.0 || args.step == 2.0 / 255.0 => bail!(
            "--norm l2 reads --eps and --step as L2 lengths over the whole image: give both (RobustBench's CIFAR-10 L2 is --eps 0.5 --step 0.1); the defaults 8/255 and 2/255 are L∞ values"
        ),
        Norm::L2 if !positive(args.eps) || !positive(args.step) => bail!(
            "--norm l2: --eps and --step must be positive lengths, got eps {} and step {}",
            args.eps,
            args.step
        ),
        _ => Ok(()),
    }
}

/// The model as recorded in outputs.
#[derive(Serialize)]
pub struct ModelSummary {
    pub checkpoint: String,
    /// The RobustBench id of `--zoo`, when the model was named by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zoo: Option<String>,
    pub arch: String,
    pub num_classes: i64,
    pub in_channels: i64,
    pub normalization: String,
}

pub fn model_summary(ckpt: &Checkpoint, model: &Model, zoo: Option<&str>) -> ModelSummary {
    ModelSummary {
        checkpoint: ckpt.path.display().to_string(),
        zoo: zoo.map(str::to_string),
        arch: model.spec.name(),
        num_classes: model.spec.num_classes,
        in_channels: model.spec.in_channels,
        normalization: model.normalization.describe(),
    }
}
