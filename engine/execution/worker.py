"""`engine worker`: take jobs from the queue and run them, exactly once each.

A worker registers itself (host, pid), claims the oldest queued job atomically, heartbeats from a
background thread while it trains (no store connection is held in between), runs the job with the
same code as `engine run`, then marks it done with the ids of its runs, or failed with the error.
A worker that dies stops heartbeating; after `stale_after` seconds any worker puts its job back in
the queue (or fails it after max_attempts). Run keys make writes idempotent, so a job that is run
again never duplicates a row.

At every run boundary the worker asks whether to go on: a job its user cancelled is marked
cancelled, a job another worker has taken over (this one was presumed dead) is left to that
worker, and a job past its time limit fails; the runs finished so far stay stored in every case.
There too it resizes its torch thread pool to its share of the host's cores.

Ctrl-C or SIGTERM stops the worker (StopRequest): a run in training is abandoned at once, anything
else finishes its store update first, and the job goes back to the queue.
"""
from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from engine.device import threads as thread_policy
from engine.catalog.vocab import DEFAULT_QUALITY
from engine.spec import SpecError, check_quality, data_paths, validate
from store import jobs
from store.db import StoreError


class Heartbeat:
    """Beats every `every_s` from a thread; `state` is 'owned', 'cancel' or 'lost' (store.jobs.heartbeat)."""

    def __init__(self, job_id: str, worker_id: str, db, every_s: float):
        self.job_id, self.worker_id, self.db, self.every_s = job_id, worker_id, db, every_s
        self.state = "owned"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{job_id}")

    def _beat(self):
        while not self._stop.wait(self.every_s):
            try:
                self.state = jobs.heartbeat(self.job_id, self.worker_id, self.db)
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


def outside_roots(spec, roots: list[Path]) -> Path | None:
    """The first path the job would read that lies outside every allowed root (symlinks resolved)."""
    allowed = [Path(r).resolve() for r in roots]
    for path in data_paths(spec):
        real = Path(path).resolve()
        if not any(real == root or real.is_relative_to(root) for root in allowed):
            return Path(path)
    return None


@contextlib.contextmanager
def deferred_interrupt():
    """Hold Ctrl-C (and SIGTERM) until a store update has finished, so that a job is never left
    marked running by a worker that stopped between claiming it and recording that."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            raise KeyboardInterrupt


# A queue update returns in well under a second, or within the store's 60 s retry window when the
# store is busy. One still running after STUCK_S is stuck inside DuckDB, where Python cannot stop it,
# as duckdb/duckdb#25965 describes (its instance cache can spin forever). The worker then prints every
# thread's stack and exits with status 1, so that its service manager restarts it; a job it held is
# requeued by the others' stale check and its stored runs are skipped when it runs again.
# (CI once caught a worker in duckdb.connect, in a claim, a minute after its Ctrl-C. One snapshot cannot
# tell stuck from busy: a worker that had lost its Ctrl-C (see StopRequest) goes on claiming and running
# jobs, and between two of them it looks just so.)
STUCK_S = 180.0


@contextlib.contextmanager
def stuck_store_watchdog(seconds: float = STUCK_S):
    """faulthandler's timer runs on its own C thread, so it fires even if the stuck call holds the GIL."""
    if threading.current_thread() is not threading.main_thread():
        yield  # one timer per process: the main thread's
        return
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def terminate_as_interrupt() -> None:
    """docker stop and systemd send SIGTERM: hand the job back exactly as for Ctrl-C."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)


class StopRequest:
    """Ctrl-C and SIGTERM while a worker works: the first asks it to stop, a second ends it at once.

    The first raises KeyboardInterrupt at once only inside `interruptible()` (a run's training, an
    idle wait: nothing is written there); anywhere else it is noted and acted on at the next run
    boundary, generator step or turn of the loop. Raised inside a store call, it was lost: DuckDB's
    Python client checks for signals while a statement runs and turns the KeyboardInterrupt into
    RuntimeError('Query interrupted'), which the worker took for a failed job, and it went on to
    the next one. Raised between two bytecodes of store.db.connect, it could leave the writer turn
    or the lock file's counts held.

    A second signal is for a stop that takes too long (a store busy for its whole retry window): it
    exits with status 130 without handing the job back, as kill -9 would; the stale check requeues
    the job. The handlers replace an inherited SIG_IGN too (a worker started in the background by a
    script): with it, a Ctrl-C was seen only when it landed inside a store update.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None  # the first signal received
        self._interruptible = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None:
            with contextlib.suppress(OSError):  # not the console: the main thread may be inside its print
                os.write(2, b"worker: second interrupt, exiting now; a job it held is requeued after --stale-after\n")
            os._exit(130)
        self.signum = signum
        if self._interruptible:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def handling(self):
        """Install the handlers for the duration (main thread only: Python runs handlers there)."""
        self.signum = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        try:
            yield
        finally:
            for s, handler in previous.items():
                if handler is not None:  # None: set outside Python; it cannot be restored from here
                    signal.signal(s, handler)

    def raise_if_requested(self) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def interruptible(self):
        """A stretch that writes nothing, so a stop may interrupt it anywhere. It yields a check for the
        stretch to call now and then (training calls it every 20 steps): the signal's KeyboardInterrupt
        is raised inside whatever Python code runs at that moment, and code that swallows it (an
        `except BaseException` or a bare `except:` in a library) leaves only `signum` set. Under load,
        one stop in about 75 was lost so, and the run trained on to its end."""
        try:
            self._interruptible = True  # inside the try: a signal on this line still closes it
            self.raise_if_requested()
            yield self.raise_if_requested
        finally:
            self._interruptible = False


