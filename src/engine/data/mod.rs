//! Datasets as researchers already have them on disk (SPEC §5), decoded once into one
//! contiguous `uint8` cache (`N×C×H×W`, channel-first like torch). Batching later only indexes
//! that cache (see [`augment`]). Nothing here depends on libtorch.
//!
//! Every malformed input is an `Err` naming the file; no header size is trusted before it has
//! been checked against the length of the file that carries it.

pub mod augment;
pub mod cifar;
pub mod cifar_c;
pub mod error;
pub mod image_folder;
pub mod mnist;
pub mod mnist_c;
pub mod npy;
pub mod preprocess;
pub mod tiny_imagenet;

pub use augment::{gather_batch, shuffled_batches, Augmenter};
pub use cifar_c::{list_corruptions, load_corruption, PUBLISHED_18, STANDARD_15};
pub use error::DataError;
pub use npy::{encode_npy, parse_npy, read_npy, write_npy_f32, NpyArray, NpyDType};
pub use tiny_imagenet::load_corruption_tin;

use std::path::{Path, PathBuf};

/// `n` images, `uint8`, stored `n×channels×height×width` contiguous (channel-first, like
/// torch), labels as `i64` in `0..num_classes`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
    pub num_classes: usize,
    pub class_names: Vec<String>,
}

impl ImageSet {
    /// Bytes per image (`channels·height·width`).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The `i`-th image, `C×H×W`. Panics if `i >= n` (a caller bug, not an input error).
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.image_len();
        &self.pixels[i * len..(i + 1) * len]
    }

    /// Check the internal consistency of the set (sizes and label range).
    pub fn validate(&self) -> Result<(), DataError> {
        let want = self
            .n
            .checked_mul(self.image_len())
            .ok_or_else(|| DataError::Invalid("image set size overflows".into()))?;
        if self.pixels.len() != want {
            return Err(DataError::Invalid(format!(
                "image set holds {} pixel bytes, expected {} ({}×{}×{}×{})",
                self.pixels.len(),
                want,
                self.n,
                self.channels,
                self.height,
                self.width
            )));
        }
        if self.labels.len() != self.n {
            return Err(DataError::Invalid(format!(
                "image set has {} labels for {} images",
                self.labels.len(),
                self.n
            )));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l < 0 || l as usize >= self.num_classes)
        {
            return Err(DataError::Invalid(format!(
                "label {l} of image {i} is outside 0..{}",
                self.num_classes
            )));
        }
        Ok(())
    }

    /// A new set holding the images at `indices` (in that order).
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::new();
        gather_batch(self, indices, &mut pixels);
        ImageSet {
            n: indices.len(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            num_classes: self.num_classes,
            class_names: self.class_names.clone(),
        }
    }
}

/// Which split of a dataset. For Tiny-ImageNet and ImageFolder `Test` is the validation
/// folder when no test folder exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// The dataset families rift can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    Cifar10,
    Cifar100,
    Cifar10C,
    Cifar100C,
    TinyImageNet,
    TinyImageNetC,
    Mnist,
    /// MNIST-C (Mu & Gilmer 2019): MNIST's test set under 15 corruptions, one severity.
    MnistC,
    ImageFolder,
}

/// ImageNet channel statistics (also used by Tiny-ImageNet and generic image folders).
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// CIFAR statistics used by the RiFT code for both CIFAR-10 and CIFAR-100 (SPEC).
const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
const CIFAR_STD: [f32; 3] = [0.2471, 0.2435, 0.2616];

