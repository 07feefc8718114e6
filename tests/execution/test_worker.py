"""The worker under faults: host time zones, SIGTERM, takeover, cancellation, time limits, data roots.

Ageing uses an injected clock (`now=`), never sleeps; the cases that matter with real processes
(another zone's worker beside a healthy one, SIGTERM, a worker paused past stale-after) run real
worker processes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.spec import validate
from engine.execution.worker import STUCK_S, Worker, outside_roots
from store import jobs
from tests.processes import engine_rows as rows, fresh_store, spawn, wait_for

ROOT = Path(__file__).resolve().parents[2]
ZONES = ["UTC", "America/New_York", "Asia/Tokyo", "Pacific/Chatham"]
WORKER = [sys.executable, "-X", "faulthandler", "-m", "engine.cli", "worker", "--poll", "0.2", "--threads", "1"]



def spec(n_base=20, added="0", seeds=1, iterations=10):
    return validate({"n_base": n_base, "added": added, "seeds": seeds, "recipe": f"iterations={iterations}"}).to_dict()


# ------------------------------------------------------------------- one time base, any zone

ZONE_CHECK = """
import sys, time
from store import jobs
db = sys.argv[1]
job = jobs.claim("w1", db)                     # heartbeat written now, by this host's clock
assert jobs.requeue_stale(5.0, db) == 0, "a fresh job was requeued"
assert jobs.claim("w2", db, stale_after_s=5.0) is None, "a second worker took a healthy job"
jobs.heartbeat(job["job_id"], "w1", db, now=time.time() - 10)   # the worker went silent 10 s ago
assert jobs.requeue_stale(5.0, db) == 1, "a silent job was not requeued"
again = jobs.claim("w2", db)
assert again["job_id"] == job["job_id"] and again["attempts"] == 2
created = jobs.get(job["job_id"], db)["created_at"].timestamp()
# naive UTC read back as UTC is the wall clock, whatever the zone
import datetime
utc_created = created if False else jobs.get(job["job_id"], db)["created_at"].replace(tzinfo=datetime.timezone.utc).timestamp()
assert abs(utc_created - time.time()) < 60, utc_created - time.time()
print("ok")
"""


@pytest.mark.slow
@pytest.mark.parametrize("zone", ZONES)
def test_staleness_is_the_same_in_every_time_zone(tmp_path, zone):
    db = fresh_store(tmp_path)
    jobs.submit(spec(), db)
    env = dict(os.environ, TZ=zone, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", ZONE_CHECK, str(db)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_staleness_with_an_injected_clock(tmp_path):
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(), db, now=1_000.0)
    jobs.claim("w1", db, now=2_000.0)
    assert jobs.requeue_stale(30.0, db, now=2_029.0) == 0      # just inside: still healthy
    assert jobs.requeue_stale(30.0, db, now=2_031.0) == 1      # just outside: back in the queue
    assert jobs.get(job_id, db)["status"] == "queued"


# --------------------------------------------------------------------------- real processes

def start(db, *args, zone="UTC"):
    env = dict(os.environ, TZ=zone, PYTHONPATH=str(ROOT))
    return spawn([*WORKER, "--db", str(db), *args], Path(db).parent, "worker", cwd=ROOT, env=env)




@pytest.mark.slow
def test_a_worker_in_another_zone_leaves_a_healthy_job_alone(tmp_path):
    """The reported bug: under TZ=America/New_York a second worker took a healthy job after 5 s."""
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(30, added="0,N,2N", seeds=2, iterations=150), db)
    first = start(db, "--once", "--heartbeat", "0.5", "--stale-after", "5", zone="Asia/Tokyo")
    wait_for(lambda: jobs.get(job_id, db)["status"] == "running")
    second = start(db, "--heartbeat", "0.5", "--stale-after", "5", "--idle-exit", "8", zone="America/New_York")
    second.wait(timeout=240)
    first.wait(timeout=240)
    assert first.returncode == 0, first.output()
    job = jobs.get(job_id, db)
    assert job["status"] == "done" and job["attempts"] == 1 and job["worker_id"].endswith(f":{first.pid}")
    assert len(rows(db)) == 6 and rows(db).run_key.is_unique


@pytest.mark.slow
def test_sigterm_hands_the_job_back_like_ctrl_c(tmp_path):
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(30, added="0,N,2N,3N", seeds=2, iterations=150), db)
    w = start(db, "--heartbeat", "0.5", "--stale-after", "60")
    wait_for(lambda: len(rows(db)) >= 1)
    w.send_signal(signal.SIGTERM)
    w.wait_or_dump(timeout=STUCK_S + 60)  # see test_queue's 200-submission test
    assert w.returncode == 130, w.output()
    job = jobs.get(job_id, db)
    assert job["status"] == "queued" and job["attempts"] == 0 and job["worker_id"] is None  # not stale-after later
    done = len(rows(db))
    assert 1 <= done < 8 and rows(db).run_key.is_unique  # complete rows only


@pytest.mark.slow
def test_a_worker_whose_job_was_taken_over_stops_at_the_next_run(tmp_path):
    """A worker presumed dead (silent past another worker's --stale-after: a suspended VM, a long
    pause) loses its job to that worker; when it next beats it learns so and stops at a run
    boundary instead of training on. (Suspending it with SIGSTOP could freeze it inside a store
    transaction and lock everyone out; a slow heartbeat is the same presumption without that.)"""
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(30, added="0,N,2N,3N", seeds=3, iterations=300), db)
    slow = start(db, "--once", "--heartbeat", "6", "--stale-after", "60")
    wait_for(lambda: len(rows(db)) >= 1)
    rescuer = start(db, "--heartbeat", "0.3", "--stale-after", "1", "--idle-exit", "10")
    wait_for(lambda: jobs.get(job_id, db)["attempts"] == 2, timeout=240)
    slow.wait(timeout=240)
    err = " ".join(slow.output(tail=None).split())  # rich wraps long lines
    assert slow.returncode == 0 and "was taken over by another worker; stopped at a run boundary" in err, err[-2000:]
    rescuer.wait(timeout=300)
    assert rescuer.returncode == 0, rescuer.output()
    job = jobs.get(job_id, db)
    assert job["status"] == "done" and job["attempts"] == 2 and job["worker_id"].endswith(f":{rescuer.pid}")
    assert len(rows(db)) == 12 and rows(db).run_key.is_unique
    assert sorted(json.loads(job["run_ids"])) == sorted(rows(db).run_id)


@pytest.mark.slow
def test_cancelling_a_running_job_stops_it_at_a_run_boundary(tmp_path):
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(30, added="0,N,2N,3N", seeds=3, iterations=150), db)
    w = start(db, "--once", "--heartbeat", "0.3", "--stale-after", "30")
    wait_for(lambda: len(rows(db)) >= 1)
    assert jobs.cancel(job_id, db) == "cancelling"
    w.wait(timeout=120)
    assert w.returncode == 0, w.output()
    job = jobs.get(job_id, db)
    assert job["status"] == "cancelled" and job["error"] == "cancelled while running"
    kept = rows(db)
    assert 1 <= len(kept) < 12 and sorted(json.loads(job["run_ids"])) == sorted(kept.run_id)


@pytest.mark.slow
def test_ctrl_c_during_training_abandons_the_run_and_hands_the_job_back(tmp_path):
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(30, iterations=200_000), db)  # one run of many minutes
    w = start(db, "--heartbeat", "0.5", "--stale-after", "60")
    wait_for(lambda: jobs.get(job_id, db)["runs_planned"] == 1)  # past its first run boundary: training
    time.sleep(1)
    w.send_signal(signal.SIGINT)
    w.wait_or_dump(timeout=60)  # a hang detector, not a timing: it exits within seconds
    assert w.returncode == 130, w.output()
    job = jobs.get(job_id, db)
    assert job["status"] == "queued" and job["attempts"] == 0 and job["worker_id"] is None
    assert rows(db).empty  # the abandoned run left nothing


def test_a_stop_whose_interrupt_was_swallowed_ends_the_run_at_the_next_progress_report(tmp_path):
    """The signal handler noted the stop, but its KeyboardInterrupt never reached the training loop (a
    library swallowed it): the run still stops within 20 steps, and nothing is stored."""
    import contextlib
    from engine.execution.local import run_grid
    from engine.execution.worker import StopRequest
    db = fresh_store(tmp_path)
    stop = StopRequest()

    @contextlib.contextmanager
    def swallowed():
        with stop.interruptible() as check:
            stop.signum = signal.SIGINT   # what the handler does before raising: the raise was lost
            yield check
    with pytest.raises(KeyboardInterrupt):   # without the check, all 2,000 steps train and the run is stored
        run_grid(spec(30, iterations=2000), db, around_training=swallowed)
    assert rows(db).empty


HOLD_LOCK = """
import fcntl, sys, time
with open(sys.argv[1], "a+") as f:
    fcntl.lockf(f, fcntl.LOCK_EX)   # what a writer of another process holds: the store is busy
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_a_second_ctrl_c_ends_a_worker_whose_stop_waits_on_a_busy_store(tmp_path):
    """The first Ctrl-C hands the job back, which waits for a busy store (up to its 60 s retry
    window); a second one ends the worker at once, and the stale check requeues the job."""
    from store.db import lock_path
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(30, iterations=200_000), db)
    w = start(db, "--heartbeat", "0.5", "--stale-after", "60")
    wait_for(lambda: jobs.get(job_id, db)["runs_planned"] == 1)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock_path(db))], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        w.send_signal(signal.SIGINT)
        time.sleep(3)  # training is abandoned at once; the hand-back now waits for the store
        assert w.poll() is None, w.output()
        w.send_signal(signal.SIGINT)
        w.wait_or_dump(timeout=30)  # a hang detector: before, it waited out the store's retry windows
    finally:
        holder.kill()
        holder.wait()
    assert w.returncode == 130 and "second interrupt, exiting now" in w.output(), w.output()
    assert jobs.get(job_id, db)["status"] == "running" and rows(db).empty  # until another worker finds it stale


