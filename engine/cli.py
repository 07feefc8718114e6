"""The `engine` command line. Torch is imported only by the commands that train."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from engine.analysis.fit import Analysis, analyse, settings
from engine.analysis.surface import CRITERIA, FEATURES, PAPER_FEATURES, FitError
from store.db import StoreError, db_path
from store import runs as store_runs

app = typer.Typer(help="Closed-set generative vs real data augmentation: runs, fits and answers.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
store_app = typer.Typer(help="Create and migrate the store.", no_args_is_help=True)
runs_app = typer.Typer(help="List, export and import runs.", no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(runs_app, name="runs")

console = Console()
err_console = Console(stderr=True)

Db = Annotated[Optional[Path], typer.Option("--db", envvar="EQUIV_DB", show_envvar=True,
                                            help="Store path [default: data/equivalence.duckdb].")]


class UserError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


def fail(message: str, code: int = 2):
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn):
    """Turn the errors a user can cause into one clear line and a non-zero exit."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (UserError, FitError, StoreError, ValueError, FileNotFoundError) as err:
            fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
    return wrapper


def load_runs(db):
    return store_runs.query_runs(db)


def check_choice(kind: str, value, valid) -> None:
    valid = sorted({v for v in valid if v is not None}, key=str)
    if value not in valid:
        raise UserError(f"unknown {kind} {value!r}; valid: {', '.join(map(str, valid)) or '(none in store)'}")


def parse_features(text: str | None):
    if not text or text == "paper":
        return PAPER_FEATURES
    if text.startswith("best:"):
        criterion = text.split(":", 1)[1]
        if criterion not in CRITERIA:
            raise UserError(f"unknown criterion {criterion!r}; valid: {', '.join(CRITERIA)}")
        return text
    names = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in names if f not in FEATURES]
    if bad or not names:
        raise UserError(f"unknown feature {bad[0] if bad else text!r}; valid: {', '.join(FEATURES)}, "
                        f"or best:<{'|'.join(CRITERIA)}>")
    return names


def select_setting(runs, dataset, classifier, augmentation, generator):
    check_choice("dataset", dataset, runs.dataset.unique())
    sel = runs[runs.dataset == dataset]
    check_choice("classifier", classifier, sel.classifier.unique())
    check_choice("augmentation", augmentation, ["closed", "open"])
    sel = sel[(sel.classifier == classifier) & (sel.augmentation == augmentation)]
    gens = sel.generator.dropna().unique()
    if generator is None:
        if len(gens) > 1:
            raise UserError(f"{dataset} / {classifier} has several {augmentation}-set generators; "
                            f"choose one with --generator: {', '.join(sorted(gens))}")
        generator = gens[0] if len(gens) else None
    else:
        check_choice("generator", generator, gens)
    return generator


def run_analysis(db, dataset, classifier, augmentation, generator, eps, features, n_boot, seed) -> Analysis:
    runs = load_runs(db)
    generator = select_setting(runs, dataset, classifier, augmentation, generator)
    if not (eps > 0 and math.isfinite(eps)):
        raise UserError(f"--eps {eps} must be a positive number")
    return analyse(runs, dataset, classifier, augmentation, generator, features=parse_features(features),
                   eps=eps, n_boot=n_boot, seed=seed)


def _fmt_ci(ci, fmt="{:.4g}"):
    return f"[{fmt.format(ci[0])}, {fmt.format(ci[1])}]" if ci else "n/a"


