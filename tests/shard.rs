//! MRC sharded over processes (`rift mrc --shard I/N`) and merged (`rift merge`) equals one
//! `rift mrc`; a `rift run` on the same session continues from the merge without scoring
//! any module again; incomplete or mixed shards are refused.
mod common;

use common::{assert_failed, path_str, rift, rift_bin, rift_ok, stderr_of, DEMO_MODEL, EXIT_ERROR};
use rift::engine::rift::results::MrcResult;
use std::path::Path;
use std::process::Command;

const MRC: &[&str] = &[
    "--checkpoint",
    DEMO_MODEL,
    "--dataset",
    "mnist",
    "--data-dir",
    "assets/demo",
    "--eps",
    "0.2",
    "--step",
    "0.05",
    "--adv-limit",
    "64",
    "--mrc-epochs",
    "2",
    "--fast",
    "--device",
    "cpu",
    "--threads",
    "1",
];

fn load(path: &Path) -> MrcResult {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn shards_merge_into_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    for i in 0..3 {
        let shard = format!("{i}/3");
        let mut args = vec!["mrc"];
        args.extend_from_slice(MRC);
        args.extend(["--shard", &shard, "--session", path_str(&dir)]);
        rift_ok(&args);
    }
    let single = tmp.path().join("single.yaml");
    let mut args = vec!["mrc"];
    args.extend_from_slice(MRC);
    args.extend(["--output", path_str(&single)]);
    rift_ok(&args);

    let out = rift_ok(&["merge", path_str(&dir)]);
    assert!(out.contains("recommended"), "{out}");
    let merged = load(&dir.join("mrc.yaml"));
    let single = load(&single);
    assert_eq!(merged.modules.len(), 21);
    assert_eq!(merged.recommended, single.recommended);
    for m in &single.modules {
        let s = merged.modules.iter().find(|x| x.name == m.name).unwrap();
        assert_eq!(s.mrc, m.mrc, "{}", m.name);
        assert_eq!(s.epoch_losses, m.epoch_losses, "{}", m.name);
        assert_eq!(s.robust_acc_drop, m.robust_acc_drop, "{}", m.name);
    }

    // `rift run` on the session continues after MRC: no module is scored again.
    let mut args = vec!["run"];
    args.extend_from_slice(MRC);
    args.extend([
        "--limit",
        "100",
        "--epochs",
        "1",
        "--lr",
        "0.01",
        "--alphas",
        "0,1",
        "--session",
        path_str(&dir),
    ]);
    rift_ok(&args);
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(!events.contains("\"module_epoch\""), "MRC ran again");
    let session = rift::report::session::Session::load(&dir).unwrap();
    assert_eq!(session.mrc.unwrap().recommended, merged.recommended);
}

#[test]
fn shards_in_parallel_and_bad_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    // Two shards at the same time (separate processes), one module each.
    let spawn = |shard: &str, extra: &[&str]| {
        Command::new(rift_bin())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("mrc")
            .args(MRC)
            .args(["--modules", "conv1,linear"])
            .args(extra)
            .args(["--shard", shard, "--session", path_str(&dir)])
            .spawn()
            .expect("rift starts")
    };
    let a = spawn("0/2", &[]);
    let b = spawn("1/2", &[]);
    for mut c in [a, b] {
        assert!(c.wait().unwrap().success());
    }
    rift_ok(&["merge", path_str(&dir)]);
    assert_eq!(load(&dir.join("mrc.yaml")).modules.len(), 2);

    // A shard of another job (other epochs) is refused, naming what differs.
    assert!(spawn("1/2", &["--epochs", "1"]).wait().unwrap().success());
    assert_failed(
        &rift(&["merge", path_str(&dir)]),
        EXIT_ERROR,
        &["disagree on"],
    );

    // A missing shard is named.
    std::fs::remove_file(dir.join("mrc_shards/shard-1-of-2.yaml")).unwrap();
    let out = rift(&["merge", path_str(&dir)]);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains("shard 1 of 2 is missing"), "{err}");

    // Nothing to merge, and a bad --shard.
    let out = rift(&["merge", path_str(tmp.path())]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("mrc_shards"));
    let mut args = vec!["mrc"];
    args.extend_from_slice(MRC);
    args.extend(["--shard", "2/2", "--session", path_str(&dir)]);
    let out = rift(&args);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("0 ≤ I < N"), "{}", stderr_of(&out));
}

/// The Slurm scripts under scripts/slurm: submit-mrc.sh wires an array and a dependent
/// merge job (checked with a stand-in `sbatch` that records its calls), and the job
/// scripts themselves, run as Slurm would run them (array task ids in the environment),
/// produce a merged result.
#[test]
fn slurm_scripts_submit_and_run_the_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scripts = root.join("scripts/slurm");
    let dir = tmp.path().join("s");
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = tmp.path().join("sbatch.log");
    let stub = format!(
        "#!/usr/bin/env bash\necho \"$*\" >> {}\nn=$(wc -l < {})\necho \"$((1000 + n));cluster\"\n",
        path_str(&log),
        path_str(&log)
    );
    std::fs::write(bin.join("sbatch"), stub).unwrap();
    Command::new("chmod")
        .args(["+x", path_str(&bin.join("sbatch"))])
        .status()
        .unwrap();
    let path = format!("{}:{}", path_str(&bin), std::env::var("PATH").unwrap());
    let mut mrc: Vec<&str> = MRC.to_vec();
    mrc.extend(["--modules", "conv1,linear"]);
    let out = Command::new("bash")
        .arg(scripts.join("submit-mrc.sh"))
        .args(["2", path_str(&dir), "--"])
        .args(&mrc)
        .args(["--then-run", "--lr", "0.01"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].contains("--array=0-1") && calls[0].contains("mrc-shard.sbatch"));
    assert!(calls[1].contains("--dependency=afterok:1001") && calls[1].contains("merge.sbatch"));
    assert!(calls[1].contains("--run --lr 0.01"), "{}", calls[1]);

    // What Slurm then runs: both array tasks at once, then the merge.
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            Command::new("bash")
                .arg(scripts.join("mrc-shard.sbatch"))
                .arg(path_str(&dir))
                .args(&mrc)
                .current_dir(root)
                .env("SLURM_ARRAY_TASK_ID", i.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", "2")
                .env("RIFT", rift_bin())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut t in tasks {
        assert!(t.wait().unwrap().success());
    }
    let out = Command::new("bash")
        .arg(scripts.join("merge.sbatch"))
        .arg(path_str(&dir))
        .current_dir(root)
        .env("RIFT", rift_bin())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let merged = load(&dir.join("mrc.yaml"));
    assert_eq!(merged.modules.len(), 2);
}

/// `--devices`: modules spread over several device threads (two CPU "devices" here; the
/// same code drives several GPUs) give the single-device values.
#[test]
fn devices_split_the_modules_with_identical_values() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        let mut args = vec!["mrc"];
        args.extend_from_slice(MRC);
        args.extend(["--modules", "conv1,layer1.0.conv1,layer2.0.conv1,linear"]);
        args.extend_from_slice(extra);
        args.extend(["--output", path_str(&out)]);
        rift_ok(&args);
        load(&out)
    };
    let one = run("one.yaml", &[]);
    let two = run("two.yaml", &["--devices", "cpu,cpu"]);
    assert_eq!(one.modules, two.modules);
    assert_eq!(one.recommended, two.recommended);
}
