//! Progress events of the RiFT steps: small, `Clone`, plain numbers (never tensors). The
//! headless commands print them, `rift run` appends them to `events.jsonl`, and the TUI
//! consumes the same values.
use super::results::{CorruptionAcc, FinetuneEpoch, ModuleScore, SweepPoint};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A stage starts ("baseline", "adv_set", "mrc", "finetune", "interpolate", "ood", "train_at").
    StageStarted {
        stage: String,
        detail: String,
    },
    /// Batches (or other units) done within the current stage.
    Progress {
        stage: String,
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
        stage: String,
        seconds: f64,
    },
    Failed {
        message: String,
    },
    /// AutoAttack (issue 12): an attack of the ensemble started, progressed or finished.
    AutoAttack {
        update: crate::engine::autoattack::ensemble::AaUpdate,
    },
}

/// Where events go: a closure, so the CLI can print, a session can log, the TUI can send.
pub type Sink<'a> = &'a mut dyn FnMut(Event);
