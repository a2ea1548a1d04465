//! The α sweep over several devices of one machine (`--devices cuda:0,cuda:1,…`): α points
//! are independent (SPEC.md §3), so each device gets its own copy of the model and of the
//! two endpoints on its own thread and evaluates the α sent to it, round by round (the
//! grid, then each refinement round). Random starts are keyed by sample
//! (`attack::Noise::Keyed`), so a point's numbers do not depend on which device or thread
//! evaluated it: the result equals `interpolate::sweep` on one device.
use crate::engine::data::ImageSet;
use crate::engine::rift::alpha::interpolate::{
    choose_alpha, evaluate_alpha, sweep_rounds, Endpoints, SweepConfig, SweepStep, SweepTask,
};
use crate::engine::rift::events::Sink;
use crate::engine::rift::mrc::multi_device::{load_on, Devices, DevicesError, LoadOn};
use crate::engine::rift::mrc::results::{InterpolationResult, SweepPoint};
use crate::engine::CancelFlag;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tch::Device;

type PointResult = Result<SweepPoint, DevicesError>;

/// The sweep of `cfg` (grid plus refinement rounds) between `ends` with its α spread over
/// `devices`, each with its own model and copy of the endpoints. Unlike
/// `interpolate::sweep` it leaves no model at the chosen α: a caller that needs those
/// weights applies `chosen_alpha` itself.
pub fn sweep_on_devices(
    devices: Devices,
    task: &SweepTask,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<InterpolationResult, DevicesError> {
    let SweepTask {
        ends,
        test,
        cfg,
        known,
    } = *task;
    let start = Instant::now();
    // The user's cancel, or the first failure, stops every device within a batch.
    let stop = CancelFlag::default();
    let result = std::thread::scope(|scope| {
        let (res_tx, res_rx) = mpsc::channel::<PointResult>();
        let mut jobs = Vec::new();
        for &device in devices.list {
            let (job_tx, job_rx) = mpsc::channel::<f64>();
            jobs.push(job_tx);
            let (res_tx, stop) = (res_tx.clone(), stop.clone());
            let ends = ends.to_device(device).map_err(DevicesError::from);
            let worker = Worker {
                load: devices.load,
                device,
                test,
                cfg,
            };
            scope.spawn(move || worker.run(ends, job_rx, res_tx, stop));
        }
        drop(res_tx);
        let r = sweep_rounds(cfg, known, sink, |todo, emit| -> Result<(), DevicesError> {
            for (i, &alpha) in todo.iter().enumerate() {
                // A closed channel means that worker failed; its error is already queued.
                let _ = jobs[i % jobs.len()].send(alpha);
            }
            let mut got = 0;
            while got < todo.len() {
                if cancel.is_cancelled() {
                    stop.cancel();
                }
                match res_rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(Ok(p)) => {
                        emit(SweepStep::Point(p));
                        got += 1;
                    }
                    Ok(Err(e)) => {
                        stop.cancel();
                        return Err(e);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        return Err(DevicesError::WorkersGone)
                    }
                }
            }
            Ok(())
        });
        // Closing the job channels ends the workers, which the scope then joins.
        drop(jobs);
        r
    });
    let (points, round) = result.map_err(|e| {
        if cancel.is_cancelled() {
            DevicesError::Cancelled
        } else {
            e
        }
    })?;
    let chosen_alpha = choose_alpha(&points, cfg.tolerance);
    Ok(InterpolationResult {
        points,
        chosen_alpha,
        tolerance: cfg.tolerance,
        refine_rounds: round,
        seconds: start.elapsed().as_secs_f64(),
        search: None,
    })
}

/// One device's share of the sweep.
struct Worker<'a> {
    load: &'a LoadOn<'a>,
    device: Device,
    test: &'a ImageSet,
    cfg: &'a SweepConfig,
}

impl Worker<'_> {
    /// Its own model and the endpoints copied to its device, then the α it is sent, until
    /// the channel closes or the sweep stops.
    fn run(
        self,
        ends: Result<Endpoints, DevicesError>,
        jobs: mpsc::Receiver<f64>,
        results: mpsc::Sender<PointResult>,
        stop: CancelFlag,
    ) {
        let setup = ends.and_then(|ends| Ok((load_on(self.load, self.device)?, ends)));
        let (model, ends) = match setup {
            Ok(v) => v,
            Err(e) => {
                let _ = results.send(Err(e));
                return;
            }
        };
        for alpha in jobs {
            if stop.is_cancelled() {
                let _ = results.send(Err(DevicesError::Cancelled));
                return;
            }
            let r = evaluate_alpha(&model, &ends, alpha, self.test, self.cfg, &stop, &mut || {})
                .map_err(DevicesError::from);
            if results.send(r).is_err() {
                return;
            }
        }
    }
}
