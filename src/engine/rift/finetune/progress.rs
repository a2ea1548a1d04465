//! Fine-tuning's finished epochs on disk (`finetune_partial.safetensors` in the session
//! directory), so that a killed, cancelled or saved fine-tuning continues from the last
//! finished epoch instead of from the AT weights, and ends exactly where an uninterrupted
//! run ends: the file holds everything the next epoch reads — every state tensor of the
//! model (trained weights and every BatchNorm's running statistics), SGD's momentum
//! buffers, the position of the shuffling/augmentation random stream, the best epoch's
//! snapshot and the logs so far.
//!
//! It is written (atomically) after every epoch and is only ever read back by a
//! fine-tuning of the same modules with the same settings on a training split of the same
//! size; a file written with other settings is replaced by the new fine-tuning (with a
//! warning), and a file that cannot be read is refused with its name, never overwritten.
use crate::engine::checkpoint::{load_checkpoint, save_safetensors, CheckpointError, RawTensor};
use crate::engine::models::Model;
use crate::engine::rift::finetune::FinetuneConfig;
use crate::engine::rift::mrc::results::FinetuneEpoch;
use crate::engine::tensors::{to_raw, to_tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The file's name in the session directory.
pub const PARTIAL_FINETUNE: &str = "finetune_partial.safetensors";
/// The metadata entry holding [`Header`] as JSON.
const HEADER_KEY: &str = "rift_finetune_progress";
/// Bumped when the layout changes; another version is treated as written with other
/// settings (replaced), never misread.
const FORMAT: u32 = 1;

/// Tensor name prefixes (`/` keeps them clear of the checkpoint reader's `model.` and
/// `module.` prefix stripping).
const STATE: &str = "state/";
const BEST: &str = "best/";
const MOMENTUM: &str = "momentum/";

#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error("cannot read the unfinished fine-tuning {}: {source}; rift keeps that file as it is: delete it to fine-tune from the start", path.display())]
    Read {
        path: PathBuf,
        source: Box<CheckpointError>,
    },
    #[error("the unfinished fine-tuning {} is damaged ({detail}); rift keeps that file as it is: delete it to fine-tune from the start", path.display())]
    Damaged { path: PathBuf, detail: String },
    #[error("cannot write the unfinished fine-tuning {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: Box<CheckpointError>,
    },
    #[error("cannot create the session directory {} for the unfinished fine-tuning: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// What identifies a fine-tuning, and where it stands.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Header {
    format: u32,
    /// The modules trained (`Trained::names`).
    layers: Vec<String>,
    config: FinetuneConfig,
    /// Size of the training split (the held-out split and the shuffles depend on it).
    train_n: usize,
    /// Epochs finished; the next one to run.
    next_epoch: usize,
    /// Word position of the ChaCha stream after the last finished epoch (u128 as text:
    /// JSON numbers stop at 2^53).
    rng_word_pos: String,
    iter_losses: Vec<f64>,
    log: Vec<FinetuneEpoch>,
    /// Selection score and epoch of the best epoch so far.
    best: Option<(f64, usize)>,
    /// Momentum buffer present, per trained tensor (None before the first step).
    momentum: Vec<bool>,
}

/// What a fine-tuning identifies itself by when it looks for its own unfinished run.
pub struct Identity<'a> {
    pub layers: &'a [String],
    pub config: &'a FinetuneConfig,
    pub train_n: usize,
}

/// A model state in model key order.
pub type StateTensors = Vec<(String, Tensor)>;

/// The loop's state after a finished epoch.
pub struct Progress {
    pub next_epoch: usize,
    pub rng_word_pos: u128,
    pub iter_losses: Vec<f64>,
    pub log: Vec<FinetuneEpoch>,
    /// Score, epoch and snapshot of the best epoch (the snapshot in model key order).
    pub best: Option<(f64, usize, StateTensors)>,
    pub momentum: Vec<Option<Tensor>>,
}

/// How a look for an unfinished run ended.
pub enum Found {
    /// No file: start from the AT weights.
    Nothing,
    /// A file from another fine-tuning (other modules, settings or split): start from the
    /// AT weights; it is replaced by the first finished epoch.
    Other,
    /// This fine-tuning's own progress, already put into the model.
    Continue(Progress),
}

