use super::progress::Printer;
use super::{attack_config, load_model, model_choice, model_on, runtime};
use crate::cli::{MrcArgs, MrcFlags};
use anyhow::{bail, Result};
use rift::engine::attack::PgdConfig;
use rift::engine::checkpoint::{save_by_extension, save_format_for};
use rift::engine::data::DatasetKind;
use rift::engine::rift::events::Event;
use rift::engine::rift::mrc::adv_set::{AdvSplit, TensorSet};
use rift::engine::rift::mrc::multi_device::Devices;
use rift::engine::rift::mrc::results::{MrcResult, ScreenSummary};
use rift::engine::rift::mrc::{select_modules, MrcConfig, Variant};

use rift::engine::rift::mrc::screen::ExactLowest;
use rift::engine::rift::mrc::shard::ShardResult;
use rift::engine::rift::mrc::stage::{MrcInput, MrcStage};
use rift::engine::rift::run_config::{MrcPlan, ScreenPlan};
use rift::engine::tensors::to_raw;
use rift::engine::CancelFlag;
use std::path::Path;

pub fn mrc_config(flags: &MrcFlags, seed: u64) -> Result<MrcConfig> {
    if !(flags.epsilon > 0.0 && flags.epsilon.is_finite()) {
        bail!("--epsilon must be a positive number, got {}", flags.epsilon);
    }
    if let Some(b) = flags.cache_budget {
        if !(b >= 0.0 && b.is_finite()) {
            bail!("--cache-budget is in MiB and must be a number ≥ 0, got {b}");
        }
    }
    Ok(MrcConfig {
        epsilon: flags.epsilon,
        epochs: flags.epochs,
        lr: flags.mrc_lr,
        batch_size: flags.mrc_batch_size.max(1),
        variant: Variant::parse(&flags.variant).map_err(anyhow::Error::msg)?,
        fast: flags.fast,
        seed,
        cache_budget_mib: flags.cache_budget,
    })
}

pub fn print_mrc_table(r: &MrcResult) {
    println!("MRC ({} variant, ε {}, {} epochs) on {} adversarial samples from the {} split; baseline loss {:.4}, accuracy {:.2}%",
        r.variant, r.epsilon, r.epochs, r.adv_n, r.adv_split, r.baseline_loss, r.baseline_acc);
    if let Some(s) = &r.screen {
        print_screened_table(r, s);
        return;
    }
    println!(
        "{:>4} {:<28} {:>10} {:>10} {:>10}",
        "rank", "module", "MRC", "acc drop", "params"
    );
    for (i, m) in r.modules.iter().enumerate() {
        println!(
            "{:>4} {:<28} {:>10.4} {:>10.2} {:>10}{}",
            i + 1,
            m.name,
            m.mrc,
            m.robust_acc_drop,
            m.params,
            if m.recommended {
                "  <- non-robust-critical (recommended)"
            } else {
                ""
            }
        );
    }
}

/// Exact modules first (ranked by MRC), then the estimated-only ones by estimate; every
/// row says whether its values are exact or estimated.
fn print_screened_table(r: &MrcResult, s: &ScreenSummary) {
    let step = r.modules.iter().any(|m| m.estimate_step.is_some())
        || r.estimated_only.iter().any(|m| m.estimate_step.is_some());
    println!(
        "screening: {} in {:.2} s; `estimate` is a {}: ε·‖w‖·‖∇w L_adv‖{}",
        s.method,
        s.seconds,
        s.label,
        if step {
            "; `step` is the loss rise after one step of size ε‖w‖ along the normalised gradient"
        } else {
            ""
        }
    );
    println!(
        "exact MRC for {} of {} modules (exact_lowest: {})",
        r.modules.len(),
        r.modules.len() + r.estimated_only.len(),
        s.exact_lowest
    );
    let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.4}"));
    println!(
        "{:>4} {:<28} {:>10} {:>10} {:>10} {}{:>10}  value",
        "rank",
        "module",
        "MRC",
        "acc drop",
        "estimate",
        if step {
            format!("{:>10} ", "step")
        } else {
            String::new()
        },
        "params",
    );
    for (i, m) in r.modules.iter().enumerate() {
        println!(
            "{:>4} {:<28} {:>10.4} {:>10.2} {:>10} {}{:>10}  exact{}",
            i + 1,
            m.name,
            m.mrc,
            m.robust_acc_drop,
            opt(m.estimate),
            if step {
                format!("{:>10} ", opt(m.estimate_step))
            } else {
                String::new()
            },
            m.params,
            if m.recommended {
                "  <- non-robust-critical (recommended)"
            } else {
                ""
            }
        );
    }
    for m in &r.estimated_only {
        println!(
            "{:>4} {:<28} {:>10} {:>10} {:>10.4} {}{:>10}  estimate only",
            "-",
            m.name,
            "—",
            "—",
            m.estimate,
            if step {
                format!("{:>10} ", opt(m.estimate_step))
            } else {
                String::new()
            },
            m.params
        );
    }
    if r.modules.is_empty() {
        println!("no exact MRC was computed, so nothing is recommended: add --exact-lowest K to measure the K lowest-estimate modules exactly");
    }
    if let Some(rho) = s.spearman_vs_exact {
        println!(
            "rank agreement over {} modules: Spearman ρ {:.3} (estimate vs exact){}; lowest module {}",
            r.modules.len(),
            rho,
            s.spearman_step_vs_exact
                .map_or(String::new(), |x| format!(", {x:.3} (step vs exact)")),
            match s.lowest_matches {
                Some(true) => "matched",
                Some(false) => "did not match",
                None => "unknown",
            }
        );
    }
}

