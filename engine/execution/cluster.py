"""`engine cluster`: run queued jobs on a Ray cluster; this process alone writes the store.

The dispatcher claims a job exactly as `engine worker` does (store.jobs.claim), heartbeats it
from a thread, and turns it into Ray tasks:
1. a planning task loads the data set where the nodes see it and plans the runs (the same
   engine.execution.local.plan as `engine run`); a small data set comes back into Ray's object store and is
   shared by every task of the job, a large one is read by each task from its data root;
2. one task per generator when closed-set runs need synthetic images that are not stored yet
   (train, or reload stored weights, then sample); it asks for `nproc` GPUs on one node and
   trains with DDP when nproc > 1; an open-set job's imported images are read here instead and
   shipped as they are;
3. one task per classifier run (point x seed) not yet stored, each asking for a GPU (a CPU when
   the cluster has none), as many at once as the cluster has room for.
Every result (rows, generator weights as safetensors bytes, synthetic images as uint8 arrays)
comes back through Ray and is written here; no node needs the store's disk.

Faults: Ray retries a task whose worker process or node died (bounded by `retries`); a task
that raises fails the job, as in `engine worker`. A dispatcher that dies stops heartbeating,
its job goes stale and is requeued, and the next dispatcher plans again and submits only the
runs whose run_key is not stored yet, so every run is stored once.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray

from engine.catalog import datasets
from engine.catalog.vocab import CLOSED, DEFAULT_QUALITY, OPEN
from engine.execution.worker import Heartbeat, deferred_interrupt, terminate_as_interrupt
from store import artifacts, jobs, progress
from store import runs as store_runs

SHIP_MAX_BYTES = 64 * 2**20  # data sets up to this size travel through the object store
MEMORISATION_SAMPLES = 1000


class ClusterError(RuntimeError):
    """A job cannot finish on the cluster; the message is one line for the job's error."""


class JobCancelled(RuntimeError):
    """The job's user cancelled it while it ran."""


class LostJob(RuntimeError):
    """The job stopped being this dispatcher's (requeued as stale, or cancelled)."""


@dataclass
class Options:
    data_root: str | None = None   # the nodes' data folder, for jobs whose data_root is relative or unset
    retries: int = 2               # Ray reruns of a task whose worker process or node died
    gpus_per_run: float | None = None  # GPUs per classifier task (fractions share one); None: 1 if any, else 0


def node_data_root(dataset: str, job_root: str | None, cluster_root: str | None) -> str | None:
    """Where the nodes read a job's data: absolute paths as given, others under cluster_root, and a job
    without a data root at its dataset's default place (the catalog's, relative to data/) under it."""
    if cluster_root is None or (job_root and os.path.isabs(job_root)):
        return job_root
    if job_root:
        return os.path.join(cluster_root, job_root)
    default = datasets.default_root(dataset)
    if default is None:
        return None
    parts = Path(default).parts
    return os.path.join(cluster_root, *(parts[1:] if parts[0] == "data" else parts))


# ------------------------------------------------------------------------------ on the nodes
# Nothing below opens the store: these functions run in Ray workers anywhere on the cluster.

@ray.remote(num_cpus=0)
class Board:
    """Where each task of a job runs (host:pid), as the tasks announce it when they start."""

    def __init__(self):
        self.where = {}

    def started(self, key: str, where: str) -> None:
        self.where[key] = where

    def snapshot(self) -> dict:
        return dict(self.where)


def _announce(board, key: str) -> str:
    import torch
    where = f"{socket.gethostname()}:{os.getpid()}"
    ray.get(board.started.remote(key, where))
    # One intra-op thread per CPU that Ray gave this task, so tasks sharing a node do not contend.
    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    return where


def _dataset(spec, shipped):
    from engine.data.loaders import load_dataset
    if shipped is None:
        return load_dataset(spec.dataset, spec.data_root, spec.size)
    # Arrays from the object store are read-only views; torch wants its own.
    return dataclasses.replace(shipped, train_x=shipped.train_x.copy(), train_y=shipped.train_y.copy(),
                               test_x=shipped.test_x.copy(), test_y=shipped.test_y.copy())


