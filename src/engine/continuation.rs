//! Continuing a saved session with a command line: nothing mixed. The session's recorded
//! `RunConfig` is compared with the new one; a setting that changes a stage's result is
//! refused before any compute, naming each difference with both values, unless
//! `--restart-from STAGE` asks to recompute that stage and every stage after it (its
//! results and files are dropped first, the earlier ones kept). What changes no number
//! (the device, threads) is allowed and recorded in the session's `continued` list.
use crate::engine::rift::compare::CANDIDATES_DIR;
use crate::engine::rift::final_eval::records::{STATE_AT, STATE_CHOSEN};
use crate::engine::rift::finetune::progress::PARTIAL_FINETUNE;
use crate::engine::rift::mrc::screen::ExactLowest;
use crate::engine::rift::mrc::stage::PARTIAL_MRC;
use crate::engine::rift::run_config::{
    describe_differences, earliest_stage, RunConfig, ScreenPlan, SessionStage, SettingDifference,
};
use crate::engine::session::{now_rfc3339, Continuation, Session, SessionSettings};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ContinueError {
    #[error("{dir} holds a session computed with other settings: {list}. Continuing would mix results of both. Give the session's own flags to continue it, --restart-from {earliest} to recompute {earliest} and every stage after it with the new settings (the earlier results are kept), or another --session to start afresh", dir = dir.display(), list = describe_differences(diffs), earliest = earliest.name())]
    Differs {
        dir: PathBuf,
        diffs: Vec<SettingDifference>,
        earliest: SessionStage,
    },
    #[error("--restart-from {asked} keeps the result of {earliest}, but {list} changes it: use --restart-from {earliest} (or earlier)", asked = asked.name(), earliest = earliest.name(), list = describe_differences(diffs))]
    RestartTooLate {
        asked: SessionStage,
        earliest: SessionStage,
        diffs: Vec<SettingDifference>,
    },
    #[error("{dir} holds a session written before rift recorded every setting, and its recorded settings differ from this command line; continue it with its own flags or start it afresh with --restart-from baseline (or another --session)", dir = dir.display())]
    LegacyDiffers { dir: PathBuf },
    #[error("cannot move the earlier candidates {} aside to {}: {source}", from.display(), to.display())]
    SetAside {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove {} to restart from {stage}: {source}", path.display())]
    Remove {
        path: PathBuf,
        stage: &'static str,
        source: std::io::Error,
    },
}

/// Settings recorded in `RunConfig` that change no number: `--cache-budget` trades memory
/// for recomputation and gives the same values.
const NO_NUMBER: &[&str] = &["mrc.config.cache_budget_mib"];

/// Whether a difference changes no number: `NO_NUMBER`, or screening that still scores
/// every module exactly (see `scores_every_module`) on both sides.
fn changes_no_number(
    d: &SettingDifference,
    recorded: Option<&RunConfig>,
    requested: &RunConfig,
) -> bool {
    NO_NUMBER.contains(&d.setting.as_str())
        || (d.setting == "mrc.screen"
            && recorded.is_some_and(|r| scores_every_module(r.mrc.screen))
            && scores_every_module(requested.mrc.screen))
}

/// Screening before exact MRC of every module (the explorer's way) or none (`rift run`'s)
/// gives every module the same exact value (every module's ascent shuffles alike, from the
/// run's seed, whatever the order), so a session moves between the explorer and `rift run`; screening
/// that leaves modules without exact MRC (`--screen K`) or adds the one-step estimate does
/// change the result.
fn scores_every_module(screen: Option<ScreenPlan>) -> bool {
    match screen {
        None => true,
        Some(s) => s.exact == ExactLowest::All && !s.one_step,
    }
}

/// The new command line of a continued session.
pub struct Requested<'a> {
    pub config: &'a RunConfig,
    pub settings: &'a SessionSettings,
    pub restart_from: Option<SessionStage>,
    pub device: &'a str,
}

/// The settings that differ between `session` (in `dir`) and `req` and may differ, or
/// the refusal; changes nothing, so commands call it before loading the model.
pub fn check(
    session: &Session,
    dir: &Path,
    req: &Requested,
) -> Result<Vec<SettingDifference>, ContinueError> {
    let diffs = match &session.config {
        Some(recorded) => recorded.differences(req.config),
        None => legacy_differences(&session.settings, req.settings, dir, req.restart_from)?,
    };
    // A difference mixes nothing when the session holds no result of its stage or a later
    // one (`--final-eval` added to a finished run, `--ood-dataset` to one without OOD):
    // allowed, and recorded with the continuation.
    let mixing: Vec<SettingDifference> = diffs
        .iter()
        .filter(|d| {
            !changes_no_number(d, session.config.as_ref(), req.config)
                && holds_results_from(session, dir, d.stage)
        })
        .cloned()
        .collect();
    if let Some(earliest) = earliest_stage(&mixing) {
        match req.restart_from {
            None => {
                return Err(ContinueError::Differs {
                    dir: dir.to_path_buf(),
                    diffs: mixing,
                    earliest,
                })
            }
            Some(asked) if asked > earliest => {
                return Err(ContinueError::RestartTooLate {
                    asked,
                    earliest,
                    diffs: mixing,
                })
            }
            Some(_) => {}
        }
    }
    Ok(diffs)
}

