"""Torch-free: which run to buy next, ranked by how much it is expected to narrow the verdict per GPU-hour.

Candidates (at most a few of each, nearest the question's answer): a new synthetic amount or a new real
amount at a measured base, more seeds at a measured point, or a new base (its base-only run, N real and
N synthetic images, with a generator to train). Each candidate's outcome is simulated from the current
fit: its accuracies drawn from this base's fitted surface (a new base: the real learning curve pooled
over the measured bases, A + B log n, with synthetic images worth what Eq. 1 says), plus the runs'
own seed-to-seed noise (pooled within-point sd); the setting is refitted with the simulated runs and
the verdict asked again. The expected width is the mean over `sims` draws; an open side counts up to
CAP x n_base (engine.analysis.answers), so turning "more than K" into a number counts as narrowing.
Hours come from engine.analysis.cost (or a caller's `hours_of`). Where the fit says little (a surface
missing, no Eq. 1), candidates it cannot simulate are left out and the reason is kept.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from engine.analysis.answers import CAP
from engine.messages import InputError
from engine.analysis.verdict import explain
from engine.catalog.datasets import FOLDER_FAMILY
from engine.catalog.vocab import CLOSED, REAL

SYN_RATIOS = (0.5, 1, 2, 3, 4, 5, 6, 8, 10)
REAL_RATIOS = (0.25, 0.5, 1, 1.5, 2, 3, 4)
PER_KIND = 3
MORE_SEEDS = 2


@dataclass
class Candidate:
    n_base: int
    kind: str              # "synthetic", REAL, "seeds" (at a measured point) or "base" (a new base)
    n_added: int           # images added (seeds: the point's amount; base: N = n_base real and synthetic)
    seeds: int
    axis: str = "syn"      # seeds only: which amount n_added is (REAL or "syn")
    gpu_hours: float | None = None
    width_now: float | None = None
    width_expected: float | None = None
    shrink_per_gpu_hour: float | None = None

    def row(self) -> dict:
        d = asdict(self)
        # which measured point more seeds go to: its real or its synthetic amount
        axis = d.pop("axis")
        d["point"] = (REAL if axis == REAL else "synthetic") if self.kind == "seeds" else None
        return d

    def points(self) -> list[tuple[int, int]]:
        """(n_real_added, n_syn_added) of the runs it adds (once per seed)."""
        if self.kind == "synthetic":
            return [(0, self.n_added)]
        if self.kind == REAL:
            return [(self.n_added, 0)]
        if self.kind == "seeds":
            return [(self.n_added, 0)] if self.axis == REAL else [(0, self.n_added)]
        return [(0, 0), (self.n_added, 0), (0, self.n_added)]


def width(verdict: dict, n_base: int) -> float:
    """The verdict's interval width, an open or missing side counted to 0 / CAP x n_base."""
    lo = verdict.get("lo") or 0.0
    hi = verdict.get("hi") if verdict.get("hi") is not None else CAP * n_base
    return max(float(hi) - float(lo), 0.0)


def _nearest(values, target: float, k: int) -> list:
    return sorted(values, key=lambda v: abs(np.log(max(v, 1) / max(target, 1))))[:k]


def candidates(analysis, n_base: int, amount: float, n_total: int | None, answer: float | None) -> list[Candidate]:
    """The runs worth considering for the question (n_base, amount), nearest its answer first."""
    out = []
    target_syn = answer or amount
    limit = n_total or float("inf")
    for b, f in sorted(analysis.bases.items()):
        pts = f.points
        syn_have = set(pts.n_syn_added[pts.n_syn_added > 0].astype(int))
        real_have = set(pts.n_real_added[pts.n_real_added > 0].astype(int))
        syn = [int(round(r * b)) for r in SYN_RATIOS if int(round(r * b)) not in syn_have]
        real = [int(round(r * b)) for r in REAL_RATIOS if int(round(r * b)) not in real_have and b + r * b <= limit]
        k = PER_KIND if b == n_base else 1
        out += [Candidate(b, "synthetic", a, 3) for a in _nearest(syn, target_syn * b / n_base, k)]
        out += [Candidate(b, REAL, a, 3) for a in _nearest(real, amount * b / n_base, k)]
        if b == n_base:
            measured = [(int(r), REAL) for r in real_have] + [(int(s), "syn") for s in syn_have]
            for a, axis in sorted(measured, key=lambda p: abs(np.log(p[0] / max(target_syn if p[1] == "syn"
                                                                                  else amount, 1))))[:PER_KIND]:
                out.append(Candidate(b, "seeds", a, MORE_SEEDS, axis))
    bases = sorted(analysis.bases)
    new = {int(round(np.sqrt(x * y))) for x, y in zip(bases, bases[1:])} | {bases[-1] * 2} if bases else set()
    new = {b for b in new if b not in analysis.bases and 2 * b <= limit}
    out += [Candidate(b, "base", b, 3) for b in _nearest(sorted(new), n_base, 2)]
    return out


