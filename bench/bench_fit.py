"""Time a full refit (surfaces + Eq. 12 tuples + Eq. 13) of every published setting; prints JSON.

    python bench/bench_fit.py [--repeat 20] [--n-boot 200]
"""
import argparse
import json
import platform
import statistics
import time

import pandas as pd

from engine.analysis.fit import analyse
from engine.analysis.select import settings
from store.runs import paper_rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    runs = pd.DataFrame(paper_rows())
    runs["seed"] = pd.array([None] * len(runs), dtype="Int64")
    results = []
    for setting in settings(runs):
        row = {"setting": " / ".join(str(v) for v in setting)}
        for label, n_boot in (("refit_ms", 0), ("refit_with_bootstrap_ms", args.n_boot)):
            analyse(runs, *setting, n_boot=n_boot)  # warm caches and imports
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                analyse(runs, *setting, n_boot=n_boot)
                times.append((time.perf_counter() - start) * 1000)
            row[label] = {"median": round(statistics.median(times), 2), "max": round(max(times), 2)}
        results.append(row)
    print(json.dumps({"benchmark": "equivalence refit on the shipped (published) runs",
                      "machine": platform.processor() or platform.machine(), "repeat": args.repeat,
                      "n_boot": args.n_boot, "settings": results}, indent=2))


if __name__ == "__main__":
    main()
