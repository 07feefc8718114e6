"""docs/own-data.md, run as written (issue 27): every `engine` command of its bash blocks, in order, on a
10-class folder of small PNGs this test writes. To finish in about a minute the study commands get a small
classifier and short training appended (`--classifier smallcnn --size 8`, and for --yes 2 seeds, 30
iterations, a 2,000-image EDM), and ResNet-110 reads SmallCNN; nothing else is changed."""
import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from store import jobs
from store import runs as store_runs
from tests.execution.test_study_plan import write_classes

DOC = Path(__file__).resolve().parents[2] / "docs" / "own-data.md"
SMALL = ["--classifier", "smallcnn", "--size", "8"]
FAST = ["--seeds", "2", "--recipe", "iterations=30", "--generator-option", "train_images=2000", "--quality", "off"]


def doc_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S)
    return [shlex.split(line)[1:] for block in blocks for line in block.splitlines() if line.startswith("engine ")]


def test_the_page_names_each_step_in_order():
    names = [c[0] for c in doc_commands()]
    assert names == ["study", "study", "study", "study", "equiv", "advise"]


@pytest.mark.slow
def test_own_data_page_runs_end_to_end(tmp_path, monkeypatch):
    write_classes(tmp_path / "data" / "cells")
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "s.duckdb"
    runner = CliRunner()
    outputs = []
    for args in doc_commands():
        args = ["SmallCNN" if a == "ResNet-110" else a for a in args]
        if args[0] == "study":
            args += SMALL + (FAST if "--yes" in args else [])
        res = runner.invoke(app, [*args, "--db", str(db)])
        assert res.exit_code in ((0, 1) if args[0] == "equiv" else (0,)), (args, res.output)
        outputs.append(" ".join(res.output.split()))
    plan_text, plan_json, ran, queued, equiv, advise = outputs
    assert "Study plan for folder:data/cells" in plan_text and "54 classifier runs, 2 generator trainings" in plan_text
    assert json.loads(plan_json)["runs"] == 54
    assert "verdict (grade" in ran and len(store_runs.query_runs(db, source="engine")) == 36
    assert "queued 4 job(s)" in queued and len(jobs.list_jobs(db)) == 4
    assert "verdict (grade" in equiv and "cost: labelling 120 images at $0.10: $12" in equiv
    assert "Next runs" in advise or "left out" in advise
