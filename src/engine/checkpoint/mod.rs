//! Checkpoint files, read and written without libtorch and without executing pickles.
//!
//! Reads PyTorch zip checkpoints (`torch.save` since 1.6), legacy PyTorch checkpoints
//! (`_use_new_zipfile_serialization=False`) and safetensors files, recognised by content;
//! writes `.pth` (zip format, loadable with `torch.load(f, weights_only=True)`) and
//! safetensors, atomically. See SPEC.md §6 for the byte layouts.

pub mod error;
mod legacy;
pub mod pickle;
mod pickle_calls;
mod pickle_numpy;
mod pickle_text;
mod pickle_value;
mod pickle_vm;
mod pth_writer;
mod safetensors;
mod state_dict;
mod tensor;
mod torch_zip;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use self::error::{CheckpointError, PickleError};
pub use self::pickle::{parse_plain_pickle, Value};
pub use self::state_dict::summarize;
pub use self::tensor::{DType, RawTensor};

/// The file formats rift reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointFormat {
    TorchZip,
    TorchLegacy,
    Safetensors,
}

impl CheckpointFormat {
    pub fn name(self) -> &'static str {
        match self {
            CheckpointFormat::TorchZip => "PyTorch zip",
            CheckpointFormat::TorchLegacy => "PyTorch legacy",
            CheckpointFormat::Safetensors => "safetensors",
        }
    }
}

/// A loaded checkpoint.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub format: CheckpointFormat,
    /// The state dict, in file order, keys with the DataParallel prefix removed.
    pub tensors: Vec<(String, RawTensor)>,
    /// Where the state dict was found: None for a bare state dict, or
    /// Some("net"/"state_dict"/"model"/...).
    pub container_key: Option<String>,
    /// Prefix stripped from every key ("module." or "model."), if any.
    pub stripped_prefix: Option<String>,
    /// Short human-readable summaries of the other top-level entries (e.g. ("epoch","109"),
    /// ("best_acc","53.6 (numpy float64)"), ("args","argparse.Namespace(lr=0.1, ...)")).
    /// For safetensors, the `__metadata__` entries.
    pub metadata: Vec<(String, String)>,
}

impl Checkpoint {
    /// The tensor named `name` (after prefix stripping).
    pub fn get(&self, name: &str) -> Option<&RawTensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// The format of checkpoint bytes, by content.
pub fn detect_format(bytes: &[u8]) -> Option<CheckpointFormat> {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Some(CheckpointFormat::TorchZip)
    } else if legacy::is_legacy(bytes) {
        Some(CheckpointFormat::TorchLegacy)
    } else if safetensors::is_safetensors(bytes) {
        Some(CheckpointFormat::Safetensors)
    } else {
        None
    }
}

/// Loads a checkpoint; the format is recognised by content, not by extension.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    })?;
    load_checkpoint_from_bytes(&bytes, path)
}

/// Loads a checkpoint from memory; `path` only names it in errors and in the result.
pub fn load_checkpoint_from_bytes(
    bytes: &[u8],
    path: &Path,
) -> Result<Checkpoint, CheckpointError> {
    let format = detect_format(bytes).ok_or_else(|| CheckpointError::UnknownFormat {
        path: path.to_path_buf(),
        detail: describe_unknown(bytes),
    })?;
    let root = match format {
        CheckpointFormat::Safetensors => {
            let (tensors, metadata) = safetensors::read_safetensors(bytes, path)?;
            let root = Value::Dict(
                tensors
                    .into_iter()
                    .map(|(k, t)| (Value::Str(k), Value::Tensor(t)))
                    .collect(),
            );
            let mut ck = finish(path, format, root)?;
            ck.metadata = metadata;
            return Ok(ck);
        }
        CheckpointFormat::TorchZip => torch_zip::read_torch_zip(bytes, path)?,
        CheckpointFormat::TorchLegacy => legacy::read_legacy(bytes, path)?,
    };
    finish(path, format, root)
}

