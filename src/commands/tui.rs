//! `rift tui` (and `rift demo` without `--headless`): the interactive explorer over the
//! same stages and settings as `rift run`.
use super::load_model;
use crate::cli::{RunArgs, TuiArgs};
use anyhow::{bail, Result};
use rift::jobs::{JobSetup, Worker};
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
        screen: None,
        output: None,
    };
    explore(&run, args.theme.clone(), "rift run")
}

/// Opens the explorer on the settings of a `rift run` command line; `headless` names the
/// command to use without a terminal.
pub fn explore(args: &RunArgs, theme: Option<String>, headless: &str) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!("the explorer needs a terminal (stdout is not one): use `{headless}` for the same pipeline without it");
    }
    let super::run::Plan {
        rt,
        kind,
        attack,
        mrc,
        finetune,
        sweep,
        mut settings,
        ..
    } = super::run::plan(args, "the explorer")?;
    // The explorer does not evaluate OOD (yet).
    settings.ood_dir = None;
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
