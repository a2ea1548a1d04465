//! `nn.LayerNorm` as the transformer and ConvNeXt families use it: over the last
//! dimension of token tensors, or over the channels of an N×C×H×W map (timm's
//! `LayerNorm2d`, which permutes to channels-last, normalises and permutes back).
use super::layers::KeyOrder;
use tch::{nn, nn::Init, Tensor};

pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    /// timm's transformers and ConvNeXts use 1e-6; PyTorch's default is 1e-5.
    eps: f64,
}

impl LayerNorm {
    /// An affine LayerNorm over `dim` features (weight 1, bias 0, as PyTorch initialises).
    pub fn new(p: nn::Path, keys: &mut KeyOrder, dim: i64, eps: f64) -> Self {
        let weight = p.var("weight", &[dim], Init::Const(1.0));
        keys.push(&p, "weight");
        let bias = p.var("bias", &[dim], Init::Const(0.0));
        keys.push(&p, "bias");
        LayerNorm { weight, bias, eps }
    }

    /// Normalises over the last dimension (`F.layer_norm(x, (dim,), w, b, eps)`).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let dim = self.weight.size();
        x.layer_norm(&dim, Some(&self.weight), Some(&self.bias), self.eps, false)
    }

    /// Normalises an N×C×H×W map over C at every position (timm's `LayerNorm2d`).
    pub fn forward_channels(&self, x: &Tensor) -> Tensor {
        self.forward(&x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
    }
}
