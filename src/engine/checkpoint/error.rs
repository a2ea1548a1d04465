//! Errors of the checkpoint readers and writers. Every message names the file and says, in
//! one sentence, what was expected.

use std::path::PathBuf;

/// An error of the pickle virtual machine (no file path: the caller adds it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    #[error(
        "the pickle ends early: opcode {opcode} at byte {offset} needs more bytes than remain"
    )]
    Truncated { opcode: String, offset: usize },
    #[error("the pickle has no STOP opcode before the end of its {len} bytes")]
    NoStop { len: usize },
    #[error("unknown pickle opcode 0x{opcode:02x} at byte {offset}")]
    UnknownOpcode { opcode: u8, offset: usize },
    #[error("corrupt pickle: opcode {opcode} at byte {offset}: {detail}")]
    Corrupt {
        opcode: String,
        offset: usize,
        detail: String,
    },
    #[error("the pickle references the global `{name}` (at byte {offset}), which a model checkpoint has no reason to use; refusing to load it (rift never executes code from a pickle)")]
    ForbiddenGlobal { name: String, offset: usize },
    #[error("the pickle would need more memory than its size can justify ({detail}); refusing to build it")]
    TooLarge { detail: String },
    #[error("unsupported pickle content: {detail}")]
    Unsupported { detail: String },
    #[error("storage `{key}` {detail}")]
    Storage { key: String, detail: String },
}

/// An error while reading or writing a checkpoint file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot {action} checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a recognised checkpoint: {detail}; rift reads PyTorch zip checkpoints (torch.save since 1.6), PyTorch legacy checkpoints (_use_new_zipfile_serialization=False) and safetensors files")]
    UnknownFormat { path: PathBuf, detail: String },
    #[error("checkpoint {path} is a truncated or corrupt zip archive: {detail}")]
    CorruptZip { path: PathBuf, detail: String },
    #[error("checkpoint {path} has a corrupt pickle in {part}: {source}")]
    CorruptPickle {
        path: PathBuf,
        part: String,
        #[source]
        source: PickleError,
    },
    #[error("checkpoint {path} references the global `{name}`, which a model checkpoint has no reason to use; refusing to load it (rift never executes code from a pickle)")]
    ForbiddenGlobal { path: PathBuf, name: String },
    #[error("checkpoint {path}: tensor storage `{key}` {detail}")]
    Storage {
        path: PathBuf,
        key: String,
        detail: String,
    },
    #[error("checkpoint {path} holds no state dict (a dict of tensors, bare or under `net`, `state_dict`, `model`, `model_state_dict` or `state`); top-level entries seen: {keys}")]
    NoStateDict { path: PathBuf, keys: String },
    #[error("checkpoint {path} is a corrupt legacy PyTorch file: {detail}")]
    CorruptLegacy { path: PathBuf, detail: String },
    #[error("safetensors file {path} has a bad header or data: {detail}")]
    BadSafetensors { path: PathBuf, detail: String },
    #[error("cannot write {path}: tensor `{name}` is inconsistent: {detail}")]
    InvalidTensor {
        path: PathBuf,
        name: String,
        detail: String,
    },
    #[error("cannot write {path}: {detail}")]
    Write { path: PathBuf, detail: String },
    #[error("cannot tell which format to write for {path}: expected the extension .pth, .pt, .ckpt (PyTorch zip) or .safetensors")]
    UnknownExtension { path: PathBuf },
}

impl CheckpointError {
    /// Wraps a pickle error with the file path, turning forbidden globals and storage
    /// problems into their own variants.
    pub fn from_pickle(path: &std::path::Path, part: &str, e: PickleError) -> Self {
        match e {
            PickleError::ForbiddenGlobal { name, .. } => CheckpointError::ForbiddenGlobal {
                path: path.to_path_buf(),
                name,
            },
            PickleError::Storage { key, detail } => CheckpointError::Storage {
                path: path.to_path_buf(),
                key,
                detail,
            },
            other => CheckpointError::CorruptPickle {
                path: path.to_path_buf(),
                part: part.to_string(),
                source: other,
            },
        }
    }
}
