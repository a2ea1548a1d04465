//! MNIST in Yann LeCun's IDX format, plain or gzipped, as torchvision leaves it
//! (`MNIST/raw/`) or as downloaded.

use super::error::{fmt_err, DataError};
use super::{DatasetKind, ImageSet, Split};
use std::path::{Path, PathBuf};

const IMAGES_MAGIC: u32 = 2051;
const LABELS_MAGIC: u32 = 2049;
/// Cap on the decompressed size of one gzipped IDX file (the real training images are 47 MB).
const GZ_LIMIT: u64 = 1 << 30;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Images of an IDX3 file: `(n, rows, cols, pixels)` with pixels `n×rows×cols` row-major.
pub fn parse_idx_images(bytes: &[u8]) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    if bytes.len() < 16 {
        return Err(fmt_err(format!(
            "IDX image file too short ({} bytes)",
            bytes.len()
        )));
    }
    let magic = be32(bytes, 0);
    if magic != IMAGES_MAGIC {
        return Err(fmt_err(format!(
            "bad IDX image magic {magic} (expected {IMAGES_MAGIC}; is this a labels file?)"
        )));
    }
    let (n, rows, cols) = (
        be32(bytes, 4) as usize,
        be32(bytes, 8) as usize,
        be32(bytes, 12) as usize,
    );
    let need = n
        .checked_mul(rows)
        .and_then(|x| x.checked_mul(cols))
        .ok_or_else(|| fmt_err("IDX image dimensions overflow"))?;
    let have = bytes.len() - 16;
    if have != need {
        return Err(fmt_err(format!(
            "IDX header says {n} images of {rows}×{cols} ({need} bytes) but {have} bytes follow{}",
            if have < need {
                " (file truncated?)"
            } else {
                ""
            }
        )));
    }
    Ok((n, rows, cols, bytes[16..].to_vec()))
}

/// Labels of an IDX1 file.
pub fn parse_idx_labels(bytes: &[u8]) -> Result<Vec<i64>, DataError> {
    if bytes.len() < 8 {
        return Err(fmt_err(format!(
            "IDX label file too short ({} bytes)",
            bytes.len()
        )));
    }
    let magic = be32(bytes, 0);
    if magic != LABELS_MAGIC {
        return Err(fmt_err(format!(
            "bad IDX label magic {magic} (expected {LABELS_MAGIC}; is this an images file?)"
        )));
    }
    let n = be32(bytes, 4) as usize;
    let have = bytes.len() - 8;
    if have != n {
        return Err(fmt_err(format!(
            "IDX header says {n} labels but {have} bytes follow{}",
            if have < n { " (file truncated?)" } else { "" }
        )));
    }
    Ok(bytes[8..].iter().map(|&b| b as i64).collect())
}

/// Find `<stem>` (or its `.gz`, or the `train-images.idx3-ubyte` spelling) in the accepted
/// folders.
fn find_file(dirs: &[PathBuf], stem: &str) -> Option<PathBuf> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    for d in dirs {
        for name in [
            stem.to_string(),
            format!("{stem}.gz"),
            dotted.clone(),
            format!("{dotted}.gz"),
        ] {
            let p = d.join(&name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

pub(crate) fn load(data_dir: &Path, split: Split) -> Result<ImageSet, DataError> {
    let dirs = [
        data_dir.to_path_buf(),
        data_dir.join("MNIST").join("raw"),
        data_dir.join("mnist"),
        data_dir.join("mnist").join("MNIST").join("raw"),
    ];
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let not_found =
        || DataError::not_found("mnist", data_dir, DatasetKind::Mnist.expected_layout());
    let img_path =
        find_file(&dirs, &format!("{prefix}-images-idx3-ubyte")).ok_or_else(not_found)?;
    let lab_path =
        find_file(&dirs, &format!("{prefix}-labels-idx1-ubyte")).ok_or_else(not_found)?;

    let img_bytes = super::read_maybe_gz(&img_path, GZ_LIMIT)?;
    let (n, rows, cols, pixels) = parse_idx_images(&img_bytes).map_err(|e| e.in_file(&img_path))?;
    drop(img_bytes);
    let lab_bytes = super::read_maybe_gz(&lab_path, GZ_LIMIT)?;
    let labels = parse_idx_labels(&lab_bytes).map_err(|e| e.in_file(&lab_path))?;
    if labels.len() != n {
        return Err(DataError::malformed(
            &lab_path,
            format!(
                "{} labels for {n} images in {}",
                labels.len(),
                img_path.display()
            ),
        ));
    }
    if let Some(&bad) = labels.iter().find(|&&l| l > 9) {
        return Err(DataError::malformed(
            &lab_path,
            format!("label {bad} is outside 0..9"),
        ));
    }
    Ok(ImageSet {
        n,
        channels: 1,
        height: rows,
        width: cols,
        pixels,
        labels,
        num_classes: 10,
        class_names: (0..10).map(|d| d.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_images(n: u32, r: u32, c: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [IMAGES_MAGIC, n, r, c] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend((0..n * r * c).map(|i| i as u8));
        v
    }

    #[test]
    fn parses_and_rejects() {
        let b = idx_images(2, 3, 4);
        let (n, r, c, px) = parse_idx_images(&b).unwrap();
        assert_eq!((n, r, c, px.len()), (2, 3, 4, 24));
        for cut in 0..b.len() {
            assert!(parse_idx_images(&b[..cut]).is_err());
        }
        let mut huge = b.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_idx_images(&huge).is_err());
        assert!(parse_idx_labels(&b)
            .unwrap_err()
            .to_string()
            .contains("magic"));
        let mut l = Vec::new();
        l.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        l.extend_from_slice(&3u32.to_be_bytes());
        l.extend_from_slice(&[1, 2, 3]);
        assert_eq!(parse_idx_labels(&l).unwrap(), vec![1, 2, 3]);
        assert!(parse_idx_labels(&l[..10]).is_err());
    }
}
