//! The stages tests/zoo_pipeline.rs does not cover, on the same small zoo network
//! (robustbench's DM WideResNet-10-1 with SiLU, `dm_fixture` in tests/py/zoo.py): OOD
//! (`rift ood`, and `rift run` with a corrupted set), first-order screening (`rift mrc
//! --screen`, `rift run --screen`), sharding (`rift mrc --shard` + `rift merge`) and the
//! explorer's worker. PyTorch on robustbench's own code gives the reference numbers, and
//! every module name in every output must be one of the checkpoint's own zoo names.
mod common;

use common::jobs::{job_setup, scored_modules, JobFixture};
use common::{path_str, read_json, rift_ok, run_python};
use rift::engine::attack::PgdConfig;
use rift::engine::rift::events::{Event, Stage};
use rift::engine::rift::mrc::results::MrcResult;
use rift::jobs::{JobCommand, JobEvent, Worker};
use rift::report::session::Session;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The fixture (checkpoint, tiny CIFAR-10, a CIFAR-10-C of two corruptions × 5
/// severities × 20 images under `c/`) and PyTorch's numbers on robustbench's model: the
/// Conv/Linear module names in forward order, the OOD accuracy per corruption and
/// severity, and the first-order screening estimate ε·‖w‖·‖∇w L‖ (ε 0.1, mean
/// cross-entropy on the PGD-10 set of the first 32 test images, no random start) of
/// every module.
const PY_FIXTURE: &str = r#"
import sys, os, json, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import pgd
from zoo import dm_fixture, corrupted_set
torch.set_num_threads(2)
out = sys.argv[1]
net, x, y = dm_fixture(out)
ood = corrupted_set(os.path.join(out, "c"), net, ["fog", "gaussian_noise"], 20)
names = [n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
for p in net.parameters():
    p.requires_grad_(False)
adv = pgd(net, x, y, 8 / 255, 2 / 255, 10, random_start=False)
weights = [net.get_submodule(n).weight for n in names]
for w in weights:
    w.requires_grad_(True)
grads = torch.autograd.grad(F.cross_entropy(net(adv), y), weights)
estimates = {n: 0.1 * w.norm().item() * g.norm().item() for n, w, g in zip(names, weights, grads)}
print(json.dumps({"modules": names, "ood": ood, "estimates": estimates}))
"#;

struct Fixture {
    dir: PathBuf,
    /// The checkpoint's Conv/Linear modules, in forward order (robustbench's names).
    modules: Vec<String>,
    ood: BTreeMap<String, Vec<f64>>,
    estimates: BTreeMap<String, f64>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let v: Value = serde_json::from_str(&run_python(PY_FIXTURE, &[path_str(&dir)])).unwrap();
        Fixture {
            modules: serde_json::from_value(v["modules"].clone()).unwrap(),
            ood: serde_json::from_value(v["ood"].clone()).unwrap(),
            estimates: serde_json::from_value(v["estimates"].clone()).unwrap(),
            dir,
        }
    })
}

impl Fixture {
    fn ckpt(&self) -> PathBuf {
        self.dir.join("dm.pth")
    }

    fn zoo_names(&self) -> BTreeSet<&str> {
        self.modules.iter().map(String::as_str).collect()
    }

    /// Asserts that every name is one of the checkpoint's modules.
    fn assert_zoo_names<'a>(&self, what: &str, names: impl IntoIterator<Item = &'a str>) {
        let zoo = self.zoo_names();
        for n in names {
            assert!(
                zoo.contains(n),
                "{what}: `{n}` is not a module of the checkpoint"
            );
        }
    }
}

/// `rift mrc` on the fixture: the adversarial set of the first 32 test images, PGD-10 at
/// 8/255 without random start (as PY_FIXTURE), 2 ascent epochs, `--fast`.
fn mrc_args<'a>(fx: &'a Fixture, ckpt: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "mrc",
        "--checkpoint",
        path_str(ckpt),
        "--dataset",
        "cifar10",
    ];
    args.extend(["--data-dir", path_str(&fx.dir), "--adv-split", "test"]);
    args.extend(["--adv-limit", "32", "--mrc-epochs", "2", "--fast"]);
    args.extend([
        "--eps",
        "0.03137254901960784",
        "--step",
        "0.00784313725490196",
    ]);
    args.extend(["--no-random-start", "--device", "cpu"]);
    args.extend_from_slice(extra);
    args
}