/// Refuses screening flags that make no sense together, before any work.
fn check_screen_flags(args: &MrcArgs) -> Result<()> {
    if !args.screen {
        if let Some(k) = args.exact_lowest {
            bail!("--exact-lowest {} chooses which modules get exact MRC after first-order screening, so it needs --screen; plain `rift mrc` already computes exact MRC of every module", k.text());
        }
        if args.one_step {
            bail!(
                "--one-step adds a second estimate to first-order screening, so it needs --screen"
            );
        }
    }
    Ok(())
}

fn save_adv_set(path: &Path, adv: &TensorSet) -> Result<()> {
    let x = to_raw(&adv.x.f_to_kind(tch::Kind::Float)?)?;
    let y = to_raw(&adv.y)?;
    save_by_extension(path, &[("x".into(), x), ("y".into(), y)])?;
    eprintln!("wrote the adversarial set to {}", path.display());
    Ok(())
}

pub fn mrc(args: &MrcArgs) -> Result<()> {
    check_screen_flags(args)?;
    if let Some(p) = &args.save_adv_set {
        save_format_for(p)?;
    }
    let rt = runtime(&args.runtime)?;
    let kind = DatasetKind::parse(&args.data.dataset)?;
    let adv_split = AdvSplit::parse(kind, &args.mrc.adv_split)?;
    // `--limit` counts evaluation samples; the adversarial set MRC scores on is sized by
    // --adv-limit, so the flag would be silently ignored here: refuse it.
    if let Some(l) = args.data.limit {
        bail!("rift mrc does not take --limit {l}: MRC scores modules on the adversarial set, whose size is --adv-limit N (the first N samples of --adv-split)");
    }
    let attack = attack_config(&args.attack)?.unwrap_or_else(PgdConfig::clean);
    let mut flags = args.mrc.clone();
    if let Some(e) = args.epochs {
        flags.epochs = e;
    }
    let cfg = mrc_config(&flags, rt.seed)?;
    let (ckpt, model) = load_model(&args.model, kind, rt.device, rt.compute)?;
    let all_modules = select_modules(&model, &args.mrc.modules)?;
    let plan = MrcPlan {
        modules: args.mrc.modules.clone(),
        adv_split: adv_split.name().to_string(),
        adv_limit: args.mrc.adv_limit,
        config: cfg,
        screen: args.screen.then(|| ScreenPlan {
            exact: args.exact_lowest.unwrap_or(ExactLowest::None),
            one_step: args.one_step,
        }),
    };
    let devices = match args.devices.len() {
        0 | 1 => None,
        _ => Some(
            args.devices
                .iter()
                .map(|d| rift::engine::device::choose(d).map(|(dev, _)| dev))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let choice = model_choice(&args.model)?;
    let load = model_on(&ckpt, &choice, kind, rt.compute);
    let input = MrcInput {
        model: &model,
        attack: &attack,
        seed: rt.seed,
        batch_size: args.data.batch_size,
        kind,
        data_dir: &args.data.data_dir,
        // --limit is refused above: the adversarial set is sized by --adv-limit, and of the
        // test split (ImageNet) only those images are decoded.
        load: rift::engine::data::LoadOptions {
            limit: (adv_split == AdvSplit::Test)
                .then_some(args.mrc.adv_limit)
                .flatten(),
            ..args.data.load_options()
        },
        loaded: &[],
        shard: args.shard,
        devices: devices.as_deref().map(|list| Devices { list, load: &load }),
    };
    let cancel = CancelFlag::default();
    let mut printer = Printer::new();
    let mut sink = |e: Event| printer.show(&e);
    let mut stage = MrcStage::new(plan, None);
    let result = stage.run(&input, &cancel, &mut sink);
    // The set is written even when scoring failed: it took the attack's time to build.
    if let (Some(p), Some(adv)) = (&args.save_adv_set, stage.adv_set()) {
        save_adv_set(p, adv)?;
    }
    let result = result?;
    print_mrc_table(&result);
    if let (Some(shard), Some(dir)) = (args.shard, &args.session) {
        let path = shard.path(dir);
        let out = ShardResult {
            shard,
            all_modules: all_modules.iter().map(|(_, m)| m.name.clone()).collect(),
            result: result.clone(),
        };
        rift::report::write_structured(&path, &out)?;
        eprintln!(
            "wrote shard {} of {} ({} modules) to {}; `rift merge {}` combines the shards",
            shard.index,
            shard.count,
            args.shard.map_or(0, |s| s.select(&all_modules).len()),
            path.display(),
            dir.display()
        );
    }
    if let Some(path) = &args.output {
        rift::report::write_structured(path, &result)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
