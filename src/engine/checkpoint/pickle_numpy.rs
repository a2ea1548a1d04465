//! numpy values in pickles: dtypes, arrays (`_reconstruct` + BUILD, `_frombuffer`) and
//! scalars, rebuilt as inert data.

use super::error::PickleError;
use super::pickle_vm::{Node, Vm, V};

impl<'a> Vm<'a> {
    /// (numpy name, item size, big endian) of a numpy.dtype node.
    pub(super) fn np_dtype(&self, v: V) -> Result<(&'static str, usize, bool), PickleError> {
        let (args, state) = match self.node(v) {
            Some(Node::Object { class, args, state }) if class == "numpy.dtype" => (*args, *state),
            _ => return Err(self.corrupt("expected a numpy.dtype")),
        };
        let code = self
            .tuple_items(args)?
            .first()
            .and_then(|&c| self.str_of(c))
            .unwrap_or("")
            .to_string();
        let mut big = false;
        if let Ok(st) = self.tuple_items(state) {
            if let Some(e) = st.get(1).and_then(|&e| self.str_of(e)) {
                big = e == ">";
            }
        }
        let c = code.trim_start_matches(['<', '|', '=']);
        if code.starts_with('>') {
            big = true;
        }
        let c = c.trim_start_matches('>');
        let (name, size) = match c {
            "f2" | "float16" | "e" => ("float16", 2),
            "f4" | "float32" | "f" => ("float32", 4),
            "f8" | "float64" | "d" => ("float64", 8),
            "i1" | "int8" | "b" => ("int8", 1),
            "i2" | "int16" | "h" => ("int16", 2),
            "i4" | "int32" | "i" => ("int32", 4),
            "i8" | "int64" | "l" | "q" => ("int64", 8),
            "u1" | "uint8" | "B" => ("uint8", 1),
            "u2" | "uint16" | "H" => ("uint16", 2),
            "u4" | "uint32" | "I" => ("uint32", 4),
            "u8" | "uint64" | "L" | "Q" => ("uint64", 8),
            "b1" | "bool" | "?" => ("bool", 1),
            "c8" | "complex64" => ("complex64", 8),
            "c16" | "complex128" => ("complex128", 16),
            _ => {
                return Err(PickleError::Unsupported {
                    detail: format!("numpy dtype `{code}` (only numeric dtypes are read)"),
                })
            }
        };
        Ok((name, size, big))
    }

    /// Checks and normalises array bytes: little endian, C order.
    pub(super) fn np_array_data(
        &mut self,
        dtype: V,
        shape: &[usize],
        fortran: bool,
        mut data: Vec<u8>,
    ) -> Result<(String, Vec<u8>), PickleError> {
        let (name, size, big) = self.np_dtype(dtype)?;
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let want = numel.and_then(|n| n.checked_mul(size));
        if want != Some(data.len()) {
            return Err(self.corrupt(format!(
                "numpy array of shape {shape:?} and dtype {name} needs {} bytes but has {}",
                want.map_or("too many".to_string(), |w| w.to_string()),
                data.len()
            )));
        }
        if big && size > 1 {
            let part = if name.starts_with("complex") {
                size / 2
            } else {
                size
            };
            for c in data.chunks_exact_mut(part) {
                c.reverse();
            }
        }
        if fortran && shape.len() > 1 {
            // Fortran order: strides grow from the first axis.
            let mut stride = vec![0usize; shape.len()];
            let mut acc = 1usize;
            for (k, &d) in shape.iter().enumerate() {
                stride[k] = acc;
                acc = acc.saturating_mul(d);
            }
            data = super::tensor::gather_strided(&data, size, 0, shape, &stride, usize::MAX)
                .map_err(|d| self.corrupt(d))?;
        }
        Ok((name.to_string(), data))
    }

    pub(super) fn np_scalar(&mut self, args: &[V]) -> Result<V, PickleError> {
        if args.len() < 2 {
            return Err(self.corrupt("numpy scalar needs (dtype, bytes)"));
        }
        let (name, size, big) = self.np_dtype(args[0])?;
        let mut b = match self.node(args[1]) {
            Some(Node::Bytes(b)) => b.clone(),
            Some(Node::Str(s)) => s.chars().map(|c| c as u32 as u8).collect(),
            _ => return Err(self.corrupt("numpy scalar data is not bytes")),
        };
        if b.len() != size {
            return Err(self.corrupt(format!("numpy {name} scalar has {} bytes", b.len())));
        }
        if big {
            b.reverse();
        }
        let mut a = [0u8; 8];
        let v = match name {
            "float16" => V::Float(half::f16::from_le_bytes([b[0], b[1]]).to_f64()),
            "float32" => V::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
            "float64" => {
                a.copy_from_slice(&b);
                V::Float(f64::from_le_bytes(a))
            }
            "bool" => V::Bool(b[0] != 0),
            "int8" => V::Int(b[0] as i8 as i64),
            "uint8" => V::Int(b[0] as i64),
            "int16" => V::Int(i16::from_le_bytes([b[0], b[1]]) as i64),
            "uint16" => V::Int(u16::from_le_bytes([b[0], b[1]]) as i64),
            "int32" => V::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64),
            "uint32" => V::Int(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64),
            "int64" => {
                a.copy_from_slice(&b);
                V::Int(i64::from_le_bytes(a))
            }
            "uint64" => {
                a.copy_from_slice(&b);
                let u = u64::from_le_bytes(a);
                match i64::try_from(u) {
                    Ok(i) => V::Int(i),
                    Err(_) => self.alloc(Node::BigInt(u.to_string())),
                }
            }
            _ => self.alloc(Node::Bytes(b)),
        };
        Ok(self.alloc(Node::Object {
            class: format!("numpy.{name}"),
            args: V::None,
            state: v,
        }))
    }
}
