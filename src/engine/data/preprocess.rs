//! Evaluation preprocessing as torchvision applies it to PIL images (robustbench's
//! `PREPROCESSINGS`): `Resize`, `CenterCrop` and nothing else, on 8-bit RGB.
//!
//! The resize reproduces Pillow's antialiased resampling so the `uint8` result is
//! bit-identical to `torchvision.transforms.Resize(...)(pil_image)`:
//! * a separable convolution whose kernel support is scaled by the reduction factor (never
//!   below the filter's own support, so upscaling interpolates);
//! * per output pixel, the weights of the source pixels in its window are computed in
//!   double precision, normalised to sum to one, then turned into fixed point with 22
//!   fractional bits (rounded half away from zero);
//! * the horizontal pass runs first, only over the source rows the vertical pass reads,
//!   and its result is rounded and clipped to 8 bits before the vertical pass.
//!
//! `tests/preprocess_pillow.rs` checks this against the venv's Pillow and torchvision on
//! random sizes, up- and downscaling, bilinear and bicubic.

use super::image_decode::Rgb;

/// Fractional bits of the fixed-point weights (32 bits, 8 for the pixel, 2 for overshoot).
const FRAC_BITS: u32 = 22;

/// The two resampling filters robustbench's preprocessings use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interp {
    Bilinear,
    Bicubic,
}

impl Interp {
    /// Half-width of the filter at scale 1.
    fn support(self) -> f64 {
        match self {
            Interp::Bilinear => 1.0,
            Interp::Bicubic => 2.0,
        }
    }

    /// The filter's weight at distance `x` (Keys' cubic with a = -0.5 for bicubic).
    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Interp::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Interp::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// One axis of a resampling: for output index `i`, the source window starts at
/// `start[i]`, holds `len[i]` pixels, and its fixed-point weights are
/// `weights[i * stride..][..len[i]]`.
struct Axis {
    start: Vec<usize>,
    len: Vec<usize>,
    stride: usize,
    weights: Vec<i32>,
}

impl Axis {
    fn new(in_size: usize, out_size: usize, interp: Interp) -> Axis {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let support = interp.support() * filter_scale;
        let stride = support.ceil() as usize * 2 + 1;
        let inv = 1.0 / filter_scale;
        let mut start = Vec::with_capacity(out_size);
        let mut len = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * stride];
        let mut w = vec![0f64; stride];
        for i in 0..out_size {
            let center = (i as f64 + 0.5) * scale;
            // Truncation toward zero, then clamping, as the reference's int conversion.
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let n = hi.saturating_sub(lo).min(stride);
            let mut total = 0.0;
            for (j, wj) in w.iter_mut().enumerate().take(n) {
                *wj = interp.weight(((j + lo) as f64 - center + 0.5) * inv);
                total += *wj;
            }
            let row = &mut weights[i * stride..(i + 1) * stride];
            for (dst, &wj) in row.iter_mut().zip(&w[..n]) {
                let v = if total != 0.0 { wj / total } else { wj };
                let fixed = v * f64::from(1u32 << FRAC_BITS);
                *dst = if v < 0.0 {
                    (fixed - 0.5) as i32
                } else {
                    (fixed + 0.5) as i32
                };
            }
            start.push(lo);
            len.push(n);
        }
        Axis {
            start,
            len,
            stride,
            weights,
        }
    }

    fn window(&self, i: usize) -> (usize, &[i32]) {
        let k = &self.weights[i * self.stride..i * self.stride + self.len[i]];
        (self.start[i], k)
    }
}

/// Round a fixed-point accumulator to 8 bits (floor after the half added up front, clipped).
#[inline]
fn clip8(acc: i64) -> u8 {
    (acc >> FRAC_BITS).clamp(0, 255) as u8
}

const HALF: i64 = 1 << (FRAC_BITS - 1);

/// The horizontal pass over rows `rows` of `src` (`src.width` → `axis`'s output size).
fn horizontal_pass(src: &Rgb, rows: std::ops::Range<usize>, axis: &Axis) -> Rgb {
    let out_w = axis.start.len();
    let in_w3 = src.width * 3;
    let mut data = vec![0u8; rows.len() * out_w * 3];
    for (y, dst_row) in rows.clone().zip(data.chunks_exact_mut(out_w * 3)) {
        let src_row = &src.data[y * in_w3..(y + 1) * in_w3];
        for (x, px) in dst_row.chunks_exact_mut(3).enumerate() {
            let (lo, k) = axis.window(x);
            let mut acc = [HALF; 3];
            for (s, &kj) in src_row[lo * 3..].chunks_exact(3).zip(k) {
                let kj = i64::from(kj);
                acc[0] += i64::from(s[0]) * kj;
                acc[1] += i64::from(s[1]) * kj;
                acc[2] += i64::from(s[2]) * kj;
            }
            px[0] = clip8(acc[0]);
            px[1] = clip8(acc[1]);
            px[2] = clip8(acc[2]);
        }
    }
    Rgb {
        width: out_w,
        height: rows.len(),
        data,
    }
}

