//! MRC over several devices of one machine (`rift mrc --devices cuda:0,cuda:1,…`): modules
//! are independent (SPEC.md §1), so each device gets its own copy of the model and scores
//! a round-robin slice of the modules (as `--shard` slices them across machines) on its
//! own thread. The adversarial set and its baseline are computed once and copied to each
//! device; each module's ascent is seeded by the module, so a module's value does not
//! depend on which device or thread ran it.
use super::adv_set::TensorSet;
use super::events::{Event, Sink, Stage};
use super::mrc::{finish, MrcConfig, MrcError};
use super::results::{ModuleScore, MrcResult};
use super::scoring::Scorer;
use super::shard::Shard;
use crate::engine::models::{Model, ModuleInfo};
use crate::engine::CancelFlag;
use std::sync::mpsc;
use std::time::Instant;
use tch::Device;

/// A model of the same checkpoint on `device` (each thread loads its own).
pub type LoadOn<'a> = dyn Fn(Device) -> anyhow::Result<Model> + Sync + 'a;

/// Exact MRC of `modules`, spread over `devices`; the same result as `scoring::compute`.
#[allow(clippy::too_many_arguments)]
pub fn compute_on_devices(
    load: &LoadOn,
    model: &Model,
    adv: &TensorSet,
    adv_split: &str,
    modules: &[(usize, ModuleInfo)],
    cfg: &MrcConfig,
    devices: &[Device],
    cancel: &CancelFlag,
    sink: Sink,
) -> anyhow::Result<MrcResult> {
    let start = Instant::now();
    let baseline = adv.baseline(model, cfg.batch_size)?;
    sink(Event::AdvSetReady {
        n: adv.n,
        loss: baseline.0,
        acc: baseline.1,
    });
    let (tx, rx) = mpsc::channel::<Event>();
    let total = modules.len();
    // One flag for all device threads: the user's cancel, or the first thread's failure,
    // stops the others within a batch.
    let stop = CancelFlag::default();
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(k, &device)| {
                let part = Shard {
                    index: k,
                    count: devices.len(),
                }
                .select(modules);
                let (x, y) = (adv.x.shallow_clone(), adv.y.shallow_clone());
                let n = adv.n;
                let tx = tx.clone();
                let stop = stop.clone();
                scope.spawn(move || -> anyhow::Result<Vec<_>> {
                    let r = score_part(load, device, (x, y, n), &part, baseline, cfg, &stop, &tx);
                    if r.is_err() {
                        stop.cancel();
                    }
                    r
                })
            })
            .collect();
        drop(tx);
        // Progress from every device, shown as it comes; ends when all threads are done.
        let mut done = 0;
        loop {
            if cancel.is_cancelled() {
                stop.cancel();
            }
            let e = match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(e) => e,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let scored = matches!(e, Event::ModuleScored { .. });
            // Each device counts its own share; the total over devices is counted here.
            if matches!(e, Event::Progress { .. }) {
                continue;
            }
            sink(e);
            if scored {
                done += 1;
                sink(Event::Progress {
                    stage: Stage::Mrc,
                    done,
                    total,
                });
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an MRC device thread panicked")))
            })
            .collect::<Vec<_>>()
    });
    // The first real failure wins over the cancellations it caused.
    let mut scores = Vec::new();
    let mut cancelled = false;
    for r in results {
        match r {
            Ok(v) => scores.extend(v),
            Err(e) if matches!(e.downcast_ref::<MrcError>(), Some(MrcError::Cancelled)) => {
                cancelled = true
            }
            Err(e) => return Err(e),
        }
    }
    if cancelled {
        return Err(MrcError::Cancelled.into());
    }
    Ok(finish(
        scores,
        cfg,
        adv_split,
        adv.n,
        baseline.0,
        baseline.1,
        start.elapsed().as_secs_f64(),
    ))
}

/// One device's share: its own model and copy of the set, its modules in order.
#[allow(clippy::too_many_arguments)]
fn score_part(
    load: &LoadOn,
    device: Device,
    (x, y, n): (tch::Tensor, tch::Tensor, usize),
    part: &[(usize, ModuleInfo)],
    baseline: (f64, f64),
    cfg: &MrcConfig,
    stop: &CancelFlag,
    tx: &mpsc::Sender<Event>,
) -> anyhow::Result<Vec<ModuleScore>> {
    let model = load(device)?;
    let set = TensorSet {
        x: x.f_to_device(device)?,
        y: y.f_to_device(device)?,
        n,
    };
    let mut send = |e: Event| {
        let _ = tx.send(e);
    };
    let scorer = Scorer {
        model: &model,
        adv: &set,
        baseline,
        cfg,
        screened: None,
    };
    let mut scores = Vec::new();
    scorer.score_all(part, &mut scores, stop, &mut send, |_| {
        Ok::<(), MrcError>(())
    })?;
    Ok(scores)
}
