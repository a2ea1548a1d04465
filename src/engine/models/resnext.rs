//! AugMix's CIFAR ResNeXt (robustbench's `resnext.py`: `CifarResNeXt` of
//! `ResNeXtBottleneck`s; `resnext_config.rs` names it) with its state-dict keys in its
//! order: `conv_1_3x3` (3×3, 64) → `bn_1` → ReLU; stages `stage_1..3` (planes 64/128/256,
//! strides 1/2/2) of blocks `conv_reduce` (1×1) → `bn_reduce` → ReLU → `conv_conv` (3×3 in
//! `cardinality` groups, the stride) → `bn` → ReLU → `conv_expand` (1×1, ×4) → `bn_expand`,
//! plus `downsample.0|1` (1×1 conv + BatchNorm) on each stage's first block, ReLU after the
//! sum; an 8×8 average pool and `classifier`. Hendrycks2020AugMixResNeXtNet's `mu`/`sigma`
//! buffers are read as its statistics.
use super::chain::{staged_blocks, Chain, CutBlock, Head, NormAct, Pool, Stem};
use super::layers::{BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use super::resnext_config::{ResNextConfig, EXPANSION, PLANES, STEM};
use super::{Activation, ArchSpec, ModelError};
use tch::{nn, Tensor};

/// The head's average pool (`nn.AvgPool2d(8)`: a 32×32 input's last map).
const POOL: i64 = 8;

pub struct ResNextBlock {
    reduce: Conv2d,
    bn_reduce: BatchNorm2d,
    conv: Conv2d,
    bn: BatchNorm2d,
    expand: Conv2d,
    bn_expand: BatchNorm2d,
    downsample: Option<(Conv2d, BatchNorm2d)>,
}

impl ResNextBlock {
    fn new(
        p: &nn::Path,
        keys: &mut KeyOrder,
        (c_in, inner, c_out): (i64, i64, i64),
        (groups, stride): (i64, i64),
    ) -> Self {
        let reduce = Conv2d::new(p / "conv_reduce", keys, c_in, inner, 1, 1);
        let bn_reduce = BatchNorm2d::new(p / "bn_reduce", keys, inner);
        let conv = Conv2d::grouped(p / "conv_conv", keys, (inner, inner, groups), 3, stride);
        let bn = BatchNorm2d::new(p / "bn", keys, inner);
        let expand = Conv2d::new(p / "conv_expand", keys, inner, c_out, 1, 1);
        let bn_expand = BatchNorm2d::new(p / "bn_expand", keys, c_out);
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            let conv = Conv2d::new(p / "downsample" / 0, keys, c_in, c_out, 1, stride);
            (conv, BatchNorm2d::new(p / "downsample" / 1, keys, c_out))
        });
        ResNextBlock {
            reduce,
            bn_reduce,
            conv,
            bn,
            expand,
            bn_expand,
            downsample,
        }
    }
}

impl CutBlock for ResNextBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.reduce.forward_bn(&self.bn_reduce, x, train).relu();
        let h = self.conv.forward_bn(&self.bn, &h, train).relu();
        let h = self.expand.forward_bn(&self.bn_expand, &h, train);
        let residual = match &self.downsample {
            Some((conv, bn)) => conv.forward_bn(bn, x, train),
            None => x.shallow_clone(),
        };
        (residual + h).relu()
    }

    /// The block input: the fast path caches up to the block and recomputes the block
    /// itself whichever of its modules is perturbed.
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let ours = matches!(leaf, "conv_reduce" | "conv_conv" | "conv_expand")
            || (leaf == "downsample.0" && self.downsample.is_some());
        ours.then(|| vec![x.shallow_clone()])
    }

    fn resume(&self, _leaf: &str, cache: &[Tensor]) -> Tensor {
        self.forward(&cache[0], false)
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        for conv in [&self.reduce, &self.conv, &self.expand] {
            out.push(conv.info());
        }
        if let Some((conv, _)) = &self.downsample {
            out.push(conv.info());
        }
    }

    fn out_size(&self, s: i64) -> i64 {
        self.conv.out_size(s)
    }
}

pub struct ResNext {
    stem: Conv2d,
    bn_1: BatchNorm2d,
    stages: Vec<Vec<ResNextBlock>>,
    classifier: Linear,
}

impl ResNext {
    /// The network of `spec.resnext`, parameters registered in robustbench's order.
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Result<Self, ModelError> {
        let config: ResNextConfig = spec.resnext.ok_or_else(|| {
            ModelError::BadInput(format!("{} has no ResNeXt configuration", spec.name()))
        })?;
        let stem = Conv2d::new(p / "conv_1_3x3", keys, spec.in_channels, STEM, 3, 1);
        let bn_1 = BatchNorm2d::new(p / "bn_1", keys, STEM);
        let mut c_in = STEM;
        let mut stages = Vec::new();
        for (i, planes) in PLANES.into_iter().enumerate() {
            let stage = p / format!("stage_{}", i + 1);
            let c_out = planes * EXPANSION;
            let blocks = (0..config.blocks())
                .map(|j| {
                    let stride = if i > 0 && j == 0 { 2 } else { 1 };
                    let widths = (c_in, config.inner(i), c_out);
                    let block = ResNextBlock::new(
                        &(&stage / j),
                        keys,
                        widths,
                        (config.cardinality, stride),
                    );
                    c_in = c_out;
                    block
                })
                .collect();
            stages.push(blocks);
        }
        let classifier = Linear::new(p / "classifier", keys, c_in, spec.num_classes);
        Ok(ResNext {
            stem,
            bn_1,
            stages,
            classifier,
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.stem.forward_bn(&self.bn_1, x, train).relu();
        for block in self.stages.iter().flatten() {
            out = block.forward(&out, train);
        }
        self.classifier.forward(&Pool::Avg(POOL).apply(&out))
    }

    /// The classifier's input width for an h×w input: the last stage's channels times the
    /// pooled map (two stride-2 stages give ⌈s/4⌉, pooled by 8); None when it is smaller
    /// than the pool.
    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        let pooled = |s: i64| Some((s + 3) / 4 / POOL).filter(|p| *p > 0);
        Some(PLANES[2] * EXPANSION * pooled(h)? * pooled(w)?)
    }

    /// This network as MRC's fast path sees it.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            stem: Stem::Conv {
                conv: &self.stem,
                norm: Some(NormAct {
                    bn: &self.bn_1,
                    act: Activation::Relu.into(),
                    sparse: None,
                }),
                max_pool: false,
            },
            blocks: staged_blocks(&self.stages, |i, j| format!("stage_{}.{j}", i + 1)),
            head: Head::Pooled {
                norm: None,
                pool: Pool::Avg(POOL),
            },
            classifier: &self.classifier,
        }
    }
}
