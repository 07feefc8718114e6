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
from engine.analysis.wording import coverage_label, finite, fmt_count, fmt_interval

VERDICT_KEYS = ("value", "lo", "hi", "level", "coverage", "grade", "method", "text")
# Eq. 1 answers only at bases within this factor of the bases its tuples came from: c1^(tau n_base)
# runs to 0 or infinity far outside them (n_base 1e9 gave "0 synthetic images").
EQ1_BASE_FACTOR = 2.0

# Measured coverage of each kind of verdict interval: share of the simulated questions whose truth
# it covered, by "grade:method:data" (data: seeds = per-seed runs, means = one value a point).
# Filled from `PYTHONPATH=. python bench/bench_coverage.py --verdict --studies 60 --noise-sd 0.24`
# (docs/method.md, "The verdict's coverage"): the minimum over the simulated truths, misspecified
# ones included. A key that is missing was not measured; the verdict then says so.
COVERAGE: dict[str, float] = {}


def coverage_of(grade: str, method: str, data: str) -> float | None:
    return COVERAGE.get(f"{grade}:{method}:{data}")


def bases_data(analysis) -> dict[int, BaseData]:
    """Every base of an engine.analysis.fit.Analysis with measured points, as bracket input."""
    return {int(b): BaseData.from_points(b, f.points, f.seed_matrix)
            for b, f in sorted(analysis.bases.items()) if len(f.points)}


def _units(direction: str, amount: float, n_base: int) -> tuple[str, str]:
    if direction == "syn_for_real":
        return f"{fmt_count(amount)} more real images at n_base {n_base:,}", "synthetic images"
    return f"{fmt_count(amount)} synthetic images at n_base {n_base:,}", "real images"


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


