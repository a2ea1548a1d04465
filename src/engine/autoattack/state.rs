//! The resumable state of an AutoAttack run: the flags it was started with, the clean
//! result, each finished attack's robust points, and the attack in progress up to its last
//! finished batch. The caller stores it (JSON, written atomically) after every batch.
use super::{AaConfig, AaError};
use crate::engine::adv_examples::PerturbationCheck;
use serde::{Deserialize, Serialize};

/// What a finished attack left: the indices (into the evaluated samples) still robust.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinishedAttack {
    pub attack: String,
    pub robust: Vec<usize>,
    /// Points the attack ran on.
    pub evaluated: usize,
    pub seconds: f64,
}

/// The attack in progress: how many of its points are done, and the robust set so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialAttack {
    pub attack: String,
    pub done: usize,
    pub robust: Vec<usize>,
    pub seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AaState {
    pub format: u32,
    pub config: AaConfig,
    /// Number of evaluated samples (the first n of the set).
    pub n: usize,
    /// Model, data and device as the caller names them; resuming needs the same.
    pub identity: String,
    /// Indices correctly classified on clean inputs (None until measured).
    #[serde(default)]
    pub clean: Option<Vec<usize>>,
    #[serde(default)]
    pub clean_seconds: f64,
    #[serde(default)]
    pub finished: Vec<FinishedAttack>,
    #[serde(default)]
    pub partial: Option<PartialAttack>,
    /// The reference's closing check over the adversarial examples found so far.
    #[serde(default)]
    pub check: PerturbationCheck,
}

pub const STATE_FORMAT: u32 = 1;

impl AaState {
    pub fn new(config: &AaConfig, n: usize, identity: &str) -> AaState {
        AaState {
            format: STATE_FORMAT,
            config: config.clone(),
            n,
            identity: identity.to_string(),
            clean: None,
            clean_seconds: 0.0,
            finished: Vec::new(),
            partial: None,
            check: PerturbationCheck::default(),
        }
    }

    /// Parses a state file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<AaState, AaError> {
        let bad = |reason: String| AaError::State {
            path: path.to_string(),
            reason,
        };
        let state: AaState = serde_json::from_str(text)
            .map_err(|e| bad(format!("not an AutoAttack state file ({e})")))?;
        if state.format != STATE_FORMAT {
            return Err(bad(format!(
                "format {} is not the format {STATE_FORMAT} this rift writes",
                state.format
            )));
        }
        Ok(state)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Refuses to resume a run made with other flags, samples or model.
    pub fn check_same(
        &self,
        config: &AaConfig,
        n: usize,
        identity: &str,
        path: &str,
    ) -> Result<(), AaError> {
        let mut diffs = Vec::new();
        if self.n != n {
            diffs.push(format!("samples {} (now {n})", self.n));
        }
        if self.identity != identity {
            diffs.push(format!("run `{}` (now `{identity}`)", self.identity));
        }
        if self.config != *config {
            let was = serde_json::to_value(&self.config).unwrap_or_default();
            let now = serde_json::to_value(config).unwrap_or_default();
            if let (Some(was), Some(now)) = (was.as_object(), now.as_object()) {
                for (k, v) in was {
                    if now.get(k) != Some(v) {
                        diffs.push(format!(
                            "{k} {v} (now {})",
                            now.get(k).cloned().unwrap_or_default()
                        ));
                    }
                }
            }
        }
        if diffs.is_empty() {
            return Ok(());
        }
        Err(AaError::State {
            path: path.to_string(),
            reason: format!(
                "it was made with other settings: {}. Rerun with the same flags to resume, or delete the file (or pass another --state) to start over",
                diffs.join(", ")
            ),
        })
    }
}
