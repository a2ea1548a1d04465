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
use super::arch::{Activation, ArchSpec, Family};
use super::chain::ChainNet;
use super::layers::{BatchNorm2d, Conv2d, KeyOrder, Linear};
use super::preact_resnet::PreActBlock;
use super::wide_resnet::{group, WideBlock};
use std::collections::HashMap;
use tch::nn;

/// Stage strides of every zoo configuration.
const STRIDES: [i64; 3] = [1, 2, 2];

/// Widths of the stem and of each stage of a spec of these families.
fn widths(spec: &ArchSpec) -> [i64; 4] {
    spec.stage_channels.unwrap_or([16, 16, 32, 64])
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

/// The name of a spec of these families.
pub fn name(spec: &ArchSpec) -> String {
    let family = match spec.family {
        Family::RobustResNet => "robust-resnet",
        _ => "robust-wrn",
    };
    let dots = |v: Vec<String>| v.join(".");
    format!(
        "{family}-{}-{}",
        dots(spec.blocks.iter().map(|b| b.to_string()).collect()),
        dots(widths(spec).iter().map(|c| c.to_string()).collect())
    )
}

/// The family, blocks per stage and widths a name after `robust-` spells (`wrn-…` or
/// `resnet-…`); Err says what is wrong with it.
pub fn parse(rest: &str) -> Result<(Family, Vec<usize>, [i64; 4]), String> {
    let (family, body) = if let Some(b) = rest.strip_prefix("wrn-") {
        (Family::RobustWideResNet, b)
    } else if let Some(b) = rest.strip_prefix("resnet-") {
        (Family::RobustResNet, b)
    } else {
        return Err(
            "expected robust-wrn-D1.D2.D3-C0.C1.C2.C3 or robust-resnet-D1.D2.D3-C0.C1.C2.C3".into(),
        );
    };
    let (depths, chans) = body
        .split_once('-')
        .ok_or("expected blocks per stage, then the four widths: D1.D2.D3-C0.C1.C2.C3")?;
    let blocks: Vec<usize> = depths
        .split('.')
        .map(|d| {
            d.parse()
                .map_err(|_| format!("`{d}` is not a number of blocks"))
        })
        .collect::<Result<_, String>>()?;
    let widths: Vec<i64> = chans
        .split('.')
        .map(|c| c.parse().map_err(|_| format!("`{c}` is not a width")))
        .collect::<Result<_, String>>()?;
    if blocks.len() != 3 || blocks.contains(&0) {
        return Err(format!(
            "three stages of at least one block each, not {depths}"
        ));
    }
    match <[i64; 4]>::try_from(widths) {
        Ok(w) if w.iter().all(|&c| c > 0) => Ok((family, blocks, w)),
        _ => Err(format!(
            "four positive widths (stem and three stages), not {chans}"
        )),
    }
}

/// What a state with a `stem_conv` describes (Ok(None) without one): the family from the
/// head's name (`norm1`: RobustResNet, `bn1`: RobustWideResNet), blocks counted per stage,
/// widths read from the stem and each stage's first `conv1`, and the input channels.
pub type Detected = (Family, Vec<usize>, [i64; 4], i64);

pub fn detect(shapes: &HashMap<String, Vec<usize>>) -> Result<Option<Detected>, String> {
    let Some(stem) = shapes.get("stem_conv.weight") else {
        return Ok(None);
    };
    if stem.len() != 4 {
        return Err(format!(
            "`stem_conv.weight` has shape {stem:?}, expected 4 dimensions"
        ));
    }
    let family = if shapes.contains_key("norm1.weight") {
        Family::RobustResNet
    } else if shapes.contains_key("bn1.weight") {
        Family::RobustWideResNet
    } else {
        return Err("`stem_conv.weight` (robustbench's RobustWideResNet or RobustResNet) but neither head `bn1.weight` nor `norm1.weight`".into());
    };
    let mut blocks = Vec::new();
    let mut channels = [stem[0] as i64, 0, 0, 0];
    for (i, c) in channels.iter_mut().skip(1).enumerate() {
        let n = (0..)
            .take_while(|j| shapes.contains_key(&format!("blocks.{i}.layer.{j}.conv1.weight")))
            .count();
        let first = shapes
            .get(&format!("blocks.{i}.layer.0.conv1.weight"))
            .ok_or_else(|| format!("`stem_conv.weight` but no `blocks.{i}.layer.0.conv1.weight`: robustbench's per-stage networks have three stages"))?;
        blocks.push(n);
        *c = first[0] as i64;
    }
    Ok(Some((family, blocks, channels, stem[1] as i64)))
}
