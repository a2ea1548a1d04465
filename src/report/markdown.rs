//! `report.md`: what a session did and found, for a person. Every stage has a section;
//! a stage that has not run says so. Figures are linked relative to the session directory.
use super::markdown_text::{alpha_text, delta, figure, over_255, pct, sig4};
use super::plots::{baseline_point, Figure};
use super::session::Session;
use crate::engine::attack::{Norm, PgdConfig};
use crate::engine::rift::mrc::results::{
    CorruptionAcc, FinetuneResult, InterpolationResult, MrcResult, OodResult,
};
use std::fmt::Write;

/// Renders the whole report of `session` as markdown.
pub fn render_markdown(session: &Session) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# RiFT session `{}`\n", session.name);
    let _ = writeln!(
        md,
        "Robust Critical Fine-Tuning of `{}` ({}{} on {}). Created {}, last updated {}.\n",
        session.settings.checkpoint,
        session.model.arch,
        session
            .settings
            .zoo
            .as_ref()
            .map(|id| format!(", RobustBench `{id}`"))
            .unwrap_or_default(),
        session.settings.dataset,
        session.created,
        session.updated
    );
    setup_section(&mut md, session);
    baseline_section(&mut md, session);
    mrc_section(&mut md, session);
    finetune_section(&mut md, session);
    alpha_section(&mut md, session);
    ood_section(&mut md, session);
    super::markdown_final::final_eval_section(&mut md, session);
    chosen_section(&mut md, session);
    md
}

fn opt_pct(v: Option<f64>) -> String {
    v.map(pct).unwrap_or_else(|| "—".into())
}

/// A table cell: pipes would end the cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn attack_text(a: &PgdConfig) -> String {
    // L∞ radii read as fractions of 255; an L2 length is a plain number.
    let (norm, eps, step) = match a.norm {
        Norm::Linf => ("L∞", over_255(a.eps), over_255(a.step)),
        Norm::L2 => ("L2", format!("{}", a.eps), format!("{}", a.step)),
    };
    format!(
        "PGD-{norm}, ε = {eps}, step {step}, {} steps, random start {}, {} restart{} (per-sample worst case)",
        a.steps,
        if a.random_start { "on" } else { "off" },
        a.restarts,
        if a.restarts == 1 { "" } else { "s" }
    )
}

