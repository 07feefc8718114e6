"""The loaders the catalog's dataset entries name: local files only (no download unless asked).

Every loader is `(argument, data_root, size, download)` and returns uint8 images as (N, H, W, C) arrays
with integer labels, the full train and test splits, class names, and n_total (the paper's where it
measured the dataset, else the train split's size). Names, default roots and n_total come from the
catalog (engine.catalog.datasets), so that stored names match the published runs where the data are
the same.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.data.dataset import (IMAGE_SUFFIXES, Dataset, DatasetError, image_files, memory_bytes,  # noqa: F401 (the loaders' API)
                            npz_headers)
from engine.catalog import datasets as catalog

DIGITS_TRAIN, DIGITS_TEST, DIGITS_SPLIT_SEED = 800, 997, 0


def _entry(loader: str) -> catalog.DatasetKind:
    """The catalog entry that names this loader: its stored name, form and n_total."""
    return next(k for k in catalog.DATASETS.values() if k.loader.endswith(":" + loader))
def _check(name, x, y, classes):
    if x.ndim != 4 or x.dtype != np.uint8:
        raise DatasetError(f"{name}: images must be uint8 (N, H, W, C), got {x.dtype} {x.shape}")
    if len(x) != len(y):
        raise DatasetError(f"{name}: {len(x)} images but {len(y)} labels")
    if len(x) and (y.min() < 0 or y.max() >= len(classes)):
        raise DatasetError(f"{name}: labels outside 0..{len(classes) - 1}")


def _resize(x: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or x.shape[1] == size:
        return x
    from PIL import Image
    mode = "L" if x.shape[-1] == 1 else "RGB"
    out = np.empty((len(x), size, size, x.shape[-1]), np.uint8)
    for i, img in enumerate(x):
        im = Image.fromarray(img[..., 0] if mode == "L" else img, mode)
        arr = np.asarray(im.resize((size, size), Image.BICUBIC))
        out[i] = arr[..., None] if mode == "L" else arr
    return out


def load_digits_dataset(arg=None, data_root=None, size=None, download=False, form=None) -> Dataset:
    """scikit-learn's bundled 8x8 digits, split once (stratified, seed 0): 800 train, 997 test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    bunch = load_digits()
    # Pixels are 0..16 counts; scale to the 0..255 range of every other dataset.
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    tr_x, te_x, tr_y, te_y = train_test_split(images, labels, train_size=DIGITS_TRAIN, test_size=DIGITS_TEST,
                                              stratify=labels, random_state=DIGITS_SPLIT_SEED)
    kind = _entry("load_digits_dataset")
    return Dataset(kind.stored_name, kind.form, tr_x, tr_y, te_x, te_y, [str(i) for i in range(10)], DIGITS_TRAIN,
                   {"split_seed": DIGITS_SPLIT_SEED})


CIFAR_BIN, CIFAR_PY = "cifar-10-batches-bin", "cifar-10-batches-py"
CIFAR_RECORD = 1 + 3 * 32 * 32  # the binary version: one label byte, then the R, G and B planes


def _cifar10_binary(folder: Path) -> Dataset:
    """The binary version of CIFAR-10: fixed-size records read with numpy; nothing is unpickled."""
    def read(names):
        parts = []
        for name in names:
            path = folder / name
            if not path.is_file():
                raise DatasetError(f"{folder} lacks {name}")
            raw = np.fromfile(path, np.uint8)
            if raw.size == 0 or raw.size % CIFAR_RECORD:
                raise DatasetError(f"{path} is not a CIFAR-10 binary batch ({raw.size} bytes is not a whole "
                                   f"number of {CIFAR_RECORD}-byte records)")
            parts.append(raw.reshape(-1, CIFAR_RECORD))
        records = np.concatenate(parts)
        # (N, 3, 32, 32) channel planes -> (N, 32, 32, 3)
        return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), records[:, 0].astype(np.int64)

    x_tr, y_tr = read([f"data_batch_{i}.bin" for i in range(1, 6)])
    x_te, y_te = read(["test_batch.bin"])
    meta = folder / "batches.meta.txt"
    classes = [c.strip() for c in meta.read_text().splitlines() if c.strip()] if meta.is_file() else []
    if len(classes) != 10:
        classes = [str(i) for i in range(10)]
    return _cifar10(x_tr, y_tr, x_te, y_te, classes, folder.parent)