impl DatasetKind {
    /// Parse a dataset name, case-insensitively; `-`/`_` and spacing variants such as
    /// `cifar-10`, `CIFAR10-C`, `tiny_imagenet`, `tinyimagenet-c`, `image-folder` are accepted.
    pub fn parse(name: &str) -> Result<Self, DataError> {
        let key: String = name
            .trim()
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' ' | '.'))
            .flat_map(|c| c.to_lowercase())
            .collect();
        Ok(match key.as_str() {
            "cifar10" => DatasetKind::Cifar10,
            "cifar100" => DatasetKind::Cifar100,
            "cifar10c" => DatasetKind::Cifar10C,
            "cifar100c" => DatasetKind::Cifar100C,
            "tinyimagenet" | "tinyimagenet200" => DatasetKind::TinyImageNet,
            "tinyimagenetc" | "tinyimagenet200c" => DatasetKind::TinyImageNetC,
            "mnist" => DatasetKind::Mnist,
            "mnistc" => DatasetKind::MnistC,
            "imagefolder" | "folder" => DatasetKind::ImageFolder,
            _ => return Err(DataError::UnknownDataset(name.to_string())),
        })
    }

    /// Canonical lower-case name, the inverse of [`DatasetKind::parse`].
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Cifar10C => "cifar10-c",
            DatasetKind::Cifar100C => "cifar100-c",
            DatasetKind::TinyImageNet => "tiny-imagenet",
            DatasetKind::TinyImageNetC => "tiny-imagenet-c",
            DatasetKind::Mnist => "mnist",
            DatasetKind::MnistC => "mnist-c",
            DatasetKind::ImageFolder => "imagefolder",
        }
    }

    /// Per-channel normalisation statistics, applied inside the model (SPEC §0).
    ///
    /// * CIFAR-10/100 and their -C variants: mean (0.4914, 0.4822, 0.4465), std (0.2471,
    ///   0.2435, 0.2616) — the CIFAR-10 statistics, which the RiFT code also uses for
    ///   CIFAR-100.
    /// * Tiny-ImageNet(-C) and ImageFolder: ImageNet mean (0.485, 0.456, 0.406), std (0.229,
    ///   0.224, 0.225).
    /// * MNIST: the usual (0.1307,) / (0.3081,) of the training set (one channel).
    pub fn mean_std(self) -> (Vec<f32>, Vec<f32>) {
        match self {
            DatasetKind::Cifar10
            | DatasetKind::Cifar100
            | DatasetKind::Cifar10C
            | DatasetKind::Cifar100C => (CIFAR_MEAN.to_vec(), CIFAR_STD.to_vec()),
            DatasetKind::TinyImageNet | DatasetKind::TinyImageNetC | DatasetKind::ImageFolder => {
                (IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec())
            }
            DatasetKind::Mnist | DatasetKind::MnistC => (vec![0.1307], vec![0.3081]),
        }
    }

    /// Number of classes when fixed by the dataset (`None` for ImageFolder).
    pub fn num_classes(self) -> Option<usize> {
        match self {
            DatasetKind::Cifar10
            | DatasetKind::Cifar10C
            | DatasetKind::Mnist
            | DatasetKind::MnistC => Some(10),
            DatasetKind::Cifar100 | DatasetKind::Cifar100C => Some(100),
            DatasetKind::TinyImageNet | DatasetKind::TinyImageNetC => Some(200),
            DatasetKind::ImageFolder => None,
        }
    }

    /// The corrupted test set of a clean dataset (its default OOD set), if it has one.
    pub fn corrupted(self) -> Option<DatasetKind> {
        match self {
            DatasetKind::Cifar10 => Some(DatasetKind::Cifar10C),
            DatasetKind::Cifar100 => Some(DatasetKind::Cifar100C),
            DatasetKind::TinyImageNet => Some(DatasetKind::TinyImageNetC),
            // Not MNIST-C: it is opt-in (`--ood-dataset mnist-c`), so MNIST sessions made
            // before it existed continue with the same settings.
            _ => None,
        }
    }

    /// Image geometry `(channels, height, width)` when fixed by the dataset.
    pub fn image_shape(self) -> Option<(usize, usize, usize)> {
        match self {
            DatasetKind::Cifar10
            | DatasetKind::Cifar100
            | DatasetKind::Cifar10C
            | DatasetKind::Cifar100C => Some((3, 32, 32)),
            DatasetKind::TinyImageNet | DatasetKind::TinyImageNetC => Some((3, 64, 64)),
            DatasetKind::Mnist | DatasetKind::MnistC => Some((1, 28, 28)),
            DatasetKind::ImageFolder => None,
        }
    }

    /// Multi-line description of the accepted directory layouts, shown in errors.
    /// `<data_dir>` stands for the directory the user passed.
    pub fn expected_layout(self) -> &'static str {
        match self {
            DatasetKind::Cifar10 => concat!(
                "  <data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch} (torchvision pickles)\n",
                "  or <data_dir>/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin (binary version)\n",
                "  (<data_dir> may also be the batches folder itself)"
            ),
            DatasetKind::Cifar100 => concat!(
                "  <data_dir>/cifar-100-python/{train,test} (torchvision pickles, fine_labels)\n",
                "  or <data_dir>/cifar-100-binary/{train,test}.bin (binary version)\n",
                "  (<data_dir> may also be that folder itself)"
            ),
            DatasetKind::Cifar10C => concat!(
                "  <data_dir>/<corruption>.npy (50000×32×32×3 uint8, severities 1..5 in order) and labels.npy\n",
                "  or the same files under <data_dir>/CIFAR-10-C/"
            ),
            DatasetKind::Cifar100C => concat!(
                "  <data_dir>/<corruption>.npy (50000×32×32×3 uint8, severities 1..5 in order) and labels.npy\n",
                "  or the same files under <data_dir>/CIFAR-100-C/"
            ),
            DatasetKind::TinyImageNet => concat!(
                "  <data_dir>/tiny-imagenet-200/wnids.txt\n",
                "  <data_dir>/tiny-imagenet-200/train/<wnid>/images/*.JPEG\n",
                "  <data_dir>/tiny-imagenet-200/val/images/*.JPEG with val/val_annotations.txt (raw download)\n",
                "    or val/<wnid>/images/*.JPEG or val/<wnid>/*.JPEG (re-sorted)\n",
                "  (<data_dir> may also be the tiny-imagenet-200 folder itself)"
            ),
            DatasetKind::TinyImageNetC => concat!(
                "  <data_dir>/<corruption>/<severity 1..5>/<wnid>/*.JPEG\n",
                "  or the same under <data_dir>/Tiny-ImageNet-C/"
            ),
            DatasetKind::Mnist => concat!(
                "  <data_dir>/{train-images-idx3-ubyte,train-labels-idx1-ubyte,\n",
                "              t10k-images-idx3-ubyte,t10k-labels-idx1-ubyte}[.gz]\n",
                "  or the same under <data_dir>/MNIST/raw/ (torchvision) or <data_dir>/mnist/"
            ),
            DatasetKind::MnistC => concat!(
                "  <data_dir>/<corruption>/test_images.npy (N×28×28×1 uint8) and test_labels.npy,\n",
                "  as mnist_c.zip unpacks (one folder per corruption, one severity each),\n",
                "  or the same under <data_dir>/mnist_c/"
            ),
            DatasetKind::ImageFolder => concat!(
                "  <data_dir>/train/<class>/*.{jpg,jpeg,png}\n",
                "  <data_dir>/test/<class>/*.{jpg,jpeg,png} (or <data_dir>/val/<class>/...)\n",
                "  classes are the sub-folder names, sorted; all images must share one size"
            ),
        }
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        DatasetKind::parse(s)
    }
}

