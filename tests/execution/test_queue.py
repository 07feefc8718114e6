"""The job queue with real processes: exactly-once execution, crash recovery, concurrent submissions."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from engine.cli import app
from engine.spec import SpecError, validate
from engine.execution.worker import STUCK_S
from store import jobs
from tests.processes import engine_rows, fresh_store, spawn, wait_for

ROOT = Path(__file__).resolve().parents[2]
FAST = {"recipe": "iterations=10"}
# One thread each: the suite runs several workers beside pytest itself on a 2-core machine.
WORKER = [sys.executable, "-X", "faulthandler", "-m", "engine.cli", "worker", "--poll", "0.2", "--heartbeat", "0.5", "--threads", "1"]



def spec(n_base, added="0,N", seeds=1, **extra):
    return validate({"n_base": n_base, "added": added, "seeds": seeds, **FAST, **extra}).to_dict()


def start_worker(db, *args):
    return spawn([*WORKER, "--db", str(db), *args], Path(db).parent, "worker", cwd=ROOT)


def queue_page(db, monkeypatch) -> AppTest:
    """The dashboard's Queue page on `db`, run once."""
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
    at.switch_page("views/queue.py")
    at.run()
    return at




MALFORMED = [
    ({"n_base": 900}, "n_base 900 is larger than digits's train split of 800"),
    ({"n_base": 0}, "n_base = 0 must be between 1 and"),
    ({"n_base": "fifty"}, "n_base = 'fifty' is not a whole number"),
    ({"n_base": 50, "dataset": "mnist"}, "unknown dataset 'mnist'"),
    ({"n_base": 50, "classifier": "resnet18"}, "unknown classifier 'resnet18'"),
    ({"n_base": 50, "augmentation": "open"}, "augmentation 'open'"),
    ({"n_base": 50, "generator_preset": "huge"}, "unknown generator preset 'huge'"),
    ({"n_base": 50, "added": ""}, "added is empty"),
    ({"n_base": 50, "added": "0,-5"}, "'-5' is not a whole number"),
    ({"n_base": 50, "added": [0, -5]}, "added = -5 must be between 0 and"),
    ({"n_base": 700, "added": "0,N"}, "only 100 lie outside"),
    ({"n_base": 50, "seeds": 0}, "seeds = 0 must be between 1 and 10"),
    ({"n_base": 50, "seeds": 11}, "seeds = 11 must be between 1 and 10"),
    ({"n_base": 50, "recipe": "speed=fast"}, "unknown recipe option 'speed'"),
    ({"n_base": 50, "recipe": "iterations"}, "should be key=value"),
    ({"n_base": 50, "augmentation": "closed", "generator_options": "steps=3"}, "unknown generator option 'steps'"),
    ({"n_base": 50, "colour": "red"}, "unknown spec field 'colour'"),
    ("{not json", "spec is not valid JSON"),
    ([1, 2], "spec must be a JSON object"),
]


@pytest.mark.parametrize("raw, message", MALFORMED)
def test_malformed_specs_are_rejected_with_clear_messages(raw, message):
    with pytest.raises(SpecError) as err:
        validate(raw)
    assert message in str(err.value)


@pytest.mark.parametrize("args, message", [
    (["--n-base", "900"], "larger than digits's train split"),
    (["--seeds", "11"], "between 1 and 10"),
    (["--added", "0,x"], "'x' is not a whole number"),
    (["--recipe", "speed=fast"], "unknown recipe option 'speed'"),
])
def test_cli_rejects_and_writes_nothing(tmp_path, args, message):
    db = fresh_store(tmp_path)
    res = CliRunner().invoke(app, ["queue", "add", "--db", str(db), *args])
    assert res.exit_code == 2 and message in " ".join(res.output.split()) and res.output.count("error:") == 1
    assert jobs.list_jobs(db).empty


@pytest.mark.slow
def test_two_workers_run_every_job_exactly_once(tmp_path):
    db = fresh_store(tmp_path)
    workers = [start_worker(db, "--stale-after", "20", "--idle-exit", "8") for _ in range(2)]
    bases = [20, 25, 30, 35, 40, 45]
    for n_base in bases:  # a stream of submissions while the workers poll
        jobs.submit(spec(n_base), db)
        time.sleep(0.4)
    for w in workers:
        w.wait(timeout=240)
        assert w.returncode == 0, w.output()
    table = jobs.list_jobs(db)
    assert list(table.status) == ["done"] * 6 and list(table.attempts) == [1] * 6
    rows = engine_rows(db)
    assert len(rows) == 12 and rows.run_key.is_unique  # each job: base run + N, one seed
    assert sorted(set(rows.n_base)) == bases
    for r in table.itertuples():
        ids = json.loads(r.run_ids)
        assert len(ids) == 2 and set(ids) <= set(rows.run_id)


