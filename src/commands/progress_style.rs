//! How progress looks, shared by the stage printer (`progress.rs`) and AutoAttack's meter
//! (`aa_progress.rs`): the bar's template, rates and durations. A leaf.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A progress bar with position/total, rate and time left, drawn on `target`.
pub(super) fn stage_bar(
    target: fn() -> ProgressDrawTarget,
    prefix: String,
    done: u64,
    total: u64,
) -> ProgressBar {
    let style =
        ProgressStyle::with_template("  {prefix}: [{bar:30}] {pos}/{len}  {rate}  {eta} left")
            .map(|s| {
                s.progress_chars("=> ").with_key(
                    "rate",
                    |p: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}", rate(p.per_sec()));
                    },
                )
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(Some(total), target()).with_style(style);
    bar.set_prefix(prefix);
    bar.set_position(done);
    bar
}

/// Steps per second with the digits that matter: 1234/s, 12.3/s, 0.042/s.
pub(super) fn rate(per_sec: f64) -> String {
    if per_sec >= 100.0 {
        format!("{per_sec:.0}/s")
    } else if per_sec >= 1.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{per_sec:.3}/s")
    }
}

/// A duration as people read it in a log line: 45s, 3m05s, 2h07m.
pub(super) fn duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