fn setup_section(md: &mut String, s: &Session) {
    let st = &s.settings;
    let _ = writeln!(md, "## What was done\n");
    let _ = writeln!(md, "| setting | value |\n|---|---|");
    let rows = [
        ("checkpoint", format!("`{}`", cell(&st.checkpoint))),
        (
            "architecture",
            format!(
                "{} ({} parameters, {} Conv/Linear modules, {} classes, {} input channels)",
                s.model.arch,
                s.model.params,
                s.model.modules,
                s.model.num_classes,
                s.model.in_channels
            ),
        ),
        (
            "dataset",
            format!("{} (`{}`)", st.dataset, cell(&st.data_dir)),
        ),
        ("device", st.device.clone()),
        (
            "versions",
            format!("rift {}, libtorch {}", s.versions.rift, s.versions.torch),
        ),
        ("seed", st.seed.to_string()),
        ("attack", attack_text(&st.attack)),
        (
            "evaluation samples",
            st.eval_limit
                .map(|n| format!("first {n} of the test split"))
                .unwrap_or_else(|| "the whole test split".into()),
        ),
        ("batch size", st.batch_size.to_string()),
    ];
    for (k, v) in rows {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    // Sessions older than --normalize do not record it.
    if !s.model.normalization.is_empty() {
        let _ = writeln!(md, "| normalization | {} |", cell(&s.model.normalization));
    }
    if let Some(a) = &s.model.activation {
        let _ = writeln!(md, "| activation | {a} |");
    }
    if let Some(p) = &st.preset {
        let _ = writeln!(
            md,
            "| preset | {p} (the reference code's settings; see the README) |"
        );
    }
    if !s.stage_seconds.is_empty() {
        let stages: Vec<String> = s
            .stage_seconds
            .iter()
            .map(|(name, secs)| format!("{name} {secs:.1} s"))
            .collect();
        let _ = writeln!(md, "| stage wall time | {} |", stages.join(", "));
    }
    let _ = writeln!(md);
}

fn baseline_section(md: &mut String, s: &Session) {
    let _ = writeln!(md, "## Baseline (the AT model)\n");
    let Some(b) = &s.baseline else {
        let _ = writeln!(md, "Not run.\n");
        return;
    };
    let _ = writeln!(
        md,
        "| clean acc. (%) | robust acc. (%) | n | time |\n|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        md,
        "| {} | {} | {} | {:.1} s |\n",
        pct(b.clean_acc),
        opt_pct(b.robust_acc),
        b.n,
        b.seconds
    );
}

fn mrc_section(md: &mut String, s: &Session) {
    let _ = writeln!(md, "## Module robust criticality (MRC)\n");
    let Some(m) = &s.mrc else {
        let _ = writeln!(md, "Not run.\n");
        return;
    };
    mrc_body(md, m);
    figure(md, s, Figure::Mrc, "MRC per module");
    super::markdown_screen::screen_section(md, s);
}

fn mrc_body(md: &mut String, m: &MrcResult) {
    let _ = writeln!(
        md,
        "Variant `{}` (ε = {}, {} epochs of gradient ascent, lr {}, batch {}){}. Adversarial set: {} samples from the {} split; \
         unperturbed loss {} and robust accuracy {}% on it. Time {:.1} s.\n",
        m.variant,
        m.epsilon,
        m.epochs,
        m.lr,
        m.batch_size,
        if m.fast { ", cached-prefix fast path" } else { "" },
        m.adv_n,
        m.adv_split,
        sig4(m.baseline_loss),
        pct(m.baseline_acc),
        m.seconds
    );
    if m.modules.is_empty() {
        let _ = writeln!(
            md,
            "No module has an exact MRC, so nothing is recommended.\n"
        );
    } else {
        let _ = writeln!(md, "**Recommended (lowest MRC): `{}`**\n", m.recommended);
    }
    let _ = writeln!(
        md,
        "| depth | module | kind | params | MRC | robust-acc. drop (points) | |\n|---:|---|---|---:|---:|---:|---|"
    );
    let mut modules: Vec<_> = m.modules.iter().collect();
    modules.sort_by_key(|x| x.depth);
    for x in modules {
        let mark = if x.recommended || x.name == m.recommended {
            "**recommended**"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {} | {} |",
            x.depth,
            x.name,
            x.kind,
            x.params,
            sig4(x.mrc),
            pct(x.robust_acc_drop),
            mark
        );
    }
    let _ = writeln!(md);
}

fn finetune_section(md: &mut String, s: &Session) {
    let _ = writeln!(md, "## Fine-tuning\n");
    let Some(f) = &s.finetune else {
        let _ = writeln!(md, "Not run.\n");
        return;
    };
    finetune_body(md, f);
    if let Some(w) = &s.finetuned_weights {
        let _ = writeln!(md, "Fine-tuned weights: `{w}`.\n");
    }
    figure(md, s, Figure::Finetune, "Fine-tuning loss and accuracy");
}

fn finetune_body(md: &mut String, f: &FinetuneResult) {
    let layers: Vec<String> = f.layers.iter().map(|l| format!("`{l}`")).collect();
    let milestones: Vec<String> = f.lr_milestones.iter().map(|e| e.to_string()).collect();
    let _ = writeln!(
        md,
        "Trained {} ({} parameters) with SGD: lr {}, momentum {}, weight decay {}, batch {}, {} epochs, lr ×0.1 at epoch{} {}. \
         BatchNorm statistics {}. Epoch kept by {} accuracy{}. Time {:.1} s.\n",
        layers.join(", "),
        f.trained_params,
        f.lr,
        f.momentum,
        f.weight_decay,
        f.batch_size,
        f.epochs,
        if milestones.len() == 1 { "" } else { "s" },
        if milestones.is_empty() { "none".to_string() } else { milestones.join(", ") },
        if f.freeze_bn_stats { "frozen" } else { "updated (train mode, as published)" },
        f.select_on,
        if f.select_on == "val" { format!(" ({} held-out training samples)", f.val_size) } else { String::new() },
        f.seconds
    );
    if let Some(reason) = &f.diverged {
        let _ = writeln!(md, "**The run diverged:** {reason}\n");
    }
    let _ = writeln!(
        md,
        "| epoch | lr | train loss | train acc. (%) | val acc. (%) | test acc. (%) | |\n|---:|---:|---:|---:|---:|---:|---|"
    );
    for (i, e) in f.epochs_log.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            e.epoch,
            e.lr,
            sig4(e.train_loss),
            pct(e.train_acc),
            opt_pct(e.val_acc),
            opt_pct(e.test_acc),
            if i == f.best_epoch { "**kept**" } else { "" }
        );
    }
    let _ = writeln!(md);
}

