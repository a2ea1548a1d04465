//! How timm's Swin Transformers are named (`--arch swin-…`), told from a file's keys and
//! shapes, and how a published file's layout is brought to timm ≥ 0.9's; a leaf beside
//! `swin.rs`, which builds them.

/// The `--arch` prefix of the family (`swin-b-p4-w7-224`).
pub const PREFIX: &str = "swin-";

/// What a Swin's name says beyond its blocks per stage (`ArchSpec::blocks`, timm's
/// `depths`): the first stage's width (each later stage doubles it), the heads per stage,
/// the patch, the window, the one image size it takes and its LayerNorms' eps, 10^-`ln_eps_exp`
/// (timm's 1e-5 unless the name ends `-eps1e-N`: MIMIR's builders pass 1e-6, which no shape
/// tells, so its files need `--zoo` or that `--arch`), and whether it is robustbench's
/// MeanSparse Swin (`-meansparse`, Amini2024MeanSparse_Swin-L: `Meansparse_swin_L.py`).
/// Everything else is timm's default: MLP ratio 4, q/k/v biases, exact GELU, average
/// pooling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwinConfig {
    pub embed_dim: i64,
    pub heads: Vec<i64>,
    pub patch: i64,
    pub window: i64,
    pub img_size: i64,
    pub ln_eps_exp: i32,
    pub meansparse: bool,
}

/// The name's suffix of the MeanSparse Swin.
const MEANSPARSE: &str = "-meansparse";

/// `nn.LayerNorm`'s default eps, 1e-5, which timm's Swin keeps.
pub const TIMM_LN_EPS_EXP: i32 = 5;

/// timm's `swin_{tiny,small,base,large}_patch4_window7_224` sizes: letter, width, depths,
/// heads.
const PRESETS: [(&str, i64, [usize; 4], [i64; 4]); 4] = [
    ("t", 96, [2, 2, 6, 2], [3, 6, 12, 24]),
    ("s", 96, [2, 2, 18, 2], [3, 6, 12, 24]),
    ("b", 128, [2, 2, 18, 2], [4, 8, 16, 32]),
    ("l", 192, [2, 2, 18, 2], [6, 12, 24, 48]),
];

impl SwinConfig {
    /// The width of stage `i` (timm doubles it at every PatchMerging).
    pub fn dim(&self, i: usize) -> i64 {
        self.embed_dim << i
    }

    /// The last stage's width, which the classifier takes.
    pub fn num_features(&self) -> i64 {
        self.dim(self.heads.len() - 1)
    }

    /// The token grid side of stage `i` (PatchMerging pads odd sides: ⌈g / 2ⁱ⌉, as timm's
    /// `input_resolution`).
    pub fn grid(&self, i: usize) -> i64 {
        let g = self.img_size / self.patch;
        let scale = 1i64 << i;
        (g + scale - 1) / scale
    }

    /// Window side and cyclic shift of stage `i`'s odd blocks: a grid no larger than the
    /// window is one window, never shifted (timm's `_calc_window_shift`).
    pub fn window_shift(&self, i: usize) -> (i64, i64) {
        let g = self.grid(i);
        if g <= self.window {
            (g, 0)
        } else {
            (self.window, self.window / 2)
        }
    }

    /// What keys and shapes tell of the configuration: all but the LayerNorms' eps.
    pub fn in_shapes(&self) -> SwinConfig {
        SwinConfig {
            ln_eps_exp: TIMM_LN_EPS_EXP,
            ..self.clone()
        }
    }

    /// The LayerNorms' eps.
    pub fn ln_eps(&self) -> f64 {
        10f64.powi(-self.ln_eps_exp)
    }

    /// The canonical name (parses back to the same configuration).
    pub fn name(&self, blocks: &[usize]) -> String {
        let eps = match self.ln_eps_exp {
            TIMM_LN_EPS_EXP => String::new(),
            e => format!("-eps1e-{e}"),
        };
        let sparse = if self.meansparse { MEANSPARSE } else { "" };
        let tail = format!(
            "p{}-w{}-{}{eps}{sparse}",
            self.patch, self.window, self.img_size
        );
        if let Some((n, ..)) = PRESETS.iter().find(|(_, d, depths, heads)| {
            *d == self.embed_dim && depths.as_slice() == blocks && heads.as_slice() == self.heads
        }) {
            return format!("{PREFIX}{n}-{tail}");
        }
        let dotted = |v: Vec<String>| v.join(".");
        format!(
            "{PREFIX}dim{}-depths{}-heads{}-{tail}",
            self.embed_dim,
            dotted(blocks.iter().map(usize::to_string).collect()),
            dotted(self.heads.iter().map(i64::to_string).collect()),
        )
    }
}

fn dotted<T: std::str::FromStr + PartialOrd + Default>(text: &str) -> Option<Vec<T>> {
    text.split('.')
        .map(|v| v.parse().ok().filter(|n| *n > T::default()))
        .collect()
}

