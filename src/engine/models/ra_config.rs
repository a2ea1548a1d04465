//! The configuration of robustbench's RaWideResNet (`robustarch_wide_resnet.py`,
//! `NormalizedWideResNet`; Peng et al. 2023, "Robust Principles"): the DM WideResNet's
//! layout with what that network derives from one depth and one widen factor chosen per
//! stage — stem width, blocks and width of each of the three stages, groups of their 3×3
//! convolutions — and an optional squeeze-and-excitation per block. How it is named
//! (`--arch`), told from a file's keys and shapes, and checked; `ra_wide_resnet.rs` builds it.
//!
//! Names: `ra-wrn-70-16` is `get_model('ra_wrn70_16')` (Peng2023Robust and the MeanSparse
//! Amini2024 entry). Any other configuration is spelled out,
//! `ra-wrn-D1.D2.D3-W1.W2.W3[-stemS][-groupsG1.G2.G3][-seQ1.Q2.Q3][-seorder1][-sesilu]`:
//! blocks and widths per stage, stem width (default 16), groups (default 1), the SE's
//! squeeze widths (`round(se_ratio · W)` per stage; none without `-se`), the SE after
//! `conv_0` (`se_order=1`) instead of after `conv_1` (2, the default) and its activation
//! (ReLU, the default, or SiLU). Where the SE sits and its activation are not in the state
//! dict: detection assumes the preset's (after `conv_1`, ReLU).
use super::activation::Activation;

/// Where a block applies its squeeze-and-excitation (robustbench's `se_order`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeOrder {
    /// `se_order=1`: on `conv_0`'s output, before `batchnorm_1`.
    AfterConv0,
    /// `se_order=2`: on `conv_1`'s output, before the residual sum.
    AfterConv1,
}

/// The squeeze-and-excitation of every block (torchvision's `SqueezeExcitation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqueezeExcite {
    /// `fc1`'s output width in each stage.
    pub squeeze: [i64; 3],
    pub order: SeOrder,
    /// Between `fc1` and `fc2` (robustbench's `se_activation`).
    pub activation: Activation,
}

/// What a RaWideResNet chooses beyond its blocks per stage (`ArchSpec::blocks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaWideConfig {
    pub stem_width: i64,
    pub stage_widths: [i64; 3],
    pub groups: [i64; 3],
    pub se: Option<SqueezeExcite>,
}

/// `get_model('ra_wrn70_16')`'s blocks per stage.
const PRESET_BLOCKS: [usize; 3] = [30, 31, 10];

/// The shapes a configuration gives its state (stem, widths, groups, squeeze widths):
/// everything a file can tell.
pub type Layout = (i64, [i64; 3], [i64; 3], Option<[i64; 3]>);

impl RaWideConfig {
    /// `get_model('ra_wrn70_16')`: stem 96, widths 216/432/864, no groups, SE with ratio
    /// 0.25 (54/108/216) after `conv_1` with ReLU.
    pub fn preset_70_16() -> RaWideConfig {
        RaWideConfig {
            stem_width: 96,
            stage_widths: [216, 432, 864],
            groups: [1, 1, 1],
            se: Some(SqueezeExcite {
                squeeze: [54, 108, 216],
                order: SeOrder::AfterConv1,
                activation: Activation::Relu,
            }),
        }
    }

    pub fn layout(&self) -> Layout {
        (
            self.stem_width,
            self.stage_widths,
            self.groups,
            self.se.map(|se| se.squeeze),
        )
    }

    /// Whether `blocks` and the layout are `ra-wrn-70-16`'s (the SE's order and activation
    /// are options on top of the name).
    fn is_preset(&self, blocks: &[usize]) -> bool {
        blocks == PRESET_BLOCKS && self.layout() == Self::preset_70_16().layout()
    }

    /// The nominal widen factor: 16 for `ra-wrn-70-16`, 0 (none) for other configurations,
    /// whose widths are per stage.
    pub fn nominal_width(&self, blocks: &[usize]) -> i64 {
        if self.is_preset(blocks) {
            16
        } else {
            0
        }
    }

    /// The canonical name (`parse` reads it back to the same configuration).
    pub fn name(&self, blocks: &[usize]) -> String {
        let dotted = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(".");
        let mut out = if self.is_preset(blocks) {
            "ra-wrn-70-16".to_string()
        } else {
            let b: Vec<i64> = blocks.iter().map(|&b| b as i64).collect();
            let mut s = format!(
                "ra-wrn-{}-{}-stem{}",
                dotted(&b),
                dotted(&self.stage_widths),
                self.stem_width
            );
            if self.groups != [1, 1, 1] {
                s += &format!("-groups{}", dotted(&self.groups));
            }
            if let Some(se) = &self.se {
                s += &format!("-se{}", dotted(&se.squeeze));
            }
            s
        };
        if let Some(se) = &self.se {
            if se.order == SeOrder::AfterConv0 {
                out += "-seorder1";
            }
            if se.activation != Activation::Relu {
                out += &format!("-se{}", se.activation.name());
            }
        }
        out
    }

