use super::*;
use crate::report::markdown::fixtures;

/// Width and height from the IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn svg_figures_carry_their_labels() {
    let s = fixtures::full();
    let mrc = render_svg(Figure::Mrc, &s).unwrap();
    assert!(mrc.starts_with("<svg"));
    for label in [
        "layer2.1.conv2",
        "conv1",
        "linear",
        "recommended: layer2.1.conv2",
        "robust-accuracy drop",
    ] {
        assert!(mrc.contains(label), "MRC SVG lacks {label:?}");
    }
    // The recommended bar is the only one in the highlight colour.
    assert_eq!(
        mrc.matches("fill=\"#DD8452\"").count(),
        3,
        "its bar, its name and the legend swatch"
    );

    let ft = render_svg(Figure::Finetune, &s).unwrap();
    for label in [
        "training loss per iteration",
        "accuracy per epoch",
        "iteration",
        "val",
        "kept epoch (4)",
    ] {
        assert!(ft.contains(label), "fine-tuning SVG lacks {label:?}");
    }
    let alpha = render_svg(Figure::Alpha, &s).unwrap();
    for label in [
        "chosen α = 0.60",
        "clean accuracy (left axis)",
        "robust accuracy (right axis)",
        "AT clean (α = 0.0): 81.46%",
    ] {
        assert!(alpha.contains(label), "α SVG lacks {label:?}");
    }
}

#[test]
fn screen_figure_shows_rho_and_labels_estimates() {
    let s = fixtures::full();
    assert!(Figure::Screen.available(&s));
    assert!(!Figure::Screen.available(&fixtures::mrc_only()));
    let svg = render_svg(Figure::Screen, &s).unwrap();
    for label in [
        "Spearman ρ = ",
        "(21 modules)",
        "not in the paper",
        "exact MRC",
        "layer2.1.conv2",
        "recommended (lowest exact MRC)",
    ] {
        assert!(svg.contains(label), "screen SVG lacks {label:?}");
    }
}

#[test]
fn png_figures_decode() {
    let s = fixtures::full();
    for fig in Figure::ALL {
        let bytes = render_png(fig, &s).unwrap();
        assert_eq!(png_size(&bytes), fig.size(), "{fig:?}");
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let pixels = &buf[..info.buffer_size()];
        // Something other than the white background was drawn, text included.
        let dark = pixels
            .chunks(3)
            .filter(|p| p.iter().all(|&c| c < 80))
            .count();
        assert!(dark > 2000, "{fig:?} has only {dark} dark pixels");
    }
}

#[test]
fn render_all_skips_missing_results() {
    let dir = tempfile::tempdir().unwrap();
    let written = render_all(&fixtures::mrc_only(), dir.path()).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["mrc.png", "mrc.svg"]);
}

#[test]
fn odd_values_do_not_break_drawing() {
    let mut s = fixtures::full();
    if let Some(ft) = s.finetune.as_mut() {
        ft.iter_losses = vec![f64::NAN, 2.0, f64::INFINITY];
        ft.epochs_log.truncate(1);
        ft.best_epoch = 7;
        ft.diverged = Some("loss became NaN at iteration 0".into());
    }
    if let Some(i) = s.interpolation.as_mut() {
        i.points.truncate(1);
        i.chosen_alpha = 0.0;
    }
    if let Some(m) = s.mrc.as_mut() {
        m.modules.truncate(1);
        m.modules[0].mrc = 0.0;
    }
    for fig in Figure::ALL {
        render_svg(fig, &s).unwrap();
        render_png(fig, &s).unwrap();
    }
}

#[test]
fn smoothing_averages_a_centred_window() {
    assert_eq!(smooth(&[1.0, 2.0, 3.0, 4.0], 3), vec![1.5, 2.0, 3.0, 3.5]);
    assert_eq!(smooth(&[f64::NAN, 2.0], 3), vec![2.0, 2.0]);
}
