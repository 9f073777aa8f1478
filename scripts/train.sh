#!/usr/bin/env bash
# Installs what is missing, builds det-run, then trains: scripts/train.sh CONFIG [det-run args...]
# e.g. scripts/train.sh configs/mnist/const.yaml
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" det-run >&2
# Data: $DET_DATA_DIR if set; else a shared/data checkout beside the project; else ./data, where
# MNIST and CIFAR-10 are downloaded when the network allows.
if [ -z "${DET_DATA_DIR:-}" ]; then
  if [ -d "$root/../shared/data/mnist" ]; then export DET_DATA_DIR="$root/../shared/data"; else export DET_DATA_DIR="$PWD/data"; fi
fi
exec "${DET_BUILD_DIR:-$root/build}/det-run" "$@"
