"""The published equations against their own runs, the open choices and two claims; prints JSON.

    PYTHONPATH=. python bench/bench_checks.py [--n-boot 200]

For each of the seven published equations: how many measured real runs it puts on the wrong side
of the measured synthetic runs (published c1, c2 and our refit; both readings of Table 9), the
sensitivity rows of engine.analysis.sensitivity, c2 > 1 fitted without forcing it; and per
dataset and classifier, closed-set c1 minus open-set c1 with its interval. docs/method.md quotes it.
"""
import argparse
import json
import time

from engine.analysis.checks import claim_c2_above_one, claim_closed_below_open, paper_brackets
from engine.analysis.fit import analyse
from engine.analysis.paper import paper_runs, published_equations
from engine.analysis.sensitivity import joint_region, sensitivity


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    start = time.process_time()
    runs = {r: paper_runs(r) for r in ("total", "printed")}
    fits = {eq["equation"]: analyse(runs["total"], eq["dataset"], eq["classifier"], eq["augmentation"],
                                    eq["generator"], source="paper", n_boot=args.n_boot) for eq in published_equations()}
    refit = {k: (a.c1, a.c2) for k, a in fits.items()}
    brackets = {r: paper_brackets(r, refit=refit) for r in runs}
    out = {"wrong_side": {r: [{k: row[k] for k in ("equation", "real_points", "wrong_side", "wrong_side_beyond_noise",
                                                      "noise", "refit")} for row in rows]
                          for r, rows in brackets.items()},
           "wrong_side_points": [{"equation": row["equation"], **{k: p[k] for k in (
               "n_base", "n_real_added", "target_acc", "equation_n_syn_added", "below", "above",
               "wrong_side_beyond_noise")}, "contradicting": [c["n_syn_added"] for c in p["contradicting"]]}
               for row in brackets["total"] for p in row["bracket_points"] if p["wrong_side"]],
           "sensitivity": {}, "c2_above_one": {}, "joint_region": {}, "closed_below_open": []}
    for eq in published_equations():
        setting = (eq["dataset"], eq["classifier"], eq["augmentation"], eq["generator"])
        out["sensitivity"][eq["equation"]] = sensitivity(runs["total"], *setting, source="paper", tab9_runs=runs)
        out["c2_above_one"][eq["equation"]] = claim_c2_above_one(fits[eq["equation"]])
        j = joint_region(fits[eq["equation"]])
        out["joint_region"][eq["equation"]] = {k: j[k] for k in ("draws", "kept", "note")} | {
            "c1_range": [min(p[0] for p in j["points"]), max(p[0] for p in j["points"])] if j["points"] else None,
            "c2_range": [min(p[1] for p in j["points"]), max(p[1] for p in j["points"])] if j["points"] else None}
    for ds, cl in (("CIFAR-10", "ResNet-110"), ("ImageNet-100", "ResNet-50"), ("ImageNet-100", "ViT-B/32")):
        out["closed_below_open"] += claim_closed_below_open(runs["total"], ds, cl, source="paper", n_boot=args.n_boot)
    out["cpu_s"] = round(time.process_time() - start, 1)
    print(json.dumps(out, indent=1, allow_nan=False, default=list))


if __name__ == "__main__":
    main()
