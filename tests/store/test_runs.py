"""The store: idempotent init, migrations, imports that write all or nothing, lock retries."""
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from store import db as store_db
from store import exchange as store_exchange
from store import runs as store_runs
from store.db import StoreError

ROOT = Path(__file__).resolve().parents[2]


def count(path, table="runs"):
    with store_db.connect(path, read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_init_twice_gives_same_rows(tmp_path):
    path = tmp_path / "s.duckdb"
    assert store_runs.init_store(path) == 168
    first = store_runs.query_runs(path).drop(columns=["created_at"])
    assert store_runs.init_store(path) == 0
    again = store_runs.query_runs(path).drop(columns=["created_at"])
    pd.testing.assert_frame_equal(first, again)


def test_published_rows_are_faithful(paper_runs):
    row = paper_runs[(paper_runs.dataset == "CIFAR-10") & (paper_runs.augmentation == "closed")
                     & (paper_runs.n_base == 5000) & (paper_runs.n_syn_added == 25000)]
    assert row.top1.item() == 86.17 and row.seed.isna().all() and row.n_total.item() == 50_000
    tab9 = paper_runs[(paper_runs.n_base == 25000) & (paper_runs.n_real_added == 20000)]
    assert "20,000" in tab9.note.item()
    assert set(paper_runs.source) == {"paper"}
    assert paper_runs[paper_runs.classifier == "ResNet-50"].top5.notna().all()
    assert paper_runs[paper_runs.classifier != "ResNet-50"].top5.isna().all()


def test_migration_from_version_1_keeps_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        store_db.migrate(con, target=1)
        con.execute("INSERT INTO runs (run_id, run_key, source, dataset, classifier, augmentation, n_base, "
                    "n_real_added, n_syn_added, top1) VALUES ('a', 'k', 'import', 'D', 'C', 'real', 10, 0, 0, 50)")
        assert store_db.current_version(con) == 1
    store_runs.init_store(path)  # migrates forward
    with store_db.connect(path, read_only=True) as con:
        assert store_db.current_version(con) == store_db.SCHEMA_VERSION
        cols = {r[0] for r in con.execute("DESCRIBE runs").fetchall()}
    assert {"wall_time_s", "device", "indices_hash"} <= cols
    assert count(path) == 169


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.duckdb"
    store_runs.init_store(path)
    with duckdb.connect(str(path)) as con:
        con.execute("INSERT INTO schema_version (version) VALUES (999)")
    with pytest.raises(StoreError, match="newer"):
        store_runs.init_store(path)


def _write(tmp_path, frame, name="runs.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path, index=False)
    return path


GOOD = pd.DataFrame({"dataset": ["X", "X"], "classifier": ["C", "C"], "augmentation": ["real", "closed"],
                     "generator": [None, "EDM"], "n_base": [100, 100], "n_real_added": [0, 0],
                     "n_syn_added": [0, 100], "seed": [0, 0], "top1": [50.0, 55.0]})


@pytest.mark.parametrize("name", ["runs.csv", "runs.parquet"])
def test_import_and_reimport(paper_db, tmp_path, name):
    file = _write(tmp_path, GOOD, name)
    assert store_exchange.import_runs(file, paper_db) == (2, 0)
    assert store_exchange.import_runs(file, paper_db) == (0, 2)
    imported = store_runs.query_runs(paper_db, source="import")
    assert sorted(imported.top1) == [50.0, 55.0]


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.drop(columns=["top1"]), "lacks column"),
    (lambda f: f.assign(top1=["50", "high"]), "'high' is not a number"),
    (lambda f: f.assign(augmentation=["real", "mixed"]), "'mixed'"),
    (lambda f: f.assign(n_base=[100, -5]), "must be positive"),
])
def test_import_rejects_bad_file_and_writes_nothing(paper_db, tmp_path, mutate, message):
    before = count(paper_db)
    file = _write(tmp_path, mutate(GOOD.copy()))
    with pytest.raises(StoreError, match=message):
        store_exchange.import_runs(file, paper_db)
    assert count(paper_db) == before


def test_export_round_trip(paper_db, tmp_path):
    out = tmp_path / "cifar.parquet"
    n = store_exchange.export_runs(out, paper_db, dataset="CIFAR-10")
    back = pd.read_parquet(out)
    assert n == len(back) == 57 and set(back.dataset) == {"CIFAR-10"}
    assert set(store_runs.RUN_COLUMNS) <= set(back.columns)


