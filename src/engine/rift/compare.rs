//! `rift compare`: the paper's ablation (Tables 3–4: the least robust-critical module
//! against the most critical one, the classifier, every parameter, the K least critical)
//! rerun on the user's own model. This file holds what a candidate is, how it resolves to
//! the tensors it trains, and the comparison's result rows; `commands/compare.rs` drives
//! the stages (one `Pipeline`, one session per candidate).
use crate::engine::eval::Verdicts;
use crate::engine::rift::final_eval::stats::{newcombe_independent, PairedDifference};
use crate::engine::rift::finetune::Trained;
use crate::engine::rift::mrc::results::{MrcResult, OodResult, SweepPoint};
use crate::engine::session::Session;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The candidates `rift compare` runs when `--candidates` is not given.
pub const DEFAULT_CANDIDATES: &str = "rift,highest,last,all,lowest:3,random";

/// The file `rift compare` writes its table to, in the session directory.
pub const COMPARE_FILE: &str = "compare.yaml";

/// Where the candidates' own sessions live, under the comparison's directory.
pub const CANDIDATES_DIR: &str = "candidates";

/// One candidate's result file in its own session directory: written last, so its
/// presence means the candidate is finished and a resumed comparison skips it.
pub const CANDIDATE_FILE: &str = "candidate.yaml";

/// What a candidate fine-tunes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Candidate {
    /// The lowest exact MRC: RiFT's own choice.
    Rift,
    /// The highest exact MRC: the most robust-critical module.
    Highest,
    /// The last module in forward order: the classifier.
    Last,
    /// Every parameter: full fine-tuning, then the same interpolation (WiSE-FT).
    All,
    /// The K lowest exact MRC modules together.
    Lowest(usize),
    /// One module drawn uniformly from all of the model's modules, with this seed (None:
    /// the run's `--seed`).
    Random(Option<u64>),
    /// These modules together (`a+b` on the command line).
    Named(Vec<String>),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CompareError {
    #[error("--candidates is empty; expected a comma-separated list such as {DEFAULT_CANDIDATES}")]
    Empty,
    #[error("--candidates: `{0}`: expected lowest:K with K a whole number from 1")]
    BadLowest(String),
    #[error("--candidates: `{0}`: expected random or random:SEED with SEED a whole number")]
    BadRandom(String),
    #[error("--candidates names `{0}` twice; each candidate is run once")]
    Repeated(String),
    #[error("--candidates: `{name}` is not a candidate keyword (rift, highest, last, all, lowest:K, random[:SEED]) nor a module of {arch}; its modules are: {valid}")]
    UnknownModule {
        name: String,
        arch: String,
        valid: String,
    },
    #[error("--candidates: `{label}` needs {needed} modules ranked by MRC, but MRC scores only {scored} (see --modules)")]
    TooFewScored {
        label: String,
        needed: usize,
        scored: usize,
    },
    #[error("the session's MRC result has no exact module; `{0}` needs exact MRC values")]
    NoExactMrc(String),
}

