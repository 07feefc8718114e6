"""store/ behaviour the other store tests leave open, each pinned by its observable result
(written for the mutation survivors of issue 19; fast, no processes)."""
import json

import pandas as pd
import pytest

from store import artifacts, jobs, progress, quality
from store import exchange as store_exchange
from store import runs as store_runs
from store.db import StoreError, connect, migrate


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


T0 = 1_700_000_000.0  # the tests' clock: epoch seconds passed as `now`


def test_job_lifecycle_with_an_injected_clock(tmp_path):
    path = tmp_path / "q.duckdb"
    assert jobs.list_jobs(path).empty and list(jobs.list_jobs(path).columns) == jobs.COLUMNS
    assert jobs.busy_workers("node-a", 60, path) == 0
    _empty_store(path)
    first = jobs.submit({"dataset": "digits"}, path, now=T0)
    second = jobs.submit({"dataset": "cifar10"}, path, max_attempts=1, max_hours=2.5, now=T0 + 1)
    queued = jobs.list_jobs(path, "queued")
    assert list(queued.job_id) == [first, second] and jobs.list_jobs(path, "running").empty
    row = jobs.get(first, path)
    assert (row["spec"], row["attempts"], row["max_attempts"], row["status"]) == ({"dataset": "digits"}, 0, 3, "queued")
    assert jobs.get(second, path)["max_hours"] == 2.5 and jobs.get("nope", path) is None
    assert pd.Timestamp(row["created_at"]) == pd.Timestamp(T0, unit="s")  # naive UTC of `now`

    jobs.register_worker("w1", "node-a", 11, "cpu", 1, path, now=T0)
    jobs.register_worker("w2", "node-b", 12, "cpu", None, path, now=T0)
    got = jobs.claim("w1", path, now=T0 + 10)  # the oldest first
    assert (got["job_id"], got["status"], got["worker_id"], got["attempts"]) == (first, "running", "w1", 1)
    assert jobs.busy_workers("node-a", 60, path, now=T0 + 70) == 1       # heartbeat 60 s ago: alive
    assert jobs.busy_workers("node-a", 60, path, now=T0 + 70.5) == 0     # just past the window
    assert jobs.busy_workers("node-b", 60, path, now=T0 + 10) == 0
    assert jobs.heartbeat(first, "w1", path, now=T0 + 20) == "owned"
    assert jobs.heartbeat(first, "w2", path, now=T0 + 20) == "lost"
    jobs.progress(first, "w1", 2, 5, path)
    jobs.progress(first, "w2", 4, 5, path)  # not its job: ignored
    assert (jobs.get(first, path)["runs_done"], jobs.get(first, path)["runs_planned"]) == (2, 5)

    # Stale after 30 s without a heartbeat: back to the queue with a note, then given up after max_attempts.
    assert jobs.requeue_stale(30, path, now=T0 + 49) == 0
    assert jobs.requeue_stale(30, path, now=T0 + 51) == 1
    row = jobs.get(first, path)
    assert (row["status"], row["worker_id"]) == ("queued", None)
    assert row["error"] == "worker w1 stopped heartbeating (attempt 1)"
    assert jobs.heartbeat(first, "w1", path, now=T0 + 52) == "lost"
    got = jobs.claim("w2", path, now=T0 + 60)
    assert got["job_id"] == first and got["attempts"] == 2 and got["runs_done"] is None
    jobs.release(first, "w2", path)  # a stopped worker hands it back, the attempt uncounted
    assert (jobs.get(first, path)["status"], jobs.get(first, path)["attempts"]) == ("queued", 1)
    got = jobs.claim("w2", path, now=T0 + 70)
    assert got["job_id"] == first and got["attempts"] == 2
    assert jobs.claim("w1", path, stale_after_s=30, now=T0 + 80)["job_id"] == second
    assert jobs.claim("w1", path, now=T0 + 80) is None  # nothing queued
    # second (max_attempts 1) goes stale: failed; first (attempt 2 of 3) is requeued with both notes.
    assert jobs.requeue_stale(30, path, now=T0 + 200) == 2
    assert jobs.get(second, path)["status"] == "failed"
    assert jobs.get(second, path)["error"] == "worker w1 stopped heartbeating (attempt 1); gave up after 1 attempts"
    assert jobs.get(first, path)["error"] == ("worker w1 stopped heartbeating (attempt 1); "
                                              "worker w2 stopped heartbeating (attempt 2)")

    # Cancelling: queued at once, running on request (the worker ends it), finished jobs refuse.
    jobs.claim("w1", path, now=T0 + 300)
    assert jobs.heartbeat(first, "w1", path, now=T0 + 301) == "owned"
    assert jobs.cancel(first, path, now=T0 + 302) == "cancelling"
    assert jobs.heartbeat(first, "w1", path, now=T0 + 303) == "cancel"
    assert jobs.cancelled(first, "w2", ["r1"], path) is False
    assert jobs.cancelled(first, "w1", ["r1"], path, now=T0 + 304) is True
    row = jobs.get(first, path)
    assert (row["status"], row["error"].endswith("cancelled while running"), json.loads(row["run_ids"])) == (
        "cancelled", True, ["r1"])
    third = jobs.submit({}, path, now=T0 + 400)
    assert jobs.cancel(third, path, now=T0 + 401) == "cancelled"
    with pytest.raises(StoreError, match="cancelled"):
        jobs.cancel(third, path)
    with pytest.raises(StoreError, match="no job 'nope'"):
        jobs.cancel("nope", path)

    # A stale job whose cancel was requested ends cancelled, not requeued.
    fourth = jobs.submit({}, path, now=T0 + 500)
    jobs.claim("w2", path, now=T0 + 500)
    jobs.cancel(fourth, path)
    assert jobs.requeue_stale(30, path, now=T0 + 600) == 1 and jobs.get(fourth, path)["status"] == "cancelled"

    # finish and fail: only the owner of a running job ends it.
    fifth = jobs.submit({}, path, now=T0 + 700)
    jobs.claim("w1", path, now=T0 + 700)
    assert jobs.finish(fifth, "w2", ["x"], path) is False
    assert jobs.finish(fifth, "w1", ["r2", "r3"], path, now=T0 + 710) is True
    assert jobs.finish(fifth, "w1", ["r4"], path) is False  # no longer running
    row = jobs.get(fifth, path)
    assert (row["status"], json.loads(row["run_ids"]), row["error"]) == ("done", ["r2", "r3"], None)
    assert pd.Timestamp(row["finished_at"]) == pd.Timestamp(T0 + 710, unit="s")
    sixth = jobs.submit({}, path, now=T0 + 800)
    jobs.claim("w1", path, now=T0 + 800)
    assert jobs.fail(sixth, "w1", "out of memory", path) is True
    assert (jobs.get(sixth, path)["status"], jobs.get(sixth, path)["error"], jobs.get(sixth, path)["run_ids"]) == (
        "failed", "out of memory", None)

    jobs.touch_worker("w2", path, now=T0 + 900)
    jobs.unregister_worker("w1", path)
    with connect(path, read_only=True) as con:
        workers = dict(con.execute("SELECT worker_id, epoch(seen_at) FROM workers").fetchall())
    assert workers == {"w2": T0 + 900}


