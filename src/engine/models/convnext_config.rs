//! How timm's ConvNeXts are named (`--arch convnext-…`) and told from a file's keys and
//! shapes; a leaf beside `convnext.rs`, which builds them.

/// The `--arch` prefix of the family (`convnext-base`, `convnext-3.3.9.3-96.192.384.768`).
pub const PREFIX: &str = "convnext-";

/// What a ConvNeXt's name says beyond its blocks per stage (`ArchSpec::blocks`, timm's
/// `depths`): the widths of its four stages (timm's `dims`) and its stem. Everything else
/// is timm's default: 7×7 depthwise convolutions, MLP ratio 4, layer scale, Linear MLPs
/// over channels-last tokens (`conv_mlp=False`), LayerNorms with eps 1e-6 and the
/// pool → LayerNorm → fc head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvNextConfig {
    pub dims: [i64; 4],
    pub stem: StemKind,
    /// robustbench's MeanSparse ConvNeXt (Amini2024MeanSparse_ConvNeXt-L, `-meansparse`):
    /// `sparsified_model.add_custom_layer_imagenet` puts a `MeanSparse_imagenet` before
    /// every block's GELU (`mlp.act.0`) and after its layer-scaled branch (`drop_path.1`).
    pub meansparse: bool,
}

/// The name suffix of the MeanSparse variant, after the stem's.
const MEANSPARSE: &str = "-meansparse";

/// The ConvNeXt's stem: timm's, or one of robustbench's ConvStems (Singh2023Revisiting,
/// `convstem_models.py`, which replaces `model.stem`), whose widths follow from `dims[0]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StemKind {
    /// timm's `stem.0` (4×4 stride-4 conv) → `stem.1` (LayerNorm2d).
    #[default]
    Patch,
    /// `ConvBlock1(dims[0] / 2)`: `stem.stem.{0,3}`, 3×3 stride-2 convolutions to
    /// `dims[0] / 2` and `dims[0]` channels, each followed by a channels-first LayerNorm
    /// (`stem.stem.{1,4}`) and GELU (`-convstem2`).
    Conv2,
    /// `ConvBlock3(dims[0] / 2)`: 3×3 convolutions of strides 2, 2, 1 to `dims[0] / 2`,
    /// `int(1.5 · dims[0] / 2)` and `dims[0]` channels (`stem.stem.{0,3,6}`), each followed
    /// by LayerNorm and GELU (`-convstem3`).
    Conv3,
}

impl StemKind {
    /// (output channels, stride) of each convolution of a ConvStem (empty for the patch
    /// stem) for a first stage of `dim0` channels.
    pub fn convs(self, dim0: i64) -> Vec<(i64, i64)> {
        let planes = dim0 / 2;
        match self {
            StemKind::Patch => vec![],
            StemKind::Conv2 => vec![(planes, 2), (dim0, 2)],
            StemKind::Conv3 => vec![(planes, 2), (planes * 3 / 2, 2), (dim0, 1)],
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            StemKind::Patch => "",
            StemKind::Conv2 => "-convstem2",
            StemKind::Conv3 => "-convstem3",
        }
    }
}

/// timm's builders with the default layout (`convnext_tiny` … `convnext_xlarge`): the name
/// after `convnext-`, depths and dims.
const PRESETS: [(&str, [usize; 4], [i64; 4]); 5] = [
    ("tiny", [3, 3, 9, 3], [96, 192, 384, 768]),
    ("small", [3, 3, 27, 3], [96, 192, 384, 768]),
    ("base", [3, 3, 27, 3], [128, 256, 512, 1024]),
    ("large", [3, 3, 27, 3], [192, 384, 768, 1536]),
    ("xlarge", [3, 3, 27, 3], [256, 512, 1024, 2048]),
];

/// Four positive numbers written `A.B.C.D`.
fn four<T: std::str::FromStr + PartialOrd + Default + Copy>(text: &str) -> Option<[T; 4]> {
    let values: Vec<T> = text
        .split('.')
        .map(|v| v.parse().ok().filter(|n| *n > T::default()))
        .collect::<Option<_>>()?;
    values.try_into().ok()
}

