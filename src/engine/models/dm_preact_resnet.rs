//! DeepMind's PreActResNet as in robustbench's `dm_wide_resnet.py` (`DMPreActResNet`):
//! `conv_2d`, four stages `layer_{0..3}.{i}` of pre-activation blocks (`batchnorm_0`,
//! `conv_2d_1`, `batchnorm_1`, `conv_2d_2`, and a 3×3 `shortcut` where the shape changes),
//! `batchnorm`, `avg_pool2d(·, 4)` and `logits`. Its `conv_2d_1` and `shortcut` are
//! unpadded with the input padded by the block (see `Conv2d::dm_same`), and — unlike every
//! other pre-activation family here — the shortcut sees the block's raw input, not the
//! activated one.
use super::arch::{Activation, ArchSpec};
use super::chain::{Chain, CutBlock};
use super::layers::{pooled, BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use tch::{nn, Tensor};

struct DmPreActBlock {
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
            .batchnorm_1
            .forward(&self.conv_2d_1.forward(activated), train);
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
                    .batchnorm_1
                    .forward(&self.conv_2d_1.forward(&activated()), false);
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
}

pub struct DmPreActResNet {
    conv_2d: Conv2d,
    stages: Vec<Vec<DmPreActBlock>>,
    batchnorm: BatchNorm2d,
    logits: Linear,
    act: Activation,
}

impl DmPreActResNet {
    /// `spec.blocks`: blocks per stage; `spec.width`: the first stage's width (64 in the zoo).
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Self {
        let (width, act) = (spec.width, spec.activation);
        let conv_2d = Conv2d::new(p / "conv_2d", keys, spec.in_channels, width, 3, 1);
        let mut c_in = width;
        let mut stages = Vec::new();
        for (s, &n) in spec.blocks.iter().enumerate() {
            let c_out = width << s;
            let stage = p / format!("layer_{s}");
            let mut blocks = Vec::new();
            for i in 0..n {
                let stride = if s > 0 && i == 0 { 2 } else { 1 };
                blocks.push(DmPreActBlock::new(
                    &stage / i,
                    keys,
                    (c_in, c_out, stride),
                    act,
                ));
                c_in = c_out;
            }
            stages.push(blocks);
        }
        let batchnorm = BatchNorm2d::new(p / "batchnorm", keys, c_in);
        let logits = Linear::new(p / "logits", keys, spec.feature_dim, spec.num_classes);
        DmPreActResNet {
            conv_2d,
            stages,
            batchnorm,
            logits,
            act,
        }
    }

    fn head(&self, out: &Tensor, train: bool) -> Tensor {
        let out = self.act.apply(&self.batchnorm.forward(out, train));
        let out = out.avg_pool2d([4, 4], [4, 4], [0, 0], false, true, None::<i64>);
        out.flatten(1, -1)
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.conv_2d.forward(x);
        for block in self.stages.iter().flatten() {
            out = block.forward(&out, train);
        }
        self.logits.forward(&self.head(&out, train))
    }

    pub fn modules(&self) -> Vec<ModuleInfo> {
        let mut out = vec![self.conv_2d.info()];
        for b in self.stages.iter().flatten() {
            out.push(b.conv_2d_1.info());
            out.push(b.conv_2d_2.info());
            if let Some(c) = &b.shortcut {
                out.push(c.info());
            }
        }
        out.push(self.logits.info());
        out
    }

    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        let size = |mut s: i64| {
            s = self.conv_2d.out_size(s);
            for b in self.stages.iter().flatten() {
                s = b.conv_2d_2.out_size(b.conv_2d_1.out_size(s));
            }
            pooled(s, 4)
        };
        Some(self.batchnorm.weight.size()[0] * size(h)? * size(w)?)
    }

    /// This network as MRC's fast path sees it; `f` runs with it.
    pub fn with_chain<R>(&self, f: impl FnOnce(&Chain) -> R) -> R {
        let stem = |x: &Tensor| self.conv_2d.forward(x);
        let head = |x: &Tensor| self.head(x, false);
        let mut blocks: Vec<(String, &dyn CutBlock)> = Vec::new();
        for (s, stage) in self.stages.iter().enumerate() {
            for (i, b) in stage.iter().enumerate() {
                blocks.push((format!("layer_{s}.{i}"), b));
            }
        }
        f(&Chain {
            stem_name: &self.conv_2d.name,
            stem: &stem,
            blocks,
            head: &head,
            classifier: &self.logits,
        })
    }
}