impl Candidate {
    /// Parses `--candidates`: comma-separated keywords or module names (`a+b`: one
    /// candidate training both). Module names are checked against the model in `check`.
    pub fn parse_list(text: &str) -> Result<Vec<Candidate>, CompareError> {
        let mut out: Vec<Candidate> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let c = Candidate::parse(item)?;
            if out.iter().any(|o| o.label() == c.label()) {
                return Err(CompareError::Repeated(c.label()));
            }
            out.push(c);
        }
        if out.is_empty() {
            return Err(CompareError::Empty);
        }
        Ok(out)
    }

    fn parse(item: &str) -> Result<Candidate, CompareError> {
        Ok(match item {
            "rift" => Candidate::Rift,
            "highest" => Candidate::Highest,
            "last" => Candidate::Last,
            "all" => Candidate::All,
            "random" => Candidate::Random(None),
            _ => {
                if let Some(k) = item.strip_prefix("lowest:") {
                    match k.parse::<usize>() {
                        Ok(k) if k >= 1 => Candidate::Lowest(k),
                        _ => return Err(CompareError::BadLowest(item.into())),
                    }
                } else if let Some(seed) = item.strip_prefix("random:") {
                    let seed = seed
                        .parse::<u64>()
                        .map_err(|_| CompareError::BadRandom(item.into()))?;
                    Candidate::Random(Some(seed))
                } else {
                    Candidate::Named(item.split('+').map(|m| m.trim().to_string()).collect())
                }
            }
        })
    }

    /// Parses `--layer` of `rift finetune` / `rift run` into the candidate it names, so that
    /// one engine type says what is trained everywhere: `auto` is RiFT's own choice (the
    /// lowest exact MRC), `lowest:K` the K lowest together, `a,b` those modules together
    /// (not empty, none twice; checked against the model where it is loaded).
    pub fn from_layer_flag(spec: &str) -> Result<Candidate, String> {
        let spec = spec.trim();
        if spec == "auto" {
            return Ok(Candidate::Rift);
        }
        if let Some(k) = spec.strip_prefix("lowest:") {
            return match k.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(Candidate::Lowest(k)),
                _ => Err(format!(
                    "--layer `{spec}`: expected lowest:K with K a whole number from 1"
                )),
            };
        }
        let names: Vec<String> = spec
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            return Err("--layer is empty; name a module such as layer2.1.conv2".into());
        }
        crate::engine::rift::finetune::check_distinct_layers(&names).map_err(|e| e.to_string())?;
        Ok(Candidate::Named(names))
    }

    /// The name tables and files use: the keyword as given, or the modules joined by `+`.
    pub fn label(&self) -> String {
        match self {
            Candidate::Rift => "rift".into(),
            Candidate::Highest => "highest".into(),
            Candidate::Last => "last".into(),
            Candidate::All => "all".into(),
            Candidate::Lowest(k) => format!("lowest:{k}"),
            Candidate::Random(None) => "random".into(),
            Candidate::Random(Some(s)) => format!("random:{s}"),
            Candidate::Named(m) => m.join("+"),
        }
    }

    /// The candidate's session directory name under `candidates/`: its label with every
    /// character other than letters, digits, `.`, `_` and `-` replaced by `-`.
    pub fn dir_name(&self) -> String {
        self.label()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }

    /// Whether the candidate is chosen by MRC values (so MRC must run first).
    pub fn needs_mrc(&self) -> bool {
        matches!(
            self,
            Candidate::Rift | Candidate::Highest | Candidate::Lowest(_)
        )
    }

    /// Refuses, before any compute, a candidate the model cannot answer: unknown module
    /// names, or more MRC-ranked modules than MRC will score (`scored`).
    pub fn check(&self, arch: &str, modules: &[String], scored: usize) -> Result<(), CompareError> {
        match self {
            Candidate::Named(names) => {
                for name in names {
                    if !modules.contains(name) {
                        return Err(CompareError::UnknownModule {
                            name: name.clone(),
                            arch: arch.into(),
                            valid: modules.join(", "),
                        });
                    }
                }
                crate::engine::rift::finetune::check_distinct_layers(names)
                    .map_err(|_| CompareError::Repeated(self.label()))
            }
            Candidate::Lowest(k) if *k > scored => Err(CompareError::TooFewScored {
                label: self.label(),
                needed: *k,
                scored,
            }),
            Candidate::Highest if scored < 2 => Err(CompareError::TooFewScored {
                label: self.label(),
                needed: 2,
                scored,
            }),
            _ => Ok(()),
        }
    }

    /// What the candidate trains. `mrc` holds the exact MRC values (ascending), `modules`
    /// the model's modules in forward order, `seed` the run's seed (for `random`).
    pub fn resolve(
        &self,
        mrc: Option<&MrcResult>,
        modules: &[String],
        seed: u64,
    ) -> Result<Trained, CompareError> {
        let ranked =
            || -> Result<&[crate::engine::rift::mrc::results::ModuleScore], CompareError> {
                match mrc {
                    Some(r) if !r.modules.is_empty() => Ok(&r.modules),
                    _ => Err(CompareError::NoExactMrc(self.label())),
                }
            };
        let one = |name: &str| Trained::Modules(vec![name.to_string()]);
        Ok(match self {
            Candidate::Rift => one(&ranked()?[0].name),
            Candidate::Highest => {
                let r = ranked()?;
                one(&r[r.len() - 1].name)
            }
            Candidate::Lowest(k) => {
                let r = ranked()?;
                if *k > r.len() {
                    return Err(CompareError::TooFewScored {
                        label: self.label(),
                        needed: *k,
                        scored: r.len(),
                    });
                }
                Trained::Modules(r.iter().take(*k).map(|m| m.name.clone()).collect())
            }
            Candidate::Last => match modules.last() {
                Some(m) => one(m),
                None => return Err(CompareError::NoExactMrc(self.label())),
            },
            Candidate::All => Trained::AllParameters,
            Candidate::Random(s) => one(&modules[random_index(s.unwrap_or(seed), modules.len())]),
            Candidate::Named(names) => Trained::Modules(names.clone()),
        })
    }
}

