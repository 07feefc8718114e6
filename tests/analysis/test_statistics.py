"""Each statistic and flag of the analysis pinned against an independent computation.

The surface statistics are recomputed here from their definitions (refitting without each point
for LOO, the Gaussian log-likelihood for AIC/BIC), the extrapolation flags are probed just inside
and just outside the measured range, and the root finder is run on surfaces built so that the
true first crossing is known in closed form. Only public behaviour is used: fitted surfaces, their
stats, equivalence tuples, `analyse` and its answers.

The last part checks what the analysis hands to its readers (formulas, answers with intervals,
the JSON form, IR) against the equation each value stands for.
"""
import itertools
import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from engine.analysis.equivalence import eq1, equivalence_tuples, fit_eq1
from engine.analysis.base_fit import BaseFit
from engine.analysis.fit import analyse
from engine.analysis.ir import IR_COLUMNS, improvement_ratio
from engine.analysis.gains import bound_statement
from engine.analysis.select import settings, surface_points
from engine.analysis.simulate import TRUTHS, Truth, coverage, design, noise_free, run_study
from engine.analysis.surface import (FEATURES, PAPER_FEATURES, FitError, all_subsets, best_subset, design_matrix,
                                     fit_surface)
from tests.conftest import make_runs
from tests.analysis.test_fit import toy_points, true_acc

EPS = 1e-3


# ----------------------------------------------------------------------------- independent parts

def columns(n_real, n_syn, features):
    """The design matrix written out again from the paper's appendix, independent of the code's."""
    n_real, n_syn = np.asarray(n_real, float), np.asarray(n_syn, float)
    by_name = {"n_real": n_real, "n_syn": n_syn, "log_n_real": np.log(n_real + EPS),
               "log_n_syn": np.log(n_syn + EPS), "log_n_total": np.log(n_real + n_syn + EPS)}
    return np.column_stack([by_name[f] for f in features] + [np.ones_like(n_real)])


def ols(X, y):
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return beta


def loo_rmse_by_refitting(X, y):
    """Leave each point out, refit, predict it: the definition the hat-matrix shortcut must equal."""
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        if np.linalg.matrix_rank(X[keep]) < X.shape[1]:
            return np.inf  # without point i the model is not identified: no LOO prediction exists
        errors.append(y[i] - X[i] @ ols(X[keep], y[keep]))
    return float(np.sqrt(np.mean(np.square(errors))))


def textbook_stats(X, y):
    """R², adjusted R², AIC, BIC of Gaussian OLS with k = number of coefficients (intercept included).

    statsmodels' convention: the noise variance is not counted in k. It shifts AIC and BIC of every
    subset by the same constant, so the ranking that `best:aic` / `best:bic` use is unaffected.
    """
    n, k = X.shape
    resid = y - X @ ols(X, y)
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    llf = -n / 2 * (np.log(2 * np.pi) + np.log(rss / n) + 1)
    r2 = 1 - rss / tss
    return {"r2": r2, "adj_r2": 1 - (1 - r2) * (n - 1) / (n - k), "aic": -2 * llf + 2 * k,
            "bic": -2 * llf + k * np.log(n), "rmse": np.sqrt(rss / n), "df_resid": n - k}


def noisy_base(seed=0, n_base=1000, sd=0.4):
    """One base's measured points: base-only, 1-3x real, 1-8x synthetic, with noise."""
    n_real = n_base * np.array([1, 2, 3, 4, 1, 1, 1, 1, 1.0])
    n_syn = n_base * np.array([0, 0, 0, 0, 0.5, 1, 2, 4, 8.0])
    truth = columns(n_real, n_syn, ("log_n_real", "log_n_syn", "log_n_total")) @ [6.0, 0.4, 3.0, -30.0]
    acc = truth + np.random.default_rng(seed).normal(0, sd, truth.size)
    return n_real, n_syn, acc


# ------------------------------------------------------------------------------ LOO RMSE

@pytest.mark.parametrize("seed", [0, 1])
def test_loo_rmse_equals_refitting_without_each_point(seed):
    n_real, n_syn, acc = noisy_base(seed)
    table = all_subsets(1000, n_real, n_syn, acc, EPS)
    checked = 0
    for row in table:
        if "error" in row:
            continue
        X = columns(n_real, n_syn, row["features"])
        expected = loo_rmse_by_refitting(X, acc)
        if np.isfinite(expected):
            assert row["loo_rmse"] == pytest.approx(expected, rel=1e-7), row["features"]
            checked += 1
        else:
            assert row["loo_rmse"] == np.inf, row["features"]
    assert checked >= 20  # most subsets are identified without any single point


def test_loo_rmse_is_larger_than_the_in_sample_rmse():
    # Each left-out residual e_i / (1 - h_ii) exceeds e_i; a denominator of 1 + h_ii would shrink it.
    n_real, n_syn, acc = noisy_base(3)
    s = fit_surface(1000, n_real, n_syn, acc, eps=EPS)
    assert s.stats["loo_rmse"] > s.stats["rmse"] * 1.05


def test_loo_rmse_is_infinite_when_one_point_alone_identifies_a_coefficient():
    # The only synthetic run carries the synthetic coefficient alone: leaving it out leaves the model
    # unidentified, so there is no LOO prediction for it and the statistic must not look finite.
    n_real = np.array([100, 200, 300, 400, 100.0])
    n_syn = np.array([0, 0, 0, 0, 100.0])
    acc = np.array([50, 58, 62.5, 64, 53.0])
    s = fit_surface(100, n_real, n_syn, acc, ("log_n_real", "log_n_syn"), EPS)
    assert loo_rmse_by_refitting(columns(n_real, n_syn, s.features), acc) == np.inf
    assert s.stats["loo_rmse"] == np.inf


def test_best_loo_rmse_picks_the_subset_with_the_smallest_refit_error():
    n_real, n_syn, acc = noisy_base(0)
    table = all_subsets(1000, n_real, n_syn, acc, EPS)
    refit = {}
    for k in range(1, len(FEATURES) + 1):
        for feats in itertools.combinations(FEATURES, k):
            X = columns(n_real, n_syn, feats)
            if np.linalg.matrix_rank(X) == X.shape[1] and len(acc) > X.shape[1]:
                refit[feats] = loo_rmse_by_refitting(X, acc)
    finite = {f: v for f, v in refit.items() if np.isfinite(v)}
    assert best_subset(table, "loo_rmse") == min(finite, key=lambda f: (finite[f], len(f)))


# ------------------------------------------------------------------------------ AIC, BIC, R²

@pytest.mark.parametrize("features", [("log_n_real", "log_n_syn", "log_n_total"), ("n_real", "log_n_syn"),
                                      ("n_real", "n_syn", "log_n_real", "log_n_syn", "log_n_total")])
def test_surface_stats_match_statsmodels_and_the_textbook(features):
    n_real, n_syn, acc = noisy_base(2)
    s = fit_surface(1000, n_real, n_syn, acc, features, EPS)
    X = columns(n_real, n_syn, features)
    book = textbook_stats(X, acc)
    ref = sm.OLS(acc, X).fit()
    np.testing.assert_allclose(s.beta, ols(X, acc), rtol=1e-6, atol=1e-8)
    for key, sm_value in [("r2", ref.rsquared), ("adj_r2", ref.rsquared_adj), ("aic", ref.aic),
                          ("bic", ref.bic), ("df_resid", ref.df_resid)]:
        assert s.stats[key] == pytest.approx(sm_value, rel=1e-9), key
        assert s.stats[key] == pytest.approx(book[key], rel=1e-9), key
    assert s.stats["rmse"] == pytest.approx(book["rmse"], rel=1e-9)
    assert s.n_points == len(acc)
    np.testing.assert_allclose(s.residuals, acc - X @ ols(X, acc), atol=1e-8)
    # Predictions are the fitted equation, at the points and between them.
    np.testing.assert_allclose(s.predict(n_real, n_syn), X @ s.beta, rtol=1e-12)
    np.testing.assert_allclose(s.predict(1500.0, 700.0), columns([1500.0], [700.0], features) @ s.beta, rtol=1e-12)


def test_best_aic_and_best_bic_follow_their_own_formula():
    # 25 points on which the two criteria disagree (AIC keeps 5 features, BIC the paper's 3, by
    # margins of 0.8 and 1.6), so reporting one as the other changes the choice.
    n_real = 1000 * np.r_[np.linspace(1, 4, 13), np.ones(12)]
    n_syn = 1000 * np.r_[np.zeros(13), np.geomspace(0.25, 16, 12)]
    truth = columns(n_real, n_syn, ("log_n_real", "log_n_syn", "log_n_total")) @ [6.0, 0.4, 3.0, -30.0]
    acc = truth + np.random.default_rng(16).normal(0, 0.3, truth.size)
    table = all_subsets(1000, n_real, n_syn, acc, EPS)
    chosen = {}
    for crit in ("aic", "bic", "r2", "adj_r2"):
        values = {}
        for k in range(1, len(FEATURES) + 1):
            for feats in itertools.combinations(FEATURES, k):
                X = columns(n_real, n_syn, feats)
                if np.linalg.matrix_rank(X) == X.shape[1] and len(acc) > X.shape[1]:
                    values[feats] = textbook_stats(X, acc)[crit]
        sign = -1 if crit in ("r2", "adj_r2") else 1
        chosen[crit] = min(values, key=lambda f: (sign * values[f], len(f)))
        assert best_subset(table, crit) == chosen[crit], crit
    assert chosen["aic"] != chosen["bic"]


