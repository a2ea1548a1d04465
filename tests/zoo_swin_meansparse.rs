//! robustbench's MeanSparse Swin-L (Amini2024MeanSparse_Swin-L: `get_sparse_model('swin-l',
//! dataset='imagenet-Linf')`, `Meansparse_swin_L.py`: timm's Swin with four MeanSparse ops
//! per block, in an `ImageNormalizer`), built by robustbench's own factory with random
//! weights and random MeanSparse statistics that really snap (`tests/py/meansparse_swin.py`):
//! rift's logits through `--zoo` against robustbench's; MRC against the published algorithm
//! in PyTorch and `--fast` against the faithful loop on a small network of the file's own
//! class; a fine-tuned file loading back strictly into it.
mod common;

use common::{path_str, run_python};

const ID: &str = "imagenet/Linf/Amini2024MeanSparse_Swin-L";

/// The factory's wrapped Swin-L saved where `--zoo` looks (OUT/zoo), 2 images of 224×224
/// and its logits, every MeanSparse threshold 0 (robustbench's identity branch): with
/// snapping on, a network this deep is chaotic in float32 (PyTorch in float32 and float64
/// differ by 4 % of the logits at threshold 0.5, by 0.1 % at 0.1: rounding flips which
/// activations snap). Snapping itself is checked exactly on the small network below.
const MAKE_ZOO: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from meansparse_swin import build
from tv_resnet import logits_case
torch.set_num_threads(2)
out, id = sys.argv[1], sys.argv[2]
net = build("large", seed=6, threshold=0.0)
path = os.path.join(out, "zoo", id + ".pt")
os.makedirs(os.path.dirname(path), exist_ok=True)
torch.save(net.state_dict(), path)
logits_case(out, "zoo", net, 2, 224, seed=15)
"#;

/// The file's class at 32×32 (`meansparse_swin.py`'s `tiny`, threshold 0.5) as tiny.pth,
/// 4 images and its logits; checked to snap: with every threshold 0 the logits move.
const MAKE_TINY: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from meansparse_swin import build
from tv_resnet import logits_case
out = sys.argv[1]
net = build("tiny", seed=9, threshold=0.5)
torch.save(net.state_dict(), os.path.join(out, "tiny.pth"))
logits_case(out, "tiny", net, 4, 32, seed=16)
x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(16))
with torch.no_grad():
    sparse = net(x)
    for k, v in net.state_dict().items():
        if k.endswith("threshold"):
            v.zero_()
    dense = net(x)
assert (sparse - dense).abs().max() > 1e-2 * sparse.abs().max(), "MeanSparse changes nothing"
"#;

#[test]
fn meansparse_swins_equal_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_ZOO, &[path_str(dir.path()), ID]);
    let d =
        common::zoo_case::zoo_relative_diff(dir.path(), "zoo", ID, "swin-l-p4-w7-224-meansparse");
    eprintln!("MeanSparse Swin-L: max |rift - torch| / max |torch| = {d:e}");
    assert!(d <= 1e-4, "MeanSparse Swin-L: {d}");
    run_python(MAKE_TINY, &[path_str(dir.path())]);
    let tiny = dir.path().join("tiny.pth");
    // MeanSparse and the wrapper's statistics are told from the keys; the image size
    // needs the name.
    let d = common::zoo_case::predict_relative_diff(
        dir.path(),
        "tiny",
        &["--checkpoint", path_str(&tiny), "--arch", TINY],
        TINY,
    );
    eprintln!("snapping: max |rift - torch| / max |torch| = {d:e}");
    assert!(d <= 1e-4, "snapping: {d}");
}

/// The stage tests' tiny CIFAR-10 (`dm_fixture`), the file's class at 32×32 in the
/// factory's wrapper as swin.pth, and, when argv[2] names modules, the published MRC on it.
const PY_MRC: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mrc_ref import print_published_mrc
from zoo import dm_fixture
from meansparse_swin import build
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
# Threshold 0.05: jumps small enough that float rounding moves MRC by well under 2 %
# (at 0.5 PyTorch's own float32 and float64 MRCs differ by up to 8 %).
module = build("tiny", seed=9, threshold=0.05)
torch.save(module.state_dict(), os.path.join(out, "swin.pth"))
if len(sys.argv) > 2:
    print_published_mrc(module, x, y, sys.argv[2], named=module.model)
"#;

const TINY: &str = "swin-dim16-depths2.2-heads2.4-p4-w4-32-meansparse";

/// Every kind of cut, each around MeanSparse ops: the patch embedding, each layer of an
/// unshifted and of a shifted block, the PatchMerging, the classifier.
const MODULES: &str = "patch_embed.proj,layers.0.blocks.0.attn.qkv,layers.0.blocks.1.attn.proj,layers.0.blocks.1.mlp.fc1,layers.0.blocks.1.mlp.fc2,layers.1.downsample.reduction,layers.1.blocks.1.mlp.fc2,head.fc";

#[test]
fn mrc_on_a_meansparse_swin_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), MODULES]);
    let arch = ["--arch", TINY];
    // At most one of the 32 samples may land on the other side of a decision boundary.
    common::zoo_case::assert_mrc_and_fast(dir.path(), "swin.pth", (MODULES, 8), &arch, &reference);
}

/// The fine-tuned file (the wrapper's statistics aside) loads strictly into the file's
/// SwinTransformer, keys in its order (the MeanSparse buffers among them), only the trained
/// layer moved.
const PY_LOADS_BACK: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from meansparse_swin import build
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
net = build("tiny", seed=0).model
mine = {k: v for k, v in mine.items() if not k.startswith("normalize.")}
net.load_state_dict(mine, strict=True)
assert list(mine) == list(net.state_dict()), "key order differs from robustbench's"
print(" ".join(k for k, v in mine.items() if not torch.equal(orig["model." + k], v)))
"#;

#[test]
fn a_finetuned_meansparse_swin_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    run_python(PY_MRC, &[path_str(dir.path())]);
    let (ckpt, saved) = (dir.path().join("swin.pth"), dir.path().join("swin-ft.pth"));
    let model = ["--arch", TINY];
    let changed = common::zoo_case::finetune_loads_back(
        dir.path(),
        (&ckpt, &model),
        "layers.0.blocks.1.mlp.fc2",
        &saved,
        PY_LOADS_BACK,
    );
    let changed: Vec<&str> = changed.split_whitespace().collect();
    assert!(
        changed.contains(&"layers.0.blocks.1.mlp.fc2.weight")
            && changed
                .iter()
                .all(|k| k.starts_with("layers.0.blocks.1.mlp.fc2.")),
        "{changed:?}"
    );
}
