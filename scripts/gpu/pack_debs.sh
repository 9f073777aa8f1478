#!/usr/bin/env bash
# Downloads the Debian packages det's build needs besides LibTorch into .debs/ (git ignores it),
# for the GPU host, which has no package registry: scripts/gpu/check.sh unpacks them there under a
# prefix of their own. About 6 MiB. Run on a Debian 12 machine with apt.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$root/.debs"
cd "$root/.debs"
packages=(libyaml-cpp-dev libyaml-cpp0.7 libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
          libcli11-dev nlohmann-json3-dev libgtest-dev googletest libsqlite3-dev libsqlite3-0
          zlib1g-dev libjpeg62-turbo-dev libjpeg62-turbo libturbojpeg0-dev libturbojpeg0
          libpng-dev libpng16-16 libgloo-dev)
apt-get download "${packages[@]}" >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null && apt-get download "${packages[@]}" >/dev/null
}
echo "pack_debs: $(ls *.deb | wc -l) packages, $(du -sh . | cut -f1) in $root/.debs"
