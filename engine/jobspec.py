"""Job specs: what the queue accepts, checked without torch and without loading a dataset.

The dashboard and `engine queue add` validate here before anything is written; the worker runs
the same spec through engine.run.run_grid, which checks it again against the loaded data.
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.catalog import CLASSIFIERS, DATASET_FORMS, ENGINE_AUGMENTATIONS, GENERATORS, RECIPE_FIELDS
from engine.spec import SpecError, parse_added

MAX_SEEDS = 10
MAX_POINTS = 50
FIELDS = ("dataset", "classifier", "augmentation", "generator", "generator_preset", "n_base", "added", "seeds", "subset_seed",
          "recipe", "generator_options", "data_root", "size")
# Train-split sizes known without reading the data (the paper's CIFAR-10, MedMNIST's BloodMNIST).
KNOWN_TRAIN_SIZES = {"digits": 800, "cifar10": 50_000, "medmnist:bloodmnist": 11_959}


def train_size(dataset: str, data_root: str | None) -> int | None:
    """The train split's size if it can be known cheaply here; None when only the worker can tell."""
    if dataset.startswith("medmnist:") and data_root and Path(data_root).is_file():
        import numpy as np
        try:
            with np.load(data_root, allow_pickle=False) as npz:
                if "train_labels" in npz.files:
                    return int(npz["train_labels"].shape[0])
        except (OSError, ValueError):
            return None
    if dataset.startswith("folder:"):
        root = Path(dataset.split(":", 1)[1]) / "train"
        if root.is_dir():
            return sum(1 for d in root.iterdir() if d.is_dir() for f in d.iterdir() if f.is_file())
        return None
    return KNOWN_TRAIN_SIZES.get(dataset)


def _int(raw, name: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(raw, bool):
        raise SpecError(f"{name} = {raw!r} is not a whole number")
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        raise SpecError(f"{name} = {raw!r} is not a whole number") from None
    if low is not None and value < low:
        raise SpecError(f"{name} = {value} must be at least {low}")
    if high is not None and value > high:
        raise SpecError(f"{name} = {value} must be at most {high}")
    return value


def _options(raw, name: str, valid) -> dict:
    if raw in (None, "", {}):
        return {}
    if isinstance(raw, str):
        items = [p for p in raw.replace("\n", ",").split(",") if p.strip()]
        raw = {}
        for item in items:
            if "=" not in item:
                raise SpecError(f"{name} {item.strip()!r} should be key=value")
            k, v = item.split("=", 1)
            raw[k.strip()] = v.strip()
    if not isinstance(raw, dict):
        raise SpecError(f"{name} must be key=value pairs")
    bad = [k for k in raw if k not in valid]
    if bad:
        raise SpecError(f"unknown {name} key {bad[0]!r}; valid: {', '.join(valid)}")
    return {str(k): str(v) for k, v in raw.items()}


def validate(raw: dict | str) -> dict:
    """A normalised spec, or SpecError naming the first bad value."""
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
    dataset = str(raw.get("dataset") or "digits")
    if not (dataset in ("digits", "cifar10") or (dataset.startswith("medmnist:") and len(dataset) > 9)
            or (dataset.startswith("folder:") and len(dataset) > 7)):
        raise SpecError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASET_FORMS)}")
    classifier = str(raw.get("classifier") or ("smallcnn" if dataset == "digits" else "resnet110"))
    if classifier not in CLASSIFIERS:
        raise SpecError(f"unknown classifier {classifier!r}; valid: {', '.join(CLASSIFIERS)}")
    augmentation = str(raw.get("augmentation") or "real")
    if augmentation not in ENGINE_AUGMENTATIONS:
        raise SpecError(f"augmentation {augmentation!r}; valid: {', '.join(ENGINE_AUGMENTATIONS)}")
    generator = str(raw.get("generator") or "edm")
    if generator not in GENERATORS:
        raise SpecError(f"unknown generator {generator!r}; valid: {', '.join(GENERATORS)}")
    presets = GENERATORS[generator]["presets"]
    preset = str(raw.get("generator_preset") or presets[0])
    if preset not in presets:
        raise SpecError(f"unknown generator preset {preset!r} for {generator}; valid: {', '.join(presets)}")
    if "n_base" not in raw:
        raise SpecError("n_base is missing")
    n_base = _int(raw["n_base"], "n_base", low=1)
    data_root = raw.get("data_root") or None
    size = _int(raw["size"], "size", low=2) if raw.get("size") not in (None, "") else None
    n_train = train_size(dataset, data_root)
    if n_train is not None and n_base > n_train:
        raise SpecError(f"n_base {n_base} is larger than {dataset}'s train split of {n_train} images")
    added_raw = raw.get("added", "0,N,2N,3N")
    if isinstance(added_raw, (list, tuple)):
        added = sorted({_int(a, "added", low=0) for a in added_raw})
        if not added:
            raise SpecError("added is empty: give amounts like 0,N,2N,3N")
    else:
        added = parse_added(str(added_raw), n_base)
        if min(added) < 0:
            raise SpecError(f"added has a negative amount {min(added)}")
    if len(added) > MAX_POINTS:
        raise SpecError(f"added has {len(added)} amounts; at most {MAX_POINTS} per job")
    if augmentation == "real" and n_train is not None and max(added) > n_train - n_base:
        raise SpecError(f"added {max(added)} real images, but only {n_train - n_base} lie outside a base of "
                        f"{n_base} in {dataset}'s train split")
    seeds = _int(raw.get("seeds", 3), "seeds", low=1, high=MAX_SEEDS)
    return {"dataset": dataset, "classifier": classifier, "augmentation": augmentation, "generator": generator,
            "generator_preset": preset,
            "n_base": n_base, "added": added, "seeds": seeds,
            "subset_seed": _int(raw.get("subset_seed", 0), "subset_seed", low=0),
            "recipe": _options(raw.get("recipe"), "recipe", RECIPE_FIELDS),
            "generator_options": _options(raw.get("generator_options"), "generator option",
                                          GENERATORS[generator]["options"]),
            "data_root": data_root, "size": size}


def preview(spec: dict) -> dict:
    """What a validated spec costs: classifier trainings and (at most) generator trainings."""
    n_points = len(spec["added"])
    syn_points = sum(1 for a in spec["added"] if a > 0) if spec["augmentation"] == "closed" else 0
    return {"classifier_trainings": n_points * spec["seeds"], "generator_trainings": 1 if syn_points else 0,
            "points": n_points, "seeds": spec["seeds"]}
