"""One graded answer to "how many synthetic images equal N more real ones" (issue #26, item 2).

Three methods can answer a question at a base: the measured runs that bracket the target
(engine.analysis.bracket, model-free), this base's fitted surface and Eq. 1 fitted across bases
(engine.analysis.answers). The verdict takes the best-supported one:

- A  bracketed by measured runs at this base, the target itself a measured run;
- B  bracketed by measured runs, the target interpolated between measured amounts of the question;
- C  extrapolated: past the largest measured amount (this base's surface, else Eq. 1), or at a
     base without runs (Eq. 1 across bases);
- D  no number: within seed noise (the interval reaches zero), not identified, beyond 100 x n_base
     or contradicted by the measured runs, said as "more than ..." / "at most ..." where the runs
     support a bound.

`verdict()` returns exactly {value, lo, hi, level, coverage, grade, method, text}: lo/hi None where
that side is open, value None without a number, coverage the share of simulated studies in which
such an interval covered the truth (COVERAGE, for seeded runs or means only), never NaN or
infinity. `explain()` adds the question and every method's own answer.
"""
from __future__ import annotations

from engine.analysis.answers import CAP, eq1_answer, surface_answer
from engine.analysis.bracket import DIRECTIONS, BaseData, bracket_answer, estimate_noise
from engine.analysis.coverage_table import VERDICT as VERDICT_COVERAGE
from engine.analysis.wording import coverage_label, finite, fmt_count, fmt_interval
from engine.catalog.vocab import REAL

VERDICT_KEYS = ("value", "lo", "hi", "level", "coverage", "grade", "method", "text")
# Eq. 1 answers only at bases within this factor of the bases its tuples came from: c1^(tau n_base)
# runs to 0 or infinity far outside them (n_base 1e9 gave "0 synthetic images").
EQ1_BASE_FACTOR = 2.0

# Measured coverage of each kind of verdict interval, by "grade:method:data" (data: seeds = per-seed
# runs, means = one value a point): engine/analysis/coverage_table.py, which names the command that
# measured it. A key that is missing was not measured; the verdict then says so.
COVERAGE = VERDICT_COVERAGE


def coverage_of(grade: str, method: str, data: str) -> float | None:
    return COVERAGE.get(f"{grade}:{method}:{data}")


def bases_data(analysis) -> dict[int, BaseData]:
    """Every base of an engine.analysis.fit.Analysis with measured points, as bracket input."""
    return {int(b): BaseData.from_points(b, f.points, f.seed_matrix)
            for b, f in sorted(analysis.bases.items()) if len(f.points)}


def _units(direction: str, amount: float, n_base: int) -> tuple[str, str]:
    images = "image" if amount == 1 else "images"
    # The question is echoed as asked: rounding is for answers, whose intervals say how much is known.
    asked = f"{amount:,.0f}" if float(amount).is_integer() else fmt_count(amount)
    if direction == "syn_for_real":
        return f"{asked} more real {images} at n_base {n_base:,}", "synthetic images"
    return f"{asked} synthetic {images} at n_base {n_base:,}", "real images"


def _eq1_in_range(analysis, n_base: int) -> str | None:
    """Why Eq. 1 cannot answer at this base, or None."""
    bases = sorted({t["n_base"] for t in analysis.tuples})
    if not bases:
        return None
    if n_base < bases[0] / EQ1_BASE_FACTOR or n_base > bases[-1] * EQ1_BASE_FACTOR:
        return (f"n_base {n_base:,} is more than {EQ1_BASE_FACTOR:g} x outside the bases Eq. 1 was fitted on "
                f"({bases[0]:,}-{bases[-1]:,})")
    return None


def _overlap(a: dict, b: dict) -> bool:
    lo_a, hi_a = a["lo"] or 0.0, a["hi"] if a["hi"] is not None else float("inf")
    lo_b, hi_b = b["lo"] or 0.0, b["hi"] if b["hi"] is not None else float("inf")
    return lo_a <= hi_b and lo_b <= hi_a


