"""store/ behaviour the other store tests leave open, each pinned by its observable result
(written for the mutation survivors of issue 19; fast, no processes)."""
import json

import pandas as pd
import pytest

from store import artifacts, progress, quality
from store import runs as store_runs
from store.db import connect, migrate


def _empty_store(path):
    with connect(path) as con:
        migrate(con)


def test_progress_round_trip_and_one_line(tmp_path):
    path = tmp_path / "s.duckdb"
    assert list(progress.for_jobs(path).columns) == progress.COLUMNS  # no store yet: empty, same columns
    _empty_store(path)
    assert progress.for_jobs(path).empty
    running = [{"run": "n_base 20 +20 real, seed 1", "key": "k1", "where": "node-a:4242"},
               {"run": "n_base 20 +40 syn, seed 0", "key": "k2", "where": None}]
    progress.report("job-b", 8, 3, running, path)
    progress.report("job-a", 2, 0, [], path)
    progress.report("job-b", 8, 4, running[:1], path)  # an update replaces the row
    table = progress.for_jobs(path)
    assert list(table.job_id) == ["job-a", "job-b"]
    rows = progress.by_job(path)
    assert (rows["job-b"]["done"], rows["job-b"]["planned"]) == (4, 8)
    assert json.loads(rows["job-b"]["running"]) == running[:1]
    assert progress.describe(rows["job-b"], "running") == "4/8 runs · n_base 20 +20 real, seed 1 on node-a:4242"
    assert progress.describe(rows["job-b"], "done") == "4/8 runs"
    assert progress.describe({"done": 3, "planned": 8, "running": running}, "running") == (
        "3/8 runs · n_base 20 +20 real, seed 1 on node-a:4242; n_base 20 +40 syn, seed 0 (waiting for room)")
    assert progress.describe({"done": 1.0, "planned": 2.0, "running": None}, "running") == "1/2 runs"
    assert progress.describe(None) == ""
    assert isinstance(rows["job-a"]["updated_at"], pd.Timestamp)


def _store_with_generators(tmp_path):
    """Two generators, two synthetic sets and paired engine runs at 1:1 and 2:1 (two seeds)."""
    path = tmp_path / "a.duckdb"
    _empty_store(path)
    for gid, n_base in (("gen-b", 40), ("gen-a", 20)):
        artifacts.upsert_generator({"generator_id": gid, "dataset": "digits", "n_base": n_base, "indices_hash": "h",
                                    "preset": "tiny", "seed": 0, "train_images": 1000, "checkpoint": f"{gid}.pt",
                                    "config": {"lr": 1e-3}, "loss_curve": [[10, 1.5], [1000, 0.3]]}, path)
        artifacts.upsert_synthetic_set({"synthetic_set_id": f"{gid}-s0", "generator_id": gid, "n_images": 100,
                                        "per_class": 10, "seed": 0, "path": f"{gid}.npz"}, path)
    rows = []
    for seed, (base, one, two) in enumerate([(80.0, 84.0, 85.0), (82.0, 85.0, 88.0)]):
        for n_syn, acc in ((0, base), (20, one), (40, two)):
            syn = n_syn > 0
            rows.append({"run_id": f"r{seed}-{n_syn}", "run_key": f"k{seed}-{n_syn}", "source": "engine",
                         "dataset": "digits", "classifier": "SmallCNN", "augmentation": "closed" if syn else "real",
                         "generator": "EDM-tiny" if syn else None, "n_base": 20, "n_real_added": 0,
                         "n_syn_added": n_syn, "seed": seed, "top1": acc, "n_total": 800,
                         "config": json.dumps({"subset_seed": 7}), "generator_id": "gen-a" if syn else None,
                         "synthetic_set_id": "gen-a-s0" if syn else None})
    store_runs.insert_runs(rows, path)
    return path


