use super::{model_choice, model_summary};
use crate::cli::InspectArgs;
use anyhow::Result;
use rift::engine::checkpoint::load_checkpoint;
use rift::engine::data::DatasetKind;
use rift::engine::models::{
    ActivationSource, Family, Model, ModuleInfo, NormSource, RaWideConfig, SeOrder, WrnVariant,
};
use serde::Serialize;
use tch::Device;

#[derive(Serialize)]
struct ModuleRow {
    name: String,
    kind: String,
    shape: Vec<i64>,
    params: i64,
}

impl From<ModuleInfo> for ModuleRow {
    fn from(m: ModuleInfo) -> Self {
        ModuleRow {
            name: m.name,
            kind: m.kind,
            shape: m.shape,
            params: m.params,
        }
    }
}

#[derive(Serialize)]
struct Inspection {
    checkpoint: String,
    /// The RobustBench id of `--zoo`, when the model was named by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    zoo: Option<String>,
    format: String,
    container_key: Option<String>,
    stripped_prefix: Option<String>,
    arch: String,
    family: String,
    num_classes: i64,
    in_channels: i64,
    feature_dim: i64,
    normalization: String,
    /// The activation and where it came from (fixed by the family, assumed, --activation).
    activation: String,
    /// What the keys cannot tell and rift assumed.
    assumed: Vec<String>,
    /// Variants of the family told from the keys.
    detected: Vec<String>,
    tensors: usize,
    params: i64,
    metadata: serde_yaml::Mapping,
    modules: Vec<ModuleRow>,
    unused_modules: Vec<ModuleRow>,
}

