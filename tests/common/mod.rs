//! Helpers shared by the integration tests: the venv's Python (real PyTorch 2.11, numpy,
//! pillow) writes fixtures and reference numbers, and the one built `rift` binary is run.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod autoattack;
pub mod jobs;
pub mod stages;
pub mod tui;
pub mod zoo_case;

/// The bundled adversarially trained MNIST model (ResNet18, width 8) the tests run on.
pub const DEMO_MODEL: &str = "assets/demo/mnist_at_resnet18w8.safetensors";

/// Exit status of a run that failed with an error (bad input, a missing file).
pub const EXIT_ERROR: i32 = 1;
/// Exit status of a command line clap rejects (unknown flag, bad value for a typed flag).
pub const EXIT_USAGE: i32 = 2;

/// What `main.rs`'s panic hook prints instead of Rust's "panicked at" message.
pub const PANIC_HOOK_TEXT: &str = "This is a bug in rift";

/// The venv python made by `.ci/bootstrap` (override with `RIFT_PYTHON`).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("RIFT_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/rift/torch-2.11.0/bin/python3")
}

/// Runs a Python script given as a string with `args`; panics with its stderr on failure.
/// Returns stdout.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("cannot start the venv python; run .ci/bootstrap");
    if !out.status.success() {
        panic!(
            "python failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The release binary that `make test` builds before the suite (`cargo test --release`
/// builds it too: integration tests of a package get `CARGO_BIN_EXE_<name>`).
pub fn rift_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rift"))
}

/// Runs `rift` with `args`, returning the whole output (never panics on failure).
pub fn rift<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> Output {
    Command::new(rift_bin())
        .args(args)
        .env("RIFT_THREADS", "2")
        .output()
        .expect("cannot run the rift binary")
}

/// Runs `rift` and panics with its output unless it succeeds; returns stdout.
pub fn rift_ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let out = rift(args);
    if !out.status.success() {
        panic!(
            "rift {:?} failed ({}):\n{}\n{}",
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Checks that a run failed the way bad input must fail: exit status `code` (a panic
/// exits 101, a signal has none), neither the panic hook's paragraph nor Rust's own panic
/// message in stderr, and every `needles` in stderr. Returns stderr.
pub fn assert_failed(out: &Output, code: i32, needles: &[&str]) -> String {
    let err = stderr_of(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit status {code}, got {}; stderr:\n{err}",
        out.status
    );
    assert!(
        !err.contains(PANIC_HOOK_TEXT)
            && !err.contains("internal error")
            && !err.contains("panicked"),
        "rift panicked instead of failing cleanly:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "stderr does not mention `{n}`:\n{err}");
    }
    err
}

/// `rift SUBCOMMAND` on the bundled demo model and its MNIST digits, on the CPU, then
/// `extra`.
pub fn demo_args<'a>(subcommand: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        subcommand,
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--device",
        "cpu",
    ];
    v.extend_from_slice(extra);
    v
}

/// `--fast` MRC scores equal the faithful ones (`mrc_scores` of each run), module by module.
pub fn assert_fast_equals_faithful(fast: &[(String, f64, f64)], faithful: &[(String, f64, f64)]) {
    assert_eq!(fast.len(), faithful.len());
    for (name, mrc, drop) in fast {
        let (_, f_mrc, f_drop) = faithful.iter().find(|s| &s.0 == name).unwrap();
        assert!(
            (mrc - f_mrc).abs() <= 1e-4 * f_mrc.abs().max(1e-2),
            "{name}: fast {mrc} vs faithful {f_mrc}"
        );
        assert!(
            (drop - f_drop).abs() < 1e-9,
            "{name}: fast drop {drop} vs {f_drop}"
        );
    }
}

/// `rift run` on a tiny zoo fixture (`ckpt` and CIFAR-10 batches in `data`, 32 samples, PGD-2
/// at ε 0.03, `--fast` MRC of `mrc_epochs` epochs) into `session`, then `extra` (the modules,
/// the layer, the epochs, ...).
pub fn tiny_zoo_run_args<'a>(
    ckpt: &'a Path,
    data: &'a Path,
    session: &'a Path,
    mrc_epochs: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--checkpoint",
        path_str(ckpt),
        "--dataset",
        "cifar10",
    ];
    args.extend(["--data-dir", path_str(data), "--session", path_str(session)]);
    args.extend(["--limit", "32", "--adv-limit", "32", "--steps", "2"]);
    args.extend([
        "--eps",
        "0.03",
        "--step",
        "0.015",
        "--mrc-epochs",
        mrc_epochs,
        "--fast",
    ]);
    args.extend_from_slice(extra);
    args
}

