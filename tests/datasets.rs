// Real-format tests of the data layer: a Python script (numpy + PIL from the test venv)
// writes tiny fixtures in every on-disk layout rift accepts, together with the pixels and
// labels that torchvision / numpy / PIL read from them; rift must read the same.
//
// Lossless formats (pickles, binary records, .npy, IDX, PNG) must match exactly. JPEG is
// compared against PIL's decode with a tolerance, per image: mean |diff| < 0.5, fewer than
// 0.5% of values off by more than 2 levels, none by more than 4. IDCT, colour-conversion and
// chroma-upsampling implementations legitimately differ by rounding (libjpeg-turbo in PIL vs
// zune-jpeg in rift), so exact equality is not a valid requirement. Measured on 20 colour
// 4:2:0 64x64 JPEGs: |diff| 0: 73%, 1: 17%, 2: 10%, 3: 0.06%, 4: 0.003%; greyscale max 1.
// (zune-jpeg 0.4 was off by up to ~80 levels in the second-last column of 4:2:0 images,
// which this bound catches.)

mod common;

use rift::engine::data::*;
use std::path::Path;

fn fixtures(groups: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec![dir.path().to_str().expect("utf-8 temp path")];
    args.extend_from_slice(groups);
    common::run_python(FIXTURES, &args);
    dir
}

fn expected(dir: &Path, case: &str) -> (NpyArray, Vec<i64>) {
    let x = read_npy(&dir.join(format!("expect_{case}_x.npy"))).expect("expected pixels");
    let y = read_npy(&dir.join(format!("expect_{case}_y.npy"))).expect("expected labels");
    (x, y.to_i64().expect("int labels"))
}

fn check_geometry(set: &ImageSet, x: &NpyArray, y: &[i64], case: &str) {
    set.validate().expect("valid set");
    assert_eq!(x.dtype, NpyDType::U8, "{case}");
    assert_eq!(
        vec![set.n, set.channels, set.height, set.width],
        x.shape,
        "{case}: shape"
    );
    assert_eq!(set.labels, y, "{case}: labels");
}

/// Exact comparison for lossless formats.
fn assert_exact(set: &ImageSet, dir: &Path, case: &str) {
    let (x, y) = expected(dir, case);
    check_geometry(set, &x, &y, case);
    assert!(set.pixels == x.data, "{case}: pixels differ");
}

