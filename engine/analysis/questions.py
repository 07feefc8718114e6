"""The two questions users ask of a fit, answered from Eq. 1 and from the base's own surface: how many
synthetic images equal N more real ones at n_base, and how many real images K synthetic ones are worth."""
from __future__ import annotations

import numpy as np

from engine.analysis.answers import CAP, eq1_answer, surface_answer
from engine.analysis.equivalence import beyond
from engine.analysis.gains import bound_statement
from engine.analysis.surface import FitError

def answer(a, n_base: int, amount: float, direction: str) -> dict:
    """One question of a fit `a` (engine.analysis.fit.Analysis): "syn_for_real" (how many synthetic images
    equal `amount` more real ones at n_base) or "real_for_syn" (how many real images `amount` synthetic
    ones are worth), from Eq. 1 and from this base's own surface (engine.analysis.answers: nothing above
    100 x n_base, intervals open where draws have no answer), each with its interval (`*_ci`: (lo, hi),
    hi None when open above), a bound where the base's gains are within seed noise, and warnings where
    the question extrapolates. The verdict (engine.analysis.verdict) weighs these against the runs."""
    if not (n_base > 0 and np.isfinite(amount) and amount >= 0):
        raise FitError(f"n_base must be positive and the amount a non-negative number (got {n_base}, {amount})")
    out = {"n_base": int(n_base), "direction": direction,
           "n_real_added" if direction == "syn_for_real" else "n_syn_added": float(amount),
           "warnings": []}
    if a.c1 is None:
        out["eq1_error"] = a.eq1_error
    else:
        _take(out, "eq1", eq1_answer(a, n_base, amount, direction, a.level), n_base)
    base = a.bases.get(int(n_base))
    if base is None or base.surface is None:
        out["surface_error"] = f"no fitted surface at n_base {n_base}"
    else:
        _take(out, "surface", surface_answer(base, n_base, amount, direction, a.level), n_base)
    if base is not None and base.noise.get("tested") and not base.noise["significant"]:
        # The surface of this base fits seed noise: its root is no answer, the bound is.
        out["bound"] = (bound_statement(base, amount) if direction == "syn_for_real" else
                        {"kind": "not_measurable",
                         "text": f"not measurable at this base: synthetic gains at n_base {n_base:,} are "
                                 f"within seed noise (paired p = {base.noise['p_value']:.2f})"})
        out.pop("surface_ci", None)
        out["surface"] = None
        out["surface_error"] = "this base's synthetic gains are within seed noise"
    out["warnings"] += extrapolation(a, n_base, amount, direction, out)
    return out


def _take(out: dict, name: str, ans: dict, n_base: int) -> None:
    """One method's answer into the question's fields: a number with its interval, or why there is none."""
    if ans["kind"] == "value":
        out[name] = ans["value"]
        if ans["interval"]:
            out[f"{name}_ci"] = (ans["lo"], ans["hi"])
    else:
        out[name] = None
        out[f"{name}_error"] = (f"more than {CAP} x n_base ({CAP * n_base:,} images): beyond any measured or checked "
                                f"amount" if ans["kind"] == "more_than" else (ans["note"] or "no answer"))
    if ans.get("no_answer"):
        out["warnings"].append(f"{name}: " + ans["note"].split("; ", 1)[-1])


def has_answer(answer: dict) -> bool:
    """A number (Eq. 1 or this base's surface) or a one-sided bound."""
    return (answer.get("eq1") is not None or answer.get("surface") is not None
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
