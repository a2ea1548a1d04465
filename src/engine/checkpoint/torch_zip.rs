//! Reading the zip checkpoint format of `torch.save` (PyTorch >= 1.6).

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

use super::error::{CheckpointError, PickleError};
use super::pickle_vm::{default_budget, PidMode, StorageSource, Value, Vm};

/// Reads storages `PREFIX/data/<key>` from the archive on demand.
struct ZipStorages<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    prefix: String,
    cache: HashMap<String, Vec<u8>>,
    /// Bytes that may still be read out of the archive.
    read_left: usize,
}

impl<'a> StorageSource for ZipStorages<'a> {
    fn bytes(&mut self, key: &str) -> Result<&[u8], PickleError> {
        if !self.cache.contains_key(key) {
            let name = format!("{}data/{}", self.prefix, key);
            let data = read_entry(&mut self.zip, &name, self.read_left).map_err(|detail| {
                PickleError::Storage {
                    key: key.to_string(),
                    detail: format!("({name}) {detail}"),
                }
            })?;
            self.read_left = self.read_left.saturating_sub(data.len());
            self.cache.insert(key.to_string(), data);
        }
        self.cache
            .get(key)
            .map(|v| v.as_slice())
            .ok_or_else(|| PickleError::Storage {
                key: key.to_string(),
                detail: "is missing".into(),
            })
    }
}

/// Reads one entry, refusing to inflate more than `limit` bytes.
fn read_entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let f = zip.by_name(name).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => "is missing from the archive".to_string(),
        other => format!("cannot be read: {other}"),
    })?;
    let declared = f.size();
    let mut out = Vec::with_capacity(
        usize::try_from(declared)
            .unwrap_or(usize::MAX)
            .min(limit)
            .min(16 << 20),
    );
    f.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if out.len() > limit {
        return Err("inflates to more bytes than the file's size can justify".into());
    }
    if out.len() as u64 != declared {
        return Err(format!("is truncated: {} of {declared} bytes", out.len()));
    }
    Ok(out)
}

/// Parses a zip checkpoint held in memory; returns the unpickled top-level object.
pub fn read_torch_zip(bytes: &[u8], path: &Path) -> Result<Value, CheckpointError> {
    let corrupt = |detail: String| CheckpointError::CorruptZip {
        path: path.to_path_buf(),
        detail,
    };
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| corrupt(e.to_string()))?;
    // The pickle is `<archive name>/data.pkl`; take the shallowest one.
    let pkl_name = zip
        .file_names()
        .filter(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .min_by_key(|n| (n.matches('/').count(), n.len()))
        .map(|s| s.to_string());
    let Some(pkl_name) = pkl_name else {
        let names: Vec<&str> = zip.file_names().take(8).collect();
        return Err(corrupt(format!(
            "it has no data.pkl entry, so it is not a torch.save archive (entries: {})",
            names.join(", ")
        )));
    };
    let prefix = pkl_name[..pkl_name.len() - "data.pkl".len()].to_string();
    let limit = default_budget(bytes.len());
    let pkl =
        read_entry(&mut zip, &pkl_name, limit).map_err(|d| corrupt(format!("{pkl_name} {d}")))?;
    let mut vm = Vm::new(&pkl, 0, PidMode::Torch);
    let root = vm
        .run()
        .map_err(|e| CheckpointError::from_pickle(path, &pkl_name, e))?;
    let mut src = ZipStorages {
        zip,
        prefix,
        cache: HashMap::new(),
        read_left: limit,
    };
    let mut budget = default_budget(bytes.len());
    vm.to_value(root, &mut src, &mut budget)
        .map_err(|e| CheckpointError::from_pickle(path, &pkl_name, e))
}
