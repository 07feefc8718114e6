"""The equivalence analysis: surfaces, Eq. 12 roots, Eq. 13, intervals and noise."""
import numpy as np
import pytest

from engine.analysis.equivalence import (eq1, eq1_inverse, equivalence_tuples, first_crossing, fit_eq1,
                                         fit_eq1_batch, tau_for)
from engine.analysis.fit import analyse, surface_points
from engine.analysis.surface import (FEATURES, PAPER_FEATURES, FitError, all_subsets, best_subset,
                                     design_matrix, fit_surface)
from tests.conftest import make_runs

B_TRUE = np.array([6.0, 0.4, 3.0, -30.0])  # b1 log n_real, b2 log n_syn, b3 log n_total, b4


def true_acc(n_real, n_syn):
    return design_matrix(n_real, n_syn, PAPER_FEATURES, 1e-3) @ B_TRUE


def toy_points(n_base, real=(1, 2, 3), syn=(1, 2, 4, 8)):
    pts = [(n_base, "real", 0, true_acc(n_base, 0))]
    pts += [(n_base, "real", r * n_base, true_acc(n_base * (1 + r), 0)) for r in real]
    pts += [(n_base, "syn", s * n_base, true_acc(n_base, s * n_base)) for s in syn]
    return pts


def test_surface_recovers_known_coefficients():
    pts = toy_points(1000)
    n_real = np.array([p[0] + (p[2] if p[1] == "real" else 0) for p in pts])
    n_syn = np.array([p[2] if p[1] == "syn" else 0 for p in pts])
    acc = np.array([p[3] for p in pts])
    s = fit_surface(1000, n_real, n_syn, acc)
    np.testing.assert_allclose(s.beta, B_TRUE, rtol=1e-6, atol=1e-6)
    assert s.stats["r2"] == pytest.approx(1.0)
    # With noise the estimate stays close.
    rng = np.random.default_rng(0)
    noisy = fit_surface(1000, n_real, n_syn, acc + rng.normal(0, 0.05, acc.size))
    np.testing.assert_allclose(noisy.beta[:3], B_TRUE[:3], atol=0.6)


def test_all_31_subsets_and_best():
    pts = toy_points(1000)
    n_real = np.array([p[0] + (p[2] if p[1] == "real" else 0) for p in pts])
    n_syn = np.array([p[2] if p[1] == "syn" else 0 for p in pts])
    acc = np.array([p[3] for p in pts])
    table = all_subsets(1000, n_real, n_syn, acc)
    assert len(table) == 31
    assert len({r["features"] for r in table}) == 31
    fitted = [r for r in table if "error" not in r]
    assert len(fitted) >= 25
    for r in fitted:
        for key in ("r2", "adj_r2", "aic", "bic", "loo_rmse"):
            assert key in r
    # The true model has the smallest leave-one-out error among the 3-feature subsets.
    three = [r for r in fitted if len(r["features"]) == 3]
    assert min(three, key=lambda r: r["loo_rmse"])["features"] == PAPER_FEATURES
    assert best_subset(table, "bic") in {r["features"] for r in fitted}
    with pytest.raises(FitError, match="criterion"):
        best_subset(table, "nonsense")


def test_too_few_points_says_how_many():
    with pytest.raises(FitError, match="3 measured points.*at least 5"):
        fit_surface(100, [100, 200, 100], [0, 0, 100], [50, 60, 55])


def test_eq1_recovers_known_c1_c2():
    tau = tau_for(50_000)
    n_base = np.repeat([500.0, 5000.0, 25000.0], 3)
    n_real = n_base * np.tile([1.0, 2.0, 3.0], 3)
    n_syn = eq1(n_base, n_real, 0.8, 3.0, tau)
    fit = fit_eq1(n_base, n_real, n_syn, tau)
    assert fit["c1"] == pytest.approx(0.8, rel=1e-6)
    assert fit["c2"] == pytest.approx(3.0, rel=1e-6)
    # Inverse of Eq. 1 undoes it.
    np.testing.assert_allclose(eq1_inverse(n_base, n_syn, 0.8, 3.0, tau), n_real, rtol=1e-9)


