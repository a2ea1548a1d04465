//! CIFAR-10 / CIFAR-100 in torchvision's python layout (pickled dicts holding a numpy uint8
//! array `data` of N×3072, CHW row-major, and `labels` / `fine_labels`) and in the binary
//! layout (one or two label bytes followed by 3072 pixel bytes per record).

use super::error::{fmt_err, DataError};
use super::{DatasetKind, ImageSet, Split};
use crate::engine::checkpoint::pickle::{parse_plain_pickle, Value};
use std::path::{Path, PathBuf};

/// Pixel bytes per CIFAR image (3×32×32).
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR-100 fine label names in label order (alphabetical, as in the dataset's `meta`).
pub const CIFAR100_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// Split binary CIFAR records (`label_bytes` label bytes then 3072 pixels each) into the
/// pixel cache and labels. With two label bytes (CIFAR-100: coarse, fine) the last one is
/// the label.
pub fn parse_bin_records(
    bytes: &[u8],
    label_bytes: usize,
) -> Result<(Vec<u8>, Vec<i64>), DataError> {
    if label_bytes == 0 || label_bytes > 2 {
        return Err(DataError::Invalid(format!(
            "CIFAR binary records have 1 or 2 label bytes, not {label_bytes}"
        )));
    }
    let rec = label_bytes + IMAGE_BYTES;
    if bytes.is_empty() || !bytes.len().is_multiple_of(rec) {
        return Err(fmt_err(format!(
            "{} bytes is not a whole number of {rec}-byte CIFAR records (file truncated or wrong variant?)",
            bytes.len()
        )));
    }
    let n = bytes.len() / rec;
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for r in bytes.chunks_exact(rec) {
        labels.push(r[label_bytes - 1] as i64);
        pixels.extend_from_slice(&r[label_bytes..]);
    }
    Ok((pixels, labels))
}

/// Look a key up in a pickled dict whose keys are `bytes` (Python 2 pickles read with
/// `encoding='bytes'`) or `str`.
fn dict_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let items = match v {
        Value::Dict(items) => items,
        Value::Object { state, .. } => return dict_get(state, key),
        _ => return None,
    };
    items.iter().find_map(|(k, val)| match k {
        Value::Str(s) if s == key => Some(val),
        Value::Bytes(b) if b == key.as_bytes() => Some(val),
        _ => None,
    })
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "list",
        Value::Tuple(_) => "tuple",
        Value::Dict(_) => "dict",
        Value::NdArray { .. } => "numpy array",
        Value::Tensor(_) => "tensor",
        Value::Object { .. } => "object",
    }
}

