//! Unit tests on hand-built byte strings: error paths, Python 2 pickles, hostile inputs.

use super::pickle_vm::{PidMode, StorageSource, Vm};
use super::*;
use std::path::Path;

fn p() -> &'static Path {
    Path::new("/x/a.pth")
}

/// A Python 2 cPickle (protocol 2) CIFAR batch: str keys and data as SHORT_BINSTRING /
/// BINSTRING, a uint8 array from `_reconstruct` + BUILD with a py2 dtype state.
fn py2_cifar_batch() -> Vec<u8> {
    let mut b = vec![0x80, 2, b'}', b'q', 0, b'('];
    b.extend_from_slice(b"U\x04dataq\x01");
    b.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03K\x00\x85q\x04U\x01bq\x05\x87q\x06Rq\x07");
    b.extend_from_slice(
        b"(K\x01K\x02K\x03\x86q\x08cnumpy\ndtype\nq\x09U\x02u1K\x00K\x01\x87Rq\x0a",
    );
    b.extend_from_slice(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
    b.extend_from_slice(b"\x89U\x06\x00\x01\x02\xfd\xfe\xfftb");
    b.extend_from_slice(b"U\x06labels]q\x0b(K\x01K\x02e");
    b.extend_from_slice(b"U\x0bbatch_labelT\x0e\x00\x00\x00training batch");
    b.extend_from_slice(b"u.");
    b
}

#[test]
fn python2_cifar_batch() {
    let v = parse_plain_pickle(&py2_cifar_batch()).unwrap();
    assert_eq!(
        v.get("data"),
        Some(&Value::NdArray {
            dtype: "uint8".into(),
            shape: vec![2, 3],
            data: vec![0, 1, 2, 253, 254, 255]
        })
    );
    assert_eq!(
        v.get("labels"),
        Some(&Value::List(vec![Value::Int(1), Value::Int(2)]))
    );
    assert_eq!(
        v.get("batch_label"),
        Some(&Value::Bytes(b"training batch".to_vec()))
    );
    let Value::Dict(items) = &v else { panic!() };
    assert_eq!(items[0].0, Value::Bytes(b"data".to_vec()));
}

#[test]
fn python3_codecs_bytes_and_protocol0() {
    // _codecs.encode('\u00ff\u0001', 'latin1') as Python 3 writes bytes in protocol 2.
    let b = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00\xc3\xbf\x01X\x06\x00\x00\x00latin1\x86R.";
    assert_eq!(parse_plain_pickle(b).unwrap(), Value::Bytes(vec![0xff, 1]));
    // Protocol 0: (dp0\nS'a'\np1\nI12\nsVh\\u00e9\nF1.5\ns.
    let b = b"(dp0\nS'a'\np1\nI12\nsVh\\u00e9\np2\nF1.5\nsg1\nL7L\ns.";
    let v = parse_plain_pickle(b).unwrap();
    assert_eq!(v.get("a"), Some(&Value::Int(7)), "{v:?}");
    assert_eq!(v.get("hé"), Some(&Value::Float(1.5)));
    // Protocol 4 with FRAME, SHORT_BINUNICODE, MEMOIZE, EMPTY_SET/ADDITEMS and a big LONG1.
    let mut b = vec![
        0x80, 4, 0x95, 20, 0, 0, 0, 0, 0, 0, 0, 0x8c, 1, b'k', 0x94, 0x8f, 0x94, b'(', b'K', 3,
        0x90,
    ];
    b.extend_from_slice(&[0x86, 0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x86, b'.']);
    let v = parse_plain_pickle(&b).unwrap();
    let Value::Tuple(t) = v else { panic!("{v:?}") };
    assert_eq!(
        t[1],
        Value::Object {
            class: "builtins.int".into(),
            state: Box::new(Value::Str("0x010000000000000000".into()))
        }
    );
}

#[test]
fn forbidden_globals_are_named() {
    let b = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.";
    let e = parse_plain_pickle(b).unwrap_err();
    assert!(
        matches!(&e, PickleError::ForbiddenGlobal { name, offset: 2 } if name == "posix.system"),
        "{e}"
    );
    let b = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.";
    let e = parse_plain_pickle(b).unwrap_err();
    assert!(
        matches!(&e, PickleError::ForbiddenGlobal { name, .. } if name == "builtins.eval"),
        "{e}"
    );
    let ce = CheckpointError::from_pickle(p(), "data.pkl", e);
    assert_eq!(
        ce.to_string(),
        "checkpoint /x/a.pth references the global `builtins.eval`, which a model checkpoint has no reason to use; refusing to load it (rift never executes code from a pickle)"
    );
    // A forbidden callable cannot be reached through an allowed one either.
    let b = b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\ncsubprocess\ncall\n.";
    assert!(matches!(
        parse_plain_pickle(b),
        Err(PickleError::ForbiddenGlobal { .. })
    ));
}

#[test]
fn corrupt_pickles_give_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"\x80\x02X\xff\x00\x00\x00ab", "BINUNICODE at byte 2"),
        (b"\x80\x02N", "no STOP"),
        (b"\x80\x02\xff.", "0xff at byte 2"),
        (b"\x80\x02.", "stack is empty"),
        (b"\x80\x02(N0N0N0.", "stack is empty"),
        (b"\x80\x02h\x05.", "memo entry 5"),
        (b"\x80\x02Na.", "stack is empty"),
        (b"\x80\x02]K\x01s.", "stack is empty"),
        (b"\x80\x02NK\x01a.", "not a list"),
        (b"\x80\x02K\x01K\x02R.", "expected a tuple"),
        (b"\x80\x02K\x01)R.", "not an allowed class"),
        (b"\x80\x02\x8b\xff\xff\xff\xff.", "LONG4"),
        (
            b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff.",
            "BINUNICODE8",
        ),
        (b"\x80\x09.", "protocol 9"),
        (b"\x80\x02Q.", "stack is empty"),
        (b"\x80\x02NQ.", "persistent id"),
        (b"", "no STOP"),
    ];
    for (bytes, want) in cases {
        let e = parse_plain_pickle(bytes).unwrap_err().to_string();
        assert!(e.contains(want), "{bytes:?}: {e}");
    }
}

