//! Turning the uint8 image cache into float batches on the device: one copy of the bytes
//! of a batch into a tensor, conversion to [0, 1] on the device.
use super::data::ImageSet;
use tch::{Device, Kind, Tensor};

/// Images `start..end` of `set` (contiguous, so no gather) as floats in [0, 1] and labels.
pub fn range_batch(
    set: &ImageSet,
    start: usize,
    end: usize,
    device: Device,
) -> Result<(Tensor, Tensor), tch::TchError> {
    let per = set.channels * set.height * set.width;
    let bytes = &set.pixels[start * per..end * per];
    let shape = [
        (end - start) as i64,
        set.channels as i64,
        set.height as i64,
        set.width as i64,
    ];
    images_to_tensor(bytes, &shape, &set.labels[start..end], device)
}

/// N×C×H×W bytes and labels to a float batch in [0, 1] on `device`.
pub fn images_to_tensor(
    bytes: &[u8],
    shape: &[i64; 4],
    labels: &[i64],
    device: Device,
) -> Result<(Tensor, Tensor), tch::TchError> {
    let x = Tensor::f_from_data_size(bytes, shape, Kind::Uint8)?
        .f_to_device(device)?
        .f_to_kind(Kind::Float)?
        .f_div_scalar(255.0)?;
    let y = Tensor::f_from_slice(labels)?.f_to_device(device)?;
    Ok((x, y))
}
