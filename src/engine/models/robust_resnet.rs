//! robustbench's per-stage networks of Huang et al.: `RobustWideResNet`
//! (`robust_wide_resnet.py`, "Exploring Architectural Ingredients of Adversarially Robust
//! Deep Neural Networks", 2021: Huang2021Exploring) and `PreActResNet` of
//! `robust_resnet.py` ("Revisiting Residual Networks for Adversarial Robustness", 2022:
//! Huang2022Revisiting_WRN-A4). Both are a 3×3 `stem_conv`, three stages
//! `blocks.{i}.layer.{j}` with their own depth and width (strides 1, 2, 2), a final
//! BatchNorm and activation, global average pooling and `fc`:
//! - RobustWideResNet's blocks are the TRADES WideResNet's (`wide_resnet.rs`: `bn1`,
//!   `conv1`, `bn2`, `conv2`, `convShortcut` where widths differ), ReLU, head `bn1`;
//! - RobustResNet's are pre-activation blocks (`preact_resnet.rs`: `bn1`, `conv1`, `bn2`,
//!   `conv2`, `shortcut.0` where shapes change) with a chosen activation (the zoo's WRN-A4:
//!   SiLU), head `norm1`; with `pre_process` it keeps CIFAR-10's statistics as `mu`/`sigma`
//!   buffers, which rift's `--normalize auto` reads from the file.
//!
//! Names: `robust-wrn-D1.D2.D3-C0.C1.C2.C3` and `robust-resnet-D1.D2.D3-C0.C1.C2.C3`, blocks
//! per stage and the widths of the stem and the three stages (the zoo's
//! `robust-wrn-5.5.5-16.320.640.512` and `robust-resnet-27.28.13-16.160.448.384`). Only
//! robustbench's configurations are built: 3×3 kernels, basic blocks, BatchNorm (its
//! `robust_res_block`, other kernel sizes and normalisations are in no zoo entry).
//!
//! Global average pooling is `avg_pool2d(·, 8)`, which equals it on the 32×32 inputs these
//! networks are trained on (rift's other CIFAR families pool the same way).
use super::arch::{Activation, ArchSpec};
use super::chain::ChainNet;
use super::layers::{BatchNorm2d, Conv2d, KeyOrder, Linear};
use super::preact_resnet::PreActBlock;
use super::robust_config::DEFAULT_CHANNELS;
use super::wide_resnet::{group, WideBlock};
use tch::nn;

/// Stage strides of every zoo configuration.
const STRIDES: [i64; 3] = [1, 2, 2];

/// Widths of the stem and of each stage of a spec of these families.
fn widths(spec: &ArchSpec) -> [i64; 4] {
    spec.stage_channels.unwrap_or(DEFAULT_CHANNELS)
}

/// The networks' common frame: `stem_conv`, the blocks `stage(keys, i, n, c_in, c_out)`
/// builds for each stage (named `blocks.{i}.layer.{j}`), the head BatchNorm `head` with
/// `act`, `fc`; created in that order, which is robustbench's key order.
fn staged<B>(
    p: &nn::Path,
    keys: &mut KeyOrder,
    spec: &ArchSpec,
    (head, act): (&str, Activation),
    mut stage: impl FnMut(&mut KeyOrder, usize, usize, i64, i64) -> Vec<B>,
) -> ChainNet<B> {
    let ch = widths(spec);
    let stem = Conv2d::new(p / "stem_conv", keys, spec.in_channels, ch[0], 3, 1);
    let mut blocks = Vec::new();
    for (i, &n) in spec.blocks.iter().enumerate() {
        for (j, b) in stage(keys, i, n, ch[i], ch[i + 1]).into_iter().enumerate() {
            blocks.push((format!("blocks.{i}.layer.{j}"), b));
        }
    }
    let batchnorm = BatchNorm2d::new(p / head, keys, ch[3]);
    let classifier = Linear::new(p / "fc", keys, spec.feature_dim, spec.num_classes);
    ChainNet {
        stem,
        blocks,
        batchnorm,
        sparse_end: None,
        act,
        pool: 8,
        classifier,
    }
}

/// RobustWideResNet.
pub fn robust_wide_resnet(
    p: &nn::Path,
    keys: &mut KeyOrder,
    spec: &ArchSpec,
) -> ChainNet<WideBlock> {
    let head = ("bn1", Activation::Relu);
    staged(p, keys, spec, head, |keys, i, n, c_in, c_out| {
        group(p / "blocks" / i, keys, n, (c_in, c_out), STRIDES[i], None)
    })
}

/// RobustResNet (robust_resnet.py's `PreActResNet`).
pub fn robust_resnet(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> ChainNet<PreActBlock> {
    let head = ("norm1", spec.activation);
    staged(p, keys, spec, head, |keys, i, n, c_in, c_out| {
        let layer = p / "blocks" / i / "layer";
        (0..n)
            .map(|j| {
                let (c, stride) = if j == 0 {
                    (c_in, STRIDES[i])
                } else {
                    (c_out, 1)
                };
                PreActBlock::new(&layer / j, keys, (c, c_out, stride), false, spec.activation)
            })
            .collect()
    })
}
