//! One logits case of a zoo network against PyTorch: inputs and the reference's logits
//! saved by the Python side as DIR/CASE.in.npy and DIR/CASE.ref.npy (tests/py/tv_resnet.py
//! `logits_case`), rift's own written by `rift predict` beside them.
use super::{max_abs_diff, path_str, rift, stderr_of};
use std::path::Path;

/// Largest |rift − PyTorch| over the largest |PyTorch logit| after `rift predict` with the
/// model flags `model` (`--zoo ID --model-dir D`, or `--checkpoint F --arch A`), which
/// must say it ran `arch`.
pub fn predict_relative_diff(dir: &Path, case: &str, model: &[&str], arch: &str) -> f32 {
    let at = |s: &str| dir.join(format!("{case}.{s}"));
    let (input, output) = (at("in.npy"), at("rift.npy"));
    let mut args = vec!["predict"];
    args.extend_from_slice(model);
    args.extend([
        "--input",
        path_str(&input),
        "--output",
        path_str(&output),
        "--device",
        "cpu",
    ]);
    let run = rift(&args);
    let said = stderr_of(&run);
    assert!(run.status.success(), "{case}: {said}");
    assert!(
        said.contains(&format!("wrote {arch} logits")),
        "{case}: {said}"
    );
    let reference = rift::engine::data::read_npy(&at("ref.npy")).unwrap();
    let scale = reference
        .to_f32()
        .unwrap()
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()));
    max_abs_diff(&output, &at("ref.npy")) / scale.max(1e-6)
}

/// `predict_relative_diff` through `--zoo id`, the entry's file under DIR/CASE in
/// robustbench's layout (`CASE/<dataset>/<threat>/<name>.pt`).
pub fn zoo_relative_diff(dir: &Path, case: &str, id: &str, arch: &str) -> f32 {
    let models = dir.join(case);
    let flags = ["--zoo", id, "--model-dir", path_str(&models)];
    predict_relative_diff(dir, case, &flags, arch)
}