@ray.remote(num_cpus=1)
def plan_task(fields: dict, open_set_row: dict | None = None):
    """(plan, data set or None): the job's spec checked against its data as the nodes see it (and an
    open-set job's imported set, whose store row the dispatcher read, against those data)."""
    from engine.execution.local import Runtime, build_spec, plan
    spec, ds, synthetic = build_spec(fields, None, Runtime(device="cpu"), open_set_row)
    info = {"spec": spec, "planned": plan(spec, ds, synthetic.run_identity if synthetic else None),
            "image_shape": ds.train_x.shape[1:], "generator": None}
    if synthetic is not None and spec.augmentation == CLOSED:
        info["generator"] = {"generator_id": synthetic.generator_id, "synthetic_set_id": synthetic.synthetic_set_id,
                             "name": synthetic.name, "dataset": ds.name, "n_base": spec.n_base,
                             "indices_hash": synthetic.base_hash, "config": synthetic.config.to_dict(),
                             "nproc": synthetic.config.nproc, "sample_seed": synthetic.sample_seed,
                             "num_classes": ds.num_classes}
    size = sum(a.nbytes for a in (ds.train_x, ds.train_y, ds.test_x, ds.test_y))
    return info, (ds if size <= SHIP_MAX_BYTES else None)


@ray.remote
def synthetic_task(spec, shipped, have: int, need: int, weights: bytes | None, prefix, board):
    """Train the job's generator (or load its stored weights) and sample images have..need."""
    import time as _time

    from engine.generators.closed_set import SyntheticSource, memorisation
    from engine.generators.edm_train import load_ema, sample_balanced, train_generator
    from engine.generators.guard import ClosedSetView
    from engine.device.runtime import resolve_device
    _announce(board, "generator")
    ds = _dataset(spec, shipped)
    source = SyntheticSource(spec, ds)  # its id, config and base set; it is not asked to touch the store
    device = resolve_device("auto")
    # Node-local, so that a retry of this task on the same node resumes from the checkpoint.
    out = Path(tempfile.gettempdir()) / "equivalence-ray" / source.generator_id
    stats = None
    if weights is None:
        view = ClosedSetView(ds.train_x, ds.train_y, source.base)
        stats = train_generator(view, ds.num_classes, source.config, out, device)
        weights = (out / "ema.safetensors").read_bytes()
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "ema.safetensors").write_bytes(weights)
    net = load_ema(out, ds.size, ds.channels, ds.num_classes, source.config.preset, device)
    new_x, new_y, sampling_s = np.empty((0, *ds.train_x.shape[1:]), np.uint8), np.empty(0, np.int64), None
    if need > have:
        start = _time.perf_counter()
        new_x, new_y = sample_balanced(net, ds.num_classes, have, need, source.sample_seed, device)
        sampling_s = (_time.perf_counter() - start) / len(new_x)
    mem = None
    if prefix is not None:  # the generator has no memorisation check yet: as SyntheticSource.prepare does it
        heldout = np.setdiff1d(np.arange(len(ds.train_y)), source.base)
        reference = ds.train_x[heldout] if len(heldout) else ds.test_x
        pick = np.random.default_rng(0).choice(len(reference), size=min(1000, len(reference)), replace=False)
        samples = np.concatenate([prefix, new_x])[:MEMORISATION_SAMPLES]
        mem = memorisation(samples, ds.train_x[source.base], reference[pick])
    shutil.rmtree(out, ignore_errors=True)
    return {"weights": weights if stats else None, "stats": stats, "images": new_x, "labels": new_y,
            "sampling_s": sampling_s, "memorisation": mem}


@ray.remote(num_cpus=1)
def train_task(spec, shipped, planned_run, syn, board) -> dict:
    """One classifier run; returns its row for the dispatcher to store."""
    import torch

    from engine.execution.local import train_run
    from engine.device.runtime import resolve_device
    where = _announce(board, planned_run.key)
    ds = _dataset(spec, shipped)
    device = resolve_device("auto")  # Ray hides the GPUs it did not give this task
    syn_t = None
    if planned_run.n_syn_added:
        x, y, extra = syn
        n = planned_run.n_syn_added
        syn_t = (torch.from_numpy(np.array(x[:n])).permute(0, 3, 1, 2).contiguous().to(device),
                 torch.from_numpy(np.array(y[:n])).to(device), extra)
    row = train_run(spec, ds, planned_run, device, None, syn_t)
    row["config"] = json.dumps({**json.loads(row["config"]), "node": where}, default=str)
    return row


