//! How robustbench's ImageNet RaResNet (Peng2023Robust's RaWRN-101-2: `get_model("ra_wrn101_2")`
//! of `robustarch_wide_resnet.py`, a `NormalizedConfigurableModel`) is named
//! (`--arch ra-resnet-…`) and told from a file's keys and shapes; a leaf beside
//! `ra_resnet.rs`, which builds it.
//!
//! What varies between configurations, and is in the name: the stem width, the blocks and
//! output width of each stage and each stage's group width. What robustbench's only
//! configuration fixes, and rift with it (`tools/zoo_configs.py` checks each against the
//! source): a 7×7 stride-2 stem conv → BatchNorm → ReLU without max-pool; bottleneck blocks
//! `F.a` (1×1, no norm, SiLU) → `F.b` (3×3 grouped, stride on the first block of every stage,
//! BatchNorm, SiLU) → `F.se` (torchvision's SqueezeExcitation, ReLU, squeezing to a quarter of
//! the block's input width) → `F.c` (1×1, BatchNorm), bottleneck width a quarter of the
//! output width, `proj` (1×1 conv + BatchNorm) where the shape changes, SiLU after the sum;
//! every stage stride 2; global average pooling and `fc`.

/// The `--arch` prefix of the family.
pub const PREFIX: &str = "ra-resnet-";

/// Peng2023Robust's RaWRN-101-2 (`ra-resnet-101-2`): stem, blocks, widths, group widths.
const RA_WRN_101_2: (i64, [usize; 4], [i64; 4], [i64; 4]) = (
    96,
    [7, 11, 18, 1],
    [512, 1024, 2016, 4032],
    [64, 128, 252, 504],
);

/// A configuration beyond its blocks per stage (`ArchSpec::blocks`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaResNetConfig {
    pub stem: i64,
    pub widths: Vec<i64>,
    pub group_widths: Vec<i64>,
}

impl RaResNetConfig {
    /// Stage `i`'s bottleneck width (`round(width · 0.25)`; widths are multiples of 8).
    pub fn bottleneck(&self, i: usize) -> i64 {
        self.widths[i] / 4
    }

    /// Stage `i`'s groups in `F.b`.
    pub fn groups(&self, i: usize) -> i64 {
        self.bottleneck(i) / self.group_widths[i]
    }

    /// The SE's squeezed width of a block taking `width_in` channels.
    pub fn squeeze(width_in: i64) -> i64 {
        width_in / 4
    }

    /// The canonical name (parses back to the same configuration).
    pub fn name(&self, blocks: &[usize]) -> String {
        let (stem, depths, widths, groups) = RA_WRN_101_2;
        if self.stem == stem
            && blocks == depths
            && self.widths == widths
            && self.group_widths == groups
        {
            return format!("{PREFIX}101-2");
        }
        let dotted = |v: Vec<String>| v.join(".");
        format!(
            "{PREFIX}stem{}-depths{}-widths{}-groups{}",
            self.stem,
            dotted(blocks.iter().map(usize::to_string).collect()),
            dotted(self.widths.iter().map(i64::to_string).collect()),
            dotted(self.group_widths.iter().map(i64::to_string).collect()),
        )
    }

    /// Why robustbench's `ConfigurableModel` would refuse this configuration, if it would.
    fn invalid(&self, blocks: &[usize]) -> Option<String> {
        let n = blocks.len();
        if n == 0 || self.widths.len() != n || self.group_widths.len() != n {
            return Some("one width and one group width per stage are needed".into());
        }
        if self.stem % 8 != 0 || self.widths.iter().any(|w| w % 8 != 0) {
            return Some("the stem and stage widths must be multiples of 8".into());
        }
        (0..n).find_map(|i| {
            let (b, g) = (self.bottleneck(i), self.group_widths[i]);
            (g <= 0 || b % g != 0 || b < g).then(|| {
                format!("stage {i}'s bottleneck width {b} is not a multiple of its group width {g}")
            })
        })
    }
}

fn dotted<T: std::str::FromStr>(text: &str, prefix: &str) -> Option<Vec<T>> {
    text.strip_prefix(prefix)?
        .split('.')
        .map(|v| v.parse().ok())
        .collect()
}