/// Load one split of a clean dataset. The corruption datasets need a corruption name and
/// severities: use [`load_corruption`] / [`load_corruption_tin`] (or [`load_corrupted`]).
pub fn load_split(kind: DatasetKind, data_dir: &Path, split: Split) -> Result<ImageSet, DataError> {
    if !data_dir.is_dir() {
        return Err(DataError::not_found(
            kind.name(),
            data_dir,
            kind.expected_layout(),
        ));
    }
    let set = match kind {
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => cifar::load(kind, data_dir, split)?,
        DatasetKind::TinyImageNet => tiny_imagenet::load(data_dir, split)?,
        DatasetKind::Mnist => mnist::load(data_dir, split)?,
        DatasetKind::ImageFolder => image_folder::load(data_dir, split)?,
        DatasetKind::Cifar10C
        | DatasetKind::Cifar100C
        | DatasetKind::TinyImageNetC
        | DatasetKind::MnistC => {
            return Err(DataError::Invalid(format!(
                "{kind} has no train/test split: load one corruption at chosen severities \
                 (load_corruption / load_corruption_tin); expected layout:\n{}",
                kind.expected_layout()
                    .replace("<data_dir>", &data_dir.display().to_string())
            )))
        }
    };
    set.validate()?;
    Ok(set)
}

