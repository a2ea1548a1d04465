//! The typed messages between the UI and the worker thread: small, `Clone`, plain numbers.
use crate::engine::rift::events::{Event, Stage};
use crate::engine::rift::mrc::results::SweepPoint;
use crate::engine::session::Session;

/// What the UI asks the worker to do. Jobs run one at a time, in the order sent.
#[derive(Clone, Debug, PartialEq)]
pub enum JobCommand {
    /// Baseline accuracy of the AT model, the adversarial set, then MRC module by module.
    StartMrc,
    /// Fine-tune `layers` at learning rate `lr` (the AT weights stay the sweep's α = 0).
    StartFinetune { layers: Vec<String>, lr: f64 },
    /// The α sweep between the AT and fine-tuned weights.
    StartSweep,
    /// Evaluate the midpoints between `around` and its neighbours on the current grid.
    Refine { around: f64 },
    /// Write the model at `alpha` (chosen.pth and chosen.safetensors in the session).
    Accept { alpha: f64 },
    /// Write session.yaml, report.md and the plots.
    Save,
    /// Corruption accuracy of the AT model (once) and of the model at `alpha`.
    StartOod { alpha: f64 },
    /// AutoAttack of the AT model and of the model at `alpha` on the same test samples
    /// (`Pipeline::final_eval`, as `rift run --final-eval`).
    StartFinalEval { alpha: f64 },
    /// Show another candidate of the session (its fine-tuning, α curve and accepted α);
    /// the one on display is saved to its directory first (`jobs/candidates.rs`).
    ShowCandidate { label: String },
    /// Served between the running job's batches without ending it, or at once when no
    /// job runs (`jobs/requests.rs`); answered with `Saved`/`Accepted` or `RequestFailed`,
    /// never `Finished`.
    Request(JobRequest),
    /// Stop the running job and the jobs queued before this (`JobHandle::cancel`, which
    /// sending this calls).
    Cancel,
    /// End the worker thread.
    Shutdown,
}

impl JobCommand {
    /// A job: run one at a time, ended by `Finished`, `Failed` or `Cancelled` (requests,
    /// `Cancel` and `Shutdown` are not).
    pub fn is_job(&self) -> bool {
        !matches!(
            self,
            JobCommand::Request(_) | JobCommand::Cancel | JobCommand::Shutdown
        )
    }
}

/// What the explorer may ask while a job runs (`s` and `a`).
#[derive(Clone, Debug, PartialEq)]
pub enum JobRequest {
    /// Save what is finished so far: session.yaml, the report, the fine-tuned weights.
    Save,
    /// Write the chosen weights for an α the sweep has already measured.
    Accept { alpha: f64 },
}

/// What the worker reports: the engine's own events plus the end of each job.
#[derive(Clone, Debug, PartialEq)]
pub enum JobEvent {
    Engine(Event),
    /// A job ended well: `Mrc`, `Finetune`, `Interpolate` (the sweep), `Refine`, `Accept`,
    /// `Ood`, `FinalEval` or `Save`; `Load` once the model is ready. A followed run also finishes its
    /// other stages (`Baseline`, `OodAt`, …).
    Finished {
        stage: Stage,
    },
    /// Chosen weights written for `alpha` at `path`.
    Accepted {
        alpha: f64,
        path: String,
    },
    /// Session written to `dir`.
    Saved {
        dir: String,
    },
    Failed(String),
    /// A `JobCommand::Request` could not be served; the running job goes on.
    RequestFailed(String),
    Cancelled,
    /// A line for the status bar that is neither progress nor a warning (the follower
    /// waiting for the run to create its directory).
    Note(String),
    /// Every candidate of the session (one per fine-tuned module set), in the order they
    /// were made; sent at start and after every job.
    Candidates(Vec<CandidateSummary>),
    /// Another candidate is on display: its saved session, whose fine-tuning, α curve,
    /// accepted α and OOD results replace the panels' (the shared MRC stays).
    CandidateShown(Box<Session>),
}

/// One candidate as the compare view lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateSummary {
    /// `rift compare`'s name for it (`rift`, `highest`, …) or its modules joined by `+`.
    pub label: String,
    pub modules: Vec<String>,
    pub trained_params: i64,
    /// Its α curve so far (α = 0 is the AT model).
    pub points: Vec<SweepPoint>,
    /// The α accepted for it (its `chosen.pth`), if any.
    pub accepted: Option<f64>,
    /// Its session directory, relative to the explorer's (`.` for the explorer's own).
    pub dir: String,
    /// On display now: the panels show this one, live.
    pub shown: bool,
}