def test_batch_fit_matches_scipy_per_draw():
    tau = tau_for(50_000)
    rng = np.random.default_rng(1)
    n_base = np.repeat([500.0, 5000.0, 25000.0], 3)
    n_real = n_base * np.tile([1.0, 2.0, 3.0], 3)
    clean = eq1(n_base, n_real, 1.2, 2.5, tau) / n_base
    y = clean[None, :] * np.exp(rng.normal(0, 0.2, (30, clean.size)))
    mask = rng.random(y.shape) > 0.15
    theta0 = fit_eq1(n_base, n_real, clean * n_base, tau)["theta"]
    theta = fit_eq1_batch(tau * n_base, n_real / n_base, y, mask, theta0)
    for i in range(y.shape[0]):
        m = mask[i]
        ref = fit_eq1(n_base[m], n_real[m], y[i, m] * n_base[m], tau)
        assert np.exp(theta[i, 0]) == pytest.approx(ref["c1"], rel=1e-4)
        assert 1 + np.exp(theta[i, 1]) == pytest.approx(ref["c2"], rel=1e-4)


def test_tuples_solve_equal_accuracy():
    pts = toy_points(1000)
    n_real = np.array([p[0] + (p[2] if p[1] == "real" else 0) for p in pts])
    n_syn = np.array([p[2] if p[1] == "syn" else 0 for p in pts])
    s = fit_surface(1000, n_real, n_syn, np.array([p[3] for p in pts]))
    roots, status = equivalence_tuples(s, [1, 2])
    assert list(status[0]) == ["ok", "ok"]
    for r, root in zip([1, 2], roots[0]):
        assert true_acc(1000, root) == pytest.approx(true_acc(1000 * (1 + r), 0), abs=1e-6)


def _two_log_surface(b_syn):
    """Acc = 5 log(n_real+eps) + b_syn log(n_syn+eps) + 10, as a fitted Surface."""
    n_real = np.array([100, 200, 300, 100, 100, 100])
    n_syn = np.array([0, 0, 0, 100, 200, 400])
    feats = ("log_n_real", "log_n_syn")
    acc = design_matrix(n_real, n_syn, feats, 1e-3) @ np.array([5.0, b_syn, 10.0])
    return fit_surface(100, n_real, n_syn, acc, feats)


def test_root_at_bracket_end_is_kept():
    # b_syn chosen so that Acc(100, 100 * 100) equals Acc(200, 0) exactly.
    eps = 1e-3
    b_syn = 5 * np.log((200 + eps) / (100 + eps)) / (np.log(10_000 + eps) - np.log(eps))
    s = _two_log_surface(b_syn)
    roots, status = equivalence_tuples(s, [1.0])
    assert status[0, 0] == "ok"
    assert roots[0, 0] == pytest.approx(10_000, rel=1e-6)


def test_no_crossing_is_dropped_with_reason():
    s = _two_log_surface(0.01)  # synthetic data barely helps: never reaches Acc(200, 0)
    roots, status = equivalence_tuples(s, [1.0])
    assert status[0, 0] == "no_crossing" and np.isnan(roots[0, 0])
    # and through analyse(): the tuple is reported dropped, and Eq. 1 refuses to fit.
    pts = [(100, "real", 0, 50.0), (100, "real", 100, 60.0), (100, "real", 200, 65.0),
           (100, "syn", 100, 50.1), (100, "syn", 200, 50.15), (100, "syn", 400, 50.2)]
    a = analyse(make_runs(pts), "Toy", "Net", "closed", "EDM", features=("log_n_real", "log_n_syn"),
                grid={100: [1, 2, 3]}, n_boot=0)
    assert a.c1 is None and "no equivalence can be estimated" in a.eq1_error
    assert len(a.dropped) == 3 and all("never reach" in d["reason"] for d in a.dropped)


def test_first_crossing_no_gain():
    s = _two_log_surface(1.0)
    roots, status = first_crossing(s.beta[None], s.features, s.eps, vary="syn", fixed_real=100.0,
                                   fixed_syn=0.0, target=np.array([0.0]), bound=1e4)
    assert status[0] == "no_gain"


