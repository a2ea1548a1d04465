//! robustbench's `PSSiLU` (`paf_wide_resnet.py`, Dai et al. 2021, "Parameterizing
//! Activation Functions for Adversarial Robustness": Dai2021Parameterizing), the one
//! activation of `PAF_WideResNet`: x·(σ(|α|·x) − |β|) / (1 − |β|) with learnable scalars
//! α (initially 1) and β (initially 1e-8).
//!
//! `pssilu_wrn_28_10` builds ONE `PSSiLU` and hands it to every block and to the head, so
//! the network has one α and one β. PyTorch's `state_dict()` does not deduplicate shared
//! modules: the pair is saved under every block (`block1.layer.0.activation.beta`, …) and
//! at the top (`activation.beta`, `activation.alpha`, after `bn1`), and strict loading
//! wants every copy. rift holds one tensor per scalar, registered under the top-level key
//! (the one variable training sees) and aliased under each block's: every key reads and
//! writes the same storage, so a saved file has the published key set with equal copies.
//! Loading copies keys in PyTorch's order (`Model::load_state`), so should a file hold
//! copies that differ, the top-level one, loaded last, wins there as it does in PyTorch.
use super::activation::Activation;
use super::layers::KeyOrder;
use tch::{nn, nn::Init, Tensor};

pub struct PsSilu {
    alpha: Tensor,
    beta: Tensor,
}

/// robustbench's parameter order inside the module (`beta` is registered first).
const LEAVES: [&str; 2] = ["beta", "alpha"];

impl PsSilu {
    /// The network's PSSiLU with robustbench's initial values, its variables under `p`
    /// (the top-level `activation`). Its keys are not listed yet: robustbench's order puts
    /// them after every block's and the head's BatchNorm, where `list_keys` is called.
    pub fn new(p: &nn::Path) -> Self {
        PsSilu {
            beta: p.var("beta", &[1], Init::Const(1e-8)),
            alpha: p.var("alpha", &[1], Init::Const(1.0)),
        }
    }

    /// Lists the keys of the module's own path `p` (the top-level `activation`).
    pub fn list_keys(&self, p: &nn::Path, keys: &mut KeyOrder) {
        for leaf in LEAVES {
            keys.push(p, leaf);
        }
    }

    /// The same module seen from a block: its scalars registered again under the block's
    /// `activation` path `p` (not trainable there, so optimisers and parameter counts see
    /// them once) and their keys listed; the returned handle shares their storage.
    pub fn shared_at(&self, p: &nn::Path, keys: &mut KeyOrder) -> PsSilu {
        let beta = p.add(LEAVES[0], self.beta.shallow_clone(), false);
        let alpha = p.add(LEAVES[1], self.alpha.shallow_clone(), false);
        self.list_keys(p, keys);
        PsSilu { alpha, beta }
    }

    /// robustbench's forward, operation for operation.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let beta = self.beta.abs();
        let gate = (self.alpha.abs() * x).sigmoid() - &beta;
        x * gate / (1.0 - beta)
    }
}

/// An activation as a head applies it (`chain::NormAct`): a fixed function, or the
/// network's PSSiLU.
#[derive(Clone, Copy)]
pub enum Act<'a> {
    Fixed(Activation),
    PsSilu(&'a PsSilu),
}

impl Act<'_> {
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Act::Fixed(a) => a.apply(x),
            Act::PsSilu(p) => p.apply(x),
        }
    }
}

impl From<Activation> for Act<'_> {
    fn from(a: Activation) -> Self {
        Act::Fixed(a)
    }
}
