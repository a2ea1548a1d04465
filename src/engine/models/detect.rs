//! Which architecture a state dict holds, told from its keys and shapes alone (`--arch
//! auto`): each family's tell-tale keys, then the sizes its shapes spell.

use super::arch::{ArchSpec, Family, WrnVariant};
use super::convnext_config;
use super::ra_config::RaWideConfig;
use super::ra_resnet_config;
use super::resnext_config;
use super::robust_config;
use super::swin_config;
use super::tv_config;
use super::vit_config::VitConfig;
use super::xcit_config::XcitConfig;
use std::collections::HashMap;

/// Infers the architecture from state-dict keys and shapes (prefix already stripped).
pub fn detect_arch(shapes: &HashMap<String, Vec<usize>>) -> Result<ArchSpec, String> {
    let shape = |k: &str| {
        shapes
            .get(k)
            .map(|s| s.iter().map(|&d| d as i64).collect::<Vec<i64>>())
    };
    let count_blocks = |prefix: &str, leaf: &str| -> usize {
        (0..)
            .take_while(|i| shapes.contains_key(&format!("{prefix}.{i}.{leaf}")))
            .count()
    };
    if let Some(spec) = detect_dm(&shape, &count_blocks)? {
        return Ok(spec);
    }
    if let Some((family, blocks, channels, in_channels)) = robust_config::detect(shapes)? {
        let mut spec = ArchSpec::with_defaults(family, blocks, 0, 10, in_channels);
        spec.stage_channels = Some(channels);
        spec.classifier_from(&shape, "fc")?;
        return Ok(spec);
    }
    // Before the ViT: an XCiT has a `cls_token` and `blocks.N.attn.qkv` too.
    if let Some((config, in_channels)) = XcitConfig::detect(&shape, &count_blocks)? {
        let mut spec = ArchSpec::xcit(config, 10, in_channels);
        spec.classifier_from(&shape, "head")?;
        return Ok(spec);
    }
    if let Some((config, in_channels)) = VitConfig::detect(&shape, &count_blocks)? {
        let mut spec = ArchSpec::vit(config, 10, in_channels);
        spec.classifier_from(&shape, "head")?;
        return Ok(spec);
    }
    // torchvision's AlexNet: an 11×11 `features.0` and the three-Linear classifier.
    if shape("features.0.weight").is_some_and(|w| w.len() == 4 && w[2..] == [11, 11])
        && shapes.contains_key("classifier.6.weight")
    {
        let in_channels = shape("features.0.weight").map_or(3, |w| w[1]);
        let mut spec = ArchSpec::with_defaults(Family::AlexNet, vec![], 0, 10, in_channels);
        spec.classifier_from(&shape, "classifier.6")?;
        return Ok(spec);
    }
    if convnext_config::looks_like(&|k| shapes.contains_key(k)) {
        let (blocks, config, in_channels) = convnext_config::detect(&shape, &count_blocks)?;
        let mut spec = ArchSpec::with_defaults(Family::ConvNeXt, blocks, 0, 10, in_channels);
        spec.convnext = Some(config);
        spec.classifier_from(&shape, "head.fc")?;
        return Ok(spec);
    }
    if resnext_config::looks_like(&|k| shapes.contains_key(k)) {
        let (config, in_channels) = resnext_config::detect(&shape)?;
        let mut spec = ArchSpec::resnext(config, 10, in_channels);
        spec.classifier_from(&shape, "classifier")?;
        return Ok(spec);
    }
    if ra_resnet_config::looks_like(&|k| shapes.contains_key(k)) {
        let (blocks, config, in_channels) = ra_resnet_config::detect(&shape)?;
        let mut spec = ArchSpec::ra_resnet(blocks, config, 10, in_channels);
        spec.classifier_from(&shape, "fc")?;
        return Ok(spec);
    }
    if swin_config::looks_like(&|k| shapes.contains_key(k)) {
        let (blocks, config, in_channels) = swin_config::detect(&shape, &count_blocks)?;
        let mut spec = ArchSpec::swin(blocks, config, 10, in_channels);
        // timm < 0.9's layout (published files) names the classifier `head`.
        let old = shapes.contains_key("head.weight") && !shapes.contains_key("head.fc.weight");
        spec.classifier_from(&shape, if old { "head" } else { "head.fc" })?;
        return Ok(spec);
    }
    let conv1 = shape("conv1.weight").ok_or(
        "no `conv1.weight` key (nor the DM networks' `init_conv.weight` or `conv_2d.weight`, nor a ConvNeXt's `stem.0.weight` with `stages.0.blocks.0.conv_dw.weight`)",
    )?;
    if conv1.len() != 4 {
        return Err(format!(
            "`conv1.weight` has shape {conv1:?}, expected 4 dimensions"
        ));
    }
    let in_channels = conv1[1];
    if shapes.contains_key("block1.layer.0.conv1.weight") {
        let n = count_blocks("block1.layer", "conv1.weight");
        let w = shape("block1.layer.0.conv1.weight").ok_or("missing block1")?;
        if w[0] % 16 != 0 {
            return Err(format!("block1 width {} is not a multiple of 16", w[0]));
        }
        let mut spec =
            ArchSpec::with_defaults(Family::WideResNet, vec![n; 3], w[0] / 16, 10, in_channels);
        spec.sub_block1 = shapes.contains_key("sub_block1.layer.0.conv1.weight");
        // PAF_WideResNet's shared PSSiLU leaves its scalars in every block's keys.
        if shapes.contains_key("block1.layer.0.activation.alpha") {
            spec.wrn_variant = WrnVariant::PsSilu;
        }
        spec.classifier_from(&shape, "fc")?;
        spec.classifier_bias = shapes.contains_key("fc.bias") || !shapes.contains_key("fc.weight");
        return Ok(spec);
    }
    if tv_config::looks_like(&|k| shapes.contains_key(k), &conv1) {
        let (family, blocks, per_group) = tv_config::detect_layout(&shape, &count_blocks)?;
        let mut spec = ArchSpec::with_defaults(family, blocks, per_group, 10, in_channels);
        spec.classifier_from(&shape, "fc")?;
        return Ok(spec);
    }
    if !shapes.contains_key("layer1.0.conv1.weight") {
        return Err("neither `layer1.0.conv1.weight` (ResNet family) nor `block1.layer.0.conv1.weight` (WideResNet) is present".into());
    }
    let blocks: Vec<usize> = (1..=4)
        .map(|s| count_blocks(&format!("layer{s}"), "conv1.weight"))
        .collect();
    if blocks.contains(&0) {
        return Err(format!(
            "expected four stages layer1..layer4, found blocks {blocks:?}"
        ));
    }
    // Pre-activation networks have no BatchNorm after the stem (`bn1`); V1 has no final
    // `bn` either.
    let preact = !shapes.contains_key("bn1.weight")
        && shapes.contains_key("layer1.0.bn1.weight")
        && !shapes.contains_key("layer1.0.conv3.weight");
    let family = if shapes.contains_key("layer1.0.conv3.weight") {
        Family::ResNetBottleneck
    } else if preact {
        Family::PreActResNet
    } else {
        Family::ResNet
    };
    let mut spec = ArchSpec::with_defaults(family, blocks, conv1[0], 10, in_channels);
    spec.preact_v1 = preact && !shapes.contains_key("bn.weight");
    spec.classifier_from(&shape, "linear")?;
    Ok(spec)
}

