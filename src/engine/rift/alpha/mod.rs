//! Choosing α (SPEC.md §3): the interpolation between the AT and fine-tuned weights, its
//! sweep (also over several devices), the α search and its statistics, and the chosen
//! weights file.
pub mod chosen_file;
pub mod interpolate;
pub mod search;
pub mod stats;
pub mod sweep_devices;
