//! ResNet in the pytorch-cifar style (kuangliu/pytorch-cifar `models/resnet.py`, the code
//! the RiFT authors used): a 3×3 stem without max-pool, four stages, `avg_pool2d(·, 4)`
//! and a `linear` classifier. Keys: `conv1`, `bn1`, `layerX.Y.conv1|bn1|conv2|bn2[|conv3|bn3]`,
//! `layerX.Y.shortcut.0|1`, `linear`.
use super::arch::{Activation, ArchSpec, Family};
use super::chain::{pool_flat, staged_blocks, Chain, CutBlock, Head, NormAct, Pool, Stem};
use super::layers::{pooled, BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use tch::{nn, Tensor};

/// How a family names and sizes its residual blocks: pytorch-cifar's (`shortcut`, inner
/// width = planes) and torchvision's (`downsample`, a Bottleneck's inner width
/// planes·width_per_group/64) run the same ops in the same order.
#[derive(Clone, Copy)]
pub(super) struct BlockStyle {
    pub bottleneck: bool,
    /// The projection shortcut's name in the state dict.
    pub shortcut: &'static str,
    /// torchvision's `width_per_group` (64 everywhere but the wide Bottlenecks).
    pub width_per_group: i64,
}

impl BlockStyle {
    fn expansion(self) -> i64 {
        if self.bottleneck {
            4
        } else {
            1
        }
    }
}

pub(super) struct Block {
    style: BlockStyle,
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    /// Bottleneck only.
    conv3: Option<(Conv2d, BatchNorm2d)>,
    shortcut: Option<(Conv2d, BatchNorm2d)>,
}

impl Block {
    /// A block of `c_in` input channels and `planes` (its output has `planes`·expansion);
    /// the stride sits on the 3×3 convolution (`conv2` in a Bottleneck: torchvision's v1.5).
    pub(super) fn new(
        p: nn::Path,
        keys: &mut KeyOrder,
        c_in: i64,
        planes: i64,
        stride: i64,
        style: BlockStyle,
    ) -> Self {
        let expansion = style.expansion();
        let (conv1, bn1, conv2, bn2, conv3) = if style.bottleneck {
            let mid = planes * style.width_per_group / 64;
            let conv1 = Conv2d::new(&p / "conv1", keys, c_in, mid, 1, 1);
            let bn1 = BatchNorm2d::new(&p / "bn1", keys, mid);
            let conv2 = Conv2d::new(&p / "conv2", keys, mid, mid, 3, stride);
            let bn2 = BatchNorm2d::new(&p / "bn2", keys, mid);
            let conv3 = Conv2d::new(&p / "conv3", keys, mid, planes * 4, 1, 1);
            let bn3 = BatchNorm2d::new(&p / "bn3", keys, planes * 4);
            (conv1, bn1, conv2, bn2, Some((conv3, bn3)))
        } else {
            let conv1 = Conv2d::new(&p / "conv1", keys, c_in, planes, 3, stride);
            let bn1 = BatchNorm2d::new(&p / "bn1", keys, planes);
            let conv2 = Conv2d::new(&p / "conv2", keys, planes, planes, 3, 1);
            let bn2 = BatchNorm2d::new(&p / "bn2", keys, planes);
            (conv1, bn1, conv2, bn2, None)
        };
        let shortcut = if stride != 1 || c_in != expansion * planes {
            let sc = &p / style.shortcut;
            let conv = Conv2d::new(&sc / "0", keys, c_in, expansion * planes, 1, stride);
            let bn = BatchNorm2d::new(&sc / "1", keys, expansion * planes);
            Some((conv, bn))
        } else {
            None
        };
        Block {
            style,
            conv1,
            bn1,
            conv2,
            bn2,
            conv3,
            shortcut,
        }
    }
}

pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    layers: Vec<Vec<Block>>,
    pub linear: Linear,
}

impl ResNet {
    /// `spec.blocks`: blocks per stage ([2,2,2,2] = ResNet18); `spec.width`: channels of
    /// the first stage (64 as published); `spec.feature_dim`: the classifier's input width.
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Self {
        let style = BlockStyle {
            bottleneck: spec.family == Family::ResNetBottleneck,
            shortcut: "shortcut",
            width_per_group: 64,
        };
        let (blocks, width, in_channels) = (&spec.blocks, spec.width, spec.in_channels);
        let expansion = style.expansion();
        let conv1 = Conv2d::new(p / "conv1", keys, in_channels, width, 3, 1);
        let bn1 = BatchNorm2d::new(p / "bn1", keys, width);
        let mut c_in = width;
        let mut layers = Vec::new();
        for (i, &n) in blocks.iter().enumerate() {
            let planes = width << i;
            let stage = p / format!("layer{}", i + 1);
            let mut stage_blocks = Vec::new();
            for j in 0..n {
                let stride = if i > 0 && j == 0 { 2 } else { 1 };
                stage_blocks.push(Block::new(&stage / j, keys, c_in, planes, stride, style));
                c_in = planes * expansion;
            }
            layers.push(stage_blocks);
        }
        let linear = Linear::new(p / "linear", keys, spec.feature_dim, spec.num_classes);
        ResNet {
            conv1,
            bn1,
            layers,
            linear,
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.conv1.forward_bn(&self.bn1, x, train).relu();
        for stage in &self.layers {
            for block in stage {
                out = block.forward(&out, train);
            }
        }
        self.linear.forward(&pool_flat(&out, 4))
    }

    /// Classifier input width for an `h`×`w` input, None if the input is too small.
    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        let (mut sh, mut sw) = (self.conv1.out_size(h), self.conv1.out_size(w));
        let mut channels = self.bn1.weight.size()[0];
        for block in self.layers.iter().flatten() {
            sh = block.out_size(sh);
            sw = block.out_size(sw);
            channels = block.out_channels();
        }
        Some(channels * pooled(sh, 4)? * pooled(sw, 4)?)
    }
}

