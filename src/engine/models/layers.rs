//! The few layers the supported networks use, registered on an `nn::Path` so that variable
//! names are PyTorch's state-dict keys. Unlike tch's own BatchNorm, ours carries
//! `num_batches_tracked` (an int64 counter PyTorch saves and strict loading requires).
use super::compute::{maybe_bf16, Bf16Switch};
use tch::{nn, nn::Init, Kind, Tensor};

/// What layers are built with: the state-dict keys, collected in PyTorch's registration
/// order (so saved files list keys in the order `model.state_dict()` would), and the model's
/// bf16 switch, which every Conv2d and Linear shares.
#[derive(Default)]
pub struct KeyOrder {
    pub names: Vec<String>,
    pub bf16: Bf16Switch,
}

impl KeyOrder {
    pub(super) fn push(&mut self, p: &nn::Path, name: &str) {
        self.names.push(p.path(name));
    }
}

/// What a weight-carrying module is, for `rift inspect` and module selection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    pub name: String,
    pub kind: String,
    pub shape: Vec<i64>,
    pub params: i64,
}

pub struct Conv2d {
    pub name: String,
    pub weight: Tensor,
    /// Only the RaWideResNet's squeeze-and-excitation convolutions, a ViT's patch
    /// embedding and the ConvNeXt's have one.
    pub bias: Option<Tensor>,
    stride: i64,
    padding: i64,
    /// Channel groups (`groups` of `nn.Conv2d`; the weight is `c_out × c_in/groups × k × k`).
    groups: i64,
    /// The DM networks' explicit padding before an unpadded convolution: (1,1,1,1) at
    /// stride 1 (the same as `padding` 1, which is how it runs) and (0,1,0,1) — left/top
    /// nothing, right/bottom one — at stride 2, TensorFlow's `SAME` for even sizes.
    pad_right_bottom: bool,
    bf16: Bf16Switch,
}

impl Conv2d {
    /// A bias-free convolution (every conv of the supported networks is bias-free but the
    /// RaWideResNet's squeeze-and-excitation ones, see `pointwise_with_bias`).
    pub fn new(
        p: nn::Path,
        keys: &mut KeyOrder,
        c_in: i64,
        c_out: i64,
        k: i64,
        stride: i64,
    ) -> Self {
        Self::grouped(p, keys, (c_in, c_out, 1), k, stride)
    }

    /// A bias-free convolution of `c_in → c_out` channels in `groups` groups (both
    /// divisible by it; the caller checks).
    pub fn grouped(
        p: nn::Path,
        keys: &mut KeyOrder,
        channels: (i64, i64, i64),
        k: i64,
        stride: i64,
    ) -> Self {
        Self::build(&p, keys, channels, k, stride)
    }

    fn build(
        p: &nn::Path,
        keys: &mut KeyOrder,
        (c_in, c_out, groups): (i64, i64, i64),
        k: i64,
        stride: i64,
    ) -> Self {
        // "Same" padding for odd kernels: 0 for 1×1, 1 for 3×3, 3 for torchvision's 7×7 stem.
        let padding = k / 2;
        let weight = p.var(
            "weight",
            &[c_out, c_in / groups, k, k],
            Init::Kaiming {
                dist: nn::init::NormalOrUniform::Normal,
                fan: nn::init::FanInOut::FanOut,
                non_linearity: nn::init::NonLinearity::ReLU,
            },
        );
        keys.push(p, "weight");
        Conv2d {
            name: strip_dot(&p.path("")),
            weight,
            bias: None,
            stride,
            padding,
            groups,
            pad_right_bottom: false,
            bf16: keys.bf16.clone(),
        }
    }

    /// A 1×1 convolution with a bias (`nn.Conv2d(c_in, c_out, 1)`: torchvision's
    /// `SqueezeExcitation` builds its `fc1` and `fc2` so). The bias starts at zero.
    pub fn pointwise_with_bias(p: nn::Path, keys: &mut KeyOrder, c_in: i64, c_out: i64) -> Self {
        let mut conv = Self::build(&p, keys, (c_in, c_out, 1), 1, 1);
        conv.bias = Some(p.var("bias", &[c_out], Init::Const(0.0)));
        keys.push(&p, "bias");
        conv
    }

