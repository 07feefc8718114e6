"""The `engine` CLI on the published runs: answers, JSON, and one-line errors."""
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from engine.cli import app
from store import runs as store_runs

runner = CliRunner()
SETTINGS = [("CIFAR-10", "ResNet-110", "closed"), ("CIFAR-10", "ResNet-110", "open"),
            ("BloodMNIST", "ResNet-110", "closed"), ("ImageNet-100", "ResNet-50", "closed"),
            ("ImageNet-100", "ResNet-50", "open"), ("ImageNet-100", "ViT-B/32", "closed"),
            ("ImageNet-100", "ViT-B/32", "open")]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def fit_json(db, dataset, classifier, augmentation, *extra):
    res = invoke("fit", "--dataset", dataset, "--classifier", classifier, "--augmentation", augmentation,
                 "--json", "--n-boot", 50, "--db", db, *extra)
    return res, json.loads(res.stdout)


@pytest.mark.parametrize("dataset, classifier, augmentation", SETTINGS)
def test_every_published_setting_has_c2_above_one(paper_db, dataset, classifier, augmentation):
    res, out = fit_json(paper_db, dataset, classifier, augmentation)
    assert res.exit_code == 0, res.output
    assert {"c1", "c2", "tau", "tuples", "dropped"} <= set(out)
    assert out["c2"] > 1 and out["c1"] > 0
    for t in out["tuples"]:
        assert {"n_base", "n_real_added", "n_syn_added"} <= set(t)


def test_cifar10_5000_closed_needs_more_synthetic_than_real(paper_db):
    res, out = fit_json(paper_db, "CIFAR-10", "ResNet-110", "closed")
    at_5000 = [t for t in out["tuples"] if t["n_base"] == 5000]
    assert at_5000 and all(t["n_syn_added"] > t["n_real_added"] for t in at_5000)
    assert out["tau"] == pytest.approx(10 / 50_000)


def test_equiv_both_directions(paper_db):
    res = invoke("equiv", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed",
                 "--n-base", 5000, "--n-real-added", 5000, "--json", "--db", paper_db)
    assert res.exit_code == 0, res.output
    fwd = json.loads(res.stdout)
    assert fwd["surface"] > 5000 and fwd["eq1"] > 5000
    lo, hi = fwd["eq1_ci"]
    assert lo <= fwd["eq1"] <= hi
    res = invoke("equiv", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed",
                 "--n-base", 5000, "--n-syn-added", fwd["surface"], "--json", "--db", paper_db)
    back = json.loads(res.stdout)
    assert back["surface"] == pytest.approx(5000, rel=1e-4)
    text = invoke("equiv", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed",
                  "--n-base", 5000, "--n-real-added", 50000, "--db", paper_db)
    assert text.exit_code == 0 and "extrapolation" in text.output


@pytest.mark.parametrize("args, message", [
    (["fit", "--dataset", "CIFAR10", "--classifier", "ResNet-110", "--augmentation", "closed"],
     "unknown dataset 'CIFAR10'; valid: BloodMNIST, CIFAR-10, ImageNet-100"),
    (["fit", "--dataset", "CIFAR-10", "--classifier", "resnet", "--augmentation", "closed"],
     "unknown classifier 'resnet'; valid: ResNet-110"),
    (["fit", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "synthetic"],
     "unknown augmentation 'synthetic'; valid: closed, open"),
    (["fit", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed", "--eps", "-1"],
     "--eps -1.0 must be a positive number"),
    (["fit", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed",
      "--features", "log_n_real,bogus"], "unknown feature 'bogus'"),
    (["equiv", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed",
      "--n-base", "5000"], "exactly one of --n-real-added or --n-syn-added"),
    (["runs", "export", "out.xlsx"], "unknown export format '.xlsx'"),
    (["runs", "import", "missing.csv"], "no such file"),
])
def test_errors_are_one_line_and_nonzero(paper_db, args, message):
    before = len(store_runs.query_runs(paper_db))
    res = invoke(*args, "--db", paper_db)
    assert res.exit_code != 0
    assert message in " ".join(res.output.split())
    assert res.output.strip().startswith("error:") and res.output.count("error:") == 1
    assert len(store_runs.query_runs(paper_db)) == before


def test_too_few_points_says_how_many(paper_db, tmp_path):
    import pandas as pd
    rows = pd.DataFrame({"dataset": ["Mine"] * 3, "classifier": ["Net"] * 3,
                         "augmentation": ["real", "real", "closed"], "generator": [None, None, "EDM"],
                         "n_base": [50] * 3, "n_real_added": [0, 50, 0], "n_syn_added": [0, 0, 50],
                         "seed": [0] * 3, "top1": [50.0, 60.0, 52.0], "n_total": [500] * 3})
    rows.to_csv(tmp_path / "mine.csv", index=False)
    assert invoke("runs", "import", tmp_path / "mine.csv", "--db", paper_db).exit_code == 0
    res = invoke("fit", "--dataset", "Mine", "--classifier", "Net", "--augmentation", "closed", "--db", paper_db)
    assert res.exit_code == 1
    assert "3 measured points, a surface with 4 parameters needs at least 5" in " ".join(res.output.split())


def test_runs_list_and_export(paper_db, tmp_path):
    res = invoke("runs", "list", "--dataset", "BloodMNIST", "--augmentation", "real", "--db", paper_db)
    assert res.exit_code == 0 and "7 runs" in res.output
    res = invoke("runs", "export", tmp_path / "b.csv", "--dataset", "BloodMNIST", "--db", paper_db)
    assert res.exit_code == 0 and (tmp_path / "b.csv").exists()


@pytest.mark.slow
def test_console_script_exit_code(paper_db):
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "fit", "--dataset", "Nope", "--classifier", "x",
                           "--augmentation", "closed", "--db", str(paper_db)], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown dataset 'Nope'" in proc.stderr


@pytest.mark.slow
def test_cli_analysis_does_not_import_torch(paper_db):
    code = ("import sys; from engine.cli import app; from typer.testing import CliRunner; "
            f"r = CliRunner().invoke(app, ['fit', '--dataset', 'CIFAR-10', '--classifier', 'ResNet-110', "
            f"'--augmentation', 'closed', '--db', r'{paper_db}']); "
            "assert r.exit_code == 0, r.output; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
