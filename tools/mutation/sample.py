"""A reproducible random sample of mutant names, for a mutation score when a full run takes too long.

    python tools/mutation/sample.py 'store*' 120 19     # 120 of store/'s mutants, random seed 19
    tools/mutation/run.sh $(python tools/mutation/sample.py 'store*' 120 19)

The names come from mutants/*.meta, which any `tools/mutation/run.sh` run writes in its first
(generation) step. The score of a uniform sample estimates the package's score: with n sampled
and score p, its standard error is sqrt(p (1 - p) / n) (docs/testing.md reports both).
"""
from __future__ import annotations

import fnmatch
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sample(pattern: str, n: int, seed: int) -> list[str]:
    os.chdir(ROOT)
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.utils.file_utils import walk_mutatable_files

    names = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        names += [k for k in data.exit_code_by_key if fnmatch.fnmatch(k, pattern)]
    if not names:
        sys.exit(f"no mutants match {pattern!r}: run tools/mutation/run.sh once to generate them")
    return sorted(random.Random(seed).sample(sorted(names), min(n, len(names))))


if __name__ == "__main__":
    print("\n".join(sample(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
