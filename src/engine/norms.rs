//! The threat model's norm and the per-sample norms, normalisations and projections that
//! PGD, APGD, FAB and Square share. A leaf: it depends on nothing else in rift, so the
//! attacks (and the records naming the norm) can all use it without a module cycle.
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The threat model's norm: ε and the step are read in its units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// ‖δ‖∞ ≤ ε, in [0, 1] pixel units (8/255 on CIFAR): the paper's.
    #[default]
    Linf,
    /// ‖δ‖₂ ≤ ε over the whole image (0.5 on RobustBench's CIFAR-10 L2).
    L2,
}

impl Norm {
    pub fn parse(s: &str) -> Result<Norm, String> {
        match s.to_ascii_lowercase().as_str() {
            "linf" | "l-inf" | "inf" => Ok(Norm::Linf),
            "l2" => Ok(Norm::L2),
            "l1" => Err(
                "--norm l1 is not supported: AutoAttack's L1 version needs APGD-L1 (its sparse \
                 steps, L1 ball ∩ box projection and ε schedule) and Square-L1, which are not \
                 implemented in rift; rift attacks under linf or l2"
                    .into(),
            ),
            other => Err(format!("unknown norm `{other}`; expected linf or l2")),
        }
    }

    /// `Linf` / `L2`: the reference's spelling, used in outputs and records.
    pub fn name(self) -> &'static str {
        match self {
            Norm::Linf => "Linf",
            Norm::L2 => "L2",
        }
    }

    /// Per-sample length of a batch of perturbations in this norm, shaped [n].
    pub fn lengths(self, delta: &Tensor) -> Result<Tensor, tch::TchError> {
        match self {
            Norm::Linf => linf_lengths(delta),
            Norm::L2 => l2_lengths(delta),
        }
    }
}

/// `v` (one value per sample, [n]) shaped [n, 1, …, 1] to broadcast against `like`.
pub fn per_sample_like(v: &Tensor, like: &Tensor) -> Result<Tensor, tch::TchError> {
    let mut shape = vec![-1i64];
    shape.extend(std::iter::repeat_n(1, like.dim().saturating_sub(1)));
    v.f_reshape(shape.as_slice())
}

/// Per-sample L∞ norm of a batch, shaped [n].
pub fn linf_lengths(t: &Tensor) -> Result<Tensor, tch::TchError> {
    t.f_abs()?.f_flatten(1, -1)?.f_amax(&[1i64][..], false)
}

/// Per-sample L2 norm of a batch as the square root of the summed squares, shaped [n]
/// (the reference's `L2_norm`, op for op, so projections agree with it to float rounding).
pub fn l2_lengths(t: &Tensor) -> Result<Tensor, tch::TchError> {
    t.f_square()?
        .f_flatten(1, -1)?
        .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)?
        .f_sqrt()
}

/// Per-sample L2 norm through libtorch's norm kernel, shaped [n, 1, 1, 1] (PGD-L2 scales
/// with it, as torchattacks' `PGDL2` does).
pub fn l2_norms4(t: &Tensor) -> Result<Tensor, tch::TchError> {
    let n = t.size().first().copied().unwrap_or(0);
    t.f_reshape([n, -1])?
        .f_norm_scalaropt_dim(2, [1i64].as_slice(), false)?
        .f_reshape([n, 1, 1, 1])
}

/// Each sample divided by its L2 norm (plus 1e-12, so a zero sample stays zero): APGD's,
/// FAB's and Square's `normalize` under L2.
pub fn l2_normalize(t: &Tensor) -> Result<Tensor, tch::TchError> {
    t.f_div(&per_sample_like(&l2_lengths(t)?.f_add_scalar(1e-12)?, t)?)
}

/// Each sample divided by its L∞ norm (plus 1e-12): APGD's `normalize` under L∞.
pub fn linf_normalize(t: &Tensor) -> Result<Tensor, tch::TchError> {
    t.f_div(&per_sample_like(&linf_lengths(t)?.f_add_scalar(1e-12)?, t)?)
}

/// APGD's L2 projection of `p` back towards the clean `x0`: the perturbation is shortened
/// to length ε when longer (its direction kept), then the point is clipped to [0, 1]. As
/// the reference does it: not the exact projection onto the ball ∩ box (clipping after
/// scaling can only shorten the perturbation, so the result stays in the ball).
pub fn project_l2_ball(x0: &Tensor, p: &Tensor, eps: f64) -> Result<Tensor, tch::TchError> {
    let delta = p.f_sub(x0)?;
    let length = per_sample_like(&l2_lengths(&delta)?, &delta)?.f_clamp_max(eps)?;
    x0.f_add(&l2_normalize(&delta)?.f_mul(&length)?)?
        .f_clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2_projection_shortens_only_long_perturbations() {
        let x0 = Tensor::full([2, 1, 2, 2], 0.5, (Kind::Float, tch::Device::Cpu));
        // Sample 0: δ of length 0.4 (kept); sample 1: length 1.0 (shortened to 0.5).
        let d =
            Tensor::from_slice(&[0.2f32, 0.2, 0.2, 0.2, 0.5, 0.5, -0.5, -0.5]).view([2, 1, 2, 2]);
        let out = project_l2_ball(&x0, &(&x0 + &d), 0.5).unwrap();
        let len = l2_lengths(&(&out - &x0)).unwrap();
        assert!((len.double_value(&[0]) - 0.4).abs() < 1e-6);
        assert!((len.double_value(&[1]) - 0.5).abs() < 1e-6);
        assert!(Norm::parse("l1").unwrap_err().contains("APGD-L1"));
    }
}
