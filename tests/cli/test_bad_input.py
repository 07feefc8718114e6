"""Bad input and faults, as a hostile user would try them: each gives one line, a non-zero exit, and a
store that is exactly as it was (every table's row count and content checksum)."""
import os
import sqlite3
import stat
from pathlib import Path

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from engine.cli import app
from store import jobs
from store import exchange as store_exchange
from store import runs as store_runs
from store.db import CONFIG

ROOT = Path(__file__).resolve().parents[2]

runner = CliRunner()


@pytest.fixture(scope="module")
def _base_store(tmp_path_factory):
    db = tmp_path_factory.mktemp("hard") / "s.duckdb"
    store_runs.init_store(db)
    jobs.submit({"dataset": "digits", "classifier": "smallcnn", "n_base": 20, "augmentation": "real",
                 "added": [0], "seeds": 1}, db)
    return db


@pytest.fixture
def store(_base_store, tmp_path):
    import shutil
    db = tmp_path / "s.duckdb"
    shutil.copy(_base_store, db)
    return db


def fingerprint(db) -> dict:
    """Row count and a content hash of every table (the sum of its rows' hashes: any changed,
    added or removed row changes it, whatever the row order)."""
    con = duckdb.connect(str(db), read_only=True, config=CONFIG)
    try:
        out = {}
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall():
            out[table] = con.execute(f"SELECT count(*), sum(hash(t)::HUGEINT) FROM {table} AS t").fetchall()[0]
        return out
    finally:
        con.close()


def one_line_error(res) -> str:
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code != 0, res.output
    assert "Traceback" not in res.output, res.output
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    return " ".join(res.output.split())


# --------------------------------------------------------------- study specs (run and queue add)

