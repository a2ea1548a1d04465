//! robustbench's RaWideResNet (`robustarch_wide_resnet.py`, `NormalizedWideResNet`; Peng
//! 2023: `cifar10/Linf/Peng2023Robust`), configured as `ra_config.rs` describes. Its keys
//! are the DM WideResNet's — `init_conv`, `layer.{0,1,2}.block.{i}.{batchnorm_0, conv_0,
//! batchnorm_1, conv_1, shortcut}`, `batchnorm`, `logits` — plus each block's `se.fc1` and
//! `se.fc2` (torchvision's `SqueezeExcitation`: global average pool, 1×1 `fc1` with bias,
//! its activation, 1×1 `fc2` with bias, sigmoid, the input scaled per channel by the
//! result), registered after `shortcut`. `conv_0` and `conv_1` take the stage's groups
//! (`shortcut` never does); `conv_0` is padded as in the DM network ((0,1,0,1) at stride
//! 2). Every BatchNorm has momentum 0.01. The model's `mean`/`std` are plain attributes,
//! absent from checkpoints.
//!
//! With `spec.meansparse` it is `Meansparse_ra_wrn_70_16.py`'s network
//! (`cifar10/Linf/Amini2024MeanSparse_Ra_WRN_70_16`): `meansparse_0`/`meansparse_1` after
//! each BatchNorm before its activation, `meansparse_2` after the residual sum (registered
//! after `se`), and the head's `meansparse_end` (before `logits`).
use super::arch::{Activation, ArchSpec};
use super::chain::{ChainNet, CutBlock};
use super::layers::{BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use super::mean_sparse::{maybe, MeanSparse};
use super::ra_config::{RaWideConfig, SeOrder, SqueezeExcite};
use tch::{nn, Tensor};

/// robustbench's `nn.BatchNorm2d(c, momentum=0.01)` throughout the network.
const BN_MOMENTUM: f64 = 0.01;

/// torchvision's `SqueezeExcitation`, split where MRC's fast path cuts it.
pub struct SqueezeExcitation {
    fc1: Conv2d,
    fc2: Conv2d,
    act: Activation,
}

impl SqueezeExcitation {
    pub(super) fn new(
        p: nn::Path,
        keys: &mut KeyOrder,
        c: i64,
        squeeze: i64,
        act: Activation,
    ) -> Self {
        SqueezeExcitation {
            fc1: Conv2d::pointwise_with_bias(&p / "fc1", keys, c, squeeze),
            fc2: Conv2d::pointwise_with_bias(&p / "fc2", keys, squeeze, c),
            act,
        }
    }

    /// `fc1`'s input: the per-channel mean (`AdaptiveAvgPool2d(1)`).
    fn pooled(x: &Tensor) -> Tensor {
        x.adaptive_avg_pool2d([1, 1])
    }

    /// `fc2`'s input.
    fn squeezed(&self, pooled: &Tensor) -> Tensor {
        self.act.apply(&self.fc1.forward(pooled))
    }

    /// `x` scaled per channel by the excitation of its `squeezed` summary.
    fn excite(&self, x: &Tensor, squeezed: &Tensor) -> Tensor {
        self.fc2.forward(squeezed).sigmoid() * x
    }

    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
        self.excite(x, &self.squeezed(&Self::pooled(x)))
    }

    /// `fc1` and `fc2`, in forward order.
    pub(super) fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.fc1.info());
        out.push(self.fc2.info());
    }
}

pub struct RaBlock {
    batchnorm_0: BatchNorm2d,
    conv_0: Conv2d,
    batchnorm_1: BatchNorm2d,
    conv_1: Conv2d,
    /// Present exactly when in and out widths differ; it sees the activated input.
    shortcut: Option<Conv2d>,
    se: Option<(SqueezeExcitation, SeOrder)>,
    act: Activation,
    /// MeanSparse after `batchnorm_0`, after `batchnorm_1` and after the residual sum.
    sparse: [Option<MeanSparse>; 3],
}

