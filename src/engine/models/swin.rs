//! timm's `SwinTransformer` (`swin_base_patch4_window7_224` …, `swin_config.rs` names the
//! configurations) with timm ≥ 0.9's state-dict keys in its order: `patch_embed.proj` (a
//! P×P stride-P convolution) → `patch_embed.norm` over channels-last tokens; stages
//! `layers.i`, each but the first starting with `downsample` (PatchMerging: every 2×2
//! neighbourhood's tokens concatenated → `norm` → `reduction`, a bias-free Linear 4C → 2C);
//! blocks `layers.i.blocks.j` (`norm1` → cyclic shift by half a window on odd blocks →
//! window partition → `attn.qkv` → softmax attention with the relative position bias
//! `attn.relative_position_bias_table` and, when shifted, the mask of windows that wrap
//! around → `attn.proj` → windows merged, shift undone, residual; `norm2` → `mlp.fc1` →
//! exact GELU → `mlp.fc2`, residual); the final `norm`, average pooling over tokens and
//! `head.fc`. The relative position index and the masks are computed here, as timm ≥ 0.9
//! does (non-persistent buffers; `swin_config::timm_names` drops older files' copies).
//! robustbench's MeanSparse Swin (`Meansparse_swin_L.py`, `SwinConfig::meansparse`) adds
//! four `MeanSparse` ops per block (`mean_sparse.rs`, over channels): `meansparse1` after the
//! attention residual, `meansparse2` after the MLP residual, `mlp.meansparse1` between
//! `mlp.fc1` and its GELU, `mlp.meansparse2` after `mlp.fc2`.
//! Dropout and drop-path are identities at inference and in the zoo's models; there is no
//! BatchNorm, so `train` changes nothing. Tensors stay N×H×W×C throughout, as in timm.
use super::chain::{Chain, ChainHead, CutBlock, Head, Stem};
use super::layer_norm::LayerNorm;
use super::layers::{Conv2d, KeyOrder, Linear, ModuleInfo};
use super::mean_sparse::MeanSparse;
use super::swin_config::SwinConfig;
use super::{ArchSpec, ModelError};
use tch::{nn, nn::Init, Device, Kind, Tensor};

/// The MLP's hidden width over its input width.
const MLP_RATIO: i64 = 4;
/// What timm adds to the logits of token pairs from different regions of a shifted window.
const MASKED: f32 = -100.0;

/// `patch_embed`: the patch convolution and its LayerNorm; the chain's first block.
pub struct PatchEmbed {
    proj: Conv2d,
    norm: LayerNorm,
}

impl CutBlock for PatchEmbed {
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        self.norm
            .forward(&self.proj.forward(x).permute([0, 2, 3, 1]))
    }
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        (leaf == "proj").then(|| vec![x.shallow_clone()])
    }
    fn resume(&self, _leaf: &str, cache: &[Tensor]) -> Tensor {
        self.forward(&cache[0], false)
    }
    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.proj.info());
    }
    fn out_size(&self, s: i64) -> i64 {
        self.proj.out_size(s)
    }
}

/// `layers.i.downsample`: timm's PatchMerging.
pub struct PatchMerging {
    norm: LayerNorm,
    reduction: Linear,
}

impl PatchMerging {
    /// The normalised 4C-wide tokens of each 2×2 neighbourhood, in timm's order (the
    /// neighbourhood's column offset outer, its row offset inner); odd sides padded.
    fn merged(&self, x: &Tensor) -> Tensor {
        let s = x.size();
        let (n, h, w, c) = (s[0], s[1], s[2], s[3]);
        let x = x.constant_pad_nd([0, 0, 0, w % 2, 0, h % 2]);
        let (h, w) = ((h + 1) / 2, (w + 1) / 2);
        let x = x
            .reshape([n, h, 2, w, 2, c])
            .permute([0, 1, 3, 4, 2, 5])
            .flatten(3, -1);
        self.norm.forward(&x)
    }
}

