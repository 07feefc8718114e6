"""How often each answer's interval covers a known truth: the measured runs' bracket, the surface,
Eq. 1 and the verdict that picks among them (bench/bench_coverage.py --verdict, docs/method.md).

One study draws noisy runs from a truth (engine.analysis.studies), fits them as a user's runs
would be fitted (engine.analysis.fit.analyse) and asks every question of studies.questions().
A question is "inside" when its true answer is positive and at most the largest amount measured
on the answer's axis at that base; "beyond" when it is larger (or infinite). Data comes as
"seeds" (3 seeds a point, per-run noise) or "means" (one value a point, the mean of 3 trials, as
the published tables print them).
"""
from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from engine.analysis.bracket import estimate_noise
from engine.analysis.fit import analyse
from engine.analysis.studies import Curves, across_questions, largest_answer, noisy_runs, questions, runs_frame
from engine.analysis.verdict import bases_data, explain
from engine.catalog.vocab import CLOSED

METHODS = ("bracket", "surface", "eq1", "verdict")
SEEDS = 3


def _interval(ans: dict | None):
    if ans is None or (ans.get("lo") is None and ans.get("hi") is None):
        return None
    return (ans["lo"] or 0.0, ans["hi"] if ans["hi"] is not None else float("inf"))


def run_studies(truth: Curves, data: str, studies: int, sd_point: float, seed: int = 0, n_boot: int = 200,
                seed_offset_sd: float = 0.0, interp: str = "pchip") -> list[dict]:
    """One record per (study, question): the truth, where it lies, and each method's answer.

    sd_point is the noise sd of a point's mean over 3 seeds: "seeds" draws 3 runs a point with sd
    sd_point * sqrt(3) each, "means" one value a point with sd sd_point.
    """
    rng = np.random.default_rng(seed)
    frame = runs_frame(truth, SEEDS if data == "seeds" else 0)
    sd = sd_point * np.sqrt(SEEDS) if data == "seeds" else sd_point
    asked = questions(truth)
    across = set(across_questions(truth))
    asked += sorted(across)
    records = []
    for study in range(studies):
        runs = noisy_runs(truth, frame, sd, rng, seed_offset_sd)
        a = analyse(runs, "Sim", "Net", CLOSED, "G", grid=truth.grid or None, n_boot=n_boot,
                    seed=int(rng.integers(2 ** 31)))
        bases = bases_data(a)
        noise = estimate_noise(list(bases.values()))
        for b, direction, amount, true in asked:
            e = explain(a, b, amount, direction, interp=interp, bases=bases, noise=noise)
            is_across = (b, direction, amount, true) in across
            top = float("nan") if is_across else largest_answer(truth, b, direction)
            rec = {"study": study, "n_base": b, "direction": direction, "amount": amount, "true": true,
                   "inside": bool(0 < true <= top * 1.0001), "beyond": bool(true > top * 1.0001),
                   "across": is_across,
                   "verdict": e["verdict"], "cover_key": e["coverage_key"]}
            for m in ("bracket", "surface", "eq1"):
                ans = e["answers"].get(m)
                rec[m] = None if ans is None else {k: ans.get(k) for k in ("kind", "value", "lo", "hi")}
            records.append(rec)
    return records


def _stats(pairs: list[tuple[dict | None, float]]) -> dict:
    """coverage (intervals given), given (share with an interval), number (share with a value),
    median hi/lo (values only; inf where open or from 0) and median relative error of values."""
    n = len(pairs)
    if not n:
        return {"questions": 0}
    cov, given, numbers, ratios, errors = [], 0, 0, [], []
    for ans, true in pairs:
        iv = _interval(ans)
        if iv is not None:
            given += 1
            cov.append(iv[0] <= true * (1 + 1e-9) and true <= iv[1] * (1 + 1e-9))
        if ans is not None and ans.get("value") is not None:
            numbers += 1
            if iv is not None:
                ratios.append(iv[1] / iv[0] if iv[0] > 0 else float("inf"))
            if np.isfinite(true) and true > 0:
                errors.append(ans["value"] / true - 1)
    med = float(np.median(ratios)) if ratios else None
    return {"questions": n, "coverage": float(np.mean(cov)) if cov else None, "with_interval": given / n,
            "with_number": numbers / n,
            "median_hi_lo": (med if med is None or np.isfinite(med) else "inf"),
            "median_rel_error": float(np.median(errors)) if errors else None,
            "median_abs_rel_error": float(np.median(np.abs(errors))) if errors else None}


def summarise(records: list[dict]) -> dict:
    """Per method, inside and beyond the measured ranges; the verdict also per COVERAGE key."""
    out = {}
    for region in ("inside", "beyond", "across"):
        sel = [r for r in records if r[region]]
        out[region] = {m: _stats([(r[m], r["true"]) for r in sel]) for m in METHODS}
        grades = defaultdict(int)
        for r in sel:
            grades[r["verdict"]["grade"]] += 1
        out[region]["verdict_grades"] = {g: grades[g] / len(sel) for g in sorted(grades)} if sel else {}
    keys = defaultdict(list)
    for r in records:
        if r["cover_key"]:
            keys[r["cover_key"]].append((r["verdict"], r["true"]))
    out["verdict_by_key"] = {k: _stats(v) for k, v in sorted(keys.items())}
    return out


def coverage_study(truth: Curves, data: str, studies: int, sd_point: float, seed: int = 0, n_boot: int = 200,
                   seed_offset_sd: float = 0.0, interp: str = "pchip") -> dict:
    start = time.process_time()
    records = run_studies(truth, data, studies, sd_point, seed, n_boot, seed_offset_sd, interp)
    return {"truth": truth.name, "data": data, "studies": studies, "sd_point": sd_point,
            "seed_offset_sd": seed_offset_sd, "interp": interp, **summarise(records),
            "cpu_s": round(time.process_time() - start, 1)}


def interpolation_errors(truth: Curves, interp: str) -> dict:
    """The bracket's value against the truth on noise-free runs (3 identical seeds a point): what the
    interpolation alone gets wrong, inside the measured ranges. Median, 90th percentile and largest
    absolute relative error, and the question with the largest."""
    errors = []
    for r in run_studies(truth, "seeds", 1, 1e-7, n_boot=0, interp=interp):
        if r["inside"] and r["bracket"] and r["bracket"]["value"]:
            errors.append((r["bracket"]["value"] / r["true"] - 1, r["n_base"], r["direction"], r["amount"]))
    if not errors:
        return {"questions": 0}
    e = np.abs([x[0] for x in errors])
    worst = max(errors, key=lambda x: abs(x[0]))
    return {"questions": len(errors), "median": float(np.median(e)), "p90": float(np.quantile(e, 0.9)),
            "max": float(e.max()), "worst": {"error": worst[0], "n_base": worst[1], "direction": worst[2],
                                              "amount": worst[3]}}
