//! `rift run` continues a sweep that a session holds only in part (the explorer's `s`
//! saves the points measured so far): the saved points are kept, the missing grid points
//! are measured, and a finished sweep is not repeated.
mod common;
use common::*;
use rift::report::session::Session;

#[test]
fn a_partly_saved_sweep_is_continued_not_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 96);
    let s = t.join("s");
    let args = demo_run_args(&s, &data, &[]);
    rift_ok(&args);
    let full = Session::load(&s).unwrap();
    let points = full.interpolation.as_ref().unwrap().points.clone();
    assert_eq!(points.len(), 3);

    // As if saved during the sweep: α = 1 not measured yet, α = 0.5 marked so that a
    // re-measured point would show.
    let mut partial = full.clone();
    let interp = partial.interpolation.as_mut().unwrap();
    interp.points.retain(|p| p.alpha != 1.0);
    interp.points[1].clean_acc = 12.5;
    partial.chosen = None;
    partial.save(&s).unwrap();

    rift_ok(&args);
    let resumed = Session::load(&s).unwrap();
    let got = &resumed.interpolation.as_ref().unwrap().points;
    let at = |alpha: f64| got.iter().find(|p| p.alpha == alpha).unwrap();
    assert_eq!(
        at(0.5).clean_acc,
        12.5,
        "the saved point was measured again"
    );
    assert_eq!(at(1.0), &points[2], "the missing point equals a full run's");
    assert!(resumed.chosen.is_some());
}