class Worker:
    def __init__(self, db=None, device: str = "auto", poll_s: float = 5.0, heartbeat_s: float = 10.0,
                 stale_after_s: float = 120.0, worker_id: str | None = None, console=None, log=print,
                 threads: int | None = None, data_roots=(Path("data"),), max_job_hours: float | None = None,
                 clock=time.time):
        self.db, self.device, self.poll_s, self.heartbeat_s = db, device, poll_s, heartbeat_s
        self.stale_after_s, self.console, self.log, self.clock = stale_after_s, console, log, clock
        self.host = socket.gethostname()
        self.worker_id = worker_id or f"{self.host}:{os.getpid()}"
        self.threads, self.data_roots, self.max_job_hours = threads, [Path(r) for r in data_roots], max_job_hours
        self.device_type = "cpu"
        self.stop = StopRequest()

    # ------------------------------------------------------------------ one job
    def _threads_now(self) -> int:
        busy = jobs.busy_workers(self.host, self.stale_after_s, self.db, now=self.clock())
        return thread_policy.choose(self.threads, self.device_type, busy)

    def _limit_s(self, job) -> float | None:
        limits = [h for h in (job.get("max_hours"), self.max_job_hours) if h]
        return min(limits) * 3600 if limits else None

    def run_job(self, job: dict) -> tuple[str, list[str], str | None]:
        """(outcome, run ids, message): outcome is done, failed, cancelled or lost."""
        from engine.execution.local import Runtime, Stopped, run_grid
        try:
            spec = validate(job["spec"])
            quality = check_quality(job.get("quality") or DEFAULT_QUALITY)
        except SpecError as err:
            return "failed", [], f"SpecError: {err}"
        outside = outside_roots(spec, self.data_roots)
        if outside is not None:
            roots = ", ".join(str(r) for r in self.data_roots) or "no folder"
            return "failed", [], (f"data path {outside} is outside this worker's --data-root ({roots}); "
                                  f"start the worker with --data-root covering it")
        started, limit_s = self.clock(), self._limit_s(job)
        summary, last, recorded = {}, [None], [None]

        def record_progress(done: int, planned: int):
            """Runs stored of those planned, as `engine queue list` and the Queue page show them."""
            if recorded[0] == (done, planned):
                return
            try:
                jobs.progress(job["job_id"], self.worker_id, done, planned, self.db)
                recorded[0] = (done, planned)
            except StoreError:
                pass  # progress is best effort; the job goes on

        with Heartbeat(job["job_id"], self.worker_id, self.db, self.heartbeat_s) as beat:
            def at_boundary(done: int, planned: int):
                if self.stop.requested:
                    return "interrupted"
                if beat.state == "lost":
                    return "lost"
                if beat.state == "cancel":
                    return "cancel"
                if limit_s is not None and self.clock() - started > limit_s:
                    return "time"
                if last[0] == (done, planned):  # asked again within one run (a generator's steps)
                    return None
                last[0] = (done, planned)
                record_progress(done, planned)  # the first boundary's count; on_stored writes each later one
                if self.threads is None:
                    try:
                        thread_policy.apply(self._threads_now())
                    except StoreError:
                        pass  # sizing is best effort; the job goes on
                return None

            try:
                runtime = Runtime(device=self.device, quality=quality)
                summary, _, _ = run_grid(spec, self.db, self.console, runtime, should_stop=at_boundary,
                                         on_stored=record_progress, around_training=self.stop.interruptible)
            except Stopped as stop:
                summary = stop.args[1] if len(stop.args) > 1 else {}
                reason = stop.args[0]
                if reason == "interrupted":
                    raise KeyboardInterrupt from None
                run_ids = jobs.run_ids_for(summary.get("run_keys", []), self.db)
                if reason == "cancel":
                    return "cancelled", run_ids, None
                if reason == "lost":
                    return "lost", run_ids, None
                return "failed", run_ids, (f"time limit of {limit_s / 3600:g} h reached after "
                                           f"{summary.get('written', 0)} runs; the finished runs are stored")
        return "done", jobs.run_ids_for(summary["run_keys"], self.db), None

    # ------------------------------------------------------------------ the loop
    def work(self, once: bool = False, idle_exit_s: float | None = None) -> int:
        """Process jobs until stopped (or once, or idle for idle_exit_s). Returns jobs processed."""
        from engine.device.runtime import resolve_device
        with self.stop.handling():
            self.device_type = resolve_device(self.device).type
            first = thread_policy.choose(self.threads, self.device_type,
                                         jobs.busy_workers(self.host, self.stale_after_s, self.db) + 1)
            thread_policy.apply(first)
            jobs.register_worker(self.worker_id, self.host, os.getpid(), self.device, self.threads, self.db)
            try:
                return self._loop(once, idle_exit_s)
            finally:
                with contextlib.suppress(StoreError), stuck_store_watchdog():
                    jobs.unregister_worker(self.worker_id, self.db)

    def _loop(self, once: bool, idle_exit_s: float | None) -> int:
        processed, idle_since, log = 0, time.monotonic(), self.log
        touched = time.monotonic()
        while True:
            job = None
            try:
                self.stop.raise_if_requested()
                with stuck_store_watchdog():
                    job = jobs.claim(self.worker_id, self.db, self.stale_after_s, now=self.clock())
                self.stop.raise_if_requested()  # asked during the claim: the job goes straight back
                if job is None:
                    if once or (idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s):
                        return processed
                    if time.monotonic() - touched >= self.heartbeat_s:  # alive, at heartbeat pace
                        with stuck_store_watchdog():
                            jobs.touch_worker(self.worker_id, self.db)
                        touched = time.monotonic()
                    with self.stop.interruptible():
                        time.sleep(self.poll_s)
                    continue
                log(f"worker {self.worker_id}: job {job['job_id']} (attempt {job['attempts']}): {job['spec']}")
                try:
                    outcome, run_ids, message = self.run_job(job)
                except KeyboardInterrupt:
                    raise
                except Exception as err:  # the job failed, not the worker: record why and go on
                    if self.stop.requested:  # helpers (DDP ranks) got the same Ctrl-C: not the job's failure
                        raise KeyboardInterrupt from err
                    outcome, run_ids = "failed", []
                    message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                with stuck_store_watchdog():
                    job_id, job = job["job_id"], None
                    if outcome == "done":
                        ok = jobs.finish(job_id, self.worker_id, run_ids, self.db)
                        note = f"done, {len(run_ids)} runs" if ok else "was taken over while running; its runs are stored"
                    elif outcome == "cancelled":
                        jobs.cancelled(job_id, self.worker_id, run_ids, self.db)
                        note = f"cancelled by its user after {len(run_ids)} runs (they stay stored)"
                    elif outcome == "lost":
                        note = "was taken over by another worker; stopped at a run boundary"
                    else:
                        jobs.fail(job_id, self.worker_id, message, self.db, run_ids=run_ids or None)
                        note = f"failed: {message}"
                log(f"worker {self.worker_id}: job {job_id} {note}")
            except KeyboardInterrupt:
                if job is not None:
                    with stuck_store_watchdog():
                        jobs.release(job["job_id"], self.worker_id, self.db)
                    log(f"worker {self.worker_id}: stopped; job {job['job_id']} is back in the queue")
                raise
            processed += 1
            idle_since = time.monotonic()
            self.stop.raise_if_requested()  # asked while the job was being recorded: it is, so just stop
            if once:
                return processed


def work(db=None, device: str = "auto", once: bool = False, poll_s: float = 5.0, heartbeat_s: float = 10.0,
         stale_after_s: float = 120.0, idle_exit_s: float | None = None, worker_id: str | None = None,
         console=None, log=print, **options) -> int:
    return Worker(db, device, poll_s, heartbeat_s, stale_after_s, worker_id, console, log, **options).work(
        once, idle_exit_s)
