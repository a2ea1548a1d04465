//! timm's `Xcit` (Cross-Covariance Image Transformer; robustbench's Debenedetti2022Light
//! XCiTs, `xcit_config.rs` names the configurations) with timm's state-dict keys in its
//! order: `cls_token`, `patch_embed.proj.{0,2,4,6}` (bias-free 3×3 stride-2 convolutions
//! `.0`, each with its BatchNorm `.1`, GELU between), `pos_embed.token_projection` (a 1×1
//! convolution of fixed Fourier features of the token grid), `blocks.i` (XCA blocks), the
//! class token, `cls_attn_blocks.j` (class-attention blocks), the final `norm` and `head`.
//!
//! Between the XCA blocks the tokens travel as an N×H×W×C map: the blocks' Linears and
//! LayerNorms act on the last dimension, the local patch interaction (LPI) needs the grid,
//! and the shape carries H and W (which timm passes beside its N×HW×C tokens). LayerNorms
//! use timm's eps 1e-6; BatchNorms PyTorch's 1e-5. Any input size works: the positions are
//! computed for the grid, as timm does.
use super::chain::{Chain, ChainHead, CutBlock, Head, Stem};
use super::layer_norm::LayerNorm;
use super::layers::{BatchNorm2d, Conv2d, KeyOrder, Linear, ModuleInfo};
use super::xcit_cls::{scaled, ClassAttentionBlock, ClassTokenHead, LN_EPS};
use super::xcit_config::XcitConfig;
use super::{ArchSpec, ModelError};
use std::f64::consts::PI;
use tch::{nn, nn::Init, Kind, Tensor};

/// `PositionalEncodingFourier`'s features per axis and temperature.
const FOURIER_DIM: i64 = 32;
const TEMPERATURE: f64 = 10000.0;

/// `F.normalize(x, dim=-1)`: x over its L2 norm clamped at 1e-12.
fn l2_normalize(x: &Tensor) -> Tensor {
    let norm = x
        .norm_scalaropt_dim(2.0, [-1i64].as_slice(), true)
        .clamp_min(1e-12);
    x / norm
}

/// The patch embedding and the positions: the chain's first block (its convolutions are
/// modules; the position projection, a function of the grid alone, is a parameter beside
/// them like a ViT's `pos_embed`).
pub struct PatchEmbed {
    convs: Vec<(Conv2d, BatchNorm2d)>,
    token_projection: Conv2d,
}

impl PatchEmbed {
    /// `PositionalEncodingFourier(B=1, H, W)`, N×H×W×C: for each axis the positions
    /// 1..=n scaled to (0, 2π], divided by 10000^(2⌊i/2⌋/32), sines of the even features
    /// and cosines of the odd ones interleaved, y's 32 then x's, projected by the 1×1
    /// convolution.
    fn positions(&self, h: i64, w: i64) -> Tensor {
        let opts = (Kind::Float, self.token_projection.weight.device());
        let axis = |n: i64| {
            let t = Tensor::arange_start(1, n + 1, opts);
            t.g_div_scalar(n as f64 + 1e-6).g_mul_scalar(2.0 * PI)
        };
        let half = Tensor::arange(FOURIER_DIM, opts)
            .g_div_scalar(2.0)
            .floor()
            .g_mul_scalar(2.0 / FOURIER_DIM as f64);
        let dim_t = Tensor::from(TEMPERATURE).to_device(opts.1).pow(&half);
        let features = |pos: Tensor| {
            // pos: n × 32 → sin of features 0, 2, …, cos of 1, 3, … interleaved.
            let n = pos.size()[0];
            let sin = pos.slice(1, 0, FOURIER_DIM, 2).sin();
            let cos = pos.slice(1, 1, FOURIER_DIM, 2).cos();
            Tensor::stack(&[sin, cos], 2).reshape([n, FOURIER_DIM])
        };
        let y = features(axis(h).unsqueeze(1) / &dim_t); // h × 32
        let x = features(axis(w).unsqueeze(1) / &dim_t); // w × 32
        let y = y
            .view([h, 1, FOURIER_DIM])
            .expand([h, w, FOURIER_DIM], false);
        let x = x
            .view([1, w, FOURIER_DIM])
            .expand([h, w, FOURIER_DIM], false);
        let grid = Tensor::cat(&[y, x], 2).permute([2, 0, 1]).unsqueeze(0);
        self.token_projection.forward(&grid).permute([0, 2, 3, 1])
    }
}

