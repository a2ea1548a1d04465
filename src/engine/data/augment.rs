//! Batching and training augmentation on the uint8 cache, in pure Rust.
//!
//! [`Augmenter::augment_batch`] reproduces torchvision's
//! `RandomCrop(H, padding=pad, padding_mode='reflect')` followed by
//! `RandomHorizontalFlip(p=0.5)`: the image is conceptually padded by `pad` pixels on each
//! side with numpy-style `reflect` padding (the edge pixel is *not* repeated: `dcb|abcd|cba`),
//! then an `H×W` window at an offset drawn uniformly from `0..=2·pad` on each axis is cut
//! out, then mirrored left-right with probability ½. No padded image is ever built: a
//! per-sample index table maps output columns to source columns and rows are copied.

use super::{DatasetKind, ImageSet};
use rand::seq::SliceRandom;
use rand::Rng;

/// Random reflect-padded crop plus optional horizontal flip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augmenter {
    /// Padding on each side before cropping (4 for 32×32, 8 for 64×64; 0 disables the crop).
    pub pad: usize,
    /// Mirror left-right with probability ½.
    pub flip: bool,
}

/// Channels, height and width of the images being cropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ImageShape {
    channels: usize,
    height: usize,
    width: usize,
}

/// Where one output image is cut from the (conceptually) padded source: the window's
/// top-left offset and whether it is then mirrored left-right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CropWindow {
    oy: usize,
    ox: usize,
    flip: bool,
}

/// The per-image index tables, allocated once per batch: for each output row and column,
/// the source row and column it reads.
struct SourceIndex {
    rows: Vec<usize>,
    cols: Vec<usize>,
}

/// numpy `reflect` index: maps `i` (possibly outside `0..n`) into `0..n` by mirroring about
/// the edge pixels without repeating them; periodic for offsets beyond one reflection.
#[inline]
fn reflect(i: isize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    if m >= n as isize {
        (period - m) as usize
    } else {
        m as usize
    }
}

impl Augmenter {
    pub fn new(pad: usize, flip: bool) -> Self {
        Augmenter { pad, flip }
    }

    /// The standard recipe for a dataset: CIFAR pad 4 + flip, Tiny-ImageNet pad 8 + flip,
    /// MNIST pad 2 without flip (digits are not mirror-symmetric), image folders and ImageNet
    /// side/8 + flip (ImageNet's published recipes use RandomResizedCrop(224) + flip, which
    /// rift does not have yet: its training images are the evaluation preprocessing's).
    pub fn for_dataset(kind: DatasetKind, height: usize) -> Self {
        match kind {
            DatasetKind::Cifar10
            | DatasetKind::Cifar100
            | DatasetKind::Cifar10C
            | DatasetKind::Cifar100C => Augmenter::new(4, true),
            DatasetKind::TinyImageNet | DatasetKind::TinyImageNetC => Augmenter::new(8, true),
            DatasetKind::Mnist | DatasetKind::MnistC => Augmenter::new(2, false),
            DatasetKind::ImageFolder | DatasetKind::ImageNet => Augmenter::new(height / 8, true),
        }
    }

    /// Write the augmented images `indices` of `set` into `out` (resized to
    /// `indices.len()·C·H·W`, `N×C×H×W`). Per image the random draws are, in order: the
    /// row offset, the column offset (each uniform in `0..=2·pad`, skipped when `pad == 0`)
    /// and the flip (skipped when `flip` is false).
    ///
    /// Panics if an index is `>= set.n` (a caller bug, not an input-data error).
    pub fn augment_batch(
        &self,
        set: &ImageSet,
        indices: &[usize],
        rng: &mut impl Rng,
        out: &mut Vec<u8>,
    ) {
        let shape = ImageShape {
            channels: set.channels,
            height: set.height,
            width: set.width,
        };
        let img = set.image_len();
        out.clear();
        out.resize(indices.len() * img, 0);
        let mut index = SourceIndex {
            rows: vec![0usize; shape.height],
            cols: vec![0usize; shape.width],
        };
        for (&idx, dst) in indices.iter().zip(out.chunks_exact_mut(img.max(1))) {
            assert!(
                idx < set.n,
                "augment_batch: index {idx} out of range for {} images",
                set.n
            );
            let (oy, ox) = if self.pad > 0 {
                (
                    rng.gen_range(0..=2 * self.pad),
                    rng.gen_range(0..=2 * self.pad),
                )
            } else {
                (self.pad, self.pad)
            };
            let flip = self.flip && rng.gen_bool(0.5);
            let window = CropWindow { oy, ox, flip };
            self.crop_one(set.image(idx), shape, window, &mut index, dst);
        }
    }

