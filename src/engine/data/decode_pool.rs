//! Decoding a list of image files into the `uint8` `N×3×H×W` cache on every core, each
//! worker decoding and preprocessing its images (so only preprocessed images are held,
//! never a whole split at its original sizes). Workers take blocks of files from a shared
//! queue, so a few large images do not leave the other cores idle.

use super::error::DataError;
use super::image_decode::{decode_image_file, Rgb};
use super::preprocess::Preprocess;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Files a worker takes from the queue at a time.
const BLOCK: usize = 8;

/// Decode `files` into one `N×3×H×W` cache, applying `prep` to each image inside the
/// workers. Without a resizing preprocessing every image must have the first one's size;
/// `hint` is appended to that error (how to make the sizes agree). Errors name the first
/// bad file in list order.
pub fn decode_files_with(
    files: &[PathBuf],
    prep: Preprocess,
    hint: &str,
) -> Result<(usize, usize, Vec<u8>), DataError> {
    let first = files
        .first()
        .ok_or_else(|| DataError::Invalid("no image files to decode".into()))?;
    let (h, w) = match prep.output_size() {
        Some(hw) => hw,
        None => {
            let img0 = decode_image_file(first)?;
            (img0.height, img0.width)
        }
    };
    let per = 3 * h * w;
    let total = per
        .checked_mul(files.len())
        .ok_or_else(|| DataError::Invalid("image cache size overflows".into()))?;
    let mut pixels: Vec<u8> = Vec::new();
    pixels.try_reserve_exact(total).map_err(|_| {
        DataError::Invalid(format!(
            "not enough memory to cache {} images of {w}×{h} ({} MB)",
            files.len(),
            total >> 20
        ))
    })?;
    pixels.resize(total, 0);
    let put = |img: Rgb, path: &Path, dst: &mut [u8]| -> Result<(), DataError> {
        let img = prep.apply(img);
        if img.width != w || img.height != h {
            return Err(DataError::malformed(
                path,
                format!(
                    "image is {}×{}, but {} is {w}×{h}; all images must share one size{hint}",
                    img.width,
                    img.height,
                    first.display()
                ),
            ));
        }
        super::hwc_to_chw_into_slice(&img.data, h, w, 3, dst);
        Ok(())
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 64);
    let queue = Mutex::new(
        files
            .chunks(BLOCK)
            .zip(pixels.chunks_mut(BLOCK * per))
            .enumerate(),
    );
    // The first error of each worker, with its block index: the earliest block wins. After
    // an error no new block is taken; blocks before it were already taken (the queue hands
    // them out in order) and are finished, so the first bad file in list order is found.
    let errors: Mutex<Vec<(usize, DataError)>> = Mutex::new(Vec::new());
    let failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..threads.min(files.len().div_ceil(BLOCK)) {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let next = match queue.lock() {
                    Ok(mut q) => q.next(),
                    Err(_) => None,
                };
                let Some((block, (fs, out))) = next else {
                    break;
                };
                let res = fs
                    .iter()
                    .zip(out.chunks_exact_mut(per))
                    .try_for_each(|(f, dst)| put(decode_image_file(f)?, f, dst));
                if let Err(e) = res {
                    failed.store(true, Ordering::Relaxed);
                    if let Ok(mut errs) = errors.lock() {
                        errs.push((block, e));
                    }
                    break;
                }
            });
        }
    });
    let mut errs = errors
        .into_inner()
        .map_err(|_| DataError::Invalid("image decoder thread panicked".into()))?;
    errs.sort_by_key(|(b, _)| *b);
    if let Some((_, e)) = errs.into_iter().next() {
        return Err(e);
    }
    Ok((h, w, pixels))
}
