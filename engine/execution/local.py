"""`engine run` here: train what a grid's plan (engine.execution.plan) has not stored yet, store each row.

Each row is written in its own transaction only after its classifier is evaluated: an interrupted study
leaves complete rows and nothing half-written. The worker and the Ray cluster run the same code.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from dataclasses import dataclass

import numpy as np

from engine.catalog.classifiers import CLASSIFIERS
from engine.catalog.defaults import default_recipe
from engine.catalog.vocab import CLOSED, DEFAULT_QUALITY, ENGINE, OPEN, SYNTHETIC_BASE, ZERO_SHOT
from engine.data.dataset import Dataset
from engine.data.subsets import indices_hash
from engine.device.runtime import device_name, resolve_device, versions
from engine.execution.plan import PlannedRun, base_and_additions, plan, seen_class_indices, synthetic_images_of
from engine.spec import SpecError, StudySpec, check_against_data, check_open_set, check_quality, validate
from store import runs as store_runs


@dataclass(frozen=True)
class Runtime:
    """How a study executes, as opposed to what it is (the StudySpec): never part of a run's identity."""
    device: str = "auto"
    compile: bool = False
    force: bool = False
    download: bool = False
    quality: str = DEFAULT_QUALITY   # of the synthetic set after synthetic runs (engine.catalog.vocab.QUALITY_LEVELS)

    def __post_init__(self):
        check_quality(self.quality)


