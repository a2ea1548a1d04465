//! `rift run`: the whole pipeline into a session directory, stage by stage. After each
//! stage (and each MRC module) the state is written atomically, so a killed run continues
//! where it stopped; every event is appended to `events.jsonl` as it happens.
use super::finetune::{finetune_config, resolve_layers, run_stage as finetune_stage};
use super::interpolate::{search_config, sweep_config, sweep_devices};
use super::mrc::mrc_config;
use super::progress::Printer;
use super::run_mrc::{mrc_stage, PARTIAL_MRC};
use super::{attack_config, load_model, runtime};
use crate::cli::RunArgs;
use anyhow::{bail, Context, Result};
use rift::engine::checkpoint::{load_checkpoint, save_pth, save_safetensors};
use rift::engine::data::{load_split, DatasetKind, Split};
use rift::engine::device::device_name;
use rift::engine::models::Precision;
use rift::engine::rift::events::Event;
use rift::engine::rift::interpolate::{sweep, Endpoints};
use rift::engine::rift::ood::{
    corruptions_found, default_severities, evaluate_ood, parse_severities,
};
use rift::engine::rift::results::SweepPoint;
use rift::engine::CancelFlag;
use rift::report::session::{now_rfc3339, ChosenWeights, Session, SessionSettings, EVENTS_FILE};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

const FINETUNED: &str = "finetuned.safetensors";

/// The corrupted counterpart of a clean dataset, if it has one.
fn corrupted_kind(kind: DatasetKind) -> Option<DatasetKind> {
    match kind {
        DatasetKind::Cifar10 => Some(DatasetKind::Cifar10C),
        DatasetKind::Cifar100 => Some(DatasetKind::Cifar100C),
        DatasetKind::TinyImageNet => Some(DatasetKind::TinyImageNetC),
        _ => None,
    }
}

/// Appends events to `events.jsonl`, one JSON object a line, flushed as it goes.
struct EventLog(std::fs::File);

impl EventLog {
    fn open(dir: &Path) -> Result<EventLog> {
        let path = dir.join(EVENTS_FILE);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(EventLog(f))
    }
    fn write(&mut self, e: &Event) {
        if let Ok(line) = serde_json::to_string(e) {
            let _ = writeln!(self.0, "{line}");
            let _ = self.0.flush();
        }
    }
}

/// Everything a pipeline run needs from its command line, checked before any work:
/// shared by `rift run` and the explorer.
pub struct Plan {
    pub rt: super::Runtime,
    pub kind: DatasetKind,
    pub attack: rift::engine::attack::PgdConfig,
    pub mrc: rift::engine::rift::mrc::MrcConfig,
    pub finetune: rift::engine::rift::finetune::FinetuneConfig,
    pub sweep: rift::engine::rift::interpolate::SweepConfig,
    pub ood_kind: Option<DatasetKind>,
    pub ood_dir: std::path::PathBuf,
    pub severities: Vec<u8>,
    pub settings: SessionSettings,
}

pub fn plan(args: &RunArgs, what: &str) -> Result<Plan> {
    let rt = runtime(&args.runtime)?;
    // Refuse --devices with --search now, not after MRC and fine-tuning.
    sweep_devices(&args.sweep, args.search.search)?;
    let kind = DatasetKind::parse(&args.data.dataset)?;
    let Some(attack) = attack_config(&args.attack)? else {
        bail!("{what} measures robustness: --attack none is not possible here");
    };
    let mrc_cfg = mrc_config(&args.mrc, rt.seed)?;
    let ft_cfg = finetune_config(&args.ft, args.data.batch_size, args.data.limit, rt.seed)?;
    let sweep_cfg = sweep_config(
        &args.sweep,
        attack.clone(),
        args.data.limit,
        args.data.batch_size,
        rt.seed,
    )?;
    let ood_kind = match &args.ood_dataset {
        Some(name) => Some(DatasetKind::parse(name)?),
        None => corrupted_kind(kind),
    };
    let ood_dir = args
        .ood_dir
        .clone()
        .unwrap_or_else(|| args.data.data_dir.clone());
    let severities = match (&args.severities, ood_kind) {
        (Some(s), _) => parse_severities(s).map_err(anyhow::Error::msg)?,
        (None, Some(k)) => default_severities(k),
        (None, None) => vec![],
    };
    let settings = SessionSettings {
        checkpoint: args.model.checkpoint.display().to_string(),
        arch: args.model.arch.clone(),
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
        adv_split: args.mrc.adv_split.clone(),
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
        search: search_config(&args.search)?.map(|c| c.text()),
        ood_dir: ood_kind.map(|_| ood_dir.display().to_string()),
        normalize: (args.model.reading.normalize != "auto")
            .then(|| args.model.reading.normalize.clone()),
        activation: args.model.reading.activation.clone(),
    };
    Ok(Plan {
        rt,
        kind,
        attack,
        mrc: mrc_cfg,
        finetune: ft_cfg,
        sweep: sweep_cfg,
        ood_kind,
        ood_dir,
        severities,
        settings,
    })
}

