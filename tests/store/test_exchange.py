"""`engine runs import` refuses bad files before anything is written, and never lets an imported
row rewrite a published result (issue 9, item 3): each bad file gives one line naming the first
bad row, column and value, a non-zero exit, and a store whose every table is unchanged."""
import hashlib
import json
import uuid

import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import app
from store import exchange as store_exchange
from store import runs as store_runs
from store.db import connect

runner = CliRunner()

GOOD = pd.DataFrame({
    "dataset": ["Mine", "Mine", "CIFAR-10"], "classifier": ["Net", "Net", "Net"],
    "augmentation": ["real", "closed", "real"], "generator": [None, "EDM", None],
    "n_base": [100, 100, 500], "n_real_added": [0, 0, 500], "n_syn_added": [0, 100, 0],
    "seed": [0, 0, 1], "top1": [50.0, 55.0, 60.0], "top5": [80.0, 85.0, None],
    "n_total": [1000, 1000, 50_000], "config": ['{"lr": 0.1}', None, None], "note": [None, "x", None]})


def snapshot(db) -> dict:
    """Row count and a checksum of every table."""
    with connect(db, read_only=True) as con:
        tables = [t for (t,) in con.execute("SHOW TABLES").fetchall()]
        return {t: con.execute(f"SELECT count(*), md5(coalesce(string_agg(CAST(x AS VARCHAR), '|' "
                               f"ORDER BY CAST(x AS VARCHAR)), '')) FROM {t} x").fetchall()[0] for t in tables}


def edit(row: int, **values):
    """GOOD with the cells of one data row (1-based, as the error counts) replaced."""
    def make(frame):
        frame = frame.astype(object)
        for col, value in values.items():
            frame.loc[row - 1, col] = value
        return frame
    return make


def write(tmp_path, frame, name="bad.csv"):
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


CORPUS = [
    # n_total: positive, whole, within INTEGER, the paper's value for the paper's datasets, one per dataset
    ("cifar_n_total_huge", edit(3, n_total=1_000_000_000), "row 3: n_total = 1000000000 is not CIFAR-10's 50,000"),
    ("cifar_n_total_small", edit(3, n_total=49_999), "row 3: n_total = 49999 is not CIFAR-10's 50,000"),
    ("n_total_zero", edit(2, n_total=0), "row 2: n_total = 0 must be positive"),
    ("n_total_negative", edit(1, n_total=-5), "row 1: n_total = -5 must be positive"),
    ("n_total_fraction", edit(2, n_total=999.5), "row 2: n_total = 999.5 is not a whole number"),
    ("n_total_beyond_int", edit(1, n_total=3e9), "is outside the INTEGER column's range"),
    ("n_total_two_values", edit(2, n_total=2000), "row 2: n_total = 2000 differs from n_total = 1,000 given for Mine in row 1"),
    ("n_total_text", edit(2, n_total="many"), "row 2: n_total = 'many' is not a number"),
    # accuracies in percent
    ("top5_above_100", edit(2, top5=100.5), "row 2: top5 = 100.5 is outside 0-100 (percent)"),
    ("top5_negative", edit(1, top5=-1), "row 1: top5 = -1"),
    ("top5_text", edit(2, top5="high"), "row 2: top5 = 'high' is not a number"),
    ("top1_above_100", edit(2, top1=101), "row 2: top1 = 101"),
    ("top1_empty", edit(2, top1=None), "row 2: top1 is empty"),
    ("top1_infinite", edit(2, top1="inf"), "row 2: top1 = 'inf' is not a finite number"),
    # names
    ("dataset_empty", edit(2, dataset=None), "row 2: dataset is empty"),
    ("dataset_blank", edit(2, dataset="   "), "row 2: dataset is empty"),
    ("classifier_padded", edit(2, classifier=" Net"), "row 2: classifier = ' Net' has leading or trailing spaces"),
    ("generator_padded", edit(2, generator="EDM "), "row 2: generator = 'EDM ' has leading or trailing spaces"),
    ("augmentation_unknown", edit(2, augmentation="mixed"), "row 2: augmentation = 'mixed' is not one of real, closed, open"),
    # integers within the column types, and the augmentation rules
    ("n_base_zero", edit(2, n_base=0), "row 2: n_base = 0 must be positive"),
    ("n_base_beyond_int", edit(2, n_base=2**31), "row 2: n_base = 2147483648 is outside the INTEGER column's range"),
    ("seed_fraction", edit(2, seed=1.5), "row 2: seed = 1.5 is not a whole number"),
    ("seed_beyond_int", edit(1, seed=99_999_999_999), "row 1: seed = 99999999999 is outside"),
    ("real_added_negative", edit(1, n_real_added=-1), "row 1: n_real_added = -1 is negative"),
    ("real_run_with_synthetic", edit(1, n_syn_added=50), "row 1: n_syn_added = 50 but the run's augmentation is real"),
    ("synthetic_run_with_real", edit(2, n_real_added=50), "row 2: n_real_added = 50 but a synthetic run adds no real"),
    ("config_not_json", edit(1, config="{lr: 0.1"), "row 1: config is not valid JSON"),
    # whole files
    ("missing_column", lambda f: f.drop(columns=["top1"]), "import file lacks column(s) top1"),
]