/// Blocks per stage and the configuration of a name after `swin-`: `t|s|b|l-pP-wW-S`
/// (timm's tiny, small, base, large) or `dimD-depthsA.B…-headsA.B…-pP-wW-S`, either
/// followed by `-eps1e-N` for LayerNorms of eps 10^-N, then `-meansparse` for robustbench's
/// MeanSparse Swin.
pub fn parse(name: &str) -> Result<(Vec<usize>, SwinConfig), String> {
    let bad = || {
        format!(
            "`swin-{name}`: timm's Swin Transformers are swin-t|s|b|l-pPATCH-wWINDOW-IMAGE (e.g. swin-b-p4-w7-224), and swin-dimD-depthsA.B.C.D-headsA.B.C.D-pPATCH-wWINDOW-IMAGE for any other layout, either followed by -eps1e-N for LayerNorms of eps 10^-N (MIMIR's: swin-b-p4-w7-224-eps1e-6), then -meansparse for robustbench's MeanSparse Swin (swin-l-p4-w7-224-meansparse)"
        )
    };
    let (rest, meansparse) = match name.strip_suffix(MEANSPARSE) {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    let (rest, ln_eps_exp) = match rest.rsplit_once("-eps1e-") {
        Some((rest, e)) => (
            rest,
            e.parse::<i32>()
                .ok()
                .filter(|e| (1..=12).contains(e))
                .ok_or_else(bad)?,
        ),
        None => (rest, TIMM_LN_EPS_EXP),
    };
    let parts: Vec<&str> = rest.split('-').collect();
    let n = parts.len();
    if n < 4 {
        return Err(bad());
    }
    let num = |s: &str, p: &str| s.strip_prefix(p)?.parse::<i64>().ok().filter(|v| *v > 0);
    let (Some(patch), Some(window), Some(img_size)) = (
        num(parts[n - 3], "p"),
        num(parts[n - 2], "w"),
        num(parts[n - 1], ""),
    ) else {
        return Err(bad());
    };
    let (embed_dim, blocks, heads) = match parts[..n - 3] {
        [letter] => {
            let (_, d, depths, heads) = PRESETS.iter().find(|p| p.0 == letter).ok_or_else(bad)?;
            (*d, depths.to_vec(), heads.to_vec())
        }
        [d, depths, heads] => {
            let d = num(d, "dim").ok_or_else(bad)?;
            let depths: Vec<usize> =
                dotted(depths.strip_prefix("depths").ok_or_else(bad)?).ok_or_else(bad)?;
            let heads: Vec<i64> =
                dotted(heads.strip_prefix("heads").ok_or_else(bad)?).ok_or_else(bad)?;
            (d, depths, heads)
        }
        _ => return Err(bad()),
    };
    if depths_heads_mismatch(&blocks, &heads) {
        return Err(format!("`swin-{name}`: one head count per stage is needed"));
    }
    let config = SwinConfig {
        embed_dim,
        heads,
        patch,
        window,
        img_size,
        ln_eps_exp,
        meansparse,
    };
    if img_size % patch != 0 {
        return Err(format!(
            "`swin-{name}`: the image size {img_size} is not a multiple of the patch {patch}"
        ));
    }
    if let Some(i) = (0..blocks.len()).find(|&i| config.dim(i) % config.heads[i] != 0) {
        return Err(format!(
            "`swin-{name}`: stage {i}'s width {} is not a multiple of its {} heads",
            config.dim(i),
            config.heads[i]
        ));
    }
    Ok((blocks, config))
}

fn depths_heads_mismatch(blocks: &[usize], heads: &[i64]) -> bool {
    blocks.len() != heads.len() || blocks.is_empty()
}

/// Whether a state dict is a Swin (timm's keys, either layout).
pub fn looks_like(has: &dyn Fn(&str) -> bool) -> bool {
    has("patch_embed.proj.weight") && has("layers.0.blocks.0.attn.relative_position_bias_table")
}

/// Blocks per stage, the configuration and the input channels from a Swin's keys and
/// shapes (timm ≥ 0.9's layout, see `timm_layout`). The image size is in no shape: it is
/// 224 (every published Swin's), unless a stage's window is clamped to a smaller grid,
/// which then tells it; other sizes need `--arch`.
pub fn detect(
    shape: &dyn Fn(&str) -> Option<Vec<i64>>,
    count_blocks: &dyn Fn(&str, &str) -> usize,
) -> Result<(Vec<usize>, SwinConfig, i64), String> {
    let proj = shape("patch_embed.proj.weight").unwrap_or_default();
    if proj.len() != 4 || proj[2] != proj[3] {
        return Err(format!(
            "`patch_embed.proj.weight` has shape {proj:?}: a Swin's patch embedding is a square P×P convolution"
        ));
    }
    let table = "attn.relative_position_bias_table";
    let blocks: Vec<usize> = (0..)
        .map(|i| count_blocks(&format!("layers.{i}.blocks"), table))
        .take_while(|&n| n > 0)
        .collect();
    let mut heads = Vec::new();
    let mut windows = Vec::new();
    for i in 0..blocks.len() {
        let t = shape(&format!("layers.{i}.blocks.0.{table}")).unwrap_or_default();
        let side = (1..=64).find(|w| (2 * w - 1) * (2 * w - 1) == t.first().copied().unwrap_or(0));
        let (Some(w), 2) = (side, t.len()) else {
            return Err(format!(
                "`layers.{i}.blocks.0.{table}` has shape {t:?}: expected ((2w-1)², heads) for a square window w"
            ));
        };
        windows.push(w);
        heads.push(t[1]);
    }
    let window = windows[0];
    // A stage whose grid is no larger than the window has a window of the grid's side.
    let img_size = match windows.iter().position(|&w| w < window) {
        Some(i) => (windows[i] << i) * proj[2],
        None => 224,
    };
    let config = SwinConfig {
        embed_dim: proj[0],
        heads,
        patch: proj[2],
        window,
        img_size,
        ln_eps_exp: TIMM_LN_EPS_EXP,
        meansparse: shape("layers.0.blocks.0.meansparse1.running_mean").is_some(),
    };
    Ok((blocks, config, proj[1]))
}

/// The names robustbench's `checkpoint_filter_fn` would give the keys of a published Swin
/// file, in timm ≥ 0.9's layout, one per key: None for the buffers older code saved
/// (`relative_position_index`, `attn_mask`, now non-persistent); in the original layout
/// (timm < 0.9's and Microsoft's, MIMIR's: `layers.0.downsample`, PatchMerging at the end
/// of a stage, classifier `head`) each `layers.i.downsample` moved to stage i + 1 and
/// `head` renamed `head.fc`. None when nothing changes (not a Swin, or already in timm's
/// layout).
pub fn timm_names(keys: &[&str]) -> Option<Vec<Option<String>>> {
    let has = |k: &str| keys.contains(&k);
    if !looks_like(&has) {
        return None;
    }
    let buffer = |k: &str| k.ends_with("relative_position_index") || k.ends_with("attn_mask");
    let old = has("layers.0.downsample.reduction.weight");
    if !old && !keys.iter().any(|k| buffer(k)) {
        return None;
    }
    let rename = |k: &str| -> String {
        if !old {
            return k.to_string();
        }
        if let Some(rest) = k.strip_prefix("layers.") {
            if let Some((i, tail)) = rest.split_once('.') {
                if let (Ok(i), true) = (i.parse::<usize>(), tail.starts_with("downsample.")) {
                    return format!("layers.{}.{tail}", i + 1);
                }
            }
        }
        match k.strip_prefix("head.") {
            Some(leaf) if !leaf.starts_with("fc.") => format!("head.fc.{leaf}"),
            _ => k.to_string(),
        }
    };
    Some(
        keys.iter()
            .map(|k| (!buffer(k)).then(|| rename(k)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_round_trip() {
        for name in [
            "t-p4-w7-224",
            "b-p4-w7-224",
            "l-p4-w7-224",
            "dim16-depths2.2-heads1.2-p4-w4-32",
            "l-p4-w14-224-eps1e-6",
            "dim16-depths2.2-heads1.2-p4-w14-224-eps1e-6",
            "l-p4-w7-224-meansparse",
            "dim16-depths2.2-heads1.2-p4-w4-32-eps1e-6-meansparse",
        ] {
            let (blocks, config) = parse(name).unwrap();
            assert_eq!(config.name(&blocks), format!("swin-{name}"));
        }
        let (blocks, config) = parse("dim128-depths2.2.18.2-heads4.8.16.32-p4-w7-224").unwrap();
        assert_eq!(config.name(&blocks), "swin-b-p4-w7-224");
        assert_eq!(config.num_features(), 1024);
        assert_eq!(
            (0..4).map(|i| config.window_shift(i)).collect::<Vec<_>>(),
            [(7, 3), (7, 3), (7, 3), (7, 0)]
        );
        for bad in [
            "x-p4-w7-224",
            "b-p4-w7",
            "b-4-w7-224",
            "dim16-depths2.2-heads1-p4-w4-32",
            "dim16-depths2.2-heads3.2-p4-w4-32",
            "b-p4-w7-225",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_original_layout_moves_to_timms() {
        let keys = [
            "patch_embed.proj.weight",
            "layers.0.blocks.0.attn.relative_position_bias_table",
            "layers.0.blocks.0.attn.relative_position_index",
            "layers.0.blocks.1.attn_mask",
            "layers.0.downsample.reduction.weight",
            "head.weight",
        ];
        let out = timm_names(&keys).unwrap();
        let name = |k: &str| Some(k.to_string());
        assert_eq!(
            out,
            [
                name("patch_embed.proj.weight"),
                name("layers.0.blocks.0.attn.relative_position_bias_table"),
                None,
                None,
                name("layers.1.downsample.reduction.weight"),
                name("head.fc.weight")
            ]
        );
        assert!(timm_names(&keys[..2]).is_none());
    }
}