_NAMES = {"bracket": "the measured runs say", "surface": "this base's surface says", "eq1": "Eq. 1 says"}


def _say(ans: dict, unit: str) -> str:
    name = _NAMES[ans["method"]]
    if ans["value"] is None:
        return f"{name} more than {fmt_count(ans['lo'])} {unit}" if ans.get("lo") else f"{name} nothing"
    return f"{name} {fmt_count(ans['value'])} {unit} ({fmt_interval(ans['lo'], ans['hi'])})"


def _pct(level: float) -> str:
    return f"{level * 100:.0f} %"


def _floor(base, noise, br, direction, level, interp):
    """A lower bound from the measured runs when the answer lies past them (None without one).

    The true answer grows with the question's amount, so when the amount itself is beyond the
    measured ones the bracket at the largest measured amount still bounds it from below."""
    if br is None:
        return None, ""
    if br["kind"] == "more_than" and br["lo"] is not None:
        return br["lo"], (f"the measured runs say more than {fmt_count(br['lo'])} (the largest measured, "
                          f"{fmt_count(br['largest_measured'])}, falls short)")
    if br["kind"] == "target_beyond":
        q_axis = REAL if direction == "syn_for_real" else "syn"
        top = float(base.amounts(q_axis)[-1])
        at_top = bracket_answer(base, noise, top, direction, level, interp)
        if at_top["lo"] is not None and at_top["lo"] > 0:
            return at_top["lo"], (f"the question's amount is beyond the measured runs; at the largest measured, "
                                  f"{fmt_count(top)}, the measured runs say at least {fmt_count(at_top['lo'])}")
        return None, "the question's amount is beyond the measured runs at this base"
    return None, ""


