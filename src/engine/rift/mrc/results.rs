//! What each RiFT step produces: plain serialisable data (no tensors), shared by the
//! command line, the session file, the report and the TUI.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One module's robust criticality (SPEC.md §1).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModuleScore {
    pub name: String,
    /// Position in forward (depth) order among the Conv/Linear modules, from 0.
    pub depth: usize,
    pub kind: String,
    pub shape: Vec<i64>,
    pub params: i64,
    /// Largest end-of-epoch adversarial loss minus the baseline loss.
    pub mrc: f64,
    /// Baseline robust accuracy minus accuracy at the epoch of the largest loss (points).
    pub robust_acc_drop: f64,
    /// End-of-epoch loss and accuracy (percent) on the adversarial set, per epoch run.
    pub epoch_losses: Vec<f64>,
    pub epoch_accs: Vec<f64>,
    #[serde(default)]
    pub recommended: bool,
    /// First-order screening estimate `ε·‖w‖·‖∇w L_adv‖` (not in the paper), when the
    /// module was screened before its exact MRC was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<f64>,
    /// Loss rise after one step of size ε‖w‖ along the normalised gradient (`--one-step`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_step: Option<f64>,
}

/// A module that was only screened: its first-order estimate, no exact MRC.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModuleEstimate {
    pub name: String,
    pub depth: usize,
    pub kind: String,
    pub shape: Vec<i64>,
    pub params: i64,
    /// `ε·‖w‖_F·‖∇w L_adv‖_F`: the linearised loss rise at the best point of the ε-ball.
    pub estimate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_step: Option<f64>,
}

/// How first-order screening ran and how well it agreed with exact MRC.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScreenSummary {
    /// "first_order", or "first_order+one_step" with `--one-step`.
    pub method: String,
    /// Always "first-order estimate (not in the paper)": estimates are this project's addition.
    pub label: String,
    /// Seconds of the screening pass alone (gradients, and the one-step losses).
    pub seconds: f64,
    /// How many of the lowest-estimate modules got exact MRC: a number, "all" or "none".
    pub exact_lowest: String,
    /// Spearman rank correlation of estimate and exact MRC, when every screened module
    /// has both (`--exact-lowest all`); ties get average ranks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spearman_vs_exact: Option<f64>,
    /// The same for the one-step estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spearman_step_vs_exact: Option<f64>,
    /// Whether the lowest-estimate module is the lowest-MRC module (when every module is exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowest_matches: Option<bool>,
}

