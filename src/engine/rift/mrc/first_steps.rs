//! MRC's fast path shares the first ascent step between modules. Every module's ascent
//! starts at the AT weights and, with the run's common shuffles (`mrc::first_order`), on
//! the same first batch, so its first gradient is the gradient of one loss, at one set of
//! weights, with respect to that module's weight. One forward and one backward pass over
//! the whole network give every module's: the same kernels on the same tensors as each
//! module's own pass (checked bit for bit by the pipeline bench and `tests/mrc.rs`), for
//! about the cost of two modules' first steps.
use crate::engine::models::Model;
use crate::engine::rift::mrc::adv_set::TensorSet;
use crate::engine::tensors::mean_cross_entropy;
use std::collections::HashMap;
use tch::Tensor;

/// Each module's gradient of the mean loss on the first batch at the AT weights.
#[derive(Default)]
pub struct FirstSteps {
    grads: HashMap<String, Tensor>,
}

impl FirstSteps {
    /// The first-step gradients of `modules` (names, each with a `.weight`) on the
    /// samples `first_batch` of `adv`, in that order. The weights' `requires_grad` is
    /// restored (off) on every exit path.
    pub fn compute(
        model: &Model,
        adv: &TensorSet,
        modules: &[&str],
        first_batch: &[i64],
    ) -> Result<FirstSteps, tch::TchError> {
        let weights: Vec<(String, Tensor)> = modules
            .iter()
            .filter_map(|m| {
                model
                    .var(&format!("{m}.weight"))
                    .map(|w| (m.to_string(), w))
            })
            .collect();
        for (_, w) in &weights {
            let _ = w.set_requires_grad(true);
        }
        let grads = (|| -> Result<Vec<Tensor>, tch::TchError> {
            let idx = Tensor::f_from_slice(first_batch)?.f_to_device(model.device())?;
            let x = adv.x.f_index_select(0, &idx)?;
            let y = adv.y.f_index_select(0, &idx)?;
            let loss = mean_cross_entropy(&model.forward(&x, false), &y)?;
            let inputs: Vec<&Tensor> = weights.iter().map(|(_, w)| w).collect();
            Tensor::f_run_backward(&[&loss], &inputs, false, false)
        })();
        for (_, w) in &weights {
            let _ = w.set_requires_grad(false);
        }
        let grads = grads?;
        Ok(FirstSteps {
            grads: weights.into_iter().map(|(m, _)| m).zip(grads).collect(),
        })
    }

    /// `module`'s first-step gradient, if it was computed (each is handed out once).
    pub fn take(&mut self, module: &str) -> Option<Tensor> {
        self.grads.remove(module)
    }
}
