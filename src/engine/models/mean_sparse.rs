//! MeanSparse (Amini et al. 2024; robustbench's `Meansparse_wrn_70_16.py` /
//! `Meansparse_wrn_94_16.py`, class `MeanSparse`): a per-channel op that snaps activations
//! close to the channel's mean onto the mean,
//! `where(|x − μ| < t·√σ², μ, x)` with μ = `running_mean`, σ² = `running_var` and the scalar
//! threshold t = `threshold` (t = 0: the identity). Its state is robustbench's five buffers
//! in robustbench's order, so files load both ways: `running_mean`, `running_var`,
//! `threshold`, `flag_update_statistics` (int64) and `batch_num`. rift never updates the
//! statistics (robustbench only does when `flag_update_statistics` is set, while its
//! authors calibrate them); the buffers are state, never trained.
use super::layers::KeyOrder;
use tch::{nn, Kind, Tensor};

pub struct MeanSparse {
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub threshold: Tensor,
}

impl MeanSparse {
    pub fn new(p: nn::Path, keys: &mut KeyOrder, c: i64) -> Self {
        Self::with_buffers(p, keys, c)
    }

    /// robustbench's ImageNet MeanSparse (`sparsified_model.MeanSparse_imagenet`, around
    /// a timm ConvNeXt): the same op and buffers after two it never reads, `momentum` and
    /// `epsilon` (kept so that files load both ways).
    pub fn new_imagenet(p: nn::Path, keys: &mut KeyOrder, c: i64) -> Self {
        for k in ["momentum", "epsilon"] {
            let _ = p.zeros_no_train(k, &[]);
            keys.push(&p, k);
        }
        Self::with_buffers(p, keys, c)
    }

    fn with_buffers(p: nn::Path, keys: &mut KeyOrder, c: i64) -> Self {
        let running_mean = p.zeros_no_train("running_mean", &[c]);
        let running_var = p.zeros_no_train("running_var", &[c]);
        let threshold = p.zeros_no_train("threshold", &[]);
        let _ = p.add(
            "flag_update_statistics",
            Tensor::zeros([], (Kind::Int64, p.device())),
            false,
        );
        let _ = p.zeros_no_train("batch_num", &[]);
        for k in [
            "running_mean",
            "running_var",
            "threshold",
            "flag_update_statistics",
            "batch_num",
        ] {
            keys.push(&p, k);
        }
        MeanSparse {
            running_mean,
            running_var,
            threshold,
        }
    }

    /// robustbench's forward without its `threshold == 0` branch: a zero threshold gives a
    /// zero crop, `|x − μ| < 0` never holds and `where` returns `x` (values and gradients
    /// alike), so no host sync is needed to tell the cases apart.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.snap(x, &[1, -1, 1, 1])
    }

    /// The op over channels-last maps or tokens (N×H×W×C): robustbench's ImageNet class
    /// takes this branch when `input.shape[1]` is not its channel count; rift knows
    /// the layout where it applies the op instead of guessing it from a size.
    pub fn forward_channels_last(&self, x: &Tensor) -> Tensor {
        self.snap(x, &[-1])
    }

    fn snap(&self, x: &Tensor, shape: &[i64]) -> Tensor {
        let mean = self.running_mean.view(shape);
        let crop = (&self.threshold * self.running_var.sqrt()).view(shape);
        let snap = (x - &mean).abs().lt_tensor(&crop);
        mean.to_kind(x.kind()).where_self(&snap, x)
    }
}

/// `sparse` applied to `x` where the network has one (robustbench's MeanSparse networks
/// put one after every BatchNorm and every residual sum; the plain ones have none).
pub fn maybe(sparse: &Option<MeanSparse>, x: Tensor) -> Tensor {
    match sparse {
        Some(s) => s.forward(&x),
        None => x,
    }
}

/// The model's key order with `meansparse_end.*` where the file has it. robustbench's two
/// MeanSparse WideResNets differ only there: `Meansparse_wrn_70_16.py` registers
/// `meansparse_end` before `logits`, `Meansparse_wrn_94_16.py` after it; rift builds the
/// former and follows the file, so a saved file lists its keys as the module it came
/// from would.
pub fn head_key_order<T>(mut keys: Vec<String>, file: &[(String, T)]) -> Vec<String> {
    let at = |k: &str| file.iter().position(|(name, _)| name == k);
    if let (Some(end), Some(logits)) = (at("meansparse_end.running_mean"), at("logits.weight")) {
        if logits < end {
            let (tail, mut rest): (Vec<String>, Vec<String>) = keys
                .into_iter()
                .partition(|k| k.starts_with("meansparse_end."));
            rest.extend(tail);
            keys = rest;
        }
    }
    keys
}
