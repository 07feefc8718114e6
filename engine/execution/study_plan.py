"""The plan of a whole study on any dataset the engine loads (`engine study DATASET`), torch-free.

From the dataset's size alone (read from file listings and headers, never by decoding every image):
bases at about 1 %, 10 % and 50 % of the train split (the paper's CIFAR-10 500/5,000/25,000 of
50,000; BloodMNIST's 1,200/6,000 of 12,000), each at least two images a class; real additions
N, 2N, 3N where the split has room for them, else 0.4, 0.6 and 1 times the room left (the paper's
25,000 base); synthetic additions N to 5N (the paper's); 3 seeds. The generator follows the image
size: EDM in pixel space up to 32 x 32, DiT on a VAE's latents above; its preset is `tiny` on a CPU.
The digits study keeps its own built-in grids (engine.execution.study). The plan carries the grids
(raw fields for engine.spec.validate), the number of runs and generator trainings, the estimated
hours on the device (engine.analysis.cost) and the disk the synthetic sets and checkpoints take.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.catalog import datasets as catalog
from engine.catalog.classifiers import CLASSIFIERS
from engine.catalog.generators import GENERATORS
from engine.catalog.vocab import CLOSED, REAL
from engine.messages import InputError

BASE_FRACTIONS = (0.01, 0.10, 0.50)
REAL_RATIOS = (1, 2, 3)
ROOM_RATIOS = (0.4, 0.6, 1.0)          # of the room left past a large base
SYN_RATIOS = (1, 2, 3, 4, 5)
SEEDS = 3
PIXEL_SPACE_MAX = 32                   # EDM up to 32 x 32 (engine.catalog.generators); DiT above
TEN_CLASSES = 10    # digits and CIFAR-10; the ImageNet subsets' lists ship in engine/data/classes/


class PlanError(InputError):
    """A dataset the planner cannot plan a study for; the message names why."""


@dataclass
class DataFacts:
    form: str                      # as typed
    stored: str
    n_train: int
    classes: int
    shape: tuple                   # (height, width, channels) as the generator sees the images
    class_counts: dict = field(default_factory=dict)
    read_from: str = ""

    def as_dict(self) -> dict:
        return {"dataset": self.form, "stored_name": self.stored, "n_train": self.n_train, "classes": self.classes,
                "image_shape": list(self.shape), "class_counts": self.class_counts, "read_from": self.read_from}


def _folder_facts(form: str, path: str, size: int | None) -> DataFacts:
    from PIL import Image

    from engine.data.paths import DataPathError, check_data_here
    try:
        check_data_here(form, None)          # layout, class folders, regular image files: nothing decoded
    except DataPathError as err:
        raise PlanError(str(err)) from None
    from engine.data.dataset import image_files
    root = Path(path)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    items = image_files(root / "train", classes)
    counts = {c: 0 for c in classes}
    for _, label in items:
        counts[classes[label]] += 1
    with Image.open(items[0][0]) as im:      # the header only: size and mode
        w, h = im.size
        channels = 1 if im.mode in ("1", "L", "I", "I;16", "F") else 3
    return DataFacts(form, catalog.folder_stored_name(path), len(items), len(classes),
                     (size, size, channels) if size else (h, w, channels), counts,
                     f"{len(items):,} files in {len(classes)} class folders, first image {w}x{h} ({channels} channel"
                     f"{'s' if channels > 1 else ''})")


def _medmnist_facts(form: str, flag: str, data_root: str | None, size: int | None) -> DataFacts:
    import numpy as np
    root = Path(data_root or catalog.default_root(form))
    path = root if root.suffix == ".npz" else next(iter(sorted(root.glob(f"{flag}*.npz"))), root / f"{flag}.npz")
    stored = catalog.medmnist_stored_name(flag)
    if not path.is_file():
        known = catalog.known_train_size(form)
        names = catalog.medmnist_classes(flag)
        if known is None or names is None:
            raise PlanError(f"{path} does not exist, and {form}'s size is not known without it: give --data-root")
        side = size or 28
        return DataFacts(form, stored, known, len(names), (side, side, 3), {}, f"the catalog ({path} not found here)")
    from engine.data.paths import _medmnist_train_size
    n_train = _medmnist_train_size(path)
    with np.load(path, allow_pickle=False) as npz:   # only the labels are read, and one image's shape
        labels = np.asarray(npz["train_labels"]).reshape(n_train, -1)[:, 0]
        shape = npz["train_images"].shape if "train_images" in npz.files else (0, 28, 28)
    values, counts = np.unique(labels, return_counts=True)
    side = size or int(shape[1])
    channels = int(shape[3]) if len(shape) == 4 else 1
    return DataFacts(form, stored, n_train, len(values), (side, side, channels),
                     {str(int(v)): int(c) for v, c in zip(values, counts)}, f"{path} (labels and headers)")


def data_facts(form: str, data_root: str | None = None, size: int | None = None,
               classifier: str | None = None) -> DataFacts:
    """What a study plan needs of a dataset, without loading its images."""
    try:
        kind, arg = catalog.split(form)
    except catalog.UnknownDataset as err:
        raise PlanError(str(err)) from None
    if kind.family == catalog.FOLDER_FAMILY:
        return _folder_facts(form, arg, size)
    if kind.family == catalog.MEDMNIST_FAMILY:
        return _medmnist_facts(form, arg, data_root, size)
    from importlib import resources
    stored = kind.stored_name
    n_train = catalog.known_train_size(form) or kind.n_total
    # Fixed-size sets keep their images' size, which their default classifier takes (8 and 32); the ImageNet
    # subsets decode at the classifier's input size (or --size). Only the built-in digits are grey.
    if kind.takes_size:
        side = size or CLASSIFIERS[classifier or kind.default_classifier].input_size
    else:
        side = CLASSIFIERS[kind.default_classifier].input_size
    listed = resources.files("engine.data").joinpath("classes", f"{form}.txt")
    classes = len([ln for ln in listed.read_text().splitlines() if ln.strip()]) if listed.is_file() else TEN_CLASSES
    return DataFacts(form, stored, int(n_train), classes, (side, side, 1 if form == catalog.DEFAULT_DATASET else 3),
                     {}, "the catalog")


# ------------------------------------------------------------------------------ the grid

def plan_bases(n_train: int, classes: int) -> list[int]:
    """About 1 %, 10 % and 50 % of the train split, each a multiple of the classes and at least two
    images a class; two bases at least (Eq. 1 needs them), else PlanError."""
    low = max(2 * classes, 10)
    out = []
    for f in BASE_FRACTIONS:
        b = int(n_train * f) // max(classes, 1) * max(classes, 1)
        if b >= low and b not in out:
            out.append(b)
    if len(out) < 2 and n_train // 2 >= 2 * low:
        out = sorted({low, n_train // 2 // max(classes, 1) * max(classes, 1)})
    if len(out) < 2:
        raise PlanError(f"{n_train:,} training images in {classes} classes are too few for a study: it needs two "
                        f"bases of at least {low:,} images with room for real additions (about {4 * low:,} images)")
    return out


def real_amounts(n_base: int, n_train: int) -> list[int]:
    room = n_train - n_base
    if room >= max(REAL_RATIOS) * n_base:
        return [0] + [r * n_base for r in REAL_RATIOS]
    top = min(room, n_base)
    return [0] + sorted({max(1, int(r * top)) for r in ROOM_RATIOS})


def choose_generator(shape: tuple, device: str, kind: str | None = None, preset: str | None = None) -> tuple[str, str]:
    kind = kind or ("edm" if max(shape[:2]) <= PIXEL_SPACE_MAX else "dit")
    if kind not in GENERATORS:
        raise PlanError(f"unknown generator {kind!r}; valid: {', '.join(GENERATORS)}")
    if preset is None:
        on_gpu = device not in ("cpu", "auto") and not device.startswith("cpu")
        preset = ({"edm": "small", "dit": "B/2"}.get(kind, GENERATORS[kind].presets[0]) if on_gpu
                  else GENERATORS[kind].presets[0])
    if preset not in GENERATORS[kind].presets:
        raise PlanError(f"unknown generator preset {preset!r} for {kind}; valid: {', '.join(GENERATORS[kind].presets)}")
    return kind, preset


@dataclass
class StudyPlan:
    facts: DataFacts
    bases: list
    grids: list                    # raw fields, one a grid, in the order they run
    seeds: int
    generator: str
    preset: str
    runs: int
    generator_trainings: int
    estimate: dict = field(default_factory=dict)
    disk_bytes: int | None = 0
    disk_note: str = ""
    specs: list = field(default_factory=list)         # the grids validated
    grid_hours: list = field(default_factory=list)    # engine.analysis.cost.Hours of each grid

    def as_dict(self) -> dict:
        grids = [{**g, "runs": len(s.added) * s.seeds, "hours": h.as_dict()}
                 for g, s, h in zip(self.grids, self.specs, self.grid_hours)]
        return {"data": self.facts.as_dict(), "bases": self.bases, "seeds": self.seeds, "generator": self.generator,
                "generator_preset": self.preset, "grids": grids, "runs": self.runs,
                "generator_trainings": self.generator_trainings, **self.estimate,
                "disk_bytes": self.disk_bytes, "disk_note": self.disk_note}


def _amounts_text(amounts: list[int], n_base: int) -> str:
    def one(a):
        r = a / n_base
        return "0" if a == 0 else "N" if r == 1 else (f"{r:g}N" if float(r).is_integer() else str(a))
    return ",".join(one(a) for a in amounts)


def build_grids(facts: DataFacts, bases: list[int], seeds: int, classifier: str | None, generator: str, preset: str,
                data_root: str | None, size: int | None, recipe: list, generator_options: list,
                real_added: str | None = None, syn_added: str | None = None) -> list[dict]:
    grids = []
    for b in bases:
        common = {"dataset": facts.form, "classifier": classifier, "n_base": b, "seeds": seeds, "recipe": list(recipe),
                  "data_root": data_root, "size": size}
        grids.append({**common, "augmentation": REAL,
                      "added": real_added or _amounts_text(real_amounts(b, facts.n_train), b)})
        grids.append({**common, "augmentation": CLOSED, "generator": generator, "generator_preset": preset,
                      "generator_options": list(generator_options),
                      "added": syn_added or ",".join("N" if r == 1 else f"{r}N" for r in SYN_RATIOS)})
    return grids


def disk_estimate(facts: DataFacts, specs: list, checkpoint_bytes: dict) -> tuple[int | None, str]:
    """Bytes of the synthetic sets (uint8, as stored) and the generators' checkpoints (as measured in this
    store's artifacts folder; unknown until one of the kind was trained)."""
    h, w, c = facts.shape
    images = sum(max(s.added) for s in specs if s.augmentation == CLOSED)
    total = images * h * w * c
    kinds = {(s.generator, s.generator_preset) for s in specs if s.augmentation == CLOSED}
    n_gen = sum(1 for s in specs if s.augmentation == CLOSED)
    missing = [f"{k}-{p}" for k, p in kinds if (k, p) not in checkpoint_bytes]
    total += sum(checkpoint_bytes.get((s.generator, s.generator_preset), 0) for s in specs if s.augmentation == CLOSED)
    note = f"{images:,} synthetic images of {h}x{w}x{c} bytes" + (
        f" and {n_gen} generator checkpoint(s)" if not missing else
        f"; the checkpoints of {', '.join(sorted(missing))} are not counted (none trained in this store yet)")
    return total, note