def test_best_subset_ties_go_to_fewer_features_and_unfitted_rows_are_skipped():
    table = [{"features": ("n_real", "n_syn"), "aic": 1.0, "r2": 0.9},
             {"features": ("n_real",), "aic": 1.0, "r2": 0.9},
             {"features": ("log_n_syn",), "aic": 0.5, "r2": 0.99, "error": "cannot fit"},
             {"features": ("log_n_real",), "aic": np.nan, "r2": np.nan}]
    assert best_subset(table, "aic") == ("n_real",)
    assert best_subset(table, "r2") == ("n_real",)
    table[1]["r2"] = 0.95
    assert best_subset(table, "r2") == ("n_real",)
    table[1]["aic"] = 2.0
    assert best_subset(table, "aic") == ("n_real", "n_syn")
    with pytest.raises(FitError, match="no feature subset"):
        best_subset([{"features": ("n_real",), "aic": 1.0, "error": "x"}], "aic")


# ----------------------------------------------------------------------- extrapolation flags

B_TRUE = {"log_n_real": 6.0, "log_n_syn": 0.4, "log_n_total": 3.0}
ROOT_R2 = 2740.909727935188  # Acc(1000, x) = Acc(3000, 0) on B_TRUE, solved by brentq


def true_acc(n_real, n_syn):
    return float(columns([n_real], [n_syn], list(B_TRUE))[0] @ [*B_TRUE.values(), -30.0])


def exact_runs(bases=(1000,), real=(1, 2, 3), syn=(1, 2, 4, 8)):
    """Noise-free published-style runs on B_TRUE; `syn` entries are multiples of n_base or counts."""
    pts = []
    for b in bases:
        pts += [(b, "real", int(r * b), true_acc(b * (1 + r), 0)) for r in (0, *real)]
        pts += [(b, "syn", int(s * b) if s < 100 else int(s), true_acc(b, int(s * b) if s < 100 else int(s)))
                for s in syn]
    return make_runs(pts, n_total=50_000)


def kinds(warnings):
    """Which extrapolation flags a list of warnings raises."""
    out = set()
    for w in warnings:
        if "extrapolation" in w:
            out.add("real" if "real images" in w else "syn" if "synthetic" in w else "n_base")
    return out


def test_root_of_the_reference_surface():
    from scipy.optimize import brentq
    root = brentq(lambda x: true_acc(1000, x) - true_acc(3000, 0), 0, 1e5, xtol=1e-10)
    assert root == pytest.approx(ROOT_R2, rel=1e-9)


def test_tuple_real_ratio_flag_on_both_sides_of_the_largest_measured_ratio():
    a = analyse(exact_runs(), "Toy", "Net", "closed", "EDM", grid={1000: [3, 3.03]}, n_boot=0)
    at, beyond = a.tuples
    assert at["ratio"] == 3 and not any("real ratio" in e for e in at["extrapolation"])
    assert beyond["extrapolated"] and any("real ratio" in e for e in beyond["extrapolation"])


@pytest.mark.parametrize("largest_syn, flagged", [(int(ROOT_R2 * 0.99), True), (int(ROOT_R2 * 1.01) + 1, False)])
def test_tuple_synthetic_flag_on_both_sides_of_the_largest_measured_amount(largest_syn, flagged):
    a = analyse(exact_runs(syn=(1, 2, largest_syn)), "Toy", "Net", "closed", "EDM", grid={1000: [2]}, n_boot=0)
    (t,) = a.tuples
    assert t["n_syn_added"] == pytest.approx(ROOT_R2, rel=1e-6)
    assert t["extrapolated"] is flagged
    assert any("n_syn_added beyond" in e for e in t["extrapolation"]) is flagged


def test_answer_flags_real_amounts_beyond_the_measured_range_only():
    a = analyse(exact_runs(), "Toy", "Net", "closed", "EDM", grid={1000: [1, 2, 3]}, n_boot=0)
    assert "real" not in kinds(a.syn_for_real(1000, 3000)["warnings"])
    assert "real" in kinds(a.syn_for_real(1000, 3030)["warnings"])
    assert "real" not in kinds(a.syn_for_real(1000, 1000)["warnings"])


def test_answer_flags_synthetic_amounts_beyond_the_measured_range_only():
    a = analyse(exact_runs(), "Toy", "Net", "closed", "EDM", grid={1000: [1, 2, 3]}, n_boot=0)
    assert "syn" not in kinds(a.real_for_syn(1000, 8000)["warnings"])
    assert "syn" in kinds(a.real_for_syn(1000, 8080)["warnings"])
    # The synthetic amount a syn_for_real answer needs is checked as well.
    low = analyse(exact_runs(syn=(1, 2, int(ROOT_R2 * 0.99))), "Toy", "Net", "closed", "EDM",
                  grid={1000: [1, 2]}, n_boot=0)
    high = analyse(exact_runs(syn=(1, 2, int(ROOT_R2 * 1.01) + 1)), "Toy", "Net", "closed", "EDM",
                   grid={1000: [1, 2]}, n_boot=0)
    ans_low, ans_high = low.syn_for_real(1000, 2000), high.syn_for_real(1000, 2000)
    assert ans_low["surface"] == pytest.approx(ROOT_R2, rel=1e-6) == ans_high["surface"]
    assert "syn" in kinds(ans_low["warnings"]) and "syn" not in kinds(ans_high["warnings"])


def test_answer_flags_n_base_outside_the_bases_of_the_eq1_fit():
    a = analyse(exact_runs(bases=(1000, 5000)), "Toy", "Net", "closed", "EDM",
                grid={1000: [1, 2, 3], 5000: [1, 2, 3]}, n_boot=0)
    assert sorted({t["n_base"] for t in a.tuples}) == [1000, 5000]
    for n_base, outside in [(990, True), (1000, False), (3000, False), (5000, False), (5050, True)]:
        assert ("n_base" in kinds(a.syn_for_real(n_base, 100)["warnings"])) is outside, n_base
    # Between bases only Eq. 1 answers, and says so.
    between = a.syn_for_real(3000, 100)
    assert "surface" not in between and any("only Eq. 1" in w for w in between["warnings"])


# ------------------------------------------------------------- Eq. 12 roots on built surfaces

def built_surface(n_base, coef, syn_profile_level):
    """A surface fitted to exact data, with the log_n_real coefficient chosen so that
    Acc(n_base * 2, 0) equals Acc(n_base, x) at x = syn_profile_level: the root for ratio 1 is known.

    coef maps the synthetic-side features (n_syn, log_n_syn, log_n_total) to coefficients.
    """
    def syn_part(n_real, n_syn):
        return sum(c * columns([n_real], [n_syn], [f])[0, 0] for f, c in coef.items())
    gain = syn_part(n_base, syn_profile_level) - syn_part(n_base, 0)
    real_step = np.log(2 * n_base + EPS) - np.log(n_base + EPS)
    real_total = syn_part(2 * n_base, 0) - syn_part(n_base, 0)
    coef_real = (gain - real_total) / real_step
    feats = ("log_n_real", *coef)
    beta = np.array([coef_real, *coef.values(), 50.0])

    def acc(n_real, n_syn):
        return columns(np.atleast_1d(n_real), np.atleast_1d(n_syn), feats) @ beta

    n_real = n_base * np.array([1, 1.5, 2, 3, 4, 1, 1, 1, 1, 1, 1, 1])
    n_syn = n_base * np.array([0, 0, 0, 0, 0, 0.01, 0.1, 0.5, 1, 4, 16, 64])
    s = fit_surface(n_base, n_real, n_syn, acc(n_real, n_syn), feats, EPS)
    np.testing.assert_allclose(s.beta, beta, rtol=1e-6, atol=1e-6)
    return s, acc


@pytest.mark.parametrize("fraction", [0.5, 0.98, 0.999])
def test_single_crossing_near_the_bracket_end_is_found(fraction):
    n_base = 100
    s, acc = built_surface(n_base, {"log_n_syn": 1.0}, fraction * 100 * n_base)
    roots, status = equivalence_tuples(s, [1.0])
    assert status[0, 0] == "ok"
    assert roots[0, 0] == pytest.approx(fraction * 100 * n_base, rel=1e-7)


@pytest.mark.parametrize("fraction", [1.001, 1.02, 3.0])
def test_crossing_just_past_the_bracket_end_is_no_crossing(fraction):
    n_base = 100
    s, _ = built_surface(n_base, {"log_n_syn": 1.0}, fraction * 100 * n_base)
    roots, status = equivalence_tuples(s, [1.0])
    assert status[0, 0] == "no_crossing" and np.isnan(roots[0, 0])


@pytest.mark.parametrize("x1", [0.05, 2.0, 30.0])
def test_single_crossing_very_near_zero_is_found_accurately(x1):
    n_base = 1000  # bracket [0, 100 000]; these roots are far below its first scan step
    s, _ = built_surface(n_base, {"log_n_syn": 1.0}, x1)
    roots, status = equivalence_tuples(s, [1.0])
    assert status[0, 0] == "ok"
    assert roots[0, 0] == pytest.approx(x1, rel=1e-4, abs=2e-6)


def test_no_gain_on_both_sides_of_zero():
    s, acc = built_surface(100, {"log_n_syn": 1.0}, 500.0)
    roots, status = equivalence_tuples(s, [0.0, 1e-6, 1.0])
    assert list(status[0]) == ["no_gain", "ok", "ok"]
    assert np.isnan(roots[0, 0]) and 0 <= roots[0, 1] < 1e-3 and roots[0, 2] == pytest.approx(500, rel=1e-7)
    # Real images that lower accuracy: no gain to match at any ratio.
    n_real = np.array([100, 200, 300, 100, 100, 100.0])
    n_syn = np.array([0, 0, 0, 100, 200, 400.0])
    X = columns(n_real, n_syn, ("log_n_real", "log_n_syn"))
    worse = fit_surface(100, n_real, n_syn, X @ [-2.0, 1.0, 50.0], ("log_n_real", "log_n_syn"), EPS)
    roots, status = equivalence_tuples(worse, [1.0, 2.0])
    assert list(status[0]) == ["no_gain", "no_gain"] and np.isnan(roots).all()