/// Per image: exact when `jpeg[i] == 0`, else within JPEG decoder tolerance (see top).
fn assert_close(set: &ImageSet, dir: &Path, case: &str, jpeg: &[u8]) {
    let (x, y) = expected(dir, case);
    check_geometry(set, &x, &y, case);
    assert_eq!(jpeg.len(), set.n, "{case}: one JPEG flag per image");
    let len = set.image_len();
    for (i, &is_jpeg) in jpeg.iter().enumerate().take(set.n) {
        let (a, b) = (set.image(i), &x.data[i * len..(i + 1) * len]);
        if is_jpeg == 0 {
            assert!(a == b, "{case}: image {i} differs (lossless)");
            continue;
        }
        let diffs: Vec<i32> = a
            .iter()
            .zip(b)
            .map(|(&p, &q)| (p as i32 - q as i32).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        let over2 = diffs.iter().filter(|&&v| v > 2).count() as f64 / diffs.len() as f64;
        assert!(
            max <= 4 && mean < 0.5 && over2 < 0.005,
            "{case}: JPEG image {i} max diff {max}, mean {mean:.3}, {:.2}% over 2",
            over2 * 100.0
        );
    }
}

fn assert_close_all_jpeg(set: &ImageSet, dir: &Path, case: &str) {
    assert_close(set, dir, case, &vec![1u8; set.n]);
}

fn err_text<T: std::fmt::Debug>(r: Result<T, DataError>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn cifar10_python_and_binary_layouts() {
    let fx = fixtures(&["cifar"]);
    let d = fx.path();
    for (root, names) in [
        (d.join("c10py"), "n"),
        (d.join("c10py/cifar-10-batches-py"), "n"),
        (d.join("c10bin"), "b"),
        (d.join("c10bin/cifar-10-batches-bin"), "b"),
    ] {
        let train = load_split(DatasetKind::Cifar10, &root, Split::Train).expect("cifar10 train");
        assert_exact(&train, d, "c10_train");
        assert_eq!(train.num_classes, 10);
        assert_eq!(
            train.class_names[3],
            format!("{names}3"),
            "class names from the meta file"
        );
        let test = load_split(DatasetKind::Cifar10, &root, Split::Test).expect("cifar10 test");
        assert_exact(&test, d, "c10_test");
    }
}

#[test]
fn cifar100_python_and_binary_layouts() {
    let fx = fixtures(&["cifar"]);
    let d = fx.path();
    for root in [
        d.join("c100py"),
        d.join("c100bin"),
        d.join("c100py/cifar-100-python"),
    ] {
        for (split, case) in [(Split::Train, "c100_train"), (Split::Test, "c100_test")] {
            let set = load_split(DatasetKind::Cifar100, &root, split).expect("cifar100");
            assert_exact(&set, d, case);
            assert_eq!(set.num_classes, 100);
        }
    }
    let py = load_split(DatasetKind::Cifar100, &d.join("c100py"), Split::Test).unwrap();
    assert_eq!(py.class_names[42], "c42");
    let bin = load_split(DatasetKind::Cifar100, &d.join("c100bin"), Split::Test).unwrap();
    assert_eq!(
        bin.class_names[0], "apple",
        "built-in names when the binary meta is absent"
    );
}

#[test]
fn cifar_corruptions() {
    let fx = fixtures(&["cifarc"]);
    let d = fx.path();
    let set = load_corrupted(DatasetKind::Cifar10C, &d.join("c10c"), "fog", &[2, 5]).expect("c10c");
    assert_exact(&set, d, "c10c_fog_25");
    assert_eq!(set.num_classes, 10);
    let direct = load_corruption(&d.join("c10c/CIFAR-10-C"), "fog", &[2, 5]).expect("direct dir");
    assert_eq!(direct, set);
    assert_eq!(
        list_corruptions(&d.join("c10c/CIFAR-10-C")),
        vec!["fog", "gaussian_noise"]
    );

    let s100 =
        load_corrupted(DatasetKind::Cifar100C, &d.join("c100c"), "snow", &[3]).expect("c100c");
    assert_exact(&s100, d, "c100c_snow_3");
    assert_eq!(s100.num_classes, 100);

    let e = err_text(load_corruption(&d.join("c10c/CIFAR-10-C"), "frost", &[1]));
    assert!(
        e.contains("frost") && e.contains("available: fog, gaussian_noise"),
        "{e}"
    );
    let e = err_text(load_corruption(&d.join("c10c/CIFAR-10-C"), "fog", &[6]));
    assert!(e.contains("severity 6"), "{e}");
    let e = err_text(load_split(
        DatasetKind::Cifar10C,
        &d.join("c10c"),
        Split::Test,
    ));
    assert!(e.contains("load_corruption"), "{e}");
}

#[test]
fn tiny_imagenet_raw_and_sorted_val() {
    let fx = fixtures(&["tin"]);
    let d = fx.path();
    let mut wnids = vec!["n09999999", "n01443537", "n02085620"];
    wnids.sort();
    for layout in ["raw", "sorted"] {
        for root in [
            d.join(format!("tin_{layout}")),
            d.join(format!("tin_{layout}/tiny-imagenet-200")),
        ] {
            let train =
                load_split(DatasetKind::TinyImageNet, &root, Split::Train).expect("tin train");
            assert_close_all_jpeg(&train, d, &format!("tin_{layout}_train"));
            assert_eq!((train.channels, train.height, train.width), (3, 64, 64));
            assert_eq!(train.class_names, wnids);
            assert_eq!(train.num_classes, 3);
            let test = load_split(DatasetKind::TinyImageNet, &root, Split::Test).expect("tin val");
            assert_close_all_jpeg(&test, d, &format!("tin_{layout}_test"));
        }
    }
}

#[test]
fn tiny_imagenet_c() {
    let fx = fixtures(&["tin"]);
    let d = fx.path();
    let set =
        load_corrupted(DatasetKind::TinyImageNetC, &d.join("tinc"), "fog", &[1, 4]).expect("tin-c");
    assert_close_all_jpeg(&set, d, "tinc_fog_14");
    // Severity folders of unequal size (fog 1: two images per class, fog 2: one): each
    // severity's block is its own size, as the OOD evaluation slices it.
    let tinc = d.join("tinc");
    let mixed = load_corrupted(DatasetKind::TinyImageNetC, &tinc, "fog", &[1, 2]).unwrap();
    assert_eq!(mixed.n, 9);
    let sizes = severity_sizes(DatasetKind::TinyImageNetC, &tinc, "fog", &[1, 2], &mixed).unwrap();
    assert_eq!(sizes, [6, 3]);
    let sizes = severity_sizes(DatasetKind::TinyImageNetC, &tinc, "fog", &[2, 4], &set);
    assert!(err_text(sizes).contains("were loaded"));
    let e = err_text(load_corruption_tin(
        &d.join("tinc/Tiny-ImageNet-C"),
        "snow",
        &[1],
    ));
    assert!(e.contains("snow") && e.contains("available: fog"), "{e}");
}

#[test]
fn mnist_plain_and_gz() {
    let fx = fixtures(&["mnist"]);
    let d = fx.path();
    for root in [d.join("mnist_plain"), d.join("mnist_gz")] {
        let train = load_split(DatasetKind::Mnist, &root, Split::Train).expect("mnist train");
        assert_exact(&train, d, "mnist_train");
        let test = load_split(DatasetKind::Mnist, &root, Split::Test).expect("mnist test");
        assert_exact(&test, d, "mnist_test");
    }
}

#[test]
fn image_folder_png_and_jpeg() {
    let fx = fixtures(&["folder"]);
    let d = fx.path();
    for (split, case) in [(Split::Train, "folder_train"), (Split::Test, "folder_val")] {
        let set = load_split(DatasetKind::ImageFolder, &d.join("folder"), split).expect("folder");
        let jpeg = read_npy(&d.join(format!("expect_{case}_jpeg.npy")))
            .unwrap()
            .data;
        assert_close(&set, d, case, &jpeg);
        assert_eq!(set.class_names, vec!["cat", "dog"]);
        assert_eq!((set.height, set.width), (12, 16));
    }
}

#[test]
fn errors_name_files_and_layouts() {
    let fx = fixtures(&["cifar", "mnist", "folder", "cifarc"]);
    let d = fx.path();
    // Missing dataset: the message names the directory and the expected layout.
    let missing = d.join("nothing-here");
    std::fs::create_dir(&missing).unwrap();
    for kind in [
        DatasetKind::Cifar10,
        DatasetKind::Cifar100,
        DatasetKind::TinyImageNet,
        DatasetKind::Mnist,
        DatasetKind::ImageFolder,
    ] {
        let e = err_text(load_split(kind, &missing, Split::Train));
        assert!(
            e.contains("not found under") && e.contains(missing.to_str().unwrap()),
            "{e}"
        );
        assert!(
            e.contains(&format!("{}/", missing.display())),
            "layout shown with the real dir: {e}"
        );
    }
    let e = err_text(load_split(
        DatasetKind::Cifar10,
        &d.join("absent"),
        Split::Test,
    ));
    assert!(
        e.contains("cifar-10-batches-py") && e.contains("cifar-10-batches-bin"),
        "{e}"
    );

    // Truncated files: an error naming the file, never a panic.
    let cut = |p: &Path, keep: usize| {
        let b = std::fs::read(p).unwrap();
        std::fs::write(p, &b[..keep.min(b.len())]).unwrap();
    };
    let bin = d.join("c10bin/cifar-10-batches-bin/test_batch.bin");
    cut(&bin, 3073 + 100);
    let e = err_text(load_split(
        DatasetKind::Cifar10,
        &d.join("c10bin"),
        Split::Test,
    ));
    assert!(e.contains("test_batch.bin"), "{e}");
    let pk = d.join("c10py/cifar-10-batches-py/data_batch_3");
    cut(&pk, 500);
    let e = err_text(load_split(
        DatasetKind::Cifar10,
        &d.join("c10py"),
        Split::Train,
    ));
    assert!(e.contains("data_batch_3"), "{e}");
    let gz = d.join("mnist_gz/MNIST/raw/t10k-images-idx3-ubyte.gz");
    cut(&gz, 40);
    let e = err_text(load_split(
        DatasetKind::Mnist,
        &d.join("mnist_gz"),
        Split::Test,
    ));
    assert!(e.contains("t10k-images-idx3-ubyte.gz"), "{e}");
    let idx = d.join("mnist_plain/train-labels-idx1-ubyte");
    cut(&idx, 10);
    let e = err_text(load_split(
        DatasetKind::Mnist,
        &d.join("mnist_plain"),
        Split::Train,
    ));
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("truncated"),
        "{e}"
    );
    let npy = d.join("c10c/CIFAR-10-C/fog.npy");
    cut(&npy, 1000);
    let e = err_text(load_corruption(&d.join("c10c/CIFAR-10-C"), "fog", &[1]));
    assert!(e.contains("fog.npy") && e.contains("truncated"), "{e}");
    let png = d.join("folder/train/cat/RGB_00.png");
    cut(&png, 60);
    let e = err_text(load_split(
        DatasetKind::ImageFolder,
        &d.join("folder"),
        Split::Train,
    ));
    assert!(e.contains("RGB_00.png"), "{e}");
    // Cut inside the entropy-coded scan: PIL refuses it ("image file is truncated"), so do we.
    let jpg = d.join("folder/val/dog/zz_0.jpg");
    let len = std::fs::metadata(&jpg).unwrap().len() as usize;
    cut(&jpg, len * 2 / 3);
    let e = err_text(load_split(
        DatasetKind::ImageFolder,
        &d.join("folder"),
        Split::Test,
    ));
    assert!(e.contains("zz_0.jpg"), "{e}");

    // Images of different sizes: the odd one is named.
    std::fs::write(
        d.join("folder/val/cat/odd.png"),
        std::fs::read(d.join("folder/val/cat/RGB_00.png")).unwrap(),
    )
    .unwrap();
    let _ = std::fs::remove_file(d.join("folder/val/dog/zz_0.jpg"));
    let cifar_png = {
        // a 1×1 PNG written by hand: different size from the 16×12 images
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        let chunk = |v: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
            v.extend_from_slice(&(data.len() as u32).to_be_bytes());
            v.extend_from_slice(kind);
            v.extend_from_slice(data);
            v.extend_from_slice(&[0, 0, 0, 0]);
        };
        chunk(&mut v, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        chunk(&mut v, b"IDAT", &[120, 156, 99, 96, 0, 0, 0, 2, 0, 1]);
        chunk(&mut v, b"IEND", &[]);
        v
    };
    std::fs::write(d.join("folder/val/dog/zzz_small.png"), cifar_png).unwrap();
    let e = err_text(load_split(
        DatasetKind::ImageFolder,
        &d.join("folder"),
        Split::Test,
    ));
    assert!(e.contains("zzz_small.png") && e.contains("1×1"), "{e}");
}

/// Augmentation of a real CIFAR set checked against PyTorch: every output image is a
/// 32×32 window of `F.pad(x, 4, mode="reflect")` of the very image its index names
/// (mirrored or not), and over the draws both flips occur near half the time.
#[test]
fn augmentation_on_a_real_set() {
    let fx = fixtures(&["cifar"]);
    let set = load_split(DatasetKind::Cifar10, &fx.path().join("c10py"), Split::Train).unwrap();
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let aug = Augmenter::for_dataset(DatasetKind::Cifar10, 32);
    let (mut out, mut sources, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
    for _epoch in 0..40 {
        for b in shuffled_batches(set.n, 4, &mut rng) {
            aug.augment_batch(&set, &b, &mut rng, &mut out);
            assert_eq!(out.len(), b.len() * 3072);
            for &i in &b {
                sources.extend_from_slice(set.image(i));
            }
            outputs.extend_from_slice(&out);
        }
    }
    let src = fx.path().join("aug_sources.u8");
    let dst = fx.path().join("aug_outputs.u8");
    std::fs::write(&src, &sources).unwrap();
    std::fs::write(&dst, &outputs).unwrap();
    let verdict = common::run_python(
        r#"
import sys, numpy as np, torch, torch.nn.functional as F
src = torch.from_numpy(np.fromfile(sys.argv[1], np.uint8).reshape(-1, 3, 32, 32).astype(np.float32))
out = torch.from_numpy(np.fromfile(sys.argv[2], np.uint8).reshape(-1, 3, 32, 32).astype(np.float32))
padded = F.pad(src, (4, 4, 4, 4), mode="reflect")
flips = 0
for k in range(len(out)):
    found = None
    for flip in (False, True):
        want = out[k].flip(-1) if flip else out[k]
        for oy in range(9):
            for ox in range(9):
                if torch.equal(padded[k, :, oy:oy + 32, ox:ox + 32], want):
                    found = flip
    assert found is not None, f"output {k} is no reflect-padded window of its source"
    flips += found
print(len(out), flips)
"#,
        &[common::path_str(&src), common::path_str(&dst)],
    );
    let counts: Vec<f64> = verdict
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(counts[0] as usize, sources.len() / 3072);
    let rate = counts[1] / counts[0];
    assert!(
        (0.3..=0.7).contains(&rate),
        "flip rate {rate} over {} images",
        counts[0]
    );
}

/// Fixture writer, run with the test venv: `python -c FIXTURES <out_dir> <group>...`.
const FIXTURES: &str = r##"
# Writes tiny dataset fixtures in every layout rift reads, plus the pixels/labels that
# torchvision / numpy / PIL would read from them, as .npy files named expect_<case>_{x,y}.npy
# (x: uint8 N x C x H x W, y: int64 N). Used by tests/datasets.rs.
# usage: python datasets_fixtures.py <out_dir> <group>...
import gzip, io, os, pickle, struct, sys, zlib
import numpy as np
from PIL import Image

out = sys.argv[1]
groups = set(sys.argv[2:])
rng = np.random.RandomState(1234)


def p(*parts):
    path = os.path.join(out, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def expect(case, x, y):
    np.save(p("expect_%s_x.npy" % case), np.ascontiguousarray(x, dtype=np.uint8))
    np.save(p("expect_%s_y.npy" % case), np.asarray(y, dtype=np.int64))


def smooth(h, w, c=3):
    # soft photographic-like content (smooth waves plus mild noise, no hard edges): exact
    # for PNG, and JPEG decoders agree on it to within rounding
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ph = rng.uniform(0, 6.28, size=c)
    chans = [128 + 60 * np.sin(xx / 7.0 + ph[k]) + 50 * np.cos(yy / 9.0 - 2 * ph[k]) for k in range(c)]
    img = np.stack(chans, -1) + rng.randint(-6, 7, size=(h, w, c))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def load_pil(path):
    return np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)


# ---------------------------------------------------------------- CIFAR
class Py2Pickler(pickle._Pickler):
    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[bytes] = save_bytes


def cifar_batch(n, ncls):
    return rng.randint(0, 256, size=(n, 3072), dtype=np.uint8), rng.randint(0, ncls, size=n)


if "cifar" in groups:
    # CIFAR-10, torchvision python layout: protocol-2 pickles of dicts with bytes keys.
    xs, ys = [], []
    for i in range(1, 6):
        x, y = cifar_batch(3, 10)
        d = {b"batch_label": b"training batch %d of 5" % i, b"labels": [int(v) for v in y],
             b"data": x, b"filenames": [b"f%d.png" % k for k in range(3)]}
        with open(p("c10py", "cifar-10-batches-py", "data_batch_%d" % i), "wb") as f:
            pickle.dump(d, f, protocol=2)
        xs.append(x); ys.append(y)
    expect("c10_train", np.concatenate(xs).reshape(-1, 3, 32, 32), np.concatenate(ys))
    x, y = cifar_batch(4, 10)
    with open(p("c10py", "cifar-10-batches-py", "test_batch"), "wb") as f:
        # as the real files were written by Python 2's cPickle: bytes as (SHORT_)BINSTRING
        Py2Pickler(f, protocol=2).dump({b"batch_label": b"testing batch 1 of 1",
                                        b"labels": [int(v) for v in y], b"data": x})
    expect("c10_test", x.reshape(-1, 3, 32, 32), y)
    names = [b"n%d" % k for k in range(10)]
    with open(p("c10py", "cifar-10-batches-py", "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f, protocol=2)

    # the same data in the binary layout: label byte + 3072 pixels
    train = np.load(p("expect_c10_train_x.npy")).reshape(-1, 3072)
    trainy = np.load(p("expect_c10_train_y.npy"))
    for i in range(5):
        recs = np.concatenate([trainy[3 * i:3 * i + 3, None].astype(np.uint8), train[3 * i:3 * i + 3]], 1)
        recs.tofile(p("c10bin", "cifar-10-batches-bin", "data_batch_%d.bin" % (i + 1)))
    recs = np.concatenate([y[:, None].astype(np.uint8), x], 1)
    recs.tofile(p("c10bin", "cifar-10-batches-bin", "test_batch.bin"))
    with open(p("c10bin", "cifar-10-batches-bin", "batches.meta.txt"), "w") as f:
        f.write("\n".join("b%d" % k for k in range(10)) + "\n\n")

    # CIFAR-100, python layout: str keys, default protocol (numpy._core._reconstruct / bytes)
    for split, n in (("train", 6), ("test", 5)):
        x, y = cifar_batch(n, 100)
        coarse = y // 5
        with open(p("c100py", "cifar-100-python", split), "wb") as f:
            pickle.dump({"filenames": ["a"] * n, "batch_label": split, "fine_labels": [int(v) for v in y],
                         "coarse_labels": [int(v) for v in coarse], "data": x}, f)
        expect("c100_%s" % split, x.reshape(-1, 3, 32, 32), y)
        recs = np.concatenate([coarse[:, None].astype(np.uint8), y[:, None].astype(np.uint8), x], 1)
        recs.tofile(p("c100bin", "cifar-100-binary", "%s.bin" % split))
    with open(p("c100py", "cifar-100-python", "meta"), "wb") as f:
        pickle.dump({"fine_label_names": ["c%d" % k for k in range(100)],
                     "coarse_label_names": ["k%d" % k for k in range(20)]}, f)

# ---------------------------------------------------------------- CIFAR-C
if "cifarc" in groups:
    K = 5  # images per severity
    labels = rng.randint(0, 10, size=5 * K)
    np.save(p("c10c", "CIFAR-10-C", "labels.npy"), labels.astype(np.int64))
    for name in ("fog", "gaussian_noise"):
        imgs = rng.randint(0, 256, size=(5 * K, 32, 32, 3), dtype=np.uint8)
        np.save(p("c10c", "CIFAR-10-C", name + ".npy"), imgs)
        if name == "fog":
            sel = np.concatenate([imgs[K:2 * K], imgs[4 * K:5 * K]])
            expect("c10c_fog_25", sel.transpose(0, 3, 1, 2), np.concatenate([labels[K:2 * K], labels[4 * K:]]))
    # CIFAR-100-C variant: uint8 labels of one severity (shared by all five)
    lab100 = rng.randint(0, 100, size=K).astype(np.uint8)
    np.save(p("c100c", "labels.npy"), lab100)
    imgs = rng.randint(0, 256, size=(5 * K, 32, 32, 3), dtype=np.uint8)
    np.save(p("c100c", "snow.npy"), imgs)
    expect("c100c_snow_3", imgs[2 * K:3 * K].transpose(0, 3, 1, 2), lab100)

# ---------------------------------------------------------------- Tiny-ImageNet
WNIDS = ["n09999999", "n01443537", "n02085620"]  # deliberately unsorted in wnids.txt


def tin_image(path, gray=False):
    img = smooth(64, 64)
    im = Image.fromarray(img)
    if gray:
        im = im.convert("L")
    im.save(path, quality=90)
    return load_pil(path)


if "tin" in groups:
    for layout in ("raw", "sorted"):
        root = ("tin_" + layout, "tiny-imagenet-200")
        with open(p(*root, "wnids.txt"), "w") as f:
            f.write("\n".join(WNIDS) + "\n")
        xs, ys = [], []
        for ci, w in enumerate(sorted(WNIDS)):
            for k in range(2):
                path = p(*root, "train", w, "images", "%s_%d.JPEG" % (w, k))
                xs.append(tin_image(path, gray=(k == 1 and ci == 0))); ys.append(ci)
            open(p(*root, "train", w, "%s_boxes.txt" % w), "w").close()
        expect("tin_%s_train" % layout, np.stack(xs), ys)
        vx, vy = [], []
        if layout == "raw":
            lines = []
            for k in range(5):
                w = WNIDS[k % 3]
                name = "val_%d.JPEG" % k
                vx.append(tin_image(p(*root, "val", "images", name), gray=(k == 2)))
                vy.append(sorted(WNIDS).index(w))
                lines.append("%s\t%s\t0\t0\t63\t63" % (name, w))
            with open(p(*root, "val", "val_annotations.txt"), "w") as f:
                f.write("\n".join(reversed(lines)) + "\n")
        else:
            for ci, w in enumerate(sorted(WNIDS)):
                sub = ("images",) if ci != 1 else ()  # both re-sorted variants
                for k in range(2):
                    vx.append(tin_image(p(*root, "val", w, *sub, "val_%d_%d.JPEG" % (ci, k)))); vy.append(ci)
        expect("tin_%s_test" % layout, np.stack(vx), vy)

    # Tiny-ImageNet-C
    xs, ys = [], []
    for sev in (1, 4):
        for ci, w in enumerate(sorted(WNIDS)):
            for k in range(2):
                xs.append(tin_image(p("tinc", "Tiny-ImageNet-C", "fog", str(sev), w, "%s_%d.JPEG" % (w, k)))); ys.append(ci)
    for sev in (2, 3, 5):
        for w in WNIDS:
            tin_image(p("tinc", "Tiny-ImageNet-C", "fog", str(sev), w, "x.JPEG"))
    expect("tinc_fog_14", np.stack(xs), ys)

# ---------------------------------------------------------------- MNIST
def idx_images(x):
    return struct.pack(">IIII", 2051, x.shape[0], x.shape[1], x.shape[2]) + x.tobytes()


def idx_labels(y):
    return struct.pack(">II", 2049, len(y)) + y.astype(np.uint8).tobytes()


if "mnist" in groups:
    for split, prefix, n in (("train", "train", 7), ("test", "t10k", 4)):
        x = rng.randint(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.randint(0, 10, size=n)
        with open(p("mnist_plain", "%s-images-idx3-ubyte" % prefix), "wb") as f:
            f.write(idx_images(x))
        with open(p("mnist_plain", "%s-labels-idx1-ubyte" % prefix), "wb") as f:
            f.write(idx_labels(y))
        with gzip.open(p("mnist_gz", "MNIST", "raw", "%s-images-idx3-ubyte.gz" % prefix), "wb") as f:
            f.write(idx_images(x))
        with gzip.open(p("mnist_gz", "MNIST", "raw", "%s-labels-idx1-ubyte.gz" % prefix), "wb") as f:
            f.write(idx_labels(y))
        expect("mnist_%s" % split, x[:, None], y)

# ---------------------------------------------------------------- ImageFolder
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_interlaced_png(path, img):
    # Adam7 RGB PNG, written by hand (PIL cannot write interlaced PNGs)
    h, w, _ = img.shape
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = img[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for r, row in enumerate(sub):
            ft = r % 5  # exercise every filter type
            cur = row.reshape(-1).astype(np.int32)
            prev = sub[r - 1].reshape(-1).astype(np.int32) if r > 0 else np.zeros_like(cur)
            left = np.concatenate([np.zeros(3, np.int32), cur[:-3]])
            upleft = np.concatenate([np.zeros(3, np.int32), prev[:-3]])
            if ft == 0: pred = np.zeros_like(cur)
            elif ft == 1: pred = left
            elif ft == 2: pred = prev
            elif ft == 3: pred = (left + prev) // 2
            else:
                pp = left + prev - upleft
                pa, pb, pc = abs(pp - left), abs(pp - prev), abs(pp - upleft)
                pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
            raw += bytes([ft]) + ((cur - pred) % 256).astype(np.uint8).tobytes()
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1))
    data += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


if "folder" in groups:
    H, W = 12, 16  # non-square on purpose
    for split in ("train", "val"):
        xs, ys, tol = [], [], []
        for ci, cls in enumerate(("cat", "dog")):
            base = ("folder", split, cls)
            items = []  # (file name, expected CHW pixels, is_jpeg); rift takes files in name order
            for k, mode in enumerate(("RGB", "RGBA", "L", "P", "1", "LA")):
                img = smooth(H, W, 4)
                im = Image.fromarray(img[..., :3])
                if mode == "RGBA":
                    im = Image.fromarray(img, "RGBA")
                elif mode == "P":
                    im = im.quantize(colors=(16 if ci == 0 else 200))
                elif mode != "RGB":
                    im = im.convert(mode)
                name = "%s_%02d.png" % (mode, k)
                im.save(p(*base, name))
                items.append((name, load_pil(p(*base, name)), 0))
            img = smooth(H, W)
            write_interlaced_png(p(*base, "z_interlaced.png"), img)
            items.append(("z_interlaced.png", img.transpose(2, 0, 1), 0))
            for j, gray in enumerate((False, True)):
                name = "zz_%d.%s" % (j, "jpg" if j == 0 else "JPEG")
                im = Image.fromarray(smooth(H, W))
                (im.convert("L") if gray else im).save(p(*base, name), quality=92)
                items.append((name, load_pil(p(*base, name)), 1))
            open(p(*base, "notes.txt"), "w").close()  # ignored: not an image
            for name, x, t in sorted(items, key=lambda it: it[0]):
                xs.append(x); ys.append(ci); tol.append(t)
        expect("folder_%s" % split, np.stack(xs), ys)
        np.save(p("expect_folder_%s_jpeg.npy" % split), np.array(tol, dtype=np.uint8))
"##;
