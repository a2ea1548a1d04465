//! AutoAttack (Croce & Hein, ICML 2020), L∞ and L2: APGD-CE, APGD-DLR, APGD-T, FAB-T and Square,
//! and the ensemble that runs them in order, each only on the points every earlier attack
//! left robust, so the result is the per-sample worst case. Written after the published
//! algorithms (the `pyautoattack` package is the reference the tests compare against).
//!
//! Randomness is keyed per sample (seed, attack, restart or target, the sample's index in
//! the evaluated set), so a point's attack does not depend on its batch: an interrupted run
//! resumed from its state file gives the result of an uninterrupted one.
pub mod apgd;
pub mod checks;
pub mod config;
pub mod ensemble;
pub mod fab;
pub mod fab_projections;
pub mod square;
pub mod square_l2;
pub mod state;

pub mod report;

pub use config::{AaConfig, AaError, AaVersion, AttackKind, PLUS, RAND, STANDARD};
pub use ensemble::{evaluate, AaTask};
pub use report::{AaReport, AaUpdate, AttackOutcome};
pub use state::AaState;

use super::models::Model;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

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
