//! timm's ConvNeXt (`timm.create_model('convnext_tiny|small|base|large')`, the layouts
//! `convnext_config.rs` names): a 4×4 stride-4 patch stem `stem.0` → LayerNorm2d `stem.1`,
//! four stages `stages.i` (stages 1–3 start with `downsample`: LayerNorm2d → 2×2 stride-2
//! conv), each of blocks `stages.i.blocks.j` (7×7 depthwise `conv_dw` → LayerNorm over
//! channels-last tokens → `mlp.fc1` → exact GELU → `mlp.fc2` → layer scale `gamma` →
//! residual sum), then timm's `NormMlpClassifierHead`: global average pooling → `head.norm`
//! → `head.fc`. Keys are timm's `state_dict()` keys in its order (a block's own `gamma`
//! parameter before its submodules), so a file rift writes loads back into timm. Dropout
//! and drop-path are identities at inference and in the zoo's models; there is no
//! BatchNorm, so `train` changes nothing.
//! robustbench's MeanSparse variant (`ConvNextConfig::meansparse`) snaps each block's
//! hidden activations before GELU and its layer-scaled branch before the sum.
use super::arch::ArchSpec;
use super::chain::{Chain, ChainHead, CutBlock, Head, Pool, Stem};
use super::convnext_config::{last_stage_size, ConvNextConfig, StemKind};
use super::layer_norm::LayerNorm;
use super::layers::{Conv2d, KeyOrder, Linear, ModuleInfo};
use super::mean_sparse::MeanSparse;
use super::ModelError;
use tch::{nn, nn::Init, Tensor};

/// timm's ConvNeXt LayerNorms (stem, downsampling, blocks, head) all use eps 1e-6.
const EPS: f64 = 1e-6;
/// The patch stem's kernel and stride.
const PATCH: i64 = 4;
/// The depthwise convolution's kernel (padding 3 keeps the size).
const KERNEL: i64 = 7;
/// The MLP's hidden width over its input width.
const MLP_RATIO: i64 = 4;
/// timm's `ls_init_value` (what an unloaded network starts with).
const LAYER_SCALE_INIT: f64 = 1e-6;

/// `stem`: the patch convolution and its LayerNorm2d; the chain's first block.
pub struct PatchStem {
    conv: Conv2d,
    norm: LayerNorm,
}

impl CutBlock for PatchStem {
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        self.norm.forward_channels(&self.conv.forward(x))
    }
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        (leaf == "0").then(|| vec![x.shallow_clone()])
    }
    fn resume(&self, _leaf: &str, cache: &[Tensor]) -> Tensor {
        self.forward(&cache[0], false)
    }
    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.conv.info());
    }
    fn out_size(&self, s: i64) -> i64 {
        self.conv.out_size(s)
    }
}

/// robustbench's ConvStem (`stem.stem`, `convstem_models.py`'s `ConvBlock1|3`): padded
/// 3×3 convolutions with biases, each followed by a channels-first LayerNorm and exact
/// GELU (`stem.stem.{3k, 3k+1}`; the GELUs hold the indices 3k+2). A cut at convolution k
/// caches its input.
pub struct ConvStem {
    layers: Vec<(Conv2d, LayerNorm)>,
}

impl ConvStem {
    fn new(p: &nn::Path, keys: &mut KeyOrder, c_in: i64, kind: StemKind, dim0: i64) -> Self {
        let mut c = c_in;
        let layers = kind
            .convs(dim0)
            .into_iter()
            .enumerate()
            .map(|(k, (c_out, stride))| {
                let conv = Conv2d::with_bias(p / (3 * k), keys, (c, c_out, 1), 3, stride, 1);
                let norm = LayerNorm::new(p / (3 * k + 1), keys, c_out, EPS);
                c = c_out;
                (conv, norm)
            })
            .collect();
        ConvStem { layers }
    }

    /// The layers `range` of the stack applied to `x`.
    fn run(&self, x: &Tensor, range: std::ops::Range<usize>) -> Tensor {
        self.layers[range]
            .iter()
            .fold(x.shallow_clone(), |x, (conv, norm)| {
                norm.forward_channels(&conv.forward(&x)).gelu("none")
            })
    }

    /// The index of the convolution a leaf (`stem.3`) names.
    fn index(&self, leaf: &str) -> Option<usize> {
        let k: usize = leaf.strip_prefix("stem.")?.parse().ok()?;
        (k.is_multiple_of(3) && k / 3 < self.layers.len()).then_some(k / 3)
    }
}

