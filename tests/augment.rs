//! Augmentation (random crop with reflect padding, horizontal flip) of a real CIFAR set,
//! checked against PyTorch's `F.pad(x, 4, mode="reflect")`.
mod common;

use common::dataset_fixtures as fixtures;
use rift::engine::data::*;

/// Augmentation of a real CIFAR set checked against PyTorch: every output image is a
/// 32×32 window of `F.pad(x, 4, mode="reflect")` of the very image its index names
/// (mirrored or not), and over the draws both flips occur near half the time.
#[test]
fn augmentation_on_a_real_set() {
    let fx = fixtures(&["cifar"]);
    let set = load_split(DatasetKind::Cifar10, &fx.path().join("c10py"), Split::Train).unwrap();
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let aug = Augmenter::for_dataset(DatasetKind::Cifar10, 32);
    let (mut out, mut sources, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
    for _epoch in 0..40 {
        for b in shuffled_batches(set.n, 4, &mut rng) {
            aug.augment_batch(&set, &b, &mut rng, &mut out);
            assert_eq!(out.len(), b.len() * 3072);
            for &i in &b {
                sources.extend_from_slice(set.image(i));
            }
            outputs.extend_from_slice(&out);
        }
    }
    let src = fx.path().join("aug_sources.u8");
    let dst = fx.path().join("aug_outputs.u8");
    std::fs::write(&src, &sources).unwrap();
    std::fs::write(&dst, &outputs).unwrap();
    let verdict = common::run_python(
        r#"
import sys, numpy as np, torch, torch.nn.functional as F
src = torch.from_numpy(np.fromfile(sys.argv[1], np.uint8).reshape(-1, 3, 32, 32).astype(np.float32))
out = torch.from_numpy(np.fromfile(sys.argv[2], np.uint8).reshape(-1, 3, 32, 32).astype(np.float32))
padded = F.pad(src, (4, 4, 4, 4), mode="reflect")
flips = 0
for k in range(len(out)):
    found = None
    for flip in (False, True):
        want = out[k].flip(-1) if flip else out[k]
        for oy in range(9):
            for ox in range(9):
                if torch.equal(padded[k, :, oy:oy + 32, ox:ox + 32], want):
                    found = flip
    assert found is not None, f"output {k} is no reflect-padded window of its source"
    flips += found
print(len(out), flips)
"#,
        &[common::path_str(&src), common::path_str(&dst)],
    );
    let counts: Vec<f64> = verdict
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(counts[0] as usize, sources.len() / 3072);
    let rate = counts[1] / counts[0];
    assert!(
        (0.3..=0.7).contains(&rate),
        "flip rate {rate} over {} images",
        counts[0]
    );
}
