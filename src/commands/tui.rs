//! `rift tui` (and `rift demo` without `--headless`): the interactive explorer over the
//! same stages and settings as `rift run`; `--resume` reopens a saved session, `--follow`
//! watches a headless run.
use super::load_model;
use crate::cli::{Cli, Command, ModelArgs, ReadingArgs, RunArgs, RuntimeArgs, TuiArgs};
use anyhow::{bail, Context, Result};
use clap::Parser;
use rift::engine::continuation::{continue_session, Requested};
use rift::engine::data::DatasetKind;
use rift::engine::rift::final_eval::ood_dir::corruptions_in_reach;
use rift::engine::rift::mrc::screen::ExactLowest;
use rift::engine::rift::pipeline::{OodSetup, PipelineSetup};
use rift::engine::rift::run_config::RunConfig;
use rift::engine::rift::run_config::ScreenPlan;
use rift::jobs::{follow::follow, JobSetup, Worker};
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
            checkpoint: Some(checkpoint),
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
        restart_from: args.restart_from,
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
/// command to use without a terminal; `resume` is the saved session to start from. A
/// session already in `--session` is continued when its settings agree (or with
/// `--restart-from`), and refused before the model loads when they do not.
pub fn explore(
    args: &RunArgs,
    theme: Option<String>,
    headless: &str,
    resume: Option<Session>,
) -> Result<()> {
    need_terminal(headless)?;
    // One writer per session, before anything of it is read.
    super::held_locks::hold_session_lock(&args.session)?;
    let mut plan = super::run::plan(args, "the explorer")?;
    // The explorer always screens first (the estimates preview the bars and order the
    // exact work); exact MRC then covers every module unless --screen K.
    let exact_lowest = args.screen.unwrap_or(ExactLowest::All);
    plan.settings.mrc_screen = Some(exact_lowest.text());
    plan.config.mrc.screen = Some(ScreenPlan {
        exact: exact_lowest,
        one_step: false,
    });
    let dir = args.session.as_path();
    let resume = match resume {
        Some(s) => Some(s),
        None if Session::path(dir).exists() => {
            let req = Requested {
                config: &plan.config,
                settings: &plan.settings,
                restart_from: args.restart_from,
                device: &plan.settings.device,
            };
            Some(continue_session(Session::load(dir)?, dir, &req)?)
        }
        None => None,
    };
    super::run::check_partial_file(dir, args.restart_from)?;
    launch(plan, args.model.clone(), theme, resume)
}

/// The explorer's worker and UI on `plan`, the model read as `model_args` says.
fn launch(
    plan: super::run::Plan,
    model_args: ModelArgs,
    theme: Option<String>,
    resume: Option<Session>,
) -> Result<()> {
    let super::run::Plan {
        rt,
        mut setup,
        config,
        settings,
        ..
    } = plan;
    // OOD runs after an accepted α when the corrupted set is there (as in `rift run`).
    // An unreadable corrupted-set directory is an error now, not a silent "no OOD".
    if let Some(o) = setup.ood.take() {
        if !corruptions_in_reach(o.kind, &o.dir)?.is_empty() {
            setup.ood = Some(o);
        }
    }
    let opts = AppOptions {
        theme,
        lr: setup.finetune.lr,
        tolerance: setup.sweep.tolerance,
        ft_epochs: setup.finetune.epochs,
        resume: resume.clone(),
        follow: None,
        ood: setup.ood.is_some(),
    };
    let (device, compute) = (rt.device, rt.compute);
    let kind = setup.kind;
    let (handle, rx) = Worker::spawn(JobSetup {
        load: Box::new(move || load_model(&model_args, kind, device, compute)),
        pipeline: setup,
        config,
        settings,
        resume,
    })?;
    run_app((Some(handle), rx), opts)
}

/// `--resume DIR`: the session's own settings. A session that records its configs whole
/// is rebuilt from them (`plan_from_config`); an older one from the `rift run` line its
/// summary describes.
fn resume(dir: &Path, theme: Option<String>) -> Result<()> {
    let session = Session::load(dir)?;
    need_terminal("rift report --session DIR")?;
    if let Some(config) = session.config.clone() {
        super::held_locks::hold_session_lock(dir)?;
        let (plan, model_args) = plan_from_config(&config, &session, dir)?;
        return launch(plan, model_args, theme, Some(session));
    }
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

/// The plan of a session's recorded configs, every stage exactly as it ran; the device is
/// chosen afresh (`auto`), so a session made on a GPU machine opens on a laptop.
pub fn plan_from_config(
    config: &RunConfig,
    session: &Session,
    dir: &Path,
) -> Result<(super::run::Plan, ModelArgs)> {
    let m = &config.model;
    let rt = super::runtime(&RuntimeArgs {
        device: "auto".into(),
        seed: config.data.seed,
        threads: None,
        precision: m.precision.clone(),
        channels_last: m.channels_last,
        preset: config.preset.clone(),
    })?;
    let model_args = ModelArgs {
        checkpoint: Some(m.checkpoint.clone().into()),
        reading: ReadingArgs {
            arch: m.arch.clone(),
            width: m.width,
            activation: m.activation.clone(),
            normalize: m.normalize.clone(),
            // The recorded checkpoint is the resolved file, so the directory is not needed.
            zoo: m.zoo.clone(),
            model_dir: rift::engine::zoo::DEFAULT_MODEL_DIR.into(),
        },
    };
    let kind = DatasetKind::parse(&config.data.dataset)?;
    let ood = match &config.ood {
        Some(o) => Some(OodSetup {
            kind: DatasetKind::parse(&o.dataset)?,
            dir: o.dir.clone().into(),
            severities: o.severities.clone(),
        }),
        None => None,
    };
    let setup = PipelineSetup {
        kind,
        data_dir: config.data.data_dir.clone().into(),
        load: config.load_options().map_err(anyhow::Error::msg)?,
        attack: config.attack.clone(),
        eval_limit: config.data.eval_limit,
        batch_size: config.data.batch_size,
        seed: config.data.seed,
        finetune: config.finetune.config.clone(),
        sweep: config.sweep.clone(),
        ood,
        session_dir: dir.to_path_buf(),
        final_eval: config.final_eval.clone(),
    };
    let mut settings = session.settings.clone();
    settings.device = rift::engine::device::device_name(rt.device);
    let plan = super::run::Plan {
        rt,
        setup,
        config: config.clone(),
        search: config.search.clone(),
        devices: None,
        settings,
    };
    Ok((plan, model_args))
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
    if let Some(id) = &s.zoo {
        flag("zoo", id.clone());
    }
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
