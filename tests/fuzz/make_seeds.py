#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Python's standard library only. Seeds are tiny valid files of each format (so that the fuzzer
starts from inputs that reach deep into the readers) and the hostile files of the fault campaign
(issue 10): a gzip that claims a huge count, dimensions that overflow, a PNG header claiming
30000x30000, a JPEG frame claiming 65500x65500, safetensors with trailing junk, NUL padding or
overlapping offsets. The config seeds are the project's own configs/. Added by hand, and left
alone by this script: crash inputs found by scripts/fuzz.sh, once fixed (crash-<sha1>), and
<target>/found/, the inputs of a fuzzing run that add coverage beyond the seeds (libFuzzer's
-merge=1 of build-fuzz/corpus/<target> into the seeds). Run from anywhere:
python3 tests/fuzz/make_seeds.py
"""
import gzip
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---- IDX (MNIST) ----
def idx(magic, dims, body):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + body


images = idx(2051, [2, 4, 4], bytes(range(32)))
labels = idx(2049, [3], bytes([7, 0, 9]))
put("idx", "images_2x4x4", images)
put("idx", "labels_3", labels)
put("idx", "images_2x4x4.gz", gz(images))
put("idx", "labels_3.gz", gz(labels))
put("idx", "images_0", idx(2051, [0, 28, 28], b""))
put("idx", "dims_overflow", idx(2051, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], b""))
put("idx", "claims_huge.gz", gz(idx(2051, [60000000, 28, 28], bytes(64))))
put("idx", "trailing_junk", labels + b"junk")
put("idx", "two_members.gz", gz(labels) + gz(b"more"))
put("idx", "truncated.gz", gz(images)[:-9])
put("idx", "bomb_after_header.gz", gz(idx(2049, [4], bytes(4)) + bytes(200000)))

# ---- CIFAR ----
def cifar10(n):
    return b"".join(bytes([i % 10]) + bytes((i + p) % 256 for p in range(3072)) for i in range(n))


def cifar100(n):
    return b"".join(bytes([i % 20, i % 100]) + bytes((3 * i + p) % 256 for p in range(3072)) for i in range(n))


put("cifar", "cifar10_2.bin", cifar10(2))
put("cifar", "cifar100_2.bin", cifar100(2))
put("cifar", "cifar10_1.bin.gz", gz(cifar10(1)))
put("cifar", "truncated_record.bin", cifar10(1)[:1000])
put("cifar", "bad_label.bin", bytes([200]) + bytes(3072))
put("cifar", "trailing_after_gzip.gz", gz(cifar10(1)) + b"\0\0\0\0")


# ---- PNG (every colour type and bit depth libpng's simplified reader converts, interlaced) ----
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(w, h, color, depth, row_bytes_fn, interlace=False, extra=b""):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    bits = channels * depth

    def raw(pw, ph, xs, ys):
        out = b""
        for y in ys:
            out += b"\0" + row_bytes_fn(xs, y, bits)
        return out

    if not interlace:
        data = raw(w, h, list(range(w)), list(range(h)))
    else:
        data = b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            xs, ys = list(range(x0, w, dx)), list(range(y0, h, dy))
            if xs and ys:
                data += raw(len(xs), len(ys), xs, ys)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 1 if interlace else 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")


def pattern_row(xs, y, bits):
    total_bits = len(xs) * bits
    value = 0
    for i, x in enumerate(xs):
        v = (x * 37 + y * 11 + i) & ((1 << bits) - 1)
        value = (value << bits) | v
    nbytes = (total_bits + 7) // 8
    value <<= nbytes * 8 - total_bits
    return value.to_bytes(nbytes, "big")


for color, depth in [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (4, 8), (6, 8), (6, 16)]:
    put("image", "c%d_d%d.png" % (color, depth), png(7, 5, color, depth, pattern_row))
plte = chunk(b"PLTE", bytes(range(48)))
trns = chunk(b"tRNS", bytes([255, 0, 128]))
for depth in (1, 2, 4, 8):
    put("image", "palette_d%d.png" % depth, png(6, 3, 3, depth, lambda xs, y, bits: pattern_row(xs, y, bits) if bits < 8 else bytes((x + y) % 16 for x in xs), extra=plte + trns))
put("image", "interlaced_rgb.png", png(9, 10, 2, 8, pattern_row, interlace=True))
put("image", "gamma_text.png", png(4, 4, 2, 8, pattern_row, extra=chunk(b"gAMA", struct.pack(">I", 45455)) + chunk(b"tEXt", b"Comment\0seed") + chunk(b"zTXt", b"Title\0\0" + zlib.compress(b"seed title"))))
# The campaign's PNG bomb: a 40-byte file whose IHDR claims 30000x30000.
put("image", "claims_30000x30000.png", (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) + b"\0" * 7)[:40])
images_dir = os.path.join(ROOT, "tests", "testdata", "images")
for f in ("gray.jpg", "rgb420.jpg", "rgb444.jpg", "gray.png", "palette.png", "rgb.png", "rgba.png"):
    shutil.copy(os.path.join(images_dir, f), os.path.join(CORPUS, "image", f))


def patch_sof(jpeg, height=None, width=None, marker=None):
    b = bytearray(jpeg)
    i = 2
    while i < len(b):
        m = b[i + 1]
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
            if marker is not None:
                b[i + 1] = marker
            if height is not None:
                b[i + 5:i + 7] = struct.pack(">H", height)
                b[i + 7:i + 9] = struct.pack(">H", width)
            return bytes(b)
        i += 2 + struct.unpack(">H", bytes(b[i + 2:i + 4]))[0]
    raise ValueError("no SOF")


rgb420 = open(os.path.join(images_dir, "rgb420.jpg"), "rb").read()
put("image", "claims_65500x65500.jpg", patch_sof(rgb420, 65500, 65500))
put("image", "progressive_marker.jpg", patch_sof(rgb420, marker=0xC2))
put("image", "arithmetic_marker.jpg", patch_sof(rgb420, marker=0xC9))
put("image", "truncated.jpg", rgb420[: len(rgb420) // 2])


# ---- safetensors ----
def st(entries, data, pad=b" ", metadata=None, raw_header=None):
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    header.update(entries)
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    h += pad * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
put("safetensors", "f32_2x2", st({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, f32))
put("safetensors", "mixed", st({
    "a": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]},
    "b": {"dtype": "BOOL", "shape": [3], "data_offsets": [16, 19]},
    "c": {"dtype": "F16", "shape": [1], "data_offsets": [19, 21]},
    "d": {"dtype": "BF16", "shape": [0, 4], "data_offsets": [21, 21]},
    "e": {"dtype": "U8", "shape": [], "data_offsets": [21, 22]},
}, struct.pack("<2q", 5, -6) + bytes([1, 0, 1]) + b"\x00\x3c" + b"\x07", metadata={"format": "pt"}))
put("safetensors", "empty", st({}, b""))
put("safetensors", "trailing_junk", st({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, f32 + b"junk"))
put("safetensors", "nul_padding", st({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, f32, pad=b"\0"))
put("safetensors", "overlap", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, f32[:12]))
put("safetensors", "i32_for_f32", st({"w": {"dtype": "I32", "shape": [2, 2], "data_offsets": [0, 16]}}, struct.pack("<4i", 1, 2, 3, 4)))
put("safetensors", "shape_overflow", st({"w": {"dtype": "F64", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 16]}}, f32))
put("safetensors", "huge_header_length", struct.pack("<Q", 1 << 62) + b"{}")

# ---- config: the project's own configs ----
for d, _, files in sorted(os.walk(os.path.join(ROOT, "configs"))):
    for f in sorted(files):
        if f.endswith(".yaml"):
            os.makedirs(os.path.join(CORPUS, "config"), exist_ok=True)
            shutil.copy(os.path.join(d, f), os.path.join(CORPUS, "config", os.path.basename(d) + "_" + f))
put("config", "hparams_every_type.yaml", b"""name: seed
entrypoint: model_def:Trial
hyperparameters:
  global_batch_size: 32
  lr: {type: log, minval: -4, maxval: -1, base: 10}
  layers: {type: int, minval: 1, maxval: 4}
  dropout: {type: double, minval: 0.0, maxval: 0.5}
  act: {type: categorical, vals: [relu, gelu]}
  nested: {inner: {type: const, val: 3}}
