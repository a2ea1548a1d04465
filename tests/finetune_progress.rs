//! Fine-tuning's finished epochs reach the session directory (`finetune_partial.safetensors`)
//! and a stopped fine-tuning continues from its last finished epoch, ending with exactly
//! the weights, losses and epoch log of an uninterrupted run. A file from another
//! fine-tuning is replaced with a warning; a damaged one is refused with its name and left
//! as it is. On the demo model (the worker tests' tiny settings).
mod common;

use common::jobs::demo_job_setup;
use rift::engine::rift::events::{Event, StageAbout};
use rift::engine::rift::finetune::progress::PARTIAL_FINETUNE;
use rift::engine::rift::finetune::{FinetuneConfig, Trained};
use rift::engine::rift::pipeline::Pipeline;
use rift::engine::CancelFlag;
use rift::jobs::JobSetup;
use rift::report::session::Session;
use std::path::Path;

fn pipeline(dir: &Path) -> Pipeline {
    let JobSetup {
        load,
        pipeline,
        settings,
        ..
    } = demo_job_setup(dir.to_path_buf());
    let (ckpt, model) = load().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let session = Session::new(&pipeline.session_dir, settings, None, &model);
    Pipeline::new(pipeline, ckpt, model, session).unwrap()
}

/// Three epochs with a milestone, so the continued run must also get the schedule, the
/// momentum and the random stream right.
fn config(p: &Pipeline) -> FinetuneConfig {
    FinetuneConfig {
        epochs: 3,
        milestones: vec![2],
        ..p.setup.finetune.clone()
    }
}

fn what() -> Trained {
    Trained::Modules(vec!["linear".into()])
}

/// The fine-tuning result without its wall time, and the fine-tuned weights.
fn outcome(
    p: &Pipeline,
) -> (
    serde_json::Value,
    Vec<(String, rift::engine::checkpoint::RawTensor)>,
) {
    let mut r = serde_json::to_value(p.session.finetune.as_ref().unwrap()).unwrap();
    r.as_object_mut().unwrap().remove("seconds");
    (r, p.endpoints().unwrap().state_at(1.0).unwrap())
}

#[test]
fn a_stopped_finetuning_continues_from_its_last_epoch_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let mut whole = pipeline(&dir.path().join("whole"));
    let cfg = config(&whole);
    whole
        .finetune(&what(), &cfg, &CancelFlag::default(), &mut |_| {})
        .unwrap();
    let expected = outcome(&whole);

    // Stopped as soon as the first epoch is announced: it is on disk by then.
    let s = dir.path().join("stopped");
    let mut p = pipeline(&s);
    let cancel = CancelFlag::default();
    let flag = cancel.clone();
    let stopped = p.finetune(&what(), &cfg, &cancel, &mut |e| {
        if matches!(e, Event::FinetuneEpoch { .. }) {
            flag.cancel()
        }
    });
    assert!(stopped.is_err(), "the cancel was not seen");
    let partial = s.join(PARTIAL_FINETUNE);
    assert!(
        partial.exists(),
        "no {PARTIAL_FINETUNE} after a finished epoch"
    );

    // A new process: a fresh pipeline on the same directory continues after epoch 1.
    let mut p = pipeline(&s);
    let mut events = Vec::new();
    p.finetune(&what(), &cfg, &CancelFlag::default(), &mut |e| {
        events.push(e)
    })
    .unwrap();
    let from = events.iter().find_map(|e| match e {
        Event::StageStarted {
            about: Some(StageAbout::Finetune { from_epoch, .. }),
            ..
        } => Some(*from_epoch),
        _ => None,
    });
    assert_eq!(
        from,
        Some(1),
        "the continued fine-tuning must start after epoch 1"
    );
    // The read-back epoch is announced again, then the two that ran.
    let epochs = events
        .iter()
        .filter(|e| matches!(e, Event::FinetuneEpoch { .. }))
        .count();
    assert_eq!(epochs, 3);
    assert!(
        outcome(&p) == expected,
        "the continued fine-tuning differs from an uninterrupted one"
    );

    // Once the weights are saved, the epochs are not needed any more.
    p.save_finetuned().unwrap();
    assert!(
        !partial.exists(),
        "{PARTIAL_FINETUNE} left after the weights were saved"
    );
}

#[test]
fn another_finetunings_file_is_replaced_and_a_damaged_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("s");
    let mut p = pipeline(&s);
    let cfg = config(&p);
    let cancel = CancelFlag::default();
    let flag = cancel.clone();
    let _ = p.finetune(&what(), &cfg, &cancel, &mut |e| {
        if matches!(e, Event::FinetuneEpoch { .. }) {
            flag.cancel()
        }
    });
    let partial = s.join(PARTIAL_FINETUNE);
    let first = std::fs::read(&partial).unwrap();

    // Another learning rate: a new fine-tuning from the AT weights, with a warning.
    let other = FinetuneConfig {
        lr: cfg.lr * 2.0,
        ..cfg.clone()
    };
    let mut warnings = Vec::new();
    let mut from = None;
    p.finetune(&what(), &other, &CancelFlag::default(), &mut |e| match e {
        Event::Warning { message } => warnings.push(message),
        Event::StageStarted {
            about: Some(StageAbout::Finetune { from_epoch, .. }),
            ..
        } => from = Some(from_epoch),
        _ => {}
    })
    .unwrap();
    assert_eq!(from, Some(0));
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(PARTIAL_FINETUNE) && w.contains("replaces")),
        "no warning about the replaced file: {warnings:?}"
    );
    assert_ne!(
        std::fs::read(&partial).unwrap(),
        first,
        "the file was not replaced"
    );

    // Damaged: refused, the file named and kept byte for byte.
    let mut bytes = std::fs::read(&partial).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&partial, &bytes).unwrap();
    let err = p
        .finetune(&what(), &other, &CancelFlag::default(), &mut |_| {})
        .expect_err("a damaged unfinished fine-tuning was used");
    let text = format!("{err}");
    assert!(
        text.contains(&partial.display().to_string()) && text.contains("delete it"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(&partial).unwrap(),
        bytes,
        "the damaged file was touched"
    );
}
