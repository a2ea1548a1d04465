//! The supported networks (tch over `nn::Path`, keys identical to PyTorch's), their
//! detection from checkpoints, and loading with a strict key/shape diff.
mod activation;
mod alexnet;
mod alexnet_config;
mod arch;
mod chain;
pub mod compute;
mod convnext;
mod convnext_config;
mod detect;
mod dm_preact_resnet;
mod dm_wide_resnet;
mod error;
mod family;
pub mod file_layout;
mod layer_norm;
mod layers;
mod mean_sparse;
mod net;
mod normalize;
mod preact_resnet;
mod pssilu;
mod ra_config;
mod ra_resnet;
mod ra_resnet_config;
mod ra_wide_resnet;
mod resnet;
mod resnext;
mod resnext_config;
mod robust_config;
mod robust_resnet;
mod state_diff;
mod swin;
mod swin_config;
mod tv_config;
mod tv_resnet;
mod vit;
mod vit_config;
mod wide_resnet;
mod xcit;
mod xcit_cls;
mod xcit_config;

pub use arch::{Activation, ArchSpec, Family, WrnVariant};
pub use compute::{Compute, Precision};
pub use detect::detect_arch;
pub use error::{ModelError, KNOWN_ARCHS};
pub use layers::ModuleInfo;
pub use normalize::{NormSource, Normalization, NormalizeChoice};
pub use ra_config::{RaWideConfig, SeOrder, SqueezeExcite};

use super::checkpoint::{Checkpoint, RawTensor};
use super::tensors::{kind_of, to_raw, to_tensor};
use compute::{to_channels_last, to_contiguous, Bf16Switch};
use file_layout::FileLayout;
use layers::KeyOrder;
use net::Network;
use std::collections::HashMap;
use tch::{nn, Device, Kind, Tensor};

/// What the user chose about the model on the command line (`--arch`, `--width`,
/// `--activation`); everything left open is detected from the checkpoint.
#[derive(Clone, Debug, Default)]
pub struct ModelChoice {
    /// None or "auto": detect.
    pub arch: Option<String>,
    pub width: Option<i64>,
    /// Only for families with an activation choice (DM); None: the zoo's default.
    pub activation: Option<Activation>,
    /// `--normalize`.
    pub normalize: NormalizeChoice,
}

/// Where the activation of a model came from, for outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationSource {
    /// The family has a fixed activation (ReLU).
    Fixed,
    /// The state dict cannot tell; the zoo's default for the family was assumed.
    Assumed,
    /// `--activation`.
    Flag,
}

/// A network with its state. Inputs are pixels in [0, 1]; normalisation is the first op
/// of `forward`, so attacks perturb pixels.
pub struct Model {
    pub spec: ArchSpec,
    pub activation_source: ActivationSource,
    pub normalization: Normalization,
    vs: nn::VarStore,
    net: Box<dyn Network>,
    /// State-dict keys in PyTorch's order.
    keys: Vec<String>,
    /// 1×C×1×1 mean and std, or None for raw pixels (`--normalize none`).
    input_stats: Option<(Tensor, Tensor)>,
    compute: Compute,
    /// Shared with every Conv2d and Linear of `net`.
    bf16: Bf16Switch,
    /// The layout of the file the model was read from, where it is not rift's.
    file_layout: Option<FileLayout>,
}

impl Model {
    /// A freshly initialised network (for training); normalised by `mean`/`std`.
    pub fn new(
        spec: ArchSpec,
        device: Device,
        mean: &[f32],
        std: &[f32],
        norm_name: &str,
    ) -> Result<Model, ModelError> {
        Self::build(
            spec,
            device,
            Some((mean, std, norm_name)),
            None,
            &NormalizeChoice::Auto,
        )
    }

