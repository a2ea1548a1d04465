//! MRC's fast path for any network that is a stem, a chain of residual blocks, a head and
//! a classifier: the prefix up to the perturbed module is computed once per batch and
//! cached, the suffix is re-run per perturbation. A family describes itself as a `Chain`
//! and its blocks implement `CutBlock`; the walking over blocks lives here once.
use super::arch::Activation;
use super::layers::{pooled, BatchNorm2d, Conv2d, Linear, ModuleInfo};
use super::mean_sparse::MeanSparse;
use super::pssilu::Act;
use tch::Tensor;

/// A residual block the fast path can cut inside (eval mode, no gradients).
pub trait CutBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor;
    /// Everything the block's output depends on that a perturbation of its module `leaf`
    /// cannot change; None when `leaf` is not one of its modules.
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>>;
    /// The block's output from `prepare`'s cache of the same `leaf`.
    fn resume(&self, leaf: &str, cache: &[Tensor]) -> Tensor;
    /// Its Conv/Linear modules in forward order.
    fn modules(&self, out: &mut Vec<ModuleInfo>);
    /// Output spatial size for an input of size `s`.
    fn out_size(&self, s: i64) -> i64;
}

/// A network that is exactly stem convolution → named blocks → BatchNorm, (MeanSparse,)
/// activation, `avg_pool2d(·, pool)` → classifier (the DM families).
pub struct ChainNet<B> {
    pub stem: Conv2d,
    pub blocks: Vec<(String, B)>,
    pub batchnorm: BatchNorm2d,
    /// The MeanSparse networks' `meansparse_end`, between the BatchNorm and the activation.
    pub sparse_end: Option<MeanSparse>,
    pub act: Activation,
    pub pool: i64,
    pub classifier: Linear,
}

/// How the head pools the last block's output before the classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// `avg_pool2d(·, k)` (kernel and stride k), the CIFAR families' fixed-size head.
    Avg(i64),
    /// `adaptive_avg_pool2d(·, 1)`: torchvision's ImageNet head, any input size.
    Global,
}

impl Pool {
    /// The pooled map flattened per sample.
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Pool::Avg(k) => pool_flat(x, k),
            Pool::Global => x.adaptive_avg_pool2d([1, 1]).flatten(1, -1),
        }
    }
}

/// torchvision's stem max-pool: 3×3, stride 2, padding 1.
pub fn stem_max_pool(x: &Tensor) -> Tensor {
    x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)
}

/// `avg_pool2d(·, k)` flattened per sample, as everywhere in rift (see wide_resnet.rs).
pub fn pool_flat(x: &Tensor, k: i64) -> Tensor {
    x.avg_pool2d([k, k], [k, k], [0, 0], false, true, None::<i64>)
        .flatten(1, -1)
}

impl<B: CutBlock> ChainNet<B> {
    fn head(&self, out: &Tensor, train: bool) -> Tensor {
        let normed =
            super::mean_sparse::maybe(&self.sparse_end, self.batchnorm.forward(out, train));
        pool_flat(&self.act.apply(&normed), self.pool)
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.stem.forward(x);
        for (_, block) in &self.blocks {
            out = block.forward(&out, train);
        }
        self.classifier.forward(&self.head(&out, train))
    }

    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        let size = |s: i64| {
            let s = self
                .blocks
                .iter()
                .fold(self.stem.out_size(s), |s, (_, b)| b.out_size(s));
            pooled(s, self.pool)
        };
        Some(self.batchnorm.weight.size()[0] * size(h)? * size(w)?)
    }

    /// This network as MRC's fast path sees it.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            stem: Stem::Conv {
                conv: &self.stem,
                norm: None,
                max_pool: false,
            },
            blocks: self
                .blocks
                .iter()
                .map(|(n, b)| (n.clone(), b as &dyn CutBlock))
                .collect(),
            head: Head::Pooled {
                norm: Some(NormAct {
                    bn: &self.batchnorm,
                    act: self.act.into(),
                    sparse: self.sparse_end.as_ref(),
                }),
                pool: Pool::Avg(self.pool),
            },
            classifier: &self.classifier,
        }
    }
}

