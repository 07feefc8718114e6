"""Issue #26 items 5-7: the published equations against their own runs, the open choices, two claims."""
import json

import numpy as np
import pytest

from engine.analysis.checks import (claim_c2_above_one, claim_closed_below_open, equation_brackets,
                                    paper_brackets, setting_bases)
from engine.analysis.equivalence import eq1_inverse
from engine.analysis.fit import analyse
from engine.analysis.paper import paper_runs
from engine.analysis.sensitivity import EPS_VALUES, joint_region, sensitivity
from tests.conftest import make_runs

CIFAR = ("CIFAR-10", "ResNet-110", "closed", "EDM")


@pytest.fixture(scope="module")
def brackets():
    return {r: paper_brackets(r) for r in ("total", "printed")}


def test_21_of_59_measured_real_runs_lie_on_the_wrong_side_of_the_published_equations(brackets):
    for rows in brackets.values():
        assert sum(r["real_points"] for r in rows) == 59
        assert sum(r["wrong_side"] for r in rows) == 21
        assert {r["equation"]: r["wrong_side"] for r in rows} == {2: 2, 3: 4, 4: 3, 5: 4, 6: 4, 8: 2, 9: 2}
        beyond = sum(r["wrong_side_beyond_noise"] for r in rows)
        assert 0 < beyond < 21
    json.dumps(brackets, allow_nan=False)


def test_eq3_at_25000_r1_predicts_fewer_images_than_two_runs_that_fall_short(brackets):
    eq3 = next(r for r in brackets["total"] if r["equation"] == 3)
    p = next(p for p in eq3["bracket_points"] if p["n_base"] == 25000 and p["n_real_added"] == 25000)
    assert p["equation_n_syn_added"] / 25000 == pytest.approx(0.81, abs=0.01)
    assert p["wrong_side"] and [c["n_syn_added"] for c in p["contradicting"]] == [25000, 50000]
    assert p["below"] == 50000 and p["above"] == 75000
    assert all(c["gap"] < 0 for c in p["contradicting"])


def test_the_equation_that_made_the_runs_is_on_no_wrong_side_and_another_is_caught():
    c1, c2, tau = 0.9, 2.5, 1 / 2000
    pts = []
    for b in (500, 2000):
        pts.append((b, "real", 0, 50 + 10 * np.log(b)))
        pts += [(b, "real", r * b, 50 + 10 * np.log(b + r * b)) for r in (1, 2, 3)]
        pts += [(b, "syn", s * b, 50 + 10 * np.log(b + eq1_inverse(b, s * b, c1, c2, tau))) for s in (1, 2, 4, 8, 16)]
    bases = setting_bases(make_runs(pts), "Toy", "Net", "closed", "EDM")
    right = equation_brackets(bases, c1, c2, tau)
    assert right["real_points"] == 6 and right["wrong_side"] == 0
    wrong = equation_brackets(bases, 0.5, 1.5, tau)
    assert wrong["wrong_side"] > 0


def test_sensitivity_has_a_row_for_every_open_choice():
    runs = {r: paper_runs(r) for r in ("total", "printed")}
    rows = sensitivity(runs["total"], *CIFAR, source="paper", tab9_runs=runs)
    json.dumps(rows, allow_nan=False)
    by = {}
    for r in rows:
        by.setdefault(r["choice"], []).append(r)
        assert set(r) >= {"choice", "value", "c1", "c2", "answer"}
    assert set(by) == {"eps", "features", "loss", "base-only run", "tuples without a root", "Table 9 reading"}
    assert [r["value"] for r in by["eps"]] == list(EPS_VALUES)
    assert [r["value"] for r in by["features"]] == ["paper", "best:loo_rmse", "best:bic"]
    assert [r["value"] for r in by["loss"]] == ["ratio", "log ratio", "absolute"]
    assert [r["value"] for r in by["Table 9 reading"]] == ["total", "printed"]
    assert all(sum(r["default"] for r in group) == 1 for group in by.values())
    default = next(r for r in by["eps"] if r["default"])
    assert default["c2"] == pytest.approx(2.73, abs=0.01) and default["answer"] > 0
    printed = next(r for r in by["Table 9 reading"] if r["value"] == "printed")
    assert printed["c1"] == pytest.approx(1.01, abs=0.01)


def test_joint_region_is_a_closed_polygon_around_the_estimate():
    a = analyse(paper_runs(), *CIFAR, source="paper", n_boot=200)
    j = joint_region(a)
    pts = np.array(j["points"])
    assert len(pts) >= 4 and np.allclose(pts[0], pts[-1])
    assert pts[:, 0].min() < a.c1 < pts[:, 0].max() and pts[:, 1].min() < a.c2 < pts[:, 1].max()
    assert j["kept"] == pytest.approx(0.95 * j["draws"], abs=2)


def test_c2_above_one_is_tested_with_an_interval():
    a = analyse(paper_runs(), *CIFAR, source="paper", n_boot=100)
    c = claim_c2_above_one(a)
    assert c["c2_ci"] is not None and c["c2_ci"][0] > 1 and c["supported"] is True
    assert c["c2"] == pytest.approx(a.c2, rel=0.01)
    json.dumps(c, allow_nan=False)


def test_closed_below_open_c1_is_a_bootstrap_difference_per_dataset_and_classifier():
    rows = claim_closed_below_open(paper_runs(), "CIFAR-10", "ResNet-110", source="paper", n_boot=100)
    assert len(rows) == 1
    r = rows[0]
    assert r["closed"]["generator"] == "EDM" and r["open"]["generator"] == "CIFAKE"
    assert r["difference"] == pytest.approx(r["closed"]["c1"] - r["open"]["c1"])
    assert r["ci"][0] < r["difference"] < r["ci"][1] and r["supported"] in (True, False, None)
    json.dumps(rows, allow_nan=False, default=list)
