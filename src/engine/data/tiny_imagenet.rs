//! Tiny-ImageNet-200 (64×64, 200 classes) and Tiny-ImageNet-C.
//!
//! Class index = position of the wnid in the *sorted* wnid list (`wnids.txt`, or the train
//! folder names when it is missing). The validation split (our `Test`) is read either as
//! downloaded (`val/images/*.JPEG` + `val/val_annotations.txt`) or re-sorted into class
//! folders (`val/<wnid>/images/*.JPEG` or `val/<wnid>/*.JPEG`). Files are taken in name order.

use super::error::DataError;
use super::image_folder::{build_set, image_files};
use super::{DatasetKind, ImageSet, Split};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn find_root(data_dir: &Path) -> Option<PathBuf> {
    [data_dir.join("tiny-imagenet-200"), data_dir.to_path_buf()]
        .into_iter()
        .find(|d| {
            d.join("wnids.txt").is_file() || (d.join("train").is_dir() && d.join("val").is_dir())
        })
}

/// Sorted wnids of the dataset rooted at `root`.
fn read_wnids(root: &Path) -> Result<Vec<String>, DataError> {
    let path = root.join("wnids.txt");
    let mut wnids: Vec<String> = if path.is_file() {
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
        text.lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    } else {
        super::sorted_subdirs(&root.join("train"))?
            .iter()
            .map(|p| super::file_name(p))
            .collect()
    };
    wnids.sort();
    for pair in wnids.windows(2) {
        if pair[0] == pair[1] {
            return Err(DataError::malformed(
                &path,
                format!("wnid {} listed twice", pair[0]),
            ));
        }
    }
    for w in &wnids {
        super::check_plain_name("wnid", w)
            .map_err(|_| DataError::malformed(&path, format!("bad wnid '{w}'")))?;
    }
    if wnids.is_empty() {
        return Err(DataError::malformed(&path, "no wnids"));
    }
    Ok(wnids)
}

/// JPEG/PNG files of one class folder: `<dir>/images/*` when that sub-folder exists, else
/// `<dir>/*` (searched recursively), in name order.
fn class_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let images = dir.join("images");
    if images.is_dir() {
        image_files(&images)
    } else {
        image_files(dir)
    }
}

fn load_val(root: &Path, wnids: &[String]) -> Result<Vec<(PathBuf, i64)>, DataError> {
    let val = root.join("val");
    let index: HashMap<&str, i64> = wnids
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i as i64))
        .collect();
    let ann_path = val.join("val_annotations.txt");
    let images = val.join("images");
    let raw_files = if images.is_dir() {
        image_files(&images)?
    } else {
        Vec::new()
    };
    if !raw_files.is_empty() {
        // Raw download: labels come from the annotation file.
        if !ann_path.is_file() {
            return Err(DataError::Invalid(format!(
                "{} holds images but {} is missing (needed to label the raw validation split)",
                images.display(),
                ann_path.display()
            )));
        }
        let text = std::fs::read_to_string(&ann_path).map_err(|e| DataError::io(&ann_path, e))?;
        let mut ann: HashMap<String, i64> = HashMap::new();
        for (ln, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut cols = line.split('\t');
            let (file, wnid) = match (cols.next(), cols.next()) {
                (Some(f), Some(w)) => (f.trim(), w.trim()),
                _ => {
                    return Err(DataError::malformed(
                        &ann_path,
                        format!(
                            "line {}: expected 'filename<TAB>wnid<TAB>...', got '{line}'",
                            ln + 1
                        ),
                    ))
                }
            };
            let label = *index.get(wnid).ok_or_else(|| {
                DataError::malformed(
                    &ann_path,
                    format!("line {}: wnid {wnid} is not in wnids.txt", ln + 1),
                )
            })?;
            ann.insert(file.to_string(), label);
        }
        return raw_files
            .into_iter()
            .map(|p| {
                let name = super::file_name(&p);
                match ann.get(&name) {
                    Some(&l) => Ok((p, l)),
                    None => Err(DataError::malformed(
                        &ann_path,
                        format!("no annotation for {}", p.display()),
                    )),
                }
            })
            .collect();
    }
    // Re-sorted into class folders.
    let mut out = Vec::new();
    for d in super::sorted_subdirs(&val)? {
        let name = super::file_name(&d);
        if name == "images" {
            continue;
        }
        let label = *index.get(name.as_str()).ok_or_else(|| {
            DataError::Invalid(format!(
                "validation folder {} is not a wnid of wnids.txt",
                d.display()
            ))
        })?;
        out.extend(class_files(&d)?.into_iter().map(|p| (p, label)));
    }
    Ok(out)
}

