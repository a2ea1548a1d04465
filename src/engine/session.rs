//! `sessions/NAME/session.yaml`: every setting, the versions, and every result of a RiFT
//! run. Written atomically after each stage, so an interrupted run leaves the last
//! complete state and `rift run` can continue from it.
use super::files::WriteError;
use crate::engine::attack::PgdConfig;
use crate::engine::eval::EvalResult;
use crate::engine::models::Model;
use crate::engine::rift::mrc::results::{
    FinetuneResult, InterpolationResult, MrcResult, OodResult,
};
use crate::engine::rift::run_config::RunConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const SESSION_FILE: &str = "session.yaml";

/// A session file rift could not read or write.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot read the session file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a rift session file (it does not parse as one): {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("{} is cut short: it ends before `{LAST_FIELD}`, the last field rift writes (a session file rift wrote whole always has it, so the stages after the cut would look not done and be computed again); rift leaves it as it is: restore it from a copy, or move the session directory away to start again", path.display())]
    CutShort { path: PathBuf },
    #[error("cannot write the session as YAML: {0}")]
    Serialise(serde_yaml::Error),
    #[error(transparent)]
    Write(#[from] WriteError),
}
pub const EVENTS_FILE: &str = "events.jsonl";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct Versions {
    pub rift: String,
    pub torch: String,
}

/// The settings a session ran with (everything needed to reproduce it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SessionSettings {
    pub checkpoint: String,
    /// `--zoo DATASET/THREAT/NAME` when the model was named by its RobustBench id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoo: Option<String>,
    pub arch: String,
    pub dataset: String,
    pub data_dir: String,
    pub device: String,
    /// `--precision bf16` (absent: fp32, the published setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// `--channels-last`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub channels_last: bool,
    pub seed: u64,
    pub attack: PgdConfig,
    /// Test samples used for evaluation (None = all).
    pub eval_limit: Option<usize>,
    pub batch_size: usize,
    /// MRC: variant, ε, epochs, adversarial split and size, fast path.
    pub mrc_variant: String,
    pub mrc_epsilon: f64,
    pub mrc_epochs: usize,
    pub adv_split: String,
    pub adv_limit: Option<usize>,
    pub mrc_fast: bool,
    /// `--screen K`: first-order screening (not in the paper), then exact MRC for the K
    /// lowest-estimate modules ("3") or every module ("all"); absent: exact for all, as
    /// published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrc_screen: Option<String>,
    /// Fine-tuning: "auto" (lowest MRC) or module names.
    pub layer: String,
    pub lr: f64,
    pub ft_epochs: usize,
    pub select_on: String,
    pub freeze_bn_stats: bool,
    /// Interpolation grid, refinement rounds, tolerance (points).
    pub alphas: Vec<f64>,
    pub refine: usize,
    pub tolerance: f64,
    /// `--search`: α chosen by search (subset size and work budget), not the full grid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// Corrupted set directory for OOD, if any.
    pub ood_dir: Option<String>,
    /// `--normalize` when not `auto` (absent: auto, also in sessions older than the flag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<String>,
    /// `--activation` of a DM network (absent: the zoo's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
    /// `--preset` the run was started with (absent: none, rift's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// `--ood-headline` when not `found` (absent: the mean over the corruptions found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ood_headline: Option<String>,
}

/// One continuation of a session (`rift run` again, `rift tui --resume`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Continuation {
    /// RFC 3339 UTC.
    pub at: String,
    pub device: String,
    /// `--restart-from STAGE`, when the continuation recomputed from a stage on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_from: Option<String>,
    /// Settings that changed with it: `setting: old -> new`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

/// The model summary recorded with a session.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SessionModel {
    pub arch: String,
    pub num_classes: i64,
    pub in_channels: i64,
    pub params: i64,
    pub modules: usize,
    /// The normalisation applied and where it came from (empty in older sessions).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub normalization: String,
    /// The same in a few words, for the explorer's model line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub normalization_short: String,
    /// The activation, for families where it is a choice (DM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
}

/// Files of the chosen model, relative to the session directory.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChosenWeights {
    pub alpha: f64,
    pub pth: String,
    pub safetensors: String,
}

