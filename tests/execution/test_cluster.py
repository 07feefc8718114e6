"""`engine cluster` on a real Ray cluster (`ray start --head` on 127.0.0.1, 2 CPUs): a closed-set
digits job through it, a Ray worker killed by PID mid-task, a dispatcher killed mid-job and
restarted; every run stored once."""
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.spec import validate
from engine.cli import app
from store import jobs, progress
from tests.processes import engine_rows, fresh_store, wait_for

ROOT = Path(__file__).resolve().parents[2]
# The test cluster's own token: Ray 2.60 turns token authentication on, and every client must show it.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
       "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """A one-node Ray cluster in its own process group; stopped (by its PID) at the end."""
    pytest.importorskip("ray")
    port = free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    log = open(temp / "head.log", "w")
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}",
                             "--node-ip-address=127.0.0.1", "--num-cpus=2", "--object-store-memory=100000000",
                             "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
                            env=ENV, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "Ray runtime started" in (temp / "head.log").read_text(), timeout=120, every=1)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops every process it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        log.close()




def dispatcher(address, db, *args):
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "cluster", "--address", address, "--db", str(db),
                             "--heartbeat", "0.5", "--poll", "0.5", *args], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def running_tasks(db, job_id):
    row = progress.by_job(db).get(job_id)
    return json.loads(row["running"]) if row else []


@pytest.mark.slow
def test_closed_set_job_finishes_when_a_ray_worker_is_killed_mid_task(ray_head, tmp_path):
    db = fresh_store(tmp_path)
    spec = validate({"n_base": 20, "added": "0,N", "seeds": 1, "augmentation": "closed",
                             "recipe": "iterations=200", "generator_options": "train_images=640"}).to_dict()
    job_id = jobs.submit(spec, db)
    proc = dispatcher(ray_head, db, "--once")
    try:
        # A classifier run is training on a Ray worker: the Queue's progress says where.
        def training():
            return [t for t in running_tasks(db, job_id)
                    if t["key"] != "generator" and t["where"]]
        wait_for(training)
        victim = training()[0]
        listing = CliRunner().invoke(app, ["queue", "list", "--db", str(db)], env={"COLUMNS": "400"})
        assert f"on {victim['where']}" in listing.output
        host, pid = victim["where"].rsplit(":", 1)
        assert host == socket.gethostname()
        os.kill(int(pid), signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    job = jobs.get(job_id, db)
    assert job["status"] == "done", job["error"]
    rows = engine_rows(db)
    assert len(rows) == 2 and rows.run_key.is_unique
    assert sorted(json.loads(job["run_ids"])) == sorted(rows.run_id)
    assert sorted(rows.augmentation) == ["closed", "real"]
    killed = rows[rows.run_key == victim["key"]].iloc[0]
    assert json.loads(killed.config)["node"] != victim["where"]  # Ray ran it again on another process
    closed = rows[rows.augmentation == "closed"]
    assert closed.generator_id.notna().all() and closed.n_syn_added.tolist() == [20]
    # The dispatcher stored the generator's weights, its synthetic set and its memorisation check.
    gen_dir = tmp_path / "artifacts" / "generators" / closed.generator_id.iloc[0]
    assert (gen_dir / "ema.safetensors").stat().st_size > 0
    assert (tmp_path / "artifacts" / "synthetic" / f"{closed.synthetic_set_id.iloc[0]}.npz").exists()
    listing = CliRunner().invoke(app, ["queue", "list", "--db", str(db)], env={"COLUMNS": "400"})
    assert "2/2 runs" in listing.output


@pytest.mark.slow
def test_killed_dispatcher_restarts_and_submits_only_missing_runs(ray_head, tmp_path):
    db = fresh_store(tmp_path)
    spec = validate({"n_base": 20, "added": "0,N", "seeds": 2, "recipe": "iterations=100"}).to_dict()
    job_id = jobs.submit(spec, db)
    first = dispatcher(ray_head, db, "--stale-after", "3")
    try:
        wait_for(lambda: len(engine_rows(db)) >= 1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        first.kill()
    before = engine_rows(db)
    assert 1 <= len(before) < 4
    assert jobs.get(job_id, db)["status"] == "running"  # nobody handed it back
    time.sleep(3.5)  # its heartbeat goes stale
    second = dispatcher(ray_head, db, "--once", "--stale-after", "3")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert f"4 runs planned, {len(before)} already stored, submitting {4 - len(before)}" in " ".join(err.split())
    job = jobs.get(job_id, db)
    assert job["status"] == "done" and job["attempts"] == 2
    after = engine_rows(db)
    assert len(after) == 4 and after.run_key.is_unique
    assert set(before.run_id) <= set(after.run_id)  # the stored runs were not trained again
    assert sorted(json.loads(job["run_ids"])) == sorted(after.run_id)


@pytest.mark.slow
def test_open_set_job_runs_on_the_cluster_as_engine_run_runs_it(ray_head, tmp_path):
    """An imported set's runs through the cluster: the dispatcher reads the set (the nodes cannot
    see the store), ships its images, and stores runs with the identity `engine run` gives them."""
    from store import synthetic as store_synthetic
    from tests.execution.test_open_set_runs import render_noisy_digits
    db = fresh_store(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["synthetic", "import", "noisy", "--dataset", "digits",
                              "--from", str(render_noisy_digits(tmp_path / "noisy", per_class=4)), "--db", str(db)])
    assert res.exit_code == 0, res.output
    raw = {"n_base": 20, "added": "0,N", "seeds": 1, "augmentation": "open", "generator": "noisy",
           "recipe": "iterations=20"}
    job_id = jobs.submit(validate(raw).to_dict(), db)
    gone = jobs.submit(validate({**raw, "generator": "gone"}).to_dict(), db)  # removed since it was queued
    proc = dispatcher(ray_head, db, "--idle-exit", "1")  # both jobs, in the order queued, then exit
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    job = jobs.get(job_id, db)
    assert job["status"] == "done", job["error"]
    # The job's quality level (cheap by default) is not measured there, and the log says how to.
    assert "its quality level cheap is not measured on the cluster; run `engine quality noisy`" in " ".join(err.split())
    rows = engine_rows(db)
    opened = rows[rows.augmentation == "open"]
    assert sorted(rows.augmentation) == ["open", "real"] and opened.n_syn_added.tolist() == [20]
    assert set(opened.generator) == {"noisy"} and opened.generator_id.isna().all()
    assert opened.synthetic_set_id.iloc[0] == store_synthetic.open_set("noisy", db)["synthetic_set_id"]
    assert json.loads(opened.config.iloc[0])["synthetic_set"]["name"] == "noisy"
    assert sorted(json.loads(job["run_ids"])) == sorted(rows.run_id)
    # The same grid from `engine run` finds both runs stored: the same run keys.
    res = runner.invoke(app, ["run", "--db", str(db), "--dataset", "digits", "--n-base", "20", "--added", "0,N",
                              "--seeds", "1", "--augmentation", "open", "--generator", "noisy",
                              "--recipe", "iterations=20"])
    assert res.exit_code == 0, res.output
    assert len(engine_rows(db)) == 2
    # A set missing from the store fails its job with one line, before any task is submitted.
    failed = jobs.get(gone, db)
    assert failed["status"] == "failed" and "no imported synthetic set named 'gone'" in failed["error"]


@pytest.mark.slow
def test_dit_job_runs_on_the_cluster_and_stores_what_engine_run_stores(ray_head, tmp_path):
    """A DiT job (refused before): its generator and VAE train on a node, the files and the full generator
    row (kind, name, loss curve, VAE fields) come back through the writer a local run uses, and
    `engine run` of the same grid finds every run and the generator stored."""
    from store import artifacts
    db = fresh_store(tmp_path)
    options = ["train_images=256", "vae_train_images=128", "sampling_steps=4"]
    raw = {"n_base": 20, "added": "0,N", "seeds": 1, "augmentation": "closed", "generator": "dit",
           "generator_preset": "tiny", "generator_options": options, "recipe": "iterations=10"}
    job_id = jobs.submit(validate(raw).to_dict(), db, quality="off")
    proc = dispatcher(ray_head, db, "--once")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    job = jobs.get(job_id, db)
    assert job["status"] == "done", job["error"]
    rows = engine_rows(db)
    assert sorted(rows.augmentation) == ["closed", "real"]
    generators = artifacts.list_generators(db)
    assert len(generators) == 1
    gen = generators.iloc[0]
    config = json.loads(gen.config)
    assert config["kind"] == "dit" and config["name"] == "DiT-tiny" and config["vae"]["vae_id"].startswith("vae-")
    assert "heldout_reconstruction" in config["vae"] and json.loads(gen.loss_curve)
    assert Path(gen.checkpoint).is_file() and Path(gen.checkpoint).is_relative_to(artifacts.artifacts_dir(db))
    assert (artifacts.artifacts_dir(db) / "vaes" / config["vae"]["vae_id"]).is_dir()
    assert json.loads(gen.memorisation)["n_samples"] == 20
    closed = rows[rows.augmentation == "closed"].iloc[0]
    assert closed.generator == "DiT-tiny" and json.loads(closed.config)["generator_kind"] == "dit"
    res = CliRunner().invoke(app, ["run", "--db", str(db), "--dataset", "digits", "--n-base", "20", "--added", "0,N",
                                   "--seeds", "1", "--augmentation", "closed", "--generator", "dit",
                                   "--generator-preset", "tiny", "--recipe", "iterations=10", "--quality", "off",
                                   *[a for o in options for a in ("--generator-option", o)]])
    assert res.exit_code == 0, res.output
    assert "0 runs written, 2 already stored" in " ".join(res.output.split())
    assert len(artifacts.list_generators(db)) == 1


@pytest.mark.slow
def test_appendix_g_jobs_run_on_the_cluster_as_engine_run_runs_them(ray_head, tmp_path):
    """A synthetic base (G.1: every run trains on the set's first n_base images) and a zero-shot grid
    (G.2: a local text encoder, only the unseen classes' images added) through the cluster: the same
    run keys and, trained on one thread each, the same accuracies as `engine run` gives in another store."""
    from store import runs as store_runs
    from tests.classifiers.test_zero_shot import build_tiny_bert
    from tests.execution.test_open_set_runs import render_noisy_digits
    images, bert = render_noisy_digits(tmp_path / "noisy", per_class=10), build_tiny_bert(tmp_path / "bert")
    grids = {"base": {"base": "synthetic", "generator": "noisy", "added": "0,N"},
             "task": {"task": "zero-shot", "text_encoder": str(bert), "augmentation": "open", "generator": "noisy",
                      "added": "0,0.2N,N"}}
    stores = {}
    for where in ("cluster", "local"):
        db = stores[where] = fresh_store(tmp_path / where)
        res = CliRunner().invoke(app, ["synthetic", "import", "noisy", "--dataset", "digits", "--from", str(images),
                                       "--db", str(db)])
        assert res.exit_code == 0, res.output
    job_ids = [jobs.submit(validate({"n_base": 50, "seeds": 1, "recipe": "iterations=20", **g}).to_dict(),
                           stores["cluster"], quality="off") for g in grids.values()]
    proc = dispatcher(ray_head, stores["cluster"], "--idle-exit", "1")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    for job_id in job_ids:
        job = jobs.get(job_id, stores["cluster"])
        assert job["status"] == "done", job["error"]
    for name, g in grids.items():
        args = ["run", "--db", str(stores["local"]), "--dataset", "digits", "--n-base", "50", "--seeds", "1",
                "--recipe", "iterations=20", "--quality", "off", "--threads", "1"]
        for option, value in g.items():
            args += [f"--{option.replace('_', '-')}", value]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        on = {"base": {"base": "synthetic"}, "task": {"task": "zero-shot"}}[name]
        cluster, local = (store_runs.query_runs(stores[w], **on).set_index("run_key").sort_index() for w in stores)
        assert len(cluster) == {"base": 2, "task": 3}[name] and list(cluster.index) == list(local.index)
        assert cluster.top1.tolist() == local.top1.tolist(), (cluster.top1.tolist(), local.top1.tolist())
        assert cluster.synthetic_set_id.tolist() == local.synthetic_set_id.tolist()


def test_cluster_rejects_bad_options(tmp_path):
    result = CliRunner().invoke(app, ["cluster", "--address", "local", "--heartbeat", "5", "--stale-after", "5",
                                      "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code != 0 and "--stale-after (5.0) must exceed --heartbeat (5.0)" in result.output


def test_nodes_resolve_data_paths_under_the_cluster_data_root():
    pytest.importorskip("ray")
    from engine.execution.cluster import node_data_root
    assert node_data_root("cifar10", None, "/data") == "/data/cifar10"
    assert node_data_root("medmnist:bloodmnist", None, "/data") == "/data/medmnist/bloodmnist.npz"
    assert node_data_root("cifar10", "c10", "/data") == "/data/c10"
    assert node_data_root("cifar10", "/abs/c10", "/data") == "/abs/c10"
    assert node_data_root("cifar10", "c10", None) == "c10"
    assert node_data_root("digits", None, "/data") is None


def test_job_progress_shows_in_queue_list_and_on_the_queue_page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    db = fresh_store(tmp_path)
    running = jobs.submit(validate({"n_base": 20, "added": "0,N", "seeds": 2}).to_dict(), db)
    waiting = jobs.submit(validate({"n_base": 30, "added": "0", "seeds": 1}).to_dict(), db)
    jobs.claim("cluster:head:1", db)
    progress.report(running, 4, 1, [{"run": "n_base 20 +20 real +0 syn, seed 1", "key": "k1", "where": "gpu-a:4242"},
                                    {"run": "n_base 20 +0 real +0 syn, seed 1", "key": "k2", "where": None}],
                    db)
    listing = CliRunner().invoke(app, ["queue", "list", "--db", str(db)], env={"COLUMNS": "400"})
    assert listing.exit_code == 0
    assert "1/4 runs · n_base 20 +20 real +0 syn, seed 1 on gpu-a:4242; n_base 20 +0 real +0 syn, seed 1 " \
           "(waiting for room)" in listing.output
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
    at.switch_page("views/queue.py")
    at.run()
    assert not at.exception
    table = at.dataframe[-1].value.set_index("job")
    assert table.loc[running, "progress"].startswith("1/4 runs · n_base 20 +20 real +0 syn, seed 1 on gpu-a:4242")
    assert table.loc[waiting, "progress"] == ""
