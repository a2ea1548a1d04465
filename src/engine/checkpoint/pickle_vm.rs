//! The pickle machine's data: the values it produces, its stack items, arena nodes,
//! allow-listed globals and the machine's state. A leaf: the files that implement the
//! machine (`pickle.rs` runs the opcodes; `pickle_calls.rs`, `pickle_numpy.rs`,
//! `pickle_text.rs` and `pickle_value.rs` add what it calls) import these types from here
//! and never from each other.

use std::collections::HashMap;

use super::error::PickleError;
use super::tensor::{DType, RawTensor};

/// A value unpickled by rift.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// numpy.ndarray rebuilt from `numpy.core.multiarray._reconstruct` + BUILD (or
    /// `numpy._core...`, or `_frombuffer` in protocol 5): dtype like "uint8", "int64",
    /// "float32"; data contiguous little-endian bytes in C order.
    NdArray {
        dtype: String,
        shape: Vec<usize>,
        data: Vec<u8>,
    },
    /// A torch tensor (from _rebuild_tensor_v2 / _rebuild_parameter), already materialised.
    Tensor(RawTensor),
    /// Inert objects: argparse.Namespace, torch.device, numpy scalar, etc. `class` is
    /// "module.Name". A numpy scalar is `numpy.<dtype>` (e.g. "numpy.float64") with the
    /// value as state; a torch.device has its string ("cuda:0") as state; a reference to an
    /// allowed class or function that was never called has state `None`; a set is
    /// "builtins.set" with a list as state; an integer too large for i64 is "builtins.int"
    /// with its decimal or hexadecimal text as state.
    Object {
        class: String,
        state: Box<Value>,
    },
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
    /// Looks a key up in a `Dict`, matching `Str` keys and, for Python 2 pickles, `Bytes`
    /// keys with the same text.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find_map(|(k, v)| match k {
                Value::Str(s) if s == key => Some(v),
                Value::Bytes(b) if b.as_slice() == key.as_bytes() => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }
}

/// How many bytes (and nodes) building the values of a pickle of `len` bytes may cost.
pub(super) fn default_budget(len: usize) -> usize {
    len.saturating_mul(16).saturating_add(64 << 20)
}

/// Where tensor storages come from when the tree is built.
pub(super) trait StorageSource {
    /// The raw bytes of storage `key`.
    fn bytes(&mut self, key: &str) -> Result<&[u8], PickleError>;
}

pub(super) struct NoStorages;
impl StorageSource for NoStorages {
    fn bytes(&mut self, key: &str) -> Result<&[u8], PickleError> {
        Err(PickleError::Storage {
            key: key.into(),
            detail: "is not available in a plain pickle".into(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum PidMode {
    /// Persistent ids are an error.
    Forbidden,
    /// Persistent ids are torch storages: `('storage', type, key, location, numel[, view])`.
    Torch,
}

/// A stack item: small scalars inline, everything else a reference into the arena.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum V {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Ref(usize),
}

/// Allow-listed globals (see `pickle_calls::resolve_global`).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildTensor,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromTypeV2,
    Storage(DType),
    TorchDevice,
    TorchSize,
    TensorType,
    Namespace,
    NpScalar,
    NpDtype,
    NpReconstruct,
    NpNdarray,
    NpFrombuffer,
    CodecsEncode,
    Set,
    FrozenSet,
    Bytearray,
    Builtin(&'static str),
    /// Called, gives an inert object holding its arguments (slice, complex, ...).
    Inert,
}

/// An arena node.
#[derive(Clone, Debug)]
pub(super) enum Node {
    Str(String),
    Bytes(Vec<u8>),
    BigInt(String),
    List(Vec<V>),
    Tuple(Vec<V>),
    Dict(Vec<(V, V)>),
    Set {
        items: Vec<V>,
        frozen: bool,
    },
    Global {
        kind: Global,
        name: String,
    },
    Object {
        class: String,
        args: V,
        state: V,
    },
    NdArray {
        dtype: String,
        shape: Vec<usize>,
        data: Vec<u8>,
    },
    Storage {
        dtype: DType,
        key: String,
        numel: usize,
        view_offset: usize,
        view_numel: Option<usize>,
    },
    LazyTensor {
        storage: V,
        offset: usize,
        shape: Vec<usize>,
        stride: Vec<usize>,
    },
}

pub(super) struct Vm<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    pub(super) arena: Vec<Node>,
    pub(super) stack: Vec<V>,
    pub(super) marks: Vec<usize>,
    pub(super) memo: HashMap<u64, V>,
    pub(super) pid_mode: PidMode,
    /// Work units (copied items, allocated bytes) left.
    pub(super) work_left: usize,
    /// Storages referenced by persistent ids, in first-seen order: (key, dtype, numel).
    pub(super) storages: Vec<(String, DType, usize)>,
    /// Offset of the opcode being executed (for errors).
    pub(super) op_offset: usize,
    pub(super) op_name: &'static str,
}