/// Blocks per stage and the configuration of a name after `ra-resnet-`: `101-2`, or
/// `stemS-depthsA.B.C.D-widthsA.B.C.D-groupsA.B.C.D`.
pub fn parse(rest: &str) -> Result<(Vec<usize>, RaResNetConfig), String> {
    let bad = || {
        format!("`{PREFIX}{rest}`: robustbench's ImageNet RaResNet is ra-resnet-101-2 (Peng2023Robust), any other configuration ra-resnet-stemS-depthsA.B.C.D-widthsA.B.C.D-groupsA.B.C.D (stem width, blocks, output widths and group widths per stage)")
    };
    let (blocks, config) = if rest == "101-2" {
        let (stem, depths, widths, groups) = RA_WRN_101_2;
        let config = RaResNetConfig {
            stem,
            widths: widths.to_vec(),
            group_widths: groups.to_vec(),
        };
        (depths.to_vec(), config)
    } else {
        let parts: Vec<&str> = rest.split('-').collect();
        let [stem, depths, widths, groups] = parts[..] else {
            return Err(bad());
        };
        let stem = stem.strip_prefix("stem").and_then(|s| s.parse().ok());
        let config = RaResNetConfig {
            stem: stem.ok_or_else(bad)?,
            widths: dotted(widths, "widths").ok_or_else(bad)?,
            group_widths: dotted(groups, "groups").ok_or_else(bad)?,
        };
        (dotted(depths, "depths").ok_or_else(bad)?, config)
    };
    if blocks.contains(&0) {
        return Err(format!("`{PREFIX}{rest}`: every stage needs a block"));
    }
    match config.invalid(&blocks) {
        Some(why) => Err(format!("`{PREFIX}{rest}`: {why}")),
        None => Ok((blocks, config)),
    }
}

/// The key prefix of stage `i` (from 0), block `j`: robustbench's `Stage` names its blocks
/// `stage{i+1}-block{j}`.
pub fn block_path(i: usize, j: usize) -> String {
    format!("stages.stage{}.stage{}-block{j}", i + 1, i + 1)
}

/// Whether a state dict is an ImageNet RaResNet.
pub fn looks_like(has: &dyn Fn(&str) -> bool) -> bool {
    has("stem.stem.stem.0.weight") && has(&format!("{}.F.a.0.weight", block_path(0, 0)))
}

/// Blocks per stage, the configuration and the input channels from the keys and shapes.
pub fn detect(
    shape: &dyn Fn(&str) -> Option<Vec<i64>>,
) -> Result<(Vec<usize>, RaResNetConfig, i64), String> {
    let stem = shape("stem.stem.stem.0.weight").unwrap_or_default();
    if stem.len() != 4 {
        return Err("`stem.stem.stem.0.weight` is not a convolution".into());
    }
    let mut blocks = Vec::new();
    let (mut widths, mut group_widths) = (Vec::new(), Vec::new());
    for i in 0.. {
        let n = (0..)
            .take_while(|&j| shape(&format!("{}.F.a.0.weight", block_path(i, j))).is_some())
            .count();
        if n == 0 {
            break;
        }
        let first = block_path(i, 0);
        let (c, b) = (
            shape(&format!("{first}.F.c.0.weight")).unwrap_or_default(),
            shape(&format!("{first}.F.b.0.weight")).unwrap_or_default(),
        );
        let (Some(&width), Some(&per_group)) = (c.first(), b.get(1)) else {
            return Err(format!("`{first}.F.b.0` or `{first}.F.c.0` is missing"));
        };
        blocks.push(n);
        widths.push(width);
        group_widths.push(per_group);
    }
    let config = RaResNetConfig {
        stem: stem[0],
        widths,
        group_widths,
    };
    if let Some(why) = config.invalid(&blocks) {
        return Err(why);
    }
    Ok((blocks, config, stem[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_round_trip() {
        for name in [
            "101-2",
            "stem16-depths1.2.1.1-widths32.64.64.128-groups4.8.8.16",
        ] {
            let (blocks, config) = parse(name).unwrap();
            assert_eq!(config.name(&blocks), format!("{PREFIX}{name}"));
        }
        let (_, config) = parse("101-2").unwrap();
        assert_eq!((config.bottleneck(2), config.groups(2)), (504, 2));
        assert!(parse("stem16-depths1.1-widths32.64.64-groups4.8").is_err());
        assert!(parse("stem16-depths1.1-widths32.64-groups3.8").is_err());
        assert!(parse("101-3").is_err());
    }
}