def test_lock_conflicts_are_told_from_other_errors():
    from store.db import _is_lock_conflict
    assert _is_lock_conflict(OSError('IO Error: Could not set lock on file "s.duckdb": Conflicting lock is held'))
    assert _is_lock_conflict(RuntimeError("Lock held by another process"))
    assert _is_lock_conflict(RuntimeError("Can't open a connection to same database file with a different "
                                          "configuration than existing connections"))
    assert not _is_lock_conflict(RuntimeError("Constraint Error: conflict on key"))   # no lock
    assert not _is_lock_conflict(RuntimeError("IO Error: lock file is corrupt"))       # a lock, no conflict


def test_run_queries_filter_count_and_export(paper_db, tmp_path):
    from store import jobs
    runs = store_runs.query_runs(paper_db)
    cifar = runs[runs.dataset == "CIFAR-10"]
    s = store_runs.summary(paper_db, dataset="CIFAR-10")
    assert (s["total"], s["matching"], s["sources"]) == (len(runs), len(cifar), ["paper"])
    assert s["pairs"] == [("CIFAR-10", "ResNet-110")]
    assert store_runs.summary(paper_db, dataset="none") == {"total": len(runs), "matching": 0, "sources": [], "pairs": []}
    assert store_runs.has_note(paper_db, "20,000") and store_runs.has_note(paper_db, "20,000", dataset="CIFAR-10")
    assert not store_runs.has_note(paper_db, "20,000", dataset="BloodMNIST")
    keys = list(cifar.run_key[:3])
    assert store_runs.existing_run_keys(keys + ["nope"], paper_db) == set(keys)
    assert store_runs.existing_run_keys([], paper_db) == set()
    assert store_runs.existing_run_keys(keys, tmp_path / "none.duckdb") == set()
    assert jobs.run_ids_for(keys + ["nope"], paper_db) == sorted(cifar.run_id[:3])
    with pytest.raises(StoreError, match="unknown run column 'bogus'"):
        store_runs.query_runs(paper_db, columns=["n_base", "bogus"])
    assert list(store_runs.query_runs(paper_db, columns=["n_base", "top1"]).columns) == ["n_base", "top1"]
    # One generator, or every generator of the augmentation, beside the setting's real runs.
    open_all = store_runs.setting_runs(paper_db, "ImageNet-100", "ResNet-50", "open")
    open_sd3 = store_runs.setting_runs(paper_db, "ImageNet-100", "ResNet-50", "open", "SD3")
    assert set(open_all.augmentation) == {"real", "open"} and len(open_all) == len(open_sd3)
    assert store_runs.setting_runs(paper_db, "ImageNet-100", "ResNet-50", "open", "DiT").augmentation.eq("real").all()
    for out, filters in ((tmp_path / "a.csv", {"n_base": 5000}), (tmp_path / "b.csv", {"dataset": "CIFAR-10"})):
        n = store_exchange.export_runs(out, paper_db, **filters)
        assert n == len(store_runs.query_runs(paper_db, **filters)) == len(pd.read_csv(out)) > 0


