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

/// RobustWideResNet.
pub fn robust_wide_resnet(
    p: &nn::Path,
    keys: &mut KeyOrder,
    spec: &ArchSpec,
) -> ChainNet<WideBlock> {
    let ch = widths(spec);
    let stem = Conv2d::new(p / "stem_conv", keys, spec.in_channels, ch[0], 3, 1);
    let mut blocks = Vec::new();
    for (i, &n) in spec.blocks.iter().enumerate() {
        let stage = group(p / "blocks" / i, keys, n, ch[i], ch[i + 1], STRIDES[i]);
        for (j, b) in stage.into_iter().enumerate() {
            blocks.push((format!("blocks.{i}.layer.{j}"), b));
        }
    }
    let batchnorm = BatchNorm2d::new(p / "bn1", keys, ch[3]);
    let classifier = Linear::new(p / "fc", keys, spec.feature_dim, spec.num_classes);
    ChainNet {
        stem,
        blocks,
        batchnorm,
        sparse_end: None,
        act: Activation::Relu,
        pool: 8,
        classifier,
    }
}

/// RobustResNet (robust_resnet.py's `PreActResNet`).
pub fn robust_resnet(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> ChainNet<PreActBlock> {
    let ch = widths(spec);
    let stem = Conv2d::new(p / "stem_conv", keys, spec.in_channels, ch[0], 3, 1);
    let mut blocks = Vec::new();
    let mut c_in = ch[0];
    for (i, &n) in spec.blocks.iter().enumerate() {
        let layer = p / "blocks" / i / "layer";
        for j in 0..n {
            let stride = if j == 0 { STRIDES[i] } else { 1 };
            let dims = (c_in, ch[i + 1], stride);
            let block = PreActBlock::new(&layer / j, keys, dims, false, spec.activation);
            blocks.push((format!("blocks.{i}.layer.{j}"), block));
            c_in = ch[i + 1];
        }
    }
    let batchnorm = BatchNorm2d::new(p / "norm1", keys, ch[3]);
    let classifier = Linear::new(p / "fc", keys, spec.feature_dim, spec.num_classes);
    ChainNet {
        stem,
        blocks,
        batchnorm,
        sparse_end: None,
        act: spec.activation,
        pool: 8,
        classifier,
    }
}
