"""What every loader returns: a Dataset (uint8 NHWC arrays, labels, class names, n_total) or a
DatasetError naming the bad value, and the walk over class folders that the folder and ImageNet
loaders share. engine.data.loaders holds the loaders themselves; engine.data.imagenet imports only this."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.messages import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class DatasetError(InputError):
    """A dataset that cannot be loaded as asked; the message names the bad value (clipped when long)."""


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
        for f in files:
            check_regular(f, DatasetError)
        if not files:
            raise DatasetError(f"class folder {folder} holds no images")
        items += [(f, label) for f in files]
    return items


def check_regular(path: Path, error=ValueError) -> None:
    """Refuse what only looks like an image or array file: opening a FIFO named x.png waits forever
    for a writer, and a device or socket is no file at all (symlinks to regular files are fine)."""
    if not path.is_file():
        raise error(f"{path} is not a regular file (a folder, FIFO, socket or device): give image files only")


def npz_headers(path: Path, names, error=ValueError, max_bytes: int | None = None) -> dict:
    """{name: (shape, dtype)} of arrays in an .npz, read from their .npy headers before any is loaded.

    np.load allocates what a member's header declares, so a 1 KB file declaring a terabyte array ends in
    a MemoryError. Each named member must hold exactly the bytes its header declares, no object dtype
    (that would need unpickling), and together at most `max_bytes`."""
    import zipfile
    out, total = {}, 0
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise error(f"{path} holds a single array, not an .npz archive of named arrays")
    try:
        with zipfile.ZipFile(path) as archive:
            present = {n[:-4] if n.endswith(".npy") else n: n for n in archive.namelist()}
            for name in names:
                if name not in present:
                    continue
                info = archive.getinfo(present[name])
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = {(1, 0): np.lib.format.read_array_header_1_0,
                            (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read is None:
                        raise error(f"{path}: array {name!r} has .npy format version {version}, not 1.0 or 2.0")
                    shape, _, dtype = read(member)
                    header = member.tell()
                if dtype.hasobject:
                    raise error(f"{path}: array {name!r} holds Python objects; save plain numbers (never unpickled)")
                declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if declared != info.file_size - header:
                    raise error(f"{path}: array {name!r} declares shape {tuple(shape)} ({declared:,} bytes) but "
                                f"holds {info.file_size - header:,} bytes")
                total += declared
                out[name] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise error(f"{path} is not a readable .npz ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    except ValueError as err:
        if isinstance(err, error):
            raise
        raise error(f"{path}: cannot read an array header ({str(err).splitlines()[0]})") from None
    if max_bytes is not None and total > max_bytes:
        raise error(f"{path}: its arrays take {total:,} bytes, more than the {max_bytes:,} this import allows")
    return out


def memory_bytes() -> int:
    """This machine's physical memory (a bound on what one import may load at once)."""
    import os
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 34
