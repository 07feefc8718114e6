"""Torch-free: what a run, a generator and a study cost in device-hours, fitted to the store's own times.

Classifiers: per (stored classifier, input size, device class) log seconds = a + b log(images processed)
by least squares (steps x batch from each run's config, else its recipe's); b is held at 1 with fewer
than three distinct amounts or a slope outside SLOPE_RANGE. A new run's 95 % interval is the Student-t
prediction interval from the residual spread (none without degrees of freedom). Generators: the same on
training images per (kind, preset, device); sampling: seconds per image. Without timings the bench
figures of docs/speed.md stand in (CPU, no interval), and every estimate says what it rests on. Sums add
the runs' intervals end to end: wide, never too narrow. estimate_job_hours(spec, db) serves the Queue.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.catalog.classifiers import CLASSIFIERS, RESNET50, RESNET110, SMALLCNN, VIT_B32
from engine.catalog.datasets import known_train_size, paper_n_total, stored_name
from engine.catalog.generators import DEFAULT_GENERATOR, GENERATORS
from engine.catalog.vocab import CLOSED
from engine.spec import StudySpec

LEVEL = 0.95
CPU = "cpu"
SLOPE_RANGE = (0.0, 1.5)   # overhead-bound runs (tiny networks) take nearly the same time at any batch
# docs/speed.md, "On this project's CPU machines": bench/bench_classifiers.py (images processed per
# second) and bench/bench_edm.py (training images per second, sampling seconds per image).
BENCH_BASIS = "bench figures of docs/speed.md (one run on an idle 2-core CPU; no interval)"
BENCH_CLASSIFIER = {CLASSIFIERS[k].stored_name: v for k, v in
                    ((SMALLCNN, 4441.0), (RESNET110, 56.5), (RESNET50, 3.6), (VIT_B32, 5.1))}
BENCH_GENERATOR = {("edm", "tiny"): (1943.0, 0.0064), ("edm", "small"): (12.4, 1.15), ("edm", "cifar"): (1.2, 8.8)}


def device_class(name) -> str:
    """Stored device names ("cpu (x86_64)", "NVIDIA H200") by the class a fit pools: every CPU is one."""
    text = "" if name is None or (isinstance(name, float) and math.isnan(name)) else str(name)
    return CPU if not text or text.lower().startswith(CPU) else text


def _t(dof: int) -> float:
    from scipy.stats import t
    return float(t.ppf(0.5 + LEVEL / 2, dof))


@dataclass
class TimeFit:
    """log seconds = a + b log work, fitted on n measurements (b held at 1 when slope_fixed)."""
    n: int
    a: float
    b: float
    s: float | None            # residual sd in log seconds; None without degrees of freedom
    dof: int
    xbar: float
    sxx: float
    slope_fixed: bool
    source: str                # "store" or "bench"
    devices: list = field(default_factory=list)
    typical_work: float | None = None   # median work measured: a generator of unknown length

    def predict(self, work: float) -> tuple[float, float | None, float | None]:
        """(seconds, lo, hi) of one new run of this work; lo/hi None without an interval."""
        x = math.log(max(work, 1.0))
        mean = self.a + self.b * x
        if self.s is None:
            return math.exp(mean), None, None
        spread = 1 + 1 / self.n + (0.0 if self.slope_fixed or self.sxx <= 0 else (x - self.xbar) ** 2 / self.sxx)
        half = _t(self.dof) * self.s * math.sqrt(spread)
        return math.exp(mean), math.exp(mean - half), math.exp(mean + half)

    def basis(self, what: str) -> tuple[str, str]:
        """(what, what it rests on): Hours joins the things that rest on the same figures."""
        if self.source == "bench":
            return what, BENCH_BASIS
        devices = f" on {', '.join(self.devices)}" if self.devices else ""
        slope = "seconds per image (slope held at 1)" if self.slope_fixed else f"slope {self.b:.2f}"
        return what, f"fitted to {self.n} measured time{'s' if self.n != 1 else ''}{devices}, {slope}"


def fit_times(work, seconds, devices=(), source: str = "store") -> TimeFit | None:
    work, seconds = np.asarray(work, float), np.asarray(seconds, float)
    ok = (work > 0) & (seconds > 0) & np.isfinite(work) & np.isfinite(seconds)
    work, seconds = work[ok], seconds[ok]
    n = int(len(work))
    if n == 0:
        return None
    x, y = np.log(work), np.log(seconds)
    xbar, sxx = float(x.mean()), float(((x - x.mean()) ** 2).sum())
    b, fixed = 1.0, True
    if len(np.unique(np.round(x, 6))) >= 3 and sxx > 0:
        slope = float(((x - xbar) * (y - y.mean())).sum() / sxx)
        if SLOPE_RANGE[0] <= slope <= SLOPE_RANGE[1]:
            b, fixed = slope, False
    a = float((y - b * x).mean())
    dof = n - (1 if fixed else 2)
    s = float(np.sqrt(((y - a - b * x) ** 2).sum() / dof)) if dof > 0 else None
    return TimeFit(n, a, b, s, dof, xbar, sxx, fixed, source, sorted(set(devices)),
                   float(np.median(work)))


def bench_fit(seconds_per_unit: float) -> TimeFit:
    return TimeFit(1, math.log(seconds_per_unit), 1.0, None, 0, 0.0, 0.0, True, "bench", [CPU])


# ------------------------------------------------------------------------------ the work of a run

def recipe_work(classifier: str, dataset: str, n_base: int, n_train: int, n_total: int | None,
                recipe: dict | None = None, traditional: str | None = None) -> tuple[float, int]:
    """(images processed, input size) of a classifier run as engine.execution.plan would train it."""
    from engine.catalog.defaults import default_recipe
    r = default_recipe(classifier, dataset, n_train, n_base, n_total or max(n_train, n_base),
                       traditional).with_overrides(recipe or {})
    return float(r.total_steps(n_train) * min(r.batch_size, n_train)), int(r.input_size)


def run_work(runs) -> tuple[np.ndarray, np.ndarray]:
    """(work, input size) of each timed run: steps x batch from its config, else its default recipe's."""
    work, size = [], []
    for r in runs.itertuples():
        known = r.steps is not None and not _isnan(r.steps) and r.batch_size is not None and not _isnan(r.batch_size)
        name = _cli_classifier(r.classifier)
        if known:
            w = float(r.steps) * min(float(r.batch_size), float(r.n_train))
            s = None if r.input_size is None or _isnan(r.input_size) else int(r.input_size)
        else:
            w, s = (None, None) if name is None else recipe_work(name, r.dataset, int(r.n_base), int(r.n_train),
                                                                 None if _isnan(r.n_total) else int(r.n_total))
        if s is None and name is not None:
            s = CLASSIFIERS[name].input_size
        work.append(np.nan if w is None else w)
        size.append(-1 if s is None else s)
    return np.asarray(work, float), np.asarray(size, int)


