//! `cargo bench --bench pipeline`: the RiFT steps.
//!
//! 1. MRC fast path vs faithful path on ResNet18-width-16 with a CIFAR-shaped adversarial
//!    set, same modules and settings, in one run: the ratio (target ≥ 1.5×) and whether
//!    both give the same values.
//! 2. First-order screening (not in the paper) of every module of ResNet18-width-16 on 256
//!    adversarial samples against exact MRC of every module (published settings: 10
//!    epochs, faithful and fast path), side by side: the ratio (target ≥ 50×). Then the time
//!    to a recommendation with screening + exact MRC of the 3 lowest estimates against
//!    exact-all, and whether both recommend the same module, on each model of this bench
//!    (ResNet18-w16 with random weights, the trained demo ResNet18-w8 on MNIST).
//! 3. Each stage of `rift run` (wall time and peak memory, from the binary's own
//!    `RIFT_PEAK_MEMORY` report) on the bundled demo and on ResNet18 (width 16) with a
//!    CIFAR-shaped fixture written in torchvision's layout.
mod common;

use common::{python, Scorecard};
use rift::engine::checkpoint::load_checkpoint;
use rift::engine::models::Model;
use rift::engine::rift::mrc::adv_set::TensorSet;
use rift::engine::rift::mrc::results::MrcResult;
use rift::engine::rift::mrc::scoring::{compute, MrcInputs};
use rift::engine::rift::mrc::screen::{estimate, screen_then_exact, ExactLowest, ScreenConfig};
use rift::engine::rift::mrc::{select_modules, MrcConfig};
use rift::engine::CancelFlag;
use std::process::Command;
use std::time::Instant;

const MAKE_FIXTURE: &str = r#"
import sys, os, pickle, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build, randomize_bn
d = sys.argv[1]
torch.manual_seed(0)
net = build("resnet18", 10, 3, width=16)
randomize_bn(net)
torch.save(net.state_dict(), f"{d}/r18w16.pth")
rng = np.random.default_rng(0)
os.makedirs(f"{d}/cifar-10-batches-py", exist_ok=True)
def batch(n):
    return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n).tolist()), b"batch_label": b"x", b"filenames": [b"f"] * n}
for i in range(1, 6):
    pickle.dump(batch(400), open(f"{d}/cifar-10-batches-py/data_batch_{i}", "wb"), protocol=2)
pickle.dump(batch(500), open(f"{d}/cifar-10-batches-py/test_batch", "wb"), protocol=2)
"#;

fn bench_mrc(dir: &std::path::Path, card: &mut Scorecard) {
    let ckpt = load_checkpoint(&dir.join("r18w16.pth")).expect("checkpoint");
    let (mean, std) = (vec![0.4914, 0.4822, 0.4465], vec![0.2471, 0.2435, 0.2616]);
    let model = Model::from_checkpoint(
        &ckpt,
        None,
        None,
        tch::Device::Cpu,
        (&mean, &std, "cifar10"),
    )
    .expect("model");
    tch::manual_seed(0);
    let n = 256;
    let adv = TensorSet {
        x: tch::Tensor::rand([n, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu)),
        y: tch::Tensor::randint(10, [n], (tch::Kind::Int64, tch::Device::Cpu)),
        n: n as usize,
    };
    let modules = select_modules(&model, &[]).expect("modules");
    let mut times = Vec::new();
    let mut results = Vec::new();
    for fast in [false, true] {
        let cfg = MrcConfig {
            epochs: 3,
            fast,
            ..MrcConfig::default()
        };
        let t = Instant::now();
        let r = compute(
            &MrcInputs {
                model: &model,
                adv: &adv,
                adv_split: "test",
                cfg: &cfg,
            },
            &modules,
            &CancelFlag::default(),
            &mut |_| {},
        )
        .expect("mrc");
        times.push(t.elapsed().as_secs_f64());
        results.push(r);
    }
    let max_rel = results[0]
        .modules
        .iter()
        .map(|a| {
            let b = results[1]
                .modules
                .iter()
                .find(|b| b.name == a.name)
                .expect("same modules");
            (a.mrc - b.mrc).abs() / a.mrc.abs().max(1e-3)
        })
        .fold(0.0, f64::max);
    let ratio = times[0] / times[1];
    println!(
        "mrc (resnet18-w16, {} modules, {n} samples, 3 epochs): faithful {:.1}s, fast {:.1}s, speed-up {:.2}x (target >= 1.5) {}; max relative difference {:.1e} (same values: {})",
        modules.len(), times[0], times[1], ratio, card.target("mrc --fast speed-up >= 1.5x", ratio >= 1.5),
        max_rel, card.target("mrc --fast gives the same values (rel. < 1e-4)", max_rel < 1e-4)
    );
    bench_session_io(&results[1], times[1], card);
}

