//! What can go wrong building or loading a model, and the architecture names the errors
//! list (a leaf: `arch.rs` parses the names, `mod.rs` loads).

/// Every `--arch` name rift builds, as the errors and `--help` list them.
pub const KNOWN_ARCHS: &str =
    "resnet18, resnet34, resnet50, resnet101, resnet152, preactresnet18, preactresnet34, preactresnet18-v1 (robustbench's PreActBlock without final BN), wrn-DEPTH-K (e.g. wrn-34-10, wrn-28-10), boosting-wrn-DEPTH-K (robustbench's BoostingWideResNet: L2-normalised features and classifier rows, e.g. boosting-wrn-34-20), pssilu-wrn-DEPTH-K (its PAF_WideResNet with a shared PSSiLU, e.g. pssilu-wrn-28-10), dm-wrn-DEPTH-K (e.g. dm-wrn-28-10, dm-wrn-70-16), meansparse-dm-wrn-DEPTH-K (e.g. meansparse-dm-wrn-94-16), dm-preactresnet18, dm-preactresnet34, ra-wrn-70-16 (robustbench's RaWideResNet; any other configuration as ra-wrn-D1.D2.D3-W1.W2.W3[-stemS][-groupsG1.G2.G3][-seQ1.Q2.Q3][-seorder1][-sesilu]), meansparse-ra-wrn-70-16, ra-resnet-101-2 (robustbench's ImageNet RaResNet, Peng2023Robust; any other configuration as ra-resnet-stemS-depthsA.B.C.D-widthsA.B.C.D-groupsA.B.C.D), resnextDEPTH-CxWd (AugMix's CIFAR ResNeXt, e.g. resnext29-4x32d), robust-wrn-D1.D2.D3-C0.C1.C2.C3 (robustbench's RobustWideResNet, e.g. robust-wrn-5.5.5-16.320.640.512), robust-resnet-D1.D2.D3-C0.C1.C2.C3 (its RobustResNet, e.g. robust-resnet-27.28.13-16.160.448.384), tv-resnet18|34|50|101|152 and tv-wide-resnet50-2|101-2 (torchvision's ImageNet ResNets; tv-resnetD-wN for width_per_group N), vit-ti|s|b|l PATCH-IMAGE (timm's VisionTransformer, e.g. vit-b16-224; deit-s16-224 is vit-s16-224) and vit-dimD-depthL-headsH-pP-IMAGE[-mlpM][-noqkvbias] for any other ViT, convnext-tiny|small|base|large|xlarge (timm's ConvNeXts; any other layout as convnext-D1.D2.D3.D4-C1.C2.C3.C4, blocks then channels per stage, e.g. convnext-1.1.1.1-8.16.32.64; -convstem2|-convstem3 after either: robustbench's ConvStems, e.g. convnext-tiny-convstem2, convnext-base-convstem3; -meansparse last: robustbench's MeanSparse ConvNeXt, e.g. convnext-large-meansparse), swin-t|s|b|l-pPATCH-wWINDOW-IMAGE (timm's Swin Transformers, e.g. swin-b-p4-w7-224, swin-l-p4-w7-224) and swin-dimD-depthsA.B.C.D-headsA.B.C.D-pPATCH-wWINDOW-IMAGE for any other Swin (e.g. swin-dim16-depths2.2-heads2.4-p4-w4-32), alexnet (torchvision's AlexNet), xcit-n|t|s|m|l DEPTH-pPATCH (timm's XCiT, e.g. xcit-s12-p16; -p16to4: robustbench's adapt_model_patches(·, 4), its CIFAR XCiTs, e.g. xcit-s12-p16to4) and xcit-dimD-depthL-headsH-pPATCH[-mlpM][-caC] for any other XCiT";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown architecture `{0}`; expected `auto` or one of: {KNOWN_ARCHS}")]
    UnknownArch(String),
    #[error("cannot tell the architecture of {path}: {reason}. rift knows pytorch-cifar ResNets (keys conv1, bn1, layer1..4, linear), Bag-of-Tricks PreActResNets (conv1, layer1..4, bn, linear; without bn: robustbench's V1), WideResNets (conv1, block1..3.layer.N, bn1, fc; with activation.alpha/beta: robustbench's PSSiLU network), DM WideResNets (init_conv, layer.0..2.block.N, batchnorm, logits; with meansparse_0/1/2 and meansparse_end: their MeanSparse variant), DM PreActResNets (conv_2d, layer_0..3.N, batchnorm, logits) RaWideResNets (a DM WideResNet's keys with se.fc1/se.fc2 in every block, grouped convolutions, or a stem or widths no DM WideResNet has; with meansparse_*: their MeanSparse variant), torchvision's ImageNet ResNets (a 7×7 conv1, bn1, layer1..4 with downsample.0/1, fc), AugMix's CIFAR ResNeXt (conv_1_3x3, stage_1..3.N.conv_reduce/conv_conv/conv_expand, classifier), robustbench's ImageNet RaResNet (stem.stem.stem.0/1, stages.stageI.stageI-blockJ.F.a/b/se/c and proj, fc), timm's ViTs (cls_token, pos_embed, patch_embed.proj, blocks.N.attn/mlp, norm, head), timm's XCiTs (cls_token, patch_embed.proj.K.0/1, pos_embed.token_projection, blocks.N.attn/local_mp/mlp, cls_attn_blocks.N, norm, head; detected unadapted, so robustbench's CIFAR XCiTs need --arch xcit-…-p16to4), timm's ConvNeXts (stem.0, stages.0..3.blocks.N.conv_dw, head.fc), torchvision's AlexNet (an 11×11 features.0, classifier.1|4|6) and timm's Swin Transformers (patch_embed.proj, layers.N.blocks.M.attn.relative_position_bias_table, norm, head.fc or the older head); pass --arch if the keys are right but the shapes confuse detection")]
    CannotDetect { path: String, reason: String },
    #[error("{path} does not match {arch}: {details}")]
    StateMismatch {
        path: String,
        arch: String,
        details: String,
    },
    #[error("bad input: {0}")]
    BadInput(String),
    #[error("--activation {activation}: {arch} has no activation to choose (only the DM families dm-wrn-D-K and dm-preactresnet18|34, the RaWideResNet ra-wrn-… and the RobustResNet robust-resnet-… do; every other family's activation is fixed by construction: ReLU, or the pssilu-wrn's learned PSSiLU)")]
    NoActivationChoice { activation: String, arch: String },
    #[error("libtorch error: {0}")]
    Torch(#[from] tch::TchError),
}
