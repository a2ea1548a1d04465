//! `rift run`: the whole pipeline into a session directory, stage by stage. After each
//! stage (and each MRC module) the state is written atomically, so a killed run continues
//! where it stopped; every event is appended to `events.jsonl` as it happens.
use super::finetune::{check_layer_flag, finetune_config, resolve_layers};
use super::interpolate::{search_config, sweep_config, sweep_devices};
use super::mrc::mrc_config;
use super::progress::Printer;
use super::run_final::{final_eval_plan, print_final_eval};
use super::{attack_config, load_model, model_choice, model_on, runtime};
use crate::cli::RunArgs;
use anyhow::{bail, Context, Result};
use rift::engine::checkpoint::load_checkpoint;
use rift::engine::continuation::{check, continue_session, Requested};
use rift::engine::data::DatasetKind;
use rift::engine::device::device_name;
use rift::engine::models::Precision;
use rift::engine::rift::alpha::chosen_file::check_chosen_files;
use rift::engine::rift::alpha::search::SearchConfig;
use rift::engine::rift::events::{Event, Sink, EVENTS_FORMAT};
use rift::engine::rift::final_eval::ood::{default_severities, parse_severities};
use rift::engine::rift::finetune::finetuned_file::check_finetuned_file;
use rift::engine::rift::finetune::Trained;
use rift::engine::rift::mrc::adv_set::AdvSplit;
use rift::engine::rift::mrc::multi_device::Devices;
use rift::engine::rift::mrc::partial::check_partial;
use rift::engine::rift::mrc::stage::PARTIAL_MRC;
use rift::engine::rift::pipeline::{OodSetup, Pipeline, PipelineSetup, SweepHow};
use rift::engine::rift::run_config::{
    DataConfig, FinetunePlan, ModelConfig, MrcPlan, OodPlan, RunConfig, ScreenPlan, SessionStage,
};
use rift::engine::CancelFlag;
use rift::report::session::{Session, SessionSettings, EVENTS_FILE};
use std::io::Write;
use std::path::Path;

/// Appends events to `events.jsonl`, one JSON object a line, flushed as it goes.
pub(super) struct EventLog(std::fs::File);