def noise_sd(runs: pd.DataFrame) -> float | None:
    """Seed-to-seed sd of one run, pooled over the points measured with two or more seeds."""
    keys = ["n_base", "augmentation", "n_real_added", "n_syn_added"]
    g = runs.dropna(subset=["seed"]).groupby(keys).top1
    var, n = g.var(ddof=1), g.count()
    ok = n >= 2
    if not ok.any():
        return None
    return float(np.sqrt(((n[ok] - 1) * var[ok]).sum() / (n[ok] - 1).sum()))


def real_curve(runs: pd.DataFrame) -> tuple[float, float] | None:
    """A + B log(n_base + n_real_added) through every real run, pooled over bases."""
    real = runs[runs.augmentation == REAL]
    if real.n_base.nunique() < 2 and real.n_real_added.nunique() < 2:
        return None
    x = np.log(real.n_base + real.n_real_added)
    b, a = np.polyfit(x, real.top1, 1)
    return float(a), float(b)


def simulated_means(analysis, runs: pd.DataFrame, c: Candidate) -> np.ndarray | None:
    """The current fit's accuracy at each of the candidate's points, or None where it has none."""
    pts = np.array(c.points(), float)
    fit = analysis.bases.get(c.n_base)
    if c.kind != "base":
        if fit is None or fit.surface is None:
            return None
        return fit.surface.predict(c.n_base + pts[:, 0], pts[:, 1])
    curve = real_curve(runs)
    if curve is None or analysis.c1 is None:
        return None
    from engine.analysis.equivalence import eq1_inverse
    worth = eq1_inverse(float(c.n_base), pts[:, 1], analysis.c1, analysis.c2, analysis.tau)
    return curve[0] + curve[1] * np.log(c.n_base + pts[:, 0] + np.nan_to_num(worth))


def new_runs(runs: pd.DataFrame, c: Candidate, means: np.ndarray, sd: float, rng, means_only: bool = False
             ) -> pd.DataFrame:
    """The candidate's runs with simulated accuracies, in the setting's own columns (means only: one
    seedless value a point, as the published tables give them, its sd that of a point's mean)."""
    template = runs[runs.augmentation != REAL].iloc[0]
    real_template = runs[runs.augmentation == REAL].iloc[0] if (runs.augmentation == REAL).any() else template
    at = runs[runs.n_base == c.n_base]
    first = int(at.seed.max()) + 1 if c.kind == "seeds" and at.seed.notna().any() else 0
    rows = []
    for (r, s), mean in zip(c.points(), means):
        for seed in ([None] if means_only else range(first, first + c.seeds)):
            row = (real_template if s == 0 else template).to_dict()
            row.update(n_base=c.n_base, n_real_added=r, n_syn_added=s, seed=seed, top1=float(mean + rng.normal(0, sd)),
                       augmentation=REAL if s == 0 else row["augmentation"], run_id=f"sim-{rng.integers(1 << 62)}")
            rows.append(row)
    out = pd.DataFrame(rows)
    out["seed"] = out.seed.astype("Int64")
    return out


