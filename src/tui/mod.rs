//! The interactive explorer: plain `state`, a pure `update`, `keys` → messages, `theme`
//! styles, one `view` per panel, and the `app` loop that ties them to the job worker.
pub mod aa_check;
pub mod aa_state;
pub mod app;
pub mod keys;
pub mod restore;
pub mod state;
pub mod theme;
pub mod update;
pub mod view;

pub use state::State;
pub use update::{update, Cmd, Msg};
