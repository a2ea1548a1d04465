//! PGD (Madry et al.) under L∞ exactly as SPEC.md §0: optional uniform random start, signed
//! gradient steps, projection onto the ε-ball around the clean input and onto [0, 1] after
//! every step, model in eval mode; restarts keep the per-sample worst case. Under L2 as
//! torchattacks' `PGDL2` computes it: a random start at a uniformly scaled radius along a
//! Gaussian direction, steps along the per-sample L2-normalised gradient, projection onto
//! the L2 ball (scaling the perturbation down to ε when it is longer), then onto [0, 1].
use super::models::Model;
use super::norms::l2_norms4 as l2_norms;
use super::tensors::mean_cross_entropy;
// Where callers have always found it.
pub use super::norms::Norm;
use super::CancelFlag;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tch::{Kind, Tensor};

/// Where a random start's noise comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise<'a> {
    /// libtorch's global generator (seeded with `tch::manual_seed`): adversarial training.
    Global,
    /// One stream per sample, keyed by (seed, the sample's index in its set, restart): a
    /// sample gets the same start whatever its batch, thread or device, so evaluations can
    /// be split over chunks and devices and still equal a single run — and two models
    /// evaluated on the same samples face the same starts (the pairing α search relies on).
    Keyed { seed: u64, first: usize },
    /// The same keying for samples taken out of a set: `keys[k]` is the index, in the
    /// whole set, of the batch's k-th sample (α search's subsets and chunks draw exactly
    /// the starts the full grid draws for those samples).
    Listed { seed: u64, keys: &'a [usize] },
}

