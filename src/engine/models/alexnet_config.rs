//! What the rest of rift knows of AlexNet (`alexnet.rs` builds it): its name and the
//! sizes it takes; a leaf, so that the spec can name the family without its builder.

/// The `--arch` name (the family has one layout).
pub const NAME: &str = "alexnet";
/// The hidden Linears' width, which `classifier.6` takes.
pub const HIDDEN: i64 = 4096;

/// The side of `features`' output for an input side `s` (11×11 stride-4 padding-2
/// convolution, then 3×3 stride-2 max-pools after it, after the 5×5 and after the last
/// 3×3, the other convolutions keeping the size); None when a max-pool gets less than its
/// window (inputs under 63 pixels).
pub fn features_size(s: i64) -> Option<i64> {
    let pool = |s: i64| (s >= 3).then(|| (s - 3) / 2 + 1);
    let first = (s + 4 - 11).div_euclid(4) + 1;
    let after = pool(pool((first >= 1).then_some(first)?)?)?;
    pool(after)
}

#[cfg(test)]
mod tests {
    use super::features_size;

    /// torchvision's sizes: 224 → 55 → 27 → 13 → 6; 63 is the least that fits.
    #[test]
    fn features_sizes() {
        assert_eq!(features_size(224), Some(6));
        assert_eq!(features_size(64), Some(1));
        assert_eq!(features_size(63), Some(1));
        assert_eq!(features_size(62), None);
    }
}
