"""What a run trains with unless told otherwise: its classifier's recipe family, its dataset's adjustments,
and the traditional augmentation (the paper's Tab. 6) its dataset trains with."""
from __future__ import annotations

from dataclasses import replace

from engine.catalog import datasets
from engine.catalog.classifiers import classifier
from engine.catalog.recipes import Recipe
from engine.catalog.vocab import crops, flips


def default_recipe(name: str, dataset: str, n_train: int, n_base: int, n_total: int,
                   traditional: str | None = None) -> Recipe:
    """The recipe a run of classifier `name` on `dataset` (stored name) trains with: its family's, the
    dataset's adjustments, and the traditional augmentation (default: the dataset's)."""
    recipe = classifier(name).default_recipe(dataset, n_train, n_base, n_total,
                                             datasets.recipe_overrides(dataset, name))
    traditional = traditional or datasets.default_traditional(dataset)
    return replace(recipe, flip=flips(traditional), crop_pad=recipe.crop_pad if crops(traditional) else 0)