/// The blocks of `stages` (stage by stage, in forward order) named `name(stage, index)`,
/// as a `Chain` lists them.
pub fn staged_blocks<'a, B: CutBlock + 'a>(
    stages: impl IntoIterator<Item = &'a Vec<B>>,
    name: impl Fn(usize, usize) -> String,
) -> Vec<(String, &'a dyn CutBlock)> {
    let mut out: Vec<(String, &'a dyn CutBlock)> = Vec::new();
    for (i, stage) in stages.into_iter().enumerate() {
        for (j, b) in stage.iter().enumerate() {
            out.push((name(i, j), b));
        }
    }
    out
}

/// A BatchNorm (eval mode) followed by its activation: how ResNet's stem ends, and how
/// the head of the pre-activation, wide and DM networks begins (with a MeanSparse op
/// between the two in the MeanSparse networks).
#[derive(Clone, Copy)]
pub struct NormAct<'a> {
    pub bn: &'a BatchNorm2d,
    pub act: Act<'a>,
    pub sparse: Option<&'a MeanSparse>,
}

impl NormAct<'_> {
    fn apply(&self, x: &Tensor) -> Tensor {
        let normed = self.bn.forward(x, false);
        match self.sparse {
            Some(s) => self.act.apply(&s.forward(&normed)),
            None => self.act.apply(&normed),
        }
    }
}

/// What comes before the first block.
pub enum Stem<'a> {
    /// A convolution (the stem's one perturbable module) and what follows it before the
    /// first block: the conv families.
    Conv {
        conv: &'a Conv2d,
        /// ResNet's `bn1` → ReLU.
        norm: Option<NormAct<'a>>,
        /// torchvision's 3×3 stride-2 max-pool after the stem's activation.
        max_pool: bool,
    },
    /// Nothing: the first block takes the normalised input (a family whose stem has
    /// several modules, or parameters beside them, describes it as its first block).
    #[allow(dead_code)] // the ImageNet zoo's transformers and ConvNeXts (issue 22)
    None,
}

/// The part of a network between its last block and its classifier's input, when it is
/// not the conv families' norm → pooling (a transformer's final LayerNorm and token pick).
/// It holds no perturbable module: those belong to blocks.
pub trait ChainHead {
    /// The classifier's (flattened) input from the last block's output, eval mode.
    fn features(&self, x: &Tensor) -> Tensor;
}

/// What comes between the last block and the classifier.
pub enum Head<'a> {
    /// A final BatchNorm → activation (if any), then the pooling (flattened per sample).
    Pooled {
        norm: Option<NormAct<'a>>,
        pool: Pool,
    },
    /// The family's own head.
    #[allow(dead_code)] // the ImageNet zoo's transformers and ConvNeXts (issue 22)
    Custom(&'a dyn ChainHead),
}

/// A network seen as stem → blocks → head → classifier, with module names as in its state:
/// what every family rift has is made of, so a family only names its parts.
pub struct Chain<'a> {
    pub stem: Stem<'a>,
    /// Blocks in forward order with their name prefixes (`layer.0.block.1`).
    pub blocks: Vec<(String, &'a dyn CutBlock)>,
    pub head: Head<'a>,
    pub classifier: &'a Linear,
}

