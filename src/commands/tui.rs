//! `rift tui` (and `rift demo` without `--headless`): the interactive explorer over the
//! same stages and settings as `rift run`; `--resume` reopens a saved session, `--follow`
//! watches a headless run.
use super::load_model;
use crate::cli::{Cli, Command, ModelArgs, RunArgs, TuiArgs};
use anyhow::{bail, Context, Result};
use clap::Parser;
use rift::engine::rift::ood::corruptions_found;
use rift::engine::rift::screen::ExactLowest;
use rift::jobs::{follow::follow, JobSetup, MrcSetup, Worker};
use rift::report::session::{Session, SessionSettings};
use rift::tui::app::{run as run_app, AppOptions};
use std::io::IsTerminal;
use std::path::Path;

pub fn tui(args: &TuiArgs) -> Result<()> {
    if let Some(dir) = &args.follow {
        return follow_run(dir, args.theme.clone());
    }
    if let Some(dir) = &args.resume {
        return resume(dir, args.theme.clone());
    }
    let Some(checkpoint) = args.checkpoint.clone() else {
        bail!("rift tui needs --checkpoint FILE, --resume DIR or --follow DIR");
    };
    let run = RunArgs {
        model: ModelArgs {
            checkpoint,
            reading: args.reading.clone(),
        },
        data: args.data.clone(),
        attack: args.attack.clone(),
        mrc: args.mrc.clone(),
        ft: args.ft.clone(),
        sweep: args.sweep.clone(),
        search: Default::default(),
        runtime: args.runtime.clone(),
        session: args.session.clone(),
        ood: args.ood.clone(),
        screen: args.screen,
        final_eval: args.final_eval.clone(),
        output: None,
    };
    explore(&run, args.theme.clone(), "rift run", None)
}

fn need_terminal(headless: &str) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!("the explorer needs a terminal (stdout is not one): use `{headless}` for the same pipeline without it");
    }
    Ok(())
}

/// Opens the explorer on the settings of a `rift run` command line; `headless` names the
/// command to use without a terminal; `resume` is the saved session to start from.
pub fn explore(
    args: &RunArgs,
    theme: Option<String>,
    headless: &str,
    resume: Option<Session>,
) -> Result<()> {
    need_terminal(headless)?;
    super::held_locks::hold_session_lock(&args.session)?;
    let super::run::Plan {
        rt,
        mut setup,
        mrc,
        mut settings,
        ..
    } = super::run::plan(args, "the explorer")?;
    // OOD runs after an accepted α when the corrupted set is there (as in `rift run`).
    setup.ood = setup
        .ood
        .take()
        .filter(|o| corruptions_found(o.kind, &o.dir).is_ok_and(|n| !n.is_empty()));
    let opts = AppOptions {
        theme,
        lr: setup.finetune.lr,
        tolerance: setup.sweep.tolerance,
        ft_epochs: setup.finetune.epochs,
        resume: resume.clone(),
        follow: None,
        ood: setup.ood.is_some(),
    };
    // The explorer always screens first (the estimates preview the bars and order the
    // exact work); exact MRC then covers every module unless --screen K.
    let exact_lowest = args.screen.unwrap_or(ExactLowest::All);
    settings.mrc_screen = Some(exact_lowest.text());
    let model_args = args.model.clone();
    let (device, compute) = (rt.device, rt.compute);
    let kind = setup.kind;
    let (handle, rx) = Worker::spawn(JobSetup {
        load: Box::new(move || load_model(&model_args, kind, device, compute)),
        pipeline: setup,
        mrc: MrcSetup {
            modules: args.mrc.modules.clone(),
            // Resolved per dataset as published (`--adv-split auto`), as `rift run` records it.
            adv_split: settings.adv_split.clone(),
            adv_limit: args.mrc.adv_limit,
            mrc,
            exact_lowest,
            one_step: false,
        },
        settings,
        resume,
    })?;
    run_app((Some(handle), rx), opts)
}

/// `--resume DIR`: the session's own settings, as the `rift run` line that made them.
fn resume(dir: &Path, theme: Option<String>) -> Result<()> {
    let session = Session::load(dir)?;
    need_terminal("rift report --session DIR")?;
    let argv = run_argv(&session.settings, dir);
    let cli = Cli::try_parse_from(&argv).with_context(|| {
        format!(
            "the settings in {} do not form a valid run",
            Session::path(dir).display()
        )
    })?;
    let Command::Run(run) = cli.command else {
        bail!("internal: the resumed settings did not parse as `rift run`");
    };
    explore(&run, theme, "rift report --session DIR", Some(session))
}

/// `--follow DIR`: the explorer on another process's events, read-only.
fn follow_run(dir: &Path, theme: Option<String>) -> Result<()> {
    let rx = follow(dir)?;
    need_terminal(&format!("tail -f {}/events.jsonl", dir.display()))?;
    let opts = AppOptions {
        theme,
        lr: 0.0,
        tolerance: 0.1,
        ft_epochs: 0,
        resume: None,
        follow: Some(dir.display().to_string()),
        ood: false,
    };
    run_app((None, rx), opts)
}

/// The `rift run` command line of recorded settings (the device is chosen afresh, so a
/// session made on a GPU machine opens on a laptop).
pub fn run_argv(s: &SessionSettings, dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = vec!["rift".into(), "run".into()];
    let mut flag = |name: &str, value: String| {
        v.push(format!("--{name}"));
        v.push(value);
    };
    flag("checkpoint", s.checkpoint.clone());
    flag("arch", s.arch.clone());
    flag("dataset", s.dataset.clone());
    flag("data-dir", s.data_dir.clone());
    flag("seed", s.seed.to_string());
    flag("eps", s.attack.eps.to_string());
    flag("step", s.attack.step.to_string());
    flag("steps", s.attack.steps.to_string());
    flag("restarts", s.attack.restarts.to_string());
    if let Some(l) = s.eval_limit {
        flag("limit", l.to_string());
    }
    flag("batch-size", s.batch_size.to_string());
    flag("variant", s.mrc_variant.clone());
    flag("epsilon", s.mrc_epsilon.to_string());
    flag("mrc-epochs", s.mrc_epochs.to_string());
    flag("adv-split", s.adv_split.clone());
    if let Some(l) = s.adv_limit {
        flag("adv-limit", l.to_string());
    }
    flag("layer", s.layer.clone());
    flag("lr", s.lr.to_string());
    flag("epochs", s.ft_epochs.to_string());
    flag("select-on", s.select_on.clone());
    let alphas: Vec<String> = s.alphas.iter().map(f64::to_string).collect();
    flag("alphas", alphas.join(","));
    flag("refine", s.refine.to_string());
    flag("tolerance", s.tolerance.to_string());
    flag("session", dir.display().to_string());
    if let Some(k) = &s.mrc_screen {
        flag("screen", k.clone());
    }
    if let Some(d) = &s.ood_dir {
        flag("ood-dir", d.clone());
    }
    if let Some(p) = &s.precision {
        flag("precision", p.clone());
    }
    if let Some(n) = &s.normalize {
        flag("normalize", n.clone());
    }
    if let Some(a) = &s.activation {
        flag("activation", a.clone());
    }
    if s.channels_last {
        v.push("--channels-last".into());
    }
    if !s.attack.random_start {
        v.push("--no-random-start".into());
    }
    if s.mrc_fast {
        v.push("--fast".into());
    }
    if s.freeze_bn_stats {
        v.push("--freeze-bn-stats".into());
    }
    v
}
