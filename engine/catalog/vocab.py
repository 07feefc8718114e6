"""The shared vocabulary: augmentations, traditional augmentations, sources, quality levels.

Each name is written here once; code elsewhere uses these constants (tests/catalog/test_catalog.py
checks that no other product module spells one out)."""
from __future__ import annotations

# How a run's extra images were made: more real ones, a generator trained on the base set only
# (closed set), or images from elsewhere (open set, e.g. Stable Diffusion).
AUGMENTATIONS = ("real", "closed", "open")
REAL, CLOSED, OPEN = AUGMENTATIONS
SYNTHETIC = (CLOSED, OPEN)
AUGMENTATION_LABELS = {REAL: "real", CLOSED: "closed set", OPEN: "open set"}

# Traditional augmentation of a classifier's training images (the paper's Tab. 6): random crop
# and/or random horizontal flip. Part of a setting's identity: runs trained with different ones are
# never fitted together. Listed in the order a fit prefers one when a setting has several.
TRADITIONAL = ("crop+flip", "crop", "flip", "none")
CROP_FLIP, CROP, FLIP, NO_TRADITIONAL = TRADITIONAL
# What a dataset trains with unless its catalog entry says otherwise (the paper: crop + flip).
DEFAULT_TRADITIONAL = CROP_FLIP


def traditional_name(crop: bool, flip: bool) -> str:
    """The traditional augmentation of a recipe that crops and/or flips."""
    return CROP_FLIP if crop and flip else CROP if crop else FLIP if flip else NO_TRADITIONAL


def crops(traditional: str) -> bool:
    return traditional in (CROP_FLIP, CROP)


def flips(traditional: str) -> bool:
    return traditional in (CROP_FLIP, FLIP)


# Where a stored run came from: the paper's published means, this engine, or a user's import.
SOURCES = ("paper", "engine", "import")
PAPER, ENGINE, IMPORT = SOURCES
# The source a fit uses by default: the user's own runs first (engine, then import), the paper's last.
SOURCE_ORDER = (ENGINE, IMPORT, PAPER)
ALL_SOURCES = "all"   # pool every source (a run without a seed is one observation, never a seed)

# How much of engine.quality runs on a synthetic set after synthetic runs.
QUALITY_LEVELS = ("off", "cheap", "full")
DEFAULT_QUALITY = "cheap"

# Which images a run's base set is: real ones (the paper's main protocol), or K synthetic images a
# class from a stored open-set set with real images as what is added (appendix G.1, Tab. 20, Fig. 13).
# Part of a setting's identity: such runs are never pooled with real-base ones.
BASES = (REAL, "synthetic")
REAL_BASE, SYNTHETIC_BASE = BASES

# What a run's classifier learns: supervised classification of every class (the paper's main
# protocol), or zero-shot (appendix G.2, Tab. 21, Fig. 14): real images of half the classes, the
# other half seen only through synthetic images, classified by similarity to a frozen text
# encoder's embedding of each class name. Part of a setting's identity as well.
TASKS = ("supervised", "zero-shot")
SUPERVISED, ZERO_SHOT = TASKS
