//! Hostile and broken inputs: each gives a clear one-paragraph error naming the file and
//! what was expected, a non-zero exit, and never a panic.
mod common;

use common::{assert_failed, path_str, rift, run_python, EXIT_ERROR, EXIT_USAGE};
use std::path::Path;

fn assert_clean_failure(args: &[&str], must_mention: &[&str]) -> String {
    eprintln!("checking that rift {args:?} fails cleanly");
    assert_failed(&rift(args), EXIT_ERROR, must_mention)
}

/// A command line clap rejects: usage status 2, no panic, the flag named.
fn assert_usage_error(args: &[&str], must_mention: &[&str]) -> String {
    eprintln!("checking that rift {args:?} is refused as usage");
    assert_failed(&rift(args), EXIT_USAGE, must_mention)
}

const MAKE_BAD_FILES: &str = r#"
import sys, os, io, zipfile, torch, numpy as np
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build
d = sys.argv[1]
net = build("resnet18", 10, 3, width=8)
sd = net.state_dict()
torch.save(sd, f"{d}/good.pth")
raw = open(f"{d}/good.pth", "rb").read()
open(f"{d}/truncated.pth", "wb").write(raw[: len(raw) // 2])
open(f"{d}/garbage.pth", "wb").write(b"\x80\x02not really a pickle" * 10)
# A zip whose data.pkl is corrupt.
zin = zipfile.ZipFile(f"{d}/good.pth")
with zipfile.ZipFile(f"{d}/corrupt_pickle.pth", "w", zipfile.ZIP_STORED) as zout:
    for item in zin.infolist():
        data = zin.read(item.filename)
        if item.filename.endswith("data.pkl"):
            data = data[:40] + b"\xff\xfe" + data[42:]
        zout.writestr(item, data)
class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > " + d + "/PWNED",))
torch.save({"net": sd, "hook": Evil()}, f"{d}/evil.pth")
bad = dict(sd); bad["layer1.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
torch.save(bad, f"{d}/wrong_shape.pth")
missing = dict(sd); del missing["linear.weight"]; missing["extra.weight"] = torch.zeros(1)
torch.save(missing, f"{d}/missing_key.pth")
np.save(f"{d}/gray.npy", np.zeros((2, 1, 32, 32), np.float32))
np.save(f"{d}/int.npy", np.zeros((2, 3, 32, 32), np.int16))
"#;

#[test]
fn hostile_and_broken_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_python(MAKE_BAD_FILES, &[path_str(d)]);
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();

    assert_clean_failure(&["inspect", "--checkpoint", &p("nope.pth")], &["nope.pth"]);
    assert_clean_failure(
        &["inspect", "--checkpoint", &p("truncated.pth")],
        &["truncated.pth"],
    );
    assert_clean_failure(
        &["inspect", "--checkpoint", &p("garbage.pth")],
        &["garbage.pth"],
    );
    assert_clean_failure(
        &["inspect", "--checkpoint", &p("corrupt_pickle.pth")],
        &["corrupt_pickle.pth"],
    );
    assert_clean_failure(
        &["inspect", "--checkpoint", &p("evil.pth")],
        &["evil.pth", "system"],
    );
    assert!(
        !Path::new(&p("PWNED")).exists(),
        "a pickle's code was executed"
    );
    assert_clean_failure(
        &["inspect", "--checkpoint", &p("wrong_shape.pth")],
        &["wrong_shape.pth", "layer1.0.conv1.weight"],
    );
    assert_clean_failure(
        &["inspect", "--checkpoint", &p("missing_key.pth")],
        &["missing_key.pth", "linear.weight", "extra.weight"],
    );
    assert_clean_failure(
        &[
            "inspect",
            "--checkpoint",
            &p("good.pth"),
            "--arch",
            "resnet34",
        ],
        &["good.pth", "missing"],
    );
    assert_clean_failure(
        &["inspect", "--checkpoint", &p("good.pth"), "--arch", "vgg16"],
        &["vgg16"],
    );

    // Missing dataset: the error shows the expected layout.
    assert_clean_failure(
        &[
            "eval",
            "--checkpoint",
            &p("good.pth"),
            "--dataset",
            "cifar10",
            "--data-dir",
            &p("no-data"),
            "--device",
            "cpu",
        ],
        &["cifar-10-batches-py"],
    );
    assert_clean_failure(
        &[
            "eval",
            "--checkpoint",
            &p("good.pth"),
            "--dataset",
            "imagenet-22k",
        ],
        &["imagenet-22k"],
    );
    assert_usage_error(
        &["eval", "--checkpoint", &p("good.pth"), "--eps", "eight"],
        &["eight"],
    );
    assert_clean_failure(
        &["eval", "--checkpoint", &p("good.pth"), "--device", "tpu"],
        &["tpu"],
    );
    assert_usage_error(
        &["eval", "--checkpoint", &p("good.pth"), "--frobnicate"],
        &["frobnicate"],
    );
    assert_clean_failure(
        &[
            "eval",
            "--checkpoint",
            &p("good.pth"),
            "--output",
            &p("x.txt"),
            "--attack",
            "cw",
        ],
        &["cw"],
    );

    // predict: wrong channels, wrong dtype, missing input.
    let out = p("out.npy");
    assert_clean_failure(
        &[
            "predict",
            "--checkpoint",
            &p("good.pth"),
            "--input",
            &p("gray.npy"),
            "--output",
            &out,
        ],
        &["channel"],
    );
    assert_clean_failure(
        &[
            "predict",
            "--checkpoint",
            &p("good.pth"),
            "--input",
            &p("int.npy"),
            "--output",
            &out,
        ],
        &["int.npy"],
    );
    assert_clean_failure(
        &[
            "predict",
            "--checkpoint",
            &p("good.pth"),
            "--input",
            &p("none.npy"),
            "--output",
            &out,
        ],
        &["none.npy"],
    );
    assert!(!Path::new(&out).exists());
}

/// An OOD dataset that does not fit the model is refused before the first stage (it used
/// to panic inside libtorch after MRC, fine-tuning and the whole α sweep): the error names
/// the OOD dataset and the model's expectation, and no stage has started.
#[test]
fn an_ood_dataset_that_does_not_fit_is_refused_before_any_stage() {
    let dir = tempfile::tempdir().unwrap();
    for (ood, needles) in [
        ("tiny-imagenet-c", ["OOD", "tiny-imagenet-c", "3×64×64"]),
        ("cifar10-c", ["OOD", "cifar10-c", "3×32×32"]),
    ] {
        let session = dir.path().join(ood);
        let out = rift(&[
            "run",
            "--checkpoint",
            common::DEMO_MODEL,
            "--dataset",
            "mnist",
            "--data-dir",
            "assets/demo",
            "--ood-dataset",
            ood,
            "--device",
            "cpu",
            "--session",
            path_str(&session),
        ]);
        let err = assert_failed(&out, EXIT_ERROR, &needles);
        assert!(err.contains("input channel"), "{err}");
        let events = std::fs::read_to_string(session.join("events.jsonl")).unwrap_or_default();
        assert!(
            !events.contains("baseline"),
            "a stage ran before the check:\n{events}"
        );
        let yaml = std::fs::read_to_string(session.join("session.yaml")).unwrap_or_default();
        assert!(!yaml.contains("clean_acc"), "a stage ran:\n{yaml}");
    }
}

/// A reader that stops early (`rift zoo | head -1`) ends rift by SIGPIPE, as it ends any
/// Unix tool: no panic report on stderr, no error status of rift's own.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_rift_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let mut child = Command::new(common::rift_bin())
        .args(["zoo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the rift binary");
    // Close the read end before rift writes: its first print meets a closed pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("rift");
    assert_eq!(
        out.status.signal(),
        Some(13),
        "rift should end by SIGPIPE, got {:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
