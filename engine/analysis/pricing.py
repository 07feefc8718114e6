"""Torch-free: the price of an answer (`engine equiv --gpu-cost --label-cost`, the Budget page's cost
sentence): labelling the real images against training a generator and sampling the equivalent synthetic
ones, each with the verdict's interval carried through the cost model of engine.analysis.cost."""
from __future__ import annotations

import numpy as np

from engine.analysis.cost import CPU, CostModel, Hours, generator_hours
from engine.analysis.wording import fmt_count
from engine.catalog.generators import GENERATORS
from engine.catalog.vocab import REAL

# The paper's generators by their bare stored names, read as the nearest kind and preset here.
PAPER_GENERATORS = {"EDM": ("edm", "cifar"), "DiT": ("dit", "XL/2")}


def generator_of(stored: str | None) -> tuple[str, str, str] | None:
    """(kind, preset, note) of a stored generator name ("EDM-tiny"); None for an imported (open) set."""
    if not stored:
        return None
    for key, g in GENERATORS.items():
        for p in g.presets:
            if stored == g.stored_name(p):
                return key, p, ""
    if stored in PAPER_GENERATORS:
        k, p = PAPER_GENERATORS[stored]
        return k, p, f"the paper's {stored} read as {GENERATORS[k].stored_name(p)}"
    return None


def _mul(iv, k):
    return None if iv is None else [None if v is None or k is None else v * k for v in iv]


def _ci(lo, hi):
    return None if lo is None and hi is None else [lo, hi]


def answer_cost(verdict: dict, direction: str, amount: float, n_base: int, generator: str | None, model: CostModel,
                gpu_cost: float | None = None, label_cost: float | None = None, device: str = "auto") -> dict:
    """Labelling the real images against generating the synthetic ones of one verdict: images, hours and
    money, each with the verdict's interval carried through (lo with lo, hi with hi; None = open/unknown)."""
    device = model.resolve(device)
    value, lo, hi = verdict.get("value"), verdict.get("lo"), verdict.get("hi")
    if direction == "syn_for_real":
        real_n, real_ci, syn_n, syn_ci = float(amount), None, value, _ci(lo, hi)
    else:
        real_n, real_ci, syn_n, syn_ci = value, _ci(lo, hi), float(amount), None
    gen, samp = Hours(), Hours()
    kind = generator_of(generator)
    notes = [kind[2]] if kind and kind[2] else []
    if kind is None:
        gen.unknown(f"{generator or 'this setting'}: not a generator this engine trains (imported images)")
    else:
        generator_hours(model, kind[0], kind[1], {}, device, gen)
        samp_fit = model.sampling_fit(kind[0], kind[1], device)
        if samp_fit is None:
            samp.unknown(f"sampling {generator} on {device}: no measured sampling and no bench figure")
            rate = (None, None, None)
        else:
            rate = samp_fit.predict(1.0)
            samp.basis.append(samp_fit.basis(f"sampling {GENERATORS[kind[0]].stored_name(kind[1])}"))
    per = [None] * 3
    if kind is not None and samp.hours is not None and rate[0] is not None:
        per = [(r if r is not None else rate[0]) / 3600 for r in rate]
    images = syn_ci or [syn_n, syn_n]
    samp_h = None if syn_n is None or per[0] is None else syn_n * per[0]
    samp_ci = [None if x is None or p is None else x * p for x, p in zip(images, per[1:])]
    gen_ci = [gen.lo, gen.hi] if gen.hours is not None and gen.lo is not None else \
        ([gen.hours, gen.hours] if gen.hours is not None else [None, None])
    hours = None if gen.hours is None or samp_h is None else gen.hours + samp_h
    hours_ci = [None if gen_ci[i] is None or samp_ci[i] is None else gen_ci[i] + samp_ci[i] for i in (0, 1)]
    gpu = None if hours is None or gpu_cost is None else hours * gpu_cost
    gpu_ci = _mul(hours_ci, gpu_cost)
    label = None if real_n is None or label_cost is None else real_n * label_cost
    label_ci = _mul(real_ci, label_cost)
    out = {"direction": direction, "device": device, "gpu_price": gpu_cost, "label_price": label_cost,
           REAL: {"images": real_n, "images_ci": real_ci, "label_cost": label, "label_cost_ci": label_ci},
           "synthetic": {"images": syn_n, "images_ci": syn_ci, "generator_hours": gen.hours,
                         "generator_hours_ci": _ci(gen.lo, gen.hi), "sampling_hours": samp_h,
                         "sampling_hours_ci": _ci(*samp_ci), "gpu_hours": hours, "gpu_hours_ci": _ci(*hours_ci),
                         "gpu_cost": gpu, "gpu_cost_ci": _ci(*gpu_ci) if gpu_ci else None},
           "basis": "; ".join(notes + [t for t in (gen.text(), samp.text() if kind is not None else "") if t])}
    out["cheaper"] = _cheaper(label, label_ci, gpu, gpu_ci)
    reals = real_ci or [real_n, real_n]
    be = None if hours is None or gpu_cost is None or not real_n else hours * gpu_cost / real_n
    be_ci = None
    if gpu_ci and gpu_cost is not None:
        be_ci = [None if gpu_ci[0] is None or not reals[1] else gpu_ci[0] / reals[1],
                 None if gpu_ci[1] is None or not reals[0] else gpu_ci[1] / reals[0]]
    out.update(break_even_label_cost=be, break_even_label_cost_ci=be_ci)
    out["text"] = cost_sentence(out)
    return out


