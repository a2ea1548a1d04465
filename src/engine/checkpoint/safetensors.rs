//! safetensors: an 8-byte little-endian header length, a JSON header (`dtype`, `shape`,
//! `data_offsets` per tensor, optional `__metadata__`), then the raw data.

use std::path::Path;

use super::error::CheckpointError;
use super::tensor::{DType, RawTensor};

/// Whether `bytes` looks like a safetensors file.
pub fn is_safetensors(bytes: &[u8]) -> bool {
    if bytes.len() < 10 {
        return false;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(a);
    n >= 2 && n <= (bytes.len() - 8) as u64 && bytes[8] == b'{'
}

/// Tensors in data order, and the `__metadata__` entries.
pub type SafetensorsContent = (Vec<(String, RawTensor)>, Vec<(String, String)>);

pub fn read_safetensors(bytes: &[u8], path: &Path) -> Result<SafetensorsContent, CheckpointError> {
    let bad = |detail: String| CheckpointError::BadSafetensors {
        path: path.to_path_buf(),
        detail,
    };
    if bytes.len() < 8 {
        return Err(bad(format!(
            "the file has {} bytes, fewer than the 8-byte header length",
            bytes.len()
        )));
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(a);
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= bytes.len() - 8)
        .ok_or_else(|| {
            bad(format!(
                "the header claims {n} bytes but the file has {} after the length",
                bytes.len() - 8
            ))
        })?;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n])
        .map_err(|e| bad(format!("the header is not valid JSON: {e}")))?;
    let serde_json::Value::Object(map) = header else {
        return Err(bad("the header is not a JSON object".into()));
    };
    let data = &bytes[8 + n..];
    let mut meta = Vec::new();
    let mut items: Vec<(usize, String, RawTensor)> = Vec::new();
    for (name, entry) in map {
        if name == "__metadata__" {
            let serde_json::Value::Object(m) = entry else {
                return Err(bad("__metadata__ is not an object".into()));
            };
            for (k, v) in m {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                meta.push((k, v));
            }
            continue;
        }
        let e = |what: &str| bad(format!("tensor `{name}`: {what}"));
        let dtype_s = entry
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| e("no dtype string"))?;
        let dtype = DType::from_safetensors_name(dtype_s)
            .ok_or_else(|| e(&format!("unsupported dtype {dtype_s}")))?;
        let shape: Vec<usize> = entry
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| e("no shape list"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| e("the shape holds something that is not a size"))?;
        let offs: Vec<usize> = entry
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .ok_or_else(|| e("no data_offsets"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| e("data_offsets holds something that is not an offset"))?;
        let [begin, end] = offs[..] else {
            return Err(e("data_offsets is not [begin, end]"));
        };
        if begin > end || end > data.len() {
            return Err(e(&format!(
                "data_offsets [{begin}, {end}] fall outside the {} data bytes",
                data.len()
            )));
        }
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let want = numel.and_then(|n| n.checked_mul(dtype.size()));
        if want != Some(end - begin) {
            return Err(e(&format!(
                "shape {shape:?} of {dtype} does not match its {} data bytes",
                end - begin
            )));
        }
        items.push((
            begin,
            name,
            RawTensor {
                dtype,
                shape,
                data: data[begin..end].to_vec(),
            },
        ));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok((items.into_iter().map(|(_, n, t)| (n, t)).collect(), meta))
}

/// Serialises tensors (in the given order) and metadata to safetensors bytes.
pub fn safetensors_bytes(
    path: &Path,
    tensors: &[(String, RawTensor)],
    metadata: &[(String, String)],
) -> Result<Vec<u8>, CheckpointError> {
    let mut header = String::from("{");
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    if !metadata.is_empty() {
        header.push_str("\"__metadata__\":{");
        for (i, (k, v)) in metadata.iter().enumerate() {
            if i > 0 {
                header.push(',');
            }
            header.push_str(&format!("{}:{}", q(k), q(v)));
        }
        header.push('}');
    }
    let mut seen = std::collections::HashSet::new();
    let mut off = 0usize;
    for (i, (name, t)) in tensors.iter().enumerate() {
        t.check().map_err(|detail| CheckpointError::InvalidTensor {
            path: path.to_path_buf(),
            name: name.clone(),
            detail,
        })?;
        if name == "__metadata__" || !seen.insert(name.as_str()) {
            return Err(CheckpointError::InvalidTensor {
                path: path.to_path_buf(),
                name: name.clone(),
                detail: "the name is reserved or used twice".into(),
            });
        }
        if i > 0 || !metadata.is_empty() {
            header.push(',');
        }
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        header.push_str(&format!(
            "{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            q(name),
            t.dtype.safetensors_name(),
            shape.join(","),
            off,
            off + t.data.len()
        ));
        off += t.data.len();
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + off);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (_, t) in tensors {
        out.extend_from_slice(&t.data);
    }
    Ok(out)
}