searcher: {name: adaptive_asha, metric: validation_loss, max_length: {batches: 100}, max_trials: 4}
""")
put("config", "anchors_and_flow.yaml", b"""base: &b {batches: 10}
name: "x"
entrypoint: t
hyperparameters: {global_batch_size: 1}
searcher: {name: single, metric: m, max_length: *b}
min_validation_period: {epochs: 1}
records_per_epoch: 100
""")

# ---- round three (issue 23): many entries, many hyperparameters, zips whose sizes lie ----
put("safetensors", "many_empty", st({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
                                     for i in range(2000)}, b""))
put("config", "many_hparams.yaml", ("name: many\nentrypoint: t\nsearcher: {name: single, metric: m, "
                                    "max_length: {batches: 1}}\nhyperparameters:\n" +
                                    "".join(f"  h{i}: {i}\n" for i in range(2000))).encode())
put("config", "gbs_not_an_int.yaml", b"""name: x
entrypoint: t
hyperparameters: {global_batch_size: 1e130, lr: .nan}
searcher: {name: single, metric: m, max_length: {batches: 1}}
resources: {max_slots: 0}
""")


def pk_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def pk_tensor(key, numel, offset, sizes, strides, storage=b"FloatStorage"):
    """A tensor as LibTorch's pickler writes it: _rebuild_tensor_v2(persistent storage, ...)."""
    def tup(items):
        return b"(" + b"".join(items) + b"t"
    ints = lambda vs: [b"J" + struct.pack("<i", v) for v in vs]  # noqa: E731
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" +
            tup([pk_str("storage"), b"ctorch\n" + storage + b"\n", pk_str(key), pk_str("cpu")] + ints([numel])) +
            b"Q" + ints([offset])[0] + tup(ints(sizes)) + tup(ints(strides)) + b"\x89" +
            b"ccollections\nOrderedDict\n)RtR")


