"""A content-addressed memo of reference computations, for the test suite only (opt-in:
RIFT_REF_CACHE=DIR; the Rust tests set it to a folder beside the venv).

A reference result is a function of what it reads: its arguments, its input files, the
reference code (these scripts and the installed pyautoattack), the torch build and the
thread count. The key hashes all of them, so a change to any recomputes. What it saves is
what PyTorch computed on an earlier run on this machine, never a number typed in: a second
`make test` then skips recomputing pyautoattack's side of the published-budget comparison
(about half of that test). Benchmarks never set it, since they time the reference.
"""
import hashlib, json, os, shutil, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ("autoattack_ref.py", "at_task.py", "reference_models.py", "ref_cache.py")
ENV = ("RIFT_THREADS", "RIFT_AA_REF_LAYOUT")


def _code_files():
    import pyautoattack
    pkg = os.path.dirname(pyautoattack.__file__)
    ours = [os.path.join(HERE, n) for n in SCRIPTS]
    return ours + sorted(os.path.join(pkg, n) for n in os.listdir(pkg) if n.endswith(".py"))


def _key(args, inputs):
    import torch
    h = hashlib.sha256()
    for part in [list(args), [os.environ.get(k) for k in ENV], torch.__version__]:
        h.update(repr(part).encode() + b"\0")
    for path in _code_files() + list(inputs):
        h.update(os.path.basename(path).encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:32]


def _root():
    root = os.environ.get("RIFT_REF_CACHE")
    if root:
        os.makedirs(root, exist_ok=True)
    return root


def result(args, inputs, compute):
    """compute() → a JSON-able value, memoised under the key of `args` and `inputs`."""
    root = _root()
    if not root:
        return compute()
    path = os.path.join(root, _key(args, inputs) + ".json")
    if os.path.exists(path):
        print(f"reference: reusing {path} (same code, inputs and arguments)", file=sys.stderr)
        with open(path) as f:
            return json.load(f)
    value = compute()
    fd, tmp = tempfile.mkstemp(dir=root)
    with os.fdopen(fd, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)
    return value


def files(args, out, compute):
    """compute() writes files under `out`; memoised as a copy of `out` under the key of
    `args` (which must not name `out` itself)."""
    root = _root()
    if not root:
        return compute()
    saved = os.path.join(root, _key(args, []))
    if os.path.isdir(saved):
        print(f"reference: reusing {saved} (same code and arguments)", file=sys.stderr)
        shutil.copytree(saved, out, dirs_exist_ok=True)
        return
    compute()
    tmp = tempfile.mkdtemp(dir=root)
    shutil.copytree(out, tmp, dirs_exist_ok=True)
    try:
        os.rename(tmp, saved)
    except OSError:  # another test saved the same result first
        shutil.rmtree(tmp, ignore_errors=True)