/// The DM families, told apart by their stems (`init_conv`: WideResNet, `conv_2d`:
/// PreActResNet), and the RaWideResNet (`init_conv` with what no DM WideResNet has:
/// SE, groups, a stem or widths of its own); Ok(None) when neither stem is present.
fn detect_dm(
    shape: &dyn Fn(&str) -> Option<Vec<i64>>,
    count_blocks: &dyn Fn(&str, &str) -> usize,
) -> Result<Option<ArchSpec>, String> {
    let stem_of = |key: &str| -> Result<Option<Vec<i64>>, String> {
        match shape(key) {
            Some(s) if s.len() == 4 => Ok(Some(s)),
            Some(s) => Err(format!("`{key}` has shape {s:?}, expected 4 dimensions")),
            None => Ok(None),
        }
    };
    if let Some(stem) = stem_of("init_conv.weight")? {
        if let Some((blocks, config)) = RaWideConfig::detect(shape, count_blocks, stem[0])? {
            let mut spec = ArchSpec::with_defaults(Family::RaWideResNet, blocks, 0, 10, stem[1]);
            spec.width = config.nominal_width(&spec.blocks);
            spec.ra = Some(config);
            spec.meansparse = shape("layer.0.block.0.meansparse_0.running_mean").is_some()
                || shape("meansparse_end.running_mean").is_some();
            spec.classifier_from(shape, "logits")?;
            return Ok(Some(spec));
        }
        let n = count_blocks("layer.0.block", "conv_0.weight");
        if n == 0 {
            return Err(
                "`init_conv.weight` (a DM WideResNet) but no `layer.0.block.0.conv_0.weight`"
                    .into(),
            );
        }
        let w = shape("layer.0.block.0.conv_0.weight").unwrap_or_default();
        if w.first().is_none_or(|c| c % 16 != 0) {
            return Err(format!(
                "`layer.0.block.0.conv_0.weight` has shape {w:?}; a DM WideResNet's first group is 16·k wide"
            ));
        }
        let mut spec =
            ArchSpec::with_defaults(Family::DmWideResNet, vec![n; 3], w[0] / 16, 10, stem[1]);
        spec.meansparse = shape("layer.0.block.0.meansparse_0.running_mean").is_some()
            || shape("meansparse_end.running_mean").is_some();
        spec.classifier_from(shape, "logits")?;
        return Ok(Some(spec));
    }
    if let Some(stem) = stem_of("conv_2d.weight")? {
        let blocks: Vec<usize> = (0..4)
            .map(|s| count_blocks(&format!("layer_{s}"), "conv_2d_1.weight"))
            .collect();
        if blocks.contains(&0) {
            return Err(format!(
                "`conv_2d.weight` (a DM PreActResNet) but stages layer_0..layer_3 have blocks {blocks:?}"
            ));
        }
        let mut spec =
            ArchSpec::with_defaults(Family::DmPreActResNet, blocks, stem[0], 10, stem[1]);
        spec.classifier_from(shape, "logits")?;
        return Ok(Some(spec));
    }
    Ok(None)
}
