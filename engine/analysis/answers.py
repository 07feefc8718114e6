"""The surface's and Eq. 1's answers to one question, with intervals that say when draws have none.

Analysis.syn_for_real / real_for_syn drop the bootstrap draws without an answer and quote the
quantiles of the rest, so a surface whose draws cross in only 70 % of cases still gets a finite
interval, and Eq. 1 can print 2.3e44. Here a draw without a crossing within 100 x n_base is an
answer beyond 100 x n_base (+inf in the quantiles), a draw whose target is already reached
without images is 0, and quantiles are taken without interpolating between draws (an infinite
draw makes that end open, never NaN). Eq. 1 is evaluated in logs, so no amount overflows and no
warning is raised; anything beyond 100 x n_base is "more than 100 x n_base", never a number.

Each function returns a plain dict: method, kind ("value", "more_than" or "no_answer"), value, lo, hi
(None where the side is open or there is no interval), interval (whether lo/hi come from draws),
no_answer (share of draws without an answer), draws, note.
"""
from __future__ import annotations

import numpy as np

from engine.analysis.equivalence import ROOT_BOUND_FACTOR, first_crossing
from engine.analysis.surface import design_matrix
from engine.analysis.wording import fmt_share
from engine.catalog.vocab import REAL

CAP = ROOT_BOUND_FACTOR   # no answer above CAP x n_base (the paper discards tuples beyond 100)
MIN_DRAWS = 20            # as engine.analysis.fit.MIN_DRAWS: fewer draws give no interval
_TINY = 1e-300            # c1 that underflowed to 0 in a draw: its log stays finite


def _empty(method: str, note: str) -> dict:
    return {"method": method, "kind": "no_answer", "value": None, "lo": None, "hi": None, "interval": False,
            "no_answer": None, "draws": 0, "note": note}


def _interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile bounds of draws that may be +inf: the draw at or beyond each quantile, no interpolation."""
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    return (float(np.quantile(draws, lo_q, method="lower")),
            float(np.quantile(draws, hi_q, method="higher")))


def _finish(out: dict, value: float, draws: np.ndarray | None, missing: int, n_base: float, level: float) -> dict:
    """value and draws in images, +inf meaning beyond CAP x n_base; fills kind, value, lo, hi."""
    cap = CAP * n_base
    inf_value = not (np.isfinite(value) and value <= cap)
    out["kind"] = "more_than" if inf_value else "value"
    out["value"] = None if inf_value else float(value)
    if draws is None or draws.size + missing < MIN_DRAWS:
        if inf_value:
            out["lo"] = cap
        return out
    draws = np.where(np.isfinite(draws) & (draws <= cap), draws, np.inf)
    # Draws that could not be computed at all count as "no answer" at the open end.
    draws = np.concatenate([draws, np.full(missing, np.inf)])
    out["draws"] = int(draws.size)
    out["interval"] = True
    out["no_answer"] = float(np.mean(~np.isfinite(draws)))
    n_none = int(np.sum(~np.isfinite(draws)))
    if n_none:
        out["note"] += (f"; {fmt_share(n_none, draws.size)} bootstrap draws have no answer within {CAP} x n_base"
                        + (" or no Eq. 1 fit" if missing else ""))
    lo, hi = _interval(draws, level)
    out["lo"] = min(lo, cap) if np.isfinite(lo) else cap
    out["hi"] = hi if np.isfinite(hi) else None
    if out["value"] is not None:
        out["lo"] = min(out["lo"], out["value"])
        out["hi"] = None if out["hi"] is None else max(out["hi"], out["value"])
    return out


def surface_answer(base_fit, n_base: int, amount: float, direction: str, level: float = 0.95) -> dict:
    """The question solved on one base's fitted surface and on each of its bootstrap draws.

    base_fit: an engine.analysis.fit.BaseFit (surface, boot_betas, noise). A base whose synthetic
    gains are within seed noise (its paired test failed) has no surface answer: its root is noise.
    """
    out = _empty("surface", "")
    if base_fit is None or base_fit.surface is None:
        out["note"] = f"no fitted surface at n_base {n_base:,}"
        return out
    if base_fit.noise.get("tested") and not base_fit.noise.get("significant"):
        out["note"] = "this base's synthetic gains are within seed noise (paired test): the surface's root is noise"
        return out
    s = base_fit.surface
    betas = s.beta[None, :]
    missing = 0
    if base_fit.boot_betas is not None:
        ok = np.all(np.isfinite(base_fit.boot_betas), axis=1)
        missing = int((~ok).sum())
        betas = np.vstack([betas, base_fit.boot_betas[ok]])
    m = betas.shape[0]
    if direction == "syn_for_real":
        target = (betas * design_matrix(n_base + amount, 0.0, s.features, s.eps)).sum(-1)
        vary = "syn"
    else:
        target = (betas * design_matrix(n_base, amount, s.features, s.eps)).sum(-1)
        vary = REAL
    roots, status = first_crossing(betas, s.features, s.eps, vary=vary, fixed_real=np.full(m, float(n_base)),
                                   fixed_syn=np.zeros(m), target=target,
                                   bound=np.full(m, CAP * float(n_base)))
    values = np.where(status == "ok", roots, np.where(status == "no_gain", 0.0, np.inf))
    draws = values[1:] if base_fit.boot_betas is not None else None
    out["note"] = "solved on this base's surface (Eq. 12)"
    return _finish(out, float(values[0]), draws, missing, float(n_base), level)


def _log_syn(n_base, n_real_added, c1, c2, tau):
    """log n_syn_added of Eq. 1, without overflow: log n_base + tau n_base log c1 + log(c2^r - 1)."""
    z = (np.asarray(n_real_added, float) / n_base) * np.log(c2)
    with np.errstate(divide="ignore"):   # c2 = 1 to round-off: no growth, log 0 = -inf, an amount of 0
        log_growth = np.where(z > 30.0, z + np.log1p(-np.exp(-np.minimum(z, 700.0))),
                              np.log(np.expm1(np.minimum(z, 30.0))))
    return np.log(n_base) + tau * n_base * np.log(np.maximum(c1, _TINY)) + log_growth


def _real(n_base, n_syn_added, c1, c2, tau):
    """n_real_added of Eq. 1's inverse: n_base log(1 + K / (n_base c1^(tau n_base))) / log c2, in logs."""
    log_ratio = np.log(n_syn_added) - np.log(n_base) - tau * n_base * np.log(np.maximum(c1, _TINY))
    log_c2 = np.log(c2)
    # c2 = 1 to round-off (a draw at its bound): Eq. 1 then equates any real amount with no synthetic
    # images, so K synthetic images are worth more real ones than any bound: +inf, "beyond 100 x n_base".
    return np.where(log_c2 > 0, n_base * np.logaddexp(0.0, log_ratio) / np.where(log_c2 > 0, log_c2, 1.0), np.inf)


