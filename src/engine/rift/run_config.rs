//! Every setting that changes a number of a session, as the engine uses it: the model as
//! read, the data, the attack, and each stage's own config (MRC, fine-tuning, sweep, OOD,
//! final evaluation) — whole, not a hand-picked copy. `session.yaml` stores it, the
//! explorer's `--resume` rebuilds its plan from it, and a continued run compares it with
//! the new command line's: `differences` names each setting that differs with both values
//! and the first stage whose result it changes, so `rift run` refuses before any compute.
//! What changes no number (the device, threads, the theme) is not in here.
use crate::engine::attack::PgdConfig;
use crate::engine::rift::alpha::interpolate::SweepConfig;
use crate::engine::rift::alpha::search::SearchConfig;
use crate::engine::rift::final_eval::records::FinalEvalPlan;
use crate::engine::rift::finetune::FinetuneConfig;
use crate::engine::rift::mrc::screen::ExactLowest;
use crate::engine::rift::mrc::MrcConfig;
use serde::{Deserialize, Serialize};

/// The model as it is read from its checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub checkpoint: String,
    /// `--arch` as given (`auto`: detected from the checkpoint's keys).
    pub arch: String,
    /// `--width` with `--arch` (ResNet width, WRN widen factor).
    pub width: Option<i64>,
    pub normalize: String,
    pub activation: Option<String>,
    /// `fp32` (published) or `bf16`.
    pub precision: String,
    pub channels_last: bool,
    /// The RobustBench id (`cifar10/Linf/NAME`) when the model was named by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoo: Option<String>,
}

/// Which data every stage reads, and how the baseline and the sweep evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    pub dataset: String,
    pub data_dir: String,
    /// Test samples evaluated (None: all).
    pub eval_limit: Option<usize>,
    pub batch_size: usize,
    pub seed: u64,
    /// ImageNet and image folders: the evaluation preprocessing (`--preprocess`, or the
    /// zoo entry's), by robustbench's name; None: the images as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<String>,
    /// ImageNet: `--subset robustbench`; None: every validation image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
}

impl RunConfig {
    /// How the stages read the data: the preprocessing and subset, and (ImageNet decodes
    /// only these) the first test images any stage reads — the evaluations' `--limit`,
    /// `--final-limit` and an adversarial set drawn from the test split; None where one of
    /// them reads them all. (The explorer's `e` without `--final-eval` evaluates at most
    /// the images loaded.)
    pub fn load_options(&self) -> Result<crate::engine::data::LoadOptions, String> {
        use crate::engine::data::{preprocess::Preprocess, LoadOptions, Subset};
        let final_limit = self.final_eval.as_ref().map_or(0, |f| f.limit);
        let adv = if self.mrc.adv_split == "test" {
            self.mrc.adv_limit
        } else {
            Some(0)
        };
        let limit = self
            .data
            .eval_limit
            .zip(adv)
            .map(|(e, a)| e.max(a).max(final_limit));
        let d = &self.data;
        Ok(LoadOptions {
            preprocess: d.preprocess.as_deref().map(Preprocess::parse).transpose()?,
            subset: d
                .subset
                .as_deref()
                .map(Subset::parse)
                .transpose()?
                .unwrap_or_default(),
            limit,
        })
    }
}

/// How the MRC stage runs (`mrc/stage.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MrcPlan {
    /// `--modules` (empty: every module).
    pub modules: Vec<String>,
    /// The split the adversarial set comes from, resolved (`train` or `test`).
    pub adv_split: String,
    pub adv_limit: Option<usize>,
    pub config: MrcConfig,
    /// First-order screening (not in the paper) before exact MRC; None: exact MRC of every
    /// module, as published.
    pub screen: Option<ScreenPlan>,
}

/// Screening before exact MRC: which modules then get exact MRC.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScreenPlan {
    pub exact: ExactLowest,
    /// Also the one-step estimate of each module.
    pub one_step: bool,
}

