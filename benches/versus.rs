//! `cargo bench --bench versus` (part of `make bench`): rift against a plain PyTorch-eager
//! implementation of SPEC.md (`benches/py/eager_rift.py`), stage by stage, in one run —
//! issue 5's yardstick. Same checkpoint, data, batch sizes, seed, thread count and device
//! on both sides; each stage of each side runs in a fresh process (rift: this bench
//! re-executed as `versus child STAGE`, calling the library), rift first, eager right after,
//! so a neighbour's load hits both alike. Prints a table and writes `target/bench.json`.
//!
//! Stages: adversarial-set generation (PGD-10), full MRC (every module; rift `--fast`, the
//! eager side the published algorithm with model copies and full forwards), one
//! fine-tuning epoch, PGD-10 evaluation, PGD-L2 evaluation (`eval-l2`: ε 0.5, step 0.1,
//! 10 steps; eager side `eager_l2.py`; issue 24's target rift ≥ 1.0× eager), the 11-point
//! α sweep, and the whole pipeline (adversarial set → MRC → one epoch on the lowest module
//! → α sweep). The ResNet18 MRC row carries issue 26's target (≥ 3× eager).
//!
//! Fixture: adversarially trained, so PGD has robust samples to break and "agreed" can fail
//! for PGD evaluation and α. `eager_rift.py fixture` makes it with the recipe of
//! `tests/py/at_task.py` (shared with tests/autoattack.rs): a learnable CIFAR-shaped task
//! (the demo's MNIST digits in random colours on contrasting backgrounds, with noise;
//! 2,000 train / 500 test images as CIFAR-10 pickles, true labels) and three epochs of PGD-3
//! adversarial training in PyTorch. It is cached under `target/versus-fixtures/` keyed by a
//! hash of the recipe (its scripts and sizes), so reruns skip the training. The bench prints
//! each fixture's clean and PGD-10 robust accuracy and fails (exit status and summary line)
//! when the robust accuracy is outside 20-70 %.
//!
//! Networks (CPU): ResNet18-width-16 for every row; `RIFT_VERSUS_N` test samples (default
//! 256: two PGD batches) for the adversarial set, evaluation and sweep; MRC of all 21
//! modules with `RIFT_VERSUS_MRC_EPOCHS` ascent epochs (default 10, as published). Then PGD-10
//! evaluation and one fine-tuning epoch again with rift's `--channels-last` (and the epoch
//! with `--precision bf16` too) against the same fp32 eager baseline (rows `eval/cl`, ...).
//! Issue 11's zoo rows: a DM WideResNet-16-2 with SiLU (robustbench's own
//! `dm_wide_resnet.py`, loaded by file path, on the eager side; rift detects the family from
//! the keys), PGD-10 evaluation (target: rift ≥ 1.0× eager) and full MRC, rift `--fast`
//! against the published algorithm (target ≥ 2×), on `RIFT_VERSUS_DM_N` samples (default
//! 128) with `RIFT_VERSUS_DM_MRC_EPOCHS` (default 3) ascent epochs over its 17 modules. The
//! speed targets are in the summary line and exit status like the agreement checks. About
//! 15 minutes on an idle 2-core machine, plus a few minutes to train the fixtures once.
//! Arguments filter rows by name: `cargo bench --bench versus -- eval mrc`. Stages under
//! 30 s (both sides) run three times, alternating sides; each side's best run counts.
//! When CUDA is available the same table is also produced for ResNet18 and WRN-34-10 on
//! the GPU (untested: no GPU was lent when this was written).
//!
//! Agreement (random choices differ between the two sides, so each check has a tolerance;
//! the reasons are in `agree`, the numbers in the constants below and BENCHMARKS.md).
mod common;

use common::{env_usize, python, Scorecard};
#[path = "versus/rift_side.rs"]
mod rift_side;

