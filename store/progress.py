"""Per-job progress: runs done of runs planned, and which runs are training where.

Written by the process that runs the job (the cluster dispatcher, the store's only writer) in
short transactions when something changes; read by `engine queue list` and the Queue page.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd

from store.db import connect, db_path, has_table, transaction

COLUMNS = ["job_id", "planned", "done", "running", "updated_at"]


def report(job_id: str, planned: int, done: int, running: list[dict], path=None) -> None:
    """running: one {"run": label, "key": run key, "where": host:pid or None} per run in flight."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as in store.jobs
    with transaction(path) as con:
        con.execute("INSERT INTO job_progress VALUES (?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET "
                    "planned = excluded.planned, done = excluded.done, running = excluded.running, "
                    "updated_at = excluded.updated_at", [job_id, planned, done, json.dumps(running), now])


def for_jobs(path=None) -> pd.DataFrame:
    if not db_path(path).exists():
        return pd.DataFrame(columns=COLUMNS)
    with connect(path, read_only=True) as con:
        if not has_table(con, "job_progress"):
            return pd.DataFrame(columns=COLUMNS)  # a store from before progress was recorded
        return con.execute("SELECT * FROM job_progress ORDER BY job_id").df()


def describe(row, status: str | None = None) -> str:
    """One line: '3/8 runs · n_base 20 +20 real, seed 1 on node-a:4242'; where only while running."""
    if row is None:
        return ""
    text = f"{int(row['done'])}/{int(row['planned'])} runs"
    running = json.loads(row["running"]) if isinstance(row.get("running"), str) else (row.get("running") or [])
    if status == "running" and running:
        text += " · " + "; ".join(f"{r['run']} on {r['where']}" if r.get("where") else f"{r['run']} (waiting for room)"
                                   for r in running)
    return text


def by_job(path=None) -> dict:
    return {r["job_id"]: r for r in for_jobs(path).to_dict("records")}