impl RaBlock {
    fn new(
        p: nn::Path,
        keys: &mut KeyOrder,
        (c_in, c_out, stride, groups): (i64, i64, i64, i64),
        (act, se, meansparse): (Activation, Option<(SqueezeExcite, i64)>, bool),
    ) -> Self {
        // Registration order is robustbench's, so saved keys come in its order.
        let ms = |keys: &mut KeyOrder, name: &str, c: i64| {
            meansparse.then(|| MeanSparse::new(&p / name, keys, c))
        };
        let batchnorm_0 = BatchNorm2d::with_momentum(&p / "batchnorm_0", keys, c_in, BN_MOMENTUM);
        let sparse_0 = ms(keys, "meansparse_0", c_in);
        let conv_0 = Conv2d::dm_same_grouped(&p / "conv_0", keys, (c_in, c_out, groups), stride);
        let batchnorm_1 = BatchNorm2d::with_momentum(&p / "batchnorm_1", keys, c_out, BN_MOMENTUM);
        let sparse_1 = ms(keys, "meansparse_1", c_out);
        let conv_1 = Conv2d::grouped(&p / "conv_1", keys, (c_out, c_out, groups), 3, 1);
        let shortcut =
            (c_in != c_out).then(|| Conv2d::new(&p / "shortcut", keys, c_in, c_out, 1, stride));
        let se = se.map(|(se, squeeze)| {
            let module = SqueezeExcitation::new(&p / "se", keys, c_out, squeeze, se.activation);
            (module, se.order)
        });
        let sparse_2 = ms(keys, "meansparse_2", c_out);
        RaBlock {
            sparse: [sparse_0, sparse_1, sparse_2],
            batchnorm_0,
            conv_0,
            batchnorm_1,
            conv_1,
            shortcut,
            se,
            act,
        }
    }

    /// The activated input both paths start from (the shortcut convolution sees it too).
    fn activated(&self, x: &Tensor, train: bool) -> Tensor {
        let normed = maybe(&self.sparse[0], self.batchnorm_0.forward(x, train));
        self.act.apply(&normed)
    }

    /// The block's SE applied to `x` when it sits at `at`, else `x`.
    fn se_at(&self, at: SeOrder, x: Tensor) -> Tensor {
        match &self.se {
            Some((se, order)) if *order == at => se.forward(&x),
            _ => x,
        }
    }

    /// `conv_1`'s input from `conv_0`'s output (after an SE of order 1).
    fn mid(&self, h: &Tensor, train: bool) -> Tensor {
        let normed = self.batchnorm_1.forward(h, train);
        self.act.apply(&maybe(&self.sparse[1], normed))
    }

    /// The residual branch from `conv_0`'s output.
    fn branch_from_conv_0(&self, h: Tensor, train: bool) -> Tensor {
        let h = self.se_at(SeOrder::AfterConv0, h);
        let r = self.conv_1.forward(&self.mid(&h, train));
        self.se_at(SeOrder::AfterConv1, r)
    }

    fn main_path(&self, activated: &Tensor, train: bool) -> Tensor {
        self.branch_from_conv_0(self.conv_0.forward(activated), train)
    }

    /// The residual branch from the SE's output.
    fn after_se(&self, excited: Tensor) -> Tensor {
        match &self.se {
            Some((_, SeOrder::AfterConv0)) => self.conv_1.forward(&self.mid(&excited, false)),
            _ => excited,
        }
    }

    /// The SE's input (eval mode).
    fn se_input(&self, activated: &Tensor, order: SeOrder) -> Tensor {
        let h = self.conv_0.forward(activated);
        match order {
            SeOrder::AfterConv0 => h,
            SeOrder::AfterConv1 => self.conv_1.forward(&self.mid(&h, false)),
        }
    }

    /// The block's output from the residual sum.
    fn out(&self, sum: Tensor) -> Tensor {
        maybe(&self.sparse[2], sum)
    }

    fn short(&self, x: &Tensor, activated: &Tensor) -> Tensor {
        match &self.shortcut {
            Some(conv) => conv.forward(activated),
            None => x.shallow_clone(),
        }
    }
}

