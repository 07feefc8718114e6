"""How a verdict writes numbers for people: counts, shares and interval labels (plain Python, no numpy).

Rules (issue #26, item 4): a share of something that happened is never "0 %" nor one that did not
always happen "100 %"; a count is rounded to what its interval supports (two significant digits);
NaN and infinities never reach text or JSON (`finite`); an interval labelled with a level also
says how often such intervals covered the truth in the project's simulation when that is short
of the label.
"""
from __future__ import annotations

import math


def finite(x) -> float | None:
    """x as a float when it is a finite number, else None (JSON stays strict)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fmt_count(x: float | None) -> str:
    """An amount of images to two significant digits: 6,943 -> '6,900', 0.26 -> '0.26', None -> 'n/a'."""
    x = finite(x)
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) < 10:
        return f"{x:.2g}"
    digits = 1 - int(math.floor(math.log10(abs(x))))
    return f"{round(x, digits):,.0f}"


def fmt_share(part: int | float, whole: int | float | None = None) -> str:
    """A share as a percentage that is never '0 %' when something happened nor '100 %' when not all
    did: 1 of 200 -> '1 of 200 (<1 %)'. With whole None, part is already a fraction."""
    frac = part if whole is None else (part / whole if whole else 0.0)
    if frac <= 0:
        pct = "0 %"
    elif frac < 0.01:
        pct = "<1 %"
    elif frac >= 1:
        pct = "100 %"
    elif frac > 0.99:
        pct = ">99 %"
    else:
        pct = f"{round(frac * 100):.0f} %"
    return pct if whole is None else f"{part:g} of {whole:g} ({pct})"


def fmt_interval(lo: float | None, hi: float | None) -> str:
    """'5,600-8,400', 'at least 5,600' (open above), 'at most 900' (from 0), or 'n/a'."""
    lo, hi = finite(lo), finite(hi)
    if lo is None and hi is None:
        return "n/a"
    if hi is None:
        return f"at least {fmt_count(lo)}"
    if not lo:
        return f"at most {fmt_count(hi)}"
    return f"{fmt_count(lo)}-{fmt_count(hi)}"


def coverage_label(level: float, coverage: float | None) -> str:
    """'95 %' when the simulation measured at least level - 5 points, else what it measured."""
    nominal = f"{level * 100:.0f} %"
    if coverage is None:
        return f"nominal {nominal}, coverage not measured"
    if coverage >= level - 0.05:
        return f"{nominal} (covers {fmt_share(coverage)} in simulation)"
    return f"nominal {nominal}, covers {fmt_share(coverage)} in simulation"
