//! timm's `VisionTransformer` (`vit_base_patch16_224`, DeiT: `vit_config.rs` names the
//! configurations) with timm's state-dict keys in its order: `cls_token`, `pos_embed`,
//! `patch_embed.proj` (a P×P stride-P convolution with bias), `blocks.i` (pre-norm
//! transformer blocks: `norm1` → `attn.qkv` → multi-head softmax attention → `attn.proj`,
//! residual; `norm2` → `mlp.fc1` → exact GELU → `mlp.fc2`, residual), the final `norm`, the
//! class token's features and the classifier `head`. LayerNorms use timm's eps 1e-6. The
//! configurations rift builds have no layer scale, no q/k norm, no `fc_norm` and no
//! dropout (timm's defaults for these models), so train and eval modes compute the same.
use super::chain::{Chain, ChainHead, CutBlock, Head, Stem};
use super::layer_norm::LayerNorm;
use super::layers::{Conv2d, KeyOrder, Linear, ModuleInfo};
use super::vit_config::VitConfig;
use super::{ArchSpec, ModelError};
use tch::{nn, nn::Init, Tensor};

/// timm's LayerNorm eps in its transformers (`partial(nn.LayerNorm, eps=1e-6)`).
const LN_EPS: f64 = 1e-6;

/// How patches become token vectors (`patch_embed.proj`).
enum Projection {
    /// timm's P×P stride-P convolution.
    Patchify(Conv2d),
    /// robustbench's ConvStem (`ConvBlock`): 3×3 stride-2 convolutions, each followed by a
    /// channels-first LayerNorm (eps 1e-6) and GELU, then a 1×1 convolution (`stem.12`).
    ConvStem(Vec<(Conv2d, LayerNorm)>, Conv2d),
}

impl Projection {
    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Projection::Patchify(conv) => conv.forward(x),
            Projection::ConvStem(stages, last) => {
                let mut out = x.shallow_clone();
                for (conv, norm) in stages {
                    out = norm.forward_channels(&conv.forward(&out)).gelu("none");
                }
                last.forward(&out)
            }
        }
    }

    fn convs(&self) -> Vec<&Conv2d> {
        match self {
            Projection::Patchify(conv) => vec![conv],
            Projection::ConvStem(stages, last) => {
                stages.iter().map(|(c, _)| c).chain([last]).collect()
            }
        }
    }
}

/// The patch embedding with the class token and positions: the chain's first block.
pub struct PatchEmbed {
    cls_token: Tensor,
    pos_embed: Tensor,
    proj: Projection,
}

impl CutBlock for PatchEmbed {
    /// Tokens (N × (1 + patches) × D): the patches' projections as a sequence, the class
    /// token in front, every position's embedding added.
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        let patches = self.proj.forward(x).flatten(2, -1).transpose(1, 2);
        let n = patches.size()[0];
        let cls = self.cls_token.expand([n, -1, -1], false);
        Tensor::cat(&[cls, patches], 1) + &self.pos_embed
    }

    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let named = |c: &&Conv2d| c.name.strip_prefix("patch_embed.") == Some(leaf);
        self.proj
            .convs()
            .iter()
            .any(named)
            .then(|| vec![x.shallow_clone()])
    }

    fn resume(&self, _leaf: &str, cache: &[Tensor]) -> Tensor {
        self.forward(&cache[0], false)
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.extend(self.proj.convs().iter().map(|c| c.info()));
    }

    /// Patches per side (the tokens are not a map; only `check_input` sizes a ViT).
    fn out_size(&self, s: i64) -> i64 {
        self.proj.convs().iter().fold(s, |s, c| c.out_size(s))
    }
}

/// One pre-norm transformer block (`blocks.i`).
pub struct EncoderBlock {
    norm1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: i64,
}

