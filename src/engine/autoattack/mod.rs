//! AutoAttack (Croce & Hein, ICML 2020), L∞: APGD-CE, APGD-DLR, APGD-T, FAB-T and Square,
//! and the ensemble that runs them in order, each only on the points every earlier attack
//! left robust, so the result is the per-sample worst case. Written after the published
//! algorithms (the `pyautoattack` package is the reference the tests compare against).
//!
//! Randomness is keyed per sample (seed, attack, restart or target, the sample's index in
//! the evaluated set), so a point's attack does not depend on its batch: an interrupted run
//! resumed from its state file gives the result of an uninterrupted one.
pub mod apgd;
pub mod ensemble;
pub mod fab;
pub mod square;
pub mod state;

pub use ensemble::{evaluate, AaReport, AttackOutcome};
pub use state::AaState;

use super::attack::{AttackError, PgdConfig};
use super::models::Model;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// One attack of the ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    ApgdCe,
    ApgdDlr,
    ApgdT,
    FabT,
    Square,
    Pgd,
}

/// The standard version's attacks, in the published order.
pub const STANDARD: [AttackKind; 4] = [
    AttackKind::ApgdCe,
    AttackKind::ApgdT,
    AttackKind::FabT,
    AttackKind::Square,
];

impl AttackKind {
    pub const ALL: [AttackKind; 6] = [
        AttackKind::ApgdCe,
        AttackKind::ApgdDlr,
        AttackKind::ApgdT,
        AttackKind::FabT,
        AttackKind::Square,
        AttackKind::Pgd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackKind::ApgdCe => "apgd-ce",
            AttackKind::ApgdDlr => "apgd-dlr",
            AttackKind::ApgdT => "apgd-t",
            AttackKind::FabT => "fab-t",
            AttackKind::Square => "square",
            AttackKind::Pgd => "pgd",
        }
    }

    /// Salt of the attack's random streams, so two attacks never share a start.
    fn salt(self) -> u64 {
        match self {
            AttackKind::ApgdCe => 0x4150_4345,
            AttackKind::ApgdDlr => 0x4150_444C,
            AttackKind::ApgdT => 0x4150_5400,
            AttackKind::FabT => 0x4641_4254,
            AttackKind::Square => 0x5351_5541,
            AttackKind::Pgd => 0x5047_4400,
        }
    }

    /// `autoattack` (the standard version) or a comma-separated list of attack names.
    pub fn parse_list(text: &str) -> Result<Vec<AttackKind>, AaError> {
        let text = text.trim().to_ascii_lowercase();
        if text == "autoattack" || text == "standard" {
            return Ok(STANDARD.to_vec());
        }
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim) {
            let kind = AttackKind::ALL
                .into_iter()
                .find(|k| k.name() == part)
                .ok_or_else(|| {
                    AaError::Config(format!(
                        "unknown attack `{part}`; expected autoattack, none, or a comma-separated list of {}",
                        AttackKind::ALL.map(|k| k.name()).join(", ")
                    ))
                })?;
            if out.contains(&kind) {
                return Err(AaError::Config(format!(
                    "attack `{part}` is listed twice in `{text}`"
                )));
            }
            out.push(kind);
        }
        Ok(out)
    }
}

/// Everything that decides an AutoAttack result (the state file refuses to resume with
/// other values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AaConfig {
    pub attacks: Vec<AttackKind>,
    /// L∞ radius in [0, 1] pixel units.
    pub eps: f64,
    pub seed: u64,
    /// APGD iterations (100 as published) and restarts of APGD-CE/-DLR (1 in the standard version).
    pub apgd_iters: usize,
    pub apgd_restarts: usize,
    /// Target classes of APGD-T and FAB-T (9 as published).
    pub targets: usize,
    pub fab_iters: usize,
    pub square_queries: usize,
    /// Square's initial fraction of pixels changed (0.8 as published).
    pub square_p_init: f64,
    /// Used when `pgd` is in the list (its eps is `eps`).
    pub pgd: PgdConfig,
    pub batch_size: usize,
}

impl AaConfig {
    /// The standard version at radius `eps`.
    pub fn standard(eps: f64, seed: u64) -> AaConfig {
        AaConfig {
            attacks: STANDARD.to_vec(),
            eps,
            seed,
            apgd_iters: 100,
            apgd_restarts: 1,
            targets: 9,
            fab_iters: 100,
            square_queries: 5000,
            square_p_init: 0.8,
            pgd: PgdConfig {
                eps,
                ..PgdConfig::default()
            },
            batch_size: 250,
        }
    }

    /// `autoattack` for the standard version, else the attack names comma-separated.
    pub fn list_name(&self) -> String {
        if self.attacks == STANDARD {
            "autoattack".into()
        } else {
            self.attacks
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(",")
        }
    }

