"""`engine run`: plan the (point, seed) runs of a study grid, train what is missing, store each row.

A run's identity is its full config (data, subset, recipe, generator, seed) hashed into run_key;
a stored run_key is skipped unless forced, so reruns and re-queued jobs never duplicate rows.
Each row is written in its own transaction only after its classifier is evaluated: an
interrupted study leaves complete rows and nothing half-written.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from engine.data import Dataset
from engine.catalog import CLASSIFIERS, ENGINE_AUGMENTATIONS
from engine.runtime import device_name, resolve_device, versions
from engine.spec import SpecError, parse_added  # noqa: F401  (re-exported for callers)
from engine.subsets import base_indices, indices_hash, real_additions
from store import runs as store_runs


@dataclass
class StudySpec:
    dataset: str = "digits"
    classifier: str = "smallcnn"
    n_base: int = 50
    augmentation: str = "real"
    added: list = field(default_factory=lambda: [0])
    seeds: int = 3
    subset_seed: int = 0
    recipe: dict = field(default_factory=dict)      # overrides of the default recipe
    data_root: str | None = None
    size: int | None = None
    download: bool = False
    device: str = "auto"
    compile: bool = False
    force: bool = False
    generator_preset: str = "tiny"
    generator_options: dict = field(default_factory=dict)

    def validate(self, ds: Dataset) -> None:
        if self.classifier not in CLASSIFIERS:
            raise SpecError(f"unknown classifier {self.classifier!r}; valid: {', '.join(CLASSIFIERS)}")
        if self.augmentation not in ENGINE_AUGMENTATIONS:
            raise SpecError(f"augmentation {self.augmentation!r}: the engine runs 'real' or 'closed' "
                            f"(open-set runs come from outside generators: import them)")
        if not 0 < self.n_base <= len(ds.train_y):
            raise SpecError(f"n_base {self.n_base} must be between 1 and {ds.name}'s {len(ds.train_y)} "
                            f"training images")
        if self.seeds < 1:
            raise SpecError(f"--seeds {self.seeds} must be at least 1")
        if any(a < 0 for a in self.added):
            raise SpecError(f"--added has a negative amount {min(self.added)}")
        if self.augmentation == "real" and max(self.added) > len(ds.train_y) - self.n_base:
            raise SpecError(f"--added {max(self.added)} real images, but only {len(ds.train_y) - self.n_base} "
                            f"lie outside a base of {self.n_base} in {ds.name}'s train split")


def run_key(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return "engine:" + hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass
class PlannedRun:
    config: dict
    key: str
    n_real_added: int
    n_syn_added: int
    seed: int
    augmentation: str


def identity(spec: StudySpec, ds: Dataset, recipe: dict, n_real_added: int, n_syn_added: int, seed: int,
             augmentation: str, generator_id: str | None) -> dict:
    """Everything that decides a run's result: two runs with equal identity are the same run."""
    return {"dataset": ds.name, "dataset_details": {k: v for k, v in ds.details.items() if k not in ("root", "file")},
            "classifier": spec.classifier, "recipe": recipe, "n_base": spec.n_base, "subset_seed": spec.subset_seed,
            "augmentation": augmentation, "n_real_added": n_real_added, "n_syn_added": n_syn_added,
            "generator_id": generator_id, "seed": seed}


