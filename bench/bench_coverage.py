"""Coverage of the 95 % intervals in simulated studies with a known answer; prints JSON.

    python bench/bench_coverage.py [--studies 200] [--n-boot 200] [--noise-sd SD | --db STORE]
                                   [--settings cifar10_closed,...] [--bootstrap seeds+points,seeds]
    PYTHONPATH=. python bench/bench_coverage.py --verdict [--held-back] [--studies 60] --noise-sd 0.24
                                   [--truths eq1,misspecified,paper] [--interp pchip,linear] [--seed-offset SD]

(PYTHONPATH=. makes a worktree's engine/ the one imported: the shared venv's editable install
points at the main checkout.)

--verdict asks every question of engine.analysis.studies (measured amounts and midpoints, both
directions, every base, and N = K = n_base between bases) of simulated studies whose truths
include ones the paper's log surface cannot follow, as seeded runs (3 seeds) and as published
means, and measures coverage, width (median hi/lo) and bias of the bracket, the surface, Eq. 1 and
the verdict; "coverage_table" is what engine/analysis/verdict.py's COVERAGE holds (the minimum
over the truths). --held-back runs the truths drawn once from a fixed seed instead.

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
    parser.add_argument("--verdict", action="store_true", help="coverage of the bracket, surface, Eq. 1 and verdict")
    parser.add_argument("--held-back", action="store_true", help="with --verdict: the held-back truths only")
    parser.add_argument("--truths", default="eq1,misspecified,paper", help="with --verdict: families of truths")
    parser.add_argument("--data", default="seeds,means", help="with --verdict: seeds, means or both")
    parser.add_argument("--interp", default="pchip", help="with --verdict: pchip, linear or both")
    parser.add_argument("--interp-errors", action="store_true",
                        help="with --verdict: the bracket's error on noise-free runs, PCHIP against straight lines")
    parser.add_argument("--seed-offset", type=float, default=0.0,
                        help="with --verdict: sd of an offset shared by every run of a seed at a base")
    args = parser.parse_args()
    if args.verdict:
        return verdict_main(args)
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


def verdict_truths(args) -> dict:
    from engine.analysis.simulate import TRUTHS as EQ1_TRUTHS
    from engine.analysis.studies import MISSPECIFIED, from_eq1_truth, held_back, paper_truths
    if args.held_back:
        return held_back()
    families = args.truths.split(",")
    out = {}
    if "eq1" in families:
        out.update({k: from_eq1_truth(t) for k, t in EQ1_TRUTHS.items()})
    if "misspecified" in families:
        out.update(MISSPECIFIED)
    if "paper" in families:
        out.update(paper_truths())
    return out


def coverage_table(rows) -> dict:
    """Per "grade:method:data", the smallest coverage over truths with at least 20 such questions, and the
    truth it came from; the same for each method's interval over all questions ("method:data")."""
    table = {}
    for row in rows:
        cells = {f"{k}:{row['data']}": v for k, v in row["verdict_by_key"].items()}
        for m in ("bracket", "surface", "eq1", "verdict"):
            for region in ("inside", "beyond", "across"):
                cells[f"{m}:{region}:{row['data']}"] = row[region][m]
        for key, stats in cells.items():
            given = stats.get("with_interval", 1) * stats.get("questions", 0)
            if stats.get("coverage") is None or given < 20:
                continue
            if key not in table or stats["coverage"] < table[key]["coverage"]:
                table[key] = {"coverage": round(stats["coverage"], 3), "truth": row["key"], "questions": stats["questions"]}
    return dict(sorted(table.items()))


def verdict_main(args):
    from engine.analysis.verdict_coverage import coverage_study
    if args.noise_sd is None and args.db is None:
        raise SystemExit("give --noise-sd or --db: the per-run seed noise of the designed truths")
    noise = measured_noise(args.db) if args.noise_sd is None else {"noise_sd": args.noise_sd, "source": "given"}
    if args.interp_errors:
        from engine.analysis.verdict_coverage import interpolation_errors
        out = {key: {interp: interpolation_errors(truth, interp) for interp in ("pchip", "linear")}
               for key, truth in verdict_truths(args).items()}
        print(json.dumps({"benchmark": "the bracket's interpolation error on noise-free runs", "results": out},
                         indent=1, allow_nan=False))
        return
    rows = []
    for key, truth in verdict_truths(args).items():
        # A truth fitted to a published setting keeps that setting's own noise (its point means' sd);
        # the designed ones get the engine runs' per-run sd, i.e. sd / sqrt(3) for a mean of 3 seeds.
        sd_point = truth.noise_sd if truth.noise_sd else noise["noise_sd"] / np.sqrt(3)
        for data in args.data.split(","):
            for interp in args.interp.split(","):
                row = coverage_study(truth, data, args.studies, sd_point, seed=args.seed, n_boot=args.n_boot,
                                     seed_offset_sd=args.seed_offset, interp=interp)
                row["key"] = key
                rows.append(row)
                print(json.dumps({"progress": key, "data": data, "interp": interp, "cpu_s": row["cpu_s"]}), flush=True)
    print(json.dumps({"benchmark": "coverage, width and bias of the verdict and its methods in simulated studies",
                      "machine": platform.processor() or platform.machine(), "noise": noise,
                      "studies": args.studies, "n_boot": args.n_boot, "held_back": args.held_back,
                      "seed_offset_sd": args.seed_offset, "coverage_table": coverage_table(rows), "results": rows},
                     indent=1, allow_nan=False, default=str))


if __name__ == "__main__":
    main()
