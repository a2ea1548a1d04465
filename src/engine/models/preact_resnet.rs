//! PreActResNet as in the Bag-of-Tricks AT code (Pang et al. 2021, `preactresnet.py`):
//! pre-activation blocks (`bn1`, `conv1`, `bn2`, `conv2`, a bias-free 1×1 `shortcut.0`
//! where shapes change), a final `bn`, `avg_pool2d(·, 4)` and `linear`.
//!
//! With `spec.preact_v1` it is robustbench's `PreActResNet(PreActBlock, …)` with
//! `bn_before_fc=False` and `out_shortcut=False` (Andriushchenko 2020, Wong 2020): the
//! shortcut convolution sees the raw block input instead of the activated one, and there
//! is no final BatchNorm (nor ReLU) before the pooling; the keys are the same less `bn`.
use super::arch::{Activation, ArchSpec};
use super::chain::{pool_flat, staged_blocks, Chain, CutBlock, Head, NormAct, Pool, Stem};
use super::layers::{pooled, BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use tch::{nn, Tensor};

/// Also robustbench's `PreActBasicBlock` of `robust_resnet.py` (the same keys and
/// computation, with its activation chosen: `robust_resnet.rs`).
pub(super) struct PreActBlock {
    bn1: BatchNorm2d,
    conv1: Conv2d,
    bn2: BatchNorm2d,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
    /// V1: the shortcut convolution takes the raw block input.
    raw_shortcut: bool,
    act: Activation,
}

impl PreActBlock {
    pub(super) fn new(
        p: nn::Path,
        keys: &mut KeyOrder,
        (c_in, planes, stride): (i64, i64, i64),
        raw_shortcut: bool,
        act: Activation,
    ) -> Self {
        let bn1 = BatchNorm2d::new(&p / "bn1", keys, c_in);
        let conv1 = Conv2d::new(&p / "conv1", keys, c_in, planes, 3, stride);
        let bn2 = BatchNorm2d::new(&p / "bn2", keys, planes);
        let conv2 = Conv2d::new(&p / "conv2", keys, planes, planes, 3, 1);
        let shortcut = (stride != 1 || c_in != planes)
            .then(|| Conv2d::new(&p / "shortcut" / "0", keys, c_in, planes, 1, stride));
        PreActBlock {
            bn1,
            conv1,
            bn2,
            conv2,
            shortcut,
            raw_shortcut,
            act,
        }
    }

    /// What the shortcut convolution sees: the raw input (V1) or the activated one.
    fn shortcut_input(&self, x: &Tensor, activated: &Tensor) -> Tensor {
        if self.raw_shortcut {
            x.shallow_clone()
        } else {
            activated.shallow_clone()
        }
    }

    fn short(&self, x: &Tensor, activated: &Tensor) -> Tensor {
        match &self.shortcut {
            Some(conv) => conv.forward(&self.shortcut_input(x, activated)),
            None => x.shallow_clone(),
        }
    }
}

pub struct PreActResNet {
    conv1: Conv2d,
    layers: Vec<Vec<PreActBlock>>,
    /// None in V1 (`bn_before_fc=False`).
    bn: Option<BatchNorm2d>,
    channels: i64,
    pub linear: Linear,
}

impl PreActResNet {
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Self {
        let (blocks, width, in_channels) = (&spec.blocks, spec.width, spec.in_channels);
        let conv1 = Conv2d::new(p / "conv1", keys, in_channels, width, 3, 1);
        let mut c_in = width;
        let mut layers = Vec::new();
        for (i, &n) in blocks.iter().enumerate() {
            let planes = width << i;
            let stage = p / format!("layer{}", i + 1);
            let mut stage_blocks = Vec::new();
            for j in 0..n {
                let stride = if i > 0 && j == 0 { 2 } else { 1 };
                let dims = (c_in, planes, stride);
                let v1 = spec.preact_v1;
                stage_blocks.push(PreActBlock::new(
                    &stage / j,
                    keys,
                    dims,
                    v1,
                    Activation::Relu,
                ));
                c_in = planes;
            }
            layers.push(stage_blocks);
        }
        let bn = (!spec.preact_v1).then(|| BatchNorm2d::new(p / "bn", keys, c_in));
        let linear = Linear::new(p / "linear", keys, spec.feature_dim, spec.num_classes);
        PreActResNet {
            conv1,
            layers,
            bn,
            channels: c_in,
            linear,
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.conv1.forward(x);
        for block in self.layers.iter().flatten() {
            out = block.forward(&out, train);
        }
        let out = match &self.bn {
            Some(bn) => bn.forward(&out, train).relu(),
            None => out,
        };
        self.linear.forward(&pool_flat(&out, 4))
    }

    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        let (mut sh, mut sw) = (self.conv1.out_size(h), self.conv1.out_size(w));
        for block in self.layers.iter().flatten() {
            sh = block.out_size(sh);
            sw = block.out_size(sw);
        }
        Some(self.channels * pooled(sh, 4)? * pooled(sw, 4)?)
    }
}

/// MRC fast-path caching; see `resnet.rs` for the contract.
impl CutBlock for PreActBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let out = self.act.apply(&self.bn1.forward(x, train));
        let short = self.short(x, &out);
        let out = self.conv1.forward(&out);
        let out = self
            .conv2
            .forward(&self.act.apply(&self.bn2.forward(&out, train)));
        out + short
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.conv1.info());
        out.push(self.conv2.info());
        if let Some(c) = &self.shortcut {
            out.push(c.info());
        }
    }

    fn out_size(&self, s: i64) -> i64 {
        self.conv2.out_size(self.conv1.out_size(s))
    }

    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let a = self.act.apply(&self.bn1.forward(x, false));
        let short = self.short(x, &a);
        Some(match leaf {
            "conv1" => vec![a, short],
            "conv2" => vec![
                self.act.apply(&self.conv1.forward_bn(&self.bn2, &a, false)),
                short,
            ],
            "shortcut.0" if self.shortcut.is_some() => {
                let main = self
                    .conv2
                    .forward(&self.act.apply(&self.conv1.forward_bn(&self.bn2, &a, false)));
                vec![main, self.shortcut_input(x, &a)]
            }
            _ => return None,
        })
    }

    fn resume(&self, leaf: &str, c: &[Tensor]) -> Tensor {
        match (leaf, &self.shortcut) {
            ("conv1", _) => {
                self.conv2.forward(
                    &self
                        .act
                        .apply(&self.conv1.forward_bn(&self.bn2, &c[0], false)),
                ) + &c[1]
            }
            ("conv2", _) => self.conv2.forward(&c[0]) + &c[1],
            (_, Some(conv)) => &c[0] + conv.forward(&c[1]),
            (_, None) => Tensor::new(),
        }
    }
}

impl PreActResNet {
    /// This network as MRC's fast path sees it (`chain.rs`): stem conv1, the blocks, final
    /// BatchNorm → ReLU (none in V1) → `avg_pool2d(·, 4)`, the classifier.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            stem: Stem::Conv {
                conv: &self.conv1,
                norm: None,
                max_pool: false,
            },
            blocks: staged_blocks(&self.layers, |i, j| format!("layer{}.{j}", i + 1)),
            head: Head::Pooled {
                norm: self.bn.as_ref().map(|bn| NormAct {
                    bn,
                    act: Activation::Relu.into(),
                    sparse: None,
                }),
                pool: Pool::Avg(4),
            },
            classifier: &self.linear,
        }
    }
}
