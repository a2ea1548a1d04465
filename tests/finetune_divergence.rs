//! A diverging fine-tuning run (NaN/Inf loss) stops with a clear message, records why,
//! and keeps the best state so far (here: the AT weights, as no epoch finished).
mod common;

use common::{path_str, rift, stderr_of, DEMO_MODEL};
use rift::engine::checkpoint::load_checkpoint;

#[test]
fn divergence_stops_and_keeps_the_best_state() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("ft.safetensors");
    let out_json = dir.path().join("ft.json");
    let out = rift(&[
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--layer",
        "layer3.1.conv2",
        "--lr",
        "1e30",
        "--epochs",
        "1",
        "--limit",
        "64",
        "--save",
        path_str(&save),
        "--output",
        path_str(&out_json),
        "--device",
        "cpu",
    ]);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("loss became"), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    assert!(
        v["diverged"]
            .as_str()
            .unwrap()
            .contains("kept the best state"),
        "{v}"
    );
    let at = load_checkpoint(std::path::Path::new(DEMO_MODEL)).unwrap();
    let ft = load_checkpoint(&save).unwrap();
    for (k, t) in &at.tensors {
        let f = ft.get(k).unwrap_or_else(|| panic!("{k} missing"));
        assert_eq!(
            t.data, f.data,
            "{k} changed although no epoch finished before the divergence"
        );
    }
}