@pytest.mark.parametrize("name, mutate, message", CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_import_is_one_line_and_changes_nothing(paper_db, tmp_path, name, mutate, message):
    for suffix in (".csv", ".parquet") if name.startswith("cifar") else (".csv",):
        before = snapshot(paper_db)
        file = write(tmp_path, mutate(GOOD.copy()), "bad" + suffix)
        res = runner.invoke(app, ["runs", "import", str(file), "--db", str(paper_db)])
        assert res.exit_code != 0
        out = res.output.strip()
        assert out.startswith("error:") and "\n" not in out and "Traceback" not in out, out
        assert message in out, out
        assert snapshot(paper_db) == before


@pytest.mark.parametrize("content, message", [
    (b"PAR1 this is no parquet file", "cannot read"),
    (b"\x00\x01\x02", "cannot read"),
], ids=["damaged_parquet", "binary_parquet"])
def test_damaged_file_is_one_line(paper_db, tmp_path, content, message):
    before = snapshot(paper_db)
    file = tmp_path / "broken.parquet"
    file.write_bytes(content)
    res = runner.invoke(app, ["runs", "import", str(file), "--db", str(paper_db)])
    assert res.exit_code != 0 and res.output.strip().startswith("error:") and message in res.output
    assert snapshot(paper_db) == before


def test_n_total_must_match_the_store(paper_db, tmp_path):
    assert store_exchange.import_runs(write(tmp_path, GOOD), paper_db) == (3, 0)
    before = snapshot(paper_db)
    other = GOOD.iloc[:2].assign(n_total=[1000, 1200], seed=[5, 5])
    with pytest.raises(store_runs.StoreError, match="row 2: n_total = 1200 differs from n_total = 1,000 already stored for Mine"):
        store_exchange.import_runs(write(tmp_path, other, "more.csv"), paper_db)
    assert snapshot(paper_db) == before


def test_good_file_lands_with_the_keys_it_always_had(paper_db, tmp_path):
    # run_key is made in SQL; it must equal the Python recipe earlier imports used, or
    # re-importing an old file would duplicate its runs.
    frame = GOOD.copy().astype(object)
    frame.loc[0, "dataset"] = "Blüten 日本"
    frame.loc[1, "config"] = '{"path": "C:\\\\data", "q": "\\"x\\""}'
    frame.loc[0, "n_total"] = 1000
    file = write(tmp_path, frame, "good.parquet")
    assert store_exchange.import_runs(file, paper_db) == (3, 0)
    assert store_exchange.import_runs(file, paper_db) == (0, 3)
    stored = store_runs.query_runs(paper_db, source="import")
    for rec in frame.to_dict("records"):
        rec = {k: None if not isinstance(v, str) and pd.isna(v) else v for k, v in rec.items()}
        identity = {"dataset": rec["dataset"], "classifier": rec["classifier"], "augmentation": rec["augmentation"],
                    "generator": rec["generator"], "n_base": int(rec["n_base"]), "n_real_added": int(rec["n_real_added"]),
                    "n_syn_added": int(rec["n_syn_added"]), "seed": int(rec["seed"]), "top1": float(rec["top1"]),
                    "config": rec["config"]}
        key = "import:" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
        row = stored[stored.run_key == key]
        assert len(row) == 1, key
        assert str(uuid.UUID(row.run_id.item())) == row.run_id.item()
        assert row.dataset.item() == rec["dataset"]


def test_import_bumps_only_its_settings_change_stamp(paper_db, tmp_path):
    before = store_runs.run_changes(paper_db)
    store_exchange.import_runs(write(tmp_path, GOOD.iloc[:2]), paper_db)
    after = store_runs.run_changes(paper_db)
    assert after[("Mine", "Net")][0] == 1 and ("Mine", "Net") not in before
    assert all(after[k] == v for k, v in before.items())  # the published settings' caches stay valid


def test_export_streams_and_refuses_a_missing_folder(paper_db, tmp_path):
    n = store_exchange.export_runs(tmp_path / "blood.csv", paper_db, dataset="BloodMNIST", augmentation=["real", "closed"])
    back = pd.read_csv(tmp_path / "blood.csv")
    assert n == len(back) == 25 and set(back.dataset) == {"BloodMNIST"}
    assert not list(tmp_path.glob(".*part"))  # no temporary file left behind
    with pytest.raises(store_runs.StoreError, match="does not exist"):
        store_exchange.export_runs(tmp_path / "nowhere" / "x.parquet", paper_db)
    # What was exported imports again, checked like any file (the published rows become imports).
    assert store_exchange.import_runs(tmp_path / "blood.csv", paper_db) == (25, 0)


def test_one_setting_query_reads_only_that_setting(paper_db):
    runs = store_runs.setting_runs(paper_db, "CIFAR-10", "ResNet-110", "closed", "EDM")
    assert set(runs.augmentation) == {"real", "closed"} and set(runs.dataset) == {"CIFAR-10"}
    every = store_runs.query_runs(paper_db, dataset="CIFAR-10", classifier="ResNet-110")
    assert len(runs) == len(every[(every.augmentation == "real") | (every.generator == "EDM")])
    both = store_runs.query_runs(paper_db, dataset="CIFAR-10", n_base=[500, "5000"])
    assert len(both) == len(every[every.n_base.isin([500, 5000])]) and set(both.n_base) == {500, 5000}
    with pytest.raises(store_runs.StoreError, match="unknown run column"):
        store_runs.query_runs(paper_db, colour="red")
    with pytest.raises(store_runs.StoreError, match="not a valid int"):
        store_runs.query_runs(paper_db, n_base="many")


def test_a_run_repeated_in_the_file_lands_once(paper_db, tmp_path):
    # The runs table has no unique index: the import's own anti-join and window keep run_key unique.
    frame = pd.concat([GOOD, GOOD.iloc[[1]]], ignore_index=True)
    assert store_exchange.import_runs(write(tmp_path, frame, "twice.parquet"), paper_db) == (3, 1)
    assert store_exchange.import_runs(write(tmp_path, GOOD.iloc[[1, 0]], "again.csv"), paper_db) == (0, 2)
    stored = store_runs.query_runs(paper_db, source="import")
    assert len(stored) == 3 and stored.run_key.is_unique and stored.run_id.is_unique


def test_interleaved_settings_are_stored_together(paper_db, tmp_path):
    # Pairs that alternate in the file are sorted on the way in, so one setting's runs share row groups.
    frame = pd.concat([GOOD.iloc[:2], GOOD.iloc[[2]], GOOD.iloc[:2].assign(seed=7)], ignore_index=True)
    store_exchange.import_runs(write(tmp_path, frame, "mixed.parquet"), paper_db)
    with connect(paper_db, read_only=True) as con:
        order = [d for (d,) in con.execute("SELECT dataset FROM runs WHERE source = 'import' ORDER BY rowid").fetchall()]
    assert order == ["CIFAR-10", "Mine", "Mine", "Mine", "Mine"]


def test_engine_rows_stay_unique_without_an_index(paper_db):
    row = {"run_id": str(uuid.uuid4()), "run_key": "engine:unique-test", "source": "engine", "dataset": "Mine",
           "classifier": "Net", "augmentation": "real", "n_base": 100, "n_real_added": 0, "n_syn_added": 0,
           "top1": 50.0}
    assert store_runs.insert_runs([row, dict(row, top1=51.0)], paper_db) == 1
    assert store_runs.insert_runs([dict(row, run_id=str(uuid.uuid4()), top1=52.0)], paper_db) == 0
    assert store_runs.insert_runs([dict(row, run_id=str(uuid.uuid4()), top1=53.0)], paper_db, replace=True) == 1
    stored = store_runs.query_runs(paper_db, source="engine")
    assert len(stored) == 1 and stored.top1.item() == 53.0 and stored.run_id.item() == row["run_id"]
