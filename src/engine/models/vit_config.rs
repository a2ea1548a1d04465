//! The configuration of timm's `VisionTransformer` as rift builds it (`vit.rs`): how it is
//! named (`--arch`) and told from a file's keys and shapes.
//!
//! Names: `vit-SIZE PATCH-IMAGE` for timm's standard sizes (`vit-b16-224` is
//! `vit_base_patch16_224`; sizes `ti` 192 wide, 12 blocks, 3 heads; `s` 384, 12, 6; `b` 768,
//! 12, 12; `l` 1024, 24, 16), `deit-…` the same (DeiT is timm's `VisionTransformer` with the
//! same sizes: `deit-s16-224` is `vit-s16-224`), and any other configuration spelled out,
//! `vit-dimD-depthL-headsH-pP-IMAGE[-mlpM][-noqkvbias]` (MLP width M, default 4·D; a `qkv`
//! without bias). Classes come from the file (or the dataset), as for every family.
//!
//! Detection reads everything but the heads from shapes (`cls_token`, `pos_embed`,
//! `patch_embed.proj.weight`, `blocks.N.attn.qkv|mlp.fc1`). The number of heads leaves no
//! trace in any shape (`qkv` is 3·D × D whatever it is): detection assumes timm's standard
//! heads for the width (192 → 3, 384 → 6, 768 → 12, 1024 → 16) and refuses any other width;
//! an `--arch` name then gives the heads.
//!
//! `-convstemW` after any name: robustbench's ConvStem ViT (Singh2023Revisiting,
//! `convstem_models.py`'s `ConvBlock(W, …)` as `patch_embed.proj`): four 3×3 stride-2
//! convolutions of W, 2W, 4W, 8W channels, each followed by a channels-first LayerNorm and
//! GELU, then a 1×1 convolution to the embedding width; the patch is 16 (four halvings).

/// What a ViT chooses: every shape and the heads. timm's options rift does not build
/// (no class token, average pooling, layer scale, register tokens, ...) are refused by
/// strict loading, as they add or drop keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VitConfig {
    pub embed_dim: i64,
    pub depth: usize,
    pub heads: i64,
    pub patch: i64,
    /// The one input size the network takes (square): `pos_embed` has a position per patch.
    pub img_size: i64,
    /// The MLP's hidden width (timm's `mlp_ratio` · embed_dim, 4·D by default).
    pub mlp_dim: i64,
    pub qkv_bias: bool,
    /// robustbench's ConvStem: the first convolution's width W (then 2W, 4W, 8W); None
    /// for timm's one-convolution patch embedding.
    pub conv_stem: Option<i64>,
}

/// The `--arch` suffix of a ConvStem ViT.
const CONV_STEM: &str = "-convstem";

/// The `--arch` prefixes of the family.
pub const PREFIXES: [&str; 2] = ["vit-", "deit-"];

/// timm's standard sizes: (letters, width, blocks, heads).
const SIZES: [(&str, i64, usize, i64); 4] = [
    ("ti", 192, 12, 3),
    ("s", 384, 12, 6),
    ("b", 768, 12, 12),
    ("l", 1024, 24, 16),
];

/// timm's heads for a standard width (None for any other: heads are not in the shapes).
pub fn standard_heads(embed_dim: i64) -> Option<i64> {
    SIZES
        .iter()
        .find(|s| s.1 == embed_dim)
        .map(|&(_, _, _, heads)| heads)
}

impl VitConfig {
    /// Tokens the blocks see: one per patch and the class token.
    pub fn tokens(&self) -> i64 {
        let side = self.img_size / self.patch;
        side * side + 1
    }

    /// The canonical name (parses back to this configuration).
    pub fn name(&self) -> String {
        match self.conv_stem {
            Some(w) => format!("{}{CONV_STEM}{w}", self.base_name()),
            None => self.base_name(),
        }
    }

