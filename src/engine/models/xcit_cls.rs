//! The class-attention end of timm's `Xcit` (`xcit.rs`): its class-attention blocks
//! (`cls_attn_blocks.j`, CaiT's `ClassAttn` with timm's `tokens_norm=True`) and the head
//! that reads the class token, with what both halves share.
use super::chain::{ChainHead, CutBlock};
use super::layer_norm::LayerNorm;
use super::layers::{KeyOrder, Linear, ModuleInfo};
use super::xcit_config::XcitConfig;
use tch::{nn, nn::Init, Tensor};

/// timm's LayerNorm eps in its transformers (`partial(nn.LayerNorm, eps=1e-6)`).
pub const LN_EPS: f64 = 1e-6;

/// `layer_scale · x` (timm's `gamma1/2/3`, one value per channel).
pub fn scaled(gamma: &Tensor, x: Tensor) -> Tensor {
    x * gamma
}

/// One class-attention block (`cls_attn_blocks.j`, timm's `tokens_norm=True`): the class
/// token attends to every token; then all tokens are normalised and the class token alone
/// goes through the MLP. The first one flattens the map and puts the class token in front
/// (timm's `forward_cls`).
pub struct ClassAttentionBlock {
    cls_token: Option<Tensor>,
    gamma1: Tensor,
    gamma2: Tensor,
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    proj: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: i64,
}

impl ClassAttentionBlock {
    /// The block at `p`; `cls_token` (timm's `Xcit.cls_token`) for the first one.
    pub fn new(
        p: &nn::Path,
        keys: &mut KeyOrder,
        config: &XcitConfig,
        cls_token: Option<Tensor>,
    ) -> Self {
        let d = config.embed_dim;
        let gamma = |keys: &mut KeyOrder, name: &str| {
            let t = p.var(name, &[d], Init::Const(1.0));
            keys.push(p, name);
            t
        };
        let (gamma1, gamma2) = (gamma(keys, "gamma1"), gamma(keys, "gamma2"));
        let norm1 = LayerNorm::new(p / "norm1", keys, d, LN_EPS);
        let attn = p / "attn";
        let q = Linear::new(&attn / "q", keys, d, d);
        let k = Linear::new(&attn / "k", keys, d, d);
        let v = Linear::new(&attn / "v", keys, d, d);
        let proj = Linear::new(&attn / "proj", keys, d, d);
        let norm2 = LayerNorm::new(p / "norm2", keys, d, LN_EPS);
        let mlp = p / "mlp";
        ClassAttentionBlock {
            cls_token,
            gamma1,
            gamma2,
            norm1,
            q,
            k,
            v,
            proj,
            norm2,
            fc1: Linear::new(&mlp / "fc1", keys, d, config.mlp_dim),
            fc2: Linear::new(&mlp / "fc2", keys, config.mlp_dim, d),
            heads: config.heads,
        }
    }

    /// The block's tokens (N×(1+HW)×C): the first block's from the map.
    fn tokens(&self, x: &Tensor) -> Tensor {
        match &self.cls_token {
            Some(cls) => {
                let size = x.size();
                let n = size[0];
                let map = x.reshape([n, -1, size[3]]);
                Tensor::cat(&[cls.expand([n, -1, -1], false), map], 1)
            }
            None => x.shallow_clone(),
        }
    }

    /// Softmax attention of the class token's query over every token's key and value
    /// (scale 1/√(C/heads)), before `proj`: N×1×C.
    fn attend(&self, normed: &Tensor) -> Tensor {
        let size = normed.size();
        let (n, t, d) = (size[0], size[1], size[2]);
        let split = |x: Tensor, t: i64| {
            x.reshape([n, t, self.heads, d / self.heads])
                .transpose(1, 2)
        };
        let q = split(self.q.forward(&normed.narrow(1, 0, 1)), 1);
        let k = split(self.k.forward(normed), t);
        let v = split(self.v.forward(normed), t);
        Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, None, false)
            .transpose(1, 2)
            .reshape([n, 1, d])
    }

    /// From the tokens, `norm1` of them and the class token's attention output (after
    /// `proj`): the residual with the patch tokens' normalised values beside the class
    /// token's attention, then `norm2` of all tokens and the class token's MLP.
    fn finish(&self, x: &Tensor, normed: &Tensor, attended: &Tensor) -> Tensor {
        let t = x.size()[1];
        let branch = Tensor::cat(&[attended.shallow_clone(), normed.narrow(1, 1, t - 1)], 1);
        let h = self.norm2.forward(&(x + scaled(&self.gamma1, branch)));
        let hidden = self.fc1.forward(&h.narrow(1, 0, 1)).gelu("none");
        self.after_mlp(&h, &hidden)
    }

    /// `h` plus its class token's MLP output (`hidden` is fc1's activations) in front of
    /// its own patch tokens: timm adds the block's normalised tokens to a copy of
    /// themselves with the class token replaced, so the patch tokens double.
    fn after_mlp(&self, h: &Tensor, hidden: &Tensor) -> Tensor {
        let t = h.size()[1];
        let cls = scaled(&self.gamma2, self.fc2.forward(hidden));
        h + Tensor::cat(&[cls, h.narrow(1, 1, t - 1)], 1)
    }
}

impl CutBlock for ClassAttentionBlock {
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        let x = self.tokens(x);
        let normed = self.norm1.forward(&x);
        let attended = self.proj.forward(&self.attend(&normed));
        self.finish(&x, &normed, &attended)
    }

    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let x = self.tokens(x);
        let normed = self.norm1.forward(&x);
        Some(match leaf {
            "attn.q" | "attn.k" | "attn.v" => vec![x, normed],
            "attn.proj" => {
                let pre = self.attend(&normed);
                vec![x, normed, pre]
            }
            "mlp.fc1" | "mlp.fc2" => {
                let attended = self.proj.forward(&self.attend(&normed));
                let t = x.size()[1];
                let branch = Tensor::cat(&[attended, normed.narrow(1, 1, t - 1)], 1);
                let h = self.norm2.forward(&(&x + scaled(&self.gamma1, branch)));
                let cls = h.narrow(1, 0, 1);
                let cut = if leaf == "mlp.fc1" {
                    cls
                } else {
                    self.fc1.forward(&cls).gelu("none")
                };
                vec![h, cut]
            }
            _ => return None,
        })
    }

    fn resume(&self, leaf: &str, cache: &[Tensor]) -> Tensor {
        match leaf {
            "attn.q" | "attn.k" | "attn.v" => {
                let attended = self.proj.forward(&self.attend(&cache[1]));
                self.finish(&cache[0], &cache[1], &attended)
            }
            "attn.proj" => self.finish(&cache[0], &cache[1], &self.proj.forward(&cache[2])),
            "mlp.fc1" => self.after_mlp(&cache[0], &self.fc1.forward(&cache[1]).gelu("none")),
            _ => self.after_mlp(&cache[0], &cache[1]),
        }
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        for layer in [&self.q, &self.k, &self.v, &self.proj, &self.fc1, &self.fc2] {
            out.push(layer.info());
        }
    }

    fn out_size(&self, s: i64) -> i64 {
        s
    }
}

/// The final `norm` and the class token's features (timm's `global_pool='token'`).
pub struct ClassTokenHead {
    pub norm: LayerNorm,
}

impl ChainHead for ClassTokenHead {
    fn features(&self, x: &Tensor) -> Tensor {
        self.norm.forward(x).select(1, 0)
    }
}
