"""Next-run advice (issue 27): candidates simulated from the current fit and the runs' own noise, ranked by
the verdict's expected narrowing per GPU-hour, each with the Queue fields that run it."""
import numpy as np
import pytest

from engine.analysis.advise import Candidate, candidates, noise_sd, setting_advice, width
from engine.analysis.cost import CostModel
from engine.analysis.fit import analyse
from engine.spec import validate
from store import runs as store_runs
from tests.cost_store import timed_digits_store


def test_width_counts_open_sides_to_the_cap():
    assert width({"lo": 10.0, "hi": 30.0}, 100) == 20
    assert width({"lo": 10.0, "hi": None}, 100) == 100 * 100 - 10
    assert width({"lo": None, "hi": None}, 100) == 100 * 100


def test_candidates_are_new_amounts_seeds_and_bases(tmp_path):
    db = tmp_path / "s.duckdb"
    timed_digits_store(db)
    runs = store_runs.query_runs(db, dataset="digits")
    a = analyse(runs, "digits", "SmallCNN", "closed", "EDM-tiny", n_boot=0)
    cs = candidates(a, 50, 50, 800, 80)
    kinds = {c.kind for c in cs}
    assert kinds == {"synthetic", "real", "seeds", "base"}
    at50 = [c for c in cs if c.n_base == 50 and c.kind == "synthetic"]
    assert len(at50) == 3 and not {c.n_added for c in at50} & {50, 100, 200}   # only amounts not measured
    assert all(c.n_base + c.n_added <= 800 for c in cs if c.kind == "real")
    assert {c.n_base for c in cs if c.kind == "base"} <= {32, 71, 200}
    assert noise_sd(runs[runs.source == "engine"]) == pytest.approx(0.6 * np.sqrt(1), rel=0.35)
    assert Candidate(50, "base", 50, 3).points() == [(0, 0), (50, 0), (0, 50)]


def test_advice_ranks_by_expected_shrink_per_hour_and_prefills_runnable_jobs(tmp_path):
    db = tmp_path / "s.duckdb"
    timed_digits_store(db)
    runs = store_runs.query_runs(db, dataset="digits")
    out = setting_advice(runs, CostModel.from_store(db), "digits", "SmallCNN", "closed", "EDM-tiny", 50, 50,
                         sims=2, n_boot=20)
    rows = out["candidates"]
    assert rows and out["width_now"] == width(out["verdict"], 50)
    keys = {"n_base", "kind", "n_added", "seeds", "gpu_hours", "width_now", "width_expected", "shrink_per_gpu_hour"}
    assert all(keys <= set(r) for r in rows)
    shrink = [r["shrink_per_gpu_hour"] for r in rows]
    assert shrink == sorted(shrink, reverse=True)
    for r in rows:
        assert r["shrink_per_gpu_hour"] == pytest.approx((r["width_now"] - r["width_expected"]) / r["gpu_hours"])
        spec = validate(r["queue"])   # every advised run can be queued as it stands
        assert spec.n_base == r["n_base"] and r["n_added"] in spec.added
    # a new base needs a generator trained: it costs more than a new amount at a measured base
    base = [r for r in rows if r["kind"] == "base"]
    syn = [r for r in rows if r["kind"] == "synthetic" and r["n_base"] == 50]
    if base and syn:
        assert min(b["gpu_hours"] for b in base) > min(s["gpu_hours"] for s in syn)


def test_published_means_advise_without_seed_candidates(paper_db):
    runs = store_runs.query_runs(paper_db, dataset="BloodMNIST")
    out = setting_advice(runs, CostModel({}, {}, {}), "BloodMNIST", "ResNet-110", "closed", "EDM", 1200, 1200,
                         sims=1, n_boot=0)
    assert out["noise"] == "means" and "more seeds: the runs are means without seeds" in out["left_out"]
    assert out["candidates"] and all(r["kind"] != "seeds" for r in out["candidates"])


def test_a_folders_advice_queues_the_path_its_newest_job_named(tmp_path):
    """A folder's runs keep only its name; the advice's Queue fields take the path from the newest job
    that named the folder, and say so where no job did (the stored name then stands in)."""
    import json
    from typer.testing import CliRunner
    from engine.cli import app
    from store import jobs
    from store.db import connect
    db = tmp_path / "s.duckdb"
    timed_digits_store(db)
    with connect(db) as con:
        con.execute("UPDATE runs SET dataset = 'folder:cells' WHERE dataset = 'digits'")

    def advice():
        res = CliRunner().invoke(app, ["advise", "--dataset", "folder:cells", "--classifier", "SmallCNN",
                                       "--augmentation", "closed", "--n-base", "50", "--sims", "2", "--n-boot", "20",
                                       "--json", "--db", str(db)])
        assert res.exit_code == 0, res.output
        return [r for r in json.loads(res.output)["candidates"] if r["queue"] is not None]

    assert jobs.folder_forms(tmp_path / "absent.duckdb") == {} and jobs.folder_forms(db) == {}
    before = advice()
    assert before and all(r["queue"]["dataset"] == "folder:cells" for r in before)
    assert all("replace it with folder:/path/to/the/folder" in r["queue_note"] for r in before)
    for when, dataset in ((1.0, f"folder:{tmp_path}/old/cells"), (2.0, f"folder:{tmp_path}/new/cells"),
                          (3.0, f"folder:{tmp_path}/other")):
        jobs.submit(validate({"dataset": dataset, "n_base": 10}).to_dict(), db, now=when)
    assert jobs.folder_forms(db) == {"folder:cells": f"folder:{tmp_path}/new/cells",
                                     "folder:other": f"folder:{tmp_path}/other"}
    after = advice()
    assert [r["n_added"] for r in after] == [r["n_added"] for r in before]
    assert all(r["queue"]["dataset"] == f"folder:{tmp_path}/new/cells" and "queue_note" not in r for r in after)
