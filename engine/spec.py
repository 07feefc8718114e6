"""Torch-free: what a study is, the names the engine accepts, and the one validate().

`engine run`, `engine study`, `engine queue add`, the Queue page and the worker all turn a user's
request into a StudySpec through validate() here: one set of defaults, one set of rules, checked
once before anything is stored or trained. Recipe overrides and generator options are checked by
the same code that later applies them (engine.classifiers.recipes, engine.generators.presets). What needs the
loaded data (is n_base within this train split?) is check_against_data(), also here, which
engine.execution.local calls as soon as the data are loaded.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from engine.generators.presets import GENERATOR_OPTIONS, PRESET_TRAINING, config_from_options
from engine.messages import clip, clip_values
from engine.classifiers.recipes import TRADITIONAL, Recipe, default_recipe, traditional_of, with_traditional


class SpecError(ValueError):
    """A study specification that cannot run; the message names the bad value (clipped when long)."""

    def __init__(self, message: str):
        super().__init__(clip_values(message))


# The registry: every `choices=`, picker and error message reads these.
# CLI name -> (stored name, input size)
CLASSIFIERS = {
    "resnet110": ("ResNet-110", 32),
    "resnet50": ("ResNet-50", 224),
    "vit-b32": ("ViT-B/32", 224),
    "smallcnn": ("SmallCNN", 8),
}
DATASET_FORMS = ("digits", "cifar10", "medmnist:<flag>", "folder:<path>", "imagenet100", "imagenet10")
# Traditional augmentation of the classifier's training images (the paper's Tab. 6). Every dataset
# trains with random crop + horizontal flip, as the paper does, except digits: a flipped 2 or 7 is
# not a digit, so digits crops only. A run's value is stored in the runs' `traditional` column.
TRADITIONAL_AUGMENTATIONS = TRADITIONAL
DEFAULT_TRADITIONAL = {"digits": "crop"}
TRADITIONAL_FALLBACK = "crop+flip"
ENGINE_AUGMENTATIONS = ("real", "closed", "open")
# An imported (open-set) synthetic set's name: what `--generator` names and runs are stored under.
SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
GENERATOR_PRESETS = tuple(PRESET_TRAINING)   # EDM's
# DiT's options, checked here without torch: (type, low, high) or a tuple of allowed words.
# engine.generators.dit_train applies them; tests/test_dit*.py check the two agree.
DIT_OPTIONS = {
    "train_images": (int, 1, 500_000_000), "batch_size": (int, 1, 8_192), "lr": (float, 1e-8, 1.0),
    "ema_decay": (float, 0.0, 0.999999), "label_dropout": (float, 0.0, 0.99), "grad_checkpointing": ("true", "false"),
    "checkpoint_every_images": (int, 1, 500_000_000), "vae": ("tiny", "f4", "f8"),
    "vae_train_images": (int, 1, 500_000_000), "cfg_scale": (float, 0.0, 100.0), "sampling_steps": (int, 1, 1_000),
    "sampler": ("ddpm", "ddim", "dpm"), "sample_seed": (int, 0, 2**31 - 1), "seed": (int, 0, 2**31 - 1),
}
# Closed-set generator kinds: stored name prefix (rows are `<name>-<preset>`), presets (first is the
# default) and the options `--generator-option key=value` accepts.
GENERATORS = {
    "edm": {"name": "EDM", "presets": GENERATOR_PRESETS, "options": GENERATOR_OPTIONS},
    "dit": {"name": "DiT", "presets": ("tiny", "S/2", "B/2", "L/2", "XL/2"), "options": tuple(DIT_OPTIONS)},
}
RECIPE_FIELDS = tuple(f.name for f in fields(Recipe))
# Train-split sizes known without reading the data (digits' fixed split, the paper's CIFAR-10,
# MedMNIST's BloodMNIST); anything else is checked once the worker has loaded it.
KNOWN_TRAIN_SIZES = {"digits": 800, "cifar10": 50_000, "medmnist:bloodmnist": 11_959}
DEFAULT_DATA_ROOTS = {"cifar10": "data/cifar10", "medmnist": "data/medmnist/{flag}.npz", "imagenet": "data/imagenet"}
IMAGENET_SUBSETS = ("imagenet100", "imagenet10")   # engine.data.imagenet reads them (class lists: engine/data/classes/)
# How much of engine.quality runs on a synthetic set after closed-set runs: how a study executes,
# never part of its identity (engine run --quality, engine queue add --quality, the Queue page).
QUALITY_LEVELS = ("off", "cheap", "full")
DEFAULT_QUALITY = "cheap"


def check_quality(level: str) -> str:
    if level not in QUALITY_LEVELS:
        raise SpecError(f"--quality {level!r}; valid: {', '.join(QUALITY_LEVELS)}")
    return level


# Caps on what one job may ask for: beyond them a job can only fail, exhaust memory or run for weeks.
MAX_SEEDS = 10
MAX_POINTS = 50
MAX_N_BASE = 10_000_000
MAX_SYN_ADDED = 2_000_000          # synthetic images are held in memory as uint8 (6 GB at 32x32x3)
MAX_SUBSET_SEED = 2**31 - 1
MIN_SIZE, MAX_SIZE = 4, 1024
MEDMNIST_FLAG = re.compile(r"[a-z0-9]+mnist")
MEDMNIST_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def default_classifier(dataset: str) -> str:
    if dataset in ("imagenet100", "imagenet10"):
        return "resnet50"
    return "smallcnn" if dataset == "digits" else "resnet110"


def default_traditional(dataset: str) -> str:
    """The traditional augmentation a dataset trains with unless asked otherwise (CLI or stored name)."""
    return DEFAULT_TRADITIONAL.get(dataset, TRADITIONAL_FALLBACK)


@dataclass(frozen=True)
class StudySpec:
    """A study grid: points (amounts added to one base) x seeds, for one dataset and classifier."""
    dataset: str = "digits"
    classifier: str | None = None            # None: the dataset's default (default_classifier)
    n_base: int = 50
    augmentation: str = "real"
    added: tuple | str = "0,N,2N,3N"         # validated: sorted unique image counts
    seeds: int = 3
    subset_seed: int = 0
    recipe: dict = field(default_factory=dict)              # key -> value text, overrides
    generator: str = "edm"                   # closed-set generator kind (GENERATORS)
    generator_preset: str | None = None      # None: the kind's first preset
    generator_options: dict = field(default_factory=dict)   # key -> value text
    data_root: str | None = None
    size: int | None = None
    traditional: str | None = None           # None: the dataset's default (default_traditional)

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
    if dataset in ("digits", "cifar10", *IMAGENET_SUBSETS):
        return dataset
    if dataset.startswith("medmnist:"):
        flag = dataset.split(":", 1)[1]
        if not MEDMNIST_FLAG.fullmatch(flag):
            raise SpecError(f"medmnist flag {flag!r} should look like 'bloodmnist' (lower case, ends in mnist)")
        return dataset
    if dataset.startswith("folder:") and dataset.split(":", 1)[1].strip():
        return dataset
    raise SpecError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASET_FORMS)}")


def data_paths(spec: StudySpec) -> list[Path]:
    """The files or folders a study reads, as the machine that trains sees them."""
    if spec.dataset == "cifar10":
        return [Path(spec.data_root or DEFAULT_DATA_ROOTS["cifar10"])]
    if spec.dataset in IMAGENET_SUBSETS:
        return [Path(spec.data_root or DEFAULT_DATA_ROOTS["imagenet"])]
    if spec.dataset.startswith("medmnist:"):
        flag = spec.dataset.split(":", 1)[1]
        return [Path(spec.data_root or DEFAULT_DATA_ROOTS["medmnist"].format(flag=flag))]
    if spec.dataset.startswith("folder:"):
        return [Path(spec.dataset.split(":", 1)[1])]
    return []


def _medmnist_train_size(path: Path) -> int | None:
    """The train split's size from the .npz's array headers (nothing is loaded)."""
    import zipfile

    from engine.data.dataset import npz_headers
    check_regular_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            files = [n[:-4] if n.endswith(".npy") else n for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile) as err:
        raise SpecError(f"{path} is not a readable MedMNIST .npz ({type(err).__name__})") from None
    missing = [k for k in MEDMNIST_KEYS if k not in files]
    if missing:
        raise SpecError(f"{path} lacks key(s) {', '.join(missing)} (has {', '.join(files) or 'none'})")
    shape, _ = npz_headers(path, ["train_labels"], SpecError)["train_labels"]
    if not shape:
        raise SpecError(f"{path}: train_labels is a single number, not one label per image")
    return int(shape[0])


def check_regular_file(path: Path) -> None:
    """A data file named here must be a regular file: a FIFO would block its reader forever."""
    if path.exists() and not path.is_file():
        raise SpecError(f"{path} is not a regular file (a folder, FIFO, socket or device)")


def check_data_here(spec: StudySpec) -> None:
    """The data a study reads, checked as far as this machine sees them: each path exists and has its
    dataset's layout (class folders, split folders, archive keys). A queued job's paths are the workers'
    (`--remote-data` skips this when only they see them; a worker then checks them when it takes the job).
    Nothing is decoded: the loaders check the images themselves."""
    from engine.data.dataset import DatasetError, image_files
    remote = "if only the workers see it, pass --remote-data (a worker checks it when it takes the job)"
    for path in data_paths(spec):
        if not path.exists():
            raise SpecError(f"data path {clip(path)} does not exist on this machine; {remote}")
        check_regular_file(path) if not path.is_dir() else None
        if spec.dataset == "cifar10":
            if not any((path / name).is_dir() for name in ("cifar-10-batches-bin", "cifar-10-batches-py")):
                raise SpecError(f"data path {clip(path)} holds no cifar-10-batches-bin or cifar-10-batches-py folder")
        elif spec.dataset in IMAGENET_SUBSETS:
            missing = [name for name in ("train", "val") if not (path / name).is_dir()]
            if missing:
                raise SpecError(f"data path {clip(path)} has no {missing[0]}/ folder (an ImageNet folder holds train/ "
                                f"and val/)")
        elif spec.dataset.startswith("medmnist:"):
            flag = spec.dataset.split(":", 1)[1]
            if path.is_dir() and not sorted(path.glob(f"{flag}*.npz")):
                raise SpecError(f"data path {clip(path)} holds no {flag}*.npz file")
        elif spec.dataset.startswith("folder:"):
            for split in ("train", "test"):
                if not (path / split).is_dir():
                    raise SpecError(f"dataset folder {clip(path)} has no {split}/ folder (expected "
                                    f"{split}/<class>/<image>)")
            classes = sorted(p.name for p in (path / "train").iterdir() if p.is_dir())
            if len(classes) < 2:
                raise SpecError(f"dataset folder {clip(path / 'train')} has {len(classes)} class folder(s); a "
                                f"classifier needs at least 2")
            try:
                for split in ("train", "test"):
                    image_files(path / split, classes)
            except DatasetError as err:
                raise SpecError(str(err)) from None


def paths_and_size(dataset: str, data_root, size) -> tuple[str | None, int | None, int | None]:
    """(data_root, size, train size if known here) with the rules of each dataset."""
    data_root = _text(data_root, "data_root", None)
    size = None if size in (None, "") else _int(size, "size", MIN_SIZE, MAX_SIZE)
    if dataset == "digits":
        if data_root:
            raise SpecError(f"data_root {data_root!r} does not apply: digits is built in")
        if size:
            raise SpecError(f"size {size} does not apply to digits (8x8; the classifier's input size is "
                            f"the recipe option input_size)")
        return None, None, KNOWN_TRAIN_SIZES["digits"]
    if dataset == "cifar10":
        if size:
            raise SpecError(f"size {size} does not apply to cifar10 (32x32; the classifier's input size is "
                            f"the recipe option input_size)")
        if data_root and Path(data_root).exists() and not Path(data_root).is_dir():
            raise SpecError(f"data_root {data_root!r} for cifar10 must be a folder holding cifar-10-batches-*")
        return data_root, None, KNOWN_TRAIN_SIZES["cifar10"]
    if dataset in IMAGENET_SUBSETS:
        if data_root and Path(data_root).exists() and not Path(data_root).is_dir():
            raise SpecError(f"data_root {data_root!r} for {dataset} must be a folder holding train/ and val/")
        return data_root, size, None
    if dataset.startswith("folder:"):
        if data_root:
            raise SpecError(f"data_root {data_root!r} does not apply: {dataset} names its own folder")
        root = Path(dataset.split(":", 1)[1]) / "train"
        n = sum(1 for d in root.iterdir() if d.is_dir() for f in d.iterdir() if f.is_file()) \
            if root.is_dir() else None
        return None, size, n
    # medmnist
    known = KNOWN_TRAIN_SIZES.get(dataset)
    if data_root:
        path = Path(data_root)
        if path.is_dir():
            return data_root, size, known
        if path.suffix.lower() != ".npz":
            raise SpecError(f"data_root {data_root!r} for {dataset} must be a MedMNIST .npz file or its folder")
        if path.exists():
            return data_root, size, _medmnist_train_size(path)
    return data_root, size, known


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
    classifier = _text(get("classifier"), "classifier", default_classifier(dataset))
    if classifier not in CLASSIFIERS:
        raise SpecError(f"unknown classifier {classifier!r}; valid: {', '.join(CLASSIFIERS)}")
    augmentation = _text(get("augmentation"), "augmentation", DEFAULTS.augmentation)
    if augmentation not in ENGINE_AUGMENTATIONS:
        raise SpecError(f"augmentation {augmentation!r}: the engine runs {', '.join(ENGINE_AUGMENTATIONS)}")
    if augmentation == "open":
        generator, preset = _open_set_name(get("generator")), None
        if get("generator_preset") not in (None, ""):
            raise SpecError(f"generator preset {get('generator_preset')!r} applies only to closed-set runs")
    else:
        generator = _text(get("generator"), "generator", DEFAULTS.generator)
        if generator not in GENERATORS:
            raise SpecError(f"unknown generator {generator!r}; valid: {', '.join(GENERATORS)}")
        presets = GENERATORS[generator]["presets"]
        preset = _text(get("generator_preset"), "generator_preset", presets[0])
        if preset not in presets:
            raise SpecError(f"unknown generator preset {preset!r} for {generator}; valid: {', '.join(presets)}")
    n_base = _int(get("n_base"), "n_base", 1, MAX_N_BASE)
    data_root, size, n_train = paths_and_size(dataset, get("data_root"), get("size"))
    if dataset in IMAGENET_SUBSETS and size is None:
        size = CLASSIFIERS[classifier][1]   # decode once, at the classifier's input size
    if n_train is not None and n_base > n_train:
        raise SpecError(f"n_base {n_base:,} is larger than {dataset}'s train split of {n_train:,} images")

    added_raw = get("added")
    if isinstance(added_raw, (list, tuple)):
        added = sorted({_int(a, "added", 0, MAX_N_BASE * 100) for a in added_raw})
        if not added:
            raise SpecError("added is empty: give amounts like 0,N,2N,3N")
    elif isinstance(added_raw, str):
        added = parse_added(added_raw, n_base)
    else:
        raise SpecError(f"added = {added_raw!r} should be amounts like 0,N,2N,3N")
    if len(added) > MAX_POINTS:
        raise SpecError(f"added has {len(added)} amounts; at most {MAX_POINTS} per job")
    if augmentation == "real" and n_train is not None and max(added) > n_train - n_base:
        raise SpecError(f"added {max(added):,} real images, but only {n_train - n_base:,} lie outside a base of "
                        f"{n_base:,} in {dataset}'s train split")
    if augmentation != "real" and max(added) > MAX_SYN_ADDED:
        raise SpecError(f"added {max(added):,} synthetic images; at most {MAX_SYN_ADDED:,} per job")
    seeds = _int(get("seeds"), "seeds", 1, MAX_SEEDS)
    subset_seed = _int(get("subset_seed"), "subset_seed", 0, MAX_SUBSET_SEED)

    recipe = _options(get("recipe"), "recipe option")
    bad = [k for k in recipe if k not in RECIPE_FIELDS]
    if bad:
        raise SpecError(f"unknown recipe option {bad[0]!r}; valid: {', '.join(RECIPE_FIELDS)}")
    traditional = _traditional(get("traditional"), dataset, classifier, n_base, n_train, recipe)
    generator_options = _options(get("generator_options"), "generator option")
    if generator_options and augmentation != "closed":
        raise SpecError(f"generator option {next(iter(generator_options))!r} applies only to closed-set runs")
    if augmentation == "open":
        pass  # an imported set has no options: its images are fixed
    elif generator == "edm":
        try:
            config_from_options(preset, generator_options)
        except ValueError as err:
            raise SpecError(str(err)) from None
    else:
        _check_dit_options(generator_options)
    return StudySpec(dataset=dataset, classifier=classifier, n_base=n_base, augmentation=augmentation,
                     added=tuple(added), seeds=seeds, subset_seed=subset_seed, recipe=recipe,
                     generator=generator, generator_preset=preset, generator_options=generator_options,
                     data_root=data_root, size=size, traditional=traditional)


def _traditional(raw, dataset: str, classifier: str, n_base: int, n_train, recipe: dict) -> str:
    """The traditional augmentation, checked with the same code that applies it and the recipe
    overrides when the run starts; recipe options flip/crop_pad may not contradict it."""
    traditional = _text(raw, "traditional", None)
    if traditional is not None and traditional not in TRADITIONAL_AUGMENTATIONS:
        raise SpecError(f"traditional augmentation {traditional!r}; valid: {', '.join(TRADITIONAL_AUGMENTATIONS)}")
    try:
        base = default_recipe(classifier, dataset, n_base, n_base, max(n_train or n_base, n_base))
        final = with_traditional(base, traditional or default_traditional(dataset)).with_overrides(recipe)
    except ValueError as err:
        raise SpecError(str(err)) from None
    applied = traditional_of(final)
    if traditional is not None and applied != traditional:
        raise SpecError(f"recipe option(s) {', '.join(k for k in recipe if k in ('flip', 'crop_pad'))} make the "
                        f"traditional augmentation {applied!r}, not the {traditional!r} asked for: drop them")
    return applied


def _open_set_name(raw) -> str:
    name = _text(raw, "generator", None)
    if not name or name.lower() in GENERATORS:
        raise SpecError("augmentation 'open' needs --generator NAME: a synthetic set imported with "
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


def medmnist_stored_name(flag: str) -> str:
    """bloodmnist -> BloodMNIST: the name a MedMNIST set's runs are stored under."""
    return flag.lower()[:-5].capitalize() + "MNIST"