def print_analysis(a: Analysis) -> None:
    title = f"{a.dataset} · {a.classifier} · {a.augmentation}" + (f" ({a.generator})" if a.generator else "")
    console.rule(title)
    for b, f in sorted(a.bases.items()):
        if f.surface is not None:
            s = f.surface
            console.print(f"n_base {b:>6}: {s.formula()}  (R² {s.stats['r2']:.3f}, LOO RMSE "
                          f"{s.stats['loo_rmse']:.2f}, {s.n_points} points)", highlight=False)
        elif f.error:
            console.print(f"[yellow]{f.error}[/]", highlight=False)
    table = Table("n_base", "n_real_added", "n_syn_added", "syn/real", "note", title="Equivalence tuples (Eq. 12)")
    for t in a.tuples:
        table.add_row(f"{t['n_base']:,}", f"{t['n_real_added']:,.0f}", f"{t['n_syn_added']:,.0f}",
                      f"{t['n_syn_added'] / t['n_real_added']:.2f}", "; ".join(t["extrapolation"]))
    console.print(table)
    for d in a.dropped:
        console.print(f"  dropped n_base {d['n_base']:,}, r {d['ratio']:g}: {d['reason']}", highlight=False)
    if a.c1 is not None:
        pct = f"{a.level:.0%}"
        console.print(f"Eq. 1: n_syn/n_base = c1^(tau·n_base)·(c2^(n_real/n_base) − 1), tau = {a.tau:.3g}")
        console.print(f"  c1 = {a.c1:.4g} {pct} CI {_fmt_ci(a.c1_ci)}   c2 = {a.c2:.4g} {pct} CI {_fmt_ci(a.c2_ci)}"
                      f"   RMSE {a.eq1_rmse:.3g} (bootstrap: {a.boot.get('method', 'none')}, "
                      f"{a.boot.get('n_ok', 0)}/{a.boot.get('n_boot', 0)} draws)", highlight=False)
    else:
        console.print(f"[yellow]{a.eq1_error}[/]", highlight=False)
    for w in a.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


def to_json(obj) -> str:
    """Strict JSON: numpy scalars become numbers, NaN and infinities become null."""
    import numpy as np

    def clean(o):
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple, np.ndarray)):
            return [clean(v) for v in (o.tolist() if isinstance(o, np.ndarray) else o)]
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (float, np.floating)):
            return float(o) if math.isfinite(o) else None
        if isinstance(o, np.bool_):
            return bool(o)
        return o
    return json.dumps(clean(obj), allow_nan=False)


# ------------------------------------------------------------------------------- store

@store_app.command("init")
@guarded
def store_init(db: Db = None):
    """Create the store (or migrate it) and load the paper's published runs. Idempotent."""
    added = store_runs.init_store(db)
    console.print(f"store {db_path(db)}: {added} published runs added "
                  f"({len(store_runs.paper_rows()) - added} already present)")


# -------------------------------------------------------------------------------- fit

@app.command()
@guarded
def fit(dataset: Annotated[str, typer.Option(help="Dataset as stored, e.g. CIFAR-10.")],
        classifier: Annotated[str, typer.Option(help="Classifier as stored, e.g. ResNet-110.")],
        augmentation: Annotated[str, typer.Option(help="closed or open.")],
        generator: Annotated[Optional[str], typer.Option(help="Generator, if several.")] = None,
        eps: Annotated[float, typer.Option(help="eps of the log terms.")] = 1e-3,
        features: Annotated[Optional[str], typer.Option(
            help="Comma-separated subset of n_real,n_syn,log_n_real,log_n_syn,log_n_total, or best:<criterion>.")] = None,
        n_boot: Annotated[int, typer.Option(help="Bootstrap draws for intervals (0: none).")] = 200,
        seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        db: Db = None):
    """Fit surfaces, equivalence tuples and Eq. 1 (c1, c2) for one setting."""
    if n_boot < 0:
        raise UserError(f"--n-boot {n_boot} must be >= 0")
    a = run_analysis(db, dataset, classifier, augmentation, generator, eps, features, n_boot, seed)
    if as_json:
        print(to_json(a.to_dict()))
    else:
        print_analysis(a)
    if a.c1 is None:
        if not as_json:
            err_console.print(f"error: {a.eq1_error}", highlight=False)
        raise typer.Exit(1)


@app.command()
@guarded
def report(eps: Annotated[float, typer.Option(help="eps of the log terms.")] = 1e-3,
           n_boot: Annotated[int, typer.Option(help="Bootstrap draws for intervals.")] = 200,
           db: Db = None):
    """Print the fitted equivalence of every setting in the store."""
    runs = load_runs(db)
    summary = Table("dataset", "classifier", "augmentation", "c1 [CI]", "c2 [CI]", "tuples", "dropped",
                    title="Eq. 1 for every setting")
    for setting in settings(runs):
        try:
            a = analyse(runs, *setting, eps=eps, n_boot=n_boot)
        except FitError as err:
            summary.add_row(*[str(v) for v in setting[:2]], f"{setting[2]} {setting[3] or ''}", str(err), "", "", "")
            continue
        print_analysis(a)
        c1 = f"{a.c1:.3g} {_fmt_ci(a.c1_ci, '{:.3g}')}" if a.c1 else "—"
        c2 = f"{a.c2:.3g} {_fmt_ci(a.c2_ci, '{:.3g}')}" if a.c2 else "no equivalence"
        summary.add_row(a.dataset, a.classifier, f"{a.augmentation} ({a.generator})", c1, c2,
                        str(len(a.tuples)), str(len(a.dropped)))
    console.print(summary)


