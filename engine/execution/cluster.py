"""`engine cluster`: run queued jobs on a Ray cluster; this process alone writes the store.

The dispatcher claims a job exactly as `engine worker` does (store.jobs.claim), heartbeats it
from a thread, and turns it into Ray tasks:
1. a planning task loads the data set where the nodes see it and plans the runs (the same
   engine.execution.local.plan as `engine run`); a small data set comes back into Ray's object store and is
   shared by every task of the job, a large one is read by each task from its data root;
2. one task per generator when closed-set runs need synthetic images that are not stored yet
   (train, or reload stored weights, then sample); it asks for `nproc` GPUs on one node and
   trains with DDP when nproc > 1; an imported set's images are read here instead and shipped as
   they are (added images, appendix G.1's synthetic base, or G.2's unseen classes only);
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
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray

from engine.catalog import datasets
from engine.catalog.vocab import CLOSED, DEFAULT_QUALITY
from engine.execution import artifacts
from engine.execution.plan import PlannedRun, synthetic_images_of
from engine.execution.worker import Heartbeat, deferred_interrupt, terminate_as_interrupt
from store import jobs, progress
from store import runs as store_runs

SHIP_MAX_BYTES = 64 * 2**20  # data sets up to this size travel through the object store
MEMORISATION_SAMPLES = 1000
GENERATOR_TASK = "generator"   # the board's and the progress rows' name of a job's generator task


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
    from engine.execution.local import Runtime, UnseenClassImages, build_spec, plan
    spec, ds, synthetic = build_spec(fields, None, Runtime(device="cpu"), open_set_row)
    info = {"spec": spec, "planned": plan(spec, ds, synthetic.run_identity if synthetic else None),
            "image_shape": ds.train_x.shape[1:], "generator": None, "unseen": None}
    if synthetic is not None and spec.augmentation == CLOSED:
        info["generator"] = synthetic.ids()
    if isinstance(synthetic, UnseenClassImages):  # the dispatcher draws only these classes' images
        info["unseen"] = synthetic.unseen.tolist()
    size = sum(a.nbytes for a in (ds.train_x, ds.train_y, ds.test_x, ds.test_y))
    return info, (ds if size <= SHIP_MAX_BYTES else None)


@ray.remote
def synthetic_task(spec, shipped, have: int, need: int, files: dict | None, prefix, board):
    """Train the job's generator (any kind; or load its stored files) and sample images have..need, in a
    folder of this node's own; returns what the dispatcher stores with the local run's writer."""
    from engine.execution.artifacts import read_files
    from engine.generators.closed_set import SyntheticSource
    from engine.device.runtime import resolve_device
    _announce(board, GENERATOR_TASK)
    ds = _dataset(spec, shipped)
    device = resolve_device("auto")
    # Node-local, so that a retry of this task on the same node resumes from the checkpoint.
    folder = Path(tempfile.gettempdir()) / "equivalence-ray" / f"job-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        source = SyntheticSource(spec, ds, folder)
        for rel, data in (files or {}).items():  # the stored generator, to sample more from
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        row = None if source.trained() else source.train(device)
        new_x, new_y, sampling_s = np.empty((0, *ds.train_x.shape[1:]), np.uint8), np.empty(0, np.int64), None
        if need > have:
            new_x, new_y, sampling_s = source.sample(have, need, device)
        mem = source.memorisation_of(np.concatenate([prefix, new_x])) if prefix is not None else None
        return {"row": row, "files": read_files(folder, source.file_dirs()) if row else None, "images": new_x,
                "labels": new_y, "sampling_s": sampling_s, "memorisation": mem}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
    n = synthetic_images_of(spec, planned_run)
    if n:
        x, y, extra = syn
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


@dataclass(frozen=True)
class Pending:
    """A task of a job in flight: a classifier run, or the job's generator (run None)."""
    run: PlannedRun | None = None

    @property
    def key(self) -> str:
        return self.run.key if self.run is not None else GENERATOR_TASK


