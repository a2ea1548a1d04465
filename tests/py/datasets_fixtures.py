# Writes tiny dataset fixtures in every layout rift reads, plus the pixels/labels that
# torchvision / numpy / PIL would read from them, as .npy files named expect_<case>_{x,y}.npy
# (x: uint8 N x C x H x W, y: int64 N). Used by tests/datasets.rs and tests/augment.rs
# (common::dataset_fixtures).
# usage: python datasets_fixtures.py <out_dir> <group>...
import gzip, io, os, pickle, struct, sys, zlib
import numpy as np
from PIL import Image

out = sys.argv[1]
groups = set(sys.argv[2:])
rng = np.random.RandomState(1234)


def p(*parts):
    path = os.path.join(out, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def expect(case, x, y):
    np.save(p("expect_%s_x.npy" % case), np.ascontiguousarray(x, dtype=np.uint8))
    np.save(p("expect_%s_y.npy" % case), np.asarray(y, dtype=np.int64))


def smooth(h, w, c=3):
    # soft photographic-like content (smooth waves plus mild noise, no hard edges): exact
    # for PNG, and JPEG decoders agree on it to within rounding
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ph = rng.uniform(0, 6.28, size=c)
    chans = [128 + 60 * np.sin(xx / 7.0 + ph[k]) + 50 * np.cos(yy / 9.0 - 2 * ph[k]) for k in range(c)]
    img = np.stack(chans, -1) + rng.randint(-6, 7, size=(h, w, c))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def load_pil(path):
    return np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)


# ---------------------------------------------------------------- CIFAR
class Py2Pickler(pickle._Pickler):
    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[bytes] = save_bytes


def cifar_batch(n, ncls):
    return rng.randint(0, 256, size=(n, 3072), dtype=np.uint8), rng.randint(0, ncls, size=n)


