"""The two questions users ask of a fit, answered from Eq. 1 and from the base's own surface: how many
synthetic images equal N more real ones at n_base, and how many real images K synthetic ones are worth."""
from __future__ import annotations

import numpy as np

from engine.analysis.bootstrap import MIN_DRAWS
from engine.analysis.equivalence import DROP_REASONS, ROOT_BOUND_FACTOR, beyond, eq1, eq1_inverse, first_crossing
from engine.analysis.gains import bound_statement
from engine.analysis.surface import FitError, Surface, design_matrix
from engine.catalog.vocab import REAL

# A surface answer's interval needs half of the draws to have an answer at all; below that the
# interval would describe the draws that happened to cross, not the answer.
MIN_SURFACE_OK = 0.5


def answer(a, n_base: int, amount: float, direction: str) -> dict:
    """One question of a fit `a` (engine.analysis.fit.Analysis): "syn_for_real" (how many synthetic images
    equal `amount` more real ones at n_base) or "real_for_syn" (how many real images `amount` synthetic
    ones are worth), from Eq. 1 and from this base's own surface, each with its interval, a bound where
    the base's gains are within seed noise, and warnings where the question extrapolates."""
    if not (n_base > 0 and np.isfinite(amount) and amount >= 0):
        raise FitError(f"n_base must be positive and the amount a non-negative number (got {n_base}, {amount})")
    out = {"n_base": int(n_base), "direction": direction,
           "n_real_added" if direction == "syn_for_real" else "n_syn_added": float(amount),
           "warnings": []}
    lo_q, hi_q = (1 - a.level) / 2, 1 - (1 - a.level) / 2
    # Eq. 1
    if a.c1 is not None:
        f = eq1 if direction == "syn_for_real" else eq1_inverse
        out["eq1"] = float(f(n_base, amount, a.c1, a.c2, a.tau))
        d = a.draws
        if d is not None and d.n_ok >= MIN_DRAWS:
            draws = f(n_base, amount, d.c1[d.ok], d.c2[d.ok], a.tau)
            out["eq1_ci"] = tuple(float(v) for v in np.quantile(draws, [lo_q, hi_q]))
    else:
        out["eq1_error"] = a.eq1_error
    # Directly from this base's surface
    base = a.bases.get(int(n_base))
    if base is not None and base.surface is not None:
        out["surface"], status = surface_answer(base.surface, base.surface.beta[None], n_base, amount, direction)
        out["surface"] = float(out["surface"][0]) if status[0] == "ok" else None
        if out["surface"] is None:
            out["surface_error"] = DROP_REASONS[status[0]]
        if base.boot_betas is not None:
            draws, st = surface_answer(base.surface, base.boot_betas, n_base, amount, direction)
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
    out["warnings"] += extrapolation(a, n_base, amount, direction, out)
    return out


def has_answer(answer: dict) -> bool:
    """A number (Eq. 1 or this base's surface) or a one-sided bound."""
    return ("eq1" in answer or answer.get("surface") is not None
            or answer.get("bound", {}).get("kind") == "more_than")


def extrapolation(a, n_base, amount, direction, out) -> list:
    warn = []
    fitted = sorted(b for b, f in a.bases.items() if f.surface is not None)
    tuple_bases = sorted({t["n_base"] for t in a.tuples})
    if tuple_bases and not tuple_bases[0] <= n_base <= tuple_bases[-1]:
        warn.append(f"extrapolation: n_base {n_base} is outside the measured range "
                    f"{tuple_bases[0]}-{tuple_bases[-1]} of the Eq. 1 fit")
    base = a.bases.get(int(n_base))
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


def surface_answer(surface: Surface, betas, n_base, amount, direction):
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
