"""Coverage of the 95 % intervals in simulated studies with a known answer; prints JSON.

    python bench/bench_coverage.py [--studies 200] [--n-boot 200] [--noise-sd SD | --db STORE]
                                   [--settings cifar10_closed,...] [--bootstrap seeds+points,seeds]

Each setting's truth follows Eq. 1 with chosen c1, c2 (engine/analysis/simulate.py); each study
measures the paper's design with 3 seeds and independent per-seed noise and runs the whole
analysis. The noise is the pooled seed-to-seed standard deviation of the store's engine runs
(--db), or --noise-sd. "published_means" rows simulate the published tables instead: one value per
point, the mean of 3 trials (noise sd / sqrt 3), so the intervals come from the surface residuals.
"""
import argparse
import json
import platform
import time

import numpy as np

from engine.analysis.simulate import TRUTHS, coverage
from engine.analysis.surface import PAPER_FEATURES


def measured_noise(db) -> dict:
    """Pooled within-point standard deviation over seeds of the store's engine runs."""
    from store.runs import query_runs
    runs = query_runs(db, source="engine")
    runs = runs[runs.seed.notna()]
    keys = ["dataset", "classifier", "augmentation", "generator", "n_base", "n_real_added", "n_syn_added"]
    groups = runs.fillna({"generator": ""}).groupby(keys).top1
    var, n = groups.var(ddof=1), groups.count()
    ok = n >= 2
    pooled = float(np.sqrt((var[ok] * (n[ok] - 1)).sum() / (n[ok] - 1).sum()))
    return {"noise_sd": pooled, "points": int(ok.sum()), "runs": int(n[ok].sum()),
            "datasets": sorted(runs.dataset.unique().tolist())}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--noise-sd", type=float, default=None)
    parser.add_argument("--db", default=None, help="store whose engine runs give the per-seed noise")
    parser.add_argument("--settings", default=",".join(TRUTHS))
    parser.add_argument("--bootstrap", default="seeds+points,resample",
                        help="comma-separated bootstrap methods to compare (engine/analysis/fit.py BOOTSTRAPS)")
    parser.add_argument("--published-means", action="store_true",
                        help="also simulate published means (one value per point) for the first setting")
    parser.add_argument("--features", default=None,
                        help="surface features as in `engine fit --features` (default: the paper's three logs)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.noise_sd is None and args.db is None:
        parser.error("give --noise-sd or --db (a store with engine runs)")
    noise = measured_noise(args.db) if args.noise_sd is None else {"noise_sd": args.noise_sd, "source": "given"}
    sd = noise["noise_sd"]
    features = args.features or PAPER_FEATURES
    if "," in features and not features.startswith("best:"):
        features = tuple(features.split(","))
    rows = []
    for name in args.settings.split(","):
        for method in args.bootstrap.split(","):
            start = time.process_time()
            row = coverage(TRUTHS[name], args.studies, sd, n_boot=args.n_boot, seed=args.seed, bootstrap=method,
                           features=features)
            row.update(key=name, cpu_s=round(time.process_time() - start, 1))
            rows.append(row)
            print(json.dumps({"progress": name, "bootstrap": method, "cpu_s": row["cpu_s"]}), flush=True)
    if args.published_means:
        name = args.settings.split(",")[0]
        for method in args.bootstrap.split(","):
            start = time.process_time()
            row = coverage(TRUTHS[name], args.studies, sd / np.sqrt(3), seeds=1, n_boot=args.n_boot, seed=args.seed,
                           bootstrap=method, features=features)
            row.update(key=name + ":published_means", cpu_s=round(time.process_time() - start, 1))
            rows.append(row)
    print(json.dumps({"benchmark": "coverage of 95 % intervals in simulated studies with known c1, c2",
                      "machine": platform.processor() or platform.machine(), "noise": noise,
                      "studies": args.studies, "n_boot": args.n_boot, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
