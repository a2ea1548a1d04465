//! Small helpers shared by the dataset readers: whole-file reads (optionally gunzipped),
//! sorted directory listings, name checks, and the `H×W×C` → `C×H×W` conversion.

use super::DataError;
use std::path::{Path, PathBuf};

/// Read a whole file in one go (the standard library sizes the buffer from the metadata).
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Read a whole file, decompressing it if its name ends in `.gz`. The decompressed size is
/// capped at `limit` bytes.
pub(crate) fn read_maybe_gz(path: &Path, limit: u64) -> Result<Vec<u8>, DataError> {
    let raw = read_file(path)?;
    if path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.eq_ignore_ascii_case("gz"))
        != Some(true)
    {
        return Ok(raw);
    }
    use std::io::Read;
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(&raw[..]).take(limit + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| DataError::malformed(path, format!("gzip: {e}")))?;
    if out.len() as u64 > limit {
        return Err(DataError::malformed(
            path,
            format!("decompresses to more than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// Entries of a directory, sorted by file name (bytes), filtered by `keep`.
pub(crate) fn sorted_entries(
    dir: &Path,
    keep: impl Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let p = entry.path();
        if keep(&p) {
            out.push(p);
        }
    }
    out.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(out)
}

/// Sorted sub-directories of `dir` (hidden ones skipped).
pub(crate) fn sorted_subdirs(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    sorted_entries(dir, |p| p.is_dir() && !file_name(p).starts_with('.'))
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `true` when the extension of `p` is one of `exts` (case-insensitive).
pub(crate) fn has_ext(p: &Path, exts: &[&str]) -> bool {
    match p.extension().and_then(|e| e.to_str()) {
        Some(e) => exts.iter().any(|x| e.eq_ignore_ascii_case(x)),
        None => false,
    }
}

/// Reject names that could escape the dataset directory.
pub(crate) fn check_plain_name(what: &str, name: &str) -> Result<(), DataError> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name == "." || name == ".." {
        return Err(DataError::Invalid(format!("invalid {what} name '{name}'")));
    }
    Ok(())
}

/// Check a severity list (each in 1..=5, at least one).
pub(crate) fn check_severities(severities: &[u8]) -> Result<(), DataError> {
    if severities.is_empty() {
        return Err(DataError::Invalid(
            "no corruption severity given (expected some of 1..5)".into(),
        ));
    }
    if let Some(s) = severities.iter().find(|&&s| !(1..=5).contains(&s)) {
        return Err(DataError::Invalid(format!(
            "corruption severity {s} is outside 1..5"
        )));
    }
    Ok(())
}

/// Convert `n` images stored `H×W×C` (numpy/PIL order) into `C×H×W`, appending to `out`.
pub(crate) fn hwc_to_chw_into(
    src: &[u8],
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    out: &mut Vec<u8>,
) {
    let img = h * w * c;
    let start = out.len();
    out.resize(start + n * img, 0);
    for (s, d) in src
        .chunks_exact(img)
        .zip(out[start..].chunks_exact_mut(img))
        .take(n)
    {
        hwc_to_chw_into_slice(s, h, w, c, d);
    }
}

/// Convert one `H×W×C` image into `C×H×W` in `dst` (same length).
pub(crate) fn hwc_to_chw_into_slice(src: &[u8], h: usize, w: usize, c: usize, dst: &mut [u8]) {
    let plane = h * w;
    if c == 1 {
        dst[..plane].copy_from_slice(&src[..plane]);
        return;
    }
    for ch in 0..c {
        let d = &mut dst[ch * plane..(ch + 1) * plane];
        for (o, px) in d.iter_mut().zip(src.chunks_exact(c)) {
            *o = px[ch];
        }
    }
}