def store_row(planned: PlannedRun, spec: StudySpec, ds: Dataset, result, device, train_indices, extra: dict) -> dict:
    import torch
    stored_classifier = CLASSIFIERS[spec.classifier][0]
    # Bitwise reproducibility holds only for the same machine and thread count: record it.
    threads = {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
    config = dict(planned.config, wall_time_s=result.train_seconds, device=device_name(device),
                  versions=versions(), threads=threads, steps=result.steps, final_loss=result.final_loss,
                  images_per_second=result.images_per_second, **extra.get("config", {}))
    return {
        "run_id": str(uuid.uuid4()), "run_key": planned.key, "source": "engine", "dataset": ds.name,
        "classifier": stored_classifier, "augmentation": planned.augmentation,
        "generator": extra.get("generator"), "n_base": spec.n_base, "n_real_added": planned.n_real_added,
        "n_syn_added": planned.n_syn_added, "seed": planned.seed, "top1": result.top1, "top5": result.top5,
        "n_total": ds.n_total, "config": json.dumps(config, default=str), "note": extra.get("note"),
        "wall_time_s": result.train_seconds, "device": device_name(device),
        "indices_hash": indices_hash(train_indices), "generator_id": extra.get("generator_id"),
        "synthetic_set_id": extra.get("synthetic_set_id"),
    }


def base_and_additions(ds: Dataset, spec: StudySpec, n_real_added: int):
    base = base_indices(ds.train_y, spec.n_base, spec.subset_seed)
    added = real_additions(ds.train_y, base, n_real_added, spec.subset_seed) if n_real_added else np.empty(0, int)
    return base, added


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def elapsed(start: float) -> float:
    return time.perf_counter() - start


def plan(spec: StudySpec, ds: Dataset, generator_id: str | None = None) -> list[PlannedRun]:
    from engine.train import default_recipe
    planned = []
    for amount in spec.added:
        is_base = amount == 0
        augmentation = "real" if is_base else spec.augmentation
        n_real_added = amount if augmentation == "real" else 0
        n_syn_added = amount if augmentation == "closed" else 0
        n_train = spec.n_base + amount
        recipe = default_recipe(spec.classifier, ds.name, n_train, spec.n_base, ds.n_total,
                                flip=ds.name != "digits").with_overrides(spec.recipe).to_dict()
        for seed in range(spec.seeds):
            config = identity(spec, ds, recipe, n_real_added, n_syn_added, seed, augmentation,
                              generator_id if augmentation == "closed" else None)
            planned.append(PlannedRun(config, run_key(config), n_real_added, n_syn_added, seed, augmentation))
    return planned


def device_data(ds: Dataset, device):
    """The whole train and test splits on the device as uint8 NCHW; runs index into them."""
    import torch

    def images(a):
        return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous().to(device)
    return images(ds.train_x), torch.from_numpy(ds.train_y).to(device), images(ds.test_x), \
        torch.from_numpy(ds.test_y).to(device)


def train_run(spec: StudySpec, ds: Dataset, planned_run: PlannedRun, device, data=None, syn=None,
              on_progress=None) -> dict:
    """Train and evaluate one planned run; returns its row, unstored. Touches no store, so it
    runs as well inside a Ray task on a node that cannot see the store's disk.

    `data` is device_data(ds, device) (made here if None); `syn` is (images NCHW uint8 on the
    device, labels, extra row fields) holding at least the run's n_syn_added images.
    """
    import torch
    from engine.train import Recipe, train_classifier
    train_x, train_y, test_x, test_y = data if data is not None else device_data(ds, device)
    base, added = base_and_additions(ds, spec, planned_run.n_real_added)
    indices = np.concatenate([base, added])
    idx = torch.from_numpy(indices).to(device)
    x, y = train_x[idx], train_y[idx]
    extra = {}
    if planned_run.n_syn_added:
        x = torch.cat([x, syn[0][:planned_run.n_syn_added]])
        y = torch.cat([y, syn[1][:planned_run.n_syn_added]])
        extra = syn[2]
    recipe = Recipe(**{**planned_run.config["recipe"], "milestones": tuple(planned_run.config["recipe"]["milestones"])})
    result = train_classifier(spec.classifier, x, y, test_x, test_y, ds.num_classes, recipe, planned_run.seed,
                              device, spec.compile, on_progress)
    return store_row(planned_run, spec, ds, result, device, indices, extra)


def run_label(spec: StudySpec, planned_run: PlannedRun) -> str:
    return (f"n_base {spec.n_base} +{planned_run.n_real_added} real +{planned_run.n_syn_added} syn, "
            f"seed {planned_run.seed}")


def execute(spec: StudySpec, db=None, ds: Dataset | None = None, console=None, synthetic=None) -> dict:
    """Train and store every planned run that is not stored yet. Returns counts.

    `synthetic` supplies closed-set images: an object with .generator_id (known before training)
    and .prepare(max_images) -> (images uint8 NHWC, labels, extra row fields).
    """
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    device = resolve_device(spec.device)
    planned = plan(spec, ds, synthetic.generator_id if synthetic else None)
    done = set() if spec.force else store_runs.existing_run_keys([p.key for p in planned], db)
    todo = [p for p in planned if p.key not in done]
    summary = {"planned": len(planned), "skipped": len(planned) - len(todo), "written": 0,
               "run_keys": [p.key for p in planned]}
    if not todo:
        console.print(f"all {len(planned)} runs of this grid are already stored (use --force to rerun)")
        return summary
    data = device_data(ds, device)
    syn = None
    max_syn = max((p.n_syn_added for p in todo), default=0)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        if max_syn:
            gen_task = progress.add_task(f"generator {synthetic.generator_id} (closed set: n_base {spec.n_base})",
                                         total=None, info="")

            def on_train(nimg, total, loss):
                progress.update(gen_task, completed=nimg, total=total, info=f"loss {loss:.3f}")

            syn_x, syn_y, syn_extra = synthetic.prepare(max_syn, on_train)
            progress.update(gen_task, info=f"{max_syn} synthetic images ready")
            syn = (torch.from_numpy(syn_x).permute(0, 3, 1, 2).contiguous().to(device),
                   torch.from_numpy(syn_y).to(device), syn_extra)
        runs_task = progress.add_task("runs", total=len(todo), info=f"{summary['skipped']} already stored")
        step_task = progress.add_task("steps", total=1, info="")
        for planned_run in todo:
            label = run_label(spec, planned_run)
            progress.update(step_task, description=label, completed=0, total=1)

            def on_progress(step, total, loss):
                progress.update(step_task, completed=step, total=total, info=f"loss {loss:.3f}")

            row = train_run(spec, ds, planned_run, device, data, syn, on_progress)
            store_runs.insert_runs([row], db, replace=spec.force)
            summary["written"] += 1
            progress.update(runs_task, advance=1, info=f"last: top1 {row['top1']:.2f}% ({label})")
    return summary


def parse_options(items, flag: str) -> dict:
    """['key=value', ...] from a repeatable CLI option into a dict."""
    out = {}
    for item in items or []:
        if "=" not in str(item):
            raise SpecError(f"{flag} {item!r} should be key=value, e.g. {flag} iterations=300")
        key, value = str(item).split("=", 1)
        out[key.strip()] = value.strip()
    return out


def run_grid(fields: dict, db=None, console=None, device: str = "auto", force: bool = False,
             compile: bool = False, download: bool = False):
    """Validate a study grid completely, then train and store it: shared by `engine run`,
    `engine study` and `engine worker`. Returns (summary, spec, dataset)."""
    spec, ds, synthetic = build_spec(fields, db, device, force, compile, download)
    return execute(spec, db, ds, console, synthetic), spec, ds


def build_spec(fields: dict, db=None, device: str = "auto", force: bool = False, compile: bool = False,
               download: bool = False):
    """A study grid's fields checked completely against its loaded data set, before anything
    trains: (StudySpec, Dataset, SyntheticSource or None)."""
    from engine.catalog import GENERATOR_PRESETS
    from engine.data import load_dataset
    from engine.train import default_recipe
    preset = fields.get("generator_preset") or "tiny"
    if preset not in GENERATOR_PRESETS:
        raise SpecError(f"unknown generator preset {preset!r}; valid: {', '.join(GENERATOR_PRESETS)}")
    dataset = fields.get("dataset", "digits")
    classifier = fields.get("classifier") or ("smallcnn" if dataset == "digits" else "resnet110")
    if classifier not in CLASSIFIERS:
        raise SpecError(f"unknown classifier {classifier!r}; valid: {', '.join(CLASSIFIERS)}")
    ds = load_dataset(dataset, fields.get("data_root"), fields.get("size"), download)
    n_base = int(fields["n_base"])
    added = fields.get("added", "0,N,2N,3N")
    spec = StudySpec(dataset=dataset, classifier=classifier, n_base=n_base,
                     augmentation=fields.get("augmentation", "real"),
                     added=parse_added(added, n_base) if isinstance(added, str) else sorted(set(int(a) for a in added)),
                     seeds=int(fields.get("seeds", 3)), subset_seed=int(fields.get("subset_seed", 0)),
                     recipe=dict(fields.get("recipe") or {}), data_root=fields.get("data_root"),
                     size=fields.get("size"), download=download, device=device, compile=compile, force=force,
                     generator_preset=preset, generator_options=dict(fields.get("generator_options") or {}))
    spec.validate(ds)
    # Recipe overrides are checked now, before anything trains.
    default_recipe(spec.classifier, ds.name, n_base, n_base, ds.n_total).with_overrides(spec.recipe)
    synthetic = None
    if spec.augmentation == "closed":
        from engine.generators.closed_set import SyntheticSource
        synthetic = SyntheticSource(spec, ds, db)
    return spec, ds, synthetic