impl CutBlock for ConvStem {
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        self.run(x, 0..self.layers.len())
    }
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let k = self.index(leaf)?;
        Some(vec![self.run(x, 0..k)])
    }
    fn resume(&self, leaf: &str, cache: &[Tensor]) -> Tensor {
        let k = self.index(leaf).unwrap_or(0);
        self.run(&cache[0], k..self.layers.len())
    }
    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.extend(self.layers.iter().map(|(conv, _)| conv.info()));
    }
    fn out_size(&self, s: i64) -> i64 {
        self.layers.iter().fold(s, |s, (conv, _)| conv.out_size(s))
    }
}

/// `stages.i.downsample`: LayerNorm2d (`.0`) → 2×2 stride-2 convolution (`.1`).
pub struct Downsample {
    norm: LayerNorm,
    conv: Conv2d,
}

impl CutBlock for Downsample {
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        self.conv.forward(&self.norm.forward_channels(x))
    }
    /// The normalised map: the convolution is all a perturbation of it changes.
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        (leaf == "1").then(|| vec![self.norm.forward_channels(x)])
    }
    fn resume(&self, _leaf: &str, cache: &[Tensor]) -> Tensor {
        self.conv.forward(&cache[0])
    }
    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.conv.info());
    }
    fn out_size(&self, s: i64) -> i64 {
        self.conv.out_size(s)
    }
}

/// `stages.i.blocks.j`: timm's `ConvNeXtBlock` with `conv_mlp=False`.
pub struct ConvNextBlock {
    gamma: Tensor,
    conv_dw: Conv2d,
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    /// MeanSparse variant: `mlp.act.0` on the hidden tokens before GELU and
    /// `drop_path.1` on the layer-scaled branch before the residual sum.
    sparse: Option<(MeanSparse, MeanSparse)>,
}

impl ConvNextBlock {
    /// robustbench sizes `drop_path.1` by hard-coded widths (192, 384, 768, 1536 for
    /// stages 0–3: ConvNeXt-L's, the one network it wraps); rift takes the stage's width,
    /// the same numbers there.
    fn new(p: &nn::Path, keys: &mut KeyOrder, dim: i64, meansparse: bool) -> Self {
        let gamma = p.var("gamma", &[dim], Init::Const(LAYER_SCALE_INIT));
        keys.push(p, "gamma");
        let conv_dw =
            Conv2d::with_bias(p / "conv_dw", keys, (dim, dim, dim), KERNEL, 1, KERNEL / 2);
        let norm = LayerNorm::new(p / "norm", keys, dim, EPS);
        let mlp = p / "mlp";
        let fc1 = Linear::new(&mlp / "fc1", keys, dim, MLP_RATIO * dim);
        let act =
            meansparse.then(|| MeanSparse::new_imagenet(&mlp / "act" / 0, keys, MLP_RATIO * dim));
        let fc2 = Linear::new(&mlp / "fc2", keys, MLP_RATIO * dim, dim);
        let branch = meansparse.then(|| MeanSparse::new_imagenet(p / "drop_path" / 1, keys, dim));
        ConvNextBlock {
            gamma,
            conv_dw,
            norm,
            fc1,
            fc2,
            sparse: act.zip(branch),
        }
    }

    /// The normalised channels-last tokens (N×H×W×C) the MLP takes.
    fn tokens(&self, x: &Tensor) -> Tensor {
        self.norm
            .forward(&self.conv_dw.forward(x).permute([0, 2, 3, 1]))
    }

    fn hidden(&self, tokens: &Tensor) -> Tensor {
        let pre = self.fc1.forward(tokens);
        match &self.sparse {
            Some((act, _)) => act.forward_channels_last(&pre).gelu("none"),
            None => pre.gelu("none"),
        }
    }

    /// The residual sum from the block input and the MLP's hidden activations.
    fn finish(&self, x: &Tensor, hidden: &Tensor) -> Tensor {
        let branch =
            self.fc2.forward(hidden).permute([0, 3, 1, 2]) * self.gamma.view([1, -1, 1, 1]);
        match &self.sparse {
            Some((_, after)) => after.forward(&branch) + x,
            None => branch + x,
        }
    }
}

