#![no_main]
//! Any bytes given to the dataset readers (IDX, CIFAR binary and python batches, .npy,
//! PNG, JPEG): an error or a value, never a panic. The first byte picks the reader.
use libfuzzer_sys::fuzz_target;
use rift_checkpoint_fuzz::engine::data::{cifar, image_folder, mnist, npy};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 8 {
        0 => drop(mnist::parse_idx_images(rest)),
        1 => drop(mnist::parse_idx_labels(rest)),
        2 => drop(cifar::parse_bin_records(rest, 1)),
        3 => drop(cifar::parse_bin_records(rest, 2)),
        4 => drop(npy::parse_npy(rest)),
        5 => drop(cifar::parse_py_batch(rest, "labels")),
        6 => drop(image_folder::decode_png(rest)),
        _ => drop(image_folder::decode_jpeg(rest)),
    }
});
