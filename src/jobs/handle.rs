//! The UI's end of a worker: send commands, cancel jobs, join on drop.
//!
//! A cancel is never lost: every job gets its own `CancelFlag` here, when it is sent, and
//! travels to the worker with it ([`Sent`]), so there is no moment when the worker runs a
//! job whose flag the handle cannot reach. What `cancel` means, with jobs queued:
//! it stops the job that is running and every job sent before the cancel that has not
//! started yet; the worker ends each of those with `JobEvent::Cancelled` without running
//! it (one end event per job sent, as the UI counts them). Jobs sent after the cancel run.
//! Requests (`JobCommand::Request`: `s` and `a` during a job) are not jobs: a cancel does
//! not drop them.
use super::messages::JobCommand;
use crate::engine::CancelFlag;
use std::sync::mpsc::Sender;
use std::sync::Mutex;
use std::thread::JoinHandle;

/// A command on its way to the worker, with the cancel flag of the job it starts.
pub(super) struct Sent {
    pub cmd: JobCommand,
    pub cancel: CancelFlag,
}

impl Sent {
    /// A command with a fresh flag of its own.
    pub fn new(cmd: JobCommand) -> Sent {
        Sent {
            cmd,
            cancel: CancelFlag::default(),
        }
    }
}

pub struct JobHandle {
    tx: Sender<Sent>,
    /// The flags of the jobs sent and not yet ended (the worker holds the other copy of
    /// each until its job ends): `cancel` sets them all.
    jobs: Mutex<Vec<CancelFlag>>,
    join: Option<JoinHandle<()>>,
}

impl JobHandle {
    pub(super) fn new(tx: Sender<Sent>, join: JoinHandle<()>) -> JobHandle {
        JobHandle {
            tx,
            jobs: Mutex::new(Vec::new()),
            join: Some(join),
        }
    }

    /// Queues a command; false when the worker has ended.
    pub fn send(&self, cmd: JobCommand) -> bool {
        if cmd == JobCommand::Cancel {
            self.cancel();
        }
        let sent = Sent::new(cmd);
        if sent.cmd.is_job() {
            let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            // Ended jobs' flags are held here only: nothing to cancel there any more.
            jobs.retain(CancelFlag::is_shared);
            jobs.push(sent.cancel.clone());
        }
        self.tx.send(sent).is_ok()
    }

    /// Stops the running job at its next batch or PGD step, and every job sent before
    /// this call that has not started (it ends `Cancelled` without running).
    pub fn cancel(&self) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        for flag in jobs.drain(..) {
            flag.cancel();
        }
    }

    /// Cancels the running job, ends the worker and waits for it.
    pub fn shutdown(&mut self) {
        self.cancel();
        let _ = self.tx.send(Sent::new(JobCommand::Shutdown));
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