# ------------------------------------------------------------------------------ in process

def test_a_job_past_its_time_limit_fails_with_its_runs_kept(tmp_path):
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(20, added="0,N", seeds=2, iterations=5), db, max_hours=1.0)
    ticks = iter(range(10_000))
    # Each look at the clock is 0.6 h later: claim, start, before run 1 (0.6 h: goes on),
    # before run 2 (1.2 h: past the 1 h limit).
    clock = lambda: time.time() + 0.6 * 3600 * next(ticks)  # noqa: E731
    n = Worker(db, "cpu", heartbeat_s=0.5, threads=1, log=lambda m: None, clock=clock).work(once=True)
    job = jobs.get(job_id, db)
    assert n == 1 and job["status"] == "failed" and "time limit of 1 h reached after 1 runs" in job["error"]
    assert len(rows(db)) == 1 and json.loads(job["run_ids"]) == list(rows(db).run_id)
    assert (job["runs_done"], job["runs_planned"]) == (1, 4)  # the stored run counts, though no run followed it


def test_ctrl_c_inside_a_store_statement_stops_the_worker(tmp_path, monkeypatch):
    """DuckDB's client turns a KeyboardInterrupt that arrives while a statement runs into
    RuntimeError('Query interrupted'): the worker took it for a failed job and went on with the next
    one, and Ctrl-C never stopped it (the 200-submission test's hang). Here the Ctrl-C arrives while
    the worker writes its progress before the first run."""
    import threading

    from store.db import connect
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(20, added="0,N", iterations=5), db)
    jobs.submit(spec(21, added="0,N", iterations=5), db)  # what a worker that lost its Ctrl-C went on to
    real_progress, timers = jobs.progress, []

    def progress_meanwhile_ctrl_c(*args, **kwargs):
        if not timers:
            with connect(db) as con:
                con.execute("SET threads = 1")
                timers.append(threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)))
                timers[0].start()
                con.execute("SELECT count(*) FROM range(200000000) t(i) WHERE i % 7 = 3").fetchall()  # seconds
        return real_progress(*args, **kwargs)

    monkeypatch.setattr(jobs, "progress", progress_meanwhile_ctrl_c)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        Worker(db, "cpu", heartbeat_s=0.5, threads=1, log=lambda m: None).work(idle_exit_s=5)
    timers[0].join()
    assert signal.getsignal(signal.SIGINT) is before
    statuses = {r.job_id: r.status for r in jobs.list_jobs(db).itertuples()}
    assert statuses[job_id] == "queued" and set(statuses.values()) == {"queued"}, statuses
    assert jobs.get(job_id, db)["attempts"] == 0 and rows(db).empty


