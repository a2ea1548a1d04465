//! Background jobs of the explorer: libtorch runs on one named thread that owns the model
//! and the data; the UI talks to it only through `JobCommand`s and `JobEvent`s.
mod candidates;
pub mod follow;
pub mod handle;
pub mod messages;
mod requests;
pub mod worker;

pub use handle::JobHandle;
pub use messages::{CandidateSummary, JobCommand, JobEvent, JobRequest};
pub use worker::{JobSetup, OodSetup, Worker};
