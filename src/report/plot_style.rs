//! The figures' shared look: font family, colours, axis ranges and legend swatches (a
//! leaf, so each figure's file and `plots.rs` do not import each other).
use plotters::prelude::*;

pub const FONT: &str = "sans-serif";

pub const BAR: RGBColor = RGBColor(76, 114, 176);
pub const HIGHLIGHT: RGBColor = RGBColor(221, 132, 82);
pub const DROP: RGBColor = RGBColor(196, 78, 82);
pub const CLEAN: RGBColor = RGBColor(76, 114, 176);
pub const ROBUST: RGBColor = RGBColor(196, 78, 82);
pub const VAL: RGBColor = RGBColor(85, 168, 104);
pub const TEST: RGBColor = RGBColor(129, 114, 179);
pub const CHOSEN: RGBColor = RGBColor(60, 60, 60);
/// Scatter points and their labels (the screening figure).
pub const POINT: RGBColor = RGBColor(76, 114, 176);
pub const LABEL: RGBColor = RGBColor(70, 70, 70);

/// `lo..hi` around the finite values, padded by `pad` of the span (at least `min_pad`).
pub fn padded_range(values: impl IntoIterator<Item = f64>, pad: f64, min_pad: f64) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let margin = ((hi - lo) * pad).max(min_pad);
    (lo - margin, hi + margin)
}

/// A legend entry drawn as a short line in `style`.
pub fn line_swatch(style: impl Into<ShapeStyle>) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    let style: ShapeStyle = style.into();
    move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style)
}
