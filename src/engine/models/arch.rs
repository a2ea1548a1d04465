//! Architecture specifications: parsed from `--arch` names or inferred from a checkpoint's
//! keys and shapes (`--arch auto`).
pub use super::activation::Activation;
use super::convnext_config::{self, ConvNextConfig};
use super::error::ModelError;
pub use super::family::{Family, WrnVariant};
use super::ra_config::RaWideConfig;
use super::ra_resnet_config::{self, RaResNetConfig};
use super::resnext_config::{self, ResNextConfig};
use super::swin_config::{self, SwinConfig};
use super::tv_config;
use super::vit_config::{self, VitConfig};
use super::xcit_config::{self, XcitConfig};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchSpec {
    pub family: Family,
    /// Blocks per stage (ResNet/PreAct: 4 stages; WRN: the same n for each of 3 groups).
    pub blocks: Vec<usize>,
    /// ResNet/PreAct: channels of the first stage (64 as published). WRN: widen factor k.
    /// torchvision ResNets: `width_per_group` (64; 128 for the wide ones).
    /// RaWideResNet: 16 for `ra-wrn-70-16`, 0 for any other configuration (its widths are
    /// per stage, in `ra`).
    pub width: i64,
    pub num_classes: i64,
    pub in_channels: i64,
    /// Width of the classifier's input (depends on the input size).
    pub feature_dim: i64,
    /// ReLU except for the DM families and the RaWideResNet, whose default is the zoo's
    /// Swish/SiLU.
    pub activation: Activation,
    /// WideResNet: whether the state holds `sub_block1`, the copy of `block1` that the
    /// TRADES code builds and never calls (robustbench's `sub_block1=True`).
    pub sub_block1: bool,
    /// Whether the classifier has a bias (robustbench's WideResNet `bias_last=False` drops it).
    pub classifier_bias: bool,
    /// WideResNet: TRADES', robustbench's BoostingWideResNet or its PSSiLU network.
    pub wrn_variant: WrnVariant,
    /// DM WideResNet and RaWideResNet: robustbench's MeanSparse variant (Amini2024), a
    /// `MeanSparse` op after every BatchNorm and residual sum (`meansparse-dm-wrn-D-K`,
    /// `meansparse-ra-wrn-70-16`).
    pub meansparse: bool,
    /// PreActResNet: robustbench's V1 (`PreActBlock`, `bn_before_fc=False`,
    /// `out_shortcut=False`): shortcut from the raw block input, no final BatchNorm
    /// (`preactresnet18-v1`).
    pub preact_v1: bool,
    /// RaWideResNet: stem, stage widths, groups and squeeze-and-excitation (Some exactly
    /// for that family).
    pub ra: Option<RaWideConfig>,
    /// ImageNet RaResNet: stem, stage widths and group widths (Some exactly for that
    /// family; its blocks per stage are `blocks`).
    pub ra_resnet: Option<RaResNetConfig>,
    /// CIFAR ResNeXt: depth, cardinality and base width (Some exactly for that family).
    pub resnext: Option<ResNextConfig>,
    /// RobustWideResNet / RobustResNet: widths of the stem and the three stages.
    pub stage_channels: Option<[i64; 4]>,
    /// VisionTransformer: widths, blocks, heads, patch and image size (Some exactly for
    /// that family; `blocks` is `[depth]`, `width` and `feature_dim` the embedding width).
    pub vit: Option<VitConfig>,
    /// ConvNeXt: the widths of its four stages (Some exactly for that family; its blocks
    /// per stage are `blocks`).
    pub convnext: Option<ConvNextConfig>,
    /// Swin Transformer: widths, heads, patch, window and image size (Some exactly for
    /// that family; its blocks per stage are `blocks`).
    pub swin: Option<SwinConfig>,
    /// XCiT: widths, blocks, heads and the patch embedding (Some exactly for that family;
    /// `blocks` is `[depth]`, `width` and `feature_dim` the embedding width).
    pub xcit: Option<XcitConfig>,
}

fn resnet_blocks(depth: usize) -> Option<(Vec<usize>, bool)> {
    Some(match depth {
        18 => (vec![2, 2, 2, 2], false),
        34 => (vec![3, 4, 6, 3], false),
        50 => (vec![3, 4, 6, 3], true),
        101 => (vec![3, 4, 23, 3], true),
        152 => (vec![3, 8, 36, 3], true),
        _ => return None,
    })
}