    /// A P×P convolution with bias at stride P, unpadded (`nn.Conv2d(c_in, c_out, P, P)`):
    /// a ViT's patch embedding, which projects each non-overlapping patch to a token.
    pub fn patchify(
        p: nn::Path,
        keys: &mut KeyOrder,
        (c_in, c_out): (i64, i64),
        patch: i64,
    ) -> Self {
        Self::same_with_bias(p, keys, (c_in, c_out), patch, patch).unpadded()
    }

    /// A k×k convolution with bias and "same" padding k/2 (robustbench's ConvStem:
    /// `nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)`, and a 1×1). The bias starts at 0.
    pub fn same_with_bias(
        p: nn::Path,
        keys: &mut KeyOrder,
        (c_in, c_out): (i64, i64),
        k: i64,
        stride: i64,
    ) -> Self {
        Self::with_bias(p, keys, (c_in, c_out, 1), k, stride, k / 2)
    }

    /// The same convolution without padding.
    fn unpadded(mut self) -> Self {
        self.padding = 0;
        self
    }

    /// A convolution with a bias and explicit `padding` (timm's ConvNeXt: the unpadded 4×4
    /// stride-4 patch stem and 2×2 stride-2 downsamplings, the 7×7 depthwise convolution
    /// padded by 3 in as many groups as channels). The bias starts at zero.
    pub fn with_bias(
        p: nn::Path,
        keys: &mut KeyOrder,
        channels: (i64, i64, i64),
        k: i64,
        stride: i64,
        padding: i64,
    ) -> Self {
        let mut conv = Self::build(&p, keys, channels, k, stride);
        conv.padding = padding;
        conv.bias = Some(p.var("bias", &[channels.1], Init::Const(0.0)));
        keys.push(&p, "bias");
        conv
    }

    /// A bias-free 3×3 convolution of the DM networks (`padding=0` in the module, the
    /// input padded by the block; see `pad_right_bottom`). Only strides 1 and 2 exist there.
    pub fn dm_same(p: nn::Path, keys: &mut KeyOrder, c_in: i64, c_out: i64, stride: i64) -> Self {
        Self::dm_same_grouped(p, keys, (c_in, c_out, 1), stride)
    }

    /// `dm_same` in `groups` groups (the RaWideResNet's `conv_0`).
    pub fn dm_same_grouped(
        p: nn::Path,
        keys: &mut KeyOrder,
        channels: (i64, i64, i64),
        stride: i64,
    ) -> Self {
        let mut conv = Self::grouped(p, keys, channels, 3, stride);
        if stride != 1 {
            conv.padding = 0;
            conv.pad_right_bottom = true;
        }
        conv
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        match &self.bias {
            Some(bias) => maybe_bf16(&self.bf16, x, &[&self.weight, bias], |x, w| {
                self.convolve(x, &w[0], Some(&w[1]))
            }),
            None => maybe_bf16(&self.bf16, x, &[&self.weight], |x, w| {
                self.convolve(x, &w[0], None)
            }),
        }
    }

    /// `bn(self(x))`. In eval mode on the CPU in fp32, under a `BatchNormFolding` guard
    /// (AutoAttack's), the BatchNorm is folded into the convolution as inference engines
    /// do: weight · α per output channel and bias β (+ own bias · α), with BatchNorm's α
    /// and β. The fold is computed from the live tensors at every call, so gradients still
    /// reach both layers' parameters. Why: on the CPU a ResNet18-w4's forward and
    /// input-gradient pass at batch 61 take 5.7 and 14.0 ms folded against 7.4 and
    /// 18.8 ms unfolded (channels-last, PyTorch 2.11, 2 threads), and attacks on small
    /// CIFAR models are mostly these passes. Only rounding differs from the two layers.
    pub fn forward_bn(&self, bn: &BatchNorm2d, x: &Tensor, train: bool) -> Tensor {
        if !super::compute::batchnorm_folding()
            || train
            || x.device() != tch::Device::Cpu
            || x.kind() != Kind::Float
            || self.bf16.on()
        {
            return bn.forward(&self.forward(x), train);
        }
        let (alpha, beta) = bn.eval_scale_shift();
        let weight = &self.weight * alpha.view([-1, 1, 1, 1]);
        let bias = match &self.bias {
            Some(b) => b * &alpha + beta,
            None => beta,
        };
        self.convolve(x, &weight, Some(&bias))
    }

