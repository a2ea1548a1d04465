//! `rift train-at` saves its state (momentum for every trainable tensor, the epoch) beside
//! the model every epoch and continues from it; the model loads strictly in PyTorch; a
//! model without its state cannot continue. Training reads a tiny MNIST copy of the
//! bundled demo (128 training digits, 64 test digits).
mod common;

use common::stages::{differing_keys, PY_LOAD_STRICT};
use common::{assert_fails_cleanly, path_str, rift, run_python, stderr_of, tiny_mnist};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The JSON header of a .safetensors file (8-byte little-endian length, then JSON).
fn safetensors_header(p: &Path) -> Value {
    let bytes = std::fs::read(p).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n])
        .unwrap_or_else(|e| panic!("{}: bad header: {e}", p.display()))
}

fn train_state_epoch(save: &Path) -> String {
    let side = PathBuf::from(format!("{}.train-state.safetensors", save.display()));
    assert!(side.is_file(), "{} missing", side.display());
    let meta = safetensors_header(&side)["__metadata__"].clone();
    meta["epoch"]
        .as_str()
        .unwrap_or_else(|| panic!("no epoch in {meta}"))
        .to_string()
}

#[test]
fn train_at_saves_its_state_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 64);
    let at = t.join("at.safetensors");
    let base = |epochs: &'static str| -> Vec<String> {
        [
            "train-at",
            "--arch",
            "resnet18",
            "--width",
            "4",
            "--dataset",
            "mnist",
            "--data-dir",
            path_str(&data),
            "--epochs",
            epochs,
            "--steps",
            "1",
            "--eps",
            "0.1",
            "--step",
            "0.1",
            "--eval-limit",
            "50",
            "--device",
            "cpu",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |extra: &[&str], epochs: &'static str| -> Output {
        let mut a = base(epochs);
        a.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        rift(&refs)
    };

    let out = run(&["--save", path_str(&at)], "2");
    assert!(
        out.status.success(),
        "train-at failed:\n{}",
        stderr_of(&out)
    );
    assert!(at.is_file());
    assert_eq!(
        train_state_epoch(&at),
        "1",
        "epochs count from 0: two epochs end at 1"
    );
    // The sidecar holds a momentum buffer for every trainable tensor of the ResNet18.
    let side = safetensors_header(&PathBuf::from(format!(
        "{}.train-state.safetensors",
        at.display()
    )));
    let momentum = side
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("momentum."))
        .count();
    assert_eq!(
        momentum, 62,
        "20 conv + linear weight/bias + 20 BN weight/bias: {side}"
    );
    let before = t.join("at-epoch1.safetensors");
    std::fs::copy(&at, &before).unwrap();

    let out = run(&["--continue", path_str(&at), "--save", path_str(&at)], "3");
    let err = stderr_of(&out);
    assert!(out.status.success(), "continuing failed:\n{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("continuing") && l.contains("from epoch 2")),
        "no `continuing … from epoch 2`:\n{err}"
    );
    assert_eq!(train_state_epoch(&at), "2");
    assert!(
        !differing_keys(&before, &at).is_empty(),
        "the third epoch changed nothing"
    );
    let n_keys: usize = run_python(PY_LOAD_STRICT, &[path_str(&at), "4", "1", "28"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        n_keys, 122,
        "ResNet18 state: 62 weights/biases + 60 BN buffers"
    );

    // A model without its sidecar cannot continue; the error names the sidecar.
    let lone = t.join("lone.safetensors");
    std::fs::copy(&before, &lone).unwrap();
    let out = run(
        &[
            "--continue",
            path_str(&lone),
            "--save",
            path_str(&t.join("next.safetensors")),
        ],
        "3",
    );
    assert_fails_cleanly(
        &out,
        "--continue without a sidecar",
        &["lone.safetensors.train-state.safetensors"],
    );
    assert!(!t.join("next.safetensors").exists());
}