def _isnan(v) -> bool:
    import pandas as pd
    return v is None or bool(pd.isna(v))


def _cli_classifier(stored: str) -> str | None:
    from engine.catalog.classifiers import by_stored_name
    c = by_stored_name(stored)
    return c.name if c is not None else None


# ------------------------------------------------------------------------------ the model

@dataclass
class CostModel:
    """Fits per group, read once from a store: classifiers by (stored name, input size, device class),
    generators and sampling by (kind, preset, device class)."""
    classifiers: dict
    generators: dict
    sampling: dict          # key -> (median s/image, lo, hi, n, devices)

    @classmethod
    def from_store(cls, db) -> "CostModel":
        from store import timings
        runs = timings.classifier_timings(db)
        classifiers = {}
        if len(runs):
            work, size = run_work(runs)
            runs = runs.assign(work=work, size=size, dclass=[device_class(d) for d in runs.device])
            for (name, s, dc), g in runs.groupby(["classifier", "size", "dclass"], sort=True):
                f = fit_times(g.work, g.wall_time_s, [str(d) for d in g.device.dropna()])
                if f is not None:
                    classifiers[(name, int(s), dc)] = f
        gens = timings.generator_timings(db, DEFAULT_GENERATOR)
        generators = {}
        if len(gens):
            gens = gens.assign(dclass=[device_class(d) for d in gens.device])
            for (kind, preset, dc), g in gens.groupby(["kind", "preset", "dclass"], sort=True):
                f = fit_times(g.train_images, g.train_time_s, [str(d) for d in g.device.dropna()])
                if f is not None:
                    generators[(kind, preset, dc)] = f
        samp = timings.sampling_timings(db, DEFAULT_GENERATOR)
        sampling = {}
        if len(samp):
            samp = samp.assign(dclass=[device_class(d) for d in samp.device])
            for (kind, preset, dc), g in samp.groupby(["kind", "preset", "dclass"], sort=True):
                f = fit_times(np.ones(len(g)), g.sampling_s_per_image, [str(d) for d in g.device.dropna()])
                if f is not None:
                    sampling[(kind, preset, dc)] = f
        return cls(classifiers, generators, sampling)

    # A device asked for: "cpu", a GPU's stored name, or "gpu"/"cuda..." (whichever GPU has most data).
    def _pick(self, table: dict, prefix: tuple, device: str):
        keys = [k for k in table if k[:len(prefix)] == prefix]
        if device == CPU:
            keys = [k for k in keys if k[-1] == CPU]
        elif device in ("gpu", "auto") or device.startswith("cuda"):
            keys = [k for k in keys if k[-1] != CPU] or ([k for k in keys if k[-1] == CPU] if device == "auto" else [])
        else:
            keys = [k for k in keys if k[-1] == device]
        return max(keys, key=lambda k: table[k].n) if keys else None

    def _fit(self, table: dict, prefix: tuple, device: str, bench: float | None) -> TimeFit | None:
        """The group's fit on the device, else (on a CPU) the bench figure: seconds per unit of work."""
        key = self._pick(table, prefix, device)
        if key is not None:
            return table[key]
        return bench_fit(bench) if bench is not None and device in (CPU, "auto") else None

    def classifier_fit(self, classifier: str, input_size: int, device: str = CPU) -> TimeFit | None:
        rate = BENCH_CLASSIFIER.get(classifier)
        return self._fit(self.classifiers, (classifier, input_size), device, 1.0 / rate if rate else None)

    def generator_fit(self, kind: str, preset: str, device: str = CPU) -> TimeFit | None:
        rate = BENCH_GENERATOR.get((kind, preset))
        return self._fit(self.generators, (kind, preset), device, 1.0 / rate[0] if rate else None)

    def sampling_fit(self, kind: str, preset: str, device: str = CPU) -> TimeFit | None:
        rate = BENCH_GENERATOR.get((kind, preset))
        return self._fit(self.sampling, (kind, preset), device, rate[1] if rate else None)

    def resolve(self, device: str) -> str:
        """"auto": the device class with the most measured classifier runs (a CPU without any: the bench's);
        "cuda:K"/"gpu": the GPU class with the most; else the class asked for."""
        counts: dict = {}
        for k, f in self.classifiers.items():
            counts[k[-1]] = counts.get(k[-1], 0) + f.n
        gpus = {d: n for d, n in counts.items() if d != CPU}
        if device == "auto":
            return max(counts, key=counts.get) if counts else CPU
        if device == "gpu" or device.startswith("cuda"):
            return max(gpus, key=gpus.get) if gpus else "gpu"
        return device_class(device)

    def devices(self) -> list[str]:
        """The device classes with any measured time."""
        return sorted({k[-1] for t in (self.classifiers, self.generators, self.sampling) for k in t})