    /// The convolution with these parameters and `self`'s geometry.
    fn convolve(&self, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let (s, p, g) = (self.stride, self.padding, self.groups);
        if self.pad_right_bottom {
            x.constant_pad_nd([0, 1, 0, 1])
                .conv2d(weight, bias, [s, s], [p, p], [1, 1], g)
        } else {
            x.conv2d(weight, bias, [s, s], [p, p], [1, 1], g)
        }
    }

    pub fn info(&self) -> ModuleInfo {
        let s = self.weight.size();
        let pad = if self.pad_right_bottom {
            " pad (0,1,0,1)"
        } else {
            ""
        };
        let groups = if self.groups > 1 {
            format!(" groups {}", self.groups)
        } else {
            String::new()
        };
        let bias = self.bias.as_ref().map_or(0, |_| s[0]);
        let with_bias = if bias > 0 { " with bias" } else { "" };
        ModuleInfo {
            name: self.name.clone(),
            kind: format!(
                "Conv2d {}x{} stride {}{pad}{groups}{with_bias}",
                s[2], s[3], self.stride
            ),
            params: s.iter().product::<i64>() + bias,
            shape: s,
        }
    }

    /// Output spatial size for an input of size `s` (PyTorch's formula).
    pub fn out_size(&self, s: i64) -> i64 {
        let k = self.weight.size()[2];
        let s = s + i64::from(self.pad_right_bottom);
        (s + 2 * self.padding - k) / self.stride + 1
    }
}

pub struct BatchNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: Tensor,
    /// PyTorch's default 0.1; the RaWideResNet's BatchNorms use 0.01.
    momentum: f64,
}

impl BatchNorm2d {
    pub fn new(p: nn::Path, keys: &mut KeyOrder, c: i64) -> Self {
        Self::with_momentum(p, keys, c, 0.1)
    }

    /// A BatchNorm whose running statistics move by `momentum` per training batch.
    pub fn with_momentum(p: nn::Path, keys: &mut KeyOrder, c: i64, momentum: f64) -> Self {
        let weight = p.var("weight", &[c], Init::Const(1.0));
        let bias = p.var("bias", &[c], Init::Const(0.0));
        let running_mean = p.zeros_no_train("running_mean", &[c]);
        let running_var = p.ones_no_train("running_var", &[c]);
        let num_batches_tracked = p.add(
            "num_batches_tracked",
            Tensor::zeros([], (Kind::Int64, p.device())),
            false,
        );
        for k in [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked",
        ] {
            keys.push(&p, k);
        }
        BatchNorm2d {
            weight,
            bias,
            running_mean,
            running_var,
            num_batches_tracked,
            momentum,
        }
    }

    /// Train mode uses batch statistics and updates the running ones in place (by
    /// `momentum`; eps 1e-5, PyTorch's default); eval mode uses the running statistics.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        if !train
            && super::compute::batchnorm_folding()
            && x.device() == tch::Device::Cpu
            && x.kind() == Kind::Float
            && super::compute::is_channels_last(x)
        {
            return self.eval_affine(x);
        }
        if train {
            tch::no_grad(|| {
                let mut n = self.num_batches_tracked.shallow_clone();
                let _ = n.g_add_scalar_(1);
            });
        }
        Tensor::batch_norm(
            x,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            self.momentum,
            1e-5,
            true,
        )
    }

    /// Eval mode's per-channel scale and shift (α = weight / √(var + ε), β = bias − mean · α):
    /// the affine map PyTorch's CPU kernel computes.
    pub fn eval_scale_shift(&self) -> (Tensor, Tensor) {
        let alpha = &self.weight * (&self.running_var + 1e-5).rsqrt();
        let beta = &self.bias - &self.running_mean * &alpha;
        (alpha, beta)
    }

    /// Eval mode as `x · α + β` in two elementwise ops. On channels-last CPU activations
    /// libtorch's batch_norm backward is slow for narrow layers (22 ms against 3 ms for the
    /// 3×3 convolution beside it, 4 channels at 32×32, 320 images); the elementwise ops'
    /// backward is one multiply. AutoAttack runs channels-last on the CPU and holds a
    /// `BatchNormFolding` guard: this is its BatchNorm wherever one does not follow a
    /// convolution (there `Conv2d::forward_bn` folds it).
    fn eval_affine(&self, x: &Tensor) -> Tensor {
        let c = self.weight.size()[0];
        let (alpha, beta) = self.eval_scale_shift();
        x * alpha.view([1, c, 1, 1]) + beta.view([1, c, 1, 1])
    }
}

