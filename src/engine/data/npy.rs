//! NumPy `.npy` files: reading versions 1.0/2.0/3.0 (little-endian, C order) and writing
//! `float32` arrays atomically.

use super::error::{fmt_err, DataError};
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Element type of an `.npy` array (little-endian only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDType {
    Bool,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F16,
    F32,
    F64,
}

impl NpyDType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpyDType::Bool | NpyDType::U8 | NpyDType::I8 => 1,
            NpyDType::U16 | NpyDType::I16 | NpyDType::F16 => 2,
            NpyDType::U32 | NpyDType::I32 | NpyDType::F32 => 4,
            NpyDType::U64 | NpyDType::I64 | NpyDType::F64 => 8,
        }
    }

    /// The numpy `descr` string (`'<f4'`, `'|u1'`, ...).
    pub fn descr(self) -> &'static str {
        match self {
            NpyDType::Bool => "|b1",
            NpyDType::U8 => "|u1",
            NpyDType::I8 => "|i1",
            NpyDType::U16 => "<u2",
            NpyDType::I16 => "<i2",
            NpyDType::U32 => "<u4",
            NpyDType::I32 => "<i4",
            NpyDType::U64 => "<u8",
            NpyDType::I64 => "<i8",
            NpyDType::F16 => "<f2",
            NpyDType::F32 => "<f4",
            NpyDType::F64 => "<f8",
        }
    }

    fn from_descr(d: &str) -> Result<NpyDType, DataError> {
        let mut chars = d.chars();
        let order = chars.next().unwrap_or(' ');
        let code = chars.as_str();
        let dt = match code {
            "b1" => NpyDType::Bool,
            "u1" => NpyDType::U8,
            "i1" => NpyDType::I8,
            "u2" => NpyDType::U16,
            "i2" => NpyDType::I16,
            "u4" => NpyDType::U32,
            "i4" => NpyDType::I32,
            "u8" => NpyDType::U64,
            "i8" => NpyDType::I64,
            "f2" => NpyDType::F16,
            "f4" => NpyDType::F32,
            "f8" => NpyDType::F64,
            _ => return Err(fmt_err(format!("unsupported npy dtype '{d}'"))),
        };
        let little = cfg!(target_endian = "little");
        let ok = match order {
            '<' => true,
            '|' => dt.size() == 1,
            '=' => little,
            '>' => dt.size() == 1,
            _ => false,
        };
        if !ok {
            return Err(fmt_err(format!(
                "npy dtype '{d}' is not little-endian; re-save it with arr.astype('<{code}')"
            )));
        }
        Ok(dt)
    }
}

/// A decoded `.npy` array: raw little-endian element bytes in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub dtype: NpyDType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Integer elements widened to `i64` (bool/u8/i8/u16/i16/u32/i32/i64; u64 if it fits).
    pub fn to_i64(&self) -> Result<Vec<i64>, DataError> {
        let d = &self.data;
        Ok(match self.dtype {
            NpyDType::Bool | NpyDType::U8 => d.iter().map(|&b| b as i64).collect(),
            NpyDType::I8 => d.iter().map(|&b| b as i8 as i64).collect(),
            NpyDType::U16 => d
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
            NpyDType::I16 => d
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
            NpyDType::U32 => d
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            NpyDType::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            NpyDType::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(arr8(c)))
                .collect(),
            NpyDType::U64 => {
                let mut v = Vec::with_capacity(d.len() / 8);
                for c in d.chunks_exact(8) {
                    let x = u64::from_le_bytes(arr8(c));
                    v.push(
                        i64::try_from(x).map_err(|_| {
                            fmt_err(format!("uint64 value {x} does not fit in int64"))
                        })?,
                    );
                }
                v
            }
            other => {
                return Err(fmt_err(format!(
                    "expected an integer array, found {}",
                    other.descr()
                )))
            }
        })
    }

    /// Elements converted to `f32` (any numeric dtype; `f16` via its bit pattern).
    pub fn to_f32(&self) -> Result<Vec<f32>, DataError> {
        let d = &self.data;
        Ok(match self.dtype {
            NpyDType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            NpyDType::F64 => d
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(arr8(c)) as f32)
                .collect(),
            NpyDType::F16 => d
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            _ => self.to_i64()?.into_iter().map(|x| x as f32).collect(),
        })
    }
}