# ------------------------------------------------------------------------------ sums of estimates

@dataclass
class Hours:
    """An estimate in hours with its interval (None: no interval) and what it rests on."""
    hours: float | None = 0.0
    lo: float | None = 0.0
    hi: float | None = 0.0
    basis: list = field(default_factory=list)
    n_measured: int = 0

    def add(self, seconds: tuple, basis: str | None = None, n: int = 0) -> None:
        value, lo, hi = seconds
        if self.hours is None or value is None:
            self.hours = self.lo = self.hi = None
        else:
            self.hours += value / 3600
            self.lo = None if self.lo is None or lo is None else self.lo + lo / 3600
            self.hi = None if self.hi is None or hi is None else self.hi + hi / 3600
        if basis and basis not in self.basis:
            self.basis.append(basis)
            self.n_measured += n

    def unknown(self, why: str) -> None:
        self.hours = self.lo = self.hi = None
        self.basis.append((why, ""))

    def text(self) -> str:
        groups: dict = {}
        for what, how in self.basis:
            groups.setdefault(how, []).append(what)
        return "; ".join(", ".join(whats) + (f": {how}" if how else "") for how, whats in groups.items())

    def as_dict(self) -> dict:
        return {"hours": self.hours, "lo": self.lo, "hi": self.hi, "basis": self.text()}


def fmt_hours(hours: float | None) -> str:
    if hours is None:
        return "unknown"
    return f"{hours * 3600:.0f} s" if hours < 1 / 60 else f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


def fmt_span(h: Hours) -> str:
    if h.hours is None:
        return "unknown"
    span = f" [{fmt_hours(h.lo)}-{fmt_hours(h.hi)}]" if h.lo is not None and h.hi is not None else " (no interval)"
    return fmt_hours(h.hours) + span


