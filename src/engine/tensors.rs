//! The one bridge between the tch-free file formats (`RawTensor`: plain little-endian
//! bytes) and libtorch tensors.
use super::checkpoint::{DType, RawTensor};
use tch::{Device, Kind, Tensor};

pub fn kind_of(dtype: DType) -> Kind {
    match dtype {
        DType::Bool => Kind::Bool,
        DType::U8 => Kind::Uint8,
        DType::I8 => Kind::Int8,
        DType::I16 => Kind::Int16,
        DType::I32 => Kind::Int,
        DType::I64 => Kind::Int64,
        DType::F16 => Kind::Half,
        DType::BF16 => Kind::BFloat16,
        DType::F32 => Kind::Float,
        DType::F64 => Kind::Double,
    }
}

pub fn dtype_of(kind: Kind) -> Option<DType> {
    Some(match kind {
        Kind::Bool => DType::Bool,
        Kind::Uint8 => DType::U8,
        Kind::Int8 => DType::I8,
        Kind::Int16 => DType::I16,
        Kind::Int => DType::I32,
        Kind::Int64 => DType::I64,
        Kind::Half => DType::F16,
        Kind::BFloat16 => DType::BF16,
        Kind::Float => DType::F32,
        Kind::Double => DType::F64,
        _ => return None,
    })
}

/// A CPU tensor holding a copy of the raw bytes.
pub fn to_tensor(raw: &RawTensor) -> Result<Tensor, tch::TchError> {
    let shape: Vec<i64> = raw.shape.iter().map(|&d| d as i64).collect();
    Tensor::f_from_data_size(&raw.data, &shape, kind_of(raw.dtype))
}

/// Bytes of any tensor (moved to the CPU, made contiguous).
pub fn to_raw(t: &Tensor) -> Result<RawTensor, tch::TchError> {
    let kind = t.kind();
    let dtype = dtype_of(kind)
        .ok_or_else(|| tch::TchError::Kind(format!("cannot serialise tensors of kind {kind:?}")))?;
    let t = t.f_to_device(Device::Cpu)?.f_contiguous()?;
    let numel = t.numel();
    let mut data = vec![0u8; numel * dtype.size()];
    t.f_copy_data_u8(&mut data, numel)?;
    Ok(RawTensor {
        dtype,
        shape: t.size().iter().map(|&d| d as usize).collect(),
        data,
    })
}

/// Mean cross-entropy of `logits` against labels `y`, with PyTorch's `F.cross_entropy`
/// defaults (no class weights, ignore index -100, no label smoothing): the loss the
/// published attack, MRC's ascent and fine-tuning all use.
pub fn mean_cross_entropy(logits: &Tensor, y: &Tensor) -> Result<Tensor, tch::TchError> {
    logits.f_cross_entropy_loss::<Tensor>(y, None, tch::Reduction::Mean, -100, 0.0)
}
