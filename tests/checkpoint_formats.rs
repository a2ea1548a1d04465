//! Checkpoint readers and writers against files written by real PyTorch 2.11 (and
//! safetensors), byte for byte. Python writes the fixtures and the expected bytes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rift::engine::checkpoint::*;

/// Writes every fixture into argv[1] and prints a JSON manifest of what each holds.
const WRITE_FIXTURES: &str = r#"
import sys, os, io, json, argparse, zipfile
import numpy as np, torch, torch.nn as nn
from safetensors.torch import save_file
out = sys.argv[1]
torch.manual_seed(0)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(16, 2)
    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 2), 1))

net = Net()
net.train(); net(torch.randn(4, 3, 8, 8))  # moves BN running stats, num_batches_tracked
sd = net.state_dict()

def raw(t):
    t = t.detach().contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes().hex()

def describe(d):
    return [[k, str(v.dtype).replace('torch.', ''), list(v.shape), raw(v)] for k, v in d.items()]

manifest = {}
def case(name, obj, expect, container=None, prefix=None, legacy=False):
    path = os.path.join(out, name)
    if legacy:
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(obj, path)
    manifest[name] = {"container": container, "prefix": prefix, "tensors": describe(expect),
                      "format": "TorchLegacy" if legacy else "TorchZip"}

for legacy in (False, True):
    sfx = "_legacy.pth" if legacy else ".pth"
    case("bare" + sfx, sd, sd, legacy=legacy)
    case("net" + sfx, {"net": sd}, sd, container="net", legacy=legacy)
    case("state_dict" + sfx, {"epoch": 3, "state_dict": sd}, sd, container="state_dict", legacy=legacy)
    case("model" + sfx, {"model": sd}, sd, container="model", legacy=legacy)
    # robustbench's shapes: `model_state_dict`; Kireev's {last, best} (robustbench takes
    # `last`), bare or holding a `state_dict` with DataParallel's prefix; `module.model.`.
    case("model_state_dict" + sfx, {"model_state_dict": sd, "epoch": 9}, sd,
         container="model_state_dict", legacy=legacy)
    best = {k: v + 1 if v.is_floating_point() else v for k, v in sd.items()}
    case("last_best" + sfx, {"last": sd, "best": best}, sd, container="last", legacy=legacy)
    dp_sd = {"module." + k: v for k, v in sd.items()}
    case("last_best_nested" + sfx, {"best": {"state_dict": best}, "last": {"state_dict": dp_sd, "epoch": 30}},
         sd, container="last.state_dict", prefix="module.", legacy=legacy)
    case("module_model" + sfx, {"state_dict": {"module.model." + k: v for k, v in sd.items()}}, sd,
         container="state_dict", prefix="module.model.", legacy=legacy)
    dp = nn.DataParallel(net).state_dict()
    case("module_prefix" + sfx, dp, sd, prefix="module.", legacy=legacy)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    net.zero_grad(); net(torch.randn(2, 3, 8, 8)).sum().backward(); opt.step()
    sd = net.state_dict()
    dp = nn.DataParallel(net).state_dict()
    full = {"net": dp, "epoch": 7, "acc": np.float64(53.6),
            "args": argparse.Namespace(lr=0.1, arch="resnet18", epochs=110, flag=True, tag=b"xy"),
            "optimizer": opt.state_dict(), "device": torch.device("cuda", 0), "size": torch.Size([2, 3]),
            "hist": [1.5, 2.5], "rng": torch.get_rng_state()}
    case("full" + sfx, full, sd, container="net", prefix="module.", legacy=legacy)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    dtypes = {
        "h": torch.randn(3, 5).half(), "b": torch.randn(2, 7).bfloat16(), "d": torch.randn(4).double(),
        "i64": torch.arange(-3, 5), "i32": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "i16": torch.tensor([-7, 8], dtype=torch.int16), "i8": torch.tensor([-1, 2, 3], dtype=torch.int8),
        "u8": torch.tensor([[0, 255]], dtype=torch.uint8), "flag": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3),
    }
    case("dtypes" + sfx, dtypes, dtypes, legacy=legacy)
    views = {
        "t": base.t(), "col": base[:, 1], "sub": base[1:3, 2:5], "step": base.reshape(-1)[3::5],
        "shared_a": base[0], "shared_b": base[2:4], "whole": base,
        "ht": torch.randn(3, 4).half().t(), "bt": torch.randn(3, 2).bfloat16().t(),
    }
    case("views" + sfx, views, views, legacy=legacy)

