"""Simulated studies with a known equivalence that need not be the paper's form (issue #26, item 3).

A truth is, per base, a real learning curve f (accuracy of n real images) and the worth of
synthetic images w(n_syn) in real images: n_syn synthetic images give the accuracy f(n_base +
w(n_syn)). So "how many synthetic images equal N real ones" is w^-1(N) (infinite where the worth
saturates below N) and "what are K synthetic images worth" is w(K). Families:

- real curves: "log" (a + B log n, the paper's surface follows it) or "power" (a - c (n/1000)^-p,
  saturating accuracy, which the paper's log surface cannot follow);
- worth: "eq1" (Eq. 1 exactly, engine.analysis.simulate's truths), "saturating"
  (A n_base (1 - exp(-n_syn / (S n_base))): synthetic images stop helping), "power"
  (k n_base ((1 + n_syn/n_base)^g - 1), g < 1: diminishing but unbounded), "logworth"
  (k n_base log(1 + n_syn / (l n_base))).

`paper_truths()` fits a power real curve and a saturating worth to each published setting and
keeps the setting's design and its own noise level (engine.analysis.bracket's pooled residual sd
of the published means). `held_back()` draws truths from a fixed seed, for a check run once after
the method was settled. Plain numpy/SciPy/pandas, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from engine.analysis.equivalence import eq1, eq1_inverse, tau_for
from engine.catalog.vocab import CLOSED, REAL


@dataclass(frozen=True)
class Curves:
    """A known truth. design: n_base -> (real amounts, synthetic amounts) measured (without 0);
    real: n_base -> ("log", a, B) | ("power", a, c, p); worth: n_base -> (family, *params)."""
    name: str
    n_total: int
    design: dict
    real: dict
    worth: dict
    grid: dict = field(default_factory=dict)   # Eq. 12 grid for the analysis (default: r 1, 2, 3)
    noise_sd: float | None = None              # the setting's own per-point noise, where known

    @property
    def tau(self) -> float:
        return tau_for(self.n_total)

    def _at(self, table: dict, n_base):
        # Truths whose curves do not depend on the base hold them under None: they answer at any base.
        return table[n_base] if n_base in table else table[None]

    def f(self, n_base, n):
        kind, *p = self._at(self.real, n_base)
        n = np.asarray(n, float)
        if kind == "log":
            return p[0] + p[1] * np.log(n)
        return p[0] - p[1] * (n / 1000.0) ** (-p[2])

    def worth_of(self, n_base, n_syn):
        kind, *p = self._at(self.worth, n_base)
        s, b = np.asarray(n_syn, float), float(n_base)
        if kind == "eq1":
            return eq1_inverse(b, s, p[0], p[1], self.tau)
        if kind == "saturating":
            return p[0] * b * -np.expm1(-s / (p[1] * b))
        if kind == "power":
            return p[0] * b * ((1 + s / b) ** p[1] - 1)
        return p[0] * b * np.log1p(s / (p[1] * b))          # logworth

    def syn_for_real(self, n_base, n_real_added) -> float:
        kind, *p = self._at(self.worth, n_base)
        b, n = float(n_base), float(n_real_added)
        if kind == "eq1":
            return float(eq1(b, n, p[0], p[1], self.tau))
        if kind == "saturating":
            return float(-p[1] * b * np.log1p(-n / (p[0] * b))) if n < p[0] * b else float("inf")
        if kind == "power":
            return float(b * ((1 + n / (p[0] * b)) ** (1 / p[1]) - 1))
        return float(p[1] * b * np.expm1(n / (p[0] * b)))

    def real_for_syn(self, n_base, n_syn_added) -> float:
        return float(self.worth_of(n_base, n_syn_added))

    def accuracy(self, n_base, n_real_added, n_syn_added):
        b = np.asarray(n_base)
        out = np.empty(np.shape(b))
        for base in np.unique(b):
            at = b == base
            out[at] = self.f(base, base + np.asarray(n_real_added, float)[at]
                             + self.worth_of(base, np.asarray(n_syn_added, float)[at]))
        return out


def from_eq1_truth(t) -> Curves:
    """An engine.analysis.simulate.Truth (log real curve, Eq. 1 worth) as Curves."""
    design = {b: (tuple(round(r * b) for r in t.real_ratios), tuple(round(s * b) for s in t.syn_ratios))
              for b in t.grid}
    return Curves(t.name, t.n_total, design, {None: ("log", t.acc_a, t.acc_b)}, {None: ("eq1", t.c1, t.c2)},
                  grid=dict(t.grid))


CIFAR_DESIGN = {b: (tuple(r * b for r in (1, 2, 3)), tuple(s * b for s in (1, 2, 3, 4, 5))) for b in (500, 5000, 25000)}
IMAGENET_DESIGN = {b: tuple(tuple(round(x * b) for x in (0.1, 0.5, 1, 4, 10)) for _ in range(2)) for b in (6500, 26000)}
# A saturating accuracy curve shaped like CIFAR-10's (35 % at 500 images, 75 % at 5,000, 89 % at 50,000).
_CIFAR_REAL = ("power", 97.0, 45.4, 0.45)
_IMAGENET_REAL = ("power", 95.0, 176.0, 0.5)

MISSPECIFIED = {
    "saturating_cifar": Curves("CIFAR-10-like design, power-law accuracy, synthetic worth saturating at 3 x n_base",
                               50_000, CIFAR_DESIGN, {None: _CIFAR_REAL}, {None: ("saturating", 3.0, 2.0)}),
    "power_imagenet": Curves("ImageNet-100-like design, power-law accuracy, synthetic worth 0.7 n_base ((1 + s)^0.6 - 1)",
                             130_000, IMAGENET_DESIGN, {None: _IMAGENET_REAL}, {None: ("power", 0.7, 0.6)}),
}


# ------------------------------------------------------------------------ studies

def runs_frame(truth: Curves, seeds: int) -> pd.DataFrame:
    """A study's runs without accuracies: the base-only run, the real and synthetic points x seeds
    (seeds 0: one seedless value a point, as the published tables print them)."""
    rows = []
    for b, (real, syn) in truth.design.items():
        pts = [(REAL, 0, 0)] + [(REAL, r, 0) for r in real] + [(CLOSED, 0, s) for s in syn]
        for kind, r, s in pts:
            for seed in (range(seeds) if seeds else [None]):
                rows.append((kind, b, r, s, seed))
    frame = pd.DataFrame(rows, columns=["augmentation", "n_base", "n_real_added", "n_syn_added", "seed"])
    frame["dataset"], frame["classifier"], frame["source"] = "Sim", "Net", "engine" if seeds else "paper"
    frame["generator"] = np.where(frame.augmentation == REAL, None, "G")
    frame["n_total"] = truth.n_total
    frame["run_id"] = np.arange(len(frame)).astype(str)
    frame["seed"] = frame.seed.astype("Int64")
    return frame


def noisy_runs(truth: Curves, frame: pd.DataFrame, sd: float, rng, seed_offset_sd: float = 0.0) -> pd.DataFrame:
    """The runs with independent per-run noise of sd and, optionally, an offset shared by every run of a
    seed at a base (it cancels in seed-paired contrasts)."""
    mean = truth.accuracy(frame.n_base.to_numpy(), frame.n_real_added.to_numpy(), frame.n_syn_added.to_numpy())
    noise = rng.normal(0.0, sd, len(frame))
    if seed_offset_sd and frame.seed.notna().any():
        keys = frame.n_base.astype(str) + ":" + frame.seed.astype(str)
        codes, uniq = pd.factorize(keys)
        noise = noise + rng.normal(0.0, seed_offset_sd, len(uniq))[codes]
    return frame.assign(top1=mean + noise)


def questions(truth: Curves) -> list[tuple]:
    """(n_base, direction, amount, true answer): measured amounts of the question's axis, geometric
    midpoints between them and half the first one, both directions, at every base."""
    out = []
    for b, (real, syn) in truth.design.items():
        for direction, amounts in (("syn_for_real", real), ("real_for_syn", syn)):
            pts = sorted(amounts)
            asked = set(pts) | {pts[0] / 2} | {float(np.sqrt(x * y)) for x, y in zip(pts, pts[1:])}
            for a in sorted(asked):
                true = truth.syn_for_real(b, a) if direction == "syn_for_real" else truth.real_for_syn(b, a)
                out.append((b, direction, float(a), true))
    return out


def across_questions(truth: Curves) -> list[tuple]:
    """Questions at a base without runs (the geometric mean of two measured ones), N = K = n_base, for
    truths whose curves hold at any base: only Eq. 1 can answer them."""
    if None not in truth.real or None not in truth.worth:
        return []
    bases = sorted(truth.design)
    out = []
    for b1, b2 in zip(bases, bases[1:]):
        b = int(round(np.sqrt(b1 * b2)))
        out += [(b, "syn_for_real", float(b), truth.syn_for_real(b, b)),
                (b, "real_for_syn", float(b), truth.real_for_syn(b, b))]
    return out


def largest_answer(truth: Curves, n_base: int, direction: str) -> float:
    real, syn = truth.design[n_base]
    return float(max(syn) if direction == "syn_for_real" else max(real))


# -------------------------------------------------------------- truths fitted to the paper

def _fit_power(n, y):
    """a - c (n/1000)^-p through one base's real points (monotone, saturating), bounded to stay so."""
    x = n / 1000.0

    def resid(th):
        return th[0] - th[1] * x ** (-th[2]) - y

    best = None
    for p0 in (0.2, 0.5, 1.0):
        a0 = min(100.0, y.max() + 5)
        c0 = max((a0 - y[0]) * x[0] ** p0, 1e-3)
        r = least_squares(resid, [a0, c0, p0], bounds=([y.max(), 1e-6, 0.02], [100.0, 1e6, 3.0]))
        if best is None or r.cost < best.cost:
            best = r
    return ("power", *map(float, best.x))