def test_point_means_count_a_repeated_base_run_once(paper_db):
    means = store_runs.point_means(paper_db, dataset="CIFAR-10", classifier="ResNet-110")
    runs = store_runs.query_runs(paper_db, dataset="CIFAR-10", classifier="ResNet-110")
    at = means[(means.n_base == 5000) & (means.augmentation == "closed") & (means.generator == "EDM")]
    assert at[at.added == 25_000].acc.item() == 86.17 and at[at.added == 25_000].published.item()
    base = runs[(runs.n_base == 5000) & (runs.n_real_added == 0) & (runs.n_syn_added == 0)]
    distinct = base.drop_duplicates(["seed", "top1", "run_key", "source"])
    assert at[at.added == 0].acc.item() == pytest.approx(distinct.top1.mean())
    assert at[at.added == 0].rows.item() == len(distinct)
    # Every curve (base, augmentation, generator) starts at its base's base-only mean, once.
    curves = means[means.added > 0][["n_base", "augmentation", "generator"]].drop_duplicates()
    starts = means[means.added == 0][["n_base", "augmentation", "generator"]]
    assert len(starts) == len(curves) and set(map(tuple, starts.values)) == set(map(tuple, curves.values))


def test_import_range_edges_and_replacing_rows(tmp_path):
    from tests.store.test_exchange import GOOD
    path = tmp_path / "i.duckdb"
    _empty_store(path)

    def attempt(name, **cells):
        frame = GOOD.copy().astype(object)
        for col, value in cells.items():
            frame.loc[1, col] = value
        frame.to_csv(tmp_path / name, index=False)
        return store_exchange.import_runs(tmp_path / name, path)

    with pytest.raises(StoreError, match="row 2: n_syn_added = -1 is negative"):
        attempt("a.csv", n_syn_added=-1)
    with pytest.raises(StoreError, match=r"row 2: top1 = -0.5 is outside 0-100 \(percent\)"):
        attempt("b.csv", top1=-0.5)
    assert attempt("c.csv", top1=0.0) == (3, 0)  # 0 % is a (bad) accuracy, not an error
    rows = store_runs.query_runs(path).to_dict("records")
    changed = [{**r, "top1": 42.0} for r in rows]
    store_runs.insert_runs(changed, path)                # same run keys: kept as they were
    assert sorted(store_runs.query_runs(path).top1) == sorted(r["top1"] for r in rows)
    store_runs.insert_runs(changed, path, replace=True)  # replaced, keys and ids unchanged
    after = store_runs.query_runs(path)
    assert list(after.top1) == [42.0] * 3 and set(after.run_id) == {r["run_id"] for r in rows}


def test_sets_of_a_store_from_before_loss_curves(tmp_path):
    path = tmp_path / "old.duckdb"
    with connect(path) as con:
        migrate(con, 6)  # generators without loss_curve, no quality table
        con.execute("INSERT INTO generators (generator_id, dataset, n_base, indices_hash, preset, seed, train_images, "
                    "checkpoint) VALUES ('g', 'digits', 20, 'h', 'tiny', 0, 100, 'g.pt')")
        con.execute("INSERT INTO synthetic_sets (synthetic_set_id, generator_id, n_images, per_class, seed, path) "
                    "VALUES ('g-s0', 'g', 10, 1, 0, 'g.npz')")
    sets = quality.list_sets(path)
    assert list(sets.synthetic_set_id) == ["g-s0"] and sets.loss_curve.isna().all()
    assert quality.query_quality(path).empty