impl ArchSpec {
    /// A short canonical name: `resnet18`, `resnet18-w16` (non-default width),
    /// `preactresnet18`, `wrn-34-10`.
    pub fn name(&self) -> String {
        let total: usize = self.blocks.iter().sum();
        let w = if self.width == 64 {
            String::new()
        } else {
            format!("-w{}", self.width)
        };
        match self.family {
            Family::ResNet => format!("resnet{}{}", 2 * total + 2, w),
            Family::ResNetBottleneck => format!("resnet{}{}", 3 * total + 2, w),
            Family::PreActResNet => {
                let v1 = if self.preact_v1 { "-v1" } else { "" };
                format!("preactresnet{}{w}{v1}", 2 * total + 2)
            }
            Family::WideResNet => format!(
                "{}wrn-{}-{}",
                self.wrn_variant.prefix(),
                6 * self.blocks[0] + 4,
                self.width
            ),
            Family::DmWideResNet => {
                let ms = if self.meansparse { "meansparse-" } else { "" };
                format!("{ms}dm-wrn-{}-{}", 6 * self.blocks[0] + 4, self.width)
            }
            Family::DmPreActResNet => format!("dm-preactresnet{}{}", 2 * total + 2, w),
            Family::RaWideResNet => {
                let ms = if self.meansparse { "meansparse-" } else { "" };
                let config = self
                    .ra
                    .as_ref()
                    .map_or("ra-wrn".into(), |c| c.name(&self.blocks));
                format!("{ms}{config}")
            }
            Family::RobustWideResNet | Family::RobustResNet => super::robust_config::name(
                self.family,
                &self.blocks,
                self.stage_channels
                    .unwrap_or(super::robust_config::DEFAULT_CHANNELS),
            ),
            Family::TvResNet | Family::TvResNetBottleneck => {
                tv_config::name(self.family, &self.blocks, self.width)
            }
            Family::VisionTransformer => self.vit.map_or("vit".into(), |c| c.name()),
            Family::AlexNet => super::alexnet_config::NAME.into(),
            Family::ConvNeXt => match &self.convnext {
                Some(config) => convnext_config::name(&self.blocks, config),
                None => "convnext".into(),
            },
            Family::Swin => self
                .swin
                .as_ref()
                .map_or("swin".into(), |c| c.name(&self.blocks)),
            Family::RaResNet => self
                .ra_resnet
                .as_ref()
                .map_or("ra-resnet".into(), |c| c.name(&self.blocks)),
            Family::ResNeXt => self.resnext.map_or("resnext".into(), |c| c.name()),
            Family::Xcit => self.xcit.map_or("xcit".into(), |c| c.name()),
        }
    }

    /// A spec with the published defaults for everything the name does not say.
    pub(super) fn with_defaults(
        family: Family,
        blocks: Vec<usize>,
        width: i64,
        num_classes: i64,
        in_channels: i64,
    ) -> ArchSpec {
        ArchSpec {
            family,
            blocks,
            width,
            num_classes,
            in_channels,
            feature_dim: 0,
            activation: if family.has_activation_choice() {
                Activation::Silu
            } else {
                Activation::Relu
            },
            sub_block1: family == Family::WideResNet,
            classifier_bias: true,
            wrn_variant: WrnVariant::Trades,
            meansparse: false,
            preact_v1: false,
            ra: None,
            ra_resnet: None,
            resnext: None,
            stage_channels: None,
            vit: None,
            convnext: None,
            swin: None,
            xcit: None,
        }
    }

    /// The spec of a ViT configuration (its classifier takes the embedding width).
    pub(super) fn vit(config: VitConfig, num_classes: i64, in_channels: i64) -> ArchSpec {
        let blocks = vec![config.depth];
        let family = Family::VisionTransformer;
        let mut spec =
            Self::with_defaults(family, blocks, config.embed_dim, num_classes, in_channels);
        spec.feature_dim = config.embed_dim;
        spec.vit = Some(config);
        spec
    }

