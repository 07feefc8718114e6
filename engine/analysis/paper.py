"""The paper check: the seven published equations (Eq. 2-6, 8, 9) beside our refit of the published runs.

For each equation: the published c1, c2; our refit from the paper's own runs (its surface, grid
and tau) with a bootstrap interval; whether the published values fall inside; and, where they do
not, the evidence a reader needs: how far the tuples extrapolate beyond the measured synthetic
amounts, how many tuples had no root, what each base alone says, and how well the published
equation fits our tuples. Table 9's inconsistent row can be read either way (`tab9`).
"""
from __future__ import annotations

import csv
from importlib import resources

import numpy as np
import pandas as pd

from engine.analysis.equivalence import beyond, eq1, fit_eq1
from engine.analysis.fit import MIN_TUPLES, Analysis, analyse
from engine.analysis.coverage_table import label as coverage_label
from engine.catalog.vocab import PAPER
from store.runs import TAB9_READINGS, paper_rows

# Our c1, c2 intervals on the published means: what the simulation measured them to cover (c2: far short).
MEANS_LABEL = "c1: {c1}; c2: {c2}".format(c1=coverage_label("c1:means"), c2=coverage_label("c2:means"))
JSON_KEYS = ("equation", "dataset", "classifier", "augmentation", "published_c1", "published_c2",
             "c1", "c2", "c1_ci", "c2_ci", "inside", "note", "labels", "bracket_points", "real_points", "wrong_side",
             "wrong_side_beyond_noise", "refit_wrong_side", "worst_wrong_side")


def published_equations() -> list[dict]:
    """The seven equations as printed, shipped beside the published runs."""
    with resources.as_file(resources.files("store").joinpath("data/paper_equations.csv")) as path:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    return [{"equation": int(r["equation"]), "dataset": r["dataset"], "classifier": r["classifier"],
             "augmentation": r["augmentation"], "generator": r["generator"], "published_c1": float(r["c1"]),
             "published_c2": float(r["c2"]), "tau_n_base": int(r["tau_n_base"])} for r in rows]


def paper_runs(tab9: str = "total") -> pd.DataFrame:
    runs = pd.DataFrame(paper_rows(tab9))
    runs["seed"] = pd.array([None] * len(runs), dtype="Int64")
    return runs


def _inside(value, ci) -> bool | None:
    return None if ci is None else bool(ci[0] <= value <= ci[1])


def _per_base(a: Analysis) -> list[dict]:
    """Eq. 1 on each base's tuples alone: what each base says about c1 and c2."""
    out = []
    for b in sorted({t["n_base"] for t in a.tuples}):
        ts = [t for t in a.tuples if t["n_base"] == b]
        if len(ts) < MIN_TUPLES:
            continue
        f = fit_eq1(np.full(len(ts), float(b)), [t["n_real_added"] for t in ts], [t["n_syn_added"] for t in ts], a.tau)
        out.append({"n_base": b, "c1": f["c1"], "c2": f["c2"], "identified": f["identified"], "reason": f["reason"]})
    return out


def _evidence(a: Analysis, eq: dict) -> list[str]:
    lines = []
    if round(1 / a.tau) != eq["tau_n_base"]:
        lines.append(f"tau: published 1/{eq['tau_n_base']:,}, ours 1/{round(1 / a.tau):,}")
    for b, fit in sorted(a.bases.items()):
        ts = [t for t in a.tuples if t["n_base"] == b]
        if not ts:
            continue
        measured = fit.max_syn_ratio
        far = [t["syn_ratio"] for t in ts if beyond(t["syn_ratio"], measured)]
        if far:
            lines.append(f"at n_base {b:,}, {len(far)} of {len(ts)} tuples are extrapolated to "
                         f"{min(far):.0f}-{max(far):.0f} x n_base while the largest measured synthetic amount "
                         f"is {measured:g} x")
    n_grid = len(a.tuples) + len(a.dropped)
    if a.dropped:
        reasons = sorted({d["reason"] for d in a.dropped})
        lines.append(f"{len(a.dropped)} of {n_grid} grid tuples dropped ({'; '.join(reasons)})")
    for pb in _per_base(a):
        lines.append(f"a fit on n_base {pb['n_base']:,} alone gives " +
                     (f"c1 = {pb['c1']:.3g}, c2 = {pb['c2']:.3g}" if pb["identified"] else f"no estimate ({pb['reason']})"))
    if a.tuples:
        nb = np.array([t["n_base"] for t in a.tuples], float)
        nr = np.array([t["n_real_added"] for t in a.tuples], float)
        y = np.array([t["syn_ratio"] for t in a.tuples])
        pub = np.sqrt(np.mean((eq1(nb, nr, eq["published_c1"], eq["published_c2"], a.tau) / nb - y) ** 2))
        ours = f", ours {a.eq1_rmse:.3g}" if a.eq1_rmse is not None else ""
        lines.append(f"RMSE of n_syn_added/n_base on our tuples: published equation {pub:.3g}{ours}")
    return lines