fn arr8(c: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&c[..8]);
    a
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 => {
            if frac == 0.0 {
                sign * f32::INFINITY
            } else {
                f32::NAN
            }
        }
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Parsed header: dtype, shape and the offset of the data.
fn parse_header(bytes: &[u8]) -> Result<(NpyDType, Vec<usize>, usize), DataError> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(fmt_err("not an .npy file (missing \\x93NUMPY magic)"));
    }
    let major = bytes[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(fmt_err("truncated .npy header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12usize,
            )
        }
        v => {
            return Err(fmt_err(format!(
                "unsupported .npy format version {v}.{}",
                bytes[7]
            )))
        }
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            fmt_err(format!(
                "truncated .npy header (declares {hlen} bytes, file has {})",
                bytes.len()
            ))
        })?;
    let header = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| fmt_err("npy header is not valid text"))?;

    let descr = dict_value(header, "descr")
        .ok_or_else(|| fmt_err(format!("npy header has no 'descr': {header}")))?;
    let descr = unquote(descr).ok_or_else(|| {
        fmt_err(format!(
            "unsupported npy descr {descr} (structured dtypes are not supported)"
        ))
    })?;
    let dtype = NpyDType::from_descr(descr)?;

    let fortran = dict_value(header, "fortran_order")
        .ok_or_else(|| fmt_err(format!("npy header has no 'fortran_order': {header}")))?;
    if fortran.starts_with("True") {
        return Err(fmt_err(
            "npy array is stored in Fortran order; re-save it with np.save(path, np.ascontiguousarray(arr))",
        ));
    } else if !fortran.starts_with("False") {
        return Err(fmt_err(format!(
            "bad fortran_order in npy header: {header}"
        )));
    }

    let shape_txt = dict_value(header, "shape")
        .ok_or_else(|| fmt_err(format!("npy header has no 'shape': {header}")))?;
    let shape_txt = shape_txt
        .strip_prefix('(')
        .ok_or_else(|| fmt_err(format!("bad npy shape in {header}")))?;
    let close = shape_txt
        .find(')')
        .ok_or_else(|| fmt_err(format!("bad npy shape in {header}")))?;
    let mut shape = Vec::new();
    for part in shape_txt[..close].split(',') {
        let p = part.trim().trim_end_matches('L');
        if p.is_empty() {
            continue;
        }
        shape.push(
            p.parse::<usize>()
                .map_err(|_| fmt_err(format!("bad npy shape dimension '{p}'")))?,
        );
    }
    Ok((dtype, shape, end))
}

/// The text after `'key':` in a Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    for q in ['\'', '"'] {
        let pat = format!("{q}{key}{q}");
        if let Some(pos) = header.find(&pat) {
            let rest = header[pos + pat.len()..].trim_start();
            let rest = rest.strip_prefix(':')?;
            return Some(rest.trim_start());
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    let q = s.chars().next()?;
    if q != '\'' && q != '"' {
        return None;
    }
    let rest = &s[1..];
    let end = rest.find(q)?;
    Some(&rest[..end])
}

fn data_len(dtype: NpyDType, shape: &[usize]) -> Result<usize, DataError> {
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| fmt_err(format!("npy shape {shape:?} overflows")))
}

/// Parse an in-memory `.npy` file (for fuzzing and small files).
pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray, DataError> {
    let (dtype, shape, off) = parse_header(bytes)?;
    let need = data_len(dtype, &shape)?;
    let have = bytes.len() - off;
    if have != need {
        return Err(fmt_err(format!(
            "npy data is {have} bytes, shape {shape:?} of {} needs {need}{}",
            dtype.descr(),
            if have < need {
                " (file truncated?)"
            } else {
                ""
            }
        )));
    }
    Ok(NpyArray {
        dtype,
        shape,
        data: bytes[off..].to_vec(),
    })
}

/// Read an `.npy` file with one read and no copy of the data beyond moving it to the front
/// of the buffer.
pub fn read_npy(path: &Path) -> Result<NpyArray, DataError> {
    let mut bytes = super::read_file(path)?;
    let (dtype, shape, off) = parse_header(&bytes).map_err(|e| e.in_file(path))?;
    let need = data_len(dtype, &shape).map_err(|e| e.in_file(path))?;
    let have = bytes.len() - off;
    if have != need {
        return Err(DataError::malformed(
            path,
            format!(
                "npy data is {have} bytes, shape {shape:?} of {} needs {need}{}",
                dtype.descr(),
                if have < need {
                    " (file truncated?)"
                } else {
                    ""
                }
            ),
        ));
    }
    bytes.drain(..off);
    Ok(NpyArray {
        dtype,
        shape,
        data: bytes,
    })
}

