//! robustbench's ImageNet RaResNet (`robustarch_wide_resnet.py`'s `ConfigurableModel` as
//! `get_model("ra_wrn101_2")` configures it: Peng2023Robust's RaWRN-101-2; `ra_resnet_config.rs`
//! names it) with its state-dict keys in its order: `stem.stem.stem.0|1` (7×7 stride-2 conv,
//! BatchNorm, ReLU); `stages.stage{i}.stage{i}-block{j}` bottleneck blocks, each
//! `proj.0|1` (1×1 conv + BatchNorm, where the shape changes) registered before
//! `F.a.0` (1×1, SiLU), `F.b.0|1` (3×3 grouped, BatchNorm, SiLU), `F.se.fc1|fc2`
//! (torchvision's SqueezeExcitation, ReLU), `F.c.0|1` (1×1, BatchNorm), SiLU after the sum;
//! global average pooling and `fc`. The published model normalises its input with the
//! `normalization.mean|std` buffers it saves.
use super::chain::{staged_blocks, Chain, CutBlock, Head, NormAct, Pool, Stem};
use super::layers::{BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use super::ra_resnet_config::{block_path, RaResNetConfig};
use super::ra_wide_resnet::SqueezeExcitation;
use super::{Activation, ArchSpec, ModelError};
use tch::{nn, Tensor};

/// A bottleneck block (`BottleneckBlock` with torchvision's `Conv2dNormActivation`).
pub struct RaResBlock {
    proj: Option<(Conv2d, BatchNorm2d)>,
    a: Conv2d,
    b: Conv2d,
    b_bn: BatchNorm2d,
    se: SqueezeExcitation,
    c: Conv2d,
    c_bn: BatchNorm2d,
}

impl RaResBlock {
    fn new(
        p: &nn::Path,
        keys: &mut KeyOrder,
        (c_in, c_out, stride): (i64, i64, i64),
        (bottleneck, groups): (i64, i64),
    ) -> Self {
        let proj = (c_in != c_out || stride != 1).then(|| {
            let conv = Conv2d::new(p / "proj" / 0, keys, c_in, c_out, 1, stride);
            (conv, BatchNorm2d::new(p / "proj" / 1, keys, c_out))
        });
        let f = p / "F";
        let a = Conv2d::new(&f / "a" / 0, keys, c_in, bottleneck, 1, 1);
        let b = Conv2d::grouped(
            &f / "b" / 0,
            keys,
            (bottleneck, bottleneck, groups),
            3,
            stride,
        );
        let b_bn = BatchNorm2d::new(&f / "b" / 1, keys, bottleneck);
        let squeeze = RaResNetConfig::squeeze(c_in);
        let se = SqueezeExcitation::new(&f / "se", keys, bottleneck, squeeze, Activation::Relu);
        let c = Conv2d::new(&f / "c" / 0, keys, bottleneck, c_out, 1, 1);
        let c_bn = BatchNorm2d::new(&f / "c" / 1, keys, c_out);
        RaResBlock {
            proj,
            a,
            b,
            b_bn,
            se,
            c,
            c_bn,
        }
    }
}

impl CutBlock for RaResBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let a = self.a.forward(x).silu();
        let b = self.b.forward_bn(&self.b_bn, &a, train).silu();
        let branch = self.c.forward_bn(&self.c_bn, &self.se.forward(&b), train);
        let short = match &self.proj {
            Some((conv, bn)) => conv.forward_bn(bn, x, train),
            None => x.shallow_clone(),
        };
        (short + branch).silu()
    }

    /// The block input: the fast path caches up to the block and recomputes the block
    /// itself whichever of its modules is perturbed.
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let ours = matches!(leaf, "F.a.0" | "F.b.0" | "F.se.fc1" | "F.se.fc2" | "F.c.0")
            || (leaf == "proj.0" && self.proj.is_some());
        ours.then(|| vec![x.shallow_clone()])
    }

    fn resume(&self, _leaf: &str, cache: &[Tensor]) -> Tensor {
        self.forward(&cache[0], false)
    }

    /// The residual branch in forward order, then the projection.
    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.a.info());
        out.push(self.b.info());
        self.se.modules(out);
        out.push(self.c.info());
        if let Some((conv, _)) = &self.proj {
            out.push(conv.info());
        }
    }

    fn out_size(&self, s: i64) -> i64 {
        self.b.out_size(s)
    }
}

pub struct RaResNet {
    stem: Conv2d,
    stem_bn: BatchNorm2d,
    stages: Vec<Vec<RaResBlock>>,
    /// The last stage's width, which `fc` takes.
    features: i64,
    fc: Linear,
}

impl RaResNet {
    /// The network of `spec.ra_resnet` (blocks per stage in `spec.blocks`), parameters
    /// registered in robustbench's order.
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Result<Self, ModelError> {
        let config = spec.ra_resnet.clone().ok_or_else(|| {
            ModelError::BadInput(format!("{} has no RaResNet configuration", spec.name()))
        })?;
        let s = p / "stem" / "stem" / "stem";
        let stem = Conv2d::new(&s / 0, keys, spec.in_channels, config.stem, 7, 2);
        let stem_bn = BatchNorm2d::new(&s / 1, keys, config.stem);
        let mut c_in = config.stem;
        let mut stages = Vec::new();
        for (i, &n) in spec.blocks.iter().enumerate() {
            let width = config.widths[i];
            let inner = (config.bottleneck(i), config.groups(i));
            let blocks = (0..n)
                .map(|j| {
                    let stride = if j == 0 { 2 } else { 1 };
                    let stage = format!("stage{}", i + 1);
                    let path = p / "stages" / &stage / format!("{stage}-block{j}");
                    let block = RaResBlock::new(&path, keys, (c_in, width, stride), inner);
                    c_in = width;
                    block
                })
                .collect();
            stages.push(blocks);
        }
        let fc = Linear::new(p / "fc", keys, c_in, spec.num_classes);
        Ok(RaResNet {
            stem,
            stem_bn,
            stages,
            features: c_in,
            fc,
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.stem.forward_bn(&self.stem_bn, x, train).relu();
        for block in self.stages.iter().flatten() {
            out = block.forward(&out, train);
        }
        self.fc.forward(&Pool::Global.apply(&out))
    }

    /// The last stage's width for any non-empty input (global pooling).
    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        (h >= 1 && w >= 1).then_some(self.features)
    }

    /// This network as MRC's fast path sees it: the stem conv → BatchNorm → ReLU, the
    /// blocks, global average pooling, `fc`.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            stem: Stem::Conv {
                conv: &self.stem,
                norm: Some(NormAct {
                    bn: &self.stem_bn,
                    act: Activation::Relu.into(),
                    sparse: None,
                }),
                max_pool: false,
            },
            blocks: staged_blocks(&self.stages, block_path),
            head: Head::Pooled {
                norm: None,
                pool: Pool::Global,
            },
            classifier: &self.fc,
        }
    }
}