    /// One image of `shape`: cut `window` out of the padded image, then flip if it says so.
    /// `index` is scratch space (its tables are `shape.height` and `shape.width` long).
    fn crop_one(
        &self,
        src: &[u8],
        shape: ImageShape,
        window: CropWindow,
        index: &mut SourceIndex,
        dst: &mut [u8],
    ) {
        let (c, h, w) = (shape.channels, shape.height, shape.width);
        let CropWindow { oy, ox, flip } = window;
        let (rows, cols) = (index.rows.as_mut_slice(), index.cols.as_mut_slice());
        let pad = self.pad as isize;
        for (y, r) in rows.iter_mut().enumerate() {
            *r = reflect(y as isize + oy as isize - pad, h);
        }
        for (x, col) in cols.iter_mut().enumerate() {
            let xx = if flip { w - 1 - x } else { x };
            *col = reflect(xx as isize + ox as isize - pad, w);
        }
        // Columns that form one increasing run can be copied as a slice.
        let contiguous = !flip && w > 0 && cols[w - 1] == cols[0] + w - 1;
        let plane = h * w;
        for ch in 0..c {
            let sp = &src[ch * plane..(ch + 1) * plane];
            let dp = &mut dst[ch * plane..(ch + 1) * plane];
            for (drow, &sy) in dp.chunks_exact_mut(w).zip(rows.iter()) {
                let srow = &sp[sy * w..(sy + 1) * w];
                if contiguous {
                    drow.copy_from_slice(&srow[cols[0]..cols[0] + w]);
                } else {
                    for (d, &sx) in drow.iter_mut().zip(cols.iter()) {
                        *d = srow[sx];
                    }
                }
            }
        }
    }
}

/// Copy the images `indices` of `set` into `out` (`N×C×H×W`) without augmentation.
/// Panics if an index is `>= set.n`.
pub fn gather_batch(set: &ImageSet, indices: &[usize], out: &mut Vec<u8>) {
    let img = set.image_len();
    out.clear();
    out.reserve(indices.len() * img);
    for &i in indices {
        out.extend_from_slice(set.image(i));
    }
}

/// Labels of `indices`, into a reused buffer.
pub fn gather_labels(set: &ImageSet, indices: &[usize], out: &mut Vec<i64>) {
    out.clear();
    out.extend(indices.iter().map(|&i| set.labels[i]));
}

/// A random permutation of `0..n` cut into batches of `batch` (the last one may be shorter).
pub fn shuffled_batches(n: usize, batch: usize, rng: &mut impl Rng) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(rng);
    idx.chunks(batch.max(1)).map(|c| c.to_vec()).collect()
}

/// `0..n` in order, cut into batches of `batch` (for evaluation).
pub fn sequential_batches(n: usize, batch: usize) -> Vec<Vec<usize>> {
    let idx: Vec<usize> = (0..n).collect();
    idx.chunks(batch.max(1)).map(|c| c.to_vec()).collect()
}

