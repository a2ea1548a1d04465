//! A session with every stage filled in, for the report tests.
use crate::engine::attack::PgdConfig;
use crate::engine::eval::EvalResult;
use crate::engine::rift::mrc::results::*;
use crate::report::session::*;
use std::collections::BTreeMap;

pub fn resnet18_modules() -> Vec<String> {
    let mut names = vec!["conv1".to_string()];
    for layer in 1..=4 {
        for block in 0..2 {
            names.push(format!("layer{layer}.{block}.conv1"));
            names.push(format!("layer{layer}.{block}.conv2"));
            if layer > 1 && block == 0 {
                names.push(format!("layer{layer}.0.shortcut.0"));
            }
        }
    }
    names.push("linear".into());
    names
}

pub fn mrc_only() -> Session {
    let names = resnet18_modules();
    let mut modules: Vec<ModuleScore> = names
        .iter()
        .enumerate()
        .map(|(depth, name)| {
            let mrc = if name == "layer2.1.conv2" {
                0.0312
            } else {
                0.05 + 0.37 * ((depth * 7 % 11) as f64 / 10.0)
            };
            ModuleScore {
                name: name.clone(),
                depth,
                kind: if name == "linear" {
                    "Linear".into()
                } else {
                    "Conv2d".into()
                },
                shape: vec![128, 128, 3, 3],
                params: 147_456,
                mrc,
                robust_acc_drop: mrc * 21.0,
                epoch_losses: vec![1.4 + mrc; 3],
                epoch_accs: vec![50.0; 3],
                recommended: name == "layer2.1.conv2",
                estimate: None,
                estimate_step: None,
            }
        })
        .collect();
    modules.sort_by(|a, b| a.mrc.total_cmp(&b.mrc));
    Session {
        name: "r18-c10".into(),
        versions: Versions {
            rift: "0.1.0".into(),
            torch: "2.11.0".into(),
        },
        created: "2025-01-02T03:04:05Z".into(),
        updated: "2025-01-02T04:05:06Z".into(),
        config: None,
        continued: Vec::new(),
        settings: SessionSettings {
            checkpoint: "ckpt/resnet18_at.pth".into(),
            zoo: None,
            arch: "resnet18".into(),
            dataset: "cifar10".into(),
            data_dir: "data".into(),
            device: "cuda:0".into(),
            precision: None,
            channels_last: false,
            seed: 0,
            attack: PgdConfig::default(),
            eval_limit: None,
            batch_size: 256,
            mrc_variant: "code".into(),
            mrc_epsilon: 0.1,
            mrc_epochs: 10,
            adv_split: "test".into(),
            adv_limit: None,
            mrc_fast: true,
            mrc_screen: None,
            layer: "auto".into(),
            lr: 0.001,
            ft_epochs: 10,
            select_on: "val".into(),
            freeze_bn_stats: false,
            alphas: (0..=10).map(|i| i as f64 / 10.0).collect(),
            refine: 0,
            tolerance: 0.1,
            search: None,
            ood_dir: Some("data/CIFAR-10-C".into()),
            normalize: None,
            activation: None,
            preset: None,
            ood_headline: None,
        },
        model: SessionModel {
            arch: "resnet18".into(),
            num_classes: 10,
            in_channels: 3,
            params: 11_173_962,
            modules: names.len(),
            normalization: String::new(),
            normalization_short: String::new(),
            activation: None,
        },
        baseline: Some(EvalResult {
            clean_acc: 81.46,
            robust_acc: Some(53.63),
            n: 10_000,
            clean_correct: 8146,
            robust_correct: Some(5363),
            seconds: 41.2,
        }),
        mrc: Some(MrcResult {
            variant: "code".into(),
            epsilon: 0.1,
            epochs: 10,
            lr: 1.0,
            batch_size: 512,
            adv_split: "test".into(),
            adv_n: 10_000,
            fast: true,
            baseline_loss: 1.2345,
            baseline_acc: 53.63,
            recommended: "layer2.1.conv2".into(),
            modules,
            seconds: 812.0,
            estimated_only: Vec::new(),
            screen: None,
        }),
        finetune: None,
        finetuned_weights: None,
        interpolation: None,
        chosen: None,
        ood_at: None,
        ood_chosen: None,
        final_eval: None,
        stage_seconds: vec![("baseline".into(), 41.2), ("mrc".into(), 812.0)],
    }
}

