"""IR(n_base) (Eq. 7): the closed-set gain over the open-set gain at 1:1, from measured runs only."""
from __future__ import annotations

import numpy as np
import pandas as pd

from engine.analysis.select import UNNAMED_SOURCE, one_traditional
from engine.catalog.vocab import CLOSED, OPEN, REAL


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
