//! The RobustBench zoo by name (issue 21): the checked-in table is what the generator
//! writes from robustbench 1.1.1's files; `rift zoo` counts what those files define;
//! `--zoo DATASET/THREAT/NAME` builds an entry exactly as robustbench does (logits within
//! 1e-4 of the entry's own constructor); bad ids, missing files, conflicting flags and a
//! file of another architecture fail cleanly before any compute.
mod common;

use common::{assert_failed, max_abs_diff, path_str, python, rift, rift_ok, run_python};
use std::path::Path;

const TABLE: &str = "assets/zoo/robustbench-1.1.1.json";

#[test]
fn the_checked_in_table_is_what_the_generator_writes() {
    let out = std::process::Command::new(python())
        .args(["tools/zoo_table.py", "-"])
        .output()
        .expect("cannot start the venv python; run .ci/bootstrap");
    assert!(
        out.status.success(),
        "tools/zoo_table.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = String::from_utf8(out.stdout).unwrap();
    let checked_in = std::fs::read_to_string(TABLE).unwrap();
    assert!(
        fresh == checked_in,
        "{TABLE} differs from what `python3 tools/zoo_table.py` writes now: regenerate and commit it"
    );
}

/// Entries per leaderboard as robustbench's own files define them: the per-threat
/// OrderedDicts that each file's final `*_models` dict maps ThreatModel members to.
const COUNT_ENTRIES: &str = r#"
import ast, os, sys, json
root = os.path.join(sys.prefix, "wheels", "robustbench", "model_zoo")
out = {}
for dataset in ["cifar10", "cifar100", "imagenet"]:
    tree = ast.parse(open(os.path.join(root, dataset + ".py")).read())
    dicts = {s.targets[0].id: s.value for s in tree.body
             if isinstance(s, ast.Assign) and isinstance(s.value, ast.Call)
             and ast.unparse(s.value.func) == "OrderedDict"}
    final = [s.value for s in tree.body if isinstance(s, ast.Assign)
             and s.targets[0].id.endswith("_models")][0]
    for pair in final.args[0].elts:
        threat = pair.elts[0].attr
        out[dataset + "/" + threat] = len(dicts[pair.elts[1].id].args[0].elts)
print(json.dumps(out))
"#;

#[test]
fn rift_zoo_counts_every_entry_robustbench_defines() {
    let expected: serde_json::Value =
        serde_json::from_str(&run_python(COUNT_ENTRIES, &[])).unwrap();
    let expected = expected.as_object().unwrap();
    let listing: serde_json::Value = serde_json::from_str(&rift_ok(&["zoo", "--json"])).unwrap();
    let counts = listing["counts"].as_array().unwrap();
    assert_eq!(counts.len(), expected.len(), "{counts:?} vs {expected:?}");
    let text = rift_ok(&["zoo"]);
    let mut total = 0;
    for c in counts {
        let board = format!(
            "{}/{}",
            c["dataset"].as_str().unwrap(),
            c["threat"].as_str().unwrap()
        );
        let n = c["total"].as_u64().unwrap();
        assert_eq!(Some(n), expected[&board].as_u64(), "{board}");
        assert!(c["supported"].as_u64().unwrap() <= n);
        // The text listing ends with the same counts, and lists every entry.
        let line = format!("{} / {n}", c["supported"]);
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&board) && l.trim_end().ends_with(&line)),
            "no `{board} … {line}` line in:\n{text}"
        );
        total += n;
    }
    assert_eq!(listing["entries"].as_array().unwrap().len() as u64, total);
    let ids = text
        .lines()
        .filter(|l| !l.starts_with(' ') && l.contains('/'))
        .count();
    assert_eq!(ids as u64, total, "entries listed by `rift zoo`");
    // Filters keep only their leaderboards.
    let l2 = rift_ok(&["zoo", "--dataset", "cifar10", "--threat", "L2"]);
    assert!(l2.contains("cifar10/L2/Rice2020Overfitting") && !l2.contains("cifar10/Linf/"));
}

