//! How torchvision's ImageNet ResNets are named (`--arch tv-…`) and told from a file's keys
//! and shapes; a leaf beside `tv_resnet.rs`, which builds them.
use super::family::Family;

/// The `--arch` prefix of the family (`tv-resnet50`, `tv-wide-resnet50-2`).
pub const PREFIX: &str = "tv-";

/// Blocks per stage and whether they are Bottlenecks, by torchvision's depths.
fn depth_blocks(depth: usize) -> Option<(Vec<usize>, bool)> {
    Some(match depth {
        18 => (vec![2, 2, 2, 2], false),
        34 => (vec![3, 4, 6, 3], false),
        50 => (vec![3, 4, 6, 3], true),
        101 => (vec![3, 4, 23, 3], true),
        152 => (vec![3, 8, 36, 3], true),
        _ => return None,
    })
}

/// Blocks per stage written `B1.B2.B3.B4`, for torchvision's `ResNet(block, layers)` with
/// `layers` no named builder has (`tv-resnet-1.1.1.1`, `tv-resnet-bottleneck-1.2.1.1`).
fn parse_layout(text: &str) -> Option<Vec<usize>> {
    let blocks: Vec<usize> = text
        .split('.')
        .map(|b| b.parse().ok().filter(|&n| n > 0))
        .collect::<Option<_>>()?;
    (blocks.len() == 4).then_some(blocks)
}

/// (family, blocks, width_per_group) of a name after `tv-`: `resnetD` (`--width` or a
/// `-wN` suffix sets width_per_group), `wide-resnetD-K` (width_per_group 64·K, as
/// torchvision's `wide_resnet50_2` is `resnet50` with 128), and any other `layers` as
/// `resnet-B1.B2.B3.B4` (BasicBlocks) or `resnet-bottleneck-B1.B2.B3.B4[-wN]`.
pub fn parse(rest: &str, width: Option<i64>) -> Result<(Family, Vec<usize>, i64), String> {
    let unknown = || {
        format!(
            "`tv-{rest}`: torchvision ResNets are tv-resnet18|34|50|101|152 (optionally -wN for width_per_group N), tv-wide-resnet50-2|101-2, and tv-resnet-B1.B2.B3.B4 or tv-resnet-bottleneck-B1.B2.B3.B4[-wN] for other blocks per stage"
        )
    };
    let with_width = |body: &str| -> Result<(String, Option<i64>), String> {
        match body.split_once("-w") {
            Some((d, w)) => Ok((d.to_string(), Some(w.parse().map_err(|_| unknown())?))),
            None => Ok((body.to_string(), None)),
        }
    };
    let layout = match rest.strip_prefix("resnet-bottleneck-") {
        Some(body) => Some((with_width(body)?, true)),
        None => rest
            .strip_prefix("resnet-")
            .map(|body| ((body.to_string(), None), false)),
    };
    if let Some(((text, per_group), bottleneck)) = layout {
        let blocks = parse_layout(&text).ok_or_else(unknown)?;
        return checked(rest, blocks, bottleneck, width.or(per_group).unwrap_or(64));
    }
    let (depth, per_group) = if let Some(body) = rest.strip_prefix("wide-resnet") {
        let (d, k) = body.split_once('-').ok_or_else(unknown)?;
        let k: i64 = k.parse().map_err(|_| unknown())?;
        if k < 1 {
            return Err(unknown());
        }
        (d.to_string(), Some(64 * k))
    } else if let Some(body) = rest.strip_prefix("resnet") {
        let (d, w) = with_width(body)?;
        (d.to_string(), w)
    } else {
        return Err(unknown());
    };
    let depth: usize = depth.parse().map_err(|_| unknown())?;
    let (blocks, bottleneck) = depth_blocks(depth).ok_or_else(unknown)?;
    checked(rest, blocks, bottleneck, width.or(per_group).unwrap_or(64))
}

/// The family of a parsed name, refusing what torchvision's constructor refuses.
fn checked(
    rest: &str,
    blocks: Vec<usize>,
    bottleneck: bool,
    per_group: i64,
) -> Result<(Family, Vec<usize>, i64), String> {
    if !bottleneck && per_group != 64 {
        return Err(format!(
            "`tv-{rest}` with width_per_group {per_group}: torchvision's BasicBlock (resnet18/34) only takes 64"
        ));
    }
    if per_group < 1 {
        return Err(format!("`tv-{rest}`: width_per_group must be positive"));
    }
    let family = if bottleneck {
        Family::TvResNetBottleneck
    } else {
        Family::TvResNet
    };
    Ok((family, blocks, per_group))
}

