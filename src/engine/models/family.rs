//! The network families rift builds (a leaf: the architecture spec, the families' own
//! naming and detection modules and the builders all name them).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    ResNet,
    ResNetBottleneck,
    PreActResNet,
    WideResNet,
    /// DeepMind's WideResNet (robustbench `DMWideResNet`: Gowal 2020/2021, Rebuffi 2021,
    /// Wang 2023).
    DmWideResNet,
    /// DeepMind's PreActResNet (robustbench `DMPreActResNet`: Rebuffi 2021).
    DmPreActResNet,
    /// robustbench's RaWideResNet (`NormalizedWideResNet` of `robustarch_wide_resnet.py`:
    /// Peng 2023), configured by `ArchSpec::ra`.
    RaWideResNet,
    /// robustbench's ImageNet RaResNet (`ConfigurableModel` of `robustarch_wide_resnet.py`:
    /// Peng2023Robust's RaWRN-101-2, `ra_resnet.rs`), configured by `ArchSpec::ra_resnet`.
    RaResNet,
    /// AugMix's CIFAR ResNeXt (`CifarResNeXt` of robustbench's `resnext.py`,
    /// `resnext.rs`), configured by `ArchSpec::resnext`.
    ResNeXt,
    /// robustbench's `RobustWideResNet` (Huang 2021), widths in `ArchSpec::stage_channels`.
    RobustWideResNet,
    /// robustbench's `robust_resnet.PreActResNet` (Huang 2022's WRN-A4), widths in
    /// `ArchSpec::stage_channels`.
    RobustResNet,
    /// torchvision's ImageNet ResNet of BasicBlocks (`tv-resnet18|34`, `tv_resnet.rs`).
    TvResNet,
    /// torchvision's ImageNet ResNet of Bottlenecks (`tv-resnet50|101|152`,
    /// `tv-wide-resnet50-2`); `width` is its `width_per_group`.
    TvResNetBottleneck,
    /// timm's `VisionTransformer` (ViT, DeiT: `vit.rs`), configured by `ArchSpec::vit`.
    VisionTransformer,
    /// timm's ConvNeXt (`convnext-tiny|small|base|large`, `convnext.rs`), stage widths in
    /// `ArchSpec::convnext`.
    ConvNeXt,
    /// torchvision's AlexNet (`alexnet`, `alexnet.rs`): one layout.
    AlexNet,
    /// timm's Swin Transformer (`swin-b-p4-w7-224`, `swin.rs`), configured by
    /// `ArchSpec::swin`.
    Swin,
    /// timm's `Xcit` (`xcit-s12-p16`, robustbench's Debenedetti2022Light: `xcit.rs`),
    /// configured by `ArchSpec::xcit`.
    Xcit,
}

impl Family {
    /// Whether the family's activation is a choice the state dict does not record (the DM
    /// networks are trained with ReLU or Swish/SiLU, the RaWideResNet takes any).
    pub fn has_activation_choice(self) -> bool {
        matches!(
            self,
            Family::DmWideResNet
                | Family::DmPreActResNet
                | Family::RaWideResNet
                | Family::RobustResNet
        )
    }
}

/// Which of robustbench's TRADES-WideResNet networks a `Family::WideResNet` spec is: the
/// same blocks and keys, told apart by what their forward does beyond the TRADES code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WrnVariant {
    /// `wide_resnet.WideResNet` (`wrn-D-K`): ReLU, a plain classifier.
    #[default]
    Trades,
    /// `BoostingWideResNet` (Pang2020Boosting, `boosting-wrn-D-K`): the classifier sees
    /// L2-normalised features through L2-normalised weight rows (`layers::Linear`'s
    /// hypersphere head). Its keys are a bias-free WideResNet's, so it is never detected: a
    /// name or `--zoo` says it.
    Boosting,
    /// `PAF_WideResNet` with one shared `PSSiLU` (Dai2021Parameterizing, `pssilu-wrn-D-K`,
    /// `pssilu.rs`); detected from its `activation.alpha` keys.
    PsSilu,
}

impl WrnVariant {
    /// The prefix of its `--arch` names (`boosting-`, `pssilu-`; none for TRADES').
    pub fn prefix(self) -> &'static str {
        match self {
            WrnVariant::Trades => "",
            WrnVariant::Boosting => "boosting-",
            WrnVariant::PsSilu => "pssilu-",
        }
    }
}