def test_export_filters_go_in_as_safe_literals(tmp_path):
    path = tmp_path / "e.duckdb"
    _empty_store(path)
    row = {"run_id": "r", "run_key": "k", "source": "import", "dataset": "O'Brien", "classifier": "Net",
           "augmentation": "real", "generator": None, "n_base": 10, "n_real_added": 0, "n_syn_added": 0,
           "seed": 0, "top1": 50.0, "n_total": 100}
    store_runs.insert_runs([row], path)
    assert store_exchange.export_runs(tmp_path / "o.csv", path, dataset="O'Brien", n_base=10) == 1
    assert pd.read_csv(tmp_path / "o.csv").dataset.item() == "O'Brien"


def test_store_reads_for_the_dashboard(paper_db, tmp_path):
    from store.db import _first_line
    rows = store_runs.paper_rows()
    assert all(isinstance(r["top5"], float) for r in rows if r["classifier"] == "ResNet-50")
    assert all(r["top5"] is None for r in rows if r["classifier"] != "ResNet-50")
    assert store_runs.distinct_values("dataset", paper_db) == ["BloodMNIST", "CIFAR-10", "ImageNet-100"]
    assert store_runs.distinct_values("classifier", paper_db, dataset="ImageNet-100") == ["ResNet-50", "ViT-B/32"]
    keys = store_runs.setting_keys(paper_db)
    assert len(keys) == 7 and ("CIFAR-10", "ResNet-110", "open", "CIFAKE") in keys and keys == sorted(keys)
    ir_rows = store_runs.improvement_rows(paper_db)
    base_only = (ir_rows.n_real_added == 0) & (ir_rows.n_syn_added == 0)
    one_to_one = ir_rows.augmentation.isin(["closed", "open"]) & (ir_rows.n_syn_added == ir_rows.n_base)
    assert base_only.any() and one_to_one.any() and (base_only | one_to_one).all()
    assert list(ir_rows.columns) == ["source", "dataset", "classifier", "augmentation", "generator", "n_base",
                                     "n_real_added", "n_syn_added", "seed", "top1", "traditional"]
    stamps = store_runs.run_changes(paper_db)
    assert ("CIFAR-10", "ResNet-110") in stamps and all(t != "None" and t[:2] == "20" for _, t in stamps.values())
    assert _first_line(RuntimeError("first\nsecond")) == "first" and _first_line(RuntimeError()) == "RuntimeError"


def test_quality_keeps_config_and_detail_as_json(tmp_path):
    path = _store_with_generators(tmp_path)
    quality.write_metrics("gen-a-s0", [{"metric": "fid", "value": 1.0, "config": {"k": 1}, "detail": [1, 2]}], path)
    row = quality.query_quality(path).iloc[0]
    assert (json.loads(row.config), json.loads(row.detail)) == ({"k": 1}, [1, 2])


def test_busy_workers_default_to_the_present(tmp_path):
    path = tmp_path / "w.duckdb"
    _empty_store(path)
    jobs.submit({}, path)
    jobs.register_worker("w", "node-a", 1, "cpu", 1, path)
    jobs.claim("w", path)
    assert jobs.busy_workers("node-a", 3600, path) == 1
    assert jobs.busy_workers("node-a", 3600, path, now=T0) == 1 and jobs.busy_workers("node-a", 0, path, now=T0 + 1e10) == 0


def test_schema_version_of_an_empty_version_table_is_zero_and_empty_amounts_are_named(tmp_path):
    from store.db import current_version
    from tests.store.test_exchange import GOOD
    with connect(tmp_path / "v.duckdb") as con:
        assert current_version(con) == 0
        con.execute("CREATE TABLE schema_version (version INTEGER)")  # created, nothing applied yet
        assert current_version(con) == 0
    path = tmp_path / "i.duckdb"
    _empty_store(path)
    frame = GOOD.copy().astype(object)
    frame.loc[1, "n_real_added"] = None
    frame.to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(StoreError, match="row 2: n_real_added is empty"):
        store_exchange.import_runs(tmp_path / "e.csv", path)