#[test]
fn hostile_sizes_are_refused_without_allocating() {
    // Billion laughs through the memo: each level is a tuple of ten references to the last.
    let mut b = vec![0x80, 2, b']', b'q', 0];
    for level in 0..40u8 {
        b.push(b'(');
        for _ in 0..10 {
            b.extend_from_slice(&[b'h', level]);
        }
        b.extend_from_slice(&[b't', b'q', level + 1]);
    }
    b.push(b'.');
    assert!(matches!(
        parse_plain_pickle(&b),
        Err(PickleError::TooLarge { .. })
    ));
    // Nesting a million lists deep is refused, not a stack overflow.
    let mut b = vec![0x80, 2];
    b.extend(std::iter::repeat_n(b']', 1_000_000));
    b.extend(std::iter::repeat_n(b'a', 999_999));
    b.push(b'.');
    assert!(parse_plain_pickle(&b).is_err());
    // A numpy array whose shape does not match its bytes.
    let mut b = py2_cifar_batch();
    let i = b.windows(4).position(|w| w == b"K\x02K\x03").unwrap();
    b[i + 1] = 0xff;
    let e = parse_plain_pickle(&b).unwrap_err().to_string();
    assert!(e.contains("needs 765 bytes but has 6"), "{e}");
}

struct OneStorage(Vec<u8>);
impl StorageSource for OneStorage {
    fn bytes(&mut self, _key: &str) -> Result<&[u8], PickleError> {
        Ok(&self.0)
    }
}

/// `_rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel), offset, size, stride, False, OrderedDict())`.
fn tensor_pickle(numel: u32, offset: u8, size: &[u32], stride: &[u32]) -> Vec<u8> {
    let mut b = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ".to_vec();
    b.extend_from_slice(&numel.to_le_bytes());
    b.extend_from_slice(&[b't', b'Q', b'K', offset, b'(']);
    for s in size {
        b.push(b'J');
        b.extend_from_slice(&s.to_le_bytes());
    }
    b.extend_from_slice(b"t(");
    for s in stride {
        b.push(b'J');
        b.extend_from_slice(&s.to_le_bytes());
    }
    b.extend_from_slice(b"t\x89ccollections\nOrderedDict\n)RtR.");
    b
}

fn run_tensor(b: &[u8], storage: Vec<u8>) -> Result<Value, PickleError> {
    let mut vm = Vm::new(b, 0, PidMode::Torch);
    let root = vm.run()?;
    let mut budget = super::pickle_vm::default_budget(b.len() + storage.len());
    vm.to_value(root, &mut OneStorage(storage), &mut budget)
}

