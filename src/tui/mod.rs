//! The interactive explorer: plain `state`, a pure `update`, `keys` → messages, `theme`
//! styles, one `view` per panel, and the `app` loop that ties them to the job worker.
pub mod aa_check;
pub mod aa_state;
pub mod app;
pub mod candidates;
pub mod compare_rows;
pub mod keys;
pub mod msg;
pub mod recommend;
mod requests;
pub mod restore;
pub mod state;
pub mod theme;
pub mod update;
#[cfg(test)]
mod update_candidates_tests;
#[cfg(test)]
mod update_job_tests;
pub mod view;

pub use state::State;
pub use update::{update, Cmd, Msg};
