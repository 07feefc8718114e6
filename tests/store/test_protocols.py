"""Appendix G's runs (a synthetic base, zero-shot) are settings of their own in the store: readers that
do not ask for them never see them, run files carry them, and old stores and old run keys are as they were."""
import duckdb
import pandas as pd
import pytest

from store import db as store_db
from store import exchange as store_exchange
from store import quality as store_quality
from store import runs as store_runs
from store.db import StoreError


def g_rows():
    """A synthetic-base grid and a zero-shot grid on a (dataset, classifier) the published runs use, at
    a base and amounts those runs measure: pooled, they would change every curve and fit there."""
    common = {"source": "engine", "dataset": "CIFAR-10", "classifier": "ResNet-110", "n_base": 5000,
              "n_total": 50000, "traditional": "crop+flip"}
    rows = []
    for k, (added, acc) in enumerate([(0, 11.0), (5000, 12.0)]):
        rows.append({**common, "run_id": f"g1-{k}", "run_key": f"engine:g1-{k}", "augmentation": "real",
                     "generator": "sd2", "n_real_added": added, "n_syn_added": 0, "seed": 0, "top1": acc,
                     "base": "synthetic", "task": "supervised", "synthetic_set_id": "open-x"})
    for k, (aug, syn, acc) in enumerate([("real", 0, 21.0), ("open", 5000, 22.0)]):
        rows.append({**common, "run_id": f"g2-{k}", "run_key": f"engine:g2-{k}", "augmentation": aug,
                     "generator": "sd2" if syn else None, "n_real_added": 0, "n_syn_added": syn, "seed": 0,
                     "top1": acc, "base": "real", "task": "zero-shot", "synthetic_set_id": "open-x" if syn else None})
    return rows


def test_readers_see_appendix_g_runs_only_when_they_ask(paper_db):
    def reads():
        return {
            "runs": store_runs.query_runs(paper_db),
            "keys": store_runs.setting_keys(paper_db, traditional=True),
            "means": store_runs.point_means(paper_db, dataset="CIFAR-10"),
            "ir": store_runs.improvement_rows(paper_db, dataset="CIFAR-10"),
            "pickers": store_runs.picker_values(paper_db),
            "setting": store_runs.setting_runs(paper_db, "CIFAR-10", "ResNet-110", "open", "sd2"),
        }
    before = reads()
    assert store_runs.insert_runs(g_rows(), paper_db) == 4
    after = reads()
    for name in before:
        if isinstance(before[name], pd.DataFrame):
            pd.testing.assert_frame_equal(before[name], after[name], obj=name)
        else:
            assert before[name] == after[name], name
    g1 = store_runs.query_runs(paper_db, base="synthetic")
    assert sorted(g1.top1) == [11.0, 12.0] and set(g1.base) == {"synthetic"}
    g2 = store_runs.query_runs(paper_db, task="zero-shot")
    assert sorted(g2.top1) == [21.0, 22.0] and set(g2.task) == {"zero-shot"}
    assert len(store_runs.query_runs(paper_db, base=None, task=None)) == len(after["runs"]) + 4
    assert store_runs.summary(paper_db)["total"] == len(after["runs"]) + 4


def test_paired_gains_of_a_set_read_only_the_main_protocol(tmp_path):
    db = tmp_path / "s.duckdb"
    store_runs.init_store(db)
    main = {"source": "engine", "dataset": "D", "classifier": "C", "n_base": 10, "seed": 0, "traditional": "crop"}
    store_runs.insert_runs([
        {**main, "run_id": "a", "run_key": "a", "augmentation": "real", "n_real_added": 0, "n_syn_added": 0, "top1": 50.0},
        {**main, "run_id": "b", "run_key": "b", "augmentation": "open", "generator": "s", "n_real_added": 0,
         "n_syn_added": 10, "top1": 54.0, "synthetic_set_id": "open-s"},
        # a zero-shot base-only run at the same base and seed: pooled, it would halve the base accuracy
        {**main, "run_id": "c", "run_key": "c", "augmentation": "real", "n_real_added": 0, "n_syn_added": 0,
         "top1": 0.0, "task": "zero-shot"},
        {**main, "run_id": "d", "run_key": "d", "augmentation": "open", "generator": "s", "n_real_added": 0,
         "n_syn_added": 10, "top1": 90.0, "synthetic_set_id": "open-s", "task": "zero-shot"},
    ], db)
    gains = store_quality.gains_at_ratio(db, 1.0)
    assert list(gains.gain_mean) == [4.0] and list(gains.pairs) == [1]