/// Blocks per stage and the configuration of a name after `convnext-`: `tiny|small|base|
/// large|xlarge`, or `D1.D2.D3.D4-C1.C2.C3.C4` (depths, then dims) for any other layout;
/// `-convstem2|3` after either for robustbench's ConvStems.
pub fn parse(rest: &str) -> Result<(Vec<usize>, ConvNextConfig), String> {
    let (sparse_rest, meansparse) = match rest.strip_suffix(MEANSPARSE) {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (body, stem) = [StemKind::Conv2, StemKind::Conv3]
        .into_iter()
        .find_map(|k| Some((sparse_rest.strip_suffix(k.suffix())?, k)))
        .unwrap_or((sparse_rest, StemKind::Patch));
    let layout = match PRESETS.iter().find(|(n, _, _)| *n == body) {
        Some((_, depths, dims)) => Some((*depths, *dims)),
        None => body
            .split_once('-')
            .and_then(|(d, c)| Some((four::<usize>(d)?, four::<i64>(c)?))),
    };
    let Some((depths, dims)) = layout else {
        return Err(format!(
            "`convnext-{rest}`: timm's ConvNeXts are convnext-tiny|small|base|large|xlarge, and convnext-D1.D2.D3.D4-C1.C2.C3.C4 (blocks, then channels, of the four stages) for any other layout; -convstem2 or -convstem3 after either for robustbench's ConvStems, then -meansparse for its MeanSparse variant"
        ));
    };
    if stem != StemKind::Patch && dims[0] % 2 != 0 {
        return Err(format!(
            "`convnext-{rest}`: a ConvStem's widths are halves of the first stage's, {} is odd",
            dims[0]
        ));
    }
    Ok((
        depths.to_vec(),
        ConvNextConfig {
            dims,
            stem,
            meansparse,
        },
    ))
}

/// The canonical name (parses back to the same layout).
pub fn name(blocks: &[usize], config: &ConvNextConfig) -> String {
    let stem = format!(
        "{}{}",
        config.stem.suffix(),
        if config.meansparse { MEANSPARSE } else { "" }
    );
    if let Some((n, _, _)) = PRESETS
        .iter()
        .find(|(_, d, c)| d.as_slice() == blocks && *c == config.dims)
    {
        return format!("{PREFIX}{n}{stem}");
    }
    let dotted = |v: Vec<String>| v.join(".");
    format!(
        "{PREFIX}{}-{}{stem}",
        dotted(blocks.iter().map(usize::to_string).collect()),
        dotted(config.dims.iter().map(i64::to_string).collect())
    )
}

/// Spatial size of the last stage's map for an input side `s`: the stem (the 4×4 stride-4
/// patch, or a ConvStem's padded 3×3 convolutions), then three 2×2 stride-2
/// downsamplings; None when a step gets an empty map (patch stem: inputs under 32 pixels).
pub fn last_stage_size(s: i64, config: &ConvNextConfig) -> Option<i64> {
    let mut size = match config.stem {
        StemKind::Patch => (s >= 4).then(|| (s - 4) / 4 + 1)?,
        kind => kind
            .convs(config.dims[0])
            .iter()
            .try_fold(s, |s, &(_, stride)| (s >= 1).then(|| (s - 1) / stride + 1))?,
    };
    for _ in 0..3 {
        size = (size >= 2).then(|| (size - 2) / 2 + 1)?;
    }
    Some(size)
}

/// Whether a state dict is a ConvNeXt (timm's `stem.0`, or a ConvStem's `stem.stem.0`,
/// and its block layout).
pub fn looks_like(has: &dyn Fn(&str) -> bool) -> bool {
    (has("stem.0.weight") || has("stem.stem.0.weight")) && has("stages.0.blocks.0.conv_dw.weight")
}

/// Blocks per stage, the configuration and the input channels from a ConvNeXt's keys and
/// shapes; the classifier is read by the caller (`head.fc`).
pub fn detect(
    shape: &dyn Fn(&str) -> Option<Vec<i64>>,
    count_blocks: &dyn Fn(&str, &str) -> usize,
) -> Result<(Vec<usize>, ConvNextConfig, i64), String> {
    let (stem, kind) = match shape("stem.stem.0.weight") {
        Some(s) if shape("stem.stem.6.weight").is_some() => (s, StemKind::Conv3),
        Some(s) => (s, StemKind::Conv2),
        None => (shape("stem.0.weight").unwrap_or_default(), StemKind::Patch),
    };
    let kernel = if kind == StemKind::Patch { 4 } else { 3 };
    if stem.len() != 4 || stem[2..] != [kernel, kernel] {
        return Err(format!(
            "the stem's first convolution has shape {stem:?}: rift's ConvNeXt has timm's 4×4 patch stem (`stem.0`) or robustbench's ConvStem of 3×3 convolutions (`stem.stem.0`)"
        ));
    }
    let blocks: Vec<usize> = (0..4)
        .map(|i| count_blocks(&format!("stages.{i}.blocks"), "conv_dw.weight"))
        .collect();
    if blocks.contains(&0) || shape("stages.4.blocks.0.conv_dw.weight").is_some() {
        return Err(format!(
            "a ConvNeXt (keys stem.0, stages.i.blocks.j.conv_dw) needs four stages, found blocks {blocks:?}"
        ));
    }
    let mut dims = [0; 4];
    for (i, dim) in dims.iter_mut().enumerate() {
        let dw = shape(&format!("stages.{i}.blocks.0.conv_dw.weight")).unwrap_or_default();
        *dim = dw.first().copied().unwrap_or(0);
    }
    let fc1 = shape("stages.0.blocks.0.mlp.fc1.weight").unwrap_or_default();
    if fc1.len() != 2 {
        return Err(format!(
            "`stages.0.blocks.0.mlp.fc1.weight` has shape {fc1:?}: rift's ConvNeXt has Linear MLPs (timm's conv_mlp=False), not 1×1 convolutions"
        ));
    }
    let config = ConvNextConfig {
        dims,
        stem: kind,
        meansparse: shape("stages.0.blocks.0.mlp.act.0.running_mean").is_some(),
    };
    Ok((blocks, config, stem[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_round_trip() {
        for name in [
            "tiny",
            "small",
            "base",
            "large",
            "xlarge",
            "1.1.1.1-8.16.32.64",
            "tiny-convstem2",
            "large-convstem3",
            "1.1.1.1-8.16.32.64-convstem3",
            "large-meansparse",
            "1.1.1.1-8.16.32.64-convstem2-meansparse",
        ] {
            let (blocks, config) = parse(name).unwrap();
            assert_eq!(super::name(&blocks, &config), format!("convnext-{name}"));
        }
        let (blocks, config) = parse("3.3.27.3-128.256.512.1024").unwrap();
        assert_eq!(super::name(&blocks, &config), "convnext-base");
        for bad in [
            "huge",
            "1.1.1-8.16.32.64",
            "1.1.1.1-8.16.32",
            "1.0.1.1-8.16.32.64",
            "1.1.1.1",
            "tiny-convstem4",
            "1.1.1.1-9.16.32.64-convstem2",
            "large-meansparse-convstem2",
            "meansparse",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_last_stage_is_empty_under_32_pixels() {
        let patch = parse("tiny").unwrap().1;
        assert_eq!(last_stage_size(224, &patch), Some(7));
        assert_eq!(last_stage_size(64, &patch), Some(2));
        assert_eq!(last_stage_size(32, &patch), Some(1));
        assert_eq!(last_stage_size(31, &patch), None);
        // Padded 3×3 stride-2 convolutions round up: 224 → 112 → 56, 29 → 15 → 8 (then 4,
        // 2, 1), 28 → 14 → 7 (then 3, 1 and nothing).
        let conv = parse("tiny-convstem2").unwrap().1;
        assert_eq!(last_stage_size(224, &conv), Some(7));
        assert_eq!(last_stage_size(29, &conv), Some(1));
        assert_eq!(last_stage_size(28, &conv), None);
    }
}
