"""Cost of each quality metric on one synthetic set, as JSON.

    python bench/bench_quality.py [--db STORE --set SET_ID] [--device cpu|cuda] [--n 800] [--metrics fd,...]

Without --db it measures a digits "set" of n real train images (the cost depends on the number
and size of the images, not on where they came from). FID/IS run on the official Inception file
when it is on this machine, else on a random-valued file of the same network (same cost, values
meaningless; marked in the output). On a CPU compare the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db")
    ap.add_argument("--set", dest="set_id")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=800)
    ap.add_argument("--metrics", default="fd,diversity,memorisation,domain,tsne,fid",
                    help="which to time (fid runs Inception at 299 px: minutes on a CPU)")
    args = ap.parse_args()
    import numpy as np
    import torch

    from engine.data.loaders import load_digits_dataset
    from engine.quality import fid as fidlib
    from engine.quality.assess import assess
    from store import artifacts, quality as store_quality
    from store.db import connect, migrate
    device = torch.device(args.device)
    tmp = Path(tempfile.mkdtemp())
    ds = load_digits_dataset()
    if args.db:
        db, set_row = args.db, store_quality.resolve_sets(args.set_id, args.db).iloc[0].to_dict()
    else:
        db = tmp / "bench.duckdb"
        with connect(db) as con:
            migrate(con)
        idx = np.arange(args.n) % len(ds.train_x)
        path = artifacts.artifacts_dir(db) / "synthetic" / "bench.npz"
        path.parent.mkdir(parents=True)
        np.savez(path, images=ds.train_x[idx], labels=ds.train_y[idx])
        set_row = {"synthetic_set_id": "bench", "path": str(path), "dataset": "digits", "n_images": args.n,
                   "generator_id": None, "n_base": None}
    weights_note = "official"
    try:
        weights = fidlib.find_weights()
    except fidlib.InceptionWeightsMissing:
        weights = tmp / fidlib.WEIGHTS_FILE
        fidlib.write_random_weights(weights)
        weights_note = "random-valued (timing only)"
    timings = {}
    start = time.perf_counter()
    assess(set_row, ("fd",), db, device, ds)  # trains and caches the reference classifier
    timings["reference_classifier_training_once"] = time.perf_counter() - start
    for metric in args.metrics.split(","):
        start = time.perf_counter()
        assess(set_row, (metric,), db, device, ds, inception_weights=weights, log=lambda m: None)
        timings[metric] = time.perf_counter() - start
    base = timings["fd"]
    print(json.dumps({"device": str(device), "torch_threads": torch.get_num_threads(),
                      "set_images": int(set_row["n_images"]), "image_size": ds.size,
                      "real_train_images": len(ds.train_x), "inception_weights": weights_note,
                      "fid_includes": "real train-split statistics, computed once and cached, on first use",
                      "seconds": {k: round(v, 3) for k, v in timings.items()},
                      "ratio_to_fd": {k: round(v / base, 2) for k, v in timings.items()},
                      "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                      "notes": ["each metric is timed alone, so tsne includes training the domain classifier "
                                "again (Fig. 1a needs its features)",
                                "memorisation is skipped for a set without a generator (the default set here): "
                                "its time is then imports and loading only",
                                "every call loads the cached reference classifier and the set"]}, indent=2))


if __name__ == "__main__":
    main()
