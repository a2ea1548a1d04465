//! Pure `update` tests of screening and MRC's course: estimates first and exact values
//! replacing them, a cancelled MRC not restarting by itself, the device from the load
//! event. (Split from `update_tests.rs`, whose builders these share.)
use super::tests::*;
use super::*;

/// Issue 6 in the explorer: estimates for every module first, then exact values replace
/// them one by one (lowest estimate first); only exact modules can be fine-tuned, and
/// doing so during MRC pauses it and lets it continue afterwards.
#[test]
fn estimates_first_then_exact_replacements() {
    let mut s = state();
    update(&mut s, Msg::Start);
    for (n, d, e) in [
        ("conv1", 0, 0.3),
        ("layer1.0.conv1", 1, 0.1),
        ("fc", 2, 0.2),
    ] {
        estimated(&mut s, n, d, e);
    }
    engine(
        &mut s,
        Event::ScreenFinished {
            method: "first_order".into(),
            modules: 3,
            seconds: 0.1,
        },
    );
    assert!(s.status.contains("not in the paper"), "{}", s.status);
    let rows = s.rows();
    assert_eq!(rows.len(), 3);
    assert!(rows
        .iter()
        .all(|r| r.exact.is_none() && r.estimate.is_some()));
    // Estimates never recommend.
    assert_eq!(s.recommended, None);
    assert_eq!(update(&mut s, Msg::FineTune), None);
    assert!(
        s.status.contains("only a first-order estimate"),
        "{}",
        s.status
    );

    engine(
        &mut s,
        Event::started_text(Stage::Mrc, "exact MRC of 3 modules"),
    );
    // The lowest estimate is made exact first and replaces its estimate bar.
    let mut first = score("layer1.0.conv1", 1, 0.4);
    first.estimate = Some(0.1);
    engine(&mut s, Event::ModuleScored { score: first });
    let rows = s.rows();
    assert_eq!(
        rows.len(),
        3,
        "an exact value replaces the estimate, not adds a row"
    );
    assert!(rows[1].exact.is_some() && rows[1].estimate.is_some());
    assert!(rows[0].exact.is_none() && rows[2].exact.is_none());
    assert_eq!(s.recommended.as_deref(), Some("layer1.0.conv1"));
    // By MRC: exact modules first, then estimate-only ones by estimate.
    update(&mut s, Msg::Sort);
    let names: Vec<&str> = s.rows().iter().map(|r| r.name).collect();
    assert_eq!(names, ["layer1.0.conv1", "fc", "conv1"]);

    // Enter on the exact module while MRC runs: MRC is paused (cancelled) for it ...
    update(&mut s, Msg::SelectModule(0));
    assert_eq!(update(&mut s, Msg::FineTune), Some(Cmd::Cancel));
    assert_eq!(
        update(&mut s, Msg::Job(JobEvent::Cancelled)),
        Some(Cmd::Job(JobCommand::StartFinetune {
            layers: vec!["layer1.0.conv1".into()],
            lr: 0.01
        }))
    );
    assert!(s.mrc_paused);
    // ... the sweep follows the fine-tune, and then MRC continues.
    assert_eq!(
        finished(&mut s, Stage::Finetune),
        Some(Cmd::Job(JobCommand::StartSweep))
    );
    assert_eq!(
        finished(&mut s, Stage::Interpolate),
        Some(Cmd::Job(JobCommand::StartMrc))
    );
    assert!(!s.mrc_paused && s.busy);
    for (n, d, m) in [("fc", 2, 0.9), ("conv1", 0, 0.7)] {
        engine(
            &mut s,
            Event::ModuleScored {
                score: score(n, d, m),
            },
        );
    }
    assert_eq!(finished(&mut s, Stage::Mrc), None);
    assert!(s.mrc_done && s.rows().iter().all(|r| r.exact.is_some()));
}

#[test]
fn a_plain_cancel_of_mrc_does_not_restart_it() {
    let mut s = state();
    update(&mut s, Msg::Start);
    engine(&mut s, Event::started_text(Stage::Mrc, "exact"));
    assert_eq!(update(&mut s, Msg::Cancel), Some(Cmd::Cancel));
    assert_eq!(update(&mut s, Msg::Job(JobEvent::Cancelled)), None);
    assert!(!s.mrc_paused && !s.busy);
    // Jobs other than exact MRC are not interrupted: a second job waits (a save is
    // served while the job runs, `update_job_tests.rs`).
    update(&mut s, Msg::Start);
    engine(&mut s, Event::started_text(Stage::AdvSet, "PGD"));
    assert_eq!(update(&mut s, Msg::Refine), None);
    assert!(s.status.contains("no α sweep yet"), "{}", s.status);
    assert_eq!(update(&mut s, Msg::FineTune), None);
}

#[test]
fn the_device_comes_from_the_load_event() {
    let mut s = state();
    engine(
        &mut s,
        Event::started(
            Stage::Load,
            StageAbout::Model {
                arch: "resnet18-w8".into(),
                params: 176258,
                modules: 21,
                normalization: String::new(),
                device: "cuda:0".into(),
                zoo: None,
            },
        ),
    );
    assert_eq!(s.device, "cuda:0");
}