def _cifar10(x_tr, y_tr, x_te, y_te, classes, root) -> Dataset:
    kind = _entry("load_cifar10")
    _check(kind.stored_name, x_tr, y_tr, classes)
    _check(kind.stored_name, x_te, y_te, classes)
    # The paper's n_total when the folder holds the whole split, so that tau matches the published runs'.
    return Dataset(kind.stored_name, kind.form, x_tr, y_tr, x_te, y_te, list(classes),
                   kind.n_total if len(x_tr) == kind.train_size else len(x_tr), {"root": str(root)})


def _md5(path: Path) -> str:
    import hashlib
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def load_cifar10(arg=None, data_root: str | os.PathLike | None = None, size=None, download: bool = False,
                 form=None) -> Dataset:
    """CIFAR-10 from its binary version (read directly), or from the official Python version.

    The Python version is a set of pickles, and unpickling runs whatever code a file names: it is
    read only when every file's MD5 is the official one (torchvision's list), so a file someone
    put in its place is refused, never executed.
    """
    from torchvision.datasets import CIFAR10
    root = Path(data_root or _entry("load_cifar10").default_root)
    if (root / CIFAR_BIN).is_dir():
        return _cifar10_binary(root / CIFAR_BIN)
    if not download and not (root / CIFAR_PY).is_dir():
        raise DatasetError(f"no {CIFAR_BIN} or {CIFAR_PY} folder under {root} (give --data-root, or --download)")
    if not download:
        for name, md5 in CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]:
            path = root / CIFAR_PY / name
            if not path.is_file():
                raise DatasetError(f"{root / CIFAR_PY} lacks {name}")
            if _md5(path) != md5:
                raise DatasetError(f"{path} is not the official CIFAR-10 file (MD5 differs): refusing to unpickle "
                                   f"it; use the official archive, or the binary version ({CIFAR_BIN})")
    try:
        train = CIFAR10(str(root), train=True, download=download)
        test = CIFAR10(str(root), train=False, download=False)
    except (RuntimeError, OSError, KeyError, ValueError) as err:
        raise DatasetError(f"cannot read CIFAR-10 under {root}: {str(err).splitlines()[0]}") from err
    x_tr, y_tr = np.asarray(train.data, np.uint8), np.asarray(train.targets, np.int64)
    x_te, y_te = np.asarray(test.data, np.uint8), np.asarray(test.targets, np.int64)
    return _cifar10(x_tr, y_tr, x_te, y_te, train.classes, root)


def load_medmnist(flag: str, data_root: str | os.PathLike | None = None, size: int | None = None,
                  download: bool = False, form=None) -> Dataset:
    """A MedMNIST .npz (train/val/test images and labels), read directly with numpy."""
    kind = _entry("load_medmnist")
    path = Path(data_root or kind.default_root.format(arg=flag))
    if path.is_dir():
        candidates = sorted(path.glob(f"{flag}*.npz"))
        if not candidates:
            raise DatasetError(f"no {flag}*.npz file in {path}")
        path = candidates[0]
    if not path.is_file():
        raise DatasetError(f"no MedMNIST file at {path}")
    # Shapes from the headers before any array is allocated (a damaged or crafted file's header can
    # declare any size).
    npz_headers(path, ["train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels"],
                DatasetError, max_bytes=memory_bytes() // 2)
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path} is not a readable .npz: {str(err).splitlines()[0]}") from err
    needed = ["train_images", "train_labels", "test_images", "test_labels"]
    missing = [k for k in needed if k not in npz.files]
    if missing:
        raise DatasetError(f"{path} lacks key(s) {', '.join(missing)} (has {', '.join(npz.files) or 'no array'})")

    def images(key):
        x = np.asarray(npz[key])
        if x.ndim == 3:
            x = x[..., None]
        if x.dtype != np.uint8:
            raise DatasetError(f"{path}: {key} is {x.dtype}, expected uint8")
        return x

    x_tr, x_te = images("train_images"), images("test_images")
    y_tr = np.asarray(npz["train_labels"]).reshape(len(x_tr), -1)
    y_te = np.asarray(npz["test_labels"]).reshape(len(x_te), -1)
    if y_tr.shape[1] != 1:
        raise DatasetError(f"{path}: multi-label MedMNIST sets are not supported (labels {y_tr.shape})")
    y_tr, y_te = y_tr[:, 0].astype(np.int64), y_te[:, 0].astype(np.int64)
    name = catalog.medmnist_stored_name(flag)
    k = int(max(y_tr.max(), y_te.max())) + 1
    named = catalog.medmnist_classes(flag)
    classes = list(named) if named and len(named) == k else [str(i) for i in range(k)]
    native = x_tr.shape[1]
    x_tr, x_te = _resize(x_tr, size), _resize(x_te, size)
    _check(name, x_tr, y_tr, classes)
    # The paper rounds BloodMNIST's 11,959 training images to 12,000 in tau = 10 / n_total; engine runs use
    # the paper's value so that they share tau with the published runs they sit beside.
    n_total = catalog.paper_n_total(name) or len(x_tr)
    return Dataset(name, f"{kind.family}:{flag}", x_tr, y_tr, x_te, y_te, classes, n_total,
                   {"file": str(path), "native_size": native, "size": x_tr.shape[1]})