def explain(analysis, n_base: int, amount: float, direction: str = "syn_for_real", *,
            interp: str = "pchip", bases: dict | None = None, noise=None) -> dict:
    """{question, verdict, coverage_key, answers: {bracket, surface, eq1}, noise}: the verdict and what
    each method said. `bases`/`noise` (from bases_data / estimate_noise) may be passed to reuse them
    across questions of one analysis."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}: choose from {', '.join(DIRECTIONS)}")
    amount_f = finite(amount)
    if amount_f is None or amount_f < 0 or int(n_base) <= 0:
        raise ValueError(f"n_base must be positive and the amount a finite, non-negative number "
                         f"(got {n_base}, {amount})")
    n_base, level = int(n_base), analysis.level
    bases = bases_data(analysis) if bases is None else bases
    noise = estimate_noise(list(bases.values())) if noise is None else noise
    data = "seeds" if noise.kind.startswith("seeds") else "means"
    question, unit = _units(direction, amount_f, n_base)
    verb = "is" if amount_f == 1 else "are"
    out = {"question": {"n_base": n_base, "direction": direction, "amount": amount_f, "unit": unit,
                        "data": data}, "noise": noise.as_dict(), "answers": {}, "coverage_key": None}

    def done(grade, method, text, value=None, lo=None, hi=None, key=None):
        # The last guard of item 4: no number above CAP x n_base leaves here, whatever produced it.
        cap = CAP * n_base
        if value is not None and value > cap:
            grade, value, text = "D", None, text + f"; more than {CAP} x n_base, so no number"
        lo = min(lo, cap) if lo is not None else None
        hi = hi if hi is None or hi <= cap else None
        bounded = lo is not None or hi is not None
        out["coverage_key"] = f"{grade}:{key or method}" if bounded else None
        cov = coverage_of(grade, key or method, data) if bounded else None
        out["verdict"] = {"value": finite(value), "lo": finite(lo), "hi": finite(hi), "level": level,
                          "coverage": cov, "grade": grade, "method": method,
                          "text": text + (f" [{coverage_label(level, cov)}]" if bounded else "")}
        return out

    if analysis.n_total and n_base > analysis.n_total:
        return done("D", "no method", f"no answer: n_base {n_base:,} is larger than {analysis.dataset}'s whole training "
                                 f"set ({analysis.n_total:,} images)")
    if amount_f == 0:
        return done("A", "no method", f"{question}: no images, nothing to match: 0 {unit}", 0.0, 0.0, 0.0)
    if amount_f > CAP * n_base:
        return done("D", "no method", f"{question}: no answer: the question's amount is more than {CAP} x n_base, where "
                                 f"nothing was measured and no method was checked")
    if direction == "syn_for_real" and analysis.n_total and n_base + amount_f > analysis.n_total:
        question += (f" (a hypothetical: {analysis.dataset} holds only {analysis.n_total - n_base:,} more real "
                     f"images beyond this base)")

    base = bases.get(n_base)
    br = bracket_answer(base, noise, amount_f, direction, level, interp) if base is not None else None
    sa = surface_answer(analysis.bases.get(n_base), n_base, amount_f, direction, level)
    ea = eq1_answer(analysis, n_base, amount_f, direction, level)
    far = _eq1_in_range(analysis, n_base)
    if far:
        ea.update(kind="no_answer", value=None, lo=None, hi=None, interval=False, note=far)
    if br is not None:
        out["answers"]["bracket"] = {"method": "bracket", **br}
    out["answers"].update(surface=sa, eq1=ea)
    said = [a for a in out["answers"].values() if a["kind"] == "value" and a["value"] is not None
            and (a.get("interval") or a["method"] == "bracket" and a["lo"] is not None)]

    def disagreements(chosen: str, lo, hi) -> str:
        mine = {"lo": lo, "hi": hi}
        clash = [_say(a, unit) for a in said if a["method"] != chosen and not _overlap(a, mine)]
        return ("; the intervals do not overlap: " + "; ".join(clash)) if clash else ""

    # A and B: the measured runs bracket the answer at this base.
    if br is not None and br["kind"] in ("value", "below_base", "noise"):
        grade = "A" if br["target_measured"] else "B"
        target = "a measured run" if br["target_measured"] else "interpolated between measured runs"
        if br["kind"] == "below_base":
            return done(grade, "bracket", f"{question} {verb} worth 0 {unit}: the target accuracy ({target}) lies "
                                          f"significantly below the base-only run", 0.0, 0.0, 0.0)
        if br["lo"] is not None and br["lo"] <= 0:
            # The interval reaches zero: the gain is within seed noise and no number is supported.
            bound = f"at most {fmt_count(br['hi'])} {unit}" if br["hi"] is not None else "any amount they measured"
            return done("D", "bracket", f"{question}: within seed noise (gain {br['gain']:+.2f} points, se "
                                        f"{br['gain_se']:.2f}): no number; the measured runs allow {bound}",
                        None, 0.0, br["hi"], key="within_noise")
        if br["below"] is not None and br["above"] is not None and br["below"] != br["above"]:
            where = f"between the measured runs of {fmt_count(br['below'])} and {fmt_count(br['above'])} {unit}"
        else:
            where = f"at the measured run of {fmt_count(br['below'] or br['above'])} {unit}"
        if br["lo"] is None:
            span = "no interval: the runs give no estimate of their noise"
        elif br["hi"] is None:
            span = (f"{_pct(level)} interval: at least {fmt_count(br['lo'])}; the largest measured amount, "
                    f"{fmt_count(br['largest_measured'])}, is still consistent")
        else:
            span = f"{_pct(level)} interval {fmt_interval(br['lo'], br['hi'])}"
        return done(grade, "bracket", f"{question} {verb} worth about {fmt_count(br['value'])} {unit} ({span}); grade "
                                      f"{grade}: {where} at this base, the target {target}"
                    + disagreements("bracket", br["lo"], br["hi"]), br["value"], br["lo"], br["hi"])

    # C: past the measured runs, this base's surface, else Eq. 1; at a base without runs, Eq. 1.
    floor, floor_text = _floor(base, noise, br, direction, level, interp)
    measured_base = br is not None and br["kind"] != "no_runs"
    for ans in (sa, ea):
        if ans["kind"] != "value" or (floor is not None and ans["value"] < floor):
            continue
        own = f"its own {_pct(level)} interval: {fmt_interval(ans['lo'], ans['hi'])}" if ans.get("interval") else \
            "no interval of its own"
        if not measured_base:
            return done("C", ans["method"], f"{question} {verb} worth about {fmt_count(ans['value'])} {unit} "
                                            f"({_pct(level)} interval {fmt_interval(ans['lo'], ans['hi'])}); grade C: "
                                            f"Eq. 1 across bases (no runs at n_base {n_base:,})",
                        ans["value"], ans["lo"], ans["hi"], key="eq1_across")
        # Past the measured runs only the model's form bounds the answer from above, and a form that
        # cannot saturate misses a worth that does (docs/method.md): the interval stays open above.
        lows = [x for x in (ans["lo"] if ans.get("interval") else None, floor) if x is not None]
        lo = max(lows) if lows else None
        how = "this base's surface" if ans["method"] == "surface" else "Eq. 1 fitted across bases"
        text = (f"{question} {verb} worth about {fmt_count(ans['value'])} {unit}, extrapolated by {how} ({own})"
                + (f"; at least {fmt_count(lo)}, open above: no measured run bounds it" if lo is not None else "")
                + "; grade C" + (f"; {floor_text}" if floor_text else ""))
        return done("C", ans["method"], text + disagreements(ans["method"], lo, None), ans["value"], lo, None)

    # D: no number.
    beyond = [a for a in (sa, ea) if a["kind"] == "more_than"]
    contradicted = [a for a in (sa, ea) if a["kind"] == "value" and floor is not None and a["value"] < floor]
    why = ([floor_text] if floor_text else []) + [f"{_NAMES[a['method']]} more than {CAP} x n_base" for a in beyond] \
        + [f"{_say(a, unit)}, contradicted by the measured runs" for a in contradicted]
    lows = [a["lo"] for a in beyond if a["lo"] is not None] + ([floor] if floor is not None else [])
    if lows:
        lo = min(max(lows), CAP * n_base)
        method = "bracket" if floor is not None and lo == floor else beyond[0]["method"]
        return done("D", method, f"{question} {verb} worth more than {fmt_count(lo)} {unit}: " + "; ".join(why),
                    None, lo, None, key="more_than")
    reasons = why + [a["note"] for a in (sa, ea) if a.get("note")]
    if br is not None and br["kind"] == "no_runs":
        reasons.insert(0, "too few measured runs at this base for a bracket")
    return done("D", "no method", f"{question}: no number; " + "; ".join(dict.fromkeys(reasons)))


def verdict(analysis, n_base: int, amount: float, direction: str = "syn_for_real", **kw) -> dict:
    """Exactly {value, lo, hi, level, coverage, grade, method, text}; see the module docstring."""
    return explain(analysis, n_base, amount, direction, **kw)["verdict"]


def data_kind(analysis) -> str:
    """"seeds" when some base has per-seed runs (at least two seeds), else "means" (published tables)."""
    return "seeds" if any(f.seed_matrix is not None and f.seed_matrix.shape[1] >= 2
                          for f in analysis.bases.values()) else "means"


def parameter_labels(analysis) -> dict:
    """What c1's and c2's intervals say beside them: their level and, where the project's simulation
    measured less, the coverage it measured (engine.analysis.coverage_table)."""
    from engine.analysis.coverage_table import label
    data = data_kind(analysis)
    return {name: label(f"{name}:{data}", analysis.level) for name in ("c1", "c2")}


def interval_labels(analysis, explanation: dict) -> dict:
    """The labels of one question's Eq. 1 and surface intervals, by where the question lies: inside the
    measured ranges, beyond the largest measured amount, or across bases (a base without runs)."""
    from engine.analysis.coverage_table import label
    data = explanation["question"]["data"]
    br = explanation["answers"].get("bracket")
    where = "across" if br is None or br["kind"] == "no_runs" else \
        "beyond" if br["kind"] in ("more_than", "target_beyond") else "inside"
    return {**parameter_labels(analysis), "eq1": label(f"eq1:{where}:{data}", analysis.level),
            "surface": label(f"surface:{'inside' if where == 'across' else where}:{data}", analysis.level)}
