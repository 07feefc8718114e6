"""The job queue: submit, claim atomically, heartbeat, finish, fail, cancel, requeue the stale; and the
registry of live workers per host.

Every state change is one short write transaction, so several workers, the CLI and the
dashboard can share the file: DuckDB lets one process write at a time and store.db retries a
lock conflict with backoff. A claim is a single UPDATE ... RETURNING on the oldest queued job,
which two workers can never both win.

Time: every timestamp is written as naive UTC from the caller's clock (`now`, epoch seconds,
time.time() by default) and compared as epoch seconds, so no host time zone enters a comparison.
Tests pass `now` to age jobs without sleeping.
"""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

import pandas as pd

from engine.catalog.datasets import FOLDER_FAMILY, stored_name
from store.db import StoreError, connect, db_path, has_table, transaction

STATUSES = ("queued", "running", "done", "failed", "cancelled")
COLUMNS = ["job_id", "spec", "status", "attempts", "max_attempts", "worker_id", "heartbeat_at", "error",
           "created_at", "started_at", "finished_at", "run_ids", "cancel_requested", "max_hours",
           "runs_planned", "runs_done", "quality"]
MAX_ATTEMPTS = 3


def utc(now: float | None = None) -> datetime:
    """Naive UTC (DuckDB's TIMESTAMP has no zone) for epoch seconds `now`, or for the present."""
    return datetime.fromtimestamp(time.time() if now is None else now, timezone.utc).replace(tzinfo=None)


def _row(cur) -> dict | None:
    rows = cur.fetchall()
    if not rows:
        return None
    names = [d[0] for d in cur.description]
    out = dict(zip(names, rows[0]))
    out["spec"] = json.loads(out["spec"]) if isinstance(out.get("spec"), str) else out.get("spec")
    return out


def submit(spec: dict, path=None, max_attempts: int = MAX_ATTEMPTS, max_hours: float | None = None,
           now: float | None = None, quality: str | None = None) -> str:
    """Queue a validated spec (a dict) and quality level; returns the job id."""
    job_id = uuid.uuid4().hex[:12]
    with transaction(path) as con:
        con.execute("INSERT INTO jobs (job_id, spec, status, attempts, max_attempts, created_at, max_hours, quality) "
                    "VALUES (?, ?, 'queued', 0, ?, ?, ?, ?)",
                    [job_id, json.dumps(spec), max_attempts, utc(now), max_hours, quality])
    return job_id


def list_jobs(path=None, status=None) -> pd.DataFrame:
    if not db_path(path).exists():
        return pd.DataFrame(columns=COLUMNS)
    with connect(path, read_only=True) as con:
        if not has_table(con, "jobs"):
            return pd.DataFrame(columns=COLUMNS)  # a store from before the queue existed
        sql = "SELECT * FROM jobs" + (" WHERE status = ?" if status else "") + " ORDER BY created_at, job_id"
        return con.execute(sql, [status] if status else []).df()


def folder_forms(path=None) -> dict[str, str]:
    """Each folder dataset's stored name -> `folder:<path>` as the newest job that named it asked for it.
    A folder's runs store only its name (its place differs between machines); its jobs keep the path."""
    if not db_path(path).exists():
        return {}
    with connect(path, read_only=True) as con:
        if not has_table(con, "jobs"):
            return {}
        named = con.execute("SELECT json_extract_string(spec, '$.dataset') AS d FROM jobs WHERE starts_with(d, ?) "
                            "ORDER BY created_at, job_id", [FOLDER_FAMILY + ":"]).fetchall()
    forms = {}
    for (dataset,) in named:  # oldest first: a newer job's path replaces an older one's
        forms[stored_name(dataset)] = dataset
    return forms


def get(job_id: str, path=None) -> dict | None:
    with connect(path, read_only=True) as con:
        return _row(con.execute("SELECT * FROM jobs WHERE job_id = ?", [job_id]))


def cancel(job_id: str, path=None, now: float | None = None) -> str:
    """A queued job is cancelled at once; a running one is asked to stop at its next run boundary
    (its worker then marks it cancelled). Returns the job's status after the call."""
    with transaction(path) as con:
        row = _row(con.execute("SELECT * FROM jobs WHERE job_id = ?", [job_id]))
        if row is None:
            raise StoreError(f"no job {job_id!r}")
        if row["status"] == "queued":
            con.execute("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE job_id = ?", [utc(now), job_id])
            return "cancelled"
        if row["status"] == "running":
            con.execute("UPDATE jobs SET cancel_requested = true WHERE job_id = ?", [job_id])
            return "cancelling"
        raise StoreError(f"job {job_id} is {row['status']}: only queued or running jobs can be cancelled")


def requeue_stale(stale_after_s: float, path=None, now: float | None = None) -> int:
    """Jobs whose worker stopped heartbeating go back to the queue, or fail after max_attempts."""
    now = time.time() if now is None else now
    with transaction(path) as con:
        stale = con.execute("SELECT job_id, attempts, max_attempts, worker_id, cancel_requested FROM jobs "
                            "WHERE status = 'running' AND epoch(heartbeat_at) < ?", [now - stale_after_s]).fetchall()
        for job_id, attempts, max_attempts, worker, cancel_requested in stale:
            note = f"worker {worker} stopped heartbeating (attempt {attempts})"
            if cancel_requested:
                con.execute("UPDATE jobs SET status = 'cancelled', finished_at = ?, "
                            "error = coalesce(error || '; ', '') || ? WHERE job_id = ?", [utc(now), note, job_id])
            elif attempts >= max_attempts:
                con.execute("UPDATE jobs SET status = 'failed', finished_at = ?, "
                            "error = coalesce(error || '; ', '') || ? WHERE job_id = ?",
                            [utc(now), note + f"; gave up after {attempts} attempts", job_id])
            else:
                con.execute("UPDATE jobs SET status = 'queued', worker_id = NULL, "
                            "error = coalesce(error || '; ', '') || ? WHERE job_id = ?", [note, job_id])
    return len(stale)


