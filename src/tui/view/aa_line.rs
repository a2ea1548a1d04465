//! The α panel's AutoAttack lines (`e`): the running attack with its throughput and time
//! left, then the result — AutoAttack's robust accuracy of AT and the accepted model, each
//! beside PGD's from the sweep, and the paired difference with its 95 % interval. A panel
//! too narrow for the sentence gets a compact form (the result on two lines).
use super::status::fmt_secs;
use crate::tui::aa_check::model_name;
use crate::tui::state::State;

/// The lines for a panel `width` columns wide (none when no check ran).
pub fn lines(s: &State, width: u16) -> Vec<String> {
    let fits = |text: &str| text.chars().count() <= usize::from(width);
    if let Some(r) = &s.aa.running {
        let rate = r.rate(s.now);
        let wide = format!(
            "AutoAttack {} · {} {}/{}{}",
            model_name(r.model),
            r.attack,
            r.done,
            r.total,
            rate.map_or(String::new(), |(v, left)| format!(
                " · {v:.1} pt/s · {} left",
                fmt_secs(left)
            ))
        );
        let text = if fits(&wide) {
            wide
        } else {
            format!(
                "AA {} {} {}/{}{}",
                model_name(r.model),
                r.attack,
                r.done,
                r.total,
                rate.map_or(String::new(), |(v, left)| format!(
                    " {v:.1}/s {}",
                    fmt_secs(left)
                ))
            )
        };
        return vec![text];
    }
    let Some(f) = &s.aa.result else {
        return Vec::new();
    };
    let pgd = |alpha: f64| {
        s.sweep
            .iter()
            .find(|p| p.alpha == alpha)
            .map(|p| p.robust_acc)
    };
    let (pgd_at, pgd_chosen) = (pgd(0.0), pgd(f.alpha));
    let beside = |v: Option<f64>| v.map_or(String::new(), |x| format!(" (PGD {x:.1})"));
    let delta = format!(
        "Δ {:+.2} [{:+.2}, {:+.2}]",
        f.difference, f.ci95[0], f.ci95[1]
    );
    let wide = format!(
        "AutoAttack AT {:.2}{} · α {} {:.2}{} · {delta}",
        f.at_robust,
        beside(pgd_at),
        f.alpha,
        f.chosen_robust,
        beside(pgd_chosen)
    );
    if fits(&wide) {
        return vec![wide];
    }
    let slash = |v: Option<f64>| v.map_or(String::new(), |x| format!("/{x:.1}"));
    vec![
        format!(
            "AA/PGD AT {:.2}{} α{} {:.2}{}",
            f.at_robust,
            slash(pgd_at),
            f.alpha,
            f.chosen_robust,
            slash(pgd_chosen)
        ),
        format!("AA {delta} n={}", f.n),
    ]
}
