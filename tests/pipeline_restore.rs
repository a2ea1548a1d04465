//! Every stage that changes the model leaves it at the AT weights on every exit path: a
//! sweep cancelled between α points, a refinement and a verdict evaluation cancelled
//! after loading θ(α) end with the model equal to the AT checkpoint, tensor by tensor.
//! On the demo model with the worker tests' tiny settings (16 test samples).
mod common;

use common::jobs::demo_job_setup;
use common::DEMO_MODEL;
use rift::engine::checkpoint::load_checkpoint;
use rift::engine::rift::events::Event;
use rift::engine::rift::finetune::Trained;
use rift::engine::rift::pipeline::{Pipeline, StateDict, SweepHow};
use rift::engine::CancelFlag;
use rift::jobs::JobSetup;
use rift::report::session::Session;

/// The demo pipeline, fine-tuned on `linear` for one epoch (so α ≠ 0 is another model).
fn finetuned_pipeline(dir: &std::path::Path) -> Pipeline {
    let JobSetup {
        load,
        pipeline,
        settings,
        ..
    } = demo_job_setup(dir.join("s"));
    let (ckpt, model) = load().unwrap();
    let session = Session::new(&pipeline.session_dir, settings, None, &model);
    let mut p = Pipeline::new(pipeline, ckpt, model, session).unwrap();
    let cfg = p.setup.finetune.clone();
    let what = Trained::Modules(vec!["linear".into()]);
    p.finetune(&what, &cfg, &CancelFlag::default(), &mut |_| {})
        .unwrap();
    p
}

/// Names of the entries where the model differs from the AT checkpoint (empty: equal).
fn differs_from_at(p: &Pipeline) -> Vec<String> {
    let at: StateDict = load_checkpoint(std::path::Path::new(DEMO_MODEL))
        .unwrap()
        .tensors;
    let now = p.model.state().unwrap();
    assert_eq!(now.len(), at.len());
    now.iter()
        .filter(|(k, t)| at.iter().find(|(a, _)| a == k).map(|(_, a)| a) != Some(t))
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn cancelled_stages_leave_the_at_weights() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = finetuned_pipeline(dir.path());
    assert_eq!(
        differs_from_at(&p),
        Vec::<String>::new(),
        "after fine-tuning"
    );
    let fine_tuned = p.endpoints().unwrap().state_at(1.0).unwrap();
    assert_ne!(
        fine_tuned,
        p.model.state().unwrap(),
        "fine-tuning changed nothing: the test could not tell α apart"
    );

    // The sweep, cancelled once its first point (α = 0) is measured: the next α is
    // already loaded when the evaluation sees the flag.
    let cancel = CancelFlag::default();
    let mut points = 0;
    let r = p.sweep(SweepHow::Grid, &cancel, &mut |e| {
        if let Event::SweepPoint { .. } = e {
            points += 1;
            cancel.cancel();
        }
    });
    assert!(r.is_err(), "the cancelled sweep returned Ok");
    assert_eq!(points, 1, "the sweep went on after its cancel");
    assert_eq!(differs_from_at(&p), Vec::<String>::new(), "after the sweep");

    // A finished sweep, then a refinement cancelled before its first batch (θ(0.25) or
    // θ(0.75) loaded first).
    p.sweep(SweepHow::Grid, &CancelFlag::default(), &mut |_| {})
        .unwrap();
    let cancel = CancelFlag::default();
    cancel.cancel();
    let r = p.refine(0.5, &cancel, &mut |_| {});
    assert!(r.is_err(), "the cancelled refinement returned Ok");
    assert_eq!(differs_from_at(&p), Vec::<String>::new(), "after refine");

    // The verdicts of θ(0.5), cancelled.
    let r = p.verdicts_at(0.5, &cancel, &mut |_| {});
    assert!(r.is_err(), "the cancelled evaluation returned Ok");
    assert_eq!(
        differs_from_at(&p),
        Vec::<String>::new(),
        "after verdicts_at"
    );
}