def explain(analysis, n_base: int, amount: float, direction: str = "syn_for_real", *,
            interp: str = "pchip", bases: dict | None = None, noise=None) -> dict:
    """{question, verdict, answers: {bracket, surface, eq1}, noise}: the verdict and what each method
    said. `bases`/`noise` (from bases_data / estimate_noise) may be passed to reuse them across questions."""
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
    out = {"question": {"n_base": n_base, "direction": direction, "amount": amount_f, "unit": unit,
                        "data": data}, "noise": noise.as_dict(), "answers": {}}

    def done(grade, method, text, value=None, lo=None, hi=None, cov_key=None):
        cov = coverage_of(grade, cov_key or method, data) if (lo is not None or hi is not None) else None
        label = coverage_label(level, cov) if (lo is not None or hi is not None) else ""
        out["verdict"] = {"value": finite(value), "lo": finite(lo), "hi": finite(hi), "level": level,
                          "coverage": cov, "grade": grade, "method": method,
                          "text": text + (f" [{label}]" if label else "")}
        return out

    if analysis.n_total and n_base > analysis.n_total:
        return done("D", "none", f"no answer: n_base {n_base:,} is larger than {analysis.dataset}'s whole training "
                                 f"set ({analysis.n_total:,} images)")
    if amount_f == 0:
        return done("A", "none", f"{question}: no images, nothing to match: 0 {unit}", 0.0, 0.0, 0.0)
    if amount_f > CAP * n_base:
        return done("D", "none", f"{question}: no answer: the question's amount is more than {CAP} x n_base, where "
                                 f"nothing was measured and no method was checked")
    scarce = ""
    if direction == "syn_for_real" and analysis.n_total and n_base + amount_f > analysis.n_total:
        scarce = (f" (a hypothetical: {analysis.dataset} holds only {analysis.n_total - n_base:,} more real images "
                  f"beyond this base)")
    question += scarce

    base = bases.get(n_base)
    br = bracket_answer(base, noise, amount_f, direction, level, interp) if base is not None else None
    fit = analysis.bases.get(n_base)
    sa = surface_answer(fit, n_base, amount_f, direction, level)
    far = _eq1_in_range(analysis, n_base)
    ea = eq1_answer(analysis, n_base, amount_f, direction, level)
    if far:
        ea.update(kind="none", value=None, lo=None, hi=None, interval=False, note=far)
    if br is not None:
        out["answers"]["bracket"] = {"method": "bracket", **br}
    out["answers"].update(surface=sa, eq1=ea)
    others = [a for a in (sa, ea) if a["kind"] == "value"]

    def disagreements(chosen: dict) -> str:
        said = [_say(a, unit) for a in others + ([{"method": "bracket", **br}] if br and br["kind"] == "value" else [])
                if a is not chosen and a["method"] != chosen["method"] and a.get("interval") is not False
                and a["value"] is not None and not _overlap(a, chosen)]
        return ("; the intervals do not overlap: " + "; ".join(said)) if said else ""

    if br is not None and br["kind"] in ("value", "below_base"):
        grade = "A" if br["target_measured"] else "B"
        where = (f"between the measured runs of {fmt_count(br['below'])} and {fmt_count(br['above'])} {unit}"
                 if br["below"] is not None and br["above"] is not None and br["below"] != br["above"]
                 else f"at the measured run of {fmt_count(br['below'])} {unit}" if br["below"] is not None else "")
        target = "a measured run" if br["target_measured"] else "interpolated between measured runs"
        if br["kind"] == "below_base":
            return done(grade, "bracket", f"{question} are worth 0 {unit}: the target accuracy ({target}) lies "
                                          f"significantly below the base-only run", 0.0, 0.0, 0.0)
        if br["lo"] is not None and br["lo"] <= 0:
            # The interval reaches zero: the gain is within seed noise and no number is supported.
            bound = f"at most {fmt_count(br['hi'])} {unit}" if br["hi"] is not None else "any amount the runs measured"
            return done("D", "bracket", f"{question}: within seed noise (gain {br['gain']:+.2f} points, se "
                                        f"{br['gain_se']:.2f}): no number; the measured runs allow {bound}",
                        None, 0.0, br["hi"], cov_key="within_noise")
        chosen = {"method": "bracket", **br}
        if br["lo"] is None:
            span = "no interval: the runs give no estimate of their noise"
        elif br["hi"] is None:
            span = (f"{level:.0%} interval: at least {fmt_count(br['lo'])}; the largest measured amount, "
                    f"{fmt_count(br['largest_measured'])}, is still consistent")
        else:
            span = f"{level:.0%} interval {fmt_interval(br['lo'], br['hi'])}"
        return done(grade, "bracket", f"{question} are worth about {fmt_count(br['value'])} {unit} ({span}); grade "
                                      f"{grade}: {where} at this base, the target {target}" + disagreements(chosen),
                    br["value"], br["lo"], br["hi"])

    # Past the measured runs: extrapolate with this base's surface, else Eq. 1.
    floor = br["lo"] if br is not None and br["kind"] == "more_than" else None
    floor_text = (f"the measured runs say more than {fmt_count(floor)} {unit} (the largest measured, "
                  f"{fmt_count(br['largest_measured'])}, falls short)") if floor else ""
    if br is not None and br["kind"] == "target_beyond":
        floor_text = "the question's amount is beyond the measured runs at this base"
    measured_base = base is not None and br is not None and br["kind"] != "no_runs"
    for ans in (sa, ea):
        if ans["kind"] != "value":
            continue
        if floor is not None and ans["value"] < floor:
            continue
        own = f"{level:.0%} interval {fmt_interval(ans['lo'], ans['hi'])}" if ans.get("interval") else "no interval"
        if measured_base:
            # Past the measured runs only the model's form bounds the answer from above, and a form that
            # cannot saturate misses a worth that does (docs/method.md): the interval stays open above.
            lo = max(x for x in (ans["lo"], floor, 0.0) if x is not None) if ans.get("interval") or floor else None
            how = ("this base's surface, extrapolated" if ans["method"] == "surface"
                   else "Eq. 1 fitted across bases, extrapolated")
            text = (f"{question} are worth about {fmt_count(ans['value'])} {unit}, extrapolated "
                    f"(at least {fmt_count(lo)}; open above: no measured run bounds it); grade C: {how} "
                    f"(its own {own})" if lo is not None else
                    f"{question} are worth about {fmt_count(ans['value'])} {unit}, extrapolated (no interval); "
                    f"grade C: {how}")
            return done("C", ans["method"], text + (f"; {floor_text}" if floor_text else "") + disagreements(ans),
                        ans["value"], lo, None)
        return done("C", ans["method"], f"{question} are worth about {fmt_count(ans['value'])} {unit} ({own}); grade C: "
                                        f"Eq. 1 across bases (no runs at n_base {n_base:,})" + disagreements(ans),
                    ans["value"], ans["lo"], ans["hi"], cov_key="eq1_across")
    beyond = [a for a in (sa, ea) if a["kind"] == "more_than"]
    contradicted = [a for a in (sa, ea) if a["kind"] == "value" and floor is not None and a["value"] < floor]
    if beyond or floor is not None:
        lo = max([a["lo"] for a in beyond if a["lo"] is not None] + ([floor] if floor else []), default=None)
        lo = min(lo, CAP * n_base) if lo is not None else None
        why = [floor_text] if floor_text else []
        why += [f"{_NAMES[a['method']]} more than {CAP} x n_base" for a in beyond]
        why += [f"{_say(a, unit)}, contradicted by the measured runs" for a in contradicted]
        if lo is None:
            return done("D", "none", f"{question}: no number; " + "; ".join(why))
        method = "bracket" if floor is not None and lo == floor else beyond[0]["method"]
        return done("D", method, f"{question} are worth more than {fmt_count(lo)} {unit}: " + "; ".join(why),
                    None, lo, None, cov_key="more_than")
    reasons = [a["note"] for a in (sa, ea) if a.get("note")]
    if br is not None and br["kind"] == "no_runs":
        reasons.insert(0, "too few measured runs at this base for a bracket")
    return done("D", "none", f"{question}: no number; " + "; ".join(dict.fromkeys(reasons)))


def verdict(analysis, n_base: int, amount: float, direction: str = "syn_for_real", **kw) -> dict:
    """Exactly {value, lo, hi, level, coverage, grade, method, text}; see the module docstring."""
    return explain(analysis, n_base, amount, direction, **kw)["verdict"]
