//! How a model computes (issue 5): numeric precision of its convolutions and linear layers,
//! and the memory format of its activations. The default — fp32, contiguous (NCHW) — gives
//! the published numbers; the others trade exactness for speed and are recorded wherever a
//! result is saved.
//!
//! bf16 works like PyTorch's autocast for these networks: each Conv2d and Linear casts its
//! input and weight to bfloat16, runs, and casts the output back to fp32, so BatchNorm,
//! ReLU, the residual sums, the loss and every weight (the optimizer's master copy) stay
//! fp32 and gradients reach fp32 weights through the casts. tch only wraps libtorch's CUDA
//! fp16 autocast switch, so rift casts per layer itself: the same arithmetic on CPU and GPU.
//!
//! Channels-last (NHWC) is a layout, not a different computation: libtorch infers it from
//! strides, so inputs and convolution weights are given NHWC strides (a permuted copy seen
//! through the inverse permutation; tch has no memory-format call) and every op after them
//! keeps the layout. Results differ from NCHW only by summation order inside kernels.
//! MRC's exact loop on the CPU uses `ChannelsLastWeights` whatever the setting: there the
//! layout is the difference between missing and meeting its speed target (issue 26).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// fp32 everywhere (the default and the published setting).
    #[default]
    Fp32,
    /// Convolutions and linear layers in bfloat16, everything else fp32.
    Bf16,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Precision, String> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            _ => Err(format!(
                "unknown precision `{s}`; expected fp32 (the default) or bf16"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// Precision and layout, set once per model with `Model::set_compute`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compute {
    pub precision: Precision,
    pub channels_last: bool,
}

impl Compute {
    /// As recorded in outputs: `fp32`, `bf16`, `fp32, channels-last`, ...
    pub fn text(&self) -> String {
        if self.channels_last {
            format!("{}, channels-last", self.precision.name())
        } else {
            self.precision.name().to_string()
        }
    }

    /// Whether this is the default (exact, published) setting.
    pub fn is_default(&self) -> bool {
        *self == Compute::default()
    }
}

/// The bf16 switch every Conv2d and Linear of one model shares (one model may be driven
/// from another thread than the one that built it, hence atomic).
#[derive(Clone, Debug, Default)]
pub struct Bf16Switch(Arc<AtomicBool>);

impl Bf16Switch {
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }

    pub fn on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `f(x', w')` with x and w cast to bf16 when `switch` is on (output back to fp32), else
/// `f(x, w)` untouched.
pub(crate) fn maybe_bf16(
    switch: &Bf16Switch,
    x: &Tensor,
    weights: &[&Tensor],
    f: impl Fn(&Tensor, &[Tensor]) -> Tensor,
) -> Tensor {
    if switch.on() && x.kind() == Kind::Float {
        let ws: Vec<Tensor> = weights.iter().map(|w| w.to_kind(Kind::BFloat16)).collect();
        f(&x.to_kind(Kind::BFloat16), &ws).to_kind(Kind::Float)
    } else {
        let ws: Vec<Tensor> = weights.iter().map(|w| w.shallow_clone()).collect();
        f(x, &ws)
    }
}

thread_local! {
    static FOLDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While this lives, eval-mode fp32 forwards on the CPU *on this thread* fold each
/// BatchNorm that follows a convolution into it and compute the others on channels-last
/// activations as `x·α + β` (`layers::Conv2d::forward_bn`, `BatchNorm2d::forward`).
/// AutoAttack holds one: on small CIFAR networks its passes are 1.3× faster so (see
/// `forward_bn`). Only rounding changes, but rounding is enough to move PGD's sign steps
/// and MRC's near-zero scores, so every other stage keeps PyTorch's own kernels and stays
/// comparable with it number for number. Thread-local because the attacks run on the
/// thread that holds the guard, and a stage running meanwhile on another thread (the
/// explorer's worker) must not be affected.
pub struct BatchNormFolding {
    previous: bool,
}

impl BatchNormFolding {
    pub fn on_this_thread() -> Self {
        BatchNormFolding {
            previous: FOLDING.with(|f| f.replace(true)),
        }
    }
}

impl Drop for BatchNormFolding {
    fn drop(&mut self) {
        FOLDING.with(|f| f.set(self.previous));
    }
}

/// Whether a `BatchNormFolding` guard is alive on this thread.
pub(crate) fn batchnorm_folding() -> bool {
    FOLDING.with(|f| f.get())
}

/// The same values with NHWC strides (4-D tensors; others are returned as they are).
pub fn to_channels_last(t: &Tensor) -> Tensor {
    if t.dim() != 4 || is_channels_last(t) {
        return t.shallow_clone();
    }
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Convolution weights laid out channels-last for as long as this lives, NCHW again when
/// it drops (every exit path, errors and cancels included). Same values, same variables:
/// only strides change, so an optimiser or a copy into them is unaffected.
pub struct ChannelsLastWeights {
    relaid: Vec<Tensor>,
}

impl ChannelsLastWeights {
    /// Re-lays `vars`' 4-D members out channels-last (those already so are left alone).
    pub(crate) fn new(vars: impl Iterator<Item = Tensor>) -> Result<Self, tch::TchError> {
        // On an error the guard drops here and puts back what it relaid so far.
        let mut guard = ChannelsLastWeights { relaid: Vec::new() };
        tch::no_grad(|| -> Result<(), tch::TchError> {
            for mut v in vars.filter(|v| v.dim() == 4 && !is_channels_last(v)) {
                v.f_set_data(&to_channels_last(&v))?;
                guard.relaid.push(v);
            }
            Ok(())
        })?;
        Ok(guard)
    }
}

impl Drop for ChannelsLastWeights {
    fn drop(&mut self) {
        tch::no_grad(|| {
            for v in &mut self.relaid {
                // Contiguous again; a failure leaves the same values with NHWC strides.
                let _ = v.f_set_data(&to_contiguous(v));
            }
        });
    }
}

/// The same values with the default (NCHW) strides.
pub fn to_contiguous(t: &Tensor) -> Tensor {
    t.contiguous()
}

/// Whether a 4-D tensor is laid out NHWC (channel stride 1, width stride C).
pub fn is_channels_last(t: &Tensor) -> bool {
    let (s, z) = (t.stride(), t.size());
    t.dim() == 4 && z[1] > 1 && s[1] == 1 && s[3] == z[1] && !t.is_contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_last_weights_are_put_back_when_the_guard_drops() {
        let conv = Tensor::randn([8, 3, 3, 3], (Kind::Float, tch::Device::Cpu));
        let bias = Tensor::randn([8], (Kind::Float, tch::Device::Cpu));
        let before = conv.copy();
        {
            let _g =
                ChannelsLastWeights::new([conv.shallow_clone(), bias.shallow_clone()].into_iter())
                    .unwrap();
            assert!(is_channels_last(&conv), "every handle sees the new strides");
            assert!(bias.is_contiguous());
            assert!(conv.equal(&before));
        }
        assert!(conv.is_contiguous() && !is_channels_last(&conv));
        assert!(conv.equal(&before));
    }

    #[test]
    fn precision_names_round_trip() {
        for p in [Precision::Fp32, Precision::Bf16] {
            assert_eq!(Precision::parse(p.name()), Ok(p));
        }
        assert!(Precision::parse("fp16").unwrap_err().contains("fp32"));
        let c = Compute {
            precision: Precision::Bf16,
            channels_last: true,
        };
        assert_eq!(c.text(), "bf16, channels-last");
        assert!(Compute::default().is_default() && !c.is_default());
    }

    #[test]
    fn channels_last_keeps_values_and_changes_strides() {
        let t = Tensor::randn([2, 3, 4, 5], (Kind::Float, tch::Device::Cpu));
        let c = to_channels_last(&t);
        assert!(is_channels_last(&c) && !is_channels_last(&t));
        assert_eq!(c.stride(), vec![60, 1, 15, 3]);
        assert!(c.equal(&t));
        let back = to_contiguous(&c);
        assert!(back.is_contiguous() && back.equal(&t));
    }

    fn model() -> crate::engine::models::Model {
        use crate::engine::models::{ArchSpec, Model};
        tch::manual_seed(1);
        let spec = ArchSpec::parse("resnet18", Some(4), 10, 3, (32, 32)).unwrap();
        Model::new(spec, tch::Device::Cpu, &[0.5; 3], &[0.25; 3], "test").unwrap()
    }

    #[test]
    fn channels_last_model_gives_the_same_logits_and_saves_contiguous() {
        let mut m = model();
        let x = Tensor::rand([3, 3, 32, 32], (Kind::Float, tch::Device::Cpu));
        let before = tch::no_grad(|| m.forward(&x, false));
        let state = m.state().unwrap();
        m.set_compute(Compute {
            precision: Precision::Fp32,
            channels_last: true,
        })
        .unwrap();
        assert!(is_channels_last(&m.var("layer1.0.conv1.weight").unwrap()));
        let after = tch::no_grad(|| m.forward(&x, false));
        let diff = (&after - &before).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "max |Δ logit| {diff}");
        // Saved state is byte-identical (written contiguous, same values).
        assert_eq!(m.state().unwrap(), state);
        m.set_compute(Compute::default()).unwrap();
        assert!(m.var("layer1.0.conv1.weight").unwrap().is_contiguous());
    }

    #[test]
    fn batchnorm_folding_changes_only_rounding_and_only_on_its_thread() {
        let mut m = model();
        // BatchNorms that bite: statistics and affine parameters away from 0 and 1.
        tch::no_grad(|| {
            for name in m.keys().to_vec() {
                let mut v = m.var(&name).unwrap();
                let kind = name.rsplit('.').next().unwrap_or("");
                if v.kind() == Kind::Float && (name.contains("bn") || name.contains("shortcut.1")) {
                    let r = Tensor::rand_like(&v);
                    match kind {
                        "running_var" | "weight" => v.copy_(&(r + 0.5)),
                        "running_mean" | "bias" => v.copy_(&(r - 0.5)),
                        _ => continue,
                    };
                }
            }
        });
        let x = Tensor::rand([5, 3, 32, 32], (Kind::Float, tch::Device::Cpu));
        let logits_and_grad = |m: &crate::engine::models::Model| {
            let a = x.detach().set_requires_grad(true);
            let z = m.forward(&a, false);
            let g = Tensor::run_backward(&[z.select(1, 3).sum(Kind::Float)], &[&a], false, false);
            (z.detach(), g[0].shallow_clone())
        };
        let rel = |a: &Tensor, b: &Tensor| ((a - b).abs().max() / b.abs().max()).double_value(&[]);
        let (z0, g0) = logits_and_grad(&m);
        assert!(!batchnorm_folding());
        for channels_last in [false, true] {
            m.set_compute(Compute {
                precision: Precision::Fp32,
                channels_last,
            })
            .unwrap();
            let guard = BatchNormFolding::on_this_thread();
            assert!(batchnorm_folding());
            assert!(!std::thread::spawn(batchnorm_folding).join().unwrap());
            let (z, g) = logits_and_grad(&m);
            drop(guard);
            assert!(!batchnorm_folding());
            assert!(rel(&z, &z0) < 1e-5, "logits {}", rel(&z, &z0));
            assert!(rel(&g, &g0) < 1e-4, "input gradient {}", rel(&g, &g0));
        }
    }

    #[test]
    fn bf16_runs_layers_in_bf16_and_keeps_fp32_weights_trainable() {
        let mut m = model();
        let x = Tensor::rand([4, 3, 32, 32], (Kind::Float, tch::Device::Cpu));
        let fp32 = tch::no_grad(|| m.forward(&x, false));
        m.set_compute(Compute {
            precision: Precision::Bf16,
            channels_last: false,
        })
        .unwrap();
        let w = m.var("layer2.0.conv2.weight").unwrap();
        let _ = w.set_requires_grad(true);
        let out = m.forward(&x, false);
        assert_eq!(out.kind(), Kind::Float);
        // bf16 keeps 8 mantissa bits: close to fp32, but not equal.
        let rel = ((&out - &fp32).abs().max() / fp32.abs().max()).double_value(&[]);
        assert!(rel > 0.0 && rel < 0.05, "relative difference {rel}");
        let g = Tensor::run_backward(&[out.sum(Kind::Float)], &[&w], false, false);
        assert_eq!((g[0].kind(), w.kind()), (Kind::Float, Kind::Float));
        assert!(g[0].abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }
}
