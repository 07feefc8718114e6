"""`engine worker`: take jobs from the queue and run them, exactly once each.

A worker claims the oldest queued job atomically, heartbeats from a background thread while it
trains (no store connection is held in between), runs the job with the same code as
`engine run`, then marks it done with the ids of its runs, or failed with the error. A worker
that dies stops heartbeating; after `stale_after` seconds any worker puts its job back in the
queue (or fails it after max_attempts). Run keys make writes idempotent, so a job that is run
again never duplicates a row.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time

from store import jobs
from store.db import StoreError


class Heartbeat:
    def __init__(self, job_id: str, worker_id: str, db, every_s: float):
        self.job_id, self.worker_id, self.db, self.every_s = job_id, worker_id, db, every_s
        self.owned = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{job_id}")

    def _beat(self):
        while not self._stop.wait(self.every_s):
            try:
                self.owned = jobs.heartbeat(self.job_id, self.worker_id, self.db)
            except StoreError:
                pass  # the store was busy past the retry window; the next beat tries again

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        # A beat may be waiting on a busy store; the thread is a daemon, so a stopping worker
        # need not wait for it longer than one beat.
        self._thread.join(timeout=self.every_s)


def run_ids_for(run_keys: list[str], db) -> list[str]:
    from store.db import connect
    with connect(db, read_only=True) as con:
        return [r for (r,) in con.execute("SELECT run_id FROM runs WHERE list_contains(?, run_key) ORDER BY run_id",
                                          [run_keys]).fetchall()]


def run_job(job: dict, db, device: str, console=None) -> list[str]:
    from engine.run import run_grid
    summary, _, _ = run_grid(job["spec"], db, console, device=device)
    return run_ids_for(summary["run_keys"], db)


@contextlib.contextmanager
def deferred_interrupt():
    """Hold Ctrl-C until a store update has finished, so that a job is never left marked
    running by a worker that stopped between claiming it and recording that."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def work(db=None, device: str = "auto", once: bool = False, poll_s: float = 5.0, heartbeat_s: float = 10.0,
         stale_after_s: float = 120.0, idle_exit_s: float | None = None, worker_id: str | None = None,
         console=None, log=print) -> int:
    """Process jobs until stopped (or once, or idle for idle_exit_s). Returns jobs processed."""
    worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
    processed, idle_since = 0, time.monotonic()
    while True:
        job = None
        try:
            with deferred_interrupt():
                job = jobs.claim(worker_id, db, stale_after_s)
            if job is None:
                if once or (idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s):
                    return processed
                time.sleep(poll_s)
                continue
            log(f"worker {worker_id}: job {job['job_id']} (attempt {job['attempts']}): {job['spec']}")
            try:
                with Heartbeat(job["job_id"], worker_id, db, heartbeat_s):
                    run_ids = run_job(job, db, device, console)
            except KeyboardInterrupt:
                raise
            except Exception as err:  # the job failed, not the worker: record why and go on
                message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                with deferred_interrupt():
                    jobs.fail(job["job_id"], worker_id, message, db)
                    job_id, job = job["job_id"], None
                log(f"worker {worker_id}: job {job_id} failed: {message}")
            else:
                with deferred_interrupt():
                    finished = jobs.finish(job["job_id"], worker_id, run_ids, db)
                    job_id, job = job["job_id"], None
                log(f"worker {worker_id}: job {job_id} " + (f"done, {len(run_ids)} runs" if finished else
                                                           "was taken over while running; its runs are stored"))
        except KeyboardInterrupt:
            if job is not None:
                jobs.release(job["job_id"], worker_id, db)
                log(f"worker {worker_id}: stopped; job {job['job_id']} is back in the queue")
            raise
        processed += 1
        idle_since = time.monotonic()
        if once:
            return processed
