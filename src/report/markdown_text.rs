//! How report.md writes numbers and figures: shared by the report's sections (a leaf, so
//! the section files and `markdown.rs` do not import each other).
use super::plots::Figure;
use super::session::Session;
use std::fmt::Write;

/// Percent with two decimals.
pub fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        format!("{v}")
    }
}

/// Signed difference in points, two decimals.
pub fn delta(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.2}")
    } else {
        format!("{v}")
    }
}

/// Four significant digits; scientific notation for very small or large magnitudes.
pub fn sig4(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-3..5).contains(&magnitude) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    format!("{v:.decimals$}")
}

pub fn figure(md: &mut String, session: &Session, fig: Figure, alt: &str) {
    if fig.available(session) {
        let _ = writeln!(md, "![{alt}]({}.png)\n", fig.stem());
        let _ = writeln!(md, "(vector version: [{0}.svg]({0}.svg))\n", fig.stem());
    }
}

/// α with as few decimals as it needs (at least one, at most four).
pub fn alpha_text(a: f64) -> String {
    for d in 1..=4usize {
        let s = format!("{a:.d$}");
        if (s.parse::<f64>().unwrap_or(f64::NAN) - a).abs() < 1e-9 {
            return s;
        }
    }
    format!("{a:.4}")
}

/// A value in [0, 1] pixel units, as `k/255` when it is one.
pub fn over_255(v: f64) -> String {
    let k = v * 255.0;
    if (k - k.round()).abs() < 1e-6 {
        format!("{}/255", k.round() as i64)
    } else {
        format!("{v:.5}")
    }
}
