//! PreActResNet as in the Bag-of-Tricks AT code (Pang et al. 2021, `preactresnet.py`):
//! pre-activation blocks (`bn1`, `conv1`, `bn2`, `conv2`, a bias-free 1×1 `shortcut.0`
//! where shapes change), a final `bn`, `avg_pool2d(·, 4)` and `linear`.
use super::arch::ArchSpec;
use super::layers::{pooled, BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use tch::{nn, Tensor};

struct PreActBlock {
    bn1: BatchNorm2d,
    conv1: Conv2d,
    bn2: BatchNorm2d,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl PreActBlock {
    fn new(p: nn::Path, keys: &mut KeyOrder, c_in: i64, planes: i64, stride: i64) -> Self {
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
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let out = self.bn1.forward(x, train).relu();
        let short = match &self.shortcut {
            Some(conv) => conv.forward(&out),
            None => x.shallow_clone(),
        };
        let out = self.conv1.forward(&out);
        let out = self.conv2.forward(&self.bn2.forward(&out, train).relu());
        out + short
    }
}

pub struct PreActResNet {
    conv1: Conv2d,
    layers: Vec<Vec<PreActBlock>>,
    bn: BatchNorm2d,
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
                stage_blocks.push(PreActBlock::new(&stage / j, keys, c_in, planes, stride));
                c_in = planes;
            }
            layers.push(stage_blocks);
        }
        let bn = BatchNorm2d::new(p / "bn", keys, c_in);
        let linear = Linear::new(p / "linear", keys, spec.feature_dim, spec.num_classes);
        PreActResNet {
            conv1,
            layers,
            bn,
            linear,
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.conv1.forward(x);
        for block in self.layers.iter().flatten() {
            out = block.forward(&out, train);
        }
        let out = self.bn.forward(&out, train).relu();
        let out = out.avg_pool2d([4, 4], [4, 4], [0, 0], false, true, None::<i64>);
        self.linear.forward(&out.flatten(1, -1))
    }

    pub fn modules(&self) -> Vec<ModuleInfo> {
        let mut out = vec![self.conv1.info()];
        for block in self.layers.iter().flatten() {
            out.push(block.conv1.info());
            out.push(block.conv2.info());
            if let Some(c) = &block.shortcut {
                out.push(c.info());
            }
        }
        out.push(self.linear.info());
        out
    }

    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        let (mut sh, mut sw) = (self.conv1.out_size(h), self.conv1.out_size(w));
        for block in self.layers.iter().flatten() {
            sh = block.conv2.out_size(block.conv1.out_size(sh));
            sw = block.conv2.out_size(block.conv1.out_size(sw));
        }
        Some(self.bn.weight.size()[0] * pooled(sh, 4)? * pooled(sw, 4)?)
    }
}

/// MRC fast-path caching; see `resnet.rs` for the contract.
impl PreActBlock {
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let a = self.bn1.forward(x, false).relu();
        let short = match &self.shortcut {
            Some(conv) => conv.forward(&a),
            None => x.shallow_clone(),
        };
        Some(match leaf {
            "conv1" => vec![a, short],
            "conv2" => vec![
                self.bn2.forward(&self.conv1.forward(&a), false).relu(),
                short,
            ],
            "shortcut.0" if self.shortcut.is_some() => {
                let main = self
                    .conv2
                    .forward(&self.bn2.forward(&self.conv1.forward(&a), false).relu());
                vec![main, a]
            }
            _ => return None,
        })
    }

    fn resume(&self, leaf: &str, c: &[Tensor]) -> Tensor {
        match (leaf, &self.shortcut) {
            ("conv1", _) => {
                self.conv2
                    .forward(&self.bn2.forward(&self.conv1.forward(&c[0]), false).relu())
                    + &c[1]
            }
            ("conv2", _) => self.conv2.forward(&c[0]) + &c[1],
            (_, Some(conv)) => &c[0] + conv.forward(&c[1]),
            (_, None) => Tensor::new(),
        }
    }
}

impl PreActResNet {
    fn named_blocks(&self) -> Vec<(String, &PreActBlock)> {
        let mut out = Vec::new();
        for (i, stage) in self.layers.iter().enumerate() {
            for (j, b) in stage.iter().enumerate() {
                out.push((format!("layer{}.{j}", i + 1), b));
            }
        }
        out
    }

    fn head(&self, out: &Tensor) -> Tensor {
        let out = self.bn.forward(out, false).relu();
        let out = out.avg_pool2d([4, 4], [4, 4], [0, 0], false, true, None::<i64>);
        self.linear.forward(&out.flatten(1, -1))
    }

    pub fn prefix(&self, xn: &Tensor, module: &str) -> Option<Vec<Tensor>> {
        if module == "conv1" {
            return Some(vec![xn.shallow_clone()]);
        }
        let mut out = self.conv1.forward(xn);
        for (name, block) in self.named_blocks() {
            if let Some(leaf) = module.strip_prefix(&name).and_then(|l| l.strip_prefix('.')) {
                return block.prepare(&out, leaf);
            }
            out = block.forward(&out, false);
        }
        let out = self.bn.forward(&out, false).relu();
        let pooled = out.avg_pool2d([4, 4], [4, 4], [0, 0], false, true, None::<i64>);
        (module == "linear").then(|| vec![pooled.flatten(1, -1)])
    }

    pub fn suffix(&self, module: &str, c: &[Tensor]) -> Tensor {
        match module {
            "conv1" => self.forward(&c[0], false),
            "linear" => self.linear.forward(&c[0]),
            _ => {
                let mut out: Option<Tensor> = None;
                for (name, block) in self.named_blocks() {
                    out = match out {
                        Some(o) => Some(block.forward(&o, false)),
                        None => module
                            .strip_prefix(&name)
                            .and_then(|l| l.strip_prefix('.'))
                            .map(|leaf| block.resume(leaf, c)),
                    };
                }
                self.head(&out.unwrap_or_default())
            }
        }
    }
}