/// `rift ood` on the DM network: PyTorch's accuracy per corruption and severity (within
/// one of the 20 images, for a random network's near-ties).
#[test]
fn ood_on_a_dm_wideresnet_matches_pytorch() {
    let fx = fixture();
    let out = fx.dir.join("ood.json");
    let ckpt = fx.ckpt();
    let c = fx.dir.join("c");
    rift_ok(&[
        "ood",
        "--checkpoint",
        path_str(&ckpt),
        "--dataset",
        "cifar10-c",
        "--data-dir",
        path_str(&c),
        "--device",
        "cpu",
        "--output",
        path_str(&out),
    ]);
    let v = read_json(&out);
    let cs = v["corruptions"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    let mut non_trivial = false;
    for c in cs {
        let want = &fx.ood[c["name"].as_str().unwrap()];
        for (s, w) in want.iter().enumerate() {
            let got = c["by_severity"][(s + 1).to_string()].as_f64().unwrap();
            assert!(
                (got - w).abs() <= 5.0 + 1e-9,
                "{} severity {}: rift {got} vs PyTorch {w}",
                c["name"],
                s + 1
            );
            non_trivial |= *w > 0.0 && *w < 100.0;
        }
    }
    assert!(non_trivial, "trivial accuracies: {:?}", fx.ood);
}

/// `rift mrc --screen` on the DM network: every module's estimate equals PyTorch's on
/// robustbench's model, exact MRC goes to the two lowest, and every name is the zoo's.
#[test]
fn screening_a_dm_wideresnet_matches_pytorch_estimates() {
    let fx = fixture();
    let out = fx.dir.join("screen.json");
    let ckpt = fx.ckpt();
    let args = mrc_args(
        fx,
        &ckpt,
        &[
            "--screen",
            "--exact-lowest",
            "2",
            "--output",
            path_str(&out),
        ],
    );
    rift_ok(&args);
    let v: MrcResult = serde_json::from_value(read_json(&out)).unwrap();
    let mut estimates: Vec<(String, f64)> = v
        .estimated_only
        .iter()
        .map(|m| (m.name.clone(), m.estimate))
        .chain(
            v.modules
                .iter()
                .map(|m| (m.name.clone(), m.estimate.expect("screened"))),
        )
        .collect();
    assert_eq!(estimates.len(), fx.modules.len(), "every module screened");
    fx.assert_zoo_names("screening", estimates.iter().map(|e| e.0.as_str()));
    for (name, ours) in &estimates {
        let theirs = fx.estimates[name];
        assert!(
            (ours - theirs).abs() <= 0.02 * theirs.abs() + 1e-7,
            "{name}: estimate {ours} vs torch {theirs}"
        );
    }
    estimates.sort_by(|a, b| a.1.total_cmp(&b.1));
    let exact: BTreeSet<&str> = v.modules.iter().map(|m| m.name.as_str()).collect();
    let lowest: BTreeSet<&str> = estimates[..2].iter().map(|e| e.0.as_str()).collect();
    assert_eq!(exact, lowest, "exact MRC for the two lowest estimates");
    assert!(exact.contains(v.recommended.as_str()));
}

/// `rift mrc --shard I/2` + `rift merge` on the DM network equal one `rift mrc` bit for bit,
/// under the zoo's names (a stride-2 conv_0 with its asymmetric padding and a shortcut
/// among them).
#[test]
fn dm_wideresnet_shards_merge_into_the_single_run() {
    let fx = fixture();
    let ckpt = fx.ckpt();
    let modules = "init_conv,layer.1.block.0.conv_0,layer.1.block.0.shortcut,logits";
    let session = fx.dir.join("shards");
    for shard in ["0/2", "1/2"] {
        rift_ok(&mrc_args(
            fx,
            &ckpt,
            &[
                "--modules",
                modules,
                "--shard",
                shard,
                "--session",
                path_str(&session),
            ],
        ));
    }
    let single = fx.dir.join("single.yaml");
    rift_ok(&mrc_args(
        fx,
        &ckpt,
        &["--modules", modules, "--output", path_str(&single)],
    ));
    rift_ok(&["merge", path_str(&session)]);
    let load = |p: &Path| -> MrcResult {
        serde_yaml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (merged, single) = (load(&session.join("mrc.yaml")), load(&single));
    let names: BTreeSet<&str> = merged.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, modules.split(',').collect::<BTreeSet<_>>());
    fx.assert_zoo_names("merge", names);
    assert_eq!(merged.recommended, single.recommended);
    for m in &single.modules {
        let s = merged.modules.iter().find(|x| x.name == m.name).unwrap();
        assert_eq!(s.mrc, m.mrc, "{}", m.name);
        assert_eq!(s.epoch_losses, m.epoch_losses, "{}", m.name);
    }
}

/// `rift run --screen 2` with a corrupted set on the DM network: OOD of the AT and the
/// chosen model is PyTorch's for the AT model, and session.yaml, events.jsonl and
/// report.md name modules as the checkpoint does.
#[test]
fn run_with_screening_and_ood_on_a_dm_wideresnet() {
    let fx = fixture();
    let ckpt = fx.ckpt();
    let session = fx.dir.join("run");
    let c = fx.dir.join("c");
    let mut args = vec![
        "run",
        "--dataset",
        "cifar10",
        "--data-dir",
        path_str(&fx.dir),
    ];
    args.extend(["--checkpoint", path_str(&ckpt)]);
    args.extend(["--session", path_str(&session), "--ood-dir", path_str(&c)]);
    args.extend(["--limit", "32", "--adv-limit", "32", "--steps", "2"]);
    args.extend(["--eps", "0.03", "--step", "0.015", "--mrc-epochs", "1"]);
    args.extend(["--fast", "--screen", "2", "--epochs", "1"]);
    args.extend(["--alphas", "0,1", "--device", "cpu"]);
    rift_ok(&args);
    let s = Session::load(&session).unwrap();
    let mrc = s.mrc.as_ref().expect("MRC ran");
    assert_eq!(mrc.modules.len(), 2, "exact MRC for two modules");
    assert_eq!(mrc.estimated_only.len(), fx.modules.len() - 2);
    fx.assert_zoo_names(
        "session.yaml",
        mrc.modules
            .iter()
            .map(|m| m.name.as_str())
            .chain(mrc.estimated_only.iter().map(|m| m.name.as_str())),
    );
    let ft = s.finetune.as_ref().expect("fine-tuning ran");
    fx.assert_zoo_names("fine-tuned layers", ft.layers.iter().map(String::as_str));
    assert_eq!(ft.layers[0], mrc.recommended);

    let (at, chosen) = (s.ood_at.as_ref(), s.ood_chosen.as_ref());
    let (at, chosen) = (
        at.expect("OOD of the AT model"),
        chosen.expect("of the chosen"),
    );
    assert_eq!(at.corruptions.len(), 2);
    assert_eq!(chosen.corruptions.len(), 2);
    for c in &at.corruptions {
        let want = &fx.ood[&c.name];
        let pooled = want.iter().sum::<f64>() / 5.0;
        assert!(
            (c.acc - pooled).abs() <= 1.0 + 1e-9,
            "{}: rift {} vs PyTorch {pooled}",
            c.name,
            c.acc
        );
    }

    let events = std::fs::read_to_string(session.join("events.jsonl")).unwrap();
    let mut scored = Vec::new();
    let mut ood_stages = 0;
    for line in events.lines().skip(1) {
        match serde_json::from_str::<Event>(line).unwrap() {
            Event::ModuleScored { score } => scored.push(score.name),
            Event::ModuleEstimated { module, .. } => fx.assert_zoo_names("events", [&*module]),
            Event::StageStarted {
                stage: Stage::Ood, ..
            } => ood_stages += 1,
            _ => {}
        }
    }
    assert_eq!(scored.len(), 2);
    fx.assert_zoo_names("events", scored.iter().map(String::as_str));
    assert_eq!(ood_stages, 2, "OOD of the AT and of the chosen model");
    let report = std::fs::read_to_string(session.join("report.md")).unwrap();
    assert!(report.contains(&ft.layers[0]), "{report}");
}

/// The explorer's worker on the DM network: MRC, fine-tuning a module by its zoo name,
/// the α sweep, accept and save, with zoo names in its events and session.
#[test]
fn the_worker_runs_every_stage_on_a_dm_wideresnet() {
    let fx = fixture();
    let ckpt = fx.ckpt();
    let session = fx.dir.join("worker");
    let setup = job_setup(JobFixture {
        checkpoint: path_str(&ckpt),
        dataset: "cifar10",
        data_dir: path_str(&fx.dir),
        session: session.clone(),
        ft_epochs: 1,
        modules: vec!["layer.0.block.0.conv_1".into(), "logits".into()],
        attack: PgdConfig {
            eps: 8.0 / 255.0,
            step: 4.0 / 255.0,
            steps: 2,
            random_start: true,
            restarts: 1,
            norm: Default::default(),
        },
        activation: Some("silu"),
    });
    let (mut handle, mut rx) = Worker::spawn(setup).unwrap();
    let mut run = |cmd: JobCommand, stage: Stage| -> Vec<JobEvent> {
        handle.send(cmd);
        let mut seen = Vec::new();
        loop {
            let e = rx.blocking_recv().expect("the worker ended early");
            seen.push(e.clone());
            match e {
                JobEvent::Finished { stage: Stage::Load } => {}
                JobEvent::Finished { stage: s } if s == stage => return seen,
                JobEvent::Finished { .. } | JobEvent::Failed(_) | JobEvent::Cancelled => {
                    panic!("expected {stage:?} to finish: {seen:?}")
                }
                _ => {}
            }
        }
    };
    let seen = run(JobCommand::StartMrc, Stage::Mrc);
    let scored = scored_modules(&seen);
    assert_eq!(scored.len(), 2);
    fx.assert_zoo_names("worker MRC", scored.iter().map(String::as_str));
    let layer = "layer.0.block.0.conv_1".to_string();
    let seen = run(
        JobCommand::StartFinetune {
            layers: vec![layer.clone()],
            lr: 0.01,
        },
        Stage::Finetune,
    );
    assert!(seen
        .iter()
        .any(|e| matches!(e, JobEvent::Engine(Event::FinetuneEpoch { .. }))));
    run(JobCommand::StartSweep, Stage::Interpolate);
    run(JobCommand::Accept { alpha: 0.5 }, Stage::Accept);
    run(JobCommand::Save, Stage::Save);
    handle.shutdown();
    let s = Session::load(&session).unwrap();
    assert_eq!(s.model.arch, "dm-wrn-10-1");
    assert_eq!(s.model.activation.as_deref(), Some("silu"));
    assert_eq!(s.finetune.unwrap().layers, vec![layer]);
    let mrc = s.mrc.unwrap();
    fx.assert_zoo_names(
        "worker session",
        mrc.modules.iter().map(|m| m.name.as_str()),
    );
    assert_eq!(s.chosen.unwrap().alpha, 0.5);
    assert!(session.join("chosen.pth").exists());
}

/// `rift compare` on the DM network with a corrupted set and `--final-eval`: the AT
/// model's OOD runs once for all candidates, every candidate's OOD and AutoAttack cells
/// are its own session's numbers minus the AT model's, and module names are the zoo's.
#[test]
fn compare_with_ood_and_autoattack_on_a_dm_wideresnet() {
    let fx = fixture();
    let ckpt = fx.ckpt();
    let dir = fx.dir.join("compare");
    let c = fx.dir.join("c");
    let modules = format!("{},{}", fx.modules[1], fx.modules[2]);
    let mut args = vec![
        "compare",
        "--dataset",
        "cifar10",
        "--data-dir",
        path_str(&fx.dir),
    ];
    args.extend(["--checkpoint", path_str(&ckpt), "--candidates", "rift,all"]);
    args.extend(["--session", path_str(&dir), "--ood-dir", path_str(&c)]);
    args.extend(["--limit", "32", "--adv-limit", "32", "--steps", "2"]);
    args.extend(["--eps", "0.03", "--step", "0.015", "--mrc-epochs", "1"]);
    args.extend(["--fast", "--modules", &modules, "--epochs", "1"]);
    args.extend(["--alphas", "0,0.5,1", "--device", "cpu"]);
    args.extend(["--final-eval", "apgd-ce", "--final-limit", "16"]);
    rift_ok(&args);

    let shared = Session::load(&dir).unwrap();
    let cmp: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("compare.yaml")).unwrap()).unwrap();
    let at_ood = shared
        .ood_at
        .as_ref()
        .expect("OOD of the AT model")
        .mean_acc;
    assert_eq!(cmp["at"]["ood"].as_f64(), Some(at_ood));
    let mut at_aa = None;
    for row in cmp["candidates"].as_array().unwrap() {
        let cs = Session::load(&dir.join(row["session"].as_str().unwrap())).unwrap();
        let ft = cs.finetune.as_ref().unwrap();
        if !ft.all_parameters {
            fx.assert_zoo_names("compare", ft.layers.iter().map(String::as_str));
        }
        let ood = cs
            .ood_chosen
            .as_ref()
            .expect("OOD of the candidate")
            .mean_acc;
        assert_eq!(row["ood"]["value"].as_f64(), Some(ood));
        assert!((row["ood"]["change"].as_f64().unwrap() - (ood - at_ood)).abs() < 1e-9);
        let fe = cs.final_eval.as_ref().expect("the candidate's AutoAttack");
        let sum = fe.summary();
        assert_eq!(row["autoattack"]["value"].as_f64(), Some(sum.chosen_robust));
        assert_eq!(
            row["autoattack"]["change"].as_f64(),
            Some(fe.difference.points)
        );
        // Every candidate is paired with the same AT AutoAttack verdicts.
        match &at_aa {
            None => at_aa = Some(fe.at.robust_flags.clone()),
            Some(flags) => assert_eq!(&fe.at.robust_flags, flags),
        }
        assert_eq!(cmp["at"]["autoattack"].as_f64(), Some(sum.at_robust));
    }
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let at_ood_runs = events
        .lines()
        .skip(1)
        .filter(|l| {
            matches!(
                serde_json::from_str::<Event>(l).unwrap(),
                Event::StageStarted {
                    stage: Stage::Ood,
                    about: Some(rift::engine::rift::events::StageAbout::Ood {
                        model: rift::engine::rift::events::OodModel::At,
                        ..
                    }),
                    ..
                }
            )
        })
        .count();
    assert_eq!(
        at_ood_runs, 1,
        "the AT model's OOD runs once for all candidates"
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("OOD (Δ") && report.contains("AutoAttack (Δ"),
        "{report}"
    );
}
