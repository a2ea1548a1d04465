//! ImageNet (ILSVRC-2012) as distributed: `<data_dir>/train/<wnid>/*.JPEG` and
//! `<data_dir>/val/<wnid>/*.JPEG`. Labels follow the standard 1000-synset order (the sorted
//! wnids, robustbench's `imagenet_class_to_id_map.json`), embedded here, so a directory
//! holding only some synsets keeps their standard indices and the set has 1000 classes.
//!
//! `Subset::RobustBench` is robustbench's fixed 5,000-image evaluation list
//! (`helper_files/imagenet_test_image_ids.txt`, embedded), in its order, as its
//! `load_imagenet` reads it. Images are decoded and preprocessed on every core
//! ([`super::decode_pool`]); only preprocessed images are held.

use super::decode_pool::decode_files_with;
use super::error::DataError;
use super::preprocess::Preprocess;
use super::{DatasetKind, ImageSet, Split};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The 1000 ImageNet synsets in their standard (class index) order, one per line.
pub const WNIDS_TXT: &str = include_str!("../../../assets/imagenet/wnids.txt");
/// robustbench's 5,000 evaluation images, `wnid/FILE.JPEG` one per line, in its order.
pub const ROBUSTBENCH_IDS_TXT: &str =
    include_str!("../../../assets/imagenet/robustbench_test_image_ids.txt");
/// Number of ImageNet classes.
pub const NUM_CLASSES: usize = 1000;

/// The standard wnid list (index = class label).
pub fn wnids() -> Vec<&'static str> {
    WNIDS_TXT.lines().filter(|l| !l.is_empty()).collect()
}

/// robustbench's evaluation list, `(wnid, file name)` in its order.
pub fn robustbench_ids() -> Vec<(&'static str, &'static str)> {
    ROBUSTBENCH_IDS_TXT
        .lines()
        .filter_map(|l| l.trim().split_once('/'))
        .collect()
}

/// Which images of the evaluation split to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Subset {
    /// Every image under `val/`, class by class in the standard order, files sorted.
    #[default]
    All,
    /// robustbench's fixed 5,000-image list, in its order.
    RobustBench,
}

impl Subset {
    pub fn parse(name: &str) -> Result<Subset, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "robustbench" => Ok(Subset::RobustBench),
            "all" => Ok(Subset::All),
            _ => Err(format!(
                "unknown --subset '{name}': expected robustbench (robustbench's fixed 5,000 ImageNet validation images) or all"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Subset::All => "all",
            Subset::RobustBench => "robustbench",
        }
    }
}

/// How a folder dataset is read: the preprocessing applied to each image, and, for the
/// evaluation split, which images and how many of them (the first `limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    pub preprocess: Option<Preprocess>,
    pub subset: Subset,
    pub limit: Option<usize>,
}

const MIXED_SIZES_HINT: &str = "; ImageNet images differ in size: choose an evaluation \
     preprocessing, e.g. --preprocess Res256Crop224 (robustbench's default for ImageNet)";

fn layout_error(data_dir: &Path) -> DataError {
    DataError::not_found(
        "imagenet",
        data_dir,
        DatasetKind::ImageNet.expected_layout(),
    )
}

/// The class folders of `split_dir` with their standard labels; an unknown folder name is
/// an error naming it.
fn class_dirs(split_dir: &Path) -> Result<Vec<(PathBuf, i64)>, DataError> {
    let index: HashMap<&str, usize> = wnids().into_iter().zip(0..).collect();
    let mut out = Vec::new();
    for d in super::sorted_subdirs(split_dir)? {
        let name = super::file_name(&d);
        let label = *index.get(name.as_str()).ok_or_else(|| {
            DataError::Invalid(format!(
                "{}: '{name}' is not one of the 1000 ImageNet synsets (wnids such as n01440764); \
                 expected {}/<wnid>/*.JPEG with the standard ILSVRC-2012 class folders",
                d.display(),
                split_dir.display()
            ))
        })?;
        out.push((d, label as i64));
    }
    out.sort_by_key(|(_, l)| *l);
    Ok(out)
}