    fn base_name(&self) -> String {
        let standard = SIZES.iter().find(|&&(_, dim, depth, heads)| {
            (dim, depth, heads) == (self.embed_dim, self.depth, self.heads)
        });
        match standard {
            Some((size, ..)) if self.mlp_dim == 4 * self.embed_dim && self.qkv_bias => {
                format!("vit-{size}{}-{}", self.patch, self.img_size)
            }
            _ => {
                let mlp = if self.mlp_dim == 4 * self.embed_dim {
                    String::new()
                } else {
                    format!("-mlp{}", self.mlp_dim)
                };
                let bias = if self.qkv_bias { "" } else { "-noqkvbias" };
                format!(
                    "vit-dim{}-depth{}-heads{}-p{}-{}{mlp}{bias}",
                    self.embed_dim, self.depth, self.heads, self.patch, self.img_size
                )
            }
        }
    }

    /// A configuration from the part of a name after `vit-` or `deit-`.
    pub fn parse(rest: &str) -> Result<VitConfig, String> {
        let (rest, conv_stem) = match rest.rsplit_once(CONV_STEM) {
            Some((base, w)) => {
                let w = w.parse().ok().filter(|&w: &i64| w > 0);
                let w = w.ok_or_else(|| format!("`{rest}`: a ConvStem is -convstemW, W > 0"))?;
                (base, Some(w))
            }
            None => (rest, None),
        };
        let unknown = || {
            format!(
                "`{rest}`: a ViT is vit-SIZE PATCH-IMAGE (SIZE ti, s, b or l, e.g. vit-b16-224, deit-s16-224) or vit-dimD-depthL-headsH-pP-IMAGE[-mlpM][-noqkvbias]"
            )
        };
        let number = |text: &str, tag: &str| -> Option<i64> {
            text.strip_prefix(tag)?
                .parse()
                .ok()
                .filter(|&n: &i64| n > 0)
        };
        let parts: Vec<&str> = rest.split('-').collect();
        let config = if parts.len() == 2 {
            let (size, patch) = SIZES
                .iter()
                .filter_map(|s| Some((s, number(parts[0], s.0)?)))
                .next()
                .ok_or_else(unknown)?;
            let (_, dim, depth, heads) = *size;
            VitConfig {
                embed_dim: dim,
                depth,
                heads,
                patch,
                img_size: number(parts[1], "").ok_or_else(unknown)?,
                mlp_dim: 4 * dim,
                qkv_bias: true,
                conv_stem,
            }
        } else if parts.len() >= 5 {
            let dim = number(parts[0], "dim").ok_or_else(unknown)?;
            let mut config = VitConfig {
                embed_dim: dim,
                depth: number(parts[1], "depth").ok_or_else(unknown)? as usize,
                heads: number(parts[2], "heads").ok_or_else(unknown)?,
                patch: number(parts[3], "p").ok_or_else(unknown)?,
                img_size: number(parts[4], "").ok_or_else(unknown)?,
                mlp_dim: 4 * dim,
                qkv_bias: true,
                conv_stem,
            };
            for extra in &parts[5..] {
                if let Some(m) = number(extra, "mlp") {
                    config.mlp_dim = m;
                } else if *extra == "noqkvbias" {
                    config.qkv_bias = false;
                } else {
                    return Err(unknown());
                }
            }
            config
        } else {
            return Err(unknown());
        };
        config.checked()
    }

    /// The configuration if timm's constructor accepts it and its patches tile the image.
    fn checked(self) -> Result<VitConfig, String> {
        if self.embed_dim % self.heads != 0 {
            return Err(format!(
                "width {} is not divisible by {} heads",
                self.embed_dim, self.heads
            ));
        }
        if self.conv_stem.is_some() && self.patch != 16 {
            return Err(format!(
                "a ConvStem halves four times: its patch is 16, not {}",
                self.patch
            ));
        }
        if self.img_size % self.patch != 0 {
            return Err(format!(
                "{}×{} images do not split into {}×{} patches",
                self.img_size, self.img_size, self.patch, self.patch
            ));
        }
        Ok(self)
    }