/// Serialise an array as `.npy` version 1.0 (header padded to a multiple of 64 bytes, as
/// numpy does).
pub fn encode_npy(dtype: NpyDType, shape: &[usize], data: &[u8]) -> Result<Vec<u8>, DataError> {
    let need = data_len(dtype, shape)?;
    if need != data.len() {
        return Err(DataError::Invalid(format!(
            "npy write: shape {shape:?} of {} needs {need} bytes, got {}",
            dtype.descr(),
            data.len()
        )));
    }
    let shape_txt = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        shape_txt
    );
    let unpadded = 10 + header.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    header.extend(std::iter::repeat_n(' ', pad));
    header.push('\n');
    let hlen = u16::try_from(header.len())
        .map_err(|_| DataError::Invalid("npy header too long".into()))?;
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&hlen.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

/// Write raw element bytes as an `.npy` file atomically (temporary file + rename).
pub fn write_npy(
    path: &Path,
    dtype: NpyDType,
    shape: &[usize],
    data: &[u8],
) -> Result<(), DataError> {
    let bytes = encode_npy(dtype, shape, data)?;
    let name = super::file_name(path);
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    Ok(())
}

/// Write a `float32` array as `.npy` atomically.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), DataError> {
    let mut bytes = Vec::with_capacity(data.len() * 4);
    for x in data {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    write_npy(path, NpyDType::F32, shape, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_f32() {
        let dir = std::env::temp_dir().join(format!("rift-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        let v: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        write_npy_f32(&p, &[2, 3, 4], &v).unwrap();
        let a = read_npy(&p).unwrap();
        assert_eq!(a.dtype, NpyDType::F32);
        assert_eq!(a.shape, vec![2, 3, 4]);
        assert_eq!(a.to_f32().unwrap(), v);
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!((bytes.len() - 24 * 4) % 64, 0);
        assert!(write_npy_f32(&p, &[5], &v).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scalar_and_1d() {
        let e = encode_npy(
            NpyDType::I64,
            &[3],
            &[
                1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255,
                255,
            ],
        )
        .unwrap();
        let a = parse_npy(&e).unwrap();
        assert_eq!(a.to_i64().unwrap(), vec![1, 2, -1]);
        let s = encode_npy(NpyDType::U8, &[], &[7]).unwrap();
        assert_eq!(parse_npy(&s).unwrap().data, vec![7]);
    }

    #[test]
    fn rejects_bad_input() {
        let good = encode_npy(NpyDType::U8, &[4, 2], &[0; 8]).unwrap();
        for cut in 0..good.len() {
            assert!(parse_npy(&good[..cut]).is_err(), "prefix {cut}");
        }
        let raw = |header: &str, data: &[u8]| {
            let mut v = MAGIC.to_vec();
            v.extend_from_slice(&[1, 0]);
            v.extend_from_slice(&(header.len() as u16).to_le_bytes());
            v.extend_from_slice(header.as_bytes());
            v.extend_from_slice(data);
            v
        };
        assert_eq!(
            parse_npy(&raw(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }\n",
                &[1, 2]
            ))
            .unwrap()
            .data,
            vec![1, 2]
        );
        let e = parse_npy(&raw(
            "{'descr': '|u1', 'fortran_order': True, 'shape': (2,), }",
            &[1, 2],
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("Fortran"), "{e}");
        let e = parse_npy(&raw(
            "{'descr': '>u4', 'fortran_order': False, 'shape': (2,), }",
            &[0; 8],
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("little-endian"), "{e}");
        let e = parse_npy(&raw("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999), }", &[0; 8])).unwrap_err().to_string();
        assert!(e.contains("overflow") || e.contains("needs"), "{e}");
        let e = parse_npy(&raw(
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
            &[0; 8],
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("structured"), "{e}");
        assert!(parse_npy(&raw(
            "{'descr': '\u{e9}4', 'fortran_order': False, 'shape': (2,), }",
            &[0; 8]
        ))
        .is_err());
        // Garbage after a valid magic must not panic.
        for seed in 0..200u32 {
            let mut b = good.clone();
            let i = (seed as usize * 7919) % b.len();
            b[i] = b[i].wrapping_add(seed as u8 | 1);
            let _ = parse_npy(&b);
        }
    }
}
