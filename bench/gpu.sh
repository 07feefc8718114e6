#!/usr/bin/env bash
# The GPU evidence run on a machine whose Python lacks some of the project's packages.
#
# On the device tool's GPU machine, python3 has torch, timm, typer and the rest, but not diffusers,
# duckdb or pytorch-fid, and no registry is reachable: this installs the wheels that
# bench/fetch_gpu_wheels.sh prepared (carried in .gpu-wheels/) into a private folder, puts it and
# the repository on PYTHONPATH, and runs bench/gpu.py with the arguments given.
#
#   bash bench/gpu.sh --out "$OUT/gpu.json"          # see docs/speed.md for the whole device call
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
wheels=${GPU_WHEELS:-.gpu-wheels}
site=${GPU_SITE:-/tmp/gpu-bench-site}
path="$PWD"
if compgen -G "$wheels/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        "$wheels"/*.whl
    path="$path:$site"
else
    echo "bench/gpu.sh: no wheels in $wheels/ (run bench/fetch_gpu_wheels.sh first and carry the folder);" \
         "measurements that need a missing package will record the error" >&2
fi
export PYTHONPATH="$path${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$python" -c 'import diffusers, duckdb, torch; print("gpu.sh: diffusers", diffusers.__version__, "duckdb",
duckdb.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())' >&2 || true
exec "$python" bench/gpu.py "$@"