fn ood(mean_shift: f64) -> OodResult {
    let names = [
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "defocus_blur",
        "motion_blur",
    ];
    let corruptions: Vec<CorruptionAcc> = names
        .iter()
        .enumerate()
        .map(|(i, n)| CorruptionAcc {
            name: n.to_string(),
            acc: 70.0 + i as f64 + mean_shift,
            by_severity: (1..=5u8)
                .map(|s| (s, 80.0 - 3.0 * s as f64 + mean_shift))
                .collect::<BTreeMap<_, _>>(),
            n: 50_000,
        })
        .collect();
    OodResult {
        dataset: "CIFAR-10-C".into(),
        severities: vec![1, 2, 3, 4, 5],
        corruptions,
        mean_acc: 72.0 + mean_shift,
        mean_published18: Some(73.56 + mean_shift),
        mean_standard15: None,
        missing: vec!["glass_blur".into()],
        seconds: 90.0,
    }
}

pub fn full() -> Session {
    let mut s = mrc_only();
    // Screened, then exact MRC of every module: estimates close to, not equal to, exact.
    if let Some(m) = s.mrc.as_mut() {
        for x in &mut m.modules {
            x.estimate = Some(x.mrc * 1.3 + 0.002 * ((x.depth * 5 % 7) as f64));
        }
        let est: Vec<f64> = m.modules.iter().filter_map(|x| x.estimate).collect();
        let exact: Vec<f64> = m.modules.iter().map(|x| x.mrc).collect();
        m.screen = Some(ScreenSummary {
            method: "first_order".into(),
            label: crate::engine::rift::mrc::screen::ESTIMATE_LABEL.into(),
            seconds: 3.5,
            exact_lowest: "all".into(),
            spearman_vs_exact: crate::engine::rift::mrc::screen::spearman(&est, &exact),
            spearman_step_vs_exact: None,
            lowest_matches: Some(true),
        });
    }
    let iters = 10 * 352;
    s.finetune = Some(FinetuneResult {
        all_parameters: false,
        layers: vec!["layer2.1.conv2".into()],
        lr: 0.001,
        momentum: 0.9,
        weight_decay: 5e-4,
        batch_size: 128,
        epochs: 10,
        lr_milestones: vec![5],
        select_on: "val".into(),
        val_size: 5000,
        freeze_bn_stats: false,
        trained_params: 147_456,
        iter_losses: (0..iters)
            .map(|i| {
                0.9 * (-(i as f64) / 1500.0).exp()
                    + 0.5
                    + 0.08 * ((i * 37 % 17) as f64 / 17.0 - 0.5)
            })
            .collect(),
        epochs_log: (0..10)
            .map(|e| FinetuneEpoch {
                epoch: e,
                lr: if e < 5 { 0.001 } else { 0.0001 },
                train_loss: 1.0 - 0.04 * e as f64,
                train_acc: 70.0 + 1.1 * e as f64,
                val_acc: Some(80.0 + 0.3 * e as f64 - 0.04 * (e * e) as f64),
                test_acc: None,
            })
            .collect(),
        best_epoch: 4,
        diverged: None,
        seconds: 300.5,
    });
    s.finetuned_weights = Some("finetuned.safetensors".into());
    s.interpolation = Some(InterpolationResult {
        points: (0..=10)
            .map(|i| {
                let a = i as f64 / 10.0;
                SweepPoint {
                    alpha: a,
                    clean_acc: 81.46 + 3.0 * a - 1.2 * a * a,
                    robust_acc: 53.63 + 0.2 * a - 0.9 * a * a * a,
                    n: 10_000,
                }
            })
            .collect(),
        chosen_alpha: 0.6,
        tolerance: 0.1,
        refine_rounds: 0,
        seconds: 400.0,
        search: None,
    });
    s.chosen = Some(ChosenWeights {
        alpha: 0.6,
        pth: "chosen_alpha0.6.pth".into(),
        safetensors: "chosen_alpha0.6.safetensors".into(),
    });
    s.ood_at = Some(ood(0.0));
    s.ood_chosen = Some(ood(2.13));
    s
}