pub fn run(args: &RunArgs) -> Result<()> {
    let Plan {
        rt,
        kind,
        attack,
        mrc: mrc_cfg,
        finetune: ft_cfg,
        sweep: sweep_cfg,
        ood_kind,
        ood_dir,
        severities,
        settings,
    } = plan(args, "rift run")?;
    let dir = args.session.as_path();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the session directory {}", dir.display()))?;
    let (ckpt, model) = load_model(&args.model, kind, rt.device, rt.compute)?;
    let mut session = if Session::path(dir).exists() {
        let s = Session::load(dir)?;
        let (mut a, mut b) = (s.settings.clone(), settings.clone());
        a.device.clear();
        b.device.clear();
        if a != b {
            bail!("{} was made with different settings (compare its session.yaml with this command line); use another --session to start afresh, or the same flags to continue it", dir.display());
        }
        eprintln!("continuing the session in {}", dir.display());
        s
    } else {
        Session::new(dir, settings.clone(), &model)
    };
    session.settings.device = device_name(rt.device);
    let save = |s: &mut Session| -> Result<()> {
        s.updated = now_rfc3339();
        s.save(dir)
    };
    save(&mut session)?;
    let mut log = EventLog::open(dir)?;
    let mut printer = Printer::new();
    let mut sink = |e: Event| {
        printer.show(&e);
        log.write(&e);
    };
    let cancel = CancelFlag::default();
    let test = load_split(kind, &args.data.data_dir, Split::Test)?;
    model.check_input(&[
        1,
        test.channels as i64,
        test.height as i64,
        test.width as i64,
    ])?;

    // 1. Baseline clean and robust accuracy of the AT model.
    if session.baseline.is_none() {
        let t = Instant::now();
        let r = rift::engine::rift::baseline::baseline(
            &model,
            &test,
            &attack,
            rt.seed,
            args.data.limit,
            args.data.batch_size,
            &cancel,
            &mut sink,
        )?;
        session.baseline = Some(r);
        finish_stage(&mut session, "baseline", t, &mut sink);
        save(&mut session)?;
    }

    // 2. MRC, module by module (partial results survive a kill).
    if session.mrc.is_none() {
        let t = Instant::now();
        session.mrc = Some(mrc_stage(
            &model, args, kind, &attack, &mrc_cfg, rt.seed, dir, &cancel, &mut sink,
        )?);
        finish_stage(&mut session, "mrc", t, &mut sink);
        save(&mut session)?;
        let _ = std::fs::remove_file(dir.join(PARTIAL_MRC));
    }

    // 3. Fine-tune the chosen module(s); the AT weights are restored afterwards.
    let layers = resolve_layers(&args.ft.layer, session.mrc.as_ref(), None)?;
    let ft_path = dir.join(FINETUNED);
    if session.finetune.is_none() || !ft_path.exists() {
        let t = Instant::now();
        let train = load_split(kind, &args.data.data_dir, Split::Train)?;
        let r = finetune_stage(
            &model, &layers, kind, &train, &test, &ft_cfg, &cancel, &mut sink,
        )?;
        save_safetensors(&ft_path, &model.state()?, &[("alpha".into(), "1".into())])?;
        model.load_state(&ckpt.tensors, &ckpt.path.display().to_string())?;
        session.finetune = Some(r);
        session.finetuned_weights = Some(FINETUNED.into());
        finish_stage(&mut session, "finetune", t, &mut sink);
        save(&mut session)?;
    }

    // 4. Interpolation and the chosen model.
    let ft = load_checkpoint(&ft_path)?;
    let ends = Endpoints::new(&model, &ft.tensors)?;
    if session.interpolation.is_none() {
        let t = Instant::now();
        sink(Event::StageStarted {
            stage: "interpolate".into(),
            detail: format!(
                "{} α values, {} refinement rounds",
                sweep_cfg.alphas.len(),
                sweep_cfg.refine
            ),
        });
        // The baseline ran with the same attack, seed and samples: it is the α = 0 point.
        let known: Vec<SweepPoint> = session
            .baseline
            .iter()
            .map(|b| SweepPoint {
                alpha: 0.0,
                clean_acc: b.clean_acc,
                robust_acc: b.robust_acc.unwrap_or(0.0),
                n: b.n,
            })
            .collect();
        let search_cfg = search_config(&args.search)?;
        let devices = sweep_devices(&args.sweep, search_cfg.is_some())?;
        session.interpolation = Some(match (search_cfg, devices) {
            (Some(sc), _) => rift::engine::rift::alpha_search::search(
                &model, &ends, &test, &sweep_cfg, &sc, &known, &cancel, &mut sink,
            )?,
            (None, Some(devices)) => {
                let load =
                    |device| load_model(&args.model, kind, device, rt.compute).map(|(_, m)| m);
                rift::engine::rift::sweep_devices::sweep_on_devices(
                    &load,
                    &ft.tensors,
                    &model,
                    &ends,
                    &test,
                    &sweep_cfg,
                    &known,
                    &devices,
                    &cancel,
                    &mut sink,
                )?
            }
            (None, None) => sweep(&model, &ends, &test, &sweep_cfg, &known, &cancel, &mut sink)?,
        });
        finish_stage(&mut session, "interpolate", t, &mut sink);
        save(&mut session)?;
    }
    let alpha = session
        .interpolation
        .as_ref()
        .map_or(0.0, |r| r.chosen_alpha);
    let chosen = ChosenWeights {
        alpha,
        pth: "chosen.pth".into(),
        safetensors: "chosen.safetensors".into(),
    };
    if session.chosen.as_ref() != Some(&chosen)
        || !dir.join(&chosen.pth).exists()
        || !dir.join(&chosen.safetensors).exists()
    {
        ends.apply(&model, alpha)?;
        let state = model.state()?;
        save_pth(&dir.join(&chosen.pth), &state)?;
        save_safetensors(
            &dir.join(&chosen.safetensors),
            &state,
            &[("alpha".into(), alpha.to_string())],
        )?;
        session.chosen = Some(chosen);
        save(&mut session)?;
    }

    // 5. OOD of the AT and chosen models, when the corrupted set is there.
    if let Some(okind) = ood_kind {
        match corruptions_found(okind, &ood_dir) {
            Ok(names) if !names.is_empty() => {
                for (which, a) in [("at", 0.0), ("chosen", alpha)] {
                    let slot = if which == "at" {
                        &session.ood_at
                    } else {
                        &session.ood_chosen
                    };
                    if slot.is_some() {
                        continue;
                    }
                    let t = Instant::now();
                    sink(Event::StageStarted {
                        stage: "ood".into(),
                        detail: format!("{} model (α = {a}) on {} corruptions", which, names.len()),
                    });
                    ends.apply(&model, a)?;
                    let r = evaluate_ood(
                        &model,
                        okind,
                        &ood_dir,
                        &severities,
                        args.data.batch_size,
                        &cancel,
                        &mut sink,
                    )?;
                    if which == "at" {
                        session.ood_at = Some(r);
                    } else {
                        session.ood_chosen = Some(r);
                    }
                    finish_stage(&mut session, &format!("ood_{which}"), t, &mut sink);
                    save(&mut session)?;
                }
            }
            _ => sink(Event::Warning {
                message: format!(
                    "no {} files under {}; OOD skipped",
                    okind.name(),
                    ood_dir.display()
                ),
            }),
        }
    }
    rift::report::render_report(dir)?;
    print_summary(&session, dir);
    if let Some(path) = &args.output {
        rift::report::write_structured(path, &session)?;
    }
    Ok(())
}

fn finish_stage(session: &mut Session, stage: &str, t: Instant, sink: &mut dyn FnMut(Event)) {
    let secs = t.elapsed().as_secs_f64();
    session.stage_seconds.retain(|(s, _)| s != stage);
    session.stage_seconds.push((stage.to_string(), secs));
    sink(Event::StageFinished {
        stage: stage.to_string(),
        seconds: secs,
    });
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