impl CutBlock for ConvNextBlock {
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        self.finish(x, &self.hidden(&self.tokens(x)))
    }
    /// The block input (the shortcut) and whatever precedes the perturbed layer.
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        match leaf {
            "conv_dw" => Some(vec![x.shallow_clone()]),
            "mlp.fc1" => Some(vec![x.shallow_clone(), self.tokens(x)]),
            "mlp.fc2" => Some(vec![x.shallow_clone(), self.hidden(&self.tokens(x))]),
            _ => None,
        }
    }
    fn resume(&self, leaf: &str, cache: &[Tensor]) -> Tensor {
        match leaf {
            "conv_dw" => self.forward(&cache[0], false),
            "mlp.fc1" => self.finish(&cache[0], &self.hidden(&cache[1])),
            _ => self.finish(&cache[0], &cache[1]),
        }
    }
    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.conv_dw.info());
        out.push(self.fc1.info());
        out.push(self.fc2.info());
    }
    fn out_size(&self, s: i64) -> i64 {
        s
    }
}

/// `head` before its classifier: global average pooling → `head.norm` (a LayerNorm2d on
/// the 1×1 map, the same as over the pooled vector).
pub struct PooledNorm {
    norm: LayerNorm,
}

impl ChainHead for PooledNorm {
    fn features(&self, x: &Tensor) -> Tensor {
        self.norm.forward(&Pool::Global.apply(x))
    }
}

/// One stage: its downsampling (None for stage 0, whose input already has its width and
/// size) and its blocks.
struct Stage {
    downsample: Option<Downsample>,
    blocks: Vec<ConvNextBlock>,
}

pub struct ConvNext {
    /// The `PatchStem` or a `ConvStem`.
    stem: Box<dyn CutBlock>,
    config: ConvNextConfig,
    stages: Vec<Stage>,
    head: PooledNorm,
    fc: Linear,
}

impl ConvNext {
    /// `spec.blocks`: blocks per stage (timm's `depths`); `spec.convnext`: their widths.
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Result<Self, ModelError> {
        let config = spec.convnext.ok_or_else(|| {
            ModelError::BadInput(format!("{} has no ConvNeXt configuration", spec.name()))
        })?;
        let dims = config.dims;
        let stem_path = p / "stem";
        let stem: Box<dyn CutBlock> = match config.stem {
            StemKind::Patch => {
                let channels = (spec.in_channels, dims[0], 1);
                let conv = Conv2d::with_bias(&stem_path / 0, keys, channels, PATCH, PATCH, 0);
                let norm = LayerNorm::new(&stem_path / 1, keys, dims[0], EPS);
                Box::new(PatchStem { conv, norm })
            }
            kind => Box::new(ConvStem::new(
                &(&stem_path / "stem"),
                keys,
                spec.in_channels,
                kind,
                dims[0],
            )),
        };
        let mut stages = Vec::new();
        for (i, (&n, &dim)) in spec.blocks.iter().zip(&dims).enumerate() {
            let stage = p / "stages" / i;
            let downsample = (i > 0).then(|| {
                let ds = &stage / "downsample";
                let norm = LayerNorm::new(&ds / 0, keys, dims[i - 1], EPS);
                let conv = Conv2d::with_bias(&ds / 1, keys, (dims[i - 1], dim, 1), 2, 2, 0);
                Downsample { norm, conv }
            });
            let blocks = (0..n)
                .map(|j| ConvNextBlock::new(&(&stage / "blocks" / j), keys, dim, config.meansparse))
                .collect();
            stages.push(Stage { downsample, blocks });
        }
        let head_path = p / "head";
        let head = PooledNorm {
            norm: LayerNorm::new(&head_path / "norm", keys, dims[3], EPS),
        };
        let fc = Linear::new(&head_path / "fc", keys, dims[3], spec.num_classes);
        Ok(ConvNext {
            stem,
            config,
            stages,
            head,
            fc,
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.stem.forward(x, train);
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

    /// Classifier input width: the last stage's channels for any input of at least 32×32
    /// (global pooling); None when a downsampling would get an empty map.
    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        last_stage_size(h, &self.config)?;
        last_stage_size(w, &self.config)?;
        Some(self.head.norm.weight.size()[0])
    }

    /// This network as MRC's fast path sees it: `stem`, each stage's `downsample` and
    /// blocks as blocks, the pooled `head.norm` as head, `head.fc`.
    pub fn chain(&self) -> Chain<'_> {
        let mut blocks: Vec<(String, &dyn CutBlock)> = vec![("stem".into(), &*self.stem)];
        for (i, stage) in self.stages.iter().enumerate() {
            if let Some(ds) = &stage.downsample {
                blocks.push((format!("stages.{i}.downsample"), ds));
            }
            for (j, b) in stage.blocks.iter().enumerate() {
                blocks.push((format!("stages.{i}.blocks.{j}"), b));
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
