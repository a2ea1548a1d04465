//! The α-search part of report.md (`--search`, not in the paper): which α were screened on
//! a subset and which were evaluated on the full set, with 95 % intervals, and the attack
//! work against the full grid's.
use super::markdown_text::{alpha_text, pct};
use crate::engine::rift::mrc::results::{InterpolationResult, SearchPoint};
use std::fmt::Write;

fn interval(acc: f64, ci: [f64; 2], n: usize) -> String {
    format!("{} [{}, {}] (n = {n})", pct(acc), pct(ci[0]), pct(ci[1]))
}

/// Writes the search subsection when α was chosen by search.
pub fn search_section(md: &mut String, i: &InterpolationResult) {
    let Some(s) = &i.search else { return };
    let _ = writeln!(md, "### α search (not in the paper)\n");
    let _ = writeln!(
        md,
        "α was chosen by search, not by the full grid: clean accuracy (no attack) of every α on all \
         {} samples, robust accuracy screened on a random subset of {}; α = 0 was completed on \
         the full set. Candidates, in the rule's order (highest clean accuracy first), were \
         compared with α = 0 on the same samples and attack seeds, and completed chunk by \
         chunk: a candidate was dropped once the {:.0} % interval of its robust-accuracy \
         difference to α = 0 (over all samples) lay below −{} points, and chosen only when \
         complete and within the tolerance. The rule above saw full-set numbers only. \
         Attack work: **{} samples attacked, {:.1} % of the full grid's {}** (budget {:.1} %){}.\n",
        s.full_n,
        s.subset_n,
        100.0 * if s.decision_confidence > 0.0 { s.decision_confidence } else { 0.99 },
        i.tolerance,
        s.attacked_samples,
        100.0 * s.work_ratio,
        s.grid_attacked_samples,
        100.0 * s.budget,
        if s.budget_exhausted {
            "; the budget stopped the search before it settled the choice"
        } else {
            ""
        }
    );
    let _ = writeln!(
        md,
        "| α | robust acc. on | clean acc. (%) [95 % CI] | robust acc. (%) [95 % CI] | |\n|---:|---|---|---|---|"
    );
    let mut rows: Vec<(&SearchPoint, &str)> = s.full.iter().map(|p| (p, "full set")).collect();
    rows.extend(
        s.screened
            .iter()
            .filter(|p| s.screened_only.contains(&p.alpha))
            .map(|p| (p, "subset only")),
    );
    rows.sort_by(|a, b| a.0.alpha.total_cmp(&b.0.alpha));
    for (p, place) in rows {
        let note = if (p.alpha - i.chosen_alpha).abs() < 1e-9 {
            "**chosen**"
        } else if s.finalists.contains(&p.alpha) {
            "finalist"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "| {} | {place} | {} | {} | {note} |",
            alpha_text(p.alpha),
            interval(p.clean_acc, p.clean_ci, p.clean_n),
            interval(p.robust_acc, p.robust_ci, p.robust_n)
        );
    }
    let _ = writeln!(md);
    if !s.paired.is_empty() {
        let _ = writeln!(
            md,
            "Each α against α = 0 on the same samples (robust accuracy of α minus α = 0; 95 % \
             interval for the whole set):\n\n| α | samples | robust difference (points) [95 % CI] | verdict |\n|---:|---:|---|---|"
        );
        for p in &s.paired {
            let _ = writeln!(
                md,
                "| {} | {} | {:+.2} [{:+.2}, {:+.2}] | {} |",
                alpha_text(p.alpha),
                p.samples,
                p.diff,
                p.ci[0],
                p.ci[1],
                p.verdict
            );
        }
        let _ = writeln!(md);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rift::mrc::results::{AlphaSearch, PairedDrop, SweepPoint};

    fn sp(alpha: f64, robust_n: usize) -> SearchPoint {
        SearchPoint {
            alpha,
            clean_acc: 90.0,
            clean_ci: [89.0, 91.0],
            clean_n: 1000,
            robust_acc: 50.0,
            robust_ci: [45.0, 55.0],
            robust_n,
        }
    }

    #[test]
    fn the_section_separates_subset_from_full_set_numbers() {
        let pt = |alpha| SweepPoint {
            alpha,
            clean_acc: 90.0,
            robust_acc: 50.0,
            n: 1000,
        };
        let i = InterpolationResult {
            points: vec![pt(0.0), pt(0.8)],
            chosen_alpha: 0.8,
            tolerance: 0.1,
            refine_rounds: 0,
            seconds: 1.0,
            search: Some(AlphaSearch {
                method: "m".into(),
                confidence: 0.95,
                subset_n: 100,
                full_n: 1000,
                budget: 1.0 / 3.0,
                screened: vec![sp(0.0, 100), sp(0.5, 100), sp(0.8, 100)],
                full: vec![sp(0.0, 1000), sp(0.8, 1000)],
                finalists: vec![0.8],
                screened_only: vec![0.5],
                paired: vec![PairedDrop {
                    alpha: 0.5,
                    samples: 100,
                    diff: -4.0,
                    ci: [-7.5, -0.5],
                    verdict: "rejected".into(),
                }],
                decision_confidence: 0.99,
                clean_only_samples: 3000,
                budget_exhausted: false,
                attacked_samples: 2100,
                grid_attacked_samples: 3000,
                work_ratio: 0.7,
            }),
        };
        let mut md = String::new();
        search_section(&mut md, &i);
        assert!(md.contains("### α search (not in the paper)"), "{md}");
        assert!(md.contains("70.0 % of the full grid's 3000"), "{md}");
        assert!(
            md.contains("| 0.5 | 100 | -4.00 [-7.50, -0.50] | rejected |"),
            "{md}"
        );
        assert!(
            md.contains("| 0.5 | subset only |") && md.contains("(n = 100)"),
            "{md}"
        );
        assert!(
            md.contains("| 0.8 | full set |") && md.contains("**chosen**"),
            "{md}"
        );
        assert_eq!(md.matches("| full set |").count(), 2, "{md}");
        let mut none = String::new();
        search_section(
            &mut none,
            &InterpolationResult {
                search: None,
                ..i.clone()
            },
        );
        assert!(none.is_empty());
    }
}
