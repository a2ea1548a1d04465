//! `rift compare`'s table in every form it is read: the report's section (laid out like the
//! paper's ablation tables 3–4), the terminal summary, CSV and LaTeX for papers. All four
//! read the same `CompareResult`, so they hold the same numbers.
use crate::engine::rift::compare::{Change, CompareResult};
use crate::engine::rift::finetune::ALL_PARAMETERS;
use std::fmt::Write;

/// "84.21 (+1.20, 95% CI +0.50 to +1.90)"-style cell.
fn cell(c: &Option<Change>) -> String {
    match c {
        Some(c) => format!(
            "{:.2} ({:+.2} [{:+.2}, {:+.2}])",
            c.value, c.change, c.ci95[0], c.ci95[1]
        ),
        None => "—".into(),
    }
}

fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The candidate with the largest clean gain among those whose robust change stays within
/// the tolerance (the question the comparison answers); the first listed wins a tie. None
/// when no such candidate gains clean accuracy at all.
pub fn best_within_tolerance(r: &CompareResult) -> Option<&str> {
    r.candidates
        .iter()
        .filter(|c| c.robust.change >= -r.tolerance - 1e-9 && c.clean.change > 0.0)
        .fold(
            None,
            |best: Option<&crate::engine::rift::compare::CandidateRow>, c| match best {
                Some(b) if b.clean.change >= c.clean.change => Some(b),
                _ => Some(c),
            },
        )
        .map(|c| c.candidate.as_str())
}

/// The report's section.
pub fn compare_markdown(r: &CompareResult) -> String {
    let mut s = String::new();
    let has_ood = r.candidates.iter().any(|c| c.ood.is_some());
    let has_aa = r.candidates.iter().any(|c| c.autoattack.is_some());
    let _ = writeln!(s, "## Candidates compared\n");
    let _ = write!(
        s,
        "AT model{}: clean {:.2} %, robust {:.2} % on {} test samples",
        model_name(r, "`"),
        r.at.clean,
        r.at.robust,
        r.at.n
    );
    if let Some(o) = r.at.ood {
        let _ = write!(s, ", OOD {o:.2} %");
    }
    if let (Some(a), Some(n)) = (r.at.autoattack, r.at.autoattack_n) {
        let _ = write!(s, ", AutoAttack {a:.2} % on {n}");
    }
    let _ = writeln!(s, ".\n");
    let _ = write!(
        s,
        "| Candidate | Modules | Trained parameters | α | Clean (Δ [95 % CI]) | Robust (Δ [95 % CI]) |"
    );
    if has_ood {
        s.push_str(" OOD (Δ [95 % CI]) |");
    }
    if has_aa {
        s.push_str(" AutoAttack (Δ [95 % CI]) |");
    }
    s.push_str("\n|---|---|---:|---:|---|---|");
    if has_ood {
        s.push_str("---|");
    }
    if has_aa {
        s.push_str("---|");
    }
    s.push('\n');
    for c in &r.candidates {
        let modules: Vec<String> = c
            .modules
            .iter()
            .map(|m| match m.as_str() {
                ALL_PARAMETERS => m.clone(),
                _ => format!("`{m}`"),
            })
            .collect();
        let _ = write!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            c.candidate,
            modules.join(", "),
            thousands(c.trained_params),
            c.chosen_alpha,
            cell(&Some(c.clean.clone())),
            cell(&Some(c.robust.clone()))
        );
        if has_ood {
            let _ = write!(s, " {} |", cell(&c.ood));
        }
        if has_aa {
            let _ = write!(s, " {} |", cell(&c.autoattack));
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "\nΔ: change from the AT model in points. Every candidate is fine-tuned with the same settings and seeds, swept over the same α grid with the same random starts, and its α chosen by the same rule (largest clean accuracy whose robust accuracy is at most {} points below α = 0). Clean, robust and AutoAttack intervals are paired ({}); OOD intervals treat the two models as independent ({}), so they are wider than paired ones would be.",
        r.tolerance, r.intervals.paired, r.intervals.ood
    );
    match best_within_tolerance(r) {
        Some(best) => {
            let _ = writeln!(s, "\nLargest clean gain within the tolerance: **{best}**.");
        }
        None => {
            let _ = writeln!(
                s,
                "\nNo candidate gains clean accuracy while keeping robust accuracy within the tolerance."
            );
        }
    }
    let _ = writeln!(
        s,
        "\n![Each candidate's α path in the clean-vs-robust plane](compare.png)\n"
    );
    s
}

/// ` NAME` of the AT model (a `--zoo` id or a checkpoint), quoted with `quote`; empty for a
/// comparison saved before the name was recorded.
fn model_name(r: &CompareResult, quote: &str) -> String {
    if r.model.is_empty() {
        String::new()
    } else {
        format!(" {quote}{}{quote}", r.model)
    }
}