def test_data_paths_from_the_queue_must_lie_under_the_worker_roots(tmp_path):
    allowed = tmp_path / "data"
    outside = tmp_path / "elsewhere"
    for root in (allowed / "mine", outside):
        (root / "train" / "a").mkdir(parents=True)
        (root / "train" / "a" / "1.png").write_bytes(b"not read: the path is refused first")
    inside = validate({"dataset": f"folder:{allowed / 'mine'}", "n_base": 1, "added": "0"})
    assert outside_roots(inside, [allowed]) is None
    sneaky = validate({"dataset": f"folder:{allowed / '..' / 'elsewhere'}", "n_base": 1, "added": "0"})
    assert outside_roots(sneaky, [allowed]) is not None
    (allowed / "link").symlink_to(outside)
    linked = validate({"dataset": f"folder:{allowed / 'link'}", "n_base": 1, "added": "0"})
    assert outside_roots(linked, [allowed]) is not None   # symlinks are resolved first
    db = fresh_store(tmp_path)
    job_id = jobs.submit(sneaky.to_dict(), db)
    Worker(db, "cpu", threads=1, data_roots=[allowed], log=lambda m: None).work(once=True)
    job = jobs.get(job_id, db)
    assert job["status"] == "failed" and "is outside this worker's --data-root" in job["error"]
    assert rows(db).empty