/// Pixels scaled to `[0, 1]` (`x / 255`) into a reused buffer; normalisation by the dataset
/// mean/std happens inside the model.
pub fn to_unit_f32(pixels: &[u8], out: &mut Vec<f32>) {
    out.clear();
    out.extend(pixels.iter().map(|&p| p as f32 * (1.0 / 255.0)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn random_set(n: usize, c: usize, h: usize, w: usize, seed: u64) -> ImageSet {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        ImageSet {
            n,
            channels: c,
            height: h,
            width: w,
            pixels: (0..n * c * h * w).map(|_| rng.gen()).collect(),
            labels: vec![0; n],
            num_classes: 1,
            class_names: vec!["x".into()],
        }
    }

    fn shape(channels: usize, height: usize, width: usize) -> ImageShape {
        ImageShape {
            channels,
            height,
            width,
        }
    }

    /// Direct implementation: build the reflect-padded image exactly as numpy's `np.pad(...,
    /// mode='reflect')` defines it, cut the window, flip.
    fn naive(src: &[u8], shape: ImageShape, pad: usize, window: CropWindow) -> Vec<u8> {
        let (c, h, w) = (shape.channels, shape.height, shape.width);
        let CropWindow { oy, ox, flip } = window;
        let (ph, pw) = (h + 2 * pad, w + 2 * pad);
        let refl = |j: isize, n: usize| -> usize {
            let n = n as isize;
            let r = if j < 0 {
                -j
            } else if j >= n {
                2 * (n - 1) - j
            } else {
                j
            };
            r as usize
        };
        let mut padded = vec![0u8; c * ph * pw];
        for ch in 0..c {
            for y in 0..ph {
                for x in 0..pw {
                    let sy = refl(y as isize - pad as isize, h);
                    let sx = refl(x as isize - pad as isize, w);
                    padded[(ch * ph + y) * pw + x] = src[(ch * h + sy) * w + sx];
                }
            }
        }
        let mut out = vec![0u8; c * h * w];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let v = padded[(ch * ph + y + oy) * pw + x + ox];
                    let xo = if flip { w - 1 - x } else { x };
                    out[(ch * h + y) * w + xo] = v;
                }
            }
        }
        out
    }

    #[test]
    fn reflect_matches_numpy_definition() {
        // np.pad([0,1,2,3], 3, 'reflect') == [3,2,1,0,1,2,3,2,1,0]
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect(5, 1), 0);
    }

    #[test]
    fn crop_matches_naive_every_offset() {
        for &(c, h, w, pad) in &[(3, 32, 32, 4), (1, 7, 5, 3), (3, 64, 64, 8), (2, 6, 9, 2)] {
            let set = random_set(2, c, h, w, 7);
            let aug = Augmenter::new(pad, true);
            let mut index = SourceIndex {
                rows: vec![0; h],
                cols: vec![0; w],
            };
            let mut dst = vec![0u8; c * h * w];
            for oy in 0..=2 * pad {
                for ox in 0..=2 * pad {
                    for flip in [false, true] {
                        let window = CropWindow { oy, ox, flip };
                        aug.crop_one(set.image(1), shape(c, h, w), window, &mut index, &mut dst);
                        assert_eq!(
                            dst,
                            naive(set.image(1), shape(c, h, w), pad, window),
                            "{c}x{h}x{w} pad {pad} at ({oy},{ox}) flip {flip}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn batch_matches_naive_with_same_draws() {
        let set = random_set(10, 3, 32, 32, 1);
        let aug = Augmenter::new(4, true);
        let idx = [3usize, 0, 9, 3, 5];
        let mut out = Vec::new();
        aug.augment_batch(&set, &idx, &mut ChaCha8Rng::seed_from_u64(42), &mut out);
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        for (k, &i) in idx.iter().enumerate() {
            let oy = rng.gen_range(0..=8);
            let ox = rng.gen_range(0..=8);
            let flip = rng.gen_bool(0.5);
            assert_eq!(
                &out[k * 3072..(k + 1) * 3072],
                &naive(
                    set.image(i),
                    shape(3, 32, 32),
                    4,
                    CropWindow { oy, ox, flip }
                )[..]
            );
        }
        // Without augmentation: gather copies.
        let mut g = Vec::new();
        gather_batch(&set, &idx, &mut g);
        assert_eq!(&g[3072..6144], set.image(0));
        Augmenter::new(0, false).augment_batch(&set, &idx, &mut rng, &mut out);
        assert_eq!(out, g);
    }

    /// Every crop offset and both flips occur, at their rates: each output is identified
    /// with the one (offset, flip) that makes it (random pixels make all 50 distinct), and
    /// over 4000 draws the flip rate lies within 0.5 ± 0.04 (5 standard deviations) and every
    /// offset's share within 1/25 ± 40 %.
    #[test]
    fn offsets_cover_range_and_flip_rate() {
        let set = random_set(1, 1, 8, 8, 3);
        let aug = Augmenter::new(2, true);
        let mut made_by = std::collections::HashMap::new();
        for oy in 0..=4 {
            for ox in 0..=4 {
                for flip in [false, true] {
                    made_by.insert(
                        naive(set.image(0), shape(1, 8, 8), 2, CropWindow { oy, ox, flip }),
                        (oy, ox, flip),
                    );
                }
            }
        }
        assert_eq!(
            made_by.len(),
            50,
            "random pixels should make 50 distinct crops"
        );
        let draws = 4000;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut out = Vec::new();
        let mut flips = 0usize;
        let mut per_offset = std::collections::HashMap::new();
        for _ in 0..draws {
            aug.augment_batch(&set, &[0], &mut rng, &mut out);
            let &(oy, ox, flip) = made_by
                .get(&out)
                .expect("an output no (offset, flip) makes");
            flips += flip as usize;
            *per_offset.entry((oy, ox)).or_insert(0usize) += 1;
        }
        let rate = flips as f64 / draws as f64;
        assert!((rate - 0.5).abs() <= 0.04, "flip rate {rate}");
        assert_eq!(per_offset.len(), 25);
        let expected = draws as f64 / 25.0;
        for (offset, count) in per_offset {
            assert!(
                (count as f64 - expected).abs() <= 0.4 * expected,
                "offset {offset:?}: {count} of {draws} draws"
            );
        }
    }

    #[test]
    fn batches() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let b = shuffled_batches(10, 4, &mut rng);
        assert_eq!(b.iter().map(|x| x.len()).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<usize> = b.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(
            sequential_batches(5, 2),
            vec![vec![0, 1], vec![2, 3], vec![4]]
        );
    }
}