@pytest.mark.slow
def test_lock_conflict_is_waited_out(paper_db, caplog):
    # Another process holds a write connection for a moment; our write waits and then lands.
    holder = subprocess.Popen([sys.executable, "-c",
                               "import duckdb, time, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(1.5); c.close()", str(paper_db)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    caplog.set_level("DEBUG", logger="store.db")
    added = store_runs.insert_runs([{"run_id": "x", "run_key": "x", "source": "import", "dataset": "D",
                                     "classifier": "C", "augmentation": "real", "n_base": 5, "n_real_added": 0,
                                     "n_syn_added": 0, "top1": 1.0}], paper_db)
    holder.wait()
    assert added == 1
    assert any("is busy" in r.getMessage() for r in caplog.records)  # it really had to wait


# Holds a connection to the store until told to let go on stdin.
HOLDER = """
import sys
from store import db
with db.connect(sys.argv[1], read_only=sys.argv[2] == "ro"):
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.mark.parametrize("theirs, mine, admitted", [("rw", "ro", False), ("ro", "rw", False), ("ro", "ro", True)])
def test_the_lock_file_admits_many_readers_or_one_writer(paper_db, theirs, mine, admitted):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(paper_db), theirs], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        locks, path = store_db._ProcessLocks(), store_db.lock_path(paper_db)
        assert locks.try_acquire(path, write=mine == "rw") is admitted
        if admitted:
            locks.release(path, write=mine == "rw")
        else:
            with pytest.raises(StoreError, match="still busy after 0.3 s"):
                with store_db.connect(paper_db, read_only=mine == "ro", timeout_s=0.3):
                    pass
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    assert locks.try_acquire(path, write=True)  # let go once the holder closed
    locks.release(path, write=True)


def test_writer_threads_of_one_process_take_turns(tmp_path):
    """A worker's heartbeat and its main thread both update the job's row: two concurrent write
    transactions on one DuckDB database fail with "Conflict on tuple deletion" unless they take turns."""
    import threading
    db = tmp_path / "s.duckdb"
    with store_db.transaction(db) as con:
        con.execute("CREATE TABLE counter (v INTEGER)")
        con.execute("INSERT INTO counter VALUES (0)")
    errors = []

    def bump():
        try:
            for _ in range(15):
                with store_db.transaction(db) as con:
                    v = con.execute("SELECT v FROM counter").fetchone()[0]
                    con.execute("UPDATE counter SET v = ?", [v + 1])
        except Exception as err:  # noqa: BLE001 -- the failure is what the test reports
            errors.append(err)
    threads = [threading.Thread(target=bump) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store_db.connect(db, read_only=True) as con:
        assert con.execute("SELECT v FROM counter").fetchone()[0] == 45  # no update lost either


def test_threads_of_one_process_share_its_lock(paper_db):
    locks, path = store_db._ProcessLocks(), store_db.lock_path(paper_db)
    assert locks.try_acquire(path, write=False) and locks.try_acquire(path, write=True)  # upgrade in place
    locks.release(path, write=True)
    assert locks.try_acquire(path, write=False)
    locks.release(path, write=False)
    locks.release(path, write=False)
    assert locks._held == {}  # the last release closed the file, dropping the lock


# One short write after another, as the queue's submitters and workers make them.
COMMITTER = """
import sys, uuid
from store import db
for i in range(40):
    key = uuid.uuid4().hex
    with db.connect(sys.argv[1]) as con:
        con.execute("INSERT INTO handoff VALUES (?)", [key])
    print(key, flush=True)
"""


@pytest.mark.slow
def test_concurrent_writer_processes_lose_no_commit(tmp_path):
    """Eight processes committing one row at a time on a busy machine. Without the lock file (store.db
    before it), 2 of 4 tries lost a row whose commit had returned; with it, 5 of 5 lost none."""
    db = tmp_path / "s.duckdb"
    with store_db.transaction(db) as con:
        con.execute("CREATE TABLE handoff (key VARCHAR)")
    # The race wants a busy machine (the queue test that found it lost a job under the full suite's
    # load): two spinning processes keep the committers from running on free cores.
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        procs = [subprocess.Popen([sys.executable, "-c", COMMITTER, str(db)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(8)]
        returned = set()
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-2000:]
            returned |= set(out.split())
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    assert len(returned) == 320
    with store_db.connect(db, read_only=True) as con:
        stored = {r[0] for r in con.execute("SELECT key FROM handoff").fetchall()}
    assert returned == stored, f"{len(returned - stored)} committed rows lost"


def test_read_only_on_missing_store(tmp_path):
    with pytest.raises(StoreError, match="engine store init"):
        store_runs.query_runs(tmp_path / "none.duckdb")


def test_db_path_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("EQUIV_DB", raising=False)
    assert str(store_db.db_path()) == "data/equivalence.duckdb"
    monkeypatch.setenv("EQUIV_DB", str(tmp_path / "env.duckdb"))
    assert store_db.db_path() == tmp_path / "env.duckdb"
    assert store_db.db_path(tmp_path / "x.duckdb") == tmp_path / "x.duckdb"


def test_reader_waits_for_a_writer_thread_in_the_same_process(paper_db, caplog):
    # A worker's heartbeat thread writes while its main thread reads: DuckDB refuses a second
    # connection in another mode until the first closes, and connect() waits that out.
    import threading
    opened = threading.Event()

    def hold():
        with store_db.connect(paper_db) as con:
            con.execute("SELECT 1").fetchall()
            opened.set()
            time.sleep(0.8)
    t = threading.Thread(target=hold)
    t.start()
    opened.wait()
    caplog.set_level("DEBUG", logger="store.db")
    rows = store_runs.query_runs(paper_db, dataset="BloodMNIST")
    t.join()
    assert len(rows) == 25
    assert any("different configuration" in r.getMessage() for r in caplog.records)


def test_ctrl_c_inside_a_statement_is_a_keyboard_interrupt(tmp_path):
    """DuckDB's client turns a signal that lands inside a statement into RuntimeError('Query
    interrupted') (when it notices it: within a second, or only when the statement ends); a caller took
    that for a failed statement and went on (a worker marked its job failed and took the next).
    connect() raises it as the stop it is; any other RuntimeError passes as it is."""
    from store.db import INTERRUPTED, connect
    db = tmp_path / "s.duckdb"
    with pytest.raises(KeyboardInterrupt):
        with connect(db):
            raise RuntimeError(INTERRUPTED)
    with pytest.raises(RuntimeError, match="something else"):
        with connect(db, read_only=True):
            raise RuntimeError("something else")
    import duckdb
    con = duckdb.connect()
    try:  # the text DuckDB gives the error, as connect() matches it
        import os
        import signal
        import threading
        timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        try:
            con.execute("SELECT count(*) FROM range(4000000000) t(i) WHERE i % 7 = 3").fetchall()
        except RuntimeError as err:
            assert str(err) == INTERRUPTED
        except KeyboardInterrupt:
            pass  # the statement ended before DuckDB looked: Python raised the interrupt itself
        finally:
            timer.cancel()
    finally:
        con.close()
