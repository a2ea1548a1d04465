//! What `rift eval` and its AutoAttack path share: the checkpoint and test split loaded
//! and checked, and the output record. A leaf, so `eval.rs` (which hands AutoAttack
//! requests to `autoattack.rs`) and `autoattack.rs` do not import each other.
use super::{load_model, model_summary, runtime, ModelSummary};
use crate::cli::EvalArgs;
use anyhow::Result;
use rift::engine::attack::PgdConfig;
use rift::engine::data::{load_split, DatasetKind, Split};
use rift::engine::device::device_name;
use rift::engine::eval::EvalResult;
use serde::Serialize;

#[derive(Serialize)]
pub(super) struct AttackRecord {
    pub name: String,
    #[serde(flatten)]
    pub config: Option<PgdConfig>,
    /// AutoAttack's settings, for `--attack autoattack|LIST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoattack: Option<rift::engine::autoattack::AaConfig>,
}

#[derive(Serialize)]
pub(super) struct EvalOutput {
    #[serde(flatten)]
    pub result: EvalResult,
    pub dataset: String,
    pub split: &'static str,
    pub attack: AttackRecord,
    /// Robust accuracy after each attack (cumulative), for `--attack autoattack|LIST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoattack: Option<rift::engine::autoattack::AaReport>,
    pub model: ModelSummary,
    /// The verdict on every evaluated point, in order (AutoAttack's runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_sample: Option<PerSample>,
    pub device: String,
    /// Precision and layout (`fp32` unless `--precision`/`--channels-last`).
    pub compute: String,
    pub seed: u64,
    pub threads: i32,
    pub rift_version: &'static str,
    pub torch_version: &'static str,
}

/// Per-point verdicts: `robust` (one boolean per point, in order) and, for AutoAttack, the
/// attack that broke each point (null where none did, or where it was wrong clean).
#[derive(Serialize)]
pub(super) struct PerSample {
    pub robust: Vec<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_by: Option<Vec<Option<String>>>,
}

impl EvalOutput {
    /// Records the `--zoo` id the model was named by.
    pub(super) fn with_zoo(mut self, zoo: Option<&str>) -> EvalOutput {
        self.model.zoo = zoo.map(str::to_string);
        self
    }

    /// The output of `rift eval` (PGD or AutoAttack) with the run's model, device and versions.
    pub(super) fn new(
        result: EvalResult,
        attack: AttackRecord,
        autoattack: Option<rift::engine::autoattack::AaReport>,
        kind: DatasetKind,
        ckpt: &rift::engine::checkpoint::Checkpoint,
        model: &rift::engine::models::Model,
        rt: &super::Runtime,
    ) -> EvalOutput {
        let per_sample = autoattack.as_ref().map(|r| PerSample {
            robust: r.robust_flags.clone(),
            broken_by: Some(r.broken_by.clone()),
        });
        EvalOutput {
            result,
            dataset: kind.name().to_string(),
            split: "test",
            attack,
            autoattack,
            // The zoo id is the caller's to add (`with_zoo`).
            model: model_summary(ckpt, model, None),
            per_sample,
            device: device_name(rt.device),
            compute: rt.compute.text(),
            seed: rt.seed,
            threads: rt.threads,
            rift_version: env!("CARGO_PKG_VERSION"),
            torch_version: rift::engine::TORCH_VERSION,
        }
    }
}

/// What `rift eval` evaluates: the model on its device and the test split, checked to fit.
pub(super) struct Loaded {
    pub rt: super::Runtime,
    pub kind: DatasetKind,
    pub ckpt: rift::engine::checkpoint::Checkpoint,
    pub model: rift::engine::models::Model,
    pub set: rift::engine::data::ImageSet,
}

pub(super) fn load_for_eval(args: &EvalArgs) -> Result<Loaded> {
    let rt = runtime(&args.runtime)?;
    let kind = DatasetKind::parse(&args.data.dataset)?;
    let (ckpt, model) = load_model(&args.model, kind, rt.device, rt.compute)?;
    let set = load_split(kind, &args.data.data_dir, Split::Test)?;
    model
        .check_input(&[1, set.channels as i64, set.height as i64, set.width as i64])
        .map_err(|e| {
            anyhow::anyhow!(
                "{} test images do not fit {}: {e}",
                kind.name(),
                args.model.checkpoint().display()
            )
        })?;
    if set.num_classes as i64 > model.spec.num_classes {
        anyhow::bail!(
            "{} has {} classes but the model in {} predicts {}",
            kind.name(),
            set.num_classes,
            args.model.checkpoint().display(),
            model.spec.num_classes
        );
    }
    Ok(Loaded {
        rt,
        kind,
        ckpt,
        model,
        set,
    })
}