def plan_study(form: str, *, data_root: str | None = None, size: int | None = None, classifier: str | None = None,
               seeds: int = SEEDS, bases: list[int] | None = None, generator: str | None = None,
               preset: str | None = None, recipe: list | None = None, generator_options: list | None = None,
               device: str = "cpu", db=None, real_added: str | None = None, syn_added: str | None = None) -> StudyPlan:
    """The whole study for a dataset: grids validated, runs and trainings counted, hours and disk estimated."""
    facts = data_facts(form, data_root, size, classifier)
    bases = bases or plan_bases(facts.n_train, facts.classes)
    kind, preset = choose_generator(facts.shape, device, generator, preset)
    grids = build_grids(facts, bases, seeds, classifier, kind, preset, data_root, size, recipe or [],
                        generator_options or [], real_added, syn_added)
    return finish_plan(facts, bases, grids, seeds, device, db)


def finish_plan(facts: DataFacts, bases: list[int], grids: list[dict], seeds: int, device: str, db) -> StudyPlan:
    """Validate every grid (nothing runs unless all of them pass) and estimate its hours and disk."""
    from engine.analysis.cost import CostModel
    from engine.spec import SpecError, validate
    try:
        specs = [validate(g) for g in grids]
    except SpecError as err:
        raise PlanError(str(err)) from None
    model = CostModel.from_store(db) if db is not None and Path(db).exists() else CostModel({}, {}, {})
    total, grid_hours, device_used = _hours(specs, model, device, facts.n_train)
    estimate = {"device": device_used, "hours": total.as_dict()}
    if device_used == "cpu":   # what the same study would take on a GPU, where the store has GPU timings
        gpu, _, _ = _hours(specs, model, "gpu", facts.n_train)
        estimate["gpu_hours"] = gpu.as_dict() if gpu.hours is not None else {"hours": None, "lo": None, "hi": None,
                                                                             "basis": ""}
    else:
        estimate["gpu_hours"] = total.as_dict()
    disk, note = disk_estimate(facts, specs, checkpoint_sizes(db))
    closed = [s for s in specs if s.augmentation == CLOSED]
    plan = StudyPlan(facts, list(bases), grids, seeds, closed[0].generator if closed else "",
                     closed[0].generator_preset if closed else "", sum(len(s.added) * s.seeds for s in specs),
                     sum(1 for s in closed if any(a > 0 for a in s.added)), estimate, disk, note)
    plan.specs, plan.grid_hours = specs, grid_hours
    return plan


def _hours(specs, model, device: str, n_train: int):
    from engine.analysis.cost import Hours, spec_estimate
    total, per_grid, used = Hours(), [], device
    for s in specs:
        est = spec_estimate(s, model, device, n_train)
        used = est["device"]
        per_grid.append(est["total"])
        total.add(_seconds(est["total"]))
        total.basis += [b for b in est["total"].basis if b not in total.basis]
        total.n_measured += est["total"].n_measured
    return total, per_grid, used


def _seconds(h) -> tuple:
    return tuple(None if v is None else v * 3600 for v in (h.hours, h.lo, h.hi))


def checkpoint_sizes(db) -> dict:
    """(kind, preset) -> the median size in bytes of the checkpoints stored under this store's artifacts."""
    if db is None or not Path(db).exists():
        return {}
    from statistics import median

    from store import timings
    rows = timings.generator_checkpoints(db)
    sizes: dict = {}
    for kind, preset, checkpoint in rows:
        folder = Path(checkpoint).parent
        if folder.is_dir():
            sizes.setdefault((kind, preset), []).append(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()))
    return {k: int(median(v)) for k, v in sizes.items()}


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""