def test_threads_are_the_hosts_cores_shared_among_busy_workers(tmp_path, monkeypatch):
    from engine.device import threads
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    assert threads.choose(None, "cpu", 1) == 8
    assert threads.choose(None, "cpu", 2) == 4
    assert threads.choose(None, "cpu", 3) == 2
    assert threads.choose(None, "cpu", 20) == 1
    assert threads.choose(None, "cuda", 2) == threads.GPU_HOST_THREADS
    assert threads.choose(3, "cpu", 5) == 3
    db = fresh_store(tmp_path)
    for k in range(3):
        jobs.register_worker(f"h:{k}", "h", k, "cpu", None, db, now=1_000.0)
        jobs.submit(spec(20 + k), db)
    jobs.register_worker("other:1", "other", 1, "cpu", None, db, now=1_000.0)
    for k in range(2):
        jobs.claim(f"h:{k}", db, now=1_000.0)
    jobs.claim("other:1", db, now=1_000.0)
    assert jobs.busy_workers("h", 60, db, now=1_030.0) == 2      # h:2 is idle, other:1 on another host
    assert jobs.busy_workers("h", 60, db, now=1_100.0) == 0      # their heartbeats are stale


STUCK = """
import sys, time
from engine.execution.worker import stuck_store_watchdog
with stuck_store_watchdog(float(sys.argv[1])):
    time.sleep(float(sys.argv[2]))  # stands for a store call stuck in C
print("returned", flush=True)
time.sleep(float(sys.argv[3]))  # the timer was cancelled on the way out: nothing fires here
"""


@pytest.mark.parametrize("limit, call, after, code", [(1, 30, 0, 1), (1, 0.1, 2, 0)])
def test_a_store_call_stuck_past_the_watchdog_ends_the_worker(limit, call, after, code):
    proc = subprocess.run([sys.executable, "-c", STUCK, str(limit), str(call), str(after)], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == code, proc.stderr[-2000:]
    if code:
        assert "Timeout (0:00:01)!" in proc.stderr and "returned" not in proc.stdout
        assert 'File "<string>", line 5' in proc.stderr  # where it was stuck
    else:
        assert proc.stdout.strip() == "returned" and proc.stderr == ""