/// What the MRC stage adds for a session (issue 23): the session lock taken and released
/// once, and the partial file (adversarial-set summary and every finished score) written
/// atomically after each module, as `MrcStage` writes it — against the fast MRC run just
/// measured, in the same process.
fn bench_session_io(r: &MrcResult, mrc_seconds: f64, card: &mut Scorecard) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mrc_partial.yaml");
    let t = Instant::now();
    let lock = rift::engine::session_lock::SessionLock::acquire(dir.path()).expect("lock");
    for k in 1..=r.modules.len() {
        let record = rift::engine::rift::mrc::partial::PartialMrc {
            adv_set: Some(rift::engine::rift::mrc::partial::AdvSetSummary {
                n: r.adv_n,
                loss: r.baseline_loss,
                acc: r.baseline_acc,
            }),
            estimates: Vec::new(),
            scores: r.modules[..k].to_vec(),
        };
        let text = serde_yaml::to_string(&record).expect("yaml");
        rift::engine::files::atomic_write(&path, text.as_bytes()).expect("write");
    }
    drop(lock);
    let io = t.elapsed().as_secs_f64();
    let share = 100.0 * io / mrc_seconds;
    println!(
        "session i/o of an MRC stage ({} partial writes + the lock): {:.1} ms, {:.3}% of the fast MRC run (target < 1%) {}",
        r.modules.len(),
        1e3 * io,
        share,
        card.target("partial file + lock < 1% of an MRC run", share < 1.0)
    );
}

fn cifar_model(dir: &std::path::Path) -> Model {
    let ckpt = load_checkpoint(&dir.join("r18w16.pth")).expect("checkpoint");
    let (mean, std) = (vec![0.4914, 0.4822, 0.4465], vec![0.2471, 0.2435, 0.2616]);
    Model::from_checkpoint(
        &ckpt,
        None,
        None,
        tch::Device::Cpu,
        (&mean, &std, "cifar10"),
    )
    .expect("model")
}

fn random_adv_set(n: i64) -> TensorSet {
    tch::manual_seed(0);
    TensorSet {
        x: tch::Tensor::rand([n, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu)),
        y: tch::Tensor::randint(10, [n], (tch::Kind::Int64, tch::Device::Cpu)),
        n: n as usize,
    }
}

/// The demo model and a PGD set of the first 256 demo test digits (ε 0.1, as tests/mrc.rs).
fn demo_model_and_set() -> (Model, TensorSet) {
    use rift::engine::attack::PgdConfig;
    use rift::engine::data::{load_split, DatasetKind, Split};
    let ckpt = load_checkpoint(std::path::Path::new(
        "assets/demo/mnist_at_resnet18w8.safetensors",
    ))
    .expect("demo checkpoint");
    let model = Model::from_checkpoint(
        &ckpt,
        None,
        None,
        tch::Device::Cpu,
        (&[0.1307], &[0.3081], "mnist"),
    )
    .expect("demo model");
    let test = load_split(
        DatasetKind::Mnist,
        std::path::Path::new("assets/demo"),
        Split::Test,
    )
    .expect("demo data");
    let idx: Vec<usize> = (0..256).collect();
    let pgd = PgdConfig {
        eps: 0.1,
        step: 0.02,
        steps: 10,
        random_start: false,
        restarts: 1,
        norm: Default::default(),
    };
    let adv = rift::engine::rift::mrc::adv_set::generate(
        &model,
        (&test, &idx),
        &pgd,
        rift::engine::attack::Noise::Global,
        128,
        &CancelFlag::default(),
        &mut |_| {},
    )
    .expect("adversarial set");
    (model, adv)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed().as_secs_f64())
}