pub struct Linear {
    pub name: String,
    pub weight: Tensor,
    /// None for robustbench's WideResNet with `bias_last=False`.
    pub bias: Option<Tensor>,
    /// BoostingWideResNet's hypersphere head: features and weight rows L2-normalised
    /// (see `hypersphere`).
    unit_rows: bool,
    bf16: Bf16Switch,
}

impl Linear {
    pub fn new(p: nn::Path, keys: &mut KeyOrder, c_in: i64, c_out: i64) -> Self {
        Self::with_bias(p, keys, c_in, c_out, true)
    }

    pub fn with_bias(
        p: nn::Path,
        keys: &mut KeyOrder,
        c_in: i64,
        c_out: i64,
        has_bias: bool,
    ) -> Self {
        let bound = 1.0 / (c_in as f64).sqrt();
        let weight = p.var(
            "weight",
            &[c_out, c_in],
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        keys.push(&p, "weight");
        let bias = has_bias.then(|| {
            keys.push(&p, "bias");
            p.var(
                "bias",
                &[c_out],
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )
        });
        Linear {
            name: strip_dot(&p.path("")),
            weight,
            bias,
            unit_rows: false,
            bf16: keys.bf16.clone(),
        }
    }

    /// The layer as robustbench's `BoostingWideResNet` (Pang2020Boosting) uses it: its
    /// input and each row of its weight L2-normalised (`F.normalize(·, p=2, dim=1)`), so
    /// a logit is a cosine similarity. robustbench overwrites `fc.weight.data` with its
    /// normalised rows on every forward; rift normalises as a function of the stored
    /// weight instead, which gives the same logits and leaves the stored weight as it is.
    /// Fine-tuning this layer therefore trains the stored weight through the
    /// normalisation (only each row's direction matters; a gradient step has no component
    /// along the row), where robustbench's own training stepped the normalised rows and
    /// re-projected them on the next forward. A saved file holds the weight as trained:
    /// robustbench's forward normalises it again, so its logits are rift's.
    pub fn hypersphere(mut self) -> Self {
        self.unit_rows = true;
        self
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        if self.unit_rows {
            let (x, weight) = (unit_rows(x), unit_rows(&self.weight));
            return affine(&self.bf16, &x, &weight, self.bias.as_ref());
        }
        affine(&self.bf16, x, &self.weight, self.bias.as_ref())
    }

    pub fn info(&self) -> ModuleInfo {
        let s = self.weight.size();
        let bias = if self.bias.is_some() { s[0] } else { 0 };
        ModuleInfo {
            name: self.name.clone(),
            kind: match (self.bias.is_some(), self.unit_rows) {
                (true, false) => "Linear".into(),
                (false, false) => "Linear (no bias)".into(),
                (true, true) => "Linear (L2-normalised)".into(),
                (false, true) => "Linear (no bias, L2-normalised)".into(),
            },
            params: s.iter().product::<i64>() + bias,
            shape: s,
        }
    }
}

/// `x·wᵀ + b`, in bf16 when the switch is on.
fn affine(bf16: &Bf16Switch, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    match bias {
        Some(bias) => maybe_bf16(bf16, x, &[weight, bias], |x, w| {
            x.linear(&w[0], Some(&w[1]))
        }),
        None => maybe_bf16(bf16, x, &[weight], |x, w| x.linear(&w[0], None::<&Tensor>)),
    }
}

/// `F.normalize(x, p=2, dim=1)`: each row divided by its L2 norm, at least 1e-12.
fn unit_rows(x: &Tensor) -> Tensor {
    x / x
        .norm_scalaropt_dim(2, [1i64].as_slice(), true)
        .clamp_min(1e-12)
}

fn strip_dot(s: &str) -> String {
    s.trim_end_matches('.').to_string()
}

/// `avg_pool2d(x, k)` output size, or None when the map is smaller than the kernel.
pub fn pooled(s: i64, k: i64) -> Option<i64> {
    if s < k {
        None
    } else {
        Some((s - k) / k + 1)
    }
}
