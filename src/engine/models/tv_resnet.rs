//! torchvision's ImageNet ResNets (`torchvision.models.resnet18/34/50/101/152`,
//! `wide_resnet50_2/101_2`, `resnet50(width_per_group=…)`): a 7×7 stride-2 stem `conv1`,
//! `bn1`, ReLU, a 3×3 stride-2 max-pool, `layer1..4` of BasicBlocks or Bottlenecks (v1.5:
//! the stride on the 3×3 `conv2`), `downsample.0|1` projections, global average pooling
//! and `fc`. Keys are torchvision's `state_dict()` keys, so a file rift writes loads back
//! into torchvision. The blocks are pytorch-cifar's (`resnet.rs`) under torchvision's names
//! and widths: both run the same ops in the same order.
use super::arch::{ArchSpec, Family};
use super::chain::{staged_blocks, stem_max_pool, Chain, CutBlock, Head, NormAct, Pool, Stem};
use super::layers::{BatchNorm2d, Conv2d, KeyOrder, Linear};
use super::resnet::{Block, BlockStyle};
use super::Activation;
use tch::{nn, Tensor};

/// The stem's width and the first stage's planes: fixed in torchvision (`self.inplanes = 64`).
const STEM: i64 = 64;

pub struct TvResNet {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    layers: Vec<Vec<Block>>,
    fc: Linear,
}

impl TvResNet {
    /// `spec.blocks`: blocks per stage; `spec.width`: torchvision's `width_per_group`
    /// (64, or 128 for the wide ResNets; BasicBlocks only take 64).
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Self {
        let style = BlockStyle {
            bottleneck: spec.family == Family::TvResNetBottleneck,
            shortcut: "downsample",
            width_per_group: spec.width,
        };
        let conv1 = Conv2d::new(p / "conv1", keys, spec.in_channels, STEM, 7, 2);
        let bn1 = BatchNorm2d::new(p / "bn1", keys, STEM);
        let expansion = if style.bottleneck { 4 } else { 1 };
        let mut c_in = STEM;
        let mut layers = Vec::new();
        for (i, &n) in spec.blocks.iter().enumerate() {
            let planes = STEM << i;
            let stage = p / format!("layer{}", i + 1);
            let blocks = (0..n)
                .map(|j| {
                    let stride = if i > 0 && j == 0 { 2 } else { 1 };
                    let block = Block::new(&stage / j, keys, c_in, planes, stride, style);
                    c_in = planes * expansion;
                    block
                })
                .collect();
            layers.push(blocks);
        }
        let fc = Linear::new(p / "fc", keys, c_in, spec.num_classes);
        TvResNet {
            conv1,
            bn1,
            layers,
            fc,
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let stem = self.conv1.forward_bn(&self.bn1, x, train).relu();
        let mut out = stem_max_pool(&stem);
        for block in self.layers.iter().flatten() {
            out = block.forward(&out, train);
        }
        self.fc.forward(&Pool::Global.apply(&out))
    }

    /// Classifier input width: the last block's channels for any input (global pooling),
    /// None only for an empty image.
    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        if h < 1 || w < 1 {
            return None;
        }
        let last = self.layers.iter().flatten().last();
        Some(last.map_or(STEM, Block::out_channels))
    }

    /// This network as MRC's fast path sees it: stem conv1 → bn1 → ReLU → max-pool,
    /// `layerX.Y` blocks, global average pooling, `fc`.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            stem: Stem::Conv {
                conv: &self.conv1,
                norm: Some(NormAct {
                    bn: &self.bn1,
                    act: Activation::Relu.into(),
                    sparse: None,
                }),
                max_pool: true,
            },
            blocks: staged_blocks(&self.layers, |i, j| format!("layer{}.{j}", i + 1)),
            head: Head::Pooled {
                norm: None,
                pool: Pool::Global,
            },
            classifier: &self.fc,
        }
    }
}

#[cfg(test)]
mod name_tests {
    use super::super::arch::ArchSpec;

    /// Every name parses to a spec whose canonical name is itself.
    #[test]
    fn canonical_names_read_back() {
        for name in [
            "tv-resnet18",
            "tv-resnet34",
            "tv-resnet50",
            "tv-resnet152",
            "tv-wide-resnet50-2",
            "tv-wide-resnet101-2",
            "tv-resnet50-w32",
            "tv-resnet-1.1.1.1",
            "tv-resnet-bottleneck-1.1.2.1",
            "tv-resnet-bottleneck-1.1.1.1-w16",
        ] {
            let spec = ArchSpec::parse(name, None, 10, 3, (32, 32)).unwrap();
            assert_eq!(spec.name(), name);
            assert_eq!(spec.feature_dim, spec.last_channels(), "{name}");
        }
        let wide = ArchSpec::parse("tv-resnet50-w128", None, 1000, 3, (224, 224)).unwrap();
        assert_eq!(wide.name(), "tv-wide-resnet50-2");
    }
}