/// The vertical pass over `src`, whose row 0 is source row `row0` of `axis`'s windows.
fn vertical_pass(src: &Rgb, row0: usize, axis: &Axis) -> Rgb {
    let out_h = axis.start.len();
    let w3 = src.width * 3;
    let mut data = vec![0u8; out_h * w3];
    let mut acc = vec![0i64; w3];
    for (y, dst_row) in data.chunks_exact_mut(w3).enumerate() {
        let (lo, k) = axis.window(y);
        acc.iter_mut().for_each(|a| *a = HALF);
        for (j, &kj) in k.iter().enumerate() {
            let r = lo + j - row0;
            let kj = i64::from(kj);
            for (a, &s) in acc.iter_mut().zip(&src.data[r * w3..(r + 1) * w3]) {
                *a += i64::from(s) * kj;
            }
        }
        for (d, &a) in dst_row.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
    Rgb {
        width: src.width,
        height: out_h,
        data,
    }
}

/// Resize `img` to `out_w × out_h` exactly as Pillow's `Image.resize` (RGB, 8 bits).
/// Same size returns a copy. Panics on a zero output size (a caller bug).
///
/// Pass order: horizontal first, except when the height shrinks by more than twice as many
/// pixels as the width does (Pillow 13's rule, python-pillow/Pillow#9549; it changes the
/// rounding of the intermediate image, so it is part of the result). Measured against the
/// venv's Pillow by `tests/preprocess_pillow.rs`.
pub fn resize(img: &Rgb, out_w: usize, out_h: usize, interp: Interp) -> Rgb {
    assert!(out_w > 0 && out_h > 0, "resize to an empty image");
    let (in_w, in_h) = (img.width, img.height);
    let need_h = in_w != out_w;
    let need_v = in_h != out_h;
    let horiz = need_h.then(|| Axis::new(in_w, out_w, interp));
    let vert = need_v.then(|| Axis::new(in_h, out_h, interp));
    match (horiz, vert) {
        (None, None) => Rgb {
            width: in_w,
            height: in_h,
            data: img.data.clone(),
        },
        (Some(h), None) => horizontal_pass(img, 0..in_h, &h),
        (None, Some(v)) => vertical_pass(img, 0, &v),
        (Some(h), Some(v)) => {
            let shrink_h = in_h as i64 - out_h as i64;
            let shrink_w = in_w as i64 - out_w as i64;
            if out_h < in_h && shrink_h > 2 * shrink_w {
                horizontal_pass(&vertical_pass(img, 0, &v), 0..out_h, &h)
            } else {
                // Only the source rows the vertical pass reads get a horizontal pass.
                let last = out_h - 1;
                let (row0, row1) = (v.start[0], v.start[last] + v.len[last]);
                vertical_pass(&horizontal_pass(img, row0..row1, &h), row0, &v)
            }
        }
    }
}

/// torchvision's `Resize(size)` with one number: the shorter side becomes `size`, the longer
/// one `floor(size · long / short)` (computed as Python's true division, then `int`).
pub fn resize_shorter(img: &Rgb, size: usize, interp: Interp) -> Rgb {
    let (w, h) = (img.width, img.height);
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((size as u64 * long as u64) as f64 / short as f64) as usize;
    let (new_w, new_h) = if w <= h {
        (size, new_long)
    } else {
        (new_long, size)
    };
    resize(img, new_w, new_h, interp)
}

/// Python's `round(d / 2)` for a non-negative integer `d` (halves go to the even neighbour).
fn half_round_even(d: usize) -> usize {
    let k = d / 2;
    if d.is_multiple_of(2) || k.is_multiple_of(2) {
        k
    } else {
        k + 1
    }
}

/// torchvision's `CenterCrop((crop_h, crop_w))` on a PIL image: a side smaller than the crop
/// is first padded with zeros (`(c - s) // 2` before, the rest after), then the crop's
/// offset is `round((side - crop) / 2)` with Python's rounding.
pub fn center_crop(img: &Rgb, crop_h: usize, crop_w: usize) -> Rgb {
    let (pad_l, pad_t) = (
        crop_w.saturating_sub(img.width) / 2,
        crop_h.saturating_sub(img.height) / 2,
    );
    // The padded size is max(side, crop): padding adds exactly the shortfall.
    let (pw, ph) = (img.width.max(crop_w), img.height.max(crop_h));
    let top = half_round_even(ph - crop_h);
    let left = half_round_even(pw - crop_w);
    let mut data = vec![0u8; crop_h * crop_w * 3];
    for (y, dst_row) in data.chunks_exact_mut(crop_w * 3).enumerate() {
        // Row y of the crop is row (top + y) of the padded image.
        let Some(sy) = (top + y).checked_sub(pad_t).filter(|&r| r < img.height) else {
            continue;
        };
        for (x, px) in dst_row.chunks_exact_mut(3).enumerate() {
            let Some(sx) = (left + x).checked_sub(pad_l).filter(|&c| c < img.width) else {
                continue;
            };
            let s = (sy * img.width + sx) * 3;
            px.copy_from_slice(&img.data[s..s + 3]);
        }
    }
    Rgb {
        width: crop_w,
        height: crop_h,
        data,
    }
}

/// robustbench's evaluation preprocessings (`robustbench.data.PREPROCESSINGS`), before its
/// final `ToTensor` (rift keeps `uint8` and divides by 255 when batching).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preprocess {
    /// `ToTensor` only: the images must already share one size.
    None,
    /// `Resize(256)` (bilinear, shorter side) + `CenterCrop(224)`.
    Res256Crop224,
    /// `CenterCrop(288)` only.
    Crop288,
    /// `Resize([224, 224])` (bilinear, aspect not kept).
    Res224,
    /// `Resize(256, bicubic)` + `CenterCrop(224)`.
    BicubicRes256Crop224,
}

