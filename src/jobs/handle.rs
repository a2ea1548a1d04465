//! The UI's end of a worker: send commands, cancel the running job, join on drop.
use super::messages::JobCommand;
use crate::engine::CancelFlag;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct JobHandle {
    tx: Sender<JobCommand>,
    /// The running job's flag; the worker puts a fresh one here as each job starts.
    cancel: Arc<Mutex<CancelFlag>>,
    join: Option<JoinHandle<()>>,
}

impl JobHandle {
    pub(super) fn new(
        tx: Sender<JobCommand>,
        cancel: Arc<Mutex<CancelFlag>>,
        join: JoinHandle<()>,
    ) -> JobHandle {
        JobHandle {
            tx,
            cancel,
            join: Some(join),
        }
    }

    /// Queues a command; false when the worker has ended.
    pub fn send(&self, cmd: JobCommand) -> bool {
        if cmd == JobCommand::Cancel {
            self.cancel();
        }
        self.tx.send(cmd).is_ok()
    }

    /// Stops the running job at its next batch or PGD step.
    pub fn cancel(&self) {
        if let Ok(flag) = self.cancel.lock() {
            flag.cancel();
        }
    }

    /// Cancels the running job, ends the worker and waits for it.
    pub fn shutdown(&mut self) {
        self.cancel();
        let _ = self.tx.send(JobCommand::Shutdown);
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
