use super::attack_config;
use crate::cli::EvalArgs;
use anyhow::Result;
use rift::engine::device::device_name;
use rift::engine::eval::{evaluate_keeping, EvalPlan};
use rift::engine::CancelFlag;
use std::io::Write;

use super::eval_setup::{
    check_save_adv, load_for_eval, AttackRecord, EvalOutput, Loaded, PerSample,
};

pub fn eval(args: &EvalArgs) -> Result<()> {
    check_save_adv(args)?;
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
        "evaluating {}{} on {} {} test images on {} ({}), {}",
        model.spec.name(),
        super::zoo::zoo_suffix(&args.model.reading),
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
    let (result, kept) = evaluate_keeping(
        &model,
        &set,
        &plan,
        args.save_adv.is_some(),
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
            "{:<10} {:>8.2} {:>8}   {} eps {:.4} step {:.4} restarts {}{}",
            "robust",
            r,
            result.n,
            cfg.label(),
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
    if let Some(cfg) = &attack {
        eprintln!("{}", kept.check.line(cfg.norm));
    }
    if let (Some(path), Some(adv)) = (&args.save_adv, &kept.adv) {
        adv.save(path)?;
        eprintln!(
            "wrote {} adversarial examples (x_adv, y) to {}",
            result.n,
            path.display()
        );
    }
    if let Some(path) = &args.output {
        let attacked = attack.is_some();
        let record = AttackRecord {
            name: if attacked { "pgd" } else { "none" }.into(),
            config: attack,
            autoattack: None,
        };
        let mut out = EvalOutput::new(result, record, None, kind, &ckpt, &model, &rt)
            .with_zoo(args.model.reading.zoo.as_deref());
        if attacked {
            let per_sample = PerSample {
                robust: kept.verdicts.robust,
                broken_by: None,
            };
            out = out.with_evidence(per_sample, kept.check, args.save_adv.as_deref());
        }
        rift::report::write_structured(path, &out)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
