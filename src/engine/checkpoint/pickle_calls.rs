//! The allow-list of globals and what "calling" each of them builds. Nothing here executes
//! code from a pickle: every call builds an inert node in Rust.

use super::error::PickleError;
use super::pickle_vm::{Global, Node, PidMode, Vm, V};
use super::tensor::DType;

/// Resolves `module.name` against the allow-list.
pub(super) fn resolve_global(module: &str, name: &str) -> Option<Global> {
    let np_core = |m: &str| matches!(m, "numpy.core.multiarray" | "numpy._core.multiarray");
    Some(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch._tensor", "_rebuild_from_type_v2") => Global::RebuildFromTypeV2,
        ("torch", "Tensor") | ("torch.nn.parameter", "Parameter") => Global::TensorType,
        ("torch", "device") => Global::TorchDevice,
        ("torch", "Size") => Global::TorchSize,
        ("torch" | "torch.storage", n) if n.ends_with("Storage") => {
            Global::Storage(DType::from_storage_name(n)?)
        }
        ("argparse", "Namespace") => Global::Namespace,
        (m, "scalar") if np_core(m) => Global::NpScalar,
        (m, "_reconstruct") if np_core(m) => Global::NpReconstruct,
        ("numpy", "dtype") => Global::NpDtype,
        ("numpy", "ndarray") => Global::NpNdarray,
        ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => Global::NpFrombuffer,
        ("_codecs", "encode") => Global::CodecsEncode,
        ("builtins" | "__builtin__", "set") => Global::Set,
        ("builtins" | "__builtin__", "frozenset") => Global::FrozenSet,
        ("builtins" | "__builtin__", "bytearray") => Global::Bytearray,
        ("builtins" | "__builtin__", "list") => Global::Builtin("list"),
        ("builtins" | "__builtin__", "tuple") => Global::Builtin("tuple"),
        ("builtins" | "__builtin__", "dict") => Global::Builtin("dict"),
        ("builtins" | "__builtin__", "slice" | "complex" | "range") => Global::Inert,
        _ => return None,
    })
}

/// Dtype names PyTorch pickles as `torch.<name>` constants (e.g. in AMP or optimizer state).
const TORCH_DTYPES: &[&str] = &[
    "float32",
    "float",
    "float64",
    "double",
    "float16",
    "half",
    "bfloat16",
    "int64",
    "long",
    "int32",
    "int",
    "int16",
    "short",
    "int8",
    "uint8",
    "bool",
    "complex64",
    "complex128",
    "strided",
    "contiguous_format",
    "preserve_format",
    "channels_last",
];

impl<'a> Vm<'a> {
    pub(super) fn global(&mut self, module: &str, name: &str) -> Result<V, PickleError> {
        let full = format!("{module}.{name}");
        if module == "torch" && TORCH_DTYPES.contains(&name) {
            let s = self.alloc(Node::Str(full));
            return Ok(self.alloc(Node::Object {
                class: "torch.dtype".into(),
                args: s,
                state: V::None,
            }));
        }
        if module.starts_with("torch")
            && name.ends_with("Storage")
            && resolve_global(module, name).is_none()
        {
            return Err(PickleError::Unsupported {
                detail: format!("storage type `{full}` (rift reads bool, uint8, int8/16/32/64, float16, bfloat16, float32 and float64 tensors)"),
            });
        }
        match resolve_global(module, name) {
            Some(kind) => {
                self.charge(full.len())?;
                Ok(self.alloc(Node::Global { kind, name: full }))
            }
            None => Err(PickleError::ForbiddenGlobal {
                name: full,
                offset: self.op_offset,
            }),
        }
    }

