"""Where a study's data lie and what can be checked of them without loading them. Torch- and numpy-free
at import (spec validation and `engine --help` import it), reading the catalog's dataset entries.

paths_and_size() applies each dataset's rules to a data root and a size; data_paths() names what a study
reads on the machine that trains; check_data_here() looks at those paths as far as this machine sees them
(`engine queue add` and the Queue page; `--remote-data` skips it for paths only the workers see).
"""
from __future__ import annotations

from pathlib import Path

from engine.catalog import datasets
from engine.messages import InputError, clip

MIN_SIZE, MAX_SIZE = 4, 1024
MEDMNIST_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


class DataPathError(InputError):
    """A data root, size or data path that cannot be used as given."""


def check_regular_file(path: Path) -> None:
    """A data file named here must be a regular file: a FIFO would block its reader forever."""
    if path.exists() and not path.is_file():
        raise DataPathError(f"{clip(path)} is not a regular file (a folder, FIFO, socket or device)")


def _medmnist_train_size(path: Path) -> int:
    """The train split's size from the .npz's array headers (nothing is loaded)."""
    import zipfile

    from engine.data.dataset import npz_headers
    check_regular_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            files = [n[:-4] if n.endswith(".npy") else n for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile) as err:
        raise DataPathError(f"{clip(path)} is not a readable MedMNIST .npz ({type(err).__name__})") from None
    missing = [k for k in MEDMNIST_KEYS if k not in files]
    if missing:
        raise DataPathError(f"{clip(path)} lacks key(s) {', '.join(missing)} (has {', '.join(files) or 'no array'})")
    shape, _ = npz_headers(path, ["train_labels"], DataPathError)["train_labels"]
    if not shape:
        raise DataPathError(f"{clip(path)}: train_labels is a single number, not one label per image")
    return int(shape[0])


def _size(raw) -> int | None:
    if raw in (None, ""):
        return None
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        raise DataPathError(f"size = {raw!r} is not a whole number") from None
    if not MIN_SIZE <= value <= MAX_SIZE:
        raise DataPathError(f"size = {value:,} must be between {MIN_SIZE:,} and {MAX_SIZE:,}")
    return value


def paths_and_size(dataset: str, data_root, size) -> tuple[str | None, int | None, int | None]:
    """(data_root, size, train size if known here) with the rules of the dataset's catalog entry."""
    kind, arg = datasets.split(dataset)
    if data_root is not None and not isinstance(data_root, str):
        raise DataPathError(f"data_root = {data_root!r} must be text")
    data_root = data_root.strip() if data_root else None
    size = _size(size)
    if data_root and not kind.takes_root:
        raise DataPathError(f"data_root {data_root!r} does not apply: {dataset} "
                            + ("names its own folder" if arg else "is built in"))
    if size and not kind.takes_size:
        raise DataPathError(f"size {size} does not apply to {dataset} (its images keep their size; the "
                            f"classifier's input size is the recipe option input_size)")
    known = datasets.known_train_size(dataset)
    if kind.family == datasets.FOLDER_FAMILY:
        root = Path(arg) / "train"
        n = sum(1 for d in root.iterdir() if d.is_dir() for f in d.iterdir() if f.is_file()) if root.is_dir() else None
        return None, size, n
    if not data_root:
        return None, size, known
    path = Path(data_root)
    if kind.root_is_file:
        if path.is_dir():
            return data_root, size, known
        if path.suffix.lower() != ".npz":
            raise DataPathError(f"data_root {data_root!r} for {dataset} must be a MedMNIST .npz file or its folder")
        return data_root, size, _medmnist_train_size(path) if path.exists() else known
    if path.exists() and not path.is_dir():
        raise DataPathError(f"data_root {data_root!r} for {dataset} must be a folder")
    return data_root, size, known


def data_paths(dataset: str, data_root: str | None) -> list[Path]:
    """The files or folders a study reads, as the machine that trains sees them."""
    kind, arg = datasets.split(dataset)
    if kind.family == datasets.FOLDER_FAMILY:
        return [Path(arg)]
    root = data_root or datasets.default_root(dataset)
    return [Path(root)] if root else []


def check_data_here(dataset: str, data_root: str | None) -> None:
    """The data a study reads, checked as far as this machine sees them: each path exists and has its
    dataset's layout (class folders, split folders, archive keys). Nothing is decoded: the loaders check
    the images themselves."""
    from engine.data.dataset import DatasetError, image_files
    kind, arg = datasets.split(dataset)
    remote = "if only the workers see it, pass --remote-data (a worker checks it when it takes the job)"
    for path in data_paths(dataset, data_root):
        if not path.exists():
            raise DataPathError(f"data path {clip(path)} does not exist on this machine; {remote}")
        if not path.is_dir():
            check_regular_file(path)
        if kind.needs_any and not any((path / name).is_dir() for name in kind.needs_any):
            raise DataPathError(f"data path {clip(path)} holds no {' or '.join(kind.needs_any)} folder")
        missing = [name for name in kind.needs_all if not (path / name).is_dir()]
        if missing:
            raise DataPathError(f"data path {clip(path)} has no {missing[0]}/ folder (it should hold "
                                f"{', '.join(n + '/' for n in kind.needs_all)})")
        if kind.family == datasets.MEDMNIST_FAMILY:
            if path.is_dir() and not sorted(path.glob(f"{arg}*.npz")):
                raise DataPathError(f"data path {clip(path)} holds no {arg}*.npz file")
        elif kind.family == datasets.FOLDER_FAMILY:
            for split in ("train", "test"):
                if not (path / split).is_dir():
                    raise DataPathError(f"dataset folder {clip(path)} has no {split}/ folder (expected "
                                        f"{split}/<class>/<image>)")
            classes = sorted(p.name for p in (path / "train").iterdir() if p.is_dir())
            if len(classes) < 2:
                raise DataPathError(f"dataset folder {clip(path / 'train')} has {len(classes)} class folder(s); a "
                                    f"classifier needs at least 2")
            try:
                for split in ("train", "test"):
                    image_files(path / split, classes)
            except DatasetError as err:
                raise DataPathError(str(err)) from None
