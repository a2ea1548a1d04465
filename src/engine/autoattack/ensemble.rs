//! The ensemble: clean accuracy, then each attack in order on the points every earlier
//! attack left robust, so a sample counts as robust only if all attacks failed on it. The
//! state is handed to `save` after every batch, so an interrupted run resumes where it
//! stopped and ends with the same result.
use super::state::{AaState, FinishedAttack, PartialAttack};
// Re-exported where callers have always found them.
pub use super::report::{AaReport, AaUpdate, AttackOutcome};
use super::{apgd, fab, square, AaConfig, AaError, AttackKind};
use crate::engine::adv_examples::{AdvExamples, PerturbationCheck};
use crate::engine::attack::{clean_correct, robust_correct, Noise};
use crate::engine::batches::images_to_tensor;
use crate::engine::data::ImageSet;
use crate::engine::models::compute::BatchNormFolding;
use crate::engine::models::Model;
use crate::engine::rift::events::{Event, Sink};
use crate::engine::CancelFlag;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn pct(c: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * c as f64 / n as f64
    }
}

/// The samples `idx` of `set` as a float batch in [0, 1] and labels.
fn gather(
    set: &ImageSet,
    idx: &[usize],
    device: Device,
) -> Result<(Tensor, Tensor), tch::TchError> {
    let per = set.image_len();
    let mut bytes = Vec::with_capacity(idx.len() * per);
    let mut labels = Vec::with_capacity(idx.len());
    for &i in idx {
        bytes.extend_from_slice(&set.pixels[i * per..(i + 1) * per]);
        labels.push(set.labels[i]);
    }
    let shape = [
        idx.len() as i64,
        set.channels as i64,
        set.height as i64,
        set.width as i64,
    ];
    images_to_tensor(&bytes, &shape, &labels, device)
}

fn flags_of(t: &Tensor) -> Result<Vec<bool>, tch::TchError> {
    let v = Vec::<i64>::try_from(&t.f_to_kind(Kind::Int64)?.f_to_device(Device::Cpu)?)?;
    Ok(v.into_iter().map(|b| b != 0).collect())
}

/// One attack on one batch of still-robust points: the batch, the attack's points and, per
/// point, whether it is still robust (bool). An adversarial point counts only if it is
/// misclassified and within ε in the run's norm (plus float slack).
fn attack_batch(
    model: &Model,
    set: &ImageSet,
    kind: AttackKind,
    cfg: &AaConfig,
    idx: &[usize],
    cancel: &CancelFlag,
) -> Result<(Tensor, Tensor, Tensor), AaError> {
    let (x, y) = gather(set, idx, model.device())?;
    let (_, adv) = match kind {
        AttackKind::ApgdCe | AttackKind::ApgdDlr | AttackKind::ApgdT => {
            apgd::attack(model, &x, &y, kind, cfg, idx, cancel)?
        }
        AttackKind::Fab | AttackKind::FabT => fab::attack(model, &x, &y, kind, cfg, idx, cancel)?,
        AttackKind::Square => square::attack(model, &x, &y, cfg, idx, cancel)?,
        AttackKind::Pgd => {
            let pgd = crate::engine::attack::PgdConfig {
                eps: cfg.eps,
                ..cfg.pgd.clone()
            };
            let noise = Noise::Listed {
                seed: cfg.seed,
                keys: idx,
            };
            let (ok, adv) = robust_correct(model, &x, &y, &pgd, noise, cancel)?;
            (ok, adv)
        }
    };
    // The verdict is the model's on the returned point, whatever the attack believed.
    let ok = clean_correct(model, &adv, &y)?;
    let outside = cfg.norm.lengths(&(&adv - &x))?.f_gt(cfg.eps + 1e-6)?;
    let robust = ok.f_logical_or(&outside)?;
    Ok((x, adv, robust))
}

/// What one attack batch leaves: per point, still robust; and the reference's check over
/// the adversarial examples it found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchOutcome {
    pub robust: Vec<bool>,
    pub check: PerturbationCheck,
}

impl FromIterator<bool> for BatchOutcome {
    fn from_iter<I: IntoIterator<Item = bool>>(iter: I) -> Self {
        BatchOutcome {
            robust: iter.into_iter().collect(),
            check: PerturbationCheck::default(),
        }
    }
}

/// What one AutoAttack evaluation attacks, and how: `model` on the first `n` samples of
/// `set` with the attacks of `cfg`; `identity` names the model and data (written into the
/// state, and checked against a state being resumed).
#[derive(Clone, Copy)]
pub struct AaTask<'a> {
    pub model: &'a Model,
    pub set: &'a ImageSet,
    pub n: usize,
    pub cfg: &'a AaConfig,
    pub identity: &'a str,
}

