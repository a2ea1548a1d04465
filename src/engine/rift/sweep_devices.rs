//! The α sweep over several devices of one machine (`--devices cuda:0,cuda:1,…`): α points
//! are independent (SPEC.md §3), so each device gets its own copy of the model and of the
//! two endpoints on its own thread and evaluates the α sent to it, round by round (the
//! grid, then each refinement round). Random starts are keyed by sample
//! (`attack::Noise::Keyed`), so a point's numbers do not depend on which device or thread
//! evaluated it: the result equals `interpolate::sweep` on one device.
use super::events::Sink;
use super::interpolate::{
    choose_alpha, evaluate_alpha, sweep_rounds, Endpoints, InterpolateError, SweepConfig,
};
use super::multi_device::LoadOn;
use super::results::{InterpolationResult, SweepPoint};
use crate::engine::attack::AttackError;
use crate::engine::checkpoint::RawTensor;
use crate::engine::data::ImageSet;
use crate::engine::models::Model;
use crate::engine::CancelFlag;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tch::Device;

type PointResult = anyhow::Result<SweepPoint>;

/// The sweep of `cfg` (grid plus refinement rounds) with its α spread over `devices`;
/// `model` (with `ends`) is left at the chosen α, as `interpolate::sweep` leaves it.
#[allow(clippy::too_many_arguments)]
pub fn sweep_on_devices(
    load: &LoadOn,
    finetuned: &[(String, RawTensor)],
    model: &Model,
    ends: &Endpoints,
    test: &ImageSet,
    cfg: &SweepConfig,
    known: &[SweepPoint],
    devices: &[Device],
    cancel: &CancelFlag,
    sink: Sink,
) -> anyhow::Result<InterpolationResult> {
    let start = Instant::now();
    // The user's cancel, or the first failure, stops every device within a batch.
    let stop = CancelFlag::default();
    let result = std::thread::scope(|scope| {
        let (res_tx, res_rx) = mpsc::channel::<PointResult>();
        let mut jobs = Vec::new();
        for &device in devices {
            let (job_tx, job_rx) = mpsc::channel::<f64>();
            jobs.push(job_tx);
            let (res_tx, stop) = (res_tx.clone(), stop.clone());
            scope.spawn(move || {
                device_worker(load, finetuned, device, test, cfg, job_rx, res_tx, stop)
            });
        }
        drop(res_tx);
        let r = sweep_rounds(cfg, known, sink, |todo, emit| -> anyhow::Result<()> {
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
                        emit(p);
                        got += 1;
                    }
                    Ok(Err(e)) => {
                        stop.cancel();
                        return Err(e);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        anyhow::bail!("every α device thread stopped before the sweep ended")
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
            anyhow::Error::from(InterpolateError::Attack(AttackError::Cancelled))
        } else {
            e
        }
    })?;
    let chosen_alpha = choose_alpha(&points, cfg.tolerance);
    ends.apply(model, chosen_alpha)?;
    Ok(InterpolationResult {
        points,
        chosen_alpha,
        tolerance: cfg.tolerance,
        refine_rounds: round,
        seconds: start.elapsed().as_secs_f64(),
        search: None,
    })
}

/// One device: its own model and endpoints, then the α it is sent, until the channel
/// closes or the sweep stops.
#[allow(clippy::too_many_arguments)]
fn device_worker(
    load: &LoadOn,
    finetuned: &[(String, RawTensor)],
    device: Device,
    test: &ImageSet,
    cfg: &SweepConfig,
    jobs: mpsc::Receiver<f64>,
    results: mpsc::Sender<PointResult>,
    stop: CancelFlag,
) {
    let setup = || -> anyhow::Result<(Model, Endpoints)> {
        let model = load(device)?;
        let ends = Endpoints::new(&model, finetuned)?;
        Ok((model, ends))
    };
    let (model, ends) = match setup() {
        Ok(v) => v,
        Err(e) => {
            let _ = results.send(Err(e.context(format!(
                "cannot prepare the α sweep on {}",
                crate::engine::device::device_name(device)
            ))));
            return;
        }
    };
    for alpha in jobs {
        if stop.is_cancelled() {
            let _ = results.send(Err(InterpolateError::Attack(AttackError::Cancelled).into()));
            return;
        }
        let r = evaluate_alpha(&model, &ends, alpha, test, cfg, &stop).map_err(anyhow::Error::from);
        if results.send(r).is_err() {
            return;
        }
    }
}
