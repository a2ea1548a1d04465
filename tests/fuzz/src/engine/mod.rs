//! rift's tch-free readers, mounted by path (relative to this folder).
#[path = "../../../../src/engine/checkpoint/mod.rs"]
pub mod checkpoint;
#[path = "../../../../src/engine/data/mod.rs"]
pub mod data;
#[path = "../../../../src/engine/panics.rs"]
pub mod panics;
