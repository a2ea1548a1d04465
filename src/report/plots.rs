//! The session's figures, drawn with plotters. Every figure is a function of its data and a
//! `DrawingArea`, generic over the backend, so the same code renders PNG (`BitMapBackend`
//! into memory, encoded here with `png`) and SVG (`SVGBackend::with_string`).
//!
//! Text is drawn with the DejaVu Sans embedded in the binary (assets/fonts, Bitstream Vera
//! licence), registered as the only font: rendering never depends on fonts installed on
//! the machine.
use super::plot_style::{
    line_swatch, padded_range, BAR, CHOSEN, CLEAN, DROP, FONT, HIGHLIGHT, TEST, VAL,
};
pub use super::plots_alpha::{baseline_point, draw_alpha};
use super::session::Session;
use crate::engine::rift::compare::CompareResult;
use crate::engine::rift::mrc::results::{FinetuneEpoch, FinetuneResult, MrcResult};
use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Pixel size of the PNGs and the SVG canvas.
pub const MRC_SIZE: (u32, u32) = (1400, 760);
pub const FINETUNE_SIZE: (u32, u32) = (1400, 600);
pub const ALPHA_SIZE: (u32, u32) = (1100, 650);

/// Registers the embedded font under every generic family name plotters may ask for.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        ["sans-serif", "serif", "monospace"].iter().all(|family| {
            plotters::style::register_font(family, FontStyle::Normal, DEJAVU_SANS).is_ok()
        })
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the embedded font assets/fonts/DejaVuSans.ttf could not be loaded"
        ))
    }
}

/// One figure of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    Mrc,
    /// First-order estimate against exact MRC (only when screening ran).
    Screen,
    Finetune,
    Alpha,
}

impl Figure {
    pub const ALL: [Figure; 4] = [Figure::Mrc, Figure::Screen, Figure::Finetune, Figure::Alpha];

    /// File stem: `mrc`, `mrc_screen`, `finetune`, `alpha`.
    pub fn stem(self) -> &'static str {
        match self {
            Figure::Mrc => "mrc",
            Figure::Screen => "mrc_screen",
            Figure::Finetune => "finetune",
            Figure::Alpha => "alpha",
        }
    }

    pub fn size(self) -> (u32, u32) {
        match self {
            Figure::Mrc => MRC_SIZE,
            Figure::Screen => super::plots_screen::SCREEN_SIZE,
            Figure::Finetune => FINETUNE_SIZE,
            Figure::Alpha => ALPHA_SIZE,
        }
    }

    /// Whether the session holds the result this figure shows.
    pub fn available(self, session: &Session) -> bool {
        match self {
            Figure::Mrc => session.mrc.as_ref().is_some_and(|m| !m.modules.is_empty()),
            Figure::Screen => session
                .mrc
                .as_ref()
                .is_some_and(|m| !super::plots_screen::screen_pairs(m).is_empty()),
            Figure::Finetune => session.finetune.is_some(),
            Figure::Alpha => session
                .interpolation
                .as_ref()
                .is_some_and(|i| !i.points.is_empty()),
        }
    }

    /// Draws this figure of `session` on `area` (fills the background first).
    pub fn draw<DB: DrawingBackend>(
        self,
        session: &Session,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        ensure_font()?;
        area.fill(&WHITE)?;
        let missing = || {
            anyhow!(
                "session {} has no {} result to plot",
                session.name,
                self.stem()
            )
        };
        match self {
            Figure::Mrc => draw_mrc(session.mrc.as_ref().ok_or_else(missing)?, area),
            Figure::Screen => {
                super::plots_screen::draw_screen(session.mrc.as_ref().ok_or_else(missing)?, area)
            }
            Figure::Finetune => draw_finetune(session.finetune.as_ref().ok_or_else(missing)?, area),
            Figure::Alpha => draw_alpha(session.interpolation.as_ref().ok_or_else(missing)?, area),
        }
    }
}

/// Renders `figure` as SVG text.
pub fn render_svg(figure: Figure, session: &Session) -> Result<String> {
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, figure.size()).into_drawing_area();
        figure.draw(session, &area)?;
        area.present()?;
    }
    Ok(text)
}

/// Renders `figure` as PNG bytes (8-bit RGB).
pub fn render_png(figure: Figure, session: &Session) -> Result<Vec<u8>> {
    let (w, h) = figure.size();
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        figure.draw(session, &area)?;
        area.present()?;
    }
    encode_png(&rgb, w, h)
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // Plots are mostly flat colour: adaptive filtering keeps the files small.
        encoder.set_compression(png::Compression::Best);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = encoder
            .write_header()
            .context("cannot start the PNG stream")?;
        writer
            .write_image_data(rgb)
            .context("cannot encode the PNG image")?;
        writer.finish().context("cannot finish the PNG stream")?;
    }
    Ok(out)
}