/// Three zoo entries built with their table constructor (robustbench's architecture files,
/// random weights, randomised BatchNorm), saved where robustbench's `load_model` caches
/// them under OUT/models, with PyTorch's logits on random inputs:
/// a DM WideResNet-28-10 with SiLU and CIFAR-10 statistics, a DM PreActResNet-18 with
/// Swish and CIFAR-100 statistics, and Rice2020Overfitting's PreActResNet-18 whose
/// `mu`/`sigma` buffers are saved in the file with other values than the constructor's
/// (robustbench's loading overwrites them, so the file's win).
const MAKE_ENTRIES: &str = r#"
import sys, os, json, numpy as np, torch, torch.nn as nn
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import zoo_module
out = sys.argv[1]
table = {e["dataset"] + "/" + e["threat"] + "/" + e["name"]: e
         for e in json.load(open("assets/zoo/robustbench-1.1.1.json"))["entries"]}
dm = zoo_module("dm_wide_resnet")
resnet = zoo_module("resnet")
scope = {**vars(dm), **vars(resnet), "nn": nn}

class Buffered(nn.Module):
    def __init__(self, net, mu, sigma):
        super().__init__()
        self.net = net
        self.register_buffer("mu", torch.tensor(mu).view(1, 3, 1, 1))
        self.register_buffer("sigma", torch.tensor(sigma).view(1, 3, 1, 1))
    def forward(self, x):
        return self.net((x - self.mu) / self.sigma)

torch.manual_seed(0)
for i, zid in enumerate(["cifar10/Linf/Wang2023Better_WRN-28-10",
                         "cifar100/Linf/Rebuffi2021Fixing_R18_ddpm",
                         "cifar10/L2/Rice2020Overfitting"]):
    e = table[zid]
    net = eval(e["architecture"], scope)
    randomize_bn(net, seed=i)
    net.eval()
    if e["normalize"] != "none" and e["normalize"]["source"] == "buffers":
        mu = [m + 0.05 for m in e["normalize"]["mean"]]
        sigma = [s * 1.5 for s in e["normalize"]["std"]]
        model = Buffered(net, mu, sigma).eval()
        state = {**net.state_dict(), "mu": model.mu, "sigma": model.sigma}
    else:
        model, state = net, net.state_dict()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
    path = os.path.join(out, "models", zid + ".pt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path)
    stem = os.path.join(out, zid.replace("/", "~"))
    np.save(stem + ".in.npy", x.numpy())
    np.save(stem + ".ref.npy", logits.numpy())
    print(zid)
"#;

fn predict_args<'a>(dir: &'a Path, stem: &'a str, id: &'a str) -> Vec<String> {
    let at = |suffix: &str| path_str(&dir.join(format!("{stem}.{suffix}"))).to_string();
    vec![
        "predict".into(),
        "--zoo".into(),
        id.into(),
        "--model-dir".into(),
        path_str(&dir.join("models")).into(),
        "--input".into(),
        at("in.npy"),
        "--output".into(),
        at("rift.npy"),
        "--device".into(),
        "cpu".into(),
    ]
}

#[test]
fn predict_by_zoo_id_matches_the_entrys_own_constructor() {
    let dir = tempfile::tempdir().unwrap();
    let made = run_python(MAKE_ENTRIES, &[path_str(dir.path())]);
    let ids: Vec<&str> = made.lines().collect();
    assert_eq!(ids.len(), 3, "{made}");
    for id in &ids {
        let stem = id.replace('/', "~");
        // No --checkpoint: the file is read from robustbench's cache path under --model-dir,
        // and no --normalize/--arch/--activation: the entry sets them.
        rift_ok(&predict_args(dir.path(), &stem, id));
        let d = max_abs_diff(
            &dir.path().join(format!("{stem}.rift.npy")),
            &dir.path().join(format!("{stem}.ref.npy")),
        );
        assert!(d <= 1e-4, "{id}: max |rift - torch| = {d}");
    }
    // `inspect` names the entry; explicit flags equal to the entry's are accepted.
    let said = rift_ok(&[
        "inspect",
        "--zoo",
        ids[0],
        "--model-dir",
        path_str(&dir.path().join("models")),
        "--arch",
        "dm-wrn-28-10",
        "--activation",
        "silu",
    ]);
    assert!(said.contains(&format!("zoo {}", ids[0])), "{said}");

    // A file holding another architecture is refused before any compute, naming both.
    let wrong = dir
        .path()
        .join("models/cifar10/Linf/Wang2023Better_WRN-70-16.pt");
    std::fs::copy(dir.path().join(format!("models/{}.pt", ids[0])), &wrong).unwrap();
    let run = rift(&predict_args(
        dir.path(),
        &ids[0].replace('/', "~"),
        "cifar10/Linf/Wang2023Better_WRN-70-16",
    ));
    assert_failed(
        &run,
        1,
        &[
            "is a dm-wrn-70-16",
            "holds a dm-wrn-28-10",
            path_str(&wrong),
        ],
    );
}

