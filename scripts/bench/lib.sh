# Sourced by the benchmarks (after setting $root): which det builds to measure, and the Python
# peer of each, so that both LibTorch lines can be put side by side.
#   DET_BENCH_BUILDS  build directories, space-separated (default: $DET_BUILD_DIR or build); name
#                     two to compare the lines, e.g. DET_BENCH_BUILDS="build build-2x"
#   DET_PYTHON        the Python peer of a build whose LibTorch is neither Debian's nor .venv's
# bench_builds            the build directories, absolute
# bench_python BUILD      the Python whose torch is the LibTorch BUILD was built against
# bench_line BUILD        a label for the line: debian-1.13.1, pypi-2.11.0, own
# bench_setup BUILD TARGETS...  builds TARGETS in BUILD against the LibTorch it was set up with
# bench_need_peer BUILD M...  installs the Python modules M where the peer lacks them
bench_builds() {
  local b
  for b in ${DET_BENCH_BUILDS:-${DET_BUILD_DIR:-$root/build}}; do
    case $b in /*) ;; *) b=$root/$b ;; esac
    [ -f "$b/CMakeCache.txt" ] || {
      echo "bench: $b is not a configured det build (run scripts/setup.sh)" >&2
      return 1
    }
    echo "$b"
  done
}
bench_torch_dir() { sed -n 's/^Torch_DIR:[A-Z]*=//p' "$1/CMakeCache.txt"; }
bench_python() {
  local dir
  dir=$(bench_torch_dir "$1")
  case $dir in
    /usr/*) echo /usr/bin/python3 ;;
    */.venv/*) echo "${dir%%/.venv/*}/.venv/bin/python" ;;
    *) echo "${DET_PYTHON:?bench: set DET_PYTHON to the Python of the LibTorch in $dir}" ;;
  esac
}
bench_line() {
  local v
  v=$("$(bench_python "$1")" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || echo '?')
  case $(bench_torch_dir "$1") in
    /usr/*) echo "debian-$v" ;;
    */.venv/*) echo "pypi-$v" ;;
    *) echo "own-$v" ;;
  esac
}
bench_setup() {
  local b=$1 line
  shift
  line=$(cut -d' ' -f1 "$b/det-torch.txt" 2>/dev/null || true)
  if [ -z "$line" ]; then
    case $(bench_torch_dir "$b") in
      /usr/*) line=debian ;;
      */.venv/*) line=pypi ;;
      *) line=$(bench_torch_dir "$b") ;;
    esac
  fi
  DET_TORCH=$line DET_BUILD_DIR=$b "$root/scripts/setup.sh" "$@" >&2
}
bench_need_peer() {
  local b=$1 py
  shift
  py=$(bench_python "$b")
  "$py" -c "import $(IFS=,; echo "$*")" 2>/dev/null && return 0
  if [ "$py" = /usr/bin/python3 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "bench: installing Debian's python3-torch, python3-torchvision for the Python peer" >&2
    $sudo apt-get install -y -qq --no-install-recommends python3-torch python3-torchvision \
      python3-numpy >/dev/null
  else
    # torchvision's release that pairs with torch 2.N.x is 0.(N+15).x
    local tv
    tv=$("$py" -c 'import torch; v = torch.__version__.split("+")[0].split("."); print(f"0.{int(v[1]) + 15}.{v[2]}")')
    echo "bench: installing numpy and torchvision==$tv into the peer $py" >&2
    "$py" -m pip install -q --disable-pip-version-check numpy "torchvision==$tv"
  fi
}
