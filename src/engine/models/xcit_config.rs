//! The configuration of timm's `Xcit` (Cross-Covariance Image Transformer) as rift builds
//! it (`xcit.rs`): how it is named (`--arch`) and told from a file's keys and shapes.
//!
//! Names: `xcit-SIZE DEPTH-pPATCH` for timm's standard widths (`xcit-s12-p16` is
//! `xcit_small_12_p16_224`; sizes `n` 128 wide with 4 heads, `t` 192/4, `s` 384/8, `m` 512/8,
//! `l` 768/16), and any other configuration spelled out,
//! `xcit-dimD-depthL-headsH-pPATCH[-mlpM][-caC]` (MLP width M, default 4·D; C
//! class-attention blocks, default 2). PATCH is 16 (four 3×3 stride-2 convolutions in the
//! patch embedding) or 8 (three); `-p16toQ` is robustbench's `adapt_model_patches(model, Q)`
//! of a patch-16 network: the same convolutions and keys, the first 16/(2·Q)… of them at
//! stride 1 (`-p16to4`, its CIFAR models: the first two, so 32×32 images give 8×8 tokens).
//!
//! rift builds timm's `tokens_norm=True` class attention (every registered XCiT, timm's and
//! robustbench's, sets it; it changes no key, so a file cannot say otherwise), biased
//! `qkv`, LayerNorm eps 1e-6, no dropout.
//!
//! Detection reads every shape, the heads included (`blocks.0.attn.temperature` is
//! heads×1×1). The strides do not show in any key: a detected XCiT is never adapted, so a
//! robustbench CIFAR file outside the zoo needs `--arch xcit-…-p16to4`.

/// What an XCiT chooses: every shape, the heads and the patch embedding's strides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XcitConfig {
    pub embed_dim: i64,
    pub depth: usize,
    pub heads: i64,
    /// The patch size it was built with: 16 (four convolutions) or 8 (three).
    pub patch: i64,
    /// The patch after robustbench's `adapt_model_patches` (its leading convolutions at
    /// stride 1); `patch` when not adapted.
    pub effective_patch: i64,
    pub mlp_dim: i64,
    pub cls_attn_layers: usize,
}

/// The `--arch` prefix of the family.
pub const PREFIX: &str = "xcit-";

/// timm's standard sizes: (letter, width, heads).
const SIZES: [(&str, i64, i64); 5] = [
    ("n", 128, 4),
    ("t", 192, 4),
    ("s", 384, 8),
    ("m", 512, 8),
    ("l", 768, 16),
];

impl XcitConfig {
    /// The patch embedding's convolutions: (input, output) channels and stride, in order.
    pub fn patch_convs(&self, in_channels: i64) -> Vec<(i64, i64, i64)> {
        let n = self.patch.trailing_zeros();
        let stride1 = n - self.effective_patch.trailing_zeros();
        let mut c = in_channels;
        (0..n)
            .map(|i| {
                let out = self.embed_dim >> (n - 1 - i);
                let stride = if i < stride1 { 1 } else { 2 };
                let conv = (c, out, stride);
                c = out;
                conv
            })
            .collect()
    }

    /// The configuration as its keys show it: not adapted (the strides are in no key).
    pub fn unadapted(self) -> XcitConfig {
        XcitConfig {
            effective_patch: self.patch,
            ..self
        }
    }

    /// The canonical name (parses back to this configuration).
    pub fn name(&self) -> String {
        let patch = if self.effective_patch == self.patch {
            format!("p{}", self.patch)
        } else {
            format!("p{}to{}", self.patch, self.effective_patch)
        };
        let standard = SIZES
            .iter()
            .find(|&&(_, dim, heads)| (dim, heads) == (self.embed_dim, self.heads));
        let mlp = if self.mlp_dim == 4 * self.embed_dim {
            String::new()
        } else {
            format!("-mlp{}", self.mlp_dim)
        };
        let ca = if self.cls_attn_layers == 2 {
            String::new()
        } else {
            format!("-ca{}", self.cls_attn_layers)
        };
        match standard {
            Some((size, ..)) if mlp.is_empty() && ca.is_empty() => {
                format!("xcit-{size}{}-{patch}", self.depth)
            }
            _ => format!(
                "xcit-dim{}-depth{}-heads{}-{patch}{mlp}{ca}",
                self.embed_dim, self.depth, self.heads
            ),
        }
    }