#[test]
fn tensor_views_and_hostile_numel() {
    let st: Vec<u8> = (0..6u32).flat_map(|x| (x as f32).to_le_bytes()).collect();
    // Transposed 2x3 view: shape (3, 2), stride (1, 3).
    let v = run_tensor(&tensor_pickle(6, 0, &[3, 2], &[1, 3]), st.clone()).unwrap();
    let Value::Tensor(t) = v else { panic!() };
    assert_eq!(t.to_f32_vec(), vec![0., 3., 1., 4., 2., 5.]);
    // Offset 4, 0-dim.
    let Value::Tensor(t) = run_tensor(&tensor_pickle(6, 4, &[], &[]), st.clone()).unwrap() else {
        panic!()
    };
    assert_eq!((t.shape.len(), t.to_f32_vec()), (0, vec![4.]));
    // Past the end of the storage.
    let e = run_tensor(&tensor_pickle(6, 5, &[2], &[1]), st.clone()).unwrap_err();
    assert!(matches!(e, PickleError::Storage { .. }), "{e}");
    // Storage shorter than it claims.
    let e = run_tensor(&tensor_pickle(7, 0, &[2], &[1]), st.clone()).unwrap_err();
    assert!(e.to_string().contains("too short"), "{e}");
    // A stride-0 view of 2^62 elements: refused, not allocated.
    let e = run_tensor(
        &tensor_pickle(1, 0, &[1 << 30, 1 << 30], &[0, 0]),
        st.clone(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("more than the file"), "{e}");
    // The legacy-format 6-tuple persistent id with a view.
    let b = tensor_pickle(6, 0, &[2], &[1]);
    let i = b.windows(2).position(|w| w == b"tQ").unwrap();
    let mut b2 = b[..i].to_vec();
    b2.extend_from_slice(b"(X\x01\x00\x00\x000K\x03K\x03tt");
    b2.extend_from_slice(&b[i + 1..]);
    let Value::Tensor(t) = run_tensor(&b2, st).unwrap() else {
        panic!()
    };
    assert_eq!(t.to_f32_vec(), vec![3., 4.]);
}

#[test]
fn pth_writer_round_trips_through_the_reader() {
    let dir = std::env::temp_dir().join(format!("rift-ck-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big: Vec<f32> = (0..70_000).map(|i| i as f32 * 0.5).collect();
    let tensors = vec![
        (
            "module.a.weight".to_string(),
            RawTensor::from_f32(vec![2, 3], &[1., 2., 3., 4., 5., 6.]),
        ),
        (
            "module.b".to_string(),
            RawTensor {
                dtype: DType::I64,
                shape: vec![],
                data: 7i64.to_le_bytes().to_vec(),
            },
        ),
        (
            "module.c".to_string(),
            RawTensor::from_f32(vec![70_000], &big),
        ),
        (
            "module.d".to_string(),
            RawTensor {
                dtype: DType::BF16,
                shape: vec![1, 1, 1, 2],
                data: vec![0x80, 0x3f, 0, 0xc0],
            },
        ),
        (
            "module.e".to_string(),
            RawTensor {
                dtype: DType::Bool,
                shape: vec![0],
                data: vec![],
            },
        ),
    ];
    for name in ["w.pth", "w.safetensors"] {
        let path = dir.join(name);
        save_by_extension(&path, &tensors).unwrap();
        let ck = load_checkpoint(&path).unwrap();
        assert_eq!(ck.stripped_prefix.as_deref(), Some("module."));
        assert_eq!(ck.tensors.len(), 5);
        for ((n0, t0), (n1, t1)) in tensors.iter().zip(&ck.tensors) {
            assert_eq!(&n0["module.".len()..], n1);
            assert_eq!(t0, t1);
        }
    }
    let bad = vec![(
        "x".to_string(),
        RawTensor {
            dtype: DType::F32,
            shape: vec![2],
            data: vec![0; 7],
        },
    )];
    assert!(matches!(
        save_pth(&dir.join("bad.pth"), &bad),
        Err(CheckpointError::InvalidTensor { .. })
    ));
    assert!(!dir.join("bad.pth").exists());
    let dup = vec![tensors[0].clone(), tensors[0].clone()];
    assert!(save_safetensors(&dir.join("d.safetensors"), &dup, &[]).is_err());
    assert!(matches!(
        save_by_extension(&dir.join("x.txt"), &tensors),
        Err(CheckpointError::UnknownExtension { .. })
    ));
    let leftovers = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp-")
        })
        .count();
    assert_eq!(leftovers, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn safetensors_errors() {
    let good = safetensors::safetensors_bytes(
        p(),
        &[("a".into(), RawTensor::from_f32(vec![2], &[1., 2.]))],
        &[("k".into(), "v".into())],
    )
    .unwrap();
    let ck = load_checkpoint_from_bytes(&good, p()).unwrap();
    assert_eq!(ck.format, CheckpointFormat::Safetensors);
    assert_eq!(ck.metadata, vec![("k".to_string(), "v".to_string())]);
    let mut long = good.clone();
    long[0..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        load_checkpoint_from_bytes(&long, p()),
        Err(CheckpointError::UnknownFormat { .. })
    ));
    assert!(safetensors::read_safetensors(&long, p()).is_err());
    let hdr = |h: &str| {
        let mut b = (h.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&[0; 8]);
        b
    };
    for h in [
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
        "{\"a\":[1,2]",
        "[1,2,3]   ",
    ] {
        let e = load_checkpoint_from_bytes(&hdr(h), p());
        assert!(
            matches!(
                e,
                Err(CheckpointError::BadSafetensors { .. })
                    | Err(CheckpointError::UnknownFormat { .. })
            ),
            "{h}: {e:?}"
        );
    }
}

#[test]
fn format_detection_and_state_dict_search() {
    for bytes in [
        &b""[..],
        b"PK\x03\x04garbage",
        b"\x80\x02K\x01.",
        b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.",
    ] {
        assert!(load_checkpoint_from_bytes(bytes, p()).is_err());
    }
    let t = || Value::Tensor(RawTensor::from_f32(vec![1], &[1.]));
    let s = |x: &str| Value::Str(x.into());
    // `model.` stripped only when every key has it; RobustBench mu/sigma stay.
    let root = Value::Dict(vec![
        (s("epoch"), Value::Int(3)),
        (
            s("model"),
            Value::Dict(vec![(s("model.mu"), t()), (s("model.conv"), t())]),
        ),
    ]);
    let f = state_dict::find_state_dict(root).ok().unwrap();
    assert_eq!(f.container_key.as_deref(), Some("model"));
    assert_eq!(f.stripped_prefix.as_deref(), Some("model."));
    assert_eq!(
        f.tensors.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        vec!["mu", "conv"]
    );
    assert_eq!(f.metadata, vec![("epoch".to_string(), "3".to_string())]);
    let root = Value::Dict(vec![(s("module.mu"), t()), (s("conv"), t())]);
    let f = state_dict::find_state_dict(root).ok().unwrap();
    assert_eq!(f.stripped_prefix, None);
    // robustbench's `normalize_model` (under DataParallel): `model.` leaves the network's
    // keys, the wrapper's statistics keep theirs.
    let root = Value::Dict(vec![
        (s("module.normalize.mean"), t()),
        (s("module.normalize.std"), t()),
        (s("module.model.conv1.weight"), t()),
    ]);
    let f = state_dict::find_state_dict(root).ok().unwrap();
    assert_eq!(f.stripped_prefix.as_deref(), Some("module.model."));
    assert_eq!(
        f.tensors.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        vec!["normalize.mean", "normalize.std", "conv1.weight"]
    );
    // One statistic alone is not the wrapper: nothing is stripped.
    let root = Value::Dict(vec![(s("normalize.mean"), t()), (s("model.conv"), t())]);
    let f = state_dict::find_state_dict(root).ok().unwrap();
    assert_eq!(f.stripped_prefix, None);
    let e = state_dict::find_state_dict(Value::Dict(vec![
        (s("epoch"), Value::Int(3)),
        (s("net"), Value::List(vec![])),
    ]));
    let keys = state_dict::describe_keys(&e.err().unwrap());
    assert_eq!(keys, "epoch (int), net (list)");
    assert_eq!(
        summarize(&Value::Object {
            class: "numpy.float64".into(),
            state: Box::new(Value::Float(53.6))
        }),
        "53.6 (numpy float64)"
    );
}
