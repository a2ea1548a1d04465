//! Signals in every stage: `rift run` (adversarial set, first and a later MRC module, a
//! fine-tuning epoch, an α point, refinement, the final AutoAttack of either model) and
//! `rift compare` (either candidate) are stopped by SIGKILL, SIGTERM or SIGINT while that
//! stage is under way, the same command is run again, and the session must equal an
//! uninterrupted one, bit for bit (`session_diff::differences`).
//!
//! The OOD stages (AT and chosen model) read an MNIST-C-shaped set made from the tiny
//! test digits (`common::tiny_mnist_c`, under the data folder), so the demo model has one.
use crate::common::{demo_run_args, rift_bin};
use crate::session_diff::differences;
use crate::Tally;
use serde_json::Value;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub enum Signal {
    Kill,
    Term,
    Int,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
            Signal::Int => "INT",
        }
    }
}

/// Sends `signal` to `pid` with kill(1) (libc is not a dependency).
fn send(pid: u32, signal: Signal) {
    let status = Command::new("kill")
        .args(["-s", signal.name(), &pid.to_string()])
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill -s {} {pid} failed", signal.name());
}

/// The complete lines of `DIR/events.jsonl` that parse (a line being appended, or torn by
/// a SIGKILL, is not one).
pub fn events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn count(events: &[Value], event: &str) -> usize {
    events.iter().filter(|e| e["event"] == event).count()
}

fn started(events: &[Value], stage: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event"] == "stage_started" && e["stage"] == stage)
        .count()
}

/// Whether `stage` has started and not finished since it last started.
fn open(events: &[Value], stage: &str) -> bool {
    let Some(last) = events
        .iter()
        .rposition(|e| e["event"] == "stage_started" && e["stage"] == stage)
    else {
        return false;
    };
    !events[last..]
        .iter()
        .any(|e| e["event"] == "stage_finished" && e["stage"] == stage)
}

/// OOD of `model` (`at` or `chosen`) has started: its stage starts as `ood` and finishes
/// as `ood_at` / `ood_chosen`.
fn ood_started(events: &[Value], model: &str) -> bool {
    events.iter().any(|e| {
        e["event"] == "stage_started" && e["stage"] == "ood" && e["about"]["model"] == model
    })
}

/// OOD of `model` has started and not finished since.
fn ood_open(events: &[Value], model: &str) -> bool {
    let Some(last) = events.iter().rposition(|e| {
        e["event"] == "stage_started" && e["stage"] == "ood" && e["about"]["model"] == model
    }) else {
        return false;
    };
    let finished = format!("ood_{model}");
    !events[last..]
        .iter()
        .any(|e| e["event"] == "stage_finished" && e["stage"] == finished.as_str())
}

/// AutoAttack's budgets for the final evaluation: far below the published ones, so the
/// stage lasts seconds (tests/final_eval.rs checks the numbers themselves).
const FINAL_EVAL: [&str; 12] = [
    "--final-eval",
    "autoattack",
    "--final-limit",
    "16",
    "--apgd-iters",
    "5",
    "--targets",
    "2",
    "--fab-iters",
    "5",
    "--square-queries",
    "10",
];

/// The tiny demo `rift run` with every stage the demo model has: three fine-tuning epochs
/// (so one can be interrupted after another finished), one refinement round and the final
/// AutoAttack.
pub fn run_args(session: &Path, data: &Path) -> Vec<String> {
    let mut extra = vec!["--lr", "0.05", "--refine", "1", "--ood-dataset", "mnist-c"];
    extra.extend_from_slice(&FINAL_EVAL);
    let mut args = demo_run_args(session, data, &extra);
    let epochs = args.iter().position(|a| a == "--epochs").unwrap();
    args[epochs + 1] = "3".into();
    args
}

/// `rift compare` of two candidates (RiFT's module and the last layer) on the tiny demo
/// settings of `rift run` (as tests/session_lock.rs makes them).
pub fn compare_args(session: &Path, data: &Path) -> Vec<String> {
    let extra = [
        "--candidates",
        "rift,last",
        "--lr",
        "0.05",
        "--tolerance",
        "5",
        "--refine",
        "0",
    ];
    let mut args = demo_run_args(session, data, &extra);
    args[0] = "compare".into();
    args
}

/// The rift command a case interrupts.
#[derive(Clone, Copy, PartialEq)]
enum Subcommand {
    Run,
    Compare,
}

