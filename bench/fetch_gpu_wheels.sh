#!/usr/bin/env bash
# Prepare, here, the wheels that bench/gpu.sh installs on the GPU machine.
#
# The device tool's GPU machine (kind nvidia-h200) runs Python 3.12 on x86-64 with torch,
# torchvision, timm, typer, rich, pandas, pyarrow, scipy, statsmodels, scikit-learn, safetensors
# and huggingface-hub already installed, but not diffusers, duckdb or pytorch-fid, and it cannot
# reach a package registry. So they travel with the working tree as wheels: this script downloads
# them (no dependencies: everything they need is on that image) at the versions of this project's
# venv, the versions its tests pass with.
#
#   bash bench/fetch_gpu_wheels.sh            # -> .gpu-wheels/ (git-ignored), about 25 MB
#   PYVER=3.11 bash bench/fetch_gpu_wheels.sh /tmp/w311   # wheels for another Python, e.g. to try gpu.sh here
#
# Then name the folder in the device tool's `carry` (see docs/speed.md).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.gpu-wheels}
python=${PYTHON:-.venv/bin/python}
pyver=${PYVER:-3.12}
pins=$("$python" -c '
import importlib.metadata as md
print(" ".join(f"{n}=={md.version(n)}" for n in ("diffusers", "duckdb", "pytorch-fid")))')
rm -rf "$dir"
mkdir -p "$dir"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
# shellcheck disable=SC2086  # $pins is a list of requirements
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
    "${platforms[@]}" -d "$dir" $pins
ls -l "$dir"
du -sh "$dir"
