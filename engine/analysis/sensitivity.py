"""What the choices the paper leaves open do to c1, c2 and one answer (issue #26, item 6), and the
joint (c1, c2) region for drawing.

`sensitivity()` refits a setting once per alternative of each choice, the others at their
defaults, and returns rows {choice, value, default, c1, c2, answer, question, error}:

- eps of the log terms, 1e-8 to 10;
- the surface's features: the paper's three logs, or the best of the 31 subsets by leave-one-out
  RMSE or by BIC (per base);
- the loss of the Eq. 13 fit: least squares on n_syn_added / n_base (ours), on its log, or on
  n_syn_added itself (absolute: large bases weigh more);
- the base-only run counted once (ours) or twice (the paper prints it in both its real and its
  synthetic table);
- tuples without a root within 100 x n_base dropped (ours, the paper's rule) or kept at
  100 x n_base (the bracket's end: the least they could be);
- Table 9's row at CIFAR-10 n_base 25,000 read as 20,000 added (ours) or as printed, 15,000.

answer: Eq. 1's n_syn_added for N = n_base more real images at the question's base (the middle
base with tuples by default); None beyond 100 x n_base, with the reason in error.

`joint_region()`: the (c1, c2) pairs the bootstrap finds jointly plausible, as a polygon.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import least_squares

from engine.analysis.answers import CAP
from engine.analysis.equivalence import DROP_REASONS, eq1, equivalence_tuples, fit_eq1
from engine.analysis.fit import MIN_TUPLES, analyse
from engine.analysis.surface import design_matrix

EPS_VALUES = (1e-8, 1e-6, 1e-3, 1e-1, 1.0, 10.0)
FEATURE_CHOICES = ("paper", "best:loo_rmse", "best:bic")
LOSSES = ("ratio", "log ratio", "absolute")


def _row(choice, value, default, c1=None, c2=None, question=None, tau=None, error=None) -> dict:
    row = {"choice": choice, "value": value, "default": default, "c1": c1, "c2": c2, "answer": None,
           "question": question, "error": error}
    if c1 is not None and question is not None:
        b, n = question["n_base"], question["n_real_added"]
        with np.errstate(over="ignore", invalid="ignore"):
            x = float(eq1(b, n, c1, c2, tau))
        if np.isfinite(x) and x <= CAP * b:
            row["answer"] = x
        else:
            row["error"] = f"the answer is more than {CAP} x n_base"
    return row


def _from_analysis(choice, value, default, a, question) -> dict:
    if a.c1 is None:
        return _row(choice, value, default, question=question, error=a.eq1_error)
    return _row(choice, value, default, a.c1, a.c2, question, a.tau)


def _arrays(tuples):
    return (np.array([t[k] for t in tuples], float) for k in ("n_base", "n_real_added", "n_syn_added"))


def refit_loss(tuples, tau: float, loss: str) -> tuple[float, float] | None:
    """Eq. 13 on the tuples with another loss, in the same parameters (log c1, log(c2 - 1))."""
    nb, nr, ns = _arrays(tuples)
    if loss == "ratio":
        f = fit_eq1(nb, nr, ns, tau)
        return (f["c1"], f["c2"]) if f["identified"] else None
    t, r = tau * nb, nr / nb

    def pred(th):
        with np.errstate(over="ignore", invalid="ignore"):
            return np.exp(np.clip(th[0] * t, -700, 700)) * np.expm1(r * np.logaddexp(0.0, th[1]))

    if loss == "log ratio":
        def resid(th):
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.nan_to_num(np.log(pred(th)) - np.log(ns / nb), nan=1e6, posinf=1e6, neginf=-1e6)
    else:  # absolute: n_syn_added itself, so that large bases weigh by their size
        def resid(th):
            return np.nan_to_num(pred(th) * nb - ns, nan=1e12, posinf=1e12, neginf=-1e12)
    start = fit_eq1(nb, nr, ns, tau)["theta"]
    res = least_squares(resid, start, method="lm")
    c1, c2 = float(np.exp(res.x[0])), float(1 + np.exp(res.x[1]))
    return (c1, c2) if res.success and np.isfinite(c1) and np.isfinite(c2) else None


def _tuples_base_twice(a) -> list[dict]:
    """The tuples of every base whose surface is refitted with the base-only run counted twice."""
    out = []
    for b, fit in sorted(a.bases.items()):
        if fit.surface is None or not fit.ratios or (fit.noise.get("tested") and not fit.noise.get("significant")):
            continue
        pts = fit.points
        w = np.where((pts.n_real_added == 0) & (pts.n_syn_added == 0), 2.0, 1.0)
        X = design_matrix(b + pts.n_real_added.to_numpy(float), pts.n_syn_added.to_numpy(float),
                          fit.surface.features, fit.surface.eps)
        sw = np.sqrt(w)[:, None]
        beta = np.linalg.lstsq(X * sw, pts.acc.to_numpy(float) * sw[:, 0], rcond=None)[0]
        roots, status = equivalence_tuples(replace(fit.surface, beta=beta), fit.ratios)
        out += [{"n_base": b, "n_real_added": r * b, "n_syn_added": float(x)}
                for r, x, st in zip(fit.ratios, roots[0], status[0]) if st == "ok"]
    return out


def default_question(a) -> dict | None:
    bases = sorted({t["n_base"] for t in a.tuples})
    if not bases:
        return None
    b = bases[len(bases) // 2]
    return {"n_base": int(b), "n_real_added": float(b)}


def sensitivity(runs, dataset, classifier, augmentation, generator=None, *, source=None, traditional=None,
                question: dict | None = None, tab9_runs: dict | None = None) -> list[dict]:
    """Rows {choice, value, default, c1, c2, answer, question, error}; see the module docstring.
    tab9_runs: {"total": runs, "printed": runs} (the paper's runs read both ways) adds Table 9's rows
    for CIFAR-10; without it that choice is one row saying it does not apply."""
    kw = dict(source=source, n_boot=0)
    if traditional is not None:
        kw["traditional"] = traditional
    base = analyse(runs, dataset, classifier, augmentation, generator, **kw)
    question = question or default_question(base)
    rows = []
    for eps in EPS_VALUES:
        a = base if eps == base.eps else analyse(runs, dataset, classifier, augmentation, generator, eps=eps, **kw)
        rows.append(_from_analysis("eps", eps, eps == base.eps, a, question))
    for feats in FEATURE_CHOICES:
        a = base if feats == "paper" else analyse(runs, dataset, classifier, augmentation, generator, features=feats, **kw)
        rows.append(_from_analysis("features", feats, feats == "paper", a, question))
    for loss in LOSSES:
        fit = refit_loss(base.tuples, base.tau, loss) if len(base.tuples) >= MIN_TUPLES else None
        rows.append(_row("loss", loss, loss == "ratio", *(fit or (None, None)), question, base.tau,
                         None if fit else base.eq1_error or "not identified with this loss"))
    twice = _tuples_base_twice(base)
    fit = fit_eq1(*_arrays(twice), base.tau) if len(twice) >= MIN_TUPLES else None
    ok = fit is not None and fit["identified"]
    rows.append(_from_analysis("base-only run", "once", True, base, question))
    rows.append(_row("base-only run", "twice", False, *((fit["c1"], fit["c2"]) if ok else (None, None)),
                     question, base.tau, None if ok else "no identified Eq. 1 fit"))
    rows.append(_from_analysis("tuples without a root", "dropped", True, base, question))
    kept = base.tuples + [{"n_base": d["n_base"], "n_real_added": d["n_real_added"],
                           "n_syn_added": CAP * d["n_base"] if d["reason"] == DROP_REASONS["no_crossing"] else 0.0}
                          for d in base.dropped if d["reason"] in (DROP_REASONS["no_crossing"], DROP_REASONS["no_gain"])]
    fit = fit_eq1(*_arrays(kept), base.tau) if len(kept) >= MIN_TUPLES else None
    rows.append(_row("tuples without a root", f"kept at {CAP} x n_base", False,
                     *((fit["c1"], fit["c2"]) if fit and fit["identified"] else (None, None)), question, base.tau,
                     None if fit and fit["identified"] else "no identified Eq. 1 fit"))
    readings = {k: sorted(r[r.dataset == dataset].n_real_added) for k, r in (tab9_runs or {}).items()}
    if len({tuple(v) for v in readings.values()}) > 1:  # the two readings of Table 9 give this dataset other runs
        for reading, r in tab9_runs.items():
            a = analyse(r, dataset, classifier, augmentation, generator, **kw)
            rows.append(_from_analysis("Table 9 reading", reading, reading == "total", a, question))
    else:
        rows.append(_row("Table 9 reading", "not applicable", True, question=question,
                         error="only the paper's runs of the dataset Table 9 measured carry its row"))
    return rows


def joint_region(analysis, level: float = 0.95) -> dict:
    """The (c1, c2) pairs jointly plausible at `level`, from the same bootstrap draws as the intervals.

    The draws are taken in the fit's own parameters theta = (log c1, log(c2 - 1)), where they are
    roughly elliptical; the level share of them nearest the estimate in the Mahalanobis distance of
    a covariance re-estimated on the central half (a few wild draws, c2 up to 1e9 on ImageNet-100,
    would otherwise inflate it) are kept, and their convex hull is the region. A likelihood-ratio
    contour would treat the tuples as independent measurements, which they are not (several come
    from one surface). Returns {method, level, points: [[c1, c2], ...] closed polygon, draws, kept}
    or points [] with the reason in note.
    """
    from scipy.spatial import ConvexHull
    out = {"method": "bootstrap draws in (log c1, log(c2 - 1)), Mahalanobis-nearest share, convex hull",
           "level": level, "points": [], "draws": 0, "kept": 0, "note": ""}
    c1, c2 = (analysis.draws.c1, analysis.draws.c2) if analysis.draws is not None else (None, None)
    if analysis.c1 is None or c1 is None:
        out["note"] = analysis.eq1_error or "no bootstrap draws"
        return out
    ok = np.isfinite(c1) & np.isfinite(c2) & (c2 > 1)
    theta = np.stack([np.log(c1[ok]), np.log(c2[ok] - 1)], axis=1)
    out["draws"] = int(theta.shape[0])
    if theta.shape[0] < 20:
        out["note"] = "fewer than 20 bootstrap draws with an Eq. 1 fit"
        return out
    centre = np.array([np.log(analysis.c1), np.log(analysis.c2 - 1)])

    def distance(cov):
        d = theta - centre
        return np.einsum("ij,jk,ik->i", d, np.linalg.pinv(cov), d)

    cov = np.cov(theta.T)
    central = distance(cov) <= np.quantile(distance(cov), 0.5)
    cov = np.cov(theta[central].T)
    d2 = distance(cov)
    keep = theta[d2 <= np.quantile(d2, level)]
    out["kept"] = int(keep.shape[0])
    try:
        hull = ConvexHull(keep)
    except Exception as err:  # noqa: BLE001 (qhull: all draws on a line, e.g. one free parameter)
        out["note"] = f"no region: the draws do not span two dimensions ({type(err).__name__})"
        return out
    poly = keep[np.append(hull.vertices, hull.vertices[0])]
    out["points"] = [[float(np.exp(a)), float(1 + np.exp(b))] for a, b in poly]
    return out
