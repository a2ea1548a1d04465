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