@pytest.mark.slow
def test_killed_worker_job_is_requeued_and_finished_once(tmp_path):
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(40, added="0,N,2N,3N", seeds=2, recipe="iterations=150"), db)
    victim = start_worker(db, "--stale-after", "3")
    wait_for(lambda: len(engine_rows(db)) >= 1)   # mid-job: some runs stored, others not yet
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert jobs.get(job_id, db)["status"] == "running"
    rescuer = start_worker(db, "--stale-after", "3", "--idle-exit", "5")
    rescuer.wait(timeout=240)
    assert rescuer.returncode == 0, rescuer.output()
    job = jobs.get(job_id, db)
    assert job["status"] == "done" and job["attempts"] == 2 and "stopped heartbeating" in job["error"]
    rows = engine_rows(db)
    assert len(rows) == 8 and rows.run_key.is_unique
    assert sorted(json.loads(job["run_ids"])) == sorted(rows.run_id)


def test_job_fails_after_max_attempts(tmp_path):
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(20), db, max_attempts=1)
    assert jobs.claim("ghost", db, now=1_000.0)["job_id"] == job_id        # a worker takes it and dies silently
    assert jobs.claim("other", db, stale_after_s=1.0, now=1_002.0) is None  # 2 s later: out of attempts
    job = jobs.get(job_id, db)
    assert job["status"] == "failed" and "gave up after 1 attempts" in job["error"]


SUBMITTER = """
import sys
from engine.spec import validate
from store import jobs
db, who = sys.argv[1], sys.argv[2]
for i in range(50):
    jobs.submit(validate({"n_base": 20 + i, "added": "0", "seeds": 1, "recipe": "iterations=5"}).to_dict(), db)
"""