def advise(analysis, runs: pd.DataFrame, n_base: int, amount: float, refit, hours_of, *,
           direction: str = "syn_for_real", sims: int = 4, seed: int = 0, top: int | None = None) -> dict:
    """{"question", "width_now", "verdict", "candidates": rows ranked by shrink per GPU-hour, "left_out"}.

    `refit(runs) -> Analysis` refits the setting as `analysis` was fitted; `hours_of(candidate) -> hours
    or None` prices a candidate."""
    rng = np.random.default_rng(seed)
    now = explain(analysis, n_base, amount, direction)["verdict"]
    w_now = width(now, n_base)
    sd, means_only, left_out = noise_sd(runs), False, []
    if sd is None:   # published means: the noise of a point's mean, from the fit's residuals
        from engine.analysis.bracket import estimate_noise
        from engine.analysis.verdict import bases_data
        sd, means_only = estimate_noise(list(bases_data(analysis).values())).sd, True
    if sd is None:
        return {"question": {"n_base": n_base, "amount": amount, "direction": direction}, "verdict": now,
                "width_now": w_now, "candidates": [],
                "left_out": ["the runs give no estimate of their noise: no outcome can be simulated"]}
    ranked = []
    for c in candidates(analysis, n_base, amount, analysis.n_total, now.get("value") if direction == "syn_for_real"
                        else None):
        if means_only and c.kind == "seeds":
            left_out.append("more seeds: the runs are means without seeds")
            continue
        means = simulated_means(analysis, runs, c)
        if means is None:
            left_out.append(f"{c.kind} at n_base {c.n_base:,}: the current fit cannot predict it")
            continue
        widths = []
        for _ in range(sims):
            try:
                a = refit(pd.concat([runs, new_runs(runs, c, means, sd, rng, means_only)], ignore_index=True))
                widths.append(width(explain(a, n_base, amount, direction)["verdict"], n_base))
            except Exception as err:  # a simulated draw the fit cannot take counts as no narrowing
                left_out.append(f"{c.kind} at n_base {c.n_base:,}: a simulated refit failed ({type(err).__name__})")
                widths.append(w_now)
        c.width_now, c.width_expected = w_now, float(np.mean(widths))
        c.gpu_hours = hours_of(c)
        c.shrink_per_gpu_hour = None if not c.gpu_hours else (w_now - c.width_expected) / c.gpu_hours
        ranked.append(c)
    ranked.sort(key=lambda c: (c.shrink_per_gpu_hour is None, -(c.shrink_per_gpu_hour or 0.0)))
    rows = [c.row() for c in (ranked[:top] if top else ranked)]
    return {"question": {"n_base": n_base, "amount": amount, "direction": direction}, "verdict": now,
            "width_now": w_now, "noise_sd": sd, "noise": "means" if means_only else "seeds", "sims": sims, "candidates": rows, "left_out": left_out}


def cost_hours(model, classifier: str, dataset: str, n_total: int | None, traditional: str | None,
               generator: str | None, device: str = "auto"):
    """hours_of for advise(): the candidate's classifier runs, plus sampling its synthetic images and, for a
    new base, training its generator (engine.analysis.cost; None where that is unknown)."""
    from engine.analysis.cost import Hours, classifier_hours, generator_hours, sampling_hours
    from engine.analysis.pricing import generator_of
    device = model.resolve(device)
    kind = generator_of(generator)

    def hours_of(c: Candidate) -> float | None:
        runs = [(c.n_base, c.n_base + r + s) for r, s in c.points() for _ in range(c.seeds)]
        h = classifier_hours(model, classifier, dataset, runs, n_total, None, traditional, device)
        syn = max(s for _, s in c.points())
        if syn and c.kind != "seeds":
            if kind is None:
                return None
            sampling_hours(model, kind[0], kind[1], syn, device, h)
            if c.kind == "base":
                generator_hours(model, kind[0], kind[1], {}, device, h)
        return h.hours if isinstance(h, Hours) else None
    return hours_of


class AdviceError(InputError):
    """A question advice cannot be given for; the message names why."""


