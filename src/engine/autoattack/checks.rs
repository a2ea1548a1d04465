//! The reference's sanity checks on the model and the result (its `checks.py`), each giving
//! a warning text, never an error: AutoAttack still runs, but its number may mislead.
//! - randomness: five forward passes of the same points disagree (a randomised defence;
//!   use the rand version);
//! - softmax outputs: the model returns probabilities, not logits (flattens the losses);
//! - zero DLR gradients: points whose DLR gradient vanishes (gradient masking);
//! - Square beats the white-box attacks: it broke points they all missed.
use super::apgd::{loss_per_sample, ApgdLoss};
use super::{logits, AaConfig, AaReport, AttackKind};
use crate::engine::models::Model;
use crate::engine::norms::l2_lengths;
use tch::{Kind, Tensor};

/// Why `--precision bf16` and AutoAttack do not mix; warned about, not refused (a quick
/// look at a bf16 deployment is a fair question), wherever AutoAttack runs in bf16.
pub const BF16_VERDICTS: &str = "--precision bf16 changes AutoAttack's verdicts: bfloat16 logits flip points whose margin is near zero and the attacks' gradients lose precision, so robust accuracy is not comparable with the published (fp32) numbers";

/// Warnings about `model` on a batch `x`, `y` (the first points evaluated).
pub fn model_warnings(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    cfg: &AaConfig,
) -> Result<Vec<String>, tch::TchError> {
    let mut out = Vec::new();
    if model.compute().precision == crate::engine::models::Precision::Bf16 {
        out.push(BF16_VERDICTS.to_string());
    }
    let passes = tch::no_grad(|| -> Result<Vec<Tensor>, tch::TchError> {
        (0..5).map(|_| logits(model, x)).collect()
    })?;
    let unit = |z: &Tensor| -> Result<Tensor, tch::TchError> {
        z.f_div(&(l2_lengths(z)?.f_unsqueeze(1)? + 1e-10))
    };
    let correct = |z: &Tensor| -> Result<i64, tch::TchError> {
        Ok(z.f_argmax(1, false)?
            .f_eq_tensor(y)?
            .f_sum(Kind::Int64)?
            .int64_value(&[]))
    };
    let mut max_diff = 0f64;
    let mut counts = Vec::new();
    for (i, a) in passes.iter().enumerate() {
        counts.push(correct(a)?);
        for b in &passes[i + 1..] {
            let d = l2_lengths(&(unit(a)? - unit(b)?))?
                .f_max()?
                .double_value(&[]);
            max_diff = max_diff.max(d);
        }
    }
    if counts.windows(2).any(|w| w[0] != w[1]) || max_diff > 1e-4 {
        out.push(format!(
            "the model's outputs differ between forward passes of the same points (by up to {max_diff:.2e}): it seems to be a randomised defence; use --version rand"
        ));
    }
    let z = &passes[0];
    let probabilities = z.f_max()?.double_value(&[]) < 1.0 + 1e-5
        && z.f_min()?.double_value(&[]) > -1e-5
        && (z.f_sum_dim_intlist(&[1i64][..], false, Kind::Float)? - 1.0)
            .f_abs()?
            .f_max()?
            .double_value(&[])
            < 1e-5;
    if probabilities {
        out.push("the model's outputs look like a probability distribution (softmax): AutoAttack's losses need the logits".into());
    }
    let dlr =
        cfg.attacks.contains(&AttackKind::ApgdDlr) || cfg.attacks.contains(&AttackKind::ApgdT);
    if dlr && z.size()[1] >= 3 {
        let a = x.f_detach()?.set_requires_grad(true);
        let l = loss_per_sample(&logits(model, &a)?, y, None, ApgdLoss::Dlr)?;
        let g = Tensor::f_run_backward(&[&l.f_sum(Kind::Float)?], &[&a], false, false)?;
        if let Some(g) = g.first() {
            let zero = g
                .f_abs()?
                .f_flatten(1, -1)?
                .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)?
                .f_eq(0.0)?
                .f_sum(Kind::Int64)?
                .int64_value(&[]);
            if zero > 0 {
                out.push(format!("there are {zero} points with zero DLR gradient: gradient-based attacks may be unreliable on them"));
            }
        }
    }
    Ok(out)
}

/// The reference's check on the result: Square, a black-box attack, lowered the robust
/// accuracy below every other stage (clean and the other attacks) by more than 0.2 points,
/// i.e. it broke points the white-box attacks missed.
pub fn square_warning(report: &AaReport) -> Option<String> {
    let square = report.attacks.iter().find(|a| a.attack == "square")?;
    if report.attacks.len() < 2 {
        return None;
    }
    let others = report
        .attacks
        .iter()
        .filter(|a| a.attack != "square")
        .map(|a| a.robust_acc)
        .fold(report.clean_acc, f64::min);
    (square.robust_acc < others - 0.2).then(|| {
        format!(
            "Square lowered the robust accuracy by {:.2} points below the white-box attacks: the gradient-based attacks may be unreliable on this model (gradient masking); consider Square with more queries or an adaptive attack",
            others - square.robust_acc
        )
    })
}
