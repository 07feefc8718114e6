"""Equivalence tuples (Eq. 12), the scaling law of Eq. 1 / Eq. 13, and their uncertainty.

For a base set of n_base real images, n_real_added more real images and n_syn_added synthetic
images are equivalent when the fitted surfaces give equal accuracy:

    Acc(n_base + n_real_added, 0) = Acc(n_base, n_syn_added)                       (Eq. 12)

The tuples of every base are then fitted with

    n_syn_added / n_base = c1^(tau * n_base) * (c2^(n_real_added / n_base) - 1)     (Eq. 1 / 13)

with c1 > 0, c2 > 1 and tau = 10 / n_total.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import elementwise, least_squares

from engine.analysis.surface import Surface, design_matrix

ROOT_BOUND_FACTOR = 100  # roots are sought on [0, ROOT_BOUND_FACTOR * n_base]
# Amounts are products like ratio * n_base: a relative slack keeps float round-off from flagging a
# measured amount as beyond the measured range.
EXTRAPOLATION_SLACK = 1.0001


def beyond(value: float, measured: float) -> bool:
    """True when `value` lies past the largest measured amount `measured` (extrapolation)."""
    return value > measured * EXTRAPOLATION_SLACK
# 0, then a geometric grid from 1e-9 of the bracket (a fraction of one image even at the largest
# bases) to its end, about 85 points a decade: a crossing that turns back within the first
# thousandth of the bracket is still seen.
_SCAN_POINTS = 769


def tau_for(n_total: int) -> float:
    return 10.0 / float(n_total)


# ---------------------------------------------------------------- root finding (Eq. 12)

def _scan_grid(bound: float) -> np.ndarray:
    # 0 plus a geometric grid: the log terms change fastest near zero, so a linear grid
    # would step over crossings there.
    return np.concatenate([[0.0], np.geomspace(1e-9 * bound, bound, _SCAN_POINTS - 1)])


def first_crossing(betas: np.ndarray, features, eps: float, *, vary: str, fixed_real: np.ndarray,
                   fixed_syn: np.ndarray, target: np.ndarray, bound: np.ndarray):
    """Smallest x in [0, bound] with Acc(...) = target, for many problems at once.

    Problem i evaluates the surface with coefficients betas[i] along one axis: vary="syn" gives
    Acc(fixed_real[i], x), vary=REAL gives Acc(fixed_real[i] + x, fixed_syn[i]).
    Returns (roots, status); status is "ok", "no_gain" (already at or above target at x = 0,
    so the question has no positive answer) or "no_crossing" (never reaches the target on the
    bracket). A crossing exactly at the bracket's end is a root.
    """
    betas = np.atleast_2d(betas)
    m = betas.shape[0]
    fixed_real, fixed_syn, target, bound = (np.broadcast_to(np.asarray(a, float), (m,)).copy()
                                            for a in (fixed_real, fixed_syn, target, bound))

    def g(x, *args):
        real, syn, tgt, *beta_cols = args
        beta = np.stack(beta_cols, axis=-1)
        n_real, n_syn = (real, x) if vary == "syn" else (real + x, syn)
        return np.sum(design_matrix(n_real, n_syn, features, eps) * beta, axis=-1) - tgt

    # Scan a grid scaled to each problem's bracket for the first sign change.
    unit = _scan_grid(1.0)[None, :]
    grid = unit * bound[:, None]
    grid[:, -1] = bound  # exact end, so a crossing at the bracket's end is found
    shared = all(np.all(a == a[0]) for a in (fixed_real, fixed_syn, bound))
    if shared:
        # The usual case (one base, many ratios or bootstrap draws): every problem scans the same
        # points, so the features are built once and the scan is one matrix product.
        n_real, n_syn = (fixed_real[0], grid[0]) if vary == "syn" else (fixed_real[0] + grid[0], fixed_syn[0])
        values = betas @ design_matrix(n_real, n_syn, features, eps).T - target[:, None]
    else:
        args_grid = [np.repeat(a[:, None], grid.shape[1], axis=1) for a in (fixed_real, fixed_syn, target)]
        beta_grid = [np.repeat(betas[:, j:j + 1], grid.shape[1], axis=1) for j in range(betas.shape[1])]
        values = g(grid, *args_grid, *beta_grid)
    status = np.full(m, "ok", dtype=object)
    roots = np.full(m, np.nan)
    # Accuracies are in percent; differences below this are rounding, not a shortfall, so a
    # crossing exactly at the bracket's end is still found.
    tol = 1e-9 * (1.0 + np.abs(target))[:, None]
    no_gain = values[:, 0] >= 0
    status[no_gain] = "no_gain"
    crossed = (values[:, :-1] < 0) & (values[:, 1:] >= -tol)
    has = crossed.any(axis=1) & ~no_gain
    status[~has & ~no_gain] = "no_crossing"
    idx = np.where(has)[0]
    if idx.size:
        k = crossed[idx].argmax(axis=1)
        lo, hi = grid[idx, k], grid[idx, k + 1]
        exact = np.abs(values[idx, k + 1]) <= tol[idx, 0]
        args = [a[idx] for a in (fixed_real, fixed_syn, target)] + [betas[idx, j] for j in range(betas.shape[1])]
        found = np.where(exact, hi, np.nan)
        todo = ~exact
        if todo.any():
            res = elementwise.find_root(g, (lo[todo], hi[todo]), args=tuple(a[todo] for a in args),
                                        tolerances={"xatol": 1e-6, "xrtol": 1e-10})
            found[todo] = res.x
        roots[idx] = found
    return roots, status


def equivalence_tuples(surface: Surface, ratios, betas: np.ndarray | None = None):
    """n_syn_added equal to n_real_added = ratio * n_base, for each ratio (Eq. 12).

    With `betas` (draws x params) the same is solved for every draw; returns roots and
    status arrays of shape (draws, ratios).
    """
    ratios = np.asarray(ratios, float)
    betas = surface.beta[None, :] if betas is None else np.atleast_2d(betas)
    b, r = betas.shape[0], ratios.size
    n_base = float(surface.n_base)
    beta_rep = np.repeat(betas, r, axis=0)
    ratio_rep = np.tile(ratios, b)
    target = np.sum(design_matrix(n_base * (1 + ratio_rep), 0.0, surface.features, surface.eps)
                    * beta_rep, axis=-1)
    roots, status = first_crossing(beta_rep, surface.features, surface.eps, vary="syn",
                                   fixed_real=n_base, fixed_syn=0.0, target=target,
                                   bound=ROOT_BOUND_FACTOR * n_base)
    return roots.reshape(b, r), status.reshape(b, r)


DROP_REASONS = {
    "no_gain": "the surface predicts no gain from these real images, so there is nothing to match",
    "no_crossing": f"synthetic images never reach this accuracy within {ROOT_BOUND_FACTOR} x n_base on the fitted surface",
}


# ---------------------------------------------------------------- Eq. 1 / Eq. 13

# Eq. 13 is fitted in theta = (a, b) = (log c1, log(c2 - 1)): c1 = e^a > 0 and c2 = 1 + e^b > 1
# hold by construction, and the least-squares problem on the ratio itself is unchanged inside them.
THETA_CLIP = 50.0   # |a|, |b| beyond 50 means c1 or c2 - 1 beyond e^50 ~ 5e21: already unidentified
_FINITE = dict(nan=1e12, posinf=1e12, neginf=-1e12)


def unpack(theta):
    """(c1, c2) from theta = (log c1, log(c2 - 1)); works on arrays of draws along the last axis."""
    theta = np.asarray(theta, float)
    return np.exp(theta[..., 0]), 1.0 + np.exp(theta[..., 1])


def eq1_ratio(a, b, t, ratio):
    """Eq. 1 as n_syn_added / n_base in theta, and its Jacobian: (y, dy/da, dy/db).

    t = tau * n_base and ratio = n_real_added / n_base; everything broadcasts, so a column of
    draws (k, 1) against tuples (n,) gives (k, n). This is the one written form of Eq. 1: eq1(),
    both Eq. 13 fitters and the start grid all evaluate it here.
    """
    log_c2 = np.logaddexp(0.0, b)                  # log(1 + e^b) without overflow
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.exp(a * t)                      # c1^(tau n_base)
        growth_m1 = np.expm1(ratio * log_c2)       # c2^(n_real_added / n_base) - 1
        y = scale * growth_m1
        dy_da = t * y
        dy_db = scale * (growth_m1 + 1) * ratio / (1.0 + np.exp(-b))   # d log_c2 / db = sigmoid(b)
    return y, dy_da, dy_db


def _theta_of(c1, c2):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.asarray(c1, float)), np.log(np.asarray(c2, float) - 1.0)


def eq1(n_base, n_real_added, c1, c2, tau):
    """n_syn_added of Eq. 1."""
    n_base = np.asarray(n_base, float)
    a, b = _theta_of(c1, c2)
    return n_base * eq1_ratio(a, b, tau * n_base, np.asarray(n_real_added, float) / n_base)[0]


def eq1_inverse(n_base, n_syn_added, c1, c2, tau):
    """n_real_added that Eq. 1 makes equivalent to n_syn_added."""
    n_base = np.asarray(n_base, float)
    scale = n_base * np.power(c1, tau * n_base)
    return n_base * np.log1p(np.asarray(n_syn_added, float) / scale) / np.log(c2)


def _eq1_residuals(theta, t, ratio, y):
    a, b = np.clip(theta, -THETA_CLIP, THETA_CLIP)
    return np.nan_to_num(eq1_ratio(a, b, t, ratio)[0] - y, **_FINITE)


def _eq1_jacobian(theta, t, ratio, y):
    a, b = np.clip(theta, -THETA_CLIP, THETA_CLIP)
    _, d_a, d_b = eq1_ratio(a, b, t, ratio)
    return np.nan_to_num(np.stack([d_a, d_b], axis=1), **_FINITE)


# Coarse start grid over (log c1, log(c2 - 1)): the cost surface has long flat valleys, so a
# vectorised look over the grid picks the basin before least squares refines it.
_GRID_A, _GRID_B = np.meshgrid(np.linspace(-6, 6, 49), np.linspace(-8, 8, 65), indexing="ij")


def _start(t, ratio, y):
    a, b = _GRID_A.reshape(-1, 1), _GRID_B.reshape(-1, 1)
    pred = eq1_ratio(a, b, t[None], ratio[None])[0]
    cost = np.nan_to_num(((pred - y[None]) ** 2).sum(axis=1), nan=np.inf)
    k = int(np.argmin(cost))
    return np.array([a[k, 0], b[k, 0]])


# Where a fit of Eq. 13 stops being a number: c2 within 1e-4 of its bound 1 turns Eq. 1 into a
# straight line whose slope c1 and c2 trade off freely (the solver then runs c1 to 1e8 and beyond);
# c1 or c2 beyond 1e8 is a parameter running off to infinity. The published values lie in
# 0.72-1.67 (c1) and 1.68-38.5 (c2), six orders of magnitude inside these limits.
C2_FLOOR = 1e-4
C_LIMIT = 1e8


def identification(c1: float, c2: float) -> str | None:
    """Why (c1, c2) sits at a bound of Eq. 13's parameter space, or None when it does not."""
    if not (np.isfinite(c1) and np.isfinite(c2)):
        return "c1 or c2 is not finite"
    if c2 - 1 < C2_FLOOR:
        return (f"c2 ran onto its bound 1 (c2 - 1 = {c2 - 1:.1e}): the tuples do not grow faster than "
                f"linearly with the real ratio, so c1 and c2 cannot be told apart")
    if not 1 / C_LIMIT < c1 < C_LIMIT:
        return f"c1 = {c1:.3g} ran off to a bound (outside 1e-8 to 1e8)"
    if c2 > C_LIMIT:
        return f"c2 = {c2:.3g} ran off to infinity (above 1e8)"
    return None


