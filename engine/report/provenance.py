"""Where a report's numbers come from: the project's commit, the store, a checksum of the runs used,
the packages that computed them and the run keys, so that a reader can trace and recompute each.

Everything here is a function of the code, the store and the runs: two reports of the same store and
arguments carry the same provenance (the report's one timestamp line is the caller's)."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("equivalence", "numpy", "pandas", "scipy", "statsmodels", "duckdb", "plotly")
# The columns that make a run what it is to a fit; their text, row by row in run_key order, is hashed.
RUN_FIELDS = ("run_key", "source", "dataset", "classifier", "augmentation", "generator", "traditional", "n_base",
              "n_real_added", "n_syn_added", "seed", "top1", "n_total")


def git_commit(root: Path = ROOT) -> str:
    """The checkout's commit, with a note when files differ from it; what else it can say without git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (git is not available)"
    return head.stdout.strip() + (" (with uncommitted changes to tracked files)" if dirty else "")


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _text(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    return str(value)


def run_lines(runs: pd.DataFrame) -> list[str]:
    """One line of text a run, in run_key order (run_id where a run has no key)."""
    keyed = runs.assign(run_key=runs.run_key.where(runs.run_key.notna(), runs.run_id)) if "run_id" in runs else runs
    rows = keyed.reindex(columns=list(RUN_FIELDS)).astype(object)
    lines = ["\t".join(_text(v) for v in row) for row in rows.itertuples(index=False)]
    return sorted(lines)


def runs_checksum(runs: pd.DataFrame) -> str:
    """sha256 of the runs' defining fields: equal for the same runs whatever order they were read in."""
    digest = hashlib.sha256()
    for line in run_lines(runs):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def run_keys(runs: pd.DataFrame) -> list[str]:
    keys = runs.run_key.where(runs.run_key.notna(), runs.run_id) if "run_id" in runs else runs.run_key
    return sorted(set(str(k) for k in keys))