/// A moment to interrupt: `trigger` says from the events so far that the stage is under
/// way; `under_way` says, once the process has exited, that the signal came before the
/// stage finished (so the case tested what it names).
struct Moment {
    what: &'static str,
    command: Subcommand,
    trigger: fn(&[Value]) -> bool,
    under_way: fn(&Path, &[Value]) -> bool,
}

fn candidate_unfinished(dir: &Path, events: &[Value], label: &str) -> bool {
    events
        .iter()
        .any(|e| e["event"] == "stage_started" && e["about"]["label"] == label)
        && !dir
            .join("candidates")
            .join(label)
            .join("candidate.yaml")
            .exists()
}

const MOMENTS: [Moment; 12] = [
    Moment {
        what: "the adversarial set",
        command: Subcommand::Run,
        trigger: |e| started(e, "adv_set") > 0,
        under_way: |_, e| open(e, "adv_set"),
    },
    Moment {
        what: "the first MRC module",
        command: Subcommand::Run,
        trigger: |e| count(e, "module_epoch") > 0,
        under_way: |_, e| open(e, "mrc") && count(e, "module_scored") == 0,
    },
    Moment {
        what: "a later MRC module (the fourth)",
        command: Subcommand::Run,
        trigger: |e| count(e, "module_scored") >= 3,
        under_way: |_, e| open(e, "mrc") && count(e, "module_scored") < 5,
    },
    Moment {
        what: "fine-tuning epoch 2 of 3",
        command: Subcommand::Run,
        trigger: |e| count(e, "finetune_epoch") >= 1,
        under_way: |_, e| open(e, "finetune"),
    },
    Moment {
        what: "an α point of the grid",
        command: Subcommand::Run,
        trigger: |e| count(e, "sweep_point") >= 1,
        under_way: |_, e| open(e, "interpolate") && count(e, "sweep_point") < 3,
    },
    Moment {
        what: "refinement",
        command: Subcommand::Run,
        trigger: |e| count(e, "sweep_point") >= 3,
        under_way: |_, e| open(e, "interpolate"),
    },
    Moment {
        what: "OOD of the AT model",
        command: Subcommand::Run,
        trigger: |e| ood_started(e, "at"),
        under_way: |_, e| ood_open(e, "at"),
    },
    Moment {
        what: "OOD of the chosen model",
        command: Subcommand::Run,
        trigger: |e| ood_started(e, "chosen"),
        under_way: |_, e| ood_open(e, "chosen"),
    },
    Moment {
        what: "the final AutoAttack of the AT model",
        command: Subcommand::Run,
        trigger: |e| count(e, "auto_attack") > 0,
        under_way: |_, e| open(e, "final_eval") && started(e, "final_eval") == 1,
    },
    Moment {
        what: "the final AutoAttack of the chosen model",
        command: Subcommand::Run,
        trigger: |e| started(e, "final_eval") >= 2,
        under_way: |_, e| open(e, "final_eval"),
    },
    Moment {
        what: "compare candidate 1 of 2",
        command: Subcommand::Compare,
        trigger: |e| started(e, "candidate") >= 1,
        under_way: |d, e| candidate_unfinished(d, e, "rift"),
    },
    Moment {
        what: "compare candidate 2 of 2",
        command: Subcommand::Compare,
        trigger: |e| started(e, "candidate") >= 2,
        under_way: |d, e| candidate_unfinished(d, e, "last"),
    },
];

/// Which signals hit each moment: SIGKILL every one, and SIGTERM and SIGINT in turn (each
/// six). Every signal in every moment would add half again to the suite's time.
fn cases() -> Vec<(usize, Signal)> {
    let mut v = Vec::new();
    for i in 0..MOMENTS.len() {
        v.push((i, Signal::Kill));
        v.push((
            i,
            if i % 2 == 0 {
                Signal::Term
            } else {
                Signal::Int
            },
        ));
    }
    v
}

/// Runs `args` to its end on one thread: every run the suite compares uses the same
/// thread count (a reduction over another number of threads may round differently), and
/// two processes share the machine's cores.
pub fn run_to_end(args: &[String]) -> std::process::Output {
    Command::new(rift_bin())
        .args(args)
        .env("RIFT_THREADS", "1")
        .output()
        .expect("cannot run the rift binary")
}

