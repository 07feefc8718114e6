"""The whole equivalence fit of one setting, its intervals, and the two questions users ask.

A setting is (dataset, classifier, augmentation, generator, traditional augmentation), fitted from one source of runs
(engine, import or paper; "all" pools them). For every n_base it fits the accuracy surface,
solves Eq. 12 on a grid of real ratios, fits Eq. 13 to all the tuples, and bootstraps the lot:
over seeds where per-seed runs exist (base and augmented runs stay paired), else over the
surface's residuals (the published values are means with no per-seed spread), and over the
points of each base. docs/method.md has the choices and the coverage they were measured to give.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.analysis.equivalence import (DROP_REASONS, ROOT_BOUND_FACTOR, beyond, eq1, eq1_inverse, unpack,
                                         equivalence_tuples, first_crossing, fit_eq1, fit_eq1_batch, tau_for)
from engine.analysis.surface import (DEFAULT_EPS, PAPER_FEATURES, FitError, Surface, all_subsets,
                                     best_subset, design_matrix, fit_surface)
from engine.analysis.options import ALL_SOURCES, MAX_N_BOOT, SOURCE_ORDER  # noqa: F401 (re-exported)
from engine.catalog.datasets import paper_grid
from engine.catalog.vocab import CLOSED, OPEN, PAPER, REAL, SYNTHETIC, TRADITIONAL

# Eq. 12's ratios r = n_real_added / n_base at a base the paper's grid (appendix A; the catalog's dataset
# entries) does not cover.
DEFAULT_RATIOS = [1, 2, 3]
MIN_TUPLES = 3  # two parameters and at least one degree of freedom
# Quantiles of fewer than 20 successful bootstrap draws are too coarse for a 95 % interval (its
# tails would rest on one draw each): below that no interval is reported.
MIN_DRAWS = 20
# A surface answer's interval needs half of the draws to have an answer at all; below that the
# interval would describe the draws that happened to cross, not the answer.
MIN_SURFACE_OK = 0.5
# Eq. 1's interval is reported with a warning when over a tenth of the draws lost their tuples.
WARN_EQ1_OK = 0.9
NOISE_ALPHA = 0.05
UNNAMED_SOURCE = "given"  # runs handed in without a source column
# Seeds (Gaussian multipliers) and points: in the coverage study (bench/bench_coverage.py,
# docs/method.md) resampling 3 seeds covered even the method's own noise-free answer in only
# 71-87 % of studies; this covers it in 98-100 % (and the truth where the surface can follow it).
BOOTSTRAPS = ("seeds+points", "seeds", "resample", "resample+points")
DEFAULT_BOOTSTRAP = "seeds+points"


@dataclass
class BaseFit:
    n_base: int
    points: pd.DataFrame              # one row per measured point: means, sd, seeds
    seed_matrix: np.ndarray | None    # points x seeds accuracies (NaN where missing)
    surface: Surface | None = None
    error: str | None = None
    gains: pd.DataFrame | None = None  # synthetic gains paired by seed
    noise: dict = field(default_factory=dict)
    ratios: list = field(default_factory=list)
    boot_betas: np.ndarray | None = None

    @property
    def max_real_ratio(self) -> float:
        return float(self.points.n_real_added.max()) / self.n_base

    @property
    def max_syn_ratio(self) -> float:
        return float(self.points.n_syn_added.max()) / self.n_base


@dataclass
class Analysis:
    dataset: str
    classifier: str
    augmentation: str
    generator: str | None
    features: tuple
    eps: float
    tau: float
    n_total: int
    bases: dict                        # n_base -> BaseFit
    tuples: list                       # kept equivalence tuples
    dropped: list                      # dropped tuples with reasons
    c1: float | None = None
    c2: float | None = None
    eq1_rmse: float | None = None
    eq1_error: str | None = None
    c1_ci: tuple | None = None
    c2_ci: tuple | None = None
    boot: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    level: float = 0.95
    source: str = UNNAMED_SOURCE
    grid_rule: str = ""
    unidentified: dict | None = None   # the numbers of a fit at a bound, with the reason
    traditional: str | None = None     # the runs' traditional augmentation (None: runs without the column)

    # ---------------------------------------------------------------- the two questions
    def syn_for_real(self, n_base: int, n_real_added: float) -> dict:
        """How many synthetic images equal n_real_added more real ones at this n_base."""
        return self._answer(n_base, n_real_added, direction="syn_for_real")

    def real_for_syn(self, n_base: int, n_syn_added: float) -> dict:
        """How many real images n_syn_added synthetic ones are worth at this n_base."""
        return self._answer(n_base, n_syn_added, direction="real_for_syn")

    def _answer(self, n_base: int, amount: float, direction: str) -> dict:
        if not (n_base > 0 and np.isfinite(amount) and amount >= 0):
            raise FitError(f"n_base must be positive and the amount a non-negative number (got {n_base}, {amount})")
        out = {"n_base": int(n_base), "direction": direction,
               "n_real_added" if direction == "syn_for_real" else "n_syn_added": float(amount),
               "warnings": []}
        lo_q, hi_q = (1 - self.level) / 2, 1 - (1 - self.level) / 2
        # Eq. 1
        if self.c1 is not None:
            f = eq1 if direction == "syn_for_real" else eq1_inverse
            out["eq1"] = float(f(n_base, amount, self.c1, self.c2, self.tau))
            c1b, c2b = self.boot.get("c1"), self.boot.get("c2")
            if c1b is not None and np.isfinite(c1b).sum() >= MIN_DRAWS:
                ok = np.isfinite(c1b)
                draws = f(n_base, amount, c1b[ok], c2b[ok], self.tau)
                out["eq1_ci"] = tuple(float(v) for v in np.quantile(draws, [lo_q, hi_q]))
        else:
            out["eq1_error"] = self.eq1_error
        # Directly from this base's surface
        base = self.bases.get(int(n_base))
        if base is not None and base.surface is not None:
            out["surface"], status = _surface_answer(base.surface, base.surface.beta[None], n_base, amount, direction)
            out["surface"] = float(out["surface"][0]) if status[0] == "ok" else None
            if out["surface"] is None:
                out["surface_error"] = DROP_REASONS[status[0]]
            if base.boot_betas is not None:
                draws, st = _surface_answer(base.surface, base.boot_betas, n_base, amount, direction)
                ok = st == "ok"
                if ok.mean() >= MIN_SURFACE_OK:
                    out["surface_ci"] = tuple(float(v) for v in np.quantile(draws[ok], [lo_q, hi_q]))
                if not ok.all():
                    out["warnings"].append(f"{(~ok).mean():.0%} of bootstrap draws of the surface have no answer")
        else:
            out["surface_error"] = f"no fitted surface at n_base {n_base}"
        if base is not None and base.noise.get("tested") and not base.noise["significant"]:
            # The surface of this base fits seed noise: its root is no answer, the bound is.
            out["bound"] = (bound_statement(base, amount) if direction == "syn_for_real" else
                            {"kind": "not_measurable",
                             "text": f"not measurable at this base: synthetic gains at n_base {n_base:,} are "
                                     f"within seed noise (paired p = {base.noise['p_value']:.2f})"})
            out.pop("surface_ci", None)
            if out.get("surface") is not None:
                out["surface"] = None
                out["surface_error"] = "this base's synthetic gains are within seed noise"
        out["warnings"] += self._extrapolation(n_base, amount, direction, out)
        return out

    def has_answer(self, answer: dict) -> bool:
        """A number (Eq. 1 or this base's surface) or a one-sided bound."""
        return ("eq1" in answer or answer.get("surface") is not None
                or answer.get("bound", {}).get("kind") == "more_than")

    def _extrapolation(self, n_base, amount, direction, out) -> list:
        warn = []
        fitted = sorted(b for b, f in self.bases.items() if f.surface is not None)
        tuple_bases = sorted({t["n_base"] for t in self.tuples})
        if tuple_bases and not tuple_bases[0] <= n_base <= tuple_bases[-1]:
            warn.append(f"extrapolation: n_base {n_base} is outside the measured range "
                        f"{tuple_bases[0]}-{tuple_bases[-1]} of the Eq. 1 fit")
        base = self.bases.get(int(n_base))
        if base is None or base.surface is None:
            if fitted:
                warn.append(f"no runs at n_base {n_base}: only Eq. 1 can answer, interpolating between bases")
            return warn
        if direction == "syn_for_real":
            real_amount, syn_amount = amount, out.get("surface") or out.get("eq1")
        else:
            syn_amount, real_amount = amount, out.get("surface") or out.get("eq1")
        if real_amount is not None and beyond(real_amount, base.points.n_real_added.max()):
            warn.append(f"extrapolation: {real_amount:,.0f} real images added is beyond the largest measured "
                        f"({base.points.n_real_added.max():,}) at n_base {n_base}")
        if syn_amount is not None and beyond(syn_amount, base.points.n_syn_added.max()):
            warn.append(f"extrapolation: {syn_amount:,.0f} synthetic images is beyond the largest measured "
                        f"({base.points.n_syn_added.max():,}) at n_base {n_base}")
        return warn

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset, "classifier": self.classifier, "augmentation": self.augmentation,
            "generator": self.generator, "traditional": self.traditional, "source": self.source,
            "grid_rule": self.grid_rule,
            "unidentified": self.unidentified, "features": list(self.features), "eps": self.eps,
            "tau": self.tau, "n_total": self.n_total, "c1": self.c1, "c2": self.c2,
            "c1_ci": list(self.c1_ci) if self.c1_ci else None,
            "c2_ci": list(self.c2_ci) if self.c2_ci else None, "level": self.level,
            "eq1_rmse": self.eq1_rmse, "eq1_error": self.eq1_error,
            "tuples": self.tuples, "dropped": self.dropped,
            "surfaces": [{"n_base": b, "n_points": f.surface.n_points if f.surface else len(f.points),
                          "beta": f.surface.beta.tolist() if f.surface else None,
                          "formula": f.surface.formula() if f.surface else None,
                          "stats": f.surface.stats if f.surface else None, "error": f.error,
                          "noise_check": f.noise}
                         for b, f in sorted(self.bases.items())],
            "bootstrap": {k: v for k, v in self.boot.items() if not isinstance(v, np.ndarray)},
            "warnings": self.warnings,
        }


