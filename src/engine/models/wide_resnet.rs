//! WideResNet-depth-k as in the TRADES / RiFT code (`wideresnet.py`): `conv1`, three
//! `block{1,2,3}.layer.N` groups of pre-activation blocks (`bn1`, `conv1`, `bn2`, `conv2`,
//! `convShortcut` when widths differ), a final `bn1`, `avg_pool2d(·, 8)` and `fc`. The
//! published code also builds `sub_block1`, a copy of `block1` that forward never calls:
//! its weights are in those checkpoints, so rift loads and saves them but never uses them.
//! robustbench's `wide_resnet.py` builds it only with `sub_block1=True` (Carmon 2019 and
//! others have none) and drops the classifier's bias with `bias_last=False`; both follow
//! the spec (detected from the keys).
//! Dropout is 0 in all published AT checkpoints and is not modelled.
//!
//! Two of robustbench's networks are this one with a different forward
//! (`family::WrnVariant`): `BoostingWideResNet` (`boosting-wrn-D-K`) classifies on the
//! hypersphere (`Linear::hypersphere`), and `PAF_WideResNet` (`pssilu-wrn-D-K`) has one
//! shared `PSSiLU` (`pssilu.rs`) wherever the TRADES code has a ReLU, listed in every
//! block's keys after `bn1` and at the top after `bn1` (its blocks name their parts as
//! these do, without the `relu` members that hold no state).
use super::arch::{Activation, ArchSpec};
use super::chain::{pool_flat, staged_blocks, Chain, CutBlock, Head, NormAct, Pool, Stem};
use super::family::WrnVariant;
use super::layers::{pooled, BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use super::pssilu::{Act, PsSilu};
use tch::{nn, Tensor};

/// Also the block of robustbench's `RobustWideResNet` (`robust_resnet.rs`).
pub(super) struct WideBlock {
    bn1: BatchNorm2d,
    /// The network's shared PSSiLU (`pssilu-wrn`); None: ReLU.
    pssilu: Option<PsSilu>,
    conv1: Conv2d,
    bn2: BatchNorm2d,
    conv2: Conv2d,
    /// Present exactly when in and out widths differ (`equalInOut` is false).
    conv_shortcut: Option<Conv2d>,
}

impl WideBlock {
    pub(super) fn new(
        p: nn::Path,
        keys: &mut KeyOrder,
        c_in: i64,
        c_out: i64,
        stride: i64,
        pssilu: Option<&PsSilu>,
    ) -> Self {
        let bn1 = BatchNorm2d::new(&p / "bn1", keys, c_in);
        let pssilu = pssilu.map(|a| a.shared_at(&(&p / "activation"), keys));
        let conv1 = Conv2d::new(&p / "conv1", keys, c_in, c_out, 3, stride);
        let bn2 = BatchNorm2d::new(&p / "bn2", keys, c_out);
        let conv2 = Conv2d::new(&p / "conv2", keys, c_out, c_out, 3, 1);
        let conv_shortcut =
            (c_in != c_out).then(|| Conv2d::new(&p / "convShortcut", keys, c_in, c_out, 1, stride));
        WideBlock {
            bn1,
            pssilu,
            conv1,
            bn2,
            conv2,
            conv_shortcut,
        }
    }

    fn act(&self, x: &Tensor) -> Tensor {
        match &self.pssilu {
            Some(a) => a.apply(x),
            None => x.relu(),
        }
    }
}

/// The `n` blocks of `p.layer`, `c_in → c_out` at `stride` in the first; ReLU, or the
/// network's shared PSSiLU where given.
pub(super) fn group(
    p: nn::Path,
    keys: &mut KeyOrder,
    n: usize,
    (c_in, c_out): (i64, i64),
    stride: i64,
    pssilu: Option<&PsSilu>,
) -> Vec<WideBlock> {
    let layer = &p / "layer";
    (0..n)
        .map(|i| {
            let (ci, s) = if i == 0 { (c_in, stride) } else { (c_out, 1) };
            WideBlock::new(&layer / i, keys, ci, c_out, s, pssilu)
        })
        .collect()
}

pub struct WideResNet {
    conv1: Conv2d,
    blocks: [Vec<WideBlock>; 3],
    /// Empty when the checkpoint has no `sub_block1`.
    sub_block1: Vec<WideBlock>,
    bn1: BatchNorm2d,
    /// `pssilu-wrn`: the one PSSiLU every block shares, here under its top-level keys.
    pssilu: Option<PsSilu>,
    pub linear: Linear,
}

impl WideResNet {
    /// `spec.blocks[0]` blocks per group (depth = 6n + 4), widen factor `spec.width`.
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Self {
        let (n, k, in_channels) = (spec.blocks[0], spec.width, spec.in_channels);
        let ch = [16, 16 * k, 32 * k, 64 * k];
        let top_act = p / "activation";
        let pssilu = (spec.wrn_variant == WrnVariant::PsSilu).then(|| PsSilu::new(&top_act));
        let act = pssilu.as_ref();
        let conv1 = Conv2d::new(p / "conv1", keys, in_channels, ch[0], 3, 1);
        let block1 = group(p / "block1", keys, n, (ch[0], ch[1]), 1, act);
        let sub_block1 = if spec.sub_block1 {
            group(p / "sub_block1", keys, n, (ch[0], ch[1]), 1, act)
        } else {
            Vec::new()
        };
        let block2 = group(p / "block2", keys, n, (ch[1], ch[2]), 2, act);
        let block3 = group(p / "block3", keys, n, (ch[2], ch[3]), 2, act);
        let bn1 = BatchNorm2d::new(p / "bn1", keys, ch[3]);
        if let Some(a) = act {
            a.list_keys(&top_act, keys);
        }
        let linear = Linear::with_bias(
            p / "fc",
            keys,
            spec.feature_dim,
            spec.num_classes,
            spec.classifier_bias,
        );
        let linear = match spec.wrn_variant {
            WrnVariant::Boosting => linear.hypersphere(),
            _ => linear,
        };
        WideResNet {
            conv1,
            blocks: [block1, block2, block3],
            sub_block1,
            bn1,
            pssilu,
            linear,
        }
    }

    /// The head's activation: ReLU, or the shared PSSiLU.
    fn head_act(&self) -> Act<'_> {
        match &self.pssilu {
            Some(a) => Act::PsSilu(a),
            None => Activation::Relu.into(),
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.conv1.forward(x);
        for block in self.blocks.iter().flatten() {
            out = block.forward(&out, train);
        }
        let out = self.head_act().apply(&self.bn1.forward(&out, train));
        // Flattened per sample: for 32×32 inputs this equals the published
        // `view(-1, nChannels)`; for larger inputs the classifier is wider instead of the
        // batch silently growing.
        self.linear.forward(&pool_flat(&out, 8))
    }

    fn list(blocks: &[WideBlock], out: &mut Vec<ModuleInfo>) {
        for b in blocks {
            b.modules(out);
        }
    }

    pub fn unused_modules(&self) -> Vec<ModuleInfo> {
        let mut out = Vec::new();
        Self::list(&self.sub_block1, &mut out);
        out
    }

    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        let (mut sh, mut sw) = (self.conv1.out_size(h), self.conv1.out_size(w));
        for b in self.blocks.iter().flatten() {
            sh = b.out_size(sh);
            sw = b.out_size(sw);
        }
        Some(self.bn1.weight.size()[0] * pooled(sh, 8)? * pooled(sw, 8)?)
    }
}