/// The module index `random:SEED` draws: uniform over `n`, from ChaCha8 seeded with SEED
/// (the same stream rift's other seeded draws use), so the same seed picks the same module
/// on every machine.
pub fn random_index(seed: u64, n: usize) -> usize {
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).gen_range(0..n.max(1))
}

/// A candidate's value and its change from the AT model (points), with a 95 % interval
/// for the change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub value: f64,
    pub change: f64,
    pub ci95: [f64; 2],
}

/// The AT model's numbers every change is measured from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AtRow {
    pub clean: f64,
    pub robust: f64,
    /// Test samples of the clean and robust numbers.
    pub n: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ood: Option<f64>,
    /// AutoAttack robust accuracy on the first `autoattack_n` test samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoattack: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoattack_n: Option<usize>,
}

/// One candidate's line of the comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateRow {
    pub candidate: String,
    /// The modules trained, or `["all parameters"]`.
    pub modules: Vec<String>,
    pub trained_params: i64,
    /// The seed `random` drew its module with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub chosen_alpha: f64,
    pub clean: Change,
    pub robust: Change,
    /// Mean accuracy over the corruptions found (a corrupted set is configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ood: Option<Change>,
    /// AutoAttack robust accuracy (`--final-eval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoattack: Option<Change>,
    /// The whole α curve, as `rift interpolate` writes it (α = 0 is the AT model).
    pub points: Vec<SweepPoint>,
    /// The candidate's own session directory, relative to the comparison's.
    pub session: String,
}

/// `compare.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareResult {
    /// The AT model compared: its `--zoo` id when it was named by one, else its checkpoint.
    #[serde(default)]
    pub model: String,
    pub at: AtRow,
    pub candidates: Vec<CandidateRow>,
    /// Points of robust accuracy the α rule may lose against α = 0.
    pub tolerance: f64,
    pub alphas: Vec<f64>,
    /// How the intervals were computed, per quantity.
    pub intervals: IntervalMethods,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalMethods {
    /// Clean, robust and AutoAttack changes: paired, from per-sample verdicts on the same
    /// samples.
    pub paired: String,
    /// OOD changes: independent proportions from the pooled counts (OOD keeps no
    /// per-sample verdicts), wider than a paired interval would be.
    pub ood: String,
}

impl IntervalMethods {
    pub fn current() -> IntervalMethods {
        IntervalMethods {
            paired: crate::engine::rift::final_eval::stats::METHOD.into(),
            ood: "newcombe-independent-hybrid-score (pooled over corruptions and severities)"
                .into(),
        }
    }
}

fn paired_change(at: &[bool], chosen: &[bool]) -> Change {
    let d = PairedDifference::of(at, chosen);
    let n = chosen.len().max(1) as f64;
    Change {
        value: 100.0 * chosen.iter().filter(|&&c| c).count() as f64 / n,
        change: d.points,
        ci95: d.ci95,
    }
}

/// Correct predictions and samples of an OOD result, pooled over corruptions.
fn pooled(r: &OodResult) -> (usize, usize) {
    r.corruptions.iter().fold((0, 0), |(k, n), c| {
        (k + (c.acc / 100.0 * c.n as f64).round() as usize, n + c.n)
    })
}

/// The OOD change of the chosen model: the mean over corruptions found, its change, and
/// the independent-proportions interval of the pooled accuracy's change (equal to the
/// mean's when every corruption has as many images, as in CIFAR-10-C).
pub fn ood_change(at: &OodResult, chosen: &OodResult) -> Change {
    let ((k1, n1), (k2, n2)) = (pooled(chosen), pooled(at));
    let (_, ci) = newcombe_independent(k1, n1, k2, n2, crate::engine::rift::alpha::stats::Z95);
    let change = chosen.mean_acc - at.mean_acc;
    let pooled_change = 100.0 * (k1 as f64 / n1.max(1) as f64 - k2 as f64 / n2.max(1) as f64);
    // Centre the interval on the mean's change (they differ only with unequal sizes).
    let shift = change - pooled_change;
    Change {
        value: chosen.mean_acc,
        change,
        ci95: [ci[0] + shift, ci[1] + shift],
    }
}

/// The AT model's row from the comparison's shared session and the AT verdicts.
pub fn at_row(shared: &Session, at: &Verdicts, final_at: Option<(f64, usize)>) -> AtRow {
    let pct = |v: &[bool]| 100.0 * v.iter().filter(|&&c| c).count() as f64 / v.len().max(1) as f64;
    AtRow {
        clean: pct(&at.clean),
        robust: pct(&at.robust),
        n: at.clean.len(),
        ood: shared.ood_at.as_ref().map(|o| o.mean_acc),
        autoattack: final_at.map(|(r, _)| r),
        autoattack_n: final_at.map(|(_, n)| n),
    }
}

