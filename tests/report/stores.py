"""Small stores for the report's tests: a toy setting of seeded engine runs whose synthetic runs name a
synthetic set, so that a report has quality metrics and run keys of its own to show."""
from __future__ import annotations

import numpy as np

from engine.analysis.surface import PAPER_FEATURES, design_matrix
from store import quality as store_quality
from store import runs as store_runs
from store.db import connect, migrate

B_TRUE = np.array([6.0, 0.4, 3.0, -30.0])   # a surface with a real synthetic gain (tests/analysis/test_fit.py)
SEED_SHIFT = (-0.3, 0.0, 0.4)


def true_acc(n_real, n_syn):
    return float((design_matrix(np.atleast_1d(n_real), np.atleast_1d(n_syn), PAPER_FEATURES, 1e-3) @ B_TRUE)[0])


def toy_rows(bases=(1000, 5000), dataset="Toy", classifier="Net", synthetic_set_id="toyset") -> list[dict]:
    rows = []
    for n_base in bases:
        points = [("real", 0), *(("real", r * n_base) for r in (1, 2, 3)), *(("syn", s * n_base) for s in (1, 2, 4, 8))]
        for kind, added in points:
            for seed, shift in enumerate(SEED_SHIFT):
                syn = kind == "syn"
                acc = true_acc(n_base + (0 if syn else added), added if syn else 0) + shift
                rows.append({"run_id": f"{dataset}-{n_base}-{kind}-{added}-{seed}",
                             "run_key": f"toy:{dataset}:{n_base}:{kind}:{added}:{seed}", "source": "engine",
                             "dataset": dataset, "classifier": classifier, "augmentation": "closed" if syn else "real",
                             "generator": "EDM-toy" if syn else None, "n_base": n_base,
                             "n_real_added": 0 if syn else added, "n_syn_added": added if syn else 0, "seed": seed,
                             "top1": acc, "n_total": 20_000, "traditional": "crop+flip",
                             "synthetic_set_id": synthetic_set_id if syn and added else None})
    return rows


def toy_store(path, with_quality: bool = True):
    with connect(path) as con:
        migrate(con)
    store_runs.insert_runs(toy_rows(), path)
    if with_quality:
        store_quality.write_metrics("toyset", [{"metric": "fd_digits", "value": 12.345, "ci_low": 11.0, "ci_high": 13.5,
                                                "extractor": "toy-features", "n_real": 1000, "n_syn": 8000}], path)
    return path
