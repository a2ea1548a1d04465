//! Unit tests of α search: intervals, subset sizes, finalists, full-set-only choice.
use super::*;

/// A screened α: clean on 1000 samples, robust on `n` (the subset).
fn sp(alpha: f64, clean: f64, robust: f64, n: usize) -> SearchPoint {
    let k = (robust * n as f64 / 100.0).round() as usize;
    Measured {
        alpha,
        clean: (clean * 10.0).round() as usize,
        clean_n: 1000,
        sub: (0..n).map(|i| i < k).collect(),
        ..Measured::default()
    }
    .point()
}

/// `robust` correct of `robust_n` measured: the first 100 as the subset, the rest as
/// chunks of 100.
fn m(alpha: f64, clean: usize, robust: usize, robust_n: usize) -> Measured {
    let mask: Vec<bool> = (0..robust_n).map(|i| i < robust).collect();
    let sub = mask[..robust_n.min(100)].to_vec();
    let chunks = mask[robust_n.min(100)..]
        .chunks(100)
        .map(<[bool]>::to_vec)
        .collect();
    Measured {
        alpha,
        clean,
        clean_n: 1000,
        sub,
        chunks,
        known: None,
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
        SubsetSize::Fraction(0.1).resolve(10_000, 11, 2.5, third),
        1000
    );
    assert_eq!(
        SubsetSize::Fraction(0.05).resolve(1000, 11, 2.5, third),
        MIN_SUBSET
    );
    assert_eq!(SubsetSize::Fraction(0.1).resolve(50, 11, 2.5, third), 50);
    assert_eq!(SubsetSize::Count(300).resolve(100, 11, 2.5, third), 100);
    // Auto: a tenth, unless α = 0 and two more completions would no longer fit.
    assert_eq!(SubsetSize::Auto.resolve(10_000, 11, 2.5, third), 1000);
    assert_eq!(SubsetSize::Auto.resolve(1000, 11, 2.5, third), 100);
    let s = SubsetSize::Auto.resolve(1000, 11, 3.0, third);
    assert_eq!(s, 83);
    assert!(11.0 * s as f64 + 3.0 * (1000 - s) as f64 <= third * 11_000.0);
    // α = 0 already known (rift run's baseline): two completions fit a tenth.
    assert_eq!(SubsetSize::Auto.resolve(1000, 10, 2.0, third), 100);
}

#[test]
fn paired_intervals_are_tight_exact_when_complete_and_never_certain_too_early() {
    // 1000 samples; 200 seen; α loses 12 samples α = 0 keeps and gains 2.
    let base: Vec<bool> = (0..200).map(|i| i % 2 == 0).collect();
    let mut alpha = base.clone();
    for i in 0..12 {
        alpha[2 * i] = false;
    }
    alpha[1] = true;
    alpha[3] = true;
    let p = Paired::of(&alpha, &base);
    assert_eq!((p.gained, p.lost, p.m), (2, 12, 200));
    assert!((p.diff() + 5.0).abs() < 1e-12);
    let [lo, hi] = p.interval(1000, Z95);
    assert!(lo < -5.0 && hi > -5.0 && hi < -1.0, "{lo} {hi}");
    // Two independent Wilson intervals would overlap widely (50 % vs 45 % of 200).
    let (a, b) = (wilson(90, 200, Z95), wilson(100, 200, Z95));
    assert!(a[1] > b[0]);
    // More of the set seen: narrower; all of it: exact.
    let wide = p.interval(100_000, Z95);
    assert!(hi - lo < wide[1] - wide[0]);
    assert_eq!(p.interval(200, Z95), [-5.0, -5.0]);
    // No discordant pair yet is not certainty.
    let same = Paired::of(&base[..50], &base[..50]);
    let [lo, hi] = same.interval(1000, Z99);
    assert!(lo < -1.0 && hi > 1.0, "{lo} {hi}");
    // Finite-population interval of one accuracy: exact when complete, within [0, 100].
    assert_eq!(fpc_interval(450, 1000, 1000, Z95), [45.0, 45.0]);
    let [lo, hi] = fpc_interval(200, 200, 1000, Z95);
    assert!(hi == 100.0 && lo < 100.0 && lo > 95.0, "{lo} {hi}");
}

#[test]
fn drop_interval_pairs_with_measured_base_and_falls_back_for_known_counts() {
    // α = 0 robust on half of the first 300 samples; α on the same ones minus 30 of them:
    // -10 points on 300.
    let base = m(0.0, 900, 150, 1000);
    let mut cand = m(0.5, 950, 0, 300);
    let b = base.mask(2);
    cand.sub = b[..100].to_vec();
    cand.chunks = vec![b[100..200].to_vec(), b[200..300].to_vec()];
    for v in cand.sub.iter_mut().take(30) {
        *v = false;
    }
    let (diff, [lo, hi], samples) = drop_interval(&cand, &base, Z99);
    assert_eq!(samples, 300);
    assert!(
        (diff + 10.0).abs() < 1e-9 && hi < -5.0 && lo < diff,
        "{diff} {lo} {hi}"
    );
    // α = 0 known only as a count (rift run's baseline; 50 % as on these 300 samples):
    // unpaired, so much wider.
    let known = Measured::from_known(&SweepPoint {
        alpha: 0.0,
        clean_acc: 90.0,
        robust_acc: 50.0,
        n: 1000,
    });
    let (d2, [lo2, hi2], _) = drop_interval(&cand, &known, Z99);
    assert!((d2 + 10.0).abs() < 1e-9, "{d2}");
    assert!(
        hi2 - lo2 > hi - lo && lo2 < d2 && d2 < hi2,
        "{d2} {lo2} {hi2}"
    );
}

#[test]
fn finalists_follow_the_rules_order() {
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
    let a = split(&set, 40, 10, 8, 7);
    let b = split(&set, 40, 10, 8, 7);
    assert_eq!(a.sub.set.pixels, b.sub.set.pixels);
    let sizes: Vec<usize> = a.chunks.iter().map(|c| c.set.n).collect();
    assert_eq!((a.sub.set.n, a.all.n, sizes), (10, 40, vec![8, 8, 8, 6]));
    let mut all: Vec<u8> = a.sub.set.pixels.clone();
    for c in &a.chunks {
        all.extend(&c.set.pixels);
        // The keys are the samples' indices in the set (pixel value = index here).
        assert_eq!(
            c.idx.iter().map(|&i| i as u8).collect::<Vec<_>>(),
            c.set.pixels
        );
    }
    all.sort_unstable();
    assert_eq!(all, (0..40).collect::<Vec<u8>>());
    assert_ne!(
        a.sub.set.pixels,
        (0..10).collect::<Vec<u8>>(),
        "a prefix, not a random subset"
    );
}