def test_bump_near_zero_that_turns_back_is_found():
    # Acc(100, x) rises until x = 50, then falls for good: it meets the target at x = 15 going up
    # and near 140 going down. A coarse scan of the 10 000-image bracket steps over the bump.
    s, acc = built_surface(100, {"log_n_syn": 1.0, "log_n_total": -3.0}, 15.0)
    target = acc(200, 0)[0]
    assert acc(100, 50)[0] > target > acc(100, 625)[0] and acc(100, 10_000)[0] < target
    roots, status = equivalence_tuples(s, [1.0])
    assert status[0, 0] == "ok"
    assert roots[0, 0] == pytest.approx(15.0, rel=1e-6)


def test_two_upward_crossings_give_the_first():
    # With a linear synthetic term the profile rises, dips from x = 54 to x = 1846, then rises
    # again: it reaches the target at x = 12, falls below it, and reaches it again near 5 000.
    s, acc = built_surface(100, {"n_syn": 0.001, "log_n_syn": 1.0, "log_n_total": -3.0}, 12.0)
    target = acc(200, 0)[0]
    assert acc(100, 1000)[0] < target < acc(100, 9000)[0]
    roots, status = equivalence_tuples(s, [1.0])
    assert status[0, 0] == "ok"
    assert roots[0, 0] == pytest.approx(12.0, rel=1e-6)


def test_roots_agree_across_many_draws_and_the_reference():
    # The shared scan (all draws on one grid) and a single solve give the same first crossing.
    s, _ = built_surface(100, {"n_syn": 0.001, "log_n_syn": 1.0, "log_n_total": -3.0}, 12.0)
    draws = np.repeat(s.beta[None], 4, axis=0)
    draws[1:, -1] += np.array([0.0, 0.2, -0.2])  # shift the intercept: the crossing itself is unchanged
    roots, status = equivalence_tuples(s, [1.0], draws)
    assert (status == "ok").all()
    np.testing.assert_allclose(roots[:, 0], 12.0, rtol=1e-6)


def test_bump_inside_the_first_scan_step_is_found():
    # Synthetic images help up to about 250 and hurt after; the target is met at 100 going up.
    s, acc = built_surface(25_000, {"log_n_syn": 1.0, "log_n_total": -101.0}, 100.0)
    target = acc(50_000, 0)[0]
    assert acc(25_000, 250)[0] > target > acc(25_000, 2_500)[0]
    roots, status = equivalence_tuples(s, [1.0])
    assert status[0, 0] == "ok"
    assert roots[0, 0] == pytest.approx(100.0, rel=1e-6)


# ============================================================ what readers get

def toy_runs(bases=(1000, 5000), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    pts = []
    for b in bases:
        pts += [(b, "real", r * b, true_acc(b * (1 + r), 0) + rng.normal(0, noise)) for r in (0, 1, 2, 3)]
        pts += [(b, "syn", s * b, true_acc(b, s * b) + rng.normal(0, noise)) for s in (1, 2, 4, 8)]
    return make_runs(pts, n_total=20_000)


def eq1_here(n_base, n_real_added, c1, c2, tau):
    return n_base * c1 ** (tau * n_base) * (c2 ** (n_real_added / n_base) - 1)


# ------------------------------------------------------------------------------ the surface

def test_formula_prints_each_coefficient_with_its_term():
    n_real = np.array([1000, 2000, 3000, 4000, 1000, 1000, 1000, 1000.0])
    n_syn = np.array([0, 0, 0, 0, 1000, 2000, 4000, 8000.0])
    acc = np.array([true_acc(r, s) for r, s in zip(n_real, n_syn)])
    s = fit_surface(1000, n_real, n_syn, acc, eps=1e-3)
    assert s.formula() == "Acc = +6·log(n_real+eps) +0.4·log(n_syn+eps) +3·log(n_real+n_syn+eps) -30"
    lin = fit_surface(1000, n_real, n_syn, 50 + 0.002 * n_real - 0.0005 * n_syn, ("n_real", "n_syn"))
    assert lin.formula() == "Acc = +0.002·n_real -0.0005·n_syn +50"


def test_a_surface_keeps_its_own_eps():
    n_real = np.array([10, 20, 30, 40, 10, 10, 10.0])
    n_syn = np.array([0, 0, 0, 0, 1, 2, 4.0])
    feats = ("log_n_real", "log_n_syn")
    acc = 2 * np.log(n_real + 0.5) + 1.5 * np.log(n_syn + 0.5) + 40
    s = fit_surface(10, n_real, n_syn, acc, feats, eps=0.5)
    assert s.eps == 0.5 and s.features == feats and s.n_base == 10
    np.testing.assert_allclose(s.beta, [2, 1.5, 40], atol=1e-9)
    assert s.predict(25.0, 3.0) == pytest.approx(2 * np.log(25.5) + 1.5 * np.log(3.5) + 40, abs=1e-9)
    assert s.stats["r2"] == pytest.approx(1.0)


# ----------------------------------------------------------------------- answers and intervals

@pytest.fixture(scope="module")
def fitted():
    # The plain bootstrap (over seeds, here residuals) is what these tests pin; the default adds
    # point resampling, tested in test_analysis_coverage.py.
    return analyse(toy_runs(noise=0.3), "Toy", "Net", "closed", "EDM", n_boot=200, seed=1, bootstrap="seeds")


def test_answers_follow_eq1_and_its_inverse(fitted):
    a = fitted
    assert a.c1 is not None and a.tau == pytest.approx(10 / 20_000)
    fwd = a.syn_for_real(2000, 1500)
    assert fwd["eq1"] == pytest.approx(eq1_here(2000, 1500, a.c1, a.c2, a.tau), rel=1e-9)
    back = a.real_for_syn(2000, fwd["eq1"])
    assert back["eq1"] == pytest.approx(1500, rel=1e-9)
    assert fwd["n_real_added"] == 1500 and back["n_syn_added"] == fwd["eq1"]
    assert fwd["direction"] == "syn_for_real" and back["direction"] == "real_for_syn"
    assert fwd["n_base"] == 2000


def test_answers_on_a_base_solve_its_surface(fitted):
    a = fitted
    s = a.bases[1000].surface
    fwd = a.syn_for_real(1000, 2000)
    assert s.predict(1000, fwd["surface"]) == pytest.approx(s.predict(3000, 0), abs=1e-6)
    back = a.real_for_syn(1000, 3000)
    assert s.predict(1000 + back["surface"], 0) == pytest.approx(s.predict(1000, 3000), abs=1e-6)


def test_intervals_have_the_asked_level_around_the_answer(fitted):
    a = fitted
    assert a.draws.n_boot == 200 and a.draws.method == "residuals" and 180 <= a.draws.n_ok <= 200
    assert a.level == 0.95
    for lo_hi, point in [(a.c1_ci, a.c1), (a.c2_ci, a.c2)]:
        assert lo_hi[0] < point < lo_hi[1]
    ok = a.draws.ok
    np.testing.assert_allclose(a.c1_ci, np.quantile(a.draws.c1[ok], [0.025, 0.975]))
    np.testing.assert_allclose(a.c2_ci, np.quantile(a.draws.c2[ok], [0.025, 0.975]))
    ans = a.syn_for_real(1000, 2000)
    assert ans["eq1_ci"][0] < ans["eq1"] < ans["eq1_ci"][1]
    assert ans["surface_ci"][0] < ans["surface"] < ans["surface_ci"][1]
    # The draws' own quantiles, not interpolated between draws (a draw without a fit or an answer is an
    # open end, never a gap: engine.analysis.answers); every draw fitted here.
    draws = eq1_here(1000, 2000, a.draws.c1[ok], a.draws.c2[ok], a.tau)
    draws = np.concatenate([draws, np.full(int((~ok).sum()), np.inf)])
    expected = np.quantile(draws, 0.025, method="lower"), np.quantile(draws, 0.975, method="higher")
    if np.isfinite(expected[1]):
        np.testing.assert_allclose(ans["eq1_ci"], expected, rtol=1e-9)
    else:
        assert ans["eq1_ci"][1] is None and ans["eq1_ci"][0] == pytest.approx(expected[0], rel=1e-9)


def test_a_lower_level_gives_a_narrower_interval():
    runs = toy_runs(noise=0.3)
    wide = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=100, seed=2, level=0.99, bootstrap="seeds")
    narrow = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=100, seed=2, level=0.5, bootstrap="seeds")
    assert wide.c1 == narrow.c1
    assert wide.c1_ci[0] < narrow.c1_ci[0] < narrow.c1_ci[1] < wide.c1_ci[1]
    w, n = wide.syn_for_real(1000, 1000), narrow.syn_for_real(1000, 1000)
    assert w["surface_ci"][0] < n["surface_ci"][0] < n["surface_ci"][1] < w["surface_ci"][1]


def test_no_bootstrap_no_intervals():
    a = analyse(toy_runs(noise=0.3), "Toy", "Net", "closed", "EDM", n_boot=0)
    assert a.c1 is not None and a.c1_ci is None and a.c2_ci is None and a.draws is None
    ans = a.syn_for_real(1000, 1000)
    assert "eq1_ci" not in ans and "surface_ci" not in ans and "eq1" in ans


def test_questions_refuse_a_bad_base_or_amount(fitted):
    with pytest.raises(FitError, match="-5"):
        fitted.syn_for_real(1000, -5)
    with pytest.raises(FitError, match="0"):
        fitted.real_for_syn(0, 100)
    assert fitted.syn_for_real(1000, 0)["n_real_added"] == 0


def test_no_surface_at_a_base_without_runs_says_so(fitted):
    ans = fitted.syn_for_real(3000, 1000)
    assert ans["surface_error"] == "no fitted surface at n_base 3000" and "surface" not in ans
    assert "eq1" in ans