def fit_eq1(n_base, n_real_added, n_syn_added, tau: float, x0=None) -> dict:
    """Non-linear least squares of Eq. 13 on y = n_syn_added / n_base (not its log).

    `identified` is false, with the `reason`, when the solver did not converge or the fit sits at a
    bound: such a fit is not an answer, whatever its numbers.
    """
    n_base = np.asarray(n_base, float)
    ratio = np.asarray(n_real_added, float) / n_base
    y = np.asarray(n_syn_added, float) / n_base
    t = tau * n_base
    start = _start(t, ratio, y) if x0 is None else np.asarray(x0, float)
    best = least_squares(_eq1_residuals, start, jac=_eq1_jacobian, args=(t, ratio, y), method="lm")
    c1, c2 = unpack(best.x)
    resid = _eq1_residuals(best.x, t, ratio, y)
    reason = None if best.success else f"the least-squares solver did not converge ({best.message})"
    reason = reason or identification(float(c1), float(c2))
    return {"c1": float(c1), "c2": float(c2), "theta": best.x, "rmse": float(np.sqrt(np.mean(resid ** 2))),
            "converged": bool(best.success), "identified": reason is None, "reason": reason}


def fit_eq1_batch(t, ratio, y, mask, theta0, iterations: int = 100) -> np.ndarray:
    """Eq. 13 for many bootstrap draws at once: Levenberg-Marquardt on (draws x tuples) arrays.

    Row i fits the tuples where mask[i] is true. Equivalent to calling fit_eq1 per draw
    (tests check it), but one vectorised loop instead of hundreds of scipy calls keeps the
    dashboard's live refit inside its time budget. Returns (draws x 2) theta, NaN where
    a draw does not converge.
    """
    t, ratio, y = (np.asarray(a, float) for a in (t, ratio, y))
    w = np.asarray(mask, float)
    theta = np.tile(np.asarray(theta0, float), (y.shape[0], 1))
    lam = np.full(y.shape[0], 1e-3)

    def cost_and_jacobian(th):
        y_hat, d_a, d_b = eq1_ratio(th[:, :1], th[:, 1:], t, ratio)
        resid = np.nan_to_num(w * (y_hat - y), **_FINITE)
        return (resid ** 2).sum(axis=1), resid, np.nan_to_num(w * d_a, **_FINITE), np.nan_to_num(w * d_b, **_FINITE)

    cost, resid, j_a, j_b = cost_and_jacobian(theta)
    for _ in range(iterations):
        g_a, g_b = (j_a * resid).sum(1), (j_b * resid).sum(1)
        h_aa, h_bb, h_ab = (j_a * j_a).sum(1), (j_b * j_b).sum(1), (j_a * j_b).sum(1)
        h_aa_d, h_bb_d = h_aa * (1 + lam), h_bb * (1 + lam)
        det = h_aa_d * h_bb_d - h_ab ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            step = -np.stack([(h_bb_d * g_a - h_ab * g_b) / det, (h_aa_d * g_b - h_ab * g_a) / det], axis=1)
        step = np.nan_to_num(step)
        trial = np.clip(theta + step, -THETA_CLIP, THETA_CLIP)
        new_cost, new_resid, new_j_a, new_j_b = cost_and_jacobian(trial)
        better = new_cost < cost
        theta = np.where(better[:, None], trial, theta)
        lam = np.where(better, lam * 0.3, lam * 10.0)
        cost = np.where(better, new_cost, cost)
        resid = np.where(better[:, None], new_resid, resid)
        j_a = np.where(better[:, None], new_j_a, j_a)
        j_b = np.where(better[:, None], new_j_b, j_b)
        if np.all(np.abs(step).max(axis=1) < 1e-10) or np.all(lam > 1e12):
            break
    theta[~np.isfinite(cost)] = np.nan
    return theta