fn alpha_section(md: &mut String, s: &Session) {
    let _ = writeln!(md, "## Interpolation θ(α) = (1 − α)·θ_AT + α·θ_FT\n");
    let Some(i) = &s.interpolation else {
        let _ = writeln!(md, "Not run.\n");
        return;
    };
    alpha_body(md, i);
    super::markdown_search::search_section(md, i);
    figure(md, s, Figure::Alpha, "Clean and robust accuracy over α");
}

fn alpha_body(md: &mut String, i: &InterpolationResult) {
    let _ = writeln!(
        md,
        "Rule: the α with the largest clean-accuracy gain whose robust accuracy is at most {} points below α = 0 \
         (the AT model). {} refinement round{}; time {:.1} s.\n",
        i.tolerance,
        i.refine_rounds,
        if i.refine_rounds == 1 { "" } else { "s" },
        i.seconds
    );
    let mut points: Vec<_> = i.points.iter().collect();
    points.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
    let base = baseline_point(&i.points);
    let _ = writeln!(
        md,
        "| α | clean acc. (%) | robust acc. (%) | Δ clean | Δ robust | n | |\n|---:|---:|---:|---:|---:|---:|---|"
    );
    for p in points {
        let (dc, dr) = base.map_or((f64::NAN, f64::NAN), |b| {
            (p.clean_acc - b.clean_acc, p.robust_acc - b.robust_acc)
        });
        let chosen = (p.alpha - i.chosen_alpha).abs() < 1e-9;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            alpha_text(p.alpha),
            pct(p.clean_acc),
            pct(p.robust_acc),
            delta(dc),
            delta(dr),
            p.n,
            if chosen { "**chosen**" } else { "" }
        );
    }
    let _ = writeln!(md);
    let chosen = i
        .points
        .iter()
        .find(|p| (p.alpha - i.chosen_alpha).abs() < 1e-9);
    match (chosen, base) {
        (Some(c), Some(b)) if i.chosen_alpha.abs() < 1e-9 => {
            let _ = writeln!(
                md,
                "**Chosen α = {}**: no α improved clean accuracy within the tolerance, so the AT model is kept \
                 ({}% clean, {}% robust).\n",
                alpha_text(c.alpha),
                pct(b.clean_acc),
                pct(b.robust_acc)
            );
        }
        (Some(c), Some(b)) => {
            let _ = writeln!(
                md,
                "**Chosen α = {}**: clean {}% → {}% ({}), robust {}% → {}% ({}).\n",
                alpha_text(c.alpha),
                pct(b.clean_acc),
                pct(c.clean_acc),
                delta(c.clean_acc - b.clean_acc),
                pct(b.robust_acc),
                pct(c.robust_acc),
                delta(c.robust_acc - b.robust_acc)
            );
        }
        _ => {
            let _ = writeln!(md, "**Chosen α = {}**.\n", alpha_text(i.chosen_alpha));
        }
    }
}

fn ood_section(md: &mut String, s: &Session) {
    let _ = writeln!(md, "## Out-of-distribution accuracy\n");
    match (&s.ood_at, &s.ood_chosen) {
        (None, None) => {
            let _ = writeln!(md, "Not run.\n");
        }
        (at, chosen) => ood_body(
            md,
            at.as_ref(),
            chosen.as_ref(),
            s.chosen.as_ref().map(|c| c.alpha),
            s.settings.ood_headline.as_deref().unwrap_or("found"),
        ),
    }
}