/// The MRC step's result.
///
/// Screening (this project's addition) changes the data as little as possible, so that
/// every existing reader stays correct and old session files still load: `modules` still
/// holds exact MRC values only (each now also carries its `estimate` when screened), so the
/// recommendation — always `modules[0]` — can only come from exact values. Modules that were
/// screened but not measured exactly sit apart in `estimated_only`, and `screen` says how the
/// screening ran. Without screening both new fields are empty and are not written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MrcResult {
    /// "code" (max over 10 epochs, the published code) or "paper" (Algorithm 1).
    pub variant: String,
    pub epsilon: f64,
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    /// Where the adversarial set came from: "test", "train" or "holdout".
    pub adv_split: String,
    pub adv_n: usize,
    pub fast: bool,
    /// Mean cross-entropy and accuracy (percent) of the unperturbed model on the set.
    pub baseline_loss: f64,
    pub baseline_acc: f64,
    /// Exact MRC only, sorted ascending; the first is the recommendation.
    pub modules: Vec<ModuleScore>,
    /// The lowest exact module; empty when no module was measured exactly.
    pub recommended: String,
    pub seconds: f64,
    /// Screened modules without an exact MRC, by ascending estimate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub estimated_only: Vec<ModuleEstimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<ScreenSummary>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FinetuneEpoch {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_acc: Option<f64>,
    pub test_acc: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FinetuneResult {
    /// The modules trained, or `["all parameters"]` with `all_parameters`.
    pub layers: Vec<String>,
    /// Every parameter was trained (`rift compare`'s `all` candidate: full fine-tuning).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_parameters: bool,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub epochs: usize,
    /// Epochs at which the learning rate is multiplied by 0.1.
    pub lr_milestones: Vec<usize>,
    /// "val" (held-out part of the training split) or "test" (the published code).
    pub select_on: String,
    pub val_size: usize,
    pub freeze_bn_stats: bool,
    pub trained_params: i64,
    /// Training loss of every iteration.
    pub iter_losses: Vec<f64>,
    pub epochs_log: Vec<FinetuneEpoch>,
    /// The epoch whose weights were kept (best selection accuracy), from 0.
    pub best_epoch: usize,
    /// Set when the run stopped on a NaN/Inf loss.
    pub diverged: Option<String>,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SweepPoint {
    pub alpha: f64,
    pub clean_acc: f64,
    pub robust_acc: f64,
    pub n: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InterpolationResult {
    /// Sorted by α.
    pub points: Vec<SweepPoint>,
    pub chosen_alpha: f64,
    /// Points of robust accuracy the chosen α may lose against α = 0.
    pub tolerance: f64,
    pub refine_rounds: usize,
    pub seconds: f64,
    /// Set when α was chosen by search (`--search`) rather than the full grid; `points`
    /// then holds the full-set points only, the ones the rule decided on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<AlphaSearch>,
}

impl InterpolationResult {
    /// Whether this result is a finished sweep of `alphas`: chosen by search, or holding
    /// every grid α. A session saved while its sweep ran (the explorer's `s`) holds only
    /// the points measured so far, and `rift run` continues that sweep from them.
    pub fn covers(&self, alphas: &[f64]) -> bool {
        self.search.is_some()
            || alphas
                .iter()
                .all(|a| self.points.iter().any(|p| p.alpha == *a))
    }
}

/// One α's accuracies with their 95 % Wilson intervals (percent). Clean accuracy needs no
/// attack, so the search always measures it on the full set (`clean_n`); robust accuracy is
/// on `robust_n` samples: the subset for screened-only α, the full set otherwise.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SearchPoint {
    pub alpha: f64,
    pub clean_acc: f64,
    pub clean_ci: [f64; 2],
    pub clean_n: usize,
    pub robust_acc: f64,
    pub robust_ci: [f64; 2],
    pub robust_n: usize,
}

/// One α against α = 0 on the same samples and attack seeds (α search): robust accuracy of
/// α minus that of α = 0 over `samples` of them, in points, and the 95 % interval of that
/// difference over the whole evaluated set (finite-population corrected; a point interval
/// once complete).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PairedDrop {
    pub alpha: f64,
    pub samples: usize,
    pub diff: f64,
    pub ci: [f64; 2],
    pub verdict: String,
}

/// How α search (this project's addition) ran. Subset numbers live in `screened` only, so
/// nothing reads a subset accuracy as a full-set one; the rule saw `full` alone.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlphaSearch {
    pub method: String,
    /// Of the intervals (0.95).
    pub confidence: f64,
    /// Samples of the screen and of the full evaluated set.
    pub subset_n: usize,
    pub full_n: usize,
    /// Most attack work allowed, as a fraction of the grid's.
    pub budget: f64,
    /// Every screened α (robust on the subset, clean on the full set), by α.
    pub screened: Vec<SearchPoint>,
    /// Every α evaluated on the full set (α = 0 always), by α: the points the rule decided on.
    pub full: Vec<SearchPoint>,
    /// The α completed on the full set because the rule could still choose them (α = 0 and
    /// known points are full-set without being finalists).
    pub finalists: Vec<f64>,
    /// Screened α never evaluated on the full set.
    pub screened_only: Vec<f64>,
    /// Every screened α against α = 0 on the same samples, with the verdict.
    #[serde(default)]
    pub paired: Vec<PairedDrop>,
    /// Of the intervals that reject a candidate (0.99: each α is looked at several times).
    #[serde(default)]
    pub decision_confidence: f64,
    /// Samples evaluated clean only (forward passes, no attack): every α on the full set.
    pub clean_only_samples: usize,
    /// Whether the budget stopped the search before it settled the rule's choice.
    pub budget_exhausted: bool,
    /// Samples PGD-attacked by the search, and by the full grid on the same samples
    /// (each restart attacks again on both sides, so the ratio is the same with restarts).
    pub attacked_samples: usize,
    pub grid_attacked_samples: usize,
    /// attacked_samples / grid_attacked_samples.
    pub work_ratio: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CorruptionAcc {
    pub name: String,
    /// All selected severities pooled (percent).
    pub acc: f64,
    /// Read with [`severity_keys`]: in `events.jsonl` (a JSON object inside the tagged
    /// `Event`) the keys arrive as strings, in session.yaml as numbers.
    #[serde(deserialize_with = "severity_keys")]
    pub by_severity: BTreeMap<u8, f64>,
    pub n: usize,
}

