"""Bootstrap draws of a fit, typed and kept on its result: each base's surface coefficients (seeds by
Gaussian multipliers, or the surface's residuals; points resampled within each axis), every draw's Eq. 12
roots, and Eq. 1's c1, c2 refitted on every draw's tuples. docs/method.md has the choices and the coverage
they were measured to give."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.analysis.equivalence import fit_eq1_batch, unpack

from engine.analysis.base_fit import BaseFit

# Quantiles of fewer than 20 successful bootstrap draws are too coarse for a 95 % interval (its
# tails would rest on one draw each): below that no interval is reported.
MIN_DRAWS = 20
# Eq. 1's interval is reported with a warning when over a tenth of the draws lost their tuples.
WARN_EQ1_OK = 0.9
# Seeds (Gaussian multipliers) and points: in the coverage study (bench/bench_coverage.py,
# docs/method.md) resampling 3 seeds covered even the method's own noise-free answer in only
# 71-87 % of studies; this covers it in 98-100 % (and the truth where the surface can follow it).
BOOTSTRAPS = ("seeds+points", "seeds", "resample", "resample+points")
DEFAULT_BOOTSTRAP = "seeds+points"


@dataclass
class TupleDraws:
    """One base's Eq. 12 roots in every draw: n_syn_added at each grid ratio (NaN where a draw has none)."""
    n_base: int
    ratios: np.ndarray      # (ratios,)
    roots: np.ndarray       # (draws, ratios)


@dataclass
class BootstrapDraws:
    """A fit's bootstrap: Eq. 1 refitted on every draw's tuples (NaN where a draw kept too few)."""
    method: str             # seeds or residuals, +points when points were resampled
    n_boot: int
    c1: np.ndarray          # (draws,)
    c2: np.ndarray          # (draws,)
    tuples: list            # TupleDraws per base with tuples

    @property
    def ok(self) -> np.ndarray:
        return np.isfinite(self.c1)

    @property
    def n_ok(self) -> int:
        return int(self.ok.sum())

    def summary(self) -> dict:
        return {"n_boot": self.n_boot, "n_ok": self.n_ok, "method": self.method}


def bootstrap_betas(fit: BaseFit, n_boot: int, rng: np.random.Generator, method: str = "seeds") -> np.ndarray:
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


def eq1_draws(tuple_draws: list[TupleDraws], theta0, tau: float, method: str, min_tuples: int) -> BootstrapDraws:
    """Eq. 1 refitted on every draw's tuples at once (a draw with fewer than `min_tuples` roots has none)."""
    n_boot = tuple_draws[0].roots.shape[0]
    # Every draw's tuples side by side (draws x all grid tuples), masked where a draw has no root.
    nb = np.concatenate([np.full(t.ratios.size, t.n_base, float) for t in tuple_draws])
    nr = np.concatenate([t.ratios * t.n_base for t in tuple_draws])
    ns = np.concatenate([t.roots for t in tuple_draws], axis=1)
    mask = np.isfinite(ns)
    enough = mask.sum(axis=1) >= min_tuples
    theta = fit_eq1_batch(tau * nb, nr / nb, np.nan_to_num(ns) / nb, mask, theta0)
    c1, c2 = unpack(theta)
    return BootstrapDraws(method, int(n_boot), np.where(enough, c1, np.nan), np.where(enough, c2, np.nan),
                          list(tuple_draws))