impl EventLog {
    pub(super) fn open(dir: &Path) -> Result<EventLog> {
        let path = dir.join(EVENTS_FILE);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // A run killed mid-append leaves a last line without its newline. The log is a
        // record rift never reads back to decide what to compute, so that line is kept as
        // it is; this run starts on a line of its own rather than glue its first event to
        // it (a reader skips the one torn line instead of losing this run's first event).
        if ends_torn(&mut f).with_context(|| format!("cannot read {}", path.display()))? {
            f.write_all(b"\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(EventLog(f))
    }
    pub(super) fn write(&mut self, e: &Event) {
        // A batch says nothing a follower shows: it would only grow the log.
        if matches!(e, Event::Batch { .. }) {
            return;
        }
        if let Ok(mut line) = serde_json::to_string(e) {
            // One write for the line and its newline, so a kill cannot split them.
            line.push('\n');
            let _ = self.0.write_all(line.as_bytes());
            let _ = self.0.flush();
        }
    }
}

/// Whether the file is non-empty and its last byte is not a newline.
fn ends_torn(f: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if f.metadata()?.len() == 0 {
        return Ok(false);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    f.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Everything a pipeline run needs from its command line, checked before any work:
/// shared by `rift run` and the explorer. Flags become the engine's configs here only.
pub struct Plan {
    pub rt: super::Runtime,
    pub setup: PipelineSetup,
    /// Every setting that changes a number, whole (`session.yaml`'s `config`).
    pub config: RunConfig,
    pub search: Option<SearchConfig>,
    /// `--devices` for the α sweep.
    pub devices: Option<Vec<tch::Device>>,
    pub settings: SessionSettings,
}

pub fn plan(args: &RunArgs, what: &str) -> Result<Plan> {
    let rt = runtime(&args.runtime)?;
    // Refuse --devices with --search now, not after MRC and fine-tuning.
    let search = search_config(&args.search)?;
    let devices = sweep_devices(&args.sweep, search.is_some())?;
    let kind = DatasetKind::parse(&args.data.dataset)?;
    let Some(attack) = attack_config(&args.attack)? else {
        bail!("{what} measures robustness: --attack none is not possible here");
    };
    let mrc_cfg = mrc_config(&args.mrc, rt.seed)?;
    let ft_cfg = finetune_config(&args.ft, args.data.batch_size, args.data.limit, rt.seed)?;
    check_layer_flag(&args.ft.layer)?;
    let sweep_cfg = sweep_config(
        &args.sweep,
        attack.clone(),
        args.data.limit,
        args.data.batch_size,
        rt.seed,
    )?;
    let ood_kind = match &args.ood.ood_dataset {
        Some(name) => Some(DatasetKind::parse(name)?),
        None => kind.corrupted(),
    };
    let ood_dir = args
        .ood
        .ood_dir
        .clone()
        .unwrap_or_else(|| args.data.data_dir.clone());
    let severities = match (&args.ood.severities, ood_kind) {
        (Some(s), _) => parse_severities(s).map_err(anyhow::Error::msg)?,
        (None, Some(k)) => default_severities(k),
        (None, None) => vec![],
    };
    let adv_split = AdvSplit::parse(kind, &args.mrc.adv_split)?
        .name()
        .to_string();
    let settings = SessionSettings {
        checkpoint: args.model.checkpoint().display().to_string(),
        zoo: args.model.reading.zoo.clone(),
        arch: args.model.reading.arch.clone(),
        dataset: kind.name().to_string(),
        data_dir: args.data.data_dir.display().to_string(),
        device: device_name(rt.device),
        precision: (rt.compute.precision != Precision::Fp32)
            .then(|| rt.compute.precision.name().to_string()),
        channels_last: rt.compute.channels_last,
        seed: rt.seed,
        attack: attack.clone(),
        eval_limit: args.data.limit,
        batch_size: args.data.batch_size,
        mrc_variant: mrc_cfg.variant.name().to_string(),
        mrc_epsilon: mrc_cfg.epsilon,
        mrc_epochs: mrc_cfg.epochs,
        adv_split: adv_split.clone(),
        adv_limit: args.mrc.adv_limit,
        mrc_fast: mrc_cfg.fast,
        mrc_screen: args.screen.map(|e| e.text()),
        layer: args.ft.layer.clone(),
        lr: ft_cfg.lr,
        ft_epochs: ft_cfg.epochs,
        select_on: args.ft.select_on.clone(),
        freeze_bn_stats: ft_cfg.freeze_bn_stats,
        alphas: sweep_cfg.alphas.clone(),
        refine: sweep_cfg.refine,
        tolerance: sweep_cfg.tolerance,
        search: search.as_ref().map(|c| c.text()),
        ood_dir: ood_kind.map(|_| ood_dir.display().to_string()),
        normalize: (args.model.reading.normalize != "auto")
            .then(|| args.model.reading.normalize.clone()),
        activation: args.model.reading.activation.clone(),
        preset: args.runtime.preset.clone(),
        ood_headline: (args.ood.ood_headline != "found").then(|| args.ood.ood_headline.clone()),
    };
    let final_eval = final_eval_plan(&args.final_eval, &attack, rt.seed, args.data.batch_size)?;
    let config = RunConfig {
        model: ModelConfig {
            checkpoint: settings.checkpoint.clone(),
            arch: args.model.reading.arch.clone(),
            width: args.model.reading.width,
            normalize: args.model.reading.normalize.clone(),
            activation: args.model.reading.activation.clone(),
            precision: rt.compute.precision.name().to_string(),
            channels_last: rt.compute.channels_last,
            zoo: args.model.reading.zoo.clone(),
        },
        data: DataConfig {
            dataset: settings.dataset.clone(),
            data_dir: settings.data_dir.clone(),
            eval_limit: args.data.limit,
            batch_size: args.data.batch_size,
            seed: rt.seed,
            preprocess: args.data.preprocess.map(|p| p.name().to_string()),
            subset: args.data.subset.map(|s| s.name().to_string()),
        },
        attack: attack.clone(),
        mrc: MrcPlan {
            modules: args.mrc.modules.clone(),
            adv_split,
            adv_limit: args.mrc.adv_limit,
            config: mrc_cfg,
            screen: args.screen.map(|exact| ScreenPlan {
                exact,
                one_step: false,
            }),
        },
        finetune: FinetunePlan {
            layer: args.ft.layer.clone(),
            config: ft_cfg.clone(),
        },
        sweep: sweep_cfg.clone(),
        search: search.clone(),
        ood: ood_kind.map(|k| OodPlan {
            dataset: k.name().to_string(),
            dir: ood_dir.display().to_string(),
            severities: severities.clone(),
            headline: args.ood.ood_headline.clone(),
        }),
        final_eval: final_eval.clone(),
        preset: args.runtime.preset.clone(),
    };
    let setup = PipelineSetup {
        kind,
        data_dir: args.data.data_dir.clone(),
        load: config.load_options().map_err(anyhow::Error::msg)?,
        attack,
        eval_limit: args.data.limit,
        batch_size: args.data.batch_size,
        seed: rt.seed,
        finetune: ft_cfg,
        sweep: sweep_cfg,
        ood: ood_kind.map(|kind| OodSetup {
            kind,
            dir: ood_dir,
            severities,
        }),
        session_dir: args.session.clone(),
        final_eval,
    };
    Ok(Plan {
        rt,
        setup,
        config,
        search,
        devices,
        settings,
    })
}

/// `existing` (the session read from `dir`, already checked against `plan`) continued
/// with it, or a new session for `model`.
fn open_session(
    existing: Option<Session>,
    dir: &Path,
    plan: &Plan,
    restart_from: Option<SessionStage>,
    model: &rift::engine::models::Model,
) -> Result<Session> {
    let device = device_name(plan.rt.device);
    let Some(s) = existing else {
        let mut s = Session::new(dir, plan.settings.clone(), Some(plan.config.clone()), model);
        s.settings.device = device;
        return Ok(s);
    };
    let req = Requested {
        config: &plan.config,
        settings: &plan.settings,
        restart_from,
        device: &device,
    };
    let s = continue_session(s, dir, &req)?;
    match restart_from {
        Some(stage) => eprintln!(
            "continuing the session in {}, recomputing from {} on",
            dir.display(),
            stage.name()
        ),
        None => eprintln!("continuing the session in {}", dir.display()),
    }
    Ok(s)
}

/// A partial MRC file that does not read is refused now, not after the baseline (unless
/// `--restart-from` drops it).
pub fn check_partial_file(dir: &Path, restart_from: Option<SessionStage>) -> Result<()> {
    if restart_from.is_some_and(|s| s <= SessionStage::Mrc) {
        return Ok(());
    }
    Ok(check_partial(&dir.join(PARTIAL_MRC))?)
}

/// Weights the session names that are there but do not load are refused now, before any
/// stage (a stage `--restart-from` recomputes writes them anew, so they are not checked).
fn check_weight_files(dir: &Path, s: &Session, restart_from: Option<SessionStage>) -> Result<()> {
    let kept = |stage: SessionStage| restart_from.is_none_or(|r| r > stage);
    if kept(SessionStage::Finetune) {
        check_finetuned_file(dir, s)?;
    }
    if kept(SessionStage::Sweep) {
        check_chosen_files(dir, s)?;
    }
    Ok(())
}

/// The pipeline of a session directory: the plan checked, the model loaded, the session
/// continued (same settings) or started, and the final evaluation checked against the
/// model, all before the first stage. Shared by `rift run` and `rift compare`.
pub(super) fn open(args: &RunArgs, what: &str) -> Result<(Pipeline, Plan)> {
    let mut plan = plan(args, what)?;
    let dir = args.session.as_path();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the session directory {}", dir.display()))?;
    // One writer per session; then a session with other settings is refused, both before
    // the model loads.
    super::held_locks::hold_session_lock(dir)?;
    let existing = match Session::path(dir).exists() {
        true => Some(Session::load(dir)?),
        false => None,
    };
    match &existing {
        Some(s) => {
            let req = Requested {
                config: &plan.config,
                settings: &plan.settings,
                restart_from: args.restart_from,
                device: &plan.settings.device,
            };
            check(s, dir, &req)?;
            check_weight_files(dir, s, args.restart_from)?;
        }
        None => {
            if let Some(stage) = args.restart_from {
                bail!("--restart-from {}: {} holds no session to continue (a new session computes every stage anyway)", stage.name(), dir.display());
            }
        }
    }
    check_partial_file(dir, args.restart_from)?;
    let (ckpt, model) = load_model(
        &args.model,
        plan.setup.kind,
        plan.rt.device,
        plan.rt.compute,
    )?;
    let session = open_session(existing, dir, &plan, args.restart_from, &model)?;
    let setup = plan.setup.clone();
    let p = Pipeline::new(setup, ckpt, model, session)?;
    if let Some(fe) = &p.setup.final_eval {
        // Attack settings that do not fit the model (targets, classes) fail now.
        fe.aa
            .validate(p.model.spec.num_classes)
            .map_err(|e| anyhow::anyhow!("--final-eval: {e}"))?;
    }
    plan.settings.device = p.session.settings.device.clone();
    Ok((p, plan))
}

pub fn run(args: &RunArgs) -> Result<()> {
    let (mut p, plan) = open(args, "rift run")?;
    let Plan {
        rt,
        config,
        search,
        devices,
        ..
    } = plan;
    let dir = args.session.as_path();
    save(&mut p)?;
    let mut sink = event_sink(dir)?;
    let cancel = CancelFlag::default();

    // 1. Baseline clean and robust accuracy of the AT model.
    baseline_once(&mut p, &cancel, &mut sink)?;

    // 2. MRC, module by module (partial results survive a kill).
    mrc_once(&mut p, &config.mrc, &cancel, &mut sink)?;

    // 3–6. Fine-tune, sweep, the chosen model, OOD and the final evaluation.
    let layers = resolve_layers(&args.ft.layer, p.session.mrc.as_ref(), None)?;
    let sweep_with = SweepWith {
        search: search.as_ref(),
        devices: devices.as_deref(),
        model: &args.model,
        compute: rt.compute,
    };
    after_mrc(
        &mut p,
        &Trained::Modules(layers),
        &sweep_with,
        &cancel,
        &mut sink,
    )?;
    rift::report::render_report(dir)?;
    print_summary(&p.session, dir);
    print_final_eval(&p.session);
    if let Some(path) = &args.output {
        rift::report::write_structured(path, &p.session)?;
    }
    Ok(())
}

/// The sink of a session directory's stages: each event printed (`Printer`) and appended
/// to its `events.jsonl`, which starts with the log's format.
pub(super) fn event_sink(dir: &Path) -> Result<impl FnMut(Event)> {
    let mut log = EventLog::open(dir)?;
    let mut printer = Printer::new();
    let mut sink = move |e: Event| {
        printer.show(&e);
        log.write(&e);
    };
    sink(Event::LogFormat {
        version: EVENTS_FORMAT,
    });
    Ok(sink)
}

/// Clean and robust accuracy of the AT model into the session, unless it holds them.
pub(super) fn baseline_once(p: &mut Pipeline, cancel: &CancelFlag, sink: Sink) -> Result<()> {
    p.baseline_once(true, cancel, sink)?;
    Ok(())
}

/// MRC into the session, module by module (each exact score reaches the partial file as
/// it finishes, so a killed run continues from it), unless the session holds it already.
pub(super) fn mrc_once(
    p: &mut Pipeline,
    plan: &MrcPlan,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<()> {
    let mut stage = p.mrc_stage(plan.clone());
    p.mrc_once(&mut stage, true, cancel, sink)?;
    Ok(())
}

/// Writes the pipeline's session into its directory (atomically), stamped now.
pub(super) fn save(p: &mut Pipeline) -> Result<()> {
    Ok(p.save_session()?)
}

/// How the α sweep runs: `--search`, `--devices`, or the grid on the model's device.
pub(super) struct SweepWith<'a> {
    pub search: Option<&'a SearchConfig>,
    pub devices: Option<&'a [tch::Device]>,
    /// Each device builds its own model from the checkpoint these flags name.
    pub model: &'a crate::cli::ModelArgs,
    pub compute: rift::engine::models::Compute,
}

/// The stages after MRC (`Pipeline::after_mrc`: each skipped when the session holds its
/// result) with the sweep `sweep_with` asks for. `rift run` drives them once; `rift
/// compare` once per candidate. Returns the chosen α.
pub(super) fn after_mrc(
    p: &mut Pipeline,
    what: &Trained,
    sweep_with: &SweepWith,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<f64> {
    // With --devices each device builds its own model; the file is read once more for
    // them (the pipeline's copy is busy being swept).
    let for_devices = match sweep_with.devices {
        Some(_) => Some((
            load_checkpoint(sweep_with.model.checkpoint())?,
            model_choice(sweep_with.model)?,
        )),
        None => None,
    };
    let load = for_devices
        .as_ref()
        .map(|(ckpt, choice)| model_on(ckpt, choice, p.setup.kind, sweep_with.compute));
    let how = match (sweep_with.search, sweep_with.devices, &load) {
        (Some(sc), _, _) => SweepHow::Search(sc),
        (None, Some(list), Some(load)) => SweepHow::Devices(Devices { list, load }),
        _ => SweepHow::Grid,
    };
    Ok(p.after_mrc(what, how, cancel, sink)?)
}

fn print_summary(s: &Session, dir: &Path) {
    if let Some(b) = &s.baseline {
        println!(
            "AT model: clean {:.2}%  robust {:.2}%  (n = {})",
            b.clean_acc,
            b.robust_acc.unwrap_or(0.0),
            b.n
        );
    }
    if let Some(m) = &s.mrc {
        println!(
            "non-robust-critical module: {} (MRC {:.4})",
            m.recommended,
            m.modules.first().map_or(0.0, |x| x.mrc)
        );
    }
    if let Some(i) = &s.interpolation {
        if let Some(p) = i.points.iter().find(|p| p.alpha == i.chosen_alpha) {
            println!(
                "chosen α = {}: clean {:.2}%  robust {:.2}%",
                i.chosen_alpha, p.clean_acc, p.robust_acc
            );
        }
        if let Some(sr) = &i.search {
            println!(
                "α search: {} α screened on {} samples, full set for {:?}, screened only {:?}; attack work {} of the grid's {} samples (ratio {:.3})",
                sr.screened.len(),
                sr.subset_n,
                sr.full.iter().map(|p| p.alpha).collect::<Vec<_>>(),
                sr.screened_only,
                sr.attacked_samples,
                sr.grid_attacked_samples,
                sr.work_ratio
            );
        }
    }
    println!(
        "session written to {} (report.md, session.yaml, plots, chosen.pth)",
        dir.display()
    );
}