/// Fine-tuning: which modules (`auto`: the lowest MRC) and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinetunePlan {
    pub layer: String,
    pub config: FinetuneConfig,
}

/// OOD accuracy on a corrupted set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OodPlan {
    pub dataset: String,
    pub dir: String,
    pub severities: Vec<u8>,
    pub headline: String,
}

/// Every setting that changes a number of a session (see the module comment).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub attack: PgdConfig,
    pub mrc: MrcPlan,
    pub finetune: FinetunePlan,
    pub sweep: SweepConfig,
    pub search: Option<SearchConfig>,
    pub ood: Option<OodPlan>,
    pub final_eval: Option<FinalEvalPlan>,
    /// `--preset` the flags came from (its values are in the configs above).
    pub preset: Option<String>,
}

/// The stages of a session in the order they run; `--restart-from STAGE` recomputes a
/// stage and every stage after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SessionStage {
    Baseline,
    Mrc,
    Finetune,
    Sweep,
    Ood,
    FinalEval,
}

impl SessionStage {
    pub const ALL: [SessionStage; 6] = [
        SessionStage::Baseline,
        SessionStage::Mrc,
        SessionStage::Finetune,
        SessionStage::Sweep,
        SessionStage::Ood,
        SessionStage::FinalEval,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SessionStage::Baseline => "baseline",
            SessionStage::Mrc => "mrc",
            SessionStage::Finetune => "finetune",
            SessionStage::Sweep => "sweep",
            SessionStage::Ood => "ood",
            SessionStage::FinalEval => "final-eval",
        }
    }

    pub fn parse(s: &str) -> Result<SessionStage, String> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        SessionStage::ALL
            .into_iter()
            .find(|st| {
                st.name() == s || (s == "alpha" || s == "interpolate") && *st == SessionStage::Sweep
            })
            .ok_or_else(|| {
                format!(
                    "unknown stage `{s}`; expected one of {}",
                    SessionStage::ALL.map(|s| s.name()).join(", ")
                )
            })
    }
}

/// One setting that differs between a session and a command line.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingDifference {
    /// Dotted path in `RunConfig`, e.g. `mrc.config.lr`.
    pub setting: String,
    /// The session's value and the new one, as YAML scalars (`none` when absent).
    pub recorded: String,
    pub requested: String,
    /// The first stage whose result the setting changes.
    pub stage: SessionStage,
}

impl RunConfig {
    /// Every setting that differs from `requested`, by stage, then by name. A config
    /// present on one side only (`--ood-dataset` added) is one difference, shown whole.
    pub fn differences(&self, requested: &RunConfig) -> Vec<SettingDifference> {
        let as_value = |c: &RunConfig| serde_json::to_value(c).unwrap_or_default();
        let mut out = Vec::new();
        diff("", &as_value(self), &as_value(requested), &mut out);
        // `preset` names where values came from; its values are compared themselves.
        out.retain(|d| d.setting != "preset");
        out.sort_by(|a, b| a.stage.cmp(&b.stage).then(a.setting.cmp(&b.setting)));
        out
    }
}

fn diff(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
    out: &mut Vec<SettingDifference>,
) {
    use serde_json::Value;
    if let (Value::Object(x), Value::Object(y)) = (a, b) {
        let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            diff(
                &child,
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
                out,
            );
        }
    } else if a != b {
        out.push(SettingDifference {
            setting: path.to_string(),
            recorded: scalar(a),
            requested: scalar(b),
            stage: stage_of(path),
        });
    }
}

/// The first stage a setting changes. The model, data and attack change every result.
fn stage_of(path: &str) -> SessionStage {
    let top = path.split('.').next().unwrap_or(path);
    match top {
        "mrc" => SessionStage::Mrc,
        "finetune" => SessionStage::Finetune,
        "sweep" | "search" => SessionStage::Sweep,
        "ood" => SessionStage::Ood,
        "final_eval" => SessionStage::FinalEval,
        _ => SessionStage::Baseline,
    }
}