/// AutoAttack as `task` says. `resume` continues an interrupted run (its flags must equal
/// the task's `cfg`, `n` and `identity`); `save` receives the state after every batch and
/// attack.
pub fn evaluate(
    task: AaTask,
    resume: Option<AaState>,
    save: &mut dyn FnMut(&AaState) -> Result<(), crate::engine::files::SaveError>,
    sink: Sink,
    cancel: &CancelFlag,
) -> Result<AaReport, AaError> {
    evaluate_saving(task, resume, save, sink, cancel, None)
}

/// `evaluate`, also putting every adversarial example found into `adv` (made with
/// `AdvExamples::clean` for the task's points; examples of batches finished before a resume
/// are not in it).
pub fn evaluate_saving(
    task: AaTask,
    resume: Option<AaState>,
    save: &mut dyn FnMut(&AaState) -> Result<(), crate::engine::files::SaveError>,
    sink: Sink,
    cancel: &CancelFlag,
    mut adv: Option<&mut AdvExamples>,
) -> Result<AaReport, AaError> {
    let AaTask {
        model,
        set,
        n,
        cfg,
        identity,
    } = task;
    cfg.validate(model.spec.num_classes)?;
    let n = n.min(set.n);
    let mut state = match resume {
        Some(s) => {
            s.check_same(cfg, n, identity, "resume state")?;
            s
        }
        None => AaState::new(cfg, n, identity),
    };
    let mut clean = |idx: &[usize]| -> Result<Vec<bool>, AaError> {
        let (x, y) = gather(set, idx, model.device())?;
        Ok(flags_of(&clean_correct(model, &x, &y)?)?)
    };
    let mut attack = |kind: AttackKind, idx: &[usize]| -> Result<BatchOutcome, AaError> {
        let (x, found, robust) = attack_batch(model, set, kind, cfg, idx, cancel)?;
        let broken = robust.f_logical_not()?;
        if let Some(store) = adv.as_deref_mut() {
            store.put(idx, &found, &broken)?;
        }
        Ok(BatchOutcome {
            robust: flags_of(&robust)?,
            check: PerturbationCheck::of_batch(&x, &found, &broken, cfg.norm)?,
        })
    };
    // On the CPU the attacks run channels-last whatever `--channels-last` says (as MRC's
    // exact loop): libtorch's NCHW convolution backward is 4–6× its forward on narrow
    // layers, channels-last about 1×. BatchNorms are folded into their convolutions or
    // computed as affine maps (`BatchNormFolding`, layers.rs). Only summation order
    // differs from PyTorch's NCHW; the clean pass is inside too, so every verdict of a run
    // comes from one computation.
    let _layout = match model.device() {
        tch::Device::Cpu => Some((
            model.channels_last_weights().map_err(|e| {
                AaError::Config(format!("cannot lay the weights out channels-last: {e}"))
            })?,
            BatchNormFolding::on_this_thread(),
        )),
        _ => None,
    };
    run_ensemble(&mut state, &mut clean, &mut attack, save, sink, cancel)
}

/// The reference's checks on the model (`checks::model_warnings`) on the first batch of
/// the task's points.
pub fn model_warnings(task: AaTask) -> Result<Vec<String>, AaError> {
    let n = task.n.min(task.set.n).min(task.cfg.batch_size.max(1));
    if n == 0 {
        return Ok(Vec::new());
    }
    let idx: Vec<usize> = (0..n).collect();
    let (x, y) = gather(task.set, &idx, task.model.device())?;
    Ok(super::checks::model_warnings(task.model, &x, &y, task.cfg)?)
}

type BatchFn<'a> = dyn FnMut(&[usize]) -> Result<Vec<bool>, AaError> + 'a;
type AttackFn<'a> = dyn FnMut(AttackKind, &[usize]) -> Result<BatchOutcome, AaError> + 'a;