@app.command()
@guarded
def equiv(dataset: Annotated[str, typer.Option()],
          classifier: Annotated[str, typer.Option()],
          augmentation: Annotated[str, typer.Option()],
          n_base: Annotated[int, typer.Option(help="Size of the real base set.")],
          n_real_added: Annotated[Optional[float], typer.Option(help="How many synthetic images equal this many more real ones?")] = None,
          n_syn_added: Annotated[Optional[float], typer.Option(help="How many real images are this many synthetic ones worth?")] = None,
          generator: Annotated[Optional[str], typer.Option()] = None,
          eps: Annotated[float, typer.Option()] = 1e-3,
          features: Annotated[Optional[str], typer.Option()] = None,
          n_boot: Annotated[int, typer.Option()] = 200,
          seed: Annotated[int, typer.Option()] = 0,
          as_json: Annotated[bool, typer.Option("--json")] = False,
          db: Db = None):
    """Answer "how many synthetic images equal N more real ones" (or the inverse)."""
    if (n_real_added is None) == (n_syn_added is None):
        raise UserError("give exactly one of --n-real-added or --n-syn-added")
    if n_base <= 0:
        raise UserError(f"--n-base {n_base} must be positive")
    amount = n_real_added if n_real_added is not None else n_syn_added
    if amount < 0:
        raise UserError(f"the amount {amount:g} must be non-negative")
    a = run_analysis(db, dataset, classifier, augmentation, generator, eps, features, n_boot, seed)
    ans = a.syn_for_real(n_base, amount) if n_real_added is not None else a.real_for_syn(n_base, amount)
    ans.update({"dataset": a.dataset, "classifier": a.classifier, "augmentation": a.augmentation,
                "generator": a.generator, "c1": a.c1, "c2": a.c2, "tau": a.tau,
                "c1_ci": a.c1_ci, "c2_ci": a.c2_ci, "level": a.level})
    if as_json:
        print(to_json(ans))
        return
    pct = f"{a.level:.0%}"
    if n_real_added is not None:
        q, unit = f"{amount:,.0f} more real images at n_base {n_base:,}", "synthetic images"
    else:
        q, unit = f"{amount:,.0f} synthetic images at n_base {n_base:,}", "real images"
    console.print(f"[bold]{q}[/] are worth:")
    if "eq1" in ans:
        console.print(f"  Eq. 1 (c1 {a.c1:.4g}, c2 {a.c2:.4g}): {ans['eq1']:,.0f} {unit}, {pct} CI "
                      f"{_fmt_ci(ans.get('eq1_ci'), '{:,.0f}')}", highlight=False)
    else:
        console.print(f"  Eq. 1: {ans.get('eq1_error')}", highlight=False)
    if ans.get("surface") is not None:
        console.print(f"  this base's surface: {ans['surface']:,.0f} {unit}, {pct} CI "
                      f"{_fmt_ci(ans.get('surface_ci'), '{:,.0f}')}", highlight=False)
    else:
        console.print(f"  this base's surface: {ans.get('surface_error')}", highlight=False)
    for w in ans["warnings"]:
        console.print(f"  [yellow]warning:[/] {w}", highlight=False)


# ------------------------------------------------------------------------------- runs

def _filters(source, dataset, classifier, augmentation, generator, n_base):
    return {"source": source, "dataset": dataset, "classifier": classifier, "augmentation": augmentation,
            "generator": generator, "n_base": n_base}


