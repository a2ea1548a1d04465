//! The α panel's AutoAttack line (`e`): the running attack with its throughput and time
//! left, then the result — AutoAttack's robust accuracy of AT and the accepted model, each
//! beside PGD's from the sweep, and the paired difference with its 95 % interval.
use super::status::fmt_secs;
use crate::tui::aa_check::model_name;
use crate::tui::state::State;
use crate::tui::theme::Theme;
use ratatui::text::{Line, Span};

/// The line, when a check runs or has a result.
pub fn line(s: &State, t: &Theme) -> Option<Line<'static>> {
    if let Some(r) = &s.aa.running {
        let mut text = format!(
            "AutoAttack {} · {} {}/{}",
            model_name(r.model),
            r.attack,
            r.done,
            r.total
        );
        if let Some((rate, left)) = r.rate(s.now) {
            text.push_str(&format!(" · {rate:.1} pt/s · {} left", fmt_secs(left)));
        }
        return Some(Line::styled(text, t.status));
    }
    let f = s.aa.result.as_ref()?;
    let pgd = |alpha: f64| {
        s.sweep
            .iter()
            .find(|p| p.alpha == alpha)
            .map_or(String::new(), |p| format!(" (PGD {:.1})", p.robust_acc))
    };
    Some(Line::from(vec![
        Span::styled("AutoAttack ", t.text),
        Span::styled(format!("AT {:.2}{} ", f.at_robust, pgd(0.0)), t.baseline),
        Span::styled(
            format!("α {} {:.2}{} ", f.alpha, f.chosen_robust, pgd(f.alpha)),
            t.ok,
        ),
        Span::styled(
            format!(
                "Δ {:+.2} [{:+.2}, {:+.2}] n={}",
                f.difference, f.ci95[0], f.ci95[1], f.n
            ),
            t.text,
        ),
    ]))
}
