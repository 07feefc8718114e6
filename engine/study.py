"""`engine study digits`: the built-in end-to-end study on scikit-learn's digits, on a CPU.

For each base size it trains real-augmentation runs (0, N, 2N, 3N added) and closed-set runs
(N, 2N, 4N, 8N synthetic images from a tiny EDM trained on that base only), 3 seeds each, then
fits the equivalence. Small bases keep accuracy far from digits' ceiling (~98.5 % from 300
images). Everything is stored as source `engine`; rerunning skips what is stored and reuses
trained generators, so an interrupted study resumes where it stopped.
"""
from __future__ import annotations

DIGITS_BASES = (20, 50, 100, 200)
REAL_ADDED = "0,N,2N,3N"
SYN_ADDED = "N,2N,4N,8N"


def study_grids(bases) -> list[tuple[int, str, str]]:
    """(n_base, augmentation, added) in the order the study runs them."""
    grids = []
    for n_base in bases:
        grids.append((n_base, "real", REAL_ADDED))
        grids.append((n_base, "closed", SYN_ADDED))
    return grids


def gains_table(analysis) -> list[dict]:
    """Per base: real and synthetic gains over the base run, paired by seed (mean, sd, n)."""
    import numpy as np
    rows = []
    for n_base, fit in sorted(analysis.bases.items()):
        pts, m = fit.points, fit.seed_matrix
        if m is None or pts.empty:
            continue
        base_i = np.where((pts.n_real_added == 0) & (pts.n_syn_added == 0))[0]
        if not base_i.size:
            continue
        base = m[base_i[0]]
        for i, p in pts.iterrows():
            if i == base_i[0]:
                continue
            d = m[i] - base
            d = d[np.isfinite(d)]
            kind = "real" if p.n_real_added else "synthetic"
            added = int(p.n_real_added or p.n_syn_added)
            rows.append({"n_base": n_base, "kind": kind, "added": added, "ratio": added / n_base,
                         "acc_base": float(np.nanmean(base)), "acc": float(p.acc),
                         "gain_mean": float(d.mean()) if d.size else None,
                         "gain_sd": float(d.std(ddof=1)) if d.size > 1 else None, "n_pairs": int(d.size)})
    return rows