def test_answers_without_eq1_carry_its_reason():
    # Synthetic runs that never reach the real gains: no tuples, so Eq. 1 is not fitted and the
    # answer carries both reasons instead of numbers.
    pts = [(100, "real", 0, 50.0), (100, "real", 100, 60.0), (100, "real", 200, 65.0),
           (100, "syn", 100, 50.1), (100, "syn", 200, 50.15), (100, "syn", 400, 50.2)]
    a = analyse(make_runs(pts), "Toy", "Net", "closed", "EDM", features=("log_n_real", "log_n_syn"),
                grid={100: [1, 2, 3]}, n_boot=0)
    ans = a.syn_for_real(100, 100)
    assert [(d["n_base"], d["ratio"], d["n_real_added"]) for d in a.dropped] == [(100, 1, 100), (100, 2, 200), (100, 3, 300)]
    assert ans["eq1_error"] == a.eq1_error and ans.get("eq1") is None
    assert "more than 100 x n_base" in ans["surface_error"] and ans["surface"] is None


# --------------------------------------------------------------------------------- JSON form

def test_to_dict_is_json_and_carries_every_fitted_value(fitted):
    a = fitted
    d = json.loads(json.dumps(a.to_dict()))
    for key in ("dataset", "classifier", "augmentation", "generator", "eps", "tau", "n_total", "c1", "c2",
                "level", "eq1_rmse", "eq1_error", "warnings"):
        assert d[key] == getattr(a, key), key
    assert d["features"] == list(a.features)
    assert d["c1_ci"] == list(a.c1_ci) and d["c2_ci"] == list(a.c2_ci)
    assert d["tuples"] == a.tuples and d["dropped"] == a.dropped
    assert [s["n_base"] for s in d["surfaces"]] == [1000, 5000]
    for s in d["surfaces"]:
        fit = a.bases[s["n_base"]]
        assert s["beta"] == fit.surface.beta.tolist() and s["formula"] == fit.surface.formula()
        assert s["stats"] == fit.surface.stats and s["n_points"] == fit.surface.n_points == 8
        assert s["error"] is None and s["noise_check"] == fit.noise
    assert d["bootstrap"] == {"n_boot": 200, "n_ok": a.draws.n_ok, "method": "residuals"}


def test_to_dict_of_a_failed_base_and_fit():
    pts = [(100, "real", 0, 50.0), (100, "real", 100, 60.0), (100, "syn", 100, 55.0)]
    a = analyse(make_runs(pts), "Toy", "Net", "closed", "EDM", grid={100: [1]}, n_boot=0)
    d = a.to_dict()
    (s,) = d["surfaces"]
    assert s["beta"] is None and s["formula"] is None and s["stats"] is None
    assert s["n_points"] == 3 and "at least" in s["error"]
    assert d["c1"] is None and d["c1_ci"] is None and d["c2_ci"] is None and "no equivalence" in d["eq1_error"]


# ------------------------------------------------------------------------- settings and IR

def two_augmentations():
    closed = [(b, "real", 0, 60.0 + b / 1000) for b in (1000, 2000, 3000)]
    closed += [(1000, "syn", 1000, 64.0), (2000, "syn", 2000, 64.0), (3000, "syn", 3000, 66.0)]
    open_ = [(1000, "syn", 1000, 63.0), (2000, "syn", 2000, 62.0), (3000, "syn", 1500, 63.0)]
    runs = pd.concat([make_runs(closed, augmentation="closed", generator="EDM"),
                      make_runs(open_, augmentation="open", generator="SD")], ignore_index=True)
    other = make_runs([(1000, "syn", 1000, 99.0)], dataset="Other", augmentation="closed", generator=None)
    other["generator"] = np.nan  # a missing generator as a store query returns it
    return pd.concat([runs, other], ignore_index=True)


def test_settings_lists_each_synthetic_setting_once():
    got = settings(two_augmentations())
    assert sorted(got, key=str) == sorted([("Toy", "Net", "closed", "EDM"), ("Toy", "Net", "open", "SD"),
                                           ("Other", "Net", "closed", None)], key=str)


def test_improvement_ratio_is_closed_gain_over_open_gain_at_one_to_one():
    ir = improvement_ratio(two_augmentations(), "Toy", "Net")
    # n_base 2000: the open run gains nothing, so IR is undefined (NaN); 3000 has no 1:1 open run.
    assert ir.n_base.tolist() == [1000, 2000] and np.isnan(ir.IR.iloc[1]) and ir.gain_open.iloc[1] == 0
    row = ir.iloc[0]
    assert row.acc_base == pytest.approx(61.0)
    assert row.gain_closed == pytest.approx(3.0) and row.gain_open == pytest.approx(2.0)
    assert row.IR == pytest.approx(1.5)
    assert row.generator_closed == "EDM" and row.generator_open == "SD"
    assert {"source", "n_base", "acc_base", "gain_closed", "generator_closed", "gain_open", "generator_open",
            "IR", "IR_lo", "IR_hi"} <= set(ir.columns)


# ------------------------------------------------------------- feature choice and the grid

def test_best_criterion_through_analyse_picks_the_subset_best_subset_picks():
    runs = toy_runs(noise=0.3)
    a = analyse(runs, "Toy", "Net", "closed", "EDM", features="best:bic", n_boot=0)
    label, chosen = a.features
    assert label == "best:bic" and set(chosen) == {"1000", "5000"}
    for b in (1000, 5000):
        pts = a.bases[b].points
        table = all_subsets(b, b + pts.n_real_added, pts.n_syn_added, pts.acc, EPS)
        assert a.bases[b].surface.features == best_subset(table, "bic")
        assert chosen[str(b)] == list(best_subset(table, "bic"))
    by_r2 = analyse(runs, "Toy", "Net", "closed", "EDM", features="best:r2", n_boot=0)
    assert len(by_r2.bases[1000].surface.features) == 5  # R² never prefers fewer terms


def test_features_as_text_are_a_comma_list():
    a = analyse(toy_runs(), "Toy", "Net", "closed", "EDM", features="log_n_real,log_n_syn,", n_boot=0)
    assert a.features == ("log_n_real", "log_n_syn")
    assert a.bases[1000].surface.features == ("log_n_real", "log_n_syn")


def test_all_subsets_uses_the_given_eps_and_records_why_a_subset_fails():
    n_real, n_syn, acc = noisy_base(0)
    table = all_subsets(1000, n_real, n_syn, acc, 0.5)
    row = next(r for r in table if r["features"] == ("log_n_real", "log_n_syn"))
    assert row["aic"] == pytest.approx(fit_surface(1000, n_real, n_syn, acc, row["features"], 0.5).stats["aic"])
    assert row["aic"] != pytest.approx(fit_surface(1000, n_real, n_syn, acc, row["features"], EPS).stats["aic"])
    few = all_subsets(1000, n_real[:4], n_syn[:4], acc[:4], EPS)  # no synthetic runs, 4 points
    failed = [r for r in few if "error" in r]
    assert failed and all(isinstance(r["error"], str) and "n_base 1000" in r["error"] for r in failed)


def test_default_grid_uses_bases_with_real_and_synthetic_runs():
    pts = [(b, kind, s * b, true_acc(b * (1 + s) if kind == "real" else b, s * b if kind == "syn" else 0))
           for b in (1000,) for kind, s in [("real", 0), ("real", 1), ("real", 2), ("real", 3),
                                            ("syn", 1), ("syn", 2), ("syn", 4), ("syn", 8)]]
    # n_base 2000 has synthetic runs and a base-only run but no real additions: no grid there.
    pts += [(2000, "real", 0, true_acc(2000, 0))] + [(2000, "syn", s * 2000, true_acc(2000, s * 2000)) for s in (1, 2)]
    a = analyse(make_runs(pts, dataset="Unlisted"), "Unlisted", "Net", "closed", "EDM", n_boot=0)
    assert sorted((t["n_base"], t["ratio"]) for t in a.tuples) == [(1000, 1.0), (1000, 2.0), (1000, 3.0)]
    assert a.bases[1000].ratios == [1, 2, 3] and a.bases[2000].ratios == []
    assert "no real-augmentation runs" in a.bases[2000].error and a.bases[2000].surface is None


def test_generator_none_pools_generators_and_a_name_selects_one():
    pts = [(1000, "real", r * 1000, true_acc(1000 * (1 + r), 0)) for r in (0, 1, 2, 3)]
    edm = [(1000, "syn", s * 1000, true_acc(1000, s * 1000)) for s in (1, 2, 4, 8)]
    other = [(1000, "syn", s * 1000, true_acc(1000, s * 1000) - 5) for s in (1, 2, 4, 8)]
    runs = pd.concat([make_runs(pts + edm, generator="EDM"), make_runs(other, generator="DiT")], ignore_index=True)
    only = analyse(runs, "Toy", "Net", "closed", "EDM", grid={1000: [1]}, n_boot=0)
    pooled = analyse(runs, "Toy", "Net", "closed", None, grid={1000: [1]}, n_boot=0)
    assert len(only.bases[1000].points) == 8 and len(pooled.bases[1000].points) == 8
    assert only.bases[1000].points.acc.max() > pooled.bases[1000].points.acc.max()
    assert only.tuples[0]["n_syn_added"] == pytest.approx(422.33459, rel=1e-5)


# ------------------------------------------------------------------ seeds: noise gate, bootstrap

def seeded_runs(gains, base=(70.0, 71.0, 72.0), n_base=200, seed_offsets=None):
    """Per-seed runs at one base: real additions help clearly, synthetic ones by `gains` per seed."""
    pts = [(n_base, "real", 0, list(base))]
    pts += [(n_base, "real", r * n_base, [b + 5 * r for b in base]) for r in (1, 2, 3)]
    pts += [(n_base, "syn", s * n_base, [b + g * np.log2(2 * s) for b, g in zip(base, gains)])
            for s in (1, 2, 4, 8)]
    return make_runs(pts, seeds=tuple(range(len(base))))


