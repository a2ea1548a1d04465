//! Square Attack's L2 proposals (Andriushchenko et al. 2020, §3.2), as the reference's
//! `L2` branch makes them. The perturbation is built from "eta" patches: an s×s patch whose
//! upper half is a positive and lower half a negative bump (nested squares weighted
//! 1/(k+1)²), unit L2 norm, possibly transposed. The start tiles the image with such
//! patches of side h/5, each with a random sign per channel, scaled to length ε. Each query
//! picks two windows of side s: the perturbation's mass in both is moved into the first
//! (a fresh signed patch plus the first window's old content, rescaled so that the whole
//! perturbation may reach ε), the second window is zeroed, and the result is renormalised
//! to length ε and clipped to [0, 1].
//!
//! As in rift's L∞ Square, every sample draws its own windows, patch orientations and
//! signs from its own stream (the reference draws one window per query for the batch), so
//! a point's attack does not depend on its batch.
use crate::engine::norms::{l2_lengths, l2_normalize};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// The nested-squares bump of `x`×`y` (row-major), unit L2 norm: squares of growing odd
/// side centred at (x/2, y/2), the k-th adding 1/(k+1)² inside it.
fn bump(x: usize, y: usize) -> Vec<f32> {
    let mut d = vec![0f32; x * y];
    let (xc, yc) = (x as i64 / 2 + 1, y as i64 / 2 + 1);
    let (mut r, mut c) = (xc - 1, yc - 1);
    for k in 0..xc.max(yc) {
        let add = 1.0 / ((k + 1) * (k + 1)) as f32;
        for i in r.max(0)..(r + 2 * k + 1).min(x as i64) {
            for j in c.max(0)..(c + 2 * k + 1).min(y as i64) {
                d[i as usize * y + j as usize] += add;
            }
        }
        r -= 1;
        c -= 1;
    }
    unit(d)
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|a| *a /= norm);
    }
    v
}

/// The s×s eta patch (row-major, unit L2 norm) and its transpose.
pub fn eta(s: usize) -> (Vec<f32>, Vec<f32>) {
    let top = s / 2;
    let mut d = bump(top, s);
    d.extend(bump(s - top, s).into_iter().map(|a| -a));
    let d = unit(d);
    let mut t = vec![0f32; s * s];
    for i in 0..s {
        for j in 0..s {
            t[j * s + i] = d[i * s + j];
        }
    }
    (d, t)
}

fn sign(r: &mut ChaCha8Rng) -> f32 {
    if r.gen_bool(0.5) {
        1.0
    } else {
        -1.0
    }
}

/// Side of the windows at query `it` (fraction `p` of the pixels): at least 3 and odd, at
/// most the image's side.
pub fn side(p: f64, h: i64, w: i64) -> i64 {
    let mut s = ((p * (h * w) as f64).sqrt().round() as i64).max(3);
    if s % 2 == 0 {
        s += 1;
    }
    s.min(h.min(w))
}

/// The starting points: `x0` plus tiles of signed eta patches, the whole perturbation
/// scaled to length ε, clipped to [0, 1].
pub fn init(x0: &Tensor, rngs: &mut [ChaCha8Rng], eps: f64) -> Result<Tensor, tch::TchError> {
    let size = x0.size();
    let (c, h, w) = (size[1] as usize, size[2] as usize, size[3] as usize);
    let s = (h / 5).max(1);
    let start = h.saturating_sub(5 * s) / 2;
    let (patch, patch_t) = eta(s);
    let mut v = vec![0f32; rngs.len() * c * h * w];
    for (n, r) in rngs.iter_mut().enumerate() {
        for ti in 0..h / s {
            for tj in 0..w / s {
                let (top, left) = (start + ti * s, start + tj * s);
                if top + s > h || left + s > w {
                    continue;
                }
                let p = if r.gen_bool(0.5) { &patch_t } else { &patch };
                for ch in 0..c {
                    let sg = sign(r);
                    let base = (n * c + ch) * h * w;
                    for i in 0..s {
                        for j in 0..s {
                            v[base + (top + i) * w + left + j] += sg * p[i * s + j];
                        }
                    }
                }
            }
        }
    }
    let delta = Tensor::f_from_slice(&v)?
        .f_view(size.as_slice())?
        .f_to_device(x0.device())?;
    (x0 + l2_normalize(&delta)? * eps).f_clamp(0.0, 1.0)
}