/// `rift mrc` of `modules` of the zoo fixture `dir/CKPT` on its first 32 CIFAR-10 test
/// images (PGD-10 at 8/255 without random start, 5 epochs, the published MRC's settings in
/// `tests/py/mrc_ref.py`), then `extra`; the output written as `dir/NAME.json`, parsed.
pub fn zoo_mrc_json(dir: &Path, ckpt: &str, modules: &str, name: &str, extra: &[&str]) -> Value {
    let out = dir.join(format!("{name}.json"));
    let ckpt = dir.join(ckpt);
    let mut args = vec![
        "mrc",
        "--checkpoint",
        path_str(&ckpt),
        "--dataset",
        "cifar10",
    ];
    args.extend(["--data-dir", path_str(dir), "--adv-split", "test"]);
    args.extend([
        "--adv-limit",
        "32",
        "--mrc-epochs",
        "5",
        "--modules",
        modules,
    ]);
    args.extend([
        "--eps",
        "0.03137254901960784",
        "--step",
        "0.00784313725490196",
    ]);
    args.extend([
        "--no-random-start",
        "--device",
        "cpu",
        "--output",
        path_str(&out),
    ]);
    args.extend_from_slice(extra);
    rift_ok(&args);
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

/// Writes uncompressed MNIST IDX files of `n_train` / `n_test` demo digits drawn at random
/// (`tests/py/mnist_idx.py`) into `dir/tiny` and returns that folder.
pub fn tiny_mnist(dir: &Path, n_train: usize, n_test: usize) -> PathBuf {
    let out = dir.join("tiny");
    run_python(
        "import sys, os\nsys.path.insert(0, os.path.join(os.getcwd(), 'tests', 'py'))\n\
         from mnist_idx import write_tiny_mnist\n\
         write_tiny_mnist(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))\n",
        &[path_str(&out), &n_train.to_string(), &n_test.to_string()],
    );
    out
}

/// An MNIST-C-shaped corrupted set under `data/mnist_c` (the layout `mnist_c.zip`
/// unpacks to) made from the test digits of the MNIST folder `data`, each repeated
/// `repeat` times: three corruptions named as MNIST-C's, with simple deterministic
/// stand-in transforms (noise, brightness, a stripe), and `identity`. For sessions with an
/// OOD stage on the demo model, not for accuracy claims.
pub fn tiny_mnist_c(data: &Path, repeat: usize) -> PathBuf {
    use rift::engine::data::{encode_npy, load_split, DatasetKind, NpyDType, Split};
    let set = load_split(DatasetKind::Mnist, data, Split::Test).expect("tiny MNIST test split");
    let root = data.join("mnist_c");
    let per = set.image_len();
    type PixelMap = fn(usize, u8) -> u8;
    let transforms: [(&str, PixelMap); 4] = [
        ("identity", |_, p| p),
        ("shot_noise", |i, p| {
            (p as i32 + ((i * 37) % 61) as i32 - 30).clamp(0, 255) as u8
        }),
        ("brightness", |_, p| p.saturating_add(90)),
        ("stripe", |i, p| if (i % 28) / 4 == 3 { 255 } else { p }),
    ];
    for (name, f) in transforms {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut pixels = Vec::with_capacity(set.n * repeat * per);
        let mut labels = Vec::with_capacity(set.n * repeat);
        for _ in 0..repeat {
            for k in 0..set.n {
                pixels.extend(set.image(k).iter().enumerate().map(|(i, &p)| f(i, p)));
                labels.push(set.labels[k] as u8);
            }
        }
        let n = labels.len();
        let images = encode_npy(NpyDType::U8, &[n, 28, 28, 1], &pixels).unwrap();
        std::fs::write(dir.join("test_images.npy"), images).unwrap();
        let labels = encode_npy(NpyDType::U8, &[n], &labels).unwrap();
        std::fs::write(dir.join("test_labels.npy"), labels).unwrap();
    }
    root
}

/// Largest |a − b| between two .npy arrays of the same shape (logits of rift and PyTorch).
pub fn max_abs_diff(a: &Path, b: &Path) -> f32 {
    let a = rift::engine::data::read_npy(a).unwrap();
    let b = rift::engine::data::read_npy(b).unwrap();
    assert_eq!(a.shape, b.shape, "logit shapes differ");
    let (a, b) = (a.to_f32().unwrap(), b.to_f32().unwrap());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// (module, MRC, robust-accuracy drop) per module of a `rift mrc --output` JSON, in its order.
pub fn mrc_scores(v: &serde_json::Value) -> Vec<(String, f64, f64)> {
    v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["mrc"].as_f64().unwrap(),
                m["robust_acc_drop"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Checks `rift mrc`'s scores (`mrc_scores` of its JSON, ascending) against the printed
/// output of `tests/py/mrc_ref.py`'s `published_mrc` (`{name: [MRC, drop]}`): the same
/// modules, every MRC within 2 % (plus 1e-4), every robust-accuracy drop within
/// `drop_tolerance` points, and the same ranking up to ties (reference MRCs within that
/// tolerance of each other).
pub fn assert_mrc_matches_reference(
    ours: &[(String, f64, f64)],
    reference_json: &str,
    drop_tolerance: f64,
) {
    let reference: std::collections::HashMap<String, Vec<f64>> =
        serde_json::from_str(reference_json).expect("the reference prints JSON");
    assert_eq!(
        ours.len(),
        reference.len(),
        "every module the reference scored is scored, and no other"
    );
    for (name, mrc, drop) in ours {
        let (r_mrc, r_drop) = (reference[name][0], reference[name][1]);
        assert!(
            (mrc - r_mrc).abs() <= 0.02 * r_mrc.abs() + 1e-4,
            "{name}: MRC {mrc} vs torch {r_mrc}"
        );
        assert!(
            (drop - r_drop).abs() <= drop_tolerance,
            "{name}: drop {drop} vs torch {r_drop}"
        );
    }
    // Two modules whose reference MRCs lie within that same tolerance of each other are a
    // tie: either order is right (a tiny XCiT's q and k, that close, once swapped in CI).
    let tie = |r: f64| 0.02 * r.abs() + 1e-4;
    for (i, (earlier, _, _)) in ours.iter().enumerate() {
        for (later, _, _) in &ours[i + 1..] {
            let (r_earlier, r_later) = (reference[earlier][0], reference[later][0]);
            assert!(
                r_later >= r_earlier - tie(r_earlier),
                "rankings differ: rift ranks {earlier} (torch {r_earlier}) below {later} \
                 (torch {r_later})"
            );
        }
    }
}

/// `rift run` on the demo model with small, fast settings (96 test samples, 64 for the
/// adversarial set, PGD-2 at ε 0.1, MRC over five modules for 2 epochs, one fine-tuning
/// epoch, α on 0, 0.5, 1), then `extra`.
pub fn demo_run_args(session: &Path, data: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "run",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(data),
        "--session",
        path_str(session),
        "--limit",
        "96",
        "--adv-limit",
        "64",
        "--steps",
        "2",
        "--eps",
        "0.1",
        "--step",
        "0.05",
        "--modules",
        "conv1,layer1.0.conv1,layer2.0.shortcut.0,layer3.1.conv2,linear",
        "--mrc-epochs",
        "2",
        "--epochs",
        "1",
        "--alphas",
        "0,0.5,1",
        "--device",
        "cpu",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display())),
    )
    .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

/// The strings of a JSON array.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// A failure: exit status 1, no panic, and every `needles` in stderr (`what` names the case
/// in the test output).
pub fn assert_fails_cleanly(out: &Output, what: &str, needles: &[&str]) {
    eprintln!("checking that {what} fails cleanly");
    assert_failed(out, EXIT_ERROR, needles);
}

/// Tiny dataset fixtures of `groups` in every layout rift reads, with the pixels and labels
/// torchvision / numpy / PIL read from them (`tests/py/datasets_fixtures.py`), in a fresh
/// temporary folder.
pub fn dataset_fixtures(groups: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec![dir.path().to_str().expect("utf-8 temp path")];
    args.extend_from_slice(groups);
    run_python(include_str!("../py/datasets_fixtures.py"), &args);
    dir
}
