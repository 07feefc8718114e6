"""End to end with a user's synthetic images: digits rendered with noise and small shifts, written to
class folders, imported, queued from the Queue page, run by a worker, and read on the Budget
calculator as an open-set generator beside real augmentation."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from engine.analysis.fit import analyse
from engine.cli import app
from engine.data.loaders import load_digits_dataset
from store import jobs
from store import runs as store_runs
from store import synthetic as store_synthetic
from tests.processes import engine_rows, fresh_store

pytestmark = pytest.mark.slow  # trains classifiers in a worker process and runs dashboard pages

ROOT = Path(__file__).resolve().parents[2]
WORKER = [sys.executable, "-m", "engine.cli", "worker", "--poll", "0.2", "--heartbeat", "0.5", "--threads", "1"]
N_BASE, SEEDS = 30, 2


def render_noisy_digits(root: Path, per_class: int = 8) -> Path:
    """Stand-ins for a generator trained elsewhere: digits shifted by a pixel and noised, saved as
    16x16 PNGs (the import resizes them to digits' 8x8)."""
    ds = load_digits_dataset()
    rng = np.random.default_rng(7)
    for c in range(10):
        folder = root / str(c)
        folder.mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(ds.train_y == c)[-per_class:]):
            img = np.roll(ds.train_x[i, ..., 0].astype(float), tuple(rng.integers(-1, 2, 2)), axis=(0, 1))
            img = np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).resize((16, 16), Image.NEAREST).save(folder / f"sample_{k:03d}.png")
    return root


def test_imported_set_runs_through_queue_worker_and_budget_page(tmp_path, monkeypatch):
    db = fresh_store(tmp_path)
    monkeypatch.setenv("EQUIV_DB", str(db))
    runner = CliRunner()
    res = runner.invoke(app, ["synthetic", "import", "noisy", "--dataset", "digits",
                              "--from", str(render_noisy_digits(tmp_path / "noisy")), "--db", str(db)])
    assert res.exit_code == 0 and "imported 80 images as noisy" in " ".join(res.output.split()), res.output

    # Queue an open-set grid and a real grid from the Queue page.
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
    at.switch_page("views/queue.py")
    at.run()
    at.radio(key="queue_augmentation").set_value("open").run()
    assert at.selectbox(key="queue_open_set").options == ["noisy (digits)"]
    at.text_input(key="queue_n_base").set_value(str(N_BASE)).run()
    at.text_input(key="queue_seeds").set_value(str(SEEDS)).run()
    at.text_input(key="queue_recipe").set_value("iterations=20").run()
    at.text_input(key="queue_added").set_value("0,N,3N").run()   # 3N = 90 > the 80 imported
    assert any("which it holds only 8" in e.value for e in at.error) and at.button(key="queue_submit").disabled
    at.text_input(key="queue_added").set_value("0,N,2N").run()
    assert not at.exception and any("6 classifier trainings" in i.value for i in at.info)
    at.button(key="queue_submit").click().run()
    at.radio(key="queue_augmentation").set_value("real").run()
    at.button(key="queue_submit").click().run()
    assert [json.loads(s)["augmentation"] for s in jobs.list_jobs(db).spec] == ["open", "real"]

    proc = subprocess.run([*WORKER, "--db", str(db), "--idle-exit", "1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr
    assert list(jobs.list_jobs(db).status) == ["done", "done"]
    rows = engine_rows(db)
    opened = rows[rows.augmentation == "open"]
    # base runs are shared by the two grids: 2 base + 4 open + 4 real
    assert len(rows) == 10 and rows.run_key.is_unique
    assert set(opened.generator) == {"noisy"} and sorted(opened.n_syn_added) == [30, 30, 60, 60]
    assert set(opened.synthetic_set_id) == {store_synthetic.open_set("noisy", db)["synthetic_set_id"]}
    # the worker measured the imported set as it measures a closed-set one (cheap level; no base set,
    # so no memorisation), for the Generators page
    from store import quality as store_quality
    measured = store_quality.query_quality(db, opened.synthetic_set_id.iloc[0])
    assert {"fd", "fd_real", "diversity", "diversity_real"} <= set(measured.metric)
    assert "memorisation" not in set(measured.metric)

    # The runs join the analysis as the published open-set runs do: one setting, one surface.
    result = analyse(store_runs.query_runs(db), "digits", "SmallCNN", "open", "noisy", n_boot=0)
    assert result.bases[N_BASE].surface is not None and len(result.bases[N_BASE].points) == 5

    at.switch_page("views/budget.py")
    at.run()
    at.selectbox(key="budget_dataset").set_value("digits").run()
    at.selectbox(key="budget_augmentation").set_value("open").run()
    assert at.selectbox(key="budget_generator").value == "noisy"
    assert not at.exception and not any(e.value.startswith("No fit") for e in at.error)
    assert any(e.label.startswith("Runs in the fit (10)") for e in at.expander)
    assert any(m.label == "This base's surface: synthetic images" for m in at.metric)

    # While runs use it, the set is not removed unless forced; then the runs stay.
    res = runner.invoke(app, ["synthetic", "remove", "noisy", "--db", str(db)])
    assert res.exit_code == 2 and "4 stored runs use synthetic set 'noisy'" in " ".join(res.output.split())
    res = runner.invoke(app, ["synthetic", "remove", "noisy", "--force", "--db", str(db)])
    assert res.exit_code == 0 and len(engine_rows(db)) == 10


def test_ir_of_engine_runs_closed_set_against_an_imported_set(tmp_path):
    """IR (Eq. 7) end to end: real, closed-set (a tiny EDM trained on the base) and open-set (imported
    images) runs from `engine run`, paired by seed, then `engine ir` over them."""
    db = fresh_store(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["synthetic", "import", "noisy", "--dataset", "digits",
                              "--from", str(render_noisy_digits(tmp_path / "noisy", per_class=4)), "--db", str(db)])
    assert res.exit_code == 0, res.output
    common = ["run", "--db", str(db), "--dataset", "digits", "--n-base", "20", "--seeds", "2",
              "--recipe", "iterations=20"]
    for extra in (["--augmentation", "closed", "--added", "0,N", "--generator-option", "train_images=2000"],
                  ["--augmentation", "open", "--generator", "noisy", "--added", "N"]):
        res = runner.invoke(app, [*common, *extra])
        assert res.exit_code == 0, res.output
    rows = engine_rows(db)
    assert sorted(rows.augmentation) == ["closed", "closed", "open", "open", "real", "real"]

    res = runner.invoke(app, ["ir", "--dataset", "digits", "--classifier", "SmallCNN", "--json", "--db", str(db)])
    assert res.exit_code == 0, res.output
    row, = json.loads(res.stdout)
    assert (row["source"], row["n_base"], row["generator_closed"], row["generator_open"], row["traditional"],
            row["n_seeds"]) == ("engine", 20, "EDM-tiny", "noisy", "crop", 2)
    mean = {aug: rows[rows.augmentation == aug].top1.mean() for aug in ("real", "closed", "open")}
    assert row["gain_closed"] == pytest.approx(mean["closed"] - mean["real"])
    assert row["gain_open"] == pytest.approx(mean["open"] - mean["real"])
    if row["gain_open"] != 0:
        assert row["IR"] == pytest.approx(row["gain_closed"] / row["gain_open"])
    # Two seeds: an interval, or the reason there is none (the open gain's sign flips in resamples).
    assert row["note"].startswith("95% interval over 2 seeds") or "changes sign" in row["note"]
