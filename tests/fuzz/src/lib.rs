//! Mounts rift's tch-free readers (checkpoints and datasets) on their own, for fuzzing:
//! the rift crate itself links libtorch, these modules do not.
pub mod engine;
pub use engine::checkpoint;
