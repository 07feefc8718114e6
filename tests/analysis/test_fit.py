"""The equivalence analysis: surfaces, Eq. 12 roots, Eq. 13, intervals and noise."""
import numpy as np
import pytest
from scipy.optimize import brentq, curve_fit

from engine.analysis.equivalence import (eq1, eq1_inverse, equivalence_tuples, first_crossing, fit_eq1,
                                         fit_eq1_batch, tau_for)
from engine.analysis.fit import analyse
from engine.analysis.select import surface_points
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
    # Noise-free points of the paper's surface: every subset containing its three terms fits them exactly.
    for r in fitted:
        assert (r["r2"] == pytest.approx(1.0, abs=1e-9)) is set(PAPER_FEATURES).issubset(r["features"])
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


def _tuples_and_eq1_by_scipy(bases, ratios, tau):
    """Eq. 12 on the true surface by brentq and Eq. 13 by curve_fit in (c1, c2), written out here."""
    rows = [(b, r * b, brentq(lambda x: true_acc(b, x) - true_acc(b * (1 + r), 0), 0, 100 * b, xtol=1e-9))
            for b in bases for r in ratios]
    nb, nr, ns = (np.array(c, float) for c in zip(*rows))
    eq1_written = lambda X, c1, c2: c1 ** (tau * X[0]) * (c2 ** (X[1] / X[0]) - 1)  # noqa: E731
    (c1, c2), _ = curve_fit(eq1_written, (nb, nr), ns / nb, p0=(1.0, 2.0), bounds=([1e-6, 1 + 1e-9], [1e6, 1e6]))
    return ns, c1, c2


def test_analyse_end_to_end_recovers_eq1_tuples():
    pts = toy_points(1000) + toy_points(5000)
    a = analyse(make_runs(pts, n_total=20_000), "Toy", "Net", "closed", "EDM", n_boot=100)
    assert len(a.tuples) == 6 and not a.dropped
    for t in a.tuples:
        assert true_acc(t["n_base"], t["n_syn_added"]) == pytest.approx(
            true_acc(t["n_base"] + t["n_real_added"], 0), abs=1e-6)
    assert a.tau == pytest.approx(10 / 20_000)
    # The truth: the true surface's tuples and Eq. 1 fitted to them, both computed without the code
    # under test (c1 = 0.887, c2 = 2.02 here; a wrong tau, tuple or Eq. 13 objective moves them).
    ns, c1, c2 = _tuples_and_eq1_by_scipy((1000, 5000), (1, 2, 3), 10 / 20_000)
    np.testing.assert_allclose([t["n_syn_added"] for t in a.tuples], ns, rtol=1e-8)
    assert (a.c1, a.c2) == (pytest.approx(c1, rel=1e-5), pytest.approx(c2, rel=1e-5))
    ans = a.syn_for_real(1000, 1000)
    assert ans["surface"] == pytest.approx(a.tuples[0]["n_syn_added"], rel=1e-6)
    assert ans["eq1"] == pytest.approx(1000 * c1 ** (10 / 20) * (c2 - 1), rel=1e-5)
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


SEED_OFFSETS = (-2.0, 0.0, 3.0)  # one shift per seed, the same at every point of that seed


def _seed_shifted_runs():
    """Exact surface accuracies plus a large per-seed offset: every seed sees the same surface,
    shifted. Only a draw that keeps each seed's runs together keeps the shift common to all points."""
    pts = []
    for n_base in (100, 400):
        for kind, n_real_added, n_syn_added in [("real", 0, 0), *[("real", r * n_base, 0) for r in (1, 2, 3)],
                                                *[("syn", 0, s * n_base) for s in (1, 2, 4, 8)]]:
            acc = float(true_acc(n_base + n_real_added, n_syn_added))
            pts.append((n_base, kind, n_real_added + n_syn_added, [acc + d for d in SEED_OFFSETS]))
    return make_runs(pts, seeds=(0, 1, 2))


@pytest.mark.parametrize("bootstrap", ["seeds+points", "seeds", "resample", "resample+points"])
def test_seed_bootstrap_keeps_pairs_and_is_reproducible(bootstrap):
    runs = _seed_shifted_runs()
    a = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=100, seed=7, bootstrap=bootstrap)
    assert a.draws.method == bootstrap.replace("resample", "seeds")
    for fit in a.bases.values():
        fitted = np.isfinite(fit.boot_betas).all(axis=1)  # a points resample can leave a draw unfittable
        assert fitted.mean() > 0.8
        draws = fit.boot_betas[fitted]
        # Paired: each draw moves every point by the same amount, which only the intercept absorbs.
        # Unpaired draws (a seed picked per point) would tilt the log terms by up to 5 points.
        np.testing.assert_allclose(draws[:, :-1], np.broadcast_to(B_TRUE[:-1], draws[:, :-1].shape), atol=1e-6)
        assert draws[:, -1].std() > 0.1
    # ... so every draw solves Eq. 12 to the same tuples and fits the same c1, c2 (but the few draws
    # that lost a base's tuples to an unfittable points resample).
    same = np.isclose(a.draws.c1, a.c1, rtol=1e-6) & np.isclose(a.draws.c2, a.c2, rtol=1e-6)
    assert same.mean() >= (0.9 if bootstrap.endswith("+points") else 1.0)
    b = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=100, seed=7, bootstrap=bootstrap)
    for n_base, fit in a.bases.items():
        np.testing.assert_array_equal(fit.boot_betas, b.bases[n_base].boot_betas)


def test_seed_bootstrap_spreads_with_unpaired_seed_noise():
    # The contrast: the same offsets shuffled between seeds point by point are noise the surface
    # must carry, and the draws' log-term coefficients spread.
    rng = np.random.default_rng(0)
    runs = _seed_shifted_runs()
    runs["top1"] = runs.groupby(["n_base", "n_real_added", "n_syn_added"]).top1.transform(
        lambda acc: acc.mean() + rng.permutation(acc.to_numpy() - acc.mean()))
    a = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=100, seed=7, bootstrap="seeds")
    assert all(np.nanstd(fit.boot_betas[:, :-1], axis=0).max() > 0.1 for fit in a.bases.values())


def test_bad_eps_and_augmentation():
    runs = make_runs(toy_points(1000))
    with pytest.raises(FitError, match="eps"):
        analyse(runs, "Toy", "Net", "closed", "EDM", eps=0)
    with pytest.raises(FitError, match="'real'"):
        analyse(runs, "Toy", "Net", "real", None)


def test_features_must_be_known():
    with pytest.raises(FitError, match="unknown feature"):
        design_matrix([1], [1], ("log_n_bogus",))
