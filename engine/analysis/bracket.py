"""The model-free answer: which measured runs bracket the target accuracy (issue #26, item 1).

At one base set, the real runs (n_real_added = 0, r1, r2, ...) and the synthetic runs
(n_syn_added = 0, s1, s2, ...) are two measured accuracy curves sharing the base-only run. "How
many synthetic images equal N more real ones" is read off them without any surface: the target
is the real curve at N (the measured run itself when N was measured), the answer is where the
synthetic curve reaches it. Between measured points each curve is a monotone interpolation: a
weighted isotonic regression of the point means (a dip is noise or a real plateau, never a second
crossing), then a monotone cubic (PCHIP) in log(n_base + amount). A straight line between two
points of a concave curve lies below it and overstates the amount needed; bench/bench_coverage.py
--interp measures both (docs/method.md).

The interval inverts a test instead of resampling a root: an amount x is inside when the
difference "synthetic curve at x minus target" is within t x its standard error. That difference
is a contrast of point means (its weights sum to zero), so

- with seeds on a complete points x seeds table, a per-seed offset shared by every run of a seed
  cancels, and the noise is the two-way (point x seed) residual, pooled over the setting's bases;
- with seeds but gaps, the within-point spread (which includes any seed offset: wider, never
  narrower);
- with means only (published tables), the residuals of a quadratic in log(n_base + amount) on
  each curve of at least four points, pooled over the setting (lack of fit counts as noise:
  wider, never narrower);

always with t-quantiles on the pooled degrees of freedom. Where the slope is flat the set of
accepted amounts runs to the largest measured one and the interval is open-ended (Fieller's
problem, which a percentile bootstrap of the root hides). Plain numpy/SciPy, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.optimize import isotonic_regression
from scipy.special import stdtrit
from engine.catalog.vocab import REAL

DIRECTIONS = ("syn_for_real", "real_for_syn")
INTERPOLATIONS = ("pchip", "linear")
# Amounts are products like 0.1 * n_base; a measured amount is "the same" within this relative slack.
SAME = 1e-4
_GRID = 1024          # points of the scan over the answer axis: bounds to ~1.6 % of an amount
_STEP = 1e-4          # finite-difference step (accuracy points) for the interpolants' weights
MIN_CURVE_POINTS = 4  # a curve's quadratic smoother needs one residual degree of freedom


@dataclass(frozen=True)
class BaseData:
    """One base's measured points: means, how many observations each, and the points x seeds table."""
    n_base: int
    n_real_added: np.ndarray
    n_syn_added: np.ndarray
    acc: np.ndarray
    n_obs: np.ndarray
    seed_matrix: np.ndarray | None = None

    @classmethod
    def from_points(cls, n_base: int, points, seed_matrix=None) -> "BaseData":
        """From engine.analysis.fit.surface_points(): columns n_real_added, n_syn_added, acc, n_seeds,
        n_unseeded (a published mean is one observation; a point's seeds are that many)."""
        n_obs = points.n_seeds.to_numpy(float) + points.n_unseeded.to_numpy(float)
        return cls(int(n_base), points.n_real_added.to_numpy(float), points.n_syn_added.to_numpy(float),
                   points.acc.to_numpy(float), np.maximum(n_obs, 1.0),
                   None if seed_matrix is None else np.asarray(seed_matrix, float))

    def axis(self, which: str) -> np.ndarray:
        """Indices of the base-only point and the points on one axis (REAL or "syn"), by amount."""
        real, syn = self.n_real_added, self.n_syn_added
        on = (syn == 0) if which == REAL else (real == 0)
        idx = np.where(on)[0]
        return idx[np.argsort((real if which == REAL else syn)[idx], kind="stable")]

    def amounts(self, which: str) -> np.ndarray:
        return (self.n_real_added if which == REAL else self.n_syn_added)[self.axis(which)]

    @property
    def has_base_run(self) -> bool:
        return bool(np.any((self.n_real_added == 0) & (self.n_syn_added == 0)))


@dataclass(frozen=True)
class Noise:
    """Per-observation noise sd of the point means and its degrees of freedom, pooled over bases."""
    sd: float | None
    df: int
    kind: str      # "seeds, paired" | "seeds" | "means" | "unknown"

    def t(self, level: float) -> float | None:
        return None if self.sd is None or self.df < 1 else float(stdtrit(self.df, 1 - (1 - level) / 2))

    def as_dict(self) -> dict:
        return {"sd": self.sd, "df": int(self.df), "kind": self.kind}