use rift_side::Settings;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// Adversarial-set loss: relative. Both PGDs are deterministic (no random start) and the
/// same ATen kernels run underneath; only sign flips of near-zero gradient entries differ.
const ADV_LOSS_REL: f64 = 0.01;
/// Accuracy points on the adversarial set / under PGD: at n = 128, 2 points = 2.6 samples
/// whose PGD path may cross the decision boundary differently after such a sign flip.
const ROBUST_PTS: f64 = 2.0;
/// MRC per module: |rift − eager| ≤ MRC_REL·|eager| + MRC_ABS. With `n` ≤ 512 the ascent
/// batch (512) holds the whole set, so the shuffle cannot change the update; what differs
/// is the adversarial set (as above) and float summation order.
const MRC_REL: f64 = 0.05;
const MRC_ABS: f64 = 1e-4;
/// One fine-tuning epoch: different shuffles and augmentation draws on each side.
const FT_LOSS_REL: f64 = 0.05;
const FT_ACC_PTS: f64 = 5.0;
/// α sweep: interpolated weights are the same up to rounding.
const SWEEP_CLEAN_PTS: f64 = 1.0;
const SWEEP_ROBUST_PTS: f64 = 2.0;
const ALPHA_STEP: f64 = 0.1;
/// Stages shorter than this (both sides together, seconds) run `SHORT_REPS` times.
const SHORT_SECONDS: f64 = 30.0;
const SHORT_REPS: usize = 3;

/// Robust accuracy (%) a fixture must have under the bench's PGD-10: mid-range, so that
/// "agreed" can fail for PGD evaluation and α (at 0 % every attack agrees).
const ROBUST_RANGE: (f64, f64) = (20.0, 70.0);
/// Where `eager_rift.py fixture` keeps trained fixtures, one folder per recipe hash.
const FIXTURE_CACHE: &str = "target/versus-fixtures";
/// The zoo network of issue 11's speed targets: small enough for two CPU cores.
const DM_ARCH: &str = "dm-wrn-16-2";
/// Every stage row, in order.
const ALL_ROWS: &[&str] = &[
    "advset",
    "mrc",
    "finetune",
    "eval",
    "eval-l2",
    "sweep",
    "pipeline",
    "eval/cl",
    "finetune/cl",
    "finetune/bf16+cl",
];

/// A network the bench compares on, the rows it runs and its speed targets (row, least
/// eager s / rift s).
struct BenchModel {
    label: String,
    settings: Settings,
    rows: &'static [&'static str],
    speed: &'static [(&'static str, f64)],
}

