#!/usr/bin/env python3
"""Makes hostile checkpoints from a good one, in place, as an outside tester would (issue 23).

Every edit keeps metadata.json's size and CRC-32 of state.pt true, so that det's own file check
passes and what follows (its archive check, LibTorch) meets the fault.

  craft_checkpoint.py cut-record CKPT [N]    the largest tensor record moved to the end of the
                                              zip and cut to N bytes (default: a quarter; sizes
                                              and CRC fixed)
  craft_checkpoint.py huge-string CKPT       data.pkl's first string claims 2 GiB
  craft_checkpoint.py meta CKPT PATH=JSON    sets a field of metadata.json (dotted PATH; JSON
                                              value, or the word DELETE to remove it)
"""
import json
import os
import pickletools
import struct
import sys
import zipfile
import zlib


def rewrite_zip(path, edit):
    """Rewrites the zip at `path` (stored records) through edit(list of [name, bytes])."""
    with zipfile.ZipFile(path) as z:
        records = [[i.filename, z.read(i.filename)] for i in z.infolist()]
    records = edit(records)
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for name, data in records:
            z.writestr(zipfile.ZipInfo(name), data)
    os.replace(tmp, path)


def fix_metadata(ckpt):
    state = os.path.join(ckpt, "state.pt")
    with open(state, "rb") as f:
        data = f.read()
    meta_path = os.path.join(ckpt, "metadata.json")
    with open(meta_path) as f:
        meta = json.load(f)
    meta["files"]["state.pt"] = {"size": len(data), "crc32": zlib.crc32(data) & 0xFFFFFFFF}
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=2)


def cut_record(records, keep=None):
    data = [r for r in records if "/data/" in r[0] and not r[0].endswith(".pkl")]
    largest = max(data, key=lambda r: len(r[1]))
    records.remove(largest)
    n = keep if keep is not None else (len(largest[1]) // 4 if len(largest[1]) > 4 else 0)
    records.append([largest[0], largest[1][:n]])
    return records


def huge_string(records):
    for r in records:
        if r[0].endswith("/data.pkl"):
            pkl = r[1]
            # The first BINUNICODE: its 4-byte length now claims 2 GiB.
            at = next(pos for op, _, pos in pickletools.genops(pkl) if op.name == "BINUNICODE")
            r[1] = pkl[: at + 1] + struct.pack("<I", 1 << 31) + pkl[at + 5 :]
    return records


def set_meta(ckpt, spec):
    path, value = spec.split("=", 1)
    meta_path = os.path.join(ckpt, "metadata.json")
    with open(meta_path) as f:
        meta = json.load(f)
    keys = path.split(".")
    node = meta
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = int(keys[-1]) if isinstance(node, list) else keys[-1]
    if value == "DELETE":
        del node[last]
    else:
        node[last] = json.loads(value)
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=2)


def main():
    mode, ckpt = sys.argv[1], sys.argv[2]
    state = os.path.join(ckpt, "state.pt")
    if mode == "cut-record":
        keep = int(sys.argv[3]) if len(sys.argv) > 3 else None
        rewrite_zip(state, lambda records: cut_record(records, keep))
        fix_metadata(ckpt)
    elif mode == "huge-string":
        rewrite_zip(state, huge_string)
        fix_metadata(ckpt)
    elif mode == "meta":
        for spec in sys.argv[3:]:
            set_meta(ckpt, spec)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
