//! report.md's AutoAttack section (`rift run --final-eval`, the explorer's `e`): clean and
//! robust accuracy after each attack for the AT and the chosen model, the paired
//! difference with its interval, and PGD's numbers of the same models beside them.
use super::markdown_text::{alpha_text, delta, over_255, pct};
use super::session::Session;
use crate::engine::autoattack::AaReport;
use crate::engine::rift::final_eval::FinalEval;
use std::fmt::Write;

pub fn final_eval_section(md: &mut String, s: &Session) {
    let Some(f) = &s.final_eval else {
        return;
    };
    let _ = writeln!(md, "## AutoAttack (final evaluation)\n");
    let c = &f.config;
    let _ = writeln!(
        md,
        "`{}` ({}) at {} ε = {}, seed {}, on the {} (the same samples for both models); \
         APGD {} iterations × {} restart(s), {} targets, FAB {} iterations, Square {} queries.\n",
        f.attacks,
        c.attacks
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(" → "),
        c.norm.name(),
        match c.norm {
            crate::engine::norms::Norm::Linf => over_255(c.eps),
            crate::engine::norms::Norm::L2 => format!("{}", c.eps),
        },
        c.seed,
        f.samples,
        c.apgd_iters,
        c.apgd_restarts,
        c.targets,
        c.fab_iters,
        c.square_queries
    );
    table(md, f);
    let d = &f.difference;
    let _ = writeln!(
        md,
        "Robust accuracy, chosen − AT: **{} points**, 95 % interval [{}, {}] — paired over the \
         same {} samples: {} robust only for the chosen model, {} only for the AT model \
         (Newcombe's hybrid score interval for paired proportions).\n",
        delta(d.points),
        delta(d.ci95[0]),
        delta(d.ci95[1]),
        d.n,
        d.chosen_only,
        d.at_only
    );
    pgd_beside(md, s, f);
}

/// One row per model: clean, robust after each attack (cumulative), final robust.
fn table(md: &mut String, f: &FinalEval) {
    let names: Vec<&str> = f.at.attacks.iter().map(|a| a.attack.as_str()).collect();
    let _ = writeln!(
        md,
        "| model | clean % | {} | robust % |",
        names
            .iter()
            .map(|n| format!("after {n} %"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(md, "|---|---:|{}---:|", "---:|".repeat(names.len()));
    let row = |md: &mut String, label: String, r: &AaReport| {
        let steps: Vec<String> = r.attacks.iter().map(|a| pct(a.robust_acc)).collect();
        let _ = writeln!(
            md,
            "| {label} | {} | {} | **{}** |",
            pct(r.clean_acc),
            steps.join(" | "),
            pct(r.robust_acc)
        );
    };
    row(md, "AT (α = 0)".into(), &f.at);
    row(
        md,
        format!("chosen (α = {})", alpha_text(f.alpha)),
        &f.chosen,
    );
    let steps: Vec<String> = f
        .chosen
        .attacks
        .iter()
        .zip(&f.at.attacks)
        .map(|(c, a)| delta(c.robust_acc - a.robust_acc))
        .collect();
    let _ = writeln!(
        md,
        "| chosen − AT | {} | {} | **{}** |\n",
        delta(f.chosen.clean_acc - f.at.clean_acc),
        steps.join(" | "),
        delta(f.chosen.robust_acc - f.at.robust_acc)
    );
}

/// PGD's robust accuracy of the same two models, from the baseline and the α sweep.
fn pgd_beside(md: &mut String, s: &Session, f: &FinalEval) {
    let pgd_at = s
        .baseline
        .as_ref()
        .and_then(|b| b.robust_acc.map(|r| (r, b.n)));
    let pgd_chosen = s
        .interpolation
        .as_ref()
        .and_then(|i| i.points.iter().find(|p| p.alpha == f.alpha))
        .map(|p| (p.robust_acc, p.n));
    if let (Some((at, n_at)), Some((ch, n_ch))) = (pgd_at, pgd_chosen) {
        let _ = writeln!(
            md,
            "PGD (the run's attack) gave AT {}% (n = {n_at}) and chosen {}% (n = {n_ch}), \
             AutoAttack {}% and {}% (n = {}); PGD − AutoAttack: {} and {} points.\n",
            pct(at),
            pct(ch),
            pct(f.at.robust_acc),
            pct(f.chosen.robust_acc),
            f.n,
            pct(at - f.at.robust_acc),
            pct(ch - f.chosen.robust_acc)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::autoattack::{AaConfig, AttackOutcome};
    use crate::engine::rift::final_eval::stats::PairedDifference;

    fn report(clean: f64, steps: &[(&str, f64)], flags: &[bool]) -> AaReport {
        let n = flags.len();
        let robust = flags.iter().filter(|&&f| f).count();
        AaReport {
            n,
            clean_acc: clean,
            clean_correct: (clean * n as f64 / 100.0) as usize,
            attacks: steps
                .iter()
                .map(|(a, r)| AttackOutcome {
                    attack: a.to_string(),
                    robust_acc: *r,
                    robust: (r * n as f64 / 100.0) as usize,
                    evaluated: n,
                    seconds: 1.0,
                    resumed: false,
                })
                .collect(),
            robust_acc: 100.0 * robust as f64 / n as f64,
            robust_correct: robust,
            eps: 8.0 / 255.0,
            seconds: 4.0,
            robust_flags: flags.to_vec(),
            broken_by: vec![None; flags.len()],
            check: Default::default(),
        }
    }

    #[test]
    fn section_shows_both_models_the_difference_and_pgd() {
        let mut s = crate::report::markdown::fixtures::full();
        assert!(!crate::report::markdown::render_markdown(&s).contains("## AutoAttack"));
        let at_flags = [true, true, false, false];
        let chosen_flags = [true, false, true, true];
        let at = report(75.0, &[("apgd-ce", 75.0), ("square", 50.0)], &at_flags);
        let chosen = report(100.0, &[("apgd-ce", 75.0), ("square", 75.0)], &chosen_flags);
        s.final_eval = Some(FinalEval {
            alpha: 0.6,
            samples: "first 4 of the test split".into(),
            n: 4,
            attacks: "apgd-ce,square".into(),
            config: AaConfig::standard(8.0 / 255.0, 0),
            difference: PairedDifference::of(&at.robust_flags, &chosen.robust_flags),
            at,
            chosen,
        });
        let md = crate::report::markdown::render_markdown(&s);
        for needle in [
            "## AutoAttack (final evaluation)",
            "at Linf ε = 8/255, seed 0, on the first 4 of the test split",
            "| model | clean % | after apgd-ce % | after square % | robust % |",
            "| AT (α = 0) | 75.00 | 75.00 | 50.00 | **50.00** |",
            "| chosen (α = 0.6) | 100.00 | 75.00 | 75.00 | **75.00** |",
            "| chosen − AT | +25.00 | +0.00 | +25.00 | **+25.00** |",
            "chosen − AT: **+25.00 points**",
            "2 robust only for the chosen model, 1 only for the AT model",
            "PGD (the run's attack) gave AT",
        ] {
            assert!(md.contains(needle), "missing `{needle}` in:\n{md}");
        }
        // Before the chosen-model section, after OOD.
        let (aa, ood, chosen) = (
            md.find("## AutoAttack").unwrap(),
            md.find("## Out-of-distribution").unwrap(),
            md.find("## Chosen model").unwrap(),
        );
        assert!(ood < aa && aa < chosen);
    }
}
