#!/usr/bin/env bash
# Create .venv in the repository root and install the project with its test extras.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned to the release this project is tested with (taken from the local disk on
# the project's machines); override with TORCH_SPEC, e.g. on a GPU server with another CUDA.
.venv/bin/python -m pip install --quiet ${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
# The cluster extra (Ray) too, so that the `engine cluster` tests run.
.venv/bin/python -m pip install --quiet -e '.[test,cluster]'