def pk_module(tensors):
    body = b"\x80\x02}("
    for i, t in enumerate(tensors):
        body += pk_str(f"t{i}") + t
    return body + b"u."


def zip_stored(records, lie=None):
    """A stored zip as LibTorch writes it; lie = {name: size} puts another size in the directory."""
    out, cd = b"", b""
    for name, data in records:
        at = len(out)
        crc = zlib.crc32(data) & 0xFFFFFFFF
        size = (lie or {}).get(name, len(data))
        n = name.encode()
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, size, size, len(n), 0) + n + data
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, size, size, len(n),
                          0, 0, 0, 0, 0, at) + n
    return out + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records), len(records), len(cd), len(out), 0)


good = [("state/data.pkl", pk_module([pk_tensor("0", 12, 0, [3, 4], [4, 1]), pk_tensor("1", 6, 2, [2, 2], [1, 2])])),
        ("state/data/0", b"\x01" * 48), ("state/data/1", b"\x02" * 24), ("state/version", b"3\n")]
put("torch_archive", "good", zip_stored(good))
put("torch_archive", "record_cut_short", zip_stored(
    [("state/data.pkl", pk_module([pk_tensor("3", 1179648, 0, [128, 9216], [9216, 1])])), ("state/data/3", b"\0" * 1000)]))
put("torch_archive", "record_size_lies", zip_stored(good, lie={"state/data/0": 1 << 30}))
put("torch_archive", "tensor_past_storage", zip_stored(
    [("state/data.pkl", pk_module([pk_tensor("0", 12, 1, [3, 4], [4, 1])])), ("state/data/0", b"\x01" * 48)]))
put("torch_archive", "string_claims_2gib", zip_stored(
    [("state/data.pkl", b"\x80\x02X" + struct.pack("<I", 1 << 31) + b"abc.")]))
put("torch_archive", "memo_far_away", zip_stored([("state/data.pkl", b"\x80\x02Nr\xff\xff\xff\xff.")]))