impl CutBlock for PatchMerging {
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        self.reduction.forward(&self.merged(x))
    }
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        (leaf == "reduction").then(|| vec![self.merged(x)])
    }
    fn resume(&self, _leaf: &str, cache: &[Tensor]) -> Tensor {
        self.reduction.forward(&cache[0])
    }
    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.reduction.info());
    }
    fn out_size(&self, s: i64) -> i64 {
        (s + 1) / 2
    }
}

/// The MeanSparse Swin's four ops of one block (robustbench's names).
struct BlockSparse {
    /// `meansparse1`: after the attention residual.
    attn_out: MeanSparse,
    /// `meansparse2`: after the MLP residual.
    block_out: MeanSparse,
    /// `mlp.meansparse1`: between `mlp.fc1` and the GELU.
    hidden: MeanSparse,
    /// `mlp.meansparse2`: after `mlp.fc2`.
    mlp_out: MeanSparse,
}

/// `op` over channels-last `x` where the network has it.
fn sparse(op: Option<&MeanSparse>, x: Tensor) -> Tensor {
    match op {
        Some(op) => op.forward_channels_last(&x),
        None => x,
    }
}

/// `layers.i.blocks.j`: timm's SwinTransformerBlock.
pub struct SwinBlock {
    norm1: LayerNorm,
    table: Tensor,
    qkv: Linear,
    proj: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    sparse: Option<BlockSparse>,
    heads: i64,
    window: i64,
    shift: i64,
    /// Flat indices into `table` for every token pair of a window (timm's
    /// `relative_position_index`).
    index: Tensor,
    /// windows × w² × w²: 0 or `MASKED` (timm's `attn_mask`); None when not shifted.
    mask: Option<Tensor>,
}

/// timm's `relative_position_index` for a w×w window: pair (i, j) of tokens at (yᵢ, xᵢ),
/// (yⱼ, xⱼ) reads row (yᵢ − yⱼ + w − 1)·(2w − 1) + xᵢ − xⱼ + w − 1 of the table.
fn relative_index(w: i64, device: Device) -> Tensor {
    let mut out = Vec::with_capacity((w * w * w * w) as usize);
    for i in 0..w * w {
        for j in 0..w * w {
            let (dy, dx) = (i / w - j / w + w - 1, i % w - j % w + w - 1);
            out.push(dy * (2 * w - 1) + dx);
        }
    }
    Tensor::from_slice(&out).to_device(device)
}

/// timm's `attn_mask` for a `grid`-sided map (padded to whole windows) shifted by `shift`:
/// the map's nine regions (split at −w and −shift along each side) numbered, and within
/// each window the pairs of tokens from different regions masked.
fn shift_mask(grid: i64, w: i64, shift: i64, device: Device) -> Tensor {
    let g = (grid + w - 1) / w * w;
    let region = |p: i64| i64::from(p >= g - w) + i64::from(p >= g - shift);
    let windows = g / w;
    let mut ids = Vec::with_capacity((g * g) as usize);
    for wy in 0..windows {
        for wx in 0..windows {
            for y in 0..w {
                for x in 0..w {
                    ids.push(region(wy * w + y) * 3 + region(wx * w + x));
                }
            }
        }
    }
    let ids = Tensor::from_slice(&ids).view([windows * windows, w * w]);
    let differ = ids.unsqueeze(1).ne_tensor(&ids.unsqueeze(2));
    (differ.to_kind(Kind::Float) * f64::from(MASKED)).to_device(device)
}