def test_paired_gains_and_the_one_sided_test_are_computed_per_seed():
    from scipy import stats as sps
    gains = (1.0, 2.0, 0.5)
    a = analyse(seeded_runs(gains), "Toy", "Net", "closed", "EDM", grid={200: [1, 2, 3]}, n_boot=0)
    fit = a.bases[200]
    table = fit.gains.sort_values("n_syn_added")
    assert table.n_syn_added.tolist() == [200, 400, 800, 1600]
    per_point = np.array([[g * np.log2(2 * s) for g in gains] for s in (1, 2, 4, 8)])
    np.testing.assert_allclose(table.gain_mean, per_point.mean(axis=1))
    np.testing.assert_allclose(table.gain_sd, per_point.std(axis=1, ddof=1))
    assert table.n_pairs.tolist() == [3, 3, 3, 3]
    per_seed = per_point.mean(axis=0)
    expected_p = sps.ttest_1samp(per_seed, 0.0, alternative="greater").pvalue
    assert fit.noise == {"tested": True, "p_value": pytest.approx(expected_p), "mean_gain": pytest.approx(per_seed.mean()),
                         "seeds": 3, "significant": bool(expected_p < 0.05)}


def test_noise_gate_at_its_edges():
    # Identical gains in every seed: no spread, so the sign alone decides.
    up = analyse(seeded_runs((1.0, 1.0, 1.0)), "Toy", "Net", "closed", "EDM", grid={200: [1]}, n_boot=0)
    assert up.bases[200].noise["p_value"] == 0.0 and up.bases[200].noise["significant"]
    flat = analyse(seeded_runs((0.0, 0.0, 0.0)), "Toy", "Net", "closed", "EDM", grid={200: [1]}, n_boot=0)
    assert flat.bases[200].noise["p_value"] == 1.0 and not flat.bases[200].noise["significant"]
    assert [(d["n_base"], d["ratio"], d["n_real_added"]) for d in flat.dropped] == [(200, 1, 200)]
    # Two seeds are enough to test; one is not.
    two = analyse(seeded_runs((1.0, 1.2), base=(70.0, 71.0)), "Toy", "Net", "closed", "EDM", grid={200: [1]}, n_boot=0)
    assert two.bases[200].noise["tested"] and two.bases[200].noise["seeds"] == 2
    one = analyse(seeded_runs((1.0,), base=(70.0,)), "Toy", "Net", "closed", "EDM", grid={200: [1]}, n_boot=0)
    assert one.bases[200].noise["tested"] is False and "one seed" in one.bases[200].noise["reason"]
    assert one.bases[200].gains.n_pairs.tolist() == [1, 1, 1, 1] and one.bases[200].gains.gain_sd.isna().all()
    published = analyse(toy_runs(), "Toy", "Net", "closed", "EDM", n_boot=0)
    assert published.bases[1000].noise["tested"] is False and published.bases[1000].gains is None


def test_noise_gate_needs_a_base_only_run():
    runs = seeded_runs((1.0, 2.0, 0.5))
    runs = runs[~((runs.n_real_added == 0) & (runs.n_syn_added == 0))]
    a = analyse(runs, "Toy", "Net", "closed", "EDM", grid={200: [1]}, n_boot=0)
    assert a.bases[200].noise == {"tested": False, "reason": "needs a base-only run and synthetic runs"}
    assert a.bases[200].gains is None


def test_seed_bootstrap_draws_every_seed():
    # Seed 0 sits 3 points above the others at every point: the bootstrap mean of the intercept
    # must sit between the seeds, near the fitted one, whichever seeds a draw takes.
    gains = (5.0, 7.5, 6.0)
    a = analyse(seeded_runs(gains, base=(73.0, 70.0, 70.0)), "Toy", "Net", "closed", "EDM",
                grid={200: [1, 2, 3]}, n_boot=400, seed=3, bootstrap="resample")
    fit = a.bases[200]
    assert fit.boot_betas.shape == (400, 4)
    pred = fit.boot_betas @ fit.surface.X[0]       # the base-only point in every draw
    assert pred.mean() == pytest.approx(float(fit.surface.predict(200, 0)), abs=0.3)
    assert pred.max() - pred.min() > 2.5  # draws of only seed 0 and draws without it both occur
    # Two seeds are resampled too: a draw is one of three seed mixes, so only three surfaces occur.
    two = analyse(seeded_runs((5.0, 7.0), base=(70.0, 71.0)), "Toy", "Net", "closed", "EDM",
                  grid={200: [1, 2, 3]}, n_boot=50, bootstrap="resample")
    assert len(np.unique(np.round(two.bases[200].boot_betas[:, -1], 6))) == 3


def test_residual_bootstrap_spread_matches_ols_standard_errors():
    n_real, n_syn, acc = noisy_base(4, sd=0.5)
    pts = [(1000, "real" if s == 0 else "syn", int(r - 1000 if s == 0 else s), a)
           for r, s, a in zip(n_real, n_syn, acc)]
    a = analyse(make_runs(pts), "Toy", "Net", "closed", "EDM", grid={1000: [1]}, n_boot=3000, seed=5,
                bootstrap="seeds")
    fit = a.bases[1000]
    X = columns(n_real, n_syn, fit.surface.features)
    ref = sm.OLS(acc, X).fit()
    np.testing.assert_allclose(fit.boot_betas.std(axis=0), ref.bse, rtol=0.12)
    np.testing.assert_allclose(fit.boot_betas.mean(axis=0), ref.params, atol=0.2 * ref.bse.max())


# ------------------------------------------------------------------ selection and edges

def test_analyse_selects_its_setting_and_drops_excluded_runs():
    runs = toy_runs()
    base = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=0)
    noise = make_runs([(1000, "real", 1000, 10.0), (1000, "syn", 1000, 10.0)], classifier="Other")
    noise2 = make_runs([(1000, "real", 1000, 10.0), (1000, "syn", 1000, 10.0)], dataset="Else")
    mixed = analyse(pd.concat([runs, noise, noise2], ignore_index=True), "Toy", "Net", "closed", "EDM", n_boot=0)
    assert mixed.c1 == base.c1 and mixed.tuples == base.tuples
    dropped = runs[(runs.n_base == 1000) & (runs.n_syn_added == 8000)].run_id
    fewer = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=0, exclude_run_ids=list(dropped))
    assert len(fewer.bases[1000].points) == 7 and len(fewer.bases[5000].points) == 8
    with pytest.raises(FitError, match="Nope"):
        analyse(runs, "Toy", "Net", "closed", "Nope", n_boot=0)
    with pytest.raises(FitError, match="open"):
        analyse(runs, "Toy", "Net", "open", "EDM", n_boot=0)


def test_open_set_runs_are_analysed_like_closed_ones():
    closed = toy_runs()
    opened = closed.assign(augmentation=closed.augmentation.replace("closed", "open"))
    a = analyse(closed, "Toy", "Net", "closed", "EDM", n_boot=0)
    b = analyse(opened, "Toy", "Net", "open", "EDM", n_boot=0)
    assert b.augmentation == "open" and b.tuples == a.tuples and b.c1 == a.c1


def test_default_bootstrap_is_200_draws_from_seed_0():
    runs = toy_runs(noise=0.3)
    a = analyse(runs, "Toy", "Net", "closed", "EDM")
    b = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=200, seed=0)
    assert a.draws.n_boot == 200 and a.c1_ci == b.c1_ci
    assert a.c1_ci != analyse(runs, "Toy", "Net", "closed", "EDM", seed=1).c1_ci


def test_twenty_draws_are_enough_for_an_interval():
    a = analyse(toy_runs(noise=0.3), "Toy", "Net", "closed", "EDM", n_boot=20, seed=1, bootstrap="seeds")
    assert a.draws.n_ok == 20 and a.c1_ci is not None and a.c2_ci is not None
    ans = a.syn_for_real(1000, 1000)
    assert "eq1_ci" in ans and "surface_ci" in ans
    assert not any("bootstrap draws" in w for w in ans["warnings"] + a.warnings)
    small = analyse(toy_runs(noise=0.3), "Toy", "Net", "closed", "EDM", n_boot=19, seed=1, bootstrap="seeds")
    assert small.c1_ci is None and "eq1_ci" not in small.syn_for_real(1000, 1000)


def test_answers_at_the_smallest_base_and_exactly_at_the_flag_threshold():
    a = analyse(exact_runs(), "Toy", "Net", "closed", "EDM", grid={1000: [1, 2, 3]}, n_boot=0)
    assert a.syn_for_real(1, 10)["n_base"] == 1
    # The flag's slack is 1.0001 x the largest measured amount; exactly there is not beyond it.
    assert "real" not in kinds(a.syn_for_real(1000, 3000 * 1.0001)["warnings"])
    assert "syn" not in kinds(a.real_for_syn(1000, 8000 * 1.0001)["warnings"])


def test_answers_use_the_surface_eps_and_every_draw():
    a = analyse(toy_runs(noise=0.3), "Toy", "Net", "closed", "EDM", eps=0.5, n_boot=100, seed=4)
    s = a.bases[1000].surface
    assert s.eps == 0.5
    fwd = a.syn_for_real(1000, 2000)
    assert s.predict(1000, fwd["surface"]) == pytest.approx(s.predict(3000, 0), abs=1e-6)
    back = a.real_for_syn(1000, 3000)
    assert s.predict(1000 + back["surface"], 0) == pytest.approx(s.predict(1000, 3000), abs=1e-6)
    assert back["surface_ci"][0] < back["surface"] < back["surface_ci"][1]