    /// The configuration and input channels of a timm `VisionTransformer` state; Ok(None)
    /// when the keys are not a ViT's (no `cls_token` nor `patch_embed.proj.weight`).
    pub fn detect(
        shape: &dyn Fn(&str) -> Option<Vec<i64>>,
        count_blocks: &dyn Fn(&str, &str) -> usize,
    ) -> Result<Option<(VitConfig, i64)>, String> {
        let stem = shape("patch_embed.proj.stem.0.weight");
        let proj = match (shape("patch_embed.proj.weight"), &stem) {
            (Some(proj), _) => proj,
            // A ConvStem: 16×16 patches from its first convolution's input channels and
            // the width of the embedding.
            (None, Some(s)) if s.len() == 4 => match shape("cls_token").as_deref() {
                Some(&[1, 1, dim]) => vec![dim, s[1], 16, 16],
                _ => {
                    return Err(
                        "a ConvStem `patch_embed.proj.stem` without a 1×1×D `cls_token`".into(),
                    )
                }
            },
            _ => return Ok(None),
        };
        let Some(pos) = shape("pos_embed").or_else(|| shape("cls_token").map(|_| vec![])) else {
            return Ok(None);
        };
        let [dim, in_channels, patch, patch_w] = proj[..] else {
            return Err(format!(
                "`patch_embed.proj.weight` has shape {proj:?}, expected 4 dimensions"
            ));
        };
        if patch != patch_w {
            return Err(format!(
                "`patch_embed.proj.weight` has shape {proj:?}: rift's ViT takes square patches"
            ));
        }
        let positions = match pos[..] {
            [1, n, d] if d == dim && n > 1 => n - 1,
            _ => {
                return Err(format!(
                    "`pos_embed` has shape {pos:?}; a ViT with a class token of width {dim} has 1×(1 + patches)×{dim}"
                ))
            }
        };
        let side = (positions as f64).sqrt().round() as i64;
        if side * side != positions {
            return Err(format!(
                "`pos_embed` holds {positions} patch positions, not a square grid"
            ));
        }
        let depth = count_blocks("blocks", "attn.qkv.weight");
        if depth == 0 {
            return Err(
                "`patch_embed.proj.weight` (a ViT) but no `blocks.0.attn.qkv.weight`".into(),
            );
        }
        let mlp_dim = shape("blocks.0.mlp.fc1.weight")
            .and_then(|s| s.first().copied())
            .unwrap_or(4 * dim);
        let heads = standard_heads(dim).ok_or_else(|| {
            format!(
                "a ViT of width {dim}: its number of heads is in no shape, and {dim} is none of timm's standard widths (192, 384, 768, 1024 with 3, 6, 12, 16 heads); name it with --arch vit-dim{dim}-depth{depth}-headsH-p{patch}-{}",
                side * patch
            )
        })?;
        let config = VitConfig {
            embed_dim: dim,
            depth,
            heads,
            patch,
            img_size: side * patch,
            mlp_dim,
            qkv_bias: shape("blocks.0.attn.qkv.bias").is_some(),
            conv_stem: stem.and_then(|s| s.first().copied()),
        };
        Ok(Some((config.checked()?, in_channels)))
    }
}