/// A value as the refusal shows it: strings bare, absent as `none`, the rest as JSON.
fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "none".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The refusal's text: each differing setting with both values, and the way on.
pub fn describe_differences(diffs: &[SettingDifference]) -> String {
    let list: Vec<String> = diffs
        .iter()
        .map(|d| {
            format!(
                "{} (session: {}, now: {}; changes {} and after)",
                d.setting,
                d.recorded,
                d.requested,
                d.stage.name()
            )
        })
        .collect();
    list.join("; ")
}

/// The earliest stage any of `diffs` changes.
pub fn earliest_stage(diffs: &[SettingDifference]) -> Option<SessionStage> {
    diffs.iter().map(|d| d.stage).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RunConfig {
        RunConfig {
            model: ModelConfig {
                checkpoint: "m.pth".into(),
                arch: "auto".into(),
                width: None,
                normalize: "auto".into(),
                activation: None,
                precision: "fp32".into(),
                channels_last: false,
                zoo: None,
            },
            data: DataConfig {
                dataset: "mnist".into(),
                data_dir: "d".into(),
                eval_limit: Some(100),
                batch_size: 256,
                seed: 0,
                preprocess: None,
                subset: None,
            },
            attack: PgdConfig::clean(),
            mrc: MrcPlan {
                modules: vec![],
                adv_split: "train".into(),
                adv_limit: Some(64),
                config: MrcConfig::default(),
                screen: None,
            },
            finetune: FinetunePlan {
                layer: "auto".into(),
                config: FinetuneConfig::default(),
            },
            sweep: SweepConfig {
                alphas: vec![0.0, 0.5, 1.0],
                refine: 0,
                tolerance: 0.1,
                attack: PgdConfig::clean(),
                limit: None,
                batch_size: 256,
                seed: 0,
            },
            search: None,
            ood: None,
            final_eval: None,
            preset: None,
        }
    }

    #[test]
    fn each_difference_is_named_with_both_values_and_its_stage() {
        let a = config();
        assert!(a.differences(&a.clone()).is_empty());
        let mut b = a.clone();
        b.mrc.config.lr = 0.001;
        b.finetune.config.milestones = vec![3, 6];
        b.ood = Some(OodPlan {
            dataset: "mnist-c".into(),
            dir: "c".into(),
            severities: vec![1],
            headline: "found".into(),
        });
        b.preset = Some("paper".into());
        let d = a.differences(&b);
        let names: Vec<&str> = d.iter().map(|d| d.setting.as_str()).collect();
        assert_eq!(
            names,
            ["mrc.config.lr", "finetune.config.milestones", "ood"],
            "{d:?}"
        );
        assert_eq!(d[0].recorded, "1.0");
        assert_eq!(d[0].requested, "0.001");
        assert_eq!(d[0].stage, SessionStage::Mrc);
        assert_eq!(d[1].recorded, "[5]");
        assert_eq!(d[1].requested, "[3,6]");
        assert_eq!(d[2].recorded, "none");
        assert!(d[2].requested.contains("mnist-c"), "{}", d[2].requested);
        assert_eq!(earliest_stage(&d), Some(SessionStage::Mrc));
        let text = describe_differences(&d);
        assert!(
            text.contains("mrc.config.lr (session: 1.0, now: 0.001; changes mrc and after)"),
            "{text}"
        );
    }

    #[test]
    fn stages_parse_by_name() {
        for s in SessionStage::ALL {
            assert_eq!(SessionStage::parse(s.name()), Ok(s));
        }
        assert_eq!(SessionStage::parse("alpha"), Ok(SessionStage::Sweep));
        assert!(SessionStage::parse("fine")
            .unwrap_err()
            .contains("baseline, mrc"));
    }
}
