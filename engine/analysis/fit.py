"""The whole equivalence fit of one setting: per-base surfaces → Eq. 12 tuples → Eq. 1, with intervals.

A setting is (dataset, classifier, augmentation, generator, traditional augmentation), fitted from one
source of runs (engine, import or paper; "all" pools them; engine.analysis.select picks the runs). For
every n_base it fits the accuracy surface, solves Eq. 12 on a grid of real ratios, fits Eq. 13 to all the
tuples, and bootstraps the lot (engine.analysis.bootstrap: over seeds where per-seed runs exist, base and
augmented runs staying paired, else over the surface's residuals; and over the points of each base). The
questions users ask of the result are engine.analysis.questions'. docs/method.md has the choices and the
coverage they were measured to give.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.analysis import questions
from engine.analysis.base_fit import BaseFit
from engine.analysis.bootstrap import (BOOTSTRAPS, DEFAULT_BOOTSTRAP, MIN_DRAWS, WARN_EQ1_OK,  # noqa: F401
                                       BootstrapDraws, TupleDraws, bootstrap_betas, eq1_draws)
from engine.analysis.equivalence import DROP_REASONS, beyond, equivalence_tuples, fit_eq1, tau_for
from engine.analysis.gains import bound_statement, paired_gains
from engine.analysis.options import ALL_SOURCES, MAX_N_BOOT
from engine.analysis.select import UNNAMED_SOURCE, columns, select_setting, surface_points
from engine.analysis.surface import (DEFAULT_EPS, PAPER_FEATURES, FitError, all_subsets, best_subset,
                                     fit_surface)
from engine.catalog.datasets import paper_grid
from engine.catalog.vocab import PAPER, REAL, SYNTHETIC

# Eq. 12's ratios r = n_real_added / n_base at a base the paper's grid (appendix A; the catalog's dataset
# entries) does not cover.
DEFAULT_RATIOS = [1, 2, 3]
MIN_TUPLES = 3  # two parameters and at least one degree of freedom




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
    draws: BootstrapDraws | None = None  # the bootstrap behind the intervals, kept for questions and charts
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
        return questions.answer(self, n_base, amount, direction)

    def has_answer(self, answer: dict) -> bool:
        """A number (Eq. 1 or this base's surface) or a one-sided bound."""
        return questions.has_answer(answer)

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
            "bootstrap": self.draws.summary() if self.draws is not None else {},
            "warnings": self.warnings,
        }


def resolve_features(features, points: pd.DataFrame, n_base: int, eps: float):
    """A feature tuple, or "best:<criterion>" chosen among the 31 subsets for this base."""
    if isinstance(features, str):
        if not features.startswith("best:"):
            return tuple(f for f in features.split(",") if f)
        criterion = features.split(":", 1)[1]
        table = all_subsets(n_base, n_base + points.n_real_added, points.n_syn_added, points.acc, eps)
        return best_subset(table, criterion)
    return tuple(features)


def check_n_boot(n_boot: int) -> None:
    if not 0 <= n_boot <= MAX_N_BOOT:
        raise FitError(f"n_boot {n_boot} must be between 0 and {MAX_N_BOOT:,}")


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
    sel, syn_runs, source, traditional, other_traditional = select_setting(
        runs, dataset, classifier, augmentation, generator, traditional, exclude_run_ids, source)
    if n_total is None:
        totals = sel.n_total.dropna().unique()
        if len(totals) == 0:
            raise FitError(f"n_total of {dataset} is unknown: give it explicitly")
        n_total = int(totals.max())
    tau = tau_for(n_total)
    grid, grid_rule = _grid(dataset, sel, syn_runs, grid, source)
    rng = np.random.default_rng(seed)
    cols = columns(sel)
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
        fit.boot_betas = bootstrap_betas(fit, n_boot, rng, bootstrap)
    return fit


@dataclass
class BaseTuples:
    """What one base gives Eq. 1: kept tuples, dropped ones with reasons, warnings, bootstrap roots."""
    kept: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    draws: TupleDraws | None = None  # every draw's roots at the grid's ratios


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
        out.draws = TupleDraws(n_base, np.asarray(fit.ratios, float), np.where(b_status == "ok", b_roots, np.nan))
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
        seeded = any(f.seed_matrix is not None and f.seed_matrix.shape[1] >= 2 for f in result.bases.values())
        method = ("seeds" if seeded else "residuals") + ("+points" if bootstrap.endswith("+points") else "")
        d = result.draws = eq1_draws(tuple_draws, point["theta"], result.tau, method, MIN_TUPLES)
        lo_q, hi_q = (1 - result.level) / 2, 1 - (1 - result.level) / 2
        if d.n_ok >= MIN_DRAWS:
            result.c1_ci = tuple(float(v) for v in np.quantile(d.c1[d.ok], [lo_q, hi_q]))
            result.c2_ci = tuple(float(v) for v in np.quantile(d.c2[d.ok], [lo_q, hi_q]))
        if d.ok.mean() < WARN_EQ1_OK:
            result.warnings.append(f"only {d.ok.mean():.0%} of bootstrap draws gave enough tuples for Eq. 1")


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