/// What a finished candidate's row is made from.
pub struct RowInputs<'a> {
    pub candidate: &'a Candidate,
    pub seed: Option<u64>,
    /// The candidate's finished session.
    pub session: &'a Session,
    pub at: &'a Verdicts,
    /// Verdicts of the model at the chosen α on the same samples.
    pub chosen: &'a Verdicts,
    pub session_dir: String,
}

/// A finished candidate's row. None when its session lacks fine-tuning or the sweep.
pub fn candidate_row(i: RowInputs) -> Option<CandidateRow> {
    let s = i.session;
    let (ft, interp) = (s.finetune.as_ref()?, s.interpolation.as_ref()?);
    let ood = match (&s.ood_at, &s.ood_chosen) {
        (Some(a), Some(c)) => Some(ood_change(a, c)),
        _ => None,
    };
    let autoattack = s.final_eval.as_ref().map(|f| {
        let sum = f.summary();
        Change {
            value: sum.chosen_robust,
            change: f.difference.points,
            ci95: f.difference.ci95,
        }
    });
    Some(CandidateRow {
        candidate: i.candidate.label(),
        modules: ft.layers.clone(),
        trained_params: ft.trained_params,
        seed: i.seed,
        chosen_alpha: interp.chosen_alpha,
        clean: paired_change(&i.at.clean, &i.chosen.clean),
        robust: paired_change(&i.at.robust, &i.chosen.robust),
        ood,
        autoattack,
        points: interp.points.clone(),
        session: i.session_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_list() {
        let c = Candidate::parse_list(DEFAULT_CANDIDATES).unwrap();
        assert_eq!(
            c,
            vec![
                Candidate::Rift,
                Candidate::Highest,
                Candidate::Last,
                Candidate::All,
                Candidate::Lowest(3),
                Candidate::Random(None)
            ]
        );
        let labels: Vec<String> = c.iter().map(Candidate::label).collect();
        assert_eq!(labels.join(","), DEFAULT_CANDIDATES);
    }

    #[test]
    fn parses_names_seeds_and_refuses_bad_items() {
        let c = Candidate::parse_list("random:7, layer1.0.conv1+linear").unwrap();
        assert_eq!(c[0], Candidate::Random(Some(7)));
        assert_eq!(
            c[1],
            Candidate::Named(vec!["layer1.0.conv1".into(), "linear".into()])
        );
        assert_eq!(c[1].dir_name(), "layer1.0.conv1-linear");
        assert_eq!(Candidate::Lowest(3).dir_name(), "lowest-3");
        assert!(matches!(
            Candidate::parse_list("lowest:0"),
            Err(CompareError::BadLowest(_))
        ));
        assert!(matches!(
            Candidate::parse_list("random:x"),
            Err(CompareError::BadRandom(_))
        ));
        assert_eq!(
            Candidate::parse_list("rift,rift"),
            Err(CompareError::Repeated("rift".into()))
        );
        assert_eq!(Candidate::parse_list(" , "), Err(CompareError::Empty));
    }

    #[test]
    fn check_refuses_unknown_modules_and_short_rankings() {
        let modules: Vec<String> = ["conv1", "fc"].iter().map(|s| s.to_string()).collect();
        let named = Candidate::Named(vec!["nope".into()]);
        assert!(matches!(
            named.check("resnet18", &modules, 2),
            Err(CompareError::UnknownModule { .. })
        ));
        assert!(Candidate::Lowest(3).check("resnet18", &modules, 2).is_err());
        assert!(Candidate::Lowest(2).check("resnet18", &modules, 2).is_ok());
    }

    #[test]
    fn random_is_seeded_and_uniform_enough() {
        assert_eq!(random_index(5, 21), random_index(5, 21));
        let mut seen = [0usize; 4];
        for s in 0..400 {
            seen[random_index(s, 4)] += 1;
        }
        // Each of 4 modules drawn 100 ± 40 times out of 400 seeds.
        assert!(seen.iter().all(|&k| (60..=140).contains(&k)), "{seen:?}");
    }

    #[test]
    fn paired_change_is_chosen_minus_at() {
        let at = [true, true, false, false];
        let chosen = [true, false, true, true];
        let c = paired_change(&at, &chosen);
        assert!((c.value - 75.0).abs() < 1e-12);
        assert!((c.change - 25.0).abs() < 1e-12);
        assert!(c.ci95[0] < 25.0 && c.ci95[1] > 25.0);
    }
}
