"""`engine run --base synthetic` (appendix G.1) and `--task zero-shot` (G.2) end to end on digits with tiny
models, and their runs on the Scaling page beside the paper's Tab. 20 and Tab. 21."""
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from engine.cli import app
from store import runs as store_runs
from store import synthetic as store_synthetic
from tests.classifiers.test_zero_shot import build_tiny_bert
from tests.execution.test_open_set_runs import render_noisy_digits
from tests.processes import fresh_store

pytestmark = pytest.mark.slow  # trains classifiers and runs a dashboard page

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
runner = CliRunner()
FAST = ["--seeds", "1", "--recipe", "iterations=20", "--quality", "off"]


def with_set(tmp_path):
    db = fresh_store(tmp_path)
    res = runner.invoke(app, ["synthetic", "import", "noisy", "--dataset", "digits", "--from",
                              str(render_noisy_digits(tmp_path / "noisy", per_class=10)), "--db", str(db)])
    assert res.exit_code == 0, res.output
    return db, store_synthetic.open_set("noisy", db)["synthetic_set_id"]


def scaling_trace(db, monkeypatch, chart_key: str, name_start: str) -> dict:
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.switch_page("views/scaling.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [chart] = [c for c in at.get("plotly_chart") if c.proto.id.endswith(chart_key) or chart_key in c.proto.id]
    traces = json.loads(chart.proto.spec)["data"]
    assert {t["name"] for t in traces} >= {"paper: ImageNet-10 · SD2", "paper: ImageNet-10 · SD3"}
    [ours] = [t for t in traces if t["name"].startswith(name_start)]
    return ours


def as_list(v):
    if isinstance(v, dict) and "bdata" in v:
        import base64
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def test_synthetic_base_runs_end_to_end_and_on_the_scaling_page(tmp_path, monkeypatch):
    db, set_id = with_set(tmp_path)
    args = ["run", "--dataset", "digits", "--base", "synthetic", "--generator", "noisy", "--n-base", "50",
            "--added", "0,0.5N,N", *FAST, "--db", str(db)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "3 runs written" in res.output, res.output
    rows = store_runs.query_runs(db, base="synthetic")
    assert sorted(rows.n_real_added) == [0, 25, 50] and set(rows.n_syn_added) == {0}
    assert set(rows.augmentation) == {"real"} and set(rows.generator) == {"noisy"}
    assert set(rows.synthetic_set_id) == {set_id} and set(rows.n_base) == {50}
    configs = [json.loads(c) for c in rows.config]
    assert all(c["base"] == "synthetic" and c["generator_id"] == set_id for c in configs)
    assert len(store_runs.query_runs(db, source="engine")) == 0   # never pooled with real-base runs
    # Rerunning stores nothing new: the identity is the same.
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "already stored" in again.output and \
        len(store_runs.query_runs(db, base="synthetic")) == 3

    ours = scaling_trace(db, monkeypatch, "scaling_g1", "digits · SmallCNN · noisy")
    want = rows.sort_values("n_real_added").top1.tolist()
    assert np.allclose(as_list(ours["y"]), want)
    assert as_list(ours["x"])[1:] == [0.5, 1.0]


def test_zero_shot_runs_end_to_end_and_on_the_scaling_page(tmp_path, monkeypatch):
    db, set_id = with_set(tmp_path)
    bert = build_tiny_bert(tmp_path / "bert")
    res = runner.invoke(app, ["run", "--dataset", "digits", "--task", "zero-shot", "--text-encoder", str(bert),
                              "--augmentation", "open", "--generator", "noisy", "--n-base", "50",
                              "--added", "0,0.2N,N", *FAST, "--db", str(db)])
    assert res.exit_code == 0 and "3 runs written" in res.output, res.output
    rows = store_runs.query_runs(db, task="zero-shot").sort_values("n_syn_added")
    assert list(rows.n_syn_added) == [0, 10, 50] and list(rows.augmentation) == ["real", "open", "open"]
    assert rows.generator.isna().iloc[0] and list(rows.generator.iloc[1:]) == ["noisy", "noisy"]
    configs = [json.loads(c) for c in rows.config]
    assert all(c["class_split"] == {"seen": list("01234"), "unseen": list("56789")} for c in configs)
    assert len({c["text_encoder_sha256"] for c in configs}) == 1
    # Each run's real images are of the seen classes only.
    from engine.data.loaders import load_digits_dataset
    from engine.execution.plan import base_and_additions
    from engine.spec import validate
    ds = load_digits_dataset()
    spec = validate({"dataset": "digits", "n_base": 50, "added": "0", "task": "zero-shot", "text_encoder": str(bert)})
    base, added = base_and_additions(ds, spec, 0)
    assert len(base) == 50 and set(ds.train_y[base]) == {0, 1, 2, 3, 4} and len(added) == 0
    assert len(store_runs.query_runs(db, source="engine")) == 0

    ours = scaling_trace(db, monkeypatch, "scaling_g2", "digits · SmallCNN · noisy")
    assert np.allclose(as_list(ours["y"]), rows.top1.tolist())   # the real-only run starts the line
    assert as_list(ours["x"])[1:] == [0.2, 1.0]
