//! DeepMind's WideResNet as in robustbench's `dm_wide_resnet.py` (`DMWideResNet`):
//! `init_conv`, three groups `layer.{0,1,2}.block.{i}` of pre-activation blocks
//! (`batchnorm_0`, `conv_0`, `batchnorm_1`, `conv_1`, a 1×1 `shortcut` where widths
//! differ), `batchnorm`, `avg_pool2d(·, 8)` and `logits`. Unlike the TRADES WideResNet,
//! `conv_0` is unpadded and the block pads its input itself, asymmetrically at stride 2
//! (see `Conv2d::dm_same`), and the activation is ReLU or Swish/SiLU. The model's
//! `mean`/`std` are non-persistent buffers, absent from checkpoints.
//!
//! With `spec.meansparse` it is robustbench's MeanSparse variant of the same network
//! (`Meansparse_wrn_70_16.py`, `Meansparse_wrn_94_16.py`): a `MeanSparse` op after every
//! BatchNorm, before its activation (`meansparse_0`, `meansparse_1`, the head's
//! `meansparse_end`), and after every residual sum (`meansparse_2`); everything else,
//! the keys included, is the same.
use super::arch::{Activation, ArchSpec};
use super::chain::{ChainNet, CutBlock};
use super::layers::{BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use super::mean_sparse::{maybe, MeanSparse};
use tch::{nn, Tensor};

pub struct DmBlock {
    batchnorm_0: BatchNorm2d,
    conv_0: Conv2d,
    batchnorm_1: BatchNorm2d,
    conv_1: Conv2d,
    /// Present exactly when in and out widths differ; it sees the activated input.
    shortcut: Option<Conv2d>,
    act: Activation,
    /// MeanSparse after `batchnorm_0`, after `batchnorm_1` and after the residual sum.
    sparse: [Option<MeanSparse>; 3],
}

impl DmBlock {
    fn new(
        p: nn::Path,
        keys: &mut KeyOrder,
        (c_in, c_out, stride): (i64, i64, i64),
        (act, meansparse): (Activation, bool),
    ) -> Self {
        // Registration order is robustbench's, so saved keys come in its order.
        let ms = |keys: &mut KeyOrder, name: &str, c: i64| {
            meansparse.then(|| MeanSparse::new(&p / name, keys, c))
        };
        let batchnorm_0 = BatchNorm2d::new(&p / "batchnorm_0", keys, c_in);
        let sparse_0 = ms(keys, "meansparse_0", c_in);
        let conv_0 = Conv2d::dm_same(&p / "conv_0", keys, c_in, c_out, stride);
        let batchnorm_1 = BatchNorm2d::new(&p / "batchnorm_1", keys, c_out);
        let sparse_1 = ms(keys, "meansparse_1", c_out);
        let conv_1 = Conv2d::new(&p / "conv_1", keys, c_out, c_out, 3, 1);
        let shortcut =
            (c_in != c_out).then(|| Conv2d::new(&p / "shortcut", keys, c_in, c_out, 1, stride));
        let sparse_2 = ms(keys, "meansparse_2", c_out);
        DmBlock {
            sparse: [sparse_0, sparse_1, sparse_2],
            batchnorm_0,
            conv_0,
            batchnorm_1,
            conv_1,
            shortcut,
            act,
        }
    }

    /// The activated input both paths start from (the shortcut convolution sees it too).
    fn activated(&self, x: &Tensor, train: bool) -> Tensor {
        let normed = maybe(&self.sparse[0], self.batchnorm_0.forward(x, train));
        self.act.apply(&normed)
    }

    /// `conv_1`'s input.
    fn mid(&self, activated: &Tensor, train: bool) -> Tensor {
        let normed = self.conv_0.forward_bn(&self.batchnorm_1, activated, train);
        self.act.apply(&maybe(&self.sparse[1], normed))
    }

    fn main_path(&self, activated: &Tensor, train: bool) -> Tensor {
        self.conv_1.forward(&self.mid(activated, train))
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

impl CutBlock for DmBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let activated = self.activated(x, train);
        self.out(self.short(x, &activated) + self.main_path(&activated, train))
    }

    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let activated = self.activated(x, false);
        Some(match leaf {
            "conv_0" => vec![self.short(x, &activated), activated],
            "conv_1" => vec![self.short(x, &activated), self.mid(&activated, false)],
            "shortcut" if self.shortcut.is_some() => {
                vec![self.main_path(&activated, false), activated]
            }
            _ => return None,
        })
    }

    /// Same operand order as `forward` (shortcut + main).
    fn resume(&self, leaf: &str, c: &[Tensor]) -> Tensor {
        let sum = match (leaf, &self.shortcut) {
            ("conv_0", _) => &c[0] + self.main_path(&c[1], false),
            ("conv_1", _) => &c[0] + self.conv_1.forward(&c[1]),
            (_, Some(conv)) => conv.forward(&c[1]) + &c[0],
            (_, None) => return Tensor::new(),
        };
        self.out(sum)
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.conv_0.info());
        out.push(self.conv_1.info());
        if let Some(c) = &self.shortcut {
            out.push(c.info());
        }
    }

    fn out_size(&self, s: i64) -> i64 {
        self.conv_1.out_size(self.conv_0.out_size(s))
    }
}

/// `spec.blocks[0]` blocks per group (depth = 6n + 4), widen factor `spec.width`, with
/// MeanSparse ops where `spec.meansparse`.
pub fn dm_wide_resnet(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> ChainNet<DmBlock> {
    let (n, k, act) = (spec.blocks[0], spec.width, spec.activation);
    let ms = spec.meansparse;
    let ch = [16, 16 * k, 32 * k, 64 * k];
    let stem = Conv2d::new(p / "init_conv", keys, spec.in_channels, ch[0], 3, 1);
    let layer = p / "layer";
    let mut blocks = Vec::new();
    for (g, stride) in [1, 2, 2].into_iter().enumerate() {
        for i in 0..n {
            let (c_in, s) = if i == 0 {
                (ch[g], stride)
            } else {
                (ch[g + 1], 1)
            };
            let block = DmBlock::new(
                &layer / g / "block" / i,
                keys,
                (c_in, ch[g + 1], s),
                (act, ms),
            );
            blocks.push((format!("layer.{g}.block.{i}"), block));
        }
    }
    let batchnorm = BatchNorm2d::new(p / "batchnorm", keys, ch[3]);
    let sparse_end = ms.then(|| MeanSparse::new(p / "meansparse_end", keys, ch[3]));
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
