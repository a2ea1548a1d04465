//! How the CIFAR ResNeXt of AugMix (robustbench's `resnext.py`, `CifarResNeXt` with
//! `ResNeXtBottleneck`: Hendrycks2020AugMix_ResNeXt, CIFAR-10/-100 corruptions) is named
//! (`--arch resnext29-4x32d`: depth, cardinality, base width) and told from a file's keys;
//! a leaf beside `resnext.rs`, which builds it.

/// The `--arch` prefix of the family.
pub const PREFIX: &str = "resnext";

/// Output planes of the three stages before the ×4 expansion (fixed in `CifarResNeXt`).
pub const PLANES: [i64; 3] = [64, 128, 256];
/// The bottleneck's expansion (`ResNeXtBottleneck.expansion`).
pub const EXPANSION: i64 = 4;
/// The stem's width (`conv_1_3x3`).
pub const STEM: i64 = 64;

/// Depth (9 per block of each stage, plus 2), groups and base width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNextConfig {
    pub depth: usize,
    pub cardinality: i64,
    pub base_width: i64,
}

impl ResNextConfig {
    /// Blocks per stage (`(depth − 2) / 9`).
    pub fn blocks(&self) -> usize {
        (self.depth - 2) / 9
    }

    /// Stage `i`'s grouped width (`floor(planes · base_width / 64) · cardinality`).
    pub fn inner(&self, i: usize) -> i64 {
        PLANES[i] * self.base_width / 64 * self.cardinality
    }

    pub fn name(&self) -> String {
        format!(
            "{PREFIX}{}-{}x{}d",
            self.depth, self.cardinality, self.base_width
        )
    }
}

/// The configuration of a name after `resnext`: `DEPTH-CxWd` (AugMix's is `29-4x32d`).
pub fn parse(rest: &str) -> Result<ResNextConfig, String> {
    let bad = || {
        format!("`{PREFIX}{rest}`: the CIFAR ResNeXt is resnextDEPTH-CARDINALITYxBASEWIDTHd (AugMix's: resnext29-4x32d), DEPTH = 9n + 2")
    };
    let (depth, shape) = rest.split_once('-').ok_or_else(bad)?;
    let (c, w) = shape
        .strip_suffix('d')
        .and_then(|s| s.split_once('x'))
        .ok_or_else(bad)?;
    let config = ResNextConfig {
        depth: depth.parse().map_err(|_| bad())?,
        cardinality: c.parse().map_err(|_| bad())?,
        base_width: w.parse().map_err(|_| bad())?,
    };
    let ok = config.depth >= 11
        && (config.depth - 2).is_multiple_of(9)
        && config.cardinality > 0
        && config.base_width > 0;
    if !ok {
        return Err(bad());
    }
    Ok(config)
}

/// Whether a state dict is a CIFAR ResNeXt.
pub fn looks_like(has: &dyn Fn(&str) -> bool) -> bool {
    has("conv_1_3x3.weight") && has("stage_1.0.conv_conv.weight")
}

/// The configuration and the input channels from the keys and shapes.
pub fn detect(shape: &dyn Fn(&str) -> Option<Vec<i64>>) -> Result<(ResNextConfig, i64), String> {
    let n = (0..)
        .take_while(|j| shape(&format!("stage_1.{j}.conv_conv.weight")).is_some())
        .count();
    let conv = shape("stage_1.0.conv_conv.weight").unwrap_or_default();
    let stem = shape("conv_1_3x3.weight").unwrap_or_default();
    let (Some(&inner), Some(&per_group), Some(&in_ch)) = (conv.first(), conv.get(1), stem.get(1))
    else {
        return Err(
            "`stage_1.0.conv_conv.weight` or `conv_1_3x3.weight` is not a convolution".into(),
        );
    };
    if per_group == 0 || inner % per_group != 0 {
        return Err(format!(
            "`stage_1.0.conv_conv.weight` has shape {conv:?}: not a grouped convolution"
        ));
    }
    // Stage 1 has 64 planes: its per-group width is the base width.
    let config = ResNextConfig {
        depth: 9 * n + 2,
        cardinality: inner / per_group,
        base_width: per_group,
    };
    Ok((config, in_ch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_round_trip() {
        let config = parse("29-4x32d").unwrap();
        assert_eq!(config.name(), "resnext29-4x32d");
        assert_eq!((config.blocks(), config.inner(2)), (3, 512));
        for bad in ["28-4x32d", "29-4x32", "29-0x32d", "29"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