/// Unpickles a whole torch checkpoint (zip or legacy) without looking for a state dict.
pub fn load_checkpoint_value(path: &Path) -> Result<(CheckpointFormat, Value), CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    })?;
    match detect_format(&bytes) {
        Some(CheckpointFormat::TorchZip) => Ok((
            CheckpointFormat::TorchZip,
            torch_zip::read_torch_zip(&bytes, path)?,
        )),
        Some(CheckpointFormat::TorchLegacy) => Ok((
            CheckpointFormat::TorchLegacy,
            legacy::read_legacy(&bytes, path)?,
        )),
        Some(CheckpointFormat::Safetensors) => {
            let (tensors, _) = safetensors::read_safetensors(&bytes, path)?;
            let root = Value::Dict(
                tensors
                    .into_iter()
                    .map(|(k, t)| (Value::Str(k), Value::Tensor(t)))
                    .collect(),
            );
            Ok((CheckpointFormat::Safetensors, root))
        }
        None => Err(CheckpointError::UnknownFormat {
            path: path.to_path_buf(),
            detail: describe_unknown(&bytes),
        }),
    }
}

fn describe_unknown(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the file is empty".into();
    }
    if bytes.first() == Some(&0x80) {
        return "it is a pickle but not a torch.save file (no legacy magic number)".into();
    }
    if bytes.starts_with(b"\x1f\x8b") {
        return "it is gzip-compressed".into();
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("it starts with the bytes {}", head.join(" "))
}

fn finish(
    path: &Path,
    format: CheckpointFormat,
    root: Value,
) -> Result<Checkpoint, CheckpointError> {
    match state_dict::find_state_dict(root) {
        Ok(f) => Ok(Checkpoint {
            path: path.to_path_buf(),
            format,
            tensors: f.tensors,
            container_key: f.container_key,
            stripped_prefix: f.stripped_prefix,
            metadata: f.metadata,
        }),
        Err(root) => Err(CheckpointError::NoStateDict {
            path: path.to_path_buf(),
            keys: state_dict::describe_keys(&root),
        }),
    }
}

/// Writes `write` to a temporary file next to `path`, then renames it over `path`.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<(), CheckpointError>,
) -> Result<(), CheckpointError> {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let io = |action: &'static str| {
        move |source| CheckpointError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fname = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{fname}.tmp-{}-{n}", std::process::id()));
    let result = (|| {
        std::fs::create_dir_all(&dir).map_err(io("create the directory of"))?;
        let mut f = std::fs::File::create(&tmp).map_err(io("create a temporary file for"))?;
        write(&mut f)?;
        f.flush().map_err(io("write"))?;
        f.sync_all().map_err(io("write"))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io("rename the temporary file onto"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes a zip-format .pth that `torch.load(f, weights_only=True)` opens as an OrderedDict
/// and `load_state_dict(strict=True)` accepts.
pub fn save_pth(path: &Path, tensors: &[(String, RawTensor)]) -> Result<(), CheckpointError> {
    write_atomically(path, |f| {
        pth_writer::write_pth(std::io::BufWriter::new(f), path, tensors)
    })
}

/// Writes a safetensors file (tensors in the given order, `metadata` as `__metadata__`).
pub fn save_safetensors(
    path: &Path,
    tensors: &[(String, RawTensor)],
    metadata: &[(String, String)],
) -> Result<(), CheckpointError> {
    let bytes = safetensors::safetensors_bytes(path, tensors, metadata)?;
    write_atomically(path, |f| {
        f.write_all(&bytes).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            action: "write",
            source,
        })
    })
}

/// The format a path's extension selects (.pth/.pt/.ckpt/.bin -> zip .pth,
/// .safetensors -> safetensors), so commands can refuse a bad `--save` before working.
pub fn save_format_for(path: &Path) -> Result<CheckpointFormat, CheckpointError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("pth" | "pt" | "ckpt" | "bin") => Ok(CheckpointFormat::TorchZip),
        Some("safetensors") => Ok(CheckpointFormat::Safetensors),
        _ => Err(CheckpointError::UnknownExtension {
            path: path.to_path_buf(),
        }),
    }
}

/// Picks the writer by extension (see `save_format_for`).
pub fn save_by_extension(
    path: &Path,
    tensors: &[(String, RawTensor)],
) -> Result<(), CheckpointError> {
    match save_format_for(path)? {
        CheckpointFormat::Safetensors => save_safetensors(path, tensors, &[]),
        _ => save_pth(path, tensors),
    }
}

#[cfg(test)]
mod tests;
