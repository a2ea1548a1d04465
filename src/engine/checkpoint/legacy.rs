//! Reading the legacy (pre-1.6, `_use_new_zipfile_serialization=False`) torch.save format:
//! magic number, protocol version, sys-info dict, the object, the storage-key list, then for
//! each key in that list's order an int64 element count and the raw bytes.

use std::collections::HashMap;
use std::path::Path;

use super::error::{CheckpointError, PickleError};
use super::pickle::parse_plain_pickle_at;
use super::pickle_vm::{default_budget, PidMode, StorageSource, Value, Vm};

/// `0x1950a86a20f9469cfc6c`, little endian, as pickled by LONG1.
const MAGIC_LE: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// Whether `bytes` starts with the pickled legacy magic number (any protocol >= 2).
pub fn is_legacy(bytes: &[u8]) -> bool {
    bytes.len() >= 15
        && bytes[0] == 0x80
        && bytes[2] == 0x8a
        && bytes[3] == 10
        && bytes[4..14] == MAGIC_LE
        && bytes[14] == b'.'
}

struct MapStorages(HashMap<String, Vec<u8>>);
impl StorageSource for MapStorages {
    fn bytes(&mut self, key: &str) -> Result<&[u8], PickleError> {
        self.0.get(key).map(|v| v.as_slice()).ok_or_else(|| PickleError::Storage {
            key: key.to_string(),
            detail: "is referenced by a tensor but missing from the storage list at the end of the file".into(),
        })
    }
}

pub fn read_legacy(bytes: &[u8], path: &Path) -> Result<Value, CheckpointError> {
    let bad = |detail: String| CheckpointError::CorruptLegacy {
        path: path.to_path_buf(),
        detail,
    };
    let pk = |part: &str, e: PickleError| CheckpointError::from_pickle(path, part, e);
    let pos = 15;
    let (proto, pos) =
        parse_plain_pickle_at(bytes, pos).map_err(|e| pk("the protocol-version pickle", e))?;
    if proto != Value::Int(1001) {
        return Err(bad(format!(
            "the protocol version is {proto:?}, expected 1001"
        )));
    }
    let (sys_info, pos) =
        parse_plain_pickle_at(bytes, pos).map_err(|e| pk("the sys-info pickle", e))?;
    if let Some(Value::Bool(false)) = sys_info.get("little_endian") {
        return Err(bad(
            "it was written on a big-endian machine, which rift does not read".into(),
        ));
    }
    let mut vm = Vm::new(bytes, pos, PidMode::Torch);
    let root = vm.run().map_err(|e| pk("the object pickle", e))?;
    let (keys, mut pos) =
        parse_plain_pickle_at(bytes, vm.pos).map_err(|e| pk("the storage-key list", e))?;
    let Value::List(keys) = keys else {
        return Err(bad("the storage-key list is not a list".into()));
    };
    let mut map = HashMap::new();
    for k in keys {
        let key = match k {
            Value::Str(s) => s,
            Value::Int(i) => i.to_string(),
            _ => return Err(bad("a storage key is not a string".into())),
        };
        let Some((_, dtype, _)) = vm.storages.iter().find(|(sk, _, _)| *sk == key) else {
            return Err(bad(format!(
                "the storage list names `{key}`, which no tensor uses"
            )));
        };
        let elem = dtype.size();
        let count = bytes
            .get(pos..pos + 8)
            .map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                i64::from_le_bytes(a)
            })
            .ok_or_else(|| CheckpointError::Storage {
                path: path.to_path_buf(),
                key: key.clone(),
                detail: "is missing: the file ends before its element count".into(),
            })?;
        pos += 8;
        let n = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(elem))
            .filter(|&n| n <= bytes.len() - pos)
            .ok_or_else(|| CheckpointError::Storage {
                path: path.to_path_buf(),
                key: key.clone(),
                detail: format!("is too short: it declares {count} {dtype} elements but the file ends after {} bytes", bytes.len() - pos),
            })?;
        map.insert(key, bytes[pos..pos + n].to_vec());
        pos += n;
    }
    let mut budget = default_budget(bytes.len());
    vm.to_value(root, &mut MapStorages(map), &mut budget)
        .map_err(|e| pk("the object pickle", e))
}
