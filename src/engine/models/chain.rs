//! MRC's fast path for any network that is a stem, a chain of residual blocks, a head and
//! a classifier: the prefix up to the perturbed module is computed once per batch and
//! cached, the suffix is re-run per perturbation. A family describes itself as a `Chain`
//! and its blocks implement `CutBlock`; the walking over blocks lives here once.
use super::layers::Linear;
use tch::Tensor;

/// A residual block the fast path can cut inside (eval mode, no gradients).
pub trait CutBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor;
    /// Everything the block's output depends on that a perturbation of its module `leaf`
    /// cannot change; None when `leaf` is not one of its modules.
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>>;
    /// The block's output from `prepare`'s cache of the same `leaf`.
    fn resume(&self, leaf: &str, cache: &[Tensor]) -> Tensor;
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
