//! `--dataset imagenet` on a tiny ImageNet-like tree written by PIL
//! (`tests/py/imagenet_tree.py`): the standard labels, robustbench's subset and its order,
//! the preprocessed pixels against robustbench's own pipeline (PIL + torchvision), and the
//! errors, through the library and through the real CLI.

mod common;

use common::{assert_failed, path_str, rift, EXIT_ERROR, EXIT_USAGE};
use rift::engine::data::imagenet::{self, ROBUSTBENCH_IDS_TXT};
use rift::engine::data::preprocess::Preprocess;
use rift::engine::data::{load_split_with, read_npy, DatasetKind, LoadOptions, Split, Subset};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// zune-jpeg vs PIL's libjpeg-turbo (measured in tests/preprocess_pillow.rs); the
/// preprocessing itself is bit-identical, so only the decoder's difference remains. On
/// these files (quality 90, 4:2:0) after each preprocessing: max |Δ| 4-5, mean 0.29-0.36.
const MAX_DIFF: u8 = 6;
const MAX_MEAN: f64 = 0.40;

struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    manifest: Value,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().expect("tempdir");
    common::run_python(
        include_str!("py/imagenet_tree.py"),
        &[dir.path().to_str().expect("utf-8")],
    );
    let manifest = common::read_json(&dir.path().join("manifest.json"));
    Tree {
        root: dir.path().to_path_buf(),
        _dir: dir,
        manifest,
    }
}

fn items(v: &Value) -> Vec<(PathBuf, i64)> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|e| {
            (
                PathBuf::from(e[0].as_str().expect("path")),
                e[1].as_i64().expect("label"),
            )
        })
        .collect()
}

fn load(
    root: &Path,
    prep: Preprocess,
    subset: Subset,
    limit: Option<usize>,
) -> rift::engine::data::ImageSet {
    let opts = LoadOptions {
        preprocess: Some(prep),
        subset,
        limit,
    };
    load_split_with(DatasetKind::ImageNet, root, Split::Test, &opts).expect("loads")
}

fn compare(set: &rift::engine::data::ImageSet, reference: &Path, what: &str) {
    let r = read_npy(reference).expect("reference npy");
    assert_eq!(r.shape, vec![set.n, 3, set.height, set.width], "{what}");
    let diffs: Vec<u8> = set
        .pixels
        .iter()
        .zip(&r.data)
        .map(|(a, b)| a.abs_diff(*b))
        .collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
    eprintln!("{what}: max |Δ| {max}, mean {mean:.4} (JPEG decoder only)");
    assert!(
        max <= MAX_DIFF && mean <= MAX_MEAN,
        "{what}: max {max} mean {mean}"
    );
}

#[test]
fn embedded_lists_equal_robustbench_wheel() {
    let t = tree();
    let wheel: Vec<String> = common::strings(&t.manifest["wheel_wnids"]);
    assert_eq!(imagenet::wnids(), wheel);
    assert_eq!(
        ROBUSTBENCH_IDS_TXT,
        t.manifest["wheel_ids_text"].as_str().expect("text")
    );
}

#[test]
fn labels_order_subset_and_pixels_match_robustbench() {
    let t = tree();
    let root = t.root.join("imagenet");
    let all = items(&t.manifest["all"]);
    let subset = items(&t.manifest["subset"]);
    let k = t.manifest["K"].as_u64().expect("K") as usize;
    for name in ["Res256Crop224", "BicubicRes256Crop224", "Res224", "Crop288"] {
        let prep = Preprocess::parse(name).expect("name");
        // (a) every image, synsets in the standard order, standard labels, 1000 classes.
        let set = load(&root, prep, Subset::All, None);
        assert_eq!(set.n, all.len());
        assert_eq!(set.num_classes, 1000);
        assert_eq!(set.labels, all.iter().map(|(_, l)| *l).collect::<Vec<_>>());
        assert_eq!(set.class_names[0], "n01440764");
        compare(
            &set,
            &t.root.join(format!("ref_{name}_all.npy")),
            &format!("{name} all"),
        );
        // (b) robustbench's list, in its order: the first K entries are in the tree.
        let set = load(&root, prep, Subset::RobustBench, Some(k));
        assert_eq!(set.n, k);
        assert_eq!(
            set.labels,
            subset.iter().map(|(_, l)| *l).collect::<Vec<_>>()
        );
        compare(
            &set,
            &t.root.join(format!("ref_{name}_subset.npy")),
            &format!("{name} subset"),
        );
        // --limit takes the first N of the list.
        let two = load(&root, prep, Subset::RobustBench, Some(2));
        assert_eq!(two.pixels[..], set.pixels[..two.pixels.len()]);
    }
    // The training split keeps the standard labels too.
    let opts = LoadOptions {
        preprocess: Some(Preprocess::Res256Crop224),
        ..Default::default()
    };
    let train = load_split_with(DatasetKind::ImageNet, &root, Split::Train, &opts).expect("train");
    assert_eq!(train.labels, vec![1, 1]);
}

#[test]
fn missing_listed_files_are_counted_and_named() {
    let t = tree();
    let root = t.root.join("imagenet");
    let opts = LoadOptions {
        preprocess: Some(Preprocess::Res256Crop224),
        subset: Subset::RobustBench,
        limit: None,
    };
    let e = load_split_with(DatasetKind::ImageNet, &root, Split::Test, &opts)
        .unwrap_err()
        .to_string();
    let first_missing = ROBUSTBENCH_IDS_TXT.lines().nth(6).expect("7th entry");
    assert!(e.contains("4994 of the 5000"), "{e}");
    assert!(e.contains(first_missing), "{e}");
}

