//! Progress events of the RiFT steps: small, `Clone`, plain numbers (never tensors). The
//! headless commands print them, `rift run` appends them to `events.jsonl`, and the TUI
//! consumes the same values.
use crate::engine::rift::mrc::results::{CorruptionAcc, FinetuneEpoch, ModuleScore, SweepPoint};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The format of `events.jsonl` this rift writes and reads. Version 2 (this one) added the
/// `log_format` header, typed `Stage` names and `about`; version-1 logs (no header) read
/// as before. Version 3 added `rift compare`'s `candidate` stage. A follower meeting a
/// larger number says the log is newer than itself.
pub const EVENTS_FORMAT: u32 = 3;

/// A stage of the pipeline (or a job of the explorer). Serialised as the snake_case names
/// rift has always written, so older followers still read newer logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The checkpoint and test split are loaded (the explorer's first event).
    Load,
    /// Clean and robust accuracy of the AT model.
    Baseline,
    /// The fixed adversarial set of MRC.
    AdvSet,
    /// First-order screening (all modules) and its per-module step.
    Screen,
    ScreenStep,
    /// Exact module robust criticality.
    Mrc,
    Finetune,
    /// The α sweep (the explorer's "sweep" job).
    Interpolate,
    /// Midpoints around one α (the explorer's `r`).
    Refine,
    /// Writing the model at the accepted α.
    Accept,
    /// Writing the session, report and plots.
    Save,
    /// Corruption accuracy; a run finishes it as `ood_at` / `ood_chosen`.
    Ood,
    OodAt,
    OodChosen,
    TrainAt,
    /// AutoAttack of the AT and the chosen model after α is chosen (issue 12).
    FinalEval,
    /// One candidate of `rift compare` (its stages follow); its progress counts the
    /// samples of the chosen model's paired evaluation.
    Candidate,
}

impl Stage {
    /// The name written to logs and `session.yaml`'s `stage_seconds`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Load => "load",
            Stage::Baseline => "baseline",
            Stage::AdvSet => "adv_set",
            Stage::Screen => "screen",
            Stage::ScreenStep => "screen_step",
            Stage::Mrc => "mrc",
            Stage::Finetune => "finetune",
            Stage::Interpolate => "interpolate",
            Stage::Refine => "refine",
            Stage::Accept => "accept",
            Stage::Save => "save",
            Stage::Ood => "ood",
            Stage::OodAt => "ood_at",
            Stage::OodChosen => "ood_chosen",
            Stage::TrainAt => "train_at",
            Stage::FinalEval => "final_eval",
            Stage::Candidate => "candidate",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which model an OOD stage evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OodModel {
    /// The adversarially trained model (α = 0).
    At,
    /// The model at the chosen (or accepted) α.
    Chosen,
}

impl OodModel {
    /// The stage a run records this evaluation's time under.
    pub fn stage(self) -> Stage {
        match self {
            OodModel::At => Stage::OodAt,
            OodModel::Chosen => Stage::OodChosen,
        }
    }
}

/// What a stage works on, as typed values; consumers read these, never `detail`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StageAbout {
    /// The loaded model and where it runs.
    Model {
        arch: String,
        params: i64,
        modules: usize,
        /// The input normalisation and where it came from, short (`Normalization::short`).
        #[serde(default)]
        normalization: String,
        device: String,
        /// The RobustBench id of `--zoo`, when the model was named by it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zoo: Option<String>,
    },
    /// Fine-tuning of `layers` at `lr` for `epochs`.
    Finetune {
        layers: Vec<String>,
        lr: f64,
        epochs: usize,
        /// Epochs read back from an unfinished run of the same fine-tuning (0: from the
        /// AT weights).
        #[serde(default, skip_serializing_if = "is_zero")]
        from_epoch: usize,
    },
    /// The α sweep: grid size and refinement rounds.
    Sweep { alphas: usize, refine: usize },
    /// OOD accuracy of one model over `corruptions` corruption types.
    Ood {
        model: OodModel,
        alpha: f64,
        corruptions: usize,
    },
    /// Candidate `index` (from 1) of `total` in `rift compare`, and what it trains.
    Candidate {
        label: String,
        index: usize,
        total: usize,
        modules: Vec<String>,
    },
    /// AutoAttack (`attacks`: `autoattack` or a list) of one model on the first `n` test
    /// samples.
    FinalEval {
        model: OodModel,
        alpha: f64,
        attacks: String,
        n: usize,
    },
}