    /// A text argument: a str, or (Python 2) a byte string holding UTF-8.
    pub(super) fn str_of(&self, v: V) -> Option<&str> {
        match self.node(v) {
            Some(Node::Str(s)) => Some(s),
            Some(Node::Bytes(b)) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    fn usizes(&self, v: V, what: &str) -> Result<Vec<usize>, PickleError> {
        let items = self
            .tuple_items(v)
            .map_err(|_| self.corrupt(format!("{what} is not a tuple")))?;
        items.iter().map(|&x| self.usize_of(x, what)).collect()
    }

    /// "Calls" `func` (an allow-listed global) on `args`: builds the node it stands for.
    pub(super) fn call(
        &mut self,
        func: V,
        args: Vec<V>,
        kwargs: Option<V>,
    ) -> Result<V, PickleError> {
        let (kind, name) = match self.node(func) {
            Some(Node::Global { kind, name }) => (kind.clone(), name.clone()),
            _ => {
                return Err(self.corrupt("calls something that is not an allowed class or function"))
            }
        };
        self.charge(args.len())?;
        let arg = |i: usize| args.get(i).copied();
        match kind {
            Global::OrderedDict | Global::Builtin("dict") => {
                let mut pairs = Vec::new();
                if let Some(a) = arg(0) {
                    match self.node(a) {
                        Some(Node::Dict(d)) => pairs = d.clone(),
                        Some(Node::List(l)) | Some(Node::Tuple(l)) => {
                            for &p in l.clone().iter() {
                                let t = self.tuple_items(p)?;
                                if t.len() != 2 {
                                    return Err(self.corrupt("an OrderedDict item is not a pair"));
                                }
                                pairs.push((t[0], t[1]));
                            }
                        }
                        _ => {}
                    }
                }
                self.charge(pairs.len())?;
                Ok(self.alloc(Node::Dict(pairs)))
            }
            Global::Builtin(b) => {
                let items = match arg(0) {
                    Some(a) => match self.node(a) {
                        Some(Node::List(l))
                        | Some(Node::Tuple(l))
                        | Some(Node::Set { items: l, .. }) => l.clone(),
                        _ => Vec::new(),
                    },
                    None => Vec::new(),
                };
                self.charge(items.len())?;
                Ok(self.alloc(if b == "tuple" {
                    Node::Tuple(items)
                } else {
                    Node::List(items)
                }))
            }
            Global::Set | Global::FrozenSet => {
                let items = match arg(0).and_then(|a| self.node(a)) {
                    Some(Node::List(l))
                    | Some(Node::Tuple(l))
                    | Some(Node::Set { items: l, .. }) => l.clone(),
                    _ => Vec::new(),
                };
                self.charge(items.len())?;
                Ok(self.alloc(Node::Set {
                    items,
                    frozen: kind == Global::FrozenSet,
                }))
            }
            Global::RebuildTensorV2 | Global::RebuildTensor => {
                if args.len() < 4 {
                    return Err(
                        self.corrupt("_rebuild_tensor needs (storage, offset, size, stride, ...)")
                    );
                }
                if !matches!(self.node(args[0]), Some(Node::Storage { .. })) {
                    return Err(self.corrupt("_rebuild_tensor's first argument is not a storage"));
                }
                let offset = self.usize_of(args[1], "storage offset")?;
                let shape = self.usizes(args[2], "tensor size")?;
                let stride = self.usizes(args[3], "tensor stride")?;
                if shape.len() != stride.len() {
                    return Err(self.corrupt("tensor size and stride have different lengths"));
                }
                self.charge(shape.len() * 2)?;
                Ok(self.alloc(Node::LazyTensor {
                    storage: args[0],
                    offset,
                    shape,
                    stride,
                }))
            }
            Global::RebuildParameter | Global::RebuildParameterWithState => {
                let t = arg(0).ok_or_else(|| self.corrupt("_rebuild_parameter without data"))?;
                Ok(t)
            }
            Global::RebuildFromTypeV2 => {
                // (func, new_type, args, state): rebuild with func(*args), ignore the type.
                if args.len() < 3 {
                    return Err(
                        self.corrupt("_rebuild_from_type_v2 needs (func, type, args, state)")
                    );
                }
                let inner = self.tuple_items(args[2])?;
                let inner_kind = match self.node(args[0]) {
                    Some(Node::Global { kind, .. }) => kind.clone(),
                    _ => {
                        return Err(self.corrupt("_rebuild_from_type_v2's function is not allowed"))
                    }
                };
                if matches!(inner_kind, Global::RebuildFromTypeV2) {
                    return Err(self.corrupt("nested _rebuild_from_type_v2"));
                }
                self.call(args[0], inner, None)
            }
            Global::TorchSize => {
                let items = match arg(0) {
                    Some(a) => self.tuple_items(a)?,
                    None => Vec::new(),
                };
                self.charge(items.len())?;
                Ok(self.alloc(Node::Tuple(items)))
            }
            Global::TorchDevice => {
                let mut s = self
                    .str_of(arg(0).unwrap_or(V::None))
                    .unwrap_or("?")
                    .to_string();
                if let Some(V::Int(i)) = arg(1) {
                    s = format!("{s}:{i}");
                }
                self.charge(s.len())?;
                let st = self.alloc(Node::Str(s));
                Ok(self.alloc(Node::Object {
                    class: "torch.device".into(),
                    args: V::None,
                    state: st,
                }))
            }
            Global::CodecsEncode | Global::Bytearray => {
                let bytes = match arg(0) {
                    None => Vec::new(),
                    Some(a) => match self.node(a) {
                        Some(Node::Bytes(b)) => b.clone(),
                        Some(Node::Str(s)) => {
                            let enc = arg(1)
                                .and_then(|e| self.str_of(e))
                                .unwrap_or("utf-8")
                                .to_ascii_lowercase();
                            if matches!(enc.as_str(), "latin1" | "latin-1" | "iso-8859-1" | "l1") {
                                let mut out = Vec::with_capacity(s.len());
                                for c in s.chars() {
                                    let c = c as u32;
                                    if c > 0xff {
                                        return Err(self.corrupt(
                                            "a latin-1 string holds a character above U+00FF",
                                        ));
                                    }
                                    out.push(c as u8);
                                }
                                out
                            } else {
                                s.as_bytes().to_vec()
                            }
                        }
                        Some(Node::List(l)) => {
                            let mut out = Vec::new();
                            for &x in l {
                                match x {
                                    V::Int(i) if (0..256).contains(&i) => out.push(i as u8),
                                    _ => {
                                        return Err(
                                            self.corrupt("bytearray from a list of non-bytes")
                                        )
                                    }
                                }
                            }
                            out
                        }
                        _ => {
                            return Err(
                                self.corrupt(format!("{name} of something that is not a string"))
                            )
                        }
                    },
                };
                self.charge(bytes.len())?;
                Ok(self.alloc(Node::Bytes(bytes)))
            }
            Global::NpScalar => self.np_scalar(&args),
            Global::NpDtype => {
                let a = self.alloc(Node::Tuple(args));
                Ok(self.alloc(Node::Object {
                    class: "numpy.dtype".into(),
                    args: a,
                    state: V::None,
                }))
            }
            Global::NpReconstruct => Ok(self.alloc(Node::NdArray {
                dtype: String::new(),
                shape: vec![0],
                data: Vec::new(),
            })),
            Global::NpFrombuffer => {
                if args.len() < 3 {
                    return Err(self.corrupt("_frombuffer needs (buffer, dtype, shape, order)"));
                }
                let data = match self.node(args[0]) {
                    Some(Node::Bytes(b)) => b.clone(),
                    _ => return Err(self.corrupt("_frombuffer's buffer is not bytes")),
                };
                let shape = self.usizes(args[2], "array shape")?;
                let fortran = arg(3).and_then(|o| self.str_of(o)) == Some("F");
                self.charge(data.len())?;
                let (dtype, data) = self.np_array_data(args[1], &shape, fortran, data)?;
                Ok(self.alloc(Node::NdArray { dtype, shape, data }))
            }
            Global::Namespace
            | Global::NpNdarray
            | Global::TensorType
            | Global::Inert
            | Global::Storage(_) => {
                let a = self.alloc(Node::Tuple(args));
                let state = kwargs.unwrap_or(V::None);
                let state = match self.node(state) {
                    Some(Node::Dict(d)) if d.is_empty() => V::None,
                    _ => state,
                };
                Ok(self.alloc(Node::Object {
                    class: name,
                    args: a,
                    state,
                }))
            }
        }
    }

    /// BUILD: sets the state of `obj`.
    pub(super) fn build(&mut self, obj: V, state: V) -> Result<(), PickleError> {
        let V::Ref(i) = obj else { return Ok(()) };
        let is_ndarray = matches!(self.arena.get(i), Some(Node::NdArray { .. }));
        if is_ndarray {
            let st = self.tuple_items(state)?;
            if st.len() != 5 {
                return Err(
                    self.corrupt("numpy array state is not (version, shape, dtype, fortran, data)")
                );
            }
            let shape = self.usizes(st[1], "array shape")?;
            let fortran = matches!(st[3], V::Bool(true) | V::Int(1));
            let raw = match self.node(st[4]) {
                Some(Node::Bytes(b)) => b.clone(),
                Some(Node::Str(s)) => s.chars().map(|c| c as u32 as u8).collect(),
                _ => {
                    return Err(PickleError::Unsupported {
                        detail: "a numpy array of Python objects (only numeric arrays are read)"
                            .into(),
                    })
                }
            };
            self.charge(raw.len())?;
            let (dtype, data) = self.np_array_data(st[2], &shape, fortran, raw)?;
            if let Some(n) = self.arena.get_mut(i) {
                *n = Node::NdArray { dtype, shape, data };
            }
            return Ok(());
        }
        if let Some(Node::Object { state: s, .. }) = self.arena.get_mut(i) {
            *s = state;
        }
        // Dicts (OrderedDict `_metadata`), tensors (parameter attributes), lists: ignored.
        Ok(())
    }

    pub(super) fn tuple_items(&self, v: V) -> Result<Vec<V>, PickleError> {
        match self.node(v) {
            Some(Node::Tuple(items)) | Some(Node::List(items)) => Ok(items.clone()),
            _ => Err(self.corrupt("expected a tuple of arguments")),
        }
    }

    pub(super) fn extend_list(&mut self, target: V, items: Vec<V>) -> Result<(), PickleError> {
        self.charge(items.len())?;
        match target {
            V::Ref(i) => match self.arena.get_mut(i) {
                Some(Node::List(l)) => {
                    l.extend(items);
                    Ok(())
                }
                Some(Node::Set { items: s, .. }) => {
                    s.extend(items);
                    Ok(())
                }
                _ => Err(self.corrupt("APPEND target is not a list")),
            },
            _ => Err(self.corrupt("APPEND target is not a list")),
        }
    }

    pub(super) fn set_items(&mut self, target: V, items: Vec<V>) -> Result<(), PickleError> {
        self.charge(items.len())?;
        let pairs = items.chunks_exact(2).map(|c| (c[0], c[1]));
        match target {
            V::Ref(i) => match self.arena.get_mut(i) {
                Some(Node::Dict(d)) => {
                    d.extend(pairs);
                    Ok(())
                }
                _ => Err(self.corrupt("SETITEM target is not a dict")),
            },
            _ => Err(self.corrupt("SETITEM target is not a dict")),
        }
    }

    pub(super) fn persistent_load(&mut self, pid: V) -> Result<V, PickleError> {
        if self.pid_mode == PidMode::Forbidden {
            return Err(self.corrupt("a persistent id in a plain pickle"));
        }
        let items = match self.node(pid) {
            Some(Node::Tuple(t)) => t.clone(),
            _ => return Err(self.corrupt("the persistent id is not a tuple")),
        };
        let is_storage = matches!(items.first().and_then(|&v| self.node(v)), Some(Node::Str(s)) if s == "storage");
        if !is_storage || items.len() < 5 {
            return Err(
                self.corrupt("the persistent id is not ('storage', type, key, location, numel)")
            );
        }
        let dtype = match self.node(items[1]) {
            Some(Node::Global {
                kind: Global::Storage(d),
                ..
            }) => *d,
            _ => {
                return Err(
                    self.corrupt("the persistent id's storage type is not a torch storage class")
                )
            }
        };
        let key = match self.node(items[2]) {
            Some(Node::Str(s)) => s.clone(),
            _ => match items[2] {
                V::Int(i) => i.to_string(),
                _ => return Err(self.corrupt("the storage key is not a string")),
            },
        };
        let numel = self.usize_of(items[4], "storage size")?;
        let (mut view_offset, mut view_numel) = (0, None);
        if let Some(&view) = items.get(5) {
            if view != V::None {
                let t = self.tuple_items(view)?;
                if t.len() != 3 {
                    return Err(self.corrupt("the storage view is not (key, offset, size)"));
                }
                view_offset = self.usize_of(t[1], "view offset")?;
                view_numel = Some(self.usize_of(t[2], "view size")?);
            }
        }
        match self.storages.iter().find(|(k, _, _)| *k == key) {
            Some(_) => {}
            None => self.storages.push((key.clone(), dtype, numel)),
        }
        Ok(self.alloc(Node::Storage {
            dtype,
            key,
            numel,
            view_offset,
            view_numel,
        }))
    }

    pub(super) fn usize_of(&self, v: V, what: &str) -> Result<usize, PickleError> {
        match v {
            V::Int(i) if i >= 0 => {
                usize::try_from(i).map_err(|_| self.corrupt(format!("{what} {i} is too large")))
            }
            V::Bool(b) => Ok(b as usize),
            _ => Err(self.corrupt(format!("{what} is not a non-negative integer"))),
        }
    }
}
