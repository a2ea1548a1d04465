//! The statistics behind α search (`search.rs`): subset sizes, Wilson intervals for
//! reported accuracies, and the interval the search decides with — the robust-accuracy
//! difference between an α and α = 0 on the *same* samples (same attack seeds), extended to
//! the whole evaluated set with the finite-population correction. Paired differences are
//! far tighter than two independent intervals: most samples are robust (or not) at both α.

/// Two-sided 95 % normal quantile (reported intervals).
pub const Z95: f64 = 1.959_963_984_540_054;
/// Two-sided 99 % normal quantile: the search rejects an α only when its paired interval at
/// this level lies wholly below the tolerance, because it looks at each α several times
/// (after the subset and after every further chunk).
pub const Z99: f64 = 2.575_829_303_548_901;
/// A fractional subset never goes below this many samples (nor above the set).
pub const MIN_SUBSET: usize = 100;

/// How many samples the screen uses.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubsetSize {
    /// The default: a tenth of the evaluated samples (at least `MIN_SUBSET`), but never so
    /// many that α = 0 and two more completions (the choice, and room for rejecting others)
    /// no longer fit the work budget.
    Auto,
    /// This fraction of the evaluated samples, at least `MIN_SUBSET`.
    Fraction(f64),
    Count(usize),
}

impl SubsetSize {
    /// `N` (a sample count ≥ 1) or a fraction in (0, 1) such as `0.1` or `1/10`.
    pub fn parse(s: &str) -> Result<SubsetSize, String> {
        let bad = || {
            format!(
                "`{s}` is not a subset size: give a number of samples (e.g. 500) or a fraction \
                 of the evaluated test set between 0 and 1 (e.g. 0.1 or 1/10)"
            )
        };
        let t = s.trim();
        if let Ok(n) = t.parse::<usize>() {
            return if n >= 1 {
                Ok(SubsetSize::Count(n))
            } else {
                Err(bad())
            };
        }
        let f = match t.split_once('/') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse::<f64>(), b.trim().parse::<f64>());
                match (a, b) {
                    (Ok(a), Ok(b)) if b != 0.0 => a / b,
                    _ => return Err(bad()),
                }
            }
            None => t.parse::<f64>().map_err(|_| bad())?,
        };
        if f > 0.0 && f < 1.0 {
            Ok(SubsetSize::Fraction(f))
        } else {
            Err(bad())
        }
    }

    /// The subset size for `n` evaluated samples, `k` α to screen, `m` completions that
    /// must fit (α = 0 unless known, one finalist, and room to reject others) and the work
    /// budget (a fraction of the grid's `k·n`).
    pub fn resolve(self, n: usize, k: usize, m: f64, budget: f64) -> usize {
        match self {
            SubsetSize::Auto => {
                let want = SubsetSize::Fraction(0.1).resolve(n, k, m, budget);
                // k·S + m·(n − S) ≤ budget·k·n, solved for S.
                let k = k as f64;
                let cap = (budget * k - m) * n as f64 / (k - m);
                if k > m && cap >= 1.0 {
                    want.min(cap.floor() as usize)
                } else {
                    want
                }
            }
            SubsetSize::Fraction(f) => ((f * n as f64).round() as usize).max(MIN_SUBSET).min(n),
            SubsetSize::Count(c) => c.min(n),
        }
    }

    pub fn text(self) -> String {
        match self {
            SubsetSize::Auto => "auto".into(),
            SubsetSize::Fraction(f) => format!("{f}"),
            SubsetSize::Count(c) => format!("{c}"),
        }
    }
}

/// Wilson score interval of `k` successes in `n`, in percent.
pub fn wilson(k: usize, n: usize, z: f64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 100.0];
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // Exact at the ends (rounding would leave 1e-16 there).
    let lo = if k == 0.0 {
        0.0
    } else {
        100.0 * (centre - half)
    };
    let hi = if k == n {
        100.0
    } else {
        100.0 * (centre + half)
    };
    [lo.max(0.0), hi.min(100.0)]
}

/// Robust correctness of α and of α = 0 on the same `m` samples, as the counts that
/// matter: `gained` (robust at α only) and `lost` (robust at α = 0 only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paired {
    pub gained: usize,
    pub lost: usize,
    pub m: usize,
}

impl Paired {
    pub fn of(alpha: &[bool], base: &[bool]) -> Paired {
        let mut p = Paired {
            m: alpha.len().min(base.len()),
            ..Paired::default()
        };
        for (&a, &b) in alpha.iter().zip(base) {
            p.gained += usize::from(a && !b);
            p.lost += usize::from(b && !a);
        }
        p
    }

    /// Robust accuracy of α minus that of α = 0 on the `m` samples, in points.
    pub fn diff(&self) -> f64 {
        if self.m == 0 {
            0.0
        } else {
            100.0 * (self.gained as f64 - self.lost as f64) / self.m as f64
        }
    }

    /// Interval (points) for the difference over all `n` evaluated samples, of which these
    /// `m` are a uniform random part: normal approximation with the finite-population
    /// correction (exact — zero width — once m = n), its variance taken with half a
    /// pseudo-sample in each discordant cell so that no discordant pair so far does not
    /// read as certainty.
    pub fn interval(&self, n: usize, z: f64) -> [f64; 2] {
        let d = self.diff();
        if self.m == 0 {
            return [-100.0, 100.0];
        }
        if self.m >= n {
            return [d, d];
        }
        let (g, l, m) = (
            self.gained as f64 + 0.5,
            self.lost as f64 + 0.5,
            self.m as f64 + 1.0,
        );
        let mean = (g - l) / m;
        let s2 = ((g + l) / m - mean * mean) * m / (m - 1.0).max(1.0);
        let fpc = (n as f64 - self.m as f64) / (n as f64 - 1.0).max(1.0);
        let half = 100.0 * z * (s2 * fpc / self.m as f64).sqrt();
        [(d - half).max(-100.0), (d + half).min(100.0)]
    }
}

/// Interval (percent) for the accuracy over all `n` samples from `k` correct of a uniform
/// random `m` of them (finite-population correction; one pseudo-success and -failure in
/// the variance). For a candidate when α = 0 is known only as a count (the AT baseline of
/// `rift run`), so no pairing is possible.
pub fn fpc_interval(k: usize, m: usize, n: usize, z: f64) -> [f64; 2] {
    if m == 0 {
        return [0.0, 100.0];
    }
    let p = k as f64 / m as f64;
    if m >= n {
        return [100.0 * p, 100.0 * p];
    }
    let pt = (k as f64 + 1.0) / (m as f64 + 2.0);
    let fpc = (n as f64 - m as f64) / (n as f64 - 1.0).max(1.0);
    let half = 100.0 * z * (pt * (1.0 - pt) * fpc / m as f64).sqrt();
    [(100.0 * p - half).max(0.0), (100.0 * p + half).min(100.0)]
}
