//! The network behind a `Model`, whatever its family: what every family's module tree
//! offers the model (its forward pass, the size its classifier takes, its chain for MRC's
//! fast path), and the one place that builds a family from its spec. A new family adds its
//! file, one line in `build` and one in the `network!` list.

use super::arch::{ArchSpec, Family};
use super::chain::{Chain, ChainNet, CutBlock};
use super::error::ModelError;
use super::layers::{KeyOrder, ModuleInfo};
use super::{alexnet, convnext, dm_preact_resnet, dm_wide_resnet, preact_resnet, ra_wide_resnet};
use super::{ra_resnet, resnet, resnext, robust_resnet, swin, tv_resnet, vit, wide_resnet, xcit};
use tch::{nn, Tensor};

/// A family's module tree, as the model uses it.
pub(super) trait Network {
    /// Logits of normalised inputs; `train` selects BatchNorm's mode.
    fn forward(&self, x: &Tensor, train: bool) -> Tensor;
    /// The network as MRC's fast path sees it (`chain.rs`).
    fn chain(&self) -> Chain<'_>;
    /// The classifier's input size for h×w images, None when they are too small.
    fn feature_dim(&self, h: i64, w: i64) -> Option<i64>;
    /// A family that takes exactly one image size (a ViT's position embedding) refuses any
    /// other here, with its own message.
    fn check_size(&self, _h: i64, _w: i64) -> Result<(), String> {
        Ok(())
    }
    /// Modules in the state that forward never uses (a TRADES WRN's `sub_block1`).
    fn unused_modules(&self) -> Vec<ModuleInfo> {
        Vec::new()
    }
}

/// Each family's own `forward`, `chain` and `feature_dim` (inherent methods take precedence
/// over the trait's, so these delegate rather than recurse).
macro_rules! network {
    ($($net:ty),* $(,)?) => {$(
        impl Network for $net {
            fn forward(&self, x: &Tensor, train: bool) -> Tensor {
                <$net>::forward(self, x, train)
            }
            fn chain(&self) -> Chain<'_> {
                <$net>::chain(self)
            }
            fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
                <$net>::feature_dim(self, h, w)
            }
        }
    )*};
}

network!(
    resnet::ResNet,
    preact_resnet::PreActResNet,
    tv_resnet::TvResNet,
    convnext::ConvNext,
    alexnet::AlexNet,
    ra_resnet::RaResNet,
    resnext::ResNext,
);

impl Network for wide_resnet::WideResNet {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        wide_resnet::WideResNet::forward(self, x, train)
    }
    fn chain(&self) -> Chain<'_> {
        wide_resnet::WideResNet::chain(self)
    }
    fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        wide_resnet::WideResNet::feature_dim(self, h, w)
    }
    fn unused_modules(&self) -> Vec<ModuleInfo> {
        wide_resnet::WideResNet::unused_modules(self)
    }
}

impl<B: CutBlock> Network for ChainNet<B> {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        ChainNet::forward(self, x, train)
    }
    fn chain(&self) -> Chain<'_> {
        ChainNet::chain(self)
    }
    fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        ChainNet::feature_dim(self, h, w)
    }
}

impl Network for xcit::Xcit {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        xcit::Xcit::forward(self, x, train)
    }
    fn chain(&self) -> Chain<'_> {
        xcit::Xcit::chain(self)
    }
    fn feature_dim(&self, _h: i64, _w: i64) -> Option<i64> {
        // Its classifier takes the class token, at any input size (positions are computed
        // for the grid).
        Some(self.embed_dim())
    }
}

impl Network for vit::VisionTransformer {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        vit::VisionTransformer::forward(self, x, train)
    }
    fn chain(&self) -> Chain<'_> {
        vit::VisionTransformer::chain(self)
    }
    fn feature_dim(&self, _h: i64, _w: i64) -> Option<i64> {
        // Its classifier takes the class token, whatever size `check_size` let through.
        Some(self.embed_dim())
    }
    fn check_size(&self, h: i64, w: i64) -> Result<(), String> {
        vit::VisionTransformer::check_size(self, h, w)
    }
}

impl Network for swin::SwinTransformer {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        swin::SwinTransformer::forward(self, x, train)
    }
    fn chain(&self) -> Chain<'_> {
        swin::SwinTransformer::chain(self)
    }
    fn feature_dim(&self, _h: i64, _w: i64) -> Option<i64> {
        // Pooled tokens of the last stage, whatever size `check_size` let through.
        Some(self.num_features())
    }
    fn check_size(&self, h: i64, w: i64) -> Result<(), String> {
        swin::SwinTransformer::check_size(self, h, w)
    }
}

/// The module tree of `spec`'s family, its variables created under `root` in PyTorch's
/// key order.
pub(super) fn build(
    root: &nn::Path,
    keys: &mut KeyOrder,
    spec: &ArchSpec,
) -> Result<Box<dyn Network>, ModelError> {
    Ok(match spec.family {
        Family::ResNet | Family::ResNetBottleneck => {
            Box::new(resnet::ResNet::new(root, keys, spec))
        }
        Family::PreActResNet => Box::new(preact_resnet::PreActResNet::new(root, keys, spec)),
        Family::WideResNet => Box::new(wide_resnet::WideResNet::new(root, keys, spec)),
        Family::DmWideResNet => Box::new(dm_wide_resnet::dm_wide_resnet(root, keys, spec)),
        Family::DmPreActResNet => Box::new(dm_preact_resnet::dm_preact_resnet(root, keys, spec)),
        Family::RaWideResNet => {
            let config = spec.ra.ok_or_else(|| {
                ModelError::BadInput(format!("{} has no RaWideResNet configuration", spec.name()))
            })?;
            Box::new(ra_wide_resnet::ra_wide_resnet(root, keys, spec, &config))
        }
        Family::RobustWideResNet => Box::new(robust_resnet::robust_wide_resnet(root, keys, spec)),
        Family::RobustResNet => Box::new(robust_resnet::robust_resnet(root, keys, spec)),
        Family::TvResNet | Family::TvResNetBottleneck => {
            Box::new(tv_resnet::TvResNet::new(root, keys, spec))
        }
        Family::VisionTransformer => Box::new(vit::VisionTransformer::new(root, keys, spec)?),
        Family::ConvNeXt => Box::new(convnext::ConvNext::new(root, keys, spec)?),
        Family::AlexNet => Box::new(alexnet::AlexNet::new(root, keys, spec)),
        Family::Swin => Box::new(swin::SwinTransformer::new(root, keys, spec)?),
        Family::RaResNet => Box::new(ra_resnet::RaResNet::new(root, keys, spec)?),
        Family::ResNeXt => Box::new(resnext::ResNext::new(root, keys, spec)?),
        Family::Xcit => Box::new(xcit::Xcit::new(root, keys, spec)?),
    })
}
