"""Issue 10's four ways a fit misled a user, each pinned by a test that failed before the fix."""
import numpy as np
import pandas as pd
import pytest

from engine.analysis.equivalence import fit_eq1
from engine.analysis.fit import analyse
from engine.analysis.ir import improvement_ratio
from engine.analysis.select import surface_points
from engine.analysis.surface import FitError
from tests.conftest import make_runs
from tests.analysis.test_fit import toy_points, true_acc


def _with_source(frame, source):
    frame = frame.copy()
    frame["source"] = source
    frame["run_id"] = source + ":" + frame.run_id
    return frame


def _seeded_points(n_base, rng, sd=0.3, real=(1, 2, 3), syn=(1, 2, 4, 8)):
    pts = []
    for kind, added in [("real", 0)] + [("real", r * n_base) for r in real] + [("syn", s * n_base) for s in syn]:
        n_real = n_base + (added if kind == "real" else 0)
        mean = float(true_acc(n_real, added if kind == "syn" else 0))
        pts.append((n_base, kind, added, list(mean + rng.normal(0, sd, 3))))
    return pts


# ------------------------------------------------------------------ 1. sources kept apart

def _paper_and_engine():
    paper = _with_source(make_runs(toy_points(1000) + toy_points(5000), n_total=20_000), "paper")
    rng = np.random.default_rng(11)
    # Engine runs 5 points lower at the same base: pooling would drag the paper's points down.
    eng = make_runs([(b, k, n, [a - 5 for a in acc]) for b, k, n, acc in
                     _seeded_points(1000, rng) + _seeded_points(5000, rng)], n_total=20_000, seeds=(0, 1, 2))
    return pd.concat([paper, _with_source(eng, "engine")], ignore_index=True)


def test_default_source_is_engine_and_is_said():
    runs = _paper_and_engine()
    a = analyse(runs, "Toy", "Net", "closed", "EDM", n_boot=20)
    assert a.source == "engine" and a.to_dict()["source"] == "engine"
    base = a.bases[1000].points
    at0 = base[(base.n_real_added == 0) & (base.n_syn_added == 0)].acc.iloc[0]
    eng = runs[(runs.source == "engine") & (runs.n_base == 1000) & (runs.n_real_added == 0) & (runs.n_syn_added == 0)]
    assert at0 == pytest.approx(eng.top1.mean())
    assert a.bases[1000].seed_matrix.shape[1] == 3


def test_paper_source_only_and_unknown_source():
    runs = _paper_and_engine()
    a = analyse(runs, "Toy", "Net", "closed", "EDM", source="paper", n_boot=20)
    assert a.source == "paper" and a.bases[1000].seed_matrix is None
    with pytest.raises(FitError, match="source 'import'"):
        analyse(runs, "Toy", "Net", "closed", "EDM", source="import")


def test_pooled_sources_count_a_seedless_run_as_one_observation_never_a_seed():
    runs = _paper_and_engine()
    a = analyse(runs, "Toy", "Net", "closed", "EDM", source="all", n_boot=20)
    assert a.source == "all"
    fit = a.bases[1000]
    assert fit.seed_matrix.shape[1] == 3          # the paper's mean is not a fourth seed
    pts = fit.points
    at0 = pts[(pts.n_real_added == 0) & (pts.n_syn_added == 0)].iloc[0]
    sel = runs[(runs.n_base == 1000) & (runs.n_real_added == 0) & (runs.n_syn_added == 0) & (runs.augmentation == "real")]
    assert at0.acc == pytest.approx(sel.top1.mean())  # 3 engine seeds + 1 published mean, 4 observations
    assert fit.noise["seeds"] == 3


def test_surface_points_never_turns_a_missing_seed_into_a_seed():
    runs = _paper_and_engine()
    points, matrix = surface_points(runs, 1000, "closed", "EDM")
    assert matrix.shape[1] == 3


# ------------------------------------------------------------------ 2. IR per generator and source

def _ir_runs():
    rng = np.random.default_rng(2)
    rows = []
    for source, seeds in (("paper", [None]), ("engine", [0, 1, 2])):
        for n_base in (500, 5000):
            for seed in seeds:
                noise = 0 if seed is None else rng.normal(0, 0.2)
                base = 60.0 + noise
                rows += [(source, n_base, "real", None, 0, seed, base),
                         (source, n_base, "closed", "EDM", n_base, seed, base + 3 + noise),
                         (source, n_base, "closed", "EDM-tiny", n_base, seed, base - 6),
                         (source, n_base, "open", "CIFAKE", n_base, seed, base + 2)]
    frame = pd.DataFrame(rows, columns=["source", "n_base", "augmentation", "generator", "n_syn_added", "seed", "top1"])
    frame["dataset"], frame["classifier"], frame["n_real_added"] = "Toy", "Net", 0
    frame["seed"] = frame.seed.astype("Int64")
    return frame