    /// Reads what follows `ra-wrn` in a lower-case name (`-70-16`, `70-16` as robustbench
    /// spells it, or the general form); returns the blocks per stage and the configuration,
    /// checked.
    pub fn parse(rest: &str) -> Result<(Vec<usize>, RaWideConfig), String> {
        let expected = "expected ra-wrn-70-16 or ra-wrn-D1.D2.D3-W1.W2.W3[-stemS][-groupsG1.G2.G3][-seQ1.Q2.Q3][-seorder1][-sesilu]";
        let mut tokens = rest.strip_prefix('-').unwrap_or(rest).split('-');
        let (blocks, mut config) = match (tokens.next(), tokens.next()) {
            (Some("70"), Some("16")) => (PRESET_BLOCKS.to_vec(), Self::preset_70_16()),
            (Some(d), Some(w)) if d.contains('.') => {
                let blocks = three(d, "blocks per stage")?;
                let config = RaWideConfig {
                    stem_width: 16,
                    stage_widths: three(w, "stage widths")?,
                    groups: [1, 1, 1],
                    se: None,
                };
                (blocks.iter().map(|&b| b.max(0) as usize).collect(), config)
            }
            _ => return Err(expected.into()),
        };
        let (mut order, mut activation) = (None, None);
        for t in tokens {
            if let Some(v) = t.strip_prefix("stem") {
                config.stem_width = v
                    .parse()
                    .map_err(|_| format!("`{t}`: the stem width is a number"))?;
            } else if let Some(v) = t.strip_prefix("groups") {
                config.groups = three(v, "groups")?;
            } else if let Some(v) = t.strip_prefix("seorder") {
                order = Some(match v {
                    "1" => SeOrder::AfterConv0,
                    "2" => SeOrder::AfterConv1,
                    _ => return Err(format!("`{t}`: the SE order is 1 or 2")),
                });
            } else if let Some(act) = t.strip_prefix("se").and_then(|v| Activation::parse(v).ok()) {
                activation = Some(act);
            } else if let Some(v) = t.strip_prefix("se") {
                config.se = Some(SqueezeExcite {
                    squeeze: three(v, "SE squeeze widths")?,
                    order: SeOrder::AfterConv1,
                    activation: Activation::Relu,
                });
            } else {
                return Err(format!("unknown part `{t}`; {expected}"));
            }
        }
        match config.se.as_mut() {
            Some(se) => {
                se.order = order.unwrap_or(se.order);
                se.activation = activation.unwrap_or(se.activation);
            }
            None if order.is_some() || activation.is_some() => {
                return Err("-seorder and -se<activation> need an SE (-seQ1.Q2.Q3)".into())
            }
            None => {}
        }
        config.check(&blocks)?;
        Ok((blocks, config))
    }

    /// What robustbench's constructor would refuse or fail on, in words.
    pub fn check(&self, blocks: &[usize]) -> Result<(), String> {
        if blocks.len() != 3 || blocks.contains(&0) {
            return Err(format!(
                "blocks per stage {blocks:?}: three stages of at least one block"
            ));
        }
        let positive = |v: &[i64]| v.iter().all(|&x| x >= 1);
        if self.stem_width < 1 || !positive(&self.stage_widths) || !positive(&self.groups) {
            return Err("widths and groups must be at least 1".into());
        }
        for g in 0..3 {
            let c_in = if g == 0 {
                self.stem_width
            } else {
                self.stage_widths[g - 1]
            };
            let (c_out, groups) = (self.stage_widths[g], self.groups[g]);
            if c_in % groups != 0 || c_out % groups != 0 {
                return Err(format!(
                    "stage {g}: {groups} groups do not divide its widths {c_in} → {c_out}"
                ));
            }
            // robustbench's block adds its input itself when the widths agree (no
            // shortcut): at stride 2 the sizes then differ and its forward fails.
            if g > 0 && c_in == c_out {
                return Err(format!(
                    "stage {g} keeps width {c_out} at stride 2, which robustbench's block cannot run (no shortcut where widths agree)"
                ));
            }
        }
        if self.se.is_some_and(|se| !positive(&se.squeeze)) {
            return Err("SE squeeze widths must be at least 1".into());
        }
        Ok(())
    }

