//! rift's cluster path on a real Slurm: a single-node cluster on this machine
//! (`slurm/cluster.rs`) runs `scripts/slurm/submit-mrc.sh` as a user would, CPU-only
//! (`RIFT_GRES=` asks for no GPU). The job array's merged MRC equals one `rift mrc`, the
//! dependent job's `rift run` picks an α, and a cancelled shard is named by `rift merge`
//! and completed by resubmitting it alone (`--only`).
#[path = "slurm/cluster.rs"]
mod cluster;
mod common;

use cluster::Cluster;
use common::{assert_failed, path_str, rift_bin, rift_ok, DEMO_MODEL, EXIT_ERROR};
use rift::engine::rift::mrc::results::MrcResult;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const SHARDS: usize = 3;
/// Generous for the demo model on two busy cores; a hung job fails the test instead.
const JOB_LIMIT: Duration = Duration::from_secs(480);

/// The demo MRC of `tests/shard.rs`, with absolute paths: the jobs run in the cluster's
/// directory.
fn mrc_flags() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = vec![
        "--checkpoint".to_string(),
        path_str(&root.join(DEMO_MODEL)).to_string(),
        "--data-dir".to_string(),
        path_str(&root.join("assets/demo")).to_string(),
    ];
    let rest = "--dataset mnist --eps 0.2 --step 0.05 --adv-limit 64 --mrc-epochs 2 --fast \
                --device cpu --threads 1";
    v.extend(rest.split_whitespace().map(String::from));
    v
}

/// `rift run` after the merge: the same MRC settings, then a short fine-tuning and α search.
fn run_flags() -> Vec<String> {
    let mut v = mrc_flags();
    let rest = [
        "--limit", "100", "--epochs", "1", "--lr", "0.01", "--alphas", "0,1",
    ];
    v.extend(rest.map(String::from));
    v
}

/// The ids `submit-mrc.sh` printed: "submitted MRC array A (shards …) and merge job M …".
struct Submitted {
    array: String,
    merge: String,
}

/// Runs `scripts/slurm/submit-mrc.sh [only…] 3 SESSION -- <MRC> --then-run <run>` against
/// the cluster, asking for one CPU and no GRES per job. With `hold_task`, that array task
/// waits until cancelled instead of running rift (`slurm/hold-task.sh`).
fn submit(cluster: &Cluster, only: &[&str], session: &Path, hold_task: Option<&str>) -> Submitted {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = cluster.command("bash");
    if let Some(task) = hold_task {
        cmd.env("RIFT", root.join("tests/slurm/hold-task.sh"))
            .env("RIFT_BIN", rift_bin())
            .env("RIFT_HOLD_TASK", task);
    } else {
        cmd.env("RIFT", rift_bin());
    }
    let out = cmd
        .arg(root.join("scripts/slurm/submit-mrc.sh"))
        .args(only)
        .args([&SHARDS.to_string(), path_str(session), "--"])
        .args(mrc_flags())
        .arg("--then-run")
        .args(run_flags())
        .env("RIFT_GRES", "")
        .env("RIFT_CPUS_PER_TASK", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "submit-mrc.sh failed ({}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let id_after = |words: &str| -> String {
        let rest = stdout
            .split(words)
            .nth(1)
            .unwrap_or_else(|| panic!("{stdout}"));
        rest.split_whitespace().next().unwrap().to_string()
    };
    Submitted {
        array: id_after("MRC array "),
        merge: id_after("merge job "),
    }
}

fn load(path: &Path) -> MrcResult {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Asserts every job of `states` ended in `want`, showing the cluster's logs if not.
fn assert_states(cluster: &Cluster, states: &BTreeMap<String, String>, want: &[(&str, &str)]) {
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(id, s)| (id.to_string(), s.to_string()))
        .collect();
    assert_eq!(states, &want, "job states\n{}", cluster.logs());
}

