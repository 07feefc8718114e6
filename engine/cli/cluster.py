"""`engine cluster`: execute queued jobs on a Ray cluster, this process being the store's only writer."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from engine.cli.common import Db, UserError, app, console, err_console, guarded, interrupted, with_store


@app.command()
@guarded
def cluster(address: Annotated[str, typer.Option(
                help="Ray cluster address (host:port of `ray start --head`), or 'local' to start Ray on this machine.")],
            once: Annotated[bool, typer.Option(help="Run at most one job, then exit.")] = False,
            data_root: Annotated[Optional[str], typer.Option(
                "--data-root", help="The data folder as the Ray nodes see it: jobs' relative or unset data paths "
                                    "resolve under it (cifar10 -> DIR/cifar10, medmnist:F -> DIR/medmnist/F.npz).")] = None,
            retries: Annotated[int, typer.Option(help="Reruns of a task whose Ray worker or node died.")] = 2,
            gpus_per_run: Annotated[Optional[float], typer.Option(
                help="GPUs per classifier run (0.25 lets four small runs share a GPU); default 1 when the "
                     "cluster has GPUs, else 0 (one CPU).")] = None,
            num_cpus: Annotated[Optional[int], typer.Option(help="CPUs of a local Ray (--address local).")] = None,
            object_store_mb: Annotated[Optional[int], typer.Option(
                help="Object store size of a local Ray, in MiB.")] = None,
            poll: Annotated[float, typer.Option(help="Seconds between looks at an empty queue.")] = 5.0,
            heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 10.0,
            stale_after: Annotated[float, typer.Option(
                help="Requeue a running job whose worker or dispatcher has been silent this long.")] = 120.0,
            idle_exit: Annotated[Optional[float], typer.Option(help="Exit after this many idle seconds.")] = None,
            db: Db = None):
    """Run queued jobs on a Ray cluster: one task per generator, then one per classifier run."""
    if heartbeat <= 0 or stale_after <= heartbeat:
        raise UserError(f"--stale-after ({stale_after}) must exceed --heartbeat ({heartbeat}) > 0")
    if retries < 0:
        raise UserError(f"--retries {retries} must be 0 or more")
    if gpus_per_run is not None and gpus_per_run < 0:
        raise UserError(f"--gpus-per-run {gpus_per_run} must be 0 or more")
    try:
        import ray
        from engine.execution import cluster as dispatcher
    except ImportError:
        raise UserError("Ray is not installed: pip install 'equivalence[cluster]' (or -e '.[cluster]')") from None
    with_store(db)
    try:
        dispatcher.connect(address, num_cpus, object_store_mb)
    except (ConnectionError, ValueError, RuntimeError) as err:
        raise UserError(f"cannot reach a Ray cluster at {address!r}: {str(err).splitlines()[0]}") from None
    try:
        options = dispatcher.Options(data_root=data_root, retries=retries, gpus_per_run=gpus_per_run)
        n = dispatcher.dispatch(db, once, poll, heartbeat, stale_after, idle_exit, options,
                                log=lambda m: err_console.print(m, highlight=False, markup=False))
    except KeyboardInterrupt:
        raise interrupted()
    finally:
        ray.shutdown()
    console.print(f"dispatcher processed {n} job(s)")
