"""`engine queue` and `engine worker`: queue study grids and execute them."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from engine.cli.common import Db, UserError, app, console, err_console, guarded, interrupted, to_json, with_store
from engine.cli.study import DeviceOpt, QualityOpt, ThreadsOpt, grid_command
from engine.catalog.vocab import DEFAULT_QUALITY

queue_app = typer.Typer(help="Queue studies for workers.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")

# A job may not ask for more than a year; a worker limit of 0 or less means none.
MAX_JOB_HOURS = 24 * 365


def check_hours(value: float | None, flag: str) -> float | None:
    if value is not None and not (math.isfinite(value) and 0 < value <= MAX_JOB_HOURS):
        raise UserError(f"{flag} {value} must be a number of hours in (0, {MAX_JOB_HOURS}]")
    return value


def job_line(r) -> tuple[str, str]:
    """(what, progress) of a job row: the same text in `engine queue list` and on the Queue page."""
    import pandas as pd
    from engine.spec import summary
    done, planned = getattr(r, "runs_done", None), getattr(r, "runs_planned", None)
    progress = f"{int(done)}/{int(planned)}" if pd.notna(planned) and pd.notna(done) else ""
    return summary(r.spec, getattr(r, "quality", None)), progress


@queue_app.command("add")
@guarded
@grid_command
def queue_add(fields: dict,
              quality: QualityOpt = DEFAULT_QUALITY,
              max_hours: Annotated[Optional[float], typer.Option(
                  help="Fail the job if one attempt runs longer than this many hours.")] = None,
              remote_data: Annotated[bool, typer.Option(
                  "--remote-data", help="The data path is one only the workers see: do not look for it here "
                                        "(a worker checks it when it takes the job).")] = False,
              as_json: Annotated[bool, typer.Option("--json")] = False,
              db: Db = None):
    """Validate a study grid and queue it for `engine worker`."""
    from engine.spec import SpecError, check_data_here, check_open_set, check_quality, preview, validate
    from store import jobs as store_jobs
    try:
        spec = validate(fields)
        check_quality(quality)
        check_open_set(spec, db)
        if not remote_data:
            check_data_here(spec)
    except SpecError as err:
        raise UserError(str(err)) from None
    check_hours(max_hours, "--max-hours")
    with_store(db)
    job_id = store_jobs.submit(spec.to_dict(), db, max_hours=max_hours, quality=quality)
    cost = preview(spec)
    if as_json:
        print(to_json({"job_id": job_id, "spec": spec.to_dict(), "quality": quality, "preview": cost}))
    else:
        console.print(f"queued job {job_id}: {cost['classifier_trainings']} classifier trainings"
                      + (", up to 1 generator training" if cost["generator_trainings"] else ""))


@queue_app.command("list")
@guarded
def queue_list(status: Annotated[Optional[str], typer.Option(help="Only jobs with this status.")] = None,
               db: Db = None):
    """Jobs in the queue with their status, progress and errors."""
    import pandas as pd
    from store import jobs as store_jobs
    from store import progress as store_progress
    if status is not None and status not in store_jobs.STATUSES:
        raise UserError(f"unknown status {status!r}; valid: {', '.join(store_jobs.STATUSES)}")
    frame = store_jobs.list_jobs(db, status)
    cluster_progress = store_progress.by_job(db)
    table = Table(title=f"{len(frame)} jobs")
    # The id and the status are what a user acts on (`engine queue cancel ID`): never cut them.
    table.add_column("job", no_wrap=True, min_width=12)
    table.add_column("status", no_wrap=True, min_width=10)
    for name in ("attempts", "worker", "spec", "progress", "runs", "error"):
        table.add_column(name)
    for r in frame.itertuples():
        what, progress = job_line(r)
        n_runs = len(json.loads(r.run_ids)) if isinstance(r.run_ids, str) else 0
        if r.job_id in cluster_progress:  # a cluster job also says where each run is
            progress = store_progress.describe(cluster_progress.get(r.job_id), r.status)
        flag = getattr(r, "cancel_requested", False)
        state = "cancelling" if r.status == "running" and pd.notna(flag) and bool(flag) else r.status
        table.add_row(r.job_id, state, str(r.attempts), "" if pd.isna(r.worker_id) else r.worker_id, what,
                      progress, str(n_runs), "" if pd.isna(r.error) else r.error)
    console.print(table)


@queue_app.command("cancel")
@guarded
def queue_cancel(job_id: Annotated[str, typer.Argument(help="A queued or running job's id.")], db: Db = None):
    """Cancel a queued job, or ask a running one to stop at its next run boundary."""
    from store import jobs as store_jobs
    state = store_jobs.cancel(job_id, db)
    console.print(f"cancelled job {job_id}" if state == "cancelled" else
                  f"job {job_id} will stop at its next run boundary (its finished runs stay stored)")


@app.command()
@guarded
def worker(device: Annotated[str, typer.Option(help="auto, cpu or cuda:K (one worker per GPU).")] = "auto",
           once: Annotated[bool, typer.Option(help="Run at most one job, then exit.")] = False,
           poll: Annotated[float, typer.Option(help="Seconds between looks at an empty queue.")] = 5.0,
           heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 10.0,
           stale_after: Annotated[float, typer.Option(help="Requeue a running job whose worker has been silent this long.")] = 120.0,
           idle_exit: Annotated[Optional[float], typer.Option(help="Exit after this many idle seconds.")] = None,
           data_root: Annotated[Optional[list[Path]], typer.Option(
               "--data-root", help="Folder the jobs' data paths must lie in (repeatable) [default: ./data].")] = None,
           max_job_hours: Annotated[Optional[float], typer.Option(
               help="Fail a job whose attempt runs longer than this many hours.")] = None,
           threads: ThreadsOpt = None,
           db: Db = None):
    """Execute queued jobs with the same code as `engine run`; each job runs exactly once."""
    from engine.device.runtime import resolve_device
    from engine.spec import SpecError
    from engine.execution.worker import Worker, terminate_as_interrupt
    for name, value in (("--poll", poll), ("--heartbeat", heartbeat), ("--stale-after", stale_after)):
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"{name} {value} must be a positive number of seconds")
    if stale_after <= heartbeat:
        raise UserError(f"--stale-after ({stale_after}) must exceed --heartbeat ({heartbeat})")
    if idle_exit is not None and not (math.isfinite(idle_exit) and idle_exit >= 0):
        raise UserError(f"--idle-exit {idle_exit} must be a non-negative number of seconds")
    check_hours(max_job_hours, "--max-job-hours")
    roots = data_root or [Path("data")]
    missing = [r for r in roots if not r.is_dir()]
    if data_root and missing:
        raise UserError(f"--data-root {missing[0]} is not a folder")
    try:
        resolve_device(device)
    except SpecError as err:
        raise UserError(str(err)) from None
    with_store(db)
    terminate_as_interrupt()
    w = Worker(db, device, poll, heartbeat, stale_after, console=err_console,
               log=lambda m: err_console.print(m, highlight=False), threads=threads, data_roots=roots,
               max_job_hours=max_job_hours)
    try:
        n = w.work(once, idle_exit)
    except KeyboardInterrupt:
        raise interrupted()
    console.print(f"worker processed {n} job(s)")


__all__ = ["queue_app", "worker", "DeviceOpt"]
