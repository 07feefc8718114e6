"""Open-set synthetic images: a user's folder or .npz imported as a named synthetic set.

The images were made outside (Stable Diffusion, a vendor, a GAN trained elsewhere): importing
them checks every file and class against the dataset, resizes them with the path real folder
images take (engine.data.loaders.image_pixels), and stores them like a closed-set synthetic set. Inside a
class the images are ordered by the hash of their pixels, so the set's order, its id and every
draw depend on the images alone, not on file names or the order they were listed in.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.loaders import IMAGE_SUFFIXES, Dataset, image_pixels
from engine.data.dataset import check_regular, memory_bytes, npz_headers
from engine.catalog.vocab import OPEN
from engine.messages import InputError
from engine.spec import MAX_SYN_ADDED, max_balanced

# A set larger than one job may ever draw only costs memory and disk.
MAX_IMAGES = MAX_SYN_ADDED
# 16-bit and float images would be clipped into 8 bits, not converted: refused.
UNCONVERTIBLE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class ImportFailed(InputError):
    """An import that cannot be made; the message names the first bad file or class (clipped when long)."""


@dataclass
class ImportedSet:
    images: np.ndarray          # (N, H, W, C) uint8 in stream order (stream_order)
    labels: np.ndarray          # (N,) int64
    class_counts: dict          # dataset class name -> images, in class order
    content_hash: str

    @property
    def set_id(self) -> str:
        return f"open-{self.content_hash[:16]}"


def normalise(name: str) -> str:
    """Class names compare case-insensitively, with '_', '-' and spaces alike."""
    return re.sub(r"[\s_\-]+", " ", str(name).strip().lower())


def match_classes(names: list[str], classes: list[str], dataset: str, what: str) -> dict[str, int]:
    """Each folder (or label) name to the dataset class it names: by name first, else by index."""
    by_name = {normalise(c): i for i, c in enumerate(classes)}
    mapping, taken = {}, {}
    for name in names:
        key = normalise(name)
        if key in by_name:
            index = by_name[key]
        elif key.isdigit() and int(key) < len(classes):
            index = int(key)
        else:
            shown = ", ".join(classes[:12]) + (", ..." if len(classes) > 12 else "")
            raise ImportFailed(f"{what} {name!r} is not a class of {dataset} (classes: {shown}; or an index "
                               f"0..{len(classes) - 1})")
        if index in taken:
            raise ImportFailed(f"{what}s {taken[index]!r} and {name!r} both name {dataset} class {classes[index]!r}")
        taken[index] = name
        mapping[name] = index
    return mapping


def _pixels(im, where, grey: bool, size: int) -> np.ndarray:
    if im.mode in UNCONVERTIBLE_MODES:
        raise ImportFailed(f"{where} is a {im.mode} (16-bit or float) image: save it as 8-bit grey or colour")
    try:
        return image_pixels(im, grey, size)
    except ValueError as err:  # a mode PIL cannot turn into L or RGB
        raise ImportFailed(f"{where} (mode {im.mode}) cannot be converted to {'grey' if grey else 'RGB'}: "
                           f"{str(err).splitlines()[0]}") from None


def _hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name in ("Thumbs.db", "desktop.ini")


def read_folder(root: Path, ds: Dataset) -> tuple[list[np.ndarray], list[int]]:
    """root/<class>/<image>: every image decoded, checked and resized, or the first bad one named."""
    from PIL import Image
    entries = [p for p in sorted(root.iterdir()) if not _hidden(p)]
    stray = [p for p in entries if not p.is_dir()]
    if stray:
        raise ImportFailed(f"{stray[0]} lies outside a class folder (expected {root}/<class>/<image>)")
    if not entries:
        raise ImportFailed(f"{root} holds no class folders (expected {root}/<class>/<image>)")
    mapping = match_classes([p.name for p in entries], ds.classes, ds.name, "class folder")
    missing = [c for i, c in enumerate(ds.classes) if i not in mapping.values()]
    if missing:
        raise ImportFailed(f"{ds.name} class {missing[0]!r} has no folder in {root}")
    grey = ds.channels == 1
    images, labels = [], []
    for folder in entries:
        files = [p for p in sorted(folder.iterdir()) if not _hidden(p)]
        if not files:
            raise ImportFailed(f"class folder {folder} holds no images")
        for f in files:
            if f.is_dir():
                raise ImportFailed(f"{f} is a folder: a class folder holds images only")
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                raise ImportFailed(f"{f} is not an image file (accepted: {', '.join(sorted(IMAGE_SUFFIXES))})")
            check_regular(f, ImportFailed)
            try:
                with Image.open(f) as im:
                    im.load()  # decodes everything: a truncated file fails here, not later
                    images.append(_pixels(im, f, grey, ds.size))
            except ImportFailed:
                raise
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
                raise ImportFailed(f"cannot read image {f}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
            labels.append(mapping[folder.name])
    return images, labels


def read_npz(path: Path, ds: Dataset) -> tuple[list[np.ndarray], list[int]]:
    """An .npz with `images` (N, H, W[, C]) uint8 and `labels` (class indices or names); never unpickled."""
    from PIL import Image
    # Shapes from the headers first: nothing is allocated for an array that could not fit (half the
    # machine's memory, as the images are decoded and resized beside it).
    headers = npz_headers(path, ("images", "labels"), ImportFailed, max_bytes=memory_bytes() // 2)
    if "images" in headers and headers["images"][0] and headers["images"][0][0] > MAX_IMAGES:
        raise ImportFailed(f"{path} holds {headers['images'][0][0]:,} images; at most {MAX_IMAGES:,} per set")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ImportFailed(f"{path} is not a readable .npz ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ImportFailed(f"{path} holds a single array, not an .npz archive with images and labels")
    with npz:
        missing = [k for k in ("images", "labels") if k not in npz.files]
        if missing:
            raise ImportFailed(f"{path} lacks {' and '.join(missing)} (has {', '.join(npz.files) or 'nothing'})")
        try:
            x, y = npz["images"], npz["labels"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise ImportFailed(f"{path}: cannot read its arrays ({str(err).splitlines()[0]})") from None
    if x.dtype != np.uint8:
        raise ImportFailed(f"{path}: images are {x.dtype}, expected uint8 (0..255)")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4) or 0 in x.shape[1:]:
        raise ImportFailed(f"{path}: images have shape {x.shape}, expected (N, H, W) or (N, H, W, C) with C 1, 3 or 4")
    if len(x) == 0:
        raise ImportFailed(f"{path} holds no images")
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or len(y) != len(x):
        raise ImportFailed(f"{path}: {len(x)} images but labels of shape {y.shape}")
    if y.dtype.kind in "US":
        names = [v.decode() if isinstance(v, bytes) else str(v) for v in y]
        mapping = match_classes(sorted(set(names)), ds.classes, ds.name, "label")
        labels = [mapping[n] for n in names]
    elif y.dtype.kind in "iu":
        bad = np.flatnonzero((y < 0) | (y >= ds.num_classes))
        if len(bad):
            raise ImportFailed(f"{path}: label {y[bad[0]]} (image {bad[0]}) is not a class index of {ds.name} "
                               f"(0..{ds.num_classes - 1})")
        labels = [int(v) for v in y]
    else:
        raise ImportFailed(f"{path}: labels are {y.dtype}; give class indices (integers) or class names")
    absent = [c for i, c in enumerate(ds.classes) if i not in set(labels)]
    if absent:
        raise ImportFailed(f"{ds.name} class {absent[0]!r} has no images in {path}")
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    grey = ds.channels == 1
    images = [_pixels(Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a, modes[a.shape[-1]]), f"{path} image {i}",
                      grey, ds.size) for i, a in enumerate(x)]
    return images, labels


def read_source(source: str | os.PathLike, ds: Dataset) -> ImportedSet:
    """A folder of class folders or an .npz, checked completely, as one ImportedSet."""
    path = Path(source)
    if not path.exists():
        raise ImportFailed(f"--from {path}: no such file or folder")
    if not path.is_dir():
        check_regular(path, ImportFailed)
    if path.is_dir():
        images, labels = read_folder(path, ds)
    elif path.suffix.lower() == ".npz":
        images, labels = read_npz(path, ds)
    else:
        raise ImportFailed(f"--from {path} must be a folder of class folders or an .npz file")
    return assemble(images, labels, ds)


def assemble(images: list[np.ndarray], labels: list[int], ds: Dataset) -> ImportedSet:
    """Checked images at the dataset's resolution as one ImportedSet: content hash and stream order
    from the pixels and classes alone (shared by imports and engine.generators.text_to_image)."""
    digests = [hashlib.sha256(a.tobytes()).hexdigest() for a in images]
    canonical = sorted(range(len(images)), key=lambda i: (labels[i], digests[i]))
    h = hashlib.sha256(json.dumps({"dataset": ds.name, "classes": ds.classes, "shape": list(images[0].shape)})
                       .encode())
    for i in canonical:
        h.update(f"{labels[i]}:{digests[i]};".encode())
    y = np.asarray([labels[i] for i in canonical], np.int64)
    order = stream_order(y, ds.num_classes)
    counts = np.bincount(y, minlength=ds.num_classes)
    return ImportedSet(np.stack([images[canonical[i]] for i in order]), y[order],
                       {c: int(n) for c, n in zip(ds.classes, counts)}, h.hexdigest())


def stream_order(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The order a set is stored in, for labels grouped by class: position i holds the (i // K)-th
    image of class i % K, as the closed-set sampler's labels cycle, for as long as every class can
    follow (max_balanced); the images left over follow. A run adding n images takes the first n,
    so draws are class-balanced and a larger one contains a smaller one."""
    counts = np.bincount(labels, minlength=num_classes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    i = np.arange(max_balanced(counts.tolist()))
    head = starts[i % num_classes] + i // num_classes
    return np.concatenate([head, np.setdiff1d(np.arange(len(labels)), head)])


def import_set(name: str, dataset: str, source: str | os.PathLike, db=None, data_root: str | None = None,
               size: int | None = None) -> tuple[str, dict]:
    """Check and store a user's synthetic images as the open-set generator NAME for DATASET.

    Returns ('added' or 'present', the set's row). Everything is read and checked before the
    first byte is written; the images file is written beside the store, then the row, and the
    file is removed again if the row cannot be added: a failed import leaves the store as it was.
    """
    from engine.data.loaders import load_dataset
    from engine.spec import check_dataset, paths_and_size
    check_set_name(name)
    dataset = check_dataset(dataset)
    data_root, size, _ = paths_and_size(dataset, data_root, size)
    ds = load_dataset(dataset, data_root, size)
    imported = read_source(source, ds)
    return store_set(name, ds, imported, str(Path(source).resolve()), db)


def check_set_name(name: str) -> None:
    from engine.catalog.generators import GENERATORS
    from engine.spec import SET_NAME
    if not SET_NAME.fullmatch(name) or name.lower() in GENERATORS:
        raise ImportFailed(f"set name {name!r} must be 1-64 letters, digits, '.', '_', '+' or '-' (starting with a "
                           f"letter or digit) and not {' or '.join(GENERATORS)}")


def store_set(name: str, ds: Dataset, imported: ImportedSet, source_path: str, db=None, extra: dict | None = None,
              files: dict | None = None) -> tuple[str, dict]:
    """Store a checked set as the open-set generator NAME: its images file, any `files` ({path: bytes},
    e.g. a generated set's records) and then its row (with the `extra` fields); every file this call
    wrote is removed again if the row cannot be added."""
    from datetime import datetime, timezone

    from store import artifacts
    from store import synthetic as store_synthetic
    existing = store_synthetic.open_set(name, db)
    if existing is not None and existing["content_hash"] == imported.content_hash:
        return "present", existing
    stale = store_synthetic.open_runs_elsewhere(name, imported.set_id, db)
    if stale:
        raise ImportFailed(f"{stale} stored runs use an earlier set named {name!r}: choose another name, so that "
                           f"their results are never pooled with these images")
    path = artifacts.artifacts_dir(db) / "synthetic" / f"{imported.set_id}.npz"
    row = {"synthetic_set_id": imported.set_id, "generator_id": imported.set_id, "n_images": int(len(imported.labels)),
           "per_class": int(min(imported.class_counts.values())), "seed": 0, "path": str(path),
           "kind": OPEN, "name": name, "dataset_name": ds.name, "image_size": ds.size, "channels": ds.channels,
           "content_hash": imported.content_hash, "class_counts": imported.class_counts,
           "source_path": source_path, "imported_at": datetime.now(timezone.utc).replace(tzinfo=None),
           **(extra or {})}
    written = []  # the same images under another name share the file: never remove theirs
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp.npz")
            np.savez(tmp, images=imported.images, labels=imported.labels)
            os.replace(tmp, path)
            written.append(path)
        for file, data in (files or {}).items():
            file = Path(file)
            if not file.exists():
                tmp = file.with_name(file.name + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, file)
                written.append(file)
        state = store_synthetic.insert_open_set(row, db)
    except BaseException:
        for file in written:
            file.unlink(missing_ok=True)
        raise
    return state, store_synthetic.open_set(name, db)


def remove_set(name: str, db=None, force: bool = False) -> tuple[dict, int]:
    """Remove the imported set NAME (row, quality rows, images file); refused while runs use it or a queued
    or running job needs it, unless force, and then the runs stay: they are measurements, no longer
    re-runnable."""
    from store import synthetic as store_synthetic
    row = store_synthetic.open_set(name, db)
    if row is None:
        raise ImportFailed(f"no imported synthetic set named {name!r} (`engine synthetic list` shows them)")
    n_runs = store_synthetic.delete_set(row["synthetic_set_id"], db, name=name, force=force)
    if not store_synthetic.set_file_used(row["path"], db):
        Path(row["path"]).unlink(missing_ok=True)
    records = (row.get("provenance") or {}).get("records", {}).get("path")
    if records:  # a generated set's prompts, seeds and scores: its own, never shared
        Path(records).unlink(missing_ok=True)
    return row, n_runs


class OpenSetSource:
    """An imported set as engine.execution.local.execute takes a closed-set SyntheticSource: its ids are known
    before training, and prepare(n) gives the first n images of the stored stream (class-balanced,
    nested), with the fields its runs are stored with."""

    def __init__(self, spec, ds: Dataset, db=None, row: dict | None = None):
        from engine.spec import SpecError, check_open_amount
        if row is None:  # else read from the store elsewhere (a cluster node has none)
            from store import synthetic as store_synthetic
            row = store_synthetic.open_set(spec.generator, db)
        if row is None:
            raise SpecError(f"no imported synthetic set named {spec.generator!r} in the store "
                            f"(`engine synthetic list` shows them)")
        got = (row["dataset_name"], int(row["image_size"]), int(row["channels"]), list(row["class_counts"]))
        want = (ds.name, ds.size, ds.channels, list(ds.classes))
        if got != want:
            raise SpecError(f"synthetic set {spec.generator!r} was imported for {got[0]} at {got[1]}x{got[1]}x{got[2]} "
                            f"({len(got[3])} classes); this run's data are {want[0]} at {want[1]}x{want[1]}x{want[2]} "
                            f"({len(want[3])} classes): import it again for these data, under another name")
        check_open_amount(spec.generator, row["class_counts"], max(spec.added))
        self.row, self.name = row, spec.generator
        self.synthetic_set_id = row["synthetic_set_id"]
        self.generator_id = None            # no trained generator behind it
        self.run_identity = self.synthetic_set_id   # runs are keyed by the images themselves
        self.label = f"open set {self.name} ({row['n_images']:,} images)"

    def prepare(self, n_images: int, on_train=None):
        return open_set_images(self.row, n_images)


def open_set_images(row: dict, n_images: int):
    """(images, labels, run fields) of the first n_images of an imported set's stored stream."""
    path = Path(row["path"])
    if not path.is_file():
        from engine.spec import SpecError
        raise SpecError(f"synthetic set {row['name']!r}: its images file {path} is missing; import it again")
    with np.load(path, allow_pickle=False) as npz:
        x, y = npz["images"][:n_images], npz["labels"][:n_images].astype(np.int64)
    extra = {"generator": row["name"], "generator_id": None, "synthetic_set_id": row["synthetic_set_id"],
             "config": {"synthetic_set": {"kind": OPEN, "name": row["name"], "content_hash": row["content_hash"],
                                          "source_path": row["source_path"]}}}
    return x, y, extra