def test_base_only_run_counted_once():
    pts = toy_points(1000)
    runs = make_runs(pts + [(1000, "syn", 0, true_acc(1000, 0))])  # the paper repeats the base row
    points, matrix = surface_points(runs, 1000, "closed", "EDM")
    assert ((points.n_real_added == 0) & (points.n_syn_added == 0)).sum() == 1
    assert len(points) == 8 and matrix is None


def test_analyse_end_to_end_recovers_eq1_tuples():
    pts = toy_points(1000) + toy_points(5000)
    a = analyse(make_runs(pts, n_total=20_000), "Toy", "Net", "closed", "EDM", n_boot=100)
    assert len(a.tuples) == 6 and not a.dropped
    for t in a.tuples:
        assert true_acc(t["n_base"], t["n_syn_added"]) == pytest.approx(
            true_acc(t["n_base"] + t["n_real_added"], 0), abs=1e-6)
    assert a.c2 > 1 and a.c1 > 0
    assert a.tau == pytest.approx(10 / 20_000)
    ans = a.syn_for_real(1000, 1000)
    assert ans["surface"] == pytest.approx(a.tuples[0]["n_syn_added"], rel=1e-6)
    inv = a.real_for_syn(1000, ans["surface"])
    assert inv["surface"] == pytest.approx(1000, rel=1e-5)
    far = a.syn_for_real(100_000, 1000)
    assert any("extrapolation" in w for w in far["warnings"])


def test_seed_noise_gate_refuses_equivalence():
    rng = np.random.default_rng(3)
    base = [70.0 + rng.normal(0, 1) for _ in range(3)]
    pts = [(200, "real", 0, base)]
    pts += [(200, "real", r * 200, [b + 5 * r for b in base]) for r in (1, 2, 3)]
    # Synthetic runs: pure seed noise around the base, no paired gain.
    pts += [(200, "syn", s * 200, [70.0 + rng.normal(0, 1) for _ in range(3)]) for s in (1, 2, 4, 8)]
    a = analyse(make_runs(pts, seeds=(0, 1, 2)), "Toy", "Net", "closed", "EDM", grid={200: [1, 2, 3]}, n_boot=50)
    assert a.c1 is None
    assert any("seed-to-seed noise" in d["reason"] for d in a.dropped)
    assert a.bases[200].noise["tested"] and not a.bases[200].noise["significant"]


def test_seed_bootstrap_keeps_pairs_and_is_reproducible():
    rng = np.random.default_rng(5)
    pts = []
    for n_base in (100, 400):
        for kind, added in [("real", 0), ("real", n_base), ("real", 2 * n_base), ("real", 3 * n_base),
                            ("syn", n_base), ("syn", 2 * n_base), ("syn", 4 * n_base), ("syn", 8 * n_base)]:
            n_real = n_base + (added if kind == "real" else 0)
            n_syn = added if kind == "syn" else 0
            mean = float(true_acc(n_real, n_syn))
            pts.append((n_base, kind, added, list(mean + rng.normal(0, 0.3, 3))))
    runs = make_runs(pts, seeds=(0, 1, 2))
    a = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=100, seed=7)
    b = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=100, seed=7)
    assert a.boot["method"] == "seeds+points"
    assert a.c1_ci == b.c1_ci and a.c2_ci is not None
    assert a.c2_ci[0] <= a.c2 <= a.c2_ci[1]


def test_bad_eps_and_augmentation():
    runs = make_runs(toy_points(1000))
    with pytest.raises(FitError, match="eps"):
        analyse(runs, "Toy", "Net", "closed", "EDM", eps=0)
    with pytest.raises(FitError, match="'real'"):
        analyse(runs, "Toy", "Net", "real", None)


def test_features_must_be_known():
    with pytest.raises(FitError, match="unknown feature"):
        design_matrix([1], [1], ("log_n_bogus",))
    assert set(PAPER_FEATURES) <= set(FEATURES)
