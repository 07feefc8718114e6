"""Simulated studies with a known answer, to measure how often the intervals cover it.

A setting's truth is Eq. 1 itself: along the real axis accuracy grows like A + B log(n_real), and
n_syn_added synthetic images give the accuracy of the n_real_added real ones Eq. 1 makes them
equal to, so every tuple of the true surface follows Eq. 1 with the chosen c1, c2 exactly. A study
measures the paper's design (its real and synthetic amounts per base) with independent per-seed
noise, and goes through the whole analysis (surfaces, Eq. 12 on the paper's grid, Eq. 13, the
seed bootstrap) as a user's runs would. Torch-free and vectorised over the design.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.analysis.equivalence import eq1, eq1_inverse, tau_for
from engine.analysis.fit import analyse
from engine.analysis.surface import PAPER_FEATURES
from engine.catalog.vocab import CLOSED, ENGINE, REAL


@dataclass(frozen=True)
class Truth:
    name: str
    c1: float
    c2: float
    n_total: int
    grid: dict                  # n_base -> Eq. 12 ratios
    real_ratios: tuple          # measured real additions / n_base
    syn_ratios: tuple           # measured synthetic additions / n_base
    acc_a: float = 20.0         # accuracy at one real image (percent)
    acc_b: float = 7.0          # points per e-fold of real images
    answer_base: int | None = None  # n_base of the budget answer (N = n_base real images)

    @property
    def tau(self) -> float:
        return tau_for(self.n_total)

    def accuracy(self, n_base, n_real_added, n_syn_added):
        """The true surface along the two measured axes (one of the additions is zero)."""
        n_base = np.asarray(n_base, float)
        equal_real = eq1_inverse(n_base, n_syn_added, self.c1, self.c2, self.tau)
        return self.acc_a + self.acc_b * np.log(n_base + np.asarray(n_real_added, float) + equal_real)

    def answer(self) -> tuple[int, float]:
        b = self.answer_base or sorted(self.grid)[len(self.grid) // 2]
        return b, float(eq1(b, b, self.c1, self.c2, self.tau))


CIFAR_GRID = {500: [1, 2, 3], 5000: [1, 2, 3], 25000: [1, 2, 3]}
IMAGENET_RATIOS = [0.2, 0.4, 0.6, 0.8, 1, 2, 3, 4]
TRUTHS = {
    "cifar10_closed": Truth("CIFAR-10-like, Eq. 3 (c1 0.88, c2 2.53)", 0.88, 2.53, 50_000, CIFAR_GRID,
                            (1, 2, 3), (1, 2, 3, 4, 5)),
    "bloodmnist_closed": Truth("BloodMNIST-like, Eq. 2 (c1 0.72, c2 3.88)", 0.72, 3.88, 12_000,
                               {1200: [1, 2, 3], 6000: [1, 2, 3]}, (1, 2, 3), (1, 2, 3, 4, 5), acc_a=45.0,
                               acc_b=6.0),
    "c2_near_1.5": Truth("c2 near 1.5 (c1 1.2, c2 1.5), CIFAR-10 grid", 1.2, 1.5, 50_000, CIFAR_GRID,
                         (1, 2, 3), (1, 2, 3, 4, 5)),
    "imagenet_open": Truth("ImageNet-100-like, Eq. 6 (c1 1.51, c2 1.68)", 1.51, 1.68, 130_000,
                           {6500: IMAGENET_RATIOS, 26000: IMAGENET_RATIOS}, (0.1, 0.5, 1, 4, 10),
                           (0.1, 0.5, 1, 4, 10), acc_a=-10.0, acc_b=8.0),
}


def design(truth: Truth, seeds: int) -> pd.DataFrame:
    """The runs of one study without their accuracies: the paper's points x seeds."""
    rows = []
    for n_base in truth.grid:
        pts = [(REAL, 0)] + [(REAL, round(r * n_base)) for r in truth.real_ratios] + \
              [(CLOSED, round(s * n_base)) for s in truth.syn_ratios]
        for kind, added in pts:
            for seed in range(seeds):
                rows.append((kind, n_base, added if kind == REAL else 0, added if kind != REAL else 0, seed))
    frame = pd.DataFrame(rows, columns=["augmentation", "n_base", "n_real_added", "n_syn_added", "seed"])
    frame["dataset"], frame["classifier"], frame["source"] = "Sim", "Net", ENGINE
    frame["generator"] = np.where(frame.augmentation == REAL, None, "G")
    frame["n_total"] = truth.n_total
    frame["run_id"] = np.arange(len(frame)).astype(str)
    frame["seed"] = frame.seed.astype("Int64")
    return frame


