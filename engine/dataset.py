"""What every loader returns: a Dataset (uint8 NHWC arrays, labels, class names, n_total) or a
DatasetError naming the bad value, and the walk over class folders that the folder and ImageNet
loaders share. engine.data holds the loaders themselves; engine.imagenet imports only this."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class DatasetError(ValueError):
    """A dataset that cannot be loaded as asked; the message names the bad value."""


@dataclass
class Dataset:
    name: str                 # stored name, e.g. "digits", "CIFAR-10", "BloodMNIST"
    spec: str                 # what the user typed, e.g. "medmnist:bloodmnist"
    train_x: np.ndarray       # (N, H, W, C) uint8
    train_y: np.ndarray       # (N,) int64
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]
    n_total: int
    details: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def size(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def image_files(split_root: Path, classes: list[str], suffixes=IMAGE_SUFFIXES,
                missing_hint: str = "") -> list[tuple[Path, int]]:
    """(file, label) of every image under split_root/<class>/, classes in the order given."""
    items = []
    for label, cls in enumerate(classes):
        folder = split_root / cls
        if not folder.is_dir():
            raise DatasetError(f"{split_root} has no class folder {cls!r}{missing_hint}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)
        if not files:
            raise DatasetError(f"class folder {folder} holds no images")
        items += [(f, label) for f in files]
    return items