impl SwinBlock {
    fn new(
        p: &nn::Path,
        keys: &mut KeyOrder,
        dim: i64,
        heads: i64,
        (w, shift, grid): (i64, i64, i64),
        (ln_eps, meansparse): (f64, bool),
    ) -> Self {
        let attn = p / "attn";
        let norm1 = LayerNorm::new(p / "norm1", keys, dim, ln_eps);
        let attn_out = meansparse.then(|| MeanSparse::new(p / "meansparse1", keys, dim));
        let rows = (2 * w - 1) * (2 * w - 1);
        let table = attn.var(
            "relative_position_bias_table",
            &[rows, heads],
            Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        );
        keys.push(&attn, "relative_position_bias_table");
        let qkv = Linear::new(&attn / "qkv", keys, dim, 3 * dim);
        let proj = Linear::new(&attn / "proj", keys, dim, dim);
        let norm2 = LayerNorm::new(p / "norm2", keys, dim, ln_eps);
        let block_out = meansparse.then(|| MeanSparse::new(p / "meansparse2", keys, dim));
        let mlp = p / "mlp";
        let fc1 = Linear::new(&mlp / "fc1", keys, dim, MLP_RATIO * dim);
        let fc2 = Linear::new(&mlp / "fc2", keys, MLP_RATIO * dim, dim);
        let sparse = match (attn_out, block_out) {
            (Some(attn_out), Some(block_out)) => Some(BlockSparse {
                attn_out,
                block_out,
                hidden: MeanSparse::new(&mlp / "meansparse1", keys, MLP_RATIO * dim),
                mlp_out: MeanSparse::new(&mlp / "meansparse2", keys, dim),
            }),
            _ => None,
        };
        SwinBlock {
            norm1,
            table,
            qkv,
            proj,
            norm2,
            fc1,
            fc2,
            sparse,
            heads,
            window: w,
            shift,
            index: relative_index(w, p.device()),
            mask: (shift > 0).then(|| shift_mask(grid, w, shift, p.device())),
        }
    }

    /// The attention logits' additive term per window: heads × w² × w² position bias, plus
    /// the shift mask (windows × heads × w² × w² broadcast over the batch).
    fn bias(&self, kind: Kind) -> Tensor {
        let n = self.window * self.window;
        let bias = self
            .table
            .index_select(0, &self.index)
            .view([n, n, self.heads])
            .permute([2, 0, 1])
            .unsqueeze(0);
        match &self.mask {
            Some(m) => (bias + m.unsqueeze(1)).to_kind(kind),
            None => bias.to_kind(kind),
        }
    }

    /// Shift → pad → windows (N × windows × w² × C: the batch stays the first dimension,
    /// as the fast path's caches need) of normalised tokens.
    fn windows(&self, normed: &Tensor) -> Tensor {
        let s = normed.size();
        let (n, h, wd, c) = (s[0], s[1], s[2], s[3]);
        let w = self.window;
        let x = if self.shift > 0 {
            normed.roll([-self.shift, -self.shift], [1, 2])
        } else {
            normed.shallow_clone()
        };
        let (ph, pw) = ((w - h % w) % w, (w - wd % w) % w);
        let x = x.constant_pad_nd([0, 0, 0, pw, 0, ph]);
        let (hp, wp) = (h + ph, wd + pw);
        x.view([n, hp / w, w, wp / w, w, c])
            .permute([0, 1, 3, 2, 4, 5])
            .reshape([n, -1, w * w, c])
    }

    /// Multi-head attention within each window, before `proj`.
    fn attend(&self, windows: &Tensor) -> Tensor {
        let s = windows.size();
        let (n, t, c) = (s[0], s[2], s[3]);
        let b = n * s[1];
        let qkv = self
            .qkv
            .forward(&windows.reshape([b, t, c]))
            .reshape([b, t, 3, self.heads, c / self.heads])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let bias = self.bias(q.kind());
        // The mask differs per window: group the batch's windows by their position.
        let nw = bias.size()[0];
        let bias = bias
            .unsqueeze(0)
            .expand([b / nw, nw, self.heads, t, t], false)
            .reshape([b, self.heads, t, t]);
        Tensor::scaled_dot_product_attention(&q, &k, &v, Some(bias), 0.0, false, None, false)
            .transpose(1, 2)
            .reshape([n, -1, t, c])
    }