    /// The spec of a Swin configuration (its classifier takes the last stage's width).
    pub(super) fn swin(
        blocks: Vec<usize>,
        config: SwinConfig,
        num_classes: i64,
        in_channels: i64,
    ) -> ArchSpec {
        let mut spec = Self::with_defaults(Family::Swin, blocks, 0, num_classes, in_channels);
        spec.feature_dim = config.num_features();
        spec.swin = Some(config);
        spec
    }

    /// The spec of an ImageNet RaResNet configuration (its classifier takes the last
    /// stage's width).
    pub(super) fn ra_resnet(
        blocks: Vec<usize>,
        config: RaResNetConfig,
        num_classes: i64,
        in_channels: i64,
    ) -> ArchSpec {
        let mut spec = Self::with_defaults(Family::RaResNet, blocks, 0, num_classes, in_channels);
        spec.feature_dim = *config.widths.last().unwrap_or(&0);
        spec.ra_resnet = Some(config);
        spec
    }

    /// The spec of a CIFAR ResNeXt configuration.
    pub(super) fn resnext(config: ResNextConfig, num_classes: i64, in_channels: i64) -> ArchSpec {
        let blocks = vec![config.blocks(); 3];
        let mut spec = Self::with_defaults(Family::ResNeXt, blocks, 0, num_classes, in_channels);
        spec.resnext = Some(config);
        spec
    }

    /// The spec of an XCiT configuration (its classifier takes the embedding width).
    pub(super) fn xcit(config: XcitConfig, num_classes: i64, in_channels: i64) -> ArchSpec {
        let blocks = vec![config.depth];
        let mut spec = Self::with_defaults(
            Family::Xcit,
            blocks,
            config.embed_dim,
            num_classes,
            in_channels,
        );
        spec.feature_dim = config.embed_dim;
        spec.xcit = Some(config);
        spec
    }

