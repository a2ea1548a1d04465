//! The worker on the bundled demo model with tiny settings: the order of its events, and
//! that a cancel stops fine-tuning within one batch.
mod common;

use common::jobs::{demo_attack, job_setup, scored_modules, until_end, JobFixture};
use common::DEMO_MODEL as MODEL;
use rift::engine::autoattack::ensemble::AaUpdate;
use rift::engine::autoattack::{AaConfig, AttackKind};
use rift::engine::data::DatasetKind;
use rift::engine::rift::events::{Event, OodModel, Stage, StageAbout};
use rift::engine::rift::final_eval::FinalEvalPlan;
use rift::jobs::{JobCommand, JobEvent, JobSetup, OodSetup, Worker};
use rift::report::session::Session;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

fn setup(session: PathBuf, ft_epochs: usize) -> JobSetup {
    let mut setup = job_setup(JobFixture {
        checkpoint: MODEL,
        dataset: "mnist",
        data_dir: "assets/demo",
        session,
        ft_epochs,
        modules: vec!["conv1".into(), "linear".into()],
        attack: demo_attack(),
        activation: None,
    });
    // `e`'s AutoAttack check with tiny budgets on 8 samples.
    setup.pipeline.final_eval = Some(FinalEvalPlan {
        aa: AaConfig {
            attacks: vec![AttackKind::ApgdCe, AttackKind::Square],
            apgd_iters: 3,
            square_queries: 10,
            batch_size: 4,
            ..AaConfig::standard(0.2, 0)
        },
        limit: 8,
    });
    setup
}

#[test]
fn mrc_finetune_sweep_accept_save_in_order_then_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("s");
    let (mut handle, mut rx) = Worker::spawn(setup(session.clone(), 1)).unwrap();
    let mut seen = Vec::new();
    handle.send(JobCommand::StartMrc);
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished { stage: Stage::Mrc }
    );
    let stages: Vec<Stage> = seen
        .iter()
        .filter_map(|e| match e {
            JobEvent::Engine(Event::StageStarted { stage, .. }) => Some(*stage),
            _ => None,
        })
        .collect();
    assert_eq!(
        stages,
        [
            Stage::Load,
            Stage::Baseline,
            Stage::AdvSet,
            Stage::Screen,
            Stage::Mrc
        ]
    );
    // Each MRC step is an event (`Batch`), where `s` and `a` are served: at least one
    // before every epoch's result, so a request never waits a whole epoch.
    let mut steps_since_epoch = 0;
    for e in &seen {
        match e {
            JobEvent::Engine(Event::Batch { stage: Stage::Mrc }) => steps_since_epoch += 1,
            JobEvent::Engine(Event::ModuleEpoch { module, epoch, .. }) => {
                assert!(
                    steps_since_epoch > 0,
                    "{module} epoch {epoch}: no step event"
                );
                steps_since_epoch = 0;
            }
            _ => {}
        }
    }
    // Every estimate comes before any exact value; exact work goes lowest estimate first.
    let mut estimates: Vec<(f64, String)> = seen
        .iter()
        .filter_map(|e| match e {
            JobEvent::Engine(Event::ModuleEstimated {
                module, estimate, ..
            }) => Some((*estimate, module.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(estimates.len(), 2);
    let last_estimate = seen
        .iter()
        .rposition(|e| matches!(e, JobEvent::Engine(Event::ModuleEstimated { .. })))
        .unwrap();
    let first_exact = seen
        .iter()
        .position(|e| matches!(e, JobEvent::Engine(Event::ModuleScored { .. })))
        .unwrap();
    assert!(last_estimate < first_exact);
    estimates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let by_estimate: Vec<String> = estimates.into_iter().map(|(_, m)| m).collect();
    let scored = scored_modules(&seen);
    assert_eq!(scored, by_estimate);
    let baseline = seen
        .iter()
        .position(|e| matches!(e, JobEvent::Engine(Event::Baseline { .. })))
        .unwrap();
    let first_score = seen
        .iter()
        .position(|e| matches!(e, JobEvent::Engine(Event::ModuleScored { .. })))
        .unwrap();
    assert!(baseline < first_score);

    seen.clear();
    handle.send(JobCommand::StartFinetune {
        layers: vec!["linear".into()],
        lr: 0.01,
    });
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished {
            stage: Stage::Finetune
        }
    );
    assert!(seen
        .iter()
        .any(|e| matches!(e, JobEvent::Engine(Event::FinetuneEpoch { .. }))));
    seen.clear();
    handle.send(JobCommand::StartSweep);
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished {
            stage: Stage::Interpolate
        }
    );
    let alphas: Vec<f64> = seen
        .iter()
        .filter_map(|e| match e {
            JobEvent::Engine(Event::SweepPoint { point }) => Some(point.alpha),
            _ => None,
        })
        .collect();
    assert_eq!(alphas, [0.0, 0.5, 1.0]);
    handle.send(JobCommand::Accept { alpha: 0.5 });
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished {
            stage: Stage::Accept
        }
    );
    final_eval_then_cancel(&handle, &mut rx, &session);
    handle.send(JobCommand::Save);
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished { stage: Stage::Save }
    );
    assert!(Session::load(&session).unwrap().final_eval.is_some());
    for f in [
        "session.yaml",
        "report.md",
        "chosen.pth",
        "chosen.safetensors",
        "finetuned.safetensors",
    ] {
        assert!(session.join(f).exists(), "{f}");
    }

    // Cancel a long fine-tune after its first iteration: at most one more batch runs.
    seen.clear();
    handle.send(JobCommand::StartFinetune {
        layers: vec!["linear".into()],
        lr: 0.01,
    });
    loop {
        let e = rx.blocking_recv().unwrap();
        if matches!(e, JobEvent::Engine(Event::FinetuneIter { .. })) {
            break;
        }
    }
    handle.cancel();
    let end = until_end(&mut rx, &mut seen);
    assert_eq!(end, JobEvent::Cancelled);
    let iters = seen
        .iter()
        .filter(|e| matches!(e, JobEvent::Engine(Event::FinetuneIter { .. })))
        .count();
    assert!(iters <= 1, "{iters} iterations after the cancel");
    // The worker still serves commands after a cancel.
    handle.send(JobCommand::Save);
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished { stage: Stage::Save }
    );
    handle.shutdown();
    std::thread::sleep(Duration::from_millis(10));

    // `rift tui --resume`: a new worker on the saved session refines and accepts α
    // without fine-tuning again, and computes no baseline.
    let saved = Session::load(&session).unwrap();
    let mut resumed = setup(session.clone(), 1);
    resumed.resume = Some(saved);
    let (mut handle, mut rx) = Worker::spawn(resumed).unwrap();
    seen.clear();
    handle.send(JobCommand::Refine { around: 0.5 });
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished {
            stage: Stage::Refine
        }
    );
    handle.send(JobCommand::Accept { alpha: 0.75 });
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished {
            stage: Stage::Accept
        }
    );
    handle.send(JobCommand::Save);
    until_end(&mut rx, &mut seen);
    assert!(!seen
        .iter()
        .any(|e| matches!(e, JobEvent::Engine(Event::Baseline { .. }))));
    let again = Session::load(&session).unwrap();
    assert_eq!(again.chosen.unwrap().alpha, 0.75);
    let alphas: Vec<f64> = again
        .interpolation
        .unwrap()
        .points
        .iter()
        .map(|p| p.alpha)
        .collect();
    assert_eq!(alphas, [0.0, 0.25, 0.5, 0.75, 1.0]);
    handle.shutdown();
}