/// The canonical name of a spec of this family (parses back to it).
pub fn name(family: Family, blocks: &[usize], width_per_group: i64) -> String {
    let total: usize = blocks.iter().sum();
    let bottleneck = family == Family::TvResNetBottleneck;
    let depth = if bottleneck { 3 * total } else { 2 * total } + 2;
    let named = depth_blocks(depth) == Some((blocks.to_vec(), bottleneck));
    let w = width_per_group;
    if !named {
        let layout = blocks.iter().map(usize::to_string).collect::<Vec<_>>();
        let layout = layout.join(".");
        return match (bottleneck, w) {
            (false, _) => format!("{PREFIX}resnet-{layout}"),
            (true, 64) => format!("{PREFIX}resnet-bottleneck-{layout}"),
            (true, w) => format!("{PREFIX}resnet-bottleneck-{layout}-w{w}"),
        };
    }
    match (bottleneck, w) {
        (false, _) | (true, 64) => format!("{PREFIX}resnet{depth}"),
        (true, w) if w % 64 == 0 => format!("{PREFIX}wide-resnet{depth}-{}", w / 64),
        (true, w) => format!("{PREFIX}resnet{depth}-w{w}"),
    }
}

/// Whether a state dict is a torchvision ResNet rather than a pytorch-cifar one (both
/// have `conv1`, `bn1` and `layer1..4`): torchvision's classifier is `fc` and its
/// projections `downsample`, pytorch-cifar's `linear` and `shortcut`.
pub fn looks_like(has: &dyn Fn(&str) -> bool, conv1: &[i64]) -> bool {
    has("fc.weight")
        || has("fc.bias")
        || has("layer2.0.downsample.0.weight")
        || conv1.get(2) == Some(&7)
}

/// Blocks per stage, Bottleneck or not, and width_per_group from a torchvision ResNet's
/// keys and shapes (a Bottleneck's first `conv1` is width_per_group wide).
pub fn detect_layout(
    shape: &dyn Fn(&str) -> Option<Vec<i64>>,
    count_blocks: &dyn Fn(&str, &str) -> usize,
) -> Result<(Family, Vec<usize>, i64), String> {
    let blocks: Vec<usize> = (1..=4)
        .map(|s| count_blocks(&format!("layer{s}"), "conv1.weight"))
        .collect();
    if blocks.contains(&0) {
        return Err(format!(
            "a torchvision ResNet (keys fc / downsample / a 7×7 conv1) needs four stages layer1..layer4, found blocks {blocks:?}"
        ));
    }
    if shape("layer1.0.conv3.weight").is_some() {
        let per_group = shape("layer1.0.conv1.weight")
            .and_then(|s| s.first().copied())
            .ok_or("a torchvision Bottleneck ResNet without `layer1.0.conv1.weight`")?;
        Ok((Family::TvResNetBottleneck, blocks, per_group))
    } else {
        Ok((Family::TvResNet, blocks, 64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_round_trip() {
        for (name, family, per_group) in [
            ("resnet18", Family::TvResNet, 64),
            ("resnet50", Family::TvResNetBottleneck, 64),
            ("wide-resnet50-2", Family::TvResNetBottleneck, 128),
            ("resnet50-w128", Family::TvResNetBottleneck, 128),
            ("resnet101-w32", Family::TvResNetBottleneck, 32),
            ("resnet-1.1.1.1", Family::TvResNet, 64),
            (
                "resnet-bottleneck-1.2.1.1-w16",
                Family::TvResNetBottleneck,
                16,
            ),
        ] {
            let (f, _, w) = parse(name, None).unwrap();
            assert_eq!((f, w), (family, per_group), "{name}");
        }
        assert_eq!(parse("resnet50", Some(128)).unwrap().2, 128);
        for bad in [
            "resnet19",
            "resnet18-w128",
            "wide-resnet50",
            "vgg16",
            "resnet50-wx",
            "resnet-1.1.1",
            "resnet-1.0.1.1",
            "resnet-1.1.1.1-w16",
        ] {
            assert!(parse(bad, None).is_err(), "{bad}");
        }
    }
}
