"""Stores made by earlier versions are brought forward without losing or duplicating a row."""
import duckdb
import pandas as pd
import pytest

from store import db as store_db
from store import runs as store_runs


def test_an_older_store_reads_table_9s_row_as_its_total_says(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    store_db.migrate(con, target=4)  # as a store of schema 4 was: Table 9's row as printed (15,000)
    old = pd.DataFrame(store_runs.paper_rows(tab9="printed"))
    cols = ["run_id", "run_key", "source", "dataset", "classifier", "augmentation", "generator", "n_base",
            "n_real_added", "n_syn_added", "top1", "n_total", "config", "note"]
    con.register("old", old[cols])
    con.execute(f"INSERT INTO runs ({', '.join(cols)}) SELECT {', '.join(cols)} FROM old")
    con.close()
    assert store_runs.init_store(path) == 0          # migrates, adds nothing: every run is there
    new = {r["run_key"]: r for r in store_runs.paper_rows()}
    stored = store_runs.query_runs(path)
    assert len(stored) == len(new)
    for r in stored.itertuples():
        assert (r.n_real_added, r.n_syn_added, r.note) == (new[r.run_key]["n_real_added"],
                                                           new[r.run_key]["n_syn_added"], new[r.run_key]["note"])
    row = stored[stored.run_key == "paper:table9:CIFAR-10:ResNet-110:real::25000:15000"].iloc[0]
    assert row.n_real_added == 20_000


def test_runs_lose_their_indexes_but_not_their_rows(tmp_path):
    # Migration 9 rebuilds runs without the ART indexes on run_id and run_key (a bulk import spent most
    # of its time in them); rows, checks and defaults stay.
    path = tmp_path / "v8.duckdb"
    rows = pd.DataFrame(store_runs.paper_rows())
    cols = ["run_id", "run_key", "source", "dataset", "classifier", "augmentation", "generator", "n_base",
            "n_real_added", "n_syn_added", "top1", "top5", "n_total", "config", "note"]
    unique = "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'runs' AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
    with duckdb.connect(str(path)) as con:
        store_db.migrate(con, target=8)
        con.register("old", rows[cols])
        con.execute(f"INSERT INTO runs ({', '.join(cols)}) SELECT {', '.join(cols)} FROM old")
        assert con.execute(unique).fetchall()[0][0] == 2
    assert store_runs.init_store(path) == 0  # migrated; every published run already there
    with duckdb.connect(str(path)) as con:
        assert con.execute(unique).fetchall()[0][0] == 0
        with pytest.raises(duckdb.ConstraintException):  # the checks stay
            con.execute("INSERT INTO runs (run_id, run_key, source, dataset, classifier, augmentation, n_base, "
                        "n_real_added, n_syn_added, top1) VALUES ('a', 'k', 'import', 'D', 'C', 'real', 0, 0, 0, 50)")
        con.execute("INSERT INTO runs (run_id, run_key, source, dataset, classifier, augmentation, n_base, "
                    "n_real_added, n_syn_added, top1) VALUES ('a', 'k', 'import', 'D', 'C', 'real', 1, 0, 0, 50)")
        assert con.execute("SELECT created_at IS NOT NULL FROM runs WHERE run_key = 'k'").fetchall() == [(True,)]
    after = store_runs.query_runs(path, source="paper").set_index("run_key").sort_index()
    want = rows.set_index("run_key").sort_index()
    assert list(after.index) == list(want.index)
    assert (after.top1 == want.top1).all() and (after.run_id == want.run_id).all()
