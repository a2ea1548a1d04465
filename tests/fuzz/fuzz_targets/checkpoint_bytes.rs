#![no_main]
//! Any bytes given to the checkpoint loader: an error or a checkpoint, never a panic.
use libfuzzer_sys::fuzz_target;
use rift_checkpoint_fuzz::checkpoint::{load_checkpoint_from_bytes, summarize, Value};

fuzz_target!(|data: &[u8]| {
    if let Ok(ck) = load_checkpoint_from_bytes(data, std::path::Path::new("fuzz.pth")) {
        for (_, t) in &ck.tensors {
            assert_eq!(t.data.len(), t.numel() * t.dtype.size());
        }
        for (k, v) in &ck.metadata {
            let _ = (k.len(), v.len());
        }
        let _ = summarize(&Value::Int(ck.tensors.len() as i64));
    }
});
