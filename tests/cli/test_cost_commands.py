"""`engine equiv`'s cost and `engine advise` (issue 27): strict JSON, one-line errors, the store unchanged."""
import json

import pytest
from typer.testing import CliRunner

from engine.cli import app
from tests.cost_store import timed_digits_store

runner = CliRunner()
EQUIV = ["equiv", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed",
         "--n-base", "5000", "--n-real-added", "5000", "--n-boot", "50"]


def test_equiv_json_has_the_cost_of_its_verdict(paper_db):
    res = runner.invoke(app, [*EQUIV, "--json", "--gpu-cost", "2", "--label-cost", "0.1", "--db", str(paper_db)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    cost, v = out["cost"], out["verdict"]
    assert cost["real"]["images"] == 5000 and cost["real"]["label_cost"] == pytest.approx(500)
    assert cost["synthetic"]["images"] == pytest.approx(v["value"]) and cost["synthetic"]["images_ci"] == \
        pytest.approx([v["lo"], v["hi"]])
    s = cost["synthetic"]
    assert s["gpu_cost"] == pytest.approx(2 * (s["generator_hours"] + s["sampling_hours"]))
    assert cost["break_even_label_cost"] == pytest.approx(s["gpu_cost"] / 5000)
    assert cost["cheaper"] in ("real", "synthetic", "unclear")
    assert "the paper's EDM read as EDM-cifar" in cost["basis"]   # and says what it assumed
    text = runner.invoke(app, [*EQUIV, "--gpu-cost", "2", "--label-cost", "0.1", "--db", str(paper_db)]).output
    assert "cost: labelling 5,000 images at $0.10: $500; generating the equivalent" in " ".join(text.split())
    plain = json.loads(runner.invoke(app, [*EQUIV, "--json", "--db", str(paper_db)]).stdout)["cost"]
    assert plain["real"]["label_cost"] is None and plain["synthetic"]["gpu_hours"] == pytest.approx(s["gpu_hours"])


@pytest.mark.parametrize("flag, value", [("--gpu-cost", "-1"), ("--gpu-cost", "nan"), ("--label-cost", "inf")])
def test_bad_prices_are_one_line(paper_db, flag, value):
    res = runner.invoke(app, [*EQUIV, flag, value, "--db", str(paper_db)])
    assert res.exit_code == 2 and "must be a finite, non-negative price" in res.output


def test_advise_json_rows(tmp_path):
    db = tmp_path / "t.duckdb"
    timed_digits_store(db)
    res = runner.invoke(app, ["advise", "--dataset", "digits", "--classifier", "SmallCNN", "--augmentation",
                              "closed", "--n-base", "50", "--sims", "1", "--n-boot", "0", "--top", "4", "--json",
                              "--db", str(db)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["question"] == {"n_base": 50, "amount": 50.0, "direction": "syn_for_real"} and len(out["candidates"]) == 4
    for r in out["candidates"]:
        assert {"n_base", "kind", "n_added", "seeds", "gpu_hours", "width_now", "width_expected",
                "shrink_per_gpu_hour"} <= set(r)
    table = runner.invoke(app, ["advise", "--dataset", "digits", "--classifier", "SmallCNN", "--augmentation",
                                "closed", "--sims", "1", "--n-boot", "0", "--db", str(db)])
    assert table.exit_code == 0 and "Next runs" in table.output


@pytest.mark.parametrize("args, message", [
    (["--sims", "0"], "--sims 0 must be between 1 and 50"),
    (["--n-boot", "5000"], "--n-boot 5000 must be between 0 and 1,000"),
    (["--n-real-added", "-3"], "--n-real-added -3 must be a positive number"),
    (["--top", "-1"], "--top -1 must be 0 (all) or more"),
])
def test_bad_advise_options_are_one_line(paper_db, args, message):
    res = runner.invoke(app, ["advise", "--dataset", "BloodMNIST", "--classifier", "ResNet-110", "--augmentation",
                              "closed", *args, "--db", str(paper_db)])
    assert res.exit_code == 2 and message in " ".join(res.output.split())


def test_advise_unknown_setting_is_one_line(paper_db):
    res = runner.invoke(app, ["advise", "--dataset", "Nope", "--classifier", "ResNet-110", "--augmentation", "closed",
                              "--db", str(paper_db)])
    assert res.exit_code == 2 and "unknown dataset 'Nope'" in res.output