/// A severity map whose keys are numbers or numeric strings. serde reads an internally
/// tagged enum (`Event`) through a buffer that no longer parses JSON's string keys as
/// integers, so a plain `BTreeMap<u8, _>` failed on every `corruption` event line.
fn severity_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<u8, f64>, D::Error> {
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Severity(u8);
    impl<'de> Deserialize<'de> for Severity {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Severity;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a severity (1-5) as a number or a string")
                }
                fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Severity, E> {
                    u8::try_from(v).map(Severity).map_err(E::custom)
                }
                fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Severity, E> {
                    u8::try_from(v).map(Severity).map_err(E::custom)
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Severity, E> {
                    v.parse().map(Severity).map_err(E::custom)
                }
            }
            d.deserialize_any(V)
        }
    }
    let m = BTreeMap::<Severity, f64>::deserialize(d);
    Ok(m?.into_iter().map(|(k, v)| (k.0, v)).collect())
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OodResult {
    pub dataset: String,
    pub severities: Vec<u8>,
    pub corruptions: Vec<CorruptionAcc>,
    /// Mean over the corruptions found.
    pub mean_acc: f64,
    /// The published code's 18-corruption mean, when all 18 files are present.
    pub mean_published18: Option<f64>,
    /// The standard 15 of the benchmark, when all 15 are present.
    pub mean_standard15: Option<f64>,
    pub missing: Vec<String>,
    pub seconds: f64,
}

impl OodResult {
    /// The mean `which` names (`found`, `published18` or `standard15`) and its label; None
    /// when that mean could not be computed (some of its corruption files are missing).
    pub fn headline(&self, which: &str) -> Option<(&'static str, f64)> {
        match which {
            "published18" => self.mean_published18.map(|m| ("mean, published 18", m)),
            "standard15" => self.mean_standard15.map(|m| ("mean, standard 15", m)),
            _ => Some(("mean (corruptions found)", self.mean_acc)),
        }
    }
}

/// Order of criticality scores (MRC values, screening estimates), least critical first.
/// NaN — a diverged ascent or estimate — sorts after every number, +∞ included, whatever
/// its sign bit (`f64::total_cmp` alone puts a negative NaN, the usual result of 0/0 or
/// ∞−∞, before every number, where it would be recommended).
pub fn criticality_cmp(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => a.total_cmp(&b),
    }
}

/// The screening pass's output: one estimate per module, in the order given.
#[derive(Clone, Debug)]
pub struct Screened {
    pub estimates: Vec<ModuleEstimate>,
    pub method: String,
    pub seconds: f64,
}

impl Screened {
    /// Modules by increasing estimate (ties by depth): the order exact work goes in.
    pub fn by_estimate(&self) -> Vec<&ModuleEstimate> {
        let mut v: Vec<&ModuleEstimate> = self.estimates.iter().collect();
        v.sort_by(|a, b| criticality_cmp(a.estimate, b.estimate).then(a.depth.cmp(&b.depth)));
        v
    }
}

/// Copies a module's estimates onto its exact score.
pub fn attach(score: &mut ModuleScore, screened: &Screened) {
    if let Some(e) = screened.estimates.iter().find(|e| e.name == score.name) {
        score.estimate = Some(e.estimate);
        score.estimate_step = e.estimate_step;
    }
}
