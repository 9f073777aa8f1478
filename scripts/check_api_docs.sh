#!/usr/bin/env bash
# Checks that every public symbol under include/ has a /// comment, and that the comments parse:
# runs doxygen with docs/Doxyfile (no documentation is generated) and lists every warning as
# FILE:LINE: warning: what. Exits 0 and prints "API docs ok" when there is none, 1 otherwise
# (2 when doxygen cannot run). Writes nothing into the repository; runnable from any directory.
# Usage: scripts/check_api_docs.sh [REPO_ROOT]      Environment: DOXYGEN (default: doxygen)
set -euo pipefail
root=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)
doxygen=${DOXYGEN:-doxygen}
if ! command -v "$doxygen" >/dev/null 2>&1; then
  echo "check_api_docs: doxygen not found (apt-get install doxygen)" >&2
  exit 2
fi
if [ ! -f "$root/docs/Doxyfile" ]; then
  echo "check_api_docs: $root/docs/Doxyfile not found" >&2
  exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/det-api-docs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The Doxyfile's paths are relative to the repository root; its output goes to the temp dir.
status=0
(cd "$root" && { cat docs/Doxyfile
                 echo "OUTPUT_DIRECTORY = \"$tmp/out\""
                 echo "WARN_LOGFILE = \"$tmp/warnings.log\""; } |
   "$doxygen" - >"$tmp/stdout.log" 2>"$tmp/stderr.log") || status=$?
if [ "$status" -ne 0 ]; then
  echo "check_api_docs: doxygen failed (exit $status):" >&2
  cat "$tmp/stdout.log" "$tmp/stderr.log" >&2
  exit 2
fi

# Everything doxygen reports, with paths relative to the root, each warning once. Doxygen's
# notice that no output format is selected is expected: the check generates nothing.
touch "$tmp/warnings.log"
cat "$tmp/warnings.log" "$tmp/stderr.log" |
  grep -v -e '^warning: No output formats selected' -e '^[[:space:]]*$' |
  sed "s|^$root/||" |
  awk '!/: warning: / || !seen[$0]++' >"$tmp/report.log" || true

if [ ! -s "$tmp/report.log" ]; then
  echo "API docs ok"
  exit 0
fi
cat "$tmp/report.log"
undocumented=$(grep -c ' is not documented' "$tmp/report.log" || true)
other=$(grep ': warning: ' "$tmp/report.log" | grep -vc ' is not documented' || true)
summary="$undocumented public symbols undocumented"
[ "$other" -eq 0 ] || summary="$summary, $other other documentation warnings"
echo "$summary"
exit 1