@runs_app.command("list")
@guarded
def runs_list(source: Annotated[Optional[str], typer.Option()] = None,
              dataset: Annotated[Optional[str], typer.Option()] = None,
              classifier: Annotated[Optional[str], typer.Option()] = None,
              augmentation: Annotated[Optional[str], typer.Option()] = None,
              generator: Annotated[Optional[str], typer.Option()] = None,
              n_base: Annotated[Optional[int], typer.Option()] = None,
              limit: Annotated[int, typer.Option(help="Rows to show (0: all).")] = 0,
              db: Db = None):
    """Runs in the store, filtered."""
    frame = store_runs.query_runs(db, **_filters(source, dataset, classifier, augmentation, generator, n_base))
    table = Table("source", "dataset", "classifier", "aug", "generator", "n_base", "real+", "syn+", "seed",
                  "top1", "top5", title=f"{len(frame)} runs")
    shown = frame if not limit else frame.head(limit)
    import pandas as pd
    for r in shown.itertuples():
        table.add_row(r.source, r.dataset, r.classifier, r.augmentation, "" if pd.isna(r.generator) else r.generator,
                      f"{r.n_base:,}", f"{r.n_real_added:,}", f"{r.n_syn_added:,}",
                      "" if pd.isna(r.seed) else str(r.seed), f"{r.top1:.2f}",
                      "" if pd.isna(r.top5) else f"{r.top5:.2f}")
    console.print(table)


@runs_app.command("export")
@guarded
def runs_export(file: Annotated[Path, typer.Argument(help="Output .csv or .parquet.")],
                source: Annotated[Optional[str], typer.Option()] = None,
                dataset: Annotated[Optional[str], typer.Option()] = None,
                classifier: Annotated[Optional[str], typer.Option()] = None,
                augmentation: Annotated[Optional[str], typer.Option()] = None,
                generator: Annotated[Optional[str], typer.Option()] = None,
                n_base: Annotated[Optional[int], typer.Option()] = None,
                db: Db = None):
    """Write the (filtered) runs to CSV or Parquet."""
    if file.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"unknown export format {file.suffix or file.name!r}: use .csv or .parquet")
    n = store_runs.export_runs(file, db, **_filters(source, dataset, classifier, augmentation, generator, n_base))
    console.print(f"{n} runs written to {file}")


@runs_app.command("import")
@guarded
def runs_import(file: Annotated[Path, typer.Argument(help="A .csv or .parquet with the runs columns.")],
                db: Db = None):
    """Add runs made elsewhere (source `import`); the whole file is checked before anything is written."""
    added, present = store_runs.import_runs(file, db)
    console.print(f"{added} runs imported from {file} ({present} already present)")


# -------------------------------------------------------------------------------- run

# The options that describe a study grid, shared by `engine run` and `engine queue add`.
DatasetOpt = Annotated[str, typer.Option("--dataset", help="digits, cifar10, medmnist:<flag> or folder:<path>.")]
NBaseOpt = Annotated[int, typer.Option("--n-base", help="Size of the real base set.")]
AugmentationOpt = Annotated[str, typer.Option("--augmentation", help="real or closed.")]
AddedOpt = Annotated[str, typer.Option("--added", help="Images to add, e.g. 0,N,2N,3N (N = n_base) or 0,50,100.")]
ClassifierOpt = Annotated[Optional[str], typer.Option(
    "--classifier", help="smallcnn, resnet110, resnet50 or vit-b32 (default: smallcnn for digits, else resnet110).")]
SeedsOpt = Annotated[int, typer.Option("--seeds", help="Seeds per point (0..S-1).")]
SubsetSeedOpt = Annotated[int, typer.Option("--subset-seed", help="Seed that picks the base set and the real additions.")]
RecipeOpt = Annotated[Optional[list[str]], typer.Option("--recipe", help="Override a recipe field: key=value (repeatable).")]
DataRootOpt = Annotated[Optional[str], typer.Option(
    "--data-root", help="Where the dataset lies (cifar10 root, MedMNIST .npz), as the machine that trains sees it.")]
SizeOpt = Annotated[Optional[int], typer.Option("--size", help="Resize images to this size (e.g. 32 for BloodMNIST 64).")]
PresetOpt = Annotated[str, typer.Option("--generator-preset", help="EDM preset for closed-set runs: tiny, small, cifar.")]
GeneratorOpt = Annotated[Optional[list[str]], typer.Option(
    "--generator-option", help="Generator option key=value (train_images, batch_size, lr, seed, sample_seed); repeatable.")]