@pytest.mark.slow
def test_200_concurrent_submissions_land_while_a_worker_writes(tmp_path):
    db = fresh_store(tmp_path)
    worker = start_worker(db, "--stale-after", "30")
    procs = [subprocess.Popen([sys.executable, "-c", SUBMITTER, str(db), str(k)], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for k in range(4)]
    for p in procs:
        p.wait(timeout=240)
        assert p.returncode == 0, p.stderr.read()
    try:
        wait_for(lambda: len(engine_rows(db)) >= 3, timeout=120)  # the worker really was writing
    finally:
        worker.send_signal(signal.SIGINT)
        # Ctrl-C is handled within a second; a worker stuck inside DuckDB (see engine.execution.worker.STUCK_S)
        # ends itself after its watchdog's limit instead, so wait past that before calling it a hang.
        worker.wait_or_dump(timeout=STUCK_S + 60)
    table = jobs.list_jobs(db)
    assert len(table) == 200 and table.job_id.is_unique
    assert set(table.status) <= {"queued", "done", "running"}
    assert (table.status == "running").sum() == 0  # the stopped worker handed its job back


@pytest.mark.slow
def test_queue_page_submits_and_shows_completion(tmp_path, monkeypatch):
    db = fresh_store(tmp_path)
    at = queue_page(db, monkeypatch)
    assert not at.exception
    at.text_input(key="queue_n_base").set_value("900").run()
    assert any("larger than digits's train split" in e.value for e in at.error)
    assert at.button(key="queue_submit").disabled
    at.text_input(key="queue_n_base").set_value("22").run()
    at.text_input(key="queue_added").set_value("0,N").run()
    at.text_input(key="queue_seeds").set_value("1").run()
    at.text_input(key="queue_recipe").set_value("iterations=10").run()
    assert any("2 classifier trainings" in i.value for i in at.info)
    at.button(key="queue_submit").click().run()
    assert any("Queued job" in s.value for s in at.success)
    table = at.dataframe[-1].value
    assert list(table.status) == ["queued"]
    proc = subprocess.run([*WORKER, "--db", str(db), "--once"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    at.run()
    table = at.dataframe[-1].value
    assert list(table.status) == ["done"] and list(table.runs) == [2]
    assert len(engine_rows(db)) == 2
    at.switch_page("views/runs.py")
    at.run()
    assert not at.exception and "sources: engine, paper" in " ".join(c.value for c in at.caption)


def test_registry_matches_what_the_engine_builds():
    from dataclasses import fields

    from engine.catalog.classifiers import CLASSIFIERS
    from engine.catalog.generators import GENERATORS
    from engine.classifiers.networks import create_classifier
    from engine.catalog.recipes import Recipe
    from engine.generators.edm import PRESETS
    from engine.generators.presets import PRESET_TRAINING
    from engine.spec import RECIPE_FIELDS
    edm = next(g for g in GENERATORS.values() if g.trainer.endswith(":EDMKind"))
    assert set(PRESETS) == set(PRESET_TRAINING) == set(edm.presets)
    assert tuple(f.name for f in fields(Recipe)) == RECIPE_FIELDS
    for entry in CLASSIFIERS.values():  # the timm ones are built in test_engine_data
        if entry.network:
            assert create_classifier(entry.name, 10, 3) is not None


def test_cancel_queued_and_running_jobs_from_cli_and_page(tmp_path, monkeypatch):
    db = fresh_store(tmp_path)
    runner = CliRunner()
    first = json.loads(runner.invoke(app, ["queue", "add", "--db", str(db), "--n-base", "20", "--json"]).stdout)
    second = json.loads(runner.invoke(app, ["queue", "add", "--db", str(db), "--n-base", "30", "--json"]).stdout)
    assert first["preview"]["classifier_trainings"] == 12
    jobs.claim("busy-worker", db)  # the first job is now running
    res = runner.invoke(app, ["queue", "cancel", first["job_id"], "--db", str(db)])
    assert res.exit_code == 0 and "will stop at its next run boundary" in " ".join(res.output.split())
    assert jobs.get(first["job_id"], db)["cancel_requested"] is True
    assert jobs.heartbeat(first["job_id"], "busy-worker", db) == "cancel"  # what the worker reads
    listing = runner.invoke(app, ["queue", "list", "--db", str(db)])
    assert listing.exit_code == 0 and "cancelling" in listing.output and "queued" in listing.output
    at = queue_page(db, monkeypatch)
    assert at.selectbox(key="queue_cancel_pick").options == [first["job_id"], second["job_id"]]
    at.selectbox(key="queue_cancel_pick").set_value(second["job_id"]).run()
    at.button(key="queue_cancel").click().run()
    assert not at.exception
    assert jobs.get(second["job_id"], db)["status"] == "cancelled"
    assert jobs.get(first["job_id"], db)["status"] == "running"


def test_quality_level_is_queued_validated_and_listed(tmp_path):
    db = fresh_store(tmp_path)
    runner = CliRunner()
    bad = runner.invoke(app, ["queue", "add", "--db", str(db), "--augmentation", "closed", "--quality", "most"])
    assert bad.exit_code == 2 and "--quality 'most'" in bad.output and jobs.list_jobs(db).empty
    ok = runner.invoke(app, ["queue", "add", "--db", str(db), "--n-base", "20", "--augmentation", "closed",
                             "--added", "N", "--quality", "full", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["quality"] == "full"
    plain = runner.invoke(app, ["queue", "add", "--db", str(db), "--n-base", "20"])
    assert plain.exit_code == 0, plain.output
    frame = jobs.list_jobs(db)
    assert list(frame.quality) == ["full", "cheap"]
    from engine.cli.queue import job_line  # the line `engine queue list` and the Queue page show
    lines = [job_line(r)[0] for r in frame.itertuples()]
    assert lines[0].endswith("· quality full") and "quality" not in lines[1]


def test_worker_fails_a_job_whose_stored_quality_level_is_unknown(tmp_path):
    from engine.execution.worker import Worker
    db = fresh_store(tmp_path)
    job_id = jobs.submit(spec(20), db, quality="everything")  # written past validation, as a foreign client could
    Worker(db, device="cpu", threads=1, log=lambda *a: None).work(once=True)
    job = jobs.get(job_id, db)
    assert job["status"] == "failed" and "--quality 'everything'" in job["error"] and engine_rows(db).empty


@pytest.mark.slow
def test_progress_of_a_finished_job_counts_every_run(tmp_path):
    """Progress was written before each run only, so a finished job read 1/2, and a job whose runs
    were all stored already read nothing (issue #30)."""
    from engine.execution.worker import Worker
    db = fresh_store(tmp_path)
    first = jobs.submit(spec(20), db)
    Worker(db, device="cpu", threads=1, log=lambda *a: None).work(once=True)
    again = jobs.submit(spec(20), db)  # the same two runs: both skipped
    Worker(db, device="cpu", threads=1, log=lambda *a: None).work(once=True)
    for job_id in (first, again):
        job = jobs.get(job_id, db)
        assert job["status"] == "done" and (job["runs_done"], job["runs_planned"]) == (2, 2), job
    assert len(engine_rows(db)) == 2


def test_queue_page_full_quality_checkbox_only_for_closed_set_jobs(tmp_path, monkeypatch):
    db = fresh_store(tmp_path)
    at = queue_page(db, monkeypatch)
    assert at.checkbox(key="queue_full_quality").disabled  # real additions have no synthetic set to measure
    at.radio(key="queue_augmentation").set_value("closed").run()
    at.text_input(key="queue_n_base").set_value("20").run()
    at.text_input(key="queue_added").set_value("N").run()
    at.checkbox(key="queue_full_quality").check().run()
    at.button(key="queue_submit").click().run()
    assert not at.exception and any("Queued job" in s.value for s in at.success)
    assert list(jobs.list_jobs(db).quality) == ["full"]
    assert "quality full" in at.dataframe[-1].value.what.iloc[0]


@pytest.mark.slow
def test_worker_measures_full_quality_when_the_job_asks_for_it(tmp_path):
    from store import quality as store_quality
    db = fresh_store(tmp_path)
    jobs.submit(spec(20, added="N", augmentation="closed", generator_options="train_images=1280"), db,
                quality="full")
    proc = subprocess.run([*WORKER, "--db", str(db), "--once"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert list(jobs.list_jobs(db).status) == ["done"]
    metrics = set(store_quality.query_quality(db).metric)
    assert {"fd", "diversity", "memorisation", "domain"} <= metrics, metrics  # domain: only at the full level
