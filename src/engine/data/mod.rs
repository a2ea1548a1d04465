//! Datasets as researchers already have them on disk (SPEC §5), decoded once into one
//! contiguous `uint8` cache (`N×C×H×W`, channel-first like torch). Batching later only indexes
//! that cache (see [`augment`]). Nothing here depends on libtorch.
//!
//! Every malformed input is an `Err` naming the file; no header size is trusted before it has
//! been checked against the length of the file that carries it.

pub mod augment;
pub mod cifar;
pub mod cifar_c;
pub mod decode_pool;
pub mod error;
mod files;
pub mod image_decode;
pub mod image_folder;
pub mod imagenet;
pub mod mnist;
pub mod mnist_c;
pub mod npy;
pub mod preprocess;
pub mod tiny_imagenet;

pub use augment::{gather_batch, shuffled_batches, Augmenter};
pub use cifar_c::{list_corruptions, load_corruption, PUBLISHED_18, STANDARD_15};
pub use error::DataError;
pub use imagenet::{LoadOptions, Subset};
pub use npy::{encode_npy, parse_npy, read_npy, write_npy_f32, NpyArray, NpyDType};
pub use tiny_imagenet::load_corruption_tin;

pub(crate) use files::{
    check_plain_name, check_severities, file_name, has_ext, hwc_to_chw_into, hwc_to_chw_into_slice,
    read_file, read_maybe_gz, sorted_entries, sorted_subdirs,
};

use std::path::Path;

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
    /// ImageNet (ILSVRC-2012) as distributed: `train/<wnid>/`, `val/<wnid>/`.
    ImageNet,
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
            "imagenet" | "imagenet1k" | "ilsvrc2012" => DatasetKind::ImageNet,
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
            DatasetKind::ImageNet => "imagenet",
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
            DatasetKind::TinyImageNet
            | DatasetKind::TinyImageNetC
            | DatasetKind::ImageFolder
            | DatasetKind::ImageNet => (IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec()),
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
            DatasetKind::ImageNet => Some(imagenet::NUM_CLASSES),
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
            // The size is the preprocessing's (`--preprocess`).
            DatasetKind::ImageFolder | DatasetKind::ImageNet => None,
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
            DatasetKind::ImageNet => concat!(
                "  <data_dir>/train/<wnid>/*.JPEG and <data_dir>/val/<wnid>/*.JPEG (ILSVRC-2012 as distributed,\n",
                "  the validation images sorted into their synset folders); labels are the standard\n",
                "  1000-synset order; some synsets may be absent; --subset robustbench reads robustbench's\n",
                "  5,000 listed validation images; --preprocess NAME resizes (e.g. Res256Crop224)\n",
                "  (<data_dir> may also be the parent of an imagenet/ or ILSVRC2012/ folder)"
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
    load_split_with(kind, data_dir, split, &LoadOptions::default())
}

/// [`load_split`] with reading options: a preprocessing (ImageNet and image folders), and
/// for ImageNet's evaluation split robustbench's subset and a limit (the first N images,
/// decoded alone). Options a dataset cannot honour are refused, never ignored.
pub fn load_split_with(
    kind: DatasetKind,
    data_dir: &Path,
    split: Split,
    opts: &LoadOptions,
) -> Result<ImageSet, DataError> {
    if opts.subset != Subset::All && kind != DatasetKind::ImageNet {
        return Err(DataError::Invalid(format!(
            "--subset {} is only for --dataset imagenet, not {kind}",
            opts.subset.name()
        )));
    }
    let prep = opts
        .preprocess
        .filter(|p| *p != preprocess::Preprocess::None);
    if let Some(p) = prep {
        if !matches!(kind, DatasetKind::ImageNet | DatasetKind::ImageFolder) {
            return Err(DataError::Invalid(format!(
                "--preprocess {p} is only for --dataset imagenet or imagefolder; {kind} images have a fixed size"
            )));
        }
    }
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
        DatasetKind::ImageFolder => image_folder::load(data_dir, split, prep)?,
        DatasetKind::ImageNet => imagenet::load(data_dir, split, opts)?,
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
        assert_eq!(
            DatasetKind::parse("ImageNet").unwrap(),
            DatasetKind::ImageNet
        );
        assert!(DatasetKind::parse("imagenet21k").is_err());
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
