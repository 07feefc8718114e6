#!/usr/bin/env bash
# Quick start: set up .venv, load the paper's published runs into the store, start the dashboard.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
.venv/bin/engine store init
exec .venv/bin/engine app "$@"
