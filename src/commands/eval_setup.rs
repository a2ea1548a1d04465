//! What `rift eval` and its AutoAttack path share: the checkpoint and test split loaded
//! and checked, and the output record. A leaf, so `eval.rs` (which hands AutoAttack
//! requests to `autoattack.rs`) and `autoattack.rs` do not import each other.
use super::{load_model, model_summary, runtime, ModelSummary};
use crate::cli::EvalArgs;
use anyhow::Result;
use rift::engine::adv_examples::PerturbationCheck;
use rift::engine::attack::PgdConfig;
use rift::engine::data::{load_split_with, DatasetKind, Split};
use rift::engine::device::device_name;
use rift::engine::eval::EvalResult;
use serde::Serialize;
use std::path::Path;

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
    /// The verdict on every evaluated point, in order (PGD and AutoAttack runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_sample: Option<PerSample>,
    /// The reference's closing check over the adversarial examples (attacked runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adversarial_check: Option<PerturbationCheck>,
    /// Where `--save-adv` wrote the adversarial examples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adversarial_examples: Option<String>,
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
    /// Records the per-point verdicts, the check and the examples' file of an attacked run.
    pub(super) fn with_evidence(
        mut self,
        per_sample: PerSample,
        check: PerturbationCheck,
        saved: Option<&Path>,
    ) -> EvalOutput {
        self.per_sample = Some(per_sample);
        self.adversarial_check = Some(check);
        self.adversarial_examples = saved.map(|p| p.display().to_string());
        self
    }

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
            adversarial_check: None,
            adversarial_examples: None,
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

/// `--save-adv`'s file, checked before any compute: a known extension, an existing
/// folder, and an attack to take the examples from.
pub(super) fn check_save_adv(args: &EvalArgs) -> Result<()> {
    let Some(path) = &args.save_adv else {
        return Ok(());
    };
    rift::engine::checkpoint::save_format_for(path)?;
    if args.attack.attack.trim().eq_ignore_ascii_case("none") {
        anyhow::bail!(
            "--save-adv {} needs an attack to take adversarial examples from, but --attack is none",
            path.display()
        );
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "--save-adv {}: the folder {} does not exist; create it first (nothing was computed)",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

pub(super) fn load_for_eval(args: &EvalArgs) -> Result<Loaded> {
    let rt = runtime(&args.runtime)?;
    let kind = DatasetKind::parse(&args.data.dataset)?;
    let (ckpt, model) = load_model(&args.model, kind, rt.device, rt.compute)?;
    let set = load_split_with(
        kind,
        &args.data.data_dir,
        Split::Test,
        &args.data.load_options(),
    )?;
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