fn args_for(command: Subcommand, session: &Path, data: &Path) -> Vec<String> {
    match command {
        Subcommand::Run => run_args(session, data),
        Subcommand::Compare => compare_args(session, data),
    }
}

/// Session directory names: the session's name is its directory's, so every copy of one
/// command uses the same one.
fn session_name(command: Subcommand) -> &'static str {
    match command {
        Subcommand::Run => "s",
        Subcommand::Compare => "c",
    }
}

/// Starts the command of `moment` in a fresh session under `base`, sends `signal` once
/// the stage is under way, then runs the same command to its end. Returns the session.
fn interrupt_and_continue(
    moment: &Moment,
    signal: Signal,
    base: &Path,
    data: &Path,
    tally: &Tally,
) -> Result<PathBuf, String> {
    let what = format!("SIG{} in {}", signal.name(), moment.what);
    let session = base.join(session_name(moment.command));
    let args = args_for(moment.command, &session, data);
    let mut child = Command::new(rift_bin())
        .args(&args)
        .env("RIFT_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{what}: cannot start rift: {e}"))?;
    let start = Instant::now();
    loop {
        if (moment.trigger)(&events(&session)) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("{what}: rift ended ({status}) before the stage"));
        }
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            return Err(format!("{what}: the stage never started"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    send(child.id(), signal);
    tally.injected();
    let status = child.wait().unwrap();
    if status.success() {
        return Err(format!("{what}: rift exited 0 after the signal"));
    }
    if !(moment.under_way)(&session, &events(&session)) {
        return Err(format!(
            "{what}: the stage had finished when the signal came (the case tested nothing)"
        ));
    }
    let out = run_to_end(&args);
    if !out.status.success() {
        return Err(format!(
            "{what}: the continued run failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(session)
}

/// A finished job: its case (none for a reference) and the session it left, or why not.
type Finished = (Option<(usize, Signal)>, Result<PathBuf, String>);

/// Runs the uninterrupted references and every (moment, signal) case, two processes at a
/// time, then compares each continued session with its reference. Returns the finished
/// reference sessions of `rift run` and `rift compare`.
pub fn signals_in_every_stage(dir: &Path, data: &Path, tally: &Tally) -> (PathBuf, PathBuf) {
    enum Job {
        Reference(Subcommand),
        Case(usize, Signal),
    }
    let mut jobs: VecDeque<Job> = VecDeque::new();
    jobs.push_back(Job::Reference(Subcommand::Run));
    jobs.push_back(Job::Reference(Subcommand::Compare));
    // Compare cases first: they are the longest, so the two workers end together.
    let (cmp, run): (Vec<_>, Vec<_>) = cases()
        .into_iter()
        .partition(|(i, _)| MOMENTS[*i].command == Subcommand::Compare);
    jobs.extend(cmp.into_iter().chain(run).map(|(i, s)| Job::Case(i, s)));
    let jobs = Mutex::new(jobs);
    let done: Mutex<Vec<Finished>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let Some(job) = jobs.lock().unwrap().pop_front() else {
                    return;
                };
                let result = match job {
                    Job::Reference(command) => {
                        let base = dir.join(format!("reference-{}", session_name(command)));
                        let session = base.join(session_name(command));
                        let out = run_to_end(&args_for(command, &session, data));
                        assert!(
                            out.status.success(),
                            "the reference run failed:\n{}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                        (None, Ok(session))
                    }
                    Job::Case(i, signal) => {
                        let base = dir.join(format!("case-{i}-{}", signal.name()));
                        let r = interrupt_and_continue(&MOMENTS[i], signal, &base, data, tally);
                        (Some((i, signal)), r)
                    }
                };
                done.lock().unwrap().push(result);
            });
        }
    });
    let reference = |c: Subcommand| {
        dir.join(format!("reference-{}", session_name(c)))
            .join(session_name(c))
    };
    for (case, result) in done.into_inner().unwrap() {
        let Some((i, signal)) = case else { continue };
        let what = format!("SIG{} in {}", signal.name(), MOMENTS[i].what);
        match result {
            Err(e) => tally.failed(e),
            Ok(session) => {
                let diff = differences(&reference(MOMENTS[i].command), &session);
                if diff.is_empty() {
                    tally.intact();
                } else {
                    tally.failed(format!("{what}: the continued session differs: {diff:?}"));
                }
            }
        }
    }
    (reference(Subcommand::Run), reference(Subcommand::Compare))
}