/// `rift eval --attack none` of the tree's tiny 1000-class ResNet-18 (3 channels, 224×224
/// inputs) on `data_dir`.
fn eval_args<'a>(model: &'a str, data_dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "eval",
        "--checkpoint",
        model,
        "--dataset",
        "imagenet",
        "--data-dir",
        data_dir,
        "--device",
        "cpu",
        "--attack",
        "none",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn bad_imagenet_input_fails_cleanly_through_the_cli() {
    let t = tree();
    let model = t.root.join("tiny_in1k.safetensors");
    let model = path_str(&model);
    let bad = t.root.join("bad_wnid");
    let out = rift(&eval_args(
        model,
        path_str(&bad),
        &["--preprocess", "Res256Crop224"],
    ));
    assert_failed(
        &out,
        EXIT_ERROR,
        &["cats", "not one of the 1000 ImageNet synsets"],
    );

    let no_val = t.root.join("no_val");
    let out = rift(&eval_args(
        model,
        path_str(&no_val),
        &["--preprocess", "Res256Crop224"],
    ));
    assert_failed(&out, EXIT_ERROR, &[path_str(&no_val), "val/<wnid>"]);

    let mixed = t.root.join("mixed");
    let out = rift(&eval_args(model, path_str(&mixed), &[]));
    assert_failed(&out, EXIT_ERROR, &["b.JPEG", "--preprocess Res256Crop224"]);

    let out = rift(&eval_args(
        model,
        path_str(&mixed),
        &["--preprocess", "Res255Crop224"],
    ));
    assert_failed(
        &out,
        EXIT_USAGE,
        &["--preprocess", "Res255Crop224", "BicubicRes256Crop224"],
    );

    let out = rift(&eval_args(
        model,
        path_str(&mixed),
        &["--subset", "robustbench"],
    ));
    assert_failed(
        &out,
        EXIT_ERROR,
        &["--subset robustbench", "missing", "ILSVRC2012_val_00015253"],
    );

    // Reading options a dataset cannot honour are refused, not ignored.
    let out = rift(&common::demo_args(
        "eval",
        &["--attack", "none", "--subset", "robustbench"],
    ));
    assert_failed(
        &out,
        EXIT_ERROR,
        &["--subset robustbench", "only for --dataset imagenet"],
    );
    let out = rift(&common::demo_args(
        "eval",
        &["--attack", "none", "--preprocess", "res224"],
    ));
    assert_failed(&out, EXIT_ERROR, &["--preprocess Res224", "mnist"]);
}

#[test]
fn rift_eval_reads_imagenet_through_the_cli() {
    let t = tree();
    let model = t.root.join("tiny_in1k.safetensors");
    let root = t.root.join("imagenet");
    let k = t.manifest["K"].as_u64().expect("K").to_string();
    for extra in [
        vec!["--preprocess", "res256crop224", "--limit", "3"],
        vec!["--preprocess", "Res224"],
        vec![
            "--preprocess",
            "BicubicRes256Crop224",
            "--subset",
            "robustbench",
            "--limit",
            &k,
        ],
    ] {
        let out = rift(&eval_args(path_str(&model), path_str(&root), &extra));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            common::stderr_of(&out)
        );
        let n = match extra.iter().position(|a| *a == "--limit") {
            Some(i) => extra[i + 1].to_string(),
            None => items(&t.manifest["all"]).len().to_string(),
        };
        let clean = stdout
            .lines()
            .find(|l| l.trim_start().starts_with("clean"))
            .expect("clean row");
        assert_eq!(
            clean.split_whitespace().last(),
            Some(n.as_str()),
            "{extra:?}: {stdout}"
        );
    }
}

/// `rift run` (every stage) on the tiny tree through a preprocessing and robustbench's
/// subset: the session records both under `config.data`, and continuing it with another
/// preprocessing is refused before any compute, naming the setting with both values.
#[test]
fn rift_run_reads_imagenet_with_its_preprocessing_and_records_it() {
    let t = tree();
    let model = t.root.join("tiny_in1k.safetensors");
    let root = t.root.join("imagenet");
    let session = t.root.join("session");
    let k = t.manifest["K"].as_u64().expect("K").to_string();
    let args = |prep: &'static str| -> Vec<String> {
        let mut v: Vec<String> = [
            "run",
            "--checkpoint",
            path_str(&model),
            "--dataset",
            "imagenet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(
            [
                "--data-dir",
                path_str(&root),
                "--session",
                path_str(&session),
            ]
            .map(String::from),
        );
        v.extend(["--preprocess", prep, "--subset", "robustbench"].map(String::from));
        // The list's first K images: only those are in the tree (and decoded).
        v.extend(["--limit".to_string(), k.clone()]);
        v.extend(
            [
                "--adv-split",
                "test",
                "--adv-limit",
                "4",
                "--steps",
                "1",
                "--eps",
                "0.01",
                "--step",
                "0.01",
                "--modules",
                "conv1,linear",
                "--mrc-epochs",
                "1",
                "--epochs",
                "1",
                "--alphas",
                "0,1",
                "--device",
                "cpu",
            ]
            .map(String::from),
        );
        v
    };
    let out = rift(&args("Res224"));
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    let text = std::fs::read_to_string(session.join("session.yaml")).expect("session.yaml");
    let s: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let data = &s["config"]["data"];
    assert_eq!(data["preprocess"].as_str(), Some("Res224"), "{text}");
    assert_eq!(data["subset"].as_str(), Some("robustbench"), "{text}");
    assert_eq!(
        s["baseline"]["n"].as_u64().map(|n| n.to_string()),
        Some(k.clone()),
        "the subset's first {k} images: {text}"
    );

    let out = rift(&args("Res256Crop224"));
    assert_failed(
        &out,
        EXIT_ERROR,
        &["preprocess", "Res224", "Res256Crop224", "--restart-from"],
    );
}
