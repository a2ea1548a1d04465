//! MRC over several devices of one machine (`rift mrc --devices cuda:0,cuda:1,…`): modules
//! are independent (SPEC.md §1), so each device gets its own copy of the model and scores
//! a round-robin slice of the modules (as `--shard` slices them across machines) on its
//! own thread. The adversarial set and its baseline are computed once and copied to each
//! device; every module's ascent shuffles alike, from the run's seed, so a module's value
//! does not depend on which device or thread ran it.
use crate::engine::attack::AttackError;
use crate::engine::device::device_name;
use crate::engine::models::{Model, ModelError, ModuleInfo};
use crate::engine::rift::alpha::interpolate::InterpolateError;
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::rift::mrc::adv_set::TensorSet;
use crate::engine::rift::mrc::results::{ModuleScore, MrcResult};
use crate::engine::rift::mrc::scoring::{MrcInputs, Scorer};
use crate::engine::rift::mrc::shard::Shard;
use crate::engine::rift::mrc::{finish, MeasuredOn, MrcConfig, MrcError};
use crate::engine::CancelFlag;
use std::sync::mpsc;
use std::time::Instant;
use tch::Device;

/// A model of the same checkpoint on `device` (each thread builds its own).
pub type LoadOn<'a> = dyn Fn(Device) -> Result<Model, ModelError> + Sync + 'a;

/// Where work spread over devices runs: the devices, and how each gets its model.
#[derive(Clone, Copy)]
pub struct Devices<'a> {
    pub list: &'a [Device],
    pub load: &'a LoadOn<'a>,
}

/// Why work spread over devices failed. The first real failure is reported, not the
/// cancellations it caused on the other devices.
#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error("cancelled")]
    Cancelled,
    #[error("cannot prepare {device}: {source}")]
    Load {
        device: String,
        #[source]
        source: ModelError,
    },
    #[error(transparent)]
    Mrc(#[from] MrcError),
    #[error(transparent)]
    Interpolate(#[from] InterpolateError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error("an {0} device thread panicked")]
    Panicked(&'static str),
    #[error("every α device thread stopped before the sweep ended")]
    WorkersGone,
}

impl DevicesError {
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            DevicesError::Cancelled
                | DevicesError::Mrc(MrcError::Cancelled)
                | DevicesError::Interpolate(InterpolateError::Attack(AttackError::Cancelled))
        )
    }
}

/// `load` on `device`, its failure named by the device.
pub fn load_on(load: &LoadOn, device: Device) -> Result<Model, DevicesError> {
    load(device).map_err(|source| DevicesError::Load {
        device: device_name(device),
        source,
    })
}

/// The adversarial set as each device thread receives it (moved, then copied to its device),
/// with its loss and accuracy at the AT weights.
struct SharedSet {
    x: tch::Tensor,
    y: tch::Tensor,
    n: usize,
    baseline: (f64, f64),
}

/// Exact MRC of `modules`, spread over `devices`; the same result as `scoring::compute`.
/// Each score is handed to `after_each` as it arrives (to persist it at once, as the
/// single-device loop does); its failure stops every device and is returned.
pub fn compute_on_devices<E: From<DevicesError>>(
    devices: Devices,
    what: &MrcInputs,
    modules: &[(usize, ModuleInfo)],
    cancel: &CancelFlag,
    sink: Sink,
    mut after_each: impl FnMut(&ModuleScore) -> Result<(), E>,
) -> Result<MrcResult, E> {
    let MrcInputs {
        model,
        adv,
        adv_split,
        cfg,
    } = *what;
    let start = Instant::now();
    let baseline = adv
        .announce_baseline(model, cfg.batch_size, sink)
        .map_err(DevicesError::from)?;
    let (tx, rx) = mpsc::channel::<Event>();
    let mut persist_failed: Option<E> = None;
    let total = modules.len();
    // One flag for all device threads: the user's cancel, or the first thread's failure,
    // stops the others within a batch.
    let stop = CancelFlag::default();
    let caller_threads = tch::get_num_threads();
    let cpu_threads = cpu_threads_each(devices.list);
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = devices
            .list
            .iter()
            .enumerate()
            .map(|(k, &device)| {
                let part = Shard {
                    index: k,
                    count: devices.list.len(),
                }
                .select(modules);
                let set = SharedSet {
                    x: adv.x.shallow_clone(),
                    y: adv.y.shallow_clone(),
                    n: adv.n,
                    baseline,
                };
                let tx = tx.clone();
                let stop = stop.clone();
                let load = devices.load;
                scope.spawn(move || -> Result<Vec<_>, DevicesError> {
                    if device == Device::Cpu {
                        tch::set_num_threads(cpu_threads);
                    }
                    let r = score_part(load, device, set, &part, cfg, &stop, &tx);
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
            if let (Event::ModuleScored { score }, None) = (&e, &persist_failed) {
                if let Err(err) = after_each(score) {
                    persist_failed = Some(err);
                    stop.cancel();
                }
            }
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
            .map(|h| h.join().unwrap_or(Err(DevicesError::Panicked("MRC"))))
            .collect::<Vec<_>>()
    });
    // libtorch also keeps the count process-wide for threads started later: put it back.
    tch::set_num_threads(caller_threads);
    if let Some(err) = persist_failed {
        return Err(err);
    }
    // The first real failure wins over the cancellations it caused.
    let mut scores = Vec::new();
    let mut cancelled = false;
    for r in results {
        match r {
            Ok(v) => scores.extend(v),
            Err(e) if e.is_cancelled() => cancelled = true,
            Err(e) => return Err(e.into()),
        }
    }
    if cancelled {
        return Err(DevicesError::Cancelled.into());
    }
    let on = MeasuredOn {
        split: adv_split,
        n: adv.n,
        baseline,
    };
    Ok(finish(scores, cfg, &on, start.elapsed().as_secs_f64()))
}

/// Intra-op threads of each CPU worker: the process's threads shared among the CPU entries
/// of the list (`cpu,cpu` on 2 threads: one each), so several CPU workers use the cores
/// side by side instead of each asking for all of them. libtorch's count is per calling
/// thread (OpenMP) but also remembered process-wide for new threads, which
/// `compute_on_devices` restores when its workers are done.
fn cpu_threads_each(list: &[Device]) -> i32 {
    let cpus = list.iter().filter(|d| **d == Device::Cpu).count().max(1) as i32;
    (tch::get_num_threads() / cpus).max(1)
}

/// One device's share: its own model and copy of the set, its modules in order.
fn score_part(
    load: &LoadOn,
    device: Device,
    shared: SharedSet,
    part: &[(usize, ModuleInfo)],
    cfg: &MrcConfig,
    stop: &CancelFlag,
    tx: &mpsc::Sender<Event>,
) -> Result<Vec<ModuleScore>, DevicesError> {
    let model = load_on(load, device)?;
    let set = TensorSet {
        x: shared.x.f_to_device(device)?,
        y: shared.y.f_to_device(device)?,
        n: shared.n,
    };
    let mut send = |e: Event| {
        let _ = tx.send(e);
    };
    let scorer = Scorer {
        model: &model,
        adv: &set,
        baseline: shared.baseline,
        cfg,
        screened: None,
    };
    let mut scores = Vec::new();
    scorer.score_all(part, &mut scores, stop, &mut send, |_| {
        Ok::<(), MrcError>(())
    })?;
    Ok(scores)
}
