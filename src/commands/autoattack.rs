//! `rift eval --attack autoattack|LIST`: AutoAttack at the command edge — flags to
//! `AaConfig`, the state file (read before any compute, written atomically after every
//! batch), progress, and the text/JSON/YAML output of `rift eval`.
use super::eval_setup::{load_for_eval, AttackRecord, EvalOutput, Loaded, PerSample};
use crate::cli::{AaBudgetArgs, EvalArgs};
use anyhow::{bail, Context, Result};
use rift::engine::attack::{Norm, PgdConfig};
use rift::engine::autoattack::{self, AaConfig, AaState, AaVersion, AttackKind, STANDARD};
use rift::engine::device::device_name;
use rift::engine::eval::EvalResult;
use rift::engine::files::SaveError;
use rift::engine::rift::events::Event;
use rift::engine::CancelFlag;

/// `--attack` values that go to AutoAttack: anything but a single `pgd` or `none`.
pub fn wanted(attack: &str) -> bool {
    !matches!(attack.trim().to_ascii_lowercase().as_str(), "pgd" | "none")
}

/// The AutoAttack settings of `rift eval`'s flags (errors name the flag).
pub fn config_of(args: &EvalArgs) -> Result<AaConfig> {
    let attacks = AttackKind::parse_list(&args.attack.attack)
        .map_err(|e| anyhow::anyhow!("--attack: {e}"))?;
    let pgd = PgdConfig {
        eps: args.attack.eps,
        step: args.attack.step,
        steps: args.attack.steps,
        random_start: !args.attack.no_random_start,
        restarts: args.attack.restarts,
        norm: args.attack.norm,
    };
    aa_config(
        attacks,
        &pgd,
        args.runtime.seed,
        &args.autoattack.budget,
        args.data.batch_size,
    )
}

/// AutoAttack's settings: `attacks` at the radius of `pgd` (whose steps also serve `pgd`
/// when it is listed), `seed`, the budget flags and the batch size. Shared by `rift eval`
/// and `rift run --final-eval`; errors name the flag.
pub fn aa_config(
    attacks: Vec<AttackKind>,
    pgd: &PgdConfig,
    seed: u64,
    budget: &AaBudgetArgs,
    batch_size: usize,
) -> Result<AaConfig> {
    match pgd.norm {
        Norm::Linf if !(pgd.eps > 0.0 && pgd.eps <= 1.0) => bail!(
            "--eps must be in (0, 1] pixel units (e.g. 8/255), got {}",
            pgd.eps
        ),
        Norm::L2 if pgd.eps == 8.0 / 255.0 => bail!(
            "--norm l2 reads --eps as an L2 length over the whole image: give it (RobustBench's CIFAR-10 L2 is --eps 0.5); the default 8/255 is an L∞ value"
        ),
        Norm::L2 if !(pgd.eps > 0.0 && pgd.eps.is_finite()) => bail!(
            "--norm l2: --eps must be a positive L2 length over the whole image (e.g. 0.5 on CIFAR-10), got {}",
            pgd.eps
        ),
        _ => {}
    }
    if attacks.contains(&AttackKind::Square) && budget.square_queries == 0 {
        bail!("--square-queries must be at least 1 when Square runs (got 0)");
    }
    let version = budget.version;
    if version != AaVersion::Standard && attacks != STANDARD {
        bail!(
            "--version {} chooses the attacks itself: use it with --attack autoattack (or --final-eval autoattack), not with a list of attacks",
            version.name()
        );
    }
    let attacks = if attacks == STANDARD {
        version.attacks()
    } else {
        attacks
    };
    let plus = version == AaVersion::Plus;
    Ok(AaConfig {
        attacks,
        version,
        eps: pgd.eps,
        norm: pgd.norm,
        seed,
        apgd_iters: budget.apgd_iters,
        apgd_restarts: budget.apgd_restarts.unwrap_or(if plus { 5 } else { 1 }),
        targets: budget.targets,
        fab_iters: budget.fab_iters,
        fab_restarts: if plus { 5 } else { 1 },
        eot_iter: if version == AaVersion::Rand { 20 } else { 1 },
        square_queries: budget.square_queries,
        square_p_init: 0.8,
        pgd: pgd.clone(),
        batch_size,
    })
}