def run_study(truth: Truth, frame: pd.DataFrame, mean: np.ndarray, noise_sd: float, rng, n_boot: int,
              bootstrap: str = "seeds+points", features=PAPER_FEATURES) -> dict:
    runs = frame.assign(top1=mean + rng.normal(0.0, noise_sd, len(mean)))
    a = analyse(runs, "Sim", "Net", CLOSED, "G", grid=truth.grid, n_boot=n_boot,
                seed=int(rng.integers(2 ** 31)), bootstrap=bootstrap, features=features)
    b, true_answer = truth.answer()
    ans = a.syn_for_real(b, b)
    out = {"c1": a.c1, "c2": a.c2, "c1_ci": a.c1_ci, "c2_ci": a.c2_ci, "answer": ans.get("eq1"),
           "answer_ci": ans.get("eq1_ci"), "surface_answer": ans.get("surface"),
           "surface_answer_ci": ans.get("surface_ci"), "tuples": len(a.tuples), "error": a.eq1_error}
    return out


def noise_free(truth: Truth, frame: pd.DataFrame, mean: np.ndarray, features=PAPER_FEATURES) -> dict:
    """What the method returns from the true accuracies themselves: the target its intervals aim at.

    It differs from the true c1, c2 only because the paper's three-log surface cannot follow the
    true surface exactly (and the more, the further the Eq. 12 grid reaches beyond the measured
    synthetic amounts)."""
    a = analyse(frame.assign(top1=mean), "Sim", "Net", CLOSED, "G", grid=truth.grid, n_boot=0, features=features)
    b, _ = truth.answer()
    ans = a.syn_for_real(b, b)
    return {"c1": a.c1, "c2": a.c2, "answer": ans.get("eq1"), "surface_answer": ans.get("surface")}


def coverage(truth: Truth, studies: int, noise_sd: float, seeds: int = 3, n_boot: int = 200,
             seed: int = 0, bootstrap: str = "seeds+points", features=PAPER_FEATURES) -> dict:
    """Coverage of the intervals for c1, c2 and the budget answer, and the bias of the points:
    against the true values, and against the noise-free output of the method (its target)."""
    frame = design(truth, seeds)
    mean = truth.accuracy(frame.n_base, frame.n_real_added, frame.n_syn_added)
    rng = np.random.default_rng(seed)
    results = [run_study(truth, frame, mean, noise_sd, rng, n_boot, bootstrap, features) for _ in range(studies)]
    _, true_answer = truth.answer()
    target = noise_free(truth, frame, mean, features)
    summary = {"setting": truth.name, "studies": studies, "noise_sd": noise_sd, "seeds": seeds, "n_boot": n_boot,
               "bootstrap": bootstrap, "features": features if isinstance(features, str) else "+".join(features),
               "fitted": sum(r["c1"] is not None for r in results)}
    # The budget answer (N = n_base more real images at the middle base) both ways the product
    # gives it: from Eq. 1 over all bases, and solved on that base's own surface.
    for key, true in (("c1", truth.c1), ("c2", truth.c2), ("answer", true_answer), ("surface_answer", true_answer)):
        est = np.array([r[key] for r in results if r[key] is not None], float)
        cis = [r[f"{key}_ci"] for r in results if r[key] is not None]
        hit = [ci is not None and ci[0] <= true <= ci[1] for ci in cis]
        summary[key] = {"true": true,
                        # A study without a fit or without an interval counts as a miss.
                        "coverage": float(np.sum(hit) / studies),
                        "coverage_of_fitted": float(np.mean(hit)) if hit else None,
                        "median_rel_bias": float(np.median(est / true - 1)) if est.size else None,
                        "mean_rel_bias": float(np.mean(est / true - 1)) if est.size else None,
                        "median_ci_width_rel": float(np.median([(c[1] - c[0]) / true for c in cis if c]))
                        if any(cis) else None}
        tgt = target[key]
        if tgt is not None:
            hit_t = [ci is not None and ci[0] <= tgt <= ci[1] for ci in cis]
            summary[key].update(target=tgt, target_coverage=float(np.sum(hit_t) / studies),
                                target_median_rel_bias=float(np.median(est / tgt - 1)) if est.size else None)
    return summary
