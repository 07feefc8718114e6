"""Classifier training recipes: the paper's, and a fast one for the digits CNN. Torch-free, so that a
queued job's recipe overrides are checked by the same code that applies them, before anything runs."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

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
        known = {f.name: f.type for f in fields(self)}
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
        recipe = replace(self, **values)
        recipe.check()
        return recipe

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


# Traditional augmentation (the paper's Tab. 6): random crop and/or random horizontal flip.
# A recipe's crop_pad (0 = no crop) and flip are the truth; these names are how users and rows say it.
TRADITIONAL = ("crop+flip", "crop", "flip", "none")


def traditional_of(recipe: Recipe) -> str:
    """The traditional augmentation a recipe applies, by its name in TRADITIONAL."""
    crop, flip = recipe.crop_pad > 0, recipe.flip
    return "crop+flip" if crop and flip else "crop" if crop else "flip" if flip else "none"


def with_traditional(recipe: Recipe, traditional: str) -> Recipe:
    """The recipe with only the named traditional augmentation: the crop keeps the recipe's padding."""
    if traditional not in TRADITIONAL:
        raise ValueError(f"traditional augmentation {traditional!r}; valid: {', '.join(TRADITIONAL)}")
    return replace(recipe, flip="flip" in traditional, crop_pad=recipe.crop_pad if "crop" in traditional else 0)


def iterations_for(n_train: int) -> int:
    """The paper's iteration budget for 224x224 classifiers, by training-set size."""
    if n_train < 1_300:
        return 10_000
    if n_train < 2_600:
        return 30_000
    if n_train < 13_000:
        return 60_000
    return 120_000


def default_recipe(classifier: str, dataset: str, n_train: int, n_base: int, n_total: int,
                   flip: bool = True) -> Recipe:
    """The paper's recipes (shared/data README), and a fast one for the digits CNN."""
    if classifier == "resnet110":
        frac = n_base / n_total
        epochs = 480 if frac <= 0.01 else 320 if frac <= 0.10 else 160
        return Recipe(lr=0.01 if dataset == "BloodMNIST" else 0.1, batch_size=128, weight_decay=1e-4,
                      epochs=epochs, milestones=(0.5, 0.75), crop_pad=4, flip=flip, input_size=32)
    if classifier in ("resnet50", "vit-b32"):
        return Recipe(lr=0.1, batch_size=192, weight_decay=1e-4 if classifier == "resnet50" else 0.0,
                      schedule="cosine", iterations=iterations_for(n_train), warmup=0.1, crop_pad=28,
                      flip=flip, input_size=224)
    if classifier == "smallcnn":
        # Not from the paper (it has no 8x8 classifier): chosen so that a run takes seconds on a
        # CPU and the full digits train split reaches ~97-98 %.
        return Recipe(lr=0.05, batch_size=64, weight_decay=5e-4, schedule="cosine", iterations=200,
                      crop_pad=1, flip=flip, input_size=8)
    raise ValueError(f"no default recipe for classifier {classifier!r}")
