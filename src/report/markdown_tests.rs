use super::*;
use crate::engine::rift::mrc::results::ModuleEstimate;

#[test]
fn number_formats() {
    assert_eq!(pct(53.634), "53.63");
    assert_eq!(delta(0.5), "+0.50");
    assert_eq!(delta(-0.014), "-0.01");
    assert_eq!(sig4(0.031234), "0.03123");
    assert_eq!(sig4(1.23456), "1.235");
    assert_eq!(sig4(123.456), "123.5");
    assert_eq!(sig4(0.0), "0");
    assert_eq!(sig4(1.5e-5), "1.500e-5");
    assert_eq!(over_255(8.0 / 255.0), "8/255");
    assert_eq!(alpha_text(0.6), "0.6");
    assert_eq!(alpha_text(0.65), "0.65");
    assert_eq!(alpha_text(0.0), "0.0");
}

#[test]
fn full_session_report() {
    let md = render_markdown(&fixtures::full());
    assert!(md.starts_with("# RiFT session `r18-c10`"));
    for needle in [
        "ckpt/resnet18_at.pth",
        "resnet18",
        "cifar10",
        "cuda:0",
        "rift 0.1.0, libtorch 2.11.0",
        "ε = 8/255, step 2/255, 10 steps, random start on, 1 restart",
        "| 81.46 | 53.63 | 10000 |",
        "**Recommended (lowest MRC): `layer2.1.conv2`**",
        "| 9 | `layer2.1.conv2` | Conv2d | 147456 | 0.03120 | 0.66 | **recommended** |",
        "![MRC per module](mrc.png)",
        "### First-order screening (not in the paper)",
        "first-order estimate (not in the paper)",
        "over the 21 modules that have both",
        "the lowest estimate is the lowest exact MRC",
        "| 1 | `layer2.1.conv2` | 0.04656 | 0.03120 | exact |",
        "![First-order estimate vs exact MRC](mrc_screen.png)",
        "lr ×0.1 at epoch 5",
        "| 4 | 0.001 | 0.8400 | 74.40 | 80.56 | — | **kept** |",
        "![Fine-tuning loss and accuracy](finetune.png)",
        "at most 0.1 points below α = 0",
        "**chosen** |",
        "**Chosen α = 0.6**: clean 81.46% → 82.83% (+1.37), robust 53.63% → 53.56% (-0.07)",
        "![Clean and robust accuracy over α](alpha.png)",
        "| gaussian_noise | 70.00 | 72.13 | +2.13 | 50000 |",
        "| **mean, published 18** | 73.56 | 75.69 | +2.13 | |",
        "severity 5",
        "Missing corruption files: glass_blur.",
        "`chosen_alpha0.6.safetensors`",
        "Fine-tuned weights: `finetuned.safetensors`",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}:\n{md}");
    }
    assert!(!md.contains("Not run"), "{md}");
    assert!(
        !md.contains("mean, standard 15"),
        "absent mean must be left out"
    );
}

#[test]
fn mrc_only_report_says_not_run() {
    let md = render_markdown(&fixtures::mrc_only());
    assert!(md.contains("## Module robust criticality (MRC)"));
    assert!(md.contains("`layer4.1.conv2`"));
    assert!(md.contains("![MRC per module](mrc.png)"));
    for section in [
        "## Fine-tuning",
        "## Interpolation",
        "## Out-of-distribution accuracy",
    ] {
        let at = md.find(section).expect(section);
        assert!(
            md[at..].lines().nth(2) == Some("Not run."),
            "{section} should say not run:\n{md}"
        );
    }
    assert!(md.contains("Not chosen yet."));
    assert!(!md.contains("finetune.png") && !md.contains("alpha.png"));
    assert!(!md.contains("screening") && !md.contains("mrc_screen.png"));
}

#[test]
fn screened_report_marks_estimates() {
    let mut s = fixtures::full();
    let m = s.mrc.as_mut().unwrap();
    // Exact MRC for the lowest 2 only: the rest are estimates, ρ over 2 modules.
    let rest: Vec<_> = m.modules.split_off(2);
    m.estimated_only = rest
        .into_iter()
        .map(|x| ModuleEstimate {
            name: x.name,
            depth: x.depth,
            kind: x.kind,
            shape: x.shape,
            params: x.params,
            estimate: x.estimate.unwrap(),
            estimate_step: Some(0.5),
        })
        .collect();
    if let Some(sc) = m.screen.as_mut() {
        sc.exact_lowest = "2".into();
        sc.spearman_vs_exact = None;
        sc.lowest_matches = None;
    }
    let md = render_markdown(&s);
    for needle in [
        "computed for 2 of 21 modules",
        "| estimate rank | module | estimate | one-step | exact MRC | value |",
        "estimate only |",
        "over the 2 modules that have both: **1.000**.",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}:\n{md}");
    }
}
