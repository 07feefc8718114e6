"""Training recipes, torch-free: the Recipe a classifier trains with, the user's overrides of it (checked by
the same code that applies them, before anything runs) and the traditional augmentation it names. A run's
default recipe is engine.catalog.defaults'."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from engine.catalog.vocab import TRADITIONAL, crops, flips, traditional_name

# Caps that keep a run finite; far above anything the paper or a single GPU needs.
MAX_LR = 10.0
MAX_BATCH = 65_536
MAX_EPOCHS = 10_000
MAX_ITERATIONS = 2_000_000
MIN_INPUT, MAX_INPUT = 4, 1024
SCHEDULES = ("multistep", "cosine")


@dataclass(frozen=True)
class Recipe:
    lr: float
    batch_size: int
    weight_decay: float
    momentum: float = 0.9
    schedule: str = "multistep"      # "multistep" (x0.1 at milestones) or "cosine"
    epochs: int = 0                  # epoch-based when > 0 ...
    iterations: int = 0              # ... else a fixed number of iterations
    milestones: tuple = (0.5, 0.75)  # fractions of training where multistep decays
    warmup: float = 0.0              # fraction of training with linear warm-up
    crop_pad: int = 4
    flip: bool = True
    input_size: int = 32

    def total_steps(self, n_train: int) -> int:
        if self.epochs > 0:
            return self.epochs * math.ceil(n_train / self.batch_size)
        return self.iterations

    def with_overrides(self, overrides: dict) -> "Recipe":
        """The recipe with the user's `key=value` overrides. Training length is epochs or iterations, never
        both: an override of one replaces the recipe's other (iterations=300 on a 480-epoch recipe trains
        300 iterations; before, the epochs won and the override did nothing), and giving both is refused."""
        known = {f.name: f.type for f in fields(self)}
        if "epochs" in overrides and "iterations" in overrides:
            raise ValueError(f"recipe options epochs={overrides['epochs']} and iterations={overrides['iterations']} "
                             f"both set the training length: give one")
        values = {}
        for key, text in overrides.items():
            if key not in known:
                raise ValueError(f"unknown recipe option {key!r}; valid: {', '.join(known)}")
            current = getattr(self, key)
            try:
                if isinstance(current, bool):
                    if str(text).lower() not in ("true", "false", "1", "0"):
                        raise ValueError
                    values[key] = str(text).lower() in ("true", "1")
                elif isinstance(current, tuple):
                    values[key] = tuple(float(v) for v in str(text).split("/") if v)
                else:
                    values[key] = type(current)(text)
            except ValueError:
                raise ValueError(f"recipe option {key}={text!r} is not a valid {type(current).__name__}") from None
        if "iterations" in values:
            values["epochs"] = 0
        elif "epochs" in values:
            values["iterations"] = 0
        recipe = replace(self, **values)
        recipe.check()
        return recipe

    def length(self) -> str:
        """Training length in words, as the CLI echoes it."""
        return f"{self.epochs} epochs" if self.epochs > 0 else f"{self.iterations} iterations"

    def check(self) -> None:
        """Ranges that a run can finish with: a value outside them can only fail, hang or run for days."""
        def bad(name, rule):
            raise ValueError(f"recipe option {name}={getattr(self, name)!r} must be {rule}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= MAX_LR):
            bad("lr", f"a number in (0, {MAX_LR:g}]")
        if not 1 <= self.batch_size <= MAX_BATCH:
            bad("batch_size", f"between 1 and {MAX_BATCH:,}")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1):
            bad("weight_decay", "in [0, 1]")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            bad("momentum", "in [0, 1)")
        if self.schedule not in SCHEDULES:
            bad("schedule", f"one of {', '.join(SCHEDULES)}")
        if not 0 <= self.epochs <= MAX_EPOCHS:
            bad("epochs", f"between 0 and {MAX_EPOCHS:,}")
        if not 0 <= self.iterations <= MAX_ITERATIONS:
            bad("iterations", f"between 0 and {MAX_ITERATIONS:,}")
        if self.epochs == 0 and self.iterations == 0:
            bad("iterations", "positive when epochs is 0 (or give epochs > 0)")
        if not all(math.isfinite(m) and 0 < m < 1 for m in self.milestones) or \
                list(self.milestones) != sorted(self.milestones):
            bad("milestones", "increasing fractions of training in (0, 1), e.g. 0.5/0.75")
        if not (math.isfinite(self.warmup) and 0 <= self.warmup < 1):
            bad("warmup", "a fraction in [0, 1)")
        if not MIN_INPUT <= self.input_size <= MAX_INPUT:
            bad("input_size", f"between {MIN_INPUT} and {MAX_INPUT}")
        if not 0 <= self.crop_pad <= self.input_size:
            bad("crop_pad", f"between 0 and input_size ({self.input_size})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d


# The recipe fields that make its traditional augmentation (a field is named like the augmentation
# it switches: the catalog's test knows this module spells `flip` as a field name).
TRADITIONAL_FIELDS = ("crop_pad", "flip")


def traditional_of(recipe: Recipe) -> str:
    """The traditional augmentation (the paper's Tab. 6) a recipe applies: its crop_pad (0 = no crop) and
    flip are the truth; the vocabulary's names are how users and rows say it."""
    return traditional_name(recipe.crop_pad > 0, recipe.flip)


def with_traditional(recipe: Recipe, traditional: str) -> Recipe:
    """The recipe with only the named traditional augmentation: the crop keeps the recipe's padding."""
    if traditional not in TRADITIONAL:
        raise ValueError(f"traditional augmentation {traditional!r}; valid: {', '.join(TRADITIONAL)}")
    return replace(recipe, flip=flips(traditional), crop_pad=recipe.crop_pad if crops(traditional) else 0)


def iterations_for(n_train: int) -> int:
    """The paper's iteration budget for 224x224 classifiers, by training-set size."""
    if n_train < 1_300:
        return 10_000
    if n_train < 2_600:
        return 30_000
    if n_train < 13_000:
        return 60_000
    return 120_000