impl Block {
    pub(super) fn out_channels(&self) -> i64 {
        match &self.conv3 {
            Some((_, bn3)) => bn3.weight.size()[0],
            None => self.bn2.weight.size()[0],
        }
    }

    /// Whether `leaf` is the projection shortcut's convolution (`shortcut.0`, `downsample.0`).
    fn is_shortcut_conv(&self, leaf: &str) -> bool {
        self.shortcut.is_some() && leaf.strip_prefix(self.style.shortcut) == Some(".0")
    }
}

/// Caching for MRC's fast path (eval mode only): `prepare` computes, from a block's input,
/// every tensor the block's output needs that does not depend on `leaf`; `resume` finishes
/// the block from them with the same ops in the same order as `forward`.
impl CutBlock for Block {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.conv1.forward_bn(&self.bn1, x, train).relu();
        out = self.conv2.forward_bn(&self.bn2, &out, train);
        if let Some((conv3, bn3)) = &self.conv3 {
            out = conv3.forward_bn(bn3, &out.relu(), train);
        }
        let short = match &self.shortcut {
            Some((conv, bn)) => conv.forward_bn(bn, x, train),
            None => x.shallow_clone(),
        };
        (out + short).relu()
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.conv1.info());
        out.push(self.conv2.info());
        if let Some((c, _)) = &self.conv3 {
            out.push(c.info());
        }
        if let Some((c, _)) = &self.shortcut {
            out.push(c.info());
        }
    }

    fn out_size(&self, s: i64) -> i64 {
        self.conv2.out_size(self.conv1.out_size(s))
    }

    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let short = || match &self.shortcut {
            Some((conv, bn)) => conv.forward_bn(bn, x, false),
            None => x.shallow_clone(),
        };
        let h1 = || self.conv1.forward_bn(&self.bn1, x, false).relu();
        Some(match leaf {
            "conv1" => vec![x.shallow_clone()],
            "conv2" => vec![h1(), short()],
            "conv3" if self.conv3.is_some() => {
                vec![
                    self.conv2.forward_bn(&self.bn2, &h1(), false).relu(),
                    short(),
                ]
            }
            _ if self.is_shortcut_conv(leaf) => {
                let mut main = self.conv2.forward_bn(&self.bn2, &h1(), false);
                if let Some((conv3, bn3)) = &self.conv3 {
                    main = conv3.forward_bn(bn3, &main.relu(), false);
                }
                vec![main, x.shallow_clone()]
            }
            _ => return None,
        })
    }

    fn resume(&self, leaf: &str, c: &[Tensor]) -> Tensor {
        match leaf {
            "conv1" => self.forward(&c[0], false),
            "conv2" => {
                let mut out = self.conv2.forward_bn(&self.bn2, &c[0], false);
                if let Some((conv3, bn3)) = &self.conv3 {
                    out = conv3.forward_bn(bn3, &out.relu(), false);
                }
                (out + &c[1]).relu()
            }
            "conv3" => match &self.conv3 {
                Some((conv3, bn3)) => (conv3.forward_bn(bn3, &c[0], false) + &c[1]).relu(),
                None => unreachable_leaf(),
            },
            _ => match &self.shortcut {
                Some((conv, bn)) => (&c[0] + conv.forward_bn(bn, &c[1], false)).relu(),
                None => unreachable_leaf(),
            },
        }
    }
}

/// `prepare` returned None for leaves a block lacks, so `resume` never sees them.
fn unreachable_leaf() -> Tensor {
    Tensor::new()
}

impl ResNet {
    /// This network as MRC's fast path sees it (`chain.rs`): stem conv1 → bn1 → ReLU,
    /// `layerX.Y` blocks, `avg_pool2d(·, 4)`, `linear`.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            stem: Stem::Conv {
                conv: &self.conv1,
                norm: Some(NormAct {
                    bn: &self.bn1,
                    act: Activation::Relu.into(),
                    sparse: None,
                }),
                max_pool: false,
            },
            blocks: staged_blocks(&self.layers, |i, j| format!("layer{}.{j}", i + 1)),
            head: Head::Pooled {
                norm: None,
                pool: Pool::Avg(4),
            },
            classifier: &self.linear,
        }
    }
}