/// The merged MRC of `session` is the single run's, bit for bit (every module's scores,
/// per-epoch losses and flag, the recommendation; only the wall time differs), and `rift
/// run` finished in the session with a chosen α from the searched ones, continuing from
/// that MRC.
fn assert_session_done(cluster: &Cluster, session: &Path, single: &MrcResult) {
    let merged = load(&session.join("mrc.yaml"));
    assert_eq!(merged.modules.len(), 21);
    let single_but_time = MrcResult {
        seconds: merged.seconds,
        ..single.clone()
    };
    assert_eq!(merged, single_but_time);
    let done = rift::report::session::Session::load(session).unwrap_or_else(|e| {
        panic!(
            "no session in {}: {e}\n{}",
            session.display(),
            cluster.logs()
        )
    });
    let chosen = done.chosen.expect("rift run chose an α");
    assert!([0.0, 1.0].contains(&chosen.alpha), "α {}", chosen.alpha);
    assert!(
        session.join(&chosen.safetensors).is_file(),
        "{}",
        chosen.safetensors
    );
    assert_eq!(done.mrc.unwrap().recommended, merged.recommended);
}

#[test]
fn slurm_runs_the_sharded_session_and_a_resubmitted_shard() {
    cluster::ensure_installed();
    let outside_before = cluster::outside_state();
    // Phase times, shown when the test fails (a deadline is then easier to judge).
    let started = std::time::Instant::now();
    let phase = |what: &str| eprintln!("{what} after {:?}", started.elapsed());
    let mut cluster = Cluster::start();
    phase("cluster up");
    let dir = cluster.dir().to_path_buf();

    // A whole session: the 3-task array, then the merge-and-run job after it.
    let whole = dir.join("whole");
    let jobs = submit(&cluster, &[], &whole, None);
    let states = cluster.wait_for_jobs(&[&jobs.array, &jobs.merge], JOB_LIMIT);
    let (a, m) = (&jobs.array, jobs.merge.as_str());
    let ok = "COMPLETED";
    let (t0, t1, t2) = (format!("{a}_0"), format!("{a}_1"), format!("{a}_2"));
    assert_states(
        &cluster,
        &states,
        &[(&t0, ok), (&t1, ok), (&t2, ok), (m, ok)],
    );
    phase("whole session done");
    let single_path = dir.join("single.yaml");
    let mut args: Vec<String> = vec!["mrc".into()];
    args.extend(mrc_flags());
    args.extend(["--output".into(), path_str(&single_path).into()]);
    rift_ok(&args);
    let single = load(&single_path);
    assert_session_done(&cluster, &whole, &single);

    // Shard 1 is cancelled while it runs (hold-task.sh keeps it from ending first): Slurm
    // cancels the merge job after it (--kill-on-invalid-dep), and `rift merge` names the
    // missing shard.
    let broken = dir.join("resubmitted");
    let jobs = submit(&cluster, &[], &broken, Some("1"));
    let (a, m) = (&jobs.array, jobs.merge.as_str());
    let (t0, t1, t2) = (format!("{a}_0"), format!("{a}_1"), format!("{a}_2"));
    cluster.wait_for_state(&t1, "RUNNING", JOB_LIMIT);
    let out = cluster.command("scancel").arg(&t1).output().unwrap();
    assert!(out.status.success(), "scancel {t1}: {out:?}");
    let states = cluster.wait_for_jobs(&[a, m], JOB_LIMIT);
    let gone = "CANCELLED";
    assert_states(
        &cluster,
        &states,
        &[(&t0, ok), (&t1, gone), (&t2, ok), (m, gone)],
    );
    phase("shard 1 and the merge job cancelled");
    let out = common::rift(&["merge", path_str(&broken)]);
    assert_failed(&out, EXIT_ERROR, &["shard 1 of 3 is missing"]);

    // Shard 1 alone, and a new merge-and-run job: the session completes.
    let jobs = submit(&cluster, &["--only", "1"], &broken, None);
    let states = cluster.wait_for_jobs(&[&jobs.array, &jobs.merge], JOB_LIMIT);
    let again = format!("{}_1", jobs.array);
    assert_states(&cluster, &states, &[(&again, ok), (&jobs.merge, ok)]);
    assert_session_done(&cluster, &broken, &single);
    phase("resubmitted shard and session done");

    // Everything stops by pid: no process carrying this cluster's SLURM_CONF (daemons,
    // job steps, jobs) is left, and the packaged daemons' default state paths are as
    // they were.
    let conf = cluster.conf().to_path_buf();
    cluster.stop();
    assert_eq!(
        cluster::processes_of(&conf),
        Vec::<u32>::new(),
        "left running"
    );
    assert_eq!(cluster::outside_state(), outside_before);
}
