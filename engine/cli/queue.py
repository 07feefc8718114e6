"""`engine queue` and `engine worker`: queue study grids and execute them."""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from engine.cli.common import Db, UserError, app, console, err_console, guarded, to_json, with_store
from engine.cli.study import (AddedOpt, AugmentationOpt, ClassifierOpt, DataRootOpt, DatasetOpt, GeneratorOpt,
                              NBaseOpt, PresetOpt, RecipeOpt, SeedsOpt, SizeOpt, SubsetSeedOpt)


queue_app = typer.Typer(help="Queue studies for workers.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")


@queue_app.command("add")
@guarded
def queue_add(dataset: DatasetOpt = "digits",
              n_base: NBaseOpt = 50,
              augmentation: AugmentationOpt = "real",
              added: AddedOpt = "0,N,2N,3N",
              classifier: ClassifierOpt = None,
              seeds: SeedsOpt = 3,
              subset_seed: SubsetSeedOpt = 0,
              recipe: RecipeOpt = None,
              generator_preset: PresetOpt = "tiny",
              generator_option: GeneratorOpt = None,
              data_root: DataRootOpt = None,
              size: SizeOpt = None,
              as_json: Annotated[bool, typer.Option("--json")] = False,
              db: Db = None):
    """Validate a study grid and queue it for `engine worker`."""
    from engine import jobspec
    from engine.spec import SpecError
    from store import jobs as store_jobs
    try:
        spec = jobspec.validate({"dataset": dataset, "classifier": classifier, "augmentation": augmentation,
                                 "generator_preset": generator_preset, "n_base": n_base, "added": added,
                                 "seeds": seeds, "subset_seed": subset_seed, "recipe": ",".join(recipe or []),
                                 "generator_options": ",".join(generator_option or []), "data_root": data_root,
                                 "size": size})
    except SpecError as err:
        raise UserError(str(err)) from None
    with_store(db)
    job_id = store_jobs.submit(spec, db)
    cost = jobspec.preview(spec)
    if as_json:
        print(to_json({"job_id": job_id, "spec": spec, "preview": cost}))
    else:
        console.print(f"queued job {job_id}: {cost['classifier_trainings']} classifier trainings"
                      + (", up to 1 generator training" if cost["generator_trainings"] else ""))


@queue_app.command("list")
@guarded
def queue_list(status: Annotated[Optional[str], typer.Option(help="Only jobs with this status.")] = None,
               db: Db = None):
    """Jobs in the queue with their status and errors."""
    import pandas as pd
    from store import jobs as store_jobs
    from store import progress as store_progress
    if status is not None and status not in store_jobs.STATUSES:
        raise UserError(f"unknown status {status!r}; valid: {', '.join(store_jobs.STATUSES)}")
    frame = store_jobs.list_jobs(db, status)
    progress = store_progress.by_job(db)
    table = Table("job", "status", "attempts", "worker", "spec", "runs", "progress", "error", title=f"{len(frame)} jobs")
    for r in frame.itertuples():
        spec = json.loads(r.spec) if isinstance(r.spec, str) else r.spec
        short = f"{spec['dataset']} {spec['classifier']} n_base {spec['n_base']} {spec['augmentation']} " \
                f"+{spec['added']} x{spec['seeds']}"
        n_runs = len(json.loads(r.run_ids)) if isinstance(r.run_ids, str) else 0
        table.add_row(r.job_id, r.status, str(r.attempts), "" if pd.isna(r.worker_id) else r.worker_id, short,
                      str(n_runs), store_progress.describe(progress.get(r.job_id), r.status),
                      "" if pd.isna(r.error) else r.error)
    console.print(table)


@queue_app.command("cancel")
@guarded
def queue_cancel(job_id: Annotated[str, typer.Argument(help="A queued job's id.")], db: Db = None):
    """Cancel a job that has not started."""
    from store import jobs as store_jobs
    store_jobs.cancel(job_id, db)
    console.print(f"cancelled job {job_id}")


@app.command()
@guarded
def worker(device: Annotated[str, typer.Option(help="auto, cpu or cuda:K (one worker per GPU).")] = "auto",
           once: Annotated[bool, typer.Option(help="Run at most one job, then exit.")] = False,
           poll: Annotated[float, typer.Option(help="Seconds between looks at an empty queue.")] = 5.0,
           heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 10.0,
           stale_after: Annotated[float, typer.Option(help="Requeue a running job whose worker has been silent this long.")] = 120.0,
           idle_exit: Annotated[Optional[float], typer.Option(help="Exit after this many idle seconds.")] = None,
           db: Db = None):
    """Execute queued jobs with the same code as `engine run`; each job runs exactly once."""
    from engine.runtime import resolve_device
    from engine.spec import SpecError
    from engine.worker import work
    if heartbeat <= 0 or stale_after <= heartbeat:
        raise UserError(f"--stale-after ({stale_after}) must exceed --heartbeat ({heartbeat}) > 0")
    try:
        resolve_device(device)
    except SpecError as err:
        raise UserError(str(err)) from None
    with_store(db)
    try:
        n = work(db, device, once, poll, heartbeat, stale_after, idle_exit, console=err_console,
                 log=lambda m: err_console.print(m, highlight=False))
    except KeyboardInterrupt:
        raise typer.Exit(130)
    console.print(f"worker processed {n} job(s)")