impl<'a> Noise<'a> {
    /// The same keying for the batch that starts `offset` samples later.
    pub fn at(self, offset: usize) -> Noise<'a> {
        match self {
            Noise::Global => Noise::Global,
            Noise::Keyed { seed, first } => Noise::Keyed {
                seed,
                first: first + offset,
            },
            Noise::Listed { seed, keys } => Noise::Listed {
                seed,
                keys: &keys[offset.min(keys.len())..],
            },
        }
    }

    fn restart(self, r: usize) -> Noise<'a> {
        let salt = |seed: u64| seed ^ (r as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        match self {
            Noise::Keyed { seed, first } if r > 0 => Noise::Keyed {
                seed: salt(seed),
                first,
            },
            Noise::Listed { seed, keys } if r > 0 => Noise::Listed {
                seed: salt(seed),
                keys,
            },
            other => other,
        }
    }

    /// The seed and whole-set index of a batch's s-th sample.
    fn key(&self, s: usize) -> u64 {
        let (seed, index) = match *self {
            Noise::Global => (0, s),
            Noise::Keyed { seed, first } => (seed, first + s),
            Noise::Listed { seed, keys } => (seed, keys.get(s).copied().unwrap_or(usize::MAX)),
        };
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(index as u64)
    }

    /// An L2 random start shaped like `x`: a standard Gaussian direction per sample scaled
    /// to length `eps · r`, r uniform in [0, 1] (torchattacks' `PGDL2`), keyed as `sample`.
    fn sample_l2(self, x: &Tensor, eps: f64) -> Result<Tensor, tch::TchError> {
        let n = x.size().first().copied().unwrap_or(0).max(0) as usize;
        let (dir, r) = if self == Noise::Global {
            (
                x.f_randn_like()?,
                Tensor::f_rand([n as i64], (Kind::Float, x.device()))?,
            )
        } else {
            let per = x.numel().checked_div(n).unwrap_or(0);
            let mut v = Vec::with_capacity(n * per);
            let mut radii = Vec::with_capacity(n);
            for s in 0..n {
                // Its own stream, apart from the L∞ start's, for the same key.
                let mut rng = ChaCha8Rng::seed_from_u64(self.key(s) ^ 0x4C32_5F53_5441_5254);
                radii.push(rng.gen_range(0.0f32..1.0));
                v.extend((0..per).map(|_| standard_normal(&mut rng)));
            }
            let dir = Tensor::f_from_slice(&v)?
                .f_view(x.size().as_slice())?
                .f_to_device(x.device())?;
            (dir, Tensor::f_from_slice(&radii)?.f_to_device(x.device())?)
        };
        let scale = r
            .f_reshape([n as i64, 1, 1, 1])?
            .f_div(&l2_norms(&dir)?)?
            .f_mul_scalar(eps)?;
        dir.f_mul(&scale)?.f_to_kind(x.kind())
    }

    /// Uniform noise in [−eps, eps] shaped like `x` (a batch), on its device.
    fn sample(self, x: &Tensor, eps: f64) -> Result<Tensor, tch::TchError> {
        if self == Noise::Global {
            return x.f_rand_like()?.f_mul_scalar(2.0 * eps)?.f_sub_scalar(eps);
        }
        let n = x.size().first().copied().unwrap_or(0).max(0) as usize;
        let per = x.numel().checked_div(n).unwrap_or(0);
        let eps = eps as f32;
        let mut v = Vec::with_capacity(n * per);
        for s in 0..n {
            let mut rng = ChaCha8Rng::seed_from_u64(self.key(s));
            v.extend((0..per).map(|_| rng.gen_range(-eps..=eps)));
        }
        Tensor::f_from_slice(&v)?
            .f_view(x.size().as_slice())?
            .f_to_kind(x.kind())?
            .f_to_device(x.device())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct PgdConfig {
    pub eps: f64,
    pub step: f64,
    pub steps: usize,
    pub random_start: bool,
    pub restarts: usize,
    /// L∞ (absent in sessions written before L2 existed) or L2.
    #[serde(default)]
    pub norm: Norm,
}

impl Default for PgdConfig {
    fn default() -> Self {
        PgdConfig {
            eps: 8.0 / 255.0,
            step: 2.0 / 255.0,
            steps: 10,
            random_start: true,
            restarts: 1,
            norm: Norm::Linf,
        }
    }
}

impl PgdConfig {
    /// `PGD-10 (L2)` / `PGD-10`: how outputs name the attack.
    pub fn label(&self) -> String {
        match self.norm {
            Norm::Linf => format!("PGD-{}", self.steps),
            Norm::L2 => format!("PGD-{} (L2)", self.steps),
        }
    }

    /// No attack (`--attack none`): zero steps and no random start, so an "adversarial"
    /// set built with it holds the clean inputs themselves, not noisy copies.
    pub fn clean() -> Self {
        PgdConfig {
            steps: 0,
            random_start: false,
            restarts: 1,
            ..PgdConfig::default()
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
    mean_cross_entropy(&model.forward(x, false), y)
}

/// One PGD run from `x` (pixels in [0, 1]) against labels `y`.
pub fn pgd(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    cfg: &PgdConfig,
    noise: Noise,
    cancel: &CancelFlag,
) -> Result<Tensor, AttackError> {
    let x0 = x.f_detach()?;
    let mut adv = match (cfg.random_start, cfg.norm) {
        (false, _) => x0.shallow_clone(),
        (true, Norm::Linf) => (&x0 + noise.sample(&x0, cfg.eps)?).f_clamp(0.0, 1.0)?,
        (true, Norm::L2) => (&x0 + noise.sample_l2(&x0, cfg.eps)?).f_clamp(0.0, 1.0)?,
    };
    for _ in 0..cfg.steps {
        if cancel.is_cancelled() {
            return Err(AttackError::Cancelled);
        }
        let a = adv.f_detach()?.set_requires_grad(true);
        let l = loss(model, &a, y)?;
        let grad = Tensor::f_run_backward(&[&l], &[&a], false, false)?;
        adv = step_and_project(&a.f_detach()?, &grad[0], &x0, cfg)?;
    }
    Ok(adv.f_detach()?)
}

/// One ascent step from `a` along `grad` and the projection back onto the ε-ball around
/// `x0` and onto [0, 1], in the norm's own way (see the module comment).
fn step_and_project(
    a: &Tensor,
    grad: &Tensor,
    x0: &Tensor,
    cfg: &PgdConfig,
) -> Result<Tensor, tch::TchError> {
    match cfg.norm {
        Norm::Linf => (a + grad.f_sign()?.f_mul_scalar(cfg.step)?)
            .f_max_other(&x0.f_sub_scalar(cfg.eps)?)?
            .f_min_other(&x0.f_add_scalar(cfg.eps)?)?
            .f_clamp(0.0, 1.0),
        Norm::L2 => {
            // torchattacks adds 1e-10 to the gradient's norm so a zero gradient stays zero.
            let unit = grad.f_div(&l2_norms(grad)?.f_add_scalar(1e-10)?)?;
            let delta = a.f_add(&unit.f_mul_scalar(cfg.step)?)?.f_sub(x0)?;
            let factor = l2_norms(&delta)?
                .f_reciprocal()?
                .f_mul_scalar(cfg.eps)?
                .f_clamp_max(1.0)?;
            x0.f_add(&delta.f_mul(&factor)?)?.f_clamp(0.0, 1.0)
        }
    }
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
    noise: Noise,
    cancel: &CancelFlag,
) -> Result<(Tensor, Tensor), AttackError> {
    let mut robust = Tensor::f_ones(y.size(), (Kind::Bool, y.device()))?;
    let mut worst = x.shallow_clone();
    for r in 0..cfg.restarts.max(1) {
        let adv = pgd(model, x, y, cfg, noise.restart(r), cancel)?;
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

/// A standard normal draw (Box–Muller), so keyed starts need no other crate.
pub(crate) fn standard_normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen_range(0.0..1.0);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2_starts_lie_in_the_ball_and_are_keyed_by_sample() {
        let x = Tensor::zeros([6, 3, 4, 4], (Kind::Float, tch::Device::Cpu));
        let key = Noise::Keyed { seed: 5, first: 0 };
        let all = key.sample_l2(&x, 0.5).unwrap();
        let norms = l2_norms(&all).unwrap().view([-1]);
        let norms: Vec<f64> = (0..6).map(|i| norms.double_value(&[i])).collect();
        assert!(norms.iter().all(|&n| n <= 0.5 + 1e-6), "{norms:?}");
        assert!(norms.iter().any(|&n| n > 0.05), "{norms:?}");
        let tail = key.at(4).sample_l2(&x.narrow(0, 4, 2), 0.5).unwrap();
        assert!(all.narrow(0, 4, 2).equal(&tail));
        assert!(!key.restart(1).sample_l2(&x, 0.5).unwrap().equal(&all));
    }

    #[test]
    fn keyed_noise_depends_on_the_sample_not_the_batch() {
        let x = Tensor::zeros([6, 2, 3, 3], (Kind::Float, tch::Device::Cpu));
        let key = Noise::Keyed { seed: 5, first: 0 };
        let all = key.sample(&x, 0.1).unwrap();
        let tail = key.at(4).sample(&x.narrow(0, 4, 2), 0.1).unwrap();
        assert!(all.narrow(0, 4, 2).equal(&tail));
        assert!(all.abs().max().double_value(&[]) <= 0.1 + 1e-7);
        assert!(all.abs().mean(Kind::Float).double_value(&[]) > 0.02);
        // Other seeds, samples and restarts: other noise.
        let other = Noise::Keyed { seed: 6, first: 0 }.sample(&x, 0.1).unwrap();
        assert!(!other.equal(&all));
        assert!(!all.narrow(0, 0, 1).equal(&all.narrow(0, 1, 1)));
        assert!(!key.restart(1).sample(&x, 0.1).unwrap().equal(&all));
        // Listed keys draw what the whole set draws for those samples.
        let keys = [4usize, 1];
        let listed = Noise::Listed {
            seed: 5,
            keys: &keys,
        }
        .sample(&x.narrow(0, 0, 2), 0.1)
        .unwrap();
        assert!(listed.narrow(0, 0, 1).equal(&all.narrow(0, 4, 1)));
        assert!(listed.narrow(0, 1, 1).equal(&all.narrow(0, 1, 1)));
    }

    #[test]
    fn defaults_are_published_values() {
        let c = PgdConfig::default();
        assert_eq!(c.steps, 10);
        assert!((c.eps - 8.0 / 255.0).abs() < 1e-12);
        assert!((c.step - 2.0 / 255.0).abs() < 1e-12);
        assert!(c.random_start);
    }
}
