"""How well the cost model predicts a run it was not fitted on, on this machine. Prints JSON.

    python bench/bench_cost.py --db STORE            # a store with engine runs (e.g. after `engine study digits`)
    python bench/bench_cost.py --build /tmp/t.duckdb # first train a small digits set of timed runs here

Leave-one-out per group of engine.analysis.cost: each timed classifier run (grouped by classifier, input
size and device), each generator training and each sampled set is predicted by the model fitted to the
other ones of its group; the table gives per group how many, the median absolute error, the share within
30 % (the issue's goal: a held-out run within 30 %) and how often the 95 % interval held the measured time.
`--build` trains, with `engine run --threads 1`, digits real grids (0,N,2N,3N at n_base 20, 50, 100, 200,
2 seeds) and closed-set N at n_base 20, 50 and 100 (three EDM-tiny trainings, 1 seed).
"""
import argparse
import json
import platform
import subprocess
import sys
import time

import numpy as np


def loo(work, seconds, devices, predict_at=None):
    from engine.analysis.cost import fit_times
    work, seconds = np.asarray(work, float), np.asarray(seconds, float)
    errors, covered, n = [], 0, len(work)
    for i in range(n):
        keep = np.arange(n) != i
        f = fit_times(work[keep], seconds[keep], devices)
        if f is None:
            continue
        value, lo, hi = f.predict(work[i] if predict_at is None else predict_at)
        errors.append(value / seconds[i] - 1)
        covered += lo is not None and lo <= seconds[i] <= hi
    if not errors:
        return None
    e = np.abs(errors)
    return {"n": n, "median_abs_error": float(np.median(e)), "max_abs_error": float(e.max()),
            "within_30pct": float(np.mean(e <= 0.30)), "interval_covered": covered / len(errors),
            "median_seconds": float(np.median(seconds))}


def build(db: str) -> float:
    cmd = [sys.executable, "-m", "engine.cli", "run", "--db", db, "--threads", "1", "--quality", "off"]
    started = time.perf_counter()
    for b in (20, 50, 100, 200):
        subprocess.run([*cmd, "--n-base", str(b), "--added", "0,N,2N,3N", "--seeds", "2"], check=True)
    for b in (20, 50, 100):
        subprocess.run([*cmd, "--n-base", str(b), "--augmentation", "closed", "--added", "N", "--seeds", "1"],
                       check=True)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db")
    parser.add_argument("--build")
    args = parser.parse_args()
    db = args.build or args.db
    built = build(args.build) if args.build else None
    from engine.analysis.cost import device_class, run_work
    from store import timings
    rows = []
    runs = timings.classifier_timings(db)
    if len(runs):
        work, size = run_work(runs)
        runs = runs.assign(work=work, size=size, dclass=[device_class(d) for d in runs.device])
        for (name, s, dc), g in runs.groupby(["classifier", "size", "dclass"]):
            r = loo(g.work, g.wall_time_s, list(g.device.dropna()))
            if r:
                rows.append({"what": f"{name} ({s}x{s}) training", "device": dc, **r})
    gens = timings.generator_timings(db)
    for (kind, preset), g in gens.groupby(["kind", "preset"]):
        r = loo(g.train_images, g.train_time_s, list(g.device.dropna()))
        if r:
            rows.append({"what": f"{kind}-{preset} training", "device": device_class(g.device.iloc[0]), **r})
    samp = timings.sampling_timings(db)
    for (kind, preset), g in samp.groupby(["kind", "preset"]):
        r = loo(np.ones(len(g)), g.sampling_s_per_image, list(g.device.dropna()))
        if r:
            rows.append({"what": f"{kind}-{preset} sampling (s/image)", "device": device_class(g.device.iloc[0]), **r})
    load = open("/proc/loadavg").read().split()[:3] if platform.system() == "Linux" else None
    print(json.dumps({"store": str(db), "built_in_s": built, "load_average": load, "goal": "held-out within 30 %",
                      "groups": rows}, indent=1))


if __name__ == "__main__":
    main()
