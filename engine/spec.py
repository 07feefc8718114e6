"""Torch-free: what a study is, and the one validate().

`engine run`, `engine study`, `engine queue add`, the Queue page and the worker all turn a user's request
into a StudySpec through validate() here: one set of defaults, one set of rules, checked once before
anything is stored or trained. The names it accepts are the catalog's (engine.catalog); recipe overrides
and generator options are checked by the same code that later applies them. What needs the loaded data
(is n_base within this train split?) is check_against_data(), which engine.execution.local calls as soon
as the data are loaded.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields

from engine.catalog import classifiers as classifier_catalog
from engine.catalog import defaults as catalog_recipes
from engine.catalog import datasets as dataset_catalog
from engine.catalog.generators import DEFAULT_GENERATOR, GENERATORS
from engine.catalog.vocab import (AUGMENTATIONS, BASES, CLOSED, DEFAULT_QUALITY, OPEN, QUALITY_LEVELS, REAL,
                                  REAL_BASE, SUPERVISED, SYNTHETIC, SYNTHETIC_BASE, TASKS, TRADITIONAL, ZERO_SHOT)
from engine.catalog.recipes import TRADITIONAL_FIELDS, Recipe, traditional_of
from engine.data import paths as data_paths_module
from engine.messages import InputError


class SpecError(InputError):
    """A study specification that cannot run; the message names the bad value (clipped when long)."""


# An imported (open-set) synthetic set's name: what `--generator` names and runs are stored under.
SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
RECIPE_FIELDS = tuple(f.name for f in fields(Recipe))

# Caps on what one job may ask for: beyond them a job can only fail, exhaust memory or run for weeks.
MAX_SEEDS = 10
MAX_POINTS = 50
MAX_N_BASE = 10_000_000
MAX_SYN_ADDED = 2_000_000          # synthetic images are held in memory as uint8 (6 GB at 32x32x3)
MAX_SUBSET_SEED = 2**31 - 1


def check_quality(level: str) -> str:
    """How much of engine.quality runs on a synthetic set after synthetic runs: how a study executes,
    never part of its identity."""
    if level not in QUALITY_LEVELS:
        raise SpecError(f"--quality {level!r}; valid: {', '.join(QUALITY_LEVELS)}")
    return level


@dataclass(frozen=True)
class StudySpec:
    """A study grid: points (amounts added to one base) x seeds, for one dataset and classifier."""
    dataset: str = dataset_catalog.DEFAULT_DATASET
    classifier: str | None = None            # None: the dataset's default (its catalog entry)
    n_base: int = 50
    augmentation: str = REAL
    added: tuple | str = "0,N,2N,3N"         # validated: sorted unique image counts
    seeds: int = 3
    subset_seed: int = 0
    recipe: dict = field(default_factory=dict)              # key -> value text, overrides
    generator: str = DEFAULT_GENERATOR       # closed-set generator kind, or an open set's name
    generator_preset: str | None = None      # None: the kind's first preset
    generator_options: dict = field(default_factory=dict)   # key -> value text
    data_root: str | None = None
    size: int | None = None
    traditional: str | None = None           # None: the dataset's default
    base: str = REAL_BASE                    # synthetic: the base is n_base images of open set `generator`
    task: str = SUPERVISED                   # zero-shot: appendix G.2's protocol
    text_encoder: str | None = None          # zero-shot: a local BERT folder, as the training machine sees it

    def to_dict(self) -> dict:
        out = asdict(self)
        out["added"] = list(self.added) if isinstance(self.added, tuple) else self.added
        return out


FIELDS = tuple(f.name for f in fields(StudySpec))
DEFAULTS = StudySpec()


def parse_added(text: str, n_base: int) -> list[int]:
    """'0,20,40' or '0,N,2N,3N' (N = n_base) into sorted unique image counts."""
    values = []
    for token in str(text).replace(" ", "").split(","):
        if not token:
            continue
        m = re.fullmatch(r"(\d+(?:\.\d+)?)?([Nn])|(\d+)", token)
        if not m:
            raise SpecError(f"--added value {token!r} is not a whole number or a multiple of N like 2N")
        value = int(m.group(3)) if m.group(3) else round(float(m.group(1) or 1) * n_base)
        values.append(value)
    if not values:
        raise SpecError("--added is empty: give amounts like 0,N,2N,3N")
    return sorted(set(values))


def _int(raw, name: str, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise SpecError(f"{name} = {raw!r} is not a whole number")
    if isinstance(raw, float):
        if not (math.isfinite(raw) and raw.is_integer()):
            raise SpecError(f"{name} = {raw!r} is not a whole number")
        raw = int(raw)
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        raise SpecError(f"{name} = {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SpecError(f"{name} = {value:,} must be between {low:,} and {high:,}")
    return value


def _text(raw, name: str, default: str | None) -> str | None:
    if raw is None or (raw == "" and name != "dataset"):
        return default
    if not isinstance(raw, str):
        raise SpecError(f"{name} = {raw!r} must be text")
    return raw.strip()


def _options(raw, name: str) -> dict:
    """key=value text ('a=1, b=2', lines, or a mapping) into {key: value text}."""
    if raw in (None, "", {}, []):
        return {}
    if isinstance(raw, (list, tuple)):
        raw = ",".join(map(str, raw))
    if isinstance(raw, str):
        items = [p for p in raw.replace("\n", ",").split(",") if p.strip()]
        raw = {}
        for item in items:
            if "=" not in item:
                raise SpecError(f"{name} {item.strip()!r} should be key=value")
            key, value = item.split("=", 1)
            if key.strip() in raw:
                raise SpecError(f"{name} {key.strip()!r} is given twice")
            raw[key.strip()] = value.strip()
    if not isinstance(raw, dict):
        raise SpecError(f"{name} must be key=value pairs")
    out = {}
    for key, value in raw.items():
        if isinstance(value, (dict, list)) or value is None:
            raise SpecError(f"{name} {key}={value!r} must be a single value")
        out[str(key)] = str(value)
    return out


def check_dataset(raw) -> str:
    """A dataset's CLI name, checked for its form (not yet for its files)."""
    dataset = _text(raw, "dataset", DEFAULTS.dataset) if raw is not None else DEFAULTS.dataset
    try:
        dataset_catalog.split(dataset)
    except InputError as err:
        raise SpecError(str(err)) from None
    return dataset