def claim(worker_id: str, path=None, stale_after_s: float | None = None, now: float | None = None) -> dict | None:
    """Take the oldest queued job for this worker, or None."""
    if stale_after_s is not None:
        requeue_stale(stale_after_s, path, now)
    stamp = utc(now)
    with transaction(path) as con:
        return _row(con.execute(
            "UPDATE jobs SET status = 'running', worker_id = ?, attempts = attempts + 1, started_at = ?, "
            "heartbeat_at = ?, runs_done = NULL, runs_planned = NULL WHERE job_id = (SELECT job_id FROM jobs "
            "WHERE status = 'queued' ORDER BY created_at, job_id LIMIT 1) RETURNING *", [worker_id, stamp, stamp]))


def heartbeat(job_id: str, worker_id: str, path=None, now: float | None = None) -> str:
    """'owned' while this worker still runs the job, 'cancel' once a user asked to stop it,
    'lost' when another worker has taken it over (or it is no longer running)."""
    stamp = utc(now)
    with transaction(path) as con:
        row = con.execute("UPDATE jobs SET heartbeat_at = ? WHERE job_id = ? AND worker_id = ? "
                          "AND status = 'running' RETURNING cancel_requested", [stamp, job_id, worker_id]).fetchall()
        con.execute("UPDATE workers SET seen_at = ? WHERE worker_id = ?", [stamp, worker_id])
    if not row:
        return "lost"
    return "cancel" if row[0][0] else "owned"


def progress(job_id: str, worker_id: str, done: int, planned: int, path=None) -> None:
    with transaction(path) as con:
        con.execute("UPDATE jobs SET runs_done = ?, runs_planned = ? WHERE job_id = ? AND worker_id = ?",
                    [done, planned, job_id, worker_id])


def _end(job_id: str, worker_id: str, status: str, path, now, run_ids=None, error=None) -> bool:
    with transaction(path) as con:
        done = con.execute("UPDATE jobs SET status = ?, finished_at = ?, run_ids = coalesce(?, run_ids), "
                           "error = coalesce(?, error) WHERE job_id = ? AND worker_id = ? AND status = 'running' "
                           "RETURNING job_id", [status, utc(now), None if run_ids is None else json.dumps(run_ids),
                                                error, job_id, worker_id]).fetchall()
    return bool(done)


def finish(job_id: str, worker_id: str, run_ids: list[str], path=None, now: float | None = None) -> bool:
    return _end(job_id, worker_id, "done", path, now, run_ids=run_ids)


def fail(job_id: str, worker_id: str, error: str, path=None, now: float | None = None,
         run_ids: list[str] | None = None) -> bool:
    """The job failed; `run_ids` lists the runs it finished before failing (they stay stored)."""
    return _end(job_id, worker_id, "failed", path, now, run_ids=run_ids, error=error)


def cancelled(job_id: str, worker_id: str, run_ids: list[str], path=None, now: float | None = None) -> bool:
    """The worker stopped a job its user cancelled; the runs it finished stay stored."""
    return _end(job_id, worker_id, "cancelled", path, now, run_ids=run_ids, error="cancelled while running")


def run_ids_for(run_keys: list[str], path=None) -> list[str]:
    """The ids of a job's stored runs, from the run keys it planned."""
    with connect(path, read_only=True) as con:
        return [r for (r,) in con.execute("SELECT run_id FROM runs WHERE list_contains(?, run_key) ORDER BY run_id",
                                          [run_keys]).fetchall()]


def release(job_id: str, worker_id: str, path=None) -> None:
    """A worker stopped by its user hands its job back to the queue (the attempt is not counted)."""
    with transaction(path) as con:
        con.execute("UPDATE jobs SET status = 'queued', worker_id = NULL, attempts = attempts - 1 "
                    "WHERE job_id = ? AND worker_id = ? AND status = 'running'", [job_id, worker_id])


# ------------------------------------------------------------------------------- workers

def register_worker(worker_id: str, host: str, pid: int, device: str, threads: int | None, path=None,
                    now: float | None = None) -> None:
    stamp = utc(now)
    with transaction(path) as con:
        con.execute("INSERT INTO workers VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (worker_id) DO UPDATE SET "
                    "seen_at = excluded.seen_at, threads = excluded.threads",
                    [worker_id, host, pid, device, threads, stamp, stamp])


def touch_worker(worker_id: str, path=None, now: float | None = None) -> None:
    with transaction(path) as con:
        con.execute("UPDATE workers SET seen_at = ? WHERE worker_id = ?", [utc(now), worker_id])


def unregister_worker(worker_id: str, path=None) -> None:
    with transaction(path) as con:
        con.execute("DELETE FROM workers WHERE worker_id = ?", [worker_id])


def busy_workers(host: str, alive_within_s: float, path=None, now: float | None = None) -> int:
    """Workers on `host` running a job whose heartbeat is fresh: the processes training right now."""
    now = time.time() if now is None else now
    if not db_path(path).exists():
        return 0
    with connect(path, read_only=True) as con:
        if not has_table(con, "workers"):
            return 0
        return int(con.execute(
            "SELECT count(*) FROM jobs j JOIN workers w ON j.worker_id = w.worker_id WHERE j.status = 'running' "
            "AND w.host = ? AND epoch(j.heartbeat_at) >= ?", [host, now - alive_within_s]).fetchall()[0][0])
