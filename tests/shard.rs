//! MRC sharded over processes (`rift mrc --shard I/N`) and merged (`rift merge`) equals one
//! `rift mrc`; a `rift run` on the same session continues from the merge without scoring
//! any module again; incomplete or mixed shards are refused.
mod common;

use common::{assert_failed, path_str, rift, rift_bin, rift_ok, stderr_of, DEMO_MODEL, EXIT_ERROR};
use rift::engine::rift::mrc::results::MrcResult;
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
/// merge job (checked with a stand-in `sbatch` that records its calls), with the resources
/// of RIFT_GRES / RIFT_CPUS_PER_TASK, and `--only` resubmits some shards of the same N; the
/// job scripts themselves, run as Slurm would run them (array task ids in the
/// environment), produce a merged result. `tests/slurm_cluster.rs` runs them on a real
/// Slurm.
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
    let submit = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new("bash")
            .arg(scripts.join("submit-mrc.sh"))
            .args(args)
            .args([path_str(&dir), "--"])
            .args(&mrc)
            .args(["--then-run", "--lr", "0.01"])
            .env("PATH", &path)
            .env_remove("RIFT_GRES")
            .env_remove("RIFT_CPUS_PER_TASK")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Defaults: a GPU and 8 CPUs per job.
    let said = submit(&["2"], &[]);
    assert!(
        said.contains("array 1001 (shards 0-1 of 2) and merge job 1002"),
        "{said}"
    );
    // A CPU-only cluster: no GRES, 2 CPUs; shard 1 of 2 alone.
    let cpu_only = [("RIFT_GRES", ""), ("RIFT_CPUS_PER_TASK", "2")];
    let said = submit(&["--only", "1", "2"], &cpu_only);
    assert!(
        said.contains("array 1003 (shards 1 of 2) and merge job 1004"),
        "{said}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
    let starts = [
        "--parsable --cpus-per-task=8 --gres=gpu:1 --array=0-1 --export=ALL,RIFT_SHARDS=2 ",
        "--parsable --cpus-per-task=8 --gres=gpu:1 --dependency=afterok:1001 --kill-on-invalid-dep=yes ",
        "--parsable --cpus-per-task=2 --array=1 --export=ALL,RIFT_SHARDS=2 ",
        "--parsable --cpus-per-task=2 --dependency=afterok:1003 --kill-on-invalid-dep=yes ",
    ];
    for (call, start) in calls.iter().zip(starts) {
        assert!(
            call.starts_with(start),
            "{call}\ndoes not start with\n{start}"
        );
    }
    for i in [0, 2] {
        assert!(calls[i].contains("mrc-shard.sbatch"), "{}", calls[i]);
    }
    for i in [1, 3] {
        assert!(calls[i].contains("merge.sbatch"), "{}", calls[i]);
        assert!(calls[i].ends_with("--run --lr 0.01"), "{}", calls[i]);
    }
    // A shard that is not among N, and a bad CPU count, are refused before sbatch.
    for (args, env) in [
        (&["--only", "2", "2"][..], &[][..]),
        (&["2"][..], &[("RIFT_CPUS_PER_TASK", "0")][..]),
    ] {
        let out = Command::new("bash")
            .arg(scripts.join("submit-mrc.sh"))
            .args(args)
            .args([path_str(&dir), "--"])
            .env("PATH", &path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} {env:?}: {}",
            stderr_of(&out)
        );
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 4);

    // What Slurm then runs: both array tasks at once (task 1 as `--only 1` runs it: an
    // array of one task, N from RIFT_SHARDS), then the merge.
    let tasks: Vec<_> = [("0", "2"), ("1", "1")]
        .iter()
        .map(|(id, task_count)| {
            Command::new("bash")
                .arg(scripts.join("mrc-shard.sbatch"))
                .arg(path_str(&dir))
                .args(&mrc)
                .current_dir(root)
                .env("SLURM_ARRAY_TASK_ID", id)
                .env("SLURM_ARRAY_TASK_COUNT", task_count)
                .env("RIFT_SHARDS", "2")
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