impl fmt::Display for StageAbout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageAbout::Model {
                arch,
                params,
                modules,
                normalization,
                device,
                zoo,
            } => {
                write!(f, "{arch}")?;
                if let Some(id) = zoo {
                    write!(f, " = {id}")?;
                }
                write!(f, " ({params} parameters, {modules} modules")?;
                if !normalization.is_empty() {
                    write!(f, ", {normalization}")?;
                }
                write!(f, ") on {device}")
            }
            StageAbout::Finetune {
                layers,
                lr,
                epochs,
                from_epoch,
            } => {
                write!(f, "{} at lr {lr} for {epochs} epochs", layers.join(", "))?;
                if *from_epoch > 0 {
                    write!(f, ", continuing after epoch {from_epoch}")?;
                }
                Ok(())
            }
            StageAbout::Sweep { alphas, refine } => {
                write!(f, "{alphas} α values, {refine} refinement rounds")
            }
            StageAbout::Ood {
                model,
                alpha,
                corruptions,
            } => {
                let which = match model {
                    OodModel::At => "at",
                    OodModel::Chosen => "chosen",
                };
                write!(
                    f,
                    "{which} model (α = {alpha}) on {corruptions} corruptions"
                )
            }
            StageAbout::Candidate {
                label,
                index,
                total,
                modules,
            } => write!(f, "{index}/{total} {label}: {}", modules.join(", ")),
            StageAbout::FinalEval {
                model,
                alpha,
                attacks,
                n,
            } => {
                let which = match model {
                    OodModel::At => "AT",
                    OodModel::Chosen => "chosen",
                };
                write!(
                    f,
                    "{attacks} on the {which} model (α = {alpha}), first {n} test samples"
                )
            }
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The first line of every run's `events.jsonl`: the log's format (`EVENTS_FORMAT`).
    LogFormat {
        version: u32,
    },
    /// A stage starts. `detail` is text for people (made from `about` where there is one);
    /// programs read `stage` and `about`.
    StageStarted {
        stage: Stage,
        #[serde(default)]
        detail: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        about: Option<StageAbout>,
    },
    /// Batches (or other units) done within the current stage.
    Progress {
        stage: Stage,
        done: usize,
        total: usize,
    },
    /// Clean and robust accuracy of the AT model (percent) on n test samples.
    Baseline {
        clean_acc: f64,
        robust_acc: f64,
        n: usize,
    },
    /// Clean and robust accuracy (percent) of the samples the adversarial set is made
    /// from (the sanity check shown before MRC).
    AdvSetBaseline {
        clean_acc: f64,
        robust_acc: f64,
        n: usize,
    },
    /// The fixed adversarial set of MRC is ready: its size, baseline loss and accuracy.
    AdvSetReady {
        n: usize,
        loss: f64,
        acc: f64,
    },
    /// MRC of `module`: end-of-epoch loss and accuracy on the adversarial set.
    ModuleEpoch {
        module: String,
        epoch: usize,
        loss: f64,
        acc: f64,
    },
    ModuleScored {
        score: ModuleScore,
    },
    /// First-order screening estimate of one module (not in the paper; see SPEC.md §1).
    ModuleEstimated {
        module: String,
        depth: usize,
        estimate: f64,
        estimate_step: Option<f64>,
        /// What the module is, for the explorer's details (absent in older event logs).
        #[serde(default)]
        kind: String,
        #[serde(default)]
        shape: Vec<i64>,
        #[serde(default)]
        params: i64,
    },
    /// Every selected module has its estimate; exact MRC (if asked) follows in order of
    /// increasing estimate.
    ScreenFinished {
        method: String,
        modules: usize,
        seconds: f64,
    },
    /// One fine-tuning iteration.
    FinetuneIter {
        epoch: usize,
        iter: usize,
        loss: f64,
        lr: f64,
    },
    FinetuneEpoch {
        log: FinetuneEpoch,
    },
    SweepPoint {
        point: SweepPoint,
    },
    Corruption {
        result: CorruptionAcc,
    },
    /// One epoch of adversarial training.
    TrainEpoch {
        epoch: usize,
        lr: f64,
        loss: f64,
        train_acc: f64,
        test_clean_acc: f64,
        test_robust_acc: f64,
    },
    Warning {
        message: String,
    },
    StageFinished {
        stage: Stage,
        seconds: f64,
    },
    /// One more batch of the running stage is done, where no count changes (an α point's
    /// attack, an MRC epoch's steps): the explorer's worker serves `s` and `a` at every
    /// event, so they wait a batch, not a point or an epoch. Not written to `events.jsonl`.
    Batch {
        stage: Stage,
    },
    Failed {
        message: String,
    },
    /// AutoAttack (issue 12): an attack of the ensemble started, progressed or finished.
    AutoAttack {
        update: crate::engine::autoattack::report::AaUpdate,
    },
    /// The final AutoAttack evaluation of the AT and the chosen model is done.
    FinalEval {
        summary: crate::engine::rift::final_eval::records::FinalEvalSummary,
    },
}

impl Event {
    /// A stage start whose text is made from its typed `about`.
    pub fn started(stage: Stage, about: StageAbout) -> Event {
        Event::StageStarted {
            stage,
            detail: about.to_string(),
            about: Some(about),
        }
    }

    /// A stage start with only a text detail (nothing a program needs to read).
    pub fn started_text(stage: Stage, detail: impl Into<String>) -> Event {
        Event::StageStarted {
            stage,
            detail: detail.into(),
            about: None,
        }
    }
}

/// Where events go: a closure, so the CLI can print, a session can log, the TUI can send.
pub type Sink<'a> = &'a mut dyn FnMut(Event);

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_line_names_the_zoo_entry() {
        let about = |zoo: Option<&str>| StageAbout::Model {
            arch: "dm-wrn-28-10".into(),
            params: 36_479_194,
            modules: 30,
            normalization: "mean/std".into(),
            device: "cpu".into(),
            zoo: zoo.map(str::to_string),
        };
        assert_eq!(
            about(Some("cifar10/Linf/Wang2023Better_WRN-28-10")).to_string(),
            "dm-wrn-28-10 = cifar10/Linf/Wang2023Better_WRN-28-10 (36479194 parameters, 30 modules, mean/std) on cpu"
        );
        assert_eq!(
            about(None).to_string(),
            "dm-wrn-28-10 (36479194 parameters, 30 modules, mean/std) on cpu"
        );
        // Events written before the field existed still read.
        let old = r#"{"kind":"model","arch":"a","params":1,"modules":2,"device":"cpu"}"#;
        assert!(matches!(
            serde_json::from_str::<StageAbout>(old).unwrap(),
            StageAbout::Model { zoo: None, .. }
        ));
    }
}
