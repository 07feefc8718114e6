"""Classifiers: one entry each, with its stored name, input size, training recipe and how to build it.

Adding a classifier is one entry in CLASSIFIERS (and its test): `engine run`, `engine queue add`, the
Queue page, spec validation and docs/engine.md's table read them. A timm model needs only its timm
name; the recipe families below are the paper's (appendix B) and a fast one for 8x8 digits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from engine.catalog.recipes import Recipe, iterations_for
from engine.messages import InputError


def cifar_recipe(dataset: str, n_train: int, n_base: int, n_total: int) -> dict:
    """ResNet-110 on 32x32 (appendix B): SGD, batch 128, more epochs the smaller the base is."""
    frac = n_base / n_total
    epochs = 480 if frac <= 0.01 else 320 if frac <= 0.10 else 160
    return dict(lr=0.1, batch_size=128, weight_decay=1e-4, epochs=epochs, milestones=(0.5, 0.75))


def imagenet_recipe(dataset: str, n_train: int, n_base: int, n_total: int, weight_decay: float = 1e-4) -> dict:
    """224x224 classifiers (appendix B): cosine schedule with 10 % warm-up, iterations by set size."""
    return dict(lr=0.1, batch_size=192, weight_decay=weight_decay, schedule="cosine",
                iterations=iterations_for(n_train), warmup=0.1)


def vit_recipe(dataset: str, n_train: int, n_base: int, n_total: int) -> dict:
    return imagenet_recipe(dataset, n_train, n_base, n_total, weight_decay=0.0)


def digits_recipe(dataset: str, n_train: int, n_base: int, n_total: int) -> dict:
    """Not from the paper (it has no 8x8 classifier): a run takes seconds on a CPU and the full digits
    train split reaches ~97-98 %."""
    return dict(lr=0.05, batch_size=64, weight_decay=5e-4, schedule="cosine", iterations=200)


@dataclass(frozen=True)
class Classifier:
    name: str                     # what users type (--classifier)
    stored_name: str              # what its runs are stored under (the paper's names)
    input_size: int               # images are resized to this on the device; the recipe's input_size
    recipe: Callable[..., dict]   # (dataset stored name, n_train, n_base, n_total) -> Recipe fields
    timm: str | None = None       # a timm model name, built with pretrained=False ...
    network: str | None = None    # ... or "module:callable(num_classes, in_chans)" of ours

    def default_recipe(self, dataset: str, n_train: int, n_base: int, n_total: int, overrides: dict | None = None
                       ) -> Recipe:
        """The recipe of a run: the family's fields, then the dataset's adjustments (`overrides`, from
        its catalog entry), with crop padding of an eighth of the input (4 px at 32, 28 at 224, 1 at 8)."""
        usual = dict(crop_pad=max(1, self.input_size // 8), flip=True)
        fields = {**usual, **self.recipe(dataset, n_train, n_base, n_total), **(overrides or {})}
        return Recipe(**fields, input_size=self.input_size)


# The names the dataset entries give as their default classifier.
RESNET110, RESNET50, VIT_B32, SMALLCNN = "resnet110", "resnet50", "vit-b32", "smallcnn"
CLASSIFIERS = {c.name: c for c in (
    Classifier(RESNET110, "ResNet-110", 32, cifar_recipe, network="engine.classifiers.networks:cifar_resnet110"),
    Classifier(RESNET50, "ResNet-50", 224, imagenet_recipe, timm="resnet50"),
    Classifier(VIT_B32, "ViT-B/32", 224, vit_recipe, timm="vit_base_patch32_224"),
    Classifier(SMALLCNN, "SmallCNN", 8, digits_recipe, network="engine.classifiers.networks:SmallCNN"),
)}


def classifier(name: str) -> Classifier:
    try:
        return CLASSIFIERS[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown classifier {name!r}; valid: {', '.join(CLASSIFIERS)}") from None


def by_stored_name(stored: str) -> Classifier | None:
    return next((c for c in CLASSIFIERS.values() if c.stored_name == stored), None)

