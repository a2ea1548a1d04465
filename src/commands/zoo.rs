//! `rift zoo` (the RobustBench table, filtered, with counts per leaderboard) and `--zoo`:
//! the id becomes the flags and the file it stands for before any command runs, and the
//! file is checked to hold the entry's architecture before any compute.
use crate::cli::{Command, ModelArgs, ReadingArgs, ZooArgs};
use anyhow::{bail, Result};
use rift::engine::checkpoint::Checkpoint;
use rift::engine::data::preprocess::Preprocess;
use rift::engine::data::DatasetKind;
use rift::engine::models::{
    detect_arch, Activation, ArchSpec, Family, NormalizeChoice, WrnVariant,
};
use rift::engine::zoo::{self, ZooEntry};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;

#[derive(Serialize)]
struct Listing<'a> {
    robustbench: &'static str,
    entries: Vec<&'a ZooEntry>,
    counts: Vec<zoo::LeaderboardCount>,
}

pub fn zoo(args: &ZooArgs) -> Result<()> {
    let all = zoo::entries()?;
    let board = |e: &ZooEntry| {
        args.dataset.as_ref().is_none_or(|d| &e.dataset == d)
            && args.threat.as_ref().is_none_or(|t| &e.threat == t)
    };
    // Counts are per leaderboard, so `--supported` filters the list, not the counts.
    let boards: Vec<&ZooEntry> = all.iter().filter(|e| board(e)).collect();
    let counts = zoo::counts(&boards);
    let shown: Vec<&ZooEntry> = boards
        .iter()
        .copied()
        .filter(|e| !args.supported || e.is_supported())
        .collect();
    if args.json {
        let listing = Listing {
            robustbench: zoo::ROBUSTBENCH_VERSION,
            entries: shown,
            counts,
        };
        return print_all(&(serde_json::to_string_pretty(&listing)? + "\n"));
    }
    let mut text = String::new();
    for e in &shown {
        let _ = writeln!(text, "{}\n    {}", e.id(), e.architecture);
        let _ = match &e.unsupported {
            None => writeln!(text, "    supported: --zoo sets {}", e.flags_text()),
            Some(reason) => writeln!(text, "    unsupported: {reason}"),
        };
        if e.is_supported() && e.stats_in_buffers() {
            let _ = writeln!(
                text,
                "    (robustbench keeps these as `mu`/`sigma` buffers: a file's own mu/sigma win)"
            );
        }
        if let Some(p) = &e.preprocessing {
            let _ = writeln!(text, "    preprocessing: {p}");
        }
    }
    let _ = writeln!(
        text,
        "\nsupported per leaderboard (robustbench {}):",
        zoo::ROBUSTBENCH_VERSION
    );
    let (mut supported, mut total) = (0, 0);
    for c in &counts {
        let board = format!("{}/{}", c.dataset, c.threat);
        let _ = writeln!(text, "  {board:<20} {:>3} / {}", c.supported, c.total);
        supported += c.supported;
        total += c.total;
    }
    let _ = writeln!(text, "  {:<20} {supported:>3} / {total}", "total");
    print_all(&text)
}

