"""A store holding one digits synthetic set for the quality tests, without training a generator.

Its "synthetic" images are the generator's base images repeated: real pixels, so every metric
runs on them as on any set, and a memorisation check must call them copies."""
from __future__ import annotations

import json

import numpy as np

from engine.data.loaders import load_digits_dataset
from engine.data.subsets import base_indices, indices_hash
from store import artifacts, runs as store_runs
from store.db import connect, migrate


def make_store_with_set(tmp_path, n_base: int = 50, copies: int = 4):
    db = tmp_path / "q.duckdb"
    with connect(db) as con:
        migrate(con)
    ds = load_digits_dataset()
    base = base_indices(ds.train_y, n_base, 0)
    x, y = np.tile(ds.train_x[base], (copies, 1, 1, 1)), np.tile(ds.train_y[base], copies)
    path = artifacts.artifacts_dir(db) / "synthetic" / "gen-a-s0.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, images=x, labels=y)
    artifacts.upsert_generator({"generator_id": "gen-a", "dataset": "digits", "n_base": n_base,
                                "indices_hash": indices_hash(base), "preset": "tiny", "seed": 0,
                                "train_images": 60_000, "checkpoint": "none", "train_time_s": 30.0,
                                "final_loss": 0.2, "loss_curve": [[1280, 1.6], [30_000, 0.4], [60_000, 0.2]]}, db)
    artifacts.upsert_synthetic_set({"synthetic_set_id": "gen-a-s0", "generator_id": "gen-a", "n_images": len(x),
                                    "per_class": len(x) // 10, "seed": 0, "path": str(path),
                                    "sampling_s_per_image": 0.01}, db)
    rows = []
    for seed, (acc_base, acc_syn) in enumerate([(80.0, 84.0), (82.0, 85.0)]):
        for n_syn, acc in ((0, acc_base), (n_base, acc_syn)):
            rows.append({"run_id": f"r{seed}-{n_syn}", "run_key": f"k{seed}-{n_syn}", "source": "engine",
                         "dataset": "digits", "classifier": "SmallCNN",
                         "augmentation": "closed" if n_syn else "real", "generator": "EDM-tiny" if n_syn else None,
                         "n_base": n_base, "n_real_added": 0, "n_syn_added": n_syn, "seed": seed, "top1": acc,
                         "n_total": 800, "config": json.dumps({"subset_seed": 0}),
                         "generator_id": "gen-a" if n_syn else None, "synthetic_set_id": "gen-a-s0" if n_syn else None})
    store_runs.insert_runs(rows, db)
    return db
