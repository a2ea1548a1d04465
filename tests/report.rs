//! `rift::report::render_report` on a session directory written the way a run leaves it:
//! report.md and the figures appear, parse, and the session file round-trips.
//!
//! Set `RIFT_REPORT_TEST_DIR=/some/dir` to keep the rendered session there for a look.
use rift::engine::attack::PgdConfig;
use rift::engine::eval::EvalResult;
use rift::engine::rift::mrc::results::*;
use rift::report::session::*;
use std::collections::BTreeMap;
use std::path::Path;

const WRN_MODULES: usize = 35;

/// WRN-34-10 module names in depth order (sub_block1 skipped, as SPEC.md §1 says).
fn wrn_modules() -> Vec<String> {
    let mut names = vec!["conv1".to_string()];
    for block in 1..=3 {
        for layer in 0..5 {
            names.push(format!("block{block}.layer.{layer}.conv1"));
            names.push(format!("block{block}.layer.{layer}.conv2"));
            if layer == 0 {
                names.push(format!("block{block}.layer.0.convShortcut"));
            }
        }
    }
    names.push("fc".into());
    names
}

fn session() -> Session {
    let names = wrn_modules();
    assert_eq!(names.len(), WRN_MODULES);
    let mut modules: Vec<ModuleScore> = names
        .iter()
        .enumerate()
        .map(|(depth, name)| {
            let wobble = ((depth * 13 + 5) % 17) as f64 / 17.0;
            let mrc = if name == "block1.layer.2.conv2" {
                0.0187
            } else {
                0.04 + 0.9 * wobble * (1.0 + depth as f64 / 20.0)
            };
            ModuleScore {
                name: name.clone(),
                depth,
                kind: if name == "fc" { "Linear" } else { "Conv2d" }.into(),
                shape: vec![160, 160, 3, 3],
                params: 230_400,
                mrc,
                robust_acc_drop: 12.0 * mrc + 0.3 * wobble,
                epoch_losses: (0..10).map(|e| 2.1 + mrc * e as f64 / 9.0).collect(),
                epoch_accs: (0..10).map(|e| 26.07 - e as f64 * 0.2).collect(),
                recommended: name == "block1.layer.2.conv2",
                estimate: None,
                estimate_step: None,
            }
        })
        .collect();
    modules.sort_by(|a, b| a.mrc.total_cmp(&b.mrc));

    let iters_per_epoch = 782;
    let iter_losses = (0..10 * iters_per_epoch)
        .map(|i| {
            let t = i as f64;
            1.9 * (-t / 2500.0).exp() + 1.3 + 0.25 * ((t * 0.37).sin() * (t * 0.011).cos())
        })
        .collect();
    let epochs_log = (0..10)
        .map(|e| FinetuneEpoch {
            epoch: e,
            lr: if e < 5 { 0.001 } else { 0.0001 },
            train_loss: 2.6 - 0.1 * e as f64,
            train_acc: 40.0 + 1.5 * e as f64,
            val_acc: Some(53.2 + 0.5 * e as f64 - 0.06 * (e * e) as f64),
            test_acc: Some(53.0 + 0.45 * e as f64 - 0.05 * (e * e) as f64),
        })
        .collect();

    let points = (0..=10)
        .map(|i| {
            let a = i as f64 / 10.0;
            SweepPoint {
                alpha: a,
                clean_acc: 52.78 + 4.4 * a - 1.9 * a * a,
                robust_acc: 26.07 + 0.35 * a - 0.6 * a.powi(4),
                n: 10_000,
            }
        })
        .collect();

    let ood = |shift: f64| {
        let names = [
            "brightness",
            "contrast",
            "defocus_blur",
            "elastic_transform",
            "fog",
            "frost",
            "gaussian_blur",
            "gaussian_noise",
            "impulse_noise",
            "jpeg_compression",
            "motion_blur",
            "pixelate",
            "saturate",
            "shot_noise",
            "snow",
            "spatter",
            "speckle_noise",
            "zoom_blur",
        ];
        let corruptions: Vec<CorruptionAcc> = names
            .iter()
            .enumerate()
            .map(|(i, n)| CorruptionAcc {
                name: n.to_string(),
                acc: 25.0 + (i % 7) as f64 * 2.5 + shift,
                by_severity: BTreeMap::from([(1u8, 25.0 + (i % 7) as f64 * 2.5 + shift)]),
                n: 10_000,
            })
            .collect();
        let mean = corruptions.iter().map(|c| c.acc).sum::<f64>() / corruptions.len() as f64;
        OodResult {
            dataset: "Tiny-ImageNet-C".into(),
            severities: vec![1],
            corruptions,
            mean_acc: mean,
            mean_published18: Some(mean),
            mean_standard15: None,
            missing: vec!["glass_blur".into()],
            seconds: 120.0,
        }
    };

    Session {
        name: "wrn34-tiny".into(),
        versions: Versions {
            rift: "0.1.0".into(),
            torch: "2.11.0".into(),
        },
        created: "2025-03-01T10:00:00Z".into(),
        updated: "2025-03-01T14:21:09Z".into(),
        config: None,
        continued: Vec::new(),
        settings: SessionSettings {
            checkpoint: "checkpoints/wrn34_tiny_at.pth".into(),
            zoo: None,
            arch: "wrn34-10".into(),
            dataset: "tiny-imagenet".into(),
            data_dir: "data/tiny-imagenet-200".into(),
            device: "cuda:0".into(),
            precision: None,
            channels_last: false,
            seed: 7,
            attack: PgdConfig {
                restarts: 3,
                ..PgdConfig::default()
            },
            eval_limit: None,
            batch_size: 256,
            mrc_variant: "code".into(),
            mrc_epsilon: 0.1,
            mrc_epochs: 10,
            adv_split: "train".into(),
            adv_limit: Some(10_000),
            mrc_fast: true,
            mrc_screen: None,
            layer: "auto".into(),
            lr: 0.001,
            ft_epochs: 10,
            select_on: "val".into(),
            freeze_bn_stats: false,
            alphas: (0..=10).map(|i| i as f64 / 10.0).collect(),
            refine: 1,
            tolerance: 0.1,
            search: None,
            ood_dir: Some("data/Tiny-ImageNet-C".into()),
            normalize: None,
            activation: None,
            preset: None,
            ood_headline: None,
        },
        model: SessionModel {
            arch: "wrn34-10".into(),
            num_classes: 200,
            in_channels: 3,
            params: 46_160_474,
            modules: WRN_MODULES,
            normalization: String::new(),
            normalization_short: String::new(),
            activation: None,
        },
        baseline: Some(EvalResult {
            clean_acc: 52.78,
            robust_acc: Some(26.07),
            n: 10_000,
            clean_correct: 5278,
            robust_correct: Some(2607),
            seconds: 210.0,
        }),
        mrc: Some(MrcResult {
            variant: "code".into(),
            epsilon: 0.1,
            epochs: 10,
            lr: 1.0,
            batch_size: 512,
            adv_split: "train".into(),
            adv_n: 10_000,
            fast: true,
            baseline_loss: 2.104,
            baseline_acc: 26.07,
            modules,
            recommended: "block1.layer.2.conv2".into(),
            seconds: 3300.0,
            estimated_only: Vec::new(),
            screen: None,
        }),
        finetune: Some(FinetuneResult {
            all_parameters: false,
            layers: vec!["block1.layer.2.conv2".into()],
            lr: 0.001,
            momentum: 0.9,
            weight_decay: 5e-4,
            batch_size: 128,
            epochs: 10,
            lr_milestones: vec![5],
            select_on: "val".into(),
            val_size: 10_000,
            freeze_bn_stats: false,
            trained_params: 230_400,
            iter_losses,
            epochs_log,
            best_epoch: 4,
            diverged: None,
            seconds: 1500.0,
        }),
        finetuned_weights: Some("finetuned.safetensors".into()),
        interpolation: Some(InterpolationResult {
            points,
            chosen_alpha: 0.9,
            tolerance: 0.1,
            refine_rounds: 1,
            seconds: 2400.0,
            search: None,
        }),
        chosen: Some(ChosenWeights {
            alpha: 0.9,
            pth: "chosen_alpha0.9.pth".into(),
            safetensors: "chosen_alpha0.9.safetensors".into(),
        }),
        ood_at: Some(ood(0.0)),
        ood_chosen: Some(ood(2.05)),
        final_eval: None,
        stage_seconds: vec![
            ("baseline".into(), 210.0),
            ("mrc".into(), 3300.0),
            ("finetune".into(), 1500.0),
            ("interpolate".into(), 2400.0),
            ("ood".into(), 240.0),
        ],
    }
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

fn check_session_dir(dir: &Path, expected: &Session) {
    rift::report::render_report(dir).unwrap();

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.starts_with("# RiFT session `wrn34-tiny`"));
    for needle in [
        "`block1.layer.2.conv2` | Conv2d | 230400 | 0.01870 |",
        "**Chosen α = 0.9**",
        "| **mean, published 18** |",
        "3 restarts",
        "![MRC per module](mrc.png)",
        "![Fine-tuning loss and accuracy](finetune.png)",
        "![Clean and robust accuracy over α](alpha.png)",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}");
    }

    for stem in ["mrc", "finetune", "alpha"] {
        let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
        let (w, h) = png_size(&png);
        assert!(w >= 800 && h >= 500, "{stem}.png is {w}×{h}");
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg"),
            "{stem}.svg does not start with <svg"
        );
        assert!(
            svg.trim_end().ends_with("</svg>"),
            "{stem}.svg is not closed"
        );
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    }
    // No temporary files are left behind by the atomic writes.
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "left behind {name}");
    }

    // session.yaml round-trips: load → save → load gives the same session.
    let loaded = Session::load(dir).unwrap();
    assert_eq!(&loaded, expected);
    loaded.save(dir).unwrap();
    assert_eq!(Session::load(dir).unwrap(), loaded);
}

#[test]
fn report_of_a_full_session() {
    let session = session();
    let tmp = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("RIFT_REPORT_TEST_DIR") {
        Some(keep) => std::path::PathBuf::from(keep),
        None => tmp.path().to_path_buf(),
    };
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = serde_yaml::to_string(&session).unwrap();
    std::fs::write(dir.join(SESSION_FILE), yaml).unwrap();
    check_session_dir(&dir, &session);
}

#[test]
fn report_errors_name_the_session_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let err = rift::report::render_report(tmp.path()).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&tmp.path().display().to_string()), "{text}");
    assert!(text.contains("session.yaml"), "{text}");

    let missing = tmp.path().join("nope");
    let text = format!("{:#}", rift::report::render_report(&missing).unwrap_err());
    assert!(text.contains("not a session directory"), "{text}");

    std::fs::write(tmp.path().join(SESSION_FILE), "name: [unclosed").unwrap();
    let text = format!("{:#}", rift::report::render_report(tmp.path()).unwrap_err());
    assert!(text.contains("does not parse"), "{text}");
}
