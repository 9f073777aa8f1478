#!/usr/bin/env bash
# Runs a Python test with the project's .venv/ (PyPI's peers: tensorboard, the 2.x torch) when
# there is one, else the system's python3.   venv_python.sh SOURCE_DIR SCRIPT [ARGS...]
root=$1
shift
py="$root/.venv/bin/python"
[ -x "$py" ] || py=python3
exec "$py" "$@"