def setting_advice(runs: pd.DataFrame, model, dataset: str, classifier: str, augmentation: str, generator: str | None,
                   n_base: int | None = None, n_real_added: float | None = None, *, sims: int = 4, n_boot: int = 50,
                   seed: int = 0, top: int | None = None, device: str = "auto", source: str | None = None,
                   traditional: str | None = None, dataset_form: str | None = None) -> dict:
    """advise() for one stored setting (its runs as the store gives them), each row with the Queue form's
    fields that would run it (`queue`; None where they cannot be known). `dataset_form`: the dataset as a
    job names it where the catalog cannot say (a folder's path: store.jobs.folder_forms)."""
    from engine.analysis.fit import analyse
    from engine.analysis.select import fit_runs
    from engine.catalog.classifiers import by_stored_name
    a = analyse(runs, dataset, classifier, augmentation, generator, traditional, n_boot=n_boot, seed=seed,
                source=source)
    own = fit_runs(runs, dataset, classifier, augmentation, generator, a.traditional, a.source)
    measured = sorted(int(b) for b in a.bases)
    if not measured:
        raise AdviceError(f"{dataset} / {classifier} / {augmentation} has no measured base to advise on")
    n_base = int(n_base or measured[len(measured) // 2])
    if n_base <= 0:
        raise AdviceError(f"n_base {n_base} must be positive")
    amount = float(n_real_added if n_real_added is not None else n_base)

    def refit(r):
        return analyse(r, dataset, classifier, augmentation, generator, a.traditional, n_boot=n_boot, seed=seed,
                       source=a.source)
    entry = by_stored_name(classifier)
    hours_of = cost_hours(model, entry.name, dataset, a.n_total, a.traditional, generator, device) if entry \
        else (lambda c: None)
    out = advise(a, own, n_base, amount, refit, hours_of, sims=sims, seed=seed, top=top)
    out.update(dataset=dataset, classifier=classifier, augmentation=augmentation, generator=generator,
               source=a.source, traditional=a.traditional, device=model.resolve(device), dataset_form=dataset_form)
    if entry is None:
        out["left_out"].append(f"{classifier} is not a classifier this engine trains: no hours")
    # A folder no job named: its stored name stands in for the path in the Queue fields (queue_fields).
    name_for_path = dataset_form is None and dataset.startswith(FOLDER_FAMILY + ":")
    for row in out["candidates"]:
        row["queue"] = queue_fields(row, out, entry.name if entry else None, own)
        if row["queue"] and name_for_path:
            row["queue_note"] = (f"no job in this store named the path of {dataset} (its runs keep only the "
                                 "folder's name): replace it with folder:/path/to/the/folder")
    return out


def queue_fields(row: dict, advice: dict, classifier: str | None, runs: pd.DataFrame) -> dict | None:
    """The Queue form's fields (engine.spec field names) that run a candidate, or None where they cannot be
    known here (a dataset not in the catalog, a classifier or generator this engine does not train)."""
    from engine.analysis.pricing import generator_of
    from engine.catalog.datasets import cli_name
    # A folder's path is not in its runs: a job's (dataset_form), else its stored name stands in, for the
    # user to correct to the path (the Queue page says so).
    dataset = cli_name(advice["dataset"]) or advice.get("dataset_form") or \
        (advice["dataset"] if advice["dataset"].startswith(FOLDER_FAMILY + ":") else None)
    if dataset is None or classifier is None:
        return None
    closed = row["kind"] == "synthetic" or row["kind"] == "base" or (row["kind"] == "seeds" and
                                                                      row.get("point") == "synthetic")
    fields = {"dataset": dataset, "classifier": classifier, "n_base": row["n_base"], "seeds": row["seeds"],
              "augmentation": advice["augmentation"] if closed else REAL, "traditional": advice.get("traditional")}
    if row["kind"] == "seeds":   # seeds run 0..S-1: S = those measured at the point + the new ones
        at = runs[(runs.n_base == row["n_base"]) & ((runs.n_syn_added if closed else runs.n_real_added) == row["n_added"])]
        fields["seeds"] = int(at.seed.max()) + 1 + row["seeds"] if at.seed.notna().any() else row["seeds"]
    fields["added"] = f"0,{row['n_added']}" if row["kind"] == "base" else str(row["n_added"])
    if closed:
        kind = generator_of(advice["generator"]) if advice["augmentation"] == CLOSED else None
        if advice["augmentation"] == CLOSED and kind is None:
            return None
        fields.update(generator=kind[0] if kind else advice["generator"], generator_preset=kind[1] if kind else None)
    return fields
