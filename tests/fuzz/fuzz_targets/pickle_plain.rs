#![no_main]
//! Any bytes given to the plain pickle reader (CIFAR batches): an error or a value, never a panic.
use libfuzzer_sys::fuzz_target;
use rift_checkpoint_fuzz::checkpoint::{parse_plain_pickle, summarize};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = parse_plain_pickle(data) {
        let _ = summarize(&v);
    }
});