def test_run_files_carry_the_protocol_and_keep_it_apart(paper_db, tmp_path):
    store_runs.insert_runs(g_rows(), paper_db)
    out = tmp_path / "all.csv"
    n = store_exchange.export_runs(out, paper_db)
    frame = pd.read_csv(out)
    assert n == len(frame) == 168 + 4 and {"base", "task"} <= set(frame.columns)
    assert sorted(frame[frame.source == "engine"].task) == ["supervised", "supervised", "zero-shot", "zero-shot"]
    # Filtered exports can name a protocol.
    assert store_exchange.export_runs(tmp_path / "g2.csv", paper_db, task="zero-shot") == 2

    # The same numbers under the main protocol and under each of appendix G's are three runs.
    one = {"dataset": "Toy", "classifier": "Net", "augmentation": "real", "n_base": 100, "n_real_added": 0,
           "n_syn_added": 0, "seed": 1, "top1": 40.0}
    file = tmp_path / "mixed.csv"
    pd.DataFrame([one, {**one, "task": "zero-shot"}, {**one, "base": "synthetic", "generator": "sd2"},
                  {**one, "base": "", "task": ""}]).to_csv(file, index=False)
    fresh = tmp_path / "fresh.duckdb"
    store_runs.init_store(fresh)
    assert store_exchange.import_runs(file, fresh) == (3, 1)   # the empty cells are the main protocol's
    got = store_runs.query_runs(fresh, source="import", base=None, task=None)
    assert sorted(zip(got.base, got.task)) == [("real", "supervised"), ("real", "zero-shot"),
                                               ("synthetic", "supervised")]
    # A main-protocol row's key is the one imports always gave it (pinned before these columns existed).
    main = got[(got.base == "real") & (got.task == "supervised")]
    pin = tmp_path / "pin.csv"
    pd.DataFrame([{"dataset": "Toy", "classifier": "Net", "augmentation": "closed", "generator": "EDM",
                   "n_base": 100, "n_real_added": 0, "n_syn_added": 50, "seed": 1, "top1": 61.5}]).to_csv(pin, index=False)
    store_exchange.import_runs(pin, fresh)
    assert "import:004fde91aea5d0b3f96e339572ed7e13" in set(store_runs.query_runs(fresh, source="import").run_key)
    assert len(main) == 1


@pytest.mark.parametrize("cells, message", [
    ({"base": "synthetc"}, "row 1: base = 'synthetc' is not one of real, synthetic"),
    ({"task": "fewshot"}, "row 1: task = 'fewshot' is not one of supervised, zero-shot"),
    ({"base": "synthetic"}, "row 1: base = 'synthetic' needs a generator: the synthetic set of its base"),
])
def test_bad_protocol_cells_are_one_line_and_nothing_is_written(tmp_path, cells, message):
    db = tmp_path / "s.duckdb"
    store_runs.init_store(db)
    file = tmp_path / "bad.csv"
    pd.DataFrame([{"dataset": "Toy", "classifier": "Net", "augmentation": "real", "n_base": 100,
                   "n_real_added": 0, "n_syn_added": 0, "top1": 40.0, **cells}]).to_csv(file, index=False)
    with pytest.raises(StoreError) as err:
        store_exchange.import_runs(file, db)
    assert str(err.value) == message
    assert len(store_runs.query_runs(db, base=None, task=None)) == 168


def test_an_older_store_gets_the_main_protocol_and_keeps_its_keys(tmp_path):
    path = tmp_path / "v14.duckdb"
    rows = pd.DataFrame(store_runs.paper_rows())
    cols = ["run_id", "run_key", "source", "dataset", "classifier", "augmentation", "generator", "n_base",
            "n_real_added", "n_syn_added", "top1", "n_total", "config", "note", "traditional"]
    with duckdb.connect(str(path)) as con:
        store_db.migrate(con, target=14)
        con.register("old", rows[cols])
        con.execute(f"INSERT INTO runs ({', '.join(cols)}) SELECT {', '.join(cols)} FROM old")
    # A reader first: it brings the store forward rather than failing on the new columns.
    got = store_runs.query_runs(path)
    assert sorted(got.run_key) == sorted(rows.run_key)
    assert set(got.base) == {"real"} and set(got.task) == {"supervised"}
    with duckdb.connect(str(path)) as con:
        assert store_db.current_version(con) == len(store_db.MIGRATIONS)