/// The classes of a state whose architecture is not detected, for `--arch`: a ViT's
/// `head.weight` rows (detection refuses a ViT of a non-standard width, whose heads no
/// shape holds, but its name can give them), else 10.
pub fn classes(shapes: &std::collections::HashMap<String, Vec<usize>>) -> i64 {
    match shapes.get("head.weight").map(Vec::as_slice) {
        Some(&[rows, _]) => rows as i64,
        _ => 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn names_parse_and_round_trip() {
        let b = VitConfig::parse("b16-224").unwrap();
        assert_eq!((b.embed_dim, b.depth, b.heads, b.patch), (768, 12, 12, 16));
        assert_eq!((b.img_size, b.mlp_dim, b.tokens()), (224, 3072, 197));
        assert_eq!(VitConfig::parse("ti16-224").unwrap().embed_dim, 192);
        for name in [
            "vit-b16-224",
            "vit-s16-224",
            "vit-ti16-224",
            "vit-l16-384",
            "vit-dim64-depth2-heads2-p8-32",
            "vit-dim64-depth2-heads2-p8-32-mlp100-noqkvbias",
            "vit-dim768-depth12-heads8-p16-224",
            "vit-s16-224-convstem48",
            "vit-dim64-depth1-heads2-p16-32-convstem8",
        ] {
            let config = VitConfig::parse(name.strip_prefix("vit-").unwrap()).unwrap();
            assert_eq!(config.name(), name);
        }
        for bad in [
            "b16",
            "x16-224",
            "b16-225",
            "dim64-depth2-heads3-p8-32",
            "dim64-depth2-heads2-p8",
            "dim64-depth2-heads2-p8-32-mlp",
            "dim64-depth0-heads2-p8-32",
            "s8-224-convstem48",
            "s16-224-convstem",
        ] {
            assert!(VitConfig::parse(bad).is_err(), "{bad}");
        }
    }

    fn shapes_of(dim: i64, depth: usize, patch: i64, img: i64) -> HashMap<String, Vec<i64>> {
        let n = (img / patch) * (img / patch) + 1;
        let mut s = HashMap::from([
            ("cls_token".to_string(), vec![1, 1, dim]),
            ("pos_embed".to_string(), vec![1, n, dim]),
            (
                "patch_embed.proj.weight".to_string(),
                vec![dim, 3, patch, patch],
            ),
        ]);
        for i in 0..depth {
            s.insert(format!("blocks.{i}.attn.qkv.weight"), vec![3 * dim, dim]);
            s.insert(format!("blocks.{i}.attn.qkv.bias"), vec![3 * dim]);
            s.insert(format!("blocks.{i}.mlp.fc1.weight"), vec![4 * dim, dim]);
        }
        s
    }

    fn detect(s: &HashMap<String, Vec<i64>>) -> Result<Option<(VitConfig, i64)>, String> {
        let shape = |k: &str| s.get(k).cloned();
        let count = |prefix: &str, leaf: &str| {
            (0..)
                .take_while(|i| s.contains_key(&format!("{prefix}.{i}.{leaf}")))
                .count()
        };
        VitConfig::detect(&shape, &count)
    }

    #[test]
    fn detection_reads_shapes_and_assumes_standard_heads() {
        let (config, c) = detect(&shapes_of(384, 3, 16, 224)).unwrap().unwrap();
        assert_eq!(c, 3);
        assert_eq!(config.name(), "vit-dim384-depth3-heads6-p16-224");
        let (b, _) = detect(&shapes_of(768, 12, 16, 224)).unwrap().unwrap();
        assert_eq!(b.name(), "vit-b16-224");
        let err = detect(&shapes_of(64, 2, 8, 32)).unwrap_err();
        assert!(err.contains("vit-dim64-depth2-headsH-p8-32"), "{err}");
        assert!(detect(&HashMap::new()).unwrap().is_none());
        let mut stem = shapes_of(384, 12, 16, 224);
        stem.remove("patch_embed.proj.weight");
        stem.insert("patch_embed.proj.stem.0.weight".into(), vec![48, 3, 3, 3]);
        let (config, _) = detect(&stem).unwrap().unwrap();
        assert_eq!(config.name(), "vit-s16-224-convstem48");
        let sizes = |rows: usize| HashMap::from([("head.weight".to_string(), vec![rows, 64])]);
        assert_eq!(classes(&sizes(7)), 7);
        assert_eq!(classes(&HashMap::new()), 10);
    }
}