def eq1_answer(analysis, n_base: int, amount: float, direction: str, level: float = 0.95) -> dict:
    """Eq. 1's answer with c1, c2 and their bootstrap draws (an engine.analysis.fit.Analysis).

    A draw whose Eq. 13 fit failed (too few tuples, mostly because their roots lay beyond 100 x
    n_base) counts as no answer at the open end: with more than (1 - level) / 2 of them, hi is None.
    """
    out = _empty("eq1", "")
    if analysis.c1 is None:
        out["note"] = analysis.eq1_error or "no Eq. 1 fit"
        return out
    b, tau = float(n_base), analysis.tau
    c1b, c2b = (analysis.draws.c1, analysis.draws.c2) if analysis.draws is not None else (None, None)
    draws, missing = None, 0
    if direction == "syn_for_real":
        value = float(np.exp(min(_log_syn(b, amount, analysis.c1, analysis.c2, tau), 700.0))) if amount > 0 else 0.0
        if c1b is not None:
            ok = np.isfinite(c1b) & np.isfinite(c2b)
            missing = int((~ok).sum())
            draws = (np.exp(np.minimum(_log_syn(b, amount, c1b[ok], c2b[ok], tau), 700.0)) if amount > 0
                     else np.zeros(int(ok.sum())))
    else:
        value = float(_real(b, amount, analysis.c1, analysis.c2, tau)) if amount > 0 else 0.0
        if c1b is not None:
            ok = np.isfinite(c1b) & np.isfinite(c2b)
            missing = int((~ok).sum())
            draws = _real(b, amount, c1b[ok], c2b[ok], tau) if amount > 0 else np.zeros(int(ok.sum()))
    out["note"] = f"Eq. 1 (c1 {analysis.c1:.3g}, c2 {analysis.c2:.3g}) fitted over the bases' tuples"
    return _finish(out, value, draws, missing, b, level)
