//! The MRC stage of `rift run`: exact MRC of every module (as published), or with
//! `--screen K` first-order screening (not in the paper) of every module, then exact MRC of
//! the K lowest-estimate modules, lowest first. Each exact score is saved as it finishes,
//! so a killed run continues where it stopped; screening is cheap and simply runs again.
use crate::cli::RunArgs;
use anyhow::Result;
use rift::engine::rift::adv_set::{build, AdvSetPlan, AdvSplit};
use rift::engine::rift::events::{Event, Sink, Stage};
use rift::engine::rift::mrc::{finish, select_modules, MeasuredOn, MrcConfig};
use rift::engine::rift::partial::load_partial_scores;
use rift::engine::rift::pipeline::Pipeline;
use rift::engine::rift::results::{ModuleScore, MrcResult};
use rift::engine::rift::scoring::Scorer;
use rift::engine::rift::screen::{assemble, attach, estimate, exact_order, ScreenConfig};
use rift::engine::CancelFlag;
use std::time::Instant;

/// Exact scores finished so far, in the session directory until the stage completes.
pub const PARTIAL_MRC: &str = "mrc_partial.yaml";

/// MRC of the pipeline's model with its attack, seed and dataset; the partial scores live
/// in its session directory until the stage completes.
pub fn mrc_stage(
    p: &Pipeline,
    args: &RunArgs,
    cfg: &MrcConfig,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<MrcResult> {
    let (model, kind, attack, seed) = (&p.model, p.setup.kind, &p.setup.attack, p.setup.seed);
    let dir = p.setup.session_dir.as_path();
    let t = Instant::now();
    let modules = select_modules(model, &args.mrc.modules)?;
    let partial_path = dir.join(PARTIAL_MRC);
    let mut done: Vec<ModuleScore> = load_partial_scores(&partial_path, sink)?;
    let split = AdvSplit::parse(kind, &args.mrc.adv_split)?;
    let (set, idx) = split.load(kind, &args.data.data_dir, args.mrc.adv_limit)?;
    let plan = AdvSetPlan {
        attack,
        seed,
        batch_size: args.data.batch_size,
    };
    let adv = build(model, &set, &idx, &plan, cancel, sink)?;
    let (base_loss, base_acc) = adv.announce_baseline(model, cfg.batch_size, sink)?;
    let screened = match args.screen {
        Some(_) => {
            sink(Event::started_text(
                Stage::Screen,
                format!(
                    "{} modules, {}",
                    modules.len(),
                    rift::engine::rift::screen::ESTIMATE_LABEL
                ),
            ));
            let screen = ScreenConfig {
                epsilon: cfg.epsilon,
                batch_size: cfg.batch_size,
                one_step: false,
            };
            Some(estimate(
                model, &adv, &modules, base_loss, &screen, cancel, sink,
            )?)
        }
        None => None,
    };
    let order = match (&screened, args.screen) {
        (Some(s), Some(exact)) => exact_order(s, &modules, exact),
        _ => modules.clone(),
    };
    sink(Event::started_text(
        Stage::Mrc,
        format!(
            "{} of {} modules exactly{}, {} already scored",
            order.len(),
            modules.len(),
            if screened.is_some() {
                " (lowest estimate first)"
            } else {
                ""
            },
            done.len()
        ),
    ));
    for s in &mut done {
        if let Some(sc) = &screened {
            attach(s, sc);
        }
        sink(Event::ModuleScored { score: s.clone() });
    }
    let scorer = Scorer {
        model,
        adv: &adv,
        baseline: (base_loss, base_acc),
        cfg,
        screened: screened.as_ref(),
    };
    scorer.score_all(&order, &mut done, cancel, sink, |done| -> Result<()> {
        Ok(rift::report::atomic_write(
            &partial_path,
            serde_yaml::to_string(done)?.as_bytes(),
        )?)
    })?;
    let secs = t.elapsed().as_secs_f64();
    let on = MeasuredOn {
        split: split.name(),
        n: adv.n,
        baseline: (base_loss, base_acc),
    };
    Ok(match (&screened, args.screen) {
        (Some(sc), Some(exact)) => assemble(done, sc, exact, cfg, &on, secs),
        _ => finish(done, cfg, &on, secs),
    })
}