/// The ensemble's bookkeeping, independent of the model: `clean` and `attack` say per point
/// of a batch whether it is still correct / robust.
pub fn run_ensemble(
    state: &mut AaState,
    clean: &mut BatchFn,
    attack: &mut AttackFn,
    save: &mut dyn FnMut(&AaState) -> Result<(), crate::engine::files::SaveError>,
    sink: Sink,
    cancel: &CancelFlag,
) -> Result<AaReport, AaError> {
    let start = Instant::now();
    let cfg = state.config.clone();
    let n = state.n;
    let bs = cfg.batch_size.max(1);
    if state.clean.is_none() {
        let t0 = Instant::now();
        let mut correct = Vec::new();
        let all: Vec<usize> = (0..n).collect();
        sink(Event::AutoAttack {
            update: AaUpdate::Started {
                attack: "clean".into(),
                points: n,
                done: 0,
            },
        });
        for chunk in all.chunks(bs) {
            if cancel.is_cancelled() {
                return Err(AaError::Cancelled);
            }
            let ok = clean(chunk)?;
            correct.extend(chunk.iter().zip(ok).filter(|(_, ok)| *ok).map(|(i, _)| *i));
            sink(Event::AutoAttack {
                update: AaUpdate::Progress {
                    attack: "clean".into(),
                    done: chunk.last().map_or(0, |l| l + 1),
                    total: n,
                },
            });
        }
        state.clean = Some(correct);
        state.clean_seconds = t0.elapsed().as_secs_f64();
        save(state).map_err(AaError::Save)?;
    }
    let clean_idx = state.clean.clone().unwrap_or_default();
    let mut robust = clean_idx.clone();
    let mut outcomes = Vec::new();
    for (pos, &kind) in cfg.attacks.iter().enumerate() {
        if let Some(done) = state.finished.get(pos) {
            robust = done.robust.clone();
            let outcome = AttackOutcome {
                attack: done.attack.clone(),
                robust_acc: pct(robust.len(), n),
                robust: robust.len(),
                evaluated: done.evaluated,
                seconds: done.seconds,
                resumed: true,
            };
            sink(Event::AutoAttack {
                update: AaUpdate::Finished {
                    outcome: outcome.clone(),
                },
            });
            outcomes.push(outcome);
            continue;
        }
        let candidates = robust.clone();
        let (mut done, mut still, mut seconds) = match state.partial.take() {
            Some(p) if p.attack == kind.name() => (p.done, p.robust, p.seconds),
            _ => (0, Vec::new(), 0.0),
        };
        sink(Event::AutoAttack {
            update: AaUpdate::Started {
                attack: kind.name().into(),
                points: candidates.len(),
                done,
            },
        });
        while done < candidates.len() {
            if cancel.is_cancelled() {
                return Err(AaError::Cancelled);
            }
            let t0 = Instant::now();
            let end = (done + bs).min(candidates.len());
            let chunk = &candidates[done..end];
            let out = attack(kind, chunk)?;
            state.check.merge(&out.check);
            still.extend(
                chunk
                    .iter()
                    .zip(out.robust)
                    .filter(|(_, ok)| *ok)
                    .map(|(i, _)| *i),
            );
            done = end;
            seconds += t0.elapsed().as_secs_f64();
            state.partial = Some(PartialAttack {
                attack: kind.name().into(),
                done,
                robust: still.clone(),
                seconds,
            });
            save(state).map_err(AaError::Save)?;
            sink(Event::AutoAttack {
                update: AaUpdate::Progress {
                    attack: kind.name().into(),
                    done,
                    total: candidates.len(),
                },
            });
        }
        robust = still;
        state.partial = None;
        state.finished.push(FinishedAttack {
            attack: kind.name().into(),
            robust: robust.clone(),
            evaluated: candidates.len(),
            seconds,
        });
        save(state).map_err(AaError::Save)?;
        let outcome = AttackOutcome {
            attack: kind.name().into(),
            robust_acc: pct(robust.len(), n),
            robust: robust.len(),
            evaluated: candidates.len(),
            seconds,
            resumed: false,
        };
        sink(Event::AutoAttack {
            update: AaUpdate::Finished {
                outcome: outcome.clone(),
            },
        });
        outcomes.push(outcome);
    }
    let mut flags = vec![false; n];
    for &i in &robust {
        if let Some(f) = flags.get_mut(i) {
            *f = true;
        }
    }
    let broken_by = broken_by(n, &clean_idx, &state.finished);
    Ok(AaReport {
        n,
        clean_acc: pct(clean_idx.len(), n),
        clean_correct: clean_idx.len(),
        attacks: outcomes,
        robust_acc: pct(robust.len(), n),
        robust_correct: robust.len(),
        eps: cfg.eps,
        seconds: start.elapsed().as_secs_f64(),
        robust_flags: flags,
        broken_by,
        check: state.check.clone(),
    })
}

