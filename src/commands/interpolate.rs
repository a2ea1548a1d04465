use super::progress::Printer;
use super::{attack_config, load_model, runtime};
use crate::cli::{InterpolateArgs, SweepFlags};
use anyhow::{bail, Result};
use rift::engine::attack::PgdConfig;
use rift::engine::checkpoint::{load_checkpoint, save_by_extension, save_format_for};
use rift::engine::data::{load_split, DatasetKind, Split};
use rift::engine::rift::interpolate::{parse_alphas, sweep, Endpoints, SweepConfig};
use rift::engine::rift::results::InterpolationResult;
use rift::engine::CancelFlag;

pub fn sweep_config(
    flags: &SweepFlags,
    attack: PgdConfig,
    limit: Option<usize>,
    batch_size: usize,
    seed: u64,
) -> Result<SweepConfig> {
    if !(flags.tolerance >= 0.0 && flags.tolerance.is_finite()) {
        bail!(
            "--tolerance is in points of robust accuracy and must be ≥ 0, got {}",
            flags.tolerance
        );
    }
    Ok(SweepConfig {
        alphas: parse_alphas(&flags.alphas).map_err(anyhow::Error::msg)?,
        refine: flags.refine,
        tolerance: flags.tolerance,
        attack,
        limit,
        batch_size,
        seed,
    })
}

pub fn print_sweep(r: &InterpolationResult) {
    let base = r.points.iter().find(|p| p.alpha == 0.0);
    println!(
        "{:>8} {:>8} {:>8} {:>8} {:>8}",
        "alpha", "clean %", "robust %", "Δclean", "Δrobust"
    );
    for p in &r.points {
        let (dc, dr) = base.map_or((0.0, 0.0), |b| {
            (p.clean_acc - b.clean_acc, p.robust_acc - b.robust_acc)
        });
        println!(
            "{:>8.4} {:>8.2} {:>8.2} {:>+8.2} {:>+8.2}{}",
            p.alpha,
            p.clean_acc,
            p.robust_acc,
            dc,
            dr,
            if p.alpha == r.chosen_alpha {
                "  <- chosen"
            } else {
                ""
            }
        );
    }
    println!(
        "chosen α = {} (largest clean gain with robust accuracy at most {} points below α = 0)",
        r.chosen_alpha, r.tolerance
    );
}

pub fn interpolate(args: &InterpolateArgs) -> Result<()> {
    let rt = runtime(&args.runtime)?;
    let kind = DatasetKind::parse(&args.data.dataset)?;
    let Some(attack) = attack_config(&args.attack)? else {
        bail!("interpolation chooses α on robust accuracy: --attack none is not possible here");
    };
    let cfg = sweep_config(
        &args.sweep,
        attack,
        args.data.limit,
        args.data.batch_size,
        rt.seed,
    )?;
    if let Some(p) = &args.save_chosen {
        save_format_for(p)?;
    }
    let (_ckpt, model) = load_model(&args.model, kind, rt.device)?;
    let ft = load_checkpoint(&args.finetuned)?;
    let ends = Endpoints::new(&model, &ft.tensors)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.finetuned.display()))?;
    let test = load_split(kind, &args.data.data_dir, Split::Test)?;
    model.check_input(&[
        1,
        test.channels as i64,
        test.height as i64,
        test.width as i64,
    ])?;
    let mut printer = Printer::new();
    let result = sweep(
        &model,
        &ends,
        &test,
        &cfg,
        &[],
        &CancelFlag::default(),
        &mut |e| printer.show(&e),
    )?;
    print_sweep(&result);
    if let Some(p) = &args.save_chosen {
        save_by_extension(p, &model.state()?)?;
        eprintln!(
            "wrote the model at α = {} to {}",
            result.chosen_alpha,
            p.display()
        );
    }
    if let Some(path) = &args.output {
        rift::report::write_structured(path, &result)?;
    }
    Ok(())
}