    /// Bad values found before any compute: radius, counts, and class count of the model.
    pub fn validate(&self, num_classes: i64) -> Result<(), AaError> {
        let bad = |m: String| Err(AaError::Config(m));
        if !(self.eps > 0.0 && self.eps <= 1.0) {
            return bad(format!(
                "--eps must be in (0, 1] pixel units (e.g. 8/255), got {}",
                self.eps
            ));
        }
        if self.attacks.is_empty() {
            return bad("no attack to run".into());
        }
        let has = |k: AttackKind| self.attacks.contains(&k);
        if has(AttackKind::Square) && self.square_queries == 0 {
            return bad("Square needs at least one query (--square-queries 0 given)".into());
        }
        if (has(AttackKind::ApgdCe) || has(AttackKind::ApgdDlr) || has(AttackKind::ApgdT))
            && (self.apgd_iters == 0 || self.apgd_restarts == 0)
        {
            return bad("APGD needs at least one iteration and one restart".into());
        }
        if has(AttackKind::FabT) && self.fab_iters == 0 {
            return bad("FAB-T needs at least one iteration".into());
        }
        if has(AttackKind::Pgd) && (self.pgd.steps == 0 || self.pgd.restarts == 0) {
            return bad("PGD needs at least one step and one restart".into());
        }
        if !(self.square_p_init > 0.0 && self.square_p_init <= 1.0) {
            return bad(format!(
                "Square's p_init must be in (0, 1], got {}",
                self.square_p_init
            ));
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        let targeted = has(AttackKind::ApgdT) || has(AttackKind::FabT);
        if targeted && (self.targets == 0 || self.targets as i64 > num_classes - 1) {
            return bad(format!(
                "APGD-T and FAB-T attack {} target classes, but the model has only {num_classes} classes (at most {} targets)",
                self.targets,
                num_classes - 1
            ));
        }
        let min_classes = if has(AttackKind::ApgdT) {
            4
        } else if has(AttackKind::ApgdDlr) {
            3
        } else {
            2
        };
        if num_classes < min_classes {
            return bad(format!(
                "the DLR loss needs at least {min_classes} classes; the model has {num_classes}"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AaError {
    #[error("{0}")]
    Config(String),
    #[error("state file {path}: {reason}")]
    State { path: String, reason: String },
    #[error("cancelled (the state file, if any, holds the finished work)")]
    Cancelled,
    #[error("libtorch error during AutoAttack: {0}")]
    Torch(#[from] tch::TchError),
    #[error("cannot save the AutoAttack state: {0}")]
    Save(String),
}

impl From<AttackError> for AaError {
    fn from(e: AttackError) -> Self {
        match e {
            AttackError::Cancelled => AaError::Cancelled,
            AttackError::Torch(t) => AaError::Torch(t),
        }
    }
}

/// The per-sample random streams of one attack run: stream `s` belongs to the batch's s-th
/// sample, keyed by its index in the evaluated set.
pub(crate) fn streams(seed: u64, kind: AttackKind, run: u64, keys: &[usize]) -> Vec<ChaCha8Rng> {
    keys.iter()
        .map(|&k| {
            let key = seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(kind.salt().wrapping_mul(0xD1B5_4A32_D192_ED03))
                .wrapping_add(run.wrapping_mul(0x94D0_49BB_1331_11EB))
                ^ (k as u64);
            ChaCha8Rng::seed_from_u64(key)
        })
        .collect()
}

/// Logits as f32 (a model computing in bf16 returns bf16).
pub(crate) fn logits(model: &Model, x: &Tensor) -> Result<Tensor, tch::TchError> {
    model.forward(x, false).f_to_kind(Kind::Float)
}

/// Row count of a batch.
pub(crate) fn rows(t: &Tensor) -> i64 {
    t.size().first().copied().unwrap_or(0)
}

/// `t` viewed as one value per sample, broadcastable against an N×C×H×W batch.
pub(crate) fn per_sample(t: &Tensor) -> Result<Tensor, tch::TchError> {
    t.f_view([-1, 1, 1, 1])
}

/// Per-sample L∞ norm of an N×C×H×W batch.
pub(crate) fn linf(t: &Tensor) -> Result<Tensor, tch::TchError> {
    t.f_abs()?.f_flatten(1, -1)?.f_amax(&[1i64][..], false)
}

/// Merges one run over the rows `idx` of a batch into the batch's result: rows the run
/// broke (`still` false) become non-robust, with the run's point as their adversarial one.
pub(crate) fn merge_broken(
    idx: &Tensor,
    still: &Tensor,
    pts: &Tensor,
    robust: &mut Tensor,
    adv: &mut Tensor,
) -> Result<(), tch::TchError> {
    let broke = still.f_logical_not()?;
    let broke_idx = idx.f_masked_select(&broke)?;
    let broke_rows = broke.f_nonzero()?.f_squeeze_dim(1)?;
    *adv = adv.f_index_copy(0, &broke_idx, &pts.f_index_select(0, &broke_rows)?)?;
    *robust = robust.f_index_fill(0, &broke_idx, 0)?;
    Ok(())
}

/// Keeps the rows `keep` (an index tensor) of every tensor in `ts`.
pub(crate) fn keep_rows(ts: &mut [&mut Tensor], keep: &Tensor) -> Result<(), tch::TchError> {
    for t in ts.iter_mut() {
        **t = t.f_index_select(0, keep)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_rejects_unknown_names() {
        assert_eq!(AttackKind::parse_list("autoattack").unwrap(), STANDARD);
        assert_eq!(
            AttackKind::parse_list("square, apgd-ce").unwrap(),
            vec![AttackKind::Square, AttackKind::ApgdCe]
        );
        let e = AttackKind::parse_list("apgd-ce,fgsm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown attack `fgsm`"), "{e}");
        assert!(AttackKind::parse_list("pgd,pgd").is_err());
    }

    #[test]
    fn validation_catches_bad_values() {
        let ok = AaConfig::standard(8.0 / 255.0, 0);
        assert!(ok.validate(10).is_ok());
        assert!(AaConfig {
            eps: 0.0,
            ..ok.clone()
        }
        .validate(10)
        .is_err());
        assert!(AaConfig {
            eps: -0.1,
            ..ok.clone()
        }
        .validate(10)
        .is_err());
        let e = AaConfig {
            square_queries: 0,
            ..ok.clone()
        }
        .validate(10)
        .unwrap_err()
        .to_string();
        assert!(e.contains("Square"), "{e}");
        // Nine targets need ten classes.
        assert!(ok.validate(5).is_err());
    }
}