def _open_all(files: list[Path]):
    from PIL import Image
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                images.append(im.copy())
        except OSError as err:
            raise DatasetError(f"cannot read image {f}: {err}") from err
    return images


def image_pixels(im, grey: bool, size: int | None) -> np.ndarray:
    """One PIL image as (H, W, C) uint8, grey or RGB, resized to size x size if given: the one path
    for the images of folder datasets and of imported synthetic sets."""
    im = im.convert("L" if grey else "RGB")
    if size is not None:
        im = im.resize((size, size))
    arr = np.asarray(im, np.uint8)
    return arr[..., None] if grey else arr


def _to_array(files, images, grey: bool, size: int | None) -> np.ndarray:
    arrays = []
    for f, im in zip(files, images):
        arr = image_pixels(im, grey, size)
        if arrays and arr.shape != arrays[0].shape:
            raise DatasetError(f"{f} is {arr.shape[1]}x{arr.shape[0]} but {files[0]} is "
                               f"{arrays[0].shape[1]}x{arrays[0].shape[0]}; pass --size to resize all")
        arrays.append(arr)
    return np.stack(arrays)


def load_folder(path: str | os.PathLike, data_root=None, size: int | None = None, download: bool = False,
                form=None) -> Dataset:
    """The user's images as train/<class>/... and test/<class>/... (class = folder name)."""
    root = Path(path)
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DatasetError(f"{root} has no {split}/ folder (expected {split}/<class>/<image>)")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DatasetError(f"{root / 'train'} has {len(classes)} class folder(s); a classifier needs at least 2")
    train_items = image_files(root / "train", classes)
    test_items = image_files(root / "test", classes)
    train_images = _open_all([f for f, _ in train_items])
    test_images = _open_all([f for f, _ in test_items])
    grey = all(im.mode in ("1", "L", "I", "I;16", "F") for im in train_images)
    files = [f for f, _ in train_items] + [f for f, _ in test_items]
    x_all = _to_array(files, train_images + test_images, grey, size)
    x_tr, x_te = x_all[:len(train_items)], x_all[len(train_items):]
    y_tr = np.asarray([y for _, y in train_items], np.int64)
    y_te = np.asarray([y for _, y in test_items], np.int64)
    name = catalog.folder_stored_name(root)
    return Dataset(name, f"{catalog.FOLDER_FAMILY}:{root}", x_tr, y_tr, x_te, y_te, classes, len(x_tr),
                   {"root": str(root)})


def load_dataset(spec: str, data_root: str | None = None, size: int | None = None,
                 download: bool = False) -> Dataset:
    """Load a dataset by its CLI name (engine.catalog.datasets.FORMS) with the loader its entry names."""
    import importlib
    try:
        kind, arg = catalog.split(spec)
    except catalog.UnknownDataset as err:
        raise DatasetError(str(err)) from None
    module, _, function = kind.loader.partition(":")
    return getattr(importlib.import_module(module), function)(arg, data_root, size, download, form=kind.form)