def test_first_crossing_solves_problems_with_different_brackets_at_once():
    from engine.analysis.equivalence import first_crossing
    s, _ = built_surface(100, {"log_n_syn": 1.0}, 500.0)
    target = float(s.predict(200, 0))
    args = dict(vary="syn", fixed_syn=0.0, target=np.array([target, target]))
    both, status = first_crossing(np.repeat(s.beta[None], 2, axis=0), s.features, s.eps,
                                  fixed_real=np.array([100.0, 100.0]), bound=np.array([1e4, 400.0]), **args)
    assert list(status) == ["ok", "no_crossing"] and both[0] == pytest.approx(500, rel=1e-7)


def test_points_keep_their_spread_columns_and_the_real_base_run():
    a = analyse(seeded_runs((5.0, 7.5, 6.0)), "Toy", "Net", "closed", "EDM", grid={200: [1], 900: [1]}, n_boot=0)
    pts = a.bases[200].points
    base = pts[(pts.n_real_added == 0) & (pts.n_syn_added == 0)]
    assert base.sd.item() == pytest.approx(np.std([70.0, 71.0, 72.0], ddof=1)) and base.n_seeds.item() == 3
    empty = a.bases[900]
    assert list(empty.points.columns)[:5] == ["n_real_added", "n_syn_added", "acc", "sd", "n_seeds"]
    assert empty.surface is None and "no runs" in empty.error
    assert {"n_base": 900, "ratio": 1, "n_real_added": 900, "reason": empty.error} in a.dropped
    # A base-only run recorded among the synthetic runs too is not averaged into the real one.
    runs = exact_runs()
    extra = make_runs([(1000, "syn", 0, 1.0)], n_total=50_000)
    pts = analyse(pd.concat([runs, extra], ignore_index=True), "Toy", "Net", "closed", "EDM",
                  grid={1000: [1]}, n_boot=0).bases[1000].points
    assert pts[(pts.n_real_added == 0) & (pts.n_syn_added == 0)].acc.item() == pytest.approx(true_acc(1000, 0))


# ------------------------------------------------------------------ the simulated studies (simulate.py)

def test_simulated_truth_follows_eq1_exactly():
    truth = TRUTHS["c2_near_1.5"]
    assert truth.tau == 10 / 50_000
    eq1_written = lambda b, n: b * truth.c1 ** (truth.tau * b) * (truth.c2 ** (n / b) - 1)  # noqa: E731
    for b in truth.grid:
        for r in (0.5, 1, 2, 3):
            real = truth.accuracy(b, r * b, 0)
            assert real == pytest.approx(truth.acc_a + truth.acc_b * np.log(b + r * b), rel=1e-12)
            assert truth.accuracy(b, 0, eq1_written(b, r * b)) == pytest.approx(real, rel=1e-12)
        assert truth.accuracy(b, 0, 0) == pytest.approx(truth.acc_a + truth.acc_b * np.log(b), rel=1e-12)
    # The budget answer: N = n_base more real images at the middle base, through Eq. 1.
    assert truth.answer() == (5000, pytest.approx(eq1_written(5000, 5000)))
    assert truth.answer()[1] == pytest.approx(3000.0)  # 5000 * 1.2^1 * (1.5 - 1)
    other = Truth("t", 0.8, 3.0, 10_000, {100: [1], 400: [1], 900: [1], 1600: [1]}, (1,), (1,), answer_base=100)
    assert other.answer() == (100, pytest.approx(100 * 0.8 ** 0.1 * 2.0))
    assert Truth("t", 0.8, 3.0, 10_000, other.grid, (1,), (1,)).answer()[0] == 900


def test_simulated_design_is_the_papers_points_times_seeds():
    truth = TRUTHS["bloodmnist_closed"]
    frame = design(truth, seeds=2)
    assert len(frame) == 2 * 2 * (1 + 3 + 5) and frame.run_id.is_unique
    at = frame[frame.n_base == 1200]
    assert sorted(set(at[at.augmentation == "real"].n_real_added)) == [0, 1200, 2400, 3600]
    assert sorted(set(at[at.augmentation == "closed"].n_syn_added)) == [1200, 2400, 3600, 4800, 6000]
    assert (at[at.augmentation == "real"].n_syn_added == 0).all() and (at[at.augmentation == "closed"].n_real_added == 0).all()
    assert frame[frame.augmentation == "real"].generator.isna().all()
    assert set(frame[frame.augmentation == "closed"].generator) == {"G"}
    assert sorted(set(frame.seed)) == [0, 1] and str(frame.seed.dtype) == "Int64"
    assert set(frame.n_total) == {12_000} and set(frame.dataset) == {"Sim"} and set(frame.source) == {"engine"}


def test_simulated_study_without_noise_is_the_noise_free_target():
    truth = TRUTHS["c2_near_1.5"]
    frame = design(truth, seeds=3)
    mean = truth.accuracy(frame.n_base, frame.n_real_added, frame.n_syn_added)
    target = noise_free(truth, frame, mean)
    study = run_study(truth, frame, mean, 0.0, np.random.default_rng(0), n_boot=0)
    assert (study["c1"], study["c2"], study["answer"]) == (target["c1"], target["c2"], target["answer"])
    assert study["surface_answer"] == pytest.approx(target["surface_answer"])
    assert study["tuples"] == 9 and study["error"] is None and study["c1_ci"] is None
    # The paper's surface cannot follow this truth exactly: the target is near, not at, c1 and c2.
    assert target["c1"] == pytest.approx(truth.c1, rel=0.05) and target["c1"] != pytest.approx(truth.c1, rel=1e-3)


def test_coverage_counts_hits_of_the_truth_and_of_the_target():
    truth = TRUTHS["c2_near_1.5"]
    s = coverage(truth, studies=4, noise_sd=0.05, n_boot=30, seed=3, bootstrap="seeds")
    assert (s["studies"], s["noise_sd"], s["seeds"], s["n_boot"], s["bootstrap"], s["fitted"]) == (
        4, 0.05, 3, 30, "seeds", 4)
    assert s["features"] == "log_n_real+log_n_syn+log_n_total"
    frame = design(truth, 3)
    target = noise_free(truth, frame, truth.accuracy(frame.n_base, frame.n_real_added, frame.n_syn_added))
    for key, true in (("c1", 1.2), ("c2", 1.5), ("answer", 3000.0), ("surface_answer", 3000.0)):
        k = s[key]
        assert k["true"] == true and k["target"] == pytest.approx(target[key])
        # Nearly noise-free studies: the estimates sit on the target, so their bias from the truth is
        # the target's, and intervals a few tenths of a percent wide miss the truth 1-35 % away.
        assert k["median_rel_bias"] == pytest.approx(target[key] / true - 1, abs=5e-3)
        assert k["mean_rel_bias"] == pytest.approx(target[key] / true - 1, abs=5e-3)
        assert abs(k["target_median_rel_bias"]) < 6e-3
        assert k["coverage"] == 0.0 and k["coverage_of_fitted"] == 0.0
        # 30 draws: the 2.5 % and 97.5 % draws are the extreme ones (quantiles are never interpolated)
        assert 0 < k["median_ci_width_rel"] < 0.08
        assert k["target_coverage"] in (0.25, 0.5, 0.75, 1.0)
    assert s["surface_answer"]["target_coverage"] == 1.0 and s["c1"]["target_coverage"] == 0.5
    best = coverage(truth, studies=1, noise_sd=0.05, n_boot=0, seed=3, features="best:aic")
    assert best["features"] == "best:aic" and best["c1"]["coverage"] == 0.0
    assert best["c1"]["median_ci_width_rel"] is None and best["c1"]["coverage_of_fitted"] == 0.0


# ------------------------------------------------------------- IR (Eq. 7) and the one-sided bounds

def _ir_frame(base, closed, opened, n_base=100, source="engine", extra=()):
    """Runs of one base: {seed: top1} for the base-only, closed 1:1 and open 1:1 runs (seed None: a mean)."""
    rows = []
    for kind, aug, gen, accs in (("base", "real", None, base), ("closed", "closed", "EDM", closed),
                                 ("open", "open", "SD", opened), *extra):
        for seed, acc in accs.items():
            rows.append({"dataset": "Toy", "classifier": "Net", "source": source, "augmentation": aug,
                         "generator": gen, "n_base": n_base, "n_real_added": 0,
                         "n_syn_added": 0 if kind == "base" else n_base, "seed": seed, "top1": acc})
    frame = pd.DataFrame(rows)
    frame["seed"] = frame.seed.astype("Int64")
    return frame


def _every_resample_ir(b, c, o):
    """IR of every ordered resample of the seeds, enumerated (k^k of them)."""
    k = len(b)
    out = []
    for idx in itertools.product(range(k), repeat=k):
        i = list(idx)
        out.append(np.mean(np.array(c)[i] - np.array(b)[i]) / np.mean(np.array(o)[i] - np.array(b)[i]))
    return np.array(out)


def test_ir_interval_over_paired_seed_resamples():
    b, c, o = [70.0, 72.0, 71.0], [74.0, 75.0, 76.5], [72.0, 73.5, 72.5]
    frame = _ir_frame(dict(enumerate(b)), dict(enumerate(c)), dict(enumerate(o)))
    row = improvement_ratio(frame, "Toy", "Net", level=1.0).iloc[0]
    assert row.IR == pytest.approx(np.mean(np.subtract(c, b)) / np.mean(np.subtract(o, b)))
    assert (row.acc_base, row.gain_closed, row.gain_open, row.n_seeds) == (
        pytest.approx(71.0), pytest.approx(4.1666667), pytest.approx(1.6666667), 3)
    # Level 1: the interval is the range of IR over the resamples; 2,000 draws see all 27 of them.
    every = _every_resample_ir(b, c, o)
    assert (row.IR_lo, row.IR_hi) == (pytest.approx(every.min()), pytest.approx(every.max()))
    assert row.note == "100% interval over 3 seeds (resampled, paired)"
    default = improvement_ratio(frame, "Toy", "Net").iloc[0]  # 95 %, seed 0, 2,000 draws
    assert every.min() <= default.IR_lo < default.IR < default.IR_hi <= every.max()
    assert default.note.startswith("95% interval over 3 seeds")
    # A 50 % interval: the quartiles of the 27 equally likely resamples (values with ties, so exact).
    half = improvement_ratio(frame, "Toy", "Net", level=0.5, n_boot=4000).iloc[0]
    assert (half.IR_lo, half.IR_hi) == (np.quantile(every, 0.25, method="inverted_cdf"),
                                        np.quantile(every, 0.75, method="inverted_cdf"))


