//! Unit tests of α search: intervals, subset sizes, finalists, full-set-only choice.
use super::*;

/// A screened α: clean on 1000 samples, robust on `n`.
fn sp(alpha: f64, clean: f64, robust: f64, n: usize) -> SearchPoint {
    let k = |a: f64, n: usize| (a * n as f64 / 100.0).round() as usize;
    Measured {
        alpha,
        clean: k(clean, 1000),
        clean_n: 1000,
        robust: k(robust, n),
        robust_n: n,
        full: false,
        sub_robust: k(robust, n),
        sub_n: n,
    }
    .point()
}

fn m(alpha: f64, clean: usize, robust: usize, robust_n: usize) -> Measured {
    Measured {
        alpha,
        clean,
        clean_n: 1000,
        robust,
        robust_n,
        full: robust_n == 1000,
        sub_robust: robust.min(robust_n),
        sub_n: robust_n.min(100),
    }
}

#[test]
fn wilson_matches_known_values() {
    // 50 of 100 at 95 %: 40.38 % .. 59.62 % (e.g. statsmodels proportion_confint, wilson).
    let [lo, hi] = wilson(50, 100, Z95);
    assert!(
        (lo - 40.383).abs() < 0.01 && (hi - 59.617).abs() < 0.01,
        "{lo} {hi}"
    );
    // Never outside [0, 100], even at the extremes; no samples: no information.
    let [lo, hi] = wilson(100, 100, Z95);
    assert!(lo > 96.0 && lo < 97.0 && hi == 100.0, "{lo} {hi}");
    assert_eq!(wilson(0, 100, Z95)[0], 0.0);
    assert_eq!(wilson(0, 0, Z95), [0.0, 100.0]);
    let width = |n: usize| {
        let [a, b] = wilson(n * 9 / 10, n, Z95);
        b - a
    };
    assert!(width(1000) < width(100));
}

#[test]
fn subset_sizes_parse_and_resolve() {
    assert_eq!(SubsetSize::parse("500"), Ok(SubsetSize::Count(500)));
    assert_eq!(SubsetSize::parse("0.1"), Ok(SubsetSize::Fraction(0.1)));
    assert_eq!(SubsetSize::parse("1/10"), Ok(SubsetSize::Fraction(0.1)));
    for bad in ["0", "1.5", "-0.1", "x", "1/0", "", "1.0"] {
        assert!(SubsetSize::parse(bad).is_err(), "{bad}");
    }
    let third = 1.0 / 3.0;
    assert_eq!(
        SubsetSize::Fraction(0.1).resolve(10_000, 11, 2, third),
        1000
    );
    assert_eq!(
        SubsetSize::Fraction(0.1).resolve(1000, 11, 2, third),
        MIN_SUBSET
    );
    assert_eq!(SubsetSize::Fraction(0.1).resolve(50, 11, 2, third), 50);
    assert_eq!(SubsetSize::Count(300).resolve(100, 11, 2, third), 100);
    // Auto: a tenth, unless α = 0 and one finalist would no longer fit the budget.
    assert_eq!(SubsetSize::Auto.resolve(10_000, 11, 2, third), 1000);
    let s = SubsetSize::Auto.resolve(1000, 11, 2, third);
    assert_eq!(s, 185);
    assert!((11 * s + 2 * (1000 - s)) as f64 <= third * 11_000.0);
    // α = 0 already known (rift run): only the finalist must fit.
    assert_eq!(SubsetSize::Auto.resolve(1000, 10, 1, third), 200);
}

#[test]
fn finalists_are_those_the_rule_could_still_choose() {
    let best = (0.0, 90.0);
    // Robust clearly below the tolerance, even at the top of its interval: out.
    assert!(!could_be_chosen(&sp(0.9, 99.0, 30.0, 200), 50.0, best, 0.1));
    // Robust a little lower, within the subset's uncertainty: still possible.
    assert!(could_be_chosen(&sp(0.5, 93.0, 47.0, 200), 50.0, best, 0.1));
    // Exact clean accuracy not above the current choice: out (a tie only for smaller α).
    assert!(!could_be_chosen(&sp(0.3, 89.0, 52.0, 200), 50.0, best, 0.1));
    assert!(!could_be_chosen(
        &sp(0.7, 93.0, 52.0, 200),
        50.0,
        (0.6, 93.0),
        0.1
    ));
    assert!(could_be_chosen(
        &sp(0.5, 93.0, 52.0, 200),
        50.0,
        (0.6, 93.0),
        0.1
    ));
    // The rule's order: larger clean first, smaller α on ties.
    let order: Vec<f64> = finalist_order(&[
        sp(0.2, 91.0, 50.0, 200),
        sp(0.7, 93.0, 49.0, 200),
        sp(0.6, 93.0, 40.0, 200),
        sp(0.8, 92.0, 50.0, 200),
    ])
    .iter()
    .map(|p| p.alpha)
    .collect();
    assert_eq!(order, vec![0.6, 0.7, 0.8, 0.2]);
}

#[test]
fn the_choice_uses_full_set_points_only() {
    let measured = vec![
        m(0.0, 900, 500, 1000),
        m(0.5, 920, 500, 1000),
        // Screened only, better on both counts: never decides.
        m(0.8, 990, 99, 100),
    ];
    assert_eq!(decide(&measured, 0.1), 0.5);
    // α = 0 is the reference: without it on the full set nothing is chosen.
    assert_eq!(decide(&measured[1..], 0.1), 0.0);
    let pts = full_points(&measured);
    assert_eq!(
        pts.iter().map(|p| p.alpha).collect::<Vec<_>>(),
        vec![0.0, 0.5]
    );
    // A screened point reports the subset's robust accuracy with its sample count.
    let sp = m(0.8, 990, 99, 100).screened_point();
    assert_eq!((sp.robust_n, sp.clean_n), (100, 1000));
    assert!(sp.robust_ci[0] < 99.0 && sp.robust_ci[1] <= 100.0);
}

#[test]
fn split_is_deterministic_and_disjoint() {
    let set = ImageSet {
        n: 50,
        channels: 1,
        height: 1,
        width: 1,
        pixels: (0..50).map(|i| i as u8).collect(),
        labels: (0..50).map(|i| i % 10).collect(),
        num_classes: 10,
        class_names: vec![],
    };
    let a = split(&set, 40, 10, 7);
    let b = split(&set, 40, 10, 7);
    assert_eq!(a.sub.pixels, b.sub.pixels);
    assert_eq!((a.sub.n, a.rest.n, a.all.n), (10, 30, 40));
    let mut all: Vec<u8> = a.sub.pixels.iter().chain(&a.rest.pixels).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..40).collect::<Vec<u8>>());
    assert_ne!(
        a.sub.pixels,
        (0..10).collect::<Vec<u8>>(),
        "a prefix, not a random subset"
    );
}
