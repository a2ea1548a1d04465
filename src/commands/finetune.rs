use super::progress::Printer;
use super::{load_model, runtime};
use crate::cli::{FinetuneArgs, FinetuneFlags};
use anyhow::{bail, Context, Result};
use rift::engine::checkpoint::save_by_extension;
use rift::engine::data::{load_split_with, Augmenter, DatasetKind, Split};
use rift::engine::rift::compare::Candidate;
use rift::engine::rift::finetune::{
    finetune as run_finetune, FinetuneConfig, FinetuneData, SelectOn, Trained,
};
use rift::engine::rift::mrc::results::MrcResult;
use rift::engine::CancelFlag;
use std::path::Path;

/// `--layer` (`auto`, `lowest:K` of a saved MRC result, or a comma list of modules) as the
/// modules it trains, through the engine's `Candidate`.
pub fn resolve_layers(
    spec: &str,
    mrc: Option<&MrcResult>,
    mrc_path: Option<&Path>,
) -> Result<Vec<String>> {
    let candidate = Candidate::from_layer_flag(spec).map_err(anyhow::Error::msg)?;
    let shown = mrc_path.map_or(String::new(), |p| format!(" {}", p.display()));
    if candidate.needs_mrc() {
        let Some(r) = mrc else {
            bail!("--layer {spec} needs a saved MRC result: pass --mrc-result FILE (from `rift mrc --output FILE`)");
        };
        if r.modules.is_empty() && !r.estimated_only.is_empty() {
            bail!(
                "--layer {spec}: the MRC result{shown} holds only first-order screening estimates (not in the paper), and estimates never choose a module: rerun `rift mrc --screen` with --exact-lowest K"
            );
        }
        if let Candidate::Lowest(k) = candidate {
            if k > r.modules.len() {
                bail!(
                    "--layer {spec}: the MRC result{shown} has {} modules",
                    r.modules.len()
                );
            }
        }
    }
    match candidate.resolve(mrc, &[], 0) {
        Ok(Trained::Modules(names)) => Ok(names),
        Ok(Trained::AllParameters) => bail!("--layer {spec} names no module"),
        Err(e) => bail!("--layer {spec}: {e}"),
    }
}

/// Checks `--layer` now when it names modules itself (`auto` and `lowest:K` wait for MRC),
/// so that a pipeline refuses a bad list before its first stage.
pub fn check_layer_flag(spec: &str) -> Result<()> {
    Candidate::from_layer_flag(spec)
        .map(drop)
        .map_err(anyhow::Error::msg)
}

pub fn load_mrc_result(path: &Path) -> Result<MrcResult> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the MRC result {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| {
        format!(
            "{} is not a `rift mrc --output` result (YAML or JSON)",
            path.display()
        )
    })
}

pub fn finetune_config(
    flags: &FinetuneFlags,
    batch_size: usize,
    test_limit: Option<usize>,
    seed: u64,
) -> Result<FinetuneConfig> {
    if !(flags.lr > 0.0 && flags.lr.is_finite()) {
        bail!("--lr must be a positive number, got {}", flags.lr);
    }
    let select_on = match flags.select_on.as_str() {
        "val" => SelectOn::Val,
        "test" => SelectOn::Test,
        other => bail!("unknown --select-on `{other}`; expected val or test"),
    };
    // Published: ×0.1 half-way (epoch 5 of 10); a 1-epoch run keeps the requested lr.
    let milestones = match (flags.milestones.is_empty(), flags.epochs) {
        (false, _) => flags.milestones.clone(),
        (true, e) if e >= 2 => vec![e / 2],
        _ => vec![],
    };
    Ok(FinetuneConfig {
        lr: flags.lr,
        epochs: flags.epochs,
        milestones,
        select_on,
        freeze_bn_stats: flags.freeze_bn_stats,
        seed,
        test_limit,
        batch_size,
        ..FinetuneConfig::default()
    })
}

pub fn finetune(args: &FinetuneArgs) -> Result<()> {
    let rt = runtime(&args.runtime)?;
    let kind = DatasetKind::parse(&args.data.dataset)?;
    let cfg = finetune_config(&args.ft, args.data.batch_size, args.data.limit, rt.seed)?;
    let mrc = match &args.ft.mrc_result {
        Some(p) => Some(load_mrc_result(p)?),
        None => None,
    };
    let layers = resolve_layers(&args.ft.layer, mrc.as_ref(), args.ft.mrc_result.as_deref())?;
    // Fail on a bad --save before hours of work.
    rift::engine::checkpoint::save_format_for(&args.save)?;
    let (_ckpt, model) = load_model(&args.model, kind, rt.device, rt.compute)?;
    let opts = args.data.load_options();
    let train = load_split_with(kind, &args.data.data_dir, Split::Train, &opts)?;
    let test = load_split_with(kind, &args.data.data_dir, Split::Test, &opts)?;
    model.check_input(&[
        1,
        train.channels as i64,
        train.height as i64,
        train.width as i64,
    ])?;
    let mut printer = Printer::new();
    let augmenter = Augmenter::for_dataset(kind, train.height);
    let data = FinetuneData {
        train: &train,
        test: &test,
        augmenter: &augmenter,
    };
    let result = run_finetune(
        &model,
        &rift::engine::rift::finetune::Trained::Modules(layers),
        data,
        &cfg,
        // A single fine-tuning writes only its result: nothing to continue from.
        None,
        &CancelFlag::default(),
        &mut |e| printer.show(&e),
    )?;
    if let Some(msg) = &result.diverged {
        eprintln!("warning: {msg}");
    }
    save_by_extension(&args.save, &model.file_state()?)?;
    println!(
        "fine-tuned {} ({} parameters); kept epoch {}; wrote {}",
        result.layers.join(", "),
        result.trained_params,
        result.best_epoch,
        args.save.display()
    );
    if let Some(path) = &args.output {
        rift::report::write_structured(path, &result)?;
    }
    Ok(())
}
