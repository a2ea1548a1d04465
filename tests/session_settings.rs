//! Issue 23's two reported cases, through the binary and the explorer's worker:
//! - a run continued with a setting that changes MRC (`--mrc-lr`) is refused before any
//!   compute, naming the setting with both values; `--restart-from mrc` recomputes MRC and
//!   every later stage with the new value, keeping the baseline; the same flags continue
//!   from the partial file to the uninterrupted result, bit for bit;
//! - a save during the explorer's MRC keeps the baseline and every finished score, and a
//!   resumed explorer scores only the rest, to the uninterrupted result.
mod common;
use common::jobs::{demo_attack, job_setup, until_end, JobFixture};
use common::*;
use rift::engine::rift::events::{Event, Stage};
use rift::engine::rift::mrc::partial::PartialMrc;
use rift::engine::rift::mrc::stage::PARTIAL_MRC;
use rift::jobs::{JobCommand, JobEvent, JobRequest, Worker};
use rift::report::session::Session;
use std::path::Path;

fn args_with(s: &Path, data: &Path, extra: &[&str]) -> Vec<String> {
    demo_run_args(s, data, extra)
}

fn run_with(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    rift(&refs)
}

/// A finished session turned into what a run killed after `keep` MRC modules leaves:
/// session.yaml without MRC (and what follows it), the scores in the partial file.
fn as_if_killed_during_mrc(s: &Path, keep: usize) -> Session {
    let full = Session::load(s).unwrap();
    let mut cut = full.clone();
    let mrc = cut.mrc.take().unwrap();
    cut.finetune = None;
    cut.finetuned_weights = None;
    cut.interpolation = None;
    cut.chosen = None;
    cut.save(s).unwrap();
    let partial = PartialMrc {
        adv_set: None,
        estimates: vec![],
        scores: mrc.modules[..keep].to_vec(),
    };
    std::fs::write(
        s.join(PARTIAL_MRC),
        serde_yaml::to_string(&partial).unwrap(),
    )
    .unwrap();
    full
}

