use super::progress::Printer;
use super::{attack_config, load_model, model_choice, model_on, runtime};
use crate::cli::{InterpolateArgs, SearchFlags, SweepFlags};
use anyhow::{bail, Result};
use rift::engine::attack::PgdConfig;
use rift::engine::checkpoint::{load_checkpoint, save_by_extension, save_format_for};
use rift::engine::data::{load_split_with, DatasetKind, Split};
use rift::engine::rift::alpha::interpolate::{
    parse_alphas, sweep, Endpoints, SweepConfig, SweepTask,
};
use rift::engine::rift::alpha::search::{search, SearchConfig, SubsetSize};
use rift::engine::rift::alpha::sweep_devices::sweep_on_devices;
use rift::engine::rift::mrc::multi_device::Devices;
use rift::engine::rift::mrc::results::{InterpolationResult, SearchPoint};
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

/// `--search` and its settings, checked before any work; None without `--search`.
pub fn search_config(flags: &SearchFlags) -> Result<Option<SearchConfig>> {
    if !flags.search {
        return Ok(None);
    }
    let mut cfg = SearchConfig::default();
    if let Some(s) = &flags.search_subset {
        cfg.subset = SubsetSize::parse(s).map_err(|e| anyhow::anyhow!("--search-subset: {e}"))?;
    }
    if let Some(b) = flags.search_budget {
        if !(b > 0.0 && b <= 1.0) {
            bail!(
                "--search-budget is the most attack work the search may spend as a fraction of \
                 the full grid's, so it must lie in (0, 1], got {b}; without a budget the full \
                 grid (no --search) is the better choice"
            );
        }
        cfg.budget = b;
    }
    Ok(Some(cfg))
}

fn ci(p: &SearchPoint) -> String {
    format!(
        "{:>6.2} [{:>6.2}, {:>6.2}] {:>5}   {:>6.2} [{:>6.2}, {:>6.2}] {:>5}",
        p.clean_acc,
        p.clean_ci[0],
        p.clean_ci[1],
        p.clean_n,
        p.robust_acc,
        p.robust_ci[0],
        p.robust_ci[1],
        p.robust_n
    )
}

/// The search's own lines: which α were evaluated on the full set and which were screened
/// only, with 95 % CIs and sample counts, and the attack work against the grid's.
fn print_search(r: &InterpolationResult) {
    let Some(s) = &r.search else {
        return;
    };
    println!(
        "α search: clean accuracy of every α on all {} samples; robust accuracy screened on {} of them; {} α completed on the full set",
        s.full_n,
        s.subset_n,
        s.full.len()
    );
    println!(
        "{:>8}  {:<7}  {:<30}  {:<30}",
        "alpha", "robust", "clean % [95% CI] n", "robust % [95% CI] n"
    );
    let mut rows: Vec<(&SearchPoint, &str)> = s.full.iter().map(|p| (p, "full")).collect();
    rows.extend(
        s.screened
            .iter()
            .filter(|p| s.screened_only.contains(&p.alpha))
            .map(|p| (p, "subset")),
    );
    rows.sort_by(|a, b| a.0.alpha.total_cmp(&b.0.alpha));
    for (p, place) in rows {
        let mark = if p.alpha == r.chosen_alpha {
            "  <- chosen"
        } else if s.finalists.contains(&p.alpha) {
            "  finalist"
        } else {
            ""
        };
        println!("{:>8.4}  {place:<7}  {}{mark}", p.alpha, ci(p));
    }
    for p in &s.paired {
        println!(
            "  α {:<6} vs α = 0 on {:>6} samples: robust {:+.2} points [95% CI {:+.2}, {:+.2}]  {}",
            p.alpha, p.samples, p.diff, p.ci[0], p.ci[1], p.verdict
        );
    }
    println!(
        "finalists: {:?}; screened only (subset robust accuracy, never decides): {:?}{}",
        s.finalists,
        s.screened_only,
        if s.budget_exhausted {
            "; the work budget stopped the search before it settled the choice"
        } else {
            ""
        }
    );
    println!(
        "attack work: {} samples attacked vs {} for the full grid (ratio {:.3}, budget {:.3}); {} clean-only evaluations",
        s.attacked_samples, s.grid_attacked_samples, s.work_ratio, s.budget, s.clean_only_samples
    );
}

pub fn print_sweep(r: &InterpolationResult) {
    if r.search.is_some() {
        print_search(r);
        println!(
            "chosen α = {} (largest clean gain with robust accuracy at most {} points below α = 0, on full-set numbers only)",
            r.chosen_alpha, r.tolerance
        );
        return;
    }
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

/// The devices of `--devices` when there are several (None: the usual single device).
pub fn sweep_devices(flags: &SweepFlags, search: bool) -> Result<Option<Vec<tch::Device>>> {
    if flags.devices.len() < 2 {
        return Ok(None);
    }
    if search {
        bail!("--devices spreads the grid's α points over devices; --search decides one α at a time, so use one or the other");
    }
    let devices = flags
        .devices
        .iter()
        .map(|d| rift::engine::device::choose(d).map(|(dev, _)| dev))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(devices))
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
    let search_cfg = search_config(&args.search)?;
    let devices = sweep_devices(&args.sweep, search_cfg.is_some())?;
    if let Some(p) = &args.save_chosen {
        save_format_for(p)?;
    }
    let (ckpt, model) = load_model(&args.model, kind, rt.device, rt.compute)?;
    let ft = load_checkpoint(&args.finetuned)?;
    let ends = Endpoints::new(&model, &ft.tensors)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.finetuned.display()))?;
    let test = load_split_with(
        kind,
        &args.data.data_dir,
        Split::Test,
        &args.data.load_options(),
    )?;
    model.check_input(&[
        1,
        test.channels as i64,
        test.height as i64,
        test.width as i64,
    ])?;
    let mut printer = Printer::new();
    let cancel = CancelFlag::default();
    let task = SweepTask {
        ends: &ends,
        test: &test,
        cfg: &cfg,
        known: &[],
    };
    let result = match (&search_cfg, devices) {
        (Some(sc), _) => search(&model, &task, sc, &cancel, &mut |e| printer.show(&e))?,
        (None, Some(devices)) => {
            let choice = model_choice(&args.model)?;
            let load = model_on(&ckpt, &choice, kind, rt.compute);
            let on = Devices {
                list: &devices,
                load: &load,
            };
            sweep_on_devices(on, &task, &cancel, &mut |e| printer.show(&e))?
        }
        (None, None) => sweep(&model, &task, &cancel, &mut |e| printer.show(&e))?,
    };
    print_sweep(&result);
    if let Some(p) = &args.save_chosen {
        ends.apply(&model, result.chosen_alpha)?;
        save_by_extension(p, &model.file_state()?)?;
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