impl CutBlock for PatchEmbed {
    /// The token map (N×H×W×C) with its positions added.
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = x.shallow_clone();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            if i > 0 {
                out = out.gelu("none");
            }
            out = conv.forward_bn(bn, &out, train);
        }
        let size = out.size();
        out.permute([0, 2, 3, 1]) + self.positions(size[2], size[3])
    }

    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let named =
            |(c, _): &(Conv2d, BatchNorm2d)| c.name.strip_prefix("patch_embed.") == Some(leaf);
        self.convs
            .iter()
            .any(named)
            .then(|| vec![x.shallow_clone()])
    }

    fn resume(&self, _leaf: &str, cache: &[Tensor]) -> Tensor {
        self.forward(&cache[0], false)
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.extend(self.convs.iter().map(|(c, _)| c.info()));
    }

    fn out_size(&self, s: i64) -> i64 {
        self.convs.iter().fold(s, |s, (c, _)| c.out_size(s))
    }
}

/// One XCA block (`blocks.i`): cross-covariance attention, local patch interaction, MLP,
/// each pre-normed, layer-scaled and residual.
pub struct XcaBlock {
    gamma1: Tensor,
    gamma3: Tensor,
    gamma2: Tensor,
    norm1: LayerNorm,
    temperature: Tensor,
    qkv: Linear,
    proj: Linear,
    norm3: LayerNorm,
    conv1: Conv2d,
    bn: BatchNorm2d,
    conv2: Conv2d,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: i64,
}

impl XcaBlock {
    fn new(p: &nn::Path, keys: &mut KeyOrder, config: &XcitConfig) -> Self {
        let d = config.embed_dim;
        let gamma = |keys: &mut KeyOrder, name: &str| {
            let t = p.var(name, &[d], Init::Const(1.0));
            keys.push(p, name);
            t
        };
        let (gamma1, gamma3, gamma2) = (
            gamma(keys, "gamma1"),
            gamma(keys, "gamma3"),
            gamma(keys, "gamma2"),
        );
        let norm1 = LayerNorm::new(p / "norm1", keys, d, LN_EPS);
        let attn = p / "attn";
        let temperature = attn.var("temperature", &[config.heads, 1, 1], Init::Const(1.0));
        keys.push(&attn, "temperature");
        let qkv = Linear::new(&attn / "qkv", keys, d, 3 * d);
        let proj = Linear::new(&attn / "proj", keys, d, d);
        let norm3 = LayerNorm::new(p / "norm3", keys, d, LN_EPS);
        let lpi = p / "local_mp";
        // Depthwise 3×3 convolutions with bias, padded by 1 (`groups=dim`).
        let conv1 = Conv2d::with_bias(&lpi / "conv1", keys, (d, d, d), 3, 1, 1);
        let bn = BatchNorm2d::new(&lpi / "bn", keys, d);
        let conv2 = Conv2d::with_bias(&lpi / "conv2", keys, (d, d, d), 3, 1, 1);
        let norm2 = LayerNorm::new(p / "norm2", keys, d, LN_EPS);
        let mlp = p / "mlp";
        XcaBlock {
            gamma1,
            gamma3,
            gamma2,
            norm1,
            temperature,
            qkv,
            proj,
            norm3,
            conv1,
            bn,
            conv2,
            norm2,
            fc1: Linear::new(&mlp / "fc1", keys, d, config.mlp_dim),
            fc2: Linear::new(&mlp / "fc2", keys, config.mlp_dim, d),
            heads: config.heads,
        }
    }