def _surface_answer(surface: Surface, betas, n_base, amount, direction):
    """Solve one question on a surface for every row of `betas` (the fit or bootstrap draws)."""
    m = betas.shape[0]
    if direction == "syn_for_real":   # Acc(n_base, x) = Acc(n_base + amount, 0)
        target = (betas * design_matrix(n_base + amount, 0.0, surface.features, surface.eps)).sum(-1)
        vary = "syn"
    else:                             # Acc(n_base + x, 0) = Acc(n_base, amount)
        target = (betas * design_matrix(n_base, amount, surface.features, surface.eps)).sum(-1)
        vary = REAL
    return first_crossing(betas, surface.features, surface.eps, vary=vary, fixed_real=np.full(m, n_base),
                          fixed_syn=np.zeros(m), target=target, bound=np.full(m, ROOT_BOUND_FACTOR * n_base))


# -------------------------------------------------------------------- assembling the points

def surface_points(runs: pd.DataFrame | dict, n_base: int, augmentation: str, generator) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The rows of one base's surface: its real runs, its synthetic runs, the base-only run once.

    Runs with a seed fill a points x seeds matrix (repeated rows of one point and seed are
    averaged); the seed bootstrap and the paired test use only that matrix. A run without a seed
    (a published mean) is one observation of its point, never a seed: the point's mean counts it
    once per source (the paper prints its base-only run in several tables), its spread does not.
    Plain numpy: pandas' groupby costs tens of milliseconds here, and the dashboard refits on
    every click.
    """
    cols = runs if isinstance(runs, dict) else _columns(runs)
    at = cols["n_base"] == n_base
    real = at & (cols["augmentation"] == REAL)
    syn = at & (cols["augmentation"] == augmentation) & same_generator(cols["generator"], generator)
    zero = (cols["n_real_added"] == 0) & (cols["n_syn_added"] == 0)
    base_only = (real | syn) & zero
    if (real & zero).any():
        base_only = real & zero
    keep = (real & (cols["n_real_added"] > 0)) | (syn & (cols["n_syn_added"] > 0)) | base_only
    empty = pd.DataFrame({"n_real_added": pd.Series(dtype=int), "n_syn_added": pd.Series(dtype=int),
                          "acc": pd.Series(dtype=float), "sd": pd.Series(dtype=float),
                          "n_seeds": pd.Series(dtype=int), "n_unseeded": pd.Series(dtype=int),
                          "unseeded_sum": pd.Series(dtype=float)})
    if not keep.any():
        return empty, None
    point_keys = np.stack([cols["n_real_added"][keep], cols["n_syn_added"][keep]], axis=1)
    seeds, acc, source = cols["seed"][keep], cols["top1"][keep], cols["source"][keep]
    points_u, point_idx = np.unique(point_keys, axis=0, return_inverse=True)
    point_idx = point_idx.ravel()
    n_points = len(points_u)
    seeded = np.isfinite(seeds)
    matrix = None
    seed_sum = np.zeros(n_points)
    seed_n = np.zeros(n_points)
    if seeded.any():
        seeds_u, seed_idx = np.unique(seeds[seeded], return_inverse=True)
        total = np.zeros((n_points, len(seeds_u)))
        count = np.zeros_like(total)
        np.add.at(total, (point_idx[seeded], seed_idx.ravel()), acc[seeded])
        np.add.at(count, (point_idx[seeded], seed_idx.ravel()), 1)
        with np.errstate(invalid="ignore"):
            matrix = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        seed_sum, seed_n = np.nansum(matrix, axis=1), np.isfinite(matrix).sum(axis=1)
    un_sum, un_n = _unseeded(point_idx[~seeded], source[~seeded], acc[~seeded], n_points)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (seed_sum + un_sum) / (seed_n + un_n)
        sd = np.full(n_points, np.nan)
        if matrix is not None and matrix.shape[1] > 1:
            with warnings.catch_warnings():  # points with fewer than two seeds: NaN by design
                warnings.simplefilter("ignore", RuntimeWarning)
                sd = np.where(seed_n > 1, np.nanstd(matrix, axis=1, ddof=1), np.nan)
    points = pd.DataFrame({"n_real_added": points_u[:, 0].astype(int), "n_syn_added": points_u[:, 1].astype(int),
                           "acc": mean, "sd": sd, "n_seeds": seed_n.astype(int), "n_unseeded": un_n.astype(int),
                           "unseeded_sum": un_sum})
    return points, matrix


def _unseeded(point_idx, source, acc, n_points):
    """Sum and count of the seedless observations per point: one (their mean) per source."""
    if point_idx.size == 0:
        return np.zeros(n_points), np.zeros(n_points)
    _, src = np.unique(source.astype(str), return_inverse=True)
    combo = point_idx * (src.max() + 1) + src.ravel()
    combo_u, combo_idx = np.unique(combo, return_inverse=True)
    means = np.bincount(combo_idx, acc) / np.bincount(combo_idx)
    owner = combo_u // (src.max() + 1)
    return np.bincount(owner, means, minlength=n_points), np.bincount(owner, minlength=n_points).astype(float)


def _columns(runs: pd.DataFrame) -> dict:
    """The run columns as numpy arrays, converted once per refit; a missing seed stays NaN."""
    return {
        "n_base": runs.n_base.to_numpy(dtype=np.int64),
        "n_real_added": runs.n_real_added.to_numpy(dtype=np.int64),
        "n_syn_added": runs.n_syn_added.to_numpy(dtype=np.int64),
        "augmentation": runs.augmentation.to_numpy(dtype=object),
        "generator": runs.generator.astype(object).where(runs.generator.notna(), "").to_numpy(dtype=object),
        "seed": pd.to_numeric(runs.seed, errors="coerce").astype(float).to_numpy(),
        "top1": runs.top1.to_numpy(dtype=float),
        "source": (runs.source.astype(object).fillna("") if "source" in runs
                   else pd.Series("", index=runs.index)).to_numpy(dtype=object),
    }


def same_generator(column, generator) -> np.ndarray:
    """Which rows (a runs column or its numpy copy) a generator made; None: every row. A run
    without a generator is read as ''."""
    if generator is None:
        return np.ones(len(column), dtype=bool)
    return pd.Series(column).fillna("").to_numpy(dtype=object) == generator


def paired_gains(points: pd.DataFrame, matrix: np.ndarray | None) -> tuple[pd.DataFrame | None, dict]:
    """Synthetic gains over the base-only run, paired by seed, and whether they beat seed noise."""
    if matrix is None:
        return None, {"tested": False, "reason": "published means carry no per-seed runs, so gains cannot be "
                                                 "compared with seed-to-seed noise"}
    base_idx = np.where((points.n_real_added == 0) & (points.n_syn_added == 0))[0]
    syn_idx = np.where(points.n_syn_added > 0)[0]
    if base_idx.size == 0 or syn_idx.size == 0:
        return None, {"tested": False, "reason": "needs a base-only run and synthetic runs"}
    diffs = matrix[syn_idx] - matrix[base_idx[0]][None, :]
    gains = points.iloc[syn_idx][["n_syn_added"]].copy()
    with warnings.catch_warnings():  # a pooled point without seeded runs has no pairs: NaN, said by n_pairs
        warnings.simplefilter("ignore", RuntimeWarning)
        gains["gain_mean"] = np.nanmean(diffs, axis=1)
        gains["gain_sd"] = np.nanstd(diffs, axis=1, ddof=1) if diffs.shape[1] > 1 else np.nan
        per_seed = np.nanmean(diffs, axis=0)  # each seed's mean gain over the synthetic points
    gains["n_pairs"] = np.isfinite(diffs).sum(axis=1)
    per_seed = per_seed[np.isfinite(per_seed)]
    if per_seed.size < 2:
        return gains, {"tested": False, "reason": "one seed: no seed-to-seed spread to compare with"}
    if np.allclose(per_seed, per_seed[0]):
        p = 0.0 if per_seed[0] > 0 else 1.0
    else:
        p = _t_test_p(per_seed)
    return gains, {"tested": True, "p_value": p, "mean_gain": float(per_seed.mean()),
                   "seeds": int(per_seed.size), "significant": bool(p < NOISE_ALPHA)}


def _one_sided_p(diffs: np.ndarray) -> float:
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size < 2:
        return float("nan")
    if np.allclose(diffs, diffs[0]):
        return 0.0 if diffs[0] > 0 else 1.0
    return _t_test_p(diffs)


def bound_statement(fit: BaseFit, n_real_added: float) -> dict:
    """What can be said when this base's synthetic gains are within seed noise (issue 10).

    "more than K synthetic images", K the largest synthetic amount measured here, when the real
    gain of the largest measured real addition not above N is itself beyond noise (paired, one
    sided); otherwise even the real images' gain is not measurable at this base.
    """
    pts, matrix = fit.points, fit.seed_matrix
    k = int(pts.n_syn_added.max())
    p_syn = fit.noise.get("p_value", float("nan"))
    base_idx = np.where((pts.n_real_added == 0) & (pts.n_syn_added == 0))[0]
    real = pts[(pts.n_real_added > 0) & ~beyond(pts.n_real_added, n_real_added)]
    if matrix is None or base_idx.size == 0 or real.empty:
        return {"kind": "not_measurable",
                "text": f"not measurable at this base: no real run of at most {n_real_added:,.0f} added images "
                        f"with seeds at n_base {fit.n_base:,}"}
    row = int(real.n_real_added.idxmax())
    m = int(pts.n_real_added.iloc[row])
    diffs = matrix[row] - matrix[base_idx[0]]
    p_real = _one_sided_p(diffs)
    if not p_real < NOISE_ALPHA:
        return {"kind": "not_measurable", "p_real": p_real,
                "text": f"not measurable at this base: even {m:,} more real images gain within seed noise "
                        f"(paired p = {p_real:.2f}) at n_base {fit.n_base:,}"}
    return {"kind": "more_than", "n_syn_added": k, "p_real": p_real, "p_syn": p_syn,
            "text": f"more than {k:,} synthetic images: {m:,} more real images gain "
                    f"{np.nanmean(diffs):+.2f} points (paired p = {p_real:.3f}), while no synthetic amount up to "
                    f"{k:,} gains beyond seed noise (paired p = {p_syn:.2f})"}


# ------------------------------------------------------------------------------- the fit

def resolve_features(features, points: pd.DataFrame, n_base: int, eps: float):
    """A feature tuple, or "best:<criterion>" chosen among the 31 subsets for this base."""
    if isinstance(features, str):
        if not features.startswith("best:"):
            return tuple(f for f in features.split(",") if f)
        criterion = features.split(":", 1)[1]
        table = all_subsets(n_base, n_base + points.n_real_added, points.n_syn_added, points.acc, eps)
        return best_subset(table, criterion)
    return tuple(features)


def sources_of(runs: pd.DataFrame, dataset: str, classifier: str, augmentation: str, generator=None) -> list[str]:
    """The sources with synthetic runs of a setting, in the order a default fit prefers them."""
    if "source" not in runs:
        return [UNNAMED_SOURCE]
    syn = runs[(runs.dataset == dataset) & (runs.classifier == classifier) & (runs.augmentation == augmentation)
               & same_generator(runs.generator, generator)]
    found = set(syn.source.dropna())
    return [s for s in SOURCE_ORDER if s in found] + sorted(found - set(SOURCE_ORDER))


def check_n_boot(n_boot: int) -> None:
    if not 0 <= n_boot <= MAX_N_BOOT:
        raise FitError(f"n_boot {n_boot} must be between 0 and {MAX_N_BOOT:,}")


# When a setting's runs were trained with several traditional augmentations and none is asked for,
# the fit takes the one with the most synthetic runs; ties go to the first of this order.
TRADITIONAL_ORDER = TRADITIONAL


def one_traditional(sel: pd.DataFrame, augmentation: str, generator, traditional: str | None, source=None):
    """(runs of one traditional augmentation, its name, the others present): a fit never pools runs
    whose classifiers were trained with different traditional augmentation (the paper's Tab. 6).
    The default is counted among the synthetic runs of `source` when one is named."""
    if "traditional" not in sel:
        if traditional is not None:
            raise FitError(f"traditional augmentation {traditional!r} asked for, but these runs do not record one")
        return sel, None, []
    counted = sel if source in (None, ALL_SOURCES) or "source" not in sel else sel[sel.source == source]
    syn = counted[(counted.augmentation == augmentation) & same_generator(counted.generator, generator)]
    counts = syn.traditional.dropna().value_counts()
    if traditional is None:
        if counts.empty:
            return sel, None, []
        rank = {t: i for i, t in enumerate(TRADITIONAL_ORDER)}
        traditional = max(counts.index, key=lambda t: (counts[t], -rank.get(t, len(rank))))
    elif traditional not in counts.index:
        raise FitError(f"no {augmentation}-set runs with traditional augmentation {traditional!r} here; "
                       f"available: {', '.join(sorted(counts.index)) or 'no traditional augmentation'}")
    return sel[sel.traditional == traditional], traditional, sorted(set(counts.index) - {traditional})


def analyse(runs: pd.DataFrame, dataset: str, classifier: str, augmentation: str, generator=None,
            traditional: str | None = None, *,
            features=PAPER_FEATURES, eps: float = DEFAULT_EPS, grid: dict | None = None,
            n_total: int | None = None, n_boot: int = 200, level: float = 0.95, seed: int = 0,
            exclude_run_ids=(), source: str | None = None,
            bootstrap: str = DEFAULT_BOOTSTRAP) -> Analysis:
    """The whole fit of one setting from one source of runs (`source`: engine, import, paper, or
    all to pool them; default the first of engine, import, paper that has synthetic runs here) and
    one traditional augmentation (default: the one with the most synthetic runs here).

    Three steps: a surface per base (fit_base), its Eq. 12 tuples (base_tuples), Eq. 1 on all the
    tuples (fit_eq1_step); the bootstrap draws of each step feed the next."""
    if augmentation not in SYNTHETIC:
        raise FitError(f"augmentation {augmentation!r}: the equivalence compares {' or '.join(SYNTHETIC)} "
                       f"synthetic runs with real ones")
    if not eps > 0:
        raise FitError(f"eps = {eps} must be positive")
    check_n_boot(n_boot)
    if bootstrap not in BOOTSTRAPS:
        raise FitError(f"bootstrap {bootstrap!r}: choose from {', '.join(BOOTSTRAPS)}")
    sel, syn_runs, source, traditional, other_traditional = _select(
        runs, dataset, classifier, augmentation, generator, traditional, exclude_run_ids, source)
    if n_total is None:
        totals = sel.n_total.dropna().unique()
        if len(totals) == 0:
            raise FitError(f"n_total of {dataset} is unknown: give it explicitly")
        n_total = int(totals.max())
    tau = tau_for(n_total)
    grid, grid_rule = _grid(dataset, sel, syn_runs, grid, source)
    rng = np.random.default_rng(seed)
    cols = _columns(sel)
    bases: dict[int, BaseFit] = {}
    tuples, dropped, warnings, tuple_draws = [], [], [], []
    for n_base in sorted(set(int(b) for b in syn_runs.n_base.unique()) | set(grid)):
        fit = fit_base(cols, n_base, augmentation, generator, grid.get(n_base, []), features, eps,
                       n_boot, rng, bootstrap)
        bases[n_base] = fit
        step = base_tuples(fit, grid_rule)
        tuples += step.kept
        dropped += step.dropped
        warnings += step.warnings
        if step.draws is not None:
            tuple_draws.append(step.draws)
    if other_traditional:
        warnings.append(f"fitted the runs trained with traditional augmentation {traditional}; runs with "
                        f"{', '.join(other_traditional)} are other settings, fitted on their own (never pooled)")
    if not (syn_runs.seed.notna().any()):
        warnings.append("published means only: intervals come from the surface residuals and points, not from "
                        "seeds, and gains cannot be tested against seed-to-seed noise")
    result = Analysis(dataset=dataset, classifier=classifier, augmentation=augmentation, generator=generator,
                      features=_features_label(features, bases), eps=eps, tau=tau, n_total=n_total, bases=bases,
                      tuples=tuples, dropped=dropped, warnings=warnings, level=level, source=source,
                      grid_rule=grid_rule, traditional=traditional)
    fit_eq1_step(result, tuple_draws, bootstrap)
    return result


def _select(runs, dataset, classifier, augmentation, generator, traditional, exclude_run_ids, source):
    """The setting's runs from one source (or pooled) and one traditional augmentation, its synthetic
    runs, the source chosen, the traditional augmentation chosen and the others present."""
    sel = runs[(runs.dataset == dataset) & (runs.classifier == classifier)]
    if "source" not in sel:
        sel = sel.assign(source=UNNAMED_SOURCE)
    if len(exclude_run_ids):
        sel = sel[~sel.run_id.isin(list(exclude_run_ids))]
    sel, traditional, other_traditional = one_traditional(sel, augmentation, generator, traditional, source)
    label = f"{dataset} / {classifier}" + (f" / {generator}" if generator else "")
    available = sources_of(sel, dataset, classifier, augmentation, generator)
    if not available:
        raise FitError(f"no {augmentation}-set runs for {label}")
    if source is None:
        source = available[0]
    elif source != ALL_SOURCES and source not in available:
        raise FitError(f"source {source!r} has no {augmentation}-set runs for {label}; "
                       f"available: {', '.join(available)}, or {ALL_SOURCES} to pool them")
    if source != ALL_SOURCES:
        sel = sel[sel.source == source]
    syn_runs = sel[(sel.augmentation == augmentation) & same_generator(sel.generator, generator)]
    return sel, syn_runs, source, traditional, other_traditional


def fit_base(cols: dict, n_base: int, augmentation: str, generator, ratios, features, eps: float,
             n_boot: int, rng: np.random.Generator, bootstrap: str) -> BaseFit:
    """Step 1: one base's points, its paired gains and noise test, its surface and the surface's
    bootstrap draws; `error` says why a base has no surface."""
    points, matrix = surface_points(cols, n_base, augmentation, generator)
    fit = BaseFit(n_base=n_base, points=points, seed_matrix=matrix, ratios=list(ratios))
    fit.gains, fit.noise = paired_gains(points, matrix)
    try:
        if points.empty:
            raise FitError(f"n_base {n_base:,}: no runs")
        if not (points.n_real_added > 0).any():
            raise FitError(f"n_base {n_base:,}: no real-augmentation runs, so no equivalence can be solved here")
        if not (points.n_syn_added > 0).any():
            raise FitError(f"n_base {n_base:,}: no {augmentation}-set runs")
        feats = resolve_features(features, points, n_base, eps)
        fit.surface = fit_surface(n_base, n_base + points.n_real_added, points.n_syn_added, points.acc, feats, eps)
    except FitError as err:
        fit.error = str(err)
        return fit
    if n_boot:
        fit.boot_betas = _bootstrap_betas(fit, n_boot, rng, bootstrap)
    return fit


@dataclass
class BaseTuples:
    """What one base gives Eq. 1: kept tuples, dropped ones with reasons, warnings, bootstrap roots."""
    kept: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    draws: tuple | None = None  # (n_base, ratios, roots of every draw (B x ratios), NaN without one)


def base_tuples(fit: BaseFit, grid_rule: str) -> BaseTuples:
    """Step 2: Eq. 12 on one base's surface at each of its grid ratios, for the fit and its draws."""
    n_base, out = fit.n_base, BaseTuples()
    drop = lambda r, reason, **more: out.dropped.append(  # noqa: E731
        {"n_base": n_base, "ratio": r, "n_real_added": r * n_base, "reason": reason, **more})
    if fit.surface is None:
        for r in fit.ratios:
            drop(r, fit.error)
        if not fit.ratios:
            out.warnings.append(f"n_base {n_base:,} gives no tuples: {fit.error}")
        return out
    if not fit.ratios:
        out.warnings.append(f"n_base {n_base:,} gives no tuples: it is not in {grid_rule}")
        return out
    if fit.noise.get("tested") and not fit.noise["significant"]:
        reason = (f"synthetic gains at n_base {n_base:,} are within seed-to-seed noise (paired by seed, "
                  f"p = {fit.noise['p_value']:.2f}): no equivalence can be estimated")
        out.warnings.append(reason)
        for r in fit.ratios:
            bound = bound_statement(fit, r * n_base)
            drop(r, reason, bound=bound["text"], bound_kind=bound["kind"])
        return out
    roots, status = equivalence_tuples(fit.surface, fit.ratios)
    max_syn = fit.points.n_syn_added.max()
    for r, root, st in zip(fit.ratios, roots[0], status[0]):
        if st != "ok":
            drop(r, DROP_REASONS[st])
            continue
        extrap = []
        if beyond(r, fit.max_real_ratio):
            extrap.append(f"real ratio {r:g} beyond measured {fit.max_real_ratio:g}")
        if beyond(root, max_syn):
            extrap.append(f"n_syn_added beyond measured {max_syn:,}")
        out.kept.append({"n_base": n_base, "ratio": float(r), "n_real_added": float(r * n_base),
                         "n_syn_added": float(root), "syn_ratio": float(root / n_base),
                         "extrapolated": bool(extrap), "extrapolation": extrap})
    if fit.boot_betas is not None:
        b_roots, b_status = equivalence_tuples(fit.surface, fit.ratios, fit.boot_betas)
        out.draws = (n_base, np.asarray(fit.ratios, float), np.where(b_status == "ok", b_roots, np.nan))
    return out


def fit_eq1_step(result: Analysis, tuple_draws: list, bootstrap: str) -> None:
    """Step 3: Eq. 1 (Eq. 13) on the kept tuples, and its interval from every draw's tuples; sets
    c1, c2 or the reason there are none on `result`."""
    tuples = result.tuples
    if len(tuples) < MIN_TUPLES:
        reasons = list(dict.fromkeys(d["reason"] for d in result.dropped))
        result.eq1_error = (f"no equivalence can be estimated: {len(tuples)} equivalence tuple(s) survive, "
                            f"Eq. 1 needs at least {MIN_TUPLES}" + (f" ({'; '.join(reasons[:2])})" if reasons else ""))
        return
    nb, nr, ns = (np.array([t[k] for t in tuples], float) for k in ("n_base", "n_real_added", "n_syn_added"))
    point = fit_eq1(nb, nr, ns, result.tau)
    if not point["identified"]:
        # Numbers at a bound are not an answer: keep them for the record, never as c1, c2.
        result.eq1_error = f"Eq. 1 not identified: {point['reason']}"
        result.unidentified = {"c1": point["c1"], "c2": point["c2"], "reason": point["reason"]}
        return
    result.c1, result.c2, result.eq1_rmse = point["c1"], point["c2"], point["rmse"]
    if tuple_draws:
        _bootstrap_eq1(result, tuple_draws, point["theta"], result.tau, result.level, bootstrap)


def _features_label(features, bases):
    if isinstance(features, str) and features.startswith("best:"):
        chosen = {b: f.surface.features for b, f in bases.items() if f.surface is not None}
        return (features, {str(b): list(v) for b, v in chosen.items()})
    return tuple(features) if not isinstance(features, str) else tuple(f for f in features.split(",") if f)


def _grid(dataset, sel, syn_runs, grid, source):
    """Eq. 12's (n_base -> ratios) and the rule that chose them, said wherever a base is left out.

    The paper's grids (appendix A) belong to the paper's runs; any other source gets every measured
    n_base with real and synthetic runs x r {1, 2, 3}; pooling gets both.
    """
    if grid is not None:
        return {int(b): list(r) for b, r in grid.items()}, "the grid given"
    real_bases = set(sel[(sel.augmentation == REAL) & (sel.n_real_added > 0)].n_base.astype(int))
    syn_bases = set(syn_runs[syn_runs.n_syn_added > 0].n_base.astype(int))
    measured = {b: list(DEFAULT_RATIOS) for b in sorted(real_bases & syn_bases)}
    paper = {b: list(r) for b, r in paper_grid(dataset).items()} or None
    if paper is None or source not in (PAPER, ALL_SOURCES):
        return measured, "the measured bases with real and synthetic runs"
    if source == PAPER:
        return dict(paper), "the paper's Eq. 12 grid (appendix A)"
    return {**measured, **paper}, "the paper's Eq. 12 grid or the measured bases with real and synthetic runs"


def _bootstrap_betas(fit: BaseFit, n_boot: int, rng: np.random.Generator, method: str = "seeds") -> np.ndarray:
    """Bootstrap draws of one base's surface coefficients (draws x params); NaN rows cannot be fitted.

    With at least two seeds: "resample" draws seeds with replacement (the same seeds for every
    point, so paired runs stay paired); "seeds" (default) instead gives every seed a Gaussian
    multiplier shared by all points, applied to its deviation from the point mean, rescaled by
    sqrt(k / (k - 1)): the same pairing, the usual variance of a mean of k seeds, and a continuous
    distribution where resampling 3 seeds has only 10 outcomes and 2/3 of the variance (the
    coverage study in docs/method.md measured both). "+points" also resamples the real and the
    synthetic points of the base (the base-only run stays), so that how much the surface's form
    depends on single points enters the interval too. Seedless observations (published means,
    when sources are pooled) stay in every draw as they are. Without seeds: the surface's residuals.
    """
    surface, points = fit.surface, fit.points
    X = surface.X
    matrix = fit.seed_matrix
    if matrix is not None and matrix.shape[1] >= 2:
        k = matrix.shape[1]
        un_sum, un_n = points.unseeded_sum.to_numpy()[None, :], points.n_unseeded.to_numpy()[None, :]
        if method.startswith("resample"):
            draw = rng.integers(0, k, size=(n_boot, k))
            sampled = matrix[:, draw]                      # points x B x seeds
            total = np.nansum(sampled, axis=2).T + un_sum
            count = np.isfinite(sampled).sum(axis=2).T + un_n
        else:
            n_seed = np.isfinite(matrix).sum(axis=1, keepdims=True)
            seed_mean = np.nansum(matrix, axis=1, keepdims=True) / np.maximum(n_seed, 1)
            dev = np.nan_to_num(matrix - seed_mean) * np.sqrt(n_seed / np.maximum(n_seed - 1, 1))
            v = rng.standard_normal((n_boot, k))
            # B x points: the sum of k perturbed seeds (zero where a point has no seeded run)
            total = seed_mean.T * n_seed.T + v @ dev.T + un_sum
            count = n_seed.T + un_n
        with np.errstate(all="ignore"):
            y = total / count                              # B x points
        y = np.where(np.isfinite(y), y, points.acc.to_numpy()[None, :])
    else:
        n, p = X.shape
        scale = np.sqrt(n / max(n - p, 1))
        resid = surface.residuals * scale
        fitted = X @ surface.beta
        y = fitted[None, :] + resid[rng.integers(0, n, size=(n_boot, n))]
    if not method.endswith("+points"):
        return y @ np.linalg.pinv(X).T
    # Weighted least squares per draw, with the weights of a within-axis resample of the points.
    w = np.zeros_like(y)
    base = ((points.n_real_added == 0) & (points.n_syn_added == 0)).to_numpy()
    w[:, base] = 1.0
    for axis in (points.n_real_added > 0, points.n_syn_added > 0):
        idx = np.where(axis.to_numpy())[0]
        picks = idx[rng.integers(0, idx.size, size=(n_boot, idx.size))]
        np.add.at(w, (np.repeat(np.arange(n_boot), idx.size), picks.ravel()), 1.0)
    xtwx = np.einsum("bi,ij,ik->bjk", w, X, X)
    xtwy = np.einsum("bi,ij,bi->bj", w, X, y)
    ok = np.linalg.matrix_rank(xtwx) == X.shape[1]
    betas = np.full((n_boot, X.shape[1]), np.nan)
    betas[ok] = np.linalg.solve(xtwx[ok], xtwy[ok][..., None])[..., 0]
    return betas


def _bootstrap_eq1(result: Analysis, tuple_draws, theta0, tau, level, bootstrap):
    n_boot = tuple_draws[0][2].shape[0]
    # Every draw's tuples side by side (draws x all grid tuples), masked where a draw has no root.
    nb = np.concatenate([np.full(r.size, b, float) for b, r, _ in tuple_draws])
    nr = np.concatenate([r * b for b, r, _ in tuple_draws])
    ns = np.concatenate([roots for _, _, roots in tuple_draws], axis=1)
    mask = np.isfinite(ns)
    enough = mask.sum(axis=1) >= MIN_TUPLES
    theta = fit_eq1_batch(tau * nb, nr / nb, np.nan_to_num(ns) / nb, mask, theta0)
    c1, c2 = unpack(theta)
    c1, c2 = np.where(enough, c1, np.nan), np.where(enough, c2, np.nan)
    ok = np.isfinite(c1)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    result.boot = {"c1": c1, "c2": c2, "n_boot": int(n_boot), "n_ok": int(ok.sum()),
                   "method": ("seeds" if any(f.seed_matrix is not None and f.seed_matrix.shape[1] >= 2
                                             for f in result.bases.values()) else "residuals")
                   + ("+points" if bootstrap.endswith("+points") else "")}
    if ok.sum() >= MIN_DRAWS:
        result.c1_ci = tuple(float(v) for v in np.quantile(c1[ok], [lo_q, hi_q]))
        result.c2_ci = tuple(float(v) for v in np.quantile(c2[ok], [lo_q, hi_q]))
    if ok.mean() < WARN_EQ1_OK:
        result.warnings.append(f"only {ok.mean():.0%} of bootstrap draws gave enough tuples for Eq. 1")


def _t_test_p(gains) -> float:
    """p of a one-sided t-test that the mean gain is above zero."""
    from scipy import stats  # scipy.stats takes seconds to import: only the tests that run pay for it
    return float(stats.ttest_1samp(gains, 0.0, alternative="greater").pvalue)


# ------------------------------------------------------------------------- settings & IR

def settings(runs: pd.DataFrame) -> list[tuple]:
    """Every (dataset, classifier, augmentation, generator[, traditional]) with synthetic runs;
    traditional is there when the runs record it."""
    syn = runs[runs.augmentation.isin(SYNTHETIC)]
    keys = syn[["dataset", "classifier", "augmentation", "generator"]
               + (["traditional"] if "traditional" in syn else [])].drop_duplicates()
    return [tuple(None if pd.isna(v) else v for v in row) for row in keys.itertuples(index=False)]


IR_COLUMNS = ["source", "traditional", "n_base", "acc_base", "generator_closed", "gain_closed", "generator_open",
              "gain_open", "IR", "IR_lo", "IR_hi", "n_seeds", "note"]


def improvement_ratio(runs: pd.DataFrame, dataset: str, classifier: str, source: str | None = None,
                      n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                      traditional: str | None = None) -> pd.DataFrame:
    """IR(n_base) (Eq. 7): closed-set gain over open-set gain at 1:1 (n_syn_added = n_base).

    One row per (source, traditional augmentation, closed generator, open generator, n_base), from
    measured runs only; sources, generators and traditional augmentations are never mixed (runs that
    record none are a group of their own). `traditional` keeps only that one. Where the three runs
    share at least two seeds, the interval resamples seeds (the same seeds for base, closed and
    open, so they stay paired).
    """
    sel = runs[(runs.dataset == dataset) & (runs.classifier == classifier)]
    if traditional is not None:
        sel = one_traditional(sel, CLOSED, None, traditional, source)[0]  # FitError if it has no closed runs
    if "source" not in sel:
        sel = sel.assign(source=UNNAMED_SOURCE)
    if "traditional" not in sel:
        sel = sel.assign(traditional=None)
    sel = sel[sel.source.notna()] if source is None else sel[sel.source == source]
    rng = np.random.default_rng(seed)
    out = []
    for (src, trad), s in sel.groupby(["source", "traditional"], dropna=False, sort=True):
        trad = None if pd.isna(trad) else trad
        closed_gens = sorted(s[s.augmentation == CLOSED].generator.dropna().unique())
        open_gens = sorted(s[s.augmentation == OPEN].generator.dropna().unique())
        for n_base in sorted(s.n_base.unique()):
            at = s[s.n_base == n_base]
            zero = at[(at.n_real_added == 0) & (at.n_syn_added == 0)]
            base = zero[zero.augmentation == REAL] if (zero.augmentation == REAL).any() else zero
            if base.empty:
                continue
            for gc in closed_gens:
                closed = at[(at.augmentation == CLOSED) & (at.generator == gc) & (at.n_syn_added == n_base)]
                for go in open_gens:
                    opened = at[(at.augmentation == OPEN) & (at.generator == go) & (at.n_syn_added == n_base)]
                    if closed.empty or opened.empty:
                        continue
                    out.append(_ir_row(src, int(n_base), base, gc, closed, go, opened, n_boot, level, rng)
                               | {"traditional": trad})
    return pd.DataFrame(out, columns=IR_COLUMNS)


def _ir_row(src, n_base, base, gc, closed, go, opened, n_boot, level, rng) -> dict:
    acc_base = base.top1.mean()
    gain_c, gain_o = closed.top1.mean() - acc_base, opened.top1.mean() - acc_base
    row = {"source": src, "n_base": n_base, "acc_base": acc_base, "generator_closed": gc, "gain_closed": gain_c,
           "generator_open": go, "gain_open": gain_o, "IR": gain_c / gain_o if gain_o != 0 else np.nan,
           "IR_lo": np.nan, "IR_hi": np.nan, "n_seeds": 0, "note": "published means: no seeds, no interval"}
    if gain_o == 0:  # the ratio has no value, and neither has an interval around it
        row["note"] = "the open-set runs gain nothing over the base: IR is undefined"
        return row
    per_seed = [f[f.seed.notna()].groupby("seed").top1.mean() for f in (base, closed, opened)]
    common = sorted(set(per_seed[0].index) & set(per_seed[1].index) & set(per_seed[2].index))
    row["n_seeds"] = len(common)
    if len(common) < 2:
        if len(common) == 1 or any(len(p) for p in per_seed):
            row["note"] = "fewer than two seeds shared by the base, closed and open runs: no interval"
        return row
    b, c, o = (p.loc[common].to_numpy(float) for p in per_seed)
    draw = rng.integers(0, len(common), size=(n_boot, len(common)))
    gc_b, go_b = (c[draw] - b[draw]).mean(1), (o[draw] - b[draw]).mean(1)
    flipped = np.mean(np.sign(go_b) != np.sign(gain_o))
    if flipped > (1 - level) / 2:
        row["IR_lo"], row["IR_hi"] = -np.inf, np.inf
        row["note"] = (f"the open-set gain changes sign in {flipped:.0%} of seed resamples: "
                       f"IR is unbounded at this level")
        return row
    with np.errstate(divide="ignore", invalid="ignore"):
        ir_b = gc_b / go_b
    row["IR_lo"], row["IR_hi"] = (float(v) for v in np.quantile(ir_b, [(1 - level) / 2, 1 - (1 - level) / 2]))
    row["note"] = f"{level:.0%} interval over {len(common)} seeds (resampled, paired)"
    return row
