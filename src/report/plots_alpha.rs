//! The α figure: clean and robust accuracy over the interpolation weight.
use super::plot_style::{line_swatch, padded_range, CHOSEN, CLEAN, FONT, ROBUST};
use crate::engine::rift::mrc::results::{InterpolationResult, SweepPoint};
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The α = 0 point (the AT model), or the smallest α when 0 was not evaluated.
pub fn baseline_point(points: &[SweepPoint]) -> Option<&SweepPoint> {
    points
        .iter()
        .find(|p| p.alpha.abs() < 1e-9)
        .or_else(|| points.iter().min_by(|a, b| a.alpha.total_cmp(&b.alpha)))
}

/// Draws clean (left axis) and robust (right axis) accuracy over α, each with its AT
/// baseline dashed, the robust tolerance dotted, and the chosen α as a vertical line.
pub fn draw_alpha<DB: DrawingBackend>(
    interp: &InterpolationResult,
    area: &DrawingArea<DB, Shift>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut points: Vec<&SweepPoint> = interp.points.iter().collect();
    points.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
    let base = baseline_point(&interp.points)
        .ok_or_else(|| anyhow!("the interpolation result has no points"))?;
    let (x_lo, x_hi) = padded_range(points.iter().map(|p| p.alpha).chain([0.0, 1.0]), 0.03, 0.01);
    // Headroom above the data keeps the legend and the α label off the curves.
    let screened_clean = interp.search.as_ref().map_or(vec![], |s| {
        s.screened.iter().map(|p| p.clean_acc).collect::<Vec<_>>()
    });
    let (c_lo, c_hi) = padded_range(
        points
            .iter()
            .map(|p| p.clean_acc)
            .chain(screened_clean.iter().copied()),
        0.15,
        0.3,
    );
    let c_hi = c_hi + (c_hi - c_lo) * 0.45;
    let robust_floor = base.robust_acc - interp.tolerance;
    // With --search, screened-only α: clean on the full set, robust on the subset only.
    let screened: Vec<(f64, f64, f64)> = interp.search.as_ref().map_or(vec![], |s| {
        s.screened
            .iter()
            .filter(|p| s.screened_only.contains(&p.alpha))
            .map(|p| (p.alpha, p.clean_acc, p.robust_acc))
            .collect()
    });
    let (r_lo, r_hi) = padded_range(
        points
            .iter()
            .map(|p| p.robust_acc)
            .chain(screened.iter().map(|p| p.2))
            .chain([robust_floor]),
        0.15,
        0.3,
    );
    let r_hi = r_hi + (r_hi - r_lo) * 0.45;

    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Interpolation θ(α) = (1 − α)·θ_AT + α·θ_FT — chosen α = {:.2}",
                interp.chosen_alpha
            ),
            (FONT, 22),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .right_y_label_area_size(70)
        .build_cartesian_2d(x_lo..x_hi, c_lo..c_hi)?
        .set_secondary_coord(x_lo..x_hi, r_lo..r_hi);
    chart
        .configure_mesh()
        .x_desc("α")
        .y_desc("clean accuracy (%)")
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("robust accuracy (%)")
        .y_label_formatter(&|v| format!("{v:.1}"))
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .draw()?;

    let clean: Vec<(f64, f64)> = points.iter().map(|p| (p.alpha, p.clean_acc)).collect();
    let robust: Vec<(f64, f64)> = points.iter().map(|p| (p.alpha, p.robust_acc)).collect();
    let dashed = |y: f64, color: RGBColor| {
        DashedLineSeries::new(
            [(x_lo, y), (x_hi, y)],
            10,
            6,
            color.mix(0.7).stroke_width(1),
        )
    };
    chart
        .draw_series(dashed(base.clean_acc, CLEAN))?
        .label(format!(
            "AT clean (α = {:.1}): {:.2}%",
            base.alpha, base.clean_acc
        ))
        .legend(line_swatch(CLEAN.mix(0.7)));
    chart
        .draw_secondary_series(dashed(base.robust_acc, ROBUST))?
        .label(format!(
            "AT robust (α = {:.1}): {:.2}%",
            base.alpha, base.robust_acc
        ))
        .legend(line_swatch(ROBUST.mix(0.7)));
    chart
        .draw_secondary_series(DashedLineSeries::new(
            [(x_lo, robust_floor), (x_hi, robust_floor)],
            2,
            5,
            ROBUST.mix(0.5).stroke_width(1),
        ))?
        .label(format!("robust tolerance ({} points)", interp.tolerance))
        .legend(line_swatch(ROBUST.mix(0.4)));

    chart
        .draw_series(LineSeries::new(clean.clone(), CLEAN.stroke_width(2)))?
        .label("clean accuracy (left axis)")
        .legend(line_swatch(CLEAN.stroke_width(2)));
    chart.draw_series(clean.into_iter().map(|p| Circle::new(p, 5, CLEAN.filled())))?;
    chart
        .draw_secondary_series(LineSeries::new(robust.clone(), ROBUST.stroke_width(2)))?
        .label("robust accuracy (right axis)")
        .legend(line_swatch(ROBUST.stroke_width(2)));
    chart.draw_secondary_series(
        robust
            .into_iter()
            .map(|p| TriangleMarker::new(p, 6, ROBUST.filled())),
    )?;
    if !screened.is_empty() {
        // Hollow markers, not joined: these α never decided anything.
        chart.draw_series(
            screened
                .iter()
                .map(|p| Circle::new((p.0, p.1), 5, CLEAN.stroke_width(2))),
        )?;
        chart
            .draw_secondary_series(
                screened
                    .iter()
                    .map(|p| TriangleMarker::new((p.0, p.2), 6, ROBUST.stroke_width(2))),
            )?
            .label("screened only (hollow; robust on the subset)")
            .legend(line_swatch(ROBUST.mix(0.5)));
    }

    let a = interp.chosen_alpha;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(a, c_lo), (a, c_hi)],
        CHOSEN.stroke_width(2),
    )))?;
    let label_style = TextStyle::from((FONT, 16)).color(&CHOSEN);
    let (label_x, anchor) = if a > (x_lo + x_hi) / 2.0 {
        (a - (x_hi - x_lo) * 0.01, HPos::Right)
    } else {
        (a + (x_hi - x_lo) * 0.01, HPos::Left)
    };
    let label_style = label_style.pos(Pos::new(anchor, VPos::Top));
    chart.draw_series(std::iter::once(Text::new(
        format!("chosen α = {a:.2}"),
        (label_x, c_hi - (c_hi - c_lo) * 0.02),
        label_style,
    )))?;

    chart
        .configure_series_labels()
        .position(if a >= 0.4 {
            SeriesLabelPosition::UpperLeft
        } else {
            SeriesLabelPosition::UpperRight
        })
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}
