//! `rift compare`: the paper's ablation tables on the user's model. One loaded model and
//! one `Pipeline`: the AT baseline, MRC (when a candidate is ranked by it) and the AT
//! model's OOD accuracy run once into the comparison's own session; then every candidate
//! gets a session of its own under `candidates/NAME/` (a complete rift session: `rift
//! report` and `rift tui --resume` open it) and runs `rift run`'s later stages there with
//! the same settings and seeds. A candidate is finished when its `candidate.yaml` exists;
//! a killed comparison resumes at the first unfinished one.
use super::run::{after_mrc, baseline_once, event_sink, mrc_once, open, save, Plan, SweepWith};
use crate::cli::CompareArgs;
use anyhow::{bail, Context, Result};
use rift::engine::eval::Verdicts;
use rift::engine::files::atomic_write;
use rift::engine::rift::candidate_dir::CandidateDir;
use rift::engine::rift::compare::{
    at_row, candidate_row, Candidate, CandidateRow, CompareResult, IntervalMethods, RowInputs,
    CANDIDATES_DIR, COMPARE_FILE,
};
use rift::engine::rift::events::{Event, OodModel, Sink, Stage, StageAbout};
use rift::engine::rift::final_eval::STATE_AT;
use rift::engine::rift::mrc::select_modules;
use rift::engine::rift::pipeline::Pipeline;
use rift::engine::CancelFlag;
use rift::report::session::Session;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The AT model's per-sample verdicts, kept in the comparison's directory so that a
/// resumed comparison pairs new candidates with the same AT judgements.
const AT_VERDICTS_FILE: &str = "at_verdicts.json";

#[derive(Serialize, Deserialize)]
struct StoredVerdicts {
    /// One character per sample: `1` correct, `0` not.
    clean: String,
    robust: String,
}

fn bits(v: &[bool]) -> String {
    v.iter().map(|&b| if b { '1' } else { '0' }).collect()
}

fn unbits(s: &str) -> Vec<bool> {
    s.chars().map(|c| c == '1').collect()
}

pub fn compare(args: &CompareArgs) -> Result<()> {
    let run = &args.run;
    if run.screen.is_some() {
        bail!("rift compare ranks modules by exact MRC, and --screen leaves most modules with estimates only: drop --screen (or restrict MRC with --modules)");
    }
    if run.ft.layer != "auto" {
        bail!(
            "--layer {}: in rift compare the candidates choose the modules (--candidates, e.g. --candidates rift,{})",
            run.ft.layer,
            run.ft.layer.replace(',', "+")
        );
    }
    let candidates = &args.candidates.0;
    let (mut p, plan) = open(run, "rift compare")?;
    let Plan {
        rt,
        config,
        search,
        devices,
        settings,
        ..
    } = plan;
    let dir = run.session.clone();
    // Every candidate against the model before the first stage.
    let modules: Vec<String> = p.model.modules().into_iter().map(|m| m.name).collect();
    let scored = select_modules(&p.model, &run.mrc.modules)?.len();
    for c in candidates {
        c.check(&p.model.spec.name(), &modules, scored)?;
    }
    super::compare_check::check_candidate_dirs(&dir, candidates)?;
    save(&mut p)?;
    let mut sink = event_sink(&dir)?;
    let cancel = CancelFlag::default();

    // What every candidate shares: the AT baseline (and its verdicts), MRC, AT OOD.
    baseline_once(&mut p, &cancel, &mut sink)?;
    if candidates.iter().any(Candidate::needs_mrc) {
        mrc_once(&mut p, &config.mrc, &cancel, &mut sink)?;
    }
    let at = at_verdicts(&mut p, &dir, &cancel, &mut sink)?;
    if p.session.ood_at.is_none() && !p.ood_corruptions()?.is_empty() {
        p.ood(OodModel::At, 0.0, &cancel, &mut sink)?;
        save(&mut p)?;
    }
    let sweep_with = SweepWith {
        search: search.as_ref(),
        devices: devices.as_deref(),
        model: &run.model,
        compute: rt.compute,
    };
    let mut rows = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let rel = CandidateDir::relative(c);
        let candidate_dir = CandidateDir::of(&dir, c);
        let cdir = candidate_dir.path().to_path_buf();
        if let Some(row) = candidate_dir.finished(c) {
            sink(Event::Warning {
                message: format!(
                    "candidate {} is finished in {} (not run again)",
                    c.label(),
                    cdir.display()
                ),
            });
            rows.push(row);
            continue;
        }
        let trained = c.resolve(p.session.mrc.as_ref(), &modules, rt.seed)?;
        sink(Event::started(
            Stage::Candidate,
            StageAbout::Candidate {
                label: c.label(),
                index: i + 1,
                total: candidates.len(),
                modules: trained.names(),
            },
        ));
        std::fs::create_dir_all(&cdir).with_context(|| {
            format!("cannot create the candidate's directory {}", cdir.display())
        })?;
        let mut cs = if Session::path(&cdir).exists() {
            Session::load(&cdir)?
        } else {
            let mut settings = settings.clone();
            settings.layer = c.label();
            let mut config = config.clone();
            config.finetune.layer = c.label();
            let mut s = Session::new(&cdir, settings, Some(config), &p.model);
            s.baseline = p.session.baseline.clone();
            s.mrc = p.session.mrc.clone();
            s.ood_at = p.session.ood_at.clone();
            s
        };
        cs.settings.device = p.session.settings.device.clone();
        // A finished AutoAttack of the AT model is resumed, not rerun, per candidate.
        share_file(&dir.join(STATE_AT), &cdir.join(STATE_AT));
        let (shared, shared_dir) = p.switch_session(cs, cdir.clone())?;
        let job = CandidateJob {
            candidate: c,
            trained: &trained,
            sweep_with: &sweep_with,
            at: &at,
            rel: &rel,
        };
        let outcome = run_candidate(&mut p, &job, &cancel, &mut sink);
        p.switch_session(shared, shared_dir)?;
        let row = outcome?;
        share_file(&cdir.join(STATE_AT), &dir.join(STATE_AT));
        candidate_dir.write_row(&row)?;
        rows.push(row);
    }

    let final_at = rows
        .iter()
        .find_map(|r| r.autoattack.as_ref().map(|a| a.value - a.change))
        .zip(p.setup.final_eval.as_ref().map(|f| f.limit.min(p.test.n)));
    let settings = &p.session.settings;
    let result = CompareResult {
        model: settings
            .zoo
            .clone()
            .unwrap_or_else(|| settings.checkpoint.clone()),
        at: at_row(&p.session, &at, final_at),
        candidates: rows,
        tolerance: p.setup.sweep.tolerance,
        alphas: p.setup.sweep.alphas.clone(),
        intervals: IntervalMethods::current(),
    };
    write_yaml(&dir.join(COMPARE_FILE), &result)?;
    rift::report::render_report(&dir)?;
    if let Some(path) = &args.csv {
        atomic_write(path, rift::report::compare_csv(&result).as_bytes())?;
    }
    if let Some(path) = &args.latex {
        atomic_write(path, rift::report::compare_latex(&result).as_bytes())?;
    }
    print!("{}", rift::report::compare_text(&result));
    println!(
        "comparison written to {} ({COMPARE_FILE}, report.md, compare.png/svg, one session per candidate under {CANDIDATES_DIR}/)",
        dir.display()
    );
    Ok(())
}