    /// The attention branch's output map from its windows after `proj`: merged, cropped,
    /// shift undone; `like` is the block input (for its map's size).
    fn unwindow(&self, windows: &Tensor, like: &Tensor) -> Tensor {
        let s = like.size();
        let (n, h, wd, c) = (windows.size()[0], s[1], s[2], s[3]);
        let w = self.window;
        let (hp, wp) = ((h + w - 1) / w * w, (wd + w - 1) / w * w);
        let x = windows
            .view([n, hp / w, wp / w, w, w, c])
            .permute([0, 1, 3, 2, 4, 5])
            .reshape([n, hp, wp, c])
            .narrow(1, 0, h)
            .narrow(2, 0, wd);
        if self.shift > 0 {
            x.roll([self.shift, self.shift], [1, 2])
        } else {
            x
        }
    }

    fn op(&self, pick: fn(&BlockSparse) -> &MeanSparse) -> Option<&MeanSparse> {
        self.sparse.as_ref().map(pick)
    }

    /// The GELU of `mlp.fc1`'s output (`fc1_out`), snapped first where MeanSparse is.
    fn activate(&self, fc1_out: Tensor) -> Tensor {
        sparse(self.op(|s| &s.hidden), fc1_out).gelu("none")
    }

    fn hidden(&self, x: &Tensor) -> Tensor {
        self.activate(self.fc1.forward(&self.norm2.forward(x)))
    }

    /// The block's output from the MLP's residual input `x` and `mlp.fc2`'s input.
    fn close(&self, x: &Tensor, hidden: &Tensor) -> Tensor {
        let mlp = sparse(self.op(|s| &s.mlp_out), self.fc2.forward(hidden));
        sparse(self.op(|s| &s.block_out), x + mlp)
    }

    fn mlp_residual(&self, x: &Tensor) -> Tensor {
        self.close(x, &self.hidden(x))
    }

    /// The attention residual from the block input `x` and the attention branch's output.
    fn attention_residual(&self, x: &Tensor, branch: Tensor) -> Tensor {
        sparse(self.op(|s| &s.attn_out), x + branch)
    }

    fn after_attention(&self, x: &Tensor) -> Tensor {
        let windows = self.windows(&self.norm1.forward(x));
        let branch = self.unwindow(&self.proj.forward(&self.attend(&windows)), x);
        self.attention_residual(x, branch)
    }
}

