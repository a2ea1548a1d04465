//! `rift demo --headless` runs the whole pipeline on the bundled demo and shows what RiFT
//! is for: the chosen α raises clean accuracy while robust accuracy stays within the
//! tolerance of the AT model.
mod common;

use common::{path_str, rift_ok};
use rift::report::session::Session;

#[test]
fn headless_demo_runs_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let session_dir = dir.path().join("demo");
    let started = std::time::Instant::now();
    let out = rift_ok(&[
        "demo",
        "--headless",
        "--session",
        path_str(&session_dir),
        "--device",
        "cpu",
    ]);
    assert!(out.contains("chosen α"), "{out}");
    let s = Session::load(&session_dir).unwrap();
    let base = s.baseline.as_ref().expect("baseline");
    let mrc = s.mrc.as_ref().expect("mrc");
    assert_eq!(mrc.modules.len(), 21);
    let ft = s.finetune.as_ref().expect("finetune");
    assert_eq!(ft.layers, vec![mrc.recommended.clone()]);
    let interp = s.interpolation.as_ref().expect("interpolation");
    let chosen = interp
        .points
        .iter()
        .find(|p| p.alpha == interp.chosen_alpha)
        .unwrap();
    assert!(
        interp.chosen_alpha > 0.0,
        "the demo should find a useful α: {:?}",
        interp.points
    );
    assert!(
        chosen.clean_acc > base.clean_acc,
        "clean {} vs AT {}",
        chosen.clean_acc,
        base.clean_acc
    );
    assert!(chosen.robust_acc >= base.robust_acc.unwrap() - interp.tolerance - 1e-9);
    for f in [
        "report.md",
        "mrc.png",
        "mrc.svg",
        "finetune.png",
        "finetune.svg",
        "alpha.png",
        "alpha.svg",
        "chosen.pth",
        "chosen.safetensors",
        "events.jsonl",
    ] {
        assert!(session_dir.join(f).exists(), "{f} missing");
    }
    // The wall time per stage: every stage of the pipeline, once each, in order, each
    // measured (> 0), and together no longer than the process took from outside.
    let wall = started.elapsed().as_secs_f64();
    let stages: Vec<&str> = s.stage_seconds.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(stages, ["baseline", "mrc", "finetune", "interpolate"]);
    assert!(
        s.stage_seconds.iter().all(|(_, t)| *t > 0.0),
        "{:?}",
        s.stage_seconds
    );
    let total: f64 = s.stage_seconds.iter().map(|(_, t)| t).sum();
    assert!(
        total <= wall,
        "stages {total:.1}s exceed the process's {wall:.1}s: {:?}",
        s.stage_seconds
    );
}
