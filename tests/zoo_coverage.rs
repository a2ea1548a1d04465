//! The zoo coverage test (issue 21 §5): it walks the generated table and, for every distinct
//! architecture among the entries rift supports, checks `rift predict` against PyTorch's
//! logits on the network robustbench's own code builds (`tests/py/zoo_coverage.py`: random
//! weights, randomised BatchNorm and MeanSparse statistics). The smallest member of every
//! family is built as published and read by `--zoo ID` alone, so every family's real
//! constructor runs; networks over 15M parameters are otherwise built at a smaller depth
//! and width through the same class and read with the flags `--zoo` stands for, the
//! architecture detected (or named, for the hypersphere WideResNet, whose keys are a
//! plain one's). It prints the entries supported per leaderboard. The timm families (ViT,
//! ConvNeXt, Swin, XCiT, robustbench's timm-registered AlexNet) are not walked here yet:
//! tests/zoo_vit.rs, tests/zoo_convnext.rs, tests/zoo_swin.rs, tests/zoo_xcit.rs and
//! tests/zoo_alexnet.rs check their entries through timm's and robustbench's real constructors.
mod common;

use common::{max_abs_diff, path_str, rift_ok};
use rift::engine::zoo;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Largest |rift − PyTorch| relative to the largest |logit|.
const TOLERANCE: f64 = 1e-4;

fn predict_args(dir: &Path, stem: &str, case: &Value) -> Vec<String> {
    let id = case["id"].as_str().unwrap();
    let at = |suffix: &str| path_str(&dir.join(format!("{stem}.{suffix}"))).to_string();
    let mut args: Vec<String> = vec!["predict".into()];
    match case["reduced_file"].as_str() {
        None => args.extend([
            "--zoo".into(),
            id.into(),
            "--model-dir".into(),
            path_str(&dir.join("models")).into(),
        ]),
        Some(file) => {
            let entry = zoo::lookup(id).unwrap();
            args.extend(["--checkpoint".into(), file.into()]);
            for (flag, value) in entry.flags() {
                let value = match flag {
                    "--arch" => case["reduced_arch"].as_str().unwrap_or("auto").into(),
                    _ => value,
                };
                args.extend([flag.into(), value]);
            }
        }
    }
    args.extend([
        "--input".into(),
        at("in.npy"),
        "--output".into(),
        at("rift.npy"),
        "--device".into(),
        "cpu".into(),
    ]);
    args
}

#[test]
fn every_supported_architecture_of_the_table_predicts_as_robustbench_builds_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::python())
        .args(["tests/py/zoo_coverage.py", path_str(dir.path())])
        .output()
        .expect("cannot start the venv python; run .ci/bootstrap");
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    let cases: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let entries = zoo::entries().unwrap();
    // The timm families' entries are walked by their own tests (tests/zoo_vit.rs,
    // tests/zoo_convnext.rs, tests/zoo_swin.rs, tests/zoo_xcit.rs, tests/zoo_alexnet.rs,
    // tests/zoo_ra_resnet.rs (robustbench's ImageNet RaResNet, built with torchvision's blocks): timm's and
    // robustbench's real constructors through `--zoo`).
    let timm = |e: &&zoo::ZooEntry| {
        matches!(
            e.family.as_deref(),
            Some("vit" | "convnext" | "swin" | "xcit" | "alexnet" | "ra-resnet")
        )
    };
    let supported: Vec<&zoo::ZooEntry> = entries
        .iter()
        .filter(|e| e.is_supported())
        .filter(|e| !timm(e))
        .collect();
    let mut architectures: Vec<&str> = supported.iter().map(|e| e.architecture.as_str()).collect();
    architectures.sort();
    architectures.dedup();
    assert_eq!(
        cases.len(),
        architectures.len(),
        "one network per architecture"
    );

    let mut failures = Vec::new();
    let mut published = std::collections::BTreeSet::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let stem = id.replace('/', "~");
        rift_ok(&predict_args(dir.path(), &stem, case));
        let d = f64::from(max_abs_diff(
            &dir.path().join(format!("{stem}.rift.npy")),
            &dir.path().join(format!("{stem}.ref.npy")),
        ));
        let rel = d / case["ref_scale"].as_f64().unwrap().max(1e-12);
        let how = match case["reduced_file"] {
            Value::Null => {
                published.insert(case["family"].as_str().unwrap().to_string());
                "as published".to_string()
            }
            _ => format!(
                "reduced to {:.1}M parameters (published {:.1}M)",
                case["params"].as_f64().unwrap() / 1e6,
                case["published_params"].as_f64().unwrap() / 1e6
            ),
        };
        eprintln!(
            "{id} ({}): {how}, relative max diff {rel:.1e}",
            case["family"]
        );
        if rel > TOLERANCE {
            failures.push(format!("{id}: relative max diff {rel:.2e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");

    // Every family rift supports ran its published constructor at least once.
    let families: std::collections::BTreeSet<String> =
        supported.iter().filter_map(|e| e.family.clone()).collect();
    assert_eq!(published, families, "families built as published");

    for count in zoo::counts(&entries.iter().collect::<Vec<_>>()) {
        eprintln!(
            "{}/{}: {} of {} entries supported",
            count.dataset, count.threat, count.supported, count.total
        );
    }
}