#[test]
fn a_continuation_with_another_mrc_lr_is_refused_or_restarted_never_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 96);
    let s = t.join("s");
    let first = args_with(&s, &data, &["--mrc-lr", "1"]);
    let out = run_with(&first);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let full = as_if_killed_during_mrc(&s, 2);

    // Other MRC learning rate: refused before any compute, the session untouched.
    let before = std::fs::read(Session::path(&s)).unwrap();
    let partial_before = std::fs::read(s.join(PARTIAL_MRC)).unwrap();
    let other = args_with(&s, &data, &["--mrc-lr", "0.001"]);
    let out = run_with(&other);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(EXIT_ERROR), "{err}");
    assert!(
        err.contains("mrc.config.lr (session: 1.0, now: 0.001; changes mrc and after)"),
        "{err}"
    );
    assert!(err.contains("--restart-from mrc"), "{err}");
    assert_eq!(std::fs::read(Session::path(&s)).unwrap(), before);
    assert_eq!(std::fs::read(s.join(PARTIAL_MRC)).unwrap(), partial_before);

    // Restarting later than the change is refused too, naming the stage to restart from.
    let mut late = other.clone();
    late.extend(["--restart-from".into(), "finetune".into()]);
    let out = run_with(&late);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(EXIT_ERROR), "{err}");
    assert!(err.contains("use --restart-from mrc"), "{err}");

    // The same flags continue from the partial file: the uninterrupted result, bit for bit.
    let out = run_with(&first);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let resumed = Session::load(&s).unwrap();
    assert_eq!(
        resumed.mrc.as_ref().unwrap().modules,
        full.mrc.as_ref().unwrap().modules
    );
    let events = std::fs::read_to_string(s.join("events.jsonl")).unwrap();
    assert!(
        events.contains("2 already scored"),
        "the partial scores were not used"
    );

    // --restart-from mrc: MRC with the new rate, equal to a fresh run's; baseline kept.
    let mut restart = other.clone();
    restart.extend(["--restart-from".into(), "mrc".into()]);
    let out = run_with(&restart);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let restarted = Session::load(&s).unwrap();
    let fresh_dir = t.join("fresh");
    let out = run_with(&args_with(&fresh_dir, &data, &["--mrc-lr", "0.001"]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let fresh = Session::load(&fresh_dir).unwrap();
    assert_eq!(
        restarted.mrc.as_ref().unwrap().modules,
        fresh.mrc.as_ref().unwrap().modules
    );
    assert_ne!(
        restarted.mrc.as_ref().unwrap().modules,
        full.mrc.as_ref().unwrap().modules,
        "the learning rate changed nothing: the test cannot tell mixed from not"
    );
    assert_eq!(
        restarted.baseline, full.baseline,
        "the baseline was recomputed"
    );
    assert_eq!(
        restarted.interpolation.as_ref().unwrap().points,
        fresh.interpolation.as_ref().unwrap().points
    );
    assert_eq!(restarted.config.as_ref().unwrap().mrc.config.lr, 0.001);
    let last = restarted.continued.last().unwrap();
    assert_eq!(last.restarted_from.as_deref(), Some("mrc"));
    assert_eq!(last.changed, ["mrc.config.lr: 1.0 -> 0.001"]);
}

#[test]
fn a_save_during_the_explorers_mrc_keeps_every_finished_score() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = |session: &Path| {
        job_setup(JobFixture {
            checkpoint: DEMO_MODEL,
            dataset: "mnist",
            data_dir: "assets/demo",
            session: session.to_path_buf(),
            ft_epochs: 1,
            modules: vec!["conv1".into(), "layer1.0.conv1".into(), "linear".into()],
            attack: demo_attack(),
            activation: None,
        })
    };
    // The uninterrupted MRC.
    let whole = dir.path().join("whole");
    let (mut handle, mut rx) = Worker::spawn(fixture(&whole)).unwrap();
    handle.send(JobCommand::StartMrc);
    let mut seen = Vec::new();
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished { stage: Stage::Mrc }
    );
    handle.shutdown();
    let expected = Session::load(&whole).unwrap().mrc.unwrap();
    assert!(
        !whole.join(PARTIAL_MRC).exists(),
        "MRC is in session.yaml: no partial file"
    );

    // `s` after the first exact score, then the explorer closed mid-MRC.
    let s = dir.path().join("s");
    let (mut handle, mut rx) = Worker::spawn(fixture(&s)).unwrap();
    handle.send(JobCommand::StartMrc);
    let mut requested = false;
    loop {
        match rx.blocking_recv().expect("worker ended") {
            JobEvent::Engine(Event::ModuleScored { .. }) if !requested => {
                handle.send(JobCommand::Request(JobRequest::Save));
                requested = true;
            }
            JobEvent::Saved { .. } => break,
            JobEvent::Finished { stage: Stage::Mrc } => panic!("MRC ended before the save"),
            _ => {}
        }
    }
    handle.shutdown();
    let session = Session::load(&s).unwrap();
    let (got, want) = (
        session.baseline.clone().expect("the baseline was saved"),
        Session::load(&whole).unwrap().baseline.unwrap(),
    );
    assert_eq!(
        (got.n, got.clean_correct, got.robust_correct),
        (want.n, want.clean_correct, want.robust_correct)
    );
    assert!(session.mrc.is_none());
    let partial: PartialMrc =
        serde_yaml::from_str(&std::fs::read_to_string(s.join(PARTIAL_MRC)).unwrap()).unwrap();
    let kept = partial.scores.len();
    assert!(kept >= 1, "no finished score on disk");
    assert_eq!(partial.adv_set.as_ref().unwrap().n, expected.adv_n);
    assert_eq!(
        partial.estimates.len(),
        3,
        "the screening estimates are on disk"
    );

    // Resumed: only the rest is scored, and the result is the uninterrupted one.
    let mut setup = fixture(&s);
    setup.resume = Some(session);
    let (mut handle, mut rx) = Worker::spawn(setup).unwrap();
    handle.send(JobCommand::StartMrc);
    let mut seen = Vec::new();
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished { stage: Stage::Mrc }
    );
    handle.shutdown();
    let mut rescored: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            JobEvent::Engine(Event::ModuleEpoch { module, .. }) => Some(module.as_str()),
            _ => None,
        })
        .collect();
    rescored.dedup();
    assert_eq!(rescored.len(), 3 - kept, "scored again: {rescored:?}");
    let resumed = Session::load(&s).unwrap().mrc.unwrap();
    assert_eq!(resumed.modules, expected.modules);
    assert_eq!(resumed.recommended, expected.recommended);
}