impl EncoderBlock {
    fn new(p: &nn::Path, keys: &mut KeyOrder, config: &VitConfig) -> Self {
        let d = config.embed_dim;
        let attn = p / "attn";
        let mlp = p / "mlp";
        EncoderBlock {
            norm1: LayerNorm::new(p / "norm1", keys, d, LN_EPS),
            qkv: Linear::with_bias(&attn / "qkv", keys, d, 3 * d, config.qkv_bias),
            proj: Linear::new(&attn / "proj", keys, d, d),
            norm2: LayerNorm::new(p / "norm2", keys, d, LN_EPS),
            fc1: Linear::new(&mlp / "fc1", keys, d, config.mlp_dim),
            fc2: Linear::new(&mlp / "fc2", keys, config.mlp_dim, d),
            heads: config.heads,
        }
    }

    /// Multi-head attention of normalised tokens, before `proj`: softmax(q·kᵀ/√d)·v per
    /// head (timm's fused path, `F.scaled_dot_product_attention`), heads concatenated.
    fn attend(&self, normed: &Tensor) -> Tensor {
        let size = normed.size();
        let (n, t, d) = (size[0], size[1], size[2]);
        let qkv = self
            .qkv
            .forward(normed)
            .reshape([n, t, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, None, false)
            .transpose(1, 2)
            .reshape([n, t, d])
    }

    /// The MLP branch's hidden activations (`act(fc1(norm2(x)))`).
    fn hidden(&self, x: &Tensor) -> Tensor {
        self.fc1.forward(&self.norm2.forward(x)).gelu("none")
    }

    /// The block's output from its input after the attention residual.
    fn mlp_residual(&self, x: &Tensor) -> Tensor {
        x + self.fc2.forward(&self.hidden(x))
    }
}

impl CutBlock for EncoderBlock {
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        let x = x + self.proj.forward(&self.attend(&self.norm1.forward(x)));
        self.mlp_residual(&x)
    }

    /// Cut right before the perturbed layer: its input and the residual it adds to.
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let after_attention = || x + self.proj.forward(&self.attend(&self.norm1.forward(x)));
        Some(match leaf {
            "attn.qkv" => vec![x.shallow_clone(), self.norm1.forward(x)],
            "attn.proj" => vec![x.shallow_clone(), self.attend(&self.norm1.forward(x))],
            "mlp.fc1" => {
                let h = after_attention();
                let normed = self.norm2.forward(&h);
                vec![h, normed]
            }
            "mlp.fc2" => {
                let h = after_attention();
                let hidden = self.hidden(&h);
                vec![h, hidden]
            }
            _ => return None,
        })
    }

    fn resume(&self, leaf: &str, cache: &[Tensor]) -> Tensor {
        let (x, cut) = (&cache[0], &cache[1]);
        match leaf {
            "attn.qkv" => self.mlp_residual(&(x + self.proj.forward(&self.attend(cut)))),
            "attn.proj" => self.mlp_residual(&(x + self.proj.forward(cut))),
            "mlp.fc1" => x + self.fc2.forward(&self.fc1.forward(cut).gelu("none")),
            _ => x + self.fc2.forward(cut),
        }
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        for layer in [&self.qkv, &self.proj, &self.fc1, &self.fc2] {
            out.push(layer.info());
        }
    }

    fn out_size(&self, s: i64) -> i64 {
        s
    }
}

/// The final `norm` and the class token's features (timm's `global_pool='token'`).
pub struct ClassTokenHead {
    norm: LayerNorm,
}

impl ChainHead for ClassTokenHead {
    fn features(&self, x: &Tensor) -> Tensor {
        self.norm.forward(x).select(1, 0)
    }
}

/// robustbench's `ConvBlock(width, …)` from `c_in` channels to the embedding width `d`:
/// `stem.{0,3,6,9}` convolutions of width, 2·width, 4·width, 8·width channels, LayerNorms
/// at `stem.{1,4,7,10}`, `stem.12` the 1×1 convolution (GELUs hold no keys).
fn conv_stem(p: &nn::Path, keys: &mut KeyOrder, (c_in, d): (i64, i64), width: i64) -> Projection {
    let mut stages = Vec::new();
    let mut c = c_in;
    for i in 0..4 {
        let out = width << i;
        let conv = Conv2d::same_with_bias(p / (3 * i), keys, (c, out), 3, 2);
        stages.push((conv, LayerNorm::new(p / (3 * i + 1), keys, out, LN_EPS)));
        c = out;
    }
    Projection::ConvStem(stages, Conv2d::same_with_bias(p / 12, keys, (c, d), 1, 1))
}

