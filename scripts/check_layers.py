#!/usr/bin/env python3
"""Checks the layering of docs/design.md: a layer includes only itself and the layers it is
drawn on, and the torch-free layers include no LibTorch header; and that include/det/det.h
includes every public header. Prints every violation as
FILE:LINE: what, and exits 1 if there is one. Usage: scripts/check_layers.py [REPO_ROOT]"""
import pathlib
import re
import sys

# Each layer and the layers it includes (besides itself): the real graph, no looser. An edge
# listed here that no include uses is reported too, so the list stays the code's. docs/design.md
# shows this table between its layers:begin and layers:end markers (checked to agree).
ALLOWED = {
    "util": set(),
    "config": {"util"},
    "record": {"util", "config"},
    "search": {"util", "config"},
    "experiment": {"util", "config", "record", "search"},
    "data": {"util", "config"},
    "optim": {"util", "config"},
    "nn": {"util", "config"},
    "distributed": {"util", "record"},
    "core": {"util", "config", "record", "data", "optim", "distributed"},
    "app": {"util", "config", "record", "search", "experiment", "distributed", "core"},
}
# Public headers outside the layer folders: det/main.h is the app's door (the cli includes only
# it); det/det.h is the umbrella of the whole API.
LAYER_OF_FILE = {"include/det/main.h": "app"}
TORCH_FREE = {"util", "config", "record", "search", "experiment"}
TORCH = re.compile(r'#\s*include\s*[<"](torch|ATen|c10|caffe2)/')
DET = re.compile(r'#\s*include\s*"det/([a-z_]+)/')
DET_FILE = re.compile(r'#\s*include\s*"det/([a-z_]+)\.h"')
RELATIVE = re.compile(r'#\s*include\s*"(\.\./[^"]+)"')
APP = re.compile(r'#\s*include\s*"app/')


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = []
    used = {layer: set() for layer in ALLOWED}
    for layer, allowed in ALLOWED.items():
        files = []
        for base in (root / "include" / "det" / layer, root / "src" / layer):
            if base.is_dir():
                files += [p for p in base.rglob("*") if p.suffix in (".h", ".cpp")]
        files += [root / f for f, owner in LAYER_OF_FILE.items() if owner == layer]
        for path in sorted(files):
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                where = f"{path.relative_to(root)}:{n}"
                if layer in TORCH_FREE and TORCH.search(line):
                    problems.append(f"{where}: the torch-free layer '{layer}' includes LibTorch: {line.strip()}")
                m = DET.search(line)
                if m and m.group(1) != layer:
                    used[layer].add(m.group(1))
                    if m.group(1) not in allowed:
                        problems.append(f"{where}: layer '{layer}' includes the layer '{m.group(1)}' above it: {line.strip()}")
                f = DET_FILE.search(line)
                if f and f"include/det/{f.group(1)}.h" not in LAYER_OF_FILE:
                    problems.append(f"{where}: layer '{layer}' includes the umbrella or an unknown top-level header: {line.strip()}")
                r = RELATIVE.search(line)
                if r:
                    target = (path.parent / r.group(1)).resolve()
                    inside = [b for b in (root / "include" / "det" / layer, root / "src" / layer) if b.is_dir()]
                    if not any(str(target).startswith(str(b.resolve()) + "/") for b in inside):
                        problems.append(f"{where}: a relative include leaves the layer '{layer}': {line.strip()}")
                if layer != "app" and APP.search(line):
                    problems.append(f"{where}: layer '{layer}' includes the private app layer: {line.strip()}")
    for layer, allowed in ALLOWED.items():
        for unused in sorted(allowed - used[layer]):
            problems.append(f"scripts/check_layers.py: '{layer}' may include '{unused}' but nothing does: "
                            "take it out of ALLOWED (the list is the real graph)")
    # The cli is one line each: it includes the app's doors (det/main.h, app/launch_main.h) only.
    for path in sorted((root / "src" / "cli").rglob("*.cpp")):
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if (DET.search(line) or APP.search(line) or DET_FILE.search(line)) and not (
                    "det/main.h" in line or "app/launch_main.h" in line):
                problems.append(f"{path.relative_to(root)}:{n}: the cli includes more than the app's doors: {line.strip()}")
    # docs/design.md shows ALLOWED: its table must agree.
    design = root / "docs" / "design.md"
    if design.is_file():
        text = design.read_text()
        m = re.search(r"<!-- layers:begin -->(.*?)<!-- layers:end -->", text, re.S)
        shown = {}
        for row in (m.group(1).splitlines() if m else []):
            cells = [c.strip().strip("`") for c in row.strip().strip("|").split("|")]
            if len(cells) == 2 and cells[0] in ALLOWED:
                shown[cells[0]] = {c.strip().strip("`") for c in cells[1].split(",") if c.strip() and c.strip() != "-"}
        if shown != ALLOWED:
            problems.append("docs/design.md: the layers table (between <!-- layers:begin --> and <!-- layers:end -->) "
                            "does not show scripts/check_layers.py's ALLOWED; write it from the code")
    # Trials and users' code see the public headers only: no private app header.
    for path in sorted((root / "trials").rglob("*")):
        if path.suffix in (".h", ".cpp"):
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if APP.search(line):
                    problems.append(f"{path.relative_to(root)}:{n}: a trial includes the private app layer: {line.strip()}")
    # The umbrella header brings the whole public API: every header under include/det.
    umbrella = root / "include" / "det" / "det.h"
    if umbrella.is_file():
        included = set(re.findall(r'#\s*include\s*"(det/[^"]+)"', umbrella.read_text()))
        for path in sorted((root / "include" / "det").rglob("*.h")):
            name = path.relative_to(root / "include").as_posix()
            if name != "det/det.h" and name not in included:
                problems.append(f"include/det/det.h: does not include the public header {name}")
    else:
        problems.append("include/det/det.h: missing (the umbrella header of the public API)")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering violation(s); see docs/design.md (Layers)")
        return 1
    print(f"layers ok: {len(ALLOWED)} layers checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
