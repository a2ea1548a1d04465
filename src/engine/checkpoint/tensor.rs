//! Plain-bytes tensors: dtypes, shapes, and gathering a strided view out of a storage.

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    Bool,
    U8,
    I8,
    I16,
    I32,
    I64,
    F16,
    BF16,
    F32,
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// PyTorch-style name: "float32", "int64", "bool", ...
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }

    /// The dtype of a `torch.<X>Storage` class name (`"FloatStorage"`), if rift supports it.
    pub fn from_storage_name(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" | "UntypedStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// The `torch.<X>Storage` class name for this dtype.
    pub fn storage_name(self) -> &'static str {
        match self {
            DType::F32 => "FloatStorage",
            DType::F64 => "DoubleStorage",
            DType::F16 => "HalfStorage",
            DType::BF16 => "BFloat16Storage",
            DType::I64 => "LongStorage",
            DType::I32 => "IntStorage",
            DType::I16 => "ShortStorage",
            DType::I8 => "CharStorage",
            DType::U8 => "ByteStorage",
            DType::Bool => "BoolStorage",
        }
    }

    /// safetensors dtype string ("F32", "BF16", "BOOL", ...).
    pub fn safetensors_name(self) -> &'static str {
        match self {
            DType::Bool => "BOOL",
            DType::U8 => "U8",
            DType::I8 => "I8",
            DType::I16 => "I16",
            DType::I32 => "I32",
            DType::I64 => "I64",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F32 => "F32",
            DType::F64 => "F64",
        }
    }

    pub fn from_safetensors_name(s: &str) -> Option<DType> {
        Some(match s {
            "BOOL" => DType::Bool,
            "U8" => DType::U8,
            "I8" => DType::I8,
            "I16" => DType::I16,
            "I32" => DType::I32,
            "I64" => DType::I64,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "F32" => DType::F32,
            "F64" => DType::F64,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A tensor as plain bytes: contiguous, row-major, little-endian (non-contiguous strides and
/// storage offsets from the file are resolved when reading).
#[derive(Clone, Debug, PartialEq)]
pub struct RawTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl RawTensor {
    /// Number of elements (1 for a 0-dim tensor). Saturates instead of overflowing.
    pub fn numel(&self) -> usize {
        self.shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }

    /// A tensor from f32 values (for tests and writers).
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> RawTensor {
        let mut data = Vec::with_capacity(values.len() * 4);
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        RawTensor {
            dtype: DType::F32,
            shape,
            data,
        }
    }

    /// Checks that `data` holds exactly `numel * dtype.size()` bytes.
    pub fn check(&self) -> Result<(), String> {
        let numel = self
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("shape {:?} overflows", self.shape))?;
        let want = numel
            .checked_mul(self.dtype.size())
            .ok_or_else(|| format!("shape {:?} overflows", self.shape))?;
        if want != self.data.len() {
            return Err(format!(
                "shape {:?} of {} needs {} bytes but the data has {}",
                self.shape,
                self.dtype,
                want,
                self.data.len()
            ));
        }
        Ok(())
    }

    /// Every element converted to f32 (integers and bools by value). Ignores a trailing
    /// partial element.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let sz = self.dtype.size();
        self.data
            .chunks_exact(sz)
            .map(|c| match self.dtype {
                DType::Bool => (c[0] != 0) as u8 as f32,
                DType::U8 => c[0] as f32,
                DType::I8 => c[0] as i8 as f32,
                DType::I16 => i16::from_le_bytes([c[0], c[1]]) as f32,
                DType::I32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32,
                DType::I64 => {
                    i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                }
                DType::F16 => half::f16::from_le_bytes([c[0], c[1]]).to_f32(),
                DType::BF16 => half::bf16::from_le_bytes([c[0], c[1]]).to_f32(),
                DType::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                DType::F64 => {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                }
            })
            .collect()
    }
}

/// Copies the view (`offset`, `shape`, `stride`, all in elements) of `storage` (raw bytes of
/// elements of `elem` bytes) into a contiguous row-major buffer. `max_bytes` caps the result.
pub fn gather_strided(
    storage: &[u8],
    elem: usize,
    offset: usize,
    shape: &[usize],
    stride: &[usize],
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    if shape.len() != stride.len() {
        return Err(format!(
            "has {} sizes but {} strides",
            shape.len(),
            stride.len()
        ));
    }
    if elem == 0 {
        return Err("has a zero element size".into());
    }
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    let nbytes = numel
        .checked_mul(elem)
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    if nbytes > max_bytes {
        return Err(format!(
            "would expand to {nbytes} bytes (shape {shape:?}), more than the file's size can justify"
        ));
    }
    let storage_numel = storage.len() / elem;
    if numel == 0 {
        if offset > storage_numel {
            return Err(format!(
                "offset {offset} is past the storage's {storage_numel} elements"
            ));
        }
        return Ok(Vec::new());
    }
    // Highest element index touched.
    let mut last = offset;
    for (&d, &s) in shape.iter().zip(stride) {
        let ext = (d - 1)
            .checked_mul(s)
            .ok_or_else(|| "strides overflow".to_string())?;
        last = last
            .checked_add(ext)
            .ok_or_else(|| "strides overflow".to_string())?;
    }
    if last >= storage_numel {
        return Err(format!(
            "is too short: the view (offset {offset}, shape {shape:?}, stride {stride:?}) reaches element {last} but the storage holds {storage_numel}"
        ));
    }
    // Contiguous fast path.
    let mut contiguous = true;
    let mut expect = 1usize;
    for (&d, &s) in shape.iter().zip(stride).rev() {
        if d != 1 && s != expect {
            contiguous = false;
            break;
        }
        expect = expect.saturating_mul(d);
    }
    if contiguous {
        let start = offset * elem;
        return Ok(storage[start..start + nbytes].to_vec());
    }
    let mut out = Vec::with_capacity(nbytes);
    let nd = shape.len();
    let mut idx = vec![0usize; nd];
    let mut pos = offset;
    for _ in 0..numel {
        let b = pos * elem;
        out.extend_from_slice(&storage[b..b + elem]);
        // Odometer increment.
        let mut k = nd;
        while k > 0 {
            k -= 1;
            idx[k] += 1;
            pos += stride[k];
            if idx[k] < shape[k] {
                break;
            }
            pos -= stride[k] * shape[k];
            idx[k] = 0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_transposed() {
        // storage 0..6 as a 2x3 matrix, read its transpose (3x2, strides (1,3)).
        let st: Vec<u8> = (0u8..6).collect();
        let out = gather_strided(&st, 1, 0, &[3, 2], &[1, 3], 1 << 20).unwrap();
        assert_eq!(out, vec![0, 3, 1, 4, 2, 5]);
        let out = gather_strided(&st, 1, 2, &[2], &[2], 1 << 20).unwrap();
        assert_eq!(out, vec![2, 4]);
        assert!(gather_strided(&st, 1, 5, &[2], &[1], 1 << 20).is_err());
        assert!(gather_strided(&st, 1, 0, &[usize::MAX, 2], &[0, 1], usize::MAX).is_err());
        assert!(gather_strided(&st, 1, 0, &[1 << 40], &[0], 1 << 20).is_err());
        assert_eq!(gather_strided(&st, 1, 0, &[], &[], 16).unwrap(), vec![0]);
        assert_eq!(
            gather_strided(&st, 1, 0, &[0, 5], &[5, 1], 16).unwrap(),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn f32_conversion() {
        let t = RawTensor {
            dtype: DType::BF16,
            shape: vec![2],
            data: vec![0x80, 0x3f, 0, 0xc0],
        };
        assert_eq!(t.to_f32_vec(), vec![1.0, -2.0]);
        assert!(t.check().is_ok());
    }
}