def _fit_saturating(truth_real, n_base, s, y):
    """A n_base (1 - exp(-s / (S n_base))) through one base's synthetic points, given its real curve."""
    kind, a, c, p = truth_real
    b = float(n_base)

    def resid(th):
        w = th[0] * b * -np.expm1(-s / (th[1] * b))
        return a - c * ((b + w) / 1000.0) ** (-p) - y

    best = None
    for s0 in (0.3, 1.0, 3.0):
        r = least_squares(resid, [1.0, s0], bounds=([1e-3, 1e-2], [100.0, 100.0]))
        if best is None or r.cost < best.cost:
            best = r
    return ("saturating", *map(float, best.x))


def paper_truths(tab9: str = "total") -> dict[str, Curves]:
    """One saturating truth per published equation's setting: its bases with real and synthetic runs,
    its measured amounts, a power real curve and a saturating worth fitted per base, its own noise."""
    from engine.analysis.bracket import BaseData, estimate_noise
    from engine.analysis.fit import analyse
    from engine.analysis.paper import paper_runs, published_equations
    runs = paper_runs(tab9)
    out = {}
    for eq in published_equations():
        a = analyse(runs, eq["dataset"], eq["classifier"], eq["augmentation"], eq["generator"], source="paper",
                    n_boot=0)
        bases = {b: BaseData.from_points(b, f.points, f.seed_matrix) for b, f in a.bases.items() if len(f.points)}
        noise = estimate_noise(list(bases.values()))
        design, real, worth = {}, {}, {}
        for b, d in sorted(bases.items()):
            r_amt, s_amt = d.amounts(REAL), d.amounts("syn")
            if r_amt.size < 3 or s_amt.size < 3:
                continue
            real[b] = _fit_power(b + r_amt, d.acc[d.axis(REAL)])
            worth[b] = _fit_saturating(real[b], b, s_amt, d.acc[d.axis("syn")])
            design[b] = (tuple(int(x) for x in r_amt[1:]), tuple(int(x) for x in s_amt[1:]))
        name = (f"Eq. {eq['equation']} setting ({eq['dataset']} {eq['classifier']} {eq['augmentation']}), "
                "fitted saturating truth")
        out[f"paper_eq{eq['equation']}"] = Curves(name, a.n_total, design, real, worth, noise_sd=noise.sd)
    return out