def stored_name(dataset: str) -> str | None:
    """The name a dataset's runs are stored under, from its CLI name without loading it (None
    where only loading it can tell)."""
    if dataset == "digits":
        return "digits"
    if dataset == "cifar10":
        return "CIFAR-10"
    if dataset.startswith("medmnist:"):
        flag = dataset.split(":", 1)[1]
        return medmnist_stored_name(flag) if MEDMNIST_FLAG.fullmatch(flag.lower()) else None
    if dataset.startswith("folder:"):
        return f"folder:{Path(dataset.split(':', 1)[1]).resolve().name}"
    return None


def check_open_set(spec: StudySpec, db=None, row: dict | None = None) -> dict | None:
    """An open-set spec's imported set, from the store: it exists, is for this dataset, and holds
    enough images of every class for the largest amount. Called by engine run, engine queue add,
    the Queue page and the worker (through engine.execution.local.build_spec). `row`: the set's store row as
    read elsewhere (a cluster node has no store; the dispatcher reads it and ships it)."""
    if spec.augmentation != "open":
        return None
    if row is None:
        from store.synthetic import open_set
        row = open_set(spec.generator, db)
    if row is None:
        raise SpecError(f"no imported synthetic set named {spec.generator!r} in the store "
                        f"(`engine synthetic list` shows them; `engine synthetic import` adds one)")
    expected = stored_name(spec.dataset)
    if expected is not None and row["dataset_name"] != expected:
        raise SpecError(f"synthetic set {spec.generator!r} was imported for {row['dataset_name']}, not {expected}")
    check_open_amount(spec.generator, row["class_counts"], max(spec.added))
    return row


