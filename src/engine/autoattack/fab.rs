//! FAB-T (Croce & Hein 2020, targeted, L∞ or L2): at each step the decision boundary between the
//! true and the target class is linearised, and the point moves to the closest point of
//! that hyperplane from both the current iterate and the clean input (a convex
//! combination, α ≤ α_max, with overshoot η); a success is pulled back towards the clean
//! input by β. The smallest perturbation found counts if it is within ε. Norms enter in
//! the projection (`fab_projections`) and in measuring steps and perturbations.
//!
//! A sample is finished once a success within ε is found (later iterations only shrink
//! the norm further), so such rows leave the batch.
use super::fab_projections::{project_l2, project_linf};
use super::{keep_rows, logits, per_sample, rows, AaConfig, AaError};
use crate::engine::models::Model;
use crate::engine::norms::Norm;
use crate::engine::CancelFlag;
use tch::{Kind, Tensor};

const ALPHA_MAX: f64 = 0.1;
const ETA: f64 = 1.05;
const BETA: f64 = 0.9;

/// Logit difference (target − true) and its gradient at `x1`.
fn diff_and_grad(
    model: &Model,
    x1: &Tensor,
    y: &Tensor,
    target: &Tensor,
) -> Result<(Tensor, Tensor), tch::TchError> {
    let a = x1.f_detach()?.set_requires_grad(true);
    let z = logits(model, &a)?;
    let at = |t: &Tensor| z.f_gather(1, &t.f_unsqueeze(1)?, false)?.f_squeeze_dim(1);
    let diff = at(target)? - at(y)?;
    let g = Tensor::f_run_backward(&[&diff.f_sum(Kind::Float)?], &[&a], false, false)?;
    let g = g.into_iter().next().unwrap_or_else(|| a.zeros_like());
    Ok((diff.f_detach()?, g))
}

/// One targeted FAB run (no random start, as the standard version) on still-robust points.
/// Returns per sample whether no success within ε was found, and the found point.
pub fn run(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    target: &Tensor,
    cfg: &AaConfig,
    cancel: &CancelFlag,
) -> Result<(Tensor, Tensor), AaError> {
    let n = rows(x);
    let eps = cfg.eps;
    let mut out_adv = x.f_detach()?;
    let mut out_robust = Tensor::f_ones([n], (Kind::Bool, x.device()))?;
    let mut active = Tensor::f_arange(n, (Kind::Int64, x.device()))?;
    let mut im = x.f_detach()?;
    let mut y = y.shallow_clone();
    let mut target = target.shallow_clone();
    let mut x1 = im.shallow_clone();
    let mut best = im.shallow_clone();
    let mut best_norm = Tensor::f_full([n], 1e10, (Kind::Float, x.device()))?;
    for _ in 0..cfg.fab_iters {
        if cancel.is_cancelled() {
            return Err(AaError::Cancelled);
        }
        let bs = rows(&x1);
        let (df, dg) = diff_and_grad(model, &x1, &y, &target)?;
        let w = dg.f_flatten(1, -1)?;
        let b = -&df
            + w.f_mul(&x1.f_flatten(1, -1)?)?
                .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)?;
        let pts = Tensor::f_cat(&[x1.f_flatten(1, -1)?, im.f_flatten(1, -1)?], 0)?;
        let project = match cfg.norm {
            Norm::Linf => project_linf,
            Norm::L2 => project_l2,
        };
        let d3 = project(
            &pts,
            &Tensor::f_cat(&[&w, &w], 0)?,
            &Tensor::f_cat(&[&b, &b], 0)?,
        )?;
        let d1 = d3.f_narrow(0, 0, bs)?.f_view_as(&x1)?;
        let d2 = d3.f_narrow(0, bs, bs)?.f_view_as(&x1)?;
        let a0 = cfg.norm.lengths(&d3)?.f_clamp_min(1e-8)?;
        let (a1, a2) = (a0.f_narrow(0, 0, bs)?, a0.f_narrow(0, bs, bs)?);
        let alpha = per_sample(&(&a1 / (&a1 + &a2)).f_clamp(0.0, ALPHA_MAX)?)?;
        let from_iterate: Tensor = (&x1 + d1 * ETA) * (1.0 - &alpha);
        let from_clean: Tensor = (&im + d2 * ETA) * &alpha;
        x1 = (from_iterate + from_clean).f_clamp(0.0, 1.0)?;
        let is_adv = tch::no_grad(|| logits(model, &x1)?.f_argmax(1, false)?.f_ne_tensor(&y))?;
        let norm = cfg.norm.lengths(&(&x1 - &im))?;
        let better = is_adv.f_logical_and(&norm.f_lt_tensor(&best_norm)?)?;
        best = x1.f_where_self(&per_sample(&better)?, &best)?;
        best_norm = norm.f_where_self(&better, &best_norm)?;
        x1 = (&im + (&x1 - &im) * BETA).f_where_self(&per_sample(&is_adv)?, &x1)?;

        // Successes within ε are final: record them and drop their rows.
        let done = best_norm.f_le(eps)?;
        if done.f_any()?.int64_value(&[]) != 0 {
            let idx = active.f_masked_select(&done)?;
            let rows_done = done.f_nonzero()?.f_squeeze_dim(1)?;
            out_adv = out_adv.f_index_copy(0, &idx, &best.f_index_select(0, &rows_done)?)?;
            out_robust = out_robust.f_index_fill(0, &idx, 0)?;
            let keep = done.f_logical_not()?.f_nonzero()?.f_squeeze_dim(1)?;
            if keep.numel() == 0 {
                break;
            }
            keep_rows(
                &mut [
                    &mut active,
                    &mut im,
                    &mut y,
                    &mut target,
                    &mut x1,
                    &mut best,
                    &mut best_norm,
                ],
                &keep,
            )?;
        }
    }
    Ok((out_robust, out_adv))
}

/// FAB-T over the top `cfg.targets` classes of the clean logits (rank 2 first), each on
/// the points still robust.
pub fn attack(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    cfg: &AaConfig,
    cancel: &CancelFlag,
) -> Result<(Tensor, Tensor), AaError> {
    let ranking = tch::no_grad(|| logits(model, x)?.f_argsort(1, false))?;
    let mut robust = Tensor::f_ones([rows(x)], (Kind::Bool, x.device()))?;
    let mut adv = x.f_detach()?;
    for r in 0..cfg.targets {
        let idx = robust.f_nonzero()?.f_squeeze_dim(1)?;
        if idx.numel() == 0 {
            break;
        }
        let target = ranking
            .f_index_select(0, &idx)?
            .f_select(1, -(r as i64) - 2)?;
        let (still, pts) = run(
            model,
            &x.f_index_select(0, &idx)?,
            &y.f_index_select(0, &idx)?,
            &target,
            cfg,
            cancel,
        )?;
        super::merge_broken(&idx, &still, &pts, &mut robust, &mut adv)?;
    }
    Ok((robust, adv))
}
