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

/// `rift mrc` of `modules` on DIR/`ckpt` (model flags `model`, `common::zoo_mrc_json`'s
/// settings) faithfully and with `--fast`: `count` modules scored, the faithful scores
/// against `reference` (tests/py/mrc_ref.py's printed MRC of the same modules; at most one
/// of the 32 samples may land on the other side of a decision boundary), `--fast` equal to
/// the faithful loop. The faithful scores.
pub fn assert_mrc_and_fast(
    dir: &Path,
    ckpt: &str,
    (modules, count): (&str, usize),
    model: &[&str],
    reference: &str,
) -> Vec<(String, f64, f64)> {
    let ours = super::mrc_scores(&super::zoo_mrc_json(dir, ckpt, modules, "faithful", model));
    assert_eq!(ours.len(), count, "{ours:?}");
    super::assert_mrc_matches_reference(&ours, reference, 3.2);
    let mut fast_flags = model.to_vec();
    fast_flags.push("--fast");
    let fast = super::mrc_scores(&super::zoo_mrc_json(
        dir,
        ckpt,
        modules,
        "fast",
        &fast_flags,
    ));
    super::assert_fast_equals_faithful(&fast, &ours);
    ours
}

/// `rift finetune --checkpoint CKPT` (then the model flags `model`) of `layer` for one
/// epoch at lr 0.01 on the first 32 images of the CIFAR-10 fixture in DIR, saved to
/// `saved`; then the Python check `loads_back` run on (saved, ckpt): what it prints (the
/// keys it found changed).
pub fn finetune_loads_back(
    dir: &Path,
    (ckpt, model): (&Path, &[&str]),
    layer: &str,
    saved: &Path,
    loads_back: &str,
) -> String {
    let mut args = vec!["finetune", "--checkpoint", path_str(ckpt)];
    args.extend_from_slice(model);
    args.extend(["--dataset", "cifar10", "--data-dir", path_str(dir)]);
    args.extend([
        "--layer", layer, "--epochs", "1", "--lr", "0.01", "--limit", "32",
    ]);
    args.extend(["--save", path_str(saved), "--device", "cpu"]);
    super::rift_ok(&args);
    super::run_python(loads_back, &[path_str(saved), path_str(ckpt)])
}
