"""Does the advised run narrow the verdict more per GPU-hour than a run picked at random? Prints JSON.

    python bench/bench_advice.py [--trials 20] [--sims 2] [--n-boot 20] [--seed 0]

Each trial draws a thin study from a truth with a known answer (engine.analysis.studies: CIFAR-10-like,
Eq. 1 and a saturating worth; 3 seeds a point, per-run noise 0.8 points), asks engine.analysis.advise
for its candidates, then runs the top candidate and one other candidate picked at random for real,
i.e. draws their runs from the truth (not from the fit the advice simulated with), refits and measures
how much each narrowed the verdict's interval per hour (hours: engine.analysis.cost, ResNet-110 on
CIFAR-10 with EDM-tiny, the bench figures of an empty store). A trial counts when the advised run's
shrink per hour beats the random one's. The issue's goal: >= 70 % of trials.
"""
import argparse
import json
import time

import numpy as np

from engine.analysis.advise import advise, candidates, cost_hours, new_runs, width
from engine.analysis.cost import CostModel
from engine.analysis.fit import analyse
from engine.analysis.simulate import TRUTHS
from engine.analysis.studies import MISSPECIFIED, Curves, from_eq1_truth, noisy_runs, runs_frame
from engine.analysis.verdict import explain

THIN = {500: ((500, 1000), (500, 1500)), 5000: ((5000, 10000), (5000, 15000)),
        25000: ((12500,), (25000, 75000))}


def thin(truth: Curves) -> Curves:
    """The truth measured at fewer points: room for the advice to choose."""
    return Curves(truth.name, truth.n_total, THIN, truth.real, truth.worth, truth.grid, truth.noise_sd)


def realise(truth: Curves, runs, c, sd, rng):
    """The candidate's runs drawn from the truth itself."""
    pts = np.array(c.points(), float)
    means = truth.accuracy(np.full(len(pts), c.n_base), pts[:, 0], pts[:, 1])
    return new_runs(runs, c, means, sd, rng)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20, help="trials per truth")
    parser.add_argument("--sims", type=int, default=4)
    parser.add_argument("--n-boot", type=int, default=20)
    parser.add_argument("--noise", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import pandas as pd
    rng = np.random.default_rng(args.seed)
    hours_of = cost_hours(CostModel({}, {}, {}), "resnet110", "CIFAR-10", 50_000, None, "EDM-tiny", "cpu")
    truths = {"cifar10_eq1": thin(from_eq1_truth(TRUTHS["cifar10_closed"])),
              "cifar10_saturating": thin(MISSPECIFIED["saturating_cifar"])}
    results, started = [], time.perf_counter()
    for name, truth in truths.items():
        wins = ties = done = 0
        details = []
        for trial in range(args.trials):
            runs = noisy_runs(truth, runs_frame(truth, 3), args.noise, rng)

            def refit(r):
                return analyse(r, "Sim", "Net", "closed", "G", grid=truth.grid or None, n_boot=args.n_boot, seed=0)
            a = refit(runs)
            n_base, amount = 5000, 5000.0
            out = advise(a, runs, n_base, amount, refit, hours_of, sims=args.sims, seed=int(rng.integers(1 << 30)))
            ranked = [r for r in out["candidates"] if r["shrink_per_gpu_hour"] is not None]
            if len(ranked) < 2:
                continue
            pool = {(c.n_base, c.kind, c.n_added, c.seeds, c.axis): c for c in
                    candidates(a, n_base, amount, a.n_total, out["verdict"].get("value"))}
            top = ranked[0]
            other = ranked[1 + int(rng.integers(len(ranked) - 1))]

            def realised(row):
                c = next(c for k, c in pool.items() if k[:4] == (row["n_base"], row["kind"], row["n_added"],
                                                                   row["seeds"]) and c.row()["point"] == row["point"])
                b = refit(pd.concat([runs, realise(truth, runs, c, args.noise, rng)], ignore_index=True))
                return (out["width_now"] - width(explain(b, n_base, amount)["verdict"], n_base)) / row["gpu_hours"]
            s_top, s_other = realised(top), realised(other)
            done += 1
            wins += s_top > s_other
            ties += s_top == s_other
            details.append({"top": f"{top['kind']} n_base {top['n_base']} +{top['n_added']}",
                            "random": f"{other['kind']} n_base {other['n_base']} +{other['n_added']}",
                            "top_shrink_per_hour": s_top, "random_shrink_per_hour": s_other})
        results.append({"truth": truth.name, "trials": done, "advised_beats_random": wins, "ties": ties,
                        "share": wins / done if done else None, "trials_detail": details})
    total = sum(r["trials"] for r in results)
    print(json.dumps({"goal": "advised beats random in >= 70 % of trials",
                      "share_all": sum(r["advised_beats_random"] for r in results) / total if total else None,
                      "trials": total, "sims": args.sims, "n_boot": args.n_boot, "noise_sd": args.noise,
                      "seconds": round(time.perf_counter() - started, 1), "results": results}, indent=1))


if __name__ == "__main__":
    main()