/// Writes `STEM.png` and `STEM.svg` into `dir` for every figure whose result exists
/// (atomically, each rendered in memory first) and returns the paths written.
pub fn render_all(session: &Session, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for figure in Figure::ALL.into_iter().filter(|f| f.available(session)) {
        let png_path = dir.join(format!("{}.png", figure.stem()));
        let png = render_png(figure, session)
            .with_context(|| format!("cannot draw {}", png_path.display()))?;
        super::atomic_write(&png_path, &png)?;
        written.push(png_path);

        let svg_path = dir.join(format!("{}.svg", figure.stem()));
        let svg = render_svg(figure, session)
            .with_context(|| format!("cannot draw {}", svg_path.display()))?;
        super::atomic_write(&svg_path, svg.as_bytes())?;
        written.push(svg_path);
    }
    Ok(written)
}

/// `rift compare`'s trade-off figure as `compare.png` and `compare.svg` in `dir`.
pub fn render_compare(r: &CompareResult, dir: &Path) -> Result<()> {
    // Also when it is the process's first figure (a resumed comparison's report).
    ensure_font()?;
    let (w, h) = super::plots_compare::SIZE;
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        super::plots_compare::draw_compare(r, &area)?;
        area.present()?;
    }
    super::atomic_write(&dir.join("compare.png"), &encode_png(&rgb, w, h)?)?;
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
        super::plots_compare::draw_compare(r, &area)?;
        area.present()?;
    }
    Ok(super::atomic_write(
        &dir.join("compare.svg"),
        text.as_bytes(),
    )?)
}

/// A bar axis: from 0 (or below, for negative values) to 12% above the largest value.
fn bar_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    (lo * 1.12, if hi > 0.0 { hi * 1.12 } else { 1.0 })
}

/// Draws the MRC of every module as bars in depth order, the recommended one highlighted,
/// with the robust-accuracy drop at the worst epoch on a secondary axis.
pub fn draw_mrc<DB: DrawingBackend>(mrc: &MrcResult, area: &DrawingArea<DB, Shift>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut modules: Vec<_> = mrc.modules.iter().collect();
    modules.sort_by_key(|m| m.depth);
    let n = modules.len();
    if n == 0 {
        return Err(anyhow!("the MRC result has no modules to plot"));
    }
    let is_recommended = |m: &crate::engine::rift::mrc::results::ModuleScore| {
        m.recommended || m.name == mrc.recommended
    };
    let (y_lo, y_top) = bar_range(modules.iter().map(|m| m.mrc));
    let (drop_lo, drop_top) = bar_range(modules.iter().map(|m| m.robust_acc_drop));
    let longest = modules
        .iter()
        .map(|m| m.name.chars().count())
        .max()
        .unwrap_or(8);
    let label_area = (longest as u32 * 8 + 24).clamp(60, 240);

    let title = format!(
        "Module robust criticality ({} variant, ε = {}) — recommended: {}",
        mrc.variant, mrc.epsilon, mrc.recommended
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 24))
        .margin(16)
        .x_label_area_size(label_area)
        .y_label_area_size(80)
        .right_y_label_area_size(80)
        // An integer range includes its end: 0..n - 1 holds exactly n segments.
        .build_cartesian_2d((0..n - 1).into_segmented(), y_lo..y_top)?
        .set_secondary_coord((0..n - 1).into_segmented(), drop_lo..drop_top);

    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        // Module names are drawn below, rotated: plotters centres rotated tick labels on
        // the tick, which would push half of each name into the plot.
        .x_label_formatter(&|_| String::new())
        .label_style((FONT, 14))
        .y_desc("MRC (adversarial loss increase)")
        .y_label_formatter(&|v| format!("{v:.3}"))
        .axis_desc_style((FONT, 16))
        .x_desc("module (depth order)")
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("robust-accuracy drop (points)")
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .draw()?;

    let base = area.get_base_pixel();
    for (i, m) in modules.iter().enumerate() {
        let color = if is_recommended(m) { HIGHLIGHT } else { BLACK };
        let style = TextStyle::from((FONT, 13))
            .color(&color)
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let (x, y) = chart.backend_coord(&(SegmentValue::CenterOf(i), y_lo));
        area.draw_text(&m.name, &style, (x - base.0, y - base.1 + 8))?;
    }

    let bar = |i: usize, value: f64, color: RGBColor| {
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), value),
            ],
            color.filled(),
        );
        r.set_margin(0, 0, 3, 3);
        r
    };
    let plain = modules
        .iter()
        .enumerate()
        .filter(|(_, m)| !is_recommended(m));
    chart
        .draw_series(plain.map(|(i, m)| bar(i, finite_or_zero(m.mrc), BAR)))?
        .label("MRC")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], BAR.filled()));
    let chosen = modules
        .iter()
        .enumerate()
        .filter(|(_, m)| is_recommended(m));
    chart
        .draw_series(chosen.map(|(i, m)| bar(i, finite_or_zero(m.mrc), HIGHLIGHT)))?
        .label("MRC, recommended (lowest)")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], HIGHLIGHT.filled()));

    let drops: Vec<(SegmentValue<usize>, f64)> = modules
        .iter()
        .enumerate()
        .filter(|(_, m)| m.robust_acc_drop.is_finite())
        .map(|(i, m)| (SegmentValue::CenterOf(i), m.robust_acc_drop))
        .collect();
    chart
        .draw_secondary_series(LineSeries::new(
            drops.clone(),
            DROP.mix(0.6).stroke_width(2),
        ))?
        .label("robust-accuracy drop (right axis)")
        .legend(line_swatch(DROP.stroke_width(2)));
    chart.draw_secondary_series(drops.into_iter().map(|p| Circle::new(p, 4, DROP.filled())))?;

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 15))
        .draw()?;
    Ok(())
}

fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Centred moving average over a window of `window` iterations (non-finite values skipped).
pub fn smooth(values: &[f64], window: usize) -> Vec<f64> {
    let half = window.max(1) / 2;
    (0..values.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(values.len());
            let (sum, count) = values[lo..hi]
                .iter()
                .filter(|v| v.is_finite())
                .fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
            if count == 0 {
                f64::NAN
            } else {
                sum / count as f64
            }
        })
        .collect()
}

/// Draws the training loss per iteration (raw, faint, and smoothed) on the left and the
/// per-epoch train/val/test accuracy on the right, the kept epoch marked.
pub fn draw_finetune<DB: DrawingBackend>(
    ft: &FinetuneResult,
    area: &DrawingArea<DB, Shift>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let title = format!(
        "Fine-tuning {} (lr {}, {} epochs){}",
        ft.layers.join(", "),
        ft.lr,
        ft.epochs_log.len(),
        if ft.diverged.is_some() {
            " — diverged"
        } else {
            ""
        }
    );
    let area = area.titled(&title, (FONT, 24))?;
    let (left, right) = area.split_horizontally(area.dim_in_pixel().0 / 2);

    // Loss per iteration.
    let losses = &ft.iter_losses;
    let (lo, hi) = padded_range(losses.iter().copied(), 0.05, 0.01);
    let x_max = losses.len().max(2) as f64;
    let mut chart = ChartBuilder::on(&left)
        .caption("training loss per iteration", (FONT, 18))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, lo.max(0.0).min(hi - 1e-6)..hi)?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("cross-entropy")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .draw()?;
    let raw: Vec<(f64, f64)> = finite_points(losses);
    chart
        .draw_series(LineSeries::new(raw, CLEAN.mix(0.25)))?
        .label("loss")
        .legend(line_swatch(CLEAN.mix(0.25)));
    let window = (losses.len() / 50).max(5) | 1;
    let smoothed = finite_points(&smooth(losses, window));
    chart
        .draw_series(LineSeries::new(smoothed, CLEAN.stroke_width(2)))?
        .label(format!("moving average ({window} it.)"))
        .legend(line_swatch(CLEAN.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 14))
        .draw()?;

    // Accuracy per epoch.
    let log = &ft.epochs_log;
    let epochs: Vec<f64> = log.iter().map(|e| e.epoch as f64).collect();
    let (x_lo, x_hi) = padded_range(epochs.iter().copied(), 0.05, 0.5);
    let accs = log
        .iter()
        .flat_map(|e| [Some(e.train_acc), e.val_acc, e.test_acc])
        .flatten();
    let (y_lo, y_hi) = padded_range(accs, 0.1, 0.5);
    let mut chart = ChartBuilder::on(&right)
        .caption("accuracy per epoch (%)", (FONT, 18))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy (%)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .draw()?;
    let series: [(&str, RGBColor, EpochAcc); 3] = [
        ("train (augmented)", CLEAN, |e| Some(e.train_acc)),
        ("val", VAL, |e| e.val_acc),
        ("test", TEST, |e| e.test_acc),
    ];
    for (name, color, get) in series {
        let points: Vec<(f64, f64)> = log
            .iter()
            .filter_map(|e| {
                get(e)
                    .filter(|v| v.is_finite())
                    .map(|v| (e.epoch as f64, v))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(line_swatch(color.stroke_width(2)));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    if let Some(best) = log.get(ft.best_epoch) {
        let x = best.epoch as f64;
        chart
            .draw_series(DashedLineSeries::new(
                [(x, y_lo), (x, y_hi)],
                8,
                5,
                CHOSEN.stroke_width(1),
            ))?
            .label(format!("kept epoch ({})", best.epoch))
            .legend(line_swatch(CHOSEN.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}

/// Reads one accuracy of a fine-tuning epoch.
type EpochAcc = fn(&FinetuneEpoch) -> Option<f64>;

fn finite_points(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (i as f64, *v))
        .collect()
}

#[cfg(test)]
#[path = "plots_tests.rs"]
mod tests;