if "cifar" in groups:
    # CIFAR-10, torchvision python layout: protocol-2 pickles of dicts with bytes keys.
    xs, ys = [], []
    for i in range(1, 6):
        x, y = cifar_batch(3, 10)
        d = {b"batch_label": b"training batch %d of 5" % i, b"labels": [int(v) for v in y],
             b"data": x, b"filenames": [b"f%d.png" % k for k in range(3)]}
        with open(p("c10py", "cifar-10-batches-py", "data_batch_%d" % i), "wb") as f:
            pickle.dump(d, f, protocol=2)
        xs.append(x); ys.append(y)
    expect("c10_train", np.concatenate(xs).reshape(-1, 3, 32, 32), np.concatenate(ys))
    x, y = cifar_batch(4, 10)
    with open(p("c10py", "cifar-10-batches-py", "test_batch"), "wb") as f:
        # as the real files were written by Python 2's cPickle: bytes as (SHORT_)BINSTRING
        Py2Pickler(f, protocol=2).dump({b"batch_label": b"testing batch 1 of 1",
                                        b"labels": [int(v) for v in y], b"data": x})
    expect("c10_test", x.reshape(-1, 3, 32, 32), y)
    names = [b"n%d" % k for k in range(10)]
    with open(p("c10py", "cifar-10-batches-py", "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f, protocol=2)

    # the same data in the binary layout: label byte + 3072 pixels
    train = np.load(p("expect_c10_train_x.npy")).reshape(-1, 3072)
    trainy = np.load(p("expect_c10_train_y.npy"))
    for i in range(5):
        recs = np.concatenate([trainy[3 * i:3 * i + 3, None].astype(np.uint8), train[3 * i:3 * i + 3]], 1)
        recs.tofile(p("c10bin", "cifar-10-batches-bin", "data_batch_%d.bin" % (i + 1)))
    recs = np.concatenate([y[:, None].astype(np.uint8), x], 1)
    recs.tofile(p("c10bin", "cifar-10-batches-bin", "test_batch.bin"))
    with open(p("c10bin", "cifar-10-batches-bin", "batches.meta.txt"), "w") as f:
        f.write("\n".join("b%d" % k for k in range(10)) + "\n\n")

    # CIFAR-100, python layout: str keys, default protocol (numpy._core._reconstruct / bytes)
    for split, n in (("train", 6), ("test", 5)):
        x, y = cifar_batch(n, 100)
        coarse = y // 5
        with open(p("c100py", "cifar-100-python", split), "wb") as f:
            pickle.dump({"filenames": ["a"] * n, "batch_label": split, "fine_labels": [int(v) for v in y],
                         "coarse_labels": [int(v) for v in coarse], "data": x}, f)
        expect("c100_%s" % split, x.reshape(-1, 3, 32, 32), y)
        recs = np.concatenate([coarse[:, None].astype(np.uint8), y[:, None].astype(np.uint8), x], 1)
        recs.tofile(p("c100bin", "cifar-100-binary", "%s.bin" % split))
    with open(p("c100py", "cifar-100-python", "meta"), "wb") as f:
        pickle.dump({"fine_label_names": ["c%d" % k for k in range(100)],
                     "coarse_label_names": ["k%d" % k for k in range(20)]}, f)

# ---------------------------------------------------------------- CIFAR-C
if "cifarc" in groups:
    K = 5  # images per severity
    labels = rng.randint(0, 10, size=5 * K)
    np.save(p("c10c", "CIFAR-10-C", "labels.npy"), labels.astype(np.int64))
    for name in ("fog", "gaussian_noise"):
        imgs = rng.randint(0, 256, size=(5 * K, 32, 32, 3), dtype=np.uint8)
        np.save(p("c10c", "CIFAR-10-C", name + ".npy"), imgs)
        if name == "fog":
            sel = np.concatenate([imgs[K:2 * K], imgs[4 * K:5 * K]])
            expect("c10c_fog_25", sel.transpose(0, 3, 1, 2), np.concatenate([labels[K:2 * K], labels[4 * K:]]))
    # CIFAR-100-C variant: uint8 labels of one severity (shared by all five)
    lab100 = rng.randint(0, 100, size=K).astype(np.uint8)
    np.save(p("c100c", "labels.npy"), lab100)
    imgs = rng.randint(0, 256, size=(5 * K, 32, 32, 3), dtype=np.uint8)
    np.save(p("c100c", "snow.npy"), imgs)
    expect("c100c_snow_3", imgs[2 * K:3 * K].transpose(0, 3, 1, 2), lab100)

# ---------------------------------------------------------------- Tiny-ImageNet
WNIDS = ["n09999999", "n01443537", "n02085620"]  # deliberately unsorted in wnids.txt


def tin_image(path, gray=False):
    img = smooth(64, 64)
    im = Image.fromarray(img)
    if gray:
        im = im.convert("L")
    im.save(path, quality=90)
    return load_pil(path)


if "tin" in groups:
    for layout in ("raw", "sorted"):
        root = ("tin_" + layout, "tiny-imagenet-200")
        with open(p(*root, "wnids.txt"), "w") as f:
            f.write("\n".join(WNIDS) + "\n")
        xs, ys = [], []
        for ci, w in enumerate(sorted(WNIDS)):
            for k in range(2):
                path = p(*root, "train", w, "images", "%s_%d.JPEG" % (w, k))
                xs.append(tin_image(path, gray=(k == 1 and ci == 0))); ys.append(ci)
            open(p(*root, "train", w, "%s_boxes.txt" % w), "w").close()
        expect("tin_%s_train" % layout, np.stack(xs), ys)
        vx, vy = [], []
        if layout == "raw":
            lines = []
            for k in range(5):
                w = WNIDS[k % 3]
                name = "val_%d.JPEG" % k
                vx.append(tin_image(p(*root, "val", "images", name), gray=(k == 2)))
                vy.append(sorted(WNIDS).index(w))
                lines.append("%s\t%s\t0\t0\t63\t63" % (name, w))
            with open(p(*root, "val", "val_annotations.txt"), "w") as f:
                f.write("\n".join(reversed(lines)) + "\n")
        else:
            for ci, w in enumerate(sorted(WNIDS)):
                sub = ("images",) if ci != 1 else ()  # both re-sorted variants
                for k in range(2):
                    vx.append(tin_image(p(*root, "val", w, *sub, "val_%d_%d.JPEG" % (ci, k)))); vy.append(ci)
        expect("tin_%s_test" % layout, np.stack(vx), vy)

    # Tiny-ImageNet-C
    xs, ys = [], []
    for sev in (1, 4):
        for ci, w in enumerate(sorted(WNIDS)):
            for k in range(2):
                xs.append(tin_image(p("tinc", "Tiny-ImageNet-C", "fog", str(sev), w, "%s_%d.JPEG" % (w, k)))); ys.append(ci)
    for sev in (2, 3, 5):
        for w in WNIDS:
            tin_image(p("tinc", "Tiny-ImageNet-C", "fog", str(sev), w, "x.JPEG"))
    expect("tinc_fog_14", np.stack(xs), ys)

# ---------------------------------------------------------------- MNIST
def idx_images(x):
    return struct.pack(">IIII", 2051, x.shape[0], x.shape[1], x.shape[2]) + x.tobytes()


def idx_labels(y):
    return struct.pack(">II", 2049, len(y)) + y.astype(np.uint8).tobytes()


if "mnist" in groups:
    for split, prefix, n in (("train", "train", 7), ("test", "t10k", 4)):
        x = rng.randint(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.randint(0, 10, size=n)
        with open(p("mnist_plain", "%s-images-idx3-ubyte" % prefix), "wb") as f:
            f.write(idx_images(x))
        with open(p("mnist_plain", "%s-labels-idx1-ubyte" % prefix), "wb") as f:
            f.write(idx_labels(y))
        with gzip.open(p("mnist_gz", "MNIST", "raw", "%s-images-idx3-ubyte.gz" % prefix), "wb") as f:
            f.write(idx_images(x))
        with gzip.open(p("mnist_gz", "MNIST", "raw", "%s-labels-idx1-ubyte.gz" % prefix), "wb") as f:
            f.write(idx_labels(y))
        expect("mnist_%s" % split, x[:, None], y)

# ---------------------------------------------------------------- ImageFolder
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_interlaced_png(path, img):
    # Adam7 RGB PNG, written by hand (PIL cannot write interlaced PNGs)
    h, w, _ = img.shape
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = img[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for r, row in enumerate(sub):
            ft = r % 5  # exercise every filter type
            cur = row.reshape(-1).astype(np.int32)
            prev = sub[r - 1].reshape(-1).astype(np.int32) if r > 0 else np.zeros_like(cur)
            left = np.concatenate([np.zeros(3, np.int32), cur[:-3]])
            upleft = np.concatenate([np.zeros(3, np.int32), prev[:-3]])
            if ft == 0: pred = np.zeros_like(cur)
            elif ft == 1: pred = left
            elif ft == 2: pred = prev
            elif ft == 3: pred = (left + prev) // 2
            else:
                pp = left + prev - upleft
                pa, pb, pc = abs(pp - left), abs(pp - prev), abs(pp - upleft)
                pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
            raw += bytes([ft]) + ((cur - pred) % 256).astype(np.uint8).tobytes()
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1))
    data += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


if "folder" in groups:
    H, W = 12, 16  # non-square on purpose
    for split in ("train", "val"):
        xs, ys, tol = [], [], []
        for ci, cls in enumerate(("cat", "dog")):
            base = ("folder", split, cls)
            items = []  # (file name, expected CHW pixels, is_jpeg); rift takes files in name order
            for k, mode in enumerate(("RGB", "RGBA", "L", "P", "1", "LA")):
                img = smooth(H, W, 4)
                im = Image.fromarray(img[..., :3])
                if mode == "RGBA":
                    im = Image.fromarray(img, "RGBA")
                elif mode == "P":
                    im = im.quantize(colors=(16 if ci == 0 else 200))
                elif mode != "RGB":
                    im = im.convert(mode)
                name = "%s_%02d.png" % (mode, k)
                im.save(p(*base, name))
                items.append((name, load_pil(p(*base, name)), 0))
            img = smooth(H, W)
            write_interlaced_png(p(*base, "z_interlaced.png"), img)
            items.append(("z_interlaced.png", img.transpose(2, 0, 1), 0))
            for j, gray in enumerate((False, True)):
                name = "zz_%d.%s" % (j, "jpg" if j == 0 else "JPEG")
                im = Image.fromarray(smooth(H, W))
                (im.convert("L") if gray else im).save(p(*base, name), quality=92)
                items.append((name, load_pil(p(*base, name)), 1))
            open(p(*base, "notes.txt"), "w").close()  # ignored: not an image
            for name, x, t in sorted(items, key=lambda it: it[0]):
                xs.append(x); ys.append(ci); tol.append(t)
        expect("folder_%s" % split, np.stack(xs), ys)
        np.save(p("expect_folder_%s_jpeg.npy" % split), np.array(tol, dtype=np.uint8))
