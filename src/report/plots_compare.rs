//! `rift compare`'s trade-off figure: every candidate's α path in the clean-vs-robust
//! plane, from the shared AT point (α = 0) to α = 1, its chosen α ringed, and the robust
//! tolerance as a dashed floor.
use super::plot_style::{line_swatch, padded_range, CHOSEN, FONT, LABEL};
use crate::engine::rift::compare::CompareResult;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Distinguishable on white and for common colour-vision deficiencies (Okabe–Ito).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(240, 228, 66),
];

pub const SIZE: (u32, u32) = (900, 620);

pub fn draw_compare<DB: DrawingBackend>(
    r: &CompareResult,
    area: &DrawingArea<DB, Shift>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let floor = r.at.robust - r.tolerance;
    let all = r.candidates.iter().flat_map(|c| c.points.iter());
    let (x_lo, x_hi) = padded_range(
        all.clone().map(|p| p.clean_acc).chain([r.at.clean]),
        0.08,
        0.2,
    );
    let (y_lo, y_hi) = padded_range(
        all.map(|p| p.robust_acc).chain([r.at.robust, floor]),
        0.08,
        0.2,
    );
    let mut chart = ChartBuilder::on(area)
        .caption("Candidates: clean vs robust accuracy along α", (FONT, 20))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(56)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("clean accuracy (%)")
        .y_desc("robust accuracy (%)")
        .label_style((FONT, 13))
        .draw()?;
    chart
        .draw_series(DashedLineSeries::new(
            [(x_lo, floor), (x_hi, floor)],
            10,
            6,
            CHOSEN.mix(0.7).stroke_width(1),
        ))?
        .label(format!("AT robust − {} (tolerance)", r.tolerance))
        .legend(line_swatch(CHOSEN.stroke_width(1)));
    for (i, c) in r.candidates.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut pts: Vec<_> = c.points.iter().collect();
        pts.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
        let xy: Vec<(f64, f64)> = pts.iter().map(|p| (p.clean_acc, p.robust_acc)).collect();
        chart
            .draw_series(LineSeries::new(xy.clone(), colour.stroke_width(2)))?
            .label(format!("{} (α = {})", c.candidate, c.chosen_alpha))
            .legend(line_swatch(colour.stroke_width(2)));
        chart.draw_series(
            xy.iter()
                .map(|&(x, y)| Circle::new((x, y), 3, colour.filled())),
        )?;
        if let Some(p) = pts.iter().find(|p| p.alpha == c.chosen_alpha) {
            chart.draw_series(std::iter::once(Circle::new(
                (p.clean_acc, p.robust_acc),
                8,
                colour.stroke_width(2),
            )))?;
        }
    }
    chart.draw_series(std::iter::once(TriangleMarker::new(
        (r.at.clean, r.at.robust),
        8,
        CHOSEN.filled(),
    )))?;
    // The label sits to the lower right of the marker, clear of the paths leaving it.
    let (dx, dy) = ((x_hi - x_lo) * 0.012, (y_hi - y_lo) * 0.015);
    chart.draw_series(std::iter::once(Text::new(
        "AT (α = 0)",
        (r.at.clean + dx, r.at.robust - dy),
        (FONT, 13).into_font().color(&LABEL),
    )))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}
