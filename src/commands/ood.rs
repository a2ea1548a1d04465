use super::progress::Printer;
use super::{load_model, runtime};
use crate::cli::OodArgs;
use anyhow::{bail, Result};
use rift::engine::data::DatasetKind;
use rift::engine::rift::final_eval::ood::{default_severities, evaluate_ood, parse_severities};
use rift::engine::rift::mrc::results::OodResult;
use rift::engine::CancelFlag;

/// The per-corruption table, the `headline` mean first, then every mean.
fn print_ood(r: &OodResult, headline: &str) {
    println!("{:<22} {:>8}   by severity", "corruption", "acc %");
    for c in &r.corruptions {
        let sev: Vec<String> = c
            .by_severity
            .iter()
            .map(|(s, a)| format!("{s}:{a:.2}"))
            .collect();
        println!("{:<22} {:>8.2}   {}", c.name, c.acc, sev.join(" "));
    }
    match r.headline(headline) {
        Some((label, m)) => println!("headline OOD accuracy ({label}): {m:.2}%"),
        None => println!(
            "headline OOD accuracy ({}): not computed, corruption files are missing: {}",
            headline,
            r.missing.join(", ")
        ),
    }
    println!(
        "mean over {} corruptions: {:.2}%",
        r.corruptions.len(),
        r.mean_acc
    );
    if let Some(m) = r.mean_published18 {
        println!("published 18-corruption mean: {m:.2}%");
    }
    if let Some(m) = r.mean_standard15 {
        println!("standard-15 mean: {m:.2}%");
    }
    if !r.missing.is_empty() {
        println!("missing (not evaluated): {}", r.missing.join(", "));
    }
}

pub fn ood(args: &OodArgs) -> Result<()> {
    let rt = runtime(&args.runtime)?;
    let kind = DatasetKind::parse(&args.dataset)?;
    if !matches!(
        kind,
        DatasetKind::Cifar10C
            | DatasetKind::Cifar100C
            | DatasetKind::TinyImageNetC
            | DatasetKind::MnistC
    ) {
        bail!("rift ood evaluates corrupted sets: --dataset cifar10-c, cifar100-c, tiny-imagenet-c or mnist-c, not {}", kind.name());
    }
    let severities = match &args.severities {
        Some(s) => parse_severities(s).map_err(anyhow::Error::msg)?,
        None => default_severities(kind),
    };
    let (_ckpt, model) = load_model(&args.model, kind, rt.device, rt.compute)?;
    let mut printer = Printer::new();
    let r = evaluate_ood(
        &model,
        kind,
        &args.data_dir,
        &severities,
        args.batch_size,
        &CancelFlag::default(),
        &mut |e| printer.show(&e),
    )?;
    if r.corruptions.is_empty() {
        bail!("no corruption files found under {} (expected <corruption>.npy with labels.npy, or Tiny-ImageNet-C folders)", args.data_dir.display());
    }
    print_ood(&r, &args.ood_headline);
    if let Some(path) = &args.output {
        rift::report::write_structured(path, &r)?;
    }
    Ok(())
}