# ---------------------------------------------------------------------- held back

def held_back(count: int = 12, seed: int = 2608) -> dict[str, Curves]:
    """Truths drawn once from a fixed seed (none of them Eq. 1 or a log curve), for the final check:
    a CIFAR-10-like or ImageNet-100-like design, a power-law real curve, and a saturating, power or
    log worth with random parameters."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(count):
        cifar = rng.random() < 0.5
        design, n_total = (CIFAR_DESIGN, 50_000) if cifar else (IMAGENET_DESIGN, 130_000)
        real = ("power", float(rng.uniform(92, 99)), float(rng.uniform(30, 180)), float(rng.uniform(0.3, 0.7)))
        family = ("saturating", "power", "logworth")[i % 3]
        if family == "saturating":
            params = (float(rng.uniform(1.5, 6.0)), float(rng.uniform(0.7, 4.0)))
        elif family == "power":
            params = (float(rng.uniform(0.4, 1.2)), float(rng.uniform(0.4, 0.85)))
        else:
            params = (float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.3, 2.0)))
        worth = (family, *params)
        name = (f"held-back {i}: {'CIFAR-10-like' if cifar else 'ImageNet-100-like'} design, power real "
                f"{tuple(round(v, 2) for v in real[1:])}, {family} worth {tuple(round(v, 2) for v in params)}")
        out[f"held_back_{i}"] = Curves(name, n_total, design, {None: real}, {None: worth},
                                       noise_sd=float(rng.uniform(0.15, 0.45)))
    return out
