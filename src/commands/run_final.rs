//! `rift run --final-eval`: the flags as a `FinalEvalPlan` (checked before any compute)
//! and its lines in the run's summary (the stage itself, skipped when the session already
//! holds its result for this α and these settings, is `Pipeline::final_eval_once`).
use super::autoattack::aa_config;
use crate::cli::{FinalEvalArgs, ReportArgs};
use anyhow::Result;
use rift::engine::attack::PgdConfig;
use rift::engine::rift::final_eval::{FinalEvalPlan, DEFAULT_FINAL_LIMIT};
use rift::report::session::Session;

/// The final evaluation `--final-eval` asks for, at the run's ε (`attack`), seed and batch
/// size; None without the flag.
pub fn final_eval_plan(
    args: &FinalEvalArgs,
    attack: &PgdConfig,
    seed: u64,
    batch_size: usize,
) -> Result<Option<FinalEvalPlan>> {
    let Some(list) = &args.final_eval else {
        return Ok(None);
    };
    let aa = aa_config(list.0.clone(), attack, seed, &args.budget, batch_size)?;
    Ok(Some(FinalEvalPlan {
        aa,
        limit: args.final_limit.unwrap_or(DEFAULT_FINAL_LIMIT),
    }))
}

/// The final evaluation's lines of the run's summary (and of `rift report`).
pub fn print_final_eval(s: &Session) {
    let Some(f) = &s.final_eval else {
        return;
    };
    println!(
        "AutoAttack ({}, {} eps {:.5}) on the {}:",
        f.attacks,
        f.config.norm.name(),
        f.config.eps,
        f.samples
    );
    for (name, r) in [
        ("AT model".to_string(), &f.at),
        (format!("chosen α = {}", f.alpha), &f.chosen),
    ] {
        let steps: Vec<String> = r
            .attacks
            .iter()
            .map(|a| format!("{} {:.2}", a.attack, a.robust_acc))
            .collect();
        println!(
            "  {name:<18} clean {:.2}%  robust {:.2}%  ({})",
            r.clean_acc,
            r.robust_acc,
            steps.join(" → ")
        );
    }
    let d = &f.difference;
    println!(
        "  chosen − AT robust: {:+.2} points, 95 % CI [{:+.2}, {:+.2}] (paired: {} samples robust only for the chosen model, {} only for AT)",
        d.points, d.ci95[0], d.ci95[1], d.chosen_only, d.at_only
    );
}

/// `rift report DIR`: re-renders report.md and the figures from session.yaml, writes
/// `--output`, and prints the final evaluation when the session has one.
pub fn report(a: &ReportArgs) -> Result<()> {
    rift::report::render_report(&a.session)?;
    let session = Session::load(&a.session)?;
    if let Some(out) = &a.output {
        rift::report::write_structured(out, &session)?;
    }
    print_final_eval(&session);
    Ok(())
}
