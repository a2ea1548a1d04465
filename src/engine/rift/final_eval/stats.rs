//! The interval `rift run --final-eval` reports for "chosen − AT" robust accuracy. Both
//! models are attacked on the *same* samples, so the two accuracies are paired: what
//! matters is how many samples only one of them keeps (the discordant counts), not the
//! two accuracies' separate spreads.
//!
//! Method: Newcombe's hybrid score interval for a difference of paired proportions
//! (Newcombe 1998, *Statistics in Medicine* 17:2635, method 10): the Wilson score
//! intervals of the two accuracies, combined with the phi correlation of the 2×2 table of
//! per-sample verdicts. Unlike the Wald interval on per-sample differences it does not
//! collapse to zero width when no sample is discordant, and it stays inside [−100, 100].
use crate::engine::rift::alpha::stats::{wilson, Z95};
use serde::{Deserialize, Serialize};

/// The method's name as recorded in sessions.
pub const METHOD: &str = "newcombe-paired-hybrid-score";

/// Robust accuracy of the chosen model minus that of the AT model on the same samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    /// chosen − AT, in points.
    pub points: f64,
    /// Two-sided 95 % interval of `points`.
    pub ci95: [f64; 2],
    /// Samples robust for the chosen model only / for the AT model only.
    pub chosen_only: usize,
    pub at_only: usize,
    /// Samples robust for both / for neither.
    pub both: usize,
    pub neither: usize,
    pub n: usize,
    pub method: String,
}

impl PairedDifference {
    /// From the per-sample verdicts (robust: true) of the two models on the same samples.
    pub fn of(at: &[bool], chosen: &[bool]) -> PairedDifference {
        let mut d = PairedDifference {
            points: 0.0,
            ci95: [0.0, 0.0],
            chosen_only: 0,
            at_only: 0,
            both: 0,
            neither: 0,
            n: at.len().min(chosen.len()),
            method: METHOD.into(),
        };
        for (&a, &c) in at.iter().zip(chosen) {
            match (a, c) {
                (true, true) => d.both += 1,
                (false, true) => d.chosen_only += 1,
                (true, false) => d.at_only += 1,
                (false, false) => d.neither += 1,
            }
        }
        let (points, ci) = newcombe_paired(d.both, d.chosen_only, d.at_only, d.neither, Z95);
        d.points = points;
        d.ci95 = ci;
        d
    }
}

/// Difference (points) of two paired proportions p1 − p2 and its interval at normal
/// quantile `z`, from the 2×2 table: `both` successes, `first_only`, `second_only`,
/// `neither`. Newcombe's method 10 (see the module comment).
pub fn newcombe_paired(
    both: usize,
    first_only: usize,
    second_only: usize,
    neither: usize,
    z: f64,
) -> (f64, [f64; 2]) {
    let n = both + first_only + second_only + neither;
    if n == 0 {
        return (0.0, [-100.0, 100.0]);
    }
    let (a, b, c, d) = (
        both as f64,
        first_only as f64,
        second_only as f64,
        neither as f64,
    );
    let nf = n as f64;
    // Percent throughout, as `wilson` returns.
    let p1 = 100.0 * (a + b) / nf;
    let p2 = 100.0 * (a + c) / nf;
    let [l1, u1] = wilson(both + first_only, n, z);
    let [l2, u2] = wilson(both + second_only, n, z);
    let margins = (a + b) * (c + d) * (a + c) * (b + d);
    let phi = if margins > 0.0 {
        (a * d - b * c) / margins.sqrt()
    } else {
        0.0
    };
    let theta = p1 - p2;
    let lower =
        ((p1 - l1).powi(2) - 2.0 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2).powi(2)).max(0.0);
    let upper =
        ((u1 - p1).powi(2) - 2.0 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2).powi(2)).max(0.0);
    (
        theta,
        [
            (theta - lower.sqrt()).max(-100.0),
            (theta + upper.sqrt()).min(100.0),
        ],
    )
}

/// Difference (points) of two independent proportions `k1/n1 − k2/n2` and its interval
/// at normal quantile `z`: Newcombe's hybrid score interval for unpaired samples (1998,
/// method 10 of his companion paper on independent proportions, *Statistics in Medicine*
/// 17:873): the paired formula with no correlation. Used where per-sample verdicts are not
/// kept (OOD accuracy); on positively correlated paired data it is wider than the paired
/// interval, so it errs on the side of caution.
pub fn newcombe_independent(k1: usize, n1: usize, k2: usize, n2: usize, z: f64) -> (f64, [f64; 2]) {
    if n1 == 0 || n2 == 0 {
        return (0.0, [-100.0, 100.0]);
    }
    let p1 = 100.0 * k1 as f64 / n1 as f64;
    let p2 = 100.0 * k2 as f64 / n2 as f64;
    let [l1, u1] = wilson(k1, n1, z);
    let [l2, u2] = wilson(k2, n2, z);
    let theta = p1 - p2;
    let lower = ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let upper = ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    (
        theta,
        [(theta - lower).max(-100.0), (theta + upper).min(100.0)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With only one model changing its verdict, the interval is that model's side of
    /// zero at most by the discordant share, and lies inside [−100, 100].
    #[test]
    fn one_sided_discordance() {
        let (theta, [lo, hi]) = newcombe_paired(36, 12, 0, 2, Z95);
        assert!((theta - 24.0).abs() < 1e-12);
        assert!(lo > 0.0 && hi > theta && hi <= 100.0, "{lo} {hi}");
    }

    /// Newcombe's (1998, independent proportions) worked example 56/70 − 48/80:
    /// interval 0.0524 to 0.3339, as printed in his Table II (method 10).
    #[test]
    fn independent_matches_newcombe_table() {
        let (theta, [lo, hi]) = newcombe_independent(56, 70, 48, 80, Z95);
        assert!((theta - 20.0).abs() < 1e-9);
        assert!((lo - 5.24).abs() < 0.01, "{lo}");
        assert!((hi - 33.39).abs() < 0.01, "{hi}");
    }

    #[test]
    fn no_discordant_samples_still_has_width() {
        let at = vec![true, true, false, false, true];
        let d = PairedDifference::of(&at, &at);
        assert_eq!(d.points, 0.0);
        assert!(d.ci95[0] < 0.0 && d.ci95[1] > 0.0, "{:?}", d.ci95);
        assert_eq!((d.both, d.neither, d.chosen_only, d.at_only), (3, 2, 0, 0));
    }

    #[test]
    fn counts_and_sign_follow_chosen_minus_at() {
        let at = [true, false, false, true];
        let chosen = [true, true, true, false];
        let d = PairedDifference::of(&at, &chosen);
        assert_eq!((d.chosen_only, d.at_only, d.both, d.neither), (2, 1, 1, 0));
        assert!((d.points - 25.0).abs() < 1e-12);
        assert!(d.ci95[0] < 25.0 && d.ci95[1] > 25.0);
        assert!(d.ci95[0] >= -100.0 && d.ci95[1] <= 100.0);
    }
}
