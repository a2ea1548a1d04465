//! Parallel decode of a file list into the uint8 cache (`decode_pool.rs`), and the generic
//! `train/<class>/*.png|jpg` ImageFolder layout. The decoders are `image_decode.rs`.

use super::decode_pool::decode_files_with;
use super::error::DataError;
pub use super::image_decode::{decode_image_file, decode_jpeg, decode_png, Rgb, IMAGE_EXTS};
use super::preprocess::Preprocess;
use super::{DatasetKind, ImageSet, Split};
use std::path::{Path, PathBuf};

/// Decode `files` (all of one size) into a `N×3×H×W` cache, using all cores. Errors name the
/// first bad file in list order.
pub fn decode_files(files: &[PathBuf]) -> Result<(usize, usize, Vec<u8>), DataError> {
    decode_files_with(files, Preprocess::None, "")
}

/// Image files under `dir` (recursively), sorted by path for determinism.
pub(crate) fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    for p in super::sorted_entries(dir, |p| !super::file_name(p).starts_with('.'))? {
        if p.is_dir() {
            out.extend(image_files(&p)?);
        } else if super::has_ext(&p, &IMAGE_EXTS) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Stack labelled image files into an [`ImageSet`].
pub(crate) fn build_set(
    files: Vec<(PathBuf, i64)>,
    class_names: Vec<String>,
) -> Result<ImageSet, DataError> {
    build_set_with(files, class_names, None)
}

/// [`build_set`] with an evaluation preprocessing applied to every image as it is decoded.
pub(crate) fn build_set_with(
    files: Vec<(PathBuf, i64)>,
    class_names: Vec<String>,
    prep: Option<Preprocess>,
) -> Result<ImageSet, DataError> {
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let hint = "; give --preprocess NAME (e.g. Res256Crop224) to resize them to one size";
    let (height, width, pixels) =
        decode_files_with(&paths, prep.unwrap_or(Preprocess::None), hint)?;
    Ok(ImageSet {
        n: files.len(),
        channels: 3,
        height,
        width,
        pixels,
        labels: files.iter().map(|(_, l)| *l).collect(),
        num_classes: class_names.len(),
        class_names,
    })
}

pub(crate) fn load(
    data_dir: &Path,
    split: Split,
    prep: Option<Preprocess>,
) -> Result<ImageSet, DataError> {
    let layout = || {
        DataError::not_found(
            "imagefolder",
            data_dir,
            DatasetKind::ImageFolder.expected_layout(),
        )
    };
    let train = data_dir.join("train");
    let split_dir = match split {
        Split::Train => train.clone(),
        Split::Test => [data_dir.join("test"), data_dir.join("val")]
            .into_iter()
            .find(|d| d.is_dir())
            .ok_or_else(layout)?,
    };
    if !split_dir.is_dir() {
        return Err(layout());
    }
    // Class list from train/ when present, so both splits share label indices.
    let class_root = if train.is_dir() { &train } else { &split_dir };
    let classes: Vec<String> = super::sorted_subdirs(class_root)?
        .iter()
        .map(|p| super::file_name(p))
        .collect();
    if classes.is_empty() {
        return Err(layout());
    }
    let mut files = Vec::new();
    for d in super::sorted_subdirs(&split_dir)? {
        let name = super::file_name(&d);
        let label = classes.iter().position(|c| *c == name).ok_or_else(|| {
            DataError::Invalid(format!(
                "class folder {} does not exist under {}",
                d.display(),
                class_root.display()
            ))
        })?;
        files.extend(image_files(&d)?.into_iter().map(|p| (p, label as i64)));
    }
    if files.is_empty() {
        return Err(DataError::Invalid(format!(
            "no .jpg/.jpeg/.png images under {}",
            split_dir.display()
        )));
    }
    build_set_with(files, classes, prep)
}
