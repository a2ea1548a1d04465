//! `--preset published` on a real (tiny) `rift run`: the flags the user left at their
//! defaults take the reference code's values, an explicit flag wins, and the session and
//! report record the preset.
mod common;

use common::{path_str, rift, tiny_mnist, DEMO_MODEL};
use rift::report::session::Session;

#[test]
fn published_preset_reaches_the_session_and_explicit_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 96, 48);
    let s = t.join("s");
    let out = rift(&[
        "run",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(&data),
        "--session",
        path_str(&s),
        "--limit",
        "32",
        "--adv-limit",
        "32",
        "--steps",
        "2",
        "--eps",
        "0.1",
        "--modules",
        "conv1,linear",
        "--mrc-epochs",
        "1",
        "--epochs",
        "1",
        "--alphas",
        "0,1",
        "--device",
        "cpu",
        "--preset",
        "published",
        // Explicit: wins over the preset's `published18`.
        "--ood-headline",
        "standard15",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "rift run failed:\n{stderr}");
    assert!(
        stderr.contains("preset published: --step 2/225"),
        "the preset does not say what it filled in:\n{stderr}"
    );
    let text = std::fs::read_to_string(s.join("session.yaml")).unwrap();
    let session: Session = serde_yaml::from_str(&text).unwrap();
    let st = &session.settings;
    assert_eq!(st.preset.as_deref(), Some("published"));
    assert!(
        (st.attack.step - 2.0 / 225.0).abs() < 1e-12,
        "{}",
        st.attack.step
    );
    assert_eq!(st.select_on, "test");
    assert_eq!(st.adv_split, "test");
    assert_eq!(st.ood_headline.as_deref(), Some("standard15"));
    let ft = session.finetune.as_ref().expect("fine-tuning ran");
    assert_eq!(ft.select_on, "test");
    assert_eq!(ft.val_size, 0, "selecting on test holds nothing out");
    let report = std::fs::read_to_string(s.join("report.md")).unwrap();
    assert!(report.contains("| preset | published"), "{report}");
}
