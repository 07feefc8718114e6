"""The dashboard's store access at scale: per-setting change stamps and the Runs table paged in SQL."""
import pytest
import json
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from store import exchange as store_exchange
from store import runs as store_runs
from tests.app.test_pages import table_with
pytestmark = pytest.mark.slow  # each test runs dashboard pages under Streamlit's AppTest

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


def many_runs(n_seeds=50, dataset="Mine", classifier="Net") -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for n_base in (100, 200):
        for aug, added in [("real", 0), ("real", 100), ("real", 200), ("closed", 100), ("closed", 200)]:
            for seed in range(n_seeds):
                rows.append({"dataset": dataset, "classifier": classifier, "augmentation": aug,
                             "generator": "EDM" if aug == "closed" else None, "n_base": n_base,
                             "n_real_added": added if aug == "real" else 0, "n_syn_added": added if aug == "closed" else 0,
                             "seed": seed, "top1": round(float(60 + added / 20 + rng.normal(0, 1)), 2), "n_total": 1000})
    return pd.DataFrame(rows)


def test_a_new_run_changes_only_its_settings_stamp(paper_db, tmp_path):
    from app.common import Stamps
    before = Stamps(paper_db)
    many_runs(2).to_csv(tmp_path / "mine.csv", index=False)
    store_exchange.import_runs(tmp_path / "mine.csv", paper_db)
    after = Stamps(paper_db)
    assert after.pair("CIFAR-10", "ResNet-110") == before.pair("CIFAR-10", "ResNet-110")  # its fit stays cached
    assert after.pair("Mine", "Net") != before.pair("Mine", "Net")
    assert after.all != before.all  # the pickers and counts are store-wide


def test_runs_page_pages_the_table_and_aggregates_the_chart_in_sql(paper_db, tmp_path, monkeypatch):
    frame = many_runs()
    frame.to_csv(tmp_path / "mine.csv", index=False)
    store_exchange.import_runs(tmp_path / "mine.csv", paper_db)
    monkeypatch.setenv("EQUIV_DB", str(paper_db))
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.multiselect(key="runs_dataset").set_value(["Mine"]).run()
    assert not at.exception
    n = len(frame)
    assert f"{n:,} of {n + 168:,} runs" in " ".join(c.value for c in at.caption)
    first = at.dataframe[0].value
    assert len(first) == 200
    at.number_input(key="runs_page").set_value(3).run()
    last = at.dataframe[0].value
    assert len(last) == n - 400 and not set(zip(last.n_base, last.seed, last.top1)) <= set(zip(first.n_base, first.seed, first.top1))
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    real_100 = next(t for t in fig["data"] if t["name"] == "n_base 100 · real")
    # Each point is the mean over its 50 seeds, computed by DuckDB.
    want = frame[(frame.n_base == 100) & (frame.augmentation == "real")].groupby("n_real_added").top1.mean()
    got = real_100["y"]
    if isinstance(got, dict):  # plotly's typed-array encoding
        import base64
        got = np.frombuffer(base64.b64decode(got["bdata"]), dtype=np.dtype(got["dtype"])).tolist()
    assert np.allclose(got, want.to_numpy())


def test_scaling_shows_the_pairs_chosen_when_the_store_has_many(paper_db, tmp_path, monkeypatch):
    # With more (dataset, classifier) pairs than one chart can show, the page draws and fits only the
    # pairs picked (two by default), not every setting of the store.
    frame = pd.concat([many_runs(3, dataset=f"Set{i}") for i in range(9)], ignore_index=True)
    frame.to_csv(tmp_path / "many.csv", index=False)
    store_exchange.import_runs(tmp_path / "many.csv", paper_db)
    monkeypatch.setenv("EQUIV_DB", str(paper_db))
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.switch_page("views/scaling.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    picker = at.multiselect(key="scaling_pairs")
    assert len(picker.options) > 9 and len(picker.value) == 2
    table = table_with(at, "c2 [interval]")
    assert {f"{d} · {c}" for d, c in zip(table.dataset, table.classifier)} <= set(picker.value)
    picker.set_value(["Set3 · Net"]).run()
    assert set(table_with(at, "c2 [interval]").dataset) == {"Set3"}