/// Every name `--preprocess` accepts, as robustbench writes them.
pub const PREPROCESS_NAMES: [&str; 5] = [
    "Res256Crop224",
    "Crop288",
    "Res224",
    "BicubicRes256Crop224",
    "none",
];

impl Preprocess {
    /// Parse a name as robustbench writes it, case-insensitively (`none` for no resizing).
    pub fn parse(name: &str) -> Result<Preprocess, String> {
        let key = name.trim().to_ascii_lowercase();
        Ok(match key.as_str() {
            "none" => Preprocess::None,
            "res256crop224" => Preprocess::Res256Crop224,
            "crop288" => Preprocess::Crop288,
            "res224" => Preprocess::Res224,
            "bicubicres256crop224" => Preprocess::BicubicRes256Crop224,
            _ => {
                return Err(format!(
                    "unknown preprocessing '{name}': expected one of {} (robustbench's names, any case)",
                    PREPROCESS_NAMES.join(", ")
                ))
            }
        })
    }

    /// The name as robustbench writes it (`none` for [`Preprocess::None`]).
    pub fn name(self) -> &'static str {
        match self {
            Preprocess::None => "none",
            Preprocess::Res256Crop224 => "Res256Crop224",
            Preprocess::Crop288 => "Crop288",
            Preprocess::Res224 => "Res224",
            Preprocess::BicubicRes256Crop224 => "BicubicRes256Crop224",
        }
    }

    /// `(height, width)` of every output image; `None` keeps the input size.
    pub fn output_size(self) -> Option<(usize, usize)> {
        match self {
            Preprocess::None => None,
            Preprocess::Crop288 => Some((288, 288)),
            _ => Some((224, 224)),
        }
    }

    /// Apply the preprocessing to one decoded image.
    pub fn apply(self, img: Rgb) -> Rgb {
        match self {
            Preprocess::None => img,
            Preprocess::Res256Crop224 => {
                center_crop(&resize_shorter(&img, 256, Interp::Bilinear), 224, 224)
            }
            Preprocess::BicubicRes256Crop224 => {
                center_crop(&resize_shorter(&img, 256, Interp::Bicubic), 224, 224)
            }
            Preprocess::Crop288 => center_crop(&img, 288, 288),
            Preprocess::Res224 => resize(&img, 224, 224, Interp::Bilinear),
        }
    }
}

impl std::fmt::Display for Preprocess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Rgb {
        let data = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        Rgb {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn names_round_trip() {
        for n in PREPROCESS_NAMES {
            let p = Preprocess::parse(n).unwrap();
            assert_eq!(p.name(), n);
            assert_eq!(Preprocess::parse(&n.to_uppercase()).unwrap(), p);
        }
        let e = Preprocess::parse("Res255").unwrap_err();
        assert!(e.contains("Res256Crop224") && e.contains("'Res255'"), "{e}");
    }

    #[test]
    fn python_rounding_of_crop_offsets() {
        assert_eq!(
            (0..8).map(half_round_even).collect::<Vec<_>>(),
            [0, 0, 1, 2, 2, 2, 3, 4]
        );
    }

    #[test]
    fn crop_pads_with_zeros() {
        let img = ramp(3, 2);
        let c = center_crop(&img, 4, 6);
        assert_eq!((c.width, c.height), (6, 4));
        // pad left (6-3)//2 = 1, top (4-2)//2 = 1.
        assert_eq!(&c.data[..6 * 3], &[0u8; 18][..]);
        assert_eq!(&c.data[(6 + 1) * 3..(6 + 1) * 3 + 3], &img.data[..3]);
    }

    #[test]
    fn constant_image_stays_constant() {
        for interp in [Interp::Bilinear, Interp::Bicubic] {
            let img = Rgb {
                width: 37,
                height: 23,
                data: vec![200; 37 * 23 * 3],
            };
            for (w, h) in [(11, 7), (80, 51), (37, 9), (5, 23)] {
                let r = resize(&img, w, h, interp);
                assert_eq!((r.width, r.height), (w, h));
                assert!(r.data.iter().all(|&v| v == 200), "{interp:?} {w}x{h}");
            }
        }
    }

    #[test]
    fn shorter_side_sizes() {
        let r = resize_shorter(&ramp(500, 375), 256, Interp::Bilinear);
        assert_eq!((r.width, r.height), (341, 256));
        let r = resize_shorter(&ramp(300, 451), 256, Interp::Bilinear);
        assert_eq!((r.width, r.height), (256, 384));
    }
}