impl CutBlock for SwinBlock {
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        self.mlp_residual(&self.after_attention(x))
    }

    /// Cut right before the perturbed layer: the block input (the residual) and that
    /// layer's input.
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        Some(match leaf {
            "attn.qkv" => vec![x.shallow_clone(), self.windows(&self.norm1.forward(x))],
            "attn.proj" => {
                let windows = self.windows(&self.norm1.forward(x));
                vec![x.shallow_clone(), self.attend(&windows)]
            }
            "mlp.fc1" => {
                let h = self.after_attention(x);
                let normed = self.norm2.forward(&h);
                vec![h, normed]
            }
            "mlp.fc2" => {
                let h = self.after_attention(x);
                let hidden = self.hidden(&h);
                vec![h, hidden]
            }
            _ => return None,
        })
    }

    fn resume(&self, leaf: &str, cache: &[Tensor]) -> Tensor {
        let (x, cut) = (&cache[0], &cache[1]);
        match leaf {
            "attn.qkv" => {
                let branch = self.unwindow(&self.proj.forward(&self.attend(cut)), x);
                self.mlp_residual(&self.attention_residual(x, branch))
            }
            "attn.proj" => {
                let branch = self.unwindow(&self.proj.forward(cut), x);
                self.mlp_residual(&self.attention_residual(x, branch))
            }
            "mlp.fc1" => self.close(x, &self.activate(self.fc1.forward(cut))),
            _ => self.close(x, cut),
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

/// The final `norm` and the average over all tokens (timm's `ClassifierHead`, NHWC).
pub struct PooledHead {
    norm: LayerNorm,
}

impl ChainHead for PooledHead {
    fn features(&self, x: &Tensor) -> Tensor {
        self.norm
            .forward(x)
            .mean_dim(&[1i64, 2][..], false, None::<Kind>)
    }
}

/// One stage: its PatchMerging (None for stage 0) and its blocks.
struct Stage {
    downsample: Option<PatchMerging>,
    blocks: Vec<SwinBlock>,
}

pub struct SwinTransformer {
    embed: PatchEmbed,
    stages: Vec<Stage>,
    head: PooledHead,
    fc: Linear,
    config: SwinConfig,
}

impl SwinTransformer {
    /// The network of `spec.swin` (blocks per stage in `spec.blocks`), parameters
    /// registered in timm's order.
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Result<Self, ModelError> {
        let config = spec.swin.clone().ok_or_else(|| {
            ModelError::BadInput(format!("{} has no Swin configuration", spec.name()))
        })?;
        let ln_eps = config.ln_eps();
        let pe = p / "patch_embed";
        let embed = PatchEmbed {
            proj: Conv2d::patchify(
                &pe / "proj",
                keys,
                (spec.in_channels, config.embed_dim),
                config.patch,
            ),
            norm: LayerNorm::new(&pe / "norm", keys, config.embed_dim, ln_eps),
        };
        let mut stages = Vec::new();
        for (i, &n) in spec.blocks.iter().enumerate() {
            let layer = p / "layers" / i;
            let dim = config.dim(i);
            let downsample = (i > 0).then(|| {
                let ds = &layer / "downsample";
                PatchMerging {
                    norm: LayerNorm::new(&ds / "norm", keys, 2 * dim, ln_eps),
                    reduction: Linear::with_bias(&ds / "reduction", keys, 2 * dim, dim, false),
                }
            });
            let (w, shift) = config.window_shift(i);
            let blocks = (0..n)
                .map(|j| {
                    let s = if j % 2 == 1 { shift } else { 0 };
                    let at = &layer / "blocks" / j;
                    let geometry = (w, s, config.grid(i));
                    let norms = (ln_eps, config.meansparse);
                    SwinBlock::new(&at, keys, dim, config.heads[i], geometry, norms)
                })
                .collect();
            stages.push(Stage { downsample, blocks });
        }
        let features = config.num_features();
        let head = PooledHead {
            norm: LayerNorm::new(p / "norm", keys, features, ln_eps),
        };
        let fc = Linear::new(p / "head" / "fc", keys, features, spec.num_classes);
        Ok(SwinTransformer {
            embed,
            stages,
            head,
            fc,
            config,
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.embed.forward(x, train);
        for stage in &self.stages {
            if let Some(ds) = &stage.downsample {
                out = ds.forward(&out, train);
            }
            for block in &stage.blocks {
                out = block.forward(&out, train);
            }
        }
        self.fc.forward(&self.head.features(&out))
    }

    /// The last stage's width, which its classifier takes.
    pub fn num_features(&self) -> i64 {
        self.config.num_features()
    }

    /// Refuses any input size but the configured one: the shift masks and the windows are
    /// made for its grid (timm's `strict_img_size=True`, which these models use).
    pub fn check_size(&self, h: i64, w: i64) -> Result<(), String> {
        let s = self.config.img_size;
        if (h, w) == (s, s) {
            return Ok(());
        }
        Err(format!(
            "{h}×{w} images do not fit this {} checkpoint: a Swin Transformer takes exactly the {s}×{s} images its windows and shift masks were made for; resize them first (the zoo's ImageNet preprocessing gives 224×224)",
            self.config.name(&self.stages.iter().map(|s| s.blocks.len()).collect::<Vec<_>>()),
        ))
    }

    /// This network as MRC's fast path sees it: `patch_embed`, each stage's `downsample`
    /// and blocks as blocks, the final norm and pooling as head, `head.fc`.
    pub fn chain(&self) -> Chain<'_> {
        let mut blocks: Vec<(String, &dyn CutBlock)> = vec![("patch_embed".into(), &self.embed)];
        for (i, stage) in self.stages.iter().enumerate() {
            if let Some(ds) = &stage.downsample {
                blocks.push((format!("layers.{i}.downsample"), ds));
            }
            for (j, b) in stage.blocks.iter().enumerate() {
                blocks.push((format!("layers.{i}.blocks.{j}"), b));
            }
        }
        Chain {
            stem: Stem::None,
            blocks,
            head: Head::Custom(&self.head),
            classifier: &self.fc,
        }
    }
}