# ------------------------------------------------------------------------------ the dispatcher

def connect(address: str, num_cpus: int | None = None, object_store_mb: int | None = None) -> None:
    """Join the Ray cluster at address, or start one on this machine for address 'local'."""
    kwargs = {"object_store_memory": object_store_mb * 2**20} if object_store_mb else {}
    if address == "local":
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False, **kwargs)
    else:
        ray.init(address=address, log_to_driver=False)


def _error(err: Exception) -> Exception:
    """The user's error behind a Ray wrapper, as one line for the job."""
    if isinstance(err, ray.exceptions.RayTaskError) and isinstance(err.cause, Exception):
        cause = err.cause
        return ClusterError(f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}")
    if isinstance(err, ray.exceptions.RayError):
        return ClusterError(f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:300]}")
    return err


class JobRun:
    """One claimed job on the cluster: submit its tasks, store their results, report progress."""

    def __init__(self, job: dict, db, beat: Heartbeat, options: Options, log):
        self.job, self.db, self.beat, self.options, self.log = job, db, beat, options, log
        self.gpus = ray.cluster_resources().get("GPU", 0)
        self.board = Board.remote()
        self.pending = {}  # ObjectRef -> PlannedRun (or "generator")
        self.planned, self.done, self.last_report = [], 0, None

    def wait(self, refs, timeout=1.0):
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if self.beat.state == "lost":
            raise LostJob(f"job {self.job['job_id']} is no longer this dispatcher's")
        if self.beat.state == "cancel":
            raise JobCancelled(f"job {self.job['job_id']} was cancelled by its user")
        return ready

    def get(self, ref):
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as err:
            raise _error(err) from err

    def submit_runs(self, spec, data, runs, syn=None):
        resources = {"num_gpus": self.options.gpus_per_run} if self.options.gpus_per_run else {}
        for p in runs:
            ref = train_task.options(max_retries=self.options.retries, **resources).remote(spec, data, p, syn, self.board)
            self.pending[ref] = p

    def report(self):
        from engine.execution.local import run_label
        where = ray.get(self.board.snapshot.remote()) if self.pending else {}
        running = []
        for p in self.pending.values():
            key = "generator" if p == "generator" else p.key
            running.append({"run": "generator" if p == "generator" else run_label(self.spec, p), "key": key,
                            "where": where.get(key)})
        state = (len(self.planned), self.done, running)
        if state != self.last_report:
            progress.report(self.job["job_id"], len(self.planned), self.done, running, self.db)
            jobs.progress(self.job["job_id"], self.beat.worker_id, self.done, len(self.planned), self.db)
            self.last_report = state

    def run(self) -> list[str]:
        fields = dict(self.job["spec"])
        if fields.get("augmentation") == "closed" and (fields.get("generator") or "edm") != "edm":
            raise ClusterError(f"the cluster dispatcher trains EDM generators only; run {fields['generator']} "
                               f"jobs with `engine worker`")
        open_row = None
        if fields.get("augmentation") == OPEN:
            # The nodes cannot see the store or its files: the imported set is looked up and checked
            # here, and its images travel to the tasks through the object store.
            from engine.spec import check_open_set, validate
            open_row = check_open_set(validate(fields), self.db)
        fields["data_root"] = node_data_root(fields["dataset"], fields.get("data_root"), self.options.data_root)
        info_ref, data = plan_task.options(num_returns=2, max_retries=self.options.retries).remote(fields, open_row)
        while not self.wait([info_ref]):
            pass
        info = self.get(info_ref)
        self.spec, self.planned = info["spec"], info["planned"]
        stored = store_runs.existing_run_keys([p.key for p in self.planned], self.db)
        todo = [p for p in self.planned if p.key not in stored]
        self.done = len(self.planned) - len(todo)
        self.log(f"job {self.job['job_id']}: {len(self.planned)} runs planned, {self.done} already stored, "
                 f"submitting {len(todo)}")
        level = self.job.get("quality") or DEFAULT_QUALITY
        if level != "off" and (open_row or info["generator"]):
            # The metrics need the data and a device beside the store; the head has neither.
            which = open_row["name"] if open_row else info["generator"]["synthetic_set_id"]
            self.log(f"job {self.job['job_id']}: its quality level {level} is not measured on the cluster; "
                     f"run `engine quality {which}` beside the store")
        synthetic = [p for p in todo if p.n_syn_added]
        self.submit_runs(self.spec, data, [p for p in todo if not p.n_syn_added])
        if synthetic and open_row is not None:
            from engine.generators.open_set import open_set_images
            syn = open_set_images(open_row, max(p.n_syn_added for p in synthetic))
            self.submit_runs(self.spec, data, synthetic, ray.put(syn))
        elif synthetic:
            syn = self.stored_synthetic(info, max(p.n_syn_added for p in synthetic), data)
            if syn is not None:
                self.submit_runs(self.spec, data, synthetic, ray.put(syn))
        self.report()
        while self.pending:
            for ref in self.wait(list(self.pending)):
                p = self.pending.pop(ref)
                if p == "generator":
                    syn = self.store_synthetic(info, self.get(ref))
                    self.submit_runs(self.spec, data, synthetic, ray.put(syn))
                else:
                    store_runs.insert_runs([self.get(ref)], self.db)
                    self.done += 1
            self.report()
        return jobs.run_ids_for([p.key for p in self.planned], self.db)

    def cancel(self):
        for ref in self.pending:
            ray.cancel(ref, force=True)
        ray.kill(self.board)

    # --------------------------------------------------------------------- synthetic images
    def _paths(self, gen):
        root = artifacts.artifacts_dir(self.db)
        return (root / "generators" / gen["generator_id"] / "ema.safetensors",
                root / "synthetic" / f"{gen['synthetic_set_id']}.npz")

    def stored_synthetic(self, info, need: int, data):
        """The stored synthetic set if it holds `need` images, else None after submitting the
        generator task that trains (or reloads) the generator and samples what is missing."""
        gen = info["generator"]
        ema, npz = self._paths(gen)
        row = artifacts.get_generator(gen["generator_id"], self.db)
        weights = ema.read_bytes() if row is not None and ema.exists() else None
        have_x = np.empty((0, *info["image_shape"]), np.uint8)
        have_y = np.empty(0, np.int64)
        if artifacts.get_synthetic_set(gen["synthetic_set_id"], self.db) is not None and npz.exists():
            with np.load(npz) as f:
                have_x, have_y = f["images"], f["labels"]
        self.have = (have_x, have_y)
        if weights is not None and len(have_x) >= need and row.get("memorisation") is not None:
            return have_x[:need], have_y[:need], self.extra(gen, row)
        prefix = have_x[:MEMORISATION_SAMPLES] if row is None or row.get("memorisation") is None else None
        nproc = gen["nproc"]
        resources = {"num_gpus": nproc} if self.gpus else {"num_cpus": nproc}
        task = synthetic_task.options(max_retries=self.options.retries, **resources)
        self.pending[task.remote(self.spec, data, len(have_x), need, weights, prefix, self.board)] = "generator"
        return None

    def store_synthetic(self, info, result):
        gen = info["generator"]
        ema, npz = self._paths(gen)
        if result["stats"] is not None:
            stats = result["stats"]
            ema.parent.mkdir(parents=True, exist_ok=True)
            tmp = ema.with_name(ema.name + ".tmp")
            tmp.write_bytes(result["weights"])
            os.replace(tmp, ema)
            config = gen["config"]
            artifacts.upsert_generator({
                "generator_id": gen["generator_id"], "dataset": gen["dataset"], "n_base": gen["n_base"],
                "indices_hash": gen["indices_hash"], "preset": config["preset"], "seed": config["seed"],
                "train_images": config["train_images"], "checkpoint": str(ema),
                "train_time_s": stats["train_seconds"], "final_loss": stats["final_loss"],
                "config": {**config, "images_per_second": stats["images_per_second"],
                           "resolution": stats["resolution"], "channels": stats["channels"]}}, self.db)
        have_x, have_y = self.have
        images, labels = np.concatenate([have_x, result["images"]]), np.concatenate([have_y, result["labels"]])
        if len(result["images"]):
            npz.parent.mkdir(parents=True, exist_ok=True)
            tmp = npz.with_name(npz.name + ".tmp.npz")
            np.savez(tmp, images=images, labels=labels)
            os.replace(tmp, npz)
            artifacts.upsert_synthetic_set({
                "synthetic_set_id": gen["synthetic_set_id"], "generator_id": gen["generator_id"],
                "n_images": int(len(images)), "per_class": int(len(images) // gen["num_classes"]),
                "seed": gen["sample_seed"], "path": str(npz), "sampling_s_per_image": result["sampling_s"]}, self.db)
        if result["memorisation"] is not None:
            artifacts.set_memorisation(gen["generator_id"], result["memorisation"], self.db)
        return images, labels, self.extra(gen, artifacts.get_generator(gen["generator_id"], self.db))

    def extra(self, gen, row) -> dict:
        """The generator fields of a closed-set row, as SyntheticSource.prepare gives them."""
        sset = artifacts.get_synthetic_set(gen["synthetic_set_id"], self.db)
        return {"generator": gen["name"], "generator_id": gen["generator_id"],
                "synthetic_set_id": gen["synthetic_set_id"],
                "config": {"generator_preset": gen["config"]["preset"], "generator_train_time_s": row["train_time_s"],
                           "sampling_s_per_image": sset["sampling_s_per_image"] if sset else None,
                           "generator_config": gen["config"]}}


def dispatch(db=None, once: bool = False, poll_s: float = 5.0, heartbeat_s: float = 10.0,
             stale_after_s: float = 120.0, idle_exit_s: float | None = None, options: Options | None = None,
             dispatcher_id: str | None = None, log=print) -> int:
    """Run jobs on the connected Ray cluster until stopped (or once, or idle). Returns jobs processed."""
    options = options or Options()
    dispatcher_id = dispatcher_id or f"cluster:{socket.gethostname()}:{os.getpid()}"
    if options.gpus_per_run is None:
        options = dataclasses.replace(options, gpus_per_run=1.0 if ray.cluster_resources().get("GPU", 0) else 0.0)
    terminate_as_interrupt()
    processed, idle_since = 0, time.monotonic()
    while True:
        job = None
        try:
            with deferred_interrupt():
                job = jobs.claim(dispatcher_id, db, stale_after_s)
            if job is None:
                if once or (idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s):
                    return processed
                time.sleep(poll_s)
                continue
            log(f"dispatcher {dispatcher_id}: job {job['job_id']} (attempt {job['attempts']}): {job['spec']}")
            job_run = None
            try:
                with Heartbeat(job["job_id"], dispatcher_id, db, heartbeat_s) as beat:
                    job_run = JobRun(job, db, beat, options, log)
                    run_ids = job_run.run()
            except KeyboardInterrupt:
                raise
            except LostJob as err:
                log(f"dispatcher {dispatcher_id}: {err}; its stored runs stay")
                job = None
            except JobCancelled as err:
                with deferred_interrupt():
                    run_ids = jobs.run_ids_for([p.key for p in job_run.planned], db) if job_run else []
                    jobs.cancelled(job["job_id"], dispatcher_id, run_ids, db)
                    job = None
                log(f"dispatcher {dispatcher_id}: {err}; its stored runs stay")
            except Exception as err:  # the job failed, not the dispatcher: record why and go on
                message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}" \
                    if not isinstance(err, ClusterError) else str(err)
                with deferred_interrupt():
                    jobs.fail(job["job_id"], dispatcher_id, message, db)
                    job_id, job = job["job_id"], None
                log(f"dispatcher {dispatcher_id}: job {job_id} failed: {message}")
            else:
                with deferred_interrupt():
                    finished = jobs.finish(job["job_id"], dispatcher_id, run_ids, db)
                    job_id, job = job["job_id"], None
                log(f"dispatcher {dispatcher_id}: job {job_id} " + (f"done, {len(run_ids)} runs" if finished else
                                                                   "was taken over while running; its runs are stored"))
            finally:
                if job_run is not None:
                    job_run.cancel()
        except KeyboardInterrupt:
            if job is not None:
                jobs.release(job["job_id"], dispatcher_id, db)
                log(f"dispatcher {dispatcher_id}: stopped; job {job['job_id']} is back in the queue")
            raise
        processed += 1
        idle_since = time.monotonic()
        if once:
            return processed