/// The AT model's verdicts: from this process's baseline, the stored file, or (a resumed
/// comparison whose file is gone) evaluated again; stored for later resumptions.
fn at_verdicts(p: &mut Pipeline, dir: &Path, cancel: &CancelFlag, sink: Sink) -> Result<Verdicts> {
    let path = dir.join(AT_VERDICTS_FILE);
    let n = p.session.baseline.as_ref().map_or(0, |b| b.n);
    if let Some(v) = p.at_verdicts().cloned() {
        store_verdicts(&path, &v)?;
        return Ok(v);
    }
    if let Some(v) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<StoredVerdicts>(&t).ok())
        .map(|s| Verdicts {
            clean: unbits(&s.clean),
            robust: unbits(&s.robust),
        })
        .filter(|v| v.clean.len() == n && v.robust.len() == n)
    {
        return Ok(v);
    }
    let v = p.verdicts_at(0.0, cancel, sink)?;
    store_verdicts(&path, &v)?;
    Ok(v)
}

fn store_verdicts(path: &Path, v: &Verdicts) -> Result<()> {
    let stored = StoredVerdicts {
        clean: bits(&v.clean),
        robust: bits(&v.robust),
    };
    Ok(atomic_write(
        path,
        serde_json::to_string(&stored)?.as_bytes(),
    )?)
}

/// Copies `from` to `to` when `to` is absent (best effort: a missing copy only costs time).
fn share_file(from: &Path, to: &Path) {
    if from.exists() && !to.exists() {
        let _ = std::fs::copy(from, to);
    }
}

fn write_yaml<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    Ok(atomic_write(
        path,
        serde_yaml::to_string(value)?.as_bytes(),
    )?)
}

/// One candidate to run: what it trains, how α is swept, and the AT verdicts its changes
/// are paired with.
struct CandidateJob<'a> {
    candidate: &'a Candidate,
    trained: &'a rift::engine::rift::finetune::Trained,
    sweep_with: &'a SweepWith<'a>,
    at: &'a Verdicts,
    /// Its session directory, relative to the comparison's.
    rel: &'a str,
}

/// One candidate's stages on its own session (the pipeline's current one), then its row.
fn run_candidate(
    p: &mut Pipeline,
    job: &CandidateJob,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<CandidateRow> {
    let CandidateJob {
        candidate: c,
        trained,
        sweep_with,
        at,
        rel,
    } = *job;
    save(p)?;
    let alpha = after_mrc(p, trained, sweep_with, cancel, sink)?;
    let chosen = if alpha == 0.0 {
        at.clone()
    } else {
        p.verdicts_at(alpha, cancel, sink)?
    };
    rift::report::render_report(&p.setup.session_dir)?;
    let seed = match c {
        Candidate::Random(s) => Some(s.unwrap_or(p.setup.seed)),
        _ => None,
    };
    candidate_row(RowInputs {
        candidate: c,
        seed,
        session: &p.session,
        at,
        chosen: &chosen,
        session_dir: rel.to_string(),
    })
    .context("the candidate's session lacks its fine-tuning or α sweep")
}
