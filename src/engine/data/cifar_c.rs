//! CIFAR-10-C / CIFAR-100-C (Hendrycks & Dietterich): `<corruption>.npy` holding
//! 50000×32×32×3 uint8 images (severities 1..5, 10000 each, in order) and `labels.npy`.

use super::error::DataError;
use super::npy::{read_npy, NpyDType};
use super::{DatasetKind, ImageSet};
use std::path::{Path, PathBuf};

/// The 15 standard corruptions of the benchmark.
pub const STANDARD_15: [&str; 15] = [
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
];

/// The 18 corruptions the RiFT paper averages over: the 15 standard ones without
/// `glass_blur`, plus the four extra ones `speckle_noise`, `gaussian_blur`, `spatter`,
/// `saturate`.
pub const PUBLISHED_18: [&str; 18] = [
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
    "speckle_noise",
    "gaussian_blur",
    "spatter",
    "saturate",
];

/// Resolve the folder holding the `.npy` files: `data_dir` itself, or `data_dir/CIFAR-10-C`
/// (`CIFAR-100-C` for CIFAR-100-C; lower-case spellings too).
pub fn find_dir(kind: DatasetKind, data_dir: &Path) -> Result<PathBuf, DataError> {
    let subs: &[&str] = match kind {
        DatasetKind::Cifar100C => &["CIFAR-100-C", "cifar-100-c", "cifar100-c", "CIFAR100-C"],
        _ => &["CIFAR-10-C", "cifar-10-c", "cifar10-c", "CIFAR10-C"],
    };
    for s in subs {
        let d = data_dir.join(s);
        if d.join("labels.npy").is_file() {
            return Ok(d);
        }
    }
    if data_dir.join("labels.npy").is_file() {
        return Ok(data_dir.to_path_buf());
    }
    Err(DataError::not_found(
        kind.name(),
        data_dir,
        kind.expected_layout(),
    ))
}

/// Corruption names available in `dir` (the `.npy` files other than `labels.npy`), sorted.
pub fn list_corruptions(dir: &Path) -> Vec<String> {
    let files = super::sorted_entries(dir, |p| p.is_file() && super::has_ext(p, &["npy"]))
        .unwrap_or_default();
    files
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| s != "labels" && !s.starts_with('.'))
        .collect()
}

/// Read `labels.npy` (int64, int32 or uint8; 50000 entries, or 10000 shared by all
/// severities).
fn read_labels(path: &Path) -> Result<Vec<i64>, DataError> {
    let arr = read_npy(path)?;
    if arr.shape.len() != 1 {
        return Err(DataError::malformed(
            path,
            format!("labels have shape {:?}, expected 1-D", arr.shape),
        ));
    }
    match arr.dtype {
        NpyDType::U8
        | NpyDType::I8
        | NpyDType::I16
        | NpyDType::U16
        | NpyDType::I32
        | NpyDType::U32
        | NpyDType::I64
        | NpyDType::U64 => {}
        other => {
            return Err(DataError::malformed(
                path,
                format!("labels have dtype {}, expected integers", other.descr()),
            ))
        }
    }
    arr.to_i64().map_err(|e| e.in_file(path))
}

/// Load one corruption at the given severities (each in 1..=5; images are concatenated in the
/// order given). `dir` is the folder holding `<corruption>.npy` and `labels.npy`.
/// Class count is 10, or 100 when a label ≥ 10 appears (callers that know the dataset should
/// use [`super::load_corrupted`], which sets it from the dataset kind).
pub fn load_corruption(
    dir: &Path,
    corruption: &str,
    severities: &[u8],
) -> Result<ImageSet, DataError> {
    super::check_plain_name("corruption", corruption)?;
    super::check_severities(severities)?;
    let lab_path = dir.join("labels.npy");
    let img_path = dir.join(format!("{corruption}.npy"));
    if !lab_path.is_file() {
        return Err(DataError::not_found(
            "cifar10-c/cifar100-c",
            dir,
            DatasetKind::Cifar10C.expected_layout(),
        ));
    }
    if !img_path.is_file() {
        let have = list_corruptions(dir);
        return Err(DataError::Invalid(format!(
            "corruption '{corruption}' not found: no {} (available: {})",
            img_path.display(),
            if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            }
        )));
    }
    let labels_all = read_labels(&lab_path)?;
    let arr = read_npy(&img_path)?;
    if arr.dtype != NpyDType::U8 {
        return Err(DataError::malformed(
            &img_path,
            format!("images have dtype {}, expected uint8", arr.dtype.descr()),
        ));
    }
    let (m, h, w, c) = match arr.shape[..] {
        [m, h, w, c] if c == 3 || c == 1 => (m, h, w, c),
        _ => {
            return Err(DataError::malformed(
                &img_path,
                format!("images have shape {:?}, expected N×H×W×3", arr.shape),
            ))
        }
    };
    if m == 0 || m % 5 != 0 {
        return Err(DataError::malformed(
            &img_path,
            format!("{m} images is not 5 severities of equal size"),
        ));
    }
    let per = m / 5;
    if labels_all.len() != m && labels_all.len() != per {
        return Err(DataError::malformed(
            &lab_path,
            format!(
                "{} labels do not match {} ({m} images, {per} per severity)",
                labels_all.len(),
                img_path.display()
            ),
        ));
    }
    if let Some(&bad) = labels_all.iter().find(|&&l| !(0..100).contains(&l)) {
        return Err(DataError::malformed(
            &lab_path,
            format!("label {bad} is outside 0..100"),
        ));
    }
    let num_classes = if labels_all.iter().any(|&l| l >= 10) {
        100
    } else {
        10
    };

    let img = h * w * c;
    let mut pixels = Vec::with_capacity(severities.len() * per * img);
    let mut labels = Vec::with_capacity(severities.len() * per);
    for &s in severities {
        let start = (s as usize - 1) * per;
        super::hwc_to_chw_into(
            &arr.data[start * img..(start + per) * img],
            per,
            h,
            w,
            c,
            &mut pixels,
        );
        if labels_all.len() == m {
            labels.extend_from_slice(&labels_all[start..start + per]);
        } else {
            labels.extend_from_slice(&labels_all);
        }
    }
    let class_names = if num_classes == 10 {
        super::cifar::CIFAR10_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        super::cifar::CIFAR100_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    Ok(ImageSet {
        n: labels.len(),
        channels: c,
        height: h,
        width: w,
        pixels,
        labels,
        num_classes,
        class_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(STANDARD_15.len(), 15);
        assert_eq!(PUBLISHED_18.len(), 18);
        assert!(!PUBLISHED_18.contains(&"glass_blur"));
        for c in STANDARD_15.iter().filter(|&&c| c != "glass_blur") {
            assert!(PUBLISHED_18.contains(c));
        }
    }

    #[test]
    fn severities_checked() {
        let d = std::env::temp_dir();
        assert!(load_corruption(&d, "fog", &[0]).is_err());
        assert!(load_corruption(&d, "fog", &[6]).is_err());
        assert!(load_corruption(&d, "../fog", &[1]).is_err());
    }
}
