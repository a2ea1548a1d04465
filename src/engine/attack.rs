//! PGD-L∞ (Madry et al.) exactly as SPEC.md §0: optional uniform random start, signed
//! gradient steps, projection onto the ε-ball around the clean input and onto [0, 1] after
//! every step, model in eval mode; restarts keep the per-sample worst case.
use super::models::Model;
use super::CancelFlag;
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct PgdConfig {
    pub eps: f64,
    pub step: f64,
    pub steps: usize,
    pub random_start: bool,
    pub restarts: usize,
}

impl Default for PgdConfig {
    fn default() -> Self {
        PgdConfig {
            eps: 8.0 / 255.0,
            step: 2.0 / 255.0,
            steps: 10,
            random_start: true,
            restarts: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    #[error("cancelled")]
    Cancelled,
    #[error("libtorch error during the attack: {0}")]
    Torch(#[from] tch::TchError),
}

/// Mean cross-entropy, the loss the published attack ascends.
fn loss(model: &Model, x: &Tensor, y: &Tensor) -> Result<Tensor, tch::TchError> {
    model
        .forward(x, false)
        .f_cross_entropy_loss::<Tensor>(y, None, tch::Reduction::Mean, -100, 0.0)
}

/// One PGD run from `x` (pixels in [0, 1]) against labels `y`.
pub fn pgd(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    cfg: &PgdConfig,
    cancel: &CancelFlag,
) -> Result<Tensor, AttackError> {
    let x0 = x.f_detach()?;
    let mut adv = if cfg.random_start {
        let noise = x0
            .f_rand_like()?
            .f_mul_scalar(2.0 * cfg.eps)?
            .f_sub_scalar(cfg.eps)?;
        (&x0 + noise).f_clamp(0.0, 1.0)?
    } else {
        x0.shallow_clone()
    };
    let lo = x0.f_sub_scalar(cfg.eps)?;
    let hi = x0.f_add_scalar(cfg.eps)?;
    for _ in 0..cfg.steps {
        if cancel.is_cancelled() {
            return Err(AttackError::Cancelled);
        }
        let a = adv.f_detach()?.set_requires_grad(true);
        let l = loss(model, &a, y)?;
        let grad = Tensor::f_run_backward(&[&l], &[&a], false, false)?;
        let step = grad[0].f_sign()?.f_mul_scalar(cfg.step)?;
        adv = (a.f_detach()? + step)
            .f_max_other(&lo)?
            .f_min_other(&hi)?
            .f_clamp(0.0, 1.0)?;
    }
    Ok(adv.f_detach()?)
}

/// Per-sample correctness of the clean prediction (bool tensor).
pub fn clean_correct(model: &Model, x: &Tensor, y: &Tensor) -> Result<Tensor, tch::TchError> {
    tch::no_grad(|| model.forward(x, false).f_argmax(-1, false)?.f_eq_tensor(y))
}

/// Per-sample robustness: true only where every restart fails to flip the prediction.
/// Returns the adversarial batch of the last restart that succeeded per sample too, so a
/// caller can keep the worst-case examples (the adversarial set of MRC).
pub fn robust_correct(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    cfg: &PgdConfig,
    cancel: &CancelFlag,
) -> Result<(Tensor, Tensor), AttackError> {
    let mut robust = Tensor::f_ones(y.size(), (Kind::Bool, y.device()))?;
    let mut worst = x.shallow_clone();
    for r in 0..cfg.restarts.max(1) {
        let adv = pgd(model, x, y, cfg, cancel)?;
        let ok = clean_correct(model, &adv, y)?;
        if r == 0 {
            worst = adv;
        } else {
            // Keep the first successful adversarial example of each sample.
            let newly_broken = robust.f_logical_and(&ok.f_logical_not()?)?;
            worst = adv.f_where_self(&newly_broken.f_view([-1, 1, 1, 1])?, &worst)?;
        }
        robust = robust.f_logical_and(&ok)?;
    }
    Ok((robust, worst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_published_values() {
        let c = PgdConfig::default();
        assert_eq!(c.steps, 10);
        assert!((c.eps - 8.0 / 255.0).abs() < 1e-12);
        assert!((c.step - 2.0 / 255.0).abs() < 1e-12);
        assert!(c.random_start);
    }
}
