"""Helpers for tests that run real worker, dispatcher or Ray processes against a store."""
import time

from store import runs as store_runs


def fresh_store(tmp_path):
    db = tmp_path / "s.duckdb"
    store_runs.init_store(db)
    return db


def wait_for(predicate, timeout=240, every=0.25):
    """Poll until predicate() is true; a failure to get there within `timeout` fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass  # the store is being written: look again
        time.sleep(every)
    raise AssertionError("timed out")


def engine_rows(db):
    return store_runs.query_runs(db, source="engine")
