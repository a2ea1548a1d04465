//! Square Attack (Andriushchenko et al. 2020), score-based. Under L∞: start from vertical
//! stripes of ±ε, then per query change one random square (the same ±2ε per channel).
//! Under L2 the start and the proposals are `square_l2`'s. A proposal is kept when the
//! margin loss drops or the point is misclassified. The square's side follows the
//! published schedule of p (fraction of pixels) over the queries, without rescaling.
//! Every sample draws its own squares from its own stream; fooled samples stop.
use super::{keep_rows, logits, square_l2, streams, AaConfig, AaError, AttackKind};
use crate::engine::models::Model;
use crate::engine::norms::Norm;
use crate::engine::CancelFlag;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// Fraction of pixels changed at query `it` (the published schedule for 10,000 queries,
/// applied unscaled as AutoAttack's standard version does).
pub fn p_at(p_init: f64, it: usize) -> f64 {
    let div = match it {
        0..=10 => 1.0,
        11..=50 => 2.0,
        51..=200 => 4.0,
        201..=500 => 8.0,
        501..=1000 => 16.0,
        1001..=2000 => 32.0,
        2001..=4000 => 64.0,
        4001..=6000 => 128.0,
        6001..=8000 => 256.0,
        _ => 512.0,
    };
    p_init / div
}

/// Side of the square at query `it` for an image of `h`×`w` pixels.
pub fn side_at(p_init: f64, it: usize, h: i64, w: i64) -> i64 {
    let s = (p_at(p_init, it) * (h * w) as f64).sqrt().round() as i64;
    s.max(1).min(h.min(w))
}

/// Margin of the true class over the best other class (negative: misclassified).
fn margin(model: &Model, x: &Tensor, y: &Tensor) -> Result<Tensor, tch::TchError> {
    tch::no_grad(|| {
        let z = logits(model, x)?;
        let yy = y.f_unsqueeze(1)?;
        let true_logit = z.f_gather(1, &yy, false)?.f_squeeze_dim(1)?;
        let others = z.f_scatter_value(1, &yy, f64::NEG_INFINITY)?;
        Ok(true_logit - others.f_amax(&[1i64][..], false)?)
    })
}

/// ±1 per row, `per` values per row, drawn from each row's stream.
fn signs(rngs: &mut [ChaCha8Rng], per: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(rngs.len() * per);
    for r in rngs.iter_mut() {
        v.extend((0..per).map(|_| if r.gen_bool(0.5) { 1.0f32 } else { -1.0 }));
    }
    v
}

/// Square on a batch of still-robust points; `keys` are their indices in the evaluated set.
pub fn attack(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    cfg: &AaConfig,
    keys: &[usize],
    cancel: &CancelFlag,
) -> Result<(Tensor, Tensor), AaError> {
    let size = x.size();
    let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
    let dev = x.device();
    let eps = cfg.eps;
    let mut rngs = streams(cfg.seed, AttackKind::Square, 0, keys);
    let mut out_adv = x.f_detach()?;
    let mut out_robust = Tensor::f_ones([n], (Kind::Bool, dev))?;

    let mut active = Tensor::f_arange(n, (Kind::Int64, dev))?;
    let mut x0 = x.f_detach()?;
    let mut y = y.shallow_clone();
    let mut best = match cfg.norm {
        Norm::Linf => {
            let stripes = Tensor::f_from_slice(&signs(&mut rngs, (c * w) as usize))?
                .f_view([n, c, 1, w])?
                .f_to_device(dev)?;
            (&x0 + stripes * eps).f_clamp(0.0, 1.0)?
        }
        Norm::L2 => square_l2::init(&x0, &mut rngs, eps)?,
    };
    let mut best_margin = margin(model, &best, &y)?;
    let (mut lo, mut hi) = (x0.f_sub_scalar(eps)?, x0.f_add_scalar(eps)?);
    for it in 0..=cfg.square_queries {
        // Fooled samples are final: record them and drop their rows.
        let fooled = best_margin.f_le(0.0)?;
        if fooled.f_any()?.int64_value(&[]) != 0 {
            let idx = active.f_masked_select(&fooled)?;
            let done_rows = fooled.f_nonzero()?.f_squeeze_dim(1)?;
            out_adv = out_adv.f_index_copy(0, &idx, &best.f_index_select(0, &done_rows)?)?;
            out_robust = out_robust.f_index_fill(0, &idx, 0)?;
            let keep = fooled.f_logical_not()?.f_nonzero()?;
            let keep_cpu =
                Vec::<i64>::try_from(&keep.f_view([-1])?.f_to_device(tch::Device::Cpu)?)?;
            if keep_cpu.is_empty() {
                break;
            }
            let keep = keep.f_squeeze_dim(1)?;
            keep_rows(
                &mut [
                    &mut active,
                    &mut x0,
                    &mut y,
                    &mut best,
                    &mut best_margin,
                    &mut lo,
                    &mut hi,
                ],
                &keep,
            )?;
            rngs = keep_cpu.iter().map(|&i| rngs[i as usize].clone()).collect();
        }
        if it == cfg.square_queries {
            break;
        }
        if cancel.is_cancelled() {
            return Err(AaError::Cancelled);
        }
        let candidate = match cfg.norm {
            Norm::Linf => linf_candidate(&best, &lo, &hi, &mut rngs, cfg, it)?,
            Norm::L2 => {
                let s = square_l2::side(p_at(cfg.square_p_init, it), h, w);
                square_l2::candidate(&best, &x0, &mut rngs, s, eps)?
            }
        };
        let cand_margin = margin(model, &candidate, &y)?;
        let improved = cand_margin
            .f_lt_tensor(&best_margin)?
            .f_logical_or(&cand_margin.f_le(0.0)?)?;
        best = candidate.f_where_self(&improved.f_view([-1, 1, 1, 1])?, &best)?;
        best_margin = cand_margin.f_where_self(&improved, &best_margin)?;
    }
    Ok((out_robust, out_adv))
}

