//! `rift run --final-eval`: the flags as a `FinalEvalPlan` (checked before any compute),
//! the stage itself (skipped when the session already holds its result for this α and
//! these settings) and its lines in the run's summary.
use super::autoattack::aa_config;
use crate::cli::{FinalEvalArgs, ReportArgs};
use anyhow::Result;
use rift::engine::attack::PgdConfig;
use rift::engine::rift::events::{Event, Sink};
use rift::engine::rift::final_eval::{FinalEvalPlan, DEFAULT_FINAL_LIMIT};
use rift::engine::rift::pipeline::Pipeline;
use rift::engine::CancelFlag;
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

/// Runs the final evaluation of the model at `alpha` when the run asks for one and the
/// session does not hold it yet. Ok(true): it ran (the session changed).
pub fn final_eval_stage(
    p: &mut Pipeline,
    alpha: f64,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<bool> {
    let Some(plan) = p.setup.final_eval.clone() else {
        return Ok(false);
    };
    let n = plan.limit.min(p.test.n);
    match &p.session.final_eval {
        Some(done) if done.answers(&plan, n, alpha) => return Ok(false),
        Some(done) => sink(Event::Warning {
            message: format!(
                "the session's final evaluation ({} on {} samples, α = {}) was made with other settings; running it again",
                done.attacks, done.n, done.alpha
            ),
        }),
        None => {}
    }
    p.final_eval(&plan, alpha, cancel, sink)?;
    Ok(true)
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