/// The last field of `Session`, which rift always writes: a file without it was cut short.
const LAST_FIELD: &str = "stage_seconds";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub name: String,
    pub versions: Versions,
    /// RFC 3339 UTC.
    pub created: String,
    pub updated: String,
    /// The settings in a few words each, for reports and the explorer's lines.
    pub settings: SessionSettings,
    /// Every setting that changes a number, whole, as the engine used it: a continued run
    /// is compared with it and the explorer's `--resume` rebuilds its plan from it
    /// (absent in sessions written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    /// Each time the session was continued by another process: when, on which device, and
    /// what it was asked to change that changes no number (absent: never continued).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub continued: Vec<Continuation>,
    pub model: SessionModel,
    /// Clean and robust accuracy of the AT model on the test split (the sanity check).
    pub baseline: Option<EvalResult>,
    pub mrc: Option<MrcResult>,
    pub finetune: Option<FinetuneResult>,
    /// Fine-tuned weights (all state), relative to the session directory.
    pub finetuned_weights: Option<String>,
    pub interpolation: Option<InterpolationResult>,
    pub chosen: Option<ChosenWeights>,
    /// OOD accuracy of the AT model and of the chosen model.
    pub ood_at: Option<OodResult>,
    pub ood_chosen: Option<OodResult>,
    /// `rift run --final-eval`: AutoAttack of the AT and the chosen model (absent in
    /// sessions without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_eval: Option<crate::engine::rift::final_eval::records::FinalEval>,
    /// Wall time per finished stage, seconds. Always written, and last (`LAST_FIELD`).
    #[serde(default)]
    pub stage_seconds: Vec<(String, f64)>,
}

impl Session {
    /// A fresh session in `dir` (named after it) for `model` run with `settings`: no
    /// results yet. `rift run` and the explorer both start here.
    pub fn new(
        dir: &Path,
        settings: SessionSettings,
        config: Option<RunConfig>,
        model: &Model,
    ) -> Session {
        Session {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            versions: Versions {
                rift: env!("CARGO_PKG_VERSION").into(),
                torch: crate::engine::TORCH_VERSION.into(),
            },
            created: now_rfc3339(),
            updated: now_rfc3339(),
            settings,
            config,
            continued: Vec::new(),
            model: SessionModel {
                arch: model.spec.name(),
                num_classes: model.spec.num_classes,
                in_channels: model.spec.in_channels,
                params: model.num_params(),
                modules: model.modules().len(),
                normalization: model.normalization.describe(),
                normalization_short: model.normalization.short(),
                activation: model
                    .spec
                    .family
                    .has_activation_choice()
                    .then(|| model.spec.activation.name().to_string()),
            },
            baseline: None,
            mrc: None,
            finetune: None,
            finetuned_weights: None,
            interpolation: None,
            chosen: None,
            ood_at: None,
            ood_chosen: None,
            final_eval: None,
            stage_seconds: Vec::new(),
        }
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join(SESSION_FILE)
    }

    pub fn load(dir: &Path) -> Result<Session, SessionError> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path).map_err(|source| SessionError::Read {
            path: path.clone(),
            source,
        })?;
        let session: Session =
            serde_yaml::from_str(&text).map_err(|source| SessionError::Parse {
                path: path.clone(),
                source,
            })?;
        // A prefix of a YAML mapping is often a YAML mapping, and a stage field that is not
        // there reads as a stage not done: a file cut short parses, and its lost stages would
        // silently run again. Every file rift writes ends with `stage_seconds`.
        let whole = serde_yaml::from_str::<serde_yaml::Mapping>(&text)
            .is_ok_and(|m| m.contains_key(LAST_FIELD));
        if !whole {
            return Err(SessionError::CutShort { path });
        }
        Ok(session)
    }

    /// Atomic: temporary file + rename.
    pub fn save(&self, dir: &Path) -> Result<(), SessionError> {
        let text = serde_yaml::to_string(self).map_err(SessionError::Serialise)?;
        Ok(super::files::atomic_write(
            &Self::path(dir),
            text.as_bytes(),
        )?)
    }
}

/// Now, as RFC 3339 UTC (no time-zone database needed).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