/// Writes the listing to stdout; a reader that stops early (`rift zoo | head`) is no error.
fn print_all(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Resolves `--zoo` on every command that loads a model: the entry's flags, the
/// checkpoint path when none was given, and the dataset checked against the entry's.
pub fn apply_zoo(command: &mut Command) -> Result<()> {
    match command {
        Command::Inspect(a) => apply(&mut a.model, None),
        Command::Predict(a) => apply(&mut a.model, None),
        Command::Eval(a) => {
            apply(&mut a.model, Some(&a.data.dataset))?;
            apply_preprocess(&a.model, &mut a.data.preprocess)
        }
        Command::Mrc(a) => apply(&mut a.model, Some(&a.data.dataset)),
        Command::Finetune(a) => {
            apply(&mut a.model, Some(&a.data.dataset))?;
            apply_preprocess(&a.model, &mut a.data.preprocess)
        }
        Command::Interpolate(a) => {
            apply(&mut a.model, Some(&a.data.dataset))?;
            apply_preprocess(&a.model, &mut a.data.preprocess)
        }
        Command::Ood(a) => apply(&mut a.model, Some(&a.dataset)),
        Command::Run(a) => apply(&mut a.model, Some(&a.data.dataset)),
        Command::Compare(a) => apply(&mut a.run.model, Some(&a.run.data.dataset)),
        Command::Tui(a) => {
            let mut model = ModelArgs {
                checkpoint: a.checkpoint.take(),
                reading: a.reading.clone(),
            };
            let applied = apply(&mut model, Some(&a.data.dataset));
            a.checkpoint = model.checkpoint;
            a.reading = model.reading;
            applied
        }
        Command::Doctor(_)
        | Command::Merge(_)
        | Command::Report(_)
        | Command::Demo(_)
        | Command::TrainAt(_)
        | Command::Zoo(_) => Ok(()),
    }
}

fn apply(model: &mut ModelArgs, dataset: Option<&str>) -> Result<()> {
    let Some(id) = model.reading.zoo.clone() else {
        return Ok(());
    };
    let entry = zoo::lookup(&id)?;
    refuse_conflicts(&model.reading, entry)?;
    if let Some(name) = dataset {
        let kind = DatasetKind::parse(name)?;
        let base = kind.name().trim_end_matches("-c");
        if base != entry.dataset {
            bail!(
                "--zoo {} is a {} model ({} classes) but the data is {}: add --dataset {}{}",
                entry.id(),
                entry.dataset,
                entry.classes.unwrap_or(0),
                kind.name(),
                entry.dataset,
                if kind.name().ends_with("-c") {
                    "-c"
                } else {
                    ""
                }
            );
        }
    }
    let reading = &mut model.reading;
    reading.arch = entry.arch.clone().unwrap_or_else(|| "auto".into());
    reading.width = None;
    reading.activation = entry
        .has_activation_flag()
        .then(|| entry.activation.clone())
        .flatten();
    reading.normalize = entry.normalize_flag();
    // Canonical id: the one recorded in outputs and sessions.
    reading.zoo = Some(entry.id());
    if model.checkpoint.is_none() {
        let path = entry.checkpoint_path(&reading.model_dir);
        if !path.is_file() {
            bail!(entry.missing_file_message(&path, &reading.model_dir));
        }
        model.checkpoint = Some(path);
    }
    Ok(())
}

/// The zoo entry's evaluation preprocessing becomes `--preprocess` when none was given. An
/// explicit `--preprocess` that differs is honoured (evaluating a model at another
/// resolution is a legitimate experiment) with a warning: the numbers are then not the
/// leaderboard's.
fn apply_preprocess(model: &ModelArgs, preprocess: &mut Option<Preprocess>) -> Result<()> {
    let Some(id) = model.reading.zoo.as_deref() else {
        return Ok(());
    };
    // `apply` has already refused an unknown or unsupported id and made it canonical.
    let Some(entry) = zoo::entries()?.iter().find(|e| e.id() == id) else {
        return Ok(());
    };
    let Some(name) = entry.preprocessing.as_deref() else {
        return Ok(());
    };
    let wanted = Preprocess::parse(name)
        .map_err(|e| anyhow::anyhow!("--zoo {}: its preprocessing: {e}", entry.id()))?;
    match *preprocess {
        None => *preprocess = Some(wanted),
        Some(given) if given != wanted => eprintln!(
            "warning: --preprocess {given} differs from --zoo {}'s {wanted} (robustbench's); \
             the accuracies are not the leaderboard's",
            entry.id()
        ),
        Some(_) => {}
    }
    Ok(())
}

/// Flags given with `--zoo` must say what the entry says (the defaults `auto` say nothing).
fn refuse_conflicts(reading: &ReadingArgs, entry: &ZooEntry) -> Result<()> {
    let arch = entry.arch.as_deref().unwrap_or("auto");
    let conflict = |flag: &str, given: &str, wants: &str| -> Result<()> {
        bail!(
            "{flag} {given} conflicts with --zoo {}, which is {} ({}): drop {flag}, or drop --zoo and give --checkpoint",
            entry.id(),
            wants,
            entry.architecture
        )
    };
    let name_of = |a: &str| ArchSpec::parse(a, None, 10, 3, (32, 32)).map(|s| s.name());
    if reading.arch != "auto" && name_of(&reading.arch).ok() != name_of(arch).ok() {
        conflict("--arch", &reading.arch, &format!("--arch {arch}"))?;
    }
    if let Some(w) = reading.width {
        if Some(w) != entry.width {
            conflict(
                "--width",
                &w.to_string(),
                &format!("width {}", entry.width.unwrap_or(0)),
            )?;
        }
    }
    if let Some(a) = &reading.activation {
        let wanted = entry.activation.as_deref().unwrap_or("relu");
        if Activation::parse(a).ok() != Activation::parse(wanted).ok() {
            conflict("--activation", a, &format!("activation {wanted}"))?;
        }
    }
    if reading.normalize != "auto" {
        let given = NormalizeChoice::parse(&reading.normalize).ok();
        if given != NormalizeChoice::parse(&entry.normalize_flag()).ok() {
            conflict(
                "--normalize",
                &reading.normalize,
                &format!("--normalize {}", entry.normalize_flag()),
            )?;
        }
    }
    Ok(())
}

/// With `--zoo`: the file must hold the entry's architecture (family, depth, width,
/// classes), checked on its keys and shapes before any compute; Ok(None) without `--zoo`.
/// Returns the normalisation to use: the entry's, or the file's own `mu`/`sigma` (or
/// `normalize_model`'s `normalize.mean`/`normalize.std`) where robustbench keeps the
/// statistics as buffers that loading the file overwrites.
pub fn check_zoo_file(reading: &ReadingArgs, ckpt: &Checkpoint) -> Result<Option<NormalizeChoice>> {
    let Some(id) = &reading.zoo else {
        return Ok(None);
    };
    let entry = zoo::lookup(id)?;
    let arch = entry.arch.as_deref().unwrap_or("auto");
    let classes = entry.classes.unwrap_or(10);
    let expected = ArchSpec::parse(arch, None, classes, 3, (32, 32))?;
    let shapes: HashMap<String, Vec<usize>> = ckpt
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.shape.clone()))
        .collect();
    let path = ckpt.path.display();
    let detected = detect_arch(&shapes).map_err(|reason| {
        anyhow::anyhow!(
            "--zoo {id} is a {} with {classes} classes ({}), but {path} holds no network rift recognises: {reason}",
            expected.name(),
            entry.architecture
        )
    })?;
    let same = detected.family == expected.family
        && detected.meansparse == expected.meansparse
        && detected.preact_v1 == expected.preact_v1
        && detected.blocks == expected.blocks
        && detected.width == expected.width
        && detected.ra.map(|c| c.layout()) == expected.ra.map(|c| c.layout())
        && detected.stage_channels == expected.stage_channels
        && detected.ra_resnet == expected.ra_resnet
        && detected.resnext == expected.resnext
        && detected.convnext == expected.convnext
        // Nor does a Swin's LayerNorm eps (MIMIR's 1e-6).
        && detected.swin.as_ref().map(|c| c.in_shapes())
            == expected.swin.as_ref().map(|c| c.in_shapes())
        // An XCiT's strides leave no trace in its keys: compare all the rest.
        && detected.xcit.map(|c| c.unadapted()) == expected.xcit.map(|c| c.unadapted())
        // The PSSiLU network's keys say what it is; BoostingWideResNet's are a bias-free
        // WideResNet's, so its name is taken at its word.
        && (detected.wrn_variant == WrnVariant::PsSilu)
            == (expected.wrn_variant == WrnVariant::PsSilu)
        // A WideResNet's `bias_last` (False only in BoostingWideResNet) is in its keys.
        && (expected.family != Family::WideResNet
            || detected.classifier_bias == expected.classifier_bias);
    if !same || detected.num_classes != classes {
        bail!(
            "--zoo {id} is a {} with {classes} classes ({}), but {path} holds a {} with {} classes (read from its keys and shapes): the file is not this entry's; check the id, or drop --zoo and give --arch yourself",
            expected.name(),
            entry.architecture,
            detected.name(),
            detected.num_classes
        );
    }
    let file_has_stats = entry.file_stats_keys().is_some_and(|keys| {
        keys.iter()
            .all(|k| ckpt.tensors.iter().any(|(name, _)| name == k))
    });
    Ok(Some(if file_has_stats {
        NormalizeChoice::Auto
    } else {
        NormalizeChoice::parse(&entry.normalize_flag()).map_err(anyhow::Error::msg)?
    }))
}