/// Flat positions (row-major over h×w) of an s×s window at (top, left), s² of them.
fn window(top: i64, left: i64, s: i64, w: i64) -> impl Iterator<Item = i64> {
    (0..s).flat_map(move |i| (0..s).map(move |j| (top + i) * w + left + j))
}

/// One query's candidates from the current best points `best` around the clean `x0`, with
/// windows of side `s`.
pub fn candidate(
    best: &Tensor,
    x0: &Tensor,
    rngs: &mut [ChaCha8Rng],
    s: i64,
    eps: f64,
) -> Result<Tensor, tch::TchError> {
    let size = best.size();
    let (m, c, h, w) = (size[0], size[1], size[2], size[3]);
    let dev = best.device();
    let (patch, patch_t) = eta(s as usize);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let mut patterns = Vec::with_capacity((m * s * s) as usize);
    let mut signs = Vec::with_capacity((m * c) as usize);
    for r in rngs.iter_mut() {
        let mut corner = || {
            (
                r.gen_range(0..(h - s).max(1)),
                r.gen_range(0..(w - s).max(1)),
            )
        };
        let (a, b) = corner();
        let (a2, b2) = corner();
        first.extend(window(a, b, s, w));
        second.extend(window(a2, b2, s, w));
        patterns.extend_from_slice(if r.gen_bool(0.5) { &patch_t } else { &patch });
        signs.extend((0..c).map(|_| sign(r)));
    }
    let ss = s * s;
    let index = |v: &[i64]| -> Result<Tensor, tch::TchError> {
        Tensor::f_from_slice(v)?
            .f_view([m, 1, ss])?
            .f_to_device(dev)?
            .f_expand([m, c, ss], false)
    };
    let (first, second) = (index(&first)?, index(&second)?);
    let pattern = Tensor::f_from_slice(&patterns)?
        .f_view([m, 1, ss])?
        .f_to_device(dev)?;
    let signs = Tensor::f_from_slice(&signs)?
        .f_view([m, c, 1])?
        .f_to_device(dev)?;

    let delta = (best - x0).f_reshape([m, c, h * w])?;
    let channel_norm = |t: &Tensor| -> Result<Tensor, tch::TchError> {
        t.f_square()?
            .f_sum_dim_intlist(&[2i64][..], true, Kind::Float)?
            .f_sqrt()
    };
    let old = delta.f_gather(2, &first, false)?;
    let old_norm = channel_norm(&old)?;
    let image_norm = l2_lengths(&delta)?.f_view([m, 1, 1])?;
    let both = delta
        .f_zeros_like()?
        .f_scatter_value(2, &first, 1.0)?
        .f_scatter_value(2, &second, 1.0)?;
    let windows_norm = channel_norm(&(&delta * both))?;
    // The new window: a signed patch plus the old content (unit norm per channel), scaled
    // so the perturbation can use what ε leaves plus what both windows held.
    let fresh = pattern * signs + old / (old_norm + 1e-12);
    let room = ((image_norm.f_square()? * -1.0 + eps * eps).f_clamp_min(0.0)? / c as f64
        + windows_norm.f_square()?)
    .f_sqrt()?;
    let fresh = &fresh / (channel_norm(&fresh)? + 1e-12) * room;
    let delta = delta
        .f_scatter_value(2, &second, 0.0)?
        .f_scatter(2, &first, &fresh)?
        .f_view(size.as_slice())?;
    (x0 + l2_normalize(&delta)? * eps).f_clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_unit_antisymmetric_and_sides_are_odd() {
        let (d, t) = eta(5);
        let norm: f32 = d.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6);
        // Upper two rows positive, lower three negative; the transpose swaps the axes.
        assert!(d[..10].iter().all(|&a| a > 0.0) && d[10..].iter().all(|&a| a < 0.0));
        assert_eq!(t[1], d[5]);
        assert_eq!(side(0.8, 32, 32), 29);
        assert_eq!(side(0.8 / 512.0, 32, 32), 3);
        assert_eq!(side(0.05, 32, 32), 7);
    }
}