pub struct VisionTransformer {
    embed: PatchEmbed,
    blocks: Vec<(String, EncoderBlock)>,
    final_norm: ClassTokenHead,
    head: Linear,
    config: VitConfig,
}

impl VisionTransformer {
    /// The network of `spec.vit`, parameters registered in timm's order (`cls_token`,
    /// `pos_embed`, `patch_embed`, `blocks`, `norm`, `head`), initialised as timm does
    /// up to the distributions' details (positions N(0, 0.02²), class token N(0, 1e-12)).
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Result<Self, ModelError> {
        let config = spec.vit.ok_or_else(|| {
            ModelError::BadInput(format!("{} has no ViT configuration", spec.name()))
        })?;
        let d = config.embed_dim;
        let normal = |stdev| Init::Randn { mean: 0.0, stdev };
        let cls_token = p.var("cls_token", &[1, 1, d], normal(1e-6));
        keys.push(p, "cls_token");
        let pos_embed = p.var("pos_embed", &[1, config.tokens(), d], normal(0.02));
        keys.push(p, "pos_embed");
        let proj = p / "patch_embed" / "proj";
        let proj = match config.conv_stem {
            None => Projection::Patchify(Conv2d::patchify(
                proj,
                keys,
                (spec.in_channels, d),
                config.patch,
            )),
            Some(width) => conv_stem(&(proj / "stem"), keys, (spec.in_channels, d), width),
        };
        let embed = PatchEmbed {
            cls_token,
            pos_embed,
            proj,
        };
        let blocks = (0..config.depth)
            .map(|i| {
                let name = format!("blocks.{i}");
                let block = EncoderBlock::new(&(p / "blocks" / i), keys, &config);
                (name, block)
            })
            .collect();
        let final_norm = ClassTokenHead {
            norm: LayerNorm::new(p / "norm", keys, d, LN_EPS),
        };
        let head = Linear::new(p / "head", keys, d, spec.num_classes);
        Ok(VisionTransformer {
            embed,
            blocks,
            final_norm,
            head,
            config,
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.embed.forward(x, train);
        for (_, block) in &self.blocks {
            out = block.forward(&out, train);
        }
        self.head.forward(&self.final_norm.features(&out))
    }

    /// The width of its tokens, which its classifier takes.
    pub fn embed_dim(&self) -> i64 {
        self.config.embed_dim
    }

    /// Refuses any input size but the configured one: `pos_embed` has exactly one position
    /// per patch of it (timm's `dynamic_img_size=False`, which these models use).
    pub fn check_size(&self, h: i64, w: i64) -> Result<(), String> {
        let s = self.config.img_size;
        if (h, w) == (s, s) {
            return Ok(());
        }
        Err(format!(
            "{h}×{w} images do not fit this {} checkpoint: a ViT takes exactly the {s}×{s} images its pos_embed was made for ({} positions of {}×{} patches); resize them first (the zoo's ImageNet preprocessing gives 224×224)",
            self.config.name(),
            self.config.tokens() - 1,
            self.config.patch,
            self.config.patch,
        ))
    }

    /// This network as MRC's fast path sees it: the patch embedding as the first block
    /// (its `proj` is a module; class token and positions are parameters beside it), one
    /// block per `blocks.i`, the final norm and class token as the head, `head`.
    pub fn chain(&self) -> Chain<'_> {
        let mut blocks: Vec<(String, &dyn CutBlock)> = vec![("patch_embed".into(), &self.embed)];
        for (name, block) in &self.blocks {
            blocks.push((name.clone(), block));
        }
        Chain {
            stem: Stem::None,
            blocks,
            head: Head::Custom(&self.final_norm),
            classifier: &self.head,
        }
    }
}