/// MRC fast-path caching; see `resnet.rs` for the contract.
impl CutBlock for WideBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let act = self.act(&self.bn1.forward(x, train));
        let out = self.act(&self.conv1.forward_bn(&self.bn2, &act, train));
        let out = self.conv2.forward(&out);
        match &self.conv_shortcut {
            // Not equalInOut: the shortcut sees the activated input.
            Some(conv) => conv.forward(&act) + out,
            None => x + out,
        }
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.conv1.info());
        out.push(self.conv2.info());
        if let Some(c) = &self.conv_shortcut {
            out.push(c.info());
        }
    }

    fn out_size(&self, s: i64) -> i64 {
        self.conv2.out_size(self.conv1.out_size(s))
    }

    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let act = self.act(&self.bn1.forward(x, false));
        let short = || match &self.conv_shortcut {
            Some(conv) => conv.forward(&act),
            None => x.shallow_clone(),
        };
        Some(match leaf {
            "conv1" => vec![act.shallow_clone(), short()],
            "conv2" => vec![
                self.act(&self.conv1.forward_bn(&self.bn2, &act, false)),
                short(),
            ],
            "convShortcut" if self.conv_shortcut.is_some() => {
                let main = self
                    .conv2
                    .forward(&self.act(&self.conv1.forward_bn(&self.bn2, &act, false)));
                vec![main, act.shallow_clone()]
            }
            _ => return None,
        })
    }

    /// Same operand order as `forward` (shortcut + main), so results are bit-identical.
    fn resume(&self, leaf: &str, c: &[Tensor]) -> Tensor {
        match (leaf, &self.conv_shortcut) {
            ("conv1", _) => {
                &c[1]
                    + self
                        .conv2
                        .forward(&self.act(&self.conv1.forward_bn(&self.bn2, &c[0], false)))
            }
            ("conv2", _) => &c[1] + self.conv2.forward(&c[0]),
            (_, Some(conv)) => conv.forward(&c[1]) + &c[0],
            (_, None) => Tensor::new(),
        }
    }
}

impl WideResNet {
    /// This network as MRC's fast path sees it (`chain.rs`): stem conv1, the blocks, final
    /// BatchNorm → ReLU (PSSiLU) → `avg_pool2d(·, 8)`, the classifier (normalising its
    /// input itself in the hypersphere head, so the classifier's cache is the same).
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            stem: Stem::Conv {
                conv: &self.conv1,
                norm: None,
                max_pool: false,
            },
            blocks: staged_blocks(&self.blocks, |i, j| format!("block{}.layer.{j}", i + 1)),
            head: Head::Pooled {
                norm: Some(NormAct {
                    bn: &self.bn1,
                    act: self.head_act(),
                    sparse: None,
                }),
                pool: Pool::Avg(8),
            },
            classifier: &self.linear,
        }
    }
}