def test_ir_is_unbounded_where_the_open_gain_changes_sign_in_resamples():
    # Open gains per seed -1, +2.5, +2.5: the mean is positive, but a resample of seed 0 three times
    # (1/27 = 3.7 % of draws) turns it negative: more than the 2.5 % a 95 % interval may lose, less
    # than the 5 % of a 90 % interval.
    base = {0: 70.0, 1: 70.0, 2: 70.0}
    frame = _ir_frame(base, {0: 73.0, 1: 73.0, 2: 73.0}, {0: 69.0, 1: 72.5, 2: 72.5})
    row = improvement_ratio(frame, "Toy", "Net", n_boot=4000).iloc[0]
    assert (row.IR_lo, row.IR_hi) == (-np.inf, np.inf)
    assert row.note.startswith("the open-set gain changes sign in 4% of seed resamples: IR is unbounded")
    row = improvement_ratio(frame, "Toy", "Net", n_boot=4000, level=0.9).iloc[0]
    assert np.isfinite([row.IR_lo, row.IR_hi]).all() and row.note.startswith("90% interval")


def test_ir_seeds_must_be_shared_by_all_three_runs():
    frame = _ir_frame({0: 70.0, 1: 71.0, 2: 72.0}, {0: 74.0, 1: 75.0, 2: 75.0}, {1: 73.0, 2: 73.5})
    row = improvement_ratio(frame, "Toy", "Net").iloc[0]
    assert row.n_seeds == 2 and row.note.startswith("95% interval over 2 seeds")
    one = _ir_frame({0: 70.0, 1: 71.0}, {0: 74.0, 1: 75.0}, {1: 73.0, 2: 73.5})
    row = improvement_ratio(one, "Toy", "Net").iloc[0]
    assert row.n_seeds == 1 and np.isnan(row.IR_lo) and np.isnan(row.IR_hi)
    assert row.note == "fewer than two seeds shared by the base, closed and open runs: no interval"
    disjoint = _ir_frame({0: 70.0}, {1: 74.0}, {2: 73.0})
    row = improvement_ratio(disjoint, "Toy", "Net").iloc[0]
    assert row.n_seeds == 0 and row.note.startswith("fewer than two seeds")
    means = _ir_frame({None: 70.0}, {None: 74.0}, {None: 72.0}, source="paper")
    row = improvement_ratio(means, "Toy", "Net").iloc[0]
    assert (row.IR, row.n_seeds, row.note) == (2.0, 0, "published means: no seeds, no interval")
    assert np.isnan(row.IR_lo) and np.isnan(row.IR_hi)
    assert list(improvement_ratio(means, "Toy", "Net").columns) == IR_COLUMNS


def test_ir_selects_its_setting_source_and_base_run():
    engine = _ir_frame({None: 70.0}, {None: 74.0}, {None: 72.0})
    # A real run that adds images is not a base-only run, though it adds no synthetic ones.
    engine = pd.concat([engine, engine.iloc[:1].assign(n_real_added=100, top1=99.0)], ignore_index=True)
    paper = _ir_frame({None: 60.0}, {None: 66.0}, {None: 62.0}, source="paper")
    # The paper prints its base-only run as a synthetic row with n_syn_added 0 too; a real one wins.
    repeated = _ir_frame({None: 50.0}, {None: 58.0}, {None: 54.0}, n_base=200,
                         extra=(("base", "closed", "EDM", {None: 10.0}),))
    syn_base_only = _ir_frame({}, {None: 58.0}, {None: 54.0}, n_base=300,
                              extra=(("base", "closed", "EDM", {None: 50.0}),))
    other = _ir_frame({None: 0.0}, {None: 90.0}, {None: 1.0}).assign(classifier="Other")
    runs = pd.concat([engine, paper, repeated, syn_base_only, other], ignore_index=True)
    ir = improvement_ratio(runs, "Toy", "Net")
    assert list(zip(ir.source, ir.n_base, ir.IR)) == [("engine", 100, 2.0), ("engine", 200, 2.0), ("engine", 300, 2.0),
                                                       ("paper", 100, 3.0)]
    assert list(improvement_ratio(runs, "Toy", "Net", source="paper").IR) == [3.0]
    assert improvement_ratio(runs, "Toy", "Net", source="import").empty
    assert list(improvement_ratio(runs, "Toy", "Net", source="import").columns) == IR_COLUMNS
    assert list(improvement_ratio(runs.drop(columns="source"), "Toy", "Net").source.unique()) == ["given"]
    assert list(improvement_ratio(runs, "Toy", "Other").IR) == [90.0]


def _noise_gated_fit(real_gain_sd=0.3, seeds=(0, 1, 2)):
    """n_base 200: real additions gain 5 points per n_base, synthetic ones only seed noise."""
    rng = np.random.default_rng(11)
    base = [70.0, 70.5, 69.5][:len(seeds)]
    pts = [(200, "real", 0, base)]
    pts += [(200, "real", r * 200, [b + 5 * r + rng.normal(0, real_gain_sd) for b in base]) for r in (1, 2, 3)]
    pts += [(200, "syn", s * 200, [70.0 + rng.normal(0, 1) for _ in base]) for s in (1, 2, 4, 8)]
    a = analyse(make_runs(pts, seeds=seeds), "Toy", "Net", "closed", "EDM", grid={200: [1, 2, 3]}, n_boot=0)
    return a, a.bases[200]


def test_bound_says_more_than_the_largest_synthetic_amount_with_the_real_gain_measured_here():
    from scipy import stats
    a, fit = _noise_gated_fit()
    assert fit.noise["tested"] and not fit.noise["significant"]
    m = fit.seed_matrix
    row_of = {(r.n_real_added, r.n_syn_added): i for i, r in enumerate(fit.points.itertuples())}
    for n_real_added, measured in ((200, 200), (399, 200), (400 * 1.00005, 400), (600, 600), (10_000, 600)):
        bound = bound_statement(fit, n_real_added)
        diffs = m[row_of[(measured, 0)]] - m[row_of[(0, 0)]]
        p = stats.ttest_1samp(diffs, 0.0, alternative="greater").pvalue
        assert bound["kind"] == "more_than" and bound["n_syn_added"] == 1600
        assert bound["p_real"] == pytest.approx(p) and bound["p_syn"] == fit.noise["p_value"]
        assert bound["text"] == (f"more than 1,600 synthetic images: {measured:,} more real images gain "
                                 f"{diffs.mean():+.2f} points (paired p = {p:.3f}), while no synthetic amount up to "
                                 f"1,600 gains beyond seed noise (paired p = {fit.noise['p_value']:.2f})")
    untested = BaseFit(n_base=200, points=fit.points, seed_matrix=fit.seed_matrix)  # called without a noise test
    assert bound_statement(untested, 400)["text"].endswith("(paired p = nan)")
    low = bound_statement(fit, 199)
    assert low == {"kind": "not_measurable", "text": "not measurable at this base: no real run of at most 199 added "
                                                    "images with seeds at n_base 200"}
    # Through the analysis: every grid tuple is dropped with its bound, and the answer is the bound.
    assert [d["bound_kind"] for d in a.dropped] == ["more_than"] * 3
    assert a.dropped[0]["bound"] == bound_statement(fit, 200)["text"]
    ans = a.syn_for_real(200, 400)
    assert ans["bound"] == bound_statement(fit, 400) and a.has_answer(ans) and ans["surface"] is None
    inv = a.real_for_syn(200, 400)
    assert inv["bound"]["kind"] == "not_measurable" and not a.has_answer(inv)
    assert inv["bound"]["text"].endswith(f"(paired p = {fit.noise['p_value']:.2f})")


def test_bound_is_not_measurable_when_even_real_gains_are_noise():
    _, fit = _noise_gated_fit(real_gain_sd=0.0)
    # Real gains of exactly +5 per seed: a constant positive difference has p = 0, without a t-test.
    assert bound_statement(fit, 200)["p_real"] == 0.0
    flat = fit.seed_matrix.copy()
    base_row = int(np.where((fit.points.n_real_added == 0) & (fit.points.n_syn_added == 0))[0][0])
    for i in np.where(fit.points.n_real_added > 0)[0]:
        flat[i] = flat[base_row] - 0.5   # every seed loses half a point
    fit.seed_matrix = flat
    bound = bound_statement(fit, 600)
    assert (bound["kind"], bound["p_real"]) == ("not_measurable", 1.0)
    assert bound["text"] == ("not measurable at this base: even 600 more real images gain within seed noise "
                             "(paired p = 1.00) at n_base 200")
    fit.seed_matrix = flat[:, :1]  # one seed: no spread to test against
    bound = bound_statement(fit, 600)
    assert bound["kind"] == "not_measurable" and np.isnan(bound["p_real"]) and "p = nan" in bound["text"]
    fit.seed_matrix = None
    assert bound_statement(fit, 600)["text"].startswith("not measurable at this base: no real run of at most 600")