/// Reads `path` and, when it is this fine-tuning's, puts its state into `model` and
/// returns the rest. A file that is there but cannot be read is an error (kept as is).
pub fn resume(path: &Path, model: &Model, id: &Identity) -> Result<Found, ProgressError> {
    if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Ok(Found::Nothing);
    }
    let ckpt = load_checkpoint(path).map_err(|source| ProgressError::Read {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    let damaged = |detail: String| ProgressError::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    let text = ckpt
        .metadata
        .iter()
        .find(|(k, _)| k == HEADER_KEY)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| damaged(format!("no `{HEADER_KEY}` metadata")))?;
    let header: Header =
        serde_json::from_str(text).map_err(|e| damaged(format!("its header: {e}")))?;
    if header.format != FORMAT
        || header.layers != id.layers
        || header.config != *id.config
        || header.train_n != id.train_n
    {
        return Ok(Found::Other);
    }
    let rng_word_pos: u128 = header
        .rng_word_pos
        .parse()
        .map_err(|_| damaged(format!("random stream position `{}`", header.rng_word_pos)))?;
    let tensor = |name: String| -> Result<Tensor, ProgressError> {
        let raw = ckpt
            .get(&name)
            .ok_or_else(|| damaged(format!("no tensor `{name}`")))?;
        Ok(to_tensor(raw)?)
    };
    let state: Vec<(String, Tensor)> = model
        .keys()
        .iter()
        .map(|k| Ok((k.clone(), tensor(format!("{STATE}{k}"))?)))
        .collect::<Result<_, ProgressError>>()?;
    put_state(model, &state).map_err(|e| damaged(format!("its model state: {e}")))?;
    let best = match header.best {
        None => None,
        // The best epoch is the last finished one: its snapshot is the state itself.
        Some((score, epoch)) if epoch + 1 == header.next_epoch => Some((score, epoch, state)),
        Some((score, epoch)) => {
            let snap = model
                .keys()
                .iter()
                .map(|k| Ok((k.clone(), tensor(format!("{BEST}{k}"))?)))
                .collect::<Result<_, ProgressError>>()?;
            Some((score, epoch, snap))
        }
    };
    let momentum = header
        .momentum
        .iter()
        .enumerate()
        .map(|(i, &present)| {
            present
                .then(|| tensor(format!("{MOMENTUM}{i}")))
                .transpose()
        })
        .collect::<Result<_, ProgressError>>()?;
    let n_epochs = header.log.len();
    if n_epochs != header.next_epoch || header.next_epoch > id.config.epochs {
        return Err(damaged(format!(
            "{n_epochs} epochs logged for {} finished",
            header.next_epoch
        )));
    }
    Ok(Found::Continue(Progress {
        next_epoch: header.next_epoch,
        rng_word_pos,
        iter_losses: header.iter_losses,
        log: header.log,
        best,
        momentum,
    }))
}

/// Copies a state (model key order) into the model's variables, on its device.
pub fn put_state(model: &Model, state: &[(String, Tensor)]) -> Result<(), tch::TchError> {
    let vars = model.var_store().variables();
    tch::no_grad(|| {
        for (k, t) in state {
            let var = vars
                .get(k)
                .ok_or_else(|| tch::TchError::Kind(format!("no variable `{k}`")))?;
            var.shallow_clone().f_copy_(t)?;
        }
        Ok(())
    })
}

/// Writes the loop's state after a finished epoch (atomically: the previous file stays
/// whole until the new one is complete).
pub fn write(
    path: &Path,
    model: &Model,
    id: &Identity,
    progress: &ProgressRef,
) -> Result<(), ProgressError> {
    let mut tensors: Vec<(String, RawTensor)> = Vec::new();
    let vars = model.var_store().variables();
    for k in model.keys() {
        tensors.push((format!("{STATE}{k}"), to_raw(&vars[k])?));
    }
    let best_is_last = progress
        .best
        .is_some_and(|(_, epoch, _)| epoch + 1 == progress.next_epoch);
    if let (Some((_, _, snap)), false) = (progress.best, best_is_last) {
        for (k, t) in snap {
            tensors.push((format!("{BEST}{k}"), to_raw(t)?));
        }
    }
    for (i, b) in progress.momentum.iter().enumerate() {
        if let Some(b) = b {
            tensors.push((format!("{MOMENTUM}{i}"), to_raw(b)?));
        }
    }
    let header = Header {
        format: FORMAT,
        layers: id.layers.to_vec(),
        config: id.config.clone(),
        train_n: id.train_n,
        next_epoch: progress.next_epoch,
        rng_word_pos: progress.rng_word_pos.to_string(),
        iter_losses: progress.iter_losses.to_vec(),
        log: progress.log.to_vec(),
        best: progress.best.map(|(s, e, _)| (s, e)),
        momentum: progress.momentum.iter().map(Option::is_some).collect(),
    };
    let text = serde_json::to_string(&header).map_err(|e| ProgressError::Damaged {
        path: path.to_path_buf(),
        detail: format!("its header does not serialise: {e}"),
    })?;
    // A candidate the explorer shows has no directory until it is first saved.
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ProgressError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    save_safetensors(path, &tensors, &[(HEADER_KEY.to_string(), text)]).map_err(|source| {
        ProgressError::Write {
            path: path.to_path_buf(),
            source: Box::new(source),
        }
    })
}

/// The loop's state, borrowed, for [`write`].
pub struct ProgressRef<'a> {
    pub next_epoch: usize,
    pub rng_word_pos: u128,
    pub iter_losses: &'a [f64],
    pub log: &'a [FinetuneEpoch],
    pub best: Option<(f64, usize, &'a StateTensors)>,
    pub momentum: &'a [Option<Tensor>],
}

/// Removes the file once the finished fine-tuning is saved (missing is fine).
pub fn remove(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(PARTIAL_FINETUNE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
