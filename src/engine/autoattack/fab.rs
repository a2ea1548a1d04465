//! FAB-T (Croce & Hein 2020, targeted, L∞): at each step the decision boundary between the
//! true and the target class is linearised, and the point moves to the closest point of
//! that hyperplane from both the current iterate and the clean input (a convex
//! combination, α ≤ α_max, with overshoot η); a success is pulled back towards the clean
//! input by β. The smallest perturbation found counts if it is within ε.
//!
//! A sample is finished once a success within ε is found (later iterations only shrink
//! the norm further), so such rows leave the batch.
use super::{keep_rows, linf, logits, per_sample, rows, AaConfig, AaError};
use crate::engine::models::Model;
use crate::engine::CancelFlag;
use tch::{Kind, Tensor};

const ALPHA_MAX: f64 = 0.1;
const ETA: f64 = 1.05;
const BETA: f64 = 0.9;

/// Minimal L∞ step `d` per row that puts `t + d` on the hyperplane w·x = b inside the box
/// [0, 1] (the exact projection of the FAB paper, by bisection over the sorted breakpoints).
/// `t`, `w`: rows × features; `b`: rows.
pub fn project_linf(t: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor, tch::TchError> {
    let feats = t.size()[1];
    let side = w
        .f_mul(t)?
        .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)?
        - b;
    let sign = side.f_ge(0.0)?.f_to_kind(Kind::Float)? * 2.0 - 1.0;
    let w = w * sign.f_unsqueeze(1)?;
    let b = b * &sign;
    let nonzero = w.f_ne(0.0)?.f_to_kind(Kind::Float)?;
    let a = w.f_lt(0.0)?.f_to_kind(Kind::Float)?;
    let d = (&a - t) * &nonzero;
    let p = &a - t * (&a * 2.0 - 1.0);
    let order = p.f_argsort(1, false)?;
    let b = &b
        - w.f_mul(t)?
            .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)?;
    let b0 = w
        .f_mul(&d)?
        .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)?;
    let rev = order.f_flip([1])?;
    let ws = w.f_gather(1, &rev, false)?;
    let bs2 = -&ws * d.f_gather(1, &rev, false)?;
    let s = ws.f_abs()?.f_cumsum(1, Kind::Float)?;
    let sb = bs2.f_cumsum(1, Kind::Float)? + b0.f_unsqueeze(1)?;
    let last = |m: &Tensor| m.f_select(1, feats - 1);
    let p_first = p
        .f_gather(1, &order.f_narrow(1, 0, 1)?, false)?
        .f_squeeze_dim(1)?;
    let b2 = last(&sb)? - last(&s)? * p_first;
    let c_l = (&b - b2).f_gt(0.0)?;
    let c2 = (&b - &b0).f_gt(0.0)?.f_logical_and(&c_l.f_logical_not()?)?;

    // Bisection on every row (only the rows of c2 use the result).
    let m = rows(t);
    let mut lb = Tensor::f_zeros([m], (Kind::Float, t.device()))?;
    let mut ub = Tensor::f_full([m], (feats - 1) as f64, (Kind::Float, t.device()))?;
    let iters = (feats as f64).log2().ceil() as usize;
    for _ in 0..iters {
        let mid = ((&lb + &ub) / 2.0).f_floor()?;
        let mid_i = mid.f_to_kind(Kind::Int64)?.f_unsqueeze(1)?;
        let cur = order.f_gather(1, &((feats - 1) - &mid_i), false)?;
        let b2 = (sb.f_gather(1, &mid_i, false)?
            - s.f_gather(1, &mid_i, false)? * p.f_gather(1, &cur, false)?)
        .f_squeeze_dim(1)?;
        let c = (&b - b2).f_gt(0.0)?;
        lb = mid.f_where_self(&c, &lb)?;
        ub = ub.f_where_self(&c, &mid)?;
    }
    let lb_i = lb.f_to_kind(Kind::Int64)?.f_unsqueeze(1)?;

    let lmbd_l = ((&b - last(&sb)?) / -last(&s)?)
        .f_clamp_min(0.0)?
        .f_unsqueeze(1)?;
    let d_l = (&a * 2.0 - 1.0) * lmbd_l;
    let sb_lb = sb.f_gather(1, &lb_i, false)?.f_squeeze_dim(1)?;
    let s_lb = s.f_gather(1, &lb_i, false)?.f_squeeze_dim(1)?;
    let lmbd_2 = ((&b - sb_lb) / -s_lb).f_clamp_min(0.0)?.f_unsqueeze(1)?;
    let d_2: Tensor = lmbd_2.f_minimum(&d)? * &a + (-&lmbd_2).f_maximum(&d)? * (1.0 - &a);
    let d = d_l.f_where_self(
        &c_l.f_unsqueeze(1)?,
        &d_2.f_where_self(&c2.f_unsqueeze(1)?, &d)?,
    )?;
    Ok(d * nonzero)
}

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
        let d3 = project_linf(
            &pts,
            &Tensor::f_cat(&[&w, &w], 0)?,
            &Tensor::f_cat(&[&b, &b], 0)?,
        )?;
        let d1 = d3.f_narrow(0, 0, bs)?.f_view_as(&x1)?;
        let d2 = d3.f_narrow(0, bs, bs)?.f_view_as(&x1)?;
        let a0 = d3.f_abs()?.f_amax(&[1i64][..], false)?.f_clamp_min(1e-8)?;
        let (a1, a2) = (a0.f_narrow(0, 0, bs)?, a0.f_narrow(0, bs, bs)?);
        let alpha = per_sample(&(&a1 / (&a1 + &a2)).f_clamp(0.0, ALPHA_MAX)?)?;
        let from_iterate: Tensor = (&x1 + d1 * ETA) * (1.0 - &alpha);
        let from_clean: Tensor = (&im + d2 * ETA) * &alpha;
        x1 = (from_iterate + from_clean).f_clamp(0.0, 1.0)?;
        let is_adv = tch::no_grad(|| logits(model, &x1)?.f_argmax(1, false)?.f_ne_tensor(&y))?;
        let norm = linf(&(&x1 - &im))?;
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