def _quadratic_residuals(u: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    X = np.stack([np.ones_like(u), u - u.mean(), (u - u.mean()) ** 2], axis=1)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return float(np.sum((y - X @ beta) ** 2)), len(y) - 3


def estimate_noise(bases: list[BaseData]) -> Noise:
    """The seed noise of a setting's point means, pooled over its bases (see the module's docstring)."""
    seeded = [b for b in bases if b.seed_matrix is not None and b.seed_matrix.shape[1] >= 2]
    if seeded:
        complete = all(np.isfinite(b.seed_matrix).all() and np.all(b.n_obs == b.seed_matrix.shape[1])
                       for b in seeded)
        ss, df = 0.0, 0
        for b in seeded:
            m = b.seed_matrix
            if complete:
                resid = m - m.mean(1, keepdims=True) - m.mean(0, keepdims=True) + m.mean()
                ss += float(np.sum(resid ** 2))
                df += (m.shape[0] - 1) * (m.shape[1] - 1)
            else:
                n = np.isfinite(m).sum(1)
                rows = m[n >= 2]
                ss += float(np.nansum((rows - np.nanmean(rows, axis=1, keepdims=True)) ** 2))
                df += int(np.sum(n[n >= 2] - 1))
        if df >= 1:
            return Noise(float(np.sqrt(ss / df)), df, "seeds, paired" if complete else "seeds")
    ss, df = 0.0, 0
    for b in bases:
        for which in (REAL, "syn"):
            idx = b.axis(which)
            if idx.size >= MIN_CURVE_POINTS:
                s, d = _quadratic_residuals(np.log(b.n_base + b.amounts(which)), b.acc[idx])
                ss, df = ss + s, df + d
    if df < 1:
        return Noise(None, 0, "unknown")
    return Noise(float(np.sqrt(ss / df)), df, "means")


class _Curve:
    """One axis's monotone interpolant in u = log(n_base + amount), with its weights on the base's points.

    Built on the point means and on each mean nudged by _STEP: the interpolant's value and its
    derivative with respect to every point mean (the weights of the linearised contrast) come from
    one vectorised evaluation.
    """

    def __init__(self, base: BaseData, which: str, interp: str = "pchip"):
        self.idx = base.axis(which)
        self.amounts = base.amounts(which)
        self.u = np.log(base.n_base + self.amounts)
        y = base.acc[self.idx]
        w = base.n_obs[self.idx]
        k = self.idx.size
        cols = np.repeat(y[:, None], k + 1, axis=1)
        cols[np.arange(k), np.arange(1, k + 1)] += _STEP
        mono = np.stack([isotonic_regression(cols[:, j], weights=w, increasing=True).x for j in range(k + 1)], 1)
        self.monotone = mono[:, 0]
        self.interp = interp
        if interp == "pchip" and k >= 3:
            self._f = PchipInterpolator(self.u, mono, axis=0, extrapolate=False)
        else:
            self._mono = mono
            self._f = None

    def __call__(self, u) -> tuple[np.ndarray, np.ndarray]:
        """(values, weights): values at u, and d value / d point mean (len(u) x k, rows sum to 1)."""
        u = np.clip(np.atleast_1d(np.asarray(u, float)), self.u[0], self.u[-1])
        if self._f is not None:
            v = self._f(u)
        else:
            v = np.stack([np.interp(u, self.u, self._mono[:, j]) for j in range(self._mono.shape[1])], 1)
        return v[:, 0], (v[:, 1:] - v[:, :1]) / _STEP

    def chord(self, u) -> np.ndarray:
        """The straight line between the monotone points (in u): the other plain interpolant."""
        return np.interp(np.atleast_1d(np.asarray(u, float)), self.u, self.monotone)

    def first_reach(self, target: float, lo: float, hi: float) -> float:
        """Smallest u in [lo, hi] where the curve reaches target (the curve is non-decreasing)."""
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self(mid)[0][0] >= target:
                hi = mid
            else:
                lo = mid
        return hi


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= SAME * max(1.0, abs(b))


def bracket_answer(base: BaseData, noise: Noise, amount: float, direction: str = "syn_for_real",
                   level: float = 0.95, interp: str = "pchip") -> dict:
    """The measured runs' answer to one question at this base, with its interval.

    Returns a dict: kind ("value"; "more_than": the target lies beyond the largest measured answer
    amount, lo a lower bound when one is supported; "noise": no crossing, but every measured amount
    from 0 up is consistent with the target; "below_base": the target is significantly below
    the base-only run, value 0; "target_beyond": the question's amount is beyond the measured ones;
    "no_runs": fewer than two points on an axis or no base-only run), value, lo, hi (None: no bound
    on that side; hi None also when the largest measured amount is still consistent), target_measured
    (the question's amount was itself measured), target_acc, target_se, gain (target minus the base
    run), gain_se, largest_measured (on the answer axis), below/above (the measured answer amounts
    bracketing the value), level, noise (Noise.as_dict()).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}: choose from {', '.join(DIRECTIONS)}")
    if interp not in INTERPOLATIONS:
        raise ValueError(f"interp {interp!r}: choose from {', '.join(INTERPOLATIONS)}")
    q_axis, a_axis = (REAL, "syn") if direction == "syn_for_real" else ("syn", REAL)
    out = {"kind": "no_runs", "value": None, "lo": None, "hi": None, "target_measured": False,
           "target_acc": None, "target_se": None, "gain": None, "gain_se": None, "largest_measured": None,
           "below": None, "above": None, "level": level, "noise": noise.as_dict()}
    q_idx, a_idx = base.axis(q_axis), base.axis(a_axis)
    if not base.has_base_run or q_idx.size < 2 or a_idx.size < 2:
        return out
    b = float(base.n_base)
    q_amounts, a_amounts = base.amounts(q_axis), base.amounts(a_axis)
    out["largest_measured"] = float(a_amounts[-1])
    if amount > q_amounts[-1] and not _same(amount, q_amounts[-1]):
        out["kind"] = "target_beyond"
        return out
    n_pts = base.acc.size
    v = np.zeros(n_pts)
    hit = [i for i, x in zip(q_idx, q_amounts) if _same(amount, x)]
    if hit:
        v[hit[0]] = 1.0
        target = float(base.acc[hit[0]])
        out["target_measured"] = True
    slack_q = 0.0
    if not hit:
        q_curve = _Curve(base, q_axis, interp)
        val, weights = q_curve(np.log(b + amount))
        target = float(val[0])
        v[q_idx] = weights[0]
        slack_q = abs(target - float(q_curve.chord(np.log(b + amount))[0]))
    var_unit = 1.0 / base.n_obs  # variance of each point mean in units of the per-observation variance
    sd, t = noise.sd, noise.t(level)
    base_i = int(a_idx[0])
    out["target_acc"] = target
    out["gain"] = target - float(base.acc[base_i])
    gain_c = v.copy()
    gain_c[base_i] -= 1.0
    if sd is not None:
        out["target_se"] = float(sd * np.sqrt(np.sum(v ** 2 * var_unit)))
        out["gain_se"] = float(sd * np.sqrt(np.sum(gain_c ** 2 * var_unit)))

    curve = _Curve(base, a_axis, interp)
    # Geometric in the amount from 1e-7 of the largest: near zero both interpolants lean on
    # the shared base-only run and the contrast's mean and its standard error shrink together, so a
    # question of one image is decided at its own scale, not at the grid step of the whole range.
    top = float(a_amounts[-1])
    grid = np.concatenate([[0.0], np.geomspace(top * 1e-7, top, _GRID), a_amounts])
    u = np.unique(np.log(b + grid))
    val, weights = curve(u)
    diff = val - target
    # The value: first amount whose interpolated accuracy reaches the target.
    reached = np.where(diff >= 0)[0]
    value = None
    if reached.size:
        i = int(reached[0])
        root = u[0] if i == 0 else curve.first_reach(target, u[i - 1], u[i])
        value = max(float(np.exp(root) - b), 0.0)
        if i > 0:
            # The root joins the scan: it is always consistent with the target, so an interval
            # narrower than the grid's step still has a point inside it.
            u = np.insert(u, i, root)
            val, weights = curve(u)
            diff = val - target
    out["value"] = value
    if value is not None:
        below = a_amounts[a_amounts <= value * (1 + SAME)]
        above = a_amounts[a_amounts >= value * (1 - SAME)]
        out["below"] = float(below[-1]) if below.size else None
        out["above"] = float(above[0]) if above.size else None
    if t is None:
        out["kind"] = "value" if value is not None else "more_than"
        return out
    contrast = -np.repeat(v[None, :], u.size, axis=0)
    contrast[:, a_idx] += weights
    se = sd * np.sqrt(np.sum(contrast ** 2 * var_unit[None, :], axis=1))
    # Between measured points the curve is not measured: the interpolant and the chord differ by
    # about what an interpolant can be wrong by, and that difference is allowed on top of the noise
    # (zero at measured amounts, largest mid-way along long, curved segments).
    slack = np.abs(val - curve.chord(u)) + slack_q
    gap = np.abs(diff) - t * se - slack   # <= 0: this amount is consistent with the target
    ok = np.where(gap <= 0)[0]
    if value == 0.0 and gap[0] > 0:      # the base-only run is already significantly above the target
        out.update(kind="below_base", value=0.0, lo=0.0, hi=0.0)
        return out
    if ok.size == 0:                     # every measured amount falls significantly short
        out.update(kind="more_than", value=None, lo=float(a_amounts[-1]), below=None, above=None)
        return out

    def edge(i, j):  # where gap crosses 0 between grid points i (outside) and j (inside), in amount
        frac = gap[i] / (gap[i] - gap[j]) if gap[i] != gap[j] else 0.5
        return float(np.exp(u[i] + frac * (u[j] - u[i])) - b)

    first, last = int(ok[0]), int(ok[-1])
    lo = 0.0 if first == 0 else max(edge(first - 1, first), 0.0)
    hi = None if last == u.size - 1 else edge(last + 1, last)
    out.update(lo=lo, hi=hi)
    if value is None:
        # No crossing, yet amount 0 is consistent too: the runs cannot tell the target from the
        # base-only run, so this is noise, not a lower bound of 0.
        out.update(kind="noise" if lo == 0.0 else "more_than", hi=None)
    else:
        out["kind"] = "value"
        out["hi"] = hi if hi is None else max(hi, value)
        out["lo"] = min(lo, value)
    return out