    /// A configuration from the part of a name after `xcit-`.
    pub fn parse(rest: &str) -> Result<XcitConfig, String> {
        let unknown = || {
            format!(
                "`{rest}`: an XCiT is xcit-SIZE DEPTH-pPATCH (SIZE n, t, s, m or l, PATCH 16, 8 or 16toQ, e.g. xcit-s12-p16, xcit-s12-p16to4) or xcit-dimD-depthL-headsH-pPATCH[-mlpM][-caC]"
            )
        };
        let number = |text: &str, tag: &str| -> Option<i64> {
            text.strip_prefix(tag)?
                .parse()
                .ok()
                .filter(|&n: &i64| n > 0)
        };
        let patches = |text: &str| -> Option<(i64, i64)> {
            let text = text.strip_prefix('p')?;
            match text.split_once("to") {
                // `p16to16` would be `p16` spelled twice: one name per network.
                Some((p, q)) => Some((number(p, "")?, number(q, "")?)).filter(|(p, q)| p != q),
                None => number(text, "").map(|p| (p, p)),
            }
        };
        let parts: Vec<&str> = rest.split('-').collect();
        let config = if parts.len() == 2 {
            let (&(_, dim, heads), depth) = SIZES
                .iter()
                .find_map(|s| Some((s, number(parts[0], s.0)?)))
                .ok_or_else(unknown)?;
            let (patch, effective_patch) = patches(parts[1]).ok_or_else(unknown)?;
            XcitConfig {
                embed_dim: dim,
                depth: depth as usize,
                heads,
                patch,
                effective_patch,
                mlp_dim: 4 * dim,
                cls_attn_layers: 2,
            }
        } else if parts.len() >= 4 {
            let dim = number(parts[0], "dim").ok_or_else(unknown)?;
            let (patch, effective_patch) = patches(parts[3]).ok_or_else(unknown)?;
            let mut config = XcitConfig {
                embed_dim: dim,
                depth: number(parts[1], "depth").ok_or_else(unknown)? as usize,
                heads: number(parts[2], "heads").ok_or_else(unknown)?,
                patch,
                effective_patch,
                mlp_dim: 4 * dim,
                cls_attn_layers: 2,
            };
            for extra in &parts[4..] {
                if let Some(m) = number(extra, "mlp") {
                    config.mlp_dim = m;
                } else if let Some(c) = number(extra, "ca") {
                    config.cls_attn_layers = c as usize;
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

    /// The configuration if timm's constructor (and robustbench's adaptation) accepts it.
    fn checked(self) -> Result<XcitConfig, String> {
        if self.embed_dim % self.heads != 0 {
            return Err(format!(
                "width {} is not divisible by {} heads",
                self.embed_dim, self.heads
            ));
        }
        if self.patch != 16 && self.patch != 8 {
            return Err(format!(
                "timm's XCiT patch embedding has patch 16 or 8, not {}",
                self.patch
            ));
        }
        if self.embed_dim % self.patch != 0 {
            return Err(format!(
                "width {} does not split into the patch embedding's D/{} channels",
                self.embed_dim,
                self.patch / 2
            ));
        }
        // adapt_model_patches(model, Q): 16/Q an even integer (so Q < 16, a power of two).
        let p = self.effective_patch;
        if p != self.patch
            && (p >= self.patch || self.patch % (2 * p) != 0 || !(p as u64).is_power_of_two())
        {
            return Err(format!(
                "robustbench's adapt_model_patches takes patch {} to a Q with {}/Q even, not {p}",
                self.patch, self.patch
            ));
        }
        Ok(self)
    }

    /// The configuration and input channels of a timm `Xcit` state; Ok(None) when the keys
    /// are not an XCiT's (no `blocks.0.local_mp.conv1.weight`).
    pub fn detect(
        shape: &dyn Fn(&str) -> Option<Vec<i64>>,
        count_blocks: &dyn Fn(&str, &str) -> usize,
    ) -> Result<Option<(XcitConfig, i64)>, String> {
        if shape("blocks.0.local_mp.conv1.weight").is_none() {
            return Ok(None);
        }
        // Sequential indices 0, 2, 4, 6 (GELUs between): count every other one.
        let convs = (0..)
            .take_while(|i| shape(&format!("patch_embed.proj.{}.0.weight", 2 * i)).is_some())
            .count();
        let patch = match convs {
            4 => 16,
            3 => 8,
            n => {
                return Err(format!(
                    "an XCiT (`blocks.0.local_mp`) whose patch embedding has {n} convolutions `patch_embed.proj.K.0` (timm's have 4 or 3)"
                ))
            }
        };
        let first = shape("patch_embed.proj.0.0.weight").unwrap_or_default();
        let in_channels = match first[..] {
            [_, c, 3, 3] => c,
            _ => {
                return Err(format!(
                    "`patch_embed.proj.0.0.weight` has shape {first:?}, expected a 3×3 convolution"
                ))
            }
        };
        let dim = match shape("cls_token").as_deref() {
            Some(&[1, 1, d]) => d,
            other => return Err(format!("an XCiT's `cls_token` is 1×1×D, not {other:?}")),
        };
        let heads = match shape("blocks.0.attn.temperature").as_deref() {
            Some(&[h, 1, 1]) => h,
            other => {
                return Err(format!(
                    "an XCiT's `blocks.0.attn.temperature` is heads×1×1, not {other:?}"
                ))
            }
        };
        let mlp_dim = shape("blocks.0.mlp.fc1.weight")
            .and_then(|s| s.first().copied())
            .unwrap_or(4 * dim);
        let config = XcitConfig {
            embed_dim: dim,
            depth: count_blocks("blocks", "attn.qkv.weight"),
            heads,
            patch,
            effective_patch: patch,
            mlp_dim,
            cls_attn_layers: count_blocks("cls_attn_blocks", "attn.q.weight"),
        };
        Ok(Some((config.checked()?, in_channels)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn names_parse_and_round_trip() {
        let s = XcitConfig::parse("s12-p16").unwrap();
        assert_eq!((s.embed_dim, s.depth, s.heads, s.patch), (384, 12, 8, 16));
        assert_eq!(
            s.patch_convs(3),
            vec![(3, 48, 2), (48, 96, 2), (96, 192, 2), (192, 384, 2)]
        );
        let c = XcitConfig::parse("l12-p16to4").unwrap();
        assert_eq!((c.embed_dim, c.heads, c.effective_patch), (768, 16, 4));
        let strides: Vec<i64> = c.patch_convs(3).iter().map(|c| c.2).collect();
        assert_eq!(strides, [1, 1, 2, 2]);
        let p8 = XcitConfig::parse("m24-p8").unwrap();
        assert_eq!(p8.patch_convs(3).len(), 3);
        for name in [
            "xcit-s12-p16",
            "xcit-m12-p16to4",
            "xcit-l24-p8",
            "xcit-n12-p16to8",
            "xcit-dim64-depth2-heads4-p16to4",
            "xcit-dim64-depth1-heads2-p8-mlp100-ca1",
        ] {
            let config = XcitConfig::parse(name.strip_prefix(PREFIX).unwrap()).unwrap();
            assert_eq!(config.name(), name);
        }
        for bad in [
            "s12",
            "x12-p16",
            "s12-p4",
            "s12-p16to3",
            "s12-p16to16",
            "s12-p8to8",
            "dim64-depth2-heads3-p16",
            "dim64-depth2-heads2-p16-ca",
            "dim60-depth2-heads2-p16",
        ] {
            assert!(XcitConfig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn detection_reads_shapes_heads_included() {
        let mut s: HashMap<String, Vec<i64>> = HashMap::from([
            ("cls_token".into(), vec![1, 1, 384]),
            ("blocks.0.local_mp.conv1.weight".into(), vec![384, 1, 3, 3]),
            ("blocks.0.attn.temperature".into(), vec![8, 1, 1]),
            ("blocks.0.mlp.fc1.weight".into(), vec![1536, 384]),
        ]);
        for i in 0..4 {
            s.insert(
                format!("patch_embed.proj.{}.0.weight", 2 * i),
                vec![48, 3, 3, 3],
            );
        }
        for i in 0..12 {
            s.insert(format!("blocks.{i}.attn.qkv.weight"), vec![1152, 384]);
        }
        for i in 0..2 {
            s.insert(format!("cls_attn_blocks.{i}.attn.q.weight"), vec![384, 384]);
        }
        let detect = |s: &HashMap<String, Vec<i64>>| {
            let shape = |k: &str| s.get(k).cloned();
            let count = |prefix: &str, leaf: &str| {
                (0..)
                    .take_while(|i| s.contains_key(&format!("{prefix}.{i}.{leaf}")))
                    .count()
            };
            XcitConfig::detect(&shape, &count)
        };
        let (config, c) = detect(&s).unwrap().unwrap();
        assert_eq!((config.name(), c), ("xcit-s12-p16".to_string(), 3));
        s.insert("blocks.0.attn.temperature".into(), vec![6, 1, 1]);
        let (config, _) = detect(&s).unwrap().unwrap();
        assert_eq!(config.name(), "xcit-dim384-depth12-heads6-p16");
        s.remove("patch_embed.proj.6.0.weight");
        assert_eq!(detect(&s).unwrap().unwrap().0.patch, 8);
        assert!(detect(&HashMap::new()).unwrap().is_none());
    }
}
