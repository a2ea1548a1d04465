//! `rift tui` (and `rift demo` without `--headless`): the interactive explorer over the
//! same stages and settings as `rift run`.
use super::finetune::finetune_config;
use super::interpolate::sweep_config;
use super::mrc::mrc_config;
use super::{attack_config, load_model, runtime};
use crate::cli::{RunArgs, TuiArgs};
use anyhow::{bail, Result};
use rift::engine::data::DatasetKind;
use rift::engine::device::device_name;
use rift::jobs::{JobSetup, Worker};
use rift::report::session::SessionSettings;
use rift::tui::app::{run as run_app, AppOptions};
use std::io::IsTerminal;

pub fn tui(args: &TuiArgs) -> Result<()> {
    let run = RunArgs {
        model: args.model.clone(),
        data: args.data.clone(),
        attack: args.attack.clone(),
        mrc: args.mrc.clone(),
        ft: args.ft.clone(),
        sweep: args.sweep.clone(),
        runtime: args.runtime.clone(),
        session: args.session.clone(),
        ood_dataset: None,
        ood_dir: None,
        severities: None,
    };
    explore(&run, args.theme.clone(), "rift run")
}

/// Opens the explorer on the settings of a `rift run` command line; `headless` names the
/// command to use without a terminal.
pub fn explore(args: &RunArgs, theme: Option<String>, headless: &str) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!("the explorer needs a terminal (stdout is not one): use `{headless}` for the same pipeline without it");
    }
    let rt = runtime(&args.runtime)?;
    let kind = DatasetKind::parse(&args.data.dataset)?;
    let Some(attack) = attack_config(&args.attack)? else {
        bail!("the explorer measures robustness: --attack none is not possible here");
    };
    let mrc = mrc_config(&args.mrc, rt.seed)?;
    let finetune = finetune_config(&args.ft, args.data.batch_size, args.data.limit, rt.seed)?;
    let sweep = sweep_config(
        &args.sweep,
        attack.clone(),
        args.data.limit,
        args.data.batch_size,
        rt.seed,
    )?;
    let settings = SessionSettings {
        checkpoint: args.model.checkpoint.display().to_string(),
        arch: args.model.arch.clone(),
        dataset: kind.name().to_string(),
        data_dir: args.data.data_dir.display().to_string(),
        device: device_name(rt.device),
        seed: rt.seed,
        attack: attack.clone(),
        eval_limit: args.data.limit,
        batch_size: args.data.batch_size,
        mrc_variant: mrc.variant.name().to_string(),
        mrc_epsilon: mrc.epsilon,
        mrc_epochs: mrc.epochs,
        adv_split: args.mrc.adv_split.clone(),
        adv_limit: args.mrc.adv_limit,
        mrc_fast: mrc.fast,
        layer: args.ft.layer.clone(),
        lr: finetune.lr,
        ft_epochs: finetune.epochs,
        select_on: args.ft.select_on.clone(),
        freeze_bn_stats: finetune.freeze_bn_stats,
        alphas: sweep.alphas.clone(),
        refine: sweep.refine,
        tolerance: sweep.tolerance,
        ood_dir: None,
    };
    let opts = AppOptions {
        theme,
        lr: finetune.lr,
        tolerance: sweep.tolerance,
        ft_epochs: finetune.epochs,
    };
    let model_args = args.model.clone();
    let device = rt.device;
    let (handle, rx) = Worker::spawn(JobSetup {
        load: Box::new(move || load_model(&model_args, kind, device)),
        kind,
        data_dir: args.data.data_dir.clone(),
        attack,
        eval_limit: args.data.limit,
        batch_size: args.data.batch_size,
        seed: rt.seed,
        modules: args.mrc.modules.clone(),
        adv_split: args.mrc.adv_split.clone(),
        adv_limit: args.mrc.adv_limit,
        mrc,
        finetune,
        sweep,
        session_dir: args.session.clone(),
        settings,
    })?;
    run_app(handle, rx, opts)
}
