"""What each choice the paper does not specify does to the seven published equations; prints JSON.

    python bench/bench_choices.py [--n-boot 200]

For every equation: our refit with the defaults, then with one choice changed at a time: eps 1
instead of 1e-3; Eq. 13 fitted on log(n_syn_added / n_base) instead of the ratio itself; c2 left
free (c2 > 0) instead of c2 > 1; the Eq. 12 bracket at 1,000 x n_base instead of the paper's 100;
the residual bootstrap without resampling points. docs/method.md quotes the numbers.
"""
import argparse
import json

import numpy as np
from scipy.optimize import least_squares

import engine.analysis.equivalence as equivalence
from engine.analysis.fit import analyse
from engine.analysis.paper import paper_runs, published_equations


def refit(a, space: str):
    """Eq. 13 on the tuples of `a` with another loss or parameter space."""
    nb = np.array([t["n_base"] for t in a.tuples], float)
    r = np.array([t["ratio"] for t in a.tuples])
    y = np.array([t["syn_ratio"] for t in a.tuples])
    t = a.tau * nb
    if space == "log":
        res = least_squares(lambda th: th[0] * t + np.log(np.expm1(r * np.logaddexp(0, th[1]))) - np.log(y),
                            [0.0, 0.0], method="lm")
        return float(np.exp(res.x[0])), float(1 + np.exp(res.x[1]))
    # c2 > 0 only: c2 = exp(b); below 1 the growth term is negative and so is the prediction.
    res = least_squares(lambda th: np.exp(th[0] * t) * np.expm1(r * th[1]) - y, [0.0, 1.0], method="lm")
    return float(np.exp(res.x[0])), float(np.exp(res.x[1]))


def summary(a):
    return {"c1": a.c1, "c2": a.c2, "c1_ci": a.c1_ci, "c2_ci": a.c2_ci, "tuples": len(a.tuples),
            "error": a.eq1_error}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    runs = paper_runs()
    out = []
    for eq in published_equations():
        setting = (eq["dataset"], eq["classifier"], eq["augmentation"], eq["generator"])
        base = analyse(runs, *setting, source="paper", n_boot=args.n_boot)
        row = {"equation": eq["equation"], "default": summary(base),
               "eps_1": summary(analyse(runs, *setting, source="paper", n_boot=0, eps=1.0)),
               "bootstrap_without_points": summary(analyse(runs, *setting, source="paper", n_boot=args.n_boot,
                                                           bootstrap="seeds"))}
        if base.tuples:
            row["loss_on_log"] = dict(zip(("c1", "c2"), refit(base, "log")))
            row["c2_free"] = dict(zip(("c1", "c2"), refit(base, "free")))
        saved = equivalence.ROOT_BOUND_FACTOR
        equivalence.ROOT_BOUND_FACTOR = 1000
        try:
            row["bracket_1000"] = summary(analyse(runs, *setting, source="paper", n_boot=0))
        finally:
            equivalence.ROOT_BOUND_FACTOR = saved
        out.append(row)
    print(json.dumps({"benchmark": "sensitivity of the seven published refits to unspecified choices",
                      "n_boot": args.n_boot, "equations": out}, indent=1, default=float))


if __name__ == "__main__":
    main()
