//! rift's side of `cargo bench --bench versus`: one stage through the library, in a child
//! process of its own (so its peak memory is the stage's, as on the Python side), printing
//! one JSON line. `seconds` covers the stage's work only, after the checkpoint and data are
//! loaded — the same span the eager script times.
use rift::engine::attack::{Norm, PgdConfig};
use rift::engine::checkpoint::load_checkpoint;
use rift::engine::data::{load_split, Augmenter, DatasetKind, ImageSet, Split};
use rift::engine::eval::{evaluate, EvalPlan};
use rift::engine::models::{Compute, Model, Precision};
use rift::engine::rift::alpha::interpolate::{parse_alphas, sweep, Endpoints, SweepConfig};
use rift::engine::rift::finetune::{finetune, FinetuneConfig, FinetuneData, SelectOn};
use rift::engine::rift::mrc::adv_set::{generate, TensorSet};
use rift::engine::rift::mrc::scoring::{compute, MrcInputs};
use rift::engine::rift::mrc::{select_modules, MrcConfig};
use rift::engine::tensors::to_raw;
use rift::engine::CancelFlag;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Instant;

/// What both sides are told: the same files, sizes and device.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Settings {
    pub dir: PathBuf,
    pub arch: String,
    pub width: i64,
    /// Test samples for the adversarial set, PGD evaluation and the α sweep.
    pub n: usize,
    pub mrc_epochs: usize,
    /// The module the stand-alone fine-tuning stage trains (the published ResNet18 choice).
    pub layer: String,
    /// "cpu" or "cuda".
    pub device: String,
    pub threads: i32,
    /// rift's side only (the eager side is always fp32 NCHW): "fp32" or "bf16".
    #[serde(default)]
    pub precision: String,
    #[serde(default)]
    pub channels_last: bool,
}

impl Settings {
    /// How rift's side computes.
    pub fn compute(&self) -> Compute {
        Compute {
            precision: Precision::parse(&self.precision).unwrap_or_default(),
            channels_last: self.channels_last,
        }
    }
}

/// PGD-10 as SPEC.md §0 but from the clean input: both sides then compute the same
/// adversarial examples (random starts could not be matched across two RNGs).
pub fn pgd() -> PgdConfig {
    PgdConfig {
        random_start: false,
        ..PgdConfig::default()
    }
}

fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn sync(device: tch::Device) {
    if let tch::Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn load_model(s: &Settings, device: tch::Device) -> Model {
    let ckpt = load_checkpoint(&s.dir.join("at.pth")).expect("AT checkpoint of the fixture");
    let (mean, std) = DatasetKind::Cifar10.mean_std();
    let mut model = Model::from_checkpoint(&ckpt, None, None, device, (&mean, &std, "cifar10"))
        .expect("the fixture's checkpoint builds a model");
    model.set_compute(s.compute()).expect("compute settings");
    model
}

fn adv_set(model: &Model, test: &ImageSet, n: usize) -> TensorSet {
    let idx: Vec<usize> = (0..n.min(test.n)).collect();
    generate(
        model,
        (test, &idx),
        &pgd(),
        rift::engine::attack::Noise::Global,
        128,
        &CancelFlag::default(),
        &mut |_| {},
    )
    .expect("adversarial set")
}

fn adv_loss_acc(model: &Model, adv: &TensorSet) -> (f64, f64) {
    adv.baseline(model, 512)
        .expect("loss on the adversarial set")
}

fn mrc_values(model: &Model, adv: &TensorSet, epochs: usize) -> Map<String, Value> {
    let modules = select_modules(model, &[]).expect("modules");
    let cfg = MrcConfig {
        epochs,
        fast: true,
        ..MrcConfig::default()
    };
    let r = compute(
        &MrcInputs {
            model,
            adv,
            adv_split: "test",
            cfg: &cfg,
        },
        &modules,
        &CancelFlag::default(),
        &mut |_| {},
    )
    .expect("mrc");
    let mut out = Map::new();
    out.insert("baseline_loss".into(), json!(r.baseline_loss));
    out.insert("baseline_acc".into(), json!(r.baseline_acc));
    out.insert("recommended".into(), json!(r.recommended));
    let mods: Map<String, Value> = r
        .modules
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                json!({"mrc": m.mrc, "robust_acc_drop": m.robust_acc_drop}),
            )
        })
        .collect();
    out.insert("modules".into(), Value::Object(mods));
    out
}

/// One epoch (SPEC.md §2 defaults), selected on the first `n` test samples as published.
fn finetune_epoch(
    model: &Model,
    layer: &str,
    train: &ImageSet,
    test: &ImageSet,
    n: usize,
) -> (f64, f64) {
    let cfg = FinetuneConfig {
        epochs: 1,
        milestones: vec![],
        select_on: SelectOn::Test,
        test_limit: Some(n),
        ..FinetuneConfig::default()
    };
    let augmenter = Augmenter::for_dataset(DatasetKind::Cifar10, train.height);
    let data = FinetuneData {
        train,
        test,
        augmenter: &augmenter,
    };
    let r = finetune(
        model,
        &rift::engine::rift::finetune::Trained::Modules(vec![layer.to_string()]),
        data,
        &cfg,
        None,
        &CancelFlag::default(),
        &mut |_| {},
    )
    .expect("fine-tuning");
    let e = &r.epochs_log[0];
    (e.train_loss, e.test_acc.unwrap_or(f64::NAN))
}

