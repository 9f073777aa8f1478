#!/usr/bin/env bash
# Formats the C++ sources with the project's .clang-format (clang-format from Debian), or with
# --check lists the files that differ and fails (CI runs that: ctest lint.format).
#   scripts/format.sh [--check]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
clang_format=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
[ -n "$clang_format" ] || { echo "format: clang-format not found (apt-get install clang-format)" >&2; exit 2; }
mapfile -t files < <(git ls-files -- '*.h' '*.cpp' 2>/dev/null || find include src tests trials scripts -name '*.h' -o -name '*.cpp')
if [ "${1:-}" = "--check" ]; then
  bad=()
  for f in "${files[@]}"; do
    "$clang_format" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if ((${#bad[@]})); then
    printf '%s\n' "${bad[@]}"
    echo "format: ${#bad[@]} of ${#files[@]} files are not formatted; run scripts/format.sh" >&2
    exit 1
  fi
  echo "format ok: ${#files[@]} files"
else
  "$clang_format" -i "${files[@]}"
  python3 "$root/scripts/check_doc_examples.py" "$root" --fix >/dev/null
fi