/// How many images of `set` (one corruption loaded by [`load_corrupted`] at `severities`)
/// belong to each severity, in order. CIFAR-C files hold equal blocks (10,000 each);
/// Tiny-ImageNet-C severity folders are counted, as they may differ. Errs when the sizes
/// do not add up to the set (the files changed between the two reads).
pub fn severity_sizes(
    kind: DatasetKind,
    data_dir: &Path,
    corruption: &str,
    severities: &[u8],
    set: &ImageSet,
) -> Result<Vec<usize>, DataError> {
    let sizes = match kind {
        DatasetKind::TinyImageNetC => {
            let dir = tiny_imagenet::find_c_dir(data_dir)?;
            tiny_imagenet::severity_sizes_tin(&dir, corruption, severities)?
        }
        _ => vec![set.n / severities.len().max(1); severities.len()],
    };
    if sizes.iter().sum::<usize>() != set.n {
        return Err(DataError::Invalid(format!(
            "{corruption}: the severities {severities:?} hold {sizes:?} images, {} in all, but {} were loaded",
            sizes.iter().sum::<usize>(),
            set.n
        )));
    }
    Ok(sizes)
}

/// Load one corruption of a -C dataset at the given severities (1..=5, in the given order).
/// `data_dir` may be the folder holding the corruptions or its parent (`CIFAR-10-C`,
/// `CIFAR-100-C`, `Tiny-ImageNet-C`).
pub fn load_corrupted(
    kind: DatasetKind,
    data_dir: &Path,
    corruption: &str,
    severities: &[u8],
) -> Result<ImageSet, DataError> {
    let set = match kind {
        DatasetKind::Cifar10C | DatasetKind::Cifar100C => {
            let dir = cifar_c::find_dir(kind, data_dir)?;
            let mut set = load_corruption(&dir, corruption, severities)?;
            if kind == DatasetKind::Cifar100C {
                set.num_classes = 100;
                set.class_names = cifar::CIFAR100_CLASSES
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            }
            set
        }
        DatasetKind::TinyImageNetC => {
            let dir = tiny_imagenet::find_c_dir(data_dir)?;
            load_corruption_tin(&dir, corruption, severities)?
        }
        DatasetKind::MnistC => {
            let dir = mnist_c::find_dir(data_dir)?;
            mnist_c::load_corruption(&dir, corruption, severities)?
        }
        other => {
            return Err(DataError::Invalid(format!(
                "{other} is not a corruption dataset (use cifar10-c, cifar100-c, tiny-imagenet-c or mnist-c)"
            )))
        }
    };
    set.validate()?;
    Ok(set)
}

// ---------------------------------------------------------------------------------------
// Small shared helpers.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        for (s, k) in [
            ("cifar10", DatasetKind::Cifar10),
            ("CIFAR-10", DatasetKind::Cifar10),
            ("cifar_100", DatasetKind::Cifar100),
            ("cifar10-c", DatasetKind::Cifar10C),
            ("CIFAR-100-C", DatasetKind::Cifar100C),
            ("tiny-imagenet", DatasetKind::TinyImageNet),
            ("Tiny-ImageNet-C", DatasetKind::TinyImageNetC),
            ("mnist", DatasetKind::Mnist),
            ("ImageFolder", DatasetKind::ImageFolder),
        ] {
            assert_eq!(DatasetKind::parse(s).unwrap(), k, "{s}");
            assert_eq!(DatasetKind::parse(k.name()).unwrap(), k);
        }
        assert!(DatasetKind::parse("imagenet").is_err());
    }

    #[test]
    fn hwc_to_chw() {
        // 1 image 2x2x3
        let src: Vec<u8> = (0..12).collect();
        let mut out = Vec::new();
        hwc_to_chw_into(&src, 1, 2, 2, 3, &mut out);
        assert_eq!(out, vec![0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]);
    }

    #[test]
    fn missing_dir_message() {
        let e = load_split(
            DatasetKind::Cifar10,
            Path::new("/nonexistent/data"),
            Split::Train,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/nonexistent/data/cifar-10-batches-py"), "{e}");
        assert!(
            e.starts_with("dataset cifar10 not found under /nonexistent/data"),
            "{e}"
        );
    }
}