    /// Builds a spec from a name (`resnet18`, `resnet18-w16`, `preactresnet18`, `wrn-34-10`)
    /// for inputs of `in_channels`×`input_hw`.
    pub fn parse(
        name: &str,
        width: Option<i64>,
        num_classes: i64,
        in_channels: i64,
        input_hw: (i64, i64),
    ) -> Result<ArchSpec, ModelError> {
        let lower = name.to_ascii_lowercase().replace('_', "-");
        let unknown = || ModelError::UnknownArch(name.to_string());
        if let Some(rest) = lower.strip_prefix("robust-") {
            if width.is_some() {
                return Err(ModelError::UnknownArch(format!(
                    "{name} with --width (its widths are per stage, in its name)"
                )));
            }
            let (family, blocks, channels) = super::robust_config::parse(rest)
                .map_err(|why| ModelError::UnknownArch(format!("{name} ({why})")))?;
            let mut spec = ArchSpec::with_defaults(family, blocks, 0, num_classes, in_channels);
            spec.stage_channels = Some(channels);
            return spec.with_feature_dim(input_hw);
        }
        if let Some(rest) = vit_config::PREFIXES
            .iter()
            .find_map(|p| lower.strip_prefix(p))
        {
            if width.is_some() {
                return Err(ModelError::UnknownArch(format!(
                    "{name} with --width (a ViT's width is in its name)"
                )));
            }
            let config = VitConfig::parse(rest)
                .map_err(|why| ModelError::UnknownArch(format!("{name} ({why})")))?;
            return Ok(ArchSpec::vit(config, num_classes, in_channels));
        }
        if let Some(rest) = lower.strip_prefix(xcit_config::PREFIX) {
            if width.is_some() {
                return Err(ModelError::UnknownArch(format!(
                    "{name} with --width (an XCiT's width is in its name)"
                )));
            }
            let config = XcitConfig::parse(rest)
                .map_err(|why| ModelError::UnknownArch(format!("{name} ({why})")))?;
            return Ok(ArchSpec::xcit(config, num_classes, in_channels));
        }
        if let Some(rest) = lower.strip_prefix(tv_config::PREFIX) {
            let (family, blocks, per_group) = tv_config::parse(rest, width)
                .map_err(|why| ModelError::UnknownArch(format!("{name} ({why})")))?;
            let spec = ArchSpec::with_defaults(family, blocks, per_group, num_classes, in_channels);
            return spec.with_feature_dim(input_hw);
        }
        if lower == super::alexnet_config::NAME {
            if width.is_some() {
                return Err(ModelError::UnknownArch(format!(
                    "{name} with --width (AlexNet has one layout)"
                )));
            }
            // Its classifier's width does not depend on the input size (adaptive pooling);
            // inputs too small for `features` are refused by `Model::check_input`.
            let mut spec =
                ArchSpec::with_defaults(Family::AlexNet, vec![], 0, num_classes, in_channels);
            spec.feature_dim = super::alexnet_config::HIDDEN;
            return Ok(spec);
        }
        if let Some(rest) = lower.strip_prefix(convnext_config::PREFIX) {
            if width.is_some() {
                return Err(ModelError::UnknownArch(format!(
                    "{name} with --width (a ConvNeXt's widths are per stage, in its name)"
                )));
            }
            let (blocks, config) = convnext_config::parse(rest)
                .map_err(|why| ModelError::UnknownArch(format!("{name} ({why})")))?;
            let mut spec =
                ArchSpec::with_defaults(Family::ConvNeXt, blocks, 0, num_classes, in_channels);
            spec.convnext = Some(config);
            return spec.with_feature_dim(input_hw);
        }
        if let Some(rest) = lower.strip_prefix(resnext_config::PREFIX) {
            if width.is_some() {
                return Err(ModelError::UnknownArch(format!(
                    "{name} with --width (a ResNeXt's base width is in its name)"
                )));
            }
            let config = resnext_config::parse(rest)
                .map_err(|why| ModelError::UnknownArch(format!("{name} ({why})")))?;
            return ArchSpec::resnext(config, num_classes, in_channels).with_feature_dim(input_hw);
        }
        if let Some(rest) = lower.strip_prefix(ra_resnet_config::PREFIX) {
            if width.is_some() {
                return Err(ModelError::UnknownArch(format!(
                    "{name} with --width (a RaResNet's widths are per stage, in its name)"
                )));
            }
            let (blocks, config) = ra_resnet_config::parse(rest)
                .map_err(|why| ModelError::UnknownArch(format!("{name} ({why})")))?;
            return Ok(ArchSpec::ra_resnet(
                blocks,
                config,
                num_classes,
                in_channels,
            ));
        }
        if let Some(rest) = lower.strip_prefix(swin_config::PREFIX) {
            if width.is_some() {
                return Err(ModelError::UnknownArch(format!(
                    "{name} with --width (a Swin's widths are in its name)"
                )));
            }
            let (blocks, config) = swin_config::parse(rest)
                .map_err(|why| ModelError::UnknownArch(format!("{name} ({why})")))?;
            return Ok(ArchSpec::swin(blocks, config, num_classes, in_channels));
        }
        let ms_body = lower.strip_prefix("meansparse-");
        if let Some(rest) = ms_body.unwrap_or(&lower).strip_prefix("ra-wrn") {
            if width.is_some() {
                return Err(ModelError::UnknownArch(format!(
                    "{name} with --width (a RaWideResNet's widths are per stage, in its name)"
                )));
            }
            let (blocks, config) = RaWideConfig::parse(rest)
                .map_err(|why| ModelError::UnknownArch(format!("{name} ({why})")))?;
            let mut spec =
                ArchSpec::with_defaults(Family::RaWideResNet, blocks, 0, num_classes, in_channels);
            spec.width = config.nominal_width(&spec.blocks);
            spec.ra = Some(config);
            spec.meansparse = ms_body.is_some();
            return spec.with_feature_dim(input_hw);
        }
        let (lower, preact_v1) = match lower.strip_suffix("-v1") {
            Some(rest) if rest.starts_with("preactresnet") => (rest.to_string(), true),
            Some(_) => {
                return Err(ModelError::UnknownArch(format!(
                    "{name} (only PreActResNets have a V1: preactresnet18-v1, preactresnet34-v1)"
                )))
            }
            None => (lower, false),
        };
        let (base, suffix_width) = match lower.rsplit_once("-w") {
            Some((b, w)) if w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty() => {
                (b.to_string(), w.parse::<i64>().ok())
            }
            _ => (lower.clone(), None),
        };
        let width = width.or(suffix_width);
        let (meansparse, base) = match base.strip_prefix("meansparse-") {
            Some(rest) if rest.starts_with("dm-wrn") || rest.starts_with("dm-wideresnet") => {
                (true, rest.to_string())
            }
            Some(_) => {
                return Err(ModelError::UnknownArch(format!(
                    "{name} (rift has MeanSparse only over the DM WideResNet and the RaWideResNet: meansparse-dm-wrn-DEPTH-K, meansparse-ra-wrn-70-16)"
                )))
            }
            None => (false, base),
        };
        let (dm, base) = match base.strip_prefix("dm-") {
            Some(rest) => (true, rest.to_string()),
            None => (false, base),
        };
        let (wrn_variant, base) = [WrnVariant::Boosting, WrnVariant::PsSilu]
            .into_iter()
            .find_map(|v| Some((v, base.strip_prefix(v.prefix())?.to_string())))
            .unwrap_or((WrnVariant::Trades, base));
        if wrn_variant != WrnVariant::Trades
            && (dm || !(base.starts_with("wrn") || base.starts_with("wideresnet")))
        {
            return Err(ModelError::UnknownArch(format!(
                "{name} (boosting- and pssilu- name WideResNets: boosting-wrn-DEPTH-K, pssilu-wrn-DEPTH-K)"
            )));
        }
        let (family, blocks, width) = if let Some(rest) = base
            .strip_prefix("wrn-")
            .or_else(|| base.strip_prefix("wideresnet-"))
            .or_else(|| base.strip_prefix("wrn"))
            .or_else(|| base.strip_prefix("wideresnet"))
        {
            let (d, k) = rest.split_once('-').ok_or_else(unknown)?;
            let depth: usize = d.parse().map_err(|_| unknown())?;
            let k: i64 = k.parse().map_err(|_| unknown())?;
            if depth < 10 || !(depth - 4).is_multiple_of(6) || k < 1 {
                return Err(ModelError::UnknownArch(format!(
                    "{name} (WideResNet depth must be 6n+4 ≥ 10 and width ≥ 1)"
                )));
            }
            (
                Family::WideResNet,
                vec![(depth - 4) / 6; 3],
                width.unwrap_or(k),
            )
        } else if let Some(d) = base.strip_prefix("preactresnet") {
            let (blocks, bottleneck) =
                resnet_blocks(d.parse().map_err(|_| unknown())?).ok_or_else(unknown)?;
            if bottleneck {
                return Err(unknown());
            }
            (Family::PreActResNet, blocks, width.unwrap_or(64))
        } else if let Some(d) = base.strip_prefix("resnet") {
            let (blocks, bottleneck) =
                resnet_blocks(d.parse().map_err(|_| unknown())?).ok_or_else(unknown)?;
            let fam = if bottleneck {
                Family::ResNetBottleneck
            } else {
                Family::ResNet
            };
            (fam, blocks, width.unwrap_or(64))
        } else {
            return Err(unknown());
        };
        let family = match (dm, family) {
            (false, f) => f,
            (true, Family::WideResNet) => Family::DmWideResNet,
            (true, Family::PreActResNet) => Family::DmPreActResNet,
            (true, _) => return Err(unknown()),
        };
        let mut spec = ArchSpec::with_defaults(family, blocks, width, num_classes, in_channels);
        spec.meansparse = meansparse;
        spec.preact_v1 = preact_v1;
        spec.wrn_variant = wrn_variant;
        // The published constructors: BoostingWideResNet passes `sub_block1=True,
        // bias_last=False`; `PAF_WideResNet` has no `sub_block1` and a biased `fc`. (A file's
        // own keys overrule both when it is loaded by name, see `Model::from_checkpoint`.)
        match wrn_variant {
            WrnVariant::Boosting => spec.classifier_bias = false,
            WrnVariant::PsSilu => spec.sub_block1 = false,
            WrnVariant::Trades => {}
        }
        spec.with_feature_dim(input_hw)
    }

