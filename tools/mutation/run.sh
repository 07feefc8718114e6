#!/usr/bin/env bash
# Mutation testing of the analysis, the store and spec validation (configured in pyproject.toml
# [tool.mutmut]). Slow, so never in CI. See docs/testing.md.
#
#   tools/mutation/run.sh                    every configured module
#   tools/mutation/run.sh 'engine.analysis*' one package (mutmut's mutant-name globs)
#
# Needs the dev extra: pip install -e '.[dev]'. Results are cached in mutants/ (git-ignored);
# `rm -rf mutants` starts afresh. Afterwards: `mutmut results`, `mutmut show NAME`, `mutmut browse`.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
# The tests must import the mutated copy in mutants/, never this tree: no inherited PYTHONPATH.
unset PYTHONPATH
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
start=$(date +%s)
"$PY" -m mutmut run --max-children "${MUTMUT_CHILDREN:-1}" "$@"
echo "mutation run took $(( $(date +%s) - start )) s"
"$PY" tools/mutation/score.py "$@"