/// robustbench's list (its first `limit` entries) resolved under `val_dir`; every file
/// read must exist (robustbench opens only the first `n_examples` too).
fn robustbench_files(
    val_dir: &Path,
    limit: Option<usize>,
) -> Result<Vec<(PathBuf, i64)>, DataError> {
    let index: HashMap<&str, usize> = wnids().into_iter().zip(0..).collect();
    let mut ids = robustbench_ids();
    let listed = ids.len();
    ids.truncate(limit.unwrap_or(listed));
    let mut files = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    for (wnid, file) in ids {
        let label = *index.get(wnid).ok_or_else(|| {
            DataError::Invalid(format!("robustbench's list names an unknown synset {wnid}"))
        })?;
        let p = val_dir.join(wnid).join(file);
        if !p.is_file() {
            missing.push(p.clone());
        }
        files.push((p, label as i64));
    }
    if let Some(first) = missing.first() {
        return Err(DataError::Invalid(format!(
            "--subset robustbench: {} of the {} images read from robustbench's ImageNet list \
             (of {listed}) are missing under {}, the first being {}; that list needs the \
             ILSVRC-2012 validation set sorted into val/<wnid>/ folders",
            missing.len(),
            files.len(),
            val_dir.display(),
            first.display()
        )));
    }
    Ok(files)
}

/// Load one split. `Split::Test` reads `val/`; `opts.subset` and `opts.limit` apply to it
/// only (the training split is always read whole).
pub(crate) fn load(
    data_dir: &Path,
    split: Split,
    opts: &LoadOptions,
) -> Result<ImageSet, DataError> {
    // `--data-dir` may be the ImageNet folder itself or its parent (`./data/imagenet`).
    let root = ["imagenet", "ILSVRC2012"]
        .iter()
        .map(|d| data_dir.join(d))
        .find(|d| !data_dir.join("val").is_dir() && d.join("val").is_dir())
        .unwrap_or_else(|| data_dir.to_path_buf());
    let split_dir = root.join(match split {
        Split::Train => "train",
        Split::Test => "val",
    });
    if !split_dir.is_dir() {
        return Err(layout_error(data_dir));
    }
    // Always check the folder names, also when a list picks the files.
    let classes = class_dirs(&split_dir)?;
    let mut files = match (split, opts.subset) {
        (Split::Test, Subset::RobustBench) => robustbench_files(&split_dir, opts.limit)?,
        _ => {
            let mut files = Vec::new();
            for (d, label) in &classes {
                files.extend(
                    super::image_folder::image_files(d)?
                        .into_iter()
                        .map(|p| (p, *label)),
                );
            }
            files
        }
    };
    if split == Split::Test {
        if let Some(n) = opts.limit {
            files.truncate(n);
        }
    }
    if files.is_empty() {
        return Err(DataError::Invalid(format!(
            "no .JPEG images under {}/<wnid>/ (expected layout:\n{})",
            split_dir.display(),
            DatasetKind::ImageNet.expected_layout()
        )));
    }
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let prep = opts.preprocess.unwrap_or(Preprocess::None);
    let (height, width, pixels) = decode_files_with(&paths, prep, MIXED_SIZES_HINT)?;
    Ok(ImageSet {
        n: files.len(),
        channels: 3,
        height,
        width,
        pixels,
        labels: files.iter().map(|(_, l)| *l).collect(),
        num_classes: NUM_CLASSES,
        class_names: wnids().into_iter().map(str::to_string).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_lists() {
        let w = wnids();
        assert_eq!(w.len(), NUM_CLASSES);
        assert_eq!(w[0], "n01440764");
        let mut sorted = w.clone();
        sorted.sort();
        assert_eq!(sorted, w, "the standard order is the sorted wnids");
        let ids = robustbench_ids();
        assert_eq!(ids.len(), 5000);
        assert!(ids.iter().all(|(wnid, _)| w.contains(wnid)));
    }

    #[test]
    fn subset_names() {
        assert_eq!(Subset::parse("RobustBench").unwrap(), Subset::RobustBench);
        assert!(Subset::parse("rb").unwrap_err().contains("robustbench"));
    }
}