fn ood_body(
    md: &mut String,
    at: Option<&OodResult>,
    chosen: Option<&OodResult>,
    alpha: Option<f64>,
    headline: &str,
) {
    let any = at.or(chosen);
    if let Some(r) = any {
        let sev: Vec<String> = r.severities.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(
            md,
            "Corrupted set: {}, severit{} {} pooled.\n",
            r.dataset,
            if sev.len() == 1 { "y" } else { "ies" },
            sev.join(", ")
        );
    }
    let chosen_name = alpha
        .map(|a| format!("chosen (α = {})", alpha_text(a)))
        .unwrap_or_else(|| "chosen".into());
    let mut names: Vec<&str> = Vec::new();
    for r in [at, chosen].into_iter().flatten() {
        for c in &r.corruptions {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
    }
    let _ = writeln!(
        md,
        "| corruption | AT (%) | {chosen_name} (%) | Δ | n |\n|---|---:|---:|---:|---:|"
    );
    for name in &names {
        let a = acc_of(at, name);
        let c = acc_of(chosen, name);
        let d = match (a, c) {
            (Some(a), Some(c)) => delta(c.acc - a.acc),
            _ => "—".into(),
        };
        let n = a.or(c).map(|x| x.n.to_string()).unwrap_or_default();
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {d} | {n} |",
            opt_pct(a.map(|x| x.acc)),
            opt_pct(c.map(|x| x.acc))
        );
    }
    let mut means: [(&str, &str, OodMean); 3] = [
        ("found", "**mean (corruptions found)**", |r| {
            Some(r.mean_acc)
        }),
        ("published18", "**mean, published 18**", |r| {
            r.mean_published18
        }),
        ("standard15", "**mean, standard 15**", |r| r.mean_standard15),
    ];
    // The headline (`--ood-headline`) leads and says so.
    means.sort_by_key(|(which, _, _)| *which != headline);
    for (which, label, get) in means {
        let label = if which == headline {
            format!("{label} (headline)")
        } else {
            label.to_string()
        };
        let a = at.and_then(get);
        let c = chosen.and_then(get);
        if a.is_none() && c.is_none() {
            continue;
        }
        let d = match (a, c) {
            (Some(a), Some(c)) => delta(c - a),
            _ => "—".into(),
        };
        let _ = writeln!(md, "| {label} | {} | {} | {d} | |", opt_pct(a), opt_pct(c));
    }
    let _ = writeln!(md);

    let severities: Vec<u8> = any.map(|r| r.severities.clone()).unwrap_or_default();
    if severities.len() > 1 {
        let head: Vec<String> = severities.iter().map(|s| format!("severity {s}")).collect();
        let _ = writeln!(md, "Per severity, AT → chosen (%):\n");
        let _ = writeln!(
            md,
            "| corruption | {} |\n|---|{}",
            head.join(" | "),
            "---:|".repeat(severities.len())
        );
        for name in &names {
            let a = acc_of(at, name);
            let c = acc_of(chosen, name);
            let cells: Vec<String> = severities
                .iter()
                .map(|s| {
                    let a = a.and_then(|x| x.by_severity.get(s).copied());
                    let c = c.and_then(|x| x.by_severity.get(s).copied());
                    format!("{} → {}", opt_pct(a), opt_pct(c))
                })
                .collect();
            let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
        }
        let _ = writeln!(md);
    }
    let mut missing: Vec<&str> = Vec::new();
    for r in [at, chosen].into_iter().flatten() {
        for m in &r.missing {
            if !missing.contains(&m.as_str()) {
                missing.push(m);
            }
        }
    }
    if !missing.is_empty() {
        let _ = writeln!(md, "Missing corruption files: {}.\n", missing.join(", "));
    }
}

/// Reads one of the means of an OOD result.
type OodMean = fn(&OodResult) -> Option<f64>;

fn acc_of<'a>(r: Option<&'a OodResult>, name: &str) -> Option<&'a CorruptionAcc> {
    r.and_then(|r| r.corruptions.iter().find(|c| c.name == name))
}

fn chosen_section(md: &mut String, s: &Session) {
    let _ = writeln!(md, "## Chosen model\n");
    let Some(c) = &s.chosen else {
        let _ = writeln!(md, "Not chosen yet.\n");
        return;
    };
    let _ = writeln!(
        md,
        "α = {}, written as (relative to the session directory):\n",
        alpha_text(c.alpha)
    );
    let _ = writeln!(md, "- PyTorch state dict: `{}`", c.pth);
    let _ = writeln!(md, "- safetensors: `{}`\n", c.safetensors);
}

/// A plausible ResNet18 / CIFAR-10 session with every stage, for tests of the report.
#[cfg(test)]
#[path = "markdown_fixtures.rs"]
pub(crate) mod fixtures;

#[cfg(test)]
#[path = "markdown_tests.rs"]
mod tests;