impl CutBlock for RaBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let activated = self.activated(x, train);
        self.out(self.short(x, &activated) + self.main_path(&activated, train))
    }

    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let activated = self.activated(x, false);
        let short = self.short(x, &activated);
        Some(match leaf {
            "conv_0" => vec![short, activated],
            "conv_1" => {
                let h = self.se_at(SeOrder::AfterConv0, self.conv_0.forward(&activated));
                vec![short, self.mid(&h, false)]
            }
            "shortcut" if self.shortcut.is_some() => {
                vec![self.main_path(&activated, false), activated]
            }
            "se.fc1" | "se.fc2" => {
                let (se, order) = self.se.as_ref()?;
                let input = self.se_input(&activated, *order);
                let pooled = SqueezeExcitation::pooled(&input);
                let summary = if leaf == "se.fc1" {
                    pooled
                } else {
                    se.squeezed(&pooled)
                };
                vec![short, input, summary]
            }
            _ => return None,
        })
    }

    /// Same operand order as `forward` (shortcut + residual branch).
    fn resume(&self, leaf: &str, c: &[Tensor]) -> Tensor {
        let sum = match (leaf, &self.shortcut, &self.se) {
            ("conv_0", _, _) => &c[0] + self.main_path(&c[1], false),
            ("conv_1", _, _) => &c[0] + self.se_at(SeOrder::AfterConv1, self.conv_1.forward(&c[1])),
            ("shortcut", Some(conv), _) => conv.forward(&c[1]) + &c[0],
            ("se.fc1", _, Some((se, _))) => {
                &c[0] + self.after_se(se.excite(&c[1], &se.squeezed(&c[2])))
            }
            ("se.fc2", _, Some((se, _))) => &c[0] + self.after_se(se.excite(&c[1], &c[2])),
            _ => return Tensor::new(),
        };
        self.out(sum)
    }

    /// Forward order: `conv_0`, an SE of order 1, `conv_1`, an SE of order 2, `shortcut`.
    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        let se = |order: SeOrder, out: &mut Vec<ModuleInfo>| {
            if let Some((se, at)) = &self.se {
                if *at == order {
                    out.push(se.fc1.info());
                    out.push(se.fc2.info());
                }
            }
        };
        out.push(self.conv_0.info());
        se(SeOrder::AfterConv0, out);
        out.push(self.conv_1.info());
        se(SeOrder::AfterConv1, out);
        if let Some(c) = &self.shortcut {
            out.push(c.info());
        }
    }

    fn out_size(&self, s: i64) -> i64 {
        self.conv_1.out_size(self.conv_0.out_size(s))
    }
}

/// The network of `spec.blocks` blocks per stage configured by `config`, with MeanSparse
/// ops where `spec.meansparse`.
pub fn ra_wide_resnet(
    p: &nn::Path,
    keys: &mut KeyOrder,
    spec: &ArchSpec,
    config: &RaWideConfig,
) -> ChainNet<RaBlock> {
    let (act, ms) = (spec.activation, spec.meansparse);
    let widths = config.stage_widths;
    let stem = Conv2d::new(
        p / "init_conv",
        keys,
        spec.in_channels,
        config.stem_width,
        3,
        1,
    );
    let layer = p / "layer";
    let mut blocks = Vec::new();
    let mut c_in = config.stem_width;
    for (g, stride) in [1, 2, 2].into_iter().enumerate() {
        let se = config.se.map(|se| (se, se.squeeze[g]));
        for i in 0..spec.blocks[g] {
            let s = if i == 0 { stride } else { 1 };
            let block = RaBlock::new(
                &layer / g / "block" / i,
                keys,
                (c_in, widths[g], s, config.groups[g]),
                (act, se, ms),
            );
            blocks.push((format!("layer.{g}.block.{i}"), block));
            c_in = widths[g];
        }
    }
    let batchnorm = BatchNorm2d::with_momentum(p / "batchnorm", keys, c_in, BN_MOMENTUM);
    let sparse_end = ms.then(|| MeanSparse::new(p / "meansparse_end", keys, c_in));
    let classifier = Linear::new(p / "logits", keys, spec.feature_dim, spec.num_classes);
    ChainNet {
        stem,
        blocks,
        batchnorm,
        sparse_end,
        act,
        pool: 8,
        classifier,
    }
}