impl Chain<'_> {
    /// Its Conv/Linear modules in forward order: the ones the forward pass uses, so MRC's
    /// list (a WideResNet's unused `sub_block1` is not in its chain).
    pub fn modules(&self) -> Vec<ModuleInfo> {
        let mut out = Vec::new();
        if let Stem::Conv { conv, .. } = &self.stem {
            out.push(conv.info());
        }
        for (_, b) in &self.blocks {
            b.modules(&mut out);
        }
        out.push(self.classifier.info());
        out
    }

    /// The whole stem: convolution and whatever follows it before the first block.
    fn stem(&self, x: &Tensor) -> Tensor {
        let Stem::Conv {
            conv,
            norm,
            max_pool,
        } = &self.stem
        else {
            return x.shallow_clone();
        };
        let out = conv.forward(x);
        let out = match norm {
            Some(norm) => norm.apply(&out),
            None => out,
        };
        if *max_pool {
            stem_max_pool(&out)
        } else {
            out
        }
    }

    /// The stem's perturbable module, if it has one.
    fn stem_module(&self) -> Option<&str> {
        match &self.stem {
            Stem::Conv { conv, .. } => Some(&conv.name),
            Stem::None => None,
        }
    }

    /// From the last block's output to the classifier's (flattened) input, eval mode.
    fn head(&self, x: &Tensor) -> Tensor {
        match &self.head {
            Head::Pooled {
                norm: Some(norm),
                pool,
            } => pool.apply(&norm.apply(x)),
            Head::Pooled { norm: None, pool } => pool.apply(x),
            Head::Custom(head) => head.features(x),
        }
    }

    fn leaf_in<'m>(module: &'m str, block: &str) -> Option<&'m str> {
        module.strip_prefix(block).and_then(|l| l.strip_prefix('.'))
    }

    /// The boundary `module`'s cache is computed from: 0 is the normalised input (the
    /// stem's module; with `Stem::None` boundary 1 is the same tensor), `i + 1` the input
    /// of block `i`, `blocks + 1` the last block's output
    /// (the classifier's). None when `module` is not one of the network's modules.
    pub fn boundary(&self, module: &str) -> Option<usize> {
        if self.stem_module() == Some(module) {
            return Some(0);
        }
        // Before the blocks: a block may own the classifier's prefix (AlexNet's
        // `classifier` block holds `classifier.1|4`, the classifier is `classifier.6`).
        if module == self.classifier.name {
            return Some(self.blocks.len() + 1);
        }
        if let Some(i) = self
            .blocks
            .iter()
            .position(|(name, _)| Self::leaf_in(module, name).is_some())
        {
            return Some(i + 1);
        }
        (module == self.classifier.name).then_some(self.blocks.len() + 1)
    }

    /// The activations at boundary `to` from those at boundary `from` (≤ `to`): the part
    /// of the network between them, eval mode. Modules scored in forward order thus share
    /// one walk through the prefix instead of each recomputing it from the input.
    pub fn advance(&self, x: &Tensor, from: usize, to: usize) -> Tensor {
        let mut out = x.shallow_clone();
        for b in from..to {
            out = match b {
                0 => self.stem(&out),
                _ => self.blocks[b - 1].1.forward(&out, false),
            };
        }
        out
    }

    /// `module`'s cache from the activations at its `boundary`.
    pub fn cache_at(&self, at: &Tensor, module: &str) -> Option<Vec<Tensor>> {
        match self.boundary(module)? {
            0 => Some(vec![at.shallow_clone()]),
            b if b <= self.blocks.len() => {
                let (name, block) = &self.blocks[b - 1];
                block.prepare(at, Self::leaf_in(module, name)?)
            }
            _ => Some(vec![self.head(at)]),
        }
    }

    /// The cache for `module` from normalised inputs `xn`; None when `module` is not one
    /// of the network's modules.
    pub fn prefix(&self, xn: &Tensor, module: &str) -> Option<Vec<Tensor>> {
        let at = self.advance(xn, 0, self.boundary(module)?);
        self.cache_at(&at, module)
    }

    /// Logits from `prefix`'s cache of the same module (and the same samples).
    pub fn suffix(&self, module: &str, cache: &[Tensor]) -> Tensor {
        if module == self.classifier.name {
            return self.classifier.forward(&cache[0]);
        }
        let mut out = (self.stem_module() == Some(module)).then(|| self.stem(&cache[0]));
        for (name, block) in &self.blocks {
            out = match out {
                Some(o) => Some(block.forward(&o, false)),
                None => Self::leaf_in(module, name).map(|leaf| block.resume(leaf, cache)),
            };
        }
        // `prefix` returned a cache only for a module of this chain, so `out` is set.
        self.classifier
            .forward(&self.head(&out.unwrap_or_default()))
    }
}
