//! MNIST-C (Mu & Gilmer, 2019), the corrupted MNIST test set, as its `mnist_c.zip`
//! unpacks: `mnist_c/<corruption>/test_images.npy` (N×28×28×1 uint8) and
//! `test_labels.npy` (N integers), one folder per corruption (`shot_noise`, `fog`,
//! `canny_edges`, ...). Each corruption has a single severity, so MNIST-C is read at
//! severity 1 only. The `identity` folder (the clean test set, shipped for comparison) is
//! not a corruption and is not listed; `train_*.npy` files are never read.
use super::error::DataError;
use super::npy::{read_npy, NpyDType};
use super::{DatasetKind, ImageSet};
use std::path::{Path, PathBuf};

const IMAGES: &str = "test_images.npy";
const LABELS: &str = "test_labels.npy";
/// The clean images MNIST-C ships beside its corruptions.
const CLEAN: &str = "identity";

/// A corruption folder: holds both test files.
fn is_corruption(dir: &Path) -> bool {
    dir.join(IMAGES).is_file() && dir.join(LABELS).is_file()
}

/// Resolve the folder holding the corruption folders: `data_dir` itself, or
/// `data_dir/mnist_c` (`MNIST-C`, `mnist-c` too).
pub fn find_dir(data_dir: &Path) -> Result<PathBuf, DataError> {
    let holds_some = |d: &Path| {
        super::sorted_entries(d, |p| p.is_dir() && is_corruption(p))
            .map(|v| !v.is_empty())
            .unwrap_or(false)
    };
    for sub in ["mnist_c", "MNIST-C", "mnist-c", "MNIST_C"] {
        let d = data_dir.join(sub);
        if holds_some(&d) {
            return Ok(d);
        }
    }
    if holds_some(data_dir) {
        return Ok(data_dir.to_path_buf());
    }
    Err(DataError::not_found(
        DatasetKind::MnistC.name(),
        data_dir,
        DatasetKind::MnistC.expected_layout(),
    ))
}

/// The corruptions in `dir` (folders holding both test files, `identity` aside), sorted.
pub fn list_corruptions(dir: &Path) -> Vec<String> {
    super::sorted_entries(dir, |p| p.is_dir() && is_corruption(p))
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.file_name().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| s != CLEAN && !s.starts_with('.'))
        .collect()
}

/// One corruption's test images and labels. `severities` must be `[1]`: MNIST-C has one
/// severity per corruption.
pub fn load_corruption(
    dir: &Path,
    corruption: &str,
    severities: &[u8],
) -> Result<ImageSet, DataError> {
    super::check_plain_name("corruption", corruption)?;
    if severities != [1] {
        return Err(DataError::Invalid(format!(
            "MNIST-C has one severity per corruption, but severities {severities:?} were asked for: use --severities 1"
        )));
    }
    let folder = dir.join(corruption);
    if !is_corruption(&folder) {
        return Err(DataError::Invalid(format!(
            "corruption '{corruption}' not found: no {} with {LABELS} (available: {})",
            folder.join(IMAGES).display(),
            match list_corruptions(dir) {
                v if v.is_empty() => "none".to_string(),
                v => v.join(", "),
            }
        )));
    }
    let (img_path, lab_path) = (folder.join(IMAGES), folder.join(LABELS));
    let arr = read_npy(&img_path)?;
    if arr.dtype != NpyDType::U8 {
        return Err(DataError::malformed(
            &img_path,
            format!("images have dtype {}, expected uint8", arr.dtype.descr()),
        ));
    }
    let (n, h, w) = match arr.shape[..] {
        [n, h, w, 1] | [n, h, w] => (n, h, w),
        _ => {
            return Err(DataError::malformed(
                &img_path,
                format!("images have shape {:?}, expected N×28×28×1", arr.shape),
            ))
        }
    };
    let labels_arr = read_npy(&lab_path)?;
    if labels_arr.shape.len() != 1 || labels_arr.dtype.descr().contains('f') {
        return Err(DataError::malformed(
            &lab_path,
            format!(
                "labels have shape {:?} and dtype {}, expected N integers",
                labels_arr.shape,
                labels_arr.dtype.descr()
            ),
        ));
    }
    let labels = labels_arr.to_i64().map_err(|e| e.in_file(&lab_path))?;
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
    if let Some(&bad) = labels.iter().find(|&&l| !(0..10).contains(&l)) {
        return Err(DataError::malformed(
            &lab_path,
            format!("label {bad} is outside 0..10"),
        ));
    }
    Ok(ImageSet {
        n,
        channels: 1,
        height: h,
        width: w,
        pixels: arr.data[..n * h * w].to_vec(),
        labels,
        num_classes: 10,
        class_names: (0..10).map(|d| d.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::data::npy::encode_npy;

    fn write(dir: &Path, corruption: &str, n: usize, label: u8) {
        let d = dir.join(corruption);
        std::fs::create_dir_all(&d).unwrap();
        let pixels: Vec<u8> = (0..n * 784).map(|i| (i % 251) as u8).collect();
        let images = encode_npy(NpyDType::U8, &[n, 28, 28, 1], &pixels).unwrap();
        let labels = encode_npy(NpyDType::U8, &[n], &vec![label; n]).unwrap();
        std::fs::write(d.join(IMAGES), images).unwrap();
        std::fs::write(d.join(LABELS), labels).unwrap();
    }

    #[test]
    fn corruptions_are_found_under_mnist_c_and_read_at_severity_one() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mnist_c");
        write(&dir, "fog", 3, 7);
        write(&dir, "canny_edges", 2, 1);
        write(&dir, CLEAN, 2, 0);
        assert_eq!(find_dir(root.path()).unwrap(), dir);
        assert_eq!(list_corruptions(&dir), ["canny_edges", "fog"]);
        let set = load_corruption(&dir, "fog", &[1]).unwrap();
        assert_eq!((set.n, set.channels, set.height, set.width), (3, 1, 28, 28));
        assert_eq!(set.labels, [7, 7, 7]);
        assert_eq!(set.pixels[785], (785 % 251) as u8);
        let err = load_corruption(&dir, "fog", &[1, 2])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--severities 1"), "{err}");
        let err = load_corruption(&dir, "snow", &[1]).unwrap_err().to_string();
        assert!(err.contains("canny_edges, fog"), "{err}");
        assert!(find_dir(&root.path().join("nothing")).is_err());
    }
}
