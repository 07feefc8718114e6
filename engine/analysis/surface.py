"""The accuracy surface of one base set (paper, appendix A, Eq. 10-11).

Acc(n_real, n_syn) is fitted by ordinary least squares on features of the two training-set
sizes, with an intercept. n_real = n_base + n_real_added, n_syn = n_syn_added. The paper's
surface uses the three log terms; any non-empty subset of the five candidates H can be fitted
and compared.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
# statsmodels.api imports most of statsmodels (seconds); the OLS class alone is what a surface needs.
from statsmodels.regression.linear_model import OLS

from engine.analysis.labels import feature_label
from engine.messages import InputError
from engine.analysis.options import CRITERIA, DEFAULT_EPS, FEATURES, PAPER_FEATURES  # noqa: F401 (re-exported)

LEVERAGE_ONE = 1e-8   # 1 - h_ii below this: the point has leverage 1 (to round-off)
# Larger is better for R² and adjusted R²; smaller for the rest.
_MAXIMISE = {"r2", "adj_r2"}


class FitError(InputError):
    """The runs cannot support the requested fit; the message says why in one line."""


def design_matrix(n_real, n_syn, features=PAPER_FEATURES, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Columns [features..., 1] evaluated at the given sizes (broadcast)."""
    n_real = np.asarray(n_real, dtype=float)
    n_syn = np.asarray(n_syn, dtype=float)
    n_real, n_syn = np.broadcast_arrays(n_real, n_syn)
    columns = {
        "n_real": lambda: n_real,
        "n_syn": lambda: n_syn,
        "log_n_real": lambda: np.log(n_real + eps),
        "log_n_syn": lambda: np.log(n_syn + eps),
        "log_n_total": lambda: np.log(n_real + n_syn + eps),
    }
    unknown = [f for f in features if f not in columns]
    if unknown:
        raise FitError(f"unknown feature {unknown[0]!r}; choose from {', '.join(FEATURES)}")
    return np.stack([columns[f]() for f in features] + [np.ones_like(n_real)], axis=-1)


@dataclass
class Surface:
    """A fitted surface: Acc = X(n_real, n_syn) @ beta."""
    n_base: int
    features: tuple[str, ...]
    eps: float
    beta: np.ndarray
    n_points: int
    stats: dict
    residuals: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)

    def predict(self, n_real, n_syn) -> np.ndarray:
        return design_matrix(n_real, n_syn, self.features, self.eps) @ self.beta

    def formula(self) -> str:
        terms = [f"{b:+.4g}·{feature_label(f)}" for b, f in zip(self.beta[:-1], self.features)]
        return "Acc = " + " ".join(terms) + f" {self.beta[-1]:+.4g}"


def fit_surface(n_base: int, n_real, n_syn, acc, features=PAPER_FEATURES,
                eps: float = DEFAULT_EPS) -> Surface:
    """OLS with an intercept; statsmodels supplies R², AIC, BIC; LOO RMSE from the hat matrix."""
    features = tuple(features)
    if not features:
        raise FitError("choose at least one feature")
    acc = np.asarray(acc, dtype=float)
    X = design_matrix(n_real, n_syn, features, eps)
    p = X.shape[1]
    if len(acc) < p + 1:
        raise FitError(f"n_base {n_base}: {len(acc)} measured points, a surface with "
                       f"{p} parameters needs at least {p + 1}")
    if np.linalg.matrix_rank(X) < p:
        raise FitError(f"n_base {n_base}: the runs cannot separate the {p} parameters of "
                       f"{'+'.join(features)} (need runs with real and with synthetic additions)")
    result = OLS(acc, X).fit()
    hat = result.get_influence().hat_matrix_diag
    # Leave-one-out residuals of a linear smoother: e_i / (1 - h_ii). A point of leverage 1 alone
    # determines a coefficient: left out, the fit is undefined, however small e_i / (1 - h_ii)
    # looks in floating point (e_i is 0 and 1 - h_ii round-off).
    with np.errstate(divide="ignore", invalid="ignore"):
        loo = np.where(1.0 - hat > LEVERAGE_ONE, result.resid / (1.0 - hat), np.inf)
    stats = {
        "r2": float(result.rsquared),
        "adj_r2": float(result.rsquared_adj),
        "aic": float(result.aic),
        "bic": float(result.bic),
        "loo_rmse": float(np.sqrt(np.mean(loo ** 2))) if np.all(np.isfinite(loo)) else float("inf"),
        "rmse": float(np.sqrt(np.mean(result.resid ** 2))),
        "df_resid": float(result.df_resid),
    }
    return Surface(n_base=int(n_base), features=features, eps=float(eps), beta=np.asarray(result.params),
                   n_points=len(acc), stats=stats, residuals=np.asarray(result.resid), X=X)


def all_subsets(n_base: int, n_real, n_syn, acc, eps: float = DEFAULT_EPS) -> list[dict]:
    """Every non-empty subset of H (31 of them), fitted or with the reason it cannot be."""
    table = []
    for k in range(1, len(FEATURES) + 1):
        for subset in itertools.combinations(FEATURES, k):
            row = {"features": subset}
            try:
                row.update(fit_surface(n_base, n_real, n_syn, acc, subset, eps).stats)
            except FitError as err:
                row["error"] = str(err)
            table.append(row)
    return table


def best_subset(table: list[dict], criterion: str) -> tuple[str, ...]:
    if criterion not in CRITERIA:
        raise FitError(f"unknown criterion {criterion!r}; choose from {', '.join(CRITERIA)}")
    fitted = [r for r in table if "error" not in r and np.isfinite(r[criterion])]
    if not fitted:
        raise FitError("no feature subset can be fitted to these runs")
    sign = -1.0 if criterion in _MAXIMISE else 1.0
    return min(fitted, key=lambda r: (sign * r[criterion], len(r["features"])))["features"]
