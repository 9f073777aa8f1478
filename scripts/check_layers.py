#!/usr/bin/env python3
"""Checks the layering of docs/design.md: a layer includes only itself and the layers it is
drawn on, and the torch-free layers include no LibTorch header. Prints every violation as
FILE:LINE: what, and exits 1 if there is one. Usage: scripts/check_layers.py [REPO_ROOT]"""
import pathlib
import re
import sys

# Each layer and the layers it may include (besides itself). Keep in step with docs/design.md.
ALLOWED = {
    "util": set(),
    "config": {"util"},
    "record": {"util", "config"},
    "search": {"util", "config"},
    "experiment": {"util", "config", "record", "search"},
    "data": {"util", "config"},
    "optim": {"util", "config", "data"},
    "nn": {"util", "config", "data", "optim"},
    "dist": {"util", "config"},
    "core": {"util", "config", "record", "data", "optim", "nn", "dist"},
    "app": {"util", "config", "record", "search", "experiment", "data", "optim", "nn", "dist", "core"},
}
TORCH_FREE = {"util", "config", "record", "search", "experiment"}
TORCH = re.compile(r'#\s*include\s*[<"](torch|ATen|c10|caffe2)/')
DET = re.compile(r'#\s*include\s*"det/([a-z_]+)/')
APP = re.compile(r'#\s*include\s*"app/')


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = []
    for layer, allowed in ALLOWED.items():
        files = []
        for base in (root / "include" / "det" / layer, root / "src" / layer):
            if base.is_dir():
                files += [p for p in base.rglob("*") if p.suffix in (".h", ".cpp")]
        for path in sorted(files):
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                where = f"{path.relative_to(root)}:{n}"
                if layer in TORCH_FREE and TORCH.search(line):
                    problems.append(f"{where}: the torch-free layer '{layer}' includes LibTorch: {line.strip()}")
                m = DET.search(line)
                if m and m.group(1) != layer and m.group(1) not in allowed:
                    problems.append(f"{where}: layer '{layer}' includes the layer '{m.group(1)}' above it: {line.strip()}")
                if layer != "app" and APP.search(line):
                    problems.append(f"{where}: layer '{layer}' includes the private app layer: {line.strip()}")
    # Trials and users' code see the public headers only: no private app header.
    for path in sorted((root / "trials").rglob("*")):
        if path.suffix in (".h", ".cpp"):
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if APP.search(line):
                    problems.append(f"{path.relative_to(root)}:{n}: a trial includes the private app layer: {line.strip()}")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering violation(s); see docs/design.md (Layers)")
        return 1
    print(f"layers ok: {len(ALLOWED)} layers checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
