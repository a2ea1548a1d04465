//! AugMix's CIFAR ResNeXt (cifar10|cifar100/corruptions/Hendrycks2020AugMix_ResNeXt:
//! robustbench's `Hendrycks2020AugMixResNeXtNet`, a `CifarResNeXt` of `ResNeXtBottleneck`s
//! with `mu`/`sigma` buffers; its logits through `--zoo` are walked by
//! tests/zoo_coverage.rs): MRC against the published algorithm in PyTorch and `--fast`
//! against the faithful loop on a small configuration of robustbench's own class, a
//! fine-tuned file loading back strictly into it, the table's entries.
mod common;

use common::{path_str, rift_ok, run_python};

/// The stage tests' tiny CIFAR-10 (`dm_fixture`), robustbench's `CifarResNeXt` of depth 11
/// (one block per stage), 2 groups of base width 4, with AugMix's `mu`/`sigma` buffers and
/// non-trivial BatchNorms, as rx.pth; when argv[2] names modules, the published MRC on it.
const PY_MRC: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mrc_ref import print_published_mrc
from reference_models import randomize_bn
from zoo import dm_fixture, zoo_module
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
rx = zoo_module("resnext")

class AugMixResNeXt(rx.CifarResNeXt):
    """robustbench's Hendrycks2020AugMixResNeXtNet at a smaller size."""
    def __init__(self):
        super().__init__(rx.ResNeXtBottleneck, depth=11, num_classes=10, cardinality=2, base_width=4)
        self.register_buffer("mu", torch.tensor([0.5] * 3).view(1, 3, 1, 1))
        self.register_buffer("sigma", torch.tensor([0.5] * 3).view(1, 3, 1, 1))

    def forward(self, x):
        return super().forward((x - self.mu) / self.sigma)

torch.manual_seed(4)
net = AugMixResNeXt()
randomize_bn(net, 4)
net.eval()
torch.save(net.state_dict(), os.path.join(out, "rx.pth"))
if len(sys.argv) > 2:
    print_published_mrc(net, x, y, sys.argv[2])
"#;

/// Every layer of a block with a projection, one of a block without, the stem, the
/// classifier.
const MODULES: &str = "conv_1_3x3,stage_2.0.conv_reduce,stage_2.0.conv_conv,stage_2.0.conv_expand,stage_2.0.downsample.0,stage_3.0.conv_conv,classifier";

#[test]
fn mrc_on_a_resnext_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), MODULES]);
    common::zoo_case::assert_mrc_and_fast(dir.path(), "rx.pth", (MODULES, 7), &[], &reference);
}

/// The fine-tuned file loads strictly into robustbench's class, only the trained layer
/// and (train mode) BatchNorm statistics moved.
const PY_LOADS_BACK: &str = r#"
import sys, os, torch
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
assert sorted(mine) == sorted(orig), "keys differ from robustbench's"
print(" ".join(k for k, v in mine.items() if not torch.equal(orig[k], v)))
"#;

#[test]
fn a_finetuned_resnext_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    run_python(PY_MRC, &[path_str(dir.path())]);
    let (ckpt, saved) = (dir.path().join("rx.pth"), dir.path().join("rx-ft.pth"));
    let changed = common::zoo_case::finetune_loads_back(
        dir.path(),
        (&ckpt, &[]),
        "stage_2.0.conv_conv",
        &saved,
        PY_LOADS_BACK,
    );
    let changed: Vec<&str> = changed.split_whitespace().collect();
    assert!(
        changed.contains(&"stage_2.0.conv_conv.weight"),
        "{changed:?}"
    );
    assert!(
        changed.iter().all(|k| *k == "stage_2.0.conv_conv.weight"
            || k.contains("running_")
            || k.ends_with("num_batches_tracked")),
        "{changed:?}"
    );

    // Told from its keys alone, with the buffers' statistics.
    let json = dir.path().join("inspect.json");
    rift_ok(&[
        "inspect",
        "--checkpoint",
        path_str(&ckpt),
        "--output",
        path_str(&json),
    ]);
    let v = common::read_json(&json);
    assert_eq!(v["arch"], "resnext11-2x4d", "{v}");
    assert_eq!(v["modules"].as_array().unwrap().len(), 3 * 3 + 3 + 2, "{v}");
}

/// Both AugMix entries are supported as robustbench builds them.
#[test]
fn the_resnext_entries_are_supported() {
    let out = rift_ok(&["zoo", "--supported", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for (dataset, classes) in [("cifar10", 10), ("cifar100", 100)] {
        let e = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["dataset"] == dataset && e["name"] == "Hendrycks2020AugMix_ResNeXt")
            .unwrap_or_else(|| panic!("{dataset} missing: {out}"));
        assert_eq!(e["arch"], "resnext29-4x32d", "{e}");
        assert_eq!(e["classes"], classes, "{e}");
        assert_eq!(e["normalize"]["mean"][0], 0.5, "{e}");
    }
}