    /// Cross-covariance attention of a normalised map before `proj`: per head, q and k
    /// (channels × tokens) L2-normalised over the tokens, softmax(temperature · q·kᵀ) of
    /// the channels' cross-covariance applied to v.
    fn attend(&self, qkv: &Tensor) -> Tensor {
        let size = qkv.size();
        let (n, h, w, d) = (size[0], size[1], size[2], size[3] / 3);
        let qkv = qkv
            .reshape([n, h * w, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 4, 1]);
        let q = l2_normalize(&qkv.get(0));
        let k = l2_normalize(&qkv.get(1));
        let attn = (q.matmul(&k.transpose(-2, -1)) * &self.temperature).softmax(-1, Kind::Float);
        attn.matmul(&qkv.get(2))
            .permute([0, 3, 1, 2])
            .reshape([n, h, w, d])
    }

    fn after_attention(&self, x: &Tensor, pre_proj: &Tensor) -> Tensor {
        x + scaled(&self.gamma1, self.proj.forward(pre_proj))
    }

    /// The LPI's hidden map (N×C×H×W) before `conv2`.
    fn lpi_hidden(&self, normed_map: &Tensor, train: bool) -> Tensor {
        self.bn
            .forward(&self.conv1.forward(normed_map).gelu("none"), train)
    }

    fn after_lpi(&self, x: &Tensor, hidden: &Tensor) -> Tensor {
        x + scaled(
            &self.gamma3,
            self.conv2.forward(hidden).permute([0, 2, 3, 1]),
        )
    }

    /// `norm3` of the map, channels first for the convolutions.
    fn lpi_input(&self, x: &Tensor) -> Tensor {
        self.norm3.forward(x).permute([0, 3, 1, 2])
    }

    fn mlp_hidden(&self, x: &Tensor) -> Tensor {
        self.fc1.forward(&self.norm2.forward(x)).gelu("none")
    }

    fn after_mlp(&self, x: &Tensor, hidden: &Tensor) -> Tensor {
        x + scaled(&self.gamma2, self.fc2.forward(hidden))
    }

    fn stage1(&self, x: &Tensor) -> Tensor {
        let pre = self.attend(&self.qkv.forward(&self.norm1.forward(x)));
        self.after_attention(x, &pre)
    }

    fn stage2(&self, x: &Tensor, train: bool) -> Tensor {
        self.after_lpi(x, &self.lpi_hidden(&self.lpi_input(x), train))
    }

    fn stage3(&self, x: &Tensor) -> Tensor {
        self.after_mlp(x, &self.mlp_hidden(x))
    }
}

impl CutBlock for XcaBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.stage3(&self.stage2(&self.stage1(x), train))
    }

    /// Cut right before the perturbed layer: the residual it adds to and its input.
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        Some(match leaf {
            "attn.qkv" => vec![x.shallow_clone(), self.norm1.forward(x)],
            "attn.proj" => {
                let pre = self.attend(&self.qkv.forward(&self.norm1.forward(x)));
                vec![x.shallow_clone(), pre]
            }
            "local_mp.conv1" => {
                let h = self.stage1(x);
                let input = self.lpi_input(&h);
                vec![h, input]
            }
            "local_mp.conv2" => {
                let h = self.stage1(x);
                let hidden = self.lpi_hidden(&self.lpi_input(&h), false);
                vec![h, hidden]
            }
            "mlp.fc1" | "mlp.fc2" => {
                let h = self.stage2(&self.stage1(x), false);
                let cut = if leaf == "mlp.fc1" {
                    self.norm2.forward(&h)
                } else {
                    self.mlp_hidden(&h)
                };
                vec![h, cut]
            }
            _ => return None,
        })
    }

    fn resume(&self, leaf: &str, cache: &[Tensor]) -> Tensor {
        let (x, cut) = (&cache[0], &cache[1]);
        let after_mlp_input = |h: Tensor| self.stage3(&h);
        match leaf {
            "attn.qkv" => {
                let h = self.after_attention(x, &self.attend(&self.qkv.forward(cut)));
                after_mlp_input(self.stage2(&h, false))
            }
            "attn.proj" => after_mlp_input(self.stage2(&self.after_attention(x, cut), false)),
            "local_mp.conv1" => {
                let hidden = self
                    .bn
                    .forward(&self.conv1.forward(cut).gelu("none"), false);
                after_mlp_input(self.after_lpi(x, &hidden))
            }
            "local_mp.conv2" => after_mlp_input(self.after_lpi(x, cut)),
            "mlp.fc1" => self.after_mlp(x, &self.fc1.forward(cut).gelu("none")),
            _ => self.after_mlp(x, cut),
        }
    }

    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.qkv.info());
        out.push(self.proj.info());
        out.push(self.conv1.info());
        out.push(self.conv2.info());
        out.push(self.fc1.info());
        out.push(self.fc2.info());
    }

    fn out_size(&self, s: i64) -> i64 {
        s
    }
}