/// Per sample, the attack that broke it: the first finished attack whose robust set no
/// longer holds a sample that was correct clean (None: robust, or wrong clean).
fn broken_by(n: usize, clean: &[usize], finished: &[FinishedAttack]) -> Vec<Option<String>> {
    let mut alive = vec![false; n];
    for &i in clean {
        if let Some(a) = alive.get_mut(i) {
            *a = true;
        }
    }
    let mut out = vec![None; n];
    for attack in finished {
        let mut still = vec![false; n];
        for &i in &attack.robust {
            if let Some(s) = still.get_mut(i) {
                *s = true;
            }
        }
        for i in 0..n {
            if alive[i] && !still[i] {
                out[i] = Some(attack.attack.clone());
                alive[i] = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(attacks: Vec<AttackKind>, batch_size: usize) -> AaConfig {
        AaConfig {
            attacks,
            batch_size,
            ..AaConfig::standard(0.1, 0)
        }
    }

    /// Two attacks fooling disjoint samples: only samples both fail on stay robust, and
    /// the second attack only sees what the first left.
    #[test]
    fn robust_only_where_every_attack_failed() {
        let mut state = AaState::new(
            &config(vec![AttackKind::ApgdCe, AttackKind::Square], 3),
            10,
            "unit",
        );
        // Sample 9 is misclassified; ApgdCe fools even samples, Square fools 1 and 3.
        let mut clean = |idx: &[usize]| Ok(idx.iter().map(|&i| i != 9).collect());
        let mut seen: Vec<(AttackKind, usize)> = Vec::new();
        let mut attack = |k: AttackKind, idx: &[usize]| {
            seen.extend(idx.iter().map(|&i| (k, i)));
            Ok(idx
                .iter()
                .map(|&i| match k {
                    AttackKind::ApgdCe => !i.is_multiple_of(2),
                    _ => i != 1 && i != 3,
                })
                .collect())
        };
        let mut saves = 0;
        let r = run_ensemble(
            &mut state,
            &mut clean,
            &mut attack,
            &mut |_| {
                saves += 1;
                Ok(())
            },
            &mut |_| {},
            &CancelFlag::default(),
        )
        .unwrap();
        assert_eq!(r.clean_correct, 9);
        assert_eq!(r.attacks[0].robust, 4); // 1, 3, 5, 7
        assert_eq!(r.attacks[1].robust, 2); // 5, 7
        assert_eq!(r.attacks[1].evaluated, 4);
        assert_eq!(r.robust_correct, 2);
        let robust: Vec<usize> = (0..10).filter(|&i| r.robust_flags[i]).collect();
        assert_eq!(robust, vec![5, 7]);
        let by = |i: usize| r.broken_by[i].as_deref();
        assert_eq!(
            (by(0), by(1), by(5), by(9)),
            (Some("apgd-ce"), Some("square"), None, None)
        );
        assert!(seen
            .iter()
            .filter(|(k, _)| *k == AttackKind::Square)
            .all(|(_, i)| [1, 3, 5, 7].contains(i)));
        assert!(saves >= 5);
    }

    /// Cancelled after the first batch of the second attack, resumed from the saved state:
    /// the same result, and finished batches are not attacked again.
    #[test]
    fn resumed_run_equals_uninterrupted() {
        let cfg = config(vec![AttackKind::ApgdCe, AttackKind::ApgdT], 2);
        let fool = |k: AttackKind, i: usize| match k {
            AttackKind::ApgdCe => i.is_multiple_of(3),
            _ => i % 4 == 1,
        };
        let run = |state: &mut AaState, stop_after: Option<usize>, calls: &mut usize| {
            let cancel = CancelFlag::default();
            let mut saved = None;
            let mut clean = |idx: &[usize]| Ok(vec![true; idx.len()]);
            let c2 = cancel.clone();
            let mut attack = |k: AttackKind, idx: &[usize]| {
                *calls += 1;
                if Some(*calls) == stop_after {
                    c2.cancel();
                }
                Ok(idx.iter().map(|&i| !fool(k, i)).collect())
            };
            let r = run_ensemble(
                state,
                &mut clean,
                &mut attack,
                &mut |s| {
                    saved = Some(s.clone());
                    Ok(())
                },
                &mut |_| {},
                &cancel,
            );
            (r, saved)
        };
        let mut calls = 0;
        let (full, _) = run(&mut AaState::new(&cfg, 11, "u"), None, &mut calls);
        let full = full.unwrap();
        let mut calls = 0;
        let (cut, saved) = run(&mut AaState::new(&cfg, 11, "u"), Some(8), &mut calls);
        assert!(matches!(cut, Err(AaError::Cancelled)));
        let mut saved = saved.unwrap();
        assert_eq!(saved.finished.len(), 1);
        assert!(saved.partial.is_some());
        let mut more = 0;
        let (resumed, _) = run(&mut saved, None, &mut more);
        let resumed = resumed.unwrap();
        assert_eq!(resumed.robust_flags, full.robust_flags);
        assert_eq!(resumed.attacks[1].robust, full.attacks[1].robust);
        assert!(resumed.attacks[0].resumed);
        assert_eq!(calls + more, 6 + 4);
    }
}
