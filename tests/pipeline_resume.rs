//! `rift run` resumes: a killed run continues where it stopped (no module scored twice,
//! the baseline kept), its outputs load in PyTorch, other settings on the same session are
//! refused, `rift report` re-renders, and a corrupt `mrc_partial.yaml` is kept aside with a
//! warning. Runs read a tiny MNIST copy of the bundled demo (128 training digits, 96–128
//! test digits).
mod common;

use common::stages::PY_LOAD_STRICT;
use common::{
    assert_fails_cleanly, demo_run_args, path_str, rift, rift_bin, rift_ok, run_python, stderr_of,
    tiny_mnist,
};
use rift::engine::rift::mrc::partial::PartialMrc;
use rift::report::session::Session;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_killed_run_continues_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 128);
    let s = t.join("s");
    let args = demo_run_args(&s, &data, &[]);

    // Start, wait until MRC has scored a module (or finished), then SIGKILL.
    let mut child = Command::new(rift_bin())
        .args(&args)
        .env("RIFT_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = s.join("mrc_partial.yaml");
    let start = Instant::now();
    // The partial file exists from the adversarial set on; wait for a first exact score.
    let scores = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_yaml::from_str::<PartialMrc>(&t).ok())
            .map(|r| r.scores.into_iter().map(|m| m.name).collect())
            .unwrap_or_default()
    };
    loop {
        if !scores(&partial).is_empty() {
            break;
        }
        if let Ok(sess) = Session::load(&s) {
            if sess.mrc.is_some() {
                break;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("rift run ended ({status}) before MRC started");
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "MRC never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Session::load(&s).expect("session.yaml parses after a kill");
    assert!(
        killed.baseline.is_some(),
        "the baseline was saved before MRC"
    );
    assert!(killed.interpolation.is_none());
    // Modules fully scored before the kill must not be scored again.
    let scored_before: Vec<String> = match partial.exists() {
        true => scores(&partial),
        false => killed
            .mrc
            .as_ref()
            .unwrap()
            .modules
            .iter()
            .map(|m| m.name.clone())
            .collect(),
    };
    assert!(!scored_before.is_empty());

    // Same command: continues and finishes.
    let out = rift(&args);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    assert!(out.status.success(), "the continued run failed:\n{all}");
    assert!(
        all.contains("continuing"),
        "no `continuing` message:\n{all}"
    );
    assert!(
        !partial.exists(),
        "mrc_partial.yaml is removed once MRC is complete"
    );

    let sess = Session::load(&s).unwrap();
    let baseline = sess.baseline.as_ref().unwrap();
    assert_eq!(baseline.n, 96);
    let mrc = sess.mrc.as_ref().expect("mrc");
    assert_eq!(mrc.modules.len(), 5);
    assert_eq!(mrc.adv_n, 64);
    assert!(
        mrc.modules.windows(2).all(|w| w[0].mrc <= w[1].mrc),
        "MRC not ascending"
    );
    assert!(mrc.modules[0].recommended && mrc.modules[1..].iter().all(|m| !m.recommended));
    assert_eq!(mrc.recommended, mrc.modules[0].name);
    for m in &mrc.modules {
        assert_eq!(m.epoch_losses.len(), 2, "{}", m.name);
    }
    let ft = sess.finetune.as_ref().expect("finetune");
    assert_eq!(
        ft.layers,
        [mrc.modules[0].name.clone()],
        "--layer auto = the lowest MRC"
    );
    let interp = sess.interpolation.as_ref().expect("interpolation");
    let alphas: Vec<f64> = interp.points.iter().map(|p| p.alpha).collect();
    assert_eq!(alphas, [0.0, 0.5, 1.0]);
    // α = 0 is the AT model, evaluated with the same seed as the baseline.
    assert_eq!(interp.points[0].clean_acc, baseline.clean_acc);
    assert_eq!(Some(interp.points[0].robust_acc), baseline.robust_acc);
    let chosen = sess.chosen.as_ref().expect("chosen");
    assert_eq!(chosen.alpha, interp.chosen_alpha);

    // events.jsonl: one JSON object with an `event` a line, from both runs.
    let events: Vec<Value> = std::fs::read_to_string(s.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}"))
        })
        .collect();
    assert!(events.iter().all(|e| e["event"].is_string()));
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for k in [
        "baseline",
        "module_scored",
        "module_epoch",
        "sweep_point",
        "stage_finished",
    ] {
        assert!(kinds.contains(&k), "no {k} event");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "sweep_point").count(), 3);
    // The AT baseline (n = 96) ran once; the adversarial set's own summary (n = 64) is
    // rebuilt by each run.
    let baselines = events
        .iter()
        .filter(|e| e["event"] == "baseline" && e["n"] == 96)
        .count();
    assert_eq!(baselines, 1, "the baseline ran twice");
    for name in &scored_before {
        let epochs = events
            .iter()
            .filter(|e| e["event"] == "module_epoch" && e["module"] == name.as_str())
            .count();
        assert_eq!(
            epochs, 2,
            "{name} was scored before the kill and must not be scored again"
        );
    }
    for m in &mrc.modules {
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "module_scored" && e["score"]["name"] == m.name.as_str()),
            "no module_scored for {}",
            m.name
        );
    }

    for f in [
        "report.md",
        "mrc.png",
        "mrc.svg",
        "finetune.png",
        "finetune.svg",
        "alpha.png",
        "alpha.svg",
        "chosen.pth",
        "chosen.safetensors",
        "finetuned.safetensors",
    ] {
        let p = s.join(f);
        assert!(
            p.is_file() && std::fs::metadata(&p).unwrap().len() > 0,
            "{f} missing"
        );
    }
    // chosen.pth loads strictly in PyTorch and equals chosen.safetensors.
    run_python(
        PY_LOAD_STRICT,
        &[
            path_str(&s.join("chosen.pth")),
            "8",
            "1",
            "28",
            path_str(&s.join("chosen.safetensors")),
        ],
    );

    // Other settings on the same session: refused, naming the session directory.
    let out = rift(&demo_run_args(&s, &data, &["--lr", "0.5"]));
    assert_fails_cleanly(&out, "rift run with another --lr", &[path_str(&s)]);
    assert_eq!(
        Session::load(&s).unwrap().settings,
        sess.settings,
        "the session was touched"
    );

    // `rift report` re-renders the report and figures.
    std::fs::remove_file(s.join("report.md")).unwrap();
    std::fs::remove_file(s.join("alpha.svg")).unwrap();
    rift_ok(&["report", path_str(&s)]);
    assert!(s.join("report.md").is_file() && s.join("alpha.svg").is_file());
    let report = std::fs::read_to_string(s.join("report.md")).unwrap();
    assert!(
        report.contains(&mrc.modules[0].name),
        "the report names the chosen module"
    );
    let out = rift(&["report", path_str(&t.join("nowhere"))]);
    assert_fails_cleanly(&out, "rift report of a missing session", &["nowhere"]);
}

/// A `mrc_partial.yaml` that does not parse holds finished work: `rift run` refuses it
/// before any compute, naming the file, and leaves it as it was; moving it away lets the
/// run score every module.
#[test]
fn a_corrupt_partial_mrc_file_is_refused_before_any_compute() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 96);
    let s = t.join("s");
    std::fs::create_dir_all(&s).unwrap();
    let garbage = "- name: conv1\n  mrc: [0.1,\n";
    let partial = s.join("mrc_partial.yaml");
    std::fs::write(&partial, garbage).unwrap();
    let args = demo_run_args(&s, &data, &[]);
    let out = rift(&args);
    assert_fails_cleanly(
        &out,
        "a corrupt mrc_partial.yaml",
        &["mrc_partial.yaml", "move it away"],
    );
    assert_eq!(std::fs::read_to_string(&partial).unwrap(), garbage);
    assert!(
        !Session::path(&s).exists(),
        "a session was started before the refusal"
    );
    std::fs::rename(&partial, s.join("inspect-me.yaml")).unwrap();
    let out = rift(&args);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let session = Session::load(&s).unwrap();
    assert_eq!(session.mrc.expect("mrc").modules.len(), 5);
}
