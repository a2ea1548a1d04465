//! rift: Robust Critical Fine-Tuning on libtorch. The engine is usable as a library; the
//! `rift` binary is a thin command line over it.
pub mod engine;
pub mod jobs;
pub mod report;
pub mod tui;