/// One L∞ query's candidates: per sample a square of side `side_at(it)` at a random place,
/// moved by ±2ε per channel, projected back onto the box [lo, hi] ∩ [0, 1].
fn linf_candidate(
    best: &Tensor,
    lo: &Tensor,
    hi: &Tensor,
    rngs: &mut [ChaCha8Rng],
    cfg: &AaConfig,
    it: usize,
) -> Result<Tensor, tch::TchError> {
    let size = best.size();
    let (m, c, h, w) = (size[0], size[1], size[2], size[3]);
    let dev = best.device();
    let eps = cfg.eps;
    let rows_h = Tensor::f_arange(h, (Kind::Int64, dev))?.f_view([1, 1, h, 1])?;
    let cols_w = Tensor::f_arange(w, (Kind::Int64, dev))?.f_view([1, 1, 1, w])?;
    let s = side_at(cfg.square_p_init, it, h, w);
    let mut corner = Vec::with_capacity(2 * m as usize);
    for r in rngs.iter_mut() {
        corner.push(r.gen_range(0..(h - s).max(1)));
        corner.push(r.gen_range(0..(w - s).max(1)));
    }
    let corner = Tensor::f_from_slice(&corner)?
        .f_view([m, 2])?
        .f_to_device(dev)?;
    let vh = corner.f_select(1, 0)?.f_view([m, 1, 1, 1])?;
    let vw = corner.f_select(1, 1)?.f_view([m, 1, 1, 1])?;
    let in_rows = rows_h
        .f_ge_tensor(&vh)?
        .f_logical_and(&rows_h.f_lt_tensor(&(&vh + s))?)?;
    let in_cols = cols_w
        .f_ge_tensor(&vw)?
        .f_logical_and(&cols_w.f_lt_tensor(&(&vw + s))?)?;
    let window = in_rows.f_logical_and(&in_cols)?.f_to_kind(Kind::Float)?;
    let colour = Tensor::f_from_slice(&signs(rngs, c as usize))?
        .f_view([m, c, 1, 1])?
        .f_to_device(dev)?;
    (best + window * colour * (2.0 * eps))
        .f_max_other(lo)?
        .f_min_other(hi)?
        .f_clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_sides_follow_the_schedule() {
        // 32×32 (any channel count): p = 0.8 → side round(sqrt(819.2)) = 29.
        assert_eq!(side_at(0.8, 0, 32, 32), 29);
        assert_eq!(side_at(0.8, 11, 32, 32), 20);
        assert_eq!(side_at(0.8, 4999, 32, 32), 3);
        assert_eq!(side_at(0.8, 9000, 32, 32), 1);
        assert!((p_at(0.8, 10) - 0.8).abs() < 1e-12);
        assert!((p_at(0.8, 1000) - 0.05).abs() < 1e-12);
    }
}
