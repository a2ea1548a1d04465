//! The screening part of report.md: how the first-order estimates (not in the paper) were
//! made, how they rank against exact MRC, and which values are exact.
use super::markdown_text::{figure, sig4};
use super::plots::Figure;
use super::plots_screen::{pairs_spearman, screen_pairs};
use super::session::Session;
use crate::engine::rift::mrc::results::{criticality_cmp, MrcResult};
use std::fmt::Write;

/// Writes the screening subsection when the session's MRC step screened modules.
pub fn screen_section(md: &mut String, s: &Session) {
    let Some(m) = &s.mrc else { return };
    let Some(sc) = &m.screen else { return };
    let _ = writeln!(md, "### First-order screening (not in the paper)\n");
    let _ = writeln!(
        md,
        "Every module was first estimated as `ε·‖w‖·‖∇w L_adv‖` — a {} — from one forward and \
         backward pass over the same adversarial set (method `{}`, {:.2} s). Exact MRC was then \
         computed for {} of {} modules, lowest estimate first (exact for: {}); the recommendation \
         above uses exact values only.\n",
        sc.label,
        sc.method,
        sc.seconds,
        m.modules.len(),
        m.modules.len() + m.estimated_only.len(),
        sc.exact_lowest
    );
    let pairs = screen_pairs(m);
    match pairs_spearman(&pairs) {
        Some(rho) => {
            let _ = write!(
                md,
                "Spearman ρ between estimate and exact MRC over the {} modules that have both: **{rho:.3}**",
                pairs.len()
            );
            let _ = match sc.lowest_matches {
                Some(true) => writeln!(md, "; the lowest estimate is the lowest exact MRC.\n"),
                Some(false) => writeln!(
                    md,
                    "; the lowest estimate is **not** the lowest exact MRC.\n"
                ),
                None => writeln!(md, ".\n"),
            };
        }
        None => {
            let _ = writeln!(
                md,
                "Too few modules have both values for a rank correlation.\n"
            );
        }
    }
    table(md, m);
    figure(md, s, Figure::Screen, "First-order estimate vs exact MRC");
}

/// A screened module's row: name, depth, estimate, one-step estimate, exact MRC.
type Row<'a> = (&'a str, usize, f64, Option<f64>, Option<f64>);

/// One row per screened module, by increasing estimate.
fn table(md: &mut String, m: &MrcResult) {
    let step = m.modules.iter().any(|x| x.estimate_step.is_some())
        || m.estimated_only.iter().any(|x| x.estimate_step.is_some());
    let mut rows: Vec<Row> = m
        .modules
        .iter()
        .filter_map(|x| {
            x.estimate
                .map(|e| (x.name.as_str(), x.depth, e, x.estimate_step, Some(x.mrc)))
        })
        .chain(
            m.estimated_only
                .iter()
                .map(|x| (x.name.as_str(), x.depth, x.estimate, x.estimate_step, None)),
        )
        .collect();
    rows.sort_by(|a, b| criticality_cmp(a.2, b.2).then(a.1.cmp(&b.1)));
    let _ = writeln!(
        md,
        "| estimate rank | module | estimate |{} exact MRC | value |\n|---:|---|---:|{}---:|---|",
        if step { " one-step |" } else { "" },
        if step { "---:|" } else { "" }
    );
    for (i, (name, _, e, st, exact)) in rows.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | `{}` | {} |{} {} | {} |",
            i + 1,
            name,
            sig4(*e),
            if step {
                format!(" {} |", st.map_or("—".to_string(), sig4))
            } else {
                String::new()
            },
            exact.map_or("—".to_string(), sig4),
            if exact.is_some() {
                "exact"
            } else {
                "estimate only"
            }
        );
    }
    let _ = writeln!(md);
}
