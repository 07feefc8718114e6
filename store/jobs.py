"""The job queue: submit, claim atomically, heartbeat, finish, fail, cancel, requeue the stale.

Every state change is one short write transaction, so several workers, the CLI and the
dashboard can share the file: DuckDB lets one process write at a time and store.db retries a
lock conflict with backoff. A claim is a single UPDATE ... RETURNING on the oldest queued job,
which two workers can never both win.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pandas as pd

from store.db import StoreError, connect, db_path, transaction

STATUSES = ("queued", "running", "done", "failed", "cancelled")
COLUMNS = ["job_id", "spec", "status", "attempts", "max_attempts", "worker_id", "heartbeat_at", "error",
           "created_at", "started_at", "finished_at", "run_ids"]


def _now():
    # Naive UTC everywhere: DuckDB's TIMESTAMP has no zone, and every process must agree.
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _row(cur) -> dict | None:
    rows = cur.fetchall()
    if not rows:
        return None
    names = [d[0] for d in cur.description]
    out = dict(zip(names, rows[0]))
    out["spec"] = json.loads(out["spec"]) if isinstance(out.get("spec"), str) else out.get("spec")
    return out


def submit(spec: dict, path=None, max_attempts: int = 3) -> str:
    """Queue a validated spec; returns the job id."""
    job_id = uuid.uuid4().hex[:12]
    with transaction(path) as con:
        con.execute("INSERT INTO jobs (job_id, spec, status, attempts, max_attempts, created_at) "
                    "VALUES (?, ?, 'queued', 0, ?, ?)", [job_id, json.dumps(spec), max_attempts, _now()])
    return job_id


def list_jobs(path=None, status=None) -> pd.DataFrame:
    if not db_path(path).exists():
        return pd.DataFrame(columns=COLUMNS)
    with connect(path, read_only=True) as con:
        if "jobs" not in {t for (t,) in con.execute("SHOW TABLES").fetchall()}:
            return pd.DataFrame(columns=COLUMNS)  # a store from before the queue existed
        sql = "SELECT * FROM jobs" + (" WHERE status = ?" if status else "") + " ORDER BY created_at, job_id"
        return con.execute(sql, [status] if status else []).df()


def get(job_id: str, path=None) -> dict | None:
    with connect(path, read_only=True) as con:
        return _row(con.execute("SELECT * FROM jobs WHERE job_id = ?", [job_id]))


def cancel(job_id: str, path=None) -> None:
    with transaction(path) as con:
        row = _row(con.execute("SELECT * FROM jobs WHERE job_id = ?", [job_id]))
        if row is None:
            raise StoreError(f"no job {job_id!r}")
        if row["status"] != "queued":
            raise StoreError(f"job {job_id} is {row['status']}: only queued jobs can be cancelled")
        con.execute("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE job_id = ?", [_now(), job_id])


def requeue_stale(stale_after_s: float, path=None) -> int:
    """Jobs whose worker stopped heartbeating go back to the queue, or fail after max_attempts."""
    cutoff = _now().timestamp() - stale_after_s
    with transaction(path) as con:
        stale = con.execute("SELECT job_id, attempts, max_attempts, worker_id FROM jobs WHERE status = 'running' "
                            "AND epoch(heartbeat_at) < ?", [cutoff]).fetchall()
        for job_id, attempts, max_attempts, worker in stale:
            note = f"worker {worker} stopped heartbeating (attempt {attempts})"
            if attempts >= max_attempts:
                con.execute("UPDATE jobs SET status = 'failed', finished_at = ?, "
                            "error = coalesce(error || '; ', '') || ? WHERE job_id = ?",
                            [_now(), note + f"; gave up after {attempts} attempts", job_id])
            else:
                con.execute("UPDATE jobs SET status = 'queued', worker_id = NULL, "
                            "error = coalesce(error || '; ', '') || ? WHERE job_id = ?", [note, job_id])
    return len(stale)


def claim(worker_id: str, path=None, stale_after_s: float | None = None) -> dict | None:
    """Take the oldest queued job for this worker, or None."""
    if stale_after_s is not None:
        requeue_stale(stale_after_s, path)
    now = _now()
    with transaction(path) as con:
        return _row(con.execute(
            "UPDATE jobs SET status = 'running', worker_id = ?, attempts = attempts + 1, started_at = ?, "
            "heartbeat_at = ? WHERE job_id = (SELECT job_id FROM jobs WHERE status = 'queued' "
            "ORDER BY created_at, job_id LIMIT 1) RETURNING *", [worker_id, now, now]))


def heartbeat(job_id: str, worker_id: str, path=None) -> bool:
    """True while this worker still owns the job."""
    with transaction(path) as con:
        owned = con.execute("UPDATE jobs SET heartbeat_at = ? WHERE job_id = ? AND worker_id = ? "
                            "AND status = 'running' RETURNING job_id", [_now(), job_id, worker_id]).fetchall()
    return bool(owned)


def finish(job_id: str, worker_id: str, run_ids: list[str], path=None) -> bool:
    with transaction(path) as con:
        done = con.execute("UPDATE jobs SET status = 'done', finished_at = ?, run_ids = ? WHERE job_id = ? "
                           "AND worker_id = ? AND status = 'running' RETURNING job_id",
                           [_now(), json.dumps(run_ids), job_id, worker_id]).fetchall()
    return bool(done)


def fail(job_id: str, worker_id: str, error: str, path=None) -> bool:
    with transaction(path) as con:
        done = con.execute("UPDATE jobs SET status = 'failed', finished_at = ?, error = ? WHERE job_id = ? "
                           "AND worker_id = ? AND status = 'running' RETURNING job_id",
                           [_now(), error, job_id, worker_id]).fetchall()
    return bool(done)


def release(job_id: str, worker_id: str, path=None) -> None:
    """A worker stopped by its user hands its job back to the queue (the attempt is not counted)."""
    with transaction(path) as con:
        con.execute("UPDATE jobs SET status = 'queued', worker_id = NULL, attempts = attempts - 1 "
                    "WHERE job_id = ? AND worker_id = ? AND status = 'running'", [job_id, worker_id])