/// `session` (loaded from `dir`) made ready to continue with `req`: checked, the results
/// from `--restart-from` on dropped, the new settings and the continuation recorded.
pub fn continue_session(
    mut session: Session,
    dir: &Path,
    req: &Requested,
) -> Result<Session, ContinueError> {
    let diffs = check(&session, dir, req)?;
    if let Some(stage) = req.restart_from {
        drop_from(&mut session, dir, stage)?;
        set_candidates_aside(dir)?;
    }
    session.continued.push(Continuation {
        at: now_rfc3339(),
        device: req.device.to_string(),
        restarted_from: req.restart_from.map(|s| s.name().to_string()),
        changed: diffs
            .iter()
            .map(|d| format!("{}: {} -> {}", d.setting, d.recorded, d.requested))
            .collect(),
    });
    session.config = Some(req.config.clone());
    session.settings = req.settings.clone();
    session.settings.device = req.device.to_string();
    Ok(session)
}

/// Whether `session` (in `dir`) holds a result, finished or partial, of `stage` or of any
/// stage after it.
fn holds_results_from(session: &Session, dir: &Path, stage: SessionStage) -> bool {
    let on_disk = |f: &str| dir.join(f).exists();
    SessionStage::ALL
        .into_iter()
        .filter(|s| *s >= stage)
        .any(|s| match s {
            SessionStage::Baseline => session.baseline.is_some(),
            SessionStage::Mrc => session.mrc.is_some() || on_disk(PARTIAL_MRC),
            SessionStage::Finetune => {
                session.finetune.is_some()
                    || session.finetuned_weights.is_some()
                    || on_disk(PARTIAL_FINETUNE)
            }
            SessionStage::Sweep => session.interpolation.is_some() || session.chosen.is_some(),
            SessionStage::Ood => session.ood_at.is_some() || session.ood_chosen.is_some(),
            SessionStage::FinalEval => {
                session.final_eval.is_some() || on_disk(STATE_AT) || on_disk(STATE_CHOSEN)
            }
        })
}

/// A session from before `config` was recorded: its summary compared as it always was
/// (the device aside). Any difference is refused unless everything is recomputed.
fn legacy_differences(
    recorded: &SessionSettings,
    requested: &SessionSettings,
    dir: &Path,
    restart: Option<SessionStage>,
) -> Result<Vec<SettingDifference>, ContinueError> {
    let (mut a, mut b) = (recorded.clone(), requested.clone());
    a.device.clear();
    b.device.clear();
    if a == b || restart == Some(SessionStage::Baseline) {
        return Ok(Vec::new());
    }
    Err(ContinueError::LegacyDiffers {
        dir: dir.to_path_buf(),
    })
}

/// Drops the results of `stage` and every stage after it, and the files they would be
/// continued from (the partial MRC scores, AutoAttack's resumable state).
pub fn drop_from(
    session: &mut Session,
    dir: &Path,
    stage: SessionStage,
) -> Result<(), ContinueError> {
    let mut files: Vec<&str> = Vec::new();
    for s in SessionStage::ALL.into_iter().filter(|s| *s >= stage) {
        match s {
            SessionStage::Baseline => session.baseline = None,
            SessionStage::Mrc => {
                session.mrc = None;
                files.push(PARTIAL_MRC);
            }
            SessionStage::Finetune => {
                session.finetune = None;
                session.finetuned_weights = None;
                files.push(PARTIAL_FINETUNE);
            }
            SessionStage::Sweep => {
                session.interpolation = None;
                session.chosen = None;
            }
            SessionStage::Ood => {
                session.ood_at = None;
                session.ood_chosen = None;
            }
            SessionStage::FinalEval => {
                session.final_eval = None;
                files.extend([STATE_AT, STATE_CHOSEN]);
            }
        }
    }
    for f in files {
        let path = dir.join(f);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ContinueError::Remove {
                    path,
                    stage: stage.name(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// With `--restart-from`, every further candidate of the session (`rift compare`, the
/// explorer's `Enter` on another module) was computed from stages being recomputed, so a
/// finished one must not be taken as done. They are kept, not deleted: `candidates/` is
/// renamed to the first free `candidates.superseded-N/`.
fn set_candidates_aside(dir: &Path) -> Result<(), ContinueError> {
    let from = dir.join(CANDIDATES_DIR);
    if !from.exists() {
        return Ok(());
    }
    let mut n = 1;
    let to = loop {
        let to = dir.join(format!("{CANDIDATES_DIR}.superseded-{n}"));
        if !to.exists() {
            break to;
        }
        n += 1;
    };
    std::fs::rename(&from, &to).map_err(|source| ContinueError::SetAside { from, to, source })
}