    /// A RaWideResNet from the keys and shapes of a file whose stem is `init_conv` with
    /// `stem_width` outputs (`shape` and `count_blocks` as in `detect::detect_arch`). None
    /// when nothing in the file is foreign to a DM WideResNet (stem 16, widths 16k/32k/64k,
    /// no groups, no SE: the DM family loads it, and a DM file missing blocks gets the key
    /// diff rather than passing for a RaWideResNet of unequal stages, which `--arch`
    /// names) or when a stage or a block's convolution is missing.
    pub fn detect(
        shape: &dyn Fn(&str) -> Option<Vec<i64>>,
        count_blocks: &dyn Fn(&str, &str) -> usize,
        stem_width: i64,
    ) -> Result<Option<(Vec<usize>, RaWideConfig)>, String> {
        let mut blocks = Vec::new();
        let (mut widths, mut groups, mut squeeze) = ([0; 3], [1; 3], [0; 3]);
        for g in 0..3 {
            let block = format!("layer.{g}.block.0");
            let conv =
                |name: &str| shape(&format!("{block}.{name}.weight")).filter(|s| s.len() == 4);
            let (Some(conv_0), Some(conv_1)) = (conv("conv_0"), conv("conv_1")) else {
                return Ok(None);
            };
            blocks.push(count_blocks(&format!("layer.{g}.block"), "conv_0.weight"));
            widths[g] = conv_0[0];
            if conv_1[1] > 0 && conv_1[0] % conv_1[1] == 0 {
                groups[g] = conv_1[0] / conv_1[1];
            }
            squeeze[g] = conv("se.fc1").map_or(0, |s| s[0]);
        }
        let se = (squeeze[0] > 0).then(|| SqueezeExcite {
            // A stage without SE keys gets the first stage's width: loading then lists the
            // missing keys.
            squeeze: squeeze.map(|q| if q > 0 { q } else { squeeze[0] }),
            order: SeOrder::AfterConv1,
            activation: Activation::Relu,
        });
        let k = widths[0] / 16;
        let dm_layout = se.is_none()
            && groups == [1, 1, 1]
            && stem_width == 16
            && widths == [16 * k, 32 * k, 64 * k];
        if dm_layout {
            return Ok(None);
        }
        let config = RaWideConfig {
            stem_width,
            stage_widths: widths,
            groups,
            se,
        };
        config
            .check(&blocks)
            .map_err(|why| format!("a RaWideResNet (`init_conv`, per-stage widths, SE or groups) that robustbench could not build: {why}"))?;
        Ok(Some((blocks, config)))
    }
}

/// `A.B.C` as three integers.
fn three(text: &str, what: &str) -> Result<[i64; 3], String> {
    let parts: Vec<i64> = text
        .split('.')
        .map(|v| v.parse::<i64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{text}`: {what} are three numbers A.B.C"))?;
    <[i64; 3]>::try_from(parts).map_err(|_| format!("`{text}`: {what} are three numbers A.B.C"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_to_the_same_configuration() {
        let (blocks, preset) = RaWideConfig::parse("-70-16").unwrap();
        assert_eq!(blocks, vec![30, 31, 10]);
        assert_eq!(preset, RaWideConfig::preset_70_16());
        assert_eq!(preset.name(&blocks), "ra-wrn-70-16");
        assert_eq!(preset.nominal_width(&blocks), 16);
        assert_eq!(RaWideConfig::parse("70-16").unwrap().1, preset);
        for name in [
            "ra-wrn-70-16-seorder1-sesilu",
            "ra-wrn-2.3.1-16.32.64-stem8",
            "ra-wrn-2.2.1-16.32.64-stem8-groups1.2.4-se4.8.16",
            "ra-wrn-1.1.1-12.24.48-stem12-se3.6.12-seorder1",
        ] {
            let (b, c) = RaWideConfig::parse(&name["ra-wrn".len()..]).unwrap();
            assert_eq!(c.name(&b), name);
        }
        let (b, c) = RaWideConfig::parse("-70-16-stem8").unwrap();
        assert_eq!(c.nominal_width(&b), 0);
        assert!(c
            .name(&b)
            .starts_with("ra-wrn-30.31.10-216.432.864-stem8-se54.108.216"));
    }

    #[test]
    fn configurations_robustbench_cannot_build_are_refused() {
        for (rest, why) in [
            ("-2.2-16.32.64", "three numbers"),
            ("-2.0.1-16.32.64", "at least one block"),
            ("-1.1.1-16.16.64", "keeps width 16 at stride 2"),
            ("-1.1.1-16.32.64-groups3.1.1", "3 groups do not divide"),
            ("-1.1.1-16.32.64-seorder1", "need an SE"),
            ("-1.1.1-16.32.64-bogus", "unknown part `bogus`"),
            ("-71-16", "expected ra-wrn-70-16"),
        ] {
            let err = RaWideConfig::parse(rest).unwrap_err();
            assert!(err.contains(why), "{rest}: {err}");
        }
    }
}