@app.command()
@guarded
def run(dataset: DatasetOpt = "digits",
        n_base: NBaseOpt = 50,
        augmentation: AugmentationOpt = "real",
        added: AddedOpt = "0,N,2N,3N",
        classifier: ClassifierOpt = None,
        seeds: SeedsOpt = 3,
        subset_seed: SubsetSeedOpt = 0,
        recipe: RecipeOpt = None,
        data_root: DataRootOpt = None,
        size: SizeOpt = None,
        download: Annotated[bool, typer.Option(help="Let torchvision download CIFAR-10 (needs internet).")] = False,
        device: Annotated[str, typer.Option(help="auto, cpu or cuda:K.")] = "auto",
        compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the classifier.")] = False,
        force: Annotated[bool, typer.Option(help="Rerun points already stored.")] = False,
        generator_preset: PresetOpt = "tiny",
        generator_option: GeneratorOpt = None,
        db: Db = None):
    """Train classifiers for a grid of points x seeds and store one row per run."""
    fields = {"dataset": dataset, "classifier": classifier, "n_base": n_base, "augmentation": augmentation,
              "added": added, "seeds": seeds, "subset_seed": subset_seed, "data_root": data_root, "size": size,
              "generator_preset": generator_preset}
    summary, spec, ds = run_grid_cli(fields, recipe, generator_option, db, device, force, compile_, download)
    console.print(f"{summary['written']} runs written, {summary['skipped']} already stored "
                  f"({ds.name}, n_base {spec.n_base}, {spec.augmentation})")


def run_grid_cli(fields, recipe_items, generator_items, db, device="auto", force=False, compile_=False,
                 download=False):
    """engine.run.run_grid with the CLI's error handling: one line for bad input, 130 on Ctrl-C."""
    from engine.data import DatasetError
    from engine.generator import CheckpointError, ClosedSetViolation
    from engine.run import SpecError, parse_options, run_grid
    from engine.subsets import SubsetError
    try:
        fields = dict(fields, recipe=parse_options(recipe_items, "--recipe"),
                      generator_options=parse_options(generator_items, "--generator-option"))
        return run_grid(fields, db, err_console, device, force, compile_, download)
    except (DatasetError, SpecError, SubsetError, CheckpointError, ClosedSetViolation) as err:
        raise UserError(str(err)) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: every finished run is stored; the run in progress was discarded")
        raise typer.Exit(130)


# -------------------------------------------------------------------------------- app

@app.command("app")
@guarded
def app_command(port: Annotated[int, typer.Option(help="Port to serve the dashboard on.")] = 8501,
                headless: Annotated[bool, typer.Option(help="Do not open a browser.")] = True,
                db: Db = None):
    """Start the Streamlit dashboard on the store."""
    import os
    import subprocess
    from pathlib import Path as _Path
    import app as app_pkg
    path = db_path(db).resolve()
    if not path.exists():
        raise UserError(f"no store at {path}: run `engine store init` first")
    main_py = _Path(app_pkg.__file__).resolve().parent / "main.py"
    env = dict(os.environ, EQUIV_DB=str(path))
    console.print(f"dashboard on http://localhost:{port} (store {path}); Ctrl-C stops it")
    cmd = [sys.executable, "-m", "streamlit", "run", str(main_py), "--server.port", str(port),
           "--server.headless", str(headless).lower(), "--browser.gatherUsageStats", "false"]
    try:
        raise typer.Exit(subprocess.call(cmd, env=env))
    except KeyboardInterrupt:
        raise typer.Exit(0)


# ------------------------------------------------------------------------- queue, worker

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
    from engine.run import SpecError
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


def with_store(db) -> None:
    """Create or migrate the store so that the queue exists."""
    from store.db import connect, migrate
    with connect(db) as con:
        migrate(con)


@queue_app.command("list")
@guarded
def queue_list(status: Annotated[Optional[str], typer.Option(help="Only jobs with this status.")] = None,
               db: Db = None):
    """Jobs in the queue with their status and errors."""
    import pandas as pd
    from store import jobs as store_jobs
    if status is not None and status not in store_jobs.STATUSES:
        raise UserError(f"unknown status {status!r}; valid: {', '.join(store_jobs.STATUSES)}")
    frame = store_jobs.list_jobs(db, status)
    table = Table("job", "status", "attempts", "worker", "spec", "runs", "error", title=f"{len(frame)} jobs")
    for r in frame.itertuples():
        spec = json.loads(r.spec) if isinstance(r.spec, str) else r.spec
        short = f"{spec['dataset']} {spec['classifier']} n_base {spec['n_base']} {spec['augmentation']} " \
                f"+{spec['added']} x{spec['seeds']}"
        n_runs = len(json.loads(r.run_ids)) if isinstance(r.run_ids, str) else 0
        table.add_row(r.job_id, r.status, str(r.attempts), "" if pd.isna(r.worker_id) else r.worker_id, short,
                      str(n_runs), "" if pd.isna(r.error) else r.error)
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
    from engine.run import resolve_device, SpecError
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