pub fn eval_autoattack(args: &EvalArgs) -> Result<()> {
    let cfg = config_of(args)?;
    let Loaded {
        rt,
        kind,
        ckpt,
        model,
        set,
    } = load_for_eval(args)?;
    cfg.validate(model.spec.num_classes)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = args.data.limit.map_or(set.n, |l| l.min(set.n));
    let identity = format!(
        "{} ({} bytes) on {} test from {}, {}",
        args.model.checkpoint().display(),
        std::fs::metadata(args.model.checkpoint()).map_or(0, |m| m.len()),
        kind.name(),
        args.data.data_dir.display(),
        rt.compute.text()
    );
    // The state file is read and checked before any compute.
    let resume = match &args.autoattack.state {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the state file {}", path.display()))?;
            let shown = path.display().to_string();
            let state = AaState::parse(&text, &shown)?;
            state.check_same(&cfg, n, &identity, &shown)?;
            eprintln!(
                "resuming from {}: {} of {} attacks finished",
                path.display(),
                state.finished.len(),
                cfg.attacks.len()
            );
            Some(state)
        }
        _ => None,
    };
    if let (Some(adv), Some(state)) = (&args.save_adv, &resume) {
        if !state.finished.is_empty() || state.partial.is_some() {
            bail!(
                "--save-adv {}: the run in {} already attacked some points, and a state file keeps their verdicts but not their adversarial examples. Resume without --save-adv, or start over (delete the state file or pass another --state) to save them",
                adv.display(),
                args.autoattack.state.as_deref().unwrap_or(std::path::Path::new("")).display()
            );
        }
    }

    eprintln!(
        "AutoAttack ({}) at {} eps {:.5} on {} {} test images, {}{} on {} ({}), {}",
        cfg.attacks
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        cfg.norm.name(),
        cfg.eps,
        n,
        kind.name(),
        model.spec.name(),
        super::zoo::zoo_suffix(&args.model.reading),
        device_name(rt.device),
        rt.device_reason,
        rt.compute.text()
    );
    let cancel = CancelFlag::default();
    // A hidden hook for the resume test: cancel after this many attack batches.
    let stop_after: Option<usize> = std::env::var("RIFT_AA_STOP_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut batches = 0usize;
    let mut printer = super::progress::Printer::new();
    let stop = cancel.clone();
    let mut sink = |e: Event| {
        if let Event::AutoAttack {
            update: autoattack::ensemble::AaUpdate::Progress { attack, .. },
        } = &e
        {
            if attack != "clean" {
                batches += 1;
                if stop_after.is_some_and(|s| batches >= s) {
                    stop.cancel();
                }
            }
        }
        printer.show(&e);
    };
    let state_path = args.autoattack.state.clone();
    let mut save = |s: &AaState| -> std::result::Result<(), SaveError> {
        match &state_path {
            Some(p) => Ok(rift::report::atomic_write(p, s.to_json().as_bytes())?),
            None => Ok(()),
        }
    };
    let task = autoattack::AaTask {
        model: &model,
        set: &set,
        n,
        cfg: &cfg,
        identity: &identity,
    };
    for w in autoattack::ensemble::model_warnings(task)? {
        eprintln!("warning: {w}");
    }
    let mut examples = match &args.save_adv {
        Some(_) => Some(rift::engine::adv_examples::AdvExamples::clean(&set, n)?),
        None => None,
    };
    let report = match autoattack::ensemble::evaluate_saving(
        task,
        resume,
        &mut save,
        &mut sink,
        &cancel,
        examples.as_mut(),
    ) {
        Ok(r) => r,
        Err(autoattack::AaError::Cancelled) => match &args.autoattack.state {
            Some(p) => bail!(
                "AutoAttack interrupted; {} holds the finished batches: rerun the same command to resume",
                p.display()
            ),
            None => bail!("AutoAttack interrupted (no --state file, so nothing to resume)"),
        },
        Err(e) => return Err(e.into()),
    };

    println!(
        "{:<10} {:>8} {:>8} {:>10} {:>9}",
        "", "acc %", "n", "attacked", "seconds"
    );
    println!("{:<10} {:>8.2} {:>8}", "clean", report.clean_acc, report.n);
    for a in &report.attacks {
        println!(
            "{:<10} {:>8.2} {:>8} {:>10} {:>9.1}{}",
            a.attack,
            a.robust_acc,
            report.n,
            a.evaluated,
            a.seconds,
            if a.resumed {
                "  (from the state file)"
            } else {
                ""
            }
        );
    }
    println!(
        "{:<10} {:>8.2} {:>8}   {} {} eps {:.5}",
        "robust",
        report.robust_acc,
        report.n,
        cfg.list_name(),
        cfg.norm.name(),
        cfg.eps
    );
    println!("{:.1} s on {}", report.seconds, device_name(rt.device));
    if let Some(w) = autoattack::checks::square_warning(&report) {
        eprintln!("warning: {w}");
    }
    for line in reference_lines(&report, cfg.norm) {
        eprintln!("{line}");
    }
    if let (Some(path), Some(ex)) = (&args.save_adv, &examples) {
        ex.save(path)?;
        eprintln!(
            "wrote {} adversarial examples (x_adv, y) to {}",
            report.n,
            path.display()
        );
    }
    if let Some(path) = &args.output {
        let per_sample = PerSample {
            robust: report.robust_flags.clone(),
            broken_by: Some(report.broken_by.clone()),
        };
        let check = report.check.clone();
        let out = EvalOutput::new(
            EvalResult {
                clean_acc: report.clean_acc,
                robust_acc: Some(report.robust_acc),
                n: report.n,
                clean_correct: report.clean_correct,
                robust_correct: Some(report.robust_correct),
                seconds: report.seconds,
            },
            AttackRecord {
                name: cfg.list_name(),
                config: None,
                autoattack: Some(cfg.clone()),
            },
            Some(report),
            kind,
            &ckpt,
            &model,
            &rt,
        )
        .with_zoo(args.model.reading.zoo.as_deref())
        .with_evidence(per_sample, check, args.save_adv.as_deref());
        rift::report::write_structured(path, &out)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The reference's closing log lines (`initial accuracy`, `robust accuracy after ATTACK`
/// with the time so far, the perturbation and NaN check, `robust accuracy`), its spelling.
pub fn reference_lines(report: &autoattack::AaReport, norm: Norm) -> Vec<String> {
    let mut lines = vec![format!("initial accuracy: {:.2}%", report.clean_acc)];
    let mut total = 0.0;
    for a in &report.attacks {
        total += a.seconds;
        lines.push(format!(
            "robust accuracy after {}: {:.2}% (total time {:.1} s)",
            a.attack.to_uppercase(),
            a.robust_acc,
            total
        ));
    }
    lines.push(report.check.line(norm));
    lines.push(format!("robust accuracy: {:.2}%", report.robust_acc));
    lines
}
