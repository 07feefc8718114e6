"""Stores made by earlier versions are brought forward without losing or duplicating a row."""
import duckdb
import pandas as pd

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