def store_row(planned: PlannedRun, spec: StudySpec, ds: Dataset, result, device, train_indices, extra: dict) -> dict:
    import torch
    stored_classifier = CLASSIFIERS[spec.classifier].stored_name
    # Bitwise reproducibility holds only for the same machine and thread count: record it.
    threads = {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
    config = dict(planned.config, wall_time_s=result.train_seconds, device=device_name(device),
                  versions=versions(), threads=threads, steps=result.steps, final_loss=result.final_loss,
                  images_per_second=result.images_per_second, **extra.get("config", {}))
    return {
        "run_id": str(uuid.uuid4()), "run_key": planned.key, "source": ENGINE, "dataset": ds.name,
        "classifier": stored_classifier, "augmentation": planned.augmentation,
        "generator": extra.get("generator"), "n_base": spec.n_base, "n_real_added": planned.n_real_added,
        "n_syn_added": planned.n_syn_added, "seed": planned.seed, "top1": result.top1, "top5": result.top5,
        "n_total": ds.n_total, "config": json.dumps(config, default=str), "note": extra.get("note"),
        "wall_time_s": result.train_seconds, "device": device_name(device),
        "indices_hash": indices_hash(train_indices), "generator_id": extra.get("generator_id"),
        "synthetic_set_id": extra.get("synthetic_set_id"), "traditional": planned.traditional,
        "base": spec.base, "task": spec.task,
    }


class Stopped(Exception):
    """The caller asked the study to stop at a run boundary (job cancelled, taken over or out of time)."""


def device_data(ds: Dataset, device):
    """The whole train and test splits on the device as uint8; runs index into them."""
    import torch

    def images(a):  # (N, H, W, C) uint8 as stored -> (N, C, H, W) as the networks take it
        return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous().to(device)
    return images(ds.train_x), torch.from_numpy(ds.train_y).to(device), images(ds.test_x), \
        torch.from_numpy(ds.test_y).to(device)


def train_run(spec: StudySpec, ds: Dataset, planned_run: PlannedRun, device, data=None, syn=None,
              on_progress=None, compile: bool = False) -> dict:
    """Train and evaluate one planned run; returns its row, unstored. Touches no store, so it
    runs as well inside a Ray task on a node that cannot see the store's disk.

    `data` is device_data(ds, device) (made here if None); `syn` is (images NCHW uint8 on the
    device, labels, extra row fields) holding at least the run's n_syn_added images.
    """
    import torch
    from engine.classifiers.train import Recipe, train_classifier
    train_x, train_y, test_x, test_y = data if data is not None else device_data(ds, device)
    base, added = base_and_additions(ds, spec, planned_run.n_real_added)
    indices = np.concatenate([base, added])
    idx = torch.from_numpy(indices).to(device)
    x, y = train_x[idx], train_y[idx]
    extra = {}
    if spec.base == SYNTHETIC_BASE:  # appendix G.1: the set's first n_base images are the base
        x = torch.cat([syn[0][:spec.n_base], x])
        y = torch.cat([syn[1][:spec.n_base], y])
        extra = syn[2]
    elif planned_run.n_syn_added:
        x = torch.cat([x, syn[0][:planned_run.n_syn_added]])
        y = torch.cat([y, syn[1][:planned_run.n_syn_added]])
        extra = syn[2]
    recipe = Recipe(**{**planned_run.config["recipe"], "milestones": tuple(planned_run.config["recipe"]["milestones"])})
    if spec.task == ZERO_SHOT:
        from engine.classifiers.zero_shot import class_text_features, train_zero_shot
        unseen = seen_class_indices(ds)[1]
        keep = torch.from_numpy(np.isin(ds.test_y, unseen)).to(test_x.device)
        result = train_zero_shot(spec.classifier, x, y, test_x[keep], test_y[keep],
                                 class_text_features(spec.text_encoder, ds.classes), unseen, recipe,
                                 planned_run.seed, device, on_progress)
        return store_row(planned_run, spec, ds, result, device, indices, extra)
    result = train_classifier(spec.classifier, x, y, test_x, test_y, ds.num_classes, recipe, planned_run.seed,
                              device, compile, on_progress)
    return store_row(planned_run, spec, ds, result, device, indices, extra)


def run_label(spec: StudySpec, planned_run: PlannedRun) -> str:
    return (f"n_base {spec.n_base} +{planned_run.n_real_added} real +{planned_run.n_syn_added} syn, "
            f"seed {planned_run.seed}")


def execute(spec: StudySpec, runtime: Runtime, db=None, ds: Dataset | None = None, console=None, synthetic=None,
            should_stop=None, on_stored=None, around_training=None) -> dict:
    """Train and store every planned run that is not stored yet. Returns counts.

    `synthetic` supplies the synthetic images: a closed-set SyntheticSource (its generator trained and
    sampled here, stored by engine.execution.artifacts) or an imported OpenSetSource, each with
    .run_identity (what runs are keyed by) known before anything trains.
    `should_stop(done, planned)` is asked before each run and while a generator trains; a reason
    (text) stops the study there with Stopped(reason, summary): every run finished so far is
    stored, nothing else is.
    `on_stored(done, planned)` is told how many planned runs are stored: after each run is written,
    and at once when all of them already were.
    `around_training()` is a context manager entered around each run's training and evaluation,
    which write nothing: a caller may let an interrupt stop a run there and nowhere else. What it
    yields, if not None, is called at each progress report of the training (every 20 steps) and may
    raise there too.
    """
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    around_training = around_training or contextlib.nullcontext
    device = resolve_device(runtime.device)
    planned = plan(spec, ds, synthetic.run_identity if synthetic else None)
    done = set() if runtime.force else store_runs.existing_run_keys([p.key for p in planned], db)
    todo = [p for p in planned if p.key not in done]
    summary = {"planned": len(planned), "skipped": len(planned) - len(todo), "written": 0,
               "run_keys": [p.key for p in planned]}
    if not todo:
        console.print(f"all {len(planned)} runs of this grid are already stored (use --force to rerun)")
        if on_stored:
            on_stored(len(planned), len(planned))
        return summary
    data = device_data(ds, device)
    syn = None
    max_syn = max((synthetic_images_of(spec, p) for p in todo), default=0)

    def stop_here(done: int):
        reason = should_stop(done, len(planned)) if should_stop else None
        if reason:
            raise Stopped(reason, summary)

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        if max_syn:
            gen_task = progress.add_task(getattr(synthetic, "label", None) or
                                         f"generator {synthetic.generator_id} (closed set: n_base {spec.n_base})",
                                         total=None, info="")

            def on_train(nimg, total, loss):
                progress.update(gen_task, completed=nimg, total=total, info=f"loss {loss:.3f}")
                stop_here(summary["skipped"])

            syn_x, syn_y, syn_extra = prepare_images(synthetic, max_syn, db, device, on_train)
            progress.update(gen_task, info=f"{max_syn} synthetic images ready")
            syn = (torch.from_numpy(syn_x).permute(0, 3, 1, 2).contiguous().to(device),
                   torch.from_numpy(syn_y).to(device), syn_extra)
        runs_task = progress.add_task("runs", total=len(todo), info=f"{summary['skipped']} already stored")
        step_task = progress.add_task("steps", total=1, info="")
        for planned_run in todo:
            stop_here(summary["skipped"] + summary["written"])
            label = run_label(spec, planned_run)
            progress.update(step_task, description=label, completed=0, total=1)

            with around_training() as check:
                def on_progress(step, total, loss):
                    progress.update(step_task, completed=step, total=total, info=f"loss {loss:.3f}")
                    if check is not None:
                        check()

                row = train_run(spec, ds, planned_run, device, data, syn, on_progress, runtime.compile)
            store_runs.insert_runs([row], db, replace=runtime.force)
            summary["written"] += 1
            if on_stored:
                on_stored(summary["skipped"] + summary["written"], len(planned))
            progress.update(runs_task, advance=1, info=f"last: top1 {row['top1']:.2f}% ({label})")
    return summary


def run_grid(raw: dict | StudySpec, db=None, console=None, runtime: Runtime = Runtime(), should_stop=None,
             on_stored=None, around_training=None):
    """Validate a study grid completely, then train and store it: shared by `engine run`,
    `engine study` and `engine worker`. Returns (summary, spec, dataset). The callbacks are
    execute()'s."""
    spec, ds, synthetic = build_spec(raw, db, runtime)
    summary = execute(spec, runtime, db, ds, console, synthetic, should_stop, on_stored, around_training)
    if synthetic is not None and runtime.quality != "off":  # closed-set or imported images alike
        from engine.quality.assess import after_run
        after_run(synthetic.synthetic_set_id, runtime.quality, db, ds, resolve_device(runtime.device),
                  log=console.print if console else print)
    return summary, spec, ds


def prepare_images(synthetic, n_images: int, db, device, on_train=None):
    """(images uint8 NHWC, labels, the fields of their runs) for the largest synthetic amount: a closed
    set's generator trained and sampled as needed and stored; an imported set's images read."""
    from engine.generators.closed_set import SyntheticSource
    if isinstance(synthetic, SyntheticSource):
        from engine.execution import artifacts
        return artifacts.prepare_closed_set(synthetic, n_images, db, device, on_train)
    return synthetic.prepare(n_images)


def build_spec(raw: dict | StudySpec, db=None, runtime: Runtime = Runtime(), open_set_row: dict | None = None):
    """A study grid validated, then checked against its loaded data set, before anything trains:
    (StudySpec, Dataset, SyntheticSource or None). `open_set_row`: an open-set job's imported set as
    read from the store elsewhere (on a cluster node, which has no store)."""
    from engine.data.loaders import load_dataset
    spec = validate(raw)
    check_open_set(spec, db, open_set_row)  # the imported set exists and holds enough images: before the data load
    ds = load_dataset(spec.dataset, spec.data_root, spec.size, runtime.download)
    check_against_data(spec, ds.name, len(ds.train_y))
    try:  # the overrides were checked at validation; recheck with this data's real sizes
        default_recipe(spec.classifier, ds.name, spec.n_base, spec.n_base, ds.n_total).with_overrides(spec.recipe)
    except ValueError as err:
        raise SpecError(str(err)) from None
    synthetic = None
    if spec.task == ZERO_SHOT:
        check_zero_shot(spec, ds)
    if spec.base == SYNTHETIC_BASE:  # its images are the base: n_base of them are drawn
        from engine.generators.open_set import OpenSetSource
        synthetic = OpenSetSource(dataclasses.replace(spec, added=(spec.n_base,)), ds, db, open_set_row)
    elif spec.augmentation == CLOSED:
        from engine.execution import artifacts
        from engine.generators.closed_set import SyntheticSource
        synthetic = SyntheticSource(spec, ds, artifacts.root(db), device=runtime.device)
    elif spec.augmentation == OPEN:  # an imported set: checked against these data before anything trains
        from engine.generators.open_set import OpenSetSource
        synthetic = OpenSetSource(spec, ds, db, open_set_row)
        if spec.task == ZERO_SHOT:
            synthetic = UnseenClassImages(synthetic, seen_class_indices(ds)[1])
    return spec, ds, synthetic


def check_zero_shot(spec: StudySpec, ds: Dataset) -> None:
    """What a zero-shot grid needs of its data and its text encoder, before anything trains: two classes
    at least, a base within the seen classes' images, and a folder the encoder loads from."""
    from engine.classifiers.zero_shot import class_text_features
    if ds.num_classes < 2:
        raise SpecError(f"--task {ZERO_SHOT} splits the classes in two: {ds.name} has {ds.num_classes}")
    seen = seen_class_indices(ds)[0]
    n_seen = int(np.isin(ds.train_y, seen).sum())
    if spec.n_base > n_seen:
        raise SpecError(f"n_base {spec.n_base:,} is more than the {n_seen:,} training images of {ds.name}'s "
                        f"{len(seen)} seen classes (the first half; the second half is only synthetic)")
    class_text_features(spec.text_encoder, ds.classes)


class UnseenClassImages:
    """An open-set set as a zero-shot run draws it (appendix G.2): only its images of the unseen classes,
    in the set's stored order, so that a draw stays class-balanced and a larger one holds a smaller one."""

    def __init__(self, source, unseen):
        self.source, self.unseen = source, np.asarray(unseen)
        self.synthetic_set_id, self.generator_id = source.synthetic_set_id, source.generator_id
        self.run_identity = source.run_identity
        self.label = f"{source.label}, unseen classes only"

    def prepare(self, n_images: int, on_train=None):
        return open_set_draw(self.source.row, n_images, self.unseen)


def open_set_draw(row: dict, n_images: int, unseen=None):
    """(images, labels, run fields): the first n_images of an imported set in its stored order, or with
    `unseen` (a zero-shot grid's unseen class indices) the first n_images of those classes only. Read
    where the store's files are: by a local run, or by the Ray dispatcher for its nodes."""
    from engine.generators.open_set import open_set_images
    if unseen is None:
        return open_set_images(row, n_images)
    x, y, extra = open_set_images(row, int(row["n_images"]))
    keep = np.flatnonzero(np.isin(y, np.asarray(unseen)))[:n_images]
    return x[keep], y[keep], extra
