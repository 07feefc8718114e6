"""The verdict from the command line (issue 26): equiv leads with one graded verdict, every --json output is
strict JSON, the questions that used to print absurd numbers give sensible verdicts, paper-check counts the
published equations' wrong-side points, fit --sensitivity and claims print their rows."""
import json

import pytest
from typer.testing import CliRunner

from engine.cli import app

runner = CliRunner()
SETTING = ["--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed"]


def strict(text: str):
    """json.loads that refuses NaN and infinities, as a strict consumer would."""
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def equiv(db, *args):
    res = runner.invoke(app, ["equiv", *SETTING, "--json", "--db", str(db), *map(str, args)])
    return res, strict(res.stdout) if res.stdout.strip() else None


def test_equiv_json_carries_one_verdict_with_exactly_its_keys(paper_db):
    res, out = equiv(paper_db, "--n-base", 5000, "--n-real-added", 5000)
    assert res.exit_code == 0, res.output
    v = out["verdict"]
    assert set(v) == {"value", "lo", "hi", "level", "coverage", "grade", "method", "text"}
    assert v["grade"] == "A" and v["lo"] < v["value"] < v["hi"] and 0.9 <= v["coverage"] <= 1
    assert set(out["methods"]) == {"bracket", "surface", "eq1"}
    assert "covers" in out["labels"]["eq1_ci"] and out["labels"]["c2_ci"].startswith("nominal 95 %")


def test_the_plain_answer_leads_with_the_verdict(paper_db):
    res = runner.invoke(app, ["equiv", *SETTING, "--n-base", "5000", "--n-real-added", "5000", "--db", str(paper_db)])
    assert res.exit_code == 0
    first = res.output.splitlines()[0]
    assert first.startswith("verdict (grade A):") and "synthetic images" in first


def test_questions_that_printed_absurd_numbers_give_sensible_verdicts(paper_db):
    # 500,000 more real images at n_base 5,000 printed 2.3e44 synthetic images
    res, out = equiv(paper_db, "--n-base", 5000, "--n-real-added", 500000)
    assert out["verdict"]["grade"] == "D" and out["verdict"]["value"] is None
    assert out["verdict"]["lo"] <= 100 * 5000 and out["eq1"] is None and "more than 100 x n_base" in out["eq1_error"]
    # one more real image printed "1 synthetic image [0, 8.0e9]"
    res, out = equiv(paper_db, "--n-base", 5000, "--n-real-added", 1)
    assert out["verdict"]["value"] is not None and out["verdict"]["hi"] is not None and out["verdict"]["hi"] < 100
    # a base of 1e9 printed "0 synthetic images, 95 % interval [0, nan]"
    res = runner.invoke(app, ["equiv", *SETTING, "--n-base", "1000000000", "--n-real-added", "5000", "--db", str(paper_db)])
    assert res.exit_code == 2 and "larger than CIFAR-10's whole training set" in res.output
    # BloodMNIST, n_base 1,200, N 3,600: a third of the surface's draws have no answer, its interval was finite
    res = runner.invoke(app, ["equiv", "--dataset", "BloodMNIST", "--classifier", "ResNet-110", "--augmentation",
                              "closed", "--n-base", "1200", "--n-real-added", "3600", "--json", "--db", str(paper_db)])
    out = strict(res.stdout)
    surface = out["methods"]["surface"]
    if surface["no_answer"] and surface["no_answer"] > 0.025:
        assert surface["hi"] is None and (out.get("surface_ci") is None or out["surface_ci"][1] is None)
    assert not any(" 0 %" in w for w in out["warnings"])


@pytest.mark.parametrize("args", [
    ["fit", *SETTING, "--json"], ["fit", *SETTING, "--json", "--sensitivity"],
    ["fit", "--dataset", "ImageNet-100", "--classifier", "ResNet-50", "--augmentation", "closed", "--json"],
    ["equiv", *SETTING, "--n-base", "25000", "--n-syn-added", "25000", "--json"],
    ["ir", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--json"],
    ["claims", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--json", "--n-boot", "50"],
], ids=lambda a: " ".join(a[:2]))
def test_every_json_output_is_strict(paper_db, args):
    res = runner.invoke(app, [*args, "--db", str(paper_db)])
    assert res.exit_code in (0, 1), res.output
    strict(res.stdout)


def test_paper_check_counts_the_published_equations_against_their_own_runs():
    res = runner.invoke(app, ["paper-check", "--json", "--n-boot", "50"])
    rows = strict(res.stdout)
    assert sum(r["wrong_side"] for r in rows) == 21 and sum(r["real_points"] for r in rows) == 59
    for r in rows:
        assert len(r["bracket_points"]) == r["real_points"]
        assert r["labels"]["c2_ci"] == "nominal 95 %, covers 35 % in simulation"
        assert all(w.startswith("n_base ") for w in r["worst_wrong_side"])


def test_fit_sensitivity_covers_every_open_choice(paper_db):
    res = runner.invoke(app, ["fit", *SETTING, "--sensitivity", "--json", "--db", str(paper_db)])
    rows = strict(res.stdout)["sensitivity"]
    assert {r["choice"] for r in rows} >= {"eps", "features", "loss", "base-only run",
                                           "tuples without a root", "Table 9 reading"}
    assert all(set(r) >= {"choice", "value", "c1", "c2", "answer"} for r in rows)
    assert sum(r["default"] for r in rows if r["choice"] == "eps") == 1


def test_claims_are_tested_not_assumed(paper_db):
    res = runner.invoke(app, ["claims", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--json",
                              "--n-boot", "50", "--db", str(paper_db)])
    out = strict(res.stdout)
    assert {tuple(r["setting"][:3]) for r in out["c2_above_one"]} == {("CIFAR-10", "ResNet-110", "closed"),
                                                                       ("CIFAR-10", "ResNet-110", "open")}
    assert len(out["closed_below_open"]) == 1 and "difference" in out["closed_below_open"][0]
