use super::{attack_config, load_model, model_summary, runtime, ModelSummary};
use crate::cli::EvalArgs;
use anyhow::Result;
use rift::engine::attack::PgdConfig;
use rift::engine::data::{load_split, DatasetKind, Split};
use rift::engine::device::device_name;
use rift::engine::eval::{evaluate, EvalPlan, EvalResult};
use rift::engine::CancelFlag;
use serde::Serialize;
use std::io::Write;

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
    pub device: String,
    /// Precision and layout (`fp32` unless `--precision`/`--channels-last`).
    pub compute: String,
    pub seed: u64,
    pub threads: i32,
    pub rift_version: &'static str,
    pub torch_version: &'static str,
}

impl EvalOutput {
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
        EvalOutput {
            result,
            dataset: kind.name().to_string(),
            split: "test",
            attack,
            autoattack,
            model: model_summary(ckpt, model),
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
                args.model.checkpoint.display()
            )
        })?;
    if set.num_classes as i64 > model.spec.num_classes {
        anyhow::bail!(
            "{} has {} classes but the model in {} predicts {}",
            kind.name(),
            set.num_classes,
            args.model.checkpoint.display(),
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

pub fn eval(args: &EvalArgs) -> Result<()> {
    if super::autoattack::wanted(&args.attack.attack) {
        return super::autoattack::eval_autoattack(args);
    }
    let attack = attack_config(&args.attack)?;
    let Loaded {
        rt,
        kind,
        ckpt,
        model,
        set,
    } = load_for_eval(args)?;
    let n = args.data.limit.map_or(set.n, |l| l.min(set.n));
    eprintln!(
        "evaluating {} on {} {} test images on {} ({}), {}",
        model.spec.name(),
        n,
        kind.name(),
        device_name(rt.device),
        rt.device_reason,
        rt.compute.text()
    );
    eprintln!("normalization: {}", model.normalization.describe());
    let mut last = std::time::Instant::now();
    let plan = EvalPlan {
        attack: attack.as_ref(),
        seed: rt.seed,
        limit: args.data.limit,
        batch_size: args.data.batch_size,
    };
    let result = evaluate(
        &model,
        &set,
        &plan,
        &CancelFlag::default(),
        &mut |done, total| {
            if last.elapsed().as_secs_f64() > 1.0 || done == total {
                eprint!("\r  {done}/{total}");
                let _ = std::io::stderr().flush();
                last = std::time::Instant::now();
            }
        },
    )?;
    eprintln!();
    println!("{:<10} {:>8} {:>8}", "", "acc %", "n");
    println!("{:<10} {:>8.2} {:>8}", "clean", result.clean_acc, result.n);
    if let (Some(r), Some(cfg)) = (result.robust_acc, &attack) {
        println!(
            "{:<10} {:>8.2} {:>8}   PGD-{} eps {:.4} step {:.4} restarts {}{}",
            "robust",
            r,
            result.n,
            cfg.steps,
            cfg.eps,
            cfg.step,
            cfg.restarts,
            if cfg.random_start {
                ""
            } else {
                " (no random start)"
            }
        );
    }
    println!("{:.1} s on {}", result.seconds, device_name(rt.device));
    if let Some(path) = &args.output {
        let record = AttackRecord {
            name: if attack.is_some() { "pgd" } else { "none" }.into(),
            config: attack,
            autoattack: None,
        };
        let out = EvalOutput::new(result, record, None, kind, &ckpt, &model, &rt);
        rift::report::write_structured(path, &out)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
