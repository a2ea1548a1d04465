//! Mounts rift's checkpoint module on its own (it needs no libtorch), for fuzzing.
#[path = "../../../src/engine/checkpoint/mod.rs"]
pub mod checkpoint;