    /// The spec with its classifier width for inputs of `input_hw`.
    fn with_feature_dim(mut self, input_hw: (i64, i64)) -> Result<ArchSpec, ModelError> {
        self.feature_dim = self.feature_dim_for(input_hw).ok_or_else(|| {
            ModelError::BadInput(format!(
                "{}×{} inputs are too small for {}",
                input_hw.0,
                input_hw.1,
                self.name()
            ))
        })?;
        Ok(self)
    }

    /// Channels after the last stage.
    pub fn last_channels(&self) -> i64 {
        match self.family {
            Family::ResNet | Family::PreActResNet | Family::DmPreActResNet => self.width * 8,
            Family::ResNetBottleneck => self.width * 32,
            Family::WideResNet | Family::DmWideResNet => 64 * self.width,
            Family::RaWideResNet => self.ra.map_or(0, |c| c.stage_widths[2]),
            Family::RobustWideResNet | Family::RobustResNet => {
                self.stage_channels.map_or(0, |c| c[3])
            }
            Family::TvResNet => 512,
            Family::TvResNetBottleneck => 2048,
            Family::VisionTransformer => self.vit.map_or(0, |c| c.embed_dim),
            Family::ConvNeXt => self.convnext.map_or(0, |c| c.dims[3]),
            Family::AlexNet => super::alexnet_config::HIDDEN,
            Family::Swin => self.swin.as_ref().map_or(0, SwinConfig::num_features),
            Family::RaResNet => self
                .ra_resnet
                .as_ref()
                .map_or(0, |c| *c.widths.last().unwrap_or(&0)),
            Family::Xcit => self.xcit.map_or(0, |c| c.embed_dim),
            Family::ResNeXt => resnext_config::PLANES[2] * resnext_config::EXPANSION,
        }
    }