# ------------------------------------------------------------------------------ study

study_app = typer.Typer(help="Built-in end-to-end studies.", no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("digits")
@guarded
def study_digits(bases: Annotated[str, typer.Option(help="Base sizes n_base.")] = "20,50,100,200",
                 seeds: Annotated[int, typer.Option(help="Seeds per point.")] = 3,
                 recipe: Annotated[Optional[list[str]], typer.Option(help="Classifier recipe override key=value.")] = None,
                 generator_option: Annotated[Optional[list[str]], typer.Option(help="Generator option key=value.")] = None,
                 device: Annotated[str, typer.Option(help="auto, cpu or cuda:K.")] = "auto",
                 force: Annotated[bool, typer.Option(help="Rerun points already stored.")] = False,
                 db: Db = None):
    """Real and closed-set grids on digits (3 seeds), then the equivalence fit. Resumable."""
    import time as _time
    from engine.study import study_grids
    try:
        base_sizes = [int(b) for b in bases.split(",") if b.strip()]
    except ValueError:
        raise UserError(f"--bases {bases!r} should be whole numbers like 20,50,100,200") from None
    grids = study_grids(base_sizes)
    start = _time.perf_counter()
    for k, (n_base, aug, added) in enumerate(grids, 1):
        err_console.rule(f"[{k}/{len(grids)}] digits n_base {n_base}: {aug} {added}")
        run_grid_cli({"dataset": "digits", "classifier": "smallcnn", "n_base": n_base, "augmentation": aug,
                      "added": added, "seeds": seeds, "generator_preset": "tiny"}, recipe, generator_option, db,
                     device, force)
    err_console.print(f"study grids done in {_time.perf_counter() - start:.0f} s")
    print_study_report(db)


def print_study_report(db) -> None:
    from engine.study import gains_table
    from store.artifacts import list_generators
    runs = load_runs(db)
    gens = sorted(set(runs[(runs.dataset == "digits") & (runs.augmentation == "closed")].generator.dropna()))
    for gen in gens:
        a = analyse(runs, "digits", "SmallCNN", "closed", gen, n_boot=200)
        print_analysis(a)
        table = Table("n_base", "kind", "added", "base acc", "acc", "paired gain (mean ± sd)", "pairs",
                      title=f"Gains over the base run, paired by seed ({gen})")
        for r in gains_table(a):
            sd = f" ± {r['gain_sd']:.2f}" if r["gain_sd"] is not None else ""
            table.add_row(str(r["n_base"]), r["kind"], f"{r['added']} ({r['ratio']:g}N)", f"{r['acc_base']:.2f}",
                          f"{r['acc']:.2f}", f"{r['gain_mean']:+.2f}{sd}", str(r["n_pairs"]))
        console.print(table)
        noise = Table("n_base", "synthetic gain beats seed noise?", title="Seed-noise test (one-sided, over seeds)")
        for b, f in sorted(a.bases.items()):
            t = f.noise
            noise.add_row(str(b), (f"{'yes' if t['significant'] else 'no'} (mean {t['mean_gain']:+.2f} points, "
                                   f"p = {t['p_value']:.3f}, {t['seeds']} seeds)") if t.get("tested") else t.get("reason", ""))
        console.print(noise)
    g = list_generators(db)
    g = g[g.dataset == "digits"]
    if len(g):
        mem = Table("n_base", "preset", "train images", "train s", "samples→base (median L2)",
                    "held-out→base", "ratio", title="Memorisation check of each generator")
        for r in g.itertuples():
            m = json.loads(r.memorisation) if isinstance(r.memorisation, str) else None
            mem.add_row(str(r.n_base), r.preset, f"{r.train_images:,}", f"{r.train_time_s:.0f}",
                        f"{m['syn_to_base_median']:.3f}" if m else "-", f"{m['heldout_to_base_median']:.3f}" if m else "-",
                        f"{m['ratio']:.2f}" if m else "-")
        console.print(mem)


def main():  # console-script entry point
    app()


if __name__ == "__main__":
    main()