    fn build(
        spec: ArchSpec,
        device: Device,
        dataset_norm: Option<(&[f32], &[f32], &str)>,
        stored: Option<normalize::StoredStats>,
        choice: &NormalizeChoice,
    ) -> Result<Model, ModelError> {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let mut keys = KeyOrder::default();
        // The checkpoint's own statistics stay in the state (and in saved files) whether
        // or not they are applied.
        // A dotted key (`normalize.mean`) is a variable of a sub-path: tch refuses dots in
        // variable names.
        let add_stat = |key: &str, value: Tensor| match key.rsplit_once('.') {
            Some((module, leaf)) => (&root / module).add(leaf, value, false),
            None => root.add(key, value, false),
        };
        let stored_vars = match &stored {
            Some(st) => {
                let mean = add_stat(st.keys.0, normalize::stored_value(st.mean, device)?);
                let std = add_stat(st.keys.1, normalize::stored_value(st.std, device)?);
                keys.names.push(st.keys.0.into());
                keys.names.push(st.keys.1.into());
                Some((mean, std))
            }
            None => None,
        };
        let (source, input_stats) = normalize::resolve(
            choice,
            stored
                .as_ref()
                .zip(stored_vars.as_ref())
                .map(|(st, (m, s))| (st, m, s)),
            dataset_norm,
            spec.in_channels,
            device,
        )?;
        let normalization = Normalization {
            choice: choice.clone(),
            source,
        };
        let net = net::build(&root, &mut keys, &spec)?;
        let activation_source = if spec.family.has_activation_choice() {
            ActivationSource::Assumed
        } else {
            ActivationSource::Fixed
        };
        Ok(Model {
            spec,
            activation_source,
            normalization,
            vs,
            net,
            keys: keys.names,
            input_stats,
            compute: Compute::default(),
            bf16: keys.bf16,
            file_layout: None,
        })
    }

    /// Builds the network a checkpoint holds (`arch`: None or "auto" = detect) and loads
    /// its state strictly: every key present, none extra, every shape equal.
    pub fn from_checkpoint(
        ckpt: &Checkpoint,
        arch: Option<&str>,
        width: Option<i64>,
        device: Device,
        dataset_norm: (&[f32], &[f32], &str),
    ) -> Result<Model, ModelError> {
        let choice = ModelChoice {
            arch: arch.map(str::to_string),
            width,
            ..ModelChoice::default()
        };
        Self::from_checkpoint_with(ckpt, &choice, device, dataset_norm)
    }