def test_generators_and_sets_round_trip_and_update(tmp_path):
    path = tmp_path / "none.duckdb"
    assert artifacts.get_generator("gen-a", path) is None and artifacts.get_synthetic_set("x", path) is None
    assert artifacts.artifacts_dir(path) == tmp_path / "artifacts"
    path = _store_with_generators(tmp_path)
    gen = artifacts.get_generator("gen-a", path)
    assert (gen["n_base"], gen["checkpoint"], json.loads(gen["config"])) == (20, "gen-a.pt", {"lr": 1e-3})
    assert artifacts.get_generator("gen-c", path) is None
    assert artifacts.get_synthetic_set("gen-b-s0", path)["generator_id"] == "gen-b"
    artifacts.upsert_generator({"generator_id": "gen-a", "dataset": "digits", "n_base": 20, "indices_hash": "h",
                                "preset": "small", "seed": 0, "train_images": 2000, "checkpoint": "new.pt"}, path)
    gen = artifacts.get_generator("gen-a", path)
    assert (gen["preset"], gen["train_images"], gen["checkpoint"]) == ("small", 2000, "new.pt")
    artifacts.set_memorisation("gen-a", {"copies": 0.01}, path)
    assert json.loads(artifacts.get_generator("gen-a", path)["memorisation"]) == {"copies": 0.01}
    assert artifacts.get_generator("gen-b", path)["memorisation"] is None
    assert list(artifacts.list_generators(path).generator_id) == ["gen-b", "gen-a"]  # oldest first
    assert len(artifacts.list_generators(path)) == 2


def test_quality_rows_replace_per_metric_and_sets_resolve(tmp_path):
    path = tmp_path / "none.duckdb"
    assert quality.query_quality(path).empty and list(quality.query_quality(path).columns)[-1] == "created_at"
    assert quality.list_sets(path).empty and quality.gains_at_ratio(path).empty
    assert quality.subset_seed_of("gen-a", path) is None
    path = _store_with_generators(tmp_path)
    quality.write_metrics("gen-a-s0", [], path)
    assert quality.query_quality(path).empty
    quality.write_metrics("gen-a-s0", [{"metric": "fid", "value": 30.0, "config": {"k": 1}},
                                       {"metric": "kid", "value": 0.02}], path)
    quality.write_metrics("gen-b-s0", [{"metric": "fid", "value": 50.0}], path)
    quality.write_metrics("gen-a-s0", [{"metric": "fid", "value": 25.0, "ci_low": 24.0, "ci_high": 26.0}], path)
    rows = quality.query_quality(path)
    assert list(zip(rows.synthetic_set_id, rows.metric, rows.value)) == [
        ("gen-a-s0", "fid", 25.0), ("gen-a-s0", "kid", 0.02), ("gen-b-s0", "fid", 50.0)]
    assert rows.config.isna().all() and rows.ci_low.iloc[0] == 24.0
    assert list(quality.query_quality(path, "gen-b-s0").value) == [50.0]
    sets = quality.list_sets(path)
    assert list(sets.synthetic_set_id) == ["gen-a-s0", "gen-b-s0"]  # by n_base
    assert list(sets.generator.fillna("")) == ["EDM-tiny", ""] and sets.loss_curve.notna().all()
    for query in ("gen-a-s0", "gen-a", "EDM-tiny"):
        assert list(quality.resolve_sets(query, path).synthetic_set_id) == ["gen-a-s0"]
    assert quality.resolve_sets("nothing", path).empty
    assert quality.subset_seed_of("gen-a", path) == 7 and quality.subset_seed_of("gen-b", path) is None


def test_gains_at_ratio_are_paired_by_seed(tmp_path):
    path = _store_with_generators(tmp_path)
    one, two = quality.gains_at_ratio(path), quality.gains_at_ratio(path, ratio=2.0)
    assert list(one.synthetic_set_id) == ["gen-a-s0"] and one.pairs.item() == 2
    assert one.gain_mean.item() == pytest.approx(3.5) and one.gain_sd.item() == pytest.approx(0.7071068)
    assert two.gain_mean.item() == pytest.approx(5.5) and two.gain_sd.item() == pytest.approx(0.7071068)
    assert quality.gains_at_ratio(path, ratio=3.0).empty