/// The worker checks every configured dataset against the model when it starts: an OOD
/// set of another geometry fails the job at once, before any stage, naming the dataset.
#[test]
fn an_ood_set_that_does_not_fit_fails_the_job_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = setup(dir.path().join("s"), 1);
    bad.pipeline.ood = Some(OodSetup {
        kind: DatasetKind::TinyImageNetC,
        dir: dir.path().join("no-tin-c"),
        severities: vec![1],
    });
    let (_handle, mut rx) = Worker::spawn(bad).unwrap();
    let mut seen = Vec::new();
    match until_end(&mut rx, &mut seen) {
        JobEvent::Failed(message) => assert!(
            message.contains("OOD") && message.contains("tiny-imagenet-c"),
            "{message}"
        ),
        other => panic!("expected the job to fail at start, got {other:?}"),
    }
    assert!(
        !seen.iter().any(|e| matches!(
            e,
            JobEvent::Engine(Event::StageStarted { stage, .. }) if *stage != Stage::Load
        )),
        "a stage started: {seen:?}"
    );
}

/// `e`: the AutoAttack check of the accepted α runs AT then the accepted model, with
/// per-attack progress and a summary; a second check cancelled within its first attack
/// stops after at most one more batch.
fn final_eval_then_cancel(
    handle: &rift::jobs::JobHandle,
    rx: &mut UnboundedReceiver<JobEvent>,
    session: &std::path::Path,
) {
    let mut seen = Vec::new();
    handle.send(JobCommand::StartFinalEval { alpha: 0.5 });
    assert_eq!(
        until_end(rx, &mut seen),
        JobEvent::Finished {
            stage: Stage::FinalEval
        }
    );
    let models: Vec<OodModel> = seen
        .iter()
        .filter_map(|e| match e {
            JobEvent::Engine(Event::StageStarted {
                about: Some(StageAbout::FinalEval { model, n, .. }),
                ..
            }) => {
                assert_eq!(*n, 8);
                Some(*model)
            }
            _ => None,
        })
        .collect();
    assert_eq!(models, [OodModel::At, OodModel::Chosen]);
    let finished: Vec<String> = seen
        .iter()
        .filter_map(|e| match e {
            JobEvent::Engine(Event::AutoAttack {
                update: AaUpdate::Finished { outcome },
            }) => Some(outcome.attack.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(finished, ["apgd-ce", "square", "apgd-ce", "square"]);
    let summary = seen.iter().find_map(|e| match e {
        JobEvent::Engine(Event::FinalEval { summary }) => Some(summary.clone()),
        _ => None,
    });
    let summary = summary.expect("no FinalEval summary");
    assert_eq!((summary.alpha, summary.n), (0.5, 8));
    assert!((summary.difference - (summary.chosen_robust - summary.at_robust)).abs() < 1e-9);

    // Again without the state files (else nothing is left to attack), cancelled as soon
    // as the first attack has finished a batch.
    for f in ["final_eval_at.json", "final_eval_chosen.json"] {
        std::fs::remove_file(session.join(f)).unwrap();
    }
    seen.clear();
    handle.send(JobCommand::StartFinalEval { alpha: 0.5 });
    loop {
        let e = rx.blocking_recv().unwrap();
        if let JobEvent::Engine(Event::AutoAttack {
            update: AaUpdate::Progress { attack, .. },
        }) = &e
        {
            if attack != "clean" {
                break;
            }
        }
    }
    handle.cancel();
    assert_eq!(until_end(rx, &mut seen), JobEvent::Cancelled);
    let batches = seen
        .iter()
        .filter(|e| {
            matches!(e, JobEvent::Engine(Event::AutoAttack {
                update: AaUpdate::Progress { attack, .. },
            }) if attack != "clean")
        })
        .count();
    assert!(batches <= 1, "{batches} batches after the cancel");
}
