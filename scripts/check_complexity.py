#!/usr/bin/env python3
"""lint.complexity: function length and cyclomatic complexity by lizard (PyPI), file length.

No function in src/, include/ or trials/ is over 80 lines or cyclomatic complexity 20, except
those listed with a one-line reason in scripts/complexity_exceptions.txt (3 at most, and each
must still need its exception); no C++ source file is over 700 lines.

Usage: scripts/check_complexity.py [ROOT]   (lizard: $LIZARD, ROOT/.venv/bin/lizard or PATH)
"""
import os
import re
import shutil
import subprocess
import sys

MAX_LENGTH = 80
MAX_CCN = 20
MAX_FILE_LINES = 700
MAX_EXCEPTIONS = 3
DIRS = ("src", "include", "trials")
CXX = (".cpp", ".h", ".hpp", ".cc")

# lizard -w prints: path:line: warning: NAME has N NLOC, C CCN, T token, P PARAM, L length, ...
WARNING = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): warning: (?P<name>\S+) has "
                     r"\d+ NLOC, (?P<ccn>\d+) CCN, \d+ token, \d+ PARAM, (?P<length>\d+) length")


def find_lizard(root):
    for candidate in (os.environ.get("LIZARD"), os.path.join(root, ".venv", "bin", "lizard"),
                      shutil.which("lizard")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("lint.complexity: lizard not found (set LIZARD, or `.venv/bin/pip install lizard`; "
             "scripts/test.sh installs it)")


def read_exceptions(path):
    """Returns {function name: reason} from lines `NAME  reason`; '#' starts a comment."""
    exceptions = {}
    if not os.path.exists(path):
        return exceptions
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, _, reason = line.partition(" ")
            if not reason.strip():
                sys.exit(f"{path}:{number}: '{name}' has no reason: write one line saying why")
            exceptions[name] = reason.strip()
    return exceptions


def long_files(root):
    found = []
    for top in DIRS:
        for folder, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                if name.endswith(CXX):
                    path = os.path.join(folder, name)
                    with open(path, encoding="utf-8", errors="replace") as f:
                        lines = sum(1 for _ in f)
                    if lines > MAX_FILE_LINES:
                        found.append(f"{os.path.relpath(path, root)}: {lines} lines "
                                     f"(at most {MAX_FILE_LINES}: split it by job)")
    return found


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    exceptions_path = os.path.join(root, "scripts", "complexity_exceptions.txt")
    exceptions = read_exceptions(exceptions_path)
    problems = []
    if len(exceptions) > MAX_EXCEPTIONS:
        problems.append(f"{exceptions_path}: {len(exceptions)} exceptions, at most "
                        f"{MAX_EXCEPTIONS}")
    out = subprocess.run([find_lizard(root), "-l", "cpp", "-w", "-L", str(MAX_LENGTH), "-C",
                          str(MAX_CCN), *[os.path.join(root, d) for d in DIRS]],
                         capture_output=True, text=True, check=False)
    used = set()
    for line in out.stdout.splitlines():
        m = WARNING.match(line)
        if not m:
            continue
        if m["name"] in exceptions:
            used.add(m["name"])
            continue
        problems.append(f"{os.path.relpath(m['path'], root)}:{m['line']}: {m['name']} is "
                        f"{m['length']} lines, complexity {m['ccn']} (at most {MAX_LENGTH} and "
                        f"{MAX_CCN}: split it into named steps)")
    for name in sorted(set(exceptions) - used):
        problems.append(f"{exceptions_path}: '{name}' is within the limits now (or gone): "
                        "remove its exception")
    problems += long_files(root)
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"complexity ok: every function within {MAX_LENGTH} lines and complexity {MAX_CCN} "
          f"({len(used)} listed exceptions), every file within {MAX_FILE_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
