//! rift's evaluation preprocessing (`engine::data::preprocess`) against Pillow + torchvision
//! (the stack robustbench evaluates with), and its JPEG decoder against PIL's: the fixtures
//! come from `tests/py/preprocess_ref.py` run by the venv's Python.

mod common;

use rift::engine::data::image_folder::{decode_jpeg, Rgb};
use rift::engine::data::preprocess::{center_crop, resize, resize_shorter, Interp, Preprocess};
use rift::engine::data::read_npy;
use serde_json::Value;
use std::path::Path;

fn load_rgb(path: &Path) -> Rgb {
    let a = read_npy(path).expect("fixture npy");
    assert_eq!(a.shape.len(), 3, "{}", path.display());
    assert_eq!(a.shape[2], 3, "{}", path.display());
    Rgb {
        height: a.shape[0],
        width: a.shape[1],
        data: a.data,
    }
}

fn interp(v: &Value) -> Interp {
    match v["interp"].as_str() {
        Some("bilinear") => Interp::Bilinear,
        Some("bicubic") => Interp::Bicubic,
        other => panic!("interp {other:?}"),
    }
}

fn fixtures(seed: &str, n: &str) -> (tempfile::TempDir, Vec<Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    common::run_python(include_str!("py/preprocess_ref.py"), &[d, seed, n]);
    let cases = common::read_json(&dir.path().join("cases.json"));
    let cases = cases.as_array().expect("case list").clone();
    (dir, cases)
}

fn usize_of(v: &Value, k: &str) -> usize {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}")) as usize
}

#[test]
fn resize_and_crop_are_bit_identical_to_torchvision_on_pil() {
    let (dir, cases) = fixtures("7", "120");
    let mut checked = 0;
    for c in cases.iter().filter(|c| c["op"] != "jpeg") {
        let input = load_rgb(&dir.path().join(c["input"].as_str().expect("input")));
        let want = load_rgb(&dir.path().join(c["output"].as_str().expect("output")));
        let a = &c["args"];
        let got = match c["op"].as_str().expect("op") {
            "resize" => resize(&input, usize_of(a, "w"), usize_of(a, "h"), interp(a)),
            "shorter" => resize_shorter(&input, usize_of(a, "size"), interp(a)),
            "crop" => center_crop(&input, usize_of(a, "h"), usize_of(a, "w")),
            "preprocess" => Preprocess::parse(a["name"].as_str().expect("name"))
                .expect("name")
                .apply(input),
            op => panic!("op {op}"),
        };
        assert_eq!(
            (got.height, got.width),
            (want.height, want.width),
            "size of case {c}"
        );
        let bad = got
            .data
            .iter()
            .zip(&want.data)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(bad, 0, "{bad} bytes differ from torchvision in case {c}");
        checked += 1;
    }
    assert!(checked >= 380, "only {checked} cases");
}

/// zune-jpeg against libjpeg-turbo as PIL calls it (islow DCT, fancy upsampling). They are
/// not bit-identical. Measured on these files (noisy synthetic images, the worst case for
/// rounding; quoted in README): grey max |Δ| 1; 4:4:4 max 3, mean ≤ 0.024; 4:2:0 and 4:2:2
/// max 4 away from the border, mean ≤ 0.38, and up to 16 in the last column of a
/// subsampled image (chroma upsampling at the right edge). The bounds below are those
/// measurements, so a decoder change that moves further from PIL fails here.
#[test]
fn jpeg_decode_matches_pil_within_the_measured_difference() {
    let (dir, cases) = fixtures("11", "0");
    let mut report = Vec::new();
    for c in cases.iter().filter(|c| c["op"] == "jpeg") {
        let path = dir.path().join(c["input"].as_str().expect("input"));
        let bytes = std::fs::read(&path).expect("jpeg");
        let got = decode_jpeg(&bytes).expect("decodes");
        let want = load_rgb(&dir.path().join(c["output"].as_str().expect("output")));
        assert_eq!((got.height, got.width), (want.height, want.width), "{c}");
        let diffs: Vec<u8> = got
            .data
            .iter()
            .zip(&want.data)
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let at = diffs.iter().position(|&d| d == max).unwrap_or(0) / 3;
        let (ay, ax) = (at / got.width, at % got.width);
        let interior = diffs
            .chunks_exact(3)
            .enumerate()
            .filter(|(i, _)| {
                let (y, x) = (i / got.width, i % got.width);
                y >= 16 && x >= 16 && y + 16 < got.height && x + 16 < got.width
            })
            .flat_map(|(_, d)| d.iter().copied())
            .max()
            .unwrap_or(0);
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        let off = diffs.iter().filter(|&&d| d != 0).count() as f64 / diffs.len() as f64;
        report.push(format!(
            "{} {}x{}: max {max} at ({ay},{ax}), interior max {interior}, mean {mean:.5}, differing {:.4}%",
            c["args"],
            got.height,
            got.width,
            off * 100.0
        ));
        assert!(max <= MAX_JPEG_DIFF, "{c}: max |Δ| {max}");
        assert!(
            interior <= MAX_JPEG_INTERIOR,
            "{c}: interior max |Δ| {interior}"
        );
        assert!(mean <= MAX_JPEG_MEAN, "{c}: mean |Δ| {mean}");
    }
    eprintln!("{}", report.join("\n"));
    assert_eq!(report.len(), 9);
}

/// Largest |Δ| anywhere (the right edge of a 4:2:0 file).
const MAX_JPEG_DIFF: u8 = 16;
/// Largest |Δ| at least 16 pixels from every border (IDCT and upsampling rounding).
const MAX_JPEG_INTERIOR: u8 = 4;
/// Largest mean |Δ| over a file.
const MAX_JPEG_MEAN: f64 = 0.40;
