//! DeepMind's PreActResNet as in robustbench's `dm_wide_resnet.py` (`DMPreActResNet`):
//! `conv_2d`, four stages `layer_{0..3}.{i}` of pre-activation blocks (`batchnorm_0`,
//! `conv_2d_1`, `batchnorm_1`, `conv_2d_2`, and a 3×3 `shortcut` where the shape changes),
//! `batchnorm`, `avg_pool2d(·, 4)` and `logits`. Its `conv_2d_1` and `shortcut` are
//! unpadded with the input padded by the block (see `Conv2d::dm_same`), and — unlike every
//! other pre-activation family here — the shortcut sees the block's raw input, not the
//! activated one.
use super::arch::{Activation, ArchSpec};
use super::chain::{ChainNet, CutBlock};
use super::layers::{BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use tch::{nn, Tensor};

pub struct DmPreActBlock {
    batchnorm_0: BatchNorm2d,
    conv_2d_1: Conv2d,
    batchnorm_1: BatchNorm2d,
    conv_2d_2: Conv2d,
    shortcut: Option<Conv2d>,
    act: Activation,
}

impl DmPreActBlock {
    fn new(
        p: nn::Path,
        keys: &mut KeyOrder,
        (c_in, c_out, stride): (i64, i64, i64),
        act: Activation,
    ) -> Self {
        let batchnorm_0 = BatchNorm2d::new(&p / "batchnorm_0", keys, c_in);
        let conv_2d_1 = Conv2d::dm_same(&p / "conv_2d_1", keys, c_in, c_out, stride);
        let batchnorm_1 = BatchNorm2d::new(&p / "batchnorm_1", keys, c_out);
        let conv_2d_2 = Conv2d::new(&p / "conv_2d_2", keys, c_out, c_out, 3, 1);
        let shortcut = (stride != 1 || c_in != c_out)
            .then(|| Conv2d::dm_same(&p / "shortcut", keys, c_in, c_out, stride));
        DmPreActBlock {
            batchnorm_0,
            conv_2d_1,
            batchnorm_1,
            conv_2d_2,
            shortcut,
            act,
        }
    }

    fn main_path(&self, activated: &Tensor, train: bool) -> Tensor {
        let mid = self
            .conv_2d_1
            .forward_bn(&self.batchnorm_1, activated, train);
        self.conv_2d_2.forward(&self.act.apply(&mid))
    }

    fn short(&self, x: &Tensor) -> Tensor {
        match &self.shortcut {
            Some(conv) => conv.forward(x),
            None => x.shallow_clone(),
        }
    }
}

impl CutBlock for DmPreActBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let activated = self.act.apply(&self.batchnorm_0.forward(x, train));
        self.main_path(&activated, train) + self.short(x)
    }

    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let activated = || self.act.apply(&self.batchnorm_0.forward(x, false));
        Some(match leaf {
            "conv_2d_1" => vec![activated(), self.short(x)],
            "conv_2d_2" => {
                let mid = self
                    .conv_2d_1
                    .forward_bn(&self.batchnorm_1, &activated(), false);
                vec![self.act.apply(&mid), self.short(x)]
            }
            "shortcut" if self.shortcut.is_some() => {
                vec![self.main_path(&activated(), false), x.shallow_clone()]
            }
            _ => return None,
        })
    }

    /// Same operand order as `forward` (main + shortcut).
    fn resume(&self, leaf: &str, c: &[Tensor]) -> Tensor {
        match (leaf, &self.shortcut) {
            ("conv_2d_1", _) => self.main_path(&c[0], false) + &c[1],
            ("conv_2d_2", _) => self.conv_2d_2.forward(&c[0]) + &c[1],
            (_, Some(conv)) => &c[0] + conv.forward(&c[1]),
            (_, None) => Tensor::new(),
        }
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.conv_2d_1.info());
        out.push(self.conv_2d_2.info());
        if let Some(c) = &self.shortcut {
            out.push(c.info());
        }
    }

    fn out_size(&self, s: i64) -> i64 {
        self.conv_2d_2.out_size(self.conv_2d_1.out_size(s))
    }
}

/// `spec.blocks`: blocks per stage; `spec.width`: the first stage's width (64 in the zoo).
pub fn dm_preact_resnet(
    p: &nn::Path,
    keys: &mut KeyOrder,
    spec: &ArchSpec,
) -> ChainNet<DmPreActBlock> {
    let (width, act) = (spec.width, spec.activation);
    let stem = Conv2d::new(p / "conv_2d", keys, spec.in_channels, width, 3, 1);
    let mut c_in = width;
    let mut blocks = Vec::new();
    for (s, &n) in spec.blocks.iter().enumerate() {
        let c_out = width << s;
        let stage = p / format!("layer_{s}");
        for i in 0..n {
            let stride = if s > 0 && i == 0 { 2 } else { 1 };
            let block = DmPreActBlock::new(&stage / i, keys, (c_in, c_out, stride), act);
            blocks.push((format!("layer_{s}.{i}"), block));
            c_in = c_out;
        }
    }
    let batchnorm = BatchNorm2d::new(p / "batchnorm", keys, c_in);
    let classifier = Linear::new(p / "logits", keys, spec.feature_dim, spec.num_classes);
    ChainNet {
        stem,
        blocks,
        batchnorm,
        sparse_end: None,
        act,
        pool: 4,
        classifier,
    }
}