def _check_dit_options(options: dict) -> None:
    for key, text in options.items():
        rule = DIT_OPTIONS.get(key)
        if rule is None:
            raise SpecError(f"unknown dit generator option {key!r}; valid: {', '.join(DIT_OPTIONS)}")
        if isinstance(rule[0], str):
            if text.lower() not in rule:
                raise SpecError(f"generator option {key}={text!r} must be one of {', '.join(rule)}")
            continue
        kind, low, high = rule
        try:
            value = kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
        except (TypeError, ValueError, OverflowError):
            raise SpecError(f"generator option {key}={text!r} is not a valid {kind.__name__}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise SpecError(f"generator option {key}={value!r} must be between {low:g} and {high:g}")


def check_against_data(spec: StudySpec, dataset_name: str, n_train: int) -> None:
    """What only the loaded data can tell: the base and the real additions fit in the train split."""
    if spec.n_base > n_train:
        raise SpecError(f"n_base {spec.n_base:,} must be between 1 and {dataset_name}'s {n_train:,} training images")
    if spec.augmentation == "real" and max(spec.added) > n_train - spec.n_base:
        raise SpecError(f"added {max(spec.added):,} real images, but only {n_train - spec.n_base:,} lie outside a "
                        f"base of {spec.n_base:,} in {dataset_name}'s train split")


def preview(spec: StudySpec) -> dict:
    """What a validated spec costs: classifier trainings and (at most) generator trainings."""
    n_points = len(spec.added)
    syn_points = sum(1 for a in spec.added if a > 0) if spec.augmentation == "closed" else 0  # open: imported
    return {"classifier_trainings": n_points * spec.seeds, "generator_trainings": 1 if syn_points else 0,
            "points": n_points, "seeds": spec.seeds}


def summary(spec: dict | StudySpec | str, quality: str | None = None) -> str:
    """One line for a job's spec (and its quality level when not the default), the same in
    `engine queue list` and on the Queue page."""
    s = spec.to_dict() if isinstance(spec, StudySpec) else json.loads(spec) if isinstance(spec, str) else spec
    added = ",".join(map(str, s["added"])) if isinstance(s["added"], (list, tuple)) else s["added"]
    aug = s["augmentation"]
    if aug == "closed":
        kind = s.get("generator") or "edm"
        aug += f" ({GENERATORS.get(kind, {'name': kind})['name']}-{s.get('generator_preset') or ''})"
    elif aug == "open":
        aug += f" ({s.get('generator')})"
    trad = s.get("traditional")
    extra = f" · {trad}" if trad and trad != default_traditional(s["dataset"]) else ""
    extra += f" · quality {quality}" if isinstance(quality, str) and quality != DEFAULT_QUALITY else ""
    return f"{s['dataset']} · {s['classifier']} · n_base {s['n_base']} · {aug} +{added} × {s['seeds']} seeds{extra}"


__all__ = ["SpecError", "StudySpec", "DEFAULTS", "FIELDS", "CLASSIFIERS", "DATASET_FORMS", "ENGINE_AUGMENTATIONS",
           "GENERATOR_PRESETS", "GENERATOR_OPTIONS", "GENERATORS", "RECIPE_FIELDS", "validate", "check_against_data", "preview",
           "summary", "parse_added", "data_paths", "default_classifier", "check_open_set", "check_open_amount",
           "max_balanced", "SET_NAME", "default_traditional", "TRADITIONAL_AUGMENTATIONS"]