    /// The classifier width for an input size (stride-2 stages, then the published pool).
    pub fn feature_dim_for(&self, (h, w): (i64, i64)) -> Option<i64> {
        if matches!(
            self.family,
            Family::TvResNet
                | Family::TvResNetBottleneck
                | Family::VisionTransformer
                | Family::Swin
                | Family::RaResNet
                | Family::Xcit
        ) {
            // Global average pooling: any non-empty input gives the last stage's channels;
            // a ViT's class token is its width, a Swin's pooled tokens its last stage's (each
            // takes one size, `Model::check_input`).
            return (h >= 1 && w >= 1).then(|| self.last_channels());
        }
        if self.family == Family::AlexNet {
            // Adaptive pooling to 6×6 once `features` has a map, then two hidden layers.
            super::alexnet_config::features_size(h)?;
            super::alexnet_config::features_size(w)?;
            return Some(self.last_channels());
        }
        if self.family == Family::ConvNeXt {
            // Global average pooling too, after a stride-4 stem and three halvings.
            let config = self.convnext.as_ref()?;
            convnext_config::last_stage_size(h, config)?;
            convnext_config::last_stage_size(w, config)?;
            return Some(self.last_channels());
        }
        let (halvings, pool) = match self.family {
            Family::WideResNet
            | Family::DmWideResNet
            | Family::RaWideResNet
            | Family::RobustWideResNet
            | Family::RobustResNet
            | Family::ResNeXt => (2, 8),
            _ => (3, 4),
        };
        // Padding 1 each side gives ⌈s/2⌉; the DM networks' (0,1) padding gives ⌊s/2⌋.
        let dm = matches!(
            self.family,
            Family::DmWideResNet | Family::DmPreActResNet | Family::RaWideResNet
        );
        let shrink = |mut s: i64| {
            for _ in 0..halvings {
                s = if dm { s / 2 } else { (s + 1) / 2 };
            }
            if s < pool {
                None
            } else {
                Some(s / pool)
            }
        };
        Some(self.last_channels() * shrink(h)? * shrink(w)?)
    }

    /// Classes and classifier width from the classifier's weight; when that key is absent,
    /// from its bias (or 10 classes) and a 32×32 input, so that loading goes on to report
    /// the full key diff instead of stopping at detection.
    pub(super) fn classifier_from(
        &mut self,
        shape: &dyn Fn(&str) -> Option<Vec<i64>>,
        name: &str,
    ) -> Result<(), String> {
        match shape(&format!("{name}.weight")) {
            Some(w) if w.len() == 2 => {
                self.num_classes = w[0];
                self.feature_dim = w[1];
            }
            Some(w) => {
                return Err(format!(
                    "`{name}.weight` has shape {w:?}, expected 2 dimensions"
                ))
            }
            None => {
                if let Some(b) = shape(&format!("{name}.bias")).filter(|b| b.len() == 1) {
                    self.num_classes = b[0];
                }
                self.feature_dim = self
                    .feature_dim_for((32, 32))
                    .unwrap_or(self.last_channels());
            }
        }
        Ok(())
    }
}
