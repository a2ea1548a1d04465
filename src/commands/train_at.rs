use super::progress::Printer;
use super::{attack_config, runtime};
use crate::cli::TrainAtArgs;
use anyhow::{anyhow, bail, Context, Result};
use rift::engine::checkpoint::{
    load_checkpoint, save_by_extension, save_format_for, save_safetensors, RawTensor,
};
use rift::engine::data::{load_split, Augmenter, DatasetKind, Split};
use rift::engine::files::SaveError;
use rift::engine::models::{ArchSpec, Model};
use rift::engine::rift::events::Event;
use rift::engine::rift::train_at::{
    default_milestones, optimizer, train_at as run_train, TrainAtConfig, TrainAtTask,
};
use rift::engine::tensors::{to_raw, to_tensor};
use rift::engine::CancelFlag;
use std::path::{Path, PathBuf};

/// The optimizer/epoch sidecar saved next to the model: `<save>.train-state.safetensors`.
pub fn state_path(save: &Path) -> PathBuf {
    let mut name = save
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".train-state.safetensors");
    save.with_file_name(name)
}

pub fn train_at(args: &TrainAtArgs) -> Result<()> {
    let rt = runtime(&args.runtime)?;
    let kind = DatasetKind::parse(&args.dataset)?;
    let Some(attack) = attack_config(&args.attack)? else {
        bail!("adversarial training needs an attack: --attack none is not possible here");
    };
    save_format_for(&args.save)?;
    let train = load_split(kind, &args.data_dir, Split::Train)?;
    let test = load_split(kind, &args.data_dir, Split::Test)?;
    let classes = kind.num_classes().unwrap_or(train.num_classes) as i64;
    let spec = ArchSpec::parse(
        &args.arch,
        args.width,
        classes,
        train.channels as i64,
        (train.height as i64, train.width as i64),
    )?;
    let (mean, std) = kind.mean_std();
    let mut model = Model::new(spec, rt.device, &mean, &std, kind.name())?;
    model.set_compute(rt.compute)?;
    let cfg = TrainAtConfig {
        epochs: args.epochs,
        lr: args.lr,
        momentum: 0.9,
        weight_decay: 5e-4,
        batch_size: args.batch_size,
        milestones: if args.milestones.is_empty() {
            default_milestones(args.epochs)
        } else {
            args.milestones.clone()
        },
        attack,
        eval_limit: args.eval_limit,
        seed: rt.seed,
    };
    let (names, mut opt) = optimizer(&model, &cfg);
    let mut start_epoch = 0;
    if let Some(from) = &args.continue_from {
        let ckpt = load_checkpoint(from)?;
        model.load_state(&ckpt.tensors, &from.display().to_string())?;
        let side = state_path(from);
        let state = load_checkpoint(&side).with_context(|| {
            format!(
                "cannot continue from {}: its training state {} is missing or unreadable",
                from.display(),
                side.display()
            )
        })?;
        let epoch: usize = state
            .metadata
            .iter()
            .find(|(k, _)| k == "epoch")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| anyhow!("{} has no `epoch` entry in its metadata", side.display()))?;
        let buffers = names
            .iter()
            .map(|n| match state.get(&format!("momentum.{n}")) {
                Some(raw) => Ok(Some(to_tensor(raw)?.to_device(rt.device))),
                None => Ok::<_, anyhow::Error>(None),
            })
            .collect::<Result<Vec<_>>>()?;
        opt.set_buffers(buffers);
        start_epoch = epoch + 1;
        eprintln!("continuing {} from epoch {start_epoch}", from.display());
    }
    let aug = Augmenter::for_dataset(kind, train.height);
    let save = args.save.clone();
    let arch = model.spec.name();
    let mut on_epoch = |m: &Model,
                        o: &rift::engine::rift::finetune::optim::Sgd,
                        epoch: usize|
     -> Result<(), SaveError> {
        let state = m.file_state()?;
        save_by_extension(&save, &state)?;
        let mut momentum: Vec<(String, RawTensor)> = Vec::new();
        for (n, b) in names.iter().zip(o.buffers()) {
            if let Some(b) = b {
                momentum.push((format!("momentum.{n}"), to_raw(b)?));
            }
        }
        let meta = vec![
            ("epoch".to_string(), epoch.to_string()),
            ("arch".to_string(), arch.clone()),
        ];
        Ok(save_safetensors(&state_path(&save), &momentum, &meta)?)
    };
    let mut printer = Printer::new();
    let mut epochs_log: Vec<Event> = Vec::new();
    eprintln!(
        "adversarial training of {} on {} ({} images) for {} epochs on {}",
        model.spec.name(),
        kind.name(),
        train.n,
        cfg.epochs,
        rift::engine::device::device_name(rt.device)
    );
    let task = TrainAtTask {
        train: &train,
        test: &test,
        augmenter: &aug,
        cfg: &cfg,
        start_epoch,
    };
    run_train(
        &model,
        &mut opt,
        task,
        &CancelFlag::default(),
        &mut |e| {
            printer.show(&e);
            if matches!(e, Event::TrainEpoch { .. }) {
                epochs_log.push(e);
            }
        },
        &mut on_epoch,
    )?;
    if let Some(path) = &args.output {
        #[derive(serde::Serialize)]
        struct TrainLog<'a> {
            arch: String,
            dataset: &'a str,
            save: String,
            start_epoch: usize,
            epochs: &'a [Event],
        }
        let log = TrainLog {
            arch: model.spec.name(),
            dataset: kind.name(),
            save: args.save.display().to_string(),
            start_epoch,
            epochs: &epochs_log,
        };
        rift::report::write_structured(path, &log)?;
    }
    println!(
        "wrote {} (and its training state {})",
        args.save.display(),
        state_path(&args.save).display()
    );
    Ok(())
}
