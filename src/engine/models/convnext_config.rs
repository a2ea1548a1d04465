//! How timm's ConvNeXts are named (`--arch convnext-…`) and told from a file's keys and
//! shapes; a leaf beside `convnext.rs`, which builds them.

/// The `--arch` prefix of the family (`convnext-base`, `convnext-3.3.9.3-96.192.384.768`).
pub const PREFIX: &str = "convnext-";

/// What a ConvNeXt's name says beyond its blocks per stage (`ArchSpec::blocks`, timm's
/// `depths`): the widths of its four stages (timm's `dims`). Everything else is timm's
/// default: the 4×4 patch stem, 7×7 depthwise convolutions, MLP ratio 4, layer scale,
/// Linear MLPs over channels-last tokens (`conv_mlp=False`), LayerNorms with eps 1e-6 and
/// the pool → LayerNorm → fc head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvNextConfig {
    pub dims: [i64; 4],
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
/// large|xlarge`, or `D1.D2.D3.D4-C1.C2.C3.C4` (depths, then dims) for any other layout.
pub fn parse(rest: &str) -> Result<(Vec<usize>, ConvNextConfig), String> {
    if let Some((_, depths, dims)) = PRESETS.iter().find(|(n, _, _)| *n == rest) {
        return Ok((depths.to_vec(), ConvNextConfig { dims: *dims }));
    }
    let layout = rest
        .split_once('-')
        .and_then(|(d, c)| Some((four::<usize>(d)?, four::<i64>(c)?)));
    match layout {
        Some((depths, dims)) => Ok((depths.to_vec(), ConvNextConfig { dims })),
        None => Err(format!(
            "`convnext-{rest}`: timm's ConvNeXts are convnext-tiny|small|base|large|xlarge, and convnext-D1.D2.D3.D4-C1.C2.C3.C4 (blocks, then channels, of the four stages) for any other layout"
        )),
    }
}

/// The canonical name (parses back to the same layout).
pub fn name(blocks: &[usize], config: &ConvNextConfig) -> String {
    if let Some((n, _, _)) = PRESETS
        .iter()
        .find(|(_, d, c)| d.as_slice() == blocks && *c == config.dims)
    {
        return format!("{PREFIX}{n}");
    }
    let dotted = |v: Vec<String>| v.join(".");
    format!(
        "{PREFIX}{}-{}",
        dotted(blocks.iter().map(usize::to_string).collect()),
        dotted(config.dims.iter().map(i64::to_string).collect())
    )
}

/// Spatial size of the last stage's map for an input side `s`: the 4×4 stride-4 patch
/// stem, then three 2×2 stride-2 downsamplings; None when a step gets an empty map
/// (inputs under 32 pixels).
pub fn last_stage_size(s: i64) -> Option<i64> {
    let mut size = (s >= 4).then(|| (s - 4) / 4 + 1)?;
    for _ in 0..3 {
        size = (size >= 2).then(|| (size - 2) / 2 + 1)?;
    }
    Some(size)
}

/// Whether a state dict is a ConvNeXt (timm's `stem.0` and block layout).
pub fn looks_like(has: &dyn Fn(&str) -> bool) -> bool {
    has("stem.0.weight") && has("stages.0.blocks.0.conv_dw.weight")
}

/// Blocks per stage, the configuration and the input channels from a ConvNeXt's keys and
/// shapes; the classifier is read by the caller (`head.fc`).
pub fn detect(
    shape: &dyn Fn(&str) -> Option<Vec<i64>>,
    count_blocks: &dyn Fn(&str, &str) -> usize,
) -> Result<(Vec<usize>, ConvNextConfig, i64), String> {
    let stem = shape("stem.0.weight").unwrap_or_default();
    if stem.len() != 4 || stem[2..] != [4, 4] {
        return Err(format!(
            "`stem.0.weight` has shape {stem:?}: rift's ConvNeXt has timm's 4×4 patch stem (the ConvStem variants' convolution stacks are not supported)"
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
    Ok((blocks, ConvNextConfig { dims }, stem[1]))
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
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_last_stage_is_empty_under_32_pixels() {
        assert_eq!(last_stage_size(224), Some(7));
        assert_eq!(last_stage_size(64), Some(2));
        assert_eq!(last_stage_size(32), Some(1));
        assert_eq!(last_stage_size(31), None);
    }
}
