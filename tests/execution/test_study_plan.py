"""`engine study DATASET`'s plan (issue 27): bases, amounts and generator from the dataset's size, read from
file listings and headers without decoding the images; then run here or queued, resumable."""
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from engine.cli import app
from engine.execution.study_plan import PlanError, data_facts, plan_bases, plan_study, real_amounts
from store import jobs
from store import runs as store_runs

runner = CliRunner()


def write_classes(root, classes: int = 10, train: int = 24, test: int = 6, size: int = 8) -> None:
    """A folder dataset whose classes a small network can tell apart: each class a bright bar at its own row."""
    rng = np.random.default_rng(0)
    for split, k in (("train", train), ("test", test)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(k):
                img = rng.integers(0, 60, (size, size), dtype=np.uint8)
                img[c % size, :] = 230
                img[:, (c // size) % size] = 180 if c >= size else img[:, 0]
                Image.fromarray(img, "L").save(folder / f"{i}.png")


def test_bases_follow_the_papers_fractions_and_real_amounts_fit_the_split():
    assert plan_bases(50_000, 10) == [500, 5000, 25000]          # CIFAR-10's bases in the paper
    assert plan_bases(12_000, 8) == [120, 1200, 6000]
    assert plan_bases(240, 10) == [20, 120]                      # 1 % is under two images a class: dropped
    with pytest.raises(PlanError, match="too few for a study"):
        plan_bases(60, 10)
    assert real_amounts(500, 50_000) == [0, 500, 1000, 1500]
    assert real_amounts(25_000, 50_000) == [0, 10_000, 15_000, 25_000]   # the paper's 0.4, 0.6, 1 at 25,000


def test_folder_facts_count_classes_without_decoding_images(tmp_path):
    write_classes(tmp_path / "cells", classes=10, train=24)
    (tmp_path / "cells" / "train" / "class3" / "zz_broken.png").write_bytes(b"not an image at all")
    facts = data_facts(f"folder:{tmp_path / 'cells'}")
    assert facts.n_train == 241 and facts.classes == 10 and facts.shape == (8, 8, 1)
    assert facts.class_counts["class3"] == 25 and facts.stored == "folder:cells"
    assert data_facts(f"folder:{tmp_path / 'cells'}", size=16).shape == (16, 16, 1)
    with pytest.raises(PlanError, match="has no train/ folder"):
        data_facts(f"folder:{tmp_path}")


def test_plan_of_a_folder_counts_runs_hours_and_disk(tmp_path):
    write_classes(tmp_path / "cells")
    plan = plan_study(f"folder:{tmp_path / 'cells'}", classifier="smallcnn", size=8, device="cpu")
    assert plan.bases == [20, 120] and plan.generator == "edm" and plan.preset == "tiny"
    assert [g["added"] for g in plan.grids] == ["0,N,2N,3N", "N,2N,3N,4N,5N", "0,48,72,N", "N,2N,3N,4N,5N"]
    assert plan.runs == (4 + 5 + 4 + 5) * 3 and plan.generator_trainings == 2
    assert plan.disk_bytes == (100 + 600) * 8 * 8 * 1
    assert plan.estimate["hours"]["hours"] > 0 and "bench figures" in plan.estimate["hours"]["basis"]
    big = plan_study("cifar10", device="cpu")
    assert big.bases == [500, 5000, 25000] and big.runs == (4 + 5) * 3 * 3
    assert plan_study("imagenet100", device="gpu").generator == "dit"


def test_study_plan_json_for_a_folder_and_digits(tmp_path):
    write_classes(tmp_path / "cells")
    res = runner.invoke(app, ["study", f"folder:{tmp_path / 'cells'}", "--plan", "--json", "--db",
                              str(tmp_path / "s.duckdb")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["runs"] == 54 and out["generator_trainings"] == 2 and out["disk_bytes"] > 0
    assert out["hours"]["hours"] > 0 and out["data"]["classes"] == 10 and len(out["grids"]) == 4
    assert all(g["hours"]["hours"] > 0 for g in out["grids"]) and not (tmp_path / "s.duckdb").exists()
    digits = json.loads(runner.invoke(app, ["study", "digits", "--plan", "--json"]).stdout)
    assert digits["runs"] == 96 and digits["bases"] == [20, 50, 100, 200] and digits["generator_trainings"] == 4
    # without --yes a dataset other than digits is planned, not run
    res = runner.invoke(app, ["study", f"folder:{tmp_path / 'cells'}", "--db", str(tmp_path / "s.duckdb")])
    assert res.exit_code == 0 and "nothing run: add --yes" in res.output and not (tmp_path / "s.duckdb").exists()


@pytest.mark.parametrize("args, message", [
    (["study", "digits", "--json"], "--json prints the plan only: add --plan"),
    (["study", "digits", "--plan", "--yes"], "--plan runs nothing"),
    (["study", "digits", "--yes", "--queue"], "choose one"),
    (["study", "nosuch"], "unknown dataset 'nosuch'"),
    (["study", "cifar10", "--traditional-baseline"], "--traditional-baseline is the digits study's"),
    (["study", "folder:/no/such/folder", "--plan"], "does not exist"),
    (["study", "cifar10", "--generator", "gan", "--plan"], "unknown generator 'gan'"),
])
def test_bad_study_input_is_one_line(tmp_path, args, message):
    res = runner.invoke(app, [*args, "--db", str(tmp_path / "s.duckdb")])
    assert res.exit_code == 2 and message in " ".join(res.output.split())
    assert not (tmp_path / "s.duckdb").exists()


def test_queue_sends_each_grid_once(tmp_path):
    write_classes(tmp_path / "cells")
    db = tmp_path / "s.duckdb"
    args = ["study", f"folder:{tmp_path / 'cells'}", "--queue", "--classifier", "smallcnn", "--db", str(db)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "queued 4 job(s)" in res.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "queued 0 job(s), 4 already queued or done" in again.output
    specs = [json.loads(s) for s in jobs.list_jobs(db).spec]
    assert sorted(s["n_base"] for s in specs) == [20, 20, 120, 120]


@pytest.mark.slow
def test_folder_study_runs_with_the_tiny_preset_and_gives_a_verdict(tmp_path):
    write_classes(tmp_path / "cells")
    db = tmp_path / "s.duckdb"
    args = ["study", f"folder:{tmp_path / 'cells'}", "--yes", "--classifier", "smallcnn", "--seeds", "2",
            "--recipe", "iterations=30", "--generator-option", "train_images=2000", "--quality", "off",
            "--db", str(db)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = store_runs.query_runs(db, source="engine")
    assert len(rows) == 18 * 2 and set(rows.dataset) == {"folder:cells"}
    text = " ".join(res.output.split())
    assert "Study plan for folder:" in text and "verdict (grade" in text and "engine advise" in text
    again = runner.invoke(app, args)    # resumable: nothing trains twice
    assert again.exit_code == 0 and len(store_runs.query_runs(db, source="engine")) == 36
