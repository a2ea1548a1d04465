//! The screening figure: first-order estimate (not in the paper) against exact MRC for the
//! modules that have both, with Spearman's ρ, so a reader sees how far the cheap ranking
//! can be trusted on this model.
use super::plot_style::{FONT, HIGHLIGHT, LABEL, POINT};
use crate::engine::rift::mrc::results::MrcResult;
use crate::engine::rift::mrc::screen::spearman;
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const SCREEN_SIZE: (u32, u32) = (1100, 800);

/// (module, estimate, exact MRC, recommended) of every module with both values, by depth.
pub fn screen_pairs(mrc: &MrcResult) -> Vec<(String, f64, f64, bool)> {
    let mut v: Vec<_> = mrc
        .modules
        .iter()
        .filter_map(|m| {
            m.estimate
                .filter(|e| e.is_finite() && m.mrc.is_finite())
                .map(|e| (m.depth, m.name.clone(), e, m.mrc, m.name == mrc.recommended))
        })
        .collect();
    v.sort_by_key(|p| p.0);
    v.into_iter().map(|(_, n, e, x, r)| (n, e, x, r)).collect()
}

/// Spearman ρ over the modules that have both values.
pub fn pairs_spearman(pairs: &[(String, f64, f64, bool)]) -> Option<f64> {
    let e: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let x: Vec<f64> = pairs.iter().map(|p| p.2).collect();
    spearman(&e, &x)
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs().max(1e-6) * 0.05);
    (lo - pad, hi + pad)
}

/// Draws estimate (x) against exact MRC (y), one labelled point per module, the
/// recommended module highlighted, and the line y = x for reference.
pub fn draw_screen<DB: DrawingBackend>(mrc: &MrcResult, area: &DrawingArea<DB, Shift>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let pairs = screen_pairs(mrc);
    if pairs.is_empty() {
        return Err(anyhow!("no module has both an estimate and an exact MRC"));
    }
    let rho = pairs_spearman(&pairs).map_or("undefined".to_string(), |r| format!("{r:.3}"));
    // Values span orders of magnitude and the low end is what decides: log axes when all
    // are positive (plotted as log10, labelled in original units).
    let log = pairs.iter().all(|p| p.1 > 0.0 && p.2 > 0.0);
    let f = |v: f64| if log { v.log10() } else { v };
    let pairs: Vec<(String, f64, f64, bool)> = pairs
        .into_iter()
        .map(|(n, e, x, r)| (n, f(e), f(x), r))
        .collect();
    let (x_lo, x_hi) = range(pairs.iter().map(|p| p.1));
    // Room on the right for the names drawn after the points.
    let x_hi = x_hi + (x_hi - x_lo) * 0.12;
    let (y_lo, y_hi) = range(pairs.iter().map(|p| p.2));
    let unit = |v: &f64| {
        let v = if log { 10f64.powf(*v) } else { *v };
        format!("{v:.3}")
    };
    let scale = if log { " (log scale)" } else { "" };
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "First-order estimate vs exact MRC — Spearman ρ = {rho} ({} modules)",
                pairs.len()
            ),
            (FONT, 22),
        )
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "first-order estimate ε·‖w‖·‖∇w L_adv‖ (not in the paper){scale}"
        ))
        .y_desc(format!("exact MRC (adversarial loss increase){scale}"))
        .x_label_formatter(&unit)
        .y_label_formatter(&unit)
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .draw()?;
    let (d_lo, d_hi) = (x_lo.max(y_lo), x_hi.min(y_hi));
    if d_lo < d_hi {
        chart
            .draw_series(DashedLineSeries::new(
                [(d_lo, d_lo), (d_hi, d_hi)],
                8,
                5,
                BLACK.mix(0.4).stroke_width(1),
            ))?
            .label("estimate = exact")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.4)));
    }
    chart
        .draw_series(
            pairs
                .iter()
                .filter(|p| !p.3)
                .map(|p| Circle::new((p.1, p.2), 5, POINT.filled())),
        )?
        .label("module")
        .legend(|(x, y)| Circle::new((x + 8, y), 5, POINT.filled()));
    chart
        .draw_series(
            pairs
                .iter()
                .filter(|p| p.3)
                .map(|p| Circle::new((p.1, p.2), 7, HIGHLIGHT.filled())),
        )?
        .label("recommended (lowest exact MRC)")
        .legend(|(x, y)| Circle::new((x + 8, y), 7, HIGHLIGHT.filled()));
    let label = TextStyle::from((FONT, 12)).pos(Pos::new(HPos::Left, VPos::Center));
    chart.draw_series(pairs.iter().map(|p| {
        let style = if p.3 {
            label.clone().color(&HIGHLIGHT)
        } else {
            label.clone().color(&LABEL)
        };
        Text::new(format!("  {}", p.0), (p.1, p.2), style)
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}