def _cheaper(label, label_ci, gpu, gpu_ci) -> str | None:
    """REAL, "synthetic", or "unclear" where the two intervals overlap; None without both prices."""
    if label is None and not label_ci or gpu is None and not (gpu_ci and gpu_ci[0] is not None):
        return None
    r_lo, r_hi = (label_ci or [label, label])
    s_lo, s_hi = (gpu_ci or [gpu, gpu])
    if s_hi is not None and r_lo is not None and s_hi < r_lo:
        return "synthetic"
    if s_lo is not None and r_hi is not None and s_lo > r_hi:
        return REAL
    return "unclear"


def _money(v) -> str:
    if v is None:
        return "?"
    if v >= 100:
        return f"${v:,.0f}"
    if v >= 1:
        return f"${v:.3g}"
    if v >= 0.01:
        return f"${v:.2f}"
    return "$" + np.format_float_positional(v, precision=2, fractional=False, trim="-")


def _span(ci, fmt) -> str:
    if not ci or (ci[0] is None and ci[1] is None) or (ci[0] is not None and fmt(ci[0]) == fmt(ci[1] or -1)):
        return ""
    return f" [{fmt(ci[0]) if ci[0] is not None else '?'}-{fmt(ci[1]) if ci[1] is not None else 'no upper bound'}]"


def _amount(value, ci, fmt) -> str:
    """A number with its interval; "at least lo" where the verdict gives only a lower bound."""
    if value is None:
        return f"at least {fmt(ci[0])}" if ci and ci[0] is not None else "?"
    return fmt(value) + _span(ci, fmt)


def cost_sentence(c: dict) -> str:
    """One line: labelling against generating, as the Budget page and `engine equiv` print it."""
    real, syn = c[REAL], c["synthetic"]
    # The question's amount exactly as asked; the answer's rounded as the verdict rounds it (1,519 -> 1,500).
    asked = lambda v: f"{v:,.0f}"  # noqa: E731
    real_count, syn_count = (asked, fmt_count) if c.get("direction") == "syn_for_real" else (fmt_count, asked)
    unit = "GPU-h" if c["device"] != CPU else "h on a CPU"
    if real["images"] is None and not real["images_ci"] or syn["images"] is None and not syn["images_ci"]:
        return "no cost comparison: the verdict gives no number or bound"
    r = (f"labelling {_amount(real['images'], real['images_ci'], real_count)} images"
         + (f" at {_money(c['label_price'])}: {_amount(real['label_cost'], real['label_cost_ci'], _money)}"
            if c["label_price"] is not None else ""))
    hours = "unknown hours" if syn["gpu_hours"] is None and not syn["gpu_hours_ci"] else \
        _amount(syn["gpu_hours"], syn["gpu_hours_ci"], lambda h: f"{h:.2g}") + f" {unit}"
    s = (f"generating the equivalent {_amount(syn['images'], syn['images_ci'], syn_count)}: {hours}"
         + (f", {_amount(syn['gpu_cost'], syn['gpu_cost_ci'], _money)}"
            if c["gpu_price"] is not None and (syn["gpu_cost"] is not None or syn["gpu_cost_ci"]) else ""))
    be = c.get("break_even_label_cost")
    tail = f"; break-even at {_amount(be, c.get('break_even_label_cost_ci'), _money)} per label" \
        if be is not None else ""
    return f"{r}; {s}{tail}"
