//! SGD with momentum and weight decay, with PyTorch's exact semantics
//! (`torch.optim.SGD`, dampening 0, not Nesterov):
//!   g = grad + wd·w;  b = g (first step) or μ·b + g;  w ← w − lr·b
//! and a multi-step learning-rate schedule.
use tch::Tensor;

pub struct Sgd {
    params: Vec<Tensor>,
    buffers: Vec<Option<Tensor>>,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

impl Sgd {
    pub fn new(params: Vec<Tensor>, lr: f64, momentum: f64, weight_decay: f64) -> Sgd {
        let buffers = params.iter().map(|_| None).collect();
        Sgd {
            params,
            buffers,
            lr,
            momentum,
            weight_decay,
        }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update from the gradients accumulated in the parameters.
    pub fn step(&mut self) -> Result<(), tch::TchError> {
        tch::no_grad(|| {
            for (p, buf) in self.params.iter_mut().zip(self.buffers.iter_mut()) {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let mut g = if self.weight_decay != 0.0 {
                    grad.f_add(&p.f_mul_scalar(self.weight_decay)?)?
                } else {
                    grad
                };
                if self.momentum != 0.0 {
                    let b = match buf.take() {
                        None => g.f_detach()?.copy(),
                        Some(b) => b.f_mul_scalar(self.momentum)?.f_add(&g)?,
                    };
                    g = b.shallow_clone();
                    *buf = Some(b);
                }
                let _ = p.f_sub_(&g.f_mul_scalar(self.lr)?)?;
            }
            Ok(())
        })
    }

    /// Momentum buffers (for saving a training state), in parameter order.
    pub fn buffers(&self) -> &[Option<Tensor>] {
        &self.buffers
    }

    pub fn set_buffers(&mut self, buffers: Vec<Option<Tensor>>) {
        self.buffers = buffers;
    }
}

/// The learning rate at `epoch` (from 0): `base` multiplied by `gamma` once for each
/// milestone ≤ epoch.
pub fn multistep_lr(base: f64, milestones: &[usize], gamma: f64, epoch: usize) -> f64 {
    base * gamma.powi(milestones.iter().filter(|&&m| m <= epoch).count() as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        assert_eq!(multistep_lr(0.1, &[5], 0.1, 4), 0.1);
        assert!((multistep_lr(0.1, &[5], 0.1, 5) - 0.01).abs() < 1e-15);
        assert!((multistep_lr(0.1, &[100, 105], 0.1, 107) - 0.001).abs() < 1e-15);
    }

    #[test]
    fn sgd_matches_the_formula() {
        let w = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let mut opt = Sgd::new(vec![w.shallow_clone()], 0.1, 0.9, 0.01);
        for _ in 0..2 {
            opt.zero_grad();
            let loss = (&w * &w).sum(tch::Kind::Float);
            loss.backward();
            opt.step().unwrap();
        }
        // By hand: g1 = 2w + 0.01w = 2.01w; w1 = w − 0.1·2.01w = 0.799w;
        // g2 = 2.01·w1; b2 = 0.9·g1 + g2; w2 = w1 − 0.1·b2.
        let w0 = [1.0f64, -2.0];
        for (i, &x) in w0.iter().enumerate() {
            let g1 = 2.01 * x;
            let w1 = x - 0.1 * g1;
            let b2 = 0.9 * g1 + 2.01 * w1;
            let w2 = w1 - 0.1 * b2;
            assert!((w.double_value(&[i as i64]) - w2).abs() < 1e-5);
        }
    }
}
