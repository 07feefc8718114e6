"""The plan of a study grid: every (point, seed) run it means, each with the identity that decides its
result and the run key that identity hashes to (engine run, the worker and the cluster plan alike).

A run's identity is its full config (data, subset, recipe, generator, seed): a stored run key is skipped
unless forced, so reruns and re-queued jobs never duplicate rows. Torch-free.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from engine.catalog.defaults import default_recipe
from engine.catalog.datasets import default_traditional
from engine.catalog.vocab import DEFAULT_TRADITIONAL, REAL, SYNTHETIC, SYNTHETIC_BASE, ZERO_SHOT
from engine.catalog.recipes import traditional_of
from engine.data.dataset import Dataset
from engine.data.subsets import base_indices, real_additions
from engine.spec import StudySpec, zero_shot_split


def run_key(config: dict) -> str:
    """A run's identity hashed: two runs with the same key are the same run (stored once)."""
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
    traditional: str = DEFAULT_TRADITIONAL   # of the run's recipe (engine.catalog.recipes.traditional_of)


def identity(spec: StudySpec, ds: Dataset, recipe: dict, n_real_added: int, n_syn_added: int, seed: int,
             augmentation: str, generator_id: str | None) -> dict:
    """Everything that decides a run's result: two runs with equal identity are the same run."""
    return {"dataset": ds.name, "dataset_details": {k: v for k, v in ds.details.items() if k not in ("root", "file")},
            "classifier": spec.classifier, "recipe": recipe, "n_base": spec.n_base, "subset_seed": spec.subset_seed,
            "augmentation": augmentation, "n_real_added": n_real_added, "n_syn_added": n_syn_added,
            "generator_id": generator_id, "seed": seed}


def protocol_identity(spec: StudySpec, ds: Dataset) -> dict:
    """What appendix G's protocols add to a run's identity; nothing for the main protocol, whose run
    keys stay the ones they always were. A synthetic base is named by its set (the run's generator_id);
    a zero-shot run by its text encoder's content, its class split, prompt and joint space."""
    if spec.base == SYNTHETIC_BASE:
        return {"base": SYNTHETIC_BASE}
    if spec.task == ZERO_SHOT:
        from engine.classifiers import zero_shot
        seen, unseen = zero_shot_split(ds.classes)
        return {"task": ZERO_SHOT, "text_encoder_sha256": zero_shot.text_encoder_sha256(spec.text_encoder),
                "class_split": {"seen": seen, "unseen": unseen}, "prompt": zero_shot.PROMPT,
                "pooling": zero_shot.POOLING, "embed_dim": zero_shot.EMBED_DIM,
                "temperature_init": zero_shot.TEMPERATURE_INIT}
    return {}


def seen_class_indices(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(seen, unseen) class indices of a zero-shot run (engine.spec.zero_shot_split)."""
    seen, _ = zero_shot_split(ds.classes)
    return np.arange(len(seen)), np.arange(len(seen), ds.num_classes)


def synthetic_images_of(spec: StudySpec, planned_run: PlannedRun) -> int:
    """How many synthetic images a run trains on: its n_syn_added, or with a synthetic base (appendix
    G.1) the set's first n_base images, whatever it adds."""
    return spec.n_base if spec.base == SYNTHETIC_BASE else planned_run.n_syn_added


def base_and_additions(ds: Dataset, spec: StudySpec, n_real_added: int):
    """(base, added) real training indices of a run. A synthetic base has no real base: its real images
    are all added, from the whole train split. A zero-shot base is drawn from the seen classes only."""
    if spec.base == SYNTHETIC_BASE:
        none = np.empty(0, int)
        return none, real_additions(ds.train_y, none, n_real_added, spec.subset_seed) if n_real_added else none
    if spec.task == ZERO_SHOT:
        pool = np.flatnonzero(np.isin(ds.train_y, seen_class_indices(ds)[0]))
        return pool[base_indices(ds.train_y[pool], spec.n_base, spec.subset_seed)], np.empty(0, int)
    base = base_indices(ds.train_y, spec.n_base, spec.subset_seed)
    added = real_additions(ds.train_y, base, n_real_added, spec.subset_seed) if n_real_added else np.empty(0, int)
    return base, added


def plan(spec: StudySpec, ds: Dataset, generator_id: str | None = None) -> list[PlannedRun]:
    """Every (point, seed) run of a validated grid on its loaded data, with its identity and run key."""
    traditional = spec.traditional or default_traditional(ds.name)
    protocol = protocol_identity(spec, ds)
    planned = []
    for amount in spec.added:
        is_base = amount == 0
        augmentation = REAL if is_base else spec.augmentation
        n_real_added = amount if augmentation == REAL else 0
        n_syn_added = amount if augmentation in SYNTHETIC else 0
        n_train = spec.n_base + amount
        # The recipe holds the traditional augmentation (crop_pad, flip), so it is part of each run's
        # identity; the default one gives the same recipe, and so the same run keys, as before it had a name.
        recipe = default_recipe(spec.classifier, ds.name, n_train, spec.n_base, ds.n_total,
                                traditional).with_overrides(spec.recipe)
        applied, recipe = traditional_of(recipe), recipe.to_dict()
        for seed in range(spec.seeds):
            # A synthetic base's runs all train on its set's images, the base-only run too.
            config = identity(spec, ds, recipe, n_real_added, n_syn_added, seed, augmentation,
                              generator_id if augmentation != REAL or spec.base == SYNTHETIC_BASE else None)
            config.update(protocol)
            planned.append(PlannedRun(config, run_key(config), n_real_added, n_syn_added, seed, augmentation, applied))
    return planned