pub struct Xcit {
    embed: PatchEmbed,
    blocks: Vec<(String, XcaBlock)>,
    cls_blocks: Vec<(String, ClassAttentionBlock)>,
    final_norm: ClassTokenHead,
    head: Linear,
    config: XcitConfig,
}

impl Xcit {
    /// The network of `spec.xcit`, parameters registered in timm's order (`cls_token`,
    /// `patch_embed`, `pos_embed`, `blocks`, `cls_attn_blocks`, `norm`, `head`; a block's
    /// layer scales before its layers), initialised near timm's.
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Result<Self, ModelError> {
        let config = spec.xcit.ok_or_else(|| {
            ModelError::BadInput(format!("{} has no XCiT configuration", spec.name()))
        })?;
        let d = config.embed_dim;
        let cls_token = p.var(
            "cls_token",
            &[1, 1, d],
            Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        );
        keys.push(p, "cls_token");
        let proj = p / "patch_embed" / "proj";
        let convs = config
            .patch_convs(spec.in_channels)
            .into_iter()
            .enumerate()
            .map(|(i, (c_in, c_out, stride))| {
                let at = &proj / (2 * i);
                let conv = Conv2d::new(&at / 0, keys, c_in, c_out, 3, stride);
                (conv, BatchNorm2d::new(&at / 1, keys, c_out))
            })
            .collect();
        let token_projection = Conv2d::with_bias(
            p / "pos_embed" / "token_projection",
            keys,
            (2 * FOURIER_DIM, d, 1),
            1,
            1,
            0,
        );
        let embed = PatchEmbed {
            convs,
            token_projection,
        };
        let blocks = (0..config.depth)
            .map(|i| {
                let block = XcaBlock::new(&(p / "blocks" / i), keys, &config);
                (format!("blocks.{i}"), block)
            })
            .collect();
        if config.cls_attn_layers == 0 {
            return Err(ModelError::BadInput(format!(
                "{}: rift's XCiT reads its class token out of class-attention blocks, and this one has none",
                config.name()
            )));
        }
        // The first class-attention block puts the class token in front of the tokens.
        let mut cls_token = Some(cls_token);
        let cls_blocks = (0..config.cls_attn_layers)
            .map(|i| {
                let at = p / "cls_attn_blocks" / i;
                let block = ClassAttentionBlock::new(&at, keys, &config, cls_token.take());
                (format!("cls_attn_blocks.{i}"), block)
            })
            .collect();
        let final_norm = ClassTokenHead {
            norm: LayerNorm::new(p / "norm", keys, d, LN_EPS),
        };
        let head = Linear::new(p / "head", keys, d, spec.num_classes);
        Ok(Xcit {
            embed,
            blocks,
            cls_blocks,
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
        for (_, block) in &self.cls_blocks {
            out = block.forward(&out, train);
        }
        self.head.forward(&self.final_norm.features(&out))
    }

    /// The width of its tokens, which its classifier takes.
    pub fn embed_dim(&self) -> i64 {
        self.config.embed_dim
    }

    /// This network as MRC's fast path sees it: the patch embedding (with the positions)
    /// as the first block, one block per `blocks.i` and per `cls_attn_blocks.j` (the first
    /// puts the class token in front), the final norm and class token as the head, `head`.
    pub fn chain(&self) -> Chain<'_> {
        let mut blocks: Vec<(String, &dyn CutBlock)> = vec![("patch_embed".into(), &self.embed)];
        for (name, block) in &self.blocks {
            blocks.push((name.clone(), block));
        }
        for (name, block) in &self.cls_blocks {
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