def classifier_hours(model: CostModel, classifier: str, dataset: str, runs: list[tuple[int, int]],
                     n_total: int | None, recipe: dict | None, traditional: str | None, device: str) -> Hours:
    """Training hours of classifier runs given as (n_base, n_train) pairs (one per seed)."""
    out = Hours()
    stored = CLASSIFIERS[classifier].stored_name
    for n_base, n_train in runs:
        work, size = recipe_work(classifier, dataset, n_base, n_train, n_total, recipe, traditional)
        f = model.classifier_fit(stored, size, device)
        if f is None:
            out.unknown(f"{stored} at {size}x{size} on {device}: no measured run and no bench figure")
            return out
        out.add(f.predict(work), f.basis(f"{stored} ({size}x{size})"), f.n if f.source == "store" else 0)
    return out


def generator_train_images(kind: str, preset: str, options: dict) -> int | None:
    if "train_images" in options:
        return int(float(options["train_images"]))
    if kind == "edm":
        from engine.generators.presets import config_from_options
        return int(config_from_options(preset, options)[0].train_images)
    return None


def generator_hours(model: CostModel, kind: str, preset: str, options: dict, device: str, out: Hours) -> None:
    f = model.generator_fit(kind, preset, device)
    name = GENERATORS[kind].stored_name(preset) if kind in GENERATORS else f"{kind}-{preset}"
    if f is None:
        out.unknown(f"training {name} on {device}: no measured training and no bench figure")
        return
    images = generator_train_images(kind, preset, options) or f.typical_work
    out.add(f.predict(images or 1.0), f.basis(f"training {name}"), f.n if f.source == "store" else 0)


def sampling_hours(model: CostModel, kind: str, preset: str, images: float, device: str, out: Hours) -> None:
    f = model.sampling_fit(kind, preset, device)
    name = GENERATORS[kind].stored_name(preset) if kind in GENERATORS else f"{kind}-{preset}"
    if f is None:
        out.unknown(f"sampling {name} on {device}: no measured sampling and no bench figure")
        return
    value, lo, hi = f.predict(1.0)
    out.add((value * images, None if lo is None else lo * images, None if hi is None else hi * images),
            f.basis(f"sampling {name}"), f.n if f.source == "store" else 0)


def spec_estimate(spec: StudySpec, model: CostModel, device: str = "auto", n_train_total: int | None = None) -> dict:
    """{classifier, generator, sampling: Hours, total: Hours} of one validated study grid."""
    device = model.resolve(device)
    dataset = stored_name(spec.dataset) or spec.dataset
    n_total = paper_n_total(dataset) or n_train_total or known_train_size(spec.dataset)
    runs = [(spec.n_base, spec.n_base + a) for a in spec.added for _ in range(spec.seeds)]
    cls = classifier_hours(model, spec.classifier, dataset, runs, n_total, spec.recipe, spec.traditional, device)
    gen, samp = Hours(), Hours()
    if spec.augmentation == CLOSED and any(a > 0 for a in spec.added):
        generator_hours(model, spec.generator, spec.generator_preset, spec.generator_options, device, gen)
        sampling_hours(model, spec.generator, spec.generator_preset, max(spec.added), device, samp)
    total = Hours()
    for part in (cls, gen, samp):
        total.add((part.hours * 3600 if part.hours is not None else None,
                   part.lo * 3600 if part.lo is not None else None,
                   part.hi * 3600 if part.hi is not None else None))
        total.basis += [b for b in part.basis if b not in total.basis]
        total.n_measured += part.n_measured
    return {"classifier": cls, "generator": gen, "sampling": samp, "total": total, "device": device}


def estimate_job_hours(spec: StudySpec, db, device: str = "auto") -> dict:
    """The job's estimated hours on one worker, with its interval and what it rests on.

    Returns {"hours", "lo", "hi" (None: unknown / no interval), "classifier_hours", "generator_hours",
    "sampling_hours", "n_runs": measured times used, "basis", "devices", "source" ("store", "bench" or
    "store+bench"), "text": one line for people}. Base runs already stored count as if trained again and
    the generator as if not trained yet: the estimate errs long.
    """
    model = CostModel.from_store(db)
    est = spec_estimate(spec, model, device)
    total = est["total"]
    sources = sorted({"bench" if how == BENCH_BASIS else "store" for _, how in total.basis if how})
    out = {"hours": total.hours, "lo": total.lo, "hi": total.hi,
           "classifier_hours": est["classifier"].hours, "generator_hours": est["generator"].hours
           if est["generator"].basis else None, "sampling_hours": est["sampling"].hours if est["sampling"].basis else None,
           "n_runs": total.n_measured, "basis": total.text(), "devices": model.devices(),
           "source": "+".join(sources) or None}
    out["device"] = est["device"]
    out["text"] = (f"{fmt_span(total)} on {est['device']} "
                   f"({out['basis']})" if total.hours is not None else f"unknown: {out['basis']}")
    return out
