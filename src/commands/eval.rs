use super::{attack_config, load_model, model_summary, runtime, ModelSummary};
use crate::cli::EvalArgs;
use anyhow::Result;
use rift::engine::attack::{Noise, PgdConfig};
use rift::engine::data::{load_split, DatasetKind, Split};
use rift::engine::device::device_name;
use rift::engine::eval::{evaluate, EvalResult};
use rift::engine::CancelFlag;
use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
struct AttackRecord {
    name: &'static str,
    #[serde(flatten)]
    config: Option<PgdConfig>,
}

#[derive(Serialize)]
struct EvalOutput {
    #[serde(flatten)]
    result: EvalResult,
    dataset: String,
    split: &'static str,
    attack: AttackRecord,
    model: ModelSummary,
    device: String,
    /// Precision and layout (`fp32` unless `--precision`/`--channels-last`).
    compute: String,
    seed: u64,
    threads: i32,
    rift_version: &'static str,
    torch_version: &'static str,
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    let rt = runtime(&args.runtime)?;
    let kind = DatasetKind::parse(&args.data.dataset)?;
    let attack = attack_config(&args.attack)?;
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
    let result = evaluate(
        &model,
        &set,
        attack.as_ref(),
        Noise::Keyed {
            seed: rt.seed,
            first: 0,
        },
        args.data.limit,
        args.data.batch_size,
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
        let out = EvalOutput {
            result,
            dataset: kind.name().to_string(),
            split: "test",
            attack: AttackRecord {
                name: if attack.is_some() { "pgd" } else { "none" },
                config: attack,
            },
            model: model_summary(&ckpt, &model),
            device: device_name(rt.device),
            compute: rt.compute.text(),
            seed: rt.seed,
            threads: rt.threads,
            rift_version: env!("CARGO_PKG_VERSION"),
            torch_version: rift::engine::TORCH_VERSION,
        };
        rift::report::write_structured(path, &out)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