def test_has_answer_and_to_dict_name_what_a_user_reads():
    pts = [(100, "real", 0, 50.0), (100, "real", 100, 60.0), (100, "real", 200, 65.0), (100, "real", 300, 68.0),
           (100, "syn", 100, 55.0), (100, "syn", 200, 58.0), (100, "syn", 400, 61.0)]
    a = analyse(make_runs(pts), "Toy", "Net", "closed", "EDM", features=("log_n_real", "log_n_syn"),
                grid={100: [1, 2, 3]}, n_boot=0)
    d = json.loads(json.dumps(a.to_dict()))
    assert d["grid_rule"] == "the grid given" and d["unidentified"] == a.unidentified
    assert d["surfaces"][0]["n_points"] == 7 == len(a.bases[100].points)
    assert a.has_answer({"eq1": 1.0}) and a.has_answer({"surface": 0.0}) and not a.has_answer({"surface": None})
    assert a.has_answer({"bound": {"kind": "more_than"}}) and not a.has_answer({"bound": {"kind": "not_measurable"}})
    assert not a.has_answer({})


def test_eq1_interval_of_an_answer_uses_only_the_draws_that_fitted():
    pts = toy_points(1000) + toy_points(5000)
    a = analyse(make_runs(pts, n_total=20_000), "Toy", "Net", "closed", "EDM", n_boot=60, seed=2)
    c1b, c2b = a.draws.c1.copy(), a.draws.c2.copy()
    c1b[:5] = c2b[:5] = np.nan  # five draws that kept too few tuples for Eq. 1
    a.draws.c1, a.draws.c2 = c1b, c2b
    ans = a.syn_for_real(1000, 2000)
    ok = np.isfinite(c1b)
    draws = 1000 * c1b[ok] ** (a.tau * 1000) * (c2b[ok] ** 2 - 1)
    # A draw without an Eq. 1 fit is no answer, not a missing one: with 5 of 60 (over 2.5 %) the upper
    # end is open, and the lower end is the 2.5 % draw of all 60.
    assert ans["eq1_ci"][1] is None
    assert ans["eq1_ci"][0] == pytest.approx(np.quantile(np.concatenate([draws, np.full(5, np.inf)]), 0.025,
                                                         method="lower"))
    assert any("5 of 60" in w for w in ans["warnings"])


def test_an_answer_keeps_every_warning():
    # n_base 1600's synthetic runs gain nothing, and the base lies outside the bases Eq. 1 was fitted on.
    rng = np.random.default_rng(5)
    pts = []
    for n_base in (100, 400, 1600):
        for kind, added in [("real", 0), ("real", n_base), ("real", 2 * n_base), ("real", 3 * n_base),
                            ("syn", n_base), ("syn", 2 * n_base), ("syn", 4 * n_base), ("syn", 8 * n_base)]:
            n_real, n_syn = n_base + (added if kind == "real" else 0), added if kind == "syn" else 0
            mean = float(true_acc(n_real, n_syn if n_base != 1600 else 0))
            pts.append((n_base, kind, added, list(mean + rng.normal(0, 0.3, 3))))
    a = analyse(make_runs(pts, seeds=(0, 1, 2)), "Toy", "Net", "closed", "EDM", n_boot=80, seed=7)
    ans = a.syn_for_real(1600, 150)
    # The base's gains are within seed noise: its surface gives no answer at all (not one from the
    # draws that happened to cross), and the answer says why beside Eq. 1's extrapolation.
    assert ans["surface"] is None and ans["surface_error"] == "this base's synthetic gains are within seed noise"
    assert ans["warnings"] == ["extrapolation: n_base 1600 is outside the measured range 100-400 of the Eq. 1 fit"]
    assert ans["bound"]["kind"] == "not_measurable"


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 0 hits of 0 studies: NaN
def test_coverage_of_no_studies_has_no_estimates():
    s = coverage(TRUTHS["c2_near_1.5"], studies=0, noise_sd=0.1, n_boot=0)
    assert s["fitted"] == 0
    for key in ("c1", "c2", "answer", "surface_answer"):
        assert s[key]["median_rel_bias"] is None and s[key]["mean_rel_bias"] is None
        assert s[key]["coverage_of_fitted"] is None and s[key]["median_ci_width_rel"] is None


def test_a_study_uses_the_truths_own_grid():
    truth = TRUTHS["imagenet_open"]  # 8 ratios per base, not the measured bases x 1, 2, 3
    frame = design(truth, seeds=2)
    mean = truth.accuracy(frame.n_base, frame.n_real_added, frame.n_syn_added)
    study = run_study(truth, frame, mean, 0.0, np.random.default_rng(0), n_boot=0)
    on_grid = analyse(frame.assign(top1=mean), "Sim", "Net", "closed", "G", grid=truth.grid, n_boot=0)
    assert study["tuples"] == len(on_grid.tuples) > 6 and len(on_grid.tuples) + len(on_grid.dropped) == 16


def test_seedless_means_count_once_per_source_at_their_own_point():
    rows = [(100, "real", 0, "paper", 50.0), (100, "real", 0, "import", 60.0), (100, "real", 0, "import", 62.0),
            (100, "real", 100, "paper", 70.0), (100, "real", 100, "import", 72.0)]
    runs = make_runs([(b, k, n, acc) for b, k, n, _, acc in rows])
    runs["source"] = [src for *_, src, _ in rows]
    points, matrix = surface_points(runs, 100, "closed", "EDM")
    assert matrix is None and list(points.n_unseeded) == [2, 2]
    assert list(points.acc) == [pytest.approx((50 + 61) / 2), pytest.approx(71.0)]   # mean of source means
    assert points.n_unseeded.dtype.kind == "i" and points.sd.dtype.kind == "f" and points.sd.isna().all()
    one_seed = make_runs([(100, "real", 0, [50.0, 51.0]), (100, "real", 100, [60.0, 61.0])], seeds=(0, 1))
    one_seed = one_seed[~((one_seed.n_real_added == 100) & (one_seed.seed == 1))]  # that point has one seed
    pts, _ = surface_points(one_seed, 100, "closed", "EDM")
    assert pts.sd.dtype.kind == "f" and np.isnan(pts.sd.iloc[1]) and pts.sd.iloc[0] == pytest.approx(0.7071068)


def test_identification_bounds_and_fit_fields():
    from engine.analysis.equivalence import C_LIMIT, identification
    assert identification(float("nan"), 2.0) == "c1 or c2 is not finite"
    assert identification(C_LIMIT * 0.999, 2.0) is None and identification(C_LIMIT, 2.0) is not None
    assert identification(1 / C_LIMIT * 1.001, 2.0) is None and identification(1 / C_LIMIT, 2.0) is not None
    n_base = np.repeat([500.0, 5000.0], 3)
    n_real = n_base * np.tile([1.0, 2.0, 3.0], 2)
    fit = fit_eq1(n_base, n_real, eq1(n_base, n_real, 0.8, 3.0, 1e-4), 1e-4)
    assert fit["converged"] is True and fit["identified"] is True and fit["reason"] is None


def test_published_means_say_why_gains_are_not_tested(paper_runs):
    a = analyse(paper_runs, "BloodMNIST", "ResNet-110", "closed", "EDM", n_boot=0)
    assert a.bases[1200].noise == {"tested": False, "reason": "published means carry no per-seed runs, so gains "
                                                             "cannot be compared with seed-to-seed noise"}
    few = paper_runs[paper_runs.n_base == 500]
    stuck = analyse(few, "CIFAR-10", "ResNet-110", "open", "CIFAKE", n_boot=0)
    assert set(stuck.unidentified) == {"c1", "c2", "reason"} and stuck.unidentified["c2"] > 1


def test_a_surface_needs_one_point_more_than_its_parameters():
    n_real, n_syn = np.array([100, 200, 100, 100, 300]), np.array([0, 0, 100, 200, 0])
    acc = design_matrix(n_real, n_syn, PAPER_FEATURES, 1e-3) @ np.array([6.0, 0.4, 3.0, -30.0])
    s = fit_surface(100, n_real, n_syn, acc)   # 4 parameters, 5 points: one residual degree of freedom
    assert s.stats["df_resid"] == 1.0 and s.beta == pytest.approx([6.0, 0.4, 3.0, -30.0], rel=1e-6)
    with pytest.raises(FitError, match="4 measured points, a surface with 4 parameters needs at least 5"):
        fit_surface(100, n_real[:4], n_syn[:4], acc[:4])


def test_every_bases_warning_is_kept_and_labels_and_rules_are_exact(paper_runs):
    pts = toy_points(1000) + toy_points(5000) + [(300, "syn", 300, 50.0)]  # a base with no real runs
    a = analyse(make_runs(pts, n_total=20_000), "Toy", "Net", "closed", "EDM", grid={1000: [1], 5000: [1]}, n_boot=0)
    assert a.warnings[:2] == ["n_base 300 gives no tuples: n_base 300: no real-augmentation runs, so no "
                              "equivalence can be solved here", "published means only: intervals come from the "
                              "surface residuals and points, not from seeds, and gains cannot be tested against "
                              "seed-to-seed noise"]
    b = analyse(make_runs(pts, n_total=20_000), "Toy", "Net", "closed", "EDM", grid={1000: [1]}, n_boot=0)
    assert [w.split(":")[0] for w in b.warnings[:2]] == ["n_base 300 gives no tuples", "n_base 5,000 gives no tuples"]
    with pytest.raises(FitError, match=r"^no open-set runs for Toy / Net$"):
        analyse(make_runs(pts), "Toy", "Net", "open")
    paper = analyse(paper_runs, "BloodMNIST", "ResNet-110", "closed", "EDM", n_boot=0, source="paper")
    assert paper.grid_rule == "the paper's Eq. 12 grid (appendix A)"
    one = make_runs([(100, "real", 0, 50.0), (100, "syn", 1, 50.5)])
    points, _ = surface_points(one, 100, "closed", "EDM")
    assert list(points.n_syn_added) == [0, 1]   # one synthetic image is a point
