"""store/ behaviour the other store tests leave open, each pinned by its observable result
(written for the mutation survivors of issue 19; fast, no processes)."""
import json

import pandas as pd

from store import progress
from store import runs as store_runs


def test_progress_round_trip_and_one_line(tmp_path):
    path = tmp_path / "s.duckdb"
    assert list(progress.for_jobs(path).columns) == progress.COLUMNS  # no store yet: empty, same columns
    store_runs.init_store(path)
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
