//! FAB's projections (Croce & Hein 2020, §3): the smallest step, in the attack's norm,
//! that moves each point onto its linearised decision boundary (a hyperplane w·x = b)
//! while staying inside the box [0, 1]. Both solve a one-dimensional piecewise-linear
//! equation over the sorted breakpoints where coordinates hit the box, by bisection.
use tch::{Kind, Tensor};

fn rows(t: &Tensor) -> i64 {
    t.size().first().copied().unwrap_or(0)
}

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

/// Smallest L2 step `d` per row that puts `t + d` on the hyperplane w·x = b inside the box
/// [0, 1]. `t`, `w`: rows × features; `b`: rows.
///
/// After orienting each row so that the point lies on the positive side (gap = w·t − b ≥ 0),
/// the step is d(λ) = clip(−λw, −t, 1 − t) for the λ ≥ 0 where w·d(λ) = −gap. Coordinate i
/// saturates at the breakpoint rᵢ = max(tᵢ/wᵢ, (tᵢ − 1)/wᵢ); between consecutive sorted
/// breakpoints w·d(λ) + gap is linear, so the segment holding the root is found by
/// bisection and λ solved exactly in it. Three outcomes: the root lies before the first
/// breakpoint (d = −λw, no coordinate saturates); no λ reaches the plane (every coordinate
/// at its bound); or it lies between two breakpoints. The reference's conventions are
/// kept so that results agree with it to float rounding: |wᵢ| < 1e-8 counts as zero (its
/// breakpoint at 1e12, its step 0), breakpoints are clamped to ±1e12 and an infinite one
/// counts as 0 when segments are summed, and a segment where no weight remains free gives
/// λ = 0.
pub fn project_l2(t: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor, tch::TchError> {
    const FAR: f64 = 1e12;
    let feats = t.size()[1];
    let dot = |u: &Tensor, v: &Tensor| {
        u.f_mul(v)?
            .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)
    };
    let gap0 = dot(w, t)? - b;
    let orient = gap0.f_ge(0.0)?.f_to_kind(Kind::Float)? * 2.0 - 1.0;
    let w = w * orient.f_unsqueeze(1)?;
    let gap = gap0 * &orient;
    let live = w.f_abs()?.f_ge(1e-8)?;
    let live_f = live.f_to_kind(Kind::Float)?;

    let r = t
        .f_div(&w)?
        .f_maximum(&(t - 1.0).f_div(&w)?)?
        .f_clamp(-FAR, FAR)?;
    let far = Tensor::f_full([], FAR, (Kind::Float, t.device()))?;
    let r = r.f_where_self(&live, &far)?;
    let r = far.f_where_self(&r.f_eq(-FAR)?, &r)?;
    let (r_sorted, order) = r.f_sort(1, false)?;
    let r_next = Tensor::f_cat(
        &[
            r_sorted.f_narrow(1, 1, feats - 1)?,
            Tensor::f_zeros([rows(t), 1], (Kind::Float, t.device()))?,
        ],
        1,
    )?;
    let zero = Tensor::f_zeros([], (Kind::Float, t.device()))?;
    let finite = |v: &Tensor| zero.f_where_self(&v.f_eq(FAR)?, v);
    let (r_sorted, r_next) = (finite(&r_sorted)?, finite(&r_next)?);

    // Squared weights in breakpoint order; `free[k]`: those still unsaturated after the
    // k-th breakpoint. `reach[k]`: w·d + … at the k-th breakpoint, less the gap.
    let w2 = w.f_square()?.f_gather(1, &order, false)?;
    let total = w2.f_sum_dim_intlist(&[1i64][..], true, Kind::Float)?;
    let free = &total - w2.f_cumsum(1, Kind::Float)?;
    let at_first = -&total * r_sorted.f_narrow(1, 0, 1)?;
    let reach = Tensor::f_cat(
        &[
            at_first.shallow_clone(),
            ((&r_sorted - &r_next) * &free).f_cumsum(1, Kind::Float)? + &at_first,
        ],
        1,
    )?;
    let saturated = -(&r * &w) * &live_f;

    let before_first = (reach.f_select(1, 0)? + &gap).f_lt(0.0)?;
    let unreachable = (dot(&saturated, &w)? + &gap).f_gt(0.0)?;
    let between = before_first.f_logical_or(&unreachable)?.f_logical_not()?;

    // Bisection for the last breakpoint k with reach[k] + gap > 0 (every row; only the
    // `between` rows use it).
    let m = rows(t);
    let mut lb = Tensor::f_zeros([m], (Kind::Float, t.device()))?;
    let mut ub = Tensor::f_full([m], (feats - 1) as f64, (Kind::Float, t.device()))?;
    for _ in 0..(feats as f64).log2().ceil() as usize {
        let mid = ((&lb + &ub) / 2.0).f_floor()?;
        let mid_i = mid.f_to_kind(Kind::Int64)?.f_unsqueeze(1)?;
        let above = (reach.f_gather(1, &mid_i, false)?.f_squeeze_dim(1)? + &gap).f_gt(0.0)?;
        lb = mid.f_where_self(&above, &lb)?;
        ub = ub.f_where_self(&above, &mid)?;
    }
    let k = lb.f_to_kind(Kind::Int64)?.f_unsqueeze(1)?;
    let at_k = |v: &Tensor| v.f_gather(1, &k, false)?.f_squeeze_dim(1);
    let free_k = at_k(&free)?;
    let lambda = (at_k(&reach)? + &gap) / &free_k + at_k(&r_sorted)?;
    let lambda = zero
        .f_where_self(&free_k.f_eq(0.0)?, &lambda)?
        .f_unsqueeze(1)?;
    let past = lambda.f_gt_tensor(&r)?;
    let d_between = saturated.f_where_self(&past, &(-&lambda * &w))?;

    let lambda_first = (&gap / total.f_squeeze_dim(1)?).f_unsqueeze(1)?;
    let d_first = -lambda_first * &w;
    let d = d_first.f_where_self(
        &before_first.f_unsqueeze(1)?,
        &d_between.f_where_self(&between.f_unsqueeze(1)?, &saturated)?,
    )?;
    Ok(d * live_f)
}
