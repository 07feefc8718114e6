"""The paper's ImageNet subsets by name: ImageNet-100 and ImageNet-10, read from an ImageNet folder.

The folder is the official archives extracted: train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (the
official val/ is flat with a ground-truth file; sort it into class folders first). Only the listed
classes are read (the lists ship in engine/data/classes/); val/ is the test split, as in the paper.

Decoding 130,000 JPEGs takes minutes, so it happens once: every image is resized (shorter side to
the classifier's input size, then a centre crop) into a uint8 .npy cache beside the data, which
later loads memory-mapped in a moment. The cache is keyed by the class list, the size and the list
of files with their sizes and times, so adding or replacing an image rebuilds it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np

from engine.catalog import datasets as catalog
from engine.data.dataset import Dataset, DatasetError, image_files

# The subsets are the catalog's entries whose loader lives here (their stored names and the paper's
# n_total are there); each has its class list in classes/<form>.txt.
SUBSETS = tuple(k.form for k in catalog.DATASETS.values() if k.loader.startswith(__name__ + ":"))
# The paper's n_total is used when the folder holds most of the full split, so that engine runs share
# tau with the published ones; a smaller folder (a sample, a test) uses its own count.
PAPER_SHARE = 0.9
JPEG_SUFFIXES = {".jpeg", ".jpg", ".png"}
CACHE_DIR = ".equivalence-cache"
CACHE_VERSION = 1
CHUNK = 1024


def class_list(name: str) -> list[tuple[str, str]]:
    """(wnid, ImageNet class name) of a subset, in its file's order."""
    text = resources.files("engine.data").joinpath("classes", f"{name}.txt").read_text()
    rows = [line.split("\t", 1) for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [(w.strip(), n.strip()) for w, n in rows]


def _files(split_root: Path, wnids: list[str]) -> list[tuple[Path, int]]:
    if not split_root.is_dir():
        raise DatasetError(f"{split_root.parent} has no {split_root.name}/ folder "
                           f"(expected {split_root.name}/<wnid>/<image>.JPEG)")
    flat = any(p.suffix.lower() in JPEG_SUFFIXES for p in split_root.iterdir())
    hint = " (it holds images directly: sort the official flat val/ into <wnid>/ folders first)" if flat else ""
    return image_files(split_root, wnids, JPEG_SUFFIXES, hint)


def _fingerprint(name: str, size: int, splits: dict) -> str:
    """What the cache was made from: the class list, the size and every file's path, size and time."""
    h = hashlib.sha256(json.dumps([CACHE_VERSION, name, size, class_list(name)]).encode())
    for split, items in splits.items():
        for path, label in items:
            st = path.stat()
            h.update(f"{split}/{path.parent.name}/{path.name}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _decode(path: Path, size: int) -> np.ndarray:
    """One image as size x size x 3 uint8: shorter side resized to `size`, then the centre crop."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            im.draft("RGB", (size, size))   # JPEG: decode at a reduced scale when the image is much larger
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            im = im.resize((nw, nh), Image.BICUBIC)
            left, top = (nw - size) // 2, (nh - size) // 2
            return np.asarray(im.crop((left, top, left + size, top + size)), np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DatasetError(f"cannot read image {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") \
            from None


def _cache_root(root: Path) -> Path:
    """Beside the data when that folder is writable, else the user's cache folder."""
    beside = root / CACHE_DIR
    try:
        beside.mkdir(exist_ok=True)
        probe = beside / f".probe-{uuid.uuid4().hex[:8]}"
        probe.touch()
        probe.unlink()
        return beside
    except OSError:
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "equivalence"
        return home / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]


def _build(folder: Path, splits: dict, size: int, fingerprint: str, console) -> None:
    """Decode every image into .npy files in a temporary folder, then move it into place whole."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.part")
    tmp.mkdir(parents=True)
    try:
        total = sum(len(items) for items in splits.values())
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns, console=console, transient=False) as progress, \
                ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
            # PIL releases the GIL while it decodes and resizes, so threads use every core.
            task = progress.add_task(f"decoding {total:,} images once into {size}x{size} (cache: {folder})",
                                     total=total)
            for split, items in splits.items():
                x = np.lib.format.open_memmap(tmp / f"{split}_x.npy", mode="w+", dtype=np.uint8,
                                              shape=(len(items), size, size, 3))
                # In chunks, so that a bad file stops the build after at most one chunk of work.
                for start in range(0, len(items), CHUNK):
                    chunk = items[start:start + CHUNK]
                    for i, arr in enumerate(pool.map(lambda item: _decode(item[0], size), chunk), start):
                        x[i] = arr
                        progress.advance(task)
                x.flush()
                del x
                np.save(tmp / f"{split}_y.npy", np.asarray([label for _, label in items], np.int64))
        (tmp / "meta.json").write_text(json.dumps({"fingerprint": fingerprint, "size": size,
                                                   "counts": {s: len(v) for s, v in splits.items()}}))
        try:
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except OSError as err:
            # Another process (a second worker) built the same cache first: use that one.
            if not _current(folder, fingerprint):
                raise DatasetError(f"cannot write the image cache {folder}: {err.strerror or err}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _current(folder: Path, fingerprint: str) -> bool:
    meta = folder / "meta.json"
    try:
        return json.loads(meta.read_text()).get("fingerprint") == fingerprint
    except (OSError, ValueError):
        return False


def load_imagenet_subset(name: str, root: str | os.PathLike, size: int, console=None) -> Dataset:
    """ImageNet-100 or ImageNet-10 at size x size from an ImageNet folder, through the uint8 cache."""
    if name not in SUBSETS:
        raise DatasetError(f"unknown ImageNet subset {name!r}; valid: {', '.join(SUBSETS)}")
    stored, paper_total = catalog.DATASETS[name].stored_name, catalog.DATASETS[name].n_total
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"no ImageNet folder at {root} (give --data-root: a folder holding train/ and val/)")
    classes = class_list(name)
    wnids = sorted(w for w, _ in classes)   # labels in wnid order, as ImageNet's own and ImageFolder's
    splits = {"train": _files(root / "train", wnids), "test": _files(root / "val", wnids)}
    fingerprint = _fingerprint(name, size, splits)
    folder = _cache_root(root) / f"{name}-{size}px"
    if not _current(folder, fingerprint):
        if console is None:
            from rich.console import Console
            console = Console(stderr=True)
        _build(folder, splits, size, fingerprint, console)
    # Copy-on-write maps: nothing is read until used, and torch may wrap them without a copy.
    x_tr, y_tr = np.load(folder / "train_x.npy", mmap_mode="c"), np.load(folder / "train_y.npy")
    x_te, y_te = np.load(folder / "test_x.npy", mmap_mode="c"), np.load(folder / "test_y.npy")
    n_files = len(x_tr)
    n_total = paper_total if n_files >= PAPER_SHARE * paper_total else n_files
    names = {w: n.split(",")[0] for w, n in classes}   # ImageNet's first name of each class
    # details are part of each run's identity: what the data are, never where they or the cache lie.
    return Dataset(stored, name, x_tr, y_tr, x_te, y_te, [names[w] for w in wnids], n_total,
                   {"root": str(root), "size": size, "classes": f"{name}.txt",
                    "n_train_images": n_files, "n_test_images": len(x_te)})



def load_subset(arg=None, data_root=None, size=None, download=False, *, form: str) -> Dataset:
    """The loader the catalog's ImageNet entries name: subset `form` at `size` (default 224, ResNet-50's and
    ViT-B/32's input; validate() gives the classifier's) from its data root, through the uint8 cache."""
    return load_imagenet_subset(form, data_root or catalog.DATASETS[form].default_root, size or 224)
