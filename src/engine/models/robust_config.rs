//! How robustbench's per-stage networks (`robust_resnet.rs`: RobustWideResNet,
//! RobustResNet) are named (`--arch robust-…`) and told from a file's keys and shapes; a
//! leaf.
use super::family::Family;
use std::collections::HashMap;

/// Widths of a spec that names none (never the zoo's: every name spells them).
pub const DEFAULT_CHANNELS: [i64; 4] = [16, 16, 32, 64];

/// The name of a network of these families with `blocks` per stage and `channels` (stem,
/// stages).
pub fn name(family: Family, blocks: &[usize], channels: [i64; 4]) -> String {
    let family = match family {
        Family::RobustResNet => "robust-resnet",
        _ => "robust-wrn",
    };
    let dots = |v: Vec<String>| v.join(".");
    format!(
        "{family}-{}-{}",
        dots(blocks.iter().map(|b| b.to_string()).collect()),
        dots(channels.iter().map(|c| c.to_string()).collect())
    )
}

/// The family, blocks per stage and widths a name after `robust-` spells (`wrn-…` or
/// `resnet-…`); Err says what is wrong with it.
pub fn parse(rest: &str) -> Result<(Family, Vec<usize>, [i64; 4]), String> {
    let (family, body) = if let Some(b) = rest.strip_prefix("wrn-") {
        (Family::RobustWideResNet, b)
    } else if let Some(b) = rest.strip_prefix("resnet-") {
        (Family::RobustResNet, b)
    } else {
        return Err(
            "expected robust-wrn-D1.D2.D3-C0.C1.C2.C3 or robust-resnet-D1.D2.D3-C0.C1.C2.C3".into(),
        );
    };
    let (depths, chans) = body
        .split_once('-')
        .ok_or("expected blocks per stage, then the four widths: D1.D2.D3-C0.C1.C2.C3")?;
    let blocks: Vec<usize> = depths
        .split('.')
        .map(|d| {
            d.parse()
                .map_err(|_| format!("`{d}` is not a number of blocks"))
        })
        .collect::<Result<_, String>>()?;
    let widths: Vec<i64> = chans
        .split('.')
        .map(|c| c.parse().map_err(|_| format!("`{c}` is not a width")))
        .collect::<Result<_, String>>()?;
    if blocks.len() != 3 || blocks.contains(&0) {
        return Err(format!(
            "three stages of at least one block each, not {depths}"
        ));
    }
    match <[i64; 4]>::try_from(widths) {
        Ok(w) if w.iter().all(|&c| c > 0) => Ok((family, blocks, w)),
        _ => Err(format!(
            "four positive widths (stem and three stages), not {chans}"
        )),
    }
}

/// What a state with a `stem_conv` describes (Ok(None) without one): the family from the
/// head's name (`norm1`: RobustResNet, `bn1`: RobustWideResNet), blocks counted per stage,
/// widths read from the stem and each stage's first `conv1`, and the input channels.
pub type Detected = (Family, Vec<usize>, [i64; 4], i64);

pub fn detect(shapes: &HashMap<String, Vec<usize>>) -> Result<Option<Detected>, String> {
    let Some(stem) = shapes.get("stem_conv.weight") else {
        return Ok(None);
    };
    if stem.len() != 4 {
        return Err(format!(
            "`stem_conv.weight` has shape {stem:?}, expected 4 dimensions"
        ));
    }
    let family = if shapes.contains_key("norm1.weight") {
        Family::RobustResNet
    } else if shapes.contains_key("bn1.weight") {
        Family::RobustWideResNet
    } else {
        return Err("`stem_conv.weight` (robustbench's RobustWideResNet or RobustResNet) but neither head `bn1.weight` nor `norm1.weight`".into());
    };
    let mut blocks = Vec::new();
    let mut channels = [stem[0] as i64, 0, 0, 0];
    for (i, c) in channels.iter_mut().skip(1).enumerate() {
        let n = (0..)
            .take_while(|j| shapes.contains_key(&format!("blocks.{i}.layer.{j}.conv1.weight")))
            .count();
        let first = shapes
            .get(&format!("blocks.{i}.layer.0.conv1.weight"))
            .ok_or_else(|| format!("`stem_conv.weight` but no `blocks.{i}.layer.0.conv1.weight`: robustbench's per-stage networks have three stages"))?;
        blocks.push(n);
        *c = first[0] as i64;
    }
    Ok(Some((family, blocks, channels, stem[1] as i64)))
}
