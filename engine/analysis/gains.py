"""Synthetic gains over the base-only run, paired by seed, and whether they beat seed-to-seed noise; what
can be said at a base where they do not ("more than K synthetic images", or nothing measurable)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from engine.analysis.equivalence import beyond

from engine.analysis.base_fit import BaseFit

NOISE_ALPHA = 0.05


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


def _t_test_p(gains) -> float:
    """p of a one-sided t-test that the mean gain is above zero."""
    from scipy import stats  # scipy.stats takes seconds to import: only the tests that run pay for it
    return float(stats.ttest_1samp(gains, 0.0, alternative="greater").pvalue)