/// The summary `rift compare` prints.
pub fn compare_text(r: &CompareResult) -> String {
    let mut s = format!(
        "AT model{}: clean {:.2}%  robust {:.2}%  (n = {})\n",
        model_name(r, ""),
        r.at.clean,
        r.at.robust,
        r.at.n
    );
    let width = r
        .candidates
        .iter()
        .map(|c| c.candidate.chars().count())
        .max()
        .unwrap_or(9)
        .max(9);
    let _ = writeln!(
        s,
        "{:<width$}  {:>5}  {:>22}  {:>22}",
        "candidate", "α", "clean Δ [95% CI]", "robust Δ [95% CI]"
    );
    let short = |c: &Change| format!("{:+.2} [{:+.2}, {:+.2}]", c.change, c.ci95[0], c.ci95[1]);
    for c in &r.candidates {
        let _ = writeln!(
            s,
            "{:<width$}  {:>5}  {:>22}  {:>22}",
            c.candidate,
            c.chosen_alpha,
            short(&c.clean),
            short(&c.robust)
        );
    }
    if let Some(best) = best_within_tolerance(r) {
        let _ = writeln!(s, "largest clean gain within the tolerance: {best}");
    }
    s
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Full-precision CSV (every number as `compare.yaml` holds it), one row per candidate
/// plus the AT model's row first; modules joined by `;`.
pub fn compare_csv(r: &CompareResult) -> String {
    let mut s = String::from("candidate,modules,trained_params,chosen_alpha");
    for q in ["clean", "robust", "ood", "autoattack"] {
        let _ = write!(s, ",{q},{q}_change,{q}_ci_low,{q}_ci_high");
    }
    s.push('\n');
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let _ = writeln!(
        s,
        "at,,,0,{},0,,,{},0,,,{},{},,,{},{},,",
        r.at.clean,
        r.at.robust,
        opt(r.at.ood),
        if r.at.ood.is_some() { "0" } else { "" },
        opt(r.at.autoattack),
        if r.at.autoattack.is_some() { "0" } else { "" },
    );
    let change = |c: &Option<Change>| match c {
        Some(c) => format!("{},{},{},{}", c.value, c.change, c.ci95[0], c.ci95[1]),
        None => ",,,".into(),
    };
    for c in &r.candidates {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{}",
            csv_field(&c.candidate),
            csv_field(&c.modules.join(";")),
            c.trained_params,
            c.chosen_alpha,
            change(&Some(c.clean.clone())),
            change(&Some(c.robust.clone())),
            change(&c.ood),
            change(&c.autoattack)
        );
    }
    s
}

/// LaTeX special characters escaped for text cells.
fn tex(text: &str) -> String {
    let mut out = String::new();
    for ch in text.chars() {
        match ch {
            '_' | '%' | '&' | '#' | '$' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '\\' => out.push_str("\\textbackslash{}"),
            _ => out.push(ch),
        }
    }
    out
}

/// A booktabs `tabular` of the table (values and changes to two decimals, as papers print
/// them), ready to `\input`.
pub fn compare_latex(r: &CompareResult) -> String {
    let has_ood = r.candidates.iter().any(|c| c.ood.is_some());
    let has_aa = r.candidates.iter().any(|c| c.autoattack.is_some());
    let cols = 4 + usize::from(has_ood) + usize::from(has_aa);
    let mut s =
        String::from("% rift compare: changes from the AT model in points, 95% CI in brackets\n");
    if !r.model.is_empty() {
        let _ = writeln!(s, "% AT model: {}", r.model.replace('\n', " "));
    }
    let _ = writeln!(s, "\\begin{{tabular}}{{l{}}}", "r".repeat(cols));
    s.push_str("\\toprule\n");
    s.push_str("Candidate & Params & $\\alpha$ & Clean & Robust");
    if has_ood {
        s.push_str(" & OOD");
    }
    if has_aa {
        s.push_str(" & AutoAttack");
    }
    s.push_str(" \\\\\n\\midrule\n");
    let mut at = format!("AT & -- & 0 & {:.2} & {:.2}", r.at.clean, r.at.robust);
    if has_ood {
        let _ = write!(
            at,
            " & {}",
            r.at.ood.map_or("--".into(), |v| format!("{v:.2}"))
        );
    }
    if has_aa {
        let _ = write!(
            at,
            " & {}",
            r.at.autoattack.map_or("--".into(), |v| format!("{v:.2}"))
        );
    }
    let _ = writeln!(s, "{at} \\\\");
    let c_cell = |c: &Option<Change>| match c {
        Some(c) => format!(
            "{:.2} ({:+.2} [{:+.2}, {:+.2}])",
            c.value, c.change, c.ci95[0], c.ci95[1]
        ),
        None => "--".into(),
    };
    for c in &r.candidates {
        let mut row = format!(
            "{} & {} & {} & {} & {}",
            tex(&c.candidate),
            thousands(c.trained_params).replace(',', "{,}"),
            c.chosen_alpha,
            c_cell(&Some(c.clean.clone())),
            c_cell(&Some(c.robust.clone()))
        );
        if has_ood {
            let _ = write!(row, " & {}", c_cell(&c.ood));
        }
        if has_aa {
            let _ = write!(row, " & {}", c_cell(&c.autoattack));
        }
        let _ = writeln!(s, "{row} \\\\");
    }
    s.push_str("\\bottomrule\n\\end{tabular}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(2_359_296), "2,359,296");
        assert_eq!(thousands(512), "512");
        assert_eq!(thousands(1000), "1,000");
    }

    #[test]
    fn tex_escapes_module_names() {
        assert_eq!(tex("layer4.1_conv2"), "layer4.1\\_conv2");
        assert_eq!(tex("a&b%"), "a\\&b\\%");
    }
}