fn sweep_points(model: &Model, ends: &Endpoints, test: &ImageSet, n: usize) -> Map<String, Value> {
    let cfg = SweepConfig {
        alphas: parse_alphas("0:1:0.1").expect("grid"),
        refine: 0,
        tolerance: 0.1,
        attack: pgd(),
        limit: Some(n),
        batch_size: 128,
        seed: 0,
    };
    let task = rift::engine::rift::alpha::interpolate::SweepTask {
        ends,
        test,
        cfg: &cfg,
        known: &[],
    };
    let r = sweep(model, &task, &CancelFlag::default(), &mut |_| {}).expect("sweep");
    let mut out = Map::new();
    out.insert(
        "points".into(),
        serde_json::to_value(&r.points).expect("json"),
    );
    out.insert("chosen_alpha".into(), json!(r.chosen_alpha));
    out
}

/// Runs `stage` and prints its JSON line.
pub fn run(stage: &str, s: &Settings) {
    // What the binary's main does first.
    rift::engine::device::tune_allocator();
    if s.threads > 0 {
        tch::set_num_threads(s.threads);
    }
    tch::manual_seed(0);
    let device = if s.device == "cuda" {
        tch::Device::Cuda(0)
    } else {
        tch::Device::Cpu
    };
    let model = load_model(s, device);
    let test = load_split(DatasetKind::Cifar10, &s.dir, Split::Test).expect("fixture test split");
    let needs_train = matches!(stage, "finetune" | "pipeline");
    let train = needs_train
        .then(|| load_split(DatasetKind::Cifar10, &s.dir, Split::Train).expect("train split"));
    let mut out = Map::new();
    out.insert("stage".into(), json!(stage));
    let mut t = Instant::now();
    match stage {
        "advset" => {
            let adv = adv_set(&model, &test, s.n);
            sync(device);
            out.insert("seconds".into(), json!(t.elapsed().as_secs_f64()));
            let (l, a) = adv_loss_acc(&model, &adv);
            out.insert("adv_loss".into(), json!(l));
            out.insert("adv_acc".into(), json!(a));
        }
        "mrc" => {
            let adv = adv_set(&model, &test, s.n);
            sync(device);
            t = Instant::now();
            out.extend(mrc_values(&model, &adv, s.mrc_epochs));
        }
        "finetune" => {
            let train = train.as_ref().expect("train split loaded");
            let (loss, acc) = finetune_epoch(&model, &s.layer, train, &test, s.n);
            out.insert("train_loss".into(), json!(loss));
            out.insert("test_acc".into(), json!(acc));
        }
        "eval" | "eval-l2" => {
            // eval-l2: what eager_l2.py computes (ε 0.5, step 0.1, as RobustBench's L2).
            let attack = match stage {
                "eval-l2" => PgdConfig {
                    norm: Norm::L2,
                    eps: 0.5,
                    step: 0.1,
                    ..pgd()
                },
                _ => pgd(),
            };
            let plan = EvalPlan {
                attack: Some(&attack),
                seed: 0,
                limit: Some(s.n),
                batch_size: 128,
            };
            let r = evaluate(&model, &test, &plan, &CancelFlag::default(), &mut |_, _| {})
                .expect("eval");
            out.insert("clean_correct".into(), json!(r.clean_correct));
            out.insert("robust_correct".into(), json!(r.robust_correct));
        }
        "sweep" => {
            let ft = load_checkpoint(&s.dir.join("ft.pth")).expect("fixture's ft.pth");
            let ends = Endpoints::new(&model, &ft.tensors).expect("endpoints");
            t = Instant::now();
            out.extend(sweep_points(&model, &ends, &test, s.n));
        }
        "pipeline" => {
            let train = train.as_ref().expect("train split loaded");
            let adv = adv_set(&model, &test, s.n);
            let m = mrc_values(&model, &adv, s.mrc_epochs);
            let layer = m["recommended"].as_str().unwrap_or_default().to_string();
            let ft_model = load_model(s, device);
            let (loss, _) = finetune_epoch(&ft_model, &layer, train, &test, s.n);
            let vars = ft_model.var_store().variables();
            let ft: Vec<_> = ft_model
                .keys()
                .iter()
                .map(|k| (k.clone(), to_raw(&vars[k]).expect("fine-tuned tensor")))
                .collect();
            let ends = Endpoints::new(&model, &ft).expect("endpoints");
            out.extend(sweep_points(&model, &ends, &test, s.n));
            out.insert("recommended".into(), json!(layer));
            out.insert("train_loss".into(), json!(loss));
        }
        other => panic!("unknown stage {other}"),
    }
    sync(device);
    out.entry("seconds")
        .or_insert(json!(t.elapsed().as_secs_f64()));
    out.insert("peak_mb".into(), json!(peak_mb()));
    println!("{}", Value::Object(out));
}