def check_equation(eq: dict, tab9: str = "total", n_boot: int = 200, seed: int = 0, runs=None) -> dict:
    runs = paper_runs(tab9) if runs is None else runs
    a = analyse(runs, eq["dataset"], eq["classifier"], eq["augmentation"], eq["generator"], source=PAPER,
                n_boot=n_boot, seed=seed)
    row = {k: eq[k] for k in ("equation", "dataset", "classifier", "augmentation", "generator",
                              "published_c1", "published_c2")}
    row.update(c1=a.c1, c2=a.c2, c1_ci=list(a.c1_ci) if a.c1_ci else None,
               c2_ci=list(a.c2_ci) if a.c2_ci else None, tab9=tab9, tuples=len(a.tuples), dropped=len(a.dropped))
    in1, in2 = _inside(eq["published_c1"], a.c1_ci), _inside(eq["published_c2"], a.c2_ci)
    row["inside"] = None if in1 is None or in2 is None else bool(in1 and in2)
    row["c1_inside"], row["c2_inside"] = in1, in2
    evidence = _evidence(a, eq)
    row["evidence"] = evidence
    if a.c1 is None:
        status = a.eq1_error
    elif row["inside"] is None:
        status = "no interval (too few bootstrap draws gave Eq. 1 fits)"
    elif row["inside"]:
        status = f"published c1 and c2 inside our intervals ({MEANS_LABEL})"
        wide = [n for n, ci in (("c1", a.c1_ci), ("c2", a.c2_ci)) if ci[0] > 0 and ci[1] / ci[0] > 100]
        if wide:
            status += (f", but the {' and '.join(wide)} interval{'s span' if len(wide) > 1 else ' spans'} more "
                       f"than two orders of magnitude: these runs hardly constrain {'them' if len(wide) > 1 else 'it'}")
    else:
        outside = [n for n, ok in (("c1", in1), ("c2", in2)) if not ok]
        status = f"published {' and '.join(outside)} outside our interval ({MEANS_LABEL})"
    row["note"] = status + (": " + "; ".join(evidence) if evidence else "")
    return row


def _tab9_matters(runs: dict, dataset: str) -> bool:
    """Whether the two readings of Table 9's row give this dataset different runs (CIFAR-10's do)."""
    added = [sorted(r[r.dataset == dataset].n_real_added) for r in runs.values()]
    return any(a != added[0] for a in added)


def paper_check(tab9: str = "total", n_boot: int = 200, seed: int = 0) -> list[dict]:
    """All seven equations; CIFAR-10's two also carry the other reading of Table 9's row."""
    if tab9 not in TAB9_READINGS:
        raise ValueError(f"unknown Table 9 reading {tab9!r}; choose from {', '.join(TAB9_READINGS)}")
    runs = {r: paper_runs(r) for r in TAB9_READINGS}
    rows = []
    for eq in published_equations():
        row = check_equation(eq, tab9, n_boot, seed, runs[tab9])
        if _tab9_matters(runs, eq["dataset"]):
            other = next(r for r in TAB9_READINGS if r != tab9)
            alt = check_equation(eq, other, n_boot, seed, runs[other])
            row["tab9_other_reading"] = {k: alt[k] for k in ("tab9", "c1", "c2", "c1_ci", "c2_ci", "inside", "note")}
        rows.append(row)
    _add_brackets(rows, tab9)
    return rows


def _add_brackets(rows: list[dict], tab9: str) -> None:
    """Each equation against its own measured runs, no surface: which measured synthetic runs bracket each
    measured real run (engine.analysis.checks), the wrong-side count for the published c1, c2 and for
    ours, and the labels of our c1 and c2 intervals (published means: their measured coverage)."""
    from engine.analysis.checks import paper_brackets
    from engine.analysis.coverage_table import label
    refit = {r["equation"]: (r["c1"], r["c2"]) for r in rows}
    found = {b["equation"]: b for b in paper_brackets(tab9, refit)}
    for r in rows:
        b = found[r["equation"]]
        wrong = [p for p in b["bracket_points"] if p["wrong_side"]]
        worst = sorted(wrong, key=lambda p: -max(abs(c["gap"]) for c in p["contradicting"]))[:3]
        r.update(bracket_points=b["bracket_points"], real_points=b["real_points"], wrong_side=b["wrong_side"],
                 wrong_side_beyond_noise=b["wrong_side_beyond_noise"],
                 refit_wrong_side=(b.get("refit") or {}).get("wrong_side"),
                 worst_wrong_side=[wrong_side_text(p) for p in worst],
                 labels={"c1_ci": label("c1:means"), "c2_ci": label("c2:means")})


def wrong_side_text(point: dict) -> str:
    """One measured real point the equation puts on the wrong side of the measured synthetic runs, in words."""
    c = max(point["contradicting"], key=lambda c: abs(c["gap"]))
    said = (f"n_base {point['n_base']:,}, {point['n_real_added']:,.0f} more real images ({point['target_acc']:.2f} %): "
            f"the equation says {point['equation_n_syn_added']:,.0f} synthetic images, but the measured "
            f"{c['n_syn_added']:,.0f} ")
    said += (f"reach only {c['acc']:.2f} %" if c["gap"] < 0 else f"already reach {c['acc']:.2f} %")
    return said + (" (beyond noise)" if c["beyond_noise"] else "")
