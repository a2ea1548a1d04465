//! The compute engine: checkpoints, models, data, attacks and evaluation. No UI and no
//! async runtime here; long loops take a `CancelFlag` and report through callbacks.
pub mod adv_examples;
pub mod attack;
pub mod autoattack;
pub mod batches;
pub mod checkpoint;
pub mod continuation;
pub mod data;
pub mod device;
pub mod error_text;
pub mod eval;
pub mod files;
pub mod models;
pub mod norms;
pub mod panics;
pub mod rift;
pub mod session;
pub mod session_lock;
pub mod tensors;
pub mod zoo;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Cooperative cancellation, checked after every batch and every PGD step.
#[derive(Clone, Default, Debug)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// Whether another clone of this flag exists (someone may still check it).
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

/// The libtorch version rift was built against (read from the venv's torch at build time).
pub const TORCH_VERSION: &str = env!("RIFT_TORCH_VERSION");
