//! Turning the pickle VM's arena into a tree of [`Value`]s: depth-limited, within a size
//! budget, materialising tensors from their storages.

use std::collections::HashMap;

use super::error::PickleError;
use super::pickle_vm::{Node, StorageSource, Value, Vm, V};
use super::tensor::RawTensor;

const MAX_DEPTH: usize = 96;

impl<'a> Vm<'a> {
    /// Converts the arena value `v` into a [`Value`] tree, materialising tensors.
    pub(super) fn to_value(
        &self,
        v: V,
        src: &mut dyn StorageSource,
        budget: &mut usize,
    ) -> Result<Value, PickleError> {
        self.convert(v, src, budget, 0)
    }

    fn convert(
        &self,
        v: V,
        src: &mut dyn StorageSource,
        budget: &mut usize,
        depth: usize,
    ) -> Result<Value, PickleError> {
        if depth > MAX_DEPTH {
            return Err(PickleError::Unsupported {
                detail: format!("values nested more than {MAX_DEPTH} deep (or a cycle)"),
            });
        }
        let spend = |budget: &mut usize, n: usize| -> Result<(), PickleError> {
            if n > *budget {
                return Err(PickleError::TooLarge {
                    detail: "the values it describes outgrow the file".into(),
                });
            }
            *budget -= n;
            Ok(())
        };
        spend(budget, std::mem::size_of::<Value>())?;
        let idx = match v {
            V::None => return Ok(Value::None),
            V::Bool(b) => return Ok(Value::Bool(b)),
            V::Int(i) => return Ok(Value::Int(i)),
            V::Float(f) => return Ok(Value::Float(f)),
            V::Ref(i) => i,
        };
        let node = self
            .arena
            .get(idx)
            .ok_or_else(|| PickleError::Unsupported {
                detail: "dangling reference".into(),
            })?;
        let mut seq = |items: &[V], budget: &mut usize| -> Result<Vec<Value>, PickleError> {
            spend(
                budget,
                items.len().saturating_mul(std::mem::size_of::<Value>()),
            )?;
            items
                .iter()
                .map(|&x| self.convert(x, src, budget, depth + 1))
                .collect()
        };
        Ok(match node {
            Node::Str(s) => {
                spend(budget, s.len())?;
                Value::Str(s.clone())
            }
            Node::Bytes(b) => {
                spend(budget, b.len())?;
                Value::Bytes(b.clone())
            }
            Node::BigInt(s) => Value::Object {
                class: "builtins.int".into(),
                state: Box::new(Value::Str(s.clone())),
            },
            Node::List(items) => Value::List(seq(items, budget)?),
            Node::Tuple(items) => Value::Tuple(seq(items, budget)?),
            Node::Set { items, frozen } => Value::Object {
                class: if *frozen {
                    "builtins.frozenset"
                } else {
                    "builtins.set"
                }
                .into(),
                state: Box::new(Value::List(seq(items, budget)?)),
            },
            Node::Dict(pairs) => {
                spend(
                    budget,
                    pairs.len().saturating_mul(2 * std::mem::size_of::<Value>()),
                )?;
                let mut out: Vec<(Value, Value)> = Vec::with_capacity(pairs.len());
                // Python dict semantics: a repeated key replaces the value in place.
                let mut index: HashMap<DictKey, usize> = HashMap::new();
                for &(k, val) in pairs {
                    let k = self.convert(k, src, budget, depth + 1)?;
                    let val = self.convert(val, src, budget, depth + 1)?;
                    let dk = match &k {
                        Value::Str(s) => Some(DictKey::S(s.clone())),
                        Value::Bytes(b) => Some(DictKey::B(b.clone())),
                        Value::Int(i) => Some(DictKey::I(*i)),
                        _ => None,
                    };
                    match dk {
                        Some(dk) => match index.get(&dk) {
                            Some(&i) => out[i].1 = val,
                            None => {
                                index.insert(dk, out.len());
                                out.push((k, val));
                            }
                        },
                        None => out.push((k, val)),
                    }
                }
                Value::Dict(out)
            }
            Node::Global { name, .. } => Value::Object {
                class: name.clone(),
                state: Box::new(Value::None),
            },
            Node::Object { class, args, state } => {
                let s = if *state != V::None { *state } else { *args };
                Value::Object {
                    class: class.clone(),
                    state: Box::new(self.convert(s, src, budget, depth + 1)?),
                }
            }
            Node::NdArray { dtype, shape, data } => {
                spend(budget, data.len())?;
                Value::NdArray {
                    dtype: dtype.clone(),
                    shape: shape.clone(),
                    data: data.clone(),
                }
            }
            Node::Storage { dtype, key, .. } => Value::Object {
                class: format!("torch.{}", dtype.storage_name()),
                state: Box::new(Value::Str(key.clone())),
            },
            Node::LazyTensor {
                storage,
                offset,
                shape,
                stride,
            } => {
                let Some(Node::Storage {
                    dtype,
                    key,
                    numel,
                    view_offset,
                    view_numel,
                }) = self.node(*storage)
                else {
                    return Err(PickleError::Unsupported {
                        detail: "a tensor without a storage".into(),
                    });
                };
                let elem = dtype.size();
                let bytes = src.bytes(key)?;
                let need = numel
                    .checked_mul(elem)
                    .ok_or_else(|| PickleError::Storage {
                        key: key.clone(),
                        detail: format!("declares {numel} elements, which overflows"),
                    })?;
                if bytes.len() < need {
                    return Err(PickleError::Storage {
                        key: key.clone(),
                        detail: format!("is too short: it should hold {numel} {dtype} elements ({need} bytes) but has {} bytes", bytes.len()),
                    });
                }
                let mut st = &bytes[..need];
                if let Some(vn) = view_numel {
                    let s = view_offset.checked_mul(elem);
                    let e = view_offset
                        .checked_add(*vn)
                        .and_then(|x| x.checked_mul(elem));
                    match (s, e) {
                        (Some(s), Some(e)) if e <= st.len() => st = &st[s..e],
                        _ => {
                            return Err(PickleError::Storage {
                                key: key.clone(),
                                detail: "has a view that reaches past its end".into(),
                            })
                        }
                    }
                }
                let data = super::tensor::gather_strided(st, elem, *offset, shape, stride, *budget)
                    .map_err(|d| PickleError::Storage {
                        key: key.clone(),
                        detail: format!("(tensor view) {d}"),
                    })?;
                spend(budget, data.len())?;
                Value::Tensor(RawTensor {
                    dtype: *dtype,
                    shape: shape.clone(),
                    data,
                })
            }
        })
    }
}

#[derive(Hash, PartialEq, Eq)]
enum DictKey {
    S(String),
    B(Vec<u8>),
    I(i64),
}