/// Integer labels from a list/tuple of ints or a 1-D integer numpy array.
fn int_list(v: &Value) -> Result<Vec<i64>, String> {
    match v {
        Value::List(xs) | Value::Tuple(xs) => xs
            .iter()
            .map(|x| match x {
                Value::Int(i) => Ok(*i),
                other => Err(format!("label list holds a {}", value_kind(other))),
            })
            .collect(),
        Value::NdArray { dtype, shape, data } => {
            let n: usize = shape.iter().product();
            let dt = dtype.trim_start_matches(['<', '|', '=']);
            let size = match dt {
                "uint8" | "u1" | "int8" | "i1" => 1,
                "int32" | "i4" => 4,
                "int64" | "i8" => 8,
                _ => return Err(format!("label array has dtype {dtype}")),
            };
            if data.len() != n.saturating_mul(size) {
                return Err("label array size does not match its shape".into());
            }
            Ok(data
                .chunks_exact(size)
                .map(|c| match (size, dt) {
                    (1, "int8" | "i1") => c[0] as i8 as i64,
                    (1, _) => c[0] as i64,
                    (4, _) => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                    _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
                })
                .collect())
        }
        other => Err(format!(
            "labels are a {}, expected a list",
            value_kind(other)
        )),
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::List(xs) | Value::Tuple(xs) => xs
            .iter()
            .map(|x| match x {
                Value::Str(s) => Some(s.clone()),
                Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Decode one torchvision python batch: `(pixels N×3072, labels)`.
pub fn parse_py_batch(bytes: &[u8], label_key: &str) -> Result<(Vec<u8>, Vec<i64>), DataError> {
    let root =
        parse_plain_pickle(bytes).map_err(|e| fmt_err(format!("not a readable pickle: {e}")))?;
    if !matches!(root, Value::Dict(_)) {
        return Err(fmt_err(format!(
            "expected a pickled dict, found a {}",
            value_kind(&root)
        )));
    }
    let data =
        dict_get(&root, "data").ok_or_else(|| fmt_err("pickled dict has no 'data' entry"))?;
    let pixels = match data {
        Value::NdArray { dtype, shape, data } => {
            let dt = dtype.trim_start_matches(['<', '|', '=']);
            if dt != "uint8" && dt != "u1" {
                return Err(fmt_err(format!("'data' has dtype {dtype}, expected uint8")));
            }
            let n: usize = shape.first().copied().unwrap_or(0);
            let per: usize = shape.iter().skip(1).product();
            if per != IMAGE_BYTES || data.len() != n.saturating_mul(IMAGE_BYTES) {
                return Err(fmt_err(format!(
                    "'data' has shape {shape:?} ({} bytes), expected N×3072",
                    data.len()
                )));
            }
            data.clone()
        }
        other => {
            return Err(fmt_err(format!(
                "'data' is a {}, expected a numpy uint8 array",
                value_kind(other)
            )))
        }
    };
    let lab = dict_get(&root, label_key)
        .ok_or_else(|| fmt_err(format!("pickled dict has no '{label_key}' entry")))?;
    let labels = int_list(lab).map_err(|e| fmt_err(format!("'{label_key}': {e}")))?;
    if labels.len() * IMAGE_BYTES != pixels.len() {
        return Err(fmt_err(format!(
            "{} labels for {} images",
            labels.len(),
            pixels.len() / IMAGE_BYTES
        )));
    }
    Ok((pixels, labels))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    Python,
    Binary,
}

/// Where the batches live, which variant, and the file names of the split.
fn locate(
    kind: DatasetKind,
    data_dir: &Path,
    split: Split,
) -> Option<(PathBuf, Layout, Vec<&'static str>)> {
    let (py_dir, bin_dir, py_files, bin_files): (&str, &str, Vec<&'static str>, Vec<&'static str>) =
        match (kind, split) {
            (DatasetKind::Cifar100, Split::Train) => (
                "cifar-100-python",
                "cifar-100-binary",
                vec!["train"],
                vec!["train.bin"],
            ),
            (DatasetKind::Cifar100, Split::Test) => (
                "cifar-100-python",
                "cifar-100-binary",
                vec!["test"],
                vec!["test.bin"],
            ),
            (_, Split::Train) => (
                "cifar-10-batches-py",
                "cifar-10-batches-bin",
                vec![
                    "data_batch_1",
                    "data_batch_2",
                    "data_batch_3",
                    "data_batch_4",
                    "data_batch_5",
                ],
                vec![
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
            ),
            (_, Split::Test) => (
                "cifar-10-batches-py",
                "cifar-10-batches-bin",
                vec!["test_batch"],
                vec!["test_batch.bin"],
            ),
        };
    let candidates = [
        (data_dir.join(py_dir), Layout::Python),
        (data_dir.join(bin_dir), Layout::Binary),
        (data_dir.to_path_buf(), Layout::Python),
        (data_dir.to_path_buf(), Layout::Binary),
    ];
    for (dir, layout) in candidates {
        let files = if layout == Layout::Python {
            &py_files
        } else {
            &bin_files
        };
        if dir.join(files[0]).is_file() {
            return Some((dir, layout, files.clone()));
        }
    }
    None
}

fn class_names(kind: DatasetKind, dir: &Path, layout: Layout) -> Vec<String> {
    let fallback = || -> Vec<String> {
        if kind == DatasetKind::Cifar100 {
            CIFAR100_CLASSES.iter().map(|s| s.to_string()).collect()
        } else {
            CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect()
        }
    };
    let want = if kind == DatasetKind::Cifar100 {
        100
    } else {
        10
    };
    let names = match layout {
        Layout::Python => {
            let (file, key) = if kind == DatasetKind::Cifar100 {
                ("meta", "fine_label_names")
            } else {
                ("batches.meta", "label_names")
            };
            std::fs::read(dir.join(file))
                .ok()
                .and_then(|b| parse_plain_pickle(&b).ok())
                .and_then(|v| dict_get(&v, key).and_then(string_list))
        }
        Layout::Binary => {
            let file = if kind == DatasetKind::Cifar100 {
                "fine_label_names.txt"
            } else {
                "batches.meta.txt"
            };
            std::fs::read_to_string(dir.join(file)).ok().map(|s| {
                s.lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            })
        }
    };
    match names {
        Some(n) if n.len() == want => n,
        _ => fallback(),
    }
}

pub(crate) fn load(
    kind: DatasetKind,
    data_dir: &Path,
    split: Split,
) -> Result<ImageSet, DataError> {
    let num_classes = if kind == DatasetKind::Cifar100 {
        100
    } else {
        10
    };
    let (dir, layout, files) = locate(kind, data_dir, split)
        .ok_or_else(|| DataError::not_found(kind.name(), data_dir, kind.expected_layout()))?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for f in &files {
        let path = dir.join(f);
        let bytes = super::read_file(&path)?;
        let (px, lb) = match layout {
            Layout::Python => {
                let key = if kind == DatasetKind::Cifar100 {
                    "fine_labels"
                } else {
                    "labels"
                };
                parse_py_batch(&bytes, key)
            }
            Layout::Binary => {
                parse_bin_records(&bytes, if kind == DatasetKind::Cifar100 { 2 } else { 1 })
            }
        }
        .map_err(|e| e.in_file(&path))?;
        if let Some(&bad) = lb.iter().find(|&&l| l < 0 || l >= num_classes as i64) {
            return Err(DataError::malformed(
                &path,
                format!(
                    "label {bad} is outside 0..{num_classes}; is this {} data?",
                    kind.name()
                ),
            ));
        }
        if pixels.is_empty() {
            pixels = px;
            if files.len() > 1 {
                pixels.reserve(pixels.len() * (files.len() - 1));
            }
        } else {
            pixels.extend_from_slice(&px);
        }
        labels.extend(lb);
    }
    Ok(ImageSet {
        n: labels.len(),
        channels: 3,
        height: 32,
        width: 32,
        pixels,
        labels,
        num_classes,
        class_names: class_names(kind, &dir, layout),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_records() {
        let mut b = vec![3u8];
        b.extend((0..IMAGE_BYTES).map(|i| i as u8));
        b.push(7);
        b.extend(std::iter::repeat_n(9u8, IMAGE_BYTES));
        let (px, lb) = parse_bin_records(&b, 1).unwrap();
        assert_eq!(lb, vec![3, 7]);
        assert_eq!(px.len(), 2 * IMAGE_BYTES);
        assert_eq!(px[IMAGE_BYTES - 1], ((IMAGE_BYTES - 1) % 256) as u8);
        assert!(parse_bin_records(&b[..b.len() - 1], 1).is_err());
        assert!(parse_bin_records(&b, 2).is_err());
        assert!(parse_bin_records(&[], 1).is_err());
    }

    #[test]
    fn class_name_tables() {
        assert_eq!(CIFAR100_CLASSES.len(), 100);
        let mut sorted = CIFAR100_CLASSES.to_vec();
        sorted.sort();
        assert_eq!(sorted, CIFAR100_CLASSES.to_vec());
    }
}
