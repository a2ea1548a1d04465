//! `rift finetune` checked from outside with PyTorch: it changes only the chosen module
//! (and BatchNorm statistics unless frozen), `lowest:K` takes an MRC result's K lowest
//! modules, and bad module names fail cleanly. Fine-tuning reads a tiny MNIST copy of the
//! bundled demo (128 training digits, 64 test digits, drawn at random: the demo files are
//! sorted by class) so the file stays fast on two CPU cores.
mod common;

use common::stages::{differing_keys, finetune};
use common::{
    assert_fails_cleanly, path_str, read_json, rift, rift_ok, strings, tiny_mnist, DEMO_MODEL,
};
use std::path::Path;

fn is_bn_stat(k: &str) -> bool {
    k.ends_with(".running_mean")
        || k.ends_with(".running_var")
        || k.ends_with(".num_batches_tracked")
}

#[test]
fn finetune_changes_only_the_chosen_module_and_bn_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 64);
    let demo = Path::new(DEMO_MODEL);

    // Default: the module trains, every BN's running statistics update (train mode).
    let ft = t.join("ft.safetensors");
    let v = finetune(
        &data,
        &ft,
        &t.join("ft.json"),
        &["--layer", "layer2.1.conv2"],
    );
    let diff = differing_keys(demo, &ft);
    for k in &diff {
        assert!(
            k == "layer2.1.conv2.weight" || is_bn_stat(k),
            "{k} changed, but only layer2.1.conv2 and BN statistics may: {diff:?}"
        );
    }
    assert!(
        diff.iter().any(|k| k == "layer2.1.conv2.weight"),
        "the chosen module did not change"
    );
    assert!(
        diff.iter().any(|k| k.ends_with(".running_mean"))
            && diff.iter().any(|k| k.ends_with(".running_var")),
        "BN running statistics must update in train mode (SPEC.md §2): {diff:?}"
    );
    // ft.json
    assert_eq!(strings(&v["layers"]), ["layer2.1.conv2"]);
    assert_eq!(v["select_on"], "val");
    assert_eq!(v["freeze_bn_stats"], false);
    assert_eq!(v["trained_params"], 16 * 16 * 9);
    let losses = v["iter_losses"].as_array().expect("iter_losses");
    assert!(!losses.is_empty() && losses.iter().all(|l| l.as_f64().unwrap().is_finite()));
    let log = v["epochs_log"].as_array().expect("epochs_log");
    assert_eq!(log.len(), 1);
    for field in ["train_acc", "val_acc", "test_acc"] {
        let a = log[0][field]
            .as_f64()
            .unwrap_or_else(|| panic!("epochs_log[0].{field}: {}", log[0]));
        assert!((0.0..=100.0).contains(&a), "{field} = {a}");
    }
    assert_eq!(v["best_epoch"], 0);
    // One epoch over the training part (128 minus the validation hold-out) at batch 128.
    let train_n = 128 - v["val_size"].as_u64().unwrap() as usize;
    assert_eq!(
        losses.len(),
        train_n.div_ceil(128),
        "one loss per iteration"
    );

    // --freeze-bn-stats: the module's weight is the only difference.
    let frozen = t.join("frozen.safetensors");
    let v = finetune(
        &data,
        &frozen,
        &t.join("frozen.json"),
        &["--layer", "layer2.1.conv2", "--freeze-bn-stats"],
    );
    assert_eq!(v["freeze_bn_stats"], true);
    assert_eq!(differing_keys(demo, &frozen), ["layer2.1.conv2.weight"]);

    // A Linear module trains its weight and its bias.
    let lin = t.join("linear.safetensors");
    let v = finetune(&data, &lin, &t.join("linear.json"), &["--layer", "linear"]);
    assert_eq!(v["trained_params"], 64 * 10 + 10);
    let diff = differing_keys(demo, &lin);
    for k in &diff {
        assert!(
            k.starts_with("linear.") || is_bn_stat(k),
            "{k} changed: {diff:?}"
        );
    }
    assert!(
        diff.iter().any(|k| k == "linear.weight") && diff.iter().any(|k| k == "linear.bias"),
        "linear weight and bias should both train: {diff:?}"
    );

    // An unknown module fails, listing the valid names.
    let out = rift(&[
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(&data),
        "--layer",
        "nope",
        "--epochs",
        "1",
        "--save",
        path_str(&t.join("nope.safetensors")),
        "--device",
        "cpu",
    ]);
    assert_fails_cleanly(
        &out,
        "--layer nope",
        &["nope", "layer2.1.conv2", "layer4.1.conv2", "linear"],
    );
    assert!(!t.join("nope.safetensors").exists());

    // lowest:2 without an MRC result fails cleanly; with one it takes its two lowest modules.
    let out = rift(&[
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(&data),
        "--layer",
        "lowest:2",
        "--save",
        path_str(&t.join("x.safetensors")),
        "--device",
        "cpu",
    ]);
    assert_fails_cleanly(
        &out,
        "--layer lowest:2 without --mrc-result",
        &["--mrc-result"],
    );
    let mrc_json = t.join("mrc.json");
    rift_ok(&[
        "mrc",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--modules",
        "conv1,linear,layer1.0.conv1",
        "--adv-limit",
        "64",
        "--steps",
        "2",
        "--eps",
        "0.1",
        "--step",
        "0.05",
        "--mrc-epochs",
        "2",
        "--output",
        path_str(&mrc_json),
        "--device",
        "cpu",
    ]);
    let m = read_json(&mrc_json);
    let ranked: Vec<String> = m["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ranked.len(), 3);
    let low = t.join("low.safetensors");
    let v = finetune(
        &data,
        &low,
        &t.join("low.json"),
        &[
            "--layer",
            "lowest:2",
            "--mrc-result",
            path_str(&mrc_json),
            "--freeze-bn-stats",
        ],
    );
    assert_eq!(
        strings(&v["layers"]),
        ranked[..2],
        "lowest:2 = the two lowest-MRC modules"
    );
    let mut want: Vec<String> = ranked[..2].iter().map(|n| format!("{n}.weight")).collect();
    if ranked[..2].iter().any(|n| n == "linear") {
        want.push("linear.bias".into());
    }
    want.sort();
    assert_eq!(differing_keys(demo, &low), want);
    // lowest:K beyond the result's size names it.
    let out = rift(&[
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(&data),
        "--layer",
        "lowest:4",
        "--mrc-result",
        path_str(&mrc_json),
        "--save",
        path_str(&t.join("x.safetensors")),
        "--device",
        "cpu",
    ]);
    assert_fails_cleanly(
        &out,
        "--layer lowest:4 of a 3-module result",
        &["mrc.json", "3 modules"],
    );
}