pub(crate) fn load(data_dir: &Path, split: Split) -> Result<ImageSet, DataError> {
    let kind = DatasetKind::TinyImageNet;
    let root = find_root(data_dir)
        .ok_or_else(|| DataError::not_found(kind.name(), data_dir, kind.expected_layout()))?;
    let wnids = read_wnids(&root)?;
    let files = match split {
        Split::Train => {
            let mut files = Vec::new();
            for (i, w) in wnids.iter().enumerate() {
                let d = root.join("train").join(w);
                if !d.is_dir() {
                    return Err(DataError::Invalid(format!(
                        "class folder {} is missing (wnid {w} is listed in wnids.txt)",
                        d.display()
                    )));
                }
                files.extend(class_files(&d)?.into_iter().map(|p| (p, i as i64)));
            }
            files
        }
        Split::Test => load_val(&root, &wnids)?,
    };
    if files.is_empty() {
        return Err(DataError::not_found(
            kind.name(),
            data_dir,
            kind.expected_layout(),
        ));
    }
    build_set(files, wnids)
}

/// Resolve the Tiny-ImageNet-C folder: `data_dir/Tiny-ImageNet-C` (or lower-case), else
/// `data_dir` itself.
pub fn find_c_dir(data_dir: &Path) -> Result<PathBuf, DataError> {
    for s in [
        "Tiny-ImageNet-C",
        "tiny-imagenet-c",
        "Tiny-ImageNet-C/Tiny-ImageNet-C",
    ] {
        let d = data_dir.join(s);
        if d.is_dir() {
            return Ok(d);
        }
    }
    if data_dir.is_dir() {
        return Ok(data_dir.to_path_buf());
    }
    let k = DatasetKind::TinyImageNetC;
    Err(DataError::not_found(
        k.name(),
        data_dir,
        k.expected_layout(),
    ))
}

/// Corruptions present in a Tiny-ImageNet-C folder (sub-folders holding severity folders).
pub fn list_corruptions_tin(dir: &Path) -> Vec<String> {
    super::sorted_subdirs(dir)
        .unwrap_or_default()
        .iter()
        .filter(|d| (1..=5).any(|s| d.join(s.to_string()).is_dir()))
        .map(|d| super::file_name(d))
        .collect()
}

/// Load one Tiny-ImageNet-C corruption at the given severities (each 1..=5, concatenated in
/// the order given) from `dir/<corruption>/<severity>/<wnid>/*.JPEG`. Classes are the sorted
/// wnid folders, which must be the same at every severity.
pub fn load_corruption_tin(
    dir: &Path,
    corruption: &str,
    severities: &[u8],
) -> Result<ImageSet, DataError> {
    super::check_plain_name("corruption", corruption)?;
    super::check_severities(severities)?;
    let k = DatasetKind::TinyImageNetC;
    if !dir.is_dir() {
        return Err(DataError::not_found(k.name(), dir, k.expected_layout()));
    }
    let cdir = dir.join(corruption);
    if !cdir.is_dir() {
        let have = list_corruptions_tin(dir);
        return Err(DataError::Invalid(format!(
            "corruption '{corruption}' not found: no folder {} (available: {})",
            cdir.display(),
            if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            }
        )));
    }
    let mut wnids: Option<Vec<String>> = None;
    let mut files = Vec::new();
    for &s in severities {
        let sdir = cdir.join(s.to_string());
        if !sdir.is_dir() {
            return Err(DataError::not_found(k.name(), &sdir, k.expected_layout()));
        }
        let classes: Vec<PathBuf> = super::sorted_subdirs(&sdir)?;
        let names: Vec<String> = classes.iter().map(|p| super::file_name(p)).collect();
        match &wnids {
            None => wnids = Some(names.clone()),
            Some(w) if *w != names => {
                return Err(DataError::Invalid(format!(
                    "{} has different class folders than severity {}",
                    sdir.display(),
                    severities[0]
                )))
            }
            _ => {}
        }
        for (i, d) in classes.iter().enumerate() {
            files.extend(class_files(d)?.into_iter().map(|p| (p, i as i64)));
        }
    }
    let wnids = wnids.unwrap_or_default();
    if files.is_empty() {
        return Err(DataError::Invalid(format!(
            "no images under {}",
            cdir.display()
        )));
    }
    build_set(files, wnids)
}

/// How many images each of `severities` holds for `corruption` under the Tiny-ImageNet-C
/// folder `dir`, in the order `load_corruption_tin` reads them (severity folders may hold
/// different numbers of images).
pub fn severity_sizes_tin(
    dir: &Path,
    corruption: &str,
    severities: &[u8],
) -> Result<Vec<usize>, DataError> {
    super::check_plain_name("corruption", corruption)?;
    let mut sizes = Vec::with_capacity(severities.len());
    for &s in severities {
        let sdir = dir.join(corruption).join(s.to_string());
        let mut n = 0;
        for class in super::sorted_subdirs(&sdir)? {
            n += class_files(&class)?.len();
        }
        sizes.push(n);
    }
    Ok(sizes)
}