pub fn inspect(args: &InspectArgs) -> Result<()> {
    let mut choice = model_choice(&args.model)?;
    let ckpt = load_checkpoint(args.model.checkpoint())?;
    if let Some(normalize) = super::zoo::check_zoo_file(&args.model.reading, &ckpt)? {
        choice.normalize = normalize;
    }
    let (mean, std) = DatasetKind::Cifar10.mean_std();
    // Normalisation does not matter for inspection; the CIFAR stats only fill the slot
    // when the model has 3 channels. Build with matching channel count otherwise.
    let channels = ckpt
        .tensors
        .iter()
        .find(|(k, _)| ["conv1.weight", "init_conv.weight", "conv_2d.weight"].contains(&k.as_str()))
        .map_or(3, |(_, t)| t.shape.get(1).copied().unwrap_or(3));
    let (mean, std) = if channels == 3 {
        (mean, std)
    } else {
        (vec![0.0; channels], vec![1.0; channels])
    };
    let model = Model::from_checkpoint_with(&ckpt, &choice, Device::Cpu, (&mean, &std, "none"))?;
    let summary = model_summary(&ckpt, &model, args.model.reading.zoo.as_deref());
    let spec = &model.spec;
    let activation = match model.activation_source {
        ActivationSource::Fixed if spec.wrn_variant == WrnVariant::PsSilu => pssilu_text(&model),
        ActivationSource::Fixed => format!("{} (fixed by the family)", spec.activation.name()),
        ActivationSource::Flag => format!("{} (from --activation)", spec.activation.name()),
        ActivationSource::Assumed => format!(
            "{} (assumed: the zoo's default; the checkpoint does not record it, --activation relu|silu overrides)",
            spec.activation.name()
        ),
    };
    let mut assumed = Vec::new();
    if model.activation_source == ActivationSource::Assumed {
        assumed.push(format!("activation {}", spec.activation.name()));
    }
    let mut detected = vec![format!("family {:?}", spec.family)];
    if spec.family == Family::WideResNet {
        detected.push(format!(
            "sub_block1 {}",
            if spec.sub_block1 {
                "present (kept in the state, unused by forward)"
            } else {
                "absent"
            }
        ));
        detected.push(format!(
            "classifier {}",
            match (spec.classifier_bias, spec.wrn_variant) {
                (_, WrnVariant::Boosting) => "on the hypersphere: L2-normalised features and weight rows (BoostingWideResNet, from --arch boosting-…)",
                (true, _) => "with bias",
                // robustbench's bias-free WideResNets are BoostingWideResNets, whose keys
                // cannot tell them from a plain one.
                (false, _) => "without bias (bias_last=False; if this is robustbench's BoostingWideResNet, Pang2020Boosting, its forward normalises features and weight rows: pass --arch boosting-wrn-D-K or --zoo)",
            }
        ));
    }
    if let Some(ra) = &spec.ra {
        detected.extend(ra_details(ra, &spec.blocks));
        if ra.se.is_some() && args.model.reading.arch == "auto" {
            assumed.push("SE after conv_1 with relu (the state does not record where the SE sits nor its activation; an --arch name ending in -seorder1 or -sesilu says otherwise)".into());
        }
    }
    let out = Inspection {
        checkpoint: summary.checkpoint,
        zoo: summary.zoo,
        format: format!("{:?}", ckpt.format),
        container_key: ckpt.container_key.clone(),
        stripped_prefix: ckpt.stripped_prefix.clone(),
        arch: summary.arch,
        family: format!("{:?}", model.spec.family),
        num_classes: model.spec.num_classes,
        in_channels: model.spec.in_channels,
        feature_dim: model.spec.feature_dim,
        normalization: match &model.normalization.source {
            NormSource::Dataset(_) => "the dataset's mean/std, chosen per command with --dataset (--normalize auto; the checkpoint has no mu/sigma or mean/std)".into(),
            _ => summary.normalization,
        },
        activation,
        assumed,
        detected,
        tensors: ckpt.tensors.len(),
        params: model.num_params(),
        metadata: ckpt
            .metadata
            .iter()
            .map(|(k, v)| (k.clone().into(), v.clone().into()))
            .collect(),
        modules: model.modules().into_iter().map(ModuleRow::from).collect(),
        unused_modules: model
            .unused_modules()
            .into_iter()
            .map(ModuleRow::from)
            .collect(),
    };
    println!(
        "{}  ({} format{}{})",
        out.checkpoint,
        out.format,
        out.container_key
            .as_ref()
            .map_or(String::new(), |k| format!(", state dict under `{k}`")),
        out.stripped_prefix
            .as_ref()
            .map_or(String::new(), |p| format!(", prefix `{p}` stripped"))
    );
    if let Some(id) = &out.zoo {
        println!(
            "zoo {id} (robustbench {})",
            rift::engine::zoo::ROBUSTBENCH_VERSION
        );
    }
    println!(
        "arch {}  classes {}  input channels {}  classifier width {}  parameters {}",
        out.arch, out.num_classes, out.in_channels, out.feature_dim, out.params
    );
    println!("detected: {}", out.detected.join(", "));
    println!("activation {}", out.activation);
    for note in out.assumed.iter().filter(|a| a.starts_with("SE ")) {
        println!("assumed: {note}");
    }
    println!("normalization {}", out.normalization);
    for (k, v) in &ckpt.metadata {
        println!("  {k}: {v}");
    }
    // Columns as wide as their longest entry (a RaWideResNet's kinds run long).
    let name_w = out
        .modules
        .iter()
        .map(|m| m.name.len())
        .fold(28, usize::max);
    let kind_w = out
        .modules
        .iter()
        .map(|m| m.kind.len())
        .fold(22, usize::max);
    println!(
        "{:>3}  {:<name_w$} {:<kind_w$} {:>10}  shape",
        "#", "module", "kind", "params"
    );
    for (i, m) in out.modules.iter().enumerate() {
        println!(
            "{:>3}  {:<name_w$} {:<kind_w$} {:>10}  {:?}",
            i, m.name, m.kind, m.params, m.shape
        );
    }
    if !out.unused_modules.is_empty() {
        println!(
            "unused by the forward pass (kept in the state): {}",
            out.unused_modules
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(path) = &args.output {
        rift::report::write_structured(path, &out)?;
    }
    Ok(())
}

/// The PSSiLU network's activation with its learned scalars.
fn pssilu_text(model: &Model) -> String {
    let scalar = |k: &str| {
        model
            .var(k)
            .and_then(|t| t.f_double_value(&[0]).ok())
            .map_or("?".into(), |v| format!("{v:.6}"))
    };
    format!(
        "pssilu (robustbench's PSSiLU, one module shared by every block: alpha {}, beta {})",
        scalar("activation.alpha"),
        scalar("activation.beta")
    )
}

/// A RaWideResNet's configuration in words, one line each.
fn ra_details(ra: &RaWideConfig, blocks: &[usize]) -> Vec<String> {
    let slashed = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join("/");
    let blocks: Vec<i64> = blocks.iter().map(|&b| b as i64).collect();
    let mut out = vec![
        format!("stem width {}", ra.stem_width),
        format!("blocks per stage {}", slashed(&blocks)),
        format!("stage widths {}", slashed(&ra.stage_widths)),
        format!("groups {}", slashed(&ra.groups)),
    ];
    out.push(match &ra.se {
        Some(se) => format!(
            "squeeze-and-excitation {} wide, after {}, {}",
            slashed(&se.squeeze),
            match se.order {
                SeOrder::AfterConv0 => "conv_0",
                SeOrder::AfterConv1 => "conv_1",
            },
            se.activation.name()
        ),
        None => "no squeeze-and-excitation".into(),
    });
    out
}