#[test]
fn bad_zoo_ids_and_flags_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let base = |id: &str| -> Vec<String> {
        [
            "predict",
            "--zoo",
            id,
            "--model-dir",
            path_str(&models),
            "--input",
            "x.npy",
            "--output",
            "y.npy",
        ]
        .map(String::from)
        .to_vec()
    };
    // Missing file: where robustbench would put it and how to get it there.
    let run = rift(&base("cifar10/Linf/Carmon2019Unlabeled"));
    assert_failed(
        &run,
        1,
        &[
            path_str(&models.join("cifar10/Linf/Carmon2019Unlabeled.pt")),
            "from robustbench.utils import load_model",
            "load_model(model_name='Carmon2019Unlabeled', dataset='cifar10', threat_model='Linf')",
            "--model-dir",
        ],
    );
    // Unknown name: the three nearest.
    let run = rift(&base("cifar10/Linf/Carmon2019Unlabelled"));
    let err = assert_failed(
        &run,
        1,
        &["cifar10/Linf/Carmon2019Unlabeled", "nearest names"],
    );
    let nearest = err.split("nearest names are ").nth(1).unwrap();
    let nearest = nearest.split(';').next().unwrap();
    assert_eq!(nearest.split(", ").count(), 3, "{err}");
    // Not DATASET/THREAT/NAME.
    assert_failed(
        &rift(&base("Carmon2019Unlabeled")),
        1,
        &["DATASET/THREAT/NAME"],
    );
    // Unsupported: the reason.
    assert_failed(
        &rift(&base("cifar10/Linf/Sehwag2021Proxy_ResNest152")),
        1,
        &["not supported", "ResNeSt"],
    );
    // Conflicting flags.
    let mut args = base("cifar10/Linf/Carmon2019Unlabeled");
    args.extend(["--arch".into(), "wrn-34-10".into()]);
    assert_failed(
        &rift(&args),
        1,
        &["--arch wrn-34-10 conflicts with --zoo", "wrn-28-10"],
    );
    let mut args = base("cifar10/Linf/Wang2023Better_WRN-70-16");
    args.extend(["--activation".into(), "relu".into()]);
    assert_failed(&rift(&args), 1, &["--activation relu conflicts", "silu"]);
    let mut args = base("cifar10/Linf/Carmon2019Unlabeled");
    args.extend(["--normalize".into(), "cifar10".into()]);
    assert_failed(
        &rift(&args),
        1,
        &["--normalize cifar10 conflicts", "--normalize none"],
    );
    // A CIFAR-100 entry on CIFAR-10 data.
    let run = rift(&[
        "eval",
        "--zoo",
        "cifar100/Linf/Wang2023Better_WRN-70-16",
        "--model-dir",
        path_str(&models),
    ]);
    assert_failed(&run, 1, &["--dataset cifar100"]);
    // Neither --checkpoint nor --zoo: clap's usage error.
    assert_failed(&rift(&["inspect"]), 2, &["--checkpoint"]);
}

/// A tiny CIFAR-10 (tests/py/zoo.py's `dm_fixture`) and Rebuffi2021Fixing_R18_ddpm built
/// by its table constructor, cached under OUT/models.
const MAKE_RUN_FIXTURE: &str = r#"
import sys, os, json, torch, torch.nn as nn
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import zoo_module, dm_fixture
out = sys.argv[1]
dm_fixture(out)
zid = "cifar10/Linf/Rebuffi2021Fixing_R18_ddpm"
e = [e for e in json.load(open("assets/zoo/robustbench-1.1.1.json"))["entries"]
     if e["dataset"] + "/" + e["threat"] + "/" + e["name"] == zid][0]