/// Screening vs exact MRC of all modules (faithful and fast), then time to a recommendation.
fn bench_screen(dir: &std::path::Path, card: &mut Scorecard) {
    let cancel = CancelFlag::default();
    let model = cifar_model(dir);
    let adv = random_adv_set(256);
    let modules = select_modules(&model, &[]).expect("modules");
    let cfg = MrcConfig::default();
    let (base, _) = adv.baseline(&model, cfg.batch_size).expect("baseline");
    let screen = ScreenConfig {
        epsilon: cfg.epsilon,
        batch_size: cfg.batch_size,
        one_step: false,
    };
    // Median of 5: one pass takes seconds, so one-off costs (the first backward's
    // allocations) and a neighbour's load would otherwise dominate.
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            timed(|| {
                estimate(&model, &adv, &modules, base, &screen, &cancel, &mut |_| {})
                    .expect("screen")
            })
            .1
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    let t_screen = runs[2];
    println!(
        "screening passes (s): {}",
        runs.iter()
            .map(|t| format!("{t:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let run_exact = |fast: bool| {
        let cfg = MrcConfig {
            fast,
            ..MrcConfig::default()
        };
        timed(|| {
            compute(
                &MrcInputs {
                    model: &model,
                    adv: &adv,
                    adv_split: "test",
                    cfg: &cfg,
                },
                &modules,
                &cancel,
                &mut |_| {},
            )
            .expect("mrc")
        })
    };
    let (faithful, t_faithful) = run_exact(false);
    let (_, t_fast) = run_exact(true);
    let faithful_ok = card.target(
        "screening >= 50x faster than exact",
        t_faithful / t_screen >= 50.0,
    );
    let fast_ok = card.target(
        "screening >= 50x faster than exact --fast",
        t_fast / t_screen >= 50.0,
    );
    println!(
        "screen (resnet18-w16, {} modules, 256 samples): screening {:.2}s; exact all (10 epochs) faithful {:.1}s = {:.0}x ({}), --fast {:.1}s = {:.0}x ({}) (target >= 50x)",
        modules.len(), t_screen, t_faithful, t_faithful / t_screen, faithful_ok,
        t_fast, t_fast / t_screen, fast_ok
    );
    time_to_recommendation("resnet18-w16 random", &model, &adv, (&faithful, t_faithful));

    let (demo, demo_adv) = demo_model_and_set();
    let demo_modules = select_modules(&demo, &[]).expect("modules");
    let (exact_demo, t_demo) = timed(|| {
        compute(
            &MrcInputs {
                model: &demo,
                adv: &demo_adv,
                adv_split: "test",
                cfg: &cfg,
            },
            &demo_modules,
            &cancel,
            &mut |_| {},
        )
        .expect("mrc")
    });
    time_to_recommendation(
        "demo resnet18-w8 mnist",
        &demo,
        &demo_adv,
        (&exact_demo, t_demo),
    );
}

/// `--screen --exact-lowest 3` against an exact-all result of the same model and set.
fn time_to_recommendation(label: &str, model: &Model, adv: &TensorSet, exact: (&MrcResult, f64)) {
    let modules = select_modules(model, &[]).expect("modules");
    let cfg = MrcConfig::default();
    let screen = ScreenConfig {
        epsilon: cfg.epsilon,
        batch_size: cfg.batch_size,
        one_step: false,
    };
    let (r, t) = timed(|| {
        let inputs = MrcInputs {
            model,
            adv,
            adv_split: "test",
            cfg: &cfg,
        };
        screen_then_exact(
            &inputs,
            &modules,
            &screen,
            ExactLowest::Count(3),
            &CancelFlag::default(),
            &mut |_| {},
        )
        .expect("screen + exact")
    });
    // ρ of the estimates against the exact-all values, for orientation.
    let est: Vec<f64> = exact
        .0
        .modules
        .iter()
        .map(|m| {
            r.modules
                .iter()
                .find(|x| x.name == m.name)
                .and_then(|x| x.estimate)
                .or_else(|| {
                    r.estimated_only
                        .iter()
                        .find(|x| x.name == m.name)
                        .map(|x| x.estimate)
                })
                .unwrap_or(f64::NAN)
        })
        .collect();
    let mrc: Vec<f64> = exact.0.modules.iter().map(|m| m.mrc).collect();
    let rho = rift::engine::rift::mrc::screen::spearman(&est, &mrc);
    println!(
        "time to recommendation [{label}]: --screen --exact-lowest 3 {:.1}s -> {} ; exact all {:.1}s -> {} ; {:.1}x faster; same module: {}; Spearman rho (estimate vs exact, all modules) {}",
        t,
        r.recommended,
        exact.1,
        exact.0.recommended,
        exact.1 / t,
        if r.recommended == exact.0.recommended { "yes" } else { "NO" },
        rho.map_or("undefined".to_string(), |x| format!("{x:.3}"))
    );
}

fn run_stage(args: &[&str]) -> (f64, String) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rift"))
        .args(args)
        .env("RIFT_PEAK_MEMORY", "1")
        .output()
        .expect("rift");
    let secs = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rift {args:?} failed:\n{err}");
    let peak = err
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .unwrap_or("?")
        .to_string();
    (secs, peak)
}

fn bench_stages(
    label: &str,
    model: &str,
    dataset: &str,
    data_dir: &str,
    attack: &[&str],
    dir: &std::path::Path,
) {
    let p = |n: &str| dir.join(n).display().to_string();
    let (mrc, ft, interp) = (
        p(&format!("{label}-mrc.json")),
        p(&format!("{label}-ft.safetensors")),
        p(&format!("{label}-interp.json")),
    );
    let base = [
        "--checkpoint",
        model,
        "--dataset",
        dataset,
        "--data-dir",
        data_dir,
        "--device",
        "cpu",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(attack)
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    // Fine-tuning trains on clean data: it takes no attack flags.
    let clean = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let stages: Vec<(&str, Vec<String>)> = vec![
        (
            "eval (PGD-10)",
            [vec!["eval".to_string()], with(&["--limit", "500"])].concat(),
        ),
        (
            "mrc --fast",
            [
                vec!["mrc".to_string()],
                with(&["--adv-limit", "256", "--fast", "--output", &mrc]),
            ]
            .concat(),
        ),
        (
            "finetune (3 epochs)",
            [
                vec!["finetune".to_string()],
                clean(&[
                    "--layer",
                    "auto",
                    "--mrc-result",
                    &mrc,
                    "--epochs",
                    "3",
                    "--save",
                    &ft,
                ]),
            ]
            .concat(),
        ),
        (
            "interpolate (11 α)",
            [
                vec!["interpolate".to_string()],
                with(&["--finetuned", &ft, "--limit", "500", "--output", &interp]),
            ]
            .concat(),
        ),
    ];
    for (name, args) in stages {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (secs, peak) = run_stage(&refs);
        println!("stage [{label}] {name:<22} {secs:>7.1} s   peak memory {peak}");
    }
}

fn main() -> std::process::ExitCode {
    // As the rift binary does first thing (see `tune_allocator`): measure rift as it runs.
    rift::engine::device::tune_allocator();
    let mut card = Scorecard::new("pipeline");
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(python())
        .arg("-c")
        .arg(MAKE_FIXTURE)
        .arg(dir.path())
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if want("mrc") {
        bench_mrc(dir.path(), &mut card);
    }
    if want("screen") {
        bench_screen(dir.path(), &mut card);
    }
    if want("stages") {
        bench_stages(
            "demo",
            "assets/demo/mnist_at_resnet18w8.safetensors",
            "mnist",
            "assets/demo",
            &["--eps", "0.2", "--step", "0.05"],
            dir.path(),
        );
        let ck = dir.path().join("r18w16.pth").display().to_string();
        let dd = dir.path().display().to_string();
        bench_stages(
            "resnet18-w16 cifar-shaped",
            &ck,
            "cifar10",
            &dd,
            &[],
            dir.path(),
        );
    }
    card.finish()
}