def paths_and_size(dataset: str, data_root, size) -> tuple[str | None, int | None, int | None]:
    """(data_root, size, train size if known here): the dataset's rules (engine.data.paths), as SpecError."""
    try:
        return data_paths_module.paths_and_size(dataset, data_root, size)
    except InputError as err:
        raise SpecError(str(err)) from None


def data_paths(spec: StudySpec):
    """The files or folders a study reads, as the machine that trains sees them."""
    return data_paths_module.data_paths(spec.dataset, spec.data_root)


def check_data_here(spec: StudySpec) -> None:
    """The study's data paths as far as this machine sees them (engine.data.paths.check_data_here)."""
    try:
        data_paths_module.check_data_here(spec.dataset, spec.data_root)
    except InputError as err:
        raise SpecError(str(err)) from None


def validate(raw: dict | str | StudySpec) -> StudySpec:
    """A complete, normalised StudySpec, or SpecError naming the first bad value."""
    if isinstance(raw, StudySpec):
        raw = raw.to_dict()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as err:
            raise SpecError(f"spec is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise SpecError("spec must be a JSON object")
    unknown = [k for k in raw if k not in FIELDS]
    if unknown:
        raise SpecError(f"unknown spec field {unknown[0]!r}; valid: {', '.join(FIELDS)}")
    get = lambda name: raw.get(name, getattr(DEFAULTS, name))  # noqa: E731
    dataset = check_dataset(get("dataset"))
    classifier = _text(get("classifier"), "classifier", dataset_catalog.default_classifier(dataset))
    if classifier not in classifier_catalog.CLASSIFIERS:
        raise SpecError(f"unknown classifier {classifier!r}; valid: {', '.join(classifier_catalog.CLASSIFIERS)}")
    augmentation = _text(get("augmentation"), "augmentation", DEFAULTS.augmentation)
    if augmentation not in AUGMENTATIONS:
        raise SpecError(f"augmentation {augmentation!r}: the engine runs {', '.join(AUGMENTATIONS)}")
    base, task, text_encoder = _protocol(get("base"), get("task"), get("text_encoder"), augmentation)
    if base == SYNTHETIC_BASE:
        generator, preset = _base_set_name(get("generator"), get("generator_preset")), None
    else:
        generator, preset = _generator(augmentation, get("generator"), get("generator_preset"))
    n_base = _int(get("n_base"), "n_base", 1, MAX_N_BASE)
    data_root, size, n_train = paths_and_size(dataset, get("data_root"), get("size"))
    if size is None and dataset_catalog.split(dataset)[0].size_from_classifier:
        size = classifier_catalog.classifier(classifier).input_size
    if n_train is not None and n_base > n_train and base == REAL_BASE:
        raise SpecError(f"n_base {n_base:,} is larger than {dataset}'s train split of {n_train:,} images")
    added = _added(get("added"), n_base)
    if task == ZERO_SHOT and augmentation == REAL and max(added) > 0:
        raise SpecError(f"--task {ZERO_SHOT} keeps the real images fixed (appendix G.2): add synthetic images of "
                        f"the unseen classes with --augmentation {OPEN} --generator NAME, or give --added 0")
    if base == SYNTHETIC_BASE and n_train is not None and max(added) > n_train:
        raise SpecError(f"added {max(added):,} real images, but {dataset}'s train split holds {n_train:,}")
    if augmentation == REAL and base == REAL_BASE and n_train is not None and max(added) > n_train - n_base:
        raise SpecError(f"added {max(added):,} real images, but only {n_train - n_base:,} lie outside a base of "
                        f"{n_base:,} in {dataset}'s train split")
    if augmentation in SYNTHETIC and max(added) > MAX_SYN_ADDED:
        raise SpecError(f"added {max(added):,} synthetic images; at most {MAX_SYN_ADDED:,} per job")
    seeds = _int(get("seeds"), "seeds", 1, MAX_SEEDS)
    subset_seed = _int(get("subset_seed"), "subset_seed", 0, MAX_SUBSET_SEED)
    recipe = _options(get("recipe"), "recipe option")
    bad = [k for k in recipe if k not in RECIPE_FIELDS]
    if bad:
        raise SpecError(f"unknown recipe option {bad[0]!r}; valid: {', '.join(RECIPE_FIELDS)}")
    traditional = _traditional(get("traditional"), dataset, classifier, n_base, n_train, recipe)
    generator_options = _options(get("generator_options"), "generator option")
    if generator_options and augmentation != CLOSED:
        raise SpecError(f"generator option {next(iter(generator_options))!r} applies only to closed-set runs")
    if augmentation == CLOSED:  # an imported set has no options: its images are fixed
        try:
            GENERATORS[generator].check(preset, generator_options)
        except ValueError as err:
            raise SpecError(str(err)) from None
    return StudySpec(dataset=dataset, classifier=classifier, n_base=n_base, augmentation=augmentation,
                     added=tuple(added), seeds=seeds, subset_seed=subset_seed, recipe=recipe,
                     generator=generator, generator_preset=preset, generator_options=generator_options,
                     data_root=data_root, size=size, traditional=traditional, base=base, task=task,
                     text_encoder=text_encoder)


def _protocol(raw_base, raw_task, raw_encoder, augmentation: str) -> tuple[str, str, str | None]:
    """(base, task, text encoder folder) of a spec: appendix G's protocols and what they rule out."""
    base = _text(raw_base, "base", REAL_BASE)
    if base not in BASES:
        raise SpecError(f"--base {base!r}; valid: {', '.join(BASES)}")
    task = _text(raw_task, "task", SUPERVISED)
    if task not in TASKS:
        raise SpecError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    encoder = _text(raw_encoder, "text_encoder", None) or None
    if base == SYNTHETIC_BASE:
        if task != SUPERVISED:
            raise SpecError(f"--base {SYNTHETIC_BASE} is appendix G.1's supervised protocol: it does not combine "
                            f"with --task {task}")
        if augmentation != REAL:
            raise SpecError(f"with --base {SYNTHETIC_BASE} the images added are real ones: drop --augmentation "
                            f"{augmentation}")
    if task == ZERO_SHOT:
        if encoder is None:
            raise SpecError(f"--task {ZERO_SHOT} needs --text-encoder DIR: a local BERT folder (never downloaded)")
        if augmentation == CLOSED:
            raise SpecError(f"--task {ZERO_SHOT} sees its unseen classes only through an open-set set: a closed-set "
                            f"generator never saw them (--augmentation {OPEN} --generator NAME)")
    elif encoder is not None:
        raise SpecError(f"--text-encoder {encoder!r} applies only to --task {ZERO_SHOT}")
    return base, task, encoder


def _base_set_name(raw_generator, raw_preset) -> str:
    name = _text(raw_generator, "generator", None)
    if not name or name.lower() in GENERATORS:
        raise SpecError(f"--base {SYNTHETIC_BASE} needs --generator NAME: the stored synthetic set whose images form "
                        f"the base (`engine synthetic list` shows them)")
    if raw_preset not in (None, ""):
        raise SpecError(f"generator preset {raw_preset!r} applies only to closed-set runs")
    return _open_set_name(name)


def zero_shot_split(classes: list) -> tuple[list, list]:
    """(seen, unseen) classes of appendix G.2: the first half of the class list is seen as real images,
    the second half is where the test images come from (ImageNet-10: 5 and 5; ImageNet-100: 50 and 50)."""
    half = len(classes) // 2
    return list(classes[:half]), list(classes[half:])


def _generator(augmentation: str, raw_generator, raw_preset) -> tuple[str, str | None]:
    """(generator kind or open set name, preset) of a spec."""
    if augmentation == OPEN:
        if raw_preset not in (None, ""):
            raise SpecError(f"generator preset {raw_preset!r} applies only to closed-set runs")
        return _open_set_name(raw_generator), None
    generator = _text(raw_generator, "generator", DEFAULTS.generator)
    if generator not in GENERATORS:
        raise SpecError(f"unknown generator {generator!r}; valid: {', '.join(GENERATORS)}")
    presets = GENERATORS[generator].presets
    preset = _text(raw_preset, "generator_preset", presets[0])
    if preset not in presets:
        raise SpecError(f"unknown generator preset {preset!r} for {generator}; valid: {', '.join(presets)}")
    return generator, preset


def _added(raw, n_base: int) -> list[int]:
    if isinstance(raw, (list, tuple)):
        added = sorted({_int(a, "added", 0, MAX_N_BASE * 100) for a in raw})
        if not added:
            raise SpecError("added is empty: give amounts like 0,N,2N,3N")
    elif isinstance(raw, str):
        added = parse_added(raw, n_base)
    else:
        raise SpecError(f"added = {raw!r} should be amounts like 0,N,2N,3N")
    if len(added) > MAX_POINTS:
        raise SpecError(f"added has {len(added)} amounts; at most {MAX_POINTS} per job")
    return added


def _traditional(raw, dataset: str, classifier: str, n_base: int, n_train, recipe: dict) -> str:
    """The traditional augmentation, checked with the same code that applies it and the recipe
    overrides when the run starts; recipe options flip/crop_pad may not contradict it."""
    traditional = _text(raw, "traditional", None)
    if traditional is not None and traditional not in TRADITIONAL:
        raise SpecError(f"traditional augmentation {traditional!r}; valid: {', '.join(TRADITIONAL)}")
    try:
        final = catalog_recipes.default_recipe(classifier, dataset, n_base, n_base, max(n_train or n_base, n_base),
                                                  traditional).with_overrides(recipe)
    except ValueError as err:
        raise SpecError(str(err)) from None
    applied = traditional_of(final)
    if traditional is not None and applied != traditional:
        raise SpecError(f"recipe option(s) {', '.join(k for k in recipe if k in TRADITIONAL_FIELDS)} make the "
                        f"traditional augmentation {applied!r}, not the {traditional!r} asked for: drop them")
    return applied


def _open_set_name(raw) -> str:
    name = _text(raw, "generator", None)
    if not name or name.lower() in GENERATORS:
        raise SpecError(f"augmentation {OPEN!r} needs --generator NAME: a synthetic set imported with "
                        "`engine synthetic import NAME ...` (`engine synthetic list` shows them)")
    if not SET_NAME.fullmatch(name):
        raise SpecError(f"synthetic set name {name!r} must be 1-64 letters, digits, '.', '_', '+' or '-', "
                        f"starting with a letter or digit")
    return name


def max_balanced(counts: list[int]) -> int:
    """The most images a class-balanced draw can take from a set holding counts[c] of class c:
    draw i is of class i % K, so class c supplies image counts[c] * K + c no more."""
    k = len(counts)
    return min(n * k + c for c, n in enumerate(counts)) if k else 0


def check_open_amount(name: str, class_counts: dict, n: int) -> None:
    """Refuse, before anything trains, to draw more images of a class than an imported set holds."""
    counts = list(class_counts.values())
    if n <= max_balanced(counts):
        return
    k = len(counts)
    for c, (cls, have) in enumerate(class_counts.items()):
        need = n // k + (1 if c < n % k else 0)
        if need > have:
            raise SpecError(f"adding {n:,} images from synthetic set {name!r} takes {need:,} of class {cls!r}, "
                            f"which it holds only {have:,} of (at most {max_balanced(counts):,} class-balanced)")


def check_open_set(spec: StudySpec, db=None, row: dict | None = None) -> dict | None:
    """An open-set spec's imported set, from the store: it exists, is for this dataset, and holds
    enough images of every class for the largest amount. Called by engine run, engine queue add,
    the Queue page and the worker (through engine.execution.local.build_spec). `row`: the set's store
    row as read elsewhere (a cluster node has no store; the dispatcher reads it and ships it)."""
    if spec.augmentation != OPEN and spec.base != SYNTHETIC_BASE:
        return None
    if row is None:
        from store.synthetic import open_set
        row = open_set(spec.generator, db)
    if row is None:
        raise SpecError(f"no imported synthetic set named {spec.generator!r} in the store "
                        f"(`engine synthetic list` shows them; `engine synthetic import` adds one)")
    expected = dataset_catalog.stored_name(spec.dataset)
    if expected is not None and row["dataset_name"] != expected:
        raise SpecError(f"synthetic set {spec.generator!r} was imported for {row['dataset_name']}, not {expected}")
    counts = row["class_counts"]
    if spec.base == SYNTHETIC_BASE:
        check_open_amount(spec.generator, counts, spec.n_base)
    elif spec.task == ZERO_SHOT:  # only the unseen classes' images are drawn
        check_open_amount(spec.generator, {c: counts[c] for c in zero_shot_split(list(counts))[1]}, max(spec.added))
    else:
        check_open_amount(spec.generator, counts, max(spec.added))
    return row


def check_against_data(spec: StudySpec, dataset_name: str, n_train: int) -> None:
    """What only the loaded data can tell: the base and the real additions fit in the train split."""
    if spec.base == SYNTHETIC_BASE:  # the base is synthetic: real images are only added, from the whole split
        if max(spec.added) > n_train:
            raise SpecError(f"added {max(spec.added):,} real images, but {dataset_name}'s train split holds {n_train:,}")
        return
    if spec.n_base > n_train:
        raise SpecError(f"n_base {spec.n_base:,} must be between 1 and {dataset_name}'s {n_train:,} training images")
    if spec.augmentation == REAL and max(spec.added) > n_train - spec.n_base:
        raise SpecError(f"added {max(spec.added):,} real images, but only {n_train - spec.n_base:,} lie outside a "
                        f"base of {spec.n_base:,} in {dataset_name}'s train split")


def preview(spec: StudySpec) -> dict:
    """What a validated spec costs: classifier trainings and (at most) generator trainings."""
    n_points = len(spec.added)
    syn_points = sum(1 for a in spec.added if a > 0) if spec.augmentation == CLOSED else 0  # open: imported
    return {"classifier_trainings": n_points * spec.seeds, "generator_trainings": 1 if syn_points else 0,
            "points": n_points, "seeds": spec.seeds}


def summary(spec: dict | StudySpec | str, quality: str | None = None) -> str:
    """One line for a job's spec (and its quality level when not the default), the same in
    `engine queue list` and on the Queue page."""
    s = spec.to_dict() if isinstance(spec, StudySpec) else json.loads(spec) if isinstance(spec, str) else spec
    added = ",".join(map(str, s["added"])) if isinstance(s["added"], (list, tuple)) else s["added"]
    aug = s["augmentation"]
    if aug == CLOSED:
        key, preset = s.get("generator") or DEFAULT_GENERATOR, s.get("generator_preset") or ""
        aug += f" ({GENERATORS[key].stored_name(preset) if key in GENERATORS else f'{key}-{preset}'})"
    elif aug == OPEN:
        aug += f" ({s.get('generator')})"
    trad = s.get("traditional")
    try:
        usual = dataset_catalog.default_traditional(s["dataset"])
    except InputError:
        usual = None
    extra = f" · {trad}" if trad and trad != usual else ""
    extra += f" · quality {quality}" if isinstance(quality, str) and quality != DEFAULT_QUALITY else ""
    if s.get("base", REAL_BASE) == SYNTHETIC_BASE:
        extra += f" · {SYNTHETIC_BASE} base ({s.get('generator')})"
    if s.get("task", SUPERVISED) != SUPERVISED:
        extra += f" · {s['task']}"
    return f"{s['dataset']} · {s['classifier']} · n_base {s['n_base']} · {aug} +{added} × {s['seeds']} seeds{extra}"