def test_ir_is_per_closed_generator_open_generator_and_source():
    ir = improvement_ratio(_ir_runs(), "Toy", "Net")
    keys = set(zip(ir.source, ir.generator_closed, ir.generator_open))
    assert keys == {(s, g, "CIFAKE") for s in ("paper", "engine") for g in ("EDM", "EDM-tiny")}
    paper_edm = ir[(ir.source == "paper") & (ir.generator_closed == "EDM")]
    assert np.allclose(paper_edm.IR, 1.5)           # not averaged with EDM-tiny or engine runs
    tiny = ir[(ir.source == "paper") & (ir.generator_closed == "EDM-tiny")]
    assert np.allclose(tiny.IR, -3.0)


def test_ir_has_an_interval_over_seeds_where_seeds_exist():
    ir = improvement_ratio(_ir_runs(), "Toy", "Net")
    eng = ir[(ir.source == "engine") & (ir.generator_closed == "EDM")]
    assert eng.IR_lo.notna().all() and (eng.IR_lo <= eng.IR).all() and (eng.IR <= eng.IR_hi).all()
    assert ir[ir.source == "paper"].IR_lo.isna().all()


# ------------------------------------------------------------------ 3. degenerate Eq. 1 fits

def test_eq1_fit_running_onto_the_c2_bound_is_not_identified():
    # Tuples that rise then fall with the real ratio: Eq. 1 cannot bend down, and least squares
    # runs to the c2 -> 1 boundary (the ImageNet-100 best:aic case).
    nb = np.full(8, 26000.0)
    r = np.array([0.2, 0.4, 0.6, 0.8, 1, 2, 3, 4])
    y = np.array([6.0, 9, 12.7, 13.4, 13.4, 11.1, 8.9, 7.2])
    out = fit_eq1(nb, r * nb, y * nb, 10 / 130_000)
    assert not out["identified"] and out["reason"]


def test_degenerate_published_fit_is_not_reported_as_an_answer(paper_runs):
    a = analyse(paper_runs, "ImageNet-100", "ResNet-50", "closed", "DiT", features="best:aic", n_boot=30)
    assert a.c1 is None and a.c2 is None and a.c1_ci is None
    assert "not identified" in a.eq1_error
    ans = a.syn_for_real(26000, 26000)
    assert "eq1" not in ans and "not identified" in ans["eq1_error"]


def test_well_posed_fit_is_identified():
    nb = np.repeat([1000.0, 5000.0], 3)
    r = np.tile([1.0, 2.0, 3.0], 2)
    y = np.exp(np.log(0.9) * 0.5 * nb / 1000) * (2.5 ** r - 1)
    out = fit_eq1(nb, r * nb, y * nb, 1 / 2000)
    assert out["identified"] and out["c2"] == pytest.approx(2.5, rel=1e-4)


# ------------------------------------------------------------------ 4. tuples at any measured base

def test_engine_runs_at_a_base_the_paper_did_not_use_get_tuples():
    rng = np.random.default_rng(4)
    eng = make_runs(_seeded_points(2000, rng, sd=0.05) + _seeded_points(8000, rng, sd=0.05), dataset="CIFAR-10",
                    classifier="ResNet-110", n_total=50_000, seeds=(0, 1, 2))
    eng = _with_source(eng, "engine")
    a = analyse(eng, "CIFAR-10", "ResNet-110", "closed", "EDM", n_boot=0)
    assert sorted({t["n_base"] for t in a.tuples}) == [2000, 8000]
    assert a.c1 is not None


def test_paper_grid_applies_to_paper_source_and_left_out_bases_say_why(paper_runs):
    a = analyse(paper_runs, "CIFAR-10", "ResNet-110", "closed", "EDM", n_boot=0)
    assert sorted({t["n_base"] for t in a.tuples}) == [500, 5000, 25000]
    assert any("50,000" in line or "50000" in line for line in [d["reason"] for d in a.dropped] + a.warnings)
    grid_ratios = {t["ratio"] for t in a.tuples}
    assert grid_ratios == {1.0, 2.0, 3.0}