fn parse_json(out: std::process::Output, who: &str) -> Value {
    assert!(
        out.status.success(),
        "{who} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{'));
    serde_json::from_str(line.unwrap_or("")).unwrap_or_else(|e| panic!("{who}: {e}: {text}"))
}

fn run_rift(stage: &str, s: &Settings) -> Value {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .args(["child", stage])
        .env(
            "RIFT_VERSUS_SETTINGS",
            serde_json::to_string(s).expect("json"),
        )
        .output()
        .expect("re-run the bench as a child");
    parse_json(out, &format!("rift {stage}"))
}

fn eager_args(s: &Settings) -> Vec<String> {
    [
        "--dir",
        &s.dir.display().to_string(),
        "--arch",
        &s.arch,
        "--width",
        &s.width.to_string(),
        "--n",
        &s.n.to_string(),
        "--mrc-epochs",
        &s.mrc_epochs.to_string(),
        "--layer",
        &s.layer,
        "--device",
        &s.device,
        "--threads",
        &s.threads.to_string(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

fn run_eager(stage: &str, s: &Settings) -> Value {
    // PGD-L2 has a script of its own (eager_l2.py says why).
    let script = match stage {
        "eval-l2" => "benches/py/eager_l2.py",
        _ => "benches/py/eager_rift.py",
    };
    let out = Command::new(python())
        .arg(script)
        .arg(stage)
        .args(eager_args(s))
        .output()
        .expect("python");
    parse_json(out, &format!("eager {stage}"))
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// MRC values per module, and whether the lowest module agrees (or, if not, rift's pick
/// is within tolerance of the eager side's lowest, i.e. a tie).
fn mrc_agree(r: &Value, e: &Value) -> (bool, String) {
    let (rm, em) = (&r["modules"], &e["modules"]);
    let names: Vec<&String> = em
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    let mut worst = (0.0f64, String::new());
    let mut ok = !names.is_empty() && rm.as_object().map(|o| o.len()) == Some(names.len());
    for n in &names {
        let (a, b) = (f(&rm[n.as_str()], "mrc"), f(&em[n.as_str()], "mrc"));
        let excess = (a - b).abs() - (MRC_REL * b.abs() + MRC_ABS);
        ok &= excess <= 0.0;
        let rel = (a - b).abs() / b.abs().max(1e-12);
        if rel > worst.0 || worst.1.is_empty() {
            worst = (rel, n.to_string());
        }
    }
    let (rl, el) = (
        r["recommended"].as_str().unwrap_or(""),
        e["recommended"].as_str().unwrap_or(""),
    );
    let tie = close(
        f(&em[rl], "mrc"),
        f(&em[el], "mrc"),
        MRC_REL * f(&em[el], "mrc").abs() + MRC_ABS,
    );
    ok &= rl == el || tie;
    (
        ok,
        format!(
            "lowest {rl} / {el}; {} modules, max rel diff {:.1e} ({})",
            names.len(),
            worst.0,
            worst.1
        ),
    )
}

/// Per-α accuracies (only when both sides sweep the same endpoints) and the chosen α.
fn sweep_agree(r: &Value, e: &Value, alpha_tol: f64, per_point: bool) -> (bool, String) {
    let empty = vec![];
    let (rp, ep) = (
        r["points"].as_array().unwrap_or(&empty),
        e["points"].as_array().unwrap_or(&empty),
    );
    let mut ok = rp.len() == ep.len() && !rp.is_empty();
    let (mut dc, mut dr) = (0.0f64, 0.0f64);
    for (a, b) in rp.iter().zip(ep) {
        ok &= close(f(a, "alpha"), f(b, "alpha"), 1e-9);
        dc = dc.max((f(a, "clean_acc") - f(b, "clean_acc")).abs());
        dr = dr.max((f(a, "robust_acc") - f(b, "robust_acc")).abs());
    }
    if per_point {
        ok &= dc <= SWEEP_CLEAN_PTS && dr <= SWEEP_ROBUST_PTS;
    }
    let (ra, ea) = (f(r, "chosen_alpha"), f(e, "chosen_alpha"));
    ok &= close(ra, ea, alpha_tol + 1e-9);
    (
        ok,
        format!("α {ra} / {ea}; max |Δ| clean {dc:.2} robust {dr:.2} pts"),
    )
}

/// Whether both sides computed the same thing, and the compared numbers (rift / eager).
fn agree(stage: &str, r: &Value, e: &Value) -> (bool, String) {
    match stage {
        "advset" => {
            let (rl, el) = (f(r, "adv_loss"), f(e, "adv_loss"));
            let (ra, ea) = (f(r, "adv_acc"), f(e, "adv_acc"));
            (
                close(rl, el, ADV_LOSS_REL * el.abs()) && close(ra, ea, ROBUST_PTS),
                format!("adv loss {rl:.4} / {el:.4}; acc {ra:.1} / {ea:.1}"),
            )
        }
        "mrc" => mrc_agree(r, e),
        "finetune" => {
            let (rl, el) = (f(r, "train_loss"), f(e, "train_loss"));
            let (ra, ea) = (f(r, "test_acc"), f(e, "test_acc"));
            (
                close(rl, el, FT_LOSS_REL * el.abs()) && close(ra, ea, FT_ACC_PTS),
                format!("train loss {rl:.4} / {el:.4}; test acc {ra:.1} / {ea:.1}"),
            )
        }
        "eval" | "eval-l2" => {
            let (rc, ec) = (f(r, "clean_correct"), f(e, "clean_correct"));
            let (rr, er) = (f(r, "robust_correct"), f(e, "robust_correct"));
            let n = f(e, "n").max(1.0);
            (
                rc == ec && close(rr, er, ROBUST_PTS / 100.0 * n),
                format!("clean correct {rc} / {ec}; robust correct {rr} / {er}"),
            )
        }
        "sweep" => sweep_agree(r, e, ALPHA_STEP, true),
        // The fine-tuned endpoints differ (stochastic epoch), so α may move by a grid step.
        "pipeline" => {
            let (rm, em) = (
                r["recommended"].as_str().unwrap_or(""),
                e["recommended"].as_str().unwrap_or(""),
            );
            let (ok, detail) = sweep_agree(r, e, 2.0 * ALPHA_STEP, false);
            (ok && rm == em, format!("module {rm} / {em}; {detail}"))
        }
        _ => (false, String::new()),
    }
}

/// Work per stage, for the throughput column: (amount, unit).
fn work(stage: &str, s: &Settings, modules: usize) -> (f64, &'static str) {
    let n = s.n as f64;
    match stage {
        "advset" | "eval" | "eval-l2" => (n, "img/s"),
        "mrc" => ((modules * s.mrc_epochs) as f64, "module-epochs/s"),
        "finetune" => (2000.0, "img/s"),
        "sweep" => (11.0 * n, "img·α/s"),
        _ => (3600.0, "runs/h"),
    }
}

/// The adversarially trained fixture (`eager_rift.py fixture`, cached under
/// `target/versus-fixtures/` by a hash of its recipe): points `s.dir` at it and returns its
/// JSON line (`clean_acc`, `robust_acc` on the first `n` test images, `cached`).
fn fixture(s: &mut Settings) -> Value {
    let out = Command::new(python())
        .arg("benches/py/eager_rift.py")
        .arg("fixture")
        .args(["--cache", FIXTURE_CACHE, "--arch", &s.arch])
        .args(["--width", &s.width.to_string(), "--n", &s.n.to_string()])
        .args(["--threads", &s.threads.to_string(), "--device", &s.device])
        .output()
        .expect("python fixture");
    let v = parse_json(out, "fixture");
    s.dir = PathBuf::from(v["dir"].as_str().expect("fixture dir"));
    v
}

/// One network's rows: the fixture first (its robust accuracy must be mid-range, or PGD
/// and α agreement could not fail), then each stage of `rows` on both sides.
fn bench_model(m: &BenchModel, card: &mut Scorecard, rows: &mut Vec<Value>) {
    let mut s = m.settings.clone();
    let fx = fixture(&mut s);
    let s = &s;
    let robust = f(&fx, "robust_acc");
    let mid = ROBUST_RANGE.0 <= robust && robust <= ROBUST_RANGE.1;
    println!(
        "\n{}: adversarially trained fixture {}: clean {:.1} %, PGD-10 robust {:.1} % on {} test images ({}; target {}-{} %: {})",
        m.label,
        s.dir.display(),
        f(&fx, "clean_acc"),
        robust,
        s.n,
        if fx["cached"] == json!(true) { "cached" } else { "trained now" },
        ROBUST_RANGE.0,
        ROBUST_RANGE.1,
        card.target(&format!("{} fixture robust accuracy {robust:.1} % within {}-{} %", m.label, ROBUST_RANGE.0, ROBUST_RANGE.1), mid),
    );
    println!(
        "{}: n {} test samples, MRC {} epochs, device {}, {} threads",
        m.label, s.n, s.mrc_epochs, s.device, s.threads
    );
    println!(
        "{:<16} {:>8} {:>8} {:>6} {:>22} {:>15} {:>6}  compared (rift / eager)",
        "stage", "rift s", "eager s", "ratio", "throughput rift/eager", "peak MB r/e", "agree"
    );
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // The stages as published (fp32, NCHW), then PGD-10 evaluation and fine-tuning again
    // with rift's faster layout and precision against the same fp32 eager baseline. (No
    // bf16 evaluation row: `benches/precision.rs` measures bf16 evaluation, with its own
    // accuracy tolerance.)
    let fp32 = s.clone();
    let cl = Settings {
        channels_last: true,
        ..s.clone()
    };
    let bf16 = Settings {
        precision: "bf16".into(),
        ..cl.clone()
    };
    let runs = [
        ("advset", "advset", &fp32),
        ("mrc", "mrc", &fp32),
        ("finetune", "finetune", &fp32),
        ("eval", "eval", &fp32),
        ("eval-l2", "eval-l2", &fp32),
        ("sweep", "sweep", &fp32),
        ("pipeline", "pipeline", &fp32),
        ("eval/cl", "eval", &cl),
        ("finetune/cl", "finetune", &cl),
        ("finetune/bf16+cl", "finetune", &bf16),
    ];
    for (row, stage, rs_settings) in runs {
        if !m.rows.contains(&row)
            || (!filter.is_empty() && !filter.iter().any(|f| row.contains(f.as_str())))
        {
            continue;
        }
        let mut r = run_rift(stage, rs_settings);
        let mut e = run_eager(stage, s);
        // Short stages are at the mercy of a neighbour's burst: run them SHORT_REPS times
        // in all, alternating sides, and keep each side's fastest run.
        if f(&r, "seconds") + f(&e, "seconds") < SHORT_SECONDS {
            for _ in 1..SHORT_REPS {
                let r2 = run_rift(stage, rs_settings);
                if f(&r2, "seconds") < f(&r, "seconds") {
                    r = r2;
                }
                let e2 = run_eager(stage, s);
                if f(&e2, "seconds") < f(&e, "seconds") {
                    e = e2;
                }
            }
        }
        e["n"] = json!(s.n);
        let (ok, detail) = agree(stage, &r, &e);
        let (rs, es) = (f(&r, "seconds"), f(&e, "seconds"));
        let modules = e["modules"].as_object().map_or(0, |o| o.len());
        let (amount, unit) = work(stage, s, modules);
        let (rp, ep) = (f(&r, "peak_mb"), f(&e, "peak_mb"));
        println!(
            "{row:<16} {rs:>8.2} {es:>8.2} {:>6.2} {:>22} {:>15} {:>6}  {detail}",
            es / rs,
            format!("{:.1}/{:.1} {unit}", amount / rs, amount / es),
            format!("{rp:.0}/{ep:.0}"),
            if ok { "yes" } else { "NO" },
        );
        card.target(&format!("{} {row} agreed", m.label), ok);
        if let Some((_, min)) = m.speed.iter().find(|(r, _)| *r == row) {
            let ratio = es / rs;
            let word = card.target(
                &format!(
                    "{} {row} rift {ratio:.2}x eager (target >= {min}x)",
                    m.label
                ),
                ratio >= *min,
            );
            println!("{:<16} speed target rift >= {min}x eager: {word}", "");
        }
        rows.push(json!({
            "model": m.label, "fixture_clean_acc": f(&fx, "clean_acc"),
            "fixture_robust_acc": robust, "device": s.device, "stage": row, "n": s.n,
            "rift_compute": rs_settings.compute().text(), "baseline_compute": "fp32",
            "mrc_epochs": s.mrc_epochs, "rift_seconds": rs, "baseline_seconds": es,
            "ratio": es / rs, "throughput_unit": unit, "rift_throughput": amount / rs,
            "baseline_throughput": amount / es, "rift_peak_mb": rp, "baseline_peak_mb": ep,
            "agreed": ok, "compared": detail,
        }));
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let s: Settings = serde_json::from_str(
            &std::env::var("RIFT_VERSUS_SETTINGS").expect("RIFT_VERSUS_SETTINGS"),
        )
        .expect("settings json");
        rift_side::run(args.get(2).map_or("", String::as_str), &s);
        return std::process::ExitCode::SUCCESS;
    }
    let threads = tch::get_num_threads();
    let cpu = Settings {
        dir: PathBuf::new(),
        arch: "resnet18".into(),
        width: 16,
        n: env_usize("RIFT_VERSUS_N", 256),
        mrc_epochs: env_usize("RIFT_VERSUS_MRC_EPOCHS", 10),
        layer: "layer2.1.conv2".into(),
        device: "cpu".into(),
        threads,
        precision: "fp32".into(),
        channels_last: false,
    };
    let mut models = vec![
        BenchModel {
            label: "resnet18-w16 (cpu)".into(),
            settings: cpu.clone(),
            rows: ALL_ROWS,
            // Issue 26: MRC --fast at 10 epochs against the published algorithm; issue 24:
            // PGD-L2 evaluation at least as fast as eager.
            speed: &[("mrc", 3.0), ("eval-l2", 1.0)],
        },
        // Issue 11: a zoo network (robustbench's DM WideResNet code on the eager side).
        BenchModel {
            label: format!("{DM_ARCH} silu (cpu)"),
            settings: Settings {
                arch: DM_ARCH.into(),
                width: 2,
                n: env_usize("RIFT_VERSUS_DM_N", 128),
                mrc_epochs: env_usize("RIFT_VERSUS_DM_MRC_EPOCHS", 3),
                layer: "layer.1.block.0.conv_1".into(),
                ..cpu.clone()
            },
            rows: &["eval", "mrc"],
            speed: &[("eval", 1.0), ("mrc", 2.0)],
        },
    ];
    // GPU path: untested (no GPU was available when it was written).
    if tch::Cuda::is_available() {
        for (arch, width, layer) in [
            ("resnet18", 64, "layer2.1.conv2"),
            ("wrn-34-10", 10, "block1.layer.3.conv2"),
        ] {
            let settings = Settings {
                arch: arch.into(),
                width,
                n: env_usize("RIFT_VERSUS_GPU_N", 512),
                mrc_epochs: env_usize("RIFT_VERSUS_GPU_MRC_EPOCHS", 10),
                layer: layer.into(),
                device: "cuda".into(),
                ..cpu.clone()
            };
            models.push(BenchModel {
                label: format!("{arch} (cuda)"),
                settings,
                rows: ALL_ROWS,
                speed: &[],
            });
        }
    }
    // Every row's agreement, each fixture's mid-range robust accuracy and the speed
    // targets of issue 11 are this bench's targets.
    let mut card = Scorecard::new("versus");
    let mut rows = Vec::new();
    for m in &models {
        bench_model(m, &mut card, &mut rows);
    }
    let table = json!({
        "threads": threads,
        "tolerances": {
            "adv_loss_rel": ADV_LOSS_REL, "robust_points": ROBUST_PTS, "mrc_rel": MRC_REL,
            "mrc_abs": MRC_ABS, "finetune_loss_rel": FT_LOSS_REL, "finetune_acc_points": FT_ACC_PTS,
            "sweep_clean_points": SWEEP_CLEAN_PTS, "sweep_robust_points": SWEEP_ROBUST_PTS,
            "alpha": ALPHA_STEP, "pipeline_alpha": 2.0 * ALPHA_STEP,
        },
        "stages": rows,
    });
    std::fs::write(
        "target/bench.json",
        serde_json::to_string_pretty(&table).expect("json"),
    )
    .expect("write target/bench.json");
    println!("\nwrote target/bench.json (ratio = eager s / rift s; > 1 means rift is faster)");
    card.finish()
}
