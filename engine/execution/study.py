"""`engine study digits`: the built-in end-to-end study on scikit-learn's digits, on a CPU.

For each base size it trains real-augmentation runs (0, N, 2N, 3N added) and closed-set runs
(N, 2N, 4N, 8N synthetic images from a tiny EDM trained on that base only), 3 seeds each, then
fits the equivalence. Small bases keep accuracy far from digits' ceiling (~98.5 % from 300
images). Everything is stored as source `engine`; rerunning skips what is stored and reuses
trained generators, so an interrupted study resumes where it stopped.
"""
from __future__ import annotations

from engine.catalog.vocab import CLOSED, CROP, CROP_FLIP, FLIP, NO_TRADITIONAL, REAL

DIGITS_BASES = (20, 50, 100, 200)
REAL_ADDED = "0,N,2N,3N"
SYN_ADDED = "N,2N,4N,8N"


def study_grids(bases) -> list[tuple[int, str, str]]:
    """(n_base, augmentation, added) in the order the study runs them."""
    grids = []
    for n_base in bases:
        grids.append((n_base, REAL, REAL_ADDED))
        grids.append((n_base, CLOSED, SYN_ADDED))
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
            kind = REAL if p.n_real_added else "synthetic"
            added = int(p.n_real_added or p.n_syn_added)
            rows.append({"n_base": n_base, "kind": kind, "added": added, "ratio": added / n_base,
                         "acc_base": float(np.nanmean(base)), "acc": float(p.acc),
                         "gain_mean": float(d.mean()) if d.size else None,
                         "gain_sd": float(d.std(ddof=1)) if d.size > 1 else None, "n_pairs": int(d.size)})
    return rows


# The paper's Tab. 6 (appendix D) on CIFAR-10-Large: no augmentation, flip only, crop only, and
# closed-set EDM images at 1:1 with no traditional augmentation. Here on digits, at each base size,
# plus crop + flip (what every other experiment of the paper trains with). On digits a flip turns
# a digit into something else, which the table shows rather than hides.
TAB6_TRADITIONAL = (NO_TRADITIONAL, FLIP, CROP, CROP_FLIP)


def tab6_grids(bases) -> list[tuple[int, str, str, str]]:
    """(n_base, augmentation, added, traditional) of the Tab. 6 comparison, in the order it runs them."""
    grids = []
    for n_base in bases:
        grids += [(n_base, REAL, "0", t) for t in TAB6_TRADITIONAL]
        grids.append((n_base, CLOSED, "N", NO_TRADITIONAL))
    return grids


def tab6_rows(runs) -> list[dict]:
    """Per base, one row per Tab. 6 setting: accuracy over seeds and its gain over no augmentation,
    paired by seed. `runs` are the comparison's own runs (selected by run key)."""
    rows = []
    for n_base, at in runs.groupby("n_base", sort=True):
        none = at[(at.augmentation == REAL) & (at.traditional == NO_TRADITIONAL)].set_index("seed").top1
        settings = [(t, REAL, "—") for t in TAB6_TRADITIONAL] + [(NO_TRADITIONAL, CLOSED, "closed-set 1:1")]
        for trad, aug, gen in settings:
            sel = at[(at.augmentation == aug) & (at.traditional == trad)]
            if sel.empty:
                continue
            acc = sel.set_index("seed").top1
            d = (acc - none).dropna().to_numpy()
            baseline = trad == NO_TRADITIONAL and aug == REAL
            generator = sel.generator.dropna().iloc[0] if aug == CLOSED and sel.generator.notna().any() else gen
            rows.append({"n_base": int(n_base), "traditional": trad,
                         "generative": generator if aug == CLOSED else "—",
                         "acc": float(acc.mean()), "acc_sd": float(acc.std(ddof=1)) if len(acc) > 1 else None,
                         "gain": float(d.mean()) if d.size and not baseline else None,
                         "gain_sd": float(d.std(ddof=1)) if d.size > 1 and not baseline else None,
                         "seeds": int(len(acc))})
    return rows