    /// `from_checkpoint` with every command-line choice (`--activation` too).
    pub fn from_checkpoint_with(
        ckpt: &Checkpoint,
        choice: &ModelChoice,
        device: Device,
        dataset_norm: (&[f32], &[f32], &str),
    ) -> Result<Model, ModelError> {
        let (arch, width) = (choice.arch.as_deref(), choice.width);
        let path = ckpt.path.display().to_string();
        // A published Swin in timm's older layout loads as robustbench's
        // `checkpoint_filter_fn` would load it, and is written back in that layout.
        let (remapped, file_layout) = FileLayout::of(&ckpt.tensors).unzip();
        let tensors = remapped.as_deref().unwrap_or(&ckpt.tensors);
        let shapes: HashMap<String, Vec<usize>> = tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.shape.clone()))
            .collect();
        let spec = match arch {
            None | Some("auto") => {
                detect::detect_arch(&shapes).map_err(|reason| ModelError::CannotDetect {
                    path: path.clone(),
                    reason,
                })?
            }
            Some(name) => {
                let detected = detect::detect_arch(&shapes).ok();
                // Undetected ViTs (heads in no shape) still tell their classes.
                let fallback = vit_config::classes(&shapes);
                let classes = detected.as_ref().map_or(fallback, |d| d.num_classes);
                let in_ch = detected.as_ref().map_or(3, |d| d.in_channels);
                let mut spec = ArchSpec::parse(name, width, classes, in_ch, (32, 32))?;
                if let Some(d) = detected.filter(|d| d.family == spec.family) {
                    spec.feature_dim = d.feature_dim;
                    spec.sub_block1 = d.sub_block1;
                    spec.classifier_bias = d.classifier_bias;
                }
                spec
            }
        };
        let mut spec = spec;
        if let Some(act) = choice.activation {
            if !spec.family.has_activation_choice() {
                return Err(ModelError::NoActivationChoice {
                    activation: act.name().into(),
                    arch: spec.name(),
                });
            }
            spec.activation = act;
        }
        let get = |k: &str| tensors.iter().find(|(name, _)| name == k).map(|(_, t)| t);
        let stored = normalize::stored_stats(get);
        let model = Self::build(spec, device, Some(dataset_norm), stored, &choice.normalize)
            .map_err(|e| match e {
                ModelError::BadInput(msg) => ModelError::BadInput(format!("{path}: {msg}")),
                other => other,
            })?;
        model.load_state(tensors, &path)?;
        // Loaded models start frozen (attacks need input gradients only); training code
        // unfreezes exactly what it trains.
        let mut model = model;
        model.file_layout = file_layout;
        if model.spec.meansparse {
            model.keys = mean_sparse::head_key_order(model.keys, &ckpt.tensors);
        }
        if choice.activation.is_some() {
            model.activation_source = ActivationSource::Flag;
        }
        model.vs.freeze();
        Ok(model)
    }

    /// Copies `tensors` (in rift's layout or a published one, `file_layout.rs`) into the
    /// model, refusing any key or shape mismatch (both ways). Keys are copied in the model's
    /// order, which is the order PyTorch's `load_state_dict` copies in: where several keys
    /// name one tensor (the PSSiLU network's shared activation, `pssilu.rs`), the value kept
    /// is the one PyTorch keeps.
    pub fn load_state(
        &self,
        tensors: &[(String, RawTensor)],
        path: &str,
    ) -> Result<(), ModelError> {
        let tensors = &*file_layout::in_rift_layout(tensors);
        let vars = self.vs.variables();
        if let Some(details) = state_diff::mismatch(&self.keys, &vars, tensors) {
            return Err(ModelError::StateMismatch {
                path: path.to_string(),
                arch: self.spec.name(),
                details,
            });
        }
        let by_key: HashMap<&str, &RawTensor> =
            tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
        tch::no_grad(|| -> Result<(), ModelError> {
            for k in &self.keys {
                let Some(t) = by_key.get(k.as_str()) else {
                    continue;
                };
                let mut v = vars[k].shallow_clone();
                let src = to_tensor(t)?.f_to_kind(v.kind())?;
                v.f_copy_(&src)?;
            }
            Ok(())
        })
    }

    /// The whole state, in PyTorch's key order, as plain bytes (for saving).
    pub fn state(&self) -> Result<Vec<(String, RawTensor)>, ModelError> {
        let vars = self.vs.variables();
        self.keys
            .iter()
            .map(|k| Ok((k.clone(), to_raw(&vars[k])?)))
            .collect()
    }

    /// The whole state in the layout of the file the model was read from (what rift
    /// writes for PyTorch to load: `finetune --save`, a session's chosen model).
    pub fn file_state(&self) -> Result<Vec<(String, RawTensor)>, ModelError> {
        let state = self.state()?;
        Ok(match &self.file_layout {
            Some(layout) => layout.write_back(state),
            None => state,
        })
    }

    /// The layout of the file the model was read from, where it is not rift's.
    pub fn file_layout(&self) -> Option<&FileLayout> {
        self.file_layout.as_ref()
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Conv/Linear modules the forward pass uses, in forward (depth) order.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        self.chain().modules()
    }

    /// Modules present in the state but never used by forward (WRN's `sub_block1`).
    pub fn unused_modules(&self) -> Vec<ModuleInfo> {
        self.net.unused_modules()
    }

    /// Checks an N×C×H×W input shape before any op can fail inside libtorch.
    pub fn check_input(&self, shape: &[i64]) -> Result<(), ModelError> {
        if shape.len() != 4 {
            return Err(ModelError::BadInput(format!(
                "expected N×C×H×W images, got shape {shape:?}"
            )));
        }
        let (c, h, w) = (shape[1], shape[2], shape[3]);
        if c != self.spec.in_channels {
            return Err(ModelError::BadInput(format!(
                "the model takes {} input channel(s), the images have {c}",
                self.spec.in_channels
            )));
        }
        self.net.check_size(h, w).map_err(ModelError::BadInput)?;
        let got = self.net.feature_dim(h, w);
        if got != Some(self.spec.feature_dim) {
            return Err(ModelError::BadInput(format!(
                "{h}×{w} images do not fit this {} checkpoint: its classifier takes {} features, {h}×{w} inputs give {}",
                self.spec.name(),
                self.spec.feature_dim,
                got.map_or("none (too small)".to_string(), |g| g.to_string())
            )));
        }
        Ok(())
    }

    /// Logits for pixels in [0, 1]. `train` selects BatchNorm's mode (batch statistics and
    /// running-stat updates) — attacks and evaluation use `false`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let x = self.normalize(x);
        self.net.forward(&x, train)
    }

    /// The network's input: normalised pixels, NHWC with channels-last.
    fn normalize(&self, x: &Tensor) -> Tensor {
        let x = match &self.input_stats {
            Some((mean, std)) => (x - mean) / std,
            None if self.normalization.choice == NormalizeChoice::PerImage => {
                normalize::per_image(x)
            }
            None => x.shallow_clone(),
        };
        if self.compute.channels_last {
            to_channels_last(&x)
        } else {
            x
        }
    }

    /// How this model computes (fp32 NCHW unless changed).
    pub fn compute(&self) -> Compute {
        self.compute
    }

    /// Switches precision and layout (see `compute`). Convolution weights are re-laid out
    /// in place (same values, same variables, so optimisers and interpolation are
    /// unaffected); saved state is always written contiguous.
    pub fn set_compute(&mut self, compute: Compute) -> Result<(), ModelError> {
        self.bf16.set(compute.precision == Precision::Bf16);
        if compute.channels_last != self.compute.channels_last {
            tch::no_grad(|| -> Result<(), tch::TchError> {
                for (_, mut v) in self.vs.variables() {
                    if v.dim() == 4 {
                        let relaid = if compute.channels_last {
                            to_channels_last(&v)
                        } else {
                            to_contiguous(&v)
                        };
                        v.f_set_data(&relaid)?;
                    }
                }
                Ok(())
            })?;
        }
        self.compute = compute;
        Ok(())
    }

    /// Convolution weights channels-last until the guard drops, `compute()` unchanged:
    /// the first convolution then writes NHWC activations and every later op keeps them,
    /// as with `--channels-last`, for one stage only. MRC's exact loop uses it on the CPU.
    pub fn channels_last_weights(&self) -> Result<compute::ChannelsLastWeights, ModelError> {
        Ok(compute::ChannelsLastWeights::new(
            self.vs.variables().into_values(),
        )?)
    }

    /// The cache MRC's fast path keeps for `module`: everything the logits depend on that
    /// a perturbation of `module` cannot change (eval mode, no gradients).
    pub fn prefix_cache(&self, x: &Tensor, module: &str) -> Result<Vec<Tensor>, ModelError> {
        let cache = tch::no_grad(|| {
            let xn = self.normalize(x);
            self.chain().prefix(&xn, module)
        });
        cache.ok_or_else(|| self.not_a_module(module))
    }

    /// The prefix boundary `module`'s fast-path cache is computed from (`Chain::boundary`;
    /// 0 is the raw input here, normalised on the way).
    pub fn prefix_boundary(&self, module: &str) -> Result<usize, ModelError> {
        self.chain()
            .boundary(module)
            .ok_or_else(|| self.not_a_module(module))
    }

    /// Activations at prefix boundary `to` from those at `from` (raw pixels when `from`
    /// is 0), eval mode, no gradients.
    pub fn advance_prefix(&self, at: &Tensor, from: usize, to: usize) -> Tensor {
        tch::no_grad(|| match from {
            0 if to > 0 => self.chain().advance(&self.normalize(at), 0, to),
            0 => at.shallow_clone(),
            _ => self.chain().advance(at, from, to),
        })
    }

    /// `module`'s fast-path cache from the activations at its prefix boundary (raw pixels
    /// for the stem's module); equal to `prefix_cache` of the same samples.
    pub fn prefix_cache_at(&self, at: &Tensor, module: &str) -> Result<Vec<Tensor>, ModelError> {
        let cache = tch::no_grad(|| match self.chain().boundary(module) {
            Some(0) => Some(vec![self.normalize(at)]),
            _ => self.chain().cache_at(at, module),
        });
        cache.ok_or_else(|| self.not_a_module(module))
    }

    fn not_a_module(&self, module: &str) -> ModelError {
        ModelError::BadInput(format!(
            "`{module}` is not a module of {}",
            self.spec.name()
        ))
    }

    /// Eval-mode logits from a `prefix_cache` of the same module (and the same samples).
    pub fn suffix_logits(&self, module: &str, cache: &[Tensor]) -> Tensor {
        self.chain().suffix(module, cache)
    }

    /// The network as MRC's fast path sees it (`chain.rs`).
    fn chain(&self) -> chain::Chain<'_> {
        self.net.chain()
    }

    /// A state tensor by key (shares storage with the model).
    pub fn var(&self, key: &str) -> Option<Tensor> {
        self.vs.variables().get(key).map(|t| t.shallow_clone())
    }

    /// Parameters of a module (weight, and bias where it has one), by module name.
    pub fn module_params(&self, module: &str) -> Vec<(String, Tensor)> {
        let vars = self.vs.variables();
        ["weight", "bias"]
            .iter()
            .filter_map(|leaf| {
                let key = format!("{module}.{leaf}");
                vars.get(&key).map(|t| (key, t.shallow_clone()))
            })
            .collect()
    }

    /// Every parameter the forward pass can train (not BatchNorm's running statistics).
    pub fn parameters(&self) -> Vec<Tensor> {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.shallow_clone())
            .collect()
    }

    /// Number of floating-point parameters the forward pass can train.
    pub fn num_params(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// Whether `kind` is the model's float kind (for callers building inputs).
    pub fn input_kind(&self) -> Kind {
        kind_of(super::checkpoint::DType::F32)
    }
}