SPEC_CASES = [
    (["--n-base", "0"], "n_base = 0 must be between 1"),
    (["--n-base", "-5"], "n_base = -5 must be between 1"),
    (["--n-base", "900"], "larger than digits's train split of 800"),
    (["--n-base", "99999999999"], "must be between 1"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--dataset", ""], "unknown dataset"),
    (["--dataset", "folder:"], "unknown dataset 'folder:'"),
    (["--dataset", "medmnist:Blood MNIST"], "medmnist flag 'Blood MNIST'"),
    (["--dataset", "medmnist:bloodmnist", "--data-root", "/etc/passwd"], "must be a MedMNIST .npz file"),
    (["--dataset", "cifar10", "--size", "64"], "size 64 does not apply to cifar10"),
    (["--size", "16"], "size 16 does not apply to digits"),
    (["--data-root", "/tmp"], "does not apply: digits is built in"),
    (["--dataset", "medmnist:bloodmnist", "--size", "100000"], "size = 100,000 must be between"),
    (["--dataset", "medmnist:bloodmnist", "--size", "1"], "size = 1 must be between"),
    (["--classifier", "resnet18"], "unknown classifier 'resnet18'"),
    (["--classifier", ""], None),  # empty means the dataset's default: accepted, so not in this corpus
    (["--augmentation", "open"], "augmentation 'open'"),
    (["--augmentation", "synthetic"], "augmentation 'synthetic'"),
    (["--added", ""], "added is empty"),
    (["--added", "0,ten"], "'ten' is not a whole number"),
    (["--added", "0,-5"], "'-5' is not a whole number"),
    (["--added", "1e9"], "'1e9' is not a whole number"),
    (["--n-base", "700", "--added", "0,200"], "only 100 lie outside"),
    (["--added", ",".join(str(i) for i in range(60))], "at most 50 per job"),
    (["--augmentation", "closed", "--added", "0,999999999999"], "synthetic images; at most 2,000,000"),
    (["--augmentation", "closed", "--added", "0,100000000N"], "at most 2,000,000"),
    (["--seeds", "0"], "seeds = 0 must be between 1 and 10"),
    (["--seeds", "11"], "seeds = 11 must be between 1 and 10"),
    (["--subset-seed", "-1"], "subset_seed = -1 must be between 0"),
    (["--generator-preset", "huge"], "unknown generator preset 'huge'"),
    (["--recipe", "lr=abc"], "recipe option lr='abc' is not a valid float"),
    (["--recipe", "lr=0"], "recipe option lr=0.0 must be a number in (0, 10]"),
    (["--recipe", "lr=nan"], "recipe option lr=nan must be a number"),
    (["--recipe", "lr=inf"], "recipe option lr=inf must be a number"),
    (["--recipe", "batch_size=0"], "recipe option batch_size=0 must be between 1"),
    (["--recipe", "batch_size=2.5"], "batch_size='2.5' is not a valid int"),
    (["--recipe", "iterations=1000000000"], "iterations=1000000000 must be between 0 and 2,000,000"),
    (["--recipe", "iterations=-3"], "iterations=-3 must be between"),
    (["--recipe", "epochs=100000"], "epochs=100000 must be between"),
    (["--recipe", "iterations=0"], "iterations=0 must be positive when epochs is 0"),
    (["--recipe", "schedule=linear"], "schedule='linear' must be one of multistep, cosine"),
    (["--recipe", "momentum=1.5"], "momentum=1.5 must be in [0, 1)"),
    (["--recipe", "weight_decay=-1"], "weight_decay=-1.0 must be in [0, 1]"),
    (["--recipe", "milestones=0.9/0.2"], "milestones"),
    (["--recipe", "warmup=2"], "warmup=2.0 must be a fraction"),
    (["--recipe", "flip=maybe"], "flip='maybe' is not a valid bool"),
    (["--recipe", "input_size=100000"], "input_size=100000 must be between"),
    (["--recipe", "crop_pad=99"], "crop_pad=99 must be between 0 and input_size"),
    (["--recipe", "speed=fast"], "unknown recipe option 'speed'"),
    (["--recipe", "iterations"], "should be key=value"),
    (["--augmentation", "closed", "--generator-option", "batch_size=0"], "batch_size=0 must be between 1"),
    (["--augmentation", "closed", "--generator-option", "train_images=-5"], "train_images=-5 must be between"),
    (["--augmentation", "closed", "--generator-option", "train_images=1e12"], "train_images=1000000000000 must be"),
    (["--augmentation", "closed", "--generator-option", "lr=abc"], "generator option lr='abc' is not a valid float"),
    (["--augmentation", "closed", "--generator-option", "seed=-1"], "seed=-1 must be between"),
    (["--augmentation", "closed", "--generator-option", "steps=3"], "unknown generator option 'steps'"),
    (["--generator-option", "train_images=1000"], "applies only to closed-set runs"),
]
SPEC_CASES = [c for c in SPEC_CASES if c[1] is not None]


# `engine run` goes through the same validate() as `queue add` (a test below checks they agree);
# its copy of the corpus imports the training stack, so it runs with the slow tests.
@pytest.mark.parametrize("command", [pytest.param("run", marks=pytest.mark.slow), "queue add"])
@pytest.mark.parametrize("args, message", SPEC_CASES, ids=[" ".join(a) for a, _ in SPEC_CASES])
def test_bad_study_specs_are_one_line_and_change_nothing(store, command, args, message):
    before = fingerprint(store)
    # An impossible device makes `engine run` stop at once should a case ever pass validation.
    guard = ["--device", "no-such-device"] if command == "run" else []
    res = runner.invoke(app, [*command.split(), "--db", str(store), *args, *guard])
    assert message in one_line_error(res)
    assert res.exit_code == 2
    assert fingerprint(store) == before


def test_engine_run_and_queue_add_accept_and_refuse_the_same(store):
    """The two paths share one validator: the same edge values fail (and pass) on both."""
    for args in (["--seeds", "10", "--added", "0"], ["--seeds", "11", "--added", "0"]):
        q = runner.invoke(app, ["queue", "add", "--db", str(store), *args, "--json"])
        r = runner.invoke(app, ["run", "--db", str(store), *args, "--recipe", "iterations=1", "--device", "nope"])
        # run stops at the device (after validation) when the spec is good, at the spec when it is not
        assert (q.exit_code == 0) == ("unknown device" in r.output), (q.output, r.output)


# -------------------------------------------------------------------------- other options

OPTION_CASES = [
    (["worker", "--heartbeat", "0"], "--heartbeat 0.0 must be a positive number"),
    (["worker", "--heartbeat", "nan"], "--heartbeat nan must be a positive number"),
    (["worker", "--heartbeat", "10", "--stale-after", "5"], "must exceed --heartbeat"),
    (["worker", "--poll", "-1"], "--poll -1.0 must be a positive number"),
    (["worker", "--idle-exit", "-3"], "--idle-exit -3.0 must be a non-negative"),
    (["worker", "--max-job-hours", "0"], "--max-job-hours 0.0 must be a number of hours"),
    (["worker", "--max-job-hours", "inf"], "--max-job-hours inf must be a number of hours"),
    (["worker", "--data-root", "/no/such/folder"], "--data-root /no/such/folder is not a folder"),
    (["worker", "--device", "tpu"], "unknown device 'tpu'"),
    (["queue", "add", "--max-hours", "-1"], "--max-hours -1.0 must be a number of hours"),
    (["queue", "cancel", "nosuchjob"], "no job 'nosuchjob'"),
    (["queue", "list", "--status", "sleeping"], "unknown status 'sleeping'"),
    (["app", "--port", "0"], "--port 0 must be between 1 and 65535"),
    (["app", "--port", "70000"], "--port 70000 must be between 1 and 65535"),
    (["study", "digits", "--bases", "20,x"], "--bases '20,x' should be whole numbers"),
    (["study", "digits", "--bases", "20,5000"], "n_base 5,000 is larger than digits's train split"),
    (["study", "digits", "--seeds", "0"], "seeds = 0 must be between 1 and 10"),
]


@pytest.mark.parametrize("args, message", OPTION_CASES, ids=[" ".join(a) for a, _ in OPTION_CASES])
def test_bad_options_are_one_line_and_change_nothing(store, args, message):
    before = fingerprint(store)
    res = runner.invoke(app, [*args, "--db", str(store)])
    assert message in one_line_error(res)
    assert fingerprint(store) == before


def test_cancelling_a_finished_job_is_refused(store):
    job_id = jobs.list_jobs(store).job_id[0]
    jobs.claim("w", store)
    jobs.finish(job_id, "w", [], store)
    before = fingerprint(store)
    res = runner.invoke(app, ["queue", "cancel", job_id, "--db", str(store)])
    assert f"job {job_id} is done: only queued or running jobs can be cancelled" in one_line_error(res)
    assert fingerprint(store) == before


# ----------------------------------------------------------------------------- store faults

def test_a_duckdb_file_that_is_not_ours_is_refused_not_migrated(tmp_path):
    db = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE patients (id INTEGER, name VARCHAR)")
    con.execute("INSERT INTO patients VALUES (1, 'a')")
    con.close()
    before = fingerprint(db)
    for args in (["store", "init"], ["queue", "add"], ["runs", "list"]):
        res = runner.invoke(app, [*args, "--db", str(db)])
        text = one_line_error(res)
        assert "not an equivalence store" in text or "Catalog Error" in text or "runs" in text, text
    assert fingerprint(db) == before


def test_an_sqlite_file_as_the_store_is_refused_without_fetching_an_extension(tmp_path):
    db = tmp_path / "store.duckdb"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    before = db.read_bytes()
    res = runner.invoke(app, ["store", "init", "--db", str(db)])
    assert "cannot open store" in one_line_error(res)
    assert db.read_bytes() == before


def test_a_truncated_store_is_one_line(store):
    data = store.read_bytes()
    store.write_bytes(data[: len(data) // 3])
    before = store.read_bytes()
    for args in (["runs", "list"], ["store", "init"], ["queue", "list"]):
        res = runner.invoke(app, [*args, "--db", str(store)])
        assert "store" in one_line_error(res).lower() or "error" in res.output
    assert store.read_bytes() == before


def test_random_bytes_as_the_store_is_one_line(tmp_path):
    db = tmp_path / "noise.duckdb"
    db.write_bytes(np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    before = db.read_bytes()
    res = runner.invoke(app, ["store", "init", "--db", str(db)])
    assert "cannot open store" in one_line_error(res)
    assert db.read_bytes() == before


def test_a_folder_as_the_store_is_one_line(tmp_path):
    res = runner.invoke(app, ["store", "init", "--db", str(tmp_path)])
    assert "is a folder" in one_line_error(res)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    res = runner.invoke(app, ["store", "init", "--db", str(ro / "sub" / "s.duckdb")])
    one_line_error(res)


def test_a_store_under_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    res = runner.invoke(app, ["store", "init", "--db", str(tmp_path / "afile" / "s.duckdb")])
    assert "cannot create the store's folder" in one_line_error(res)


def test_a_newer_schema_is_refused(store):
    con = duckdb.connect(str(store))
    con.execute("INSERT INTO schema_version (version) VALUES (999)")
    con.close()
    before = fingerprint(store)
    res = runner.invoke(app, ["queue", "add", "--db", str(store)])
    assert "is newer than this program's" in one_line_error(res)
    assert fingerprint(store) == before


# ------------------------------------------------------------- round two (issue #30): injection

def _runs_named(tmp_path, dataset: str, classifier: str):
    """A CSV of two runs whose dataset and classifier are the names given (any text is a valid name)."""
    import pandas as pd
    file = tmp_path / "named.csv"
    pd.DataFrame({"dataset": [dataset] * 2, "classifier": [classifier] * 2, "augmentation": ["real"] * 2,
                  "n_base": [100, 100], "n_real_added": [0, 100], "n_syn_added": [0, 0], "top1": [50.0, 60.0],
                  "seed": [0, 0]}).to_csv(file, index=False)
    return file


def _injection(tmp_path):
    """Filter values that broke out of the COPY statement they were pasted into: the '?' of the first
    value took the second, whose ') TO $$...$$' then wrote a file wherever it named."""
    target = tmp_path / "owned.csv"
    return "?", f") TO $${target}$$ (FORMAT csv) --", target


def test_runs_export_binds_filter_values_from_the_command_line(store, tmp_path):
    dataset, classifier, target = _injection(tmp_path)
    assert runner.invoke(app, ["runs", "import", str(_runs_named(tmp_path, dataset, classifier)),
                               "--db", str(store)]).exit_code == 0
    out = tmp_path / "export.csv"
    res = runner.invoke(app, ["runs", "export", str(out), "--dataset", dataset, "--classifier", classifier,
                              "--db", str(store)])
    assert res.exit_code == 0, res.output
    assert not target.exists()
    import pandas as pd
    exported = pd.read_csv(out)
    assert len(exported) == 2 and set(exported.classifier) == {classifier} and set(exported.dataset) == {dataset}


def test_runs_page_download_binds_stored_filter_values(store, tmp_path, monkeypatch):
    """The Runs page's filters offer stored names, which an import controls: its download runs the same
    export with them, bound."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.testing.v1 import AppTest
    dataset, classifier, target = _injection(tmp_path)
    store_exchange.import_runs(_runs_named(tmp_path, dataset, classifier), store)
    deferred = []
    original = MediaFileManager.add_deferred
    monkeypatch.setattr(MediaFileManager, "add_deferred",
                        lambda self, fn, *a, **k: deferred.append(fn) or original(self, fn, *a, **k))
    monkeypatch.setenv("EQUIV_DB", str(store))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
    at.run()
    at.multiselect(key="runs_dataset").set_value([dataset])
    at.multiselect(key="runs_classifier").set_value([classifier]).run()
    assert not at.exception
    assert at.get("download_button")[0].proto.label == "Download these 2 runs as CSV"
    handle = deferred[-1]()  # what a click on the button runs
    text = handle.read().decode()
    handle.close()
    assert not target.exists()
    assert text.count("\n") == 3 and text.count(classifier) == 2


def test_no_sql_text_is_built_from_values():
    """The store binds every value: nothing quotes a value into SQL text (the helper that did is gone),
    and COPY, which takes no parameters, is not used."""
    for module in (ROOT / "store").glob("*.py"):
        text = module.read_text()
        assert "_literal(" not in text and "COPY (" not in text, module


# ------------------------------------------------------------- round two: the store's integrity

def test_a_fresh_store_is_exactly_its_headers_and_blocks(tmp_path):
    """The damage check reads DuckDB's layout (store.db.bytes_in_use): a new DuckDB that lays files out
    otherwise fails here instead of flagging every store as damaged, or none."""
    from store.db import HEADER_BYTES, bytes_in_use, connect
    db = tmp_path / "s.duckdb"
    store_runs.init_store(db)
    con = duckdb.connect(str(db), read_only=True, config=CONFIG)
    try:
        block_size, blocks = con.execute("SELECT block_size, total_blocks FROM pragma_database_size()").fetchall()[0]
        used = bytes_in_use(con)
    finally:
        con.close()
    assert db.stat().st_size == HEADER_BYTES + block_size * blocks
    assert HEADER_BYTES < used <= db.stat().st_size
    with connect(db, read_only=True):
        pass


@pytest.mark.parametrize("args", [["queue", "add"], ["store", "init"], ["runs", "list"], ["queue", "list"],
                                  ["fit", "--dataset", "CIFAR-10", "--classifier", "ResNet-110",
                                   "--augmentation", "closed"]], ids=" ".join)
def test_a_store_truncated_to_half_is_refused_before_any_write(store, args):
    data = store.read_bytes()
    store.write_bytes(data[: len(data) // 2])
    before = store.read_bytes()
    res = runner.invoke(app, [*args, "--db", str(store)])
    assert "is damaged" in one_line_error(res)
    assert store.read_bytes() == before


@pytest.mark.parametrize("args", [["runs", "list"], ["queue", "list"], ["synthetic", "list"],
                                  ["fit", "--dataset", "CIFAR-10", "--classifier", "ResNet-110",
                                   "--augmentation", "closed"]], ids=" ".join)
def test_readers_refuse_a_newer_schema(store, args):
    con = duckdb.connect(str(store))
    con.execute("INSERT INTO schema_version (version) VALUES (999)")
    con.close()
    before = fingerprint(store)
    res = runner.invoke(app, [*args, "--db", str(store)])
    assert "is newer than this program's" in one_line_error(res)
    assert fingerprint(store) == before


@pytest.mark.parametrize("args", [["runs", "list"], ["runs", "export", "x.csv"], ["queue", "list"],
                                  ["fit", "--dataset", "CIFAR-10", "--classifier", "ResNet-110",
                                   "--augmentation", "closed"], ["ir", "--dataset", "CIFAR-10",
                                                                 "--classifier", "ResNet-110"]], ids=" ".join)
def test_readers_refuse_a_foreign_duckdb_file_in_one_line(tmp_path, args):
    db = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE runs (id INTEGER, name VARCHAR)")  # even a table called runs
    con.close()
    before = fingerprint(db)
    res = runner.invoke(app, [*[a if a != "x.csv" else str(tmp_path / a) for a in args], "--db", str(db)])
    assert "is not an equivalence store" in one_line_error(res)
    assert fingerprint(db) == before


# ------------------------------------------------------------- round two: bad input that got in

def test_an_import_of_fractions_is_refused_unless_the_scale_is_given(store, tmp_path):
    import pandas as pd
    file = tmp_path / "fractions.csv"
    pd.DataFrame({"dataset": ["Mine"] * 2, "classifier": ["Net"] * 2, "augmentation": ["real"] * 2, "n_base": [100] * 2,
                  "n_real_added": [0, 100], "n_syn_added": [0, 0], "top1": [0.81, 0.93], "top5": [0.97, 0.99]}
                 ).to_csv(file, index=False)
    before = fingerprint(store)
    res = runner.invoke(app, ["runs", "import", str(file), "--db", str(store)])
    assert "lies between 0 and 1" in one_line_error(res) and "--accuracy-scale fraction" in res.output
    assert fingerprint(store) == before
    res = runner.invoke(app, ["runs", "import", str(file), "--accuracy-scale", "fraction", "--db", str(store)])
    assert res.exit_code == 0, res.output
    stored = store_runs.query_runs(store, dataset="Mine")
    assert sorted(stored.top1) == [81.0, 93.0] and sorted(stored.top5) == [97.0, 99.0]
    bad = tmp_path / "mixed.csv"
    pd.DataFrame({"dataset": ["Other"], "classifier": ["Net"], "augmentation": ["real"], "n_base": [100],
                  "n_real_added": [0], "n_syn_added": [0], "top1": [93.0]}).to_csv(bad, index=False)
    before = fingerprint(store)
    res = runner.invoke(app, ["runs", "import", str(bad), "--accuracy-scale", "fraction", "--db", str(store)])
    assert "row 1: top1 = 93.0 is outside 0-1" in one_line_error(res)
    res = runner.invoke(app, ["runs", "import", str(bad), "--accuracy-scale", "tenths", "--db", str(store)])
    assert "accuracy scale 'tenths'" in one_line_error(res)
    assert fingerprint(store) == before


def test_an_import_with_a_column_of_lists_is_refused_naming_it(store, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    file = tmp_path / "lists.parquet"
    pq.write_table(pa.table({"dataset": [[1, 2]], "classifier": ["Net"], "augmentation": ["real"], "n_base": [100],
                             "n_real_added": [0], "n_syn_added": [0], "top1": [50.0]}), file)
    before = fingerprint(store)
    res = runner.invoke(app, ["runs", "import", str(file), "--db", str(store)])
    assert "column dataset of" in one_line_error(res) and "BIGINT[]" in res.output
    assert fingerprint(store) == before


def _folder_dataset(root, classes=("a", "b"), per_class=2):
    from PIL import Image
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / split / c / f"{i}.png")
    return root


QUEUE_PATH_CASES = [
    (["--dataset", "cifar10", "--data-root", "/nonexistent"], "data path /nonexistent does not exist on this machine"),
    (["--dataset", "cifar10", "--data-root", "/etc"], "holds no cifar-10-batches-bin or cifar-10-batches-py folder"),
    (["--dataset", "folder:/etc"], "dataset folder /etc has no train/ folder"),
    (["--dataset", "imagenet100", "--data-root", "/etc"], "has no train/ folder"),
    (["--dataset", "medmnist:bloodmnist", "--data-root", "/etc"], "holds no bloodmnist*.npz file"),
    (["--dataset", "medmnist:bloodmnist", "--data-root", "/nonexistent/b.npz"], "does not exist on this machine"),
]


@pytest.mark.parametrize("args, message", QUEUE_PATH_CASES, ids=[" ".join(a) for a, _ in QUEUE_PATH_CASES])
def test_queue_add_checks_the_data_paths_this_machine_sees(store, args, message):
    before = fingerprint(store)
    res = runner.invoke(app, ["queue", "add", "--db", str(store), "--n-base", "20", *args])
    text = one_line_error(res)
    assert message in text, text
    assert fingerprint(store) == before


def test_queue_add_takes_a_path_only_the_workers_see_when_told(store, tmp_path):
    res = runner.invoke(app, ["queue", "add", "--db", str(store), "--n-base", "20", "--dataset", "cifar10",
                              "--data-root", "/srv/only/on/workers", "--remote-data", "--json"])
    assert res.exit_code == 0, res.output
    root = _folder_dataset(tmp_path / "cells")
    res = runner.invoke(app, ["queue", "add", "--db", str(store), "--n-base", "2", "--added", "0,1",
                              "--dataset", f"folder:{root}", "--json"])
    assert res.exit_code == 0, res.output
    (root / "test" / "b" / "0.png").unlink()
    (root / "test" / "b" / "1.png").unlink()
    res = runner.invoke(app, ["queue", "add", "--db", str(store), "--n-base", "2", "--added", "0,1",
                              "--dataset", f"folder:{root}"])
    assert "holds no images" in one_line_error(res)


def test_a_fifo_named_like_an_image_in_a_dataset_folder_is_refused(store, tmp_path):
    root = _folder_dataset(tmp_path / "cells")
    os.mkfifo(root / "train" / "a" / "2.png")
    res = runner.invoke(app, ["queue", "add", "--db", str(store), "--n-base", "2", "--added", "0,1",
                              "--dataset", f"folder:{root}"])
    assert "is not a regular file" in one_line_error(res)


@pytest.mark.parametrize("args", [["queue", "add", "--classifier", "x" * 100_000],
                                  ["queue", "add", "--dataset", "y" * 100_000],
                                  ["queue", "cancel", "z" * 100_000],
                                  ["queue", "add", "--recipe", "lr=" + "9" * 100_000],
                                  ["runs", "import", "v" * 100_000 + ".csv"]], ids=lambda a: " ".join(a[:3])[:40])
def test_a_long_value_is_clipped_in_its_error(store, args):
    res = runner.invoke(app, [*args, "--db", str(store)])
    assert res.exit_code != 0
    assert len(res.output) < 1_500, len(res.output)
    assert "characters]" in res.output or "Traceback" not in res.output


def test_equiv_refuses_a_base_beyond_the_whole_training_set(store):
    res = runner.invoke(app, ["equiv", "--db", str(store), "--dataset", "CIFAR-10", "--classifier", "ResNet-110",
                              "--augmentation", "closed", "--n-base", "1000000000", "--n-real-added", "5000"])
    assert "--n-base 1,000,000,000 is larger than CIFAR-10's whole training set of 50,000" in one_line_error(res)
    assert res.exit_code == 2
