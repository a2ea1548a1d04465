//! Helpers of the stage tests (`pipeline_*.rs`, `train_at.rs`): `rift finetune` of the
//! demo model, and PyTorch's view of the checkpoints rift writes.
use super::{path_str, read_json, rift_ok, run_python, strings, DEMO_MODEL};
use serde_json::Value;
use std::path::Path;

/// Which keys of two .safetensors checkpoints differ (bit for bit), as JSON.
const PY_DIFF: &str = r#"
import sys, json, numpy as np
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
def same(x, y):
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
diff = sorted(k for k in a if k in b and not same(a[k], b[k]))
print(json.dumps({"only_a": sorted(set(a) - set(b)), "only_b": sorted(set(b) - set(a)),
                  "diff": diff, "n": len(a)}))
"#;

/// Strict load of a ResNet18 state (.pth via weights_only, or .safetensors) into the
/// reference model; argv: file, width, in_channels, input size; with a 5th argument, the
/// entries must equal that file's bit for bit.
pub const PY_LOAD_STRICT: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build
from safetensors.torch import load_file
def load(p):
    return load_file(p) if p.endswith(".safetensors") else torch.load(p, weights_only=True)
sd = load(sys.argv[1])
net = build("resnet18", 10, int(sys.argv[3]), width=int(sys.argv[2]), input_size=int(sys.argv[4]))
net.load_state_dict(sd, strict=True)
if len(sys.argv) > 5:
    other = load(sys.argv[5])
    assert set(other) == set(sd)
    for k in sd:
        assert torch.equal(sd[k], other[k]), k
print(len(sd))
"#;

/// Keys that differ between two checkpoints; both must hold the same keys.
pub fn differing_keys(a: &Path, b: &Path) -> Vec<String> {
    let v: Value = serde_json::from_str(&run_python(PY_DIFF, &[path_str(a), path_str(b)])).unwrap();
    assert!(
        strings(&v["only_a"]).is_empty() && strings(&v["only_b"]).is_empty(),
        "{} and {} hold different keys: {v}",
        a.display(),
        b.display()
    );
    strings(&v["diff"])
}

/// `rift finetune` of the demo model on `data`, 1 epoch; returns the ft.json result.
pub fn finetune(data: &Path, save: &Path, output: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(data),
        "--epochs",
        "1",
        "--save",
        path_str(save),
        "--output",
        path_str(output),
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    rift_ok(&args);
    read_json(output)
}