# safetensors written by python
st = {k: v.contiguous() for k, v in {**sd, **dtypes}.items() if v.numel() > 0}
save_file(st, os.path.join(out, "py.safetensors"), metadata={"source": "python"})
manifest["py.safetensors"] = {"container": None, "prefix": None, "tensors": describe(st), "format": "Safetensors"}

# hostile files
class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))
torch.save({"net": sd, "x": Evil()}, os.path.join(out, "evil.pth"))
torch.save({"x": Evil()}, os.path.join(out, "evil_legacy.pth"), _use_new_zipfile_serialization=False)
good = open(os.path.join(out, "bare.pth"), "rb").read()
open(os.path.join(out, "truncated.pth"), "wb").write(good[: len(good) // 2])
zin = zipfile.ZipFile(os.path.join(out, "bare.pth"))
entries = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
with zipfile.ZipFile(os.path.join(out, "corrupt_pickle.pth"), "w") as zout:
    for name, data in entries:
        if name.endswith("data.pkl"):
            data = data[:2] + b"\xff" + data[3:]
        zout.writestr(name, data)
with zipfile.ZipFile(os.path.join(out, "missing_storage.pth"), "w") as zout:
    for name, data in entries:
        if not name.endswith("/data/3"):
            zout.writestr(name, data)
leg = open(os.path.join(out, "bare_legacy.pth"), "rb").read()
open(os.path.join(out, "short_legacy.pth"), "wb").write(leg[:-10])
torch.save({"epoch": 3, "acc": 0.5}, os.path.join(out, "no_state_dict.pth"))
open(os.path.join(out, "text.pth"), "wb").write(b"hello, I am not a checkpoint\n")
print(json.dumps(manifest))
"#;

/// Loads rift's outputs in Python and checks them against the originals.
const CHECK_OUTPUTS: &str = r#"
import sys, torch, torch.nn as nn
from safetensors.torch import load_file
d = sys.argv[1]
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(16, 2)
def same(a, b):
    assert list(a.keys()) == list(b.keys()), (list(a.keys()), list(b.keys()))
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k
orig = torch.load(d + "/bare.pth", weights_only=True)
mine = torch.load(d + "/rift_bare.pth", weights_only=True)
assert type(mine).__name__ == "OrderedDict", type(mine)
same(orig, mine)
net = Net(); net.load_state_dict(mine, strict=True)
same(torch.load(d + "/dtypes_legacy.pth", weights_only=True), torch.load(d + "/rift_dtypes.pth", weights_only=True))
v = torch.load(d + "/views.pth", weights_only=True)
same(v, torch.load(d + "/rift_views.pth", weights_only=True))
full = torch.load(d + "/full.pth", weights_only=False)
mine = torch.load(d + "/rift_full.pt", weights_only=True)
same({k[len("module."):]: t for k, t in full["net"].items()}, mine)
Net().load_state_dict(mine, strict=True)
st = load_file(d + "/rift.safetensors")
same(dict(sorted(torch.load(d + "/dtypes_legacy.pth").items())), dict(sorted((k, t) for k, t in st.items())))
print("ok")
"#;

#[derive(Debug)]
struct Expected {
    format: String,
    container: Option<String>,
    prefix: Option<String>,
    tensors: Vec<(String, String, Vec<usize>, Vec<u8>)>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn fixtures() -> (tempfile::TempDir, BTreeMap<String, Expected>) {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run_python(WRITE_FIXTURES, &[dir.path().to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let mut cases = BTreeMap::new();
    for (name, c) in json.as_object().unwrap() {
        let s = |k: &str| c[k].as_str().map(|x| x.to_string());
        let tensors = c["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t[0].as_str().unwrap().to_string(),
                    t[1].as_str().unwrap().to_string(),
                    t[2].as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_u64().unwrap() as usize)
                        .collect(),
                    unhex(t[3].as_str().unwrap()),
                )
            })
            .collect();
        cases.insert(
            name.clone(),
            Expected {
                format: s("format").unwrap(),
                container: s("container"),
                prefix: s("prefix"),
                tensors,
            },
        );
    }
    (dir, cases)
}

fn check_case(path: &Path, e: &Expected) -> Checkpoint {
    let ck = load_checkpoint(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert_eq!(format!("{:?}", ck.format), e.format, "{}", path.display());
    assert_eq!(ck.container_key, e.container, "{}", path.display());
    assert_eq!(ck.stripped_prefix, e.prefix, "{}", path.display());
    let got: Vec<&str> = ck.tensors.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = e.tensors.iter().map(|t| t.0.as_str()).collect();
    if e.format == "Safetensors" {
        let (mut g, mut w) = (got.clone(), want.clone());
        g.sort();
        w.sort();
        assert_eq!(g, w);
    } else {
        assert_eq!(got, want, "{}: keys in file order", path.display());
    }
    for (name, dtype, shape, bytes) in &e.tensors {
        let t = ck.get(name).unwrap();
        assert_eq!(t.dtype.name(), dtype, "{}: {name}", path.display());
        assert_eq!(&t.shape, shape, "{}: {name}", path.display());
        assert!(t.data == *bytes, "{}: {name}: bytes differ", path.display());
    }
    ck
}

fn path_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn real_files_round_trip_and_hostile_inputs() {
    let (dir, cases) = fixtures();
    assert!(cases.len() >= 15);
    for (name, e) in &cases {
        check_case(&path_in(&dir, name), e);
    }

    // Metadata of a full training checkpoint, zip and legacy.
    for f in ["full.pth", "full_legacy.pth"] {
        let ck = load_checkpoint(&path_in(&dir, f)).unwrap();
        let meta: BTreeMap<&str, &str> = ck
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(meta["epoch"], "7");
        assert_eq!(meta["acc"], "53.6 (numpy float64)");
        assert!(
            meta["args"]
                .starts_with("argparse.Namespace(lr=0.1, arch='resnet18', epochs=110, flag=True"),
            "{}",
            meta["args"]
        );
        assert!(
            meta["optimizer"].starts_with("<optimizer state: 2 entries"),
            "{}",
            meta["optimizer"]
        );
        assert_eq!(meta["device"], "device('cuda:0')");
        assert_eq!(meta["size"], "(2, 3)");
        assert_eq!(meta["hist"], "[1.5, 2.5]");
        assert!(meta["rng"].starts_with("tensor uint8"), "{}", meta["rng"]);
        assert!(!ck.tensors.iter().any(|(n, _)| n.contains("momentum")));
    }
    // The optimizer state is readable through the generic API.
    let (_, root) = load_checkpoint_value(&path_in(&dir, "full.pth")).unwrap();
    let opt = root.get("optimizer").unwrap();
    let Some(Value::Dict(state)) = opt.get("state") else {
        panic!("no optimizer state")
    };
    assert_eq!(state.len(), 6);
    assert!(matches!(
        state[0].1.get("momentum_buffer"),
        Some(Value::Tensor(_))
    ));
    let safet = load_checkpoint(&path_in(&dir, "py.safetensors")).unwrap();
    assert_eq!(
        safet.metadata,
        vec![("source".to_string(), "python".to_string())]
    );

    // rift writes; Python reads with weights_only=True and load_state_dict(strict=True).
    let bare = load_checkpoint(&path_in(&dir, "bare.pth")).unwrap();
    save_pth(&path_in(&dir, "rift_bare.pth"), &bare.tensors).unwrap();
    let dtypes = load_checkpoint(&path_in(&dir, "dtypes_legacy.pth")).unwrap();
    save_by_extension(&path_in(&dir, "rift_dtypes.pth"), &dtypes.tensors).unwrap();
    let views = load_checkpoint(&path_in(&dir, "views.pth")).unwrap();
    save_pth(&path_in(&dir, "rift_views.pth"), &views.tensors).unwrap();
    let full = load_checkpoint(&path_in(&dir, "full.pth")).unwrap();
    save_by_extension(&path_in(&dir, "rift_full.pt"), &full.tensors).unwrap();
    save_by_extension(&path_in(&dir, "rift.safetensors"), &dtypes.tensors).unwrap();
    let out = common::run_python(CHECK_OUTPUTS, &[dir.path().to_str().unwrap()]);
    assert!(out.contains("ok"), "{out}");
    // ... and reads its own outputs back identically.
    for (f, src) in [
        ("rift_bare.pth", &bare),
        ("rift_views.pth", &views),
        ("rift.safetensors", &dtypes),
    ] {
        let back = load_checkpoint(&path_in(&dir, f)).unwrap();
        let mut a = back.tensors.clone();
        let mut b = src.tensors.clone();
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(a, b, "{f}");
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
    assert!(matches!(
        save_by_extension(&path_in(&dir, "x.onnx"), &bare.tensors),
        Err(CheckpointError::UnknownExtension { .. })
    ));

    // Hostile and broken files: the right error, never a panic.
    for f in ["evil.pth", "evil_legacy.pth"] {
        let err = load_checkpoint(&path_in(&dir, f)).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::ForbiddenGlobal { name, .. } if name == "posix.system"),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("`posix.system`") && msg.contains("refusing"),
            "{msg}"
        );
    }
    let err = load_checkpoint(&path_in(&dir, "truncated.pth")).unwrap_err();
    assert!(matches!(err, CheckpointError::CorruptZip { .. }), "{err}");
    let err = load_checkpoint(&path_in(&dir, "corrupt_pickle.pth")).unwrap_err();
    assert!(
        matches!(err, CheckpointError::CorruptPickle { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("opcode 0xff at byte 2"), "{err}");
    let err = load_checkpoint(&path_in(&dir, "missing_storage.pth")).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Storage { key, .. } if key == "3"),
        "{err}"
    );
    let err = load_checkpoint(&path_in(&dir, "short_legacy.pth")).unwrap_err();
    assert!(matches!(err, CheckpointError::Storage { .. }), "{err}");
    let err = load_checkpoint(&path_in(&dir, "no_state_dict.pth")).unwrap_err();
    assert!(matches!(err, CheckpointError::NoStateDict { .. }), "{err}");
    assert!(
        err.to_string().contains("epoch (int), acc (float)"),
        "{err}"
    );
    let err = load_checkpoint(&path_in(&dir, "text.pth")).unwrap_err();
    assert!(
        matches!(err, CheckpointError::UnknownFormat { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("safetensors"), "{err}");
    let err = load_checkpoint(&path_in(&dir, "does_not_exist.pth")).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
}

/// CIFAR-style python batches through the plain pickle reader: Python 3 protocol 2 (bytes as
/// `_codecs.encode`), protocols 4 and 5, and a hand-written Python 2 cPickle stream.
#[test]
fn plain_pickles_of_numpy_batches() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, pickle, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
data = rng.integers(0, 256, size=(5, 3072), dtype=np.uint8)
obj = {b"batch_label": b"training batch 1 of 5", b"labels": [3, 1, 4, 1, 5], b"data": data,
       b"filenames": [b"a.png", b"b.png", b"c.png", b"d.png", b"e.png"],
       b"f32": np.arange(6, dtype=np.float32).reshape(2, 3), b"fort": np.asfortranarray(np.arange(6, dtype=">i4").reshape(2, 3))}
for p in (2, 4, 5):
    open(f"{d}/batch_p{p}", "wb").write(pickle.dumps(obj, protocol=p))
open(f"{d}/data.bin", "wb").write(data.tobytes())
"#;
    common::run_python(script, &[dir.path().to_str().unwrap()]);
    let data = std::fs::read(dir.path().join("data.bin")).unwrap();
    for p in [2, 4, 5] {
        let bytes = std::fs::read(dir.path().join(format!("batch_p{p}"))).unwrap();
        let v = parse_plain_pickle(&bytes).unwrap_or_else(|e| panic!("protocol {p}: {e}"));
        let Some(Value::NdArray {
            dtype,
            shape,
            data: got,
        }) = v.get("data")
        else {
            panic!("p{p}: {v:?}")
        };
        assert_eq!(
            (dtype.as_str(), shape.as_slice()),
            ("uint8", &[5usize, 3072][..])
        );
        assert!(*got == data, "protocol {p}");
        assert_eq!(
            v.get("labels"),
            Some(&Value::List(
                [3, 1, 4, 1, 5].iter().map(|&i| Value::Int(i)).collect()
            ))
        );
        assert_eq!(
            v.get("batch_label"),
            Some(&Value::Bytes(b"training batch 1 of 5".to_vec()))
        );
        let Some(Value::NdArray { dtype, data: f, .. }) = v.get("f32") else {
            panic!()
        };
        assert_eq!(dtype, "float32");
        assert_eq!(
            f.chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>(),
            vec![0., 1., 2., 3., 4., 5.]
        );
        let Some(Value::NdArray {
            dtype,
            shape,
            data: f,
        }) = v.get("fort")
        else {
            panic!()
        };
        assert_eq!(
            (dtype.as_str(), shape.as_slice()),
            ("int32", &[2usize, 3][..])
        );
        assert_eq!(
            f.chunks(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
    }
}
