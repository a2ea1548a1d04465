//! torchvision's ImageNet ResNets (`torchvision.models.resnet18/34/50/101/152`,
//! `wide_resnet50_2/101_2`, `resnet50(width_per_group=…)`): a 7×7 stride-2 stem `conv1`,
//! `bn1`, ReLU, a 3×3 stride-2 max-pool, `layer1..4` of BasicBlocks or Bottlenecks (v1.5:
//! the stride on the 3×3 `conv2`), `downsample.0|1` projections, global average pooling
//! and `fc`. Keys are torchvision's `state_dict()` keys, so a file rift writes loads back
//! into torchvision. The blocks are pytorch-cifar's (`resnet.rs`) under torchvision's names
//! and widths: both run the same ops in the same order.
use super::arch::{ArchSpec, Family};
use super::chain::{staged_blocks, stem_max_pool, Chain, CutBlock, NormAct, Pool};
use super::layers::{BatchNorm2d, Conv2d, KeyOrder, Linear};
use super::resnet::{Block, BlockStyle};
use super::Activation;
use tch::{nn, Tensor};

/// The stem's width and the first stage's planes: fixed in torchvision (`self.inplanes = 64`).
const STEM: i64 = 64;

/// The `--arch` prefix of the family (`tv-resnet50`, `tv-wide-resnet50-2`).
pub const PREFIX: &str = "tv-";

pub struct TvResNet {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    layers: Vec<Vec<Block>>,
    fc: Linear,
}

impl TvResNet {
    /// `spec.blocks`: blocks per stage; `spec.width`: torchvision's `width_per_group`
    /// (64, or 128 for the wide ResNets; BasicBlocks only take 64).
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Self {
        let style = BlockStyle {
            bottleneck: spec.family == Family::TvResNetBottleneck,
            shortcut: "downsample",
            width_per_group: spec.width,
        };
        let conv1 = Conv2d::new(p / "conv1", keys, spec.in_channels, STEM, 7, 2);
        let bn1 = BatchNorm2d::new(p / "bn1", keys, STEM);
        let expansion = if style.bottleneck { 4 } else { 1 };
        let mut c_in = STEM;
        let mut layers = Vec::new();
        for (i, &n) in spec.blocks.iter().enumerate() {
            let planes = STEM << i;
            let stage = p / format!("layer{}", i + 1);
            let blocks = (0..n)
                .map(|j| {
                    let stride = if i > 0 && j == 0 { 2 } else { 1 };
                    let block = Block::new(&stage / j, keys, c_in, planes, stride, style);
                    c_in = planes * expansion;
                    block
                })
                .collect();
            layers.push(blocks);
        }
        let fc = Linear::new(p / "fc", keys, c_in, spec.num_classes);
        TvResNet {
            conv1,
            bn1,
            layers,
            fc,
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let stem = self.bn1.forward(&self.conv1.forward(x), train).relu();
        let mut out = stem_max_pool(&stem);
        for block in self.layers.iter().flatten() {
            out = block.forward(&out, train);
        }
        self.fc.forward(&Pool::Global.apply(&out))
    }

    /// Classifier input width: the last block's channels for any input (global pooling),
    /// None only for an empty image.
    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        if h < 1 || w < 1 {
            return None;
        }
        let last = self.layers.iter().flatten().last();
        Some(last.map_or(STEM, Block::out_channels))
    }

    /// This network as MRC's fast path sees it: stem conv1 → bn1 → ReLU → max-pool,
    /// `layerX.Y` blocks, global average pooling, `fc`.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            stem: &self.conv1,
            stem_norm: Some(NormAct {
                bn: &self.bn1,
                act: Activation::Relu,
                sparse: None,
            }),
            stem_max_pool: true,
            blocks: staged_blocks(&self.layers, |i, j| format!("layer{}.{j}", i + 1)),
            head_norm: None,
            pool: Pool::Global,
            classifier: &self.fc,
        }
    }
}

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
pub fn name(spec: &ArchSpec) -> String {
    let total: usize = spec.blocks.iter().sum();
    let bottleneck = spec.family == Family::TvResNetBottleneck;
    let depth = if bottleneck { 3 * total } else { 2 * total } + 2;
    let named = depth_blocks(depth) == Some((spec.blocks.clone(), bottleneck));
    let w = spec.width;
    if !named {
        let layout = spec.blocks.iter().map(usize::to_string).collect::<Vec<_>>();
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

#[cfg(test)]
mod name_tests {
    use super::super::arch::ArchSpec;

    /// Every name parses to a spec whose canonical name is itself.
    #[test]
    fn canonical_names_read_back() {
        for name in [
            "tv-resnet18",
            "tv-resnet34",
            "tv-resnet50",
            "tv-resnet152",
            "tv-wide-resnet50-2",
            "tv-wide-resnet101-2",
            "tv-resnet50-w32",
            "tv-resnet-1.1.1.1",
            "tv-resnet-bottleneck-1.1.2.1",
            "tv-resnet-bottleneck-1.1.1.1-w16",
        ] {
            let spec = ArchSpec::parse(name, None, 10, 3, (32, 32)).unwrap();
            assert_eq!(spec.name(), name);
            assert_eq!(spec.feature_dim, spec.last_channels(), "{name}");
        }
        let wide = ArchSpec::parse("tv-resnet50-w128", None, 1000, 3, (224, 224)).unwrap();
        assert_eq!(wide.name(), "tv-wide-resnet50-2");
    }
}