/// The zoo id in words for outputs that name the model (`… (zoo ID)`), or nothing.
pub fn zoo_suffix(reading: &ReadingArgs) -> String {
    reading
        .zoo
        .as_ref()
        .map(|id| format!(" (zoo {id})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--zoo imagenet/...` fills `--preprocess` from the entry; an explicit one is kept.
    #[test]
    fn zoo_entry_sets_the_preprocessing() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut argv = vec!["rift", "eval", "--zoo", "imagenet/Linf/Wong2020Fast"];
            argv.extend_from_slice(extra);
            match crate::cli::Cli::try_parse_from(argv).unwrap().command {
                Command::Eval(a) => a,
                _ => unreachable!(),
            }
        };
        let mut a = parse(&[]);
        apply_preprocess(&a.model, &mut a.data.preprocess).unwrap();
        assert_eq!(a.data.preprocess, Some(Preprocess::Crop288));
        let mut a = parse(&["--preprocess", "res224"]);
        apply_preprocess(&a.model, &mut a.data.preprocess).unwrap();
        assert_eq!(a.data.preprocess, Some(Preprocess::Res224));
    }

    /// Every supported entry's flags are accepted by rift's own parsers, and its
    /// architecture has the entry's depth and width.
    #[test]
    fn every_supported_entry_spells_valid_flags() {
        let supported: Vec<&ZooEntry> = zoo::entries()
            .unwrap()
            .iter()
            .filter(|e| e.is_supported())
            .collect();
        assert!(supported.len() > 100);
        for e in supported {
            let arch = e.arch.as_deref().unwrap();
            let spec = ArchSpec::parse(arch, None, e.classes.unwrap(), 3, (32, 32))
                .unwrap_or_else(|err| panic!("{}: {err}", e.id()));
            // The per-stage families (robust-wrn, robust-resnet) have neither: their name
            // spells blocks and widths per stage. A ViT's name spells its size by letter
            // (`vit-b16-224`): its one entry of `blocks` is its depth.
            if let Some(depth) = e.depth {
                let in_name = spec.name().contains(&depth.to_string());
                let vit_depth = matches!(spec.family, Family::VisionTransformer | Family::Xcit)
                    && spec.blocks == [depth as usize];
                assert!(in_name || vit_depth, "{}", e.id());
            }
            assert_eq!(spec.width, e.width.unwrap_or(0), "{}", e.id());
            assert_eq!(&spec.name(), arch, "{}", e.id());
            NormalizeChoice::parse(&e.normalize_flag())
                .unwrap_or_else(|err| panic!("{}: {err}", e.id()));
            match e.activation.as_deref() {
                // PSSiLU is the PSSiLU network's own, no `--activation` choice.
                Some("pssilu") => assert_eq!(spec.wrn_variant, WrnVariant::PsSilu, "{}", e.id()),
                // GELU is the ViT's and the XCiT's own (timm's), no `--activation` choice.
                Some("gelu") => assert!(
                    matches!(spec.family, Family::VisionTransformer | Family::Xcit),
                    "{}",
                    e.id()
                ),
                Some(a) => {
                    Activation::parse(a).unwrap_or_else(|err| panic!("{}: {err}", e.id()));
                }
                None => {}
            }
            assert_eq!(spec.family.has_activation_choice(), e.has_activation_flag());
        }
    }
}