net = eval(e["architecture"], {**vars(zoo_module("dm_wide_resnet")), "nn": nn})
randomize_bn(net, seed=3)
path = os.path.join(out, "models", zid + ".pt")
os.makedirs(os.path.dirname(path))
torch.save(net.state_dict(), path)
"#;

#[test]
fn eval_and_run_record_the_zoo_id() {
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_RUN_FIXTURE, &[path_str(dir.path())]);
    let id = "cifar10/Linf/Rebuffi2021Fixing_R18_ddpm";
    let models = dir.path().join("models");
    let common = [
        "--zoo",
        id,
        "--model-dir",
        path_str(&models),
        "--data-dir",
        path_str(dir.path()),
        "--device",
        "cpu",
    ];
    let json = dir.path().join("eval.json");
    let mut args = vec!["eval", "--attack", "none", "--limit", "8"];
    args.extend(common);
    args.extend(["--output", path_str(&json)]);
    let run = rift(&args);
    let err = common::stderr_of(&run);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains(&format!("dm-preactresnet18 (zoo {id})")),
        "{err}"
    );
    let out = common::read_json(&json);
    assert_eq!(out["model"]["zoo"], id, "{out}");

    let session = dir.path().join("session");
    let mut args = vec!["run", "--session", path_str(&session)];
    args.extend(common);
    args.extend(["--limit", "8", "--adv-limit", "8", "--steps", "1"]);
    args.extend(["--eps", "0.03", "--step", "0.015", "--mrc-epochs", "1"]);
    args.extend([
        "--fast", "--screen", "1", "--epochs", "1", "--alphas", "0,1",
    ]);
    rift_ok(&args);
    let yaml = std::fs::read_to_string(session.join("session.yaml")).unwrap();
    assert!(yaml.matches(&format!("zoo: {id}")).count() >= 1, "{yaml}");
    let report = std::fs::read_to_string(session.join("report.md")).unwrap();
    assert!(report.contains(&format!("RobustBench `{id}`")), "{report}");
    // Continuing the session with the same id recomputes nothing and is accepted; naming
    // another entry's file through --checkpoint without --zoo is a recorded difference.
    rift_ok(&args);
    let mut other = vec!["run", "--session", path_str(&session)];
    let file = models.join(format!("{id}.pt"));
    other.extend([
        "--checkpoint",
        path_str(&file),
        "--data-dir",
        path_str(dir.path()),
    ]);
    other.extend([
        "--device",
        "cpu",
        "--limit",
        "8",
        "--adv-limit",
        "8",
        "--steps",
        "1",
    ]);
    other.extend(["--eps", "0.03", "--step", "0.015", "--mrc-epochs", "1"]);
    other.extend([
        "--fast", "--screen", "1", "--epochs", "1", "--alphas", "0,1",
    ]);
    let run = rift(&other);
    assert!(
        !run.status.success(),
        "a run without --zoo continued a --zoo session"
    );
    // rift compare names the AT model by its zoo id in every table it writes.
    let cmp = dir.path().join("compare");
    let latex = dir.path().join("table.tex");
    let mut args = vec!["compare", "--session", path_str(&cmp)];
    args.extend(common);
    args.extend(["--limit", "8", "--adv-limit", "8", "--steps", "1"]);
    args.extend(["--eps", "0.03", "--step", "0.015", "--mrc-epochs", "1"]);
    args.extend(["--fast", "--epochs", "1", "--alphas", "0,1"]);
    args.extend(["--candidates", "rift,last", "--latex", path_str(&latex)]);
    let text = rift_ok(&args);
    assert!(text.contains(&format!("AT model {id}: clean")), "{text}");
    let yaml = std::fs::read_to_string(cmp.join("compare.yaml")).unwrap();
    assert!(yaml.contains(&format!("model: {id}")), "{yaml}");
    let report = std::fs::read_to_string(cmp.join("report.md")).unwrap();
    assert!(
        report.contains(&format!("AT model `{id}`: clean")),
        "{report}"
    );
    let tex = std::fs::read_to_string(&latex).unwrap();
    assert!(tex.contains(&format!("% AT model: {id}")), "{tex}");
    assert!(
        common::stderr_of(&run).contains("zoo"),
        "{}",
        common::stderr_of(&run)
    );
}