class JobRun:
    """One claimed job on the cluster: submit its tasks, store their results, report progress."""

    def __init__(self, job: dict, db, beat: Heartbeat, options: Options, log):
        self.job, self.db, self.beat, self.options, self.log = job, db, beat, options, log
        self.gpus = ray.cluster_resources().get("GPU", 0)
        self.board = Board.remote()
        self.pending: dict[ray.ObjectRef, Pending] = {}
        self.planned: list[PlannedRun] = []
        self.spec = None
        self.done, self.last_report = 0, None
        self.have = (None, None)   # the generator's stored images, extended by its task's new ones

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
            self.pending[ref] = Pending(p)

    def report(self):
        from engine.execution.local import run_label
        where = ray.get(self.board.snapshot.remote()) if self.pending else {}
        running = [{"run": run_label(self.spec, p.run) if p.run else GENERATOR_TASK, "key": p.key,
                    "where": where.get(p.key)} for p in self.pending.values()]
        state = (len(self.planned), self.done, running)
        if state != self.last_report:
            progress.report(self.job["job_id"], len(self.planned), self.done, running, self.db)
            jobs.progress(self.job["job_id"], self.beat.worker_id, self.done, len(self.planned), self.db)
            self.last_report = state

    def run(self) -> list[str]:
        from engine.spec import check_open_set, validate
        fields = dict(self.job["spec"])
        # The nodes cannot see the store or its files: an imported set (added, or a synthetic base) is
        # looked up and checked here, and its images travel to the tasks through the object store.
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
        synthetic = [p for p in todo if synthetic_images_of(self.spec, p)]
        need = max((synthetic_images_of(self.spec, p) for p in synthetic), default=0)
        self.submit_runs(self.spec, data, [p for p in todo if not synthetic_images_of(self.spec, p)])
        if synthetic and open_row is not None:
            from engine.execution.local import open_set_draw
            self.submit_runs(self.spec, data, synthetic, ray.put(open_set_draw(open_row, need, info["unseen"])))
        elif synthetic:
            syn = self.stored_synthetic(info["generator"], need, data)
            if syn is not None:
                self.submit_runs(self.spec, data, synthetic, ray.put(syn))
        self.report()
        while self.pending:
            for ref in self.wait(list(self.pending)):
                p = self.pending.pop(ref)
                if p.run is None:
                    syn = self.store_synthetic(info["generator"], self.get(ref))
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
    def stored_synthetic(self, ids: dict, need: int, data):
        """The stored synthetic set if it holds `need` images, else None after submitting the generator
        task that trains (or reloads) the generator and samples what is missing."""
        gen_row = artifacts.stored_generator(ids, self.db)
        have_x, have_y, set_row = artifacts.stored_samples(ids, self.db)
        self.have = (have_x, have_y)
        if gen_row is not None and len(have_x) >= need and gen_row.get("memorisation") is not None:
            return have_x[:need], have_y[:need], artifacts.run_fields(ids, gen_row, set_row["sampling_s_per_image"])
        files = artifacts.read_files(artifacts.root(self.db), [Path(d) for d in ids["file_dirs"]]) \
            if gen_row is not None else None
        # the generator has no memorisation check yet: its first images are checked as a local run checks them
        prefix = have_x[:MEMORISATION_SAMPLES] if gen_row is None or gen_row.get("memorisation") is None else None
        resources = {"num_gpus": ids["nproc"]} if self.gpus else {"num_cpus": ids["nproc"]}
        task = synthetic_task.options(max_retries=self.options.retries, **resources)
        self.pending[task.remote(self.spec, data, len(have_x), need, files, prefix, self.board)] = Pending()
        return None

    def store_synthetic(self, ids: dict, result: dict):
        """What a generator task computed, stored with the local run's writer; the images its runs take."""
        if result["row"] is not None:
            artifacts.write_files(result["files"], self.db)
            artifacts.record_generator(result["row"], self.db)
        have_x, have_y = self.have
        images, labels = np.concatenate([have_x, result["images"]]), np.concatenate([have_y, result["labels"]])
        sampling_s = result["sampling_s"]
        if len(result["images"]):
            artifacts.record_samples(ids, images, labels, sampling_s, self.db)
        else:
            sampling_s = artifacts.stored_samples(ids, self.db)[2]["sampling_s_per_image"]
        if result["memorisation"] is not None:
            artifacts.record_memorisation(ids["generator_id"], result["memorisation"], self.db)
        gen_row = artifacts.stored_generator(ids, self.db)
        return images, labels, artifacts.run_fields(ids, gen_row, sampling_s)


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
