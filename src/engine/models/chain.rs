//! MRC's fast path for any network that is a stem, a chain of residual blocks, a head and
//! a classifier: the prefix up to the perturbed module is computed once per batch and
//! cached, the suffix is re-run per perturbation. A family describes itself as a `Chain`
//! and its blocks implement `CutBlock`; the walking over blocks lives here once.
use super::arch::Activation;
use super::layers::{pooled, BatchNorm2d, Conv2d, Linear, ModuleInfo};
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

/// A network that is exactly stem convolution → named blocks → BatchNorm, activation,
/// `avg_pool2d(·, pool)` → classifier (the DM families).
pub struct ChainNet<B> {
    pub stem: Conv2d,
    pub blocks: Vec<(String, B)>,
    pub batchnorm: BatchNorm2d,
    pub act: Activation,
    pub pool: i64,
    pub classifier: Linear,
}

impl<B: CutBlock> ChainNet<B> {
    /// Flattened per sample, as everywhere in rift (see wide_resnet.rs).
    fn head(&self, out: &Tensor, train: bool) -> Tensor {
        let out = self.act.apply(&self.batchnorm.forward(out, train));
        let k = self.pool;
        let out = out.avg_pool2d([k, k], [k, k], [0, 0], false, true, None::<i64>);
        out.flatten(1, -1)
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.stem.forward(x);
        for (_, block) in &self.blocks {
            out = block.forward(&out, train);
        }
        self.classifier.forward(&self.head(&out, train))
    }

    pub fn modules(&self) -> Vec<ModuleInfo> {
        let mut out = vec![self.stem.info()];
        for (_, b) in &self.blocks {
            b.modules(&mut out);
        }
        out.push(self.classifier.info());
        out
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

    /// This network as MRC's fast path sees it; `f` runs with it.
    pub fn with_chain<R>(&self, f: impl FnOnce(&Chain) -> R) -> R {
        let stem = |x: &Tensor| self.stem.forward(x);
        let head = |x: &Tensor| self.head(x, false);
        f(&Chain {
            stem_name: &self.stem.name,
            stem: &stem,
            blocks: self
                .blocks
                .iter()
                .map(|(n, b)| (n.clone(), b as &dyn CutBlock))
                .collect(),
            head: &head,
            classifier: &self.classifier,
        })
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

/// A network seen as stem → blocks → head → classifier, with module names as in its state.
pub struct Chain<'a> {
    /// The stem's perturbable module (its first convolution).
    pub stem_name: &'a str,
    /// The whole stem (convolution and whatever follows it before the first block).
    pub stem: &'a dyn Fn(&Tensor) -> Tensor,
    /// Blocks in forward order with their name prefixes (`layer.0.block.1`).
    pub blocks: Vec<(String, &'a dyn CutBlock)>,
    /// From the last block's output to the classifier's (flattened) input, eval mode.
    pub head: &'a dyn Fn(&Tensor) -> Tensor,
    pub classifier: &'a Linear,
}

impl Chain<'_> {
    fn leaf_in<'m>(module: &'m str, block: &str) -> Option<&'m str> {
        module.strip_prefix(block).and_then(|l| l.strip_prefix('.'))
    }

    /// The cache for `module` from normalised inputs `xn`; None when `module` is not one
    /// of the network's modules.
    pub fn prefix(&self, xn: &Tensor, module: &str) -> Option<Vec<Tensor>> {
        if module == self.stem_name {
            return Some(vec![xn.shallow_clone()]);
        }
        let mut out = (self.stem)(xn);
        for (name, block) in &self.blocks {
            if let Some(leaf) = Self::leaf_in(module, name) {
                return block.prepare(&out, leaf);
            }
            out = block.forward(&out, false);
        }
        (module == self.classifier.name).then(|| vec![(self.head)(&out)])
    }

    /// Logits from `prefix`'s cache of the same module (and the same samples).
    pub fn suffix(&self, module: &str, cache: &[Tensor]) -> Tensor {
        if module == self.classifier.name {
            return self.classifier.forward(&cache[0]);
        }
        let mut out = (module == self.stem_name).then(|| (self.stem)(&cache[0]));
        for (name, block) in &self.blocks {
            out = match out {
                Some(o) => Some(block.forward(&o, false)),
                None => Self::leaf_in(module, name).map(|leaf| block.resume(leaf, cache)),
            };
        }
        // `prefix` returned a cache only for a module of this chain, so `out` is set.
        self.classifier
            .forward(&(self.head)(&out.unwrap_or_default()))
    }
}
